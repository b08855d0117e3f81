//! Following a running build's log (`aws::logs::tail_stream`): one
//! CloudWatch Logs Live Tail session per followed log, closed when the view
//! stops reading it, and GetLogEvents polling where Live Tail is refused —
//! an error answer (recorded responses through the SDK's real error
//! parser) or an endpoint that cannot serve it (moto and the local AWS API
//! have no StartLiveTail, and the SDK dials a `stream-` host that a
//! loopback endpoint does not resolve). Nothing here reaches AWS.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_smithy_mocks::{RuleMode, mock, mock_client};
use pipedeck::api::EngineEvent;
use pipedeck::aws::account::{Account, Intervals};
use pipedeck::aws::logs::{FollowMode, Tail, tail_stream};
use pipedeck::aws::{AwsTarget, Clients};
use tokio::sync::broadcast;

const GROUP: &str = "/aws/codebuild/web";
const STREAM: &str = "0f3c";
const ARN: &str = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/codebuild/web";

fn target() -> AwsTarget {
    AwsTarget {
        label: "prod".into(),
        region: Some("eu-west-1".into()),
        no_retries: true,
        ..AwsTarget::default()
    }
}

fn fast() -> Intervals {
    Intervals {
        rate: 50.0,
        burst: 50.0,
        ..Intervals::default()
    }
}

fn json_err(kind: &str, msg: &str) -> String {
    format!(r#"{{"__type":"{kind}","message":"{msg}"}}"#)
}

fn no_retry_logs(
    b: aws_sdk_cloudwatchlogs::config::Builder,
) -> aws_sdk_cloudwatchlogs::config::Builder {
    b.retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled())
}

