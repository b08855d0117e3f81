//! A workspace: a folder holding `pipedeck.toml` (or only a pipeline file)
//! and the pipelines it names. Its state (store, logs, artifacts, lock,
//! socket) lives in the user data dir under `workspaces/<name>-<hash>/`.
//!
//! `pipedeck.toml` maps what CodePipeline names remotely to things on this
//! machine: repositories to local git repositories, CodeBuild projects to
//! buildspecs, Lambda functions to commands, secret names to a local source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::model::buildspec::Buildspec;
use crate::model::load::{LoadOptions, load_path};
use crate::model::pipeline::Pipeline;

/// The file name of a workspace's config.
pub const WORKSPACE_FILE: &str = "pipedeck.toml";

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0}: no such workspace directory")]
    Missing(PathBuf),
    #[error(
        "{0}: not a workspace: it holds no pipedeck.toml, pipeline.json or pipeline.toml \
         (create one with `pipedeck init --demo DIR`)"
    )]
    Empty(PathBuf),
    #[error("{file}: {message}")]
    Config { file: PathBuf, message: String },
    #[error("{}:{pos}: {message}", file.display())]
    At {
        file: PathBuf,
        pos: crate::model::diag::Pos,
        message: String,
    },
    #[error("{file}: the pipeline does not load:\n{report}")]
    Pipeline { file: PathBuf, report: String },
    #[error("{0}")]
    Io(String),
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    workspace: RawWorkspace,
    #[serde(default)]
    repositories: BTreeMap<String, Repository>,
    #[serde(default)]
    projects: BTreeMap<String, Project>,
    #[serde(default)]
    functions: BTreeMap<String, Function>,
    #[serde(default)]
    secrets: Secrets,
    /// Read on their own by [`read_environments`] (each by its kind).
    #[serde(default)]
    #[serde(rename = "environments")]
    _environments: Option<serde::de::IgnoredAny>,
}

/// `[environments.NAME]`: where Deploy actions land. `kind` says which
/// backend runs it (`local` when absent); the table's other keys belong to
/// that kind, except `actions` and `protected`, which every kind has.
#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub spec: EnvSpec,
    /// Deploy actions (by name) that land here.
    pub actions: Vec<String>,
    /// Rollback needs the environment's name typed in the TUI.
    pub protected: bool,
}

impl Environment {
    /// The kind's name as written in `kind = "..."`.
    pub fn kind(&self) -> &'static str {
        match self.spec {
            EnvSpec::Local(_) => "local",
            EnvSpec::Kubernetes(_) => "kubernetes",
        }
    }

    /// The local spec, for a `local` environment.
    pub fn local(&self) -> Option<&LocalSpec> {
        match &self.spec {
            EnvSpec::Local(l) => Some(l),
            EnvSpec::Kubernetes(_) => None,
        }
    }
}

/// An environment's own settings, by kind.
// A handful per workspace, read once: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum EnvSpec {
    /// Processes behind a traffic-shifting router on this machine.
    Local(LocalSpec),
    /// A workload in a Kubernetes cluster (a kubeconfig context).
    Kubernetes(KubernetesSpec),
}

/// The kinds an environment can be, with whether pipedeck runs them yet.
pub const ENVIRONMENT_KINDS: [(&str, bool); 2] = [("local", true), ("kubernetes", true)];

pub use super::kubernetes::KubernetesSpec;

