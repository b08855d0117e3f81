//! Failure diagnosis: "why did this turn red, and what do I do?".
//!
//! Pure: inputs in ([`Input`]: the log, the action and execution records,
//! audit and deployment-health events), findings out ([`Finding`], ranked
//! best first). No I/O, so the AWS side can feed CloudTrail events through
//! the same door. What is recognised lives in a data-driven rule catalogue
//! ([`Catalogue`], `catalogue.toml` compiled in, extensible by user files);
//! what templates cannot express (IAM statements, test-case extraction,
//! engine semantics) lives in [`handlers`], keyed by rule id.

pub mod catalogue;
mod fallback;
pub mod flux;
mod framing;
mod handlers;
mod parsers;
mod stream;
mod toolextra;
mod toolmore;
mod toolparse;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use self::catalogue::{Catalogue, Rule, RuleSpec};
pub use self::stream::{Streamed, diagnose_reader};
use crate::api::types::{ActionStatus, ExecutionStatus};
use crate::api::{ActionExecutionDetail, AuditEvent, ExecutionSummary, TransitionState};

/// A deployment signal: an alarm that fired, a failed health check, a
/// failed lifecycle hook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthEvent {
    /// RFC 3339.
    pub time: String,
    /// `alarm`, `health`, `hook` or `flux` (a Flux object that failed to
    /// roll out).
    pub kind: String,
    /// Alarm name, health-check target (endpoint) or hook name.
    pub name: String,
    /// Free text: the state reason, `GET /healthz -> 503 (3 of 3 failed)`,
    /// the hook's error.
    pub detail: String,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub measured: Option<f64>,
}

/// Everything a diagnosis looks at. Only `log` is usually present.
#[derive(Debug, Clone, Copy, Default)]
pub struct Input<'a> {
    /// The action's log, one entry per line; line numbers are 0-based.
    pub log: &'a [String],
    pub action: Option<&'a ActionExecutionDetail>,
    pub execution: Option<&'a ExecutionSummary>,
    /// Audit events (the engine's trail or CloudTrail); those inside the
    /// window are supporting evidence, and their error messages are
    /// diagnosed like log lines.
    pub audit: &'a [AuditEvent],
    pub health: &'a [HealthEvent],
    /// The stage the execution waits in front of, when its inbound
    /// transition is disabled.
    pub disabled_transition: Option<(&'a str, &'a TransitionState)>,
    /// The audit window (RFC 3339, inclusive). Default: from 30 minutes
    /// before the action started to 5 minutes after its last change; with
    /// no action, every event.
    pub window: Option<(&'a str, &'a str)>,
}

/// One piece of evidence behind a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Evidence {
    /// A log line, 1-based (the first line of the log is 1), in the JSON and
    /// in every text that names it.
    LogLine {
        line: usize,
        text: String,
    },
    Audit {
        event_time: String,
        event_name: String,
        who: String,
        error_code: Option<String>,
    },
    Health {
        time: String,
        kind: String,
        name: String,
        detail: String,
        threshold: Option<f64>,
        measured: Option<f64>,
    },
    TestCase {
        name: String,
    },
    /// A status text of the action or execution (`action.summary`,
    /// `action.errorDetails`, `execution.statusSummary`, …).
    Status {
        field: String,
        text: String,
    },
}

/// A diagnosis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The catalogue rule that produced it.
    pub rule: String,
    pub title: String,
    pub category: String,
    /// 0..1.
    pub confidence: f32,
    pub evidence: Vec<Evidence>,
    pub fix: String,
    pub reference: Option<String>,
}

/// Variables a finding's templates render with.
pub(crate) type Vars = BTreeMap<String, String>;

/// Evidence kept per finding (the count of matches is in the title when it
/// matters).
const MAX_EVIDENCE: usize = 8;
/// Distinct findings kept per rule.
const MAX_PER_RULE: usize = 5;

#[derive(Clone)]
struct Group {
    rule: usize,
    key: String,
    vars: Vars,
    /// Position of the first hit: the log line, or `log.len() + n` for
    /// status texts and events.
    first: usize,
    evidence: Vec<Evidence>,
    count: usize,
}

#[derive(Default, Clone)]
struct Acc {
    groups: Vec<Group>,
    per_rule: BTreeMap<usize, usize>,
}

/// What a match did to the findings: nothing (a rule's limit was reached,
/// or the evidence was already there), added evidence to a finding, or
/// started one (its first line: the handlers read the lines around it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Hit {
    None,
    Evidence,
    First,
}

