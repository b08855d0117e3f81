//! More of [`super::parsers`]: what a catalogue match needs from the lines
//! around it for archives, configuration files that do not parse (TOML),
//! git's working-tree refusals, Python syntax errors and image lookups.

use std::sync::LazyLock;

use regex::Regex;

use super::Vars;
use super::fallback::clip;
use super::parsers::{base, following, get, set};

fn re(p: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(p).expect("built-in parser regex")
}

/// A Python frame line: `  File "src/app.py", line 12` (optionally `, in f`).
static PY_FILE: LazyLock<Regex> =
    LazyLock::new(|| re(r#"^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)"#));
/// The excerpt of a TOML / miette-style report: `12 | key = "value"`.
static EXCERPT: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(\d+) \| ?(.*)$"));
/// The file a parse error is about, on a line above it (ruff, uv, cargo).
static PARSED_FILE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?:failed to parse|could not parse|error parsing|failed to read|invalid) (?:manifest at )?`?(?P<file>[^\s`']+\.toml)`?",
    )
});

/// Terraform's older diagnostics name the object in the text: `… for
/// module "network" at main.tf:1.`
static TF_NAMED_AT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"\b(?P<kind>module|resource|data source|variable|output|provider) "(?P<name>[^"]+)" at (?P<file>[^\s:]+):(?P<line>\d+)"#,
    )
});

/// The location of a Terraform error whose block has no `on file line N`:
/// from its own paragraph, or from a repeat of the same error a few lines
/// below (Terraform 1.x prints `Unreadable module directory` twice, only
/// the second naming the module).
pub(crate) fn tf_location_nearby(log: &[String], at: usize, msg: &str) -> Option<String> {
    let summary = format!("Error: {msg}");
    let mut in_same = true;
    for (_, l) in following(log, at, 60) {
        let t = l.trim_start_matches(['│', ' ']);
        if t.starts_with("Error: ") || t.starts_with("Warning: ") {
            in_same = t.trim_end() == summary;
            continue;
        }
        if !in_same {
            continue;
        }
        if let Some(c) = TF_NAMED_AT.captures(t) {
            let name = match &c["kind"] {
                "module" => format!("module.{}", &c["name"]),
                "data source" => format!("data.{}", &c["name"]),
                "resource" => c["name"].to_owned(),
                k => format!("{k} {}", &c["name"]),
            };
            return Some(format!(" at {}:{} ({name})", &c["file"], &c["line"]));
        }
    }
    None
}

/// npm / yarn / pnpm's banner before a script runs: `> web@1.0.0 prebuild`
/// then `> node check-node.js`.
static SCRIPT_BANNER: LazyLock<Regex> =
    LazyLock::new(|| re(r"^> (?:@?[\w.-]+(?:/[\w.-]+)?@\S+ )(?P<script>[\w:.-]+)(?: \S+)?\s*$"));

/// ` in npm script `prebuild` (`node check-node.js`)` when the line at
/// `upto` was printed by a script other than the one the command names.
pub(crate) fn script_banner(log: &[String], from: usize, upto: usize, cmd: &str) -> Option<String> {
    let start = from.max(upto.saturating_sub(400));
    let i = (start..upto.min(log.len()))
        .rev()
        .find(|&i| SCRIPT_BANNER.is_match(&log[i]))?;
    let script = SCRIPT_BANNER.captures(&log[i])?["script"].to_owned();
    if cmd.split_whitespace().last() == Some(script.as_str()) {
        return None;
    }
    let tool = ["pnpm", "yarn", "npm"]
        .into_iter()
        .find(|t| cmd.split_whitespace().any(|w| w == *t))
        .unwrap_or("npm");
    let runs = log
        .get(i + 1)
        .and_then(|l| l.strip_prefix("> "))
        .map(|r| format!(" (`{}`)", clip(r.trim(), 80)))
        .unwrap_or_default();
    Some(format!(" in {tool} script `{script}`{runs}"))
}

/// The source line a Terraform block quotes: `   5:   value = local.tag`.
pub(crate) fn tf_excerpt(log: &[String], at: usize, line: &str) -> Option<String> {
    following(log, at, 8).find_map(|(_, l)| {
        let t = l.trim_start_matches(['│', ' ']);
        let (n, code) = t.split_once(':')?;
        (n == line && !code.trim().is_empty()).then(|| code.trim().to_owned())
    })
}