/// `kind = "local"`: a router on `port` in front of blue and green groups
/// of replica processes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocalSpec {
    /// The stable front port.
    pub port: u16,
    /// Blue/green test listener port.
    pub test_port: Option<u16>,
    #[serde(default = "one")]
    pub replicas: u32,
    /// Run in the revision (the deploy action's input artifact) with $PORT.
    pub command: String,
    #[serde(default = "health_path")]
    pub health_path: String,
    #[serde(default = "health_interval")]
    pub health_interval_ms: u64,
    #[serde(default = "two")]
    pub healthy_threshold: u32,
    #[serde(default = "two")]
    pub unhealthy_threshold: u32,
    /// Alarm when more than this percent of requests answer 5xx.
    pub alarm_5xx_percent: Option<f64>,
    /// Alarm when p99 latency exceeds this.
    pub alarm_p99_ms: Option<u64>,
    #[serde(default = "alarm_window")]
    pub alarm_window_seconds: u64,
    /// `AllAtOnce`, a CodeDeploy canary / linear name, or `BlueGreen`.
    #[serde(default = "all_at_once")]
    pub strategy: String,
    /// `autoRollbackConfiguration` events: DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM.
    #[serde(default)]
    pub auto_rollback: Vec<String>,
    #[serde(default)]
    pub termination_wait_minutes: f64,
    /// CodeDeploy's minutes × this (1/60 runs minutes as seconds).
    #[serde(default = "one_f")]
    pub time_scale: f64,
    #[serde(default = "ready")]
    pub ready_timeout_seconds: u64,
    /// Requests per second sent to the environment's own front port, so
    /// alarms have traffic to judge (demos, quiet machines).
    #[serde(default)]
    pub synthetic_rps: u32,
    /// The router's idle timeout (an ALB's `idle_timeout.timeout_seconds`):
    /// an idle client connection is closed, a replica silent this long is
    /// answered 504.
    #[serde(default = "ready")]
    pub idle_timeout_seconds: u64,
    /// How long a group that lost its traffic may finish its requests
    /// before its replicas stop (an ALB's `deregistration_delay`).
    #[serde(default = "deregistration")]
    pub deregistration_delay_seconds: u64,
}

