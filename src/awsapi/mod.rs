//! A local AWS API: the engine answers CodePipeline, CodeBuild, CloudWatch
//! Logs and CloudTrail calls as AWS's JSON 1.1 services do, so the AWS CLI,
//! boto3 and the SDKs drive local pipelines with `--endpoint-url`.
//!
//! - [`server`]: hyper on a loopback port, `POST /` with `X-Amz-Target`,
//!   a 20 MB body limit, AWS-shaped errors.
//! - [`sigv4`]: every request's signature is recomputed with the secret of
//!   the key pair in [`credentials`].
//! - one file per service; each maps AWS's request and response shapes onto
//!   [`crate::api::Request`] / [`crate::api::Reply`] through the engine handle.

pub mod cli;
pub mod cloudtrail;
pub mod codebuild;
pub mod codepipeline;
pub mod codepipeline_mutate;
pub mod credentials;
pub mod input;
pub mod logs;
pub mod pipeline_json;
pub mod server;
pub mod sigv4;
pub mod token;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::api::{ApiError, Envelope, Reply, Request};
use crate::engine::EngineHandle;

pub use credentials::Credentials;
pub use server::{Server, start};

/// The default address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:4590";

/// The region the API claims to be (the CLI signs with whatever region it
/// has; any is accepted).
pub const REGION: &str = "us-east-1";

/// The account id in ARNs.
pub const ACCOUNT: &str = "000000000000";

/// How the API server behaves.
#[derive(Debug, Clone)]
pub struct Options {
    pub addr: SocketAddr,
    /// Refuse every mutating operation with `AccessDeniedException`.
    pub readonly: bool,
    /// Stages (and environments) that need the TUI's typed confirmation.
    pub protected: Vec<String>,
    /// Let approvals, retries and rollbacks of protected stages through.
    pub protected_via_api: bool,
    pub credentials: Credentials,
    /// Where CreatePipeline / UpdatePipeline would write (the workspace).
    pub workspace_root: std::path::PathBuf,
}

