//! The buildspec reader: walks a document tree into a [`Buildspec`],
//! reporting wrong kinds, unknown keys and missing fields with positions.

use crate::model::diag::{Diagnostic, Pos, suggest};
use crate::model::node::{Node, Value};

use super::*;

pub(super) struct Reader {
    pub(super) diags: Vec<Diagnostic>,
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

fn line_of(p: Pos) -> u32 {
    p.line
}

impl Reader {
    fn error(&mut self, pos: Pos, path: &str, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(Some(pos), path.to_owned(), msg));
    }

    fn warn(&mut self, pos: Pos, path: &str, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::warning(Some(pos), path.to_owned(), msg));
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    /// The map entries of `node`, or an error saying what was found.
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
    ) -> Option<&'n [(crate::model::node::Key, Node)]> {
        match &node.value {
            Value::Map(m) => Some(m),
            Value::Null => Some(&[]),
            _ => {
                self.error(
                    node.pos,
                    path,
                    format!("expected a map here, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn check_keys(&mut self, node: &Node, path: &str, known: &[&str]) {
        let Some(entries) = node.as_map() else { return };
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in entries {
            if seen.contains(&k.name.as_str()) {
                self.error(
                    k.pos,
                    &join(path, &k.name),
                    format!("duplicate key `{}`", k.name),
                );
                continue;
            }
            seen.push(&k.name);
            if known.contains(&k.name.as_str()) {
                continue;
            }
            let hint = suggest(&k.name, known);
            let d = self.warn(
                k.pos,
                &join(path, &k.name),
                format!("unknown key `{}`; it is ignored", k.name),
            );
            if let Some(s) = hint {
                d.fix = Some(format!("did you mean `{s}`?"));
            }
        }
    }

    fn text(&mut self, node: &Node, path: &str) -> Option<String> {
        match node.scalar_text() {
            Some(s) => Some(s),
            None if node.value == Value::Null => Some(String::new()),
            None => {
                self.error(
                    node.pos,
                    path,
                    format!("expected a value, found {}", node.kind()),
                );
                None
            }
        }
    }

    fn opt_text(&mut self, node: &Node, key: &str, path: &str) -> Option<String> {
        let v = node.get(key)?;
        if v.value == Value::Null {
            return None;
        }
        self.text(v, &join(path, key))
    }

    fn flag(&mut self, node: &Node, key: &str, path: &str) -> bool {
        let Some(v) = node.get(key) else { return false };
        match v.scalar_text().as_deref() {
            Some("yes" | "true" | "Yes" | "True" | "YES" | "TRUE") => true,
            Some("no" | "false" | "No" | "False" | "NO" | "FALSE") | None => false,
            Some(other) => {
                self.error(
                    v.pos,
                    &join(path, key),
                    format!("expected yes or no, found `{other}`"),
                );
                false
            }
        }
    }

    /// A list of strings; a single string is accepted as a one-item list.
    fn strings(&mut self, node: &Node, key: &str, path: &str) -> Vec<String> {
        let Some(v) = node.get(key) else {
            return Vec::new();
        };
        let p = join(path, key);
        match &v.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| self.text(n, &format!("{p}[{i}]")))
                .collect(),
            Value::Null => Vec::new(),
            _ => self.text(v, &p).into_iter().collect(),
        }
    }

    /// `name: value` pairs of a map, values stringified.
    fn pairs(&mut self, node: &Node, key: &str, path: &str) -> Vec<(String, String)> {
        let Some(v) = node.get(key) else {
            return Vec::new();
        };
        let p = join(path, key);
        let Some(entries) = self.entries(v, &p) else {
            return Vec::new();
        };
        entries
            .iter()
            .filter_map(|(k, val)| {
                let t = self.text(val, &join(&p, &k.name))?;
                Some((k.name.clone(), t))
            })
            .collect()
    }

    pub(super) fn buildspec(&mut self, root: &Node) -> Option<Buildspec> {
        self.entries(root, "")?;
        let version = match root.get("version") {
            None => {
                self.error(root.pos, "", "a buildspec needs `version: 0.2` at the top");
                return None;
            }
            Some(v) => match v.scalar_text().as_deref() {
                Some("0.2") => BuildspecVersion::V0_2,
                Some("0.1") => BuildspecVersion::V0_1,
                other => {
                    self.error(
                        v.pos,
                        "version",
                        format!(
                            "buildspec version must be 0.1 or 0.2, found `{}`",
                            other.unwrap_or(v.kind())
                        ),
                    );
                    return None;
                }
            },
        };
        let mut known = vec![
            "version",
            "run-as",
            "env",
            "proxy",
            "batch",
            "phases",
            "reports",
            "artifacts",
            "cache",
        ];
        if version == BuildspecVersion::V0_1 {
            known.push("environment_variables");
        }
        self.check_keys(root, "", &known);
        let mut env = root
            .get("env")
            .map(|e| self.env(e, "env"))
            .unwrap_or_default();
        if version == BuildspecVersion::V0_1
            && let Some(ev) = root.get("environment_variables")
            && self.entries(ev, "environment_variables").is_some()
        {
            self.check_keys(ev, "environment_variables", &["plaintext"]);
            env.variables
                .extend(self.pairs(ev, "plaintext", "environment_variables"));
        }
        let proxy = root.get("proxy").and_then(|p| {
            self.entries(p, "proxy")?;
            self.check_keys(p, "proxy", &["upload-artifacts", "logs"]);
            Some(Proxy {
                upload_artifacts: self.flag(p, "upload-artifacts", "proxy"),
                logs: self.flag(p, "logs", "proxy"),
            })
        });
        let batch = root.get("batch").and_then(|b| self.batch(b));
        let phases = match root.get("phases") {
            Some(p) => self.phases(p),
            None => Phases::default(),
        };
        let reports = root
            .get("reports")
            .map(|r| self.reports(r))
            .unwrap_or_default();
        let artifacts = root
            .get("artifacts")
            .and_then(|a| self.artifacts(a, "artifacts", true));
        let cache = root.get("cache").and_then(|c| {
            self.entries(c, "cache")?;
            self.check_keys(c, "cache", &["key", "fallback-keys", "action", "paths"]);
            Some(Cache {
                key: self.opt_text(c, "key", "cache"),
                fallback_keys: self.strings(c, "fallback-keys", "cache"),
                action: self.opt_text(c, "action", "cache"),
                paths: self.strings(c, "paths", "cache"),
            })
        });
        Some(Buildspec {
            version,
            run_as: self.opt_text(root, "run-as", ""),
            env,
            proxy,
            batch,
            phases,
            reports,
            artifacts,
            cache,
        })
    }

    fn env(&mut self, e: &Node, path: &str) -> Env {
        if self.entries(e, path).is_none() {
            return Env::default();
        }
        self.check_keys(
            e,
            path,
            &[
                "shell",
                "variables",
                "parameter-store",
                "secrets-manager",
                "exported-variables",
                "git-credential-helper",
            ],
        );
        let variables = self.pairs(e, "variables", path);
        if let Some(vars) = e.get("variables").and_then(Node::as_map) {
            for (k, _) in vars {
                if k.name.starts_with("CODEBUILD_") {
                    self.warn(
                        k.pos,
                        &format!("{path}.variables.{}", k.name),
                        format!(
                            "`{}`: the CODEBUILD_ prefix is reserved for CodeBuild's own variables",
                            k.name
                        ),
                    );
                }
            }
        }
        let secrets = self
            .pairs(e, "secrets-manager", path)
            .into_iter()
            .map(|(k, v)| (k, SecretRef::parse(&v)))
            .collect();
        let exported = self.strings(e, "exported-variables", path);
        if let Some(list) = e.get("exported-variables").and_then(Node::as_seq) {
            for (i, n) in list.iter().enumerate() {
                if n.as_str().is_some_and(|s| s.starts_with("AWS_")) {
                    self.warn(
                        n.pos,
                        &format!("{path}.exported-variables[{i}]"),
                        "variables starting with AWS_ are never exported",
                    );
                }
            }
        }
        let shell = self.opt_text(e, "shell", path);
        if let (Some(s), Some(n)) = (&shell, e.get("shell"))
            && !matches!(
                s.as_str(),
                "bash" | "/bin/sh" | "powershell.exe" | "cmd.exe"
            )
        {
            self.warn(
                n.pos,
                &format!("{path}.shell"),
                format!("shell `{s}` is not one CodeBuild offers (bash, /bin/sh, powershell.exe, cmd.exe)"),
            );
        }
        Env {
            shell,
            variables,
            parameter_store: self.pairs(e, "parameter-store", path),
            secrets_manager: secrets,
            exported_variables: exported,
            git_credential_helper: self.flag(e, "git-credential-helper", path),
        }
    }

    fn batch(&mut self, b: &Node) -> Option<Batch> {
        let entries = self.entries(b, "batch")?;
        self.check_keys(
            b,
            "batch",
            &[
                "fast-fail",
                "build-list",
                "build-matrix",
                "build-graph",
                "build-fanout",
            ],
        );
        let kind = entries
            .iter()
            .map(|(k, _)| k.name.as_str())
            .find(|k| k.starts_with("build-"))
            .map(str::to_owned);
        self.warn(
            b.pos,
            "batch",
            "batch builds run as one build locally (the batch configuration is kept but not expanded)",
        );
        Some(Batch {
            fast_fail: self.flag(b, "fast-fail", "batch"),
            kind,
            raw: b.to_json(),
        })
    }

    fn phases(&mut self, p: &Node) -> Phases {
        if self.entries(p, "phases").is_none() {
            return Phases::default();
        }
        self.check_keys(
            p,
            "phases",
            &["install", "pre_build", "build", "post_build"],
        );
        let mut read = |name: &str| {
            p.get(name)
                .and_then(|n| self.phase(n, &format!("phases.{name}"), name == "install"))
        };
        Phases {
            install: read("install"),
            pre_build: read("pre_build"),
            build: read("build"),
            post_build: read("post_build"),
        }
    }

    fn commands(&mut self, node: &Node, key: &str, path: &str) -> Vec<Command> {
        let Some(v) = node.get(key) else {
            return Vec::new();
        };
        let p = join(path, key);
        match &v.value {
            Value::Seq(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| self.command(n, &format!("{p}[{i}]")))
                .collect(),
            Value::Null => Vec::new(),
            Value::Str(s) => {
                self.warn(
                    v.pos,
                    &p,
                    format!("`{key}` should be a list of commands; this string is treated as one command"),
                )
                .fix = Some(format!("write it as `{key}:` followed by `- <command>` lines"));
                vec![Command {
                    text: s.clone(),
                    line: line_of(v.pos),
                }]
            }
            _ => {
                self.error(
                    v.pos,
                    &p,
                    format!("expected a list of commands, found {}", v.kind()),
                );
                Vec::new()
            }
        }
    }

    fn command(&mut self, n: &Node, path: &str) -> Option<Command> {
        let text = match &n.value {
            Value::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                let text = format!("{}: {}", k.name, v.scalar_text().unwrap_or_default());
                self.warn(
                    n.pos,
                    path,
                    "this command contains `: ` so YAML read it as a map; it is run as written",
                )
                .fix = Some("quote the whole command".into());
                text
            }
            Value::Seq(_) | Value::Map(_) => {
                self.error(
                    n.pos,
                    path,
                    format!("expected a command, found {}", n.kind()),
                );
                return None;
            }
            _ => n.scalar_text().unwrap_or_default(),
        };
        Some(Command {
            text,
            line: line_of(n.pos),
        })
    }

    fn phase(&mut self, n: &Node, path: &str, install: bool) -> Option<Phase> {
        self.entries(n, path)?;
        let mut known = vec!["run-as", "on-failure", "commands", "finally"];
        if install {
            known.push("runtime-versions");
        }
        self.check_keys(n, path, &known);
        // `install` may hold only `runtime-versions` (real buildspecs do, and
        // CodeBuild runs them); every other phase needs commands.
        if n.get("commands").is_none() && !(install && n.get("runtime-versions").is_some()) {
            self.error(
                n.pos,
                path,
                "a phase needs `commands` (CodeBuild rejects a phase without them)",
            );
        }
        let on_failure = match n.get("on-failure") {
            None => OnFailure::Abort,
            Some(v) => {
                let t = v.scalar_text().unwrap_or_default();
                OnFailure::parse(&t).unwrap_or_else(|| {
                    self.error(
                        v.pos,
                        &format!("{path}.on-failure"),
                        format!(
                            "on-failure must be ABORT, CONTINUE, RETRY, RETRY-<count>, RETRY-<regex> or RETRY-<count>-<regex> (count 0–100), found `{t}`"
                        ),
                    );
                    OnFailure::Abort
                })
            }
        };
        Some(Phase {
            run_as: self.opt_text(n, "run-as", path),
            on_failure,
            runtime_versions: if install {
                self.pairs(n, "runtime-versions", path)
            } else {
                Vec::new()
            },
            commands: self.commands(n, "commands", path),
            finally: self.commands(n, "finally", path),
        })
    }

    fn reports(&mut self, r: &Node) -> Vec<ReportGroup> {
        let Some(entries) = self.entries(r, "reports") else {
            return Vec::new();
        };
        if entries.len() > 5 {
            self.error(
                r.pos,
                "reports",
                format!(
                    "a buildspec may declare at most 5 report groups; this one has {}",
                    entries.len()
                ),
            );
        }
        entries
            .iter()
            .filter_map(|(k, g)| {
                let p = format!("reports.{}", k.name);
                self.entries(g, &p)?;
                self.check_keys(
                    g,
                    &p,
                    &["files", "base-directory", "discard-paths", "file-format"],
                );
                if g.get("files").is_none() {
                    self.error(g.pos, &p, "a report group needs `files`");
                }
                Some(ReportGroup {
                    name: k.name.clone(),
                    files: self.strings(g, "files", &p),
                    base_directory: self.opt_text(g, "base-directory", &p),
                    discard_paths: self.flag(g, "discard-paths", &p),
                    file_format: self
                        .opt_text(g, "file-format", &p)
                        .unwrap_or_else(|| "JUNITXML".to_owned()),
                })
            })
            .collect()
    }

    fn artifacts(&mut self, a: &Node, path: &str, primary: bool) -> Option<Artifacts> {
        self.entries(a, path)?;
        let mut known = vec![
            "files",
            "name",
            "discard-paths",
            "base-directory",
            "exclude-paths",
            "enable-symlinks",
            "s3-prefix",
        ];
        if primary {
            known.push("secondary-artifacts");
        }
        self.check_keys(a, path, &known);
        let secondary = if primary {
            match a.get("secondary-artifacts") {
                Some(s) => {
                    let p = format!("{path}.secondary-artifacts");
                    self.entries(s, &p)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|(k, v)| {
                            let art = self.artifacts(v, &format!("{p}.{}", k.name), false)?;
                            Some((k.name.clone(), art))
                        })
                        .collect()
                }
                None => Vec::new(),
            }
        } else {
            Vec::new()
        };
        if a.get("files").is_none() && (!primary || secondary.is_empty()) {
            self.error(
                a.pos,
                path,
                "artifacts need `files` (a list of paths or globs)",
            );
        }
        Some(Artifacts {
            files: self.strings(a, "files", path),
            name: self.opt_text(a, "name", path),
            discard_paths: self.flag(a, "discard-paths", path),
            base_directory: self.opt_text(a, "base-directory", path),
            exclude_paths: self.strings(a, "exclude-paths", path),
            enable_symlinks: self.flag(a, "enable-symlinks", path),
            s3_prefix: self.opt_text(a, "s3-prefix", path),
            secondary,
        })
    }
}
