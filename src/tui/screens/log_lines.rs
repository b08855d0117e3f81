//! What the Logs screen knows about lines: which are errors (one
//! classification, used to paint them and by `E` to walk them), where a
//! search occurs in them, and the answers of a log scan (the engine's
//! `FilterLogEvents` narrows the lines, their text decides).

use std::collections::BTreeMap;

use crate::tui::app::widgets::strip_ansi;
use crate::tui::app::{App, Effect};

/// Lines that may be errors; the engine searches the log with it and
/// [`classify`] decides on each candidate's text.
pub const ERROR_PATTERN: &str = r"(?i)(\berrors?\b|\bfailed\b|\bfailures?\b|exception|\bfatal\b|panicked at|exit status [1-9]|State: FAILED|(?-i:\bFAIL\b))";

/// Counts of nothing (`0 failed`, `errors: 0`, `no failures`): not errors.
const ZERO_PATTERN: &str = r"(?i)\b(0|no|zero)\s+(errors?|failures?|failed|failing|exceptions?)\b|\b(errors?|failures?|failed|failing|exceptions?)\s*[:=]\s*0\b|\bwithout\s+(errors?|failures?)\b";

/// How a log line is painted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Phase,
    PhaseFailed,
    Error,
    Warn,
    Info,
}

impl LineKind {
    /// The lines `E` walks: the ones painted as errors.
    pub fn is_error(self) -> bool {
        matches!(self, LineKind::Error | LineKind::PhaseFailed)
    }
}

/// The kind of a line (without its ANSI colours).
pub fn classify(l: &str) -> LineKind {
    if l.contains("[Container] Entering phase") || l.contains("Phase complete:") {
        return if l.contains("State: FAILED") {
            LineKind::PhaseFailed
        } else {
            LineKind::Phase
        };
    }
    // `5 passed, 0 failed` names failures without having any: the counts
    // of nothing are blanked before the error words are looked for.
    let rest = zero_re().replace_all(l, " ");
    if error_re().is_match(&rest) {
        LineKind::Error
    } else if l.to_lowercase().contains("warn") {
        LineKind::Warn
    } else {
        LineKind::Info
    }
}

/// Byte offsets of the (non-overlapping) occurrences of `q` in `l`: what a
/// search highlights and counts.
pub fn occurrences(l: &str, q: &str) -> Vec<usize> {
    if q.is_empty() {
        return Vec::new();
    }
    l.match_indices(q).map(|(i, _)| i).collect()
}

fn error_re() -> &'static regex::Regex {
    static R: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(ERROR_PATTERN).unwrap_or_else(|_| unreachable!())
    });
    &R
}

fn zero_re() -> &'static regex::Regex {
    static R: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(ZERO_PATTERN).unwrap_or_else(|_| unreachable!())
    });
    &R
}

/// What a log scan looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogScan {
    /// A plain-text search (`/`).
    Search(String),
    /// The error lines (`E`).
    Errors,
}

impl LogScan {
    /// The engine-side search that narrows the lines: (pattern, regex).
    pub fn pattern(&self) -> (&str, bool) {
        match self {
            LogScan::Search(q) => (q, false),
            LogScan::Errors => (ERROR_PATTERN, true),
        }
    }
}

/// The error lines of a log, as of `total` lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorLines {
    pub lines: Vec<u64>,
    pub total: u64,
}

