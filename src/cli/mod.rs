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

/// Options every command takes and none requires: clap's error usage lists
/// the arguments it saw (the environment's `PIPEDECK_CONFIG` included) as
/// if they were part of the command's form; they are taken out of the
/// `Usage:` line so it shows what the command needs.
const NEVER_REQUIRED: &[&str] = &[
    " --config <PATH>",
    " --data-dir <DIR>",
    " --workspace <DIR>",
    " -w <DIR>",
    " --theme <NAME>",
    " --readonly",
];

/// A rendered clap error with the `Usage:` line as the command's own.
pub fn usage_without_global_options(rendered: &str) -> String {
    rendered
        .split_inclusive('\n')
        .map(|line| {
            if line.trim_start().starts_with("Usage:") {
                let mut l = line.to_owned();
                for opt in NEVER_REQUIRED {
                    while let Some(i) = l.find(opt) {
                        // Only a whole token: `--readonly` is not `--readonly-x`.
                        let end = i + opt.len();
                        if l[end..].starts_with([' ', '\n', '\r']) || end == l.len() {
                            l.replace_range(i..end, "");
                        } else {
                            break;
                        }
                    }
                }
                l
            } else {
                line.to_owned()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usage_line_loses_the_options_no_command_requires() {
        let e = "error: the following required arguments were not provided:\n  <PIPELINE>\n\n\
                 Usage: pipedeck approve --config <PATH> --data-dir <DIR> <PIPELINE> <STAGE> <ACTION>\n\n\
                 For more information, try '--help'.\n";
        let out = usage_without_global_options(e);
        assert!(
            out.contains("Usage: pipedeck approve <PIPELINE> <STAGE> <ACTION>\n"),
            "{out}"
        );
        assert!(out.contains("  <PIPELINE>\n"), "{out}");
        // What an error requires stays (`--profile` requires `--aws`).
        let e = "Usage: pipedeck --aws --profile <NAME>\n";
        assert_eq!(usage_without_global_options(e), e);
    }
}
