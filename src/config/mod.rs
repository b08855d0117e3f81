//! Where pipedeck keeps things: the config file and the data (state) dir,
//! from the `directories` crate, overridable by flags and environment
//! variables (`PIPEDECK_CONFIG`, `PIPEDECK_DATA_DIR`) so runs can be isolated.

pub mod aws;
pub mod kubernetes;
pub mod workspace;

use std::path::PathBuf;

use directories::ProjectDirs;

#[derive(Debug, Clone)]
pub struct Paths {
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
}

impl Paths {
    /// Resolves the paths: explicit values win, then the platform defaults
    /// (`~/.config/pipedeck/config.toml`, `~/.local/share/pipedeck` on Linux).
    pub fn resolve(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> Paths {
        let dirs = ProjectDirs::from("dev", "pipedeck", "pipedeck");
        let config_file = config.unwrap_or_else(|| {
            dirs.as_ref().map_or_else(
                || PathBuf::from("pipedeck.config.toml"),
                |d| d.config_dir().join("config.toml"),
            )
        });
        let data_dir = data_dir.unwrap_or_else(|| {
            dirs.as_ref().map_or_else(
                || PathBuf::from(".pipedeck"),
                |d| d.data_dir().to_path_buf(),
            )
        });
        Paths {
            config_file,
            data_dir,
        }
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }
}

/// The user's `config.toml`. Every key is optional; problems are warnings
/// (shown in the UI) and the defaults stay.
#[derive(Debug, Clone, Default)]
pub struct UserConfig {
    pub theme: Option<String>,
    pub readonly: bool,
    /// Ring the terminal bell when an approval waits or an execution fails.
    pub bell: bool,
    /// Stages (and, later, environments) whose rollback, reject or stop
    /// needs their name typed to confirm.
    pub protected: Vec<String>,
    /// `[keys.<screen>] "key" = "command"`.
    pub keys: Option<toml::Table>,
    /// `[aws]`: accounts shown at once and polling (see `config::aws`).
    pub aws: aws::AwsConfig,
    /// `aws_api = "127.0.0.1:4590"`: serve the local AWS API there.
    pub aws_api: Option<String>,
    /// Let the AWS API approve, retry and roll back protected stages.
    pub protected_via_api: bool,
    /// Approving a protected stage, or an approval before a protected
    /// environment's deploy, needs its name typed too.
    pub protected_approvals: bool,
}

impl UserConfig {
    pub fn load(path: &std::path::Path) -> (UserConfig, Vec<String>) {
        let mut cfg = UserConfig {
            bell: true,
            ..UserConfig::default()
        };
        let mut warnings = Vec::new();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (cfg, warnings),
            Err(e) => {
                warnings.push(format!("{}: {e}; using the defaults", path.display()));
                return (cfg, warnings);
            }
        };
        let table: toml::Table = match toml::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!(
                    "{}: {}; using the defaults",
                    path.display(),
                    e.to_string().trim()
                ));
                return (cfg, warnings);
            }
        };
        for (k, v) in table {
            let bad = |w: &mut Vec<String>, what: &str| {
                w.push(format!("{}: `{k}` must be {what}; ignored", path.display()));
            };
            match k.as_str() {
                "theme" => match v.as_str() {
                    Some(s) => cfg.theme = Some(s.to_owned()),
                    None => bad(&mut warnings, "a theme name"),
                },
                "readonly" => match v.as_bool() {
                    Some(b) => cfg.readonly = b,
                    None => bad(&mut warnings, "true or false"),
                },
                "bell" => match v.as_bool() {
                    Some(b) => cfg.bell = b,
                    None => bad(&mut warnings, "true or false"),
                },
                "protected" => match v.as_array() {
                    Some(a) => {
                        cfg.protected = a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect();
                    }
                    None => bad(&mut warnings, "a list of stage names"),
                },
                "aws_api" => match v.as_str() {
                    Some(s) => cfg.aws_api = Some(s.to_owned()),
                    None => bad(&mut warnings, "an address such as \"127.0.0.1:4590\""),
                },
                "protected_via_api" => match v.as_bool() {
                    Some(b) => cfg.protected_via_api = b,
                    None => bad(&mut warnings, "true or false"),
                },
                "protected_approvals" => match v.as_bool() {
                    Some(b) => cfg.protected_approvals = b,
                    None => bad(&mut warnings, "true or false"),
                },
                "keys" => match v {
                    toml::Value::Table(t) => cfg.keys = Some(t),
                    _ => bad(&mut warnings, "a table"),
                },
                "aws" => cfg.aws = aws::parse(&v, &mut warnings),
                other => {
                    let known = [
                        "theme",
                        "readonly",
                        "bell",
                        "protected",
                        "keys",
                        "aws",
                        "aws_api",
                        "protected_via_api",
                        "protected_approvals",
                    ];
                    let hint = known
                        .iter()
                        .min_by_key(|k| strsim::levenshtein(k, other))
                        .filter(|k| strsim::levenshtein(k, other) <= 2)
                        .map(|k| format!(" (did you mean `{k}`?)"))
                        .unwrap_or_default();
                    warnings.push(format!(
                        "{}: unknown key `{other}`{hint}; ignored",
                        path.display()
                    ));
                }
            }
        }
        (cfg, warnings)
    }
}
