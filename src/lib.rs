//! `isms`: the ISO/IEC 27001:2022 ISMS system of record that AI agents call.
//!
//! Layout, from the standard's rules outwards:
//! - [`catalog`]: the 93 Annex A controls with attributes and mappings, embedded.
//! - [`domain`]: records and rules (value types, state machines, who may do what); no I/O.
//! - [`operations`]: the registry; each operation defined once with typed input and output.
//! - [`store`]: SQLite or PostgreSQL through sqlx; each write one transaction with its
//!   audit-trail entry and outbox event.
//! - [`events`]: the relay that publishes the outbox to Redis Streams, and the live feed.
//! - [`metrics`]: per-operation counters and latency histograms for `/metrics`.
//! - [`fronts`]: MCP (stdio and Streamable HTTP), JSON-RPC, HTTP plumbing and the CLI.
//! - [`error`]: the one error type, mapped once per front.

pub mod catalog;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod fronts;
pub mod metrics;
pub mod operations;
pub mod store;
