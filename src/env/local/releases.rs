//! A local environment's releases: the successful deployments it
//! remembers (`releases.json`, newest last) for restarts and rollbacks,
//! the revisions' files they run from, and the hooks of a revision's
//! `appspec.yml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Hooks;

/// How many releases are remembered.
const KEPT: usize = 10;

/// A successful deployment, remembered for restarts and rollbacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub id: String,
    pub revision: String,
    pub dir: PathBuf,
    pub hooks: Hooks,
}

/// The releases of one environment, kept under its state directory.
#[derive(Debug, Clone)]
pub struct Releases {
    dir: PathBuf,
}

impl Releases {
    /// Releases kept in `dir` (`<state>/envs/<name>`).
    pub fn new(dir: impl Into<PathBuf>) -> Releases {
        Releases { dir: dir.into() }
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("releases.json")
    }

    /// Successful releases, oldest first (the last is live); none when the
    /// file does not exist yet. A file that cannot be read or parsed is an
    /// error naming it and the cause, never an empty history.
    pub fn history(&self) -> Result<Vec<Release>, String> {
        let path = self.file();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "cannot read {}: {e} (not a release history)",
                path.display()
            )
        })
    }

    /// Adds a successful release. Refused, leaving the file as it is, when
    /// the history there cannot be read.
    pub fn remember(&self, r: Release) -> Result<(), String> {
        let mut h = self
            .history()
            .map_err(|e| format!("release {} not recorded: {e}", r.id))?;
        h.retain(|x| x.id != r.id);
        h.push(r);
        if h.len() > KEPT {
            h.remove(0);
        }
        let path = self.file();
        std::fs::create_dir_all(&self.dir)
            .and_then(|()| write_json(&path, &h))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Where a deployment's files are kept (the revision runs from there).
    pub fn revision_dir(&self, id: &str) -> PathBuf {
        self.dir.join("revisions").join(id)
    }
}

fn write_json<T: Serialize>(p: &Path, v: &T) -> std::io::Result<()> {
    let tmp = p.with_extension("tmp");
    std::fs::write(
        &tmp,
        serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?,
    )?;
    std::fs::rename(tmp, p)
}

/// Hooks from an `appspec.yml` in the revision: `hooks:` maps a lifecycle
/// event to a list of commands, or of `{location: script}` entries.
pub fn appspec_hooks(dir: &Path) -> Result<Hooks, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("appspec.yml"))
        .or_else(|_| std::fs::read_to_string(dir.join("appspec.yaml")))
    else {
        return Ok(Hooks::default());
    };
    let root = crate::model::yaml::parse(&text).map_err(|e| format!("appspec.yml: {e}"))?;
    let mut h = Hooks::default();
    let Some(hooks) = root.get("hooks") else {
        return Ok(h);
    };
    let entries: Vec<(String, &crate::model::node::Node)> = match &hooks.value {
        crate::model::node::Value::Map(m) => m.iter().map(|(k, v)| (k.name.clone(), v)).collect(),
        // ECS appspecs write a list of one-key maps.
        crate::model::node::Value::Seq(items) => items
            .iter()
            .filter_map(|i| match &i.value {
                crate::model::node::Value::Map(m) => m.first().map(|(k, v)| (k.name.clone(), v)),
                _ => None,
            })
            .collect(),
        _ => return Err("appspec.yml: `hooks` must be a map or a list".into()),
    };
    for (event, v) in entries {
        let cmds: Vec<String> = match &v.value {
            crate::model::node::Value::Seq(items) => items
                .iter()
                .filter_map(|i| match &i.value {
                    crate::model::node::Value::Str(s) => Some(s.clone()),
                    crate::model::node::Value::Map(_) => i
                        .get("location")
                        .and_then(|l| l.as_str().map(|s| format!("bash {s}"))),
                    _ => None,
                })
                .collect(),
            crate::model::node::Value::Str(s) => vec![s.clone()],
            _ => Vec::new(),
        };
        let slot = match event.as_str() {
            "BeforeInstall" => &mut h.before_install,
            "AfterInstall" => &mut h.after_install,
            "AfterAllowTestTraffic" => &mut h.after_allow_test_traffic,
            "BeforeAllowTraffic" => &mut h.before_allow_traffic,
            "AfterAllowTraffic" => &mut h.after_allow_traffic,
            other => return Err(format!("appspec.yml: unknown hook `{other}`")),
        };
        slot.extend(cmds);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(id: &str) -> Release {
        Release {
            id: id.into(),
            revision: format!("rev-{id}"),
            dir: PathBuf::from("/nowhere"),
            hooks: Hooks::default(),
        }
    }

    #[test]
    fn a_missing_history_is_empty_and_a_corrupt_one_is_an_error_left_untouched() {
        let d = tempfile::tempdir().unwrap();
        let r = Releases::new(d.path().join("dev"));
        assert_eq!(r.history(), Ok(Vec::new()));
        r.remember(release("d-1")).unwrap();
        assert_eq!(r.history().unwrap(), vec![release("d-1")]);

        std::fs::write(r.file(), "[{\"id\": \"d-1\", trunc").unwrap();
        let err = r.history().unwrap_err();
        assert!(
            err.starts_with(&format!("cannot read {}: ", r.file().display())),
            "{err}"
        );
        assert!(err.contains("line 1"), "the parser's cause is kept: {err}");
        let refused = r.remember(release("d-2")).unwrap_err();
        assert!(
            refused.starts_with("release d-2 not recorded: cannot read "),
            "{refused}"
        );
        assert_eq!(
            std::fs::read_to_string(r.file()).unwrap(),
            "[{\"id\": \"d-1\", trunc",
            "the file is not overwritten"
        );

        // Unreadable (a directory where the file should be).
        let r = Releases::new(d.path().join("other"));
        std::fs::create_dir_all(r.file()).unwrap();
        let err = r.history().unwrap_err();
        assert!(
            err.starts_with(&format!("cannot read {}: ", r.file().display())),
            "{err}"
        );
    }
}
