//! Availability management: outage timelines and
//! the exact interval arithmetic service availability is computed with.
//!
//! - [`hours`]: agreed service hours, a weekly schedule in a time zone
//!   with dated exceptions, as a timeline.
//! - [`outage`]: up or down per CI from its heartbeats (a learned
//!   interval, a number of missed ones).
//! - [`timeline`]: sets of half-open time intervals (when something was
//!   down), with union, intersection, clipping and the k-of-n rule for
//!   redundancy groups.
//!
//! - [`task`]: the background task that runs the watches (through
//!   `cmdb::outage`, which stores outages and raises incidents).
//!
//! All but `task` are pure: no store, no clock; callers pass times in
//! (Unix ms).

pub mod hours;
pub mod outage;
pub mod task;
pub mod timeline;
