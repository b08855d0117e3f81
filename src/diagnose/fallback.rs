//! The finding of last resort: when no rule names the cause, the failed
//! command's own output is scored line by line (error vocabulary, nearness
//! to the failure, known noise skipped) and the best lines become the
//! finding's title and evidence.

use std::sync::LazyLock;

use regex::Regex;

/// Lines before the failure that are scored in full; earlier lines count
/// only when they look like an error on their own ([`STRONG`]).
const WINDOW: usize = 4000;
/// Longest explanation shown in a title, in chars.
const MAX_WHY: usize = 240;

/// What the streaming reader puts where it left lines out of its excerpt:
/// `[Container]` (so no rule, walk or score takes it for output) and a
/// newline (which no log line holds), then how many lines it stands for.
pub(crate) const GAP: &str = "[Container]\n";

/// How many log lines `l` stands for: 1, or a gap's count.
fn span(l: &str) -> usize {
    l.strip_prefix(GAP)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// A line the fallback may score although it is more than [`WINDOW`] lines
/// before the failure.
pub(crate) fn strong(line: &str) -> bool {
    let b = line.as_bytes();
    may_be_strong(b) && STRONG.is_match(b)
}

/// Whether [`STRONG`] can match `b` at all, without running it (most log
/// lines cannot, and the regex scans the whole line to say so): one of its
/// branches must find its start here. Looser than the regex, never
/// stricter (`strong_gate_never_rejects_a_match` compares them).
fn may_be_strong(b: &[u8]) -> bool {
    // `^E\s{2,}` (case-insensitive, like the rest).
    if matches!(b.first(), Some(b'e' | b'E')) {
        return true;
    }
    // `^\s*(?:error|fatal|panic|traceback|fail|not ok \d)`; `\s` is ASCII
    // space, tab, \n, \v, \f, \r.
    let head = match b
        .iter()
        .position(|&c| !(c.is_ascii_whitespace() || c == 0x0b))
    {
        Some(k) => &b[k..],
        None => return false,
    };
    let starts = |w: &[u8]| head.len() >= w.len() && head[..w.len()].eq_ignore_ascii_case(w);
    if [
        &b"error"[..],
        b"fatal",
        b"panic",
        b"traceback",
        b"fail",
        b"not ok ",
    ]
    .iter()
    .any(|w| starts(w))
    {
        return true;
    }
    // The other branches hold `error` or `exception`, which start with an
    // `e`: `error:` / `error[..]:` / `exception:` / `exception[..]:`,
    // `: error`, `error TS\d`.
    memchr::memchr2_iter(b'e', b'E', b).any(|i| {
        let at = |w: &[u8], k: usize| {
            b.len() >= k + w.len() && b[k..k + w.len()].eq_ignore_ascii_case(w)
        };
        let next = |k: usize| b.get(k).is_some_and(|&c| c == b':' || c == b'[');
        // The byte after the `e` rules out most of them.
        match b.get(i + 1).map(|c| c | 0x20) {
            Some(b'r') if at(b"error", i) => {
                next(i + 5) || (i >= 2 && &b[i - 2..i] == b": ") || at(b" ts", i + 5)
            }
            Some(b'x') => at(b"exception", i) && next(i + 9),
            _ => false,
        }
    })
}

/// Lines more than this far before the failure are scored only when
/// [`strong`].
pub(crate) const SCORED_WINDOW: usize = WINDOW;

fn re(p: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(p).expect("built-in fallback regex")
}

static STRONG: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    regex::bytes::RegexBuilder::new(
        r"(?i)^\s*(?:error|fatal|panic|traceback|fail|not ok \d)|\b(?:error|exception)(?:\[\w+\])?:|: error\b|\berror TS\d|^E\s{2,}",
    )
    .unicode(false)
    .build()
    .expect("built-in fallback regex")
});
/// `KeyError: 'x'`, `java.lang.NullPointerException: ...`, `MemoryError`.
static EXC: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:[\w$]+\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure)\b(?::|$)")
});
/// `file.ext:12` / `file.ext(12,3)` / `file.ext line 12`: a located message.
static LOC: LazyLock<Regex> = LazyLock::new(|| re(r"\.\w{1,5}(?::\d+|\(\d+,\d+\)| line \d+)"));
/// A checker's diagnostic, `path:12: message` or `path:12:3: message`
/// (`Dockerfile:1: unpinned base image`): telling whatever its words.
static DIAG: LazyLock<Regex> =
    LazyLock::new(|| re(r"^[\w./-]*[A-Za-z][\w./-]*:\d+(?::\d+)?:\s+\S"));
