//! Logic keyed by rule id that templates cannot express: IAM statements,
//! test-case extraction, engine semantics, findings from events rather than
//! text.

use std::sync::LazyLock;

use regex::Regex;

use super::framing::{self, Framing, Outcome};
use super::{Evidence, Input, Vars, audit_who, fallback};
use crate::api::AuditEvent;

fn re(p: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(p).expect("built-in handler regex")
}

static CARGO_LOC: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*--> (\S+)"));
static AWS_CODE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\((\w+)\) when calling the \w+ operation(?: \([^)]*\))?: (?:User: \S+ )?is not authorized|\b(\w*(?:Exception|AccessDenied)): (?:User: \S+ )?is not authorized",
    )
});
static PY_FILE: LazyLock<Regex> =
    LazyLock::new(|| re(r#"^\s*File "([^"]+)", line (\d+), in (\S+)"#));
static PY_EXC: LazyLock<Regex> =
    LazyLock::new(|| re(r"^((?:\w+\.)*\w*(?:Error|Exception|Failure)\b:?.*)$"));
static PYTEST_E: LazyLock<Regex> = LazyLock::new(|| re(r"^E\s+(.*\S)"));
static PYTEST_LOC: LazyLock<Regex> = LazyLock::new(|| re(r"^(\S+\.py):(\d+): (\w+)"));
static RISKY: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b(?:push|deploy|upload|publish|release|apply|promote|s3 cp|s3 sync)\b")
});
static SSM_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"--(?:names?|secret-id) (\S+)"));
static PHASE_CTX: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"Phase context status code: \S+ Message: Error while executing command: (.*)\. Reason: exit status (-?\d+)",
    )
});

fn line_of(vars: &Vars) -> Option<usize> {
    vars.get("_pos").and_then(|p| p.parse().ok())
}

fn set(vars: &mut Vars, k: &str, v: impl Into<String>) {
    vars.insert(k.to_owned(), v.into());
}

/// `prefix` + `v`, or nothing when `v` is empty (optional template parts).
fn prefixed(prefix: &str, v: &str) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!("{prefix}{v}")
    }
}

fn default(vars: &mut Vars, k: &str, v: &str) {
    vars.entry(k.to_owned()).or_insert_with(|| v.to_owned());
}

/// "role build-role" / "user alice" from a principal ARN.
pub fn principal_name(arn: &str) -> String {
    let res = arn.splitn(6, ':').nth(5).unwrap_or(arn);
    let parts: Vec<&str> = res.split('/').collect();
    match parts.as_slice() {
        ["assumed-role", role, ..] => format!("role {role}"),
        ["role", .., role] => format!("role {role}"),
        ["user", .., user] => format!("user {user}"),
        ["root"] => "the account root".to_owned(),
        _ if !arn.is_empty() => arn.to_owned(),
        _ => "the build's role".to_owned(),
    }
}

