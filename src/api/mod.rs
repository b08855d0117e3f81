//! The contract below everything: requests named after CodePipeline's
//! operations, replies, AWS-named errors, events, statuses and
//! backend-neutral environment types. The same types travel in-process
//! (TUI, `pipedeck run`) and as JSON over the workspace's socket, so every
//! client sees one contract (reference §2).
//!
//! This module imports nothing from the layers above it (engine, env,
//! store, providers, backend, tui, cli); `tests/layering.rs` checks it.

pub mod env;
mod error;
mod event;
pub mod logs;
mod reply;
mod request;
pub mod types;

pub use error::ApiError;
pub use event::{AuditEvent, EngineEvent, UserIdentity};
pub use logs::{LogPage, LogRef};
pub use reply::*;
pub use request::{Envelope, FluxOperation, Request};

/// The first `n` characters of an id (all of it when shorter), for
/// messages and screens: never cut inside a character, never a panic on a
/// short id.
pub fn short_id(id: &str, n: usize) -> &str {
    id.char_indices().nth(n).map_or(id, |(i, _)| &id[..i])
}
