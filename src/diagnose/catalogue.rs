//! The rule catalogue: data-driven rules compiled in from `catalogue.toml`,
//! extended or overridden by `*.toml` files in the user's config dir.
//!
//! All patterns of all rules go into one byte-level [`RegexSet`] (ASCII
//! classes, no Unicode tables) used as a prefilter over each line; only the
//! rules whose pattern matched run their own (capturing) regexes.

use std::path::Path;

use regex::Regex;
use regex::bytes::{RegexSet, RegexSetBuilder};
use serde::{Deserialize, Serialize};

/// The compiled-in rules.
pub const BUILTIN: &str = include_str!("catalogue.toml");

/// One rule as written in a catalogue file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable id (`aws.access_denied`); a user rule with an existing id
    /// replaces the built-in one.
    pub id: String,
    /// `permissions`, `credentials`, `aws`, `kubernetes`, `build`, `test`,
    /// `shell`, `resources`, `network`, `engine`, `deploy`, `audit`.
    pub category: String,
    /// Regexes tried on each log line, status text and audit error message;
    /// named groups become template variables. Empty for rules that only
    /// Rust logic fires (test reports, health events, the audit trail).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Title template: `{name}` is a named capture group (or a variable the
    /// rule's Rust logic adds); a missing variable renders as `?`.
    pub title: String,
    /// Fix template, same variables.
    pub fix: String,
    #[serde(default)]
    pub reference: Option<String>,
    /// Base confidence, 0..1.
    pub confidence: f32,
    /// Ranking: a higher priority comes first (root causes over symptoms).
    pub priority: i32,
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub struct Rule {
    pub spec: RuleSpec,
    pub regexes: Vec<LazyRegex>,
}

/// A rule's capturing regex, compiled the first time the prefilter says
/// its pattern matched a line: most rules never match a given log, and
/// the compiled Unicode regexes of the whole catalogue take ~27 MB
/// (measured 2026-12-01 with the catalogue's 236 patterns) where the
/// byte-level prefilter takes ~4 MB.
#[derive(Debug, Clone)]
pub struct LazyRegex {
    pattern: String,
    compiled: std::sync::OnceLock<Option<Regex>>,
}

impl LazyRegex {
    fn new(pattern: &str) -> LazyRegex {
        LazyRegex {
            pattern: pattern.to_owned(),
            compiled: std::sync::OnceLock::new(),
        }
    }

    /// The compiled regex; `None` only when a pattern that parsed at load
    /// fails to compile (a size limit), which is logged once.
    pub fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| match Regex::new(&self.pattern) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(pattern = self.pattern, error = %e, "diagnosis rule pattern does not compile");
                    None
                }
            })
            .as_ref()
    }
}

/// The compiled catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub rules: Vec<Rule>,
    set: RegexSet,
    /// For each pattern of `set`: (rule index, regex index in the rule).
    owners: Vec<(usize, usize)>,
}

impl Catalogue {
    /// The compiled-in rules only.
    pub fn builtin() -> Catalogue {
        let (specs, _) = parse(BUILTIN, "catalogue.toml (built in)");
        Catalogue::compile(specs, "catalogue.toml (built in)").0
    }

    /// The built-in rules plus every `*.toml` in `dir` (sorted by name; a
    /// later file wins for the same id). Problems come back as warnings
    /// naming the file and rule; the bad rule or file is left out.
    pub fn with_user_dir(dir: Option<&Path>) -> (Catalogue, Vec<String>) {
        let mut warnings = Vec::new();
        let (mut specs, w) = parse(BUILTIN, "catalogue.toml (built in)");
        warnings.extend(w);
        let mut extra: Vec<(String, RuleSpec)> = Vec::new();
        if let Some(dir) = dir {
            let mut files: Vec<_> = match std::fs::read_dir(dir) {
                Ok(rd) => rd
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => {
                    warnings.push(format!("{}: cannot read rule dir: {e}", dir.display()));
                    Vec::new()
                }
            };
            files.sort();
            for f in files {
                let name = f.display().to_string();
                match std::fs::read_to_string(&f) {
                    Ok(text) => {
                        let (s, w) = parse(&text, &name);
                        warnings.extend(w);
                        extra.extend(s.into_iter().map(|r| (name.clone(), r)));
                    }
                    Err(e) => warnings.push(format!("{name}: cannot read: {e}")),
                }
            }
        }
        for (file, r) in extra {
            if let Err(e) = validate(&r) {
                warnings.push(format!("{file}: rule {}: {e}", r.id));
                continue;
            }
            match specs.iter_mut().find(|s| s.id == r.id) {
                Some(s) => *s = r,
                None => specs.push(r),
            }
        }
        let (cat, w) = Catalogue::compile(specs, "rules");
        warnings.extend(w);
        (cat, warnings)
    }

