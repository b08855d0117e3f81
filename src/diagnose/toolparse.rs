//! More of [`super::parsers`]: package managers' reports (npm's wrapped
//! paragraphs, pnpm's nested `×` / `├─▶` causes, a missing script or bin
//! for npm / yarn / pnpm, a script's own output above the wrapper's
//! summary), compilers' source excerpts and the order of type checkers'
//! errors.

use std::sync::LazyLock;

use regex::Regex;

use super::Vars;
use super::fallback::{self, clip};
use super::parsers::{following, get, set};

fn re(p: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(p).expect("built-in parser regex")
}

static NPM_LINE: LazyLock<Regex> = LazyLock::new(|| re(r"^npm (?:ERR!|error) ?(.*)$"));
/// gcc / clang source excerpt: `   12 |     int x = y;` (gcc 9+, clang 14+).
static SOURCE_EXCERPT: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(\d+) \|(.*)$"));

static URL_HOST: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b[a-z][a-z0-9+.-]*://(?:[^@/\s]+@)?([\w.-]+(?::\d+)?)"));

/// A line without the tree or box drawing in front of it (miette's
/// `│ ├─▶ ╰─▶ ×`, Terraform's `│ ╷ ╵`).
pub(crate) fn untree(l: &str) -> &str {
    l.trim_start_matches(|c: char| {
        c.is_whitespace() || matches!(c, '│' | '├' | '╰' | '─' | '▶' | '×' | '╷' | '╵' | '|')
    })
    .trim_end()
}

/// The host (and port) of the URL on line `at` or the few lines above it
/// (a report that names the URL before the error it got).
pub(crate) fn url_host(log: &[String], at: usize) -> Option<String> {
    (at.saturating_sub(4)..=at).rev().find_map(|i| {
        let c = URL_HOST.captures(&log[i])?;
        Some(c[1].to_owned())
    })
}

/// The JavaScript package manager a command runs (`npm` when none is
/// named: the pattern's own wording decides then).
fn js_tool(cmd: &str) -> &'static str {
    let words: Vec<&str> = cmd
        .split(|c: char| c.is_whitespace() || c == '/' || c == ';' || c == '&' || c == '|')
        .collect();
    for (w, t) in [
        ("pnpm", "pnpm"),
        ("pnpx", "pnpm"),
        ("yarn", "yarn"),
        ("npx", "npx"),
        ("npm", "npm"),
    ] {
        if words.contains(&w) {
            return t;
        }
    }
    ""
}

/// miette's report (pnpm 10+, many Rust CLIs): `× what failed`, then
/// `├─▶ cause` lines down to `╰─▶ root cause`, wrapped lines indented under
/// `│`, and `help: ...`. Returns (message, root cause, help).
pub(crate) fn miette(log: &[String], at: usize) -> (String, String, String) {
    let mut msg = String::new();
    let mut causes: Vec<String> = Vec::new();
    let mut help = String::new();
    // Under the root cause (`╰─▶`) its wrapped lines are indented, not boxed.
    let mut in_root = false;
    for (_, l) in following(log, at, 40) {
        let t = l.trim();
        if in_root && !t.is_empty() && l.starts_with(' ') && !t.starts_with("help:") {
            if let Some(last) = causes.last_mut() {
                last.push(' ');
                last.push_str(t);
            }
            continue;
        }
        in_root = t.starts_with("╰─▶");
        if let Some(m) = t.strip_prefix('×') {
            if !msg.is_empty() {
                break;
            }
            msg = m.trim().to_owned();
        } else if let Some(c) = t.strip_prefix("├─▶").or(t.strip_prefix("╰─▶")) {
            causes.push(c.trim().to_owned());
        } else if let Some(c) = t.strip_prefix('│') {
            // A wrapped message or cause goes on.
            let c = c.trim();
            if !c.is_empty() {
                let last = causes.last_mut().unwrap_or(&mut msg);
                last.push(' ');
                last.push_str(c);
            }
        } else if let Some(h) = t.strip_prefix("help:") {
            help = h.trim().to_owned();
        } else if !t.is_empty() && !msg.is_empty() && causes.is_empty() && help.is_empty() {
            // An unboxed continuation of the message.
            msg.push(' ');
            msg.push_str(t);
        } else if !t.is_empty() && !msg.is_empty() {
            break;
        }
    }
    (msg, causes.pop().unwrap_or_default(), help)
}

