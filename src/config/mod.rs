//! Where pipedeck keeps things: the config file and the data (state) dir,
//! from the `directories` crate, overridable by flags and environment
//! variables (`PIPEDECK_CONFIG`, `PIPEDECK_DATA_DIR`) so runs can be isolated.

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