/// unittest's `ERROR: setUpModule (test_repo)` / pytest's `____ test_x ____`
/// when the line at `at` is inside that test's section: the test it broke.
pub(crate) fn test_context(log: &[String], at: usize) -> Option<String> {
    // go test: `--- FAIL: TestX (0.00s)` right above its messages.
    if let Some(name) = log[at.saturating_sub(4)..at].iter().rev().find_map(|l| {
        let rest = l.trim_start().strip_prefix("--- FAIL: ")?;
        rest.split_whitespace().next().map(str::to_owned)
    }) {
        return Some(name);
    }
    // mocha: `  1) suite` then `       test name:` then the error.
    if at >= 2
        && let Some(test) = log[at - 1].trim().strip_suffix(':')
        && MOCHA_NUMBERED.is_match(&log[at - 2])
    {
        return Some(format!("\"{test}\""));
    }
    for l in log[at.saturating_sub(600)..at].iter().rev() {
        if l.starts_with("=====") || l.starts_with("[Container]") {
            return None;
        }
        if let Some(c) = UNITTEST_HEADER.captures(l) {
            return Some(format!("{} ({})", &c["test"], &c["cls"]));
        }
        if let Some(c) = PYTEST_HEADER.captures(l) {
            return Some(c["test"].to_owned());
        }
    }
    None
}

static MOCHA_NUMBERED: LazyLock<Regex> = LazyLock::new(|| re(r"^\s+\d+\) \S"));
static UNITTEST_HEADER: LazyLock<Regex> =
    LazyLock::new(|| re(r"^(?:ERROR|FAIL): (?P<test>\w+) \((?P<cls>[\w.]+)\)"));
static PYTEST_HEADER: LazyLock<Regex> =
    LazyLock::new(|| re(r"^_{3,} (?:ERROR at \w+ of )?(?P<test>[\w\[\].:-]+) _{3,}$"));

/// cargo's `failed to run custom build command for …`: what the build
/// script said (its panic message, else its first stderr line).
pub(crate) fn build_script(log: &[String], at: usize, msg: &str) -> Option<String> {
    if !msg.starts_with("failed to run custom build command") {
        return None;
    }
    let mut lines = following(log, at, 60).map(|(_, l)| l.trim());
    let mut first_stderr = None;
    let mut in_stderr = false;
    while let Some(l) = lines.next() {
        if let Some(loc) = l
            .split_once("panicked at ")
            .map(|(_, r)| r.trim_end_matches(':'))
        {
            let said = lines.find(|l| !l.is_empty()).unwrap_or_default();
            return Some(format!(
                " (build script panicked at {loc}: {})",
                clip(said, 160)
            ));
        }
        if l == "--- stderr" {
            in_stderr = true;
        } else if in_stderr && first_stderr.is_none() && !l.is_empty() {
            first_stderr = Some(l.to_owned());
        }
    }
    first_stderr.map(|l| format!(" (build script: {})", clip(&l, 160)))
}

/// jest's suite header: `FAIL ./cart.test.js` above `● Test suite failed
/// to run`, and the `Details:` line under its explanation.
pub(crate) fn jest_suite(log: &[String], at: usize, end: usize) -> (String, Option<String>) {
    let file = log[at.saturating_sub(3)..at]
        .iter()
        .rev()
        .find_map(|l| l.trim().strip_prefix("FAIL ").map(|f| f.trim().to_owned()));
    let head = match file {
        Some(f) => format!("jest test suite {f} failed to run"),
        None => "jest test suite failed to run".to_owned(),
    };
    let details = (at + 1..end.min(log.len()))
        .find(|&i| log[i].trim() == "Details:")
        .and_then(|i| following(log, i, 3).find(|(_, l)| !l.trim().is_empty()))
        .map(|(_, l)| l.trim().to_owned());
    (head, details)
}