/// Grouped linter output (ruff `--output-format=grouped`): the file is the
/// unindented `path.py:` header above its block of `line:col CODE msg`.
pub(crate) fn grouped_file(log: &[String], at: usize) -> Option<String> {
    log.get(..at)?.iter().rev().take(500).find_map(|l| {
        let f = l.strip_suffix(':')?;
        (!l.starts_with(char::is_whitespace)
            && (f.ends_with(".py") || f.ends_with(".pyi") || f.ends_with(".ipynb")))
        .then(|| f.to_owned())
    })
}

/// A recursive pnpm run (`pnpm -r run build`, `--filter`) prefixes each
/// project's output (`packages/api build: text`) and ends the failed one
/// with `packages/api build: Failed`: that project and the line of its own
/// output that best explains the failure (the last one when none stands out).
pub(crate) fn pnpm_failed_project(log: &[String], at: usize) -> Option<String> {
    let before = log.get(at.saturating_sub(200)..at)?;
    let (fi, prefix) = before
        .iter()
        .enumerate()
        .rev()
        .take(40)
        .find_map(|(i, l)| {
            let p = l.trim_end().strip_suffix(": Failed")?;
            // `<project dir> <script>`: two words, no spaces in either.
            (p.split(' ').count() == 2 && !p.starts_with(char::is_whitespace))
                .then(|| (i, p.to_owned()))
        })?;
    let head = format!("{prefix}: ");
    let mut best: Option<(f32, &str)> = None;
    for l in before[..fi].iter().rev().take(200) {
        let Some(t) = l.strip_prefix(&head) else {
            continue;
        };
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        let s = fallback::score(t);
        if best.is_none_or(|(b, _)| s > b) {
            best = Some((s, t));
        }
    }
    Some(match best {
        Some((_, t)) => format!("{prefix} failed: {t}"),
        None => format!("{prefix} failed"),
    })
}