/// An error in AWS's JSON shape: `{"__type": …, "message": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl AwsError {
    /// A client error (HTTP 400).
    pub fn new(code: &str, message: impl Into<String>) -> AwsError {
        AwsError {
            status: 400,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    pub fn with_status(mut self, status: u16) -> AwsError {
        self.status = status;
        self
    }

    pub fn validation(message: impl Into<String>) -> AwsError {
        AwsError::new("ValidationException", message)
    }

    /// An operation of a known service that pipedeck does not answer.
    pub fn not_built(service: &str, op: &str, why: &str) -> AwsError {
        AwsError::new(
            "UnknownOperationException",
            format!("{service} operation {op} is not available in pipedeck's local AWS API{why}"),
        )
    }

    pub fn body(&self) -> Value {
        json!({"__type": self.code, "message": self.message})
    }
}

/// The engine's AWS-named errors keep their names (`Exception` appended
/// where AWS spells it so); engine-internal ones become 500s.
impl From<ApiError> for AwsError {
    fn from(e: ApiError) -> AwsError {
        let code = e.code.as_str();
        let server = matches!(code, "InternalError" | "EngineStopped" | "InternalFailure");
        let name = match code {
            "InternalError" | "InternalFailure" => "InternalFailure".to_owned(),
            "EngineStopped" => "ServiceUnavailableException".to_owned(),
            c if c.ends_with("Exception") => c.to_owned(),
            c => format!("{c}Exception"),
        };
        AwsError {
            status: if server { 500 } else { 400 },
            code: name,
            message: e.message,
        }
    }
}

pub type AwsResult = Result<Value, AwsError>;

/// Who called, as verified from the signature.
#[derive(Debug, Clone)]
pub struct Caller {
    pub access_key_id: String,
    pub user_agent: String,
}

/// Shared by every request: the engine, the options, idempotency tokens.
pub struct Ctx {
    pub engine: EngineHandle,
    pub opts: Options,
    /// `clientRequestToken` → (request fingerprint, execution id).
    pub client_tokens: Mutex<HashMap<String, (String, String)>>,
    /// A per-workspace secret so paging tokens are opaque and cannot be
    /// forged; derived from the key pair so it is stable across restarts.
    pub token_key: Vec<u8>,
    /// Log stream name → (group, start ms), filled by every walk.
    pub log_streams: Mutex<HashMap<String, (String, i64)>>,
    /// Approval tokens this API handed out: token → (execution, action
    /// execution), so a second PutApprovalResult with a used token answers
    /// ApprovalAlreadyCompletedException as AWS does (the engine forgets a
    /// token once it is used).
    pub approval_tokens: Mutex<HashMap<String, (String, String)>>,
    /// Serialises starts that carry a `clientRequestToken`, so two
    /// concurrent retries of one request start one execution.
    pub start_lock: tokio::sync::Mutex<()>,
}

impl Ctx {
    pub fn new(engine: EngineHandle, opts: Options) -> Ctx {
        let token_key = sigv4::hmac(opts.credentials.secret_access_key.as_bytes(), b"tokens");
        Ctx {
            engine,
            opts,
            client_tokens: Mutex::new(HashMap::new()),
            token_key,
            log_streams: Mutex::new(HashMap::new()),
            approval_tokens: Mutex::new(HashMap::new()),
            start_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// One engine call as `caller`.
    pub async fn call(&self, caller: &Caller, request: Request) -> Result<Reply, AwsError> {
        if self.opts.readonly && request.is_mutating() {
            return Err(AwsError::new(
                "AccessDeniedException",
                format!(
                    "pipedeck is read-only: {} is refused (start it without --readonly / readonly = true)",
                    request.event_name()
                ),
            ));
        }
        self.engine
            .call(Envelope {
                identity: caller.access_key_id.clone(),
                user_agent: caller.user_agent.clone(),
                request,
            })
            .await
            .map_err(AwsError::from)
    }

    /// Refuses approving, retrying or rolling back a protected stage unless
    /// `protected_via_api = true`.
    pub fn check_protected(&self, op: &str, stage: &str) -> Result<(), AwsError> {
        if self.opts.protected_via_api || !self.opts.protected.iter().any(|p| p == stage) {
            return Ok(());
        }
        Err(AwsError::new(
            "AccessDeniedException",
            format!(
                "stage {stage} is protected: {op} needs the confirmation the TUI asks for \
                 (type the stage's name there), or `protected_via_api = true` in the config"
            ),
        ))
    }

    pub fn readonly_refusal(&self, op: &str) -> Result<(), AwsError> {
        if self.opts.readonly {
            return Err(AwsError::new(
                "AccessDeniedException",
                format!("pipedeck is read-only: {op} is refused"),
            ));
        }
        Ok(())
    }
}

type PairMap = HashMap<String, (String, String)>;

/// A small map kept in the state dir as JSON (written to a temporary file
/// and renamed), so it outlives the engine.
fn state_file(ctx: &Ctx, name: &str) -> std::path::PathBuf {
    ctx.engine.workspace.state_dir.join(name)
}

fn load_pairs(ctx: &Ctx, name: &str, map: &mut PairMap) {
    if map.is_empty()
        && let Ok(text) = std::fs::read_to_string(state_file(ctx, name))
        && let Ok(m) = serde_json::from_str::<PairMap>(&text)
    {
        *map = m;
    }
}

fn save_pairs(ctx: &Ctx, name: &str, map: &PairMap) {
    let file = state_file(ctx, name);
    let tmp = file.with_extension("json.tmp");
    if let Ok(text) = serde_json::to_string(map)
        && std::fs::write(&tmp, text).is_ok()
    {
        let _ = std::fs::rename(&tmp, &file);
    }
}

const CLIENT_TOKENS: &str = "aws-api-client-tokens.json";
const APPROVAL_TOKENS: &str = "aws-api-approval-tokens.json";

/// The execution a `clientRequestToken` started, with the request's
/// fingerprint (kept in the state dir, so a retry after an engine restart
/// still gets the same execution).
pub fn client_tokens_get(ctx: &Ctx, token: &str) -> Option<(String, String)> {
    let mut map = ctx.client_tokens.lock().ok()?;
    load_pairs(ctx, CLIENT_TOKENS, &mut map);
    map.get(token).cloned()
}

pub fn client_tokens_put(ctx: &Ctx, token: &str, fingerprint: String, execution: &str) {
    let Ok(mut map) = ctx.client_tokens.lock() else {
        return;
    };
    load_pairs(ctx, CLIENT_TOKENS, &mut map);
    map.insert(token.to_owned(), (fingerprint, execution.to_owned()));
    save_pairs(ctx, CLIENT_TOKENS, &map);
}

/// Approval tokens handed out: token → (execution, action execution).
pub fn approval_tokens_get(ctx: &Ctx, token: &str) -> Option<(String, String)> {
    let mut map = ctx.approval_tokens.lock().ok()?;
    load_pairs(ctx, APPROVAL_TOKENS, &mut map);
    map.get(token).cloned()
}

pub fn approval_tokens_put(ctx: &Ctx, seen: Vec<(String, (String, String))>) {
    let Ok(mut map) = ctx.approval_tokens.lock() else {
        return;
    };
    load_pairs(ctx, APPROVAL_TOKENS, &mut map);
    let mut changed = false;
    for (t, v) in seen {
        if map.get(&t) != Some(&v) {
            map.insert(t, v);
            changed = true;
        }
    }
    if changed {
        save_pairs(ctx, APPROVAL_TOKENS, &map);
    }
}

/// Routes one call: `target` is the `X-Amz-Target` header.
pub async fn dispatch(ctx: &Ctx, caller: &Caller, target: &str, body: Value) -> AwsResult {
    let Some((prefix, op)) = target.rsplit_once('.') else {
        return Err(AwsError::new(
            "UnknownOperationException",
            format!("X-Amz-Target `{target}` names no operation (expected <Service>.<Operation>)"),
        ));
    };
    let service = prefix.rsplit('.').next().unwrap_or(prefix);
    match service {
        "CodePipeline_20150709" => codepipeline::call(ctx, caller, op, &body).await,
        "CodeBuild_20161006" => codebuild::call(ctx, caller, op, &body).await,
        "Logs_20140328" => logs::call(ctx, caller, op, &body).await,
        "CloudTrail_20131101" => cloudtrail::call(ctx, caller, op, &body).await,
        other => Err(AwsError::new(
            "UnknownOperationException",
            format!(
                "X-Amz-Target service `{other}` is not served here (CodePipeline_20150709, \
                 CodeBuild_20161006, Logs_20140328, CloudTrail_20131101)"
            ),
        )),
    }
}

/// RFC 3339 → epoch seconds (AWS JSON timestamps), `None` if unparsable.
pub fn epoch_secs(rfc3339: &str) -> Option<f64> {
    let t = humantime::parse_rfc3339_weak(rfc3339.trim_end_matches('Z')).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some((d.as_millis() as f64) / 1000.0)
}

/// RFC 3339 → a JSON number of epoch seconds, or null.
pub fn ts(rfc3339: &str) -> Value {
    epoch_secs(rfc3339).map_or(Value::Null, |s| json!(s))
}

/// Drops null members so responses look like AWS's (absent, not null).
pub fn prune(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, prune(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(prune).collect()),
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_aws_names() {
        let e = AwsError::from(ApiError::new("ApprovalAlreadyCompleted", "done"));
        assert_eq!(e.code, "ApprovalAlreadyCompletedException");
        assert_eq!(e.status, 400);
        let e = AwsError::from(ApiError::new("PipelineNotFoundException", "x"));
        assert_eq!(e.code, "PipelineNotFoundException");
        let e = AwsError::from(ApiError::new("InternalError", "x"));
        assert_eq!(e.status, 500);
    }

    #[test]
    fn timestamps_are_epoch_seconds() {
        assert_eq!(epoch_secs("1970-01-01T00:00:01.500Z"), Some(1.5));
        assert_eq!(epoch_secs("nonsense"), None);
    }
}