impl Acc {
    fn add(&mut self, rule: usize, vars: Vars, pos: usize, ev: Evidence) -> Hit {
        let key: String = vars
            .iter()
            .filter(|(k, _)| !k.starts_with('_'))
            .map(|(k, v)| format!("{k}={v}\u{1}"))
            .collect();
        if let Some(g) = self
            .groups
            .iter_mut()
            .find(|g| g.rule == rule && g.key == key)
        {
            g.count += 1;
            if g.evidence.len() < MAX_EVIDENCE && !g.evidence.contains(&ev) {
                g.evidence.push(ev);
                return Hit::Evidence;
            }
            return Hit::None;
        }
        let n = self.per_rule.entry(rule).or_insert(0);
        if *n >= MAX_PER_RULE {
            return Hit::None;
        }
        *n += 1;
        self.groups.push(Group {
            rule,
            key,
            vars,
            first: pos,
            evidence: vec![ev],
            count: 1,
        });
        Hit::First
    }
}

fn captures(rule: &Rule, pi: usize, text: &str) -> Option<Vars> {
    let re = rule.regexes.get(pi)?.get()?;
    let caps = re.captures(text)?;
    let mut vars = Vars::new();
    for name in re.capture_names().flatten() {
        if let Some(m) = caps.name(name) {
            vars.insert(name.to_owned(), m.as_str().trim().to_owned());
        }
    }
    Some(vars)
}

/// Runs every rule whose prefilter matched `text`; each rule at most once.
fn scan(
    cat: &Catalogue,
    acc: &mut Acc,
    text: &str,
    pos: usize,
    ev: impl Fn() -> Evidence,
    cands: &mut Vec<(usize, usize)>,
) -> Hit {
    cat.candidates(text, cands);
    apply(cat, acc, text, pos, ev, cands)
}

/// The capturing regexes of the candidates `cands` found for `text`.
fn apply(
    cat: &Catalogue,
    acc: &mut Acc,
    text: &str,
    pos: usize,
    ev: impl Fn() -> Evidence,
    cands: &[(usize, usize)],
) -> Hit {
    let mut hit = Hit::None;
    let mut last_rule = usize::MAX;
    for &(ri, pi) in cands {
        if ri == last_rule {
            continue;
        }
        if let Some(mut vars) = captures(&cat.rules[ri], pi, text) {
            vars.insert("_pos".into(), pos.to_string());
            hit = hit.max(acc.add(ri, vars, pos, ev()));
            last_rule = ri;
        }
    }
    hit
}

fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z').split('+').next()?)
        .ok()
        .or_else(|| humantime::parse_rfc3339(s).ok())
}

fn in_window(input: &Input, t: &str) -> bool {
    let (from, to) = match input.window {
        Some((a, b)) => (parse_time(a), parse_time(b)),
        None => match input.action {
            Some(a) => (
                parse_time(&a.start_time).and_then(|t| t.checked_sub(Duration::from_secs(1800))),
                parse_time(&a.last_status_change).map(|t| t + Duration::from_secs(300)),
            ),
            None => return true,
        },
    };
    let Some(t) = parse_time(t) else { return true };
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t <= e)
}

/// Who an audit event names: the user name, else the ARN's last part.
/// Never empty: the principal id, else "an unknown identity".
pub(crate) fn audit_who(e: &AuditEvent) -> String {
    let u = &e.user_identity;
    [
        u.user_name.clone().unwrap_or_default(),
        u.arn
            .rsplit(['/', ':'])
            .next()
            .unwrap_or_default()
            .to_owned(),
        u.principal_id.clone(),
    ]
    .into_iter()
    .find(|w| !w.trim().is_empty())
    .unwrap_or_else(|| "an unknown identity".to_owned())
}

fn audit_evidence(e: &AuditEvent) -> Evidence {
    Evidence::Audit {
        event_time: e.event_time.clone(),
        event_name: e.event_name.clone(),
        who: audit_who(e),
        error_code: e.error_code.clone(),
    }
}

