//! Peer fetch between per-host blob caches (docs/CONSISTENCY.md, "Peers").
//!
//! Several registry processes, one per host, serve one shared store, each
//! with its own blob cache. Without peers a rollout to N hosts reads every
//! layer N times from the store. With them, a whole-blob read is sent to
//! the blob's *owners*, the R live members that rendezvous hashing of the
//! digest picks, whose caches then hold it; the store is read about once.
//!
//! [`PeerStore`] is the store decorator (placed under the blob cache);
//! [`Peers`] the membership, its health loop and the HTTP client;
//! [`protocol`] the paths and header of the peer endpoint, which the
//! embedding server answers (see [`serving_peer`] and [`Secret`]).
//!
//! What is trusted: only content by digest travels, every byte from a
//! peer is hashed and counted on the way and the last chunk is held back
//! until the digest matched, and the link (does this repository have the
//! blob?) is always asked of the store first.

#![forbid(unsafe_code)]

mod config;
mod fetch;
mod hashing;
mod members;
pub mod protocol;
mod scope;
mod stats;
mod store;

pub use config::{Membership, PeerConfig, Secret};
pub use members::{Peers, instance_id};
pub use scope::{is_peer_request, serving_peer};
pub use stats::PeerStats;
pub use store::PeerStore;
