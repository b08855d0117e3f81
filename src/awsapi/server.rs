//! The HTTP side: hyper 1 (HTTP/1.1, keep-alive) on one listener. Each
//! request is read whole (at most [`MAX_BODY`]), its signature verified,
//! then routed on `X-Amz-Target`; answers are `application/x-amz-json-1.1`
//! with an `x-amzn-RequestId`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{AwsError, Caller, Ctx, Options, dispatch, sigv4};
use crate::engine::EngineHandle;

/// The largest request body accepted (20 MB).
pub const MAX_BODY: usize = 20 * 1024 * 1024;

/// A running API server; dropping it does not stop it, [`Server::stop`] does.
pub struct Server {
    pub local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Stops accepting and closes open connections gracefully.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A warning to print when `addr` is not a loopback address.
pub fn exposure_warning(addr: &SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "warning: the AWS API listens on {addr}, which is not a loopback address: anyone who can \
             reach it and holds the key pair can drive this workspace's pipelines"
        )
    })
}

/// Binds `opts.addr` and serves until [`Server::stop`].
pub async fn start(engine: EngineHandle, opts: Options) -> std::io::Result<Server> {
    let listener = TcpListener::bind(opts.addr).await?;
    let local_addr = listener.local_addr()?;
    let ctx = Arc::new(Ctx::new(engine, opts));
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, ctx, stop_rx));
    tracing::info!(%local_addr, "AWS API listening");
    Ok(Server {
        local_addr,
        stop,
        task,
    })
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "AWS API accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let svc = hyper::service::service_fn(move |req| {
            let ctx = ctx.clone();
            async move { Ok::<_, Infallible>(handle(&ctx, req, peer).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(30))
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "AWS API connection ended");
            }
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
    }
}

fn respond(status: u16, body: &Value, request_id: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    r
}

fn error(e: &AwsError, request_id: &str) -> Response<Full<Bytes>> {
    let mut r = respond(e.status, &e.body(), request_id);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&e.code) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

async fn handle(ctx: &Ctx, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    if parts.method != hyper::Method::POST {
        return error(
            &AwsError::new(
                "UnknownOperationException",
                format!(
                    "{} {}: the AWS JSON protocol is POST / with X-Amz-Target",
                    parts.method,
                    parts.uri.path()
                ),
            ),
            &request_id,
        );
    }
    let too_large = || {
        AwsError::new(
            "RequestEntityTooLargeException",
            format!("the request body is larger than {MAX_BODY} bytes"),
        )
        .with_status(413)
    };
    let declared = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return error(&too_large(), &request_id);
    }
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return error(&too_large(), &request_id);
        }
        Err(e) => {
            return error(
                &AwsError::new("SerializationException", format!("reading the body: {e}")),
                &request_id,
            );
        }
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let signed = sigv4::Signed {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body: &bytes,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let creds = &ctx.opts.credentials;
    let access_key_id =
        match sigv4::verify(&signed, &creds.access_key_id, &creds.secret_access_key, now) {
            Ok(k) => k,
            Err(e) => {
                tracing::info!(%peer, code = %e.code, "AWS API request refused");
                let status = auth_status(&e.code);
                return error(&e.with_status(status), &request_id);
            }
        };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if target.is_empty() && is_form(&parts.headers) {
        // STS speaks the query protocol: only GetCallerIdentity is served
        // (the account in the TUI's header, `aws sts get-caller-identity`).
        return sts(&bytes, &access_key_id, &request_id);
    }
    if target.is_empty() {
        return error(
            &AwsError::new(
                "UnknownOperationException",
                "the request has no X-Amz-Target header",
            ),
            &request_id,
        );
    }
    let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Object(serde_json::Map::new())
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    &AwsError::validation(format!(
                        "1 validation error detected: the request body is not JSON ({e})"
                    )),
                    &request_id,
                );
            }
        }
    };
    let user_agent = parts
        .headers
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("aws-api")
        .to_owned();
    let caller = Caller {
        access_key_id,
        user_agent,
    };
    match dispatch(ctx, &caller, target, body).await {
        Ok(v) => respond(200, &super::prune(v), &request_id),
        Err(e) => {
            tracing::debug!(target, code = %e.code, message = %e.message, "AWS API error");
            error(&e, &request_id)
        }
    }
}

/// The HTTP status AWS's JSON services answer for each authentication
/// refusal: 400 for all of them (MissingAuthenticationToken, UnrecognizedClient,
/// InvalidSignature, IncompleteSignature, as in DynamoDB's common-errors table);
/// `tests/awsapi_refusals.rs` records what the AWS CLI and boto3 report.
pub fn auth_status(code: &str) -> u16 {
    let _ = code;
    400
}

fn is_form(h: &hyper::HeaderMap) -> bool {
    h.get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// STS over the query protocol (form-encoded `Action=…`, XML answers).
fn sts(body: &[u8], access_key_id: &str, request_id: &str) -> Response<Full<Bytes>> {
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let xml = |status: u16, text: String| {
        let mut r = Response::new(Full::new(Bytes::from(text)));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/xml"),
        );
        if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
            r.headers_mut().insert("x-amzn-requestid", v);
        }
        r
    };
    let ns = "https://sts.amazonaws.com/doc/2011-06-15/";
    match get("Action") {
        Some("GetCallerIdentity") => {
            let account = super::ACCOUNT;
            xml(
                200,
                format!(
                    "<GetCallerIdentityResponse xmlns=\"{ns}\"><GetCallerIdentityResult>\
                     <Arn>arn:aws:iam::{account}:user/pipedeck-local</Arn>\
                     <UserId>{access_key_id}</UserId><Account>{account}</Account>\
                     </GetCallerIdentityResult><ResponseMetadata><RequestId>{request_id}\
                     </RequestId></ResponseMetadata></GetCallerIdentityResponse>"
                ),
            )
        }
        other => xml(
            400,
            format!(
                "<ErrorResponse xmlns=\"{ns}\"><Error><Type>Sender</Type>\
                 <Code>InvalidAction</Code><Message>the local AWS API serves only STS \
                 GetCallerIdentity, not {}</Message></Error><RequestId>{request_id}</RequestId>\
                 </ErrorResponse>",
                other.unwrap_or("a request without Action")
            ),
        ),
    }
}