/// Reads every `[environments.NAME]` of `text` (the workspace file at
/// `file`): the kind first, then that kind's keys, each error at its
/// `file:line:col`.
fn read_environments(
    text: &str,
    file: &Path,
) -> Result<BTreeMap<String, Environment>, WorkspaceError> {
    use toml::Spanned;
    use toml::de::{DeTable, DeValue, ValueDeserializer};
    let idx = crate::model::source::LineIndex::new(text);
    let at = |offset: usize, message: String| WorkspaceError::At {
        file: file.to_path_buf(),
        pos: idx.pos(offset),
        message,
    };
    let de_err = |e: toml::de::Error, name: &str, whole: usize| {
        at(
            e.span().map_or(whole, |s| s.start),
            format!("environments.{name}: {}", e.message().trim()),
        )
    };
    // The file already parsed as a whole; this only finds the spans.
    let Ok(root) = DeTable::parse(text) else {
        return Ok(BTreeMap::new());
    };
    let mut root = root.into_inner();
    let Some(envs) = root.remove("environments") else {
        return Ok(BTreeMap::new());
    };
    let envs_at = envs.span().start;
    let DeValue::Table(envs) = envs.into_inner() else {
        return Err(at(
            envs_at,
            "`environments` must be a table of environments".into(),
        ));
    };
    let mut out = BTreeMap::new();
    for (name, value) in envs {
        let name = name.into_inner().into_owned();
        let span = value.span();
        let DeValue::Table(table) = value.into_inner() else {
            return Err(at(
                span.start,
                format!("environments.{name} must be a table (`[environments.{name}]`)"),
            ));
        };
        let (mut kind, mut actions, mut protected, mut rest) = (None, None, None, DeTable::new());
        for (k, v) in table {
            match k.get_ref().as_ref() {
                "kind" => kind = Some(v),
                "actions" => actions = Some(v),
                "protected" => protected = Some(v),
                _ => {
                    rest.insert(k, v);
                }
            }
        }
        let kind_name = match &kind {
            None => "local".to_owned(),
            Some(v) => match v.get_ref().as_str() {
                Some(k) => k.to_owned(),
                None => {
                    return Err(at(
                        v.span().start,
                        format!("environments.{name}: `kind` must be a string"),
                    ));
                }
            },
        };
        let kind_at = kind.as_ref().map_or(span.start, |v| v.span().start);
        let built: Vec<&str> = ENVIRONMENT_KINDS
            .iter()
            .filter(|(_, b)| *b)
            .map(|(k, _)| *k)
            .collect();
        let spec = match kind_name.as_str() {
            "local" => EnvSpec::Local(
                LocalSpec::deserialize(ValueDeserializer::from(Spanned::new(
                    span.clone(),
                    DeValue::Table(rest),
                )))
                .map_err(|e| de_err(e, &name, span.start))?,
            ),
            "kubernetes" => {
                let key_at: BTreeMap<String, usize> = rest
                    .iter()
                    .map(|(k, v)| (k.get_ref().to_string(), v.span().start))
                    .collect();
                let spec = KubernetesSpec::deserialize(ValueDeserializer::from(Spanned::new(
                    span.clone(),
                    DeValue::Table(rest),
                )))
                .map_err(|e| de_err(e, &name, span.start))?;
                if let Err((key, msg)) = spec.check() {
                    let pos = key_at.get(key).copied().unwrap_or(kind_at);
                    return Err(at(pos, format!("environments.{name}: {msg}")));
                }
                EnvSpec::Kubernetes(spec)
            }
            k if ENVIRONMENT_KINDS.iter().any(|(known, _)| *known == k) => {
                return Err(at(
                    kind_at,
                    format!(
                        "environments.{name}: kind `{k}` is not built yet; the kinds that \
                         exist: {}",
                        built.join(", ")
                    ),
                ));
            }
            k => {
                let hint = built
                    .iter()
                    .copied()
                    .find(|b| strsim::levenshtein(b, &k.to_ascii_lowercase()) <= 2)
                    .map(|b| format!(" (did you mean `{b}`?)"))
                    .unwrap_or_default();
                return Err(at(
                    kind_at,
                    format!(
                        "environments.{name}: unknown kind `{k}`{hint}; the kinds that exist: {}",
                        built.join(", ")
                    ),
                ));
            }
        };
        let actions = match actions {
            Some(v) => Vec::<String>::deserialize(ValueDeserializer::from(v))
                .map_err(|e| de_err(e, &name, span.start))?,
            None => Vec::new(),
        };
        let protected = match protected {
            Some(v) => bool::deserialize(ValueDeserializer::from(v))
                .map_err(|e| de_err(e, &name, span.start))?,
            None => false,
        };
        out.insert(
            name,
            Environment {
                spec,
                actions,
                protected,
            },
        );
    }
    Ok(out)
}

fn deregistration() -> u64 {
    300
}

fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}
fn one_f() -> f64 {
    1.0
}
fn health_path() -> String {
    "/health".into()
}
fn health_interval() -> u64 {
    500
}
fn alarm_window() -> u64 {
    10
}
fn all_at_once() -> String {
    "AllAtOnce".into()
}
fn ready() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    name: Option<String>,
    #[serde(default)]
    pipelines: Vec<String>,
    identity: Option<String>,
    approval_timeout_minutes: Option<f64>,
    poll_interval_seconds: Option<f64>,
    #[serde(default = "yes")]
    triggers: bool,
}

fn yes() -> bool {
    true
}

/// `[repositories.NAME]`: a source action's `RepositoryName` (CodeCommit) or
/// `FullRepositoryId` (`owner/repo`, CodeStar / GitHub / Bitbucket).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// A local git repository (relative to the workspace).
    pub path: PathBuf,
    /// Used when the action names no `BranchName`.
    pub branch: Option<String>,
}

/// `[projects.NAME]`: a CodeBuild `ProjectName`.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The buildspec, a path inside the primary source (like the project's
    /// `buildspec` setting on AWS); the action's `BuildspecOverride` wins.
    pub buildspec: Option<String>,
    /// Environment variables of the project (below the action's).
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Build timeout; CodeBuild's default is 8 hours (480 minutes).
    /// Fractions are allowed (`0.05` is three seconds).
    pub timeout_minutes: Option<f64>,
    /// `CODEBUILD_BUILD_IMAGE` as reported (no container runs locally).
    pub image: Option<String>,
}

