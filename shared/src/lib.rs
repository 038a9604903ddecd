//! What crosses the wire between a Fathom agent and the collector, and nothing else.
//!
//! - [`ids`]: typed identifiers ([`ids::AgentId`], [`ids::CiId`]).
//! - [`envelope`]: the signed, versioned frame every report travels in, and the
//!   only way to get at a body: a body is reachable only from a
//!   [`envelope::VerifiedEnvelope`], so nothing is decoded before its signature is
//!   verified.
//! - [`codec`]: the one msgpack codec, with size and nesting caps.
//! - [`wire`]: the report bodies (enrollment, inventory, metrics, device
//!   reports) and the collector's answers.
//! - [`device`]: what an agent reads of a network device over SNMP.
//! - [`tls`]: certificate fingerprints and the pinned-certificate verifier that
//!   agents and the CLI use to trust a collector.
//!
//! This crate does no I/O: no files, no sockets, no clocks. Callers pass the time in.

pub mod codec;
pub mod device;
pub mod envelope;
pub mod ids;
pub mod tls;
pub mod wire;
