//! Availability management: up or down per CI from its heartbeats, the
//! outages found and the incidents they raise, and availability reports
//! over agreed service hours.
//!
//! - [`watch`]: up or down per CI from its heartbeats (a learned interval,
//!   a number of missed ones). Pure: no store, no clock; callers pass times
//!   in (Unix ms).
//! - [`outage`]: runs every CI's watch against its latest heartbeat
//!   (`cmdb::heartbeat`), records outages, planned or not, and raises and
//!   resolves the incidents of unplanned ones.
//! - [`report`]: a service's availability over a period, from its members'
//!   outages, its redundancy groups and its agreed hours.
//! - [`task`]: the background task that runs the watches.
//!
//! The interval arithmetic and the calendars are in [`crate::calendar`];
//! the service-level attributes are read by `control::service`.

pub mod outage;
pub mod report;
pub mod task;
pub mod watch;
