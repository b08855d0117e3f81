//! Reading a tool's failure report around the line a rule matched: the
//! failing test's name, location and assertion; a compiler's file:line and
//! the detail lines under its message; which linter printed a line.
//!
//! `enrich` gets the rule id, the variables captured on line `at`, the
//! whole log and the failed command that printed the line (empty without
//! framing). It returns `false` to drop a match that is not this tool's.

use std::sync::LazyLock;

use regex::Regex;

use super::Vars;
use super::fallback::clip;

fn re(p: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(p).expect("built-in parser regex")
}

pub(crate) static EXC_LINE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(?:[\w$]+\.)*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Warning)\b(?::.*)?$")
});
pub(crate) static PY_FRAME: LazyLock<Regex> =
    LazyLock::new(|| re(r#"^\s*File "([^"]+)", line (\d+)(?:, in (\S+))?"#));
static JS_FRAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(?:at |❯ )(?:.*?\()?([^\s()]+?:\d+)(?::\d+)?\)?\s*$"));
/// A location alone on its line: `template.yaml:6:7` (cfn-lint's default format).
static FILE_LINE_COL: LazyLock<Regex> = LazyLock::new(|| re(r"^[^\s:]+\.\w+:\d+:\d+\s*$"));
static TAP_LOCATION: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*location: '(.+?):(\d+):\d+'"));
static TF_ON: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*on (\S+) line (\d+)(?:, in (.+?))?:\s*$"));
static TF_RESOURCE: LazyLock<Regex> =
    LazyLock::new(|| re(r#"^(resource|data|module) "([^"]+)"(?: "([^"]+)")?$"#));
pub(super) static GO_LOC: LazyLock<Regex> = LazyLock::new(|| re(r"^\s+(\S+\.go:\d+): (.*)"));
static MAVEN_ARTIFACT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:the artifact|Could not find artifact|Failure to find|Could not transfer artifact) (\S+)|artifacts could not be resolved: ([^;]+?)(?:: |$)",
    )
});
static TF_PAIR: LazyLock<Regex> = LazyLock::new(|| re(r#""([\w-]+)" "([\w-]+)""#));
static RUST_PANIC: LazyLock<Regex> =
    LazyLock::new(|| re(r"^thread '.*?'(?: \(\d+\))? panicked at (\S+?):?$"));
static SUREFIRE_ENTRY: LazyLock<Regex> =
    LazyLock::new(|| re(r"^([\w.$]+?)[.#](\w+)(?::(\d+))?(?:\s+(.+))?$"));
static JUNIT_FAILURE: LazyLock<Regex> =
    LazyLock::new(|| re(r#"<(?:failure|error)\b(?:[^>]*\bmessage="([^"]*)")?"#));
static GO_TEST_FRAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[\w./-]+\.(Test\w+)\(0x[0-9a-f]+"));
static RUST_LOC: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*--> (\S+)"));
static CLIPPY: LazyLock<Regex> = LazyLock::new(|| {
    re(r"clippy::([\w-]+)|index\.html#(\w+)|#!?\[(?:deny|forbid)\((\w+)\)\]|`-D ([\w-]+)`")
});
static JAVA_SYMBOL: LazyLock<Regex> = LazyLock::new(|| re(r"^\s+(symbol|location):\s+(.+)$"));

pub(super) fn set(vars: &mut Vars, k: &str, v: impl Into<String>) {
    vars.insert(k.to_owned(), v.into());
}

pub(super) fn get<'a>(vars: &'a Vars, k: &str) -> &'a str {
    vars.get(k).map_or("", String::as_str)
}

pub(super) fn base(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Terraform's and some tools' box-drawing prefix, stripped.
fn unbox(l: &str) -> &str {
    l.trim_start_matches(['│', '|', '╷', '╵'])
        .trim_start_matches(' ')
}

/// Lines `at+1 ..` up to `n` of them, stopping at a framing line.
pub(super) fn following(
    log: &[String],
    at: usize,
    n: usize,
) -> impl Iterator<Item = (usize, &str)> {
    log.iter()
        .enumerate()
        .skip(at + 1)
        .take(n)
        .take_while(|(_, l)| !l.starts_with("[Container]"))
        .map(|(i, l)| (i, l.as_str()))
}

fn cmd_uses(cmd: &str, tools: &[&str]) -> bool {
    cmd.is_empty()
        || cmd
            .split(|c: char| c.is_whitespace() || c == '/' || c == ';' || c == '&' || c == '|')
            .any(|w| tools.contains(&w))
}

/// A JS stack frame's `file:line` outside node_modules / node internals.
pub(crate) fn js_location(log: &[String], from: usize, n: usize) -> Option<String> {
    following(log, from, n).find_map(|(_, l)| {
        let c = JS_FRAME.captures(l)?;
        let loc = c.get(1)?.as_str();
        (!loc.contains("node_modules") && !loc.starts_with("node:")).then(|| base(loc).to_owned())
    })
}

pub(crate) fn enrich(
    id: &str,
    vars: &mut Vars,
    log: &[String],
    at: usize,
    cmd: &str,
    seg: Option<(usize, usize)>,
) -> bool {
    match id {
        "test.pytest_error" => {
            let file = get(vars, "file").to_owned();
            let test = get(vars, "test").to_owned();
            if !test.is_empty() {
                set(vars, "test_part", format!("::{test}"));
            }
            // The short summary cuts long messages with `...`: read the
            // section's `E` lines instead.
            if get(vars, "msg").is_empty() || get(vars, "msg").ends_with("...") {
                let short = test.rsplit("::").next().unwrap_or(&test).to_owned();
                let header = log.iter().position(|l| {
                    l.starts_with('_')
                        && ((!short.is_empty() && l.contains(&format!(" {short} ")))
                            || (short.is_empty()
                                && l.contains(&format!("ERROR collecting {file}"))))
                });
                if let Some(h) = header {
                    let mut e_lines: Vec<String> = Vec::new();
                    for (_, l) in following(log, h, 300) {
                        if l.starts_with("____") || l.starts_with("====") {
                            break;
                        }
                        if let Some(rest) = l.strip_prefix('E')
                            && (rest.starts_with(' ') || rest.is_empty())
                        {
                            let t = rest.trim();
                            if !t.is_empty() {
                                e_lines.push(t.to_owned());
                            }
                        }
                    }
                    let pick = e_lines
                        .iter()
                        .rev()
                        .find(|l| EXC_LINE.is_match(l))
                        .or(e_lines.first());
                    if let Some(m) = pick {
                        set(vars, "msg", clip(m, 200));
                    }
                }
            }
        }
        "test.node" if log[at].trim_start().starts_with('✖') => {
            return super::toolparse::enrich(id, vars, log, at, cmd);
        }
        "test.node" => {
            let mut msg = String::new();
            let mut location = String::new();
            let mut in_error = false;
            for (_, l) in following(log, at, 60) {
                let t = l.trim();
                if t == "..." {
                    break;
                }
                if let Some(c) = TAP_LOCATION.captures(l) {
                    location = format!(" at {}:{}", base(&c[1]), &c[2]);
                    continue;
                }
                if in_error {
                    if !t.is_empty() {
                        msg = t.to_owned();
                        in_error = false;
                    }
                    continue;
                }
                if let Some(e) = t.strip_prefix("error: ")
                    && msg.is_empty()
                {
                    if e.starts_with('|') || e.starts_with('>') {
                        in_error = true;
                    } else {
                        msg = e.trim_matches(['\'', '"']).to_owned();
                    }
                }
            }
            if msg.ends_with("subtest failed") || msg.ends_with("subtests failed") {
                // A describe block around the failing test: the test itself
                // is reported just above.
                set(vars, "_confidence", "0.4");
            }
            set(vars, "msg", clip(&msg, 200));
            set(vars, "location", location);
        }
        "test.jest" => {
            let test = get(vars, "test").to_owned();
            if test == "Console" || test.starts_with("Console") {
                return false;
            }
            let mut lines: Vec<&str> = Vec::new();
            let mut end = at;
            for (i, l) in following(log, at, 80) {
                let t = l.trim();
                end = i;
                if t.starts_with('●') || t.starts_with("Test Suites:") {
                    break;
                }
                if !t.is_empty() && !t.starts_with('>') && !t.contains(" | ") && !t.starts_with('|')
                {
                    lines.push(t);
                }
            }
            let mut msg = lines.first().map(|s| (*s).to_owned()).unwrap_or_default();
            // `--ci`: a snapshot that does not exist yet is not written.
            if let Some(s) = lines
                .iter()
                .find(|l| l.starts_with("New snapshot was not written"))
            {
                msg = format!("{msg}: {s}");
            } else if msg.starts_with("expect(") {
                let extra: Vec<&str> = lines
                    .iter()
                    .skip(1)
                    .take(2)
                    .filter(|l| l.starts_with("Expected") || l.starts_with("Received"))
                    .copied()
                    .collect();
                if !extra.is_empty() {
                    msg = format!("{msg} ({})", extra.join(", "));
                }
            }
            let head = if test == "Test suite failed to run" {
                let (head, details) = super::toolmore::jest_suite(log, at, end);
                if let Some(d) = details {
                    msg = format!("{msg}: {d}");
                }
                head
            } else {
                format!("jest test \"{test}\" failed")
            };
            let location = js_location(log, at, end.saturating_sub(at))
                .map(|l| format!(" at {l}"))
                .unwrap_or_default();
            set(vars, "head", head);
            set(vars, "location", location);
            set(vars, "msg", clip(&msg, 200));
        }
        "test.vitest" => {
            let file = get(vars, "file").to_owned();
            let what = match vars.get("test") {
                Some(t) => format!("test \"{t}\" ({file})"),
                None => format!("suite {file}"),
            };
            let msg = following(log, at, 10)
                .map(|(_, l)| l.trim())
                .find(|t| !t.is_empty() && !t.starts_with('⎯') && !t.starts_with("FAIL"))
                .unwrap_or_default()
                .to_owned();
            set(vars, "what", what);
            set(vars, "msg", clip(&msg, 200));
        }
        "test.mocha" => {
            let mut it = following(log, at, 200).skip_while(|(_, l)| {
                let t = l.trim_start();
                !(t.starts_with("1) ") || t.starts_with("1. "))
            });
            let Some((_, first)) = it.next() else {
                return false;
            };
            let mut parts = vec![first.trim_start().get(3..).unwrap_or("").trim().to_owned()];
            while !parts.last().is_some_and(|p| p.ends_with(':')) {
                match it.next() {
                    Some((_, l)) if !l.trim().is_empty() => parts.push(l.trim().to_owned()),
                    Some(_) => continue,
                    None => break,
                }
            }
            let test = parts.join(" ").trim_end_matches(':').to_owned();
            let grep = parts
                .last()
                .map(|p| p.trim_end_matches(':').to_owned())
                .unwrap_or_default();
            let msg = it
                .map(|(_, l)| l.trim())
                .find(|t| !t.is_empty())
                .unwrap_or_default()
                .to_owned();
            set(vars, "test", test);
            set(vars, "grep", grep);
            set(vars, "msg", clip(&msg, 200));
        }
        "compile.java" => {
            let detail: Vec<String> = following(log, at, 4)
                .filter_map(|(_, l)| JAVA_SYMBOL.captures(l))
                .map(|c| format!("{}: {}", &c[1], c[2].trim()))
                .collect();
            if !detail.is_empty() {
                set(vars, "detail", format!(" ({})", detail.join(", ")));
            }
        }
        "compile.tsc" => {
            let file = get(vars, "file").to_owned();
            let line = vars
                .get("line")
                .or(vars.get("line2"))
                .cloned()
                .unwrap_or_default();
            if !file.is_empty() {
                set(vars, "at", format!(" at {file}:{line}"));
            }
        }
        "lint.eslint" => {
            if !cmd_uses(cmd, &["eslint", "npm", "npx", "yarn", "pnpm", "lint"]) {
                return false;
            }
            let file = match vars.get("file") {
                Some(f) => f.clone(),
                None => log[..at]
                    .iter()
                    .rev()
                    .take(200)
                    .find(|l| !l.is_empty() && !l.starts_with(' ') && !l.starts_with('\t'))
                    .map(|l| l.trim().to_owned())
                    .unwrap_or_default(),
            };
            let line = get(vars, "line").to_owned();
            if !file.is_empty() && !file.starts_with("[Container]") {
                set(vars, "at", format!(" at {}:{line}", base(&file)));
            }
        }
        "lint.python" => {
            let tool = [
                "ruff",
                "flake8",
                "pylint",
                "pycodestyle",
                "pyflakes",
                "cfn-lint",
            ]
            .into_iter()
            .find(|t| cmd.contains(t))
            .unwrap_or("lint");
            set(vars, "tool", tool);
            // pylint: errors (E, F) above conventions, refactors, warnings.
            if let Some(p) = vars.get("pcode").cloned() {
                let minor = !p.starts_with(['E', 'F']);
                set(vars, "code", p);
                if minor {
                    set(vars, "_priority", "70");
                }
            }
            if let Some(gline) = vars.get("gline").cloned() {
                let Some(file) = super::toolparse::grouped_file(log, at) else {
                    return false;
                };
                set(vars, "file", file.clone());
                set(vars, "line", gline.clone());
                set(vars, "at", format!(" at {file}:{gline}"));
            } else if let Some(file) = vars.get("file").cloned() {
                if let Some(line) = vars.get("line").cloned() {
                    set(vars, "at", format!(" at {file}:{line}"));
                } else {
                    set(vars, "at", format!(" ({file})"));
                }
            } else {
                // Ruff's full format: `CODE message` then ` --> file:line:col`;
                // cfn-lint's: `E3012 message` then `template.yaml:6:7`.
                let Some(loc) = following(log, at, 2).find_map(|(_, l)| {
                    let t = l.trim_start();
                    t.strip_prefix("--> ")
                        .map(|x| x.trim().to_owned())
                        .or_else(|| FILE_LINE_COL.is_match(t).then(|| t.trim().to_owned()))
                }) else {
                    return false;
                };
                let loc = match loc.rsplit_once(':') {
                    Some((a, _)) if a.contains(':') => a.to_owned(),
                    _ => loc,
                };
                set(vars, "at", format!(" at {loc}"));
            }
        }
        "cargo.error_plain" => {
            let msg = get(vars, "msg");
            if msg.starts_with("could not compile")
                || msg.starts_with("aborting due to")
                || msg.starts_with("test failed")
                || msg.starts_with("doctest failed")
                || msg.starts_with("Recipe")
                || msg.starts_with("process didn't exit successfully")
            {
                return false;
            }
            // A message that ends in `:` goes on below (`rustc 1.95.0 is
            // not supported by the following package:` then `app@0.1.0
            // requires rustc 1.99`).
            let msg = get(vars, "msg").trim_end().to_owned();
            if let Some(cause) = super::toolextra::cargo_caused_by(log, at) {
                set(vars, "msg", format!("{msg}: {cause}"));
            } else if msg.ends_with(':')
                && let Some(n) = super::fallback::line_below(log, at, log.len())
            {
                set(
                    vars,
                    "msg",
                    format!("{}: {}", msg.trim_end_matches(':'), clip(n, 160)),
                );
            }
            let mut location = String::new();
            let mut lint = String::new();
            for (_, l) in following(log, at, 16) {
                if l.starts_with("error") || l.starts_with("warning") {
                    break;
                }
                if location.is_empty()
                    && let Some(c) = RUST_LOC.captures(l)
                {
                    location = format!(" at {}", &c[1]);
                }
                if lint.is_empty()
                    && let Some(c) = CLIPPY.captures(l)
                {
                    lint = match (c.get(1).or(c.get(2)), c.get(3).or(c.get(4))) {
                        (Some(m), _) => format!(" [clippy::{}]", m.as_str().replace('-', "_")),
                        (None, Some(m)) => format!(" [{}]", m.as_str().replace('-', "_")),
                        _ => String::new(),
                    };
                }
            }
            if let Some(b) = super::toolmore::build_script(log, at, get(vars, "msg")) {
                location = b;
            }
            if location.is_empty() && !cmd_uses(cmd, &["cargo", "rustc", "rustup", "cross"]) {
                return false;
            }
            set(vars, "location", location);
            set(vars, "lint", lint);
        }
        "terraform.error" => {
            if get(vars, "msg").starts_with("Terraform encountered problems") {
                return false;
            }
            let mut on = None;
            let mut detail = String::new();
            let mut detail_done = false;
            // `with module.web.aws_s3_bucket.site,`: the full address.
            let mut with = None;
            for (_, l) in following(log, at, 20) {
                let t = unbox(l);
                if t.starts_with("Error: ") || t.starts_with("Warning: ") {
                    break;
                }
                if let Some(a) = t.strip_prefix("with ").and_then(|r| r.strip_suffix(',')) {
                    if !a.starts_with("provider[") {
                        with = Some(a.to_owned());
                    }
                    continue;
                }
                if on.is_none()
                    && let Some(c) = TF_ON.captures(t)
                {
                    on = Some((
                        c[1].to_owned(),
                        c[2].to_owned(),
                        c.get(3).map(|m| m.as_str().to_owned()),
                    ));
                    continue;
                }
                // The excerpt's value annotations (`├────`, `│ path.module
                // is "."`, `╰─`): not the explanation paragraph.
                if t.starts_with(['├', '│', '╰', '└', '┌', '─', '╷', '╵']) {
                    continue;
                }
                if !t.is_empty()
                    && !t.starts_with(' ')
                    && !t.chars().next().is_some_and(|c| c.is_ascii_digit())
                {
                    if detail.is_empty() {
                        detail = t.to_owned();
                        continue;
                    } else if !detail_done {
                        // The paragraph goes on over the next lines.
                        detail.push(' ');
                        detail.push_str(t);
                        continue;
                    }
                }
                if !detail.is_empty() {
                    detail_done = true;
                }
            }
            if on.is_none() && !cmd_uses(cmd, &["terraform", "tofu", "terragrunt", "cdktf"]) {
                return false;
            }
            if let Some((_, line, _)) = &on
                && let Some(x) = super::toolmore::tf_excerpt(log, at, line)
            {
                set(vars, "excerpt", format!(" (`{}`)", clip(&x, 80)));
            }
            if let Some((file, line, block)) = on {
                let block = block
                    .map(|b| match TF_RESOURCE.captures(&b) {
                        Some(c) if &c[1] == "resource" => {
                            format!(" ({}.{})", &c[2], c.get(3).map_or("", |m| m.as_str()))
                        }
                        Some(c) if &c[1] == "data" => {
                            format!(" (data.{}.{})", &c[2], c.get(3).map_or("", |m| m.as_str()))
                        }
                        Some(c) => format!(" (module.{})", &c[2]),
                        None => format!(" ({b})"),
                    })
                    .unwrap_or_default();
                let block = with.map_or(block, |a| format!(" ({a})"));
                set(vars, "at", format!(" at {file}:{line}{block}"));
            } else if let Some(a) = super::toolmore::tf_location_nearby(log, at, get(vars, "msg")) {
                set(vars, "at", a);
            }
            if !detail.is_empty() {
                // `"terraform_data" "missing"` is the address terraform_data.missing.
                let detail = TF_PAIR.replace_all(&detail, "$1.$2");
                set(vars, "detail", format!(": {}", clip(&detail, 200)));
            }
        }
        "pip.conflict" => {
            let cause: Vec<String> = following(log, at, 12)
                .skip_while(|(_, l)| !l.contains("The conflict is caused by"))
                .skip(1)
                .map(|(_, l)| l.trim().to_owned())
                .take_while(|l| !l.is_empty())
                .take(3)
                .collect();
            if !cause.is_empty() {
                set(vars, "cause", format!(" ({})", cause.join("; ")));
            }
        }
        "shell.no_such_file" => {
            let path = get(vars, "path").trim().to_owned();
            if path.is_empty() || path.contains("  ") {
                return false;
            }
            if let Some(p) = vars.get("prog").cloned() {
                set(vars, "by", format!(" ({p})"));
            }
        }
        "net.connection" | "net.dns" => {
            if let Some(t) = super::toolmore::test_context(log, at) {
                set(vars, "ctx", format!(" in {t}"));
            }
            let line = super::toolparse::untree(&log[at]);
            set(vars, "detail", format!(": {}", clip(line, 200)));
            if !vars.contains_key("host")
                && let Some(h) = super::toolparse::url_host(log, at)
            {
                set(vars, "host", h);
            }
            // What the command could not do because of it, when it says so
            // on a line of its own (pip's "No matching distribution").
            if let Some((from, to)) = seg
                && let Some(&(i, sc)) = super::fallback::explain(
                    log,
                    from.max(at.saturating_sub(200)),
                    to.min(at + 400),
                    1,
                )
                .first()
                && i != at
                && sc >= 3.5
            {
                let then = super::toolparse::untree(&log[i]);
                if !line.contains(then) && !then.contains(line) {
                    set(vars, "then", format!(" → {}", clip(then, 160)));
                }
            }
        }
        "format.check" => {
            if let Some(l) = vars.get("line").cloned() {
                set(vars, "at", format!(" (line {l})"));
            }
        }
        "maven.dependency" => {
            // The artifacts themselves, from this line and the next few.
            let mut found: Vec<String> = Vec::new();
            let lines = std::iter::once(log[at].as_str()).chain(following(log, at, 6).map(|x| x.1));
            for l in lines {
                for c in MAVEN_ARTIFACT.captures_iter(l) {
                    let a = c.iter().skip(1).flatten().next().map_or("", |m| m.as_str());
                    let a = a.trim_end_matches(" (absent)");
                    let a = a.trim_end_matches([':', ',', '.']).to_owned();
                    if !a.is_empty() && !found.contains(&a) && found.len() < 3 {
                        found.push(a);
                    }
                }
            }
            // A parent or imported POM, or a project's dependencies: the
            // artifact is what failed.
            if log[at].contains("Could not resolve dependencies for project") && !found.is_empty() {
                vars.remove("what");
            }
            if !vars.contains_key("what") && !found.is_empty() {
                let what = found.remove(0);
                set(vars, "what", what);
            }
            if let Some(k) = vars.get("kind").cloned() {
                set(vars, "kind_part", format!(" ({k})"));
            }
            if !found.is_empty() {
                set(vars, "artifacts", format!(": {}", found.join(", ")));
            }
        }
        "cargo.test_failed" => {
            // `---- name stdout ----`, then `thread '…' panicked at file:l:c:`
            // and the message on the next line.
            let test = get(vars, "test").to_owned();
            set(vars, "also", super::toolextra::cargo_also_failed(log, at));
            let header = format!("---- {test} stdout ----");
            if let Some(h) = log.iter().position(|l| l.trim() == header) {
                let mut it = following(log, h, 12);
                let mut panic = String::new();
                while let Some((_, l)) = it.next() {
                    if let Some(c) = RUST_PANIC.captures(l.trim()) {
                        let msg = it
                            .next()
                            .map(|(_, m)| m.trim().to_owned())
                            .unwrap_or_default();
                        panic = format!("panicked at {}: {}", c[1].trim_end_matches(':'), msg);
                        break;
                    }
                    if l.starts_with("note: ") && panic.is_empty() {
                        panic = l.trim_start_matches("note: ").trim().to_owned();
                    }
                    if l.starts_with("----") || l.starts_with("failures:") {
                        break;
                    }
                }
                if !panic.is_empty() {
                    set(vars, "panic", format!(": {}", clip(&panic, 220)));
                }
            }
        }
        "maven.surefire_failures" => {
            let Some((_, first)) = following(log, at, 3)
                .find(|(_, l)| l.starts_with("[ERROR]   ") || l.starts_with("[ERROR]  "))
            else {
                return false;
            };
            let entry = first.trim_start_matches("[ERROR]").trim();
            let Some(c) = SUREFIRE_ENTRY.captures(entry) else {
                return false;
            };
            set(vars, "test", format!("{}#{}", &c[1], &c[2]));
            if let Some(l) = c.get(3) {
                set(vars, "at", format!(" at line {}", l.as_str()));
            }
            set(
                vars,
                "msg",
                clip(c.get(4).map_or("failed", |m| m.as_str()), 200),
            );
        }
        "gradle.test_failed" => {
            let msg = following(log, at, 4)
                .map(|(_, l)| l.trim())
                .find(|t| !t.is_empty() && !t.starts_with("at "))
                .unwrap_or("failed")
                .to_owned();
            set(vars, "msg", clip(&msg, 200));
        }
        "test.junit_xml" => {
            // Failed only when a <failure> or <error> follows before the
            // case ends (or on the same line).
            let same = log[at].as_str();
            let mut lines = std::iter::once(same).chain(following(log, at, 6).map(|x| x.1));
            let Some(f) = lines.find_map(|l| {
                if let Some(c) = JUNIT_FAILURE.captures(l) {
                    return Some(Some(c.get(1).map_or("failed", |m| m.as_str()).to_owned()));
                }
                (l.contains("</testcase>") || (l != same && l.contains("<testcase")))
                    .then_some(None)
            }) else {
                return false;
            };
            let Some(msg) = f else { return false };
            set(
                vars,
                "msg",
                clip(
                    &msg.replace("&quot;", "\"")
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&amp;", "&"),
                    200,
                ),
            );
        }
        "helm.error" if !cmd_uses(cmd, &["helm", "helmfile"]) => return false,
        "go.test_timeout" => {
            // `running tests:` then one `\tTestName (1s)` a line.
            let names: Vec<String> = following(log, at, 8)
                .skip_while(|(_, l)| !l.starts_with("running tests:"))
                .skip(1)
                .map_while(|(_, l)| {
                    let t = l.trim();
                    (l.starts_with('\t') && !t.is_empty())
                        .then(|| t.split_whitespace().next().unwrap_or(t).to_owned())
                })
                .collect();
            let names = if names.is_empty() {
                // Older Go: the test is a frame of the goroutine dump.
                following(log, at, 120)
                    .find_map(|(_, l)| GO_TEST_FRAME.captures(l).map(|c| c[1].to_owned()))
                    .into_iter()
                    .collect()
            } else {
                names
            };
            if !names.is_empty() {
                set(vars, "test", names.join(", "));
            }
        }
        "git.auth" => {
            set(vars, "detail", format!(": {}", clip(log[at].trim(), 200)));
        }
        "go.test_fail" => {
            let test = get(vars, "test").to_owned();
            let mut leaf = test.clone();
            let mut loc = String::new();
            let mut msg = String::new();
            for (_, l) in following(log, at, 40) {
                let t = l.trim_start();
                if let Some(rest) = t.strip_prefix("--- FAIL: ") {
                    let name = rest.split_whitespace().next().unwrap_or_default();
                    if name.starts_with(&format!("{leaf}/")) {
                        leaf = name.to_owned();
                        loc.clear();
                        msg.clear();
                    }
                    continue;
                }
                if let Some(p) = t.strip_prefix("panic: ") {
                    if msg.is_empty() {
                        msg = format!("panic: {}", p.trim_end_matches(" [recovered]"));
                    }
                    break;
                }
                if !l.starts_with(' ') && !l.starts_with('\t') {
                    break;
                }
                if msg.is_empty()
                    && let Some(c) = GO_LOC.captures(l)
                {
                    loc = c[1].to_owned();
                    msg = c[2].trim().to_owned();
                }
            }
            if msg.is_empty() {
                // `go test -v`: the messages come between `=== RUN leaf`
                // and the FAIL line.
                let run = format!("=== RUN   {leaf}");
                if let Some(start) = log[..at].iter().rposition(|l| l.trim_end() == run)
                    && let Some((l, m)) = log[start + 1..at].iter().find_map(|l| {
                        GO_LOC
                            .captures(l)
                            .map(|c| (c[1].to_owned(), c[2].trim().to_owned()))
                    })
                {
                    loc = l;
                    msg = m;
                }
            }
            // `-race`: the test fails on the race report printed above it.
            if msg.contains("race detected during execution of test")
                && let Some(race) = super::toolextra::go_race(log, at)
            {
                loc.clear();
                msg = race;
            }
            set(vars, "test", leaf);
            set(
                vars,
                "location",
                if loc.is_empty() {
                    String::new()
                } else {
                    format!(" at {loc}")
                },
            );
            set(
                vars,
                "msg",
                if msg.is_empty() {
                    "failed".to_owned()
                } else {
                    clip(&msg, 200)
                },
            );
        }
        _ => return super::toolparse::enrich(id, vars, log, at, cmd),
    }
    true
}
