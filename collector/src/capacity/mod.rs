//! Capacity management (issue 6, in progress): the analysis of utilization
//! series.
//!
//! - [`forecast`]: linear trend, additive Holt-Winters with the error of its
//!   one-step-ahead forecasts, and time to threshold.
//!
//! Pure: series in, numbers out.

pub mod forecast;