/// A count of what went wrong (`3 pages checked, 1 broken`, `2 errors`):
/// a summary of the lines that say it.
static COUNTED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b\d+ (?:\w+ )?(?:broken|failed|failures?|errors?|problems?|violations?|issues?|mismatch(?:es)?|checked)\b",
    )
});

const WORDS: &[&str] = &[
    "error",
    "fatal",
    "fail",
    "exception",
    "cannot",
    "can't",
    "could not",
    "couldn't",
    "unable",
    "denied",
    "not found",
    "no such",
    "refused",
    "timed out",
    "timeout",
    "killed",
    "segmentation",
    "abort",
    "assert",
    "invalid",
    "unauthorized",
    "forbidden",
    "expired",
    "missing",
    "undefined",
    "unexpected",
    "not allowed",
    "conflict",
    "unbound",
    "syntax",
    "permission",
    "not ok",
    "panic",
    "traceback",
    "unreachable",
    "does not exist",
    "no matching",
    "unsupported",
    "expected",
    "problem",
    "unknown",
    "unrecognized",
    "must be",
    "is required",
    "not set",
    "violation",
    "broken",
    "mismatch",
    "does not match",
    "did not match",
    "rejected",
    "unpinned",
    "not pinned",
    "exceed",
    "too large",
    "too big",
    "too long",
    "over budget",
    "out of date",
    "outdated",
    "not supported",
    "incompatible",
    "duplicate",
    "already exists",
    "insufficient",
    "✗",
    "✕",
    "×",
    "●",
];

/// Lines that look alarming and are not the cause.
const NOISE: &[&str] = &[
    "0 errors",
    "0 error(s)",
    "0 failed",
    "0 failing",
    "0 problems",
    "no errors",
    "no issues found",
    "deprecat",
    "a complete log of this run can be found",
    "no matching artifact paths",
    "error handling",
    "retrying",
    "will be retried",
    "to see the full stack trace",
    "re-run maven",
    "for more information about the errors",
    "-> [help 1]",
    "[help 1]",
    "run with --stacktrace",
    "run with --info",
    "get more help at",
    "rustc --explain",
    "for more information about this error",
];

/// Summaries of an error printed above: kept, but below the error itself.
const SUMMARY: &[&str] = &[
    "previous error",
    "aborting due to",
    "could not compile",
    "make: ***",
    "make[",
    "lifecycle script",
    "command failed",
    "npm error path",
    "npm error workspace",
    "npm error location",
    "npm err! path",
    "elifecycle",
    "exited with",
    "exit code",
    "exit status",
    "test failed, to rerun",
    "test result: failed",
    "tests failed",
    "failed tests",
    "build failure",
    "failed to execute goal",
    "problems (",
    "problem (",
    "failures:",
    "short test summary",
    "errors during collection",
    "interrupted:",
    "failed in ",
    "fail\t",
    "failed (",
    "failing",
    "# fail",
    "# pass",
    "test suites:",
    "tests:",
    "test files",
    "error: 1 ",
    "warning: build failed",
    "most recent call last",
];

const PASSING: &[&str] = &["ok ", "✓", "✔", "pass ", "pass\t", "--- pass", "# pass"];

/// How much a line explains a failure (0: not at all).
pub(crate) fn score(line: &str) -> f32 {
    let t = line.trim();
    if t.chars().count() < 3 || t.starts_with("[Container]") {
        return 0.0;
    }
    let l = t.to_lowercase();
    if NOISE.iter().any(|n| l.contains(n)) {
        return 0.0;
    }
    if PASSING.iter().any(|p| l.starts_with(p)) || l.ends_with("... ok") || l.ends_with(" passed") {
        return 0.0;
    }
    let mut s = 0.0f32;
    if STRONG.is_match(t.as_bytes()) {
        s += 3.0;
    }
    if EXC.is_match(t) {
        s += 3.0;
    }
    let words = WORDS.iter().filter(|w| l.contains(*w)).count();
    s += (words.min(3)) as f32;
    if s > 0.0 && LOC.is_match(t) {
        s += 1.0;
    }
    if DIAG.is_match(t) {
        s += 2.0;
    }
    if s == 0.0 {
        return 0.0;
    }
    if SUMMARY.iter().any(|p| l.contains(p)) || l.starts_with("found ") || COUNTED.is_match(t) {
        s *= 0.35;
    }
    if l.starts_with("at ") || l.starts_with("file \"") || l.starts_with("^") || l.starts_with("|")
    {
        s *= 0.3;
    }
    if l.starts_with("warn")
        || l.starts_with("npm warn")
        || l.starts_with("[warn")
        || l.starts_with("[warning]")
        || l.contains("warning:") && !l.contains("error")
    {
        s *= 0.2;
    }
    s
}