/// An IAM policy statement that grants exactly `action` on `resource`.
pub fn iam_statement(action: &str, resource: &str) -> String {
    let sid: String = action
        .split([':', '-', '*'])
        .flat_map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
        })
        .collect();
    let v = serde_json::json!({
        "Sid": format!("Allow{sid}"),
        "Effect": "Allow",
        "Action": action,
        "Resource": if resource.is_empty() { "*" } else { resource },
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// Adjusts a finding's variables and evidence; `false` drops the finding.
pub fn enrich(
    id: &str,
    vars: &mut Vars,
    evidence: &mut Vec<Evidence>,
    input: &Input,
    framing: &Framing,
) -> bool {
    let log = input.log;
    let at = line_of(vars);
    let from_log = at.is_some_and(|l| l < log.len());
    let after = |n: usize| -> &[String] {
        match at {
            Some(l) if l < log.len() => &log[l + 1..(l + 1 + n).min(log.len())],
            _ => &[],
        }
    };
    match id {
        "aws.access_denied" => {
            let resource = vars
                .get("resource")
                .map(|r| r.trim_end_matches(['.', ',', ';', '"', '\'']).to_owned())
                .unwrap_or_default();
            let action = vars.get("action").cloned().unwrap_or_default();
            let principal = vars.get("principal").cloned().unwrap_or_default();
            let who = principal_name(&principal);
            set(vars, "who", who.clone());
            set(
                vars,
                "resource",
                if resource.is_empty() {
                    "*".into()
                } else {
                    resource.clone()
                },
            );
            set(vars, "statement", iam_statement(&action, &resource));
            let text = match evidence.first() {
                Some(Evidence::LogLine { text, .. }) => text.as_str(),
                Some(Evidence::Status { text, .. }) => text.as_str(),
                _ => "",
            };
            // The error code the CLI (`An error occurred (Code) when
            // calling …`) or an SDK (`Code: User: …`) put before it.
            if let Some(c) = AWS_CODE.captures(text) {
                let code = c.get(1).or(c.get(2)).map_or("", |m| m.as_str());
                set(vars, "code_part", format!(" ({code})"));
            }
            let attach = match principal
                .split_once(":assumed-role/")
                .or(principal.split_once(":role/"))
            {
                Some((_, r)) => format!(
                    " (e.g. `aws iam put-role-policy --role-name {} --policy-name allow-{} --policy-document file://statement.json`, with the statement inside a policy document)",
                    r.split('/').next().unwrap_or(r),
                    action.replace([':', '*'], "-").to_lowercase()
                ),
                None => String::new(),
            };
            set(
                vars,
                "note",
                if text.contains("explicit deny") {
                    format!(
                        "{attach}. The message names an explicit deny: an identity policy, permissions boundary or SCP denies it, and an Allow alone will not help; remove or narrow that Deny."
                    )
                } else {
                    format!("{attach}.")
                },
            );
        }
        "deploy.alarm_log" => {
            // The group the bad release ran on: the deploy's own progress
            // lines name it (`… 10% of traffic on blue (rev)`).
            let end = at.unwrap_or(log.len()).min(log.len());
            let color = log[..end].iter().rev().find_map(|l| traffic_group(l));
            if let Some(c) = color {
                set(vars, "color", c);
            }
        }
        "maven.error" => {
            // `The build could not read 1 project -> [Help 1]` is followed by
            // the projects and, indented deeper, each one's problems: the
            // first of those is the cause. `-e` puts the exception's stack
            // trace (not `[ERROR]` lines) in between.
            let detail = after(80)
                .iter()
                .filter_map(|l| l.strip_prefix("[ERROR]"))
                .find(|l| l.starts_with("    ") && !l.trim().is_empty())
                .map(str::trim);
            if let Some(d) = detail {
                set(vars, "detail", format!(": {}", fallback::clip(d, 200)));
            }
        }
        "aws.access_denied_op" => {
            // Only when no finding names the action: the full message beats
            // the bare error code.
            default(vars, "op", "?");
        }
        "cargo.error" => {
            let loc = after(6)
                .iter()
                .find_map(|l| CARGO_LOC.captures(l).map(|c| c[1].to_owned()));
            set(
                vars,
                "location",
                loc.map(|l| format!(" at {l}")).unwrap_or_default(),
            );
        }
        "test.pytest" => {
            let file = vars.get("file").cloned().unwrap_or_default();
            let mut assertion = vars
                .get("msg")
                .filter(|m| !m.ends_with("..."))
                .cloned()
                .unwrap_or_default();
            let mut lineno = String::new();
            // The traceback section for this test: its `E ` lines and the
            // `file.py:N: Error` line.
            let test = vars.get("test").cloned().unwrap_or_default();
            let short = test.rsplit("::").next().unwrap_or(&test).to_owned();
            if let Some(start) = log
                .iter()
                .position(|l| l.starts_with('_') && l.contains(&format!(" {short} ")))
            {
                for l in log[start + 1..].iter().take(200) {
                    if l.starts_with("____") || l.starts_with("====") {
                        break;
                    }
                    if assertion.is_empty()
                        && let Some(c) = PYTEST_E.captures(l)
                    {
                        assertion = c[1].to_owned();
                    }
                    if let Some(c) = PYTEST_LOC.captures(l) {
                        lineno = c[2].to_owned();
                    }
                }
            }
            set(vars, "test", short);
            set(vars, "file", file);
            set(vars, "lineno", prefixed(":", &lineno));
            set(
                vars,
                "assertion",
                if assertion.is_empty() {
                    "failed".into()
                } else {
                    assertion
                },
            );
        }
        "test.unittest" => {
            let mut file = String::new();
            let mut lineno = String::new();
            let mut assertion = String::new();
            for l in after(60) {
                if l.starts_with("=====") || (l.starts_with("-----") && !assertion.is_empty()) {
                    break;
                }
                if let Some(c) = PY_FILE.captures(l) {
                    file = c[1].to_owned();
                    lineno = c[2].to_owned();
                } else if let Some(c) = PY_EXC.captures(l)
                    && !l.starts_with(' ')
                {
                    assertion = c[1].to_owned();
                }
            }
            let file = file.rsplit('/').next().unwrap_or(&file).to_owned();
            let test = vars.get("test").cloned().unwrap_or_default();
            let cls = vars.get("cls").cloned().unwrap_or_default();
            let full = if cls.ends_with(&format!(".{test}")) {
                cls
            } else {
                format!("{cls}.{test}")
            };
            set(vars, "full", full);
            set(
                vars,
                "file",
                if file.is_empty() {
                    "?".into()
                } else {
                    format!("{file}:{lineno}")
                },
            );
            set(
                vars,
                "assertion",
                if assertion.is_empty() {
                    "failed".into()
                } else {
                    assertion
                },
            );
        }
        "gradle.failure" => {
            // `Execution failed for task ':x'.` then `> cause` lines, each
            // nested one deeper: the deepest says why.
            let lines: Vec<&str> = after(12)
                .iter()
                .map(|l| l.as_str())
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty() && !l.starts_with("* "))
                .collect();
            let head = lines.first().map_or("the build failed", |l| l.trim());
            let cause = lines
                .iter()
                .skip(1)
                .filter_map(|l| l.trim().strip_prefix("> "))
                .next_back();
            let what = match cause {
                Some(c) => format!("{head} {c}"),
                None => head.to_owned(),
            };
            set(vars, "msg", fallback::clip(&what, 240));
        }
        "engine.prebuild_skipped" => {
            if from_log {
                let rest = after(usize::MAX / 2);
                if rest
                    .iter()
                    .any(|l| l.contains("[Container] Entering phase BUILD"))
                {
                    return false;
                }
                if let Some(c) = rest.iter().take(4).find_map(|l| PHASE_CTX.captures(l)) {
                    set(
                        vars,
                        "cause",
                        format!(": `{}` exited with {}", &c[1], &c[2]),
                    );
                }
            }
            default(vars, "cause", "");
        }
        "engine.post_build_after_failure" if from_log => {
            let rest = after(usize::MAX / 2);
            let Some(start) = rest
                .iter()
                .position(|l| l.contains("[Container] Entering phase POST_BUILD"))
            else {
                return false;
            };
            // A post_build that publishes (push, deploy, upload...) after
            // a failed build is the thing to fix first.
            let risky = rest[start..]
                .iter()
                .take_while(|l| !l.contains("[Container] Phase complete: POST_BUILD"))
                .filter_map(|l| l.split_once("[Container] Running command ").map(|x| x.1))
                .find(|c| RISKY.is_match(c));
            if let Some(c) = risky {
                set(vars, "cmd", format!("`{c}`"));
                set(vars, "_priority", "15");
            }
        }
        "npm.lifecycle" | "yarn.error" | "make.error" if from_log => {
            // A wrapper's summary of a failure printed above it: carry the
            // line that says why.
            if let Some(l) = at {
                let from = framing
                    .owner(l)
                    .map_or(l.saturating_sub(200), |c| c.run + 1);
                let why = if id == "make.error" {
                    fallback::explain(log, from, l, 1)
                        .first()
                        .filter(|(_, s)| *s >= 2.0)
                        .map(|&(i, _)| fallback::clip(log[i].trim(), 200))
                } else {
                    super::toolparse::wrapper_why(log, from, l)
                };
                if let Some(w) = why {
                    set(vars, "why", format!(": {w}"));
                }
            }
            if id == "make.error" {
                make_what(vars);
            }
        }
        "make.error" => make_what(vars),
        "k8s.image_pull" => {
            let subject = match vars.get("pod") {
                Some(p) => format!("Pod {p}"),
                None => "A pod".to_owned(),
            };
            let img = vars
                .get("image")
                .map(|i| format!(" {i}"))
                .unwrap_or_default();
            set(vars, "subject", subject);
            set(vars, "img", img);
        }
        "aws.parameter_not_found" | "aws.secret_not_found" => {
            if !vars.contains_key("name")
                && let Some(l) = at.filter(|l| *l < log.len())
            {
                let name = log[l.saturating_sub(6)..l]
                    .iter()
                    .rev()
                    .find_map(|x| SSM_NAME.captures(x).map(|c| c[1].to_owned()));
                if let Some(n) = name {
                    set(vars, "name", n);
                }
            }
            // The service's own error code, when the line has one.
            if let Some(l) = at.filter(|l| *l < log.len()) {
                for code in ["ParameterNotFound", "ResourceNotFoundException"] {
                    if log[l].contains(code) {
                        set(vars, "code_part", format!(" ({code})"));
                    }
                }
            }
        }
        "build.command_failed" | "build.failed_summary" => {
            explain_failure(vars, evidence, log, at.filter(|_| from_log), framing);
        }
        "engine.approval_rejected" => default(vars, "summary", "(no summary given)"),
        "engine.stop_requested" => {
            let r = vars.get("reason").cloned().unwrap_or_default();
            set(vars, "reason", prefixed(": ", &r));
        }
        _ => {
            let Some(l) = at.filter(|l| *l < log.len()) else {
                return true;
            };
            let owner = framing.owner(l);
            let cmd = owner.map_or("", |c| c.text.as_str());
            let seg = owner.map(|c| (c.run + 1, c.end));
            return super::parsers::enrich(id, vars, log, l, cmd, seg);
        }
    }
    true
}

/// The group a deploy's progress line sends traffic to (`[Deploy] … 10%
/// of traffic on blue (rev)` → `blue`).
pub(crate) fn traffic_group(l: &str) -> Option<String> {
    let rest = l.strip_prefix("[Deploy] ")?;
    let (_, after) = rest.split_once("% of traffic on ")?;
    after.split_whitespace().next().map(str::to_owned)
}

fn make_what(vars: &mut Vars) {
    let what = match vars.get("msg") {
        Some(m) => m.clone(),
        None => format!(
            "target `{}` failed (Error {}){}",
            vars.get("target").map_or("?", String::as_str),
            vars.get("code").map_or("?", String::as_str),
            match (vars.get("file"), vars.get("line")) {
                (Some(f), Some(l)) => format!(" at {f}:{l}"),
                _ => String::new(),
            }
        ),
    };
    set(vars, "what", what);
}

/// The fallback: what the failed command printed that most likely says
/// why, and what its exit status means.
fn explain_failure(
    vars: &mut Vars,
    evidence: &mut Vec<Evidence>,
    log: &[String],
    at: Option<usize>,
    framing: &Framing,
) {
    let code: Option<i32> = vars.get("code").and_then(|c| c.parse().ok());
    let cmd_text = vars.get("cmd").cloned().unwrap_or_default();
    let failed = |c: &&framing::Command| matches!(c.outcome, Outcome::Failed(_));
    // The command this failure line closes, else the failed command of that
    // name (a status text or summary names it).
    let cmd = match at {
        Some(l) => framing
            .commands
            .iter()
            .filter(failed)
            .find(|c| c.end == l)
            .or_else(|| {
                framing
                    .commands
                    .iter()
                    .filter(failed)
                    .find(|c| c.text == cmd_text)
            }),
        None => framing
            .commands
            .iter()
            .filter(failed)
            .find(|c| c.text == cmd_text)
            .or_else(|| framing.first_failed()),
    };
    let (from, to) = match (cmd, at) {
        (Some(c), _) => (c.run + 1, c.end),
        (None, Some(l)) => (l.saturating_sub(400), l),
        (None, None) => (log.len().saturating_sub(400), log.len()),
    };
    let first = framing.first_failed().map(|c| c.run);
    if cmd.is_some_and(|c| Some(c.run) != first) {
        // A later failure (post_build after a failed build): below the first.
        set(vars, "_confidence", "0.3");
        set(vars, "_priority", "9");
    }
    let best = fallback::explain(log, from, to, 3);
    let unformatted = fallback::unformatted_files(&cmd_text, log, from, to);
    let changed = fallback::changed_files(&cmd_text, log, from, to);
    // The command's last line of output, when no line scored.
    let last = fallback::last_output(log, from, to);
    if !vars.contains_key("_priority") {
        // A line that says why: above the symptoms (make's `Error 1`, a
        // skipped phase), below every rule that names the cause.
        match best.first() {
            _ if !changed.is_empty() => set(vars, "_priority", "45"),
            // A command that printed a line or two said why, whatever its
            // words: above a skipped phase's symptom (30), below every rule.
            None if last.is_some() && fallback::output_lines(log, from, to) <= 2 => {
                set(vars, "_priority", "33")
            }
            Some(b) if b.1 >= 3.5 => set(vars, "_priority", "45"),
            Some(_) => set(vars, "_priority", "35"),
            None => {}
        }
    }
    let why = match best.first() {
        _ if !unformatted.is_empty() => format!("not formatted: {}", unformatted.join(", ")),
        _ if !changed.is_empty() => format!("differs from the commit: {}", changed.join(", ")),
        Some(&(i, _)) => fallback::clip_why(&fallback::with_detail(log, i, to)),
        None => match last {
            Some(i) => format!("last output: {}", fallback::clip_why(&log[i])),
            None => "it printed nothing".to_owned(),
        },
    };
    if best.first().is_some_and(|b| b.1 >= 4.0) && !vars.contains_key("_confidence") {
        set(vars, "_confidence", "0.6");
    }
    let meaning = code
        .map(|c| framing::exit_meaning_for(&cmd_text, c))
        .unwrap_or_default();
    if !meaning.is_empty() && !vars.contains_key("_priority") {
        // The status alone says something (a signal, not found, timeout).
        set(vars, "_priority", "35");
    }
    let meaning = if meaning.is_empty() {
        String::new()
    } else {
        format!(" ({meaning})")
    };
    set(vars, "meaning", meaning);
    // A package manager's script that ran inside the command (a `pre…`
    // hook, a script calling another): the one printing the cause.
    let said = best.first().map(|b| b.0).or(last);
    if let Some(i) = said
        && let Some(part) = super::toolmore::script_banner(log, from, i, &cmd_text)
    {
        set(vars, "script", part);
    }
    set(vars, "why", why);
    set(vars, "cmd", fallback::clip(&cmd_text, 160));
    let mut lines: Vec<usize> = best.iter().map(|b| b.0).collect();
    if lines.is_empty()
        && let Some(i) = last
    {
        lines.push(i);
    }
    lines.sort_unstable();
    let mut evs: Vec<Evidence> = lines
        .into_iter()
        .map(|i| Evidence::LogLine {
            line: i + 1,
            text: log[i].clone(),
        })
        .collect();
    for e in evidence.drain(..) {
        if !evs.contains(&e) {
            evs.push(e);
        }
    }
    evs.truncate(super::MAX_EVIDENCE);
    *evidence = evs;
}

fn fmt_num(x: Option<f64>) -> String {
    x.map_or_else(|| "?".into(), |v| format!("{v}"))
}

/// Findings from inputs that are not text: test reports, deployment health
/// events, a disabled transition, the audit trail.
pub fn synthetic(
    input: &Input,
    window: &[&AuditEvent],
    emit: &mut dyn FnMut(&str, Vars, Vec<Evidence>),
) {
    if let Some(t) = input.action.and_then(|a| a.test_report.as_ref())
        && (t.failed > 0 || !t.failing.is_empty())
    {
        let mut v = Vars::new();
        v.insert(
            "failed".into(),
            t.failed.max(t.failing.len() as u32).to_string(),
        );
        v.insert("passed".into(), t.passed.to_string());
        v.insert(
            "first".into(),
            t.failing.first().cloned().unwrap_or_default(),
        );
        v.insert("names".into(), t.failing.join(", "));
        v.insert("files".into(), t.files.join(", "));
        let ev = t
            .failing
            .iter()
            .map(|n| Evidence::TestCase { name: n.clone() })
            .collect();
        emit("test.junit", v, ev);
    }
    for h in input.health {
        let id = match h.kind.as_str() {
            "alarm" => "deploy.alarm",
            "health" => "deploy.health_check",
            "hook" => "deploy.hook",
            "flux" => "deploy.flux",
            _ => continue,
        };
        let mut v = Vars::new();
        v.insert("name".into(), h.name.clone());
        v.insert("detail".into(), h.detail.clone());
        v.insert("threshold".into(), fmt_num(h.threshold));
        v.insert("measured".into(), fmt_num(h.measured));
        v.insert("time".into(), h.time.clone());
        emit(
            id,
            v,
            vec![Evidence::Health {
                time: h.time.clone(),
                kind: h.kind.clone(),
                name: h.name.clone(),
                detail: h.detail.clone(),
                threshold: h.threshold,
                measured: h.measured,
            }],
        );
    }
    if let Some((stage, t)) = input.disabled_transition
        && !t.enabled
    {
        let mut v = Vars::new();
        v.insert("stage".into(), stage.to_owned());
        v.insert(
            "reason".into(),
            t.disabled_reason
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        );
        v.insert(
            "by".into(),
            t.last_changed_by
                .clone()
                .unwrap_or_else(|| "someone".into()),
        );
        let text = format!(
            "transition into {stage} disabled by {}: {}",
            v.get("by").map_or("", String::as_str),
            v.get("reason").map_or("", String::as_str)
        );
        emit(
            "engine.transition_disabled",
            v,
            vec![Evidence::Status {
                field: "transition".into(),
                text,
            }],
        );
    }
    if !window.is_empty() {
        let mut who: Vec<String> = Vec::new();
        for e in window {
            let w = audit_who(e);
            if !who.contains(&w) {
                who.push(w);
            }
        }
        let mut v = Vars::new();
        v.insert("events".into(), window.len().to_string());
        v.insert("who".into(), who.join(", "));
        // The events nearest the failure (the action's end), in time order.
        let failed_at = input
            .action
            .and_then(|a| super::parse_time(&a.last_status_change));
        let mut near: Vec<&AuditEvent> = window.to_vec();
        if let Some(f) = failed_at {
            near.sort_by_key(|e| {
                super::parse_time(&e.event_time).map_or(u128::MAX, |t| {
                    t.duration_since(f)
                        .or_else(|_| f.duration_since(t))
                        .map_or(u128::MAX, |d| d.as_millis())
                })
            });
        }
        near.truncate(super::MAX_EVIDENCE);
        near.sort_by(|a, b| a.event_time.cmp(&b.event_time));
        let ev = near.iter().map(|e| super::audit_evidence(e)).collect();
        emit("audit.trail", v, ev);
    }
}