/// GetLogEvents over `lines` by AWS's token rule: `f/N` reads from line N
/// and the forward token is `f/<lines so far>` (the same token back: the
/// end for now).
fn get_log_events(lines: Arc<Mutex<Vec<String>>>) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_cloudwatchlogs::Client::get_log_events).then_compute_response(move |r| {
        let from: usize = r
            .next_token()
            .and_then(|t| t.strip_prefix("f/"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let lines = lines.lock().unwrap();
        let events: Vec<serde_json::Value> = lines[from.min(lines.len())..]
            .iter()
            .map(|m| serde_json::json!({"timestamp": 1764583200000u64, "message": m, "ingestionTime": 1764583200001u64}))
            .collect();
        let body = serde_json::json!({
            "events": events,
            "nextForwardToken": format!("f/{}", lines.len()),
            "nextBackwardToken": "b/0",
        });
        aws_smithy_mocks::MockResponse::Http(aws_smithy_runtime_api::http::Response::new(
            200.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(body.to_string()),
        ))
    })
}

/// Runs the follower until `done` is set; returns its mode and the line
/// counts it published.
async fn follow_until_done(
    account: Arc<Account>,
    lines: Arc<Mutex<Vec<String>>>,
    add: impl Fn(usize) + Send + 'static,
) -> (FollowMode, Vec<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = broadcast::channel(64);
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let follower = tokio::spawn(tail_stream(
        account,
        dir.path().to_path_buf(),
        "ae-1".into(),
        Tail {
            group: GROUP.into(),
            stream: STREAM.into(),
            group_arn: Some(ARN.into()),
            complete: false,
        },
        Duration::from_millis(100),
        tx,
        || true,
        move || {
            let d = d2.load(Ordering::SeqCst);
            async move { d }
        },
    ));
    let mut counts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // New lines arrive while the build runs; the follower publishes them.
    while counts.last().copied().unwrap_or(0) < 3 {
        assert!(Instant::now() < deadline, "no LogAppended: {counts:?}");
        if let Ok(Ok(EngineEvent::LogAppended { lines, .. })) =
            tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
        {
            counts.push(lines);
        }
    }
    add(2);
    while counts.last().copied().unwrap_or(0) < 5 {
        assert!(Instant::now() < deadline, "the new lines: {counts:?}");
        if let Ok(Ok(EngineEvent::LogAppended { lines, .. })) =
            tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
        {
            counts.push(lines);
        }
    }
    // The build ends: one last sync, then the follower stops.
    lines
        .lock()
        .unwrap()
        .push("[Container] Phase complete: BUILD".into());
    done.store(true, Ordering::SeqCst);
    let mode = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .expect("the follower ends with the build")
        .unwrap();
    while let Ok(EngineEvent::LogAppended { lines, .. }) = rx.try_recv() {
        counts.push(lines);
    }
    (mode, counts)
}

#[tokio::test]
async fn a_refused_live_tail_falls_back_to_polling_get_log_events() {
    for (code, msg) in [
        (
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: logs:StartLiveTail",
        ),
        (
            "UnknownOperationException",
            "Unknown operation StartLiveTail",
        ),
    ] {
        let lines = Arc::new(Mutex::new(vec![
            "[Container] Entering phase BUILD".to_owned(),
            "running tests".into(),
            "test_a ... ok".into(),
        ]));
        let live = mock!(aws_sdk_cloudwatchlogs::Client::start_live_tail)
            .sequence()
            .http_status(400, Some(json_err(code, msg)))
            .build();
        let get = get_log_events(lines.clone());
        let logs = mock_client!(
            aws_sdk_cloudwatchlogs,
            RuleMode::MatchAny,
            &[&live, &get],
            no_retry_logs
        );
        let conf = Clients::static_conf("http://127.0.0.1:1", "eu-west-1").await;
        let mut c = Clients::from_conf(&conf, Some("prod".into()));
        c.logs = logs;
        let account = Arc::new(Account::new(target(), c, fast()));
        let more = lines.clone();
        let (mode, counts) = follow_until_done(account, lines.clone(), move |n| {
            let mut l = more.lock().unwrap();
            for i in 0..n {
                l.push(format!("test_{i} ... ok"));
            }
        })
        .await;
        assert_eq!(mode, FollowMode::Polling, "{code}");
        assert_eq!(live.num_calls(), 1, "{code}: one session asked for, once");
        assert!(
            get.num_calls() >= 3,
            "{code}: polled {} times",
            get.num_calls()
        );
        assert_eq!(
            counts.last(),
            Some(&6),
            "{code}: the last lines too: {counts:?}"
        );
        assert!(
            counts.windows(2).all(|w| w[0] < w[1]),
            "{code}: a count only when lines were added: {counts:?}"
        );
    }
}

// ------------------------------------------------------------ moto

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Option<Moto> {
    let venv = std::env::var_os("PIPEDECK_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test"));
    if !venv.join("bin/moto_server").is_file() {
        eprintln!("SKIPPED: no moto_server (set PIPEDECK_TEST_VENV; scripts/test makes the venv)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(venv.join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(m)
}

/// moto has no StartLiveTail, and the SDK cannot even reach it (the
/// operation's `stream-` host prefix on a loopback endpoint): the follower
/// polls moto's GetLogEvents and misses no line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_live_tail_on_the_endpoint_moto_is_polled() {
    let Some(m) = moto() else { return };
    let conf = Clients::static_conf(&m.url, "eu-west-1").await;
    let c = Clients::from_conf(&conf, Some("prod".into()));
    let logs = c.logs.clone();
    logs.create_log_group()
        .log_group_name(GROUP)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(GROUP)
        .log_stream_name(STREAM)
        .send()
        .await
        .unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let put = {
        let logs = logs.clone();
        move |from: usize, to: usize| {
            let logs = logs.clone();
            async move {
                let mut req = logs
                    .put_log_events()
                    .log_group_name(GROUP)
                    .log_stream_name(STREAM);
                for i in from..to {
                    req = req.log_events(
                        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                            .timestamp(now_ms + i as i64)
                            .message(format!("line {i}"))
                            .build()
                            .unwrap(),
                    );
                }
                req.send().await.unwrap();
            }
        }
    };
    put(0, 3).await;
    let account = Arc::new(Account::new(target(), c, fast()));
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = broadcast::channel(64);
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let follower = tokio::spawn(tail_stream(
        account.clone(),
        dir.path().to_path_buf(),
        "ae-1".into(),
        Tail {
            group: GROUP.into(),
            stream: STREAM.into(),
            group_arn: Some(ARN.into()),
            complete: false,
        },
        Duration::from_millis(200),
        tx,
        || true,
        move || {
            let d = d2.load(Ordering::SeqCst);
            async move { d }
        },
    ));
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while last < 3 {
        assert!(Instant::now() < deadline, "no LogAppended (had {last})");
        if let Ok(Ok(EngineEvent::LogAppended { lines, .. })) =
            tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
        {
            last = lines;
        }
    }
    put(3, 5).await;
    while last < 5 {
        assert!(Instant::now() < deadline, "the new lines (had {last})");
        if let Ok(Ok(EngineEvent::LogAppended { lines, .. })) =
            tokio::time::timeout(Duration::from_secs(1), rx.recv()).await
        {
            last = lines;
        }
    }
    done.store(true, Ordering::SeqCst);
    let mode = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .expect("the follower ends with the build")
        .unwrap();
    assert_eq!(mode, FollowMode::Polling);
    // The mirror holds every line once, in order.
    let page = account
        .read_stream(
            dir.path(),
            &pipedeck::api::LogRef::Stream {
                log_group_name: GROUP.into(),
                log_stream_name: STREAM.into(),
            },
            Some(0),
            100,
        )
        .await
        .unwrap();
    assert_eq!(
        page.lines,
        ["line 0", "line 1", "line 2", "line 3", "line 4"]
    );
}

// ------------------------------------------------------------ Live Tail

/// One event stream frame as CloudWatch Logs sends it.
fn frame(event_type: &str, payload: serde_json::Value) -> Vec<u8> {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    let m = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event_type.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&m, &mut out).unwrap();
    out
}