/// `[functions.NAME]`: a Lambda `FunctionName` run as a local command.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Function {
    pub command: String,
    pub timeout_minutes: Option<f64>,
}

/// `[secrets]`: where `parameter-store` / `secrets-manager` values come from.
#[derive(Debug, Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// A TOML file of `"name" = "value"` outside the workspace (`~` allowed).
    pub file: Option<String>,
    /// Also read `PREFIX<NAME>` environment variables, the name upper-cased
    /// with every non-alphanumeric character as `_`.
    pub env_prefix: Option<String>,
}

/// A loaded pipeline and the inline buildspecs its file carried.
#[derive(Debug, Clone)]
pub struct WorkspacePipeline {
    pub file: PathBuf,
    pub pipeline: Pipeline,
    /// CloudFormation `AWS::CodeBuild::Project` inline buildspecs by name.
    pub project_buildspecs: BTreeMap<String, Buildspec>,
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub name: String,
    /// `<data dir>/workspaces/<name>-<hash>`, keyed on the path's hash (a
    /// renamed workspace keeps the dir it had).
    pub state_dir: PathBuf,
    pub pipelines: Vec<WorkspacePipeline>,
    pub repositories: BTreeMap<String, Repository>,
    pub projects: BTreeMap<String, Project>,
    pub functions: BTreeMap<String, Function>,
    pub secrets: Secrets,
    /// Who approves, rejects and starts from this machine.
    pub identity: String,
    pub approval_timeout: Duration,
    pub poll_interval: Duration,
    /// Watch the mapped repositories and start executions on new commits.
    pub triggers: bool,
    pub environments: BTreeMap<String, Environment>,
}

