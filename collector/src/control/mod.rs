//! Change and configuration control, as pure decisions: how an inventory
//! becomes attributes ([`attributes`]), which attributes are under change
//! control and what is pre-authorized ([`policy`]), what an RFC says it will
//! change ([`spec`]), whether an observed difference is authorized
//! ([`decide`]), and which classes of CI there are and how a CI's status
//! may move ([`classes`]), which CI a report is about ([`identify`]:
//! identification rules over the identifiers both sides have), and what a CI's service-level attributes
//! (agreed hours, target, redundancy, maintenance window) say ([`service`]).
//!
//! Nothing here reads or writes the store: [`crate::cmdb`] loads the
//! records, calls these functions, and writes the outcome in one
//! transaction. That keeps every rule testable on plain values.

pub mod attributes;
pub mod classes;
pub mod decide;
pub mod identify;
pub mod pattern;
pub mod policy;
pub mod service;
pub mod spec;
