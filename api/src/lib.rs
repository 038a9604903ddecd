//! The operator API's contract: what `/v1` takes and answers, apart from
//! the agents' report path (whose wire format is `fathom-shared`'s).
//!
//! The collector converts its storage records to these views at the route
//! and parses requests into these parameters; the CLI (and any other
//! client) uses only this crate. A change to a stored record therefore
//! never changes the API by accident: the view and its conversion change
//! too, in review.
//!
//! - [`ids`]: typed record ids (`RFC-12`, `INC-7`…) and the CI status;
//! - [`auth`]: roles and the permission each write needs;
//! - [`agents`]: enrolled agents, enrollment tokens, operator tokens;
//! - [`client`]: a typed client over any HTTP transport: one method per
//!   route, answering views.

pub mod agents;
pub mod auth;
pub mod client;
pub mod ids;
