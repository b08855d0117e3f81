//! The local pipeline engine: executions, stages and actions with
//! CodePipeline's semantics (reference §1). One actor task owns the state;
//! requests come in on a channel and are answered, every change is
//! published as an [`api::EngineEvent`], and the store is written through.

pub mod conditions;
pub mod core;
pub mod triggers;
pub mod vars;

pub use self::core::{EngineError, EngineHandle, EngineOptions, INTERRUPTED, start};
