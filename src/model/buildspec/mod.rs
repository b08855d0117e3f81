//! CodeBuild buildspec files, versions 0.1 and 0.2 (reference §3), read from
//! a [`Node`] tree so every message has a line and column.

use serde::Serialize;

use super::diag::Diagnostic;
use super::node::Node;
use super::yaml;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BuildspecVersion {
    /// 0.1: every command runs in its own shell.
    V0_1,
    /// 0.2: all commands of a build share one shell.
    V0_2,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Buildspec {
    pub version: BuildspecVersion,
    pub run_as: Option<String>,
    pub env: Env,
    pub proxy: Option<Proxy>,
    pub batch: Option<Batch>,
    pub phases: Phases,
    pub reports: Vec<ReportGroup>,
    pub artifacts: Option<Artifacts>,
    pub cache: Option<Cache>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Env {
    pub shell: Option<String>,
    pub variables: Vec<(String, String)>,
    pub parameter_store: Vec<(String, String)>,
    pub secrets_manager: Vec<(String, SecretRef)>,
    pub exported_variables: Vec<String>,
    pub git_credential_helper: bool,
}

/// `secret-id:json-key:version-stage:version-id`; only the id is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    pub secret_id: String,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

impl SecretRef {
    /// Parses the reference. An ARN holds colons itself, so the optional
    /// parts are taken from the right of the ARN's seven fields.
    pub fn parse(s: &str) -> SecretRef {
        let parts: Vec<&str> = s.split(':').collect();
        let (id, rest): (String, &[&str]) = if s.starts_with("arn:") && parts.len() >= 7 {
            (parts[..7].join(":"), &parts[7..])
        } else {
            (parts[0].to_owned(), &parts[1..])
        };
        let opt = |i: usize| {
            rest.get(i)
                .filter(|x| !x.is_empty())
                .map(|x| (*x).to_owned())
        };
        SecretRef {
            secret_id: id,
            json_key: opt(0),
            version_stage: opt(1),
            version_id: opt(2),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proxy {
    pub upload_artifacts: bool,
    pub logs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Batch {
    pub fast_fail: bool,
    /// `build-list`, `build-matrix`, `build-graph` or `build-fanout`.
    pub kind: Option<String>,
    pub raw: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Phases {
    pub install: Option<Phase>,
    pub pre_build: Option<Phase>,
    pub build: Option<Phase>,
    pub post_build: Option<Phase>,
}

impl Phases {
    /// The phases in the order CodeBuild runs them, with their names.
    pub fn in_order(&self) -> [(&'static str, Option<&Phase>); 4] {
        [
            ("install", self.install.as_ref()),
            ("pre_build", self.pre_build.as_ref()),
            ("build", self.build.as_ref()),
            ("post_build", self.post_build.as_ref()),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Phase {
    pub run_as: Option<String>,
    pub on_failure: OnFailure,
    /// `install` only: language → version, as written.
    pub runtime_versions: Vec<(String, String)>,
    pub commands: Vec<Command>,
    pub finally: Vec<Command>,
}

/// A command and the buildspec line it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Command {
    pub text: String,
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub enum OnFailure {
    #[default]
    Abort,
    Continue,
    /// `RETRY` (3 attempts), `RETRY-<n>`, `RETRY-<regex>`, `RETRY-<n>-<regex>`.
    Retry {
        attempts: u32,
        pattern: Option<String>,
    },
}

impl OnFailure {
    pub fn parse(s: &str) -> Option<OnFailure> {
        match s {
            "ABORT" => return Some(OnFailure::Abort),
            "CONTINUE" => return Some(OnFailure::Continue),
            "RETRY" => {
                return Some(OnFailure::Retry {
                    attempts: 3,
                    pattern: None,
                });
            }
            _ => {}
        }
        let rest = s.strip_prefix("RETRY-")?;
        let (count, pattern) = match rest.split_once('-') {
            Some((n, p)) if n.parse::<u32>().is_ok() => (n.parse::<u32>().ok(), Some(p)),
            _ => match rest.parse::<u32>() {
                Ok(n) => (Some(n), None),
                Err(_) => (None, Some(rest)),
            },
        };
        let attempts = count.unwrap_or(3);
        if attempts > 100 || pattern.is_some_and(str::is_empty) {
            return None;
        }
        Some(OnFailure::Retry {
            attempts,
            pattern: pattern.map(str::to_owned),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Artifacts {
    pub files: Vec<String>,
    pub name: Option<String>,
    pub discard_paths: bool,
    pub base_directory: Option<String>,
    pub exclude_paths: Vec<String>,
    pub enable_symlinks: bool,
    pub s3_prefix: Option<String>,
    /// `secondary-artifacts`: artifact identifier → its settings.
    pub secondary: Vec<(String, Artifacts)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportGroup {
    pub name: String,
    pub files: Vec<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
    /// `JUNITXML` unless the file says otherwise.
    pub file_format: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Cache {
    pub key: Option<String>,
    pub fallback_keys: Vec<String>,
    pub action: Option<String>,
    pub paths: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LoadedBuildspec {
    pub buildspec: Buildspec,
    pub diagnostics: Vec<Diagnostic>,
}

/// True when the tree is shaped like a buildspec: a `version` and at least
/// one of the sections a buildspec has.
pub fn looks_like_buildspec(root: &Node) -> bool {
    root.get("version").is_some()
        && [
            "phases",
            "artifacts",
            "env",
            "environment_variables",
            "reports",
            "batch",
        ]
        .iter()
        .any(|k| root.get(k).is_some())
}

/// Reads a buildspec from YAML text.
pub fn parse_str(text: &str) -> Result<LoadedBuildspec, Vec<Diagnostic>> {
    match yaml::parse(text) {
        Ok(root) => from_node(&root),
        Err(e) => Err(vec![Diagnostic::error(
            Some(e.pos),
            "",
            format!("YAML syntax: {}", e.message),
        )]),
    }
}

/// Reads a buildspec from a parsed tree: the buildspec and its warnings,
/// or every error found.
pub fn from_node(root: &Node) -> Result<LoadedBuildspec, Vec<Diagnostic>> {
    let mut r = Reader { diags: Vec::new() };
    let spec = r.buildspec(root);
    if r.diags.iter().any(Diagnostic::is_error) {
        return Err(r.diags);
    }
    match spec {
        Some(buildspec) => Ok(LoadedBuildspec {
            buildspec,
            diagnostics: r.diags,
        }),
        None => Err(r.diags),
    }
}

mod reader;
use reader::Reader;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::diag::Pos;

    fn load(text: &str) -> LoadedBuildspec {
        parse_str(text).unwrap_or_else(|e| panic!("{e:#?}"))
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        parse_str(text).err().unwrap_or_default()
    }

    #[test]
    fn a_full_0_2_buildspec_loads() {
        let b = load(
            "version: 0.2\nrun-as: root\nenv:\n  shell: bash\n  variables:\n    A: 1\n    B: \"x y\"\n  parameter-store:\n    P: /my/param\n  secrets-manager:\n    S: arn:aws:secretsmanager:us-east-1:123456789012:secret:db:password:AWSCURRENT\n  exported-variables: [A]\n  git-credential-helper: yes\nphases:\n  install:\n    runtime-versions:\n      python: 3.11\n    commands:\n      - pip install -r requirements.txt\n  build:\n    on-failure: CONTINUE\n    commands:\n      - make\n    finally:\n      - echo done\nreports:\n  unit:\n    files: ['**/*.xml']\n    base-directory: reports\nartifacts:\n  files: ['**/*']\n  base-directory: dist\n  discard-paths: yes\n  secondary-artifacts:\n    docs:\n      files: [docs/**]\ncache:\n  paths: ['/root/.cache/pip/**/*']\n",
        );
        assert!(b.diagnostics.is_empty(), "{:#?}", b.diagnostics);
        let s = b.buildspec;
        assert_eq!(s.version, BuildspecVersion::V0_2);
        assert_eq!(s.env.variables[0], ("A".into(), "1".into()));
        assert_eq!(
            s.env.secrets_manager[0].1.secret_id,
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"
        );
        assert_eq!(
            s.env.secrets_manager[0].1.json_key.as_deref(),
            Some("password")
        );
        assert!(s.env.git_credential_helper);
        let install = s.phases.install.unwrap();
        assert_eq!(
            install.runtime_versions[0],
            ("python".into(), "3.11".into())
        );
        assert_eq!(install.commands[0].line, 19);
        assert_eq!(s.phases.build.unwrap().on_failure, OnFailure::Continue);
        assert_eq!(s.reports[0].file_format, "JUNITXML");
        let art = s.artifacts.unwrap();
        assert!(art.discard_paths);
        assert_eq!(art.secondary[0].0, "docs");
        assert_eq!(s.cache.unwrap().paths.len(), 1);
    }

    #[test]
    fn version_0_1_environment_variables_plaintext_map_into_env() {
        let b = load(
            "version: 0.1\nenvironment_variables:\n  plaintext:\n    K: v\nphases:\n  build:\n    commands: [ls]\n",
        );
        assert_eq!(b.buildspec.version, BuildspecVersion::V0_1);
        assert_eq!(b.buildspec.env.variables, vec![("K".into(), "v".into())]);
    }

    #[test]
    fn an_unknown_version_is_an_error_naming_it() {
        let e = errors("version: 0.3\nphases:\n  build:\n    commands: [ls]\n");
        assert!(e[0].message.contains("found `0.3`"), "{}", e[0].message);
        assert_eq!(e[0].pos, Some(Pos::new(1, 10)));
    }

    #[test]
    fn commands_as_one_string_is_accepted_with_a_warning() {
        let b = load("version: 0.2\nphases:\n  build:\n    commands: make all\n");
        assert_eq!(
            b.buildspec.phases.build.unwrap().commands[0].text,
            "make all"
        );
        assert_eq!(b.diagnostics.len(), 1);
        assert_eq!(b.diagnostics[0].path, "phases.build.commands");
    }

    #[test]
    fn a_phase_without_commands_is_an_error() {
        let e = errors("version: 0.2\nphases:\n  build:\n    finally: [ls]\n");
        assert!(e[0].message.contains("needs `commands`"));
        assert_eq!(e[0].path, "phases.build");
    }

    #[test]
    fn an_install_phase_may_hold_only_runtime_versions() {
        let b = load(
            "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      java: corretto17\n  build:\n    commands: [x]\n",
        );
        assert!(b.diagnostics.is_empty());
        assert!(b.buildspec.phases.install.unwrap().commands.is_empty());
    }

    #[test]
    fn a_command_with_colon_space_is_run_as_written_with_a_warning() {
        let b = load("version: 0.2\nphases:\n  build:\n    commands:\n      - echo key: value\n");
        assert_eq!(
            b.buildspec.phases.build.unwrap().commands[0].text,
            "echo key: value"
        );
        assert_eq!(
            b.diagnostics[0].fix.as_deref(),
            Some("quote the whole command")
        );
    }

    #[test]
    fn unknown_keys_suggest_the_close_one() {
        let b = load(
            "version: 0.2\nenv:\n  variable:\n    A: b\nphases:\n  build:\n    comands: [x]\n    commands: [y]\n",
        );
        let fixes: Vec<_> = b
            .diagnostics
            .iter()
            .filter_map(|d| d.fix.as_deref())
            .collect();
        assert!(fixes.contains(&"did you mean `variables`?"), "{fixes:?}");
        assert!(fixes.contains(&"did you mean `commands`?"), "{fixes:?}");
        let d = b
            .diagnostics
            .iter()
            .find(|d| d.path == "env.variable")
            .unwrap();
        assert_eq!(d.pos, Some(Pos::new(3, 3)));
    }

    #[test]
    fn on_failure_forms_parse() {
        assert_eq!(
            OnFailure::parse("RETRY"),
            Some(OnFailure::Retry {
                attempts: 3,
                pattern: None
            })
        );
        assert_eq!(
            OnFailure::parse("RETRY-5"),
            Some(OnFailure::Retry {
                attempts: 5,
                pattern: None
            })
        );
        assert_eq!(
            OnFailure::parse("RETRY-timeout.*"),
            Some(OnFailure::Retry {
                attempts: 3,
                pattern: Some("timeout.*".into())
            })
        );
        assert_eq!(
            OnFailure::parse("RETRY-2-Connection reset"),
            Some(OnFailure::Retry {
                attempts: 2,
                pattern: Some("Connection reset".into())
            })
        );
        assert_eq!(OnFailure::parse("RETRY-101"), None);
        assert_eq!(OnFailure::parse("SOMETIMES"), None);
    }

    #[test]
    fn bad_on_failure_is_an_error() {
        let e =
            errors("version: 0.2\nphases:\n  build:\n    on-failure: MAYBE\n    commands: [x]\n");
        assert!(e[0].message.contains("found `MAYBE`"));
    }

    #[test]
    fn batch_is_parsed_and_noted_as_one_local_build() {
        let b = load(
            "version: 0.2\nbatch:\n  fast-fail: true\n  build-list:\n    - identifier: a\nphases:\n  build:\n    commands: [x]\n",
        );
        let batch = b.buildspec.batch.unwrap();
        assert!(batch.fast_fail);
        assert_eq!(batch.kind.as_deref(), Some("build-list"));
        assert!(b.diagnostics[0].message.contains("one build locally"));
    }

    #[test]
    fn more_than_five_report_groups_is_an_error() {
        let groups: String = (0..6)
            .map(|i| format!("  g{i}:\n    files: [a]\n"))
            .collect();
        let e = errors(&format!(
            "version: 0.2\nreports:\n{groups}phases:\n  build:\n    commands: [x]\n"
        ));
        assert!(e[0].message.contains("at most 5"));
    }

    #[test]
    fn artifacts_need_files() {
        let e =
            errors("version: 0.2\nartifacts:\n  name: x\nphases:\n  build:\n    commands: [x]\n");
        assert!(e[0].message.contains("need `files`"));
        let e = errors(
            "version: 0.2\nartifacts:\n  files: [a]\n  secondary-artifacts:\n    s:\n      name: y\n",
        );
        assert_eq!(e[0].path, "artifacts.secondary-artifacts.s");
    }

    #[test]
    fn reserved_and_aws_prefixed_variables_warn() {
        let b = load(
            "version: 0.2\nenv:\n  variables:\n    CODEBUILD_X: 1\n  exported-variables: [AWS_REGION]\nphases:\n  build:\n    commands: [x]\n",
        );
        assert_eq!(b.diagnostics.len(), 2);
    }

    #[test]
    fn wrong_kinds_are_errors_with_path() {
        let e = errors("version: 0.2\nphases:\n  build:\n    commands: {a: b}\n");
        assert!(
            e[0].message
                .contains("expected a list of commands, found a map")
        );
        assert_eq!(e[0].path, "phases.build.commands");
    }
}
