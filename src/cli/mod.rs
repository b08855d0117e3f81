//! Headless commands: each is a client of the library, printing for humans
//! or (`--json`) for scripts. They print with [`say!`] and [`say_raw!`]:
//! a stdout closed under them (`status --json | head -c 10`) ends the
//! output quietly instead of panicking as `println!` does.

/// `println!` that ignores a closed stdout (broken pipe).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `print!` that ignores a closed stdout (broken pipe).
macro_rules! say_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = write!(out, $($t)*);
        let _ = out.flush();
    }};
}

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
