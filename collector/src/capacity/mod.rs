//! Capacity management: every CI's utilization
//! series, and their analysis.
//!
//! - [`series`]: what is measured (series names, units, the samples a
//!   metrics report or a device poll gives);
//! - [`block`]: the bytes of a stored block (open and sealed forms);
//! - [`rollup`]: tiers and roll-up buckets (count, min, mean, max, p95);
//! - [`store`]: the metric store (fold from the ingest log, roll-ups,
//!   retention, queries);
//! - [`task`]: the background task that folds and rolls up;
//! - [`forecast`]: linear trend, additive Holt-Winters with the error of
//!   its one-step-ahead forecasts, and time to threshold;
//! - [`alert`]: capacity thresholds checked against forecasts, raising and
//!   resolving capacity incidents;
//! - [`plan`]: the capacity plan of every CI and service.

pub mod alert;
pub mod block;
pub mod forecast;
pub mod plan;
mod query;
pub mod rollup;
pub mod series;
pub mod store;
pub mod task;
