//! More of [`super::parsers`]: what a catalogue match needs from the lines
//! around it for shell `[` tests, jobs bash reports killed, zip, signature
//! checks, tool configuration files that do not load (ESLint, Vite /
//! Vitest), javac's `-Werror`, TAP from other runners than node's, Go's
//! race detector and several failing tests.

use std::sync::LazyLock;

use regex::Regex;

use super::Vars;
use super::fallback::clip;
use super::parsers::{base, following, get, set};

fn re(p: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(p).expect("built-in parser regex")
}

/// javac's own warning line: `src/A.java:6: warning: [unchecked] …`.
static JAVAC_WARNING: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?P<file>\S+\.java):(?P<line>\d+): warning: (?P<msg>.+)$"));
/// A location in a code frame or a message: `╭─[ vite.config.mjs:6:3 ]`,
/// `vite.config.ts:12:4: ERROR`.
static JS_AT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:\(|\[ ?|at )(?P<file>[^\s()\[\]]+\.[cm]?[jt]sx?):(?P<line>\d+)(?::\d+)?")
});
/// A Go compiler error: `./main.go:7:2: retries declared but not used`.
static GO_ERROR: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?P<loc>\S+\.go:\d+(?::\d+)?): (?P<msg>.+)$"));
/// What the API server refused: `deployments.apps "checkout" is forbidden: …`.
static FORBIDDEN: LazyLock<Regex> =
    LazyLock::new(|| re(r#"(?P<what>[\w.-]+ "[^"]*" is forbidden: .+)$"#));
/// A frame of a Go race report: `  example.com/p.(*T).Hit()` then its
/// `      /src/h.go:7 +0x76` line.
static GO_FRAME_FILE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s+\S+/(?P<file>[^/\s]+\.go):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$"));

pub(crate) fn enrich(id: &str, vars: &mut Vars, log: &[String], at: usize, cmd: &str) -> bool {
    match id {
        "shell.test_builtin" => {
            // `[: : integer expression expected`: an empty operand.
            let operand = get(vars, "operand").to_owned();
            let note = match operand.trim() {
                "" if vars.contains_key("operand") => " (the value is empty)".to_owned(),
                "" => String::new(),
                o => format!(" (value `{}`)", clip(o, 60)),
            };
            set(vars, "note", note);
        }
        "shell.killed" => {
            // bash's job report names what was killed: `x.sh: line 3:
            // 2683 Killed   timeout --kill-after=1 2 python3 m.py`.
            let Some(what) = vars.get("what").map(|w| w.trim().to_owned()) else {
                return true;
            };
            let place = match (vars.get("script"), vars.get("line")) {
                (Some(s), Some(l)) => format!(" at {s}:{l}"),
                _ => String::new(),
            };
            let why = if what.starts_with("timeout ") {
                ", killed by `timeout` at its limit".to_owned()
            } else {
                ", likely out of memory".to_owned()
            };
            set(
                vars,
                "killed",
                format!(": `{}`{place}{why}", clip(&what, 120)),
            );
        }
        "config.eslint_unreadable" | "config.vite_unloadable" => {
            // The parser's own error follows within a few lines: `Error:
            // Expected ',' …`, or `[PARSE_ERROR] Unexpected token` and a
            // code frame with the position.
            let mut detail = String::new();
            let mut place = String::new();
            for (_, l) in following(log, at, 16) {
                let t = l.trim();
                if t.starts_with("[Container]") || t.starts_with("at ") {
                    break;
                }
                if detail.is_empty()
                    && (t.starts_with('[') && t.contains("] ") && !t.starts_with("[ ")
                        || t.starts_with("Error: ") && !t.starts_with("Error: Build failed with"))
                {
                    detail = t.trim_start_matches("Error: ").to_owned();
                    continue;
                }
                if !detail.is_empty()
                    && place.is_empty()
                    && let Some(c) = JS_AT.captures(t)
                {
                    place = format!(" at {}:{}", base(&c["file"]), &c["line"]);
                }
            }
            if !detail.is_empty() {
                set(vars, "detail", format!(": {}{place}", clip(&detail, 160)));
            }
            set(vars, "file", base(get(vars, "file")).to_owned());
        }
        "javac.werror" => {
            // The warnings -Werror turned into the error come above it.
            let from = at.saturating_sub(200);
            let first = log[from..at].iter().find_map(|l| JAVAC_WARNING.captures(l));
            let Some(c) = first else { return false };
            set(
                vars,
                "warning",
                format!(
                    " at {}:{}: {}",
                    base(&c["file"]),
                    &c["line"],
                    clip(&c["msg"], 160)
                ),
            );
        }
        "test.tap" => {
            // mocha's TAP reporter: the message and the stack come indented
            // under `not ok N title`, without node's YAML block.
            let block: Vec<&str> = following(log, at, 20)
                .map(|(_, l)| l)
                .take_while(|l| l.starts_with(' '))
                .collect();
            let msg = block
                .iter()
                .map(|l| l.trim())
                .find(|t| !t.is_empty() && !t.starts_with("---"))
                .unwrap_or_default()
                .to_owned();
            let place = super::parsers::js_location(log, at, block.len())
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            let runner = if cmd.contains("mocha") {
                "mocha"
            } else {
                "TAP"
            };
            set(vars, "runner", runner);
            set(vars, "location", place);
            set(
                vars,
                "msg",
                if msg.is_empty() {
                    "see the log".to_owned()
                } else {
                    clip(&msg, 200)
                },
            );
        }
        "tool.miette_report" => {
            let (_, cause, help) = super::toolparse::miette(log, at);
            let root = if cause.is_empty() { help } else { cause };
            if !root.is_empty() {
                set(vars, "cause", format!(" → {}", clip(&root, 220)));
            }
            let tool = cmd.split_whitespace().next().unwrap_or("the command");
            set(vars, "tool", base(tool).to_owned());
        }
        "aws.endpoint_unreachable" if log[at].contains("Could not connect to the endpoint URL") => {
            set(vars, "said", ": Could not connect to the endpoint URL");
        }
        "docker.no_daemon" => {
            let said = if log[at].contains("Cannot connect to the Docker daemon") {
                "Cannot connect to the Docker daemon"
            } else {
                "Failed to connect to the docker API"
            };
            set(vars, "said", said);
        }
        "go.version_too_old" if log[at].starts_with("note: ") => {
            // The note follows a compile error, which is the cause itself
            // (the newer `go` line may or may not be why).
            let from = at.saturating_sub(40);
            let first = log[from..at]
                .iter()
                .find_map(|l| GO_ERROR.captures(l.trim()));
            if let Some(c) = first {
                set(
                    vars,
                    "first",
                    format!(
                        "Go compile error at {}: {}; ",
                        &c["loc"],
                        clip(&c["msg"], 160)
                    ),
                );
            }
        }
        "k8s.forbidden" if get(vars, "msg").trim_end().ends_with(':') => {
            // `error when retrieving current configuration of:` then the
            // object, then `from server for: "x.yaml": … is forbidden: …`.
            let said = following(log, at, 6)
                .find_map(|(_, l)| FORBIDDEN.captures(l).map(|c| c["what"].to_owned()));
            if let Some(w) = said {
                set(vars, "msg", clip(&w, 220));
            }
        }
        // dash says `x.sh: 3: [[: not found`, zsh `command not found: x`.
        "shell.command_not_found" if log[at].trim_end().ends_with(": not found") => {
            set(vars, "said", "not found");
        }
        "shell.unbound" => {
            if let Some(l) = vars.get("line").cloned() {
                set(vars, "at_line", format!(":{l}"));
            }
        }
        "git.fatal" if cmd.contains("git ") || cmd.starts_with("git") => {
            set(vars, "cmd_part", format!(" (`{}`)", clip(cmd, 120)));
        }
        "aws.cli_usage" => {
            let sub: Vec<&str> = cmd.split_whitespace().skip(1).take(2).collect();
            if !sub.is_empty() {
                set(vars, "cmd", sub.join(" "));
            }
        }
        "k8s.webhook_denied" => {
            let inline = get(vars, "msg").trim().to_owned();
            // Kyverno: a blank line, `resource … was blocked …`, then
            // `policy-name:` and `  rule: 'validation error: …'`.
            let policy = following(log, at, 10)
                .map(|(_, l)| l.trim_end())
                .collect::<Vec<_>>()
                .windows(2)
                .find_map(|w| {
                    let name = w[0].strip_suffix(':')?;
                    let ok = !name.is_empty()
                        && !name.contains(' ')
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    let why = w[1]
                        .trim()
                        .split_once(": ")
                        .map(|(_, m)| m.trim_matches('\''));
                    ok.then(|| match why {
                        Some(m) => format!("{name}: {m}"),
                        None => name.to_owned(),
                    })
                });
            let detail = match policy {
                Some(p) => format!(": policy {}", clip(&p, 200)),
                None if !inline.is_empty() => format!(": {}", clip(&inline, 200)),
                None => String::new(),
            };
            set(vars, "detail", detail);
        }
        // openssl 3 names the file above the bare `Unable to load …`.
        "openssl.load" if get(vars, "msg").to_ascii_lowercase().starts_with("unable") => {
            let named = log[at.saturating_sub(4)..at]
                .iter()
                .rev()
                .find(|l| l.starts_with("Could not ") && l.contains(" from "));
            if let Some(n) = named {
                set(vars, "msg", clip(n.trim(), 200));
            }
        }
        // The registry URL escapes a scope's slash: `@acme%2fpush-sdk`.
        "npm.not_found" => {
            let pkg = get(vars, "pkg").replace("%2f", "/").replace("%2F", "/");
            set(vars, "pkg", pkg.replace("%40", "@"));
        }
        "rust.panic" if !vars.contains_key("msg") => {
            let msg = following(log, at, 2)
                .map(|(_, l)| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with("stack backtrace"))
                .unwrap_or("see the log");
            set(vars, "msg", clip(msg, 200));
        }
        "go.generate" => {
            // The generator's own words come just above the directive's line.
            let why = log[at.saturating_sub(4)..at]
                .iter()
                .rev()
                .map(|l| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with("[Container]"));
            if let Some(w) = why {
                set(vars, "why", format!(": {}", clip(w, 200)));
            }
        }
        "zip.error" => {
            if get(vars, "msg").starts_with("Nothing to do") {
                return false;
            }
            let io = log[at.saturating_sub(3)..at]
                .iter()
                .rev()
                .find_map(|l| l.trim().strip_prefix("zip I/O error: "));
            if let Some(io) = io {
                set(vars, "io", format!(": {}", clip(io, 120)));
            }
        }
        _ => {}
    }
    true
}

/// The race a Go test failed on (`race detected during execution of
/// test`): the first access of the nearest `WARNING: DATA RACE` report
/// above, as ` (read at h.go:7 in (*Counter).Hit)`.
pub(crate) fn go_race(log: &[String], at: usize) -> Option<String> {
    let from = at.saturating_sub(400);
    let start = (from..at)
        .rev()
        .find(|&i| log[i].trim() == "WARNING: DATA RACE")?;
    let mut it = log[start + 1..at].iter();
    let access = it.next()?.trim();
    let kind = access
        .split(" at ")
        .next()
        .unwrap_or("access")
        .to_ascii_lowercase();
    let func = it.next()?.trim();
    let func = func.rsplit('/').next().unwrap_or(func);
    let func = func.split_once('.').map_or(func, |(_, f)| f);
    let file = it.next().and_then(|l| GO_FRAME_FILE.captures(l))?;
    Some(format!(
        "DATA RACE ({kind} at {}:{} in {})",
        &file["file"],
        &file["line"],
        func.trim_end_matches("()")
    ))
}

/// cargo's error chain: `error: failed to parse manifest at …`, then
/// `Caused by:` and the reason, indented, possibly several times; the
/// innermost reason is the one to fix.
pub(crate) fn cargo_caused_by(log: &[String], at: usize) -> Option<String> {
    let mut cause = None;
    let mut it = following(log, at, 24);
    while let Some((_, l)) = it.next() {
        let t = l.trim_end();
        if t == "Caused by:" {
            let first = it.by_ref().map(|(_, l)| l.trim()).find(|l| !l.is_empty());
            cause = first.map(|l| clip(l, 180));
        } else if t.starts_with("error") || t.starts_with("warning:") {
            break;
        }
    }
    cause
}

/// The other tests of the same `cargo test` run that failed after `test`:
/// ` (3 failed: a, b, c)`; empty when it is the only one.
pub(crate) fn cargo_also_failed(log: &[String], at: usize) -> String {
    let mut names = Vec::new();
    let mut start = at;
    while start > 0 && !log[start].starts_with("running ") {
        start -= 1;
    }
    for l in &log[start..] {
        let name = match l.strip_prefix("test ") {
            Some(rest) => rest.strip_suffix(" ... FAILED"),
            // The terse format (`cargo test -q`): `name --- FAILED`.
            None => l.strip_suffix(" --- FAILED").filter(|n| !n.contains(' ')),
        };
        if let Some(name) = name {
            names.push(name.trim().to_owned());
        } else if l.starts_with("test result: ") {
            break;
        }
    }
    if names.len() < 2 {
        return String::new();
    }
    let shown: Vec<&str> = names.iter().take(4).map(String::as_str).collect();
    let more = names.len().saturating_sub(shown.len());
    format!(
        " ({} failed: {}{})",
        names.len(),
        shown.join(", "),
        if more > 0 {
            format!(", +{more} more")
        } else {
            String::new()
        }
    )
}
