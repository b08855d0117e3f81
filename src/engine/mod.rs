//! The local pipeline engine: executions, stages and actions with
//! CodePipeline's semantics (reference §1). One actor task owns the state;
//! requests come in on a channel and are answered, every change is
//! published as an [`api::EngineEvent`], and the store is written through.

pub mod conditions;
pub mod core;
pub mod triggers;
pub mod vars;

pub use crate::api::short_id;

pub use self::core::{
    EngineError, EngineHandle, EngineOptions, INTERRUPTED, STORE_FAILED, start, start_with,
};

#[cfg(test)]
mod tests {
    use super::short_id;

    #[test]
    fn short_ids_are_cut_at_characters_and_short_ones_stay_whole() {
        assert_eq!(short_id("0123456789abcdef", 8), "01234567");
        assert_eq!(short_id("abc", 8), "abc");
        assert_eq!(short_id("", 8), "");
        // Multi-byte characters: byte 8 is inside one.
        assert_eq!(short_id("ééééééééé", 8), "éééééééé");
        assert_eq!(short_id("日本語のid", 3), "日本語");
    }
}