/// npm's message after `code X`: the first paragraph of `npm error`
/// lines that is not a field (`syscall`, `path`, ...), its wrapped lines
/// joined, without the tag some codes repeat on each line (`notarget No
/// matching version...`, `enoent Could not read...`); for a dependency
/// conflict, the dependency it could not resolve.
fn npm_message(log: &[String], at: usize) -> String {
    const FIELDS: &[&str] = &[
        "code ",
        "errno ",
        "syscall ",
        "path ",
        "A complete log",
        "Log files",
        "enoent This is related",
        "command ",
        "signal ",
        "cwd ",
    ];
    let untag = |m: &str| -> String {
        match m.split_once(' ') {
            Some((w, rest))
                if w.bytes().all(|b| b.is_ascii_lowercase())
                    && rest.starts_with(|c: char| c.is_ascii_uppercase()) =>
            {
                rest.to_owned()
            }
            _ => m.to_owned(),
        }
    };
    let lines: Vec<&str> = following(log, at, 40)
        .filter_map(|(_, l)| {
            NPM_LINE
                .captures(l)
                .map(|c| c.get(1).map_or("", |m| m.as_str()))
        })
        .map(str::trim)
        .collect();
    let mut out = String::new();
    let mut tag: Option<&str> = None;
    let mut rest = lines.iter().enumerate();
    for (_, m) in rest.by_ref() {
        let blank = m.is_empty() || *m == "enoent";
        if blank || FIELDS.iter().any(|p| m.starts_with(p)) {
            if out.is_empty() {
                continue;
            }
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let text = untag(m);
        if tag.is_none() && text.len() < m.len() {
            tag = m.split(' ').next();
        }
        let text = match tag.and_then(|t| m.strip_prefix(t)) {
            Some(r) if r.starts_with(' ') => r.trim_start().to_owned(),
            _ => text,
        };
        out.push_str(&text);
        if out.len() > 200 {
            break;
        }
    }
    if let Some((i, _)) = rest.find(|(_, m)| m.starts_with("Could not resolve dependency:"))
        && let Some(dep) = lines.get(i + 1).filter(|d| !d.is_empty())
    {
        out = format!("{out}: could not resolve {dep}");
    }
    out
}

/// mypy codes that only `--strict` (or a `warn_*` / `disallow_*` option)
/// reports: often a consequence of a real type error on the same line (an
/// unknown attribute is `Any`, and returning it is `no-any-return`).
const MYPY_STRICT_ONLY: &[&str] = &[
    "no-any-return",
    "no-untyped-def",
    "no-untyped-call",
    "no-any-unimported",
    "type-arg",
    "redundant-cast",
    "unused-ignore",
    "unused-awaitable",
    "redundant-expr",
    "truthy-bool",
    "possibly-undefined",
    "explicit-override",
    "ignore-without-code",
];

/// The output of a package.json script under the wrapper that ran it:
/// from the echo of the script (`$ cmd` for yarn, `> cmd` for npm) to the
/// wrapper's summary at `at`.
fn script_output_start(log: &[String], from: usize, at: usize) -> Option<usize> {
    (from..at)
        .rev()
        .find(|&i| {
            let l = log[i].as_str();
            l.starts_with("$ ") || (l.starts_with("> ") && !l.starts_with("> ["))
        })
        .map(|i| i + 1)
}

/// Why a wrapper (yarn's `Command failed with exit code`, npm's lifecycle
/// summary, make's `Error 1`) failed: the best line of what ran under it.
/// Inside a script's own output any error-like line counts; above an
/// unframed summary only a line that clearly reads as an error.
pub(crate) fn wrapper_why(log: &[String], from: usize, at: usize) -> Option<String> {
    if let Some(start) = script_output_start(log, from, at) {
        if let Some(&(i, _)) = fallback::explain(log, start, at, 1).first() {
            return Some(clip(log[i].trim(), 200));
        }
        // Nothing error-like: the script's last words, when it printed any.
        return (start..at)
            .rev()
            .map(|i| log[i].trim())
            .find(|l| !l.is_empty() && !l.starts_with("npm ") && !l.starts_with("error "))
            .map(|l| clip(l, 200));
    }
    fallback::explain(log, from, at, 1)
        .first()
        .filter(|(_, s)| *s >= 3.0)
        .map(|&(i, _)| clip(log[i].trim(), 200))
}

/// Yarn 2+ message codes that are progress, information or warnings.
const YARN_NOT_ERRORS: &[&str] = &[
    "0000", "0002", "0007", "0008", "0013", "0019", "0032", "0050", "0060", "0061", "0062", "0069",
    "0086",
];

/// Node's test runner, spec reporter: `✖ name (1.2ms)`, the error
/// indented under it, and in the `✖ failing tests:` list `test at
/// FILE:L:C` above the name.
fn node_spec(vars: &mut Vars, log: &[String], at: usize) {
    let test = get(vars, "test").to_owned();
    let mut lines = following(log, at, 8)
        .map(|(_, l)| l.trim())
        .filter(|t| !t.is_empty());
    let mut msg = lines
        .next()
        .filter(|t| !t.starts_with('✖') && !t.starts_with('✔') && !t.starts_with('ℹ'))
        .unwrap_or_default()
        .to_owned();
    // `Expected values to be strictly equal:` then `1 !== 2`.
    if msg.ends_with(':')
        && let Some(next) = lines.next().filter(|t| !t.starts_with("at "))
    {
        msg = format!("{msg} {next}");
    }
    let head = log[at].trim();
    let location = log
        .iter()
        .enumerate()
        .skip(at + 1)
        .find(|(i, l)| l.trim() == head && *i > 0 && log[i - 1].starts_with("test at "))
        .and_then(|(i, _)| {
            let loc = log[i - 1].trim_start_matches("test at ").trim();
            let loc = loc.rsplit_once(':').map_or(loc, |(a, _)| a);
            let file = loc.rsplit(['/', '\\']).next()?;
            Some(format!(" at {file}"))
        })
        .unwrap_or_default();
    if msg.ends_with("subtest failed") || msg.ends_with("subtests failed") || msg.is_empty() {
        // A suite around the failing test.
        set(vars, "_confidence", "0.4");
    }
    set(vars, "test", test);
    set(vars, "location", location);
    set(vars, "msg", clip(&msg, 200));
}

pub(crate) fn enrich(id: &str, vars: &mut Vars, log: &[String], at: usize, cmd: &str) -> bool {
    match id {
        "test.node" => node_spec(vars, log, at),
        "k8s.server_error" => {
            let msg = get(vars, "msg");
            if [
                "connection refused",
                "dial tcp",
                "i/o timeout",
                "no such host",
            ]
            .iter()
            .any(|p| msg.contains(p))
            {
                set(vars, "reason", "cluster API unreachable");
            }
            if get(vars, "msg").starts_with("no matches for kind") {
                set(
                    vars,
                    "reason",
                    "kind not served by the cluster (CRD not installed or API version removed)",
                );
            }
            if let (Some(k), Some(n)) = (vars.get("kind").cloned(), vars.get("name").cloned()) {
                set(vars, "file_part", format!(" ({k} {n})"));
            }
            if let Some(f) = vars.get("file").or(vars.get("file2")).cloned() {
                set(vars, "file_part", format!(" in {f}"));
            }
        }
        "shell.syntax" => {
            if let Some(l) = vars.get("line").cloned() {
                set(vars, "at", format!(" at line {l}"));
            }
            let msg = get(vars, "msg").trim().to_owned();
            if let Some(eof) = vars.get("eof").cloned() {
                set(vars, "msg", format!(": {eof}"));
            } else if !msg.is_empty() {
                // In the shell's own words: dash's `Syntax error: "(" unexpected`,
                // bash's `syntax error near unexpected token`.
                let word = if log[at].contains("Syntax error: ") {
                    "Syntax error:"
                } else {
                    "syntax error"
                };
                set(vars, "msg", format!(": {word} {msg}"));
            }
        }
        "aws.no_credentials" => {
            // The tool's own words, which an operator searches for.
            if let Some(w) = vars.get("said").cloned() {
                set(vars, "said_part", format!(": {w}"));
            }
            if let Some(p) = vars.get("profile").cloned() {
                set(
                    vars,
                    "profile_part",
                    format!(" (the config profile ({p}) could not be found)"),
                );
            }
        }
        "shell.bad_interpreter" if vars.contains_key("cr") => {
            set(vars, "crlf", " (the script has Windows CRLF line endings)");
            set(
                vars,
                "crlf_fix",
                ": the script was saved with CRLF line endings, so the kernel looks for an interpreter whose name ends in \\r; convert it (`sed -i 's/\\r$//' script`, or `* text=auto eol=lf` in .gitattributes)",
            );
        }
        "yarn.berry" if YARN_NOT_ERRORS.contains(&get(vars, "code")) => return false,
        "npm.missing_script" => {
            let tool = match js_tool(cmd) {
                "" if log[at].contains("ERR_PNPM") => "pnpm",
                "" if log[at].starts_with("error ") => "yarn",
                "" => "npm",
                t => t,
            };
            let script = get(vars, "script").to_owned();
            // `pnpm exec X` / `npx X` / `yarn X` (not a script): a bin.
            let exec = cmd
                .split_whitespace()
                .skip_while(|w| !matches!(*w, "exec" | "dlx" | "npx" | "pnpx"))
                .nth(1)
                .is_some_and(|w| w == script);
            set(vars, "tool", tool);
            if exec {
                set(vars, "kind", "command");
                set(
                    vars,
                    "problem",
                    "not found (no such bin in node_modules/.bin)",
                );
            }
        }
        "git.submodule" => {
            // The reason is git's `fatal:` line just above (a missing
            // repository, authentication, an unknown commit).
            let why = log
                .get(at.saturating_sub(3)..at)
                .unwrap_or_default()
                .iter()
                .rev()
                .find_map(|l| {
                    let m = l.strip_prefix("fatal: ")?;
                    (!m.starts_with("clone of ")).then(|| m.trim().to_owned())
                });
            // `clone of URL into submodule path '/abs/dir/vendor/x'` is
            // followed by `Failed to clone 'vendor/x'`: the path as written
            // in .gitmodules.
            let path = get(vars, "path").to_owned();
            if path.starts_with('/')
                && let Some(rel) = following(log, at, 3).find_map(|(_, l)| {
                    let r = l.strip_prefix("Failed to clone '")?.split('\'').next()?;
                    path.ends_with(&format!("/{r}")).then(|| r.to_owned())
                })
            {
                set(vars, "path", rel);
            }
            match (why, vars.get("url").cloned()) {
                (Some(w), _) => set(vars, "url_part", format!(": {}", clip(&w, 160))),
                (None, Some(u)) => set(vars, "url_part", format!(" (clone of {u} failed)")),
                _ => {}
            }
        }
        "pnpm.error" => {
            if let Some(why) = pnpm_failed_project(log, at) {
                set(vars, "msg", clip(&why, 220));
                return true;
            }
            let (msg, cause, help) = miette(log, at);
            let mut text = get(vars, "msg").trim().to_owned();
            if text.is_empty() {
                text = msg;
            }
            if !cause.is_empty() && !text.contains(&cause) {
                text = format!("{text} → {cause}");
            }
            if text.is_empty() {
                text = help;
            }
            set(vars, "msg", clip(&text, 220));
        }
        "npm.error" => {
            let mut m = npm_message(log, at);
            // `npm ci` out of sync: the package that differs is listed
            // below (`Invalid: lock file's x@1.1.0 does not satisfy
            // x@1.3.0`, `Missing: y@2.0.0 from lock file`).
            if let Some(d) = following(log, at, 12).find_map(|(_, l)| {
                let t = l
                    .trim_start_matches("npm error")
                    .trim_start_matches("npm ERR!")
                    .trim();
                (t.starts_with("Invalid: ") || t.starts_with("Missing: ")).then(|| t.to_owned())
            }) && !m.contains(&d)
            {
                m = format!("{} {d}", m.trim_end());
            }
            if !m.is_empty() {
                set(vars, "msg", format!(": {}", clip(&m, 240)));
            }
        }
        // Below the other errors of the same run (priority 80).
        "lint.mypy" if MYPY_STRICT_ONLY.contains(&get(vars, "code")) => {
            set(vars, "_priority", "79");
        }
        "compile.c" => {
            let msg = get(vars, "msg").replace(['‘', '’'], "'");
            set(vars, "msg", msg);
            // The source line under the message names what the message
            // only points at (`storage size of 'c'` → `struct config c;`).
            let excerpt = following(log, at, 3).find_map(|(_, l)| {
                let c = SOURCE_EXCERPT.captures(l)?;
                let code = c[2].trim();
                (c[1] == *get(vars, "line") && !code.is_empty()).then(|| code.to_owned())
            });
            if let Some(code) = excerpt {
                set(vars, "excerpt", format!(" (`{}`)", clip(&code, 80)));
            }
        }
        _ => return super::toolmore::enrich(id, vars, log, at, cmd),
    }
    true
}
