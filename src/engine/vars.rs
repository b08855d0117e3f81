//! `#{namespace.key}` references in action configurations, resolved right
//! before the action starts (reference §1 "Variables").

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

static REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"#\{([A-Za-z0-9@_-]+)\.([A-Za-z0-9@_.-]+)\}").unwrap_or_else(|_| unreachable!())
});

/// What an action can see: `codepipeline.*`, `variables.*` and the
/// namespaces of actions that ran before it in this execution.
pub type Scope = BTreeMap<String, BTreeMap<String, String>>;

/// Replaces every reference in `text`; names each one that is unknown.
pub fn resolve(text: &str, scope: &Scope) -> Result<String, String> {
    let mut missing = Vec::new();
    let out = REF.replace_all(text, |c: &regex::Captures<'_>| {
        let (ns, key) = (&c[1], &c[2]);
        match scope.get(ns).and_then(|m| m.get(key)) {
            Some(v) => v.clone(),
            None => {
                missing.push(format!("#{{{ns}.{key}}}"));
                c[0].to_owned()
            }
        }
    });
    if missing.is_empty() {
        Ok(out.into_owned())
    } else {
        Err(format!(
            "cannot resolve {}: no earlier action in this execution produced {}",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" }
        ))
    }
}

/// Resolves every value of a configuration map.
pub fn resolve_map(
    config: &BTreeMap<String, String>,
    scope: &Scope,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (k, v) in config {
        let r = resolve(v, scope).map_err(|e| format!("configuration `{k}`: {e}"))?;
        out.insert(k.clone(), r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_known_and_names_unknown_references() {
        let mut scope = Scope::new();
        scope
            .entry("codepipeline".into())
            .or_default()
            .insert("PipelineExecutionId".into(), "e-1".into());
        assert_eq!(
            resolve("id #{codepipeline.PipelineExecutionId}!", &scope).unwrap(),
            "id e-1!"
        );
        let err = resolve("#{Src.CommitId}", &scope).unwrap_err();
        assert!(err.contains("#{Src.CommitId}"), "{err}");
    }
}