impl Workspace {
    /// Loads the workspace at `root`; its state goes under `data_dir`.
    pub fn load(root: &Path, data_dir: &Path) -> Result<Workspace, WorkspaceError> {
        if !root.is_dir() {
            return Err(WorkspaceError::Missing(root.to_path_buf()));
        }
        let root = root
            .canonicalize()
            .map_err(|e| WorkspaceError::Io(format!("{}: {e}", root.display())))?;
        let cfg_path = root.join(WORKSPACE_FILE);
        let (raw, environments): (RawFile, _) = if cfg_path.is_file() {
            let text = std::fs::read_to_string(&cfg_path)
                .map_err(|e| WorkspaceError::Io(format!("{}: {e}", cfg_path.display())))?;
            let raw = toml::from_str(&text).map_err(|e| WorkspaceError::Config {
                file: cfg_path.clone(),
                message: e.to_string().trim_end().to_owned(),
            })?;
            (raw, read_environments(&text, &cfg_path)?)
        } else {
            (RawFile::default(), BTreeMap::new())
        };
        let mut files: Vec<PathBuf> = raw
            .workspace
            .pipelines
            .iter()
            .map(|p| root.join(p))
            .collect();
        if files.is_empty() {
            for cand in ["pipeline.json", "pipeline.toml"] {
                if root.join(cand).is_file() {
                    files.push(root.join(cand));
                    break;
                }
            }
        }
        if files.is_empty() {
            return Err(WorkspaceError::Empty(root));
        }
        let mut pipelines = Vec::new();
        for file in files {
            let report = load_path(&file, &LoadOptions::default());
            if !report.ok() {
                return Err(WorkspaceError::Pipeline {
                    report: crate::cli::validate::human(std::slice::from_ref(&report)),
                    file,
                });
            }
            for lp in report.pipelines {
                pipelines.push(WorkspacePipeline {
                    file: file.clone(),
                    pipeline: lp.pipeline,
                    project_buildspecs: report.project_buildspecs.clone(),
                });
            }
        }
        let name = raw.workspace.name.clone().unwrap_or_else(|| {
            root.file_name().map_or_else(
                || "workspace".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            )
        });
        // The state is keyed on the workspace's path: after a rename of
        // `[workspace] name` the state dir already there (same path hash)
        // is kept, so the history does not seem gone.
        let hash = short_hash(&root);
        let states = data_dir.join("workspaces");
        let wanted = states.join(format!("{}-{hash}", sanitize(&name)));
        let state_dir = if wanted.exists() {
            wanted
        } else {
            let suffix = format!("-{hash}");
            std::fs::read_dir(&states)
                .ok()
                .and_then(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.is_dir())
                        .find(|p| {
                            p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.ends_with(&suffix))
                        })
                })
                .unwrap_or(wanted)
        };
        let mut repositories = raw.repositories;
        for repo in repositories.values_mut() {
            if repo.path.is_relative() {
                repo.path = root.join(&repo.path);
            }
        }
        let identity = raw.workspace.identity.clone().unwrap_or_else(os_user);
        Ok(Workspace {
            root,
            name,
            state_dir,
            pipelines,
            repositories,
            projects: raw.projects,
            functions: raw.functions,
            secrets: raw.secrets,
            identity,
            approval_timeout: Duration::from_secs_f64(
                raw.workspace
                    .approval_timeout_minutes
                    .unwrap_or(7.0 * 24.0 * 60.0)
                    .max(0.0)
                    * 60.0,
            ),
            poll_interval: Duration::from_secs_f64(
                raw.workspace.poll_interval_seconds.unwrap_or(2.0).max(0.1),
            ),
            triggers: raw.workspace.triggers,
            environments,
        })
    }

    pub fn pipeline(&self, name: &str) -> Option<&WorkspacePipeline> {
        self.pipelines.iter().find(|p| p.pipeline.name == name)
    }

    /// The local repository for a source action's configuration:
    /// `RepositoryName` (CodeCommit) or `FullRepositoryId` (others). A
    /// workspace that is itself a git repository serves any name.
    pub fn repository_for(&self, config: &BTreeMap<String, String>) -> Option<Repository> {
        let keys = ["RepositoryName", "FullRepositoryId", "Repo"];
        for k in keys {
            if let Some(name) = config.get(k) {
                if let Some(r) = self.repositories.get(name) {
                    return Some(r.clone());
                }
                // `owner/repo` may be mapped by its last part.
                if let Some((_, short)) = name.rsplit_once('/')
                    && let Some(r) = self.repositories.get(short)
                {
                    return Some(r.clone());
                }
            }
        }
        if self.root.join(".git").exists() {
            return Some(Repository {
                path: self.root.clone(),
                branch: None,
            });
        }
        None
    }

    /// Resolved `parameter-store` / `secrets-manager` value by name.
    pub fn secret(&self, name: &str) -> Result<Option<String>, String> {
        if let Some(prefix) = &self.secrets.env_prefix {
            let var: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            if let Ok(v) = std::env::var(format!("{prefix}{var}")) {
                return Ok(Some(v));
            }
        }
        if let Some(file) = &self.secrets.file {
            let path = expand_home(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("secrets file {}: {e}", path.display()))?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| format!("secrets file {}: {e}", path.display()))?;
            if let Some(v) = table.get(name) {
                return Ok(Some(match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }));
            }
        }
        Ok(None)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.state_dir.join("engine.lock")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.state_dir.join("engine.sock")
    }
}

/// The OS user: `$USER`, else `$LOGNAME`, else the name `/etc/passwd`
/// gives this process's uid, else `uid-N`.
pub fn os_user() -> String {
    if let Ok(u) = std::env::var("USER").or_else(|_| std::env::var("LOGNAME"))
        && !u.is_empty()
    {
        return u;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) {
            let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
                t.lines().find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_owned())
                })
            });
            return name.unwrap_or_else(|| format!("uid-{uid}"));
        }
    }
    "unknown".to_owned()
}

fn expand_home(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from(p), |h| PathBuf::from(h).join(rest)),
        None => PathBuf::from(p),
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn short_hash(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(p.to_string_lossy().as_bytes());
    d.iter().take(4).map(|b| format!("{b:02x}")).collect()
}