/// The status texts worth diagnosing, as (field, text).
fn status_texts(input: &Input) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(a) = input.action
        && a.status != ActionStatus::Succeeded
    {
        if let Some(s) = &a.summary {
            out.push(("action.summary".into(), s.clone()));
        }
        if let Some(e) = &a.error_details
            && a.summary.as_deref() != Some(e.message.as_str())
        {
            out.push(("action.errorDetails".into(), e.message.clone()));
        }
        if input.log.is_empty() {
            for p in &a.phases {
                if let Some(st) = &p.phase_status {
                    out.push((
                        "action.phases".into(),
                        format!("[Container] Phase complete: {} State: {st}", p.phase_type),
                    ));
                }
            }
        }
    }
    if let Some(x) = input.execution {
        if let Some(s) = &x.status_summary {
            out.push(("execution.statusSummary".into(), s.clone()));
        }
        if matches!(
            x.status,
            ExecutionStatus::Stopped | ExecutionStatus::Stopping
        ) {
            out.push((
                "execution.stopReason".into(),
                match &x.stop_reason {
                    Some(r) if !r.is_empty() => format!("stop requested: {r}"),
                    _ => "stop requested".into(),
                },
            ));
        }
    }
    out
}

/// Diagnoses a failure: findings ranked best first (empty when nothing is
/// recognised).
pub fn diagnose(input: &Input, catalogue: &Catalogue) -> Vec<Finding> {
    // Colour codes and carriage-return redraws (progress bars, CRLF logs)
    // are not part of what a tool said: read the text without them.
    let cleaned: Vec<String>;
    let plain;
    let input = if input.log.iter().any(|l| needs_cleaning(l)) {
        cleaned = input.log.iter().map(|l| clean_line(l)).collect();
        plain = Input {
            log: &cleaned,
            ..*input
        };
        &plain
    } else {
        input
    };
    let mut scan_log = stream::Scan::new(catalogue);
    for (i, line) in input.log.iter().enumerate() {
        scan_log.line(i, line);
    }
    conclude(input, catalogue, scan_log.finish())
}

/// Everything after the pass over the log lines: status texts, audit
/// events, findings from events, the handlers, the ranking and the
/// fallback. `input.log` is the whole log, or the streaming reader's
/// excerpt of it (positions in `acc` are indices into it).
fn conclude(input: &Input, catalogue: &Catalogue, mut acc: Acc) -> Vec<Finding> {
    let mut cands = Vec::new();
    let framing = framing::Framing::parse(input.log);
    let mut pos = input.log.len();
    for (field, text) in status_texts(input) {
        scan(
            catalogue,
            &mut acc,
            &text,
            pos,
            || Evidence::Status {
                field: field.clone(),
                text: text.clone(),
            },
            &mut cands,
        );
        pos += 1;
    }
    let window: Vec<&AuditEvent> = input
        .audit
        .iter()
        .filter(|e| in_window(input, &e.event_time))
        .collect();
    for e in &window {
        if let Some(code) = &e.error_code {
            let text = format!(
                "An error occurred ({code}) when calling the {} operation: {}",
                e.event_name,
                e.error_message.as_deref().unwrap_or_default()
            );
            scan(
                catalogue,
                &mut acc,
                &text,
                pos,
                || audit_evidence(e),
                &mut cands,
            );
            pos += 1;
        }
    }
    handlers::synthetic(input, &window, &mut |id, vars, ev| {
        if let Some(ri) = catalogue.rules.iter().position(|r| r.spec.id == id) {
            let first = pos;
            pos += 1;
            let mut vars = vars;
            vars.insert("_pos".into(), first.to_string());
            let mut evs = ev.into_iter();
            if let Some(e0) = evs.next() {
                acc.add(ri, vars.clone(), first, e0);
                for e in evs {
                    acc.add(ri, vars.clone(), first, e);
                }
            }
        }
    });

    let first_failed = framing.first_failed().map(|c| c.run);
    let mut findings: Vec<(i32, usize, Finding)> = Vec::new();
    for mut g in acc.groups {
        let rule = &catalogue.rules[g.rule];
        g.vars.insert("count".into(), g.count.to_string());
        if !handlers::enrich(&rule.spec.id, &mut g.vars, &mut g.evidence, input, &framing) {
            continue;
        }
        let title = render(&rule.spec.title, &g.vars)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if let Some((_, _, f)) = findings
            .iter_mut()
            .find(|(_, _, f)| f.rule == rule.spec.id && f.title == title)
        {
            for e in g.evidence {
                if f.evidence.len() < MAX_EVIDENCE && !f.evidence.contains(&e) {
                    f.evidence.push(e);
                }
            }
            continue;
        }
        let confidence = g
            .vars
            .get("_confidence")
            .and_then(|c| c.parse::<f32>().ok())
            .unwrap_or(rule.spec.confidence)
            .clamp(0.0, 1.0);
        let mut priority = g
            .vars
            .get("_priority")
            .and_then(|p| p.parse::<i32>().ok())
            .unwrap_or(rule.spec.priority);
        // What a later command printed after the build had already failed
        // (a post_build step, a cleanup) ranks below the first failure.
        if let (Some(first), Some(owner)) = (first_failed, framing.owner(g.first))
            && owner.run > first
            && matches!(owner.outcome, framing::Outcome::Failed(_))
        {
            priority -= 60;
        }
        findings.push((
            priority,
            g.first,
            Finding {
                rule: rule.spec.id.clone(),
                title,
                category: rule.spec.category.clone(),
                confidence,
                evidence: g.evidence,
                fix: render(&rule.spec.fix, &g.vars),
                reference: rule.spec.reference.clone(),
            },
        ));
    }
    findings.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.2.confidence.total_cmp(&a.2.confidence))
            .then(a.1.cmp(&b.1))
    });
    let mut out: Vec<Finding> = findings.into_iter().map(|(_, _, f)| f).collect();
    if out.is_empty()
        && let Some(f) = unframed_failure(input, catalogue)
    {
        out.push(f);
    }
    out
}

