//! The command-line side: `pipedeck serve --aws-api [ADDR]` and
//! `pipedeck aws-credentials`. main.rs and `cli::ops::serve` only wire these.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use super::{Credentials, DEFAULT_ADDR, Options, Server, credentials};
use crate::config::{Paths, UserConfig};
use crate::engine::EngineHandle;

/// `--aws-api [ADDR]` of `pipedeck serve`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Also answer AWS CodePipeline / CodeBuild / CloudWatch Logs / CloudTrail
    /// calls (AWS CLI, SDKs) on ADDR (default: `aws_api` in the config, else
    /// 127.0.0.1:4590; port 0 picks a free one)
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "")]
    pub aws_api: Option<String>,
}

/// What `serve` needs to start the API: resolved before the runtime starts.
#[derive(Debug, Clone)]
pub struct ServeApi {
    pub addr: SocketAddr,
    pub readonly: bool,
    pub protected: Vec<String>,
    pub protected_via_api: bool,
    pub credentials_file: std::path::PathBuf,
}

impl ServeApi {
    /// `None` when neither the flag nor `aws_api` in the config asks for it.
    pub fn resolve(
        args: &ServeArgs,
        paths: &Paths,
        readonly_flag: bool,
    ) -> color_eyre::Result<Option<ServeApi>> {
        let (cfg, _) = UserConfig::load(&paths.config_file);
        let addr = match (&args.aws_api, &cfg.aws_api) {
            (Some(a), _) if !a.is_empty() => a.clone(),
            (Some(_), Some(c)) => c.clone(),
            (Some(_), None) => DEFAULT_ADDR.to_owned(),
            (None, Some(c)) => c.clone(),
            (None, None) => return Ok(None),
        };
        let addr: SocketAddr = addr
            .parse()
            .map_err(|e| color_eyre::eyre::eyre!("--aws-api {addr}: {e} (want IP:PORT)"))?;
        Ok(Some(ServeApi {
            addr,
            readonly: readonly_flag || cfg.readonly,
            protected: cfg.protected,
            protected_via_api: cfg.protected_via_api,
            credentials_file: credentials::path(&paths.config_file),
        }))
    }

    /// Starts the server on `engine`; prints where and the warning for a
    /// non-loopback address.
    pub async fn start(&self, engine: &EngineHandle) -> color_eyre::Result<Server> {
        if let Some(w) = super::server::exposure_warning(&self.addr) {
            eprintln!("pipedeck: {w}");
            tracing::warn!("{w}");
        }
        let credentials = Credentials::load_or_create(&self.credentials_file)
            .map_err(|e| color_eyre::eyre::eyre!("{}: {e}", self.credentials_file.display()))?;
        let opts = Options {
            addr: self.addr,
            readonly: self.readonly,
            protected: self.protected.clone(),
            protected_via_api: self.protected_via_api,
            credentials,
            workspace_root: engine.workspace.root.clone(),
        };
        let server = super::start(engine.clone(), opts)
            .await
            .map_err(|e| color_eyre::eyre::eyre!("AWS API on {}: {e}", self.addr))?;
        println!(
            "AWS API on http://{} (credentials: `pipedeck aws-credentials`)",
            server.local_addr
        );
        Ok(server)
    }
}

/// `pipedeck aws-credentials`: the key pair as profile snippets.
#[derive(clap::Args, Debug)]
pub struct CredentialsArgs {
    /// The endpoint to put in the config profile (default: `aws_api` in the
    /// config, else 127.0.0.1:4590)
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
}

pub fn print_credentials(
    args: &CredentialsArgs,
    config_file: &Path,
) -> color_eyre::Result<ExitCode> {
    let (cfg, _) = UserConfig::load(config_file);
    let file = credentials::path(config_file);
    let c = Credentials::load_or_create(&file)
        .map_err(|e| color_eyre::eyre::eyre!("{}: {e}", file.display()))?;
    let addr = args
        .addr
        .clone()
        .or(cfg.aws_api)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    print!("{}", c.profile_snippet(&credentials::endpoint_url(&addr)));
    Ok(ExitCode::SUCCESS)
}
