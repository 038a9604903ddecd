//! Availability management (issue 6, in progress): outage timelines and
//! the exact interval arithmetic service availability is computed with.
//!
//! - [`hours`]: agreed service hours, a weekly schedule in a time zone
//!   with dated exceptions, as a timeline.
//! - [`timeline`]: sets of half-open time intervals (when something was
//!   down), with union, intersection, clipping and the k-of-n rule for
//!   redundancy groups.
//!
//! Pure: no store, no clock. Callers pass times in (Unix ms).

pub mod hours;
pub mod timeline;
