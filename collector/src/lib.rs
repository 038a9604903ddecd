//! The Fathom collector and the `fathom` operator CLI.
//!
//! - [`config`]: `collector.toml`, raw and validated.
//! - [`server`]: starts a collector (store, TLS, API) and hands back a handle.
//! - [`api`]: the HTTPS API (the only module that uses hyper and rustls's server side).
//! - [`ingest`]: the report pipeline: size, sender, signature, clock, decode, apply.
//! - [`commit`]: group commit, so acknowledgements wait for a shared flush.
//! - [`reconcile`]: a report applied to the CMDB in one transaction: identification, discovered vs authorized state.
//! - [`cmdb`]: the records (agents, tokens, CIs, history, RFCs, drift, incidents…) and the operator actions on them.
//! - [`control`]: change-control decisions (policy, specs, reconciliation verdicts), pure.
//! - [`capacity`]: the metric store, roll-ups, forecasts, capacity alerts and the plan.
//! - [`availability`]: outage detection from heartbeats, and its task.
//! - [`calendar`]: calendars (agreed hours, maintenance and standard-change windows) and timelines, pure.
//! - [`background`]: the handle in front of each long-lived task (wake now, stop on drop).
//! - [`store`]: the storage trait and its sled engine (the only module that uses sled).
//! - [`tls`]: the server certificate, configured or self-signed.
//! - [`webhook`]: signed outbound incident events, from a transactional outbox.
//! - [`cli`]: the `fathom` and `fathom-collector` command lines, including `quickstart`.
//!
//! The collector never trusts what an agent says about itself: agents are
//! known by their keys, and CIs by the identification rules in
//! [`control::identify`].

pub mod api;
pub mod availability;
pub mod background;
pub mod calendar;
pub mod capacity;
pub mod cli;
pub mod cmdb;
pub mod commit;
pub mod config;
pub mod control;
pub mod ingest;
pub mod reconcile;
pub mod server;
pub mod store;
pub mod tls;
pub mod webhook;

#[cfg(test)]
pub(crate) mod test_support;

pub use fathom_support::error_chain;