fn session_start() -> Vec<u8> {
    frame(
        "sessionStart",
        serde_json::json!({"requestId": "r-1", "sessionId": "s-1", "logGroupIdentifiers": [ARN], "logStreamNames": [STREAM]}),
    )
}

/// StartLiveTail answering with `frames`, after `on_start` (the lines the
/// build writes once the session is open).
fn live_tail(
    frames: Vec<u8>,
    on_start: impl Fn() + Send + Sync + 'static,
) -> aws_smithy_mocks::Rule {
    mock!(aws_sdk_cloudwatchlogs::Client::start_live_tail).then_compute_response(move |r| {
        assert_eq!(r.log_group_identifiers(), [ARN]);
        assert_eq!(r.log_stream_names(), [STREAM]);
        on_start();
        let mut resp = aws_smithy_runtime_api::http::Response::new(
            200.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(frames.clone()),
        );
        resp.headers_mut()
            .insert("content-type", "application/vnd.amazon.eventstream");
        aws_smithy_mocks::MockResponse::Http(resp)
    })
}

async fn account_with(rules: &[&aws_smithy_mocks::Rule]) -> Arc<Account> {
    let logs = mock_client!(
        aws_sdk_cloudwatchlogs,
        RuleMode::MatchAny,
        rules,
        no_retry_logs
    );
    let conf = Clients::static_conf("http://127.0.0.1:1", "eu-west-1").await;
    let mut c = Clients::from_conf(&conf, Some("prod".into()));
    c.logs = logs;
    Arc::new(Account::new(target(), c, fast()))
}

/// A session update makes the follower read the new lines at once; when
/// the view stops reading the log the follower ends, dropping (closing)
/// the session, and asks for no other.
#[tokio::test]
async fn live_tail_updates_read_new_lines_and_the_session_closes_with_the_view() {
    let lines = Arc::new(Mutex::new(vec!["a".to_owned(), "b".into(), "c".into()]));
    let update = frame(
        "sessionUpdate",
        serde_json::json!({"sessionMetadata": {"sampled": false}, "sessionResults": [
            {"logStreamName": STREAM, "logGroupIdentifier": ARN, "message": "d", "timestamp": 1764583200000u64, "ingestionTime": 1764583200001u64}]}),
    );
    let mut frames = session_start();
    frames.extend(update);
    let more = lines.clone();
    let live = live_tail(frames, move || {
        more.lock().unwrap().extend(["d".to_owned(), "e".into()]);
    });
    let get = get_log_events(lines.clone());
    let account = account_with(&[&live, &get]).await;
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = broadcast::channel(64);
    // The view reads the log until the update has been read.
    let reads = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let r2 = reads.clone();
    let mode = tokio::time::timeout(
        Duration::from_secs(30),
        tail_stream(
            account,
            dir.path().to_path_buf(),
            "ae-1".into(),
            Tail {
                group: GROUP.into(),
                stream: STREAM.into(),
                group_arn: Some(ARN.into()),
                complete: false,
            },
            // Long: the update, not the clock, brings the lines.
            Duration::from_secs(20),
            tx,
            move || r2.fetch_add(1, Ordering::SeqCst) < 1,
            || async { false },
        ),
    )
    .await
    .expect("the follower ends when the view closes");
    assert_eq!(mode, FollowMode::LiveTail);
    let mut counts = Vec::new();
    while let Ok(EngineEvent::LogAppended { lines, .. }) = rx.try_recv() {
        counts.push(lines);
    }
    assert_eq!(counts, [3, 5], "the backfill, then the update's lines");
    assert_eq!(live.num_calls(), 1);
    // Two syncs, the backfill's and the update's, of two calls each (a
    // sync reads until the token comes back).
    assert_eq!(get.num_calls(), 4);
}

/// A session the server ends (Live Tail sessions last at most 3 hours)
/// hands over to polling, which follows the build to its end.
#[tokio::test]
async fn an_ended_live_tail_session_hands_over_to_polling() {
    let lines = Arc::new(Mutex::new(vec!["a".to_owned(), "b".into(), "c".into()]));
    let live = live_tail(session_start(), || {});
    let get = get_log_events(lines.clone());
    let account = account_with(&[&live, &get]).await;
    let more = lines.clone();
    let (mode, counts) = follow_until_done(account, lines.clone(), move |n| {
        let mut l = more.lock().unwrap();
        for i in 0..n {
            l.push(format!("later {i}"));
        }
    })
    .await;
    assert_eq!(mode, FollowMode::Polling);
    assert_eq!(live.num_calls(), 1, "no second session");
    assert_eq!(counts.last(), Some(&6), "{counts:?}");
}