/// A headline the explanation of which is the line below it (`Error:
/// Failed to read variables file` then `Given variables file x does not
/// exist.`): both, joined; else the line itself.
pub(crate) fn with_detail(lines: &[String], i: usize, to: usize) -> String {
    let head = lines[i].trim();
    let headline = head.starts_with("Error:") || head.starts_with("error:") || head.ends_with(':');
    match line_below(lines, i, to).filter(|_| headline) {
        Some(n) => format!("{}: {n}", head.trim_end_matches(':')),
        None => head.to_owned(),
    }
}

/// The line that goes on from line `i` (before `to`): the next non-empty
/// one within three, unless it is the runner's, another error or warning,
/// or a stack frame.
pub(crate) fn line_below(lines: &[String], i: usize, to: usize) -> Option<&str> {
    let n = lines
        .get(i + 1..to.min(lines.len()))?
        .iter()
        .take(3)
        .map(|l| l.trim())
        .find(|l| !l.is_empty())?;
    let lower = n.to_ascii_lowercase();
    let other = n.starts_with("[Container]")
        || lower.starts_with("error")
        || lower.starts_with("warning")
        || n.starts_with("at ");
    (!other).then_some(n)
}

/// The lines of `lines[from..to]` that most likely explain a failure at
/// `to`, best first, as (line index, score); at most `n`.
pub(crate) fn explain(lines: &[String], from: usize, to: usize, n: usize) -> Vec<(usize, f32)> {
    let to = to.min(lines.len());
    let from = from.min(to);
    // In an excerpt, the lines a gap stands for count in the distance.
    let mut left_out: usize = lines[from..to].iter().map(|l| span(l) - 1).sum();
    let mut scored: Vec<(usize, f32)> = Vec::new();
    // Inside a boxed warning (Terraform's `╷ │ Warning: … ╵`): not the cause.
    let mut warning_box = false;
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        left_out -= span(line) - 1;
        let d = to - i + left_out;
        if line.starts_with('│') || line.starts_with('╷') {
            if line.starts_with("│ Warning:") {
                warning_box = true;
            }
            if warning_box {
                continue;
            }
        } else {
            warning_box = false;
        }
        if d > WINDOW && !strong(line) {
            continue;
        }
        let s = score(line);
        if s <= 0.0 {
            continue;
        }
        let d = d as f32;
        scored.push((i, s + 1.2 / (1.0 + d / 8.0)));
    }
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
    let mut out: Vec<(usize, f32)> = Vec::new();
    let best = scored.first().map_or(0.0, |b| b.1);
    for (i, s) in scored {
        // Only lines nearly as telling as the best one.
        if out.len() >= n || s < best * 0.5 {
            break;
        }
        if out.iter().any(|(j, _)| lines[*j].trim() == lines[i].trim()) {
            continue;
        }
        out.push((i, s));
    }
    out
}

/// A format checker (`terraform fmt -check`, `gofmt -l`, `prettier
/// --check`, `black --check`) lists the files it would change, one a line:
/// those files, when `cmd` is one.
pub(crate) fn unformatted_files(
    cmd: &str,
    lines: &[String],
    from: usize,
    to: usize,
) -> Vec<String> {
    if !FORMAT_CMD.is_match(cmd) {
        return Vec::new();
    }
    let to = to.min(lines.len());
    lines[from.min(to)..to]
        .iter()
        .map(|l| l.trim())
        .filter(|l| PATH_LINE.is_match(l))
        .take(5)
        .map(str::to_owned)
        .collect()
}

/// `cmd` is a format checker (see [`unformatted_files`]).
pub(crate) fn format_cmd(cmd: &str) -> bool {
    FORMAT_CMD.is_match(cmd)
}

/// `l` (trimmed) is a path a format checker lists.
pub(crate) fn path_line(l: &str) -> bool {
    PATH_LINE.is_match(l.trim())
}

/// `git diff --exit-code` (a check that generated files are committed):
/// the files that differ.
pub(crate) fn changed_files(cmd: &str, log: &[String], from: usize, to: usize) -> Vec<String> {
    if !(cmd.contains("git diff") && cmd.contains("--exit-code")) {
        return Vec::new();
    }
    log[from.min(to)..to.min(log.len())]
        .iter()
        .filter_map(|l| l.strip_prefix("diff --git a/"))
        .filter_map(|r| r.split_once(" b/").map(|(a, _)| a.to_owned()))
        .take(5)
        .collect()
}