fn needs_cleaning(l: &str) -> bool {
    memchr::memchr2(0x1b, b'\r', l.as_bytes()).is_some()
}

/// `l` without ANSI escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ...
/// BEL|ST`, two-byte `ESC x`), and of a line redrawn with `\r` only its
/// last state (a trailing `\r` of CRLF is dropped).
pub(crate) fn clean_line(l: &str) -> String {
    let l = l.trim_end_matches('\r');
    let l = l.rsplit('\r').find(|p| !p.trim().is_empty()).unwrap_or(l);
    let mut out = String::with_capacity(l.len());
    let mut chars = l.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // Parameters and intermediates, then one final byte @..~.
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(d) = chars.next() {
                    if d == '\u{7}' {
                        break;
                    }
                    if d == '\u{1b}' {
                        chars.next_if_eq(&'\\');
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A failed action whose log has no CodeBuild framing (a Lambda or
/// Commands action, a log from elsewhere) and that no rule explains: the
/// lines of its log that most likely say why.
fn unframed_failure(input: &Input, catalogue: &Catalogue) -> Option<Finding> {
    let a = input.action?;
    if a.status != ActionStatus::Failed || input.log.is_empty() {
        return None;
    }
    let rule = catalogue.rule("build.command_failed")?;
    let log = input.log;
    let best = fallback::explain(log, 0, log.len(), 3);
    let why = match best.first() {
        Some(&(i, _)) => fallback::clip_why(&log[i]),
        None => format!(
            "last output: {}",
            fallback::clip_why(&log[fallback::last_output(log, 0, log.len())?])
        ),
    };
    let mut lines: Vec<usize> = best.iter().map(|b| b.0).collect();
    if lines.is_empty() {
        lines.extend(fallback::last_output(log, 0, log.len()));
    }
    lines.sort_unstable();
    let mut vars = Vars::new();
    vars.insert("cmd".into(), a.action_name.clone());
    vars.insert("code".into(), "a failure".into());
    vars.insert("why".into(), why);
    Some(Finding {
        rule: rule.spec.id.clone(),
        title: render(&rule.spec.title, &vars),
        category: rule.spec.category.clone(),
        confidence: 0.4,
        evidence: lines
            .into_iter()
            .map(|i| Evidence::LogLine {
                line: i + 1,
                text: log[i].clone(),
            })
            .collect(),
        fix: render(&rule.spec.fix, &vars),
        reference: rule.spec.reference.clone(),
    })
}

/// Renders `{name}` and `{name|fallback}` placeholders; a missing variable
/// without a fallback renders as `?` (an empty one as nothing). Other
/// braces are kept as written.
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let placeholder = after.find('}').and_then(|j| {
            let inner = &after[..j];
            let (name, fallback) = match inner.split_once('|') {
                Some((n, f)) => (n, Some(f)),
                None => (inner, None),
            };
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
            ok.then_some((j, name, fallback))
        });
        match placeholder {
            Some((j, name, fallback)) => {
                // An empty variable takes the fallback, else renders as
                // nothing; only a missing one without a fallback is `?`.
                match (vars.get(name), fallback) {
                    (Some(v), _) if !v.is_empty() => out.push_str(v),
                    (_, Some(f)) => out.push_str(f),
                    (Some(_), None) => {}
                    (None, None) => out.push('?'),
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}
