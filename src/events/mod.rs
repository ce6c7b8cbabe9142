//! Events: every write's transaction adds an outbox row (see `store`), so an event exists
//! exactly when its change does. From there:
//!
//! - [`relay`] publishes the outbox to a Redis stream, at least once, in commit order, each
//!   event carrying its id so consumers can de-duplicate. One relay at a time holds the claim,
//!   so replicas sharing a database neither double-publish nor reorder; events the stream
//!   already holds (a lost reply, a relay stopped before marking) are marked, not re-sent.
//! - [`feed`] tails the outbox for live subscribers (the JSON-RPC WebSocket subscription),
//!   including events committed by other replicas.

pub mod feed;
pub mod relay;

pub use feed::{EventFilter, Feed};
pub use relay::relay;
