//! The AWS API tests' harness: a workspace with an engine, the API server
//! on a free loopback port in-process, and the real AWS CLI and boto3 from
//! the test venv (`scripts/test` makes it) pointed at it with the server's
//! key pair. Never real AWS: the CLI's config and credentials files are
//! temp files, the metadata service is disabled and every call names the
//! endpoint.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use pipedeck::api::types::ExecutionStatus;
use pipedeck::awsapi::{Credentials, Options, Server};
use pipedeck::engine::EngineHandle;
use serde_json::Value;

#[path = "../common/mod.rs"]
pub mod common;

/// The venv with `aws` and `boto3`, or `None` (the caller skips) when it is
/// missing and this is not CI; under `CI=true` a missing venv fails.
pub fn venv() -> Option<PathBuf> {
    let dir = std::env::var_os("PIPEDECK_TEST_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test"),
        PathBuf::from,
    );
    if dir.join("bin/aws").is_file() && dir.join("bin/python").is_file() {
        return Some(dir);
    }
    let msg = format!(
        "the AWS CLI / boto3 test venv is missing at {} (scripts/test creates it)",
        dir.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

pub struct Api {
    pub ws: common::Ws,
    pub engine: EngineHandle,
    pub server: Option<Server>,
    pub endpoint: String,
    pub creds: Credentials,
    pub venv: PathBuf,
    /// HOME and the CLI's config files.
    pub home: tempfile::TempDir,
}

pub fn options(creds: &Credentials, root: &Path) -> Options {
    Options {
        addr: "127.0.0.1:0".parse().unwrap(),
        readonly: false,
        protected: Vec::new(),
        protected_via_api: false,
        credentials: creds.clone(),
        workspace_root: root.to_path_buf(),
    }
}

pub struct Out {
    pub ok: bool,
    pub json: Value,
    pub stdout: String,
    pub stderr: String,
}

impl Api {
    /// `None` when the venv is missing (outside CI).
    pub async fn new(pipeline: &str, files: &[(&str, &str)]) -> Option<Api> {
        Api::with(pipeline, files, |_| {}).await
    }

    pub async fn with(
        pipeline: &str,
        files: &[(&str, &str)],
        tweak: impl FnOnce(&mut Options),
    ) -> Option<Api> {
        let venv = venv()?;
        let ws = common::workspace(pipeline, "", files);
        let engine = ws.engine();
        let creds = Credentials::generate();
        let mut opts = options(&creds, &ws.root);
        tweak(&mut opts);
        let server = pipedeck::awsapi::start(engine.clone(), opts).await.unwrap();
        let endpoint = format!("http://{}", server.local_addr);
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config"), "").unwrap();
        std::fs::write(home.path().join("credentials"), "").unwrap();
        Some(Api {
            ws,
            engine,
            server: Some(server),
            endpoint,
            creds,
            venv,
            home,
        })
    }

    /// Another server on the same engine (read-only, protected …).
    pub async fn second(&self, tweak: impl FnOnce(&mut Options)) -> Server {
        let mut opts = options(&self.creds, &self.ws.root);
        tweak(&mut opts);
        pipedeck::awsapi::start(self.engine.clone(), opts)
            .await
            .unwrap()
    }

    pub fn command(&self, program: &Path, endpoint: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(program);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", self.home.path())
            .env("AWS_CONFIG_FILE", self.home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.path().join("credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_ACCESS_KEY_ID", &self.creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.creds.secret_access_key)
            .env("PIPEDECK_ENDPOINT", endpoint)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn output(mut c: tokio::process::Command) -> Out {
        let o = tokio::time::timeout(Duration::from_secs(120), c.output())
            .await
            .expect("the client took more than 120 s")
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        Out {
            ok: o.status.success(),
            json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
            stdout,
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// `aws --endpoint-url … --output json ARGS`.
    pub async fn aws_at(&self, endpoint: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = self.command(&self.venv.join("bin/aws"), endpoint);
        c.args(["--endpoint-url", endpoint, "--output", "json"])
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Api::output(c).await
    }

    pub async fn aws(&self, args: &[&str]) -> Out {
        self.aws_at(&self.endpoint, args, &[]).await
    }

    /// The CLI's JSON output; panics with its stderr when it failed.
    pub async fn aws_ok(&self, args: &[&str]) -> Value {
        let o = self.aws(args).await;
        assert!(o.ok, "aws {args:?} failed:\n{}\n{}", o.stderr, o.stdout);
        o.json
    }

    /// The CLI's stderr; panics when it succeeded.
    pub async fn aws_err(&self, args: &[&str]) -> String {
        let o = self.aws(args).await;
        assert!(!o.ok, "aws {args:?} should have failed:\n{}", o.stdout);
        o.stderr
    }

    /// A boto3 script from tests/fixtures/awsapi; its stdout as JSON.
    pub async fn py(&self, script: &str, args: &[&str]) -> Value {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/awsapi");
        let mut c = self.command(&self.venv.join("bin/python"), &self.endpoint);
        c.arg(dir.join(script)).args(args).current_dir(&dir);
        let o = Api::output(c).await;
        assert!(
            o.ok,
            "{script} {args:?} failed:\n{}\n{}",
            o.stderr, o.stdout
        );
        o.json
    }

    pub async fn wait_status(&self, pipeline: &str, id: &str, status: ExecutionStatus) {
        common::until_status(&self.engine, pipeline, id, status).await;
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
        self.engine.shutdown().await;
    }
}

/// A pipeline JSON with declared variables (`Channel`, default `stable`).
pub fn pipeline_with_variables(name: &str, mode: &str, stages: &[String]) -> String {
    common::pipeline(name, mode, stages).replacen(
        "\"stages\": [",
        "\"variables\": [{\"name\": \"Channel\", \"defaultValue\": \"stable\"}], \"stages\": [",
        1,
    )
}

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}
