//! The key pair the local AWS API accepts: generated on first use, kept in
//! the config dir as `aws-api-credentials` (mode 0600), printed by
//! `pipedeck aws-credentials` as a credentials profile and a config profile.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The profile name the printed snippet uses.
pub const PROFILE: &str = "pipedeck-local";

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// `<config dir>/aws-api-credentials`, beside `config.toml`.
pub fn path(config_file: &Path) -> PathBuf {
    config_file
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("aws-api-credentials")
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    out.truncate(n);
    out
}

impl Credentials {
    /// A new random pair: `AKIA` + 16 of `A-Z2-7`, and a 40-character secret.
    pub fn generate() -> Credentials {
        const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let id: String = random_bytes(16)
            .iter()
            .map(|b| B32[usize::from(b % 32)] as char)
            .collect();
        let secret: String = random_bytes(40)
            .iter()
            .map(|b| B64[usize::from(b % 64)] as char)
            .collect();
        Credentials {
            access_key_id: format!("AKIA{id}"),
            secret_access_key: secret,
        }
    }

    fn parse(text: &str) -> Option<Credentials> {
        let mut id = None;
        let mut secret = None;
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_owned()),
                "aws_secret_access_key" => secret = Some(v.trim().to_owned()),
                _ => {}
            }
        }
        Some(Credentials {
            access_key_id: id.filter(|s| !s.is_empty())?,
            secret_access_key: secret.filter(|s| !s.is_empty())?,
        })
    }

    /// Reads the pair at `file`, or generates and writes one (0600, written
    /// to a temporary file and renamed so a reader never sees half of it).
    pub fn load_or_create(file: &Path) -> std::io::Result<Credentials> {
        match std::fs::read_to_string(file) {
            Ok(text) => {
                return Credentials::parse(&text).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{}: no aws_access_key_id / aws_secret_access_key; delete it to get a new pair",
                            file.display()
                        ),
                    )
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let c = Credentials::generate();
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            writeln!(
                f,
                "# pipedeck's local AWS API key pair (see `pipedeck aws-credentials`)\n\
                 aws_access_key_id = {}\naws_secret_access_key = {}",
                c.access_key_id, c.secret_access_key
            )?;
            f.sync_all()?;
        }
        // Another process may have won the race: keep whichever is there.
        if std::fs::hard_link(&tmp, file).is_err() {
            let _ = std::fs::remove_file(&tmp);
            let text = std::fs::read_to_string(file)?;
            return Credentials::parse(&text).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "unreadable credentials")
            });
        }
        let _ = std::fs::remove_file(&tmp);
        Ok(c)
    }

    /// The snippet `pipedeck aws-credentials` prints.
    pub fn profile_snippet(&self, endpoint: &str) -> String {
        format!(
            "# Add to ~/.aws/credentials:\n\
             [{PROFILE}]\n\
             aws_access_key_id = {}\n\
             aws_secret_access_key = {}\n\
             \n\
             # Add to ~/.aws/config:\n\
             [profile {PROFILE}]\n\
             region = {}\n\
             endpoint_url = {endpoint}\n\
             \n\
             # Then: aws --profile {PROFILE} codepipeline list-pipelines\n",
            self.access_key_id,
            self.secret_access_key,
            super::REGION
        )
    }
}

/// `http://ADDR` for an address as configured (`127.0.0.1:4590`).
pub fn endpoint_url(addr: &str) -> String {
    format!("http://{addr}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = path(&d.path().join("config.toml"));
        let a = Credentials::load_or_create(&f).unwrap();
        let b = Credentials::load_or_create(&f).unwrap();
        assert_eq!(a, b);
        assert!(a.access_key_id.starts_with("AKIA") && a.access_key_id.len() == 20);
        assert_eq!(a.secret_access_key.len(), 40);
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let s = a.profile_snippet("http://127.0.0.1:4590");
        assert!(s.contains("[profile pipedeck-local]") && s.contains(&a.secret_access_key));
        assert!(!format!("{a:?}").contains(&a.secret_access_key));
    }
}