pub(crate) fn enrich(id: &str, vars: &mut Vars, log: &[String], at: usize, cmd: &str) -> bool {
    match id {
        "python.syntax" => {
            // CPython prints the frame, the source line, a caret line, then
            // the error: the frame is within the four lines above. Without
            // it this is some other language's SyntaxError (node's has
            // `file.js:3` above instead).
            let from = at.saturating_sub(5);
            let Some(c) = log[from..at].iter().rev().find_map(|l| PY_FILE.captures(l)) else {
                return false;
            };
            set(vars, "file", &c["file"]);
            set(vars, "line", &c["line"]);
        }
        "java.exception" => {
            // A bare `pkg.SomeException: msg` line is Java's only when a
            // Java frame follows it (Python prints dotted names too).
            // Maven and Gradle print their own exceptions with `-e` /
            // `--stacktrace`: their rules read those.
            let bare = !log[at].starts_with("Exception in thread") && vars.contains_key("exc");
            let build_tool = ["mvn", "gradle"].iter().any(|t| cmd.contains(t));
            if bare && build_tool {
                return false;
            }
            if bare
                && !following(log, at, 2).any(|(_, l)| {
                    let t = l.trim_start();
                    t.starts_with("at ")
                        && (t.contains(".java:")
                            || t.contains("(Native Method)")
                            || t.contains("(Unknown Source)"))
                })
            {
                return false;
            }
            let what = match (vars.get("exc"), vars.get("class")) {
                (Some(e), _) => match vars.get("msg").filter(|m| !m.is_empty()) {
                    Some(m) => format!("{e}: {m}"),
                    None => e.clone(),
                },
                (None, Some(c)) => format!("main class {c} not found (classpath)"),
                _ => "exception".to_owned(),
            };
            let frame = following(log, at, 3).find_map(|(_, l)| {
                l.trim_start()
                    .strip_prefix("at ")
                    .map(|f| format!(" at {}", f.trim()))
            });
            // The test it failed in: the first frame below the top one in a
            // test class (`MoneyTest`, `OrderTests`, `CheckoutIT`).
            let test = following(log, at, 12)
                .filter_map(|(_, l)| l.trim_start().strip_prefix("at "))
                .filter_map(|f| f.split_once('(').map(|(m, _)| m))
                .skip(1)
                .find(|m| {
                    m.rsplit_once('.').is_some_and(|(class, _)| {
                        let class = class.rsplit(['.', '$', '/']).next().unwrap_or(class);
                        ["Test", "Tests", "IT"].iter().any(|s| class.ends_with(s))
                    })
                });
            let test = test.map(|t| format!(" in test {t}")).unwrap_or_default();
            set(vars, "what", clip(&what, 200));
            set(vars, "at", format!("{}{test}", frame.unwrap_or_default()));
        }
        "test.no_tests" => {
            let runner = ["vitest", "jest"]
                .into_iter()
                .find(|t| cmd.contains(t))
                .unwrap_or(if get(vars, "what").starts_with("No test files") {
                    "vitest"
                } else {
                    "jest"
                });
            set(vars, "runner", runner);
            // jest: `Pattern: src/__tests__ - 0 matches`; vitest: `filter:  src/x`.
            let pattern = following(log, at, 12).find_map(|(_, l)| {
                let t = l.trim();
                t.strip_prefix("Pattern: ")
                    .map(|p| p.trim_end_matches(" - 0 matches"))
                    .or_else(|| t.strip_prefix("filter:"))
                    .map(|p| p.trim().to_owned())
            });
            if let Some(p) = pattern.filter(|p| !p.is_empty()) {
                set(vars, "pattern", format!(" for `{}`", clip(&p, 80)));
            }
        }
        "lint.eslint_rule_config" => {
            if let Some((_, d)) = following(log, at, 2).find(|(_, l)| !l.trim().is_empty()) {
                set(vars, "detail", format!(": {}", clip(d.trim(), 160)));
            }
        }
        "python.traceback" => {
            use super::parsers::{EXC_LINE, PY_FRAME};
            // A chain (`During handling of the above exception…`): the
            // last traceback is what propagated, and it is the finding.
            let mut start = at;
            let (frame, exc) = loop {
                let mut frame = None;
                let mut exc = None;
                for (i, l) in following(log, start, 200) {
                    if let Some(c) = PY_FRAME.captures(l) {
                        frame = Some(format!("{}:{}", base(&c[1]), &c[2]));
                        continue;
                    }
                    if l.starts_with("Traceback ") {
                        break;
                    }
                    if !l.starts_with(' ') && EXC_LINE.is_match(l.trim_end()) {
                        exc = Some((i, l.trim().to_owned()));
                        break;
                    }
                }
                let Some((i, exc)) = exc else { return false };
                let chained = following(log, i, 3).any(|(_, l)| {
                    l.starts_with("During handling of the above exception")
                        || l.starts_with("The above exception was the direct cause")
                });
                let next = following(log, i, 6)
                    .find(|(_, l)| l.starts_with("Traceback "))
                    .map(|(j, _)| j);
                match next {
                    Some(j) if chained => start = j,
                    _ => break (frame, exc),
                }
            };
            set(vars, "exc", clip(&exc, 200));
            if let Some(f) = frame {
                set(vars, "at", format!(" at {f}"));
            }
        }
        "go.test_pkg_fail" => {
            // A failing test names the cause itself (go.test_fail).
            let from = at.saturating_sub(300);
            if log[from..at]
                .iter()
                .any(|l| l.trim_start().starts_with("--- FAIL:"))
            {
                return false;
            }
            // What TestMain / init printed last before FAIL: a panic's own
            // line when there is one, else the last line said.
            let lines: Vec<&str> = log[from..at]
                .iter()
                .map(|l| l.trim())
                .rev()
                .take_while(|l| !l.starts_with("ok ") && !l.starts_with("FAIL\t"))
                .filter(|l| !l.is_empty() && *l != "FAIL" && !l.starts_with("exit status "))
                .collect();
            let said = lines
                .iter()
                .find(|l| l.starts_with("panic: "))
                .or_else(|| {
                    lines.iter().find(|l| {
                        !l.starts_with("goroutine ") && !l.ends_with(')') && !l.starts_with('/')
                    })
                })
                .or(lines.first());
            let Some(said) = said else { return false };
            set(vars, "msg", clip(said, 200));
        }
        "node.error_code" => {
            // The error line above the stack: `TypeError: Invalid URL`.
            let from = at.saturating_sub(40);
            let Some(exc) = log[from..at].iter().rev().find_map(|l| {
                let t = l.trim_end();
                (!t.starts_with(' ') && super::parsers::EXC_LINE.is_match(t)).then(|| t.to_owned())
            }) else {
                return false;
            };
            set(vars, "exc", clip(&exc, 160));
        }
        "npm.error_plain" => {
            let msg = get(vars, "msg").to_owned();
            let noise = [
                "A complete log",
                "Log files were not written",
                "You can rerun",
                "This is probably not a problem",
                "The operation was rejected",
                "Missing script",
                "Lifecycle script",
                "command failed",
            ];
            // Only the first line of npm's message block.
            let above = log[..at].last().map(|l| l.trim_end()).unwrap_or_default();
            let continues = (above.starts_with("npm error") && above != "npm error")
                || (above.starts_with("npm ERR!") && above != "npm ERR!");
            if noise.iter().any(|n| msg.starts_with(n)) || continues {
                return false;
            }
            if msg.ends_with(':')
                && let Some((_, next)) = following(log, at, 1).next()
                && let Some(rest) = next
                    .strip_prefix("npm error")
                    .or_else(|| next.strip_prefix("npm ERR!"))
            {
                set(vars, "msg", clip(&format!("{msg} {}", rest.trim()), 200));
            }
        }
        "openssl.verify" if get(vars, "msg").is_empty() => return false,
        "perl.compile" => {
            // The first `… at FILE line N.` of the errors above.
            let file = get(vars, "file").to_owned();
            let suffix = format!(" at {file} line ");
            let first = log[at.saturating_sub(30)..at].iter().find_map(|l| {
                // `msg at FILE line 12.` or `… line 12, near "}"`.
                let (msg, rest) = l.rsplit_once(&suffix)?;
                let line: String = rest.chars().take_while(char::is_ascii_digit).collect();
                (!line.is_empty()).then(|| (msg.to_owned(), line))
            });
            let Some((msg, line)) = first else {
                return false;
            };
            set(vars, "msg", clip(&msg, 200));
            set(vars, "line", line);
        }
        "sqlite.error" => {
            if !cmd.contains("sqlite") {
                return false;
            }
            if let Some(m) = vars.get("msg2").cloned() {
                set(vars, "msg", m);
            }
            if let Some(l) = vars.get("line").or(vars.get("line2")).cloned() {
                set(vars, "at", format!(" (line {l})"));
            }
        }
        "checksum.mismatch" => {
            // `agent.bin: FAILED` lines above the summary name the files.
            let files: Vec<&str> = log[at.saturating_sub(50)..at]
                .iter()
                .filter_map(|l| l.strip_suffix(": FAILED"))
                .take(3)
                .collect();
            if !files.is_empty() {
                let failed: Vec<String> = files.iter().map(|f| format!("{f}: FAILED")).collect();
                set(vars, "files", format!(" ({})", failed.join(", ")));
            }
        }
        "config.toml_parse" => {
            // `TOML parse error at line 2, column 15`, the excerpt
            // (`2 | line-length = "100"`), a caret line, then what is wrong.
            let mut excerpt = String::new();
            let mut msg = String::new();
            for (_, l) in following(log, at, 8) {
                let t = l.trim();
                if let Some(c) = EXCERPT.captures(l)
                    && excerpt.is_empty()
                    && c[1] == *get(vars, "line")
                {
                    excerpt = c[2].trim().to_owned();
                    continue;
                }
                if t.is_empty() || t == "|" || t.trim_start_matches('|').trim().starts_with('^') {
                    continue;
                }
                if !excerpt.is_empty() {
                    msg = t.trim_start_matches("Caused by:").trim().to_owned();
                    break;
                }
            }
            let file = log[at.saturating_sub(8)..=at]
                .iter()
                .rev()
                .find_map(|l| PARSED_FILE.captures(l).map(|c| c["file"].to_owned()));
            if let Some(f) = file {
                set(vars, "file", format!(" in {}", base(&f)));
            }
            if !excerpt.is_empty() {
                set(vars, "excerpt", format!(" (`{}`)", clip(&excerpt, 80)));
            }
            if !msg.is_empty() {
                set(vars, "msg", format!(": {}", clip(&msg, 160)));
            }
        }
        "git.working_tree" => {
            // The paths follow, one per line, indented with a tab.
            let paths: Vec<&str> = following(log, at, 50)
                .map_while(|(_, l)| l.strip_prefix('\t'))
                .map(str::trim)
                .collect();
            let files = match paths.len() {
                0 => "files".to_owned(),
                1..=3 => paths.join(", "),
                n => format!("{} and {} more", paths[..3].join(", "), n - 3),
            };
            set(vars, "files", files);
        }
        "archive.unreadable" => {
            // gzip's complaint, then tar's own about the same archive.
            let msg = get(vars, "msg").to_owned();
            let tar = following(log, at, 3).find_map(|(_, l)| {
                l.strip_prefix("tar: ")
                    .filter(|t| {
                        !t.starts_with("Error is not recoverable") && !t.starts_with("Exiting")
                    })
                    .filter(|t| !msg.contains(*t))
            });
            if let Some(t) = tar {
                set(vars, "msg", format!("{msg} (tar: {})", t.trim()));
            }
            // The archive: unzip's `Archive:  x.zip` above, else the
            // command's operand that looks like one.
            let named = log[at.saturating_sub(3)..at]
                .iter()
                .rev()
                .find_map(|l| l.strip_prefix("Archive:").map(|a| a.trim().to_owned()));
            let from_cmd = || {
                cmd.split_whitespace()
                    .find(|w| {
                        [".zip", ".tar", ".tgz", ".gz", ".xz", ".bz2", ".zst", ".jar"]
                            .iter()
                            .any(|e| w.ends_with(e))
                    })
                    .map(str::to_owned)
            };
            if let Some(a) = named.or_else(from_cmd) {
                set(vars, "archive", format!(" {a}"));
            }
        }
        "ecr.image_not_found" => {
            if vars.get("image").is_none()
                && let (Some(repo), Some(tag)) = (vars.get("repo"), vars.get("tag"))
            {
                let image = format!("{repo}:{tag}");
                set(vars, "image", image);
            }
            if let Some(code) = vars.get("code").cloned() {
                let op = get(vars, "op").to_owned();
                set(
                    vars,
                    "code_part",
                    if op.is_empty() {
                        format!(" ({code})")
                    } else {
                        format!(" ({code} from {op})")
                    },
                );
            }
        }
        _ => return super::toolextra::enrich(id, vars, log, at, cmd),
    }
    true
}