static FORMAT_CMD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:terraform|tofu) fmt\b.*-check|\bgofmt\b.*-l|\bprettier\b.*(?:--check|-c\b|--list-different|-l\b)|\bblack\b.*--check",
    )
});
static PATH_LINE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:\[warn\] )?[\w./-]+\.(?:tf|tfvars|hcl|go|js|jsx|ts|tsx|mjs|cjs|json|css|scss|md|ya?ml|py|html)$",
    )
});

/// The last non-blank, non-framing line of `lines[from..to]`.
pub(crate) fn last_output(lines: &[String], from: usize, to: usize) -> Option<usize> {
    let to = to.min(lines.len());
    (from.min(to)..to)
        .rev()
        .find(|&i| !lines[i].trim().is_empty() && !lines[i].starts_with("[Container]"))
}

/// How many non-blank, non-framing lines `lines[from..to]` holds.
pub(crate) fn output_lines(lines: &[String], from: usize, to: usize) -> usize {
    let to = to.min(lines.len());
    lines[from.min(to)..to]
        .iter()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("[Container]"))
        .count()
}

/// `s` cut to `max` chars (on a char boundary), with an ellipsis.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

pub(crate) fn clip_why(s: &str) -> String {
    clip(s, MAX_WHY)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gate in front of [`STRONG`] says yes to every line the regex
    /// matches: all strings of up to 3 pieces that make or break its
    /// branches, and 200,000 longer ones drawn from them.
    #[test]
    fn strong_gate_never_rejects_a_match() {
        let pieces = [
            "",
            " ",
            "\t",
            "\u{b}",
            "\u{c}",
            "\r",
            "E",
            "e",
            "x",
            "_",
            "é",
            ":",
            ": ",
            "[",
            "]",
            "E0308]",
            "error",
            "ERROR",
            "Error",
            "errors",
            "eRRoR",
            "exception",
            "EXCEPTION",
            "Exception",
            "fatal",
            "FATAL",
            "panic",
            "Traceback",
            "fail",
            "FAIL",
            "not ok ",
            "NOT OK ",
            "1",
            " TS",
            " ts",
            "2322",
            "w",
        ];
        let mut checked = 0;
        let mut matched = 0;
        let mut check = |s: &str| {
            let m = STRONG.is_match(s.as_bytes());
            assert!(!m || may_be_strong(s.as_bytes()), "gate rejects {s:?}");
            assert_eq!(strong(s), m, "{s:?}");
            checked += 1;
            matched += usize::from(m);
        };
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    check(&format!("{a}{b}{c}"));
                }
            }
        }
        let mut r: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..200_000 {
            let mut s = String::new();
            for _ in 0..4 + r % 5 {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                s.push_str(pieces[(r % pieces.len() as u64) as usize]);
            }
            check(&s);
        }
        assert!(
            matched > 10_000 && matched < checked / 2,
            "{matched} of {checked}"
        );
        // The noise of a passing build does not reach the regex.
        for l in [
            "  src/x.rs: checked 3 items, 0 errors, 0 warnings",
            "DEBUG retrying on error=false attempt=1 of 3 (error handling enabled)",
            "warning: unused variable: `retry_error_count`",
            "   412 | fn handle(req: Request) -> Result<Response, Error> {",
        ] {
            assert!(!may_be_strong(l.as_bytes()), "{l}");
        }
    }

    #[test]
    fn scores_errors_above_noise() {
        assert!(score("KeyError: 'ARTIFACT_BUCKET'") > score("Traceback (most recent call last):"));
        assert!(score("src/a.ts(2,9): error TS2322: Type 'string' is not assignable") > 4.0);
        assert_eq!(
            score("  src/x.rs: checked 3 items, 0 errors, 0 warnings"),
            0.0
        );
        assert_eq!(score("test error_path_is_handled ... ok"), 0.0);
        assert_eq!(
            score("npm warn deprecated inflight@1.0.6: not supported"),
            0.0
        );
        assert_eq!(
            score("[Container] Phase complete: BUILD State: FAILED"),
            0.0
        );
        assert!(
            score("error: could not compile `app` due to 1 previous error")
                < score("error[E0308]: mismatched types")
        );
        assert_eq!(score("é"), 0.0);
    }

    #[test]
    fn explain_prefers_near_errors_and_clip_keeps_chars() {
        let l: Vec<String> = ["a", "error: first", "x", "y", "fatal: second", "z"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let e = explain(&l, 0, 6, 2);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].0, 4);
        assert_eq!(last_output(&l, 0, 6), Some(5));
        assert_eq!(clip("ééé", 2), "éé…");
        assert_eq!(clip("ab", 2), "ab");
    }
}