    /// Compiles rule specs; a rule with a bad pattern is dropped with a
    /// warning.
    pub fn compile(specs: Vec<RuleSpec>, origin: &str) -> (Catalogue, Vec<String>) {
        let mut warnings = Vec::new();
        let mut rules = Vec::new();
        let mut set_patterns = Vec::new();
        let mut owners = Vec::new();
        for spec in specs {
            if let Err(e) = check(&spec) {
                warnings.push(format!("{origin}: rule {}: {e}", spec.id));
                continue;
            }
            let mut regexes = Vec::new();
            let mut ok = true;
            for p in &spec.patterns {
                // Parsed here (cheap), compiled at its first use.
                match regex_syntax::Parser::new().parse(p) {
                    Ok(_) => regexes.push(LazyRegex::new(p)),
                    Err(e) => {
                        warnings.push(format!(
                            "{origin}: rule {}: bad pattern `{p}`: {e}",
                            spec.id
                        ));
                        ok = false;
                    }
                }
            }
            // The prefilter is byte-level with ASCII classes; it must accept
            // the pattern too.
            for p in &spec.patterns {
                if ok && !prefilter_accepts(p) {
                    warnings.push(format!(
                        "{origin}: rule {}: pattern `{p}` cannot be prefiltered \
                         (use ASCII classes)",
                        spec.id
                    ));
                    ok = false;
                }
            }
            if !ok {
                continue;
            }
            let ri = rules.len();
            for (pi, p) in spec.patterns.iter().enumerate() {
                set_patterns.push(p.clone());
                owners.push((ri, pi));
            }
            rules.push(Rule { spec, regexes });
        }
        let set = match prefilter(&set_patterns) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(format!(
                    "{origin}: the combined rule set does not compile: {e}"
                ));
                owners.clear();
                RegexSet::empty()
            }
        };
        (Catalogue { rules, set, owners }, warnings)
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.spec.id == id)
    }

    /// Rule ids in catalogue order.
    pub fn ids(&self) -> Vec<&str> {
        self.rules.iter().map(|r| r.spec.id.as_str()).collect()
    }

    /// (rule index, regex index) of every pattern that matches `text`.
    pub(crate) fn candidates(&self, text: &str, out: &mut Vec<(usize, usize)>) {
        out.clear();
        let b = text.as_bytes();
        if !self.set.is_match(b) {
            return;
        }
        for i in self.set.matches(b).iter() {
            out.push(self.owners[i]);
        }
    }
}

fn prefilter(patterns: &[String]) -> Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(patterns)
        .unicode(false)
        .size_limit(64 << 20)
        .dfa_size_limit(64 << 20)
        .build()
}

/// Whether the byte-level, ASCII-class prefilter can take `p` (what
/// [`prefilter`] needs, without compiling a set per pattern).
fn prefilter_accepts(p: &str) -> bool {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(p)
        .is_ok()
}

/// `check` plus every pattern compiling (as a regex and in the prefilter).
fn validate(r: &RuleSpec) -> Result<(), String> {
    check(r)?;
    for p in &r.patterns {
        Regex::new(p).map_err(|e| format!("bad pattern `{p}`: {e}"))?;
        prefilter(std::slice::from_ref(p))
            .map_err(|e| format!("pattern `{p}` cannot be prefiltered (use ASCII classes): {e}"))?;
    }
    Ok(())
}

fn check(r: &RuleSpec) -> Result<(), String> {
    if r.id.trim().is_empty() {
        return Err("empty id".into());
    }
    if !(0.0..=1.0).contains(&r.confidence) {
        return Err(format!("confidence {} is not within 0..1", r.confidence));
    }
    if r.title.trim().is_empty() {
        return Err("empty title".into());
    }
    Ok(())
}

/// Parses a catalogue file: rules that do not deserialize are reported by
/// index (and id when readable) and skipped.
pub fn parse(text: &str, origin: &str) -> (Vec<RuleSpec>, Vec<String>) {
    let mut warnings = Vec::new();
    let value: toml::Table = match toml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            warnings.push(format!("{origin}: not valid TOML: {e}"));
            return (Vec::new(), warnings);
        }
    };
    let mut out = Vec::new();
    for k in value.keys() {
        if k != "rule" {
            warnings.push(format!("{origin}: unknown key `{k}` (expected [[rule]])"));
        }
    }
    let Some(rules) = value.get("rule") else {
        return (out, warnings);
    };
    let Some(rules) = rules.as_array() else {
        warnings.push(format!(
            "{origin}: `rule` must be an array of tables ([[rule]])"
        ));
        return (out, warnings);
    };
    for (i, r) in rules.iter().enumerate() {
        let id = r
            .get("id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("#{}", i + 1));
        match r.clone().try_into::<RuleSpec>() {
            Ok(spec) => out.push(spec),
            Err(e) => warnings.push(format!("{origin}: rule {id}: {e}")),
        }
    }
    (out, warnings)
}