/// A scan's answer: the candidate lines with their text.
pub(crate) fn on_scanned(
    app: &mut App,
    aeid: String,
    scan: LogScan,
    total: u64,
    lines: Vec<(u64, String)>,
) -> Vec<Effect> {
    if aeid != app.logs.aeid {
        return Vec::new();
    }
    match scan {
        LogScan::Errors => {
            let errors = lines
                .iter()
                .filter(|(_, t)| classify(&strip_ansi(t)).is_error())
                .map(|(n, _)| *n)
                .collect();
            app.logs.errors = Some(ErrorLines {
                lines: errors,
                total,
            });
            match app.logs.pending_walk.take() {
                Some(forward) => walk_errors(app, forward),
                None => Vec::new(),
            }
        }
        LogScan::Search(q) => {
            if app.logs.search.as_deref() != Some(q.as_str()) {
                return Vec::new();
            }
            let mut matches = Vec::new();
            let mut texts = BTreeMap::new();
            for (n, t) in lines {
                let plain = strip_ansi(&t).into_owned();
                let at = occurrences(&plain, &q);
                if !at.is_empty() {
                    matches.extend(at.into_iter().map(|i| (n, i)));
                    texts.insert(n, plain);
                }
            }
            app.logs.matches = matches;
            app.logs.match_lines = texts;
            app.logs.current = 0;
            if app.logs.matches.is_empty() {
                app.logs.only_matches = false;
                app.toast(format!("no match for `{q}`"), true);
                return Vec::new();
            }
            let from = if app.logs.follow { 0 } else { app.logs.cursor };
            app.logs.current = app
                .logs
                .matches
                .iter()
                .position(|&(n, _)| n >= from)
                .unwrap_or(0);
            let line = app.logs.matches[app.logs.current].0;
            app.logs.filter_sel = app
                .logs
                .match_lines
                .keys()
                .position(|&n| n == line)
                .unwrap_or(0);
            app.logs.goto(line)
        }
    }
}

/// `E` (forward) or its reverse: the next error line after the cursor, or
/// the previous one before it. From the tail (following), `E` starts at
/// the top. The error lines are scanned first when the log has grown.
pub(crate) fn walk_errors(app: &mut App, forward: bool) -> Vec<Effect> {
    let lv = &mut app.logs;
    let known = lv.errors.as_ref().filter(|e| e.total == lv.total);
    let Some(errors) = known else {
        lv.pending_walk = Some(forward);
        return vec![Effect::ScanLog {
            aeid: lv.aeid.clone(),
            scan: LogScan::Errors,
        }];
    };
    let count = errors.lines.len();
    let target = if forward {
        errors
            .lines
            .iter()
            .copied()
            .find(|&n| lv.follow || n > lv.cursor)
    } else {
        errors
            .lines
            .iter()
            .rev()
            .copied()
            .find(|&n| lv.follow || n < lv.cursor)
    };
    match target {
        Some(n) => lv.goto(n),
        None => {
            let line = lv.cursor + 1;
            let msg = if count == 0 {
                "no error lines in this log".to_owned()
            } else if forward {
                format!("no more errors below line {line} ({count} error line(s) in all)")
            } else {
                format!("no more errors above line {line} ({count} error line(s) in all)")
            };
            app.toast(msg, false);
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_nothing_are_not_errors_and_fail_lines_are() {
        for l in [
            "Ran 12 tests: 12 passed, 0 failed",
            "errors: 0",
            "failures=0 errors=0",
            "built without errors",
            "no failures",
        ] {
            assert_ne!(classify(l), LineKind::Error, "{l}");
        }
        for l in [
            "FAIL: test_g (tests.test_g.GreetTest)",
            "--- FAIL: TestGreet (0.00s)",
            "Ran 12 tests: 10 passed, 2 failed",
            "2 failed, 0 errors",
            "error: could not compile `web`",
            "Found 3 errors",
            "make: *** [all] exit status 2",
        ] {
            assert_eq!(classify(l), LineKind::Error, "{l}");
        }
        assert_eq!(
            classify("[Container] Phase complete: BUILD State: FAILED"),
            LineKind::PhaseFailed
        );
        assert_eq!(classify("a failover test"), LineKind::Info);
        assert_eq!(classify("this will fail later"), LineKind::Info);
    }

    #[test]
    fn every_error_line_is_a_candidate_of_the_engine_search() {
        let re = regex::Regex::new(ERROR_PATTERN).unwrap_or_else(|_| unreachable!());
        for l in [
            "FAIL: x",
            "2 failed, 0 errors",
            "fatal: no repo",
            "Exception in main",
        ] {
            assert!(classify(l).is_error() && re.is_match(l), "{l}");
        }
    }

    #[test]
    fn occurrences_are_what_is_highlighted() {
        assert_eq!(occurrences("FAIL a FAIL b", "FAIL"), vec![0, 7]);
        assert!(occurrences("abc", "").is_empty());
    }
}
