//! Time as the service-management records use it, below every record and
//! decision: pure arithmetic, no store, no clock (callers pass Unix ms).
//!
//! - [`hours`]: calendars: a weekly schedule of wall-clock windows in a
//!   time zone, with dated exceptions. Agreed service hours, maintenance
//!   windows and standard-change windows are all calendars.
//! - [`timeline`]: sets of half-open time intervals (when something was
//!   down), with union, intersection, clipping and the k-of-n rule for
//!   redundancy groups.

pub mod hours;
pub mod timeline;
