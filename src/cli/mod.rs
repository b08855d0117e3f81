//! Headless commands: each is a client of the library, printing for humans
//! or (`--json`) for scripts.

pub mod demo;
pub mod demo_ws;
pub mod diagnose;
pub mod graph;
pub mod ops;
pub mod validate;

use std::collections::BTreeMap;

/// Parses a `K=V` command-line value.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got `{s}`")),
    }
}

pub fn params(list: &[(String, String)]) -> BTreeMap<String, String> {
    list.iter().cloned().collect()
}
