//! The AWS backend's polling against the local AWS API (issue 14's
//! acceptance), a plain `main`, not criterion:
//!
//! - a workspace of 51 pipelines: `svc-00` runs one long execution (a
//!   build stage after another, each `sleep 4`), the 50 others are idle
//!   with one finished execution each; its engine is served as the local
//!   AWS API on a free loopback port (SigV4 with a generated key pair);
//! - `pipedeck`: an `AwsBackend` on SDK clients pointed at that API,
//!   default intervals (running 3 s, idle 60 s, list 300 s) but a budget of
//!   50 calls/s so the first read of everything is quick; it is subscribed
//!   to and the TUI's refresh pattern runs on its events: a full read at
//!   start (ListPipelines, every state and execution list, the definitions,
//!   the environments, EngineInfo), then per event what the TUI's
//!   `on_engine` asks for (that pipeline's state and executions; a full
//!   read on a failure or a resync), merged while one read runs;
//! - `naive`: a console that every 3 s lists the pipelines and calls
//!   GetPipeline + GetPipelineState for each, on the same server;
//! - the HTTP requests are counted on the client side, per operation, by
//!   an SDK interceptor on every client (the server has no counter);
//! - the latency: the engine's own `StageChanged` of `svc-00` (timestamped
//!   when the engine's event stream delivers it) to the backend's
//!   `StageChanged` for the same execution, stage and status (timestamped
//!   when the subscriber gets it). Changes that happen between two polls
//!   of the running pipeline are seen together at the next poll; a stage
//!   that starts and ends between two polls is seen only as its end.
//!
//! ```text
//! cargo bench --bench aws_poll                 # 20 s windows
//! cargo bench --bench aws_poll -- --window 70  # or PIPEDECK_BENCH_WINDOW=70
//! ```
//!
//! The default run takes about 45 s (two windows and the set-up).
//!
//! Measured 2026-12-01, dev profile, 2 loaded cores, `--window 70`:
//!
//! ```text
//! pipedeck    90.9 calls/min  [GetPipelineState 62.6, ListPipelineExecutions 28.3]
//!             + 156 calls once at start (1.9 s)
//! naive     2118.8 calls/min  [GetPipeline 1049.1, GetPipelineState 1049.1, ListPipelines 20.6]
//! stage change -> backend event: 34 samples, p50 1408 ms, max 2532 ms (running interval 3 s)
//! ```
//!
//! The default 20 s windows: 45.0 vs 2162.8 calls/min (no idle pipeline
//! falls due within 20 s), p50 1029 ms, max 2027 ms over 10 samples; a
//! second run 54.0 vs 2162.9, p50 2251 ms, max 3296 ms over 12 samples
//! (the latency is the poll's phase: up to the running interval plus the
//! poller's 0.5 s tick and the read itself).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use common::{build_action, buildspec, stage};
use pipedeck::api::types::ExecutionStatus;
use pipedeck::api::{EngineEvent, Reply, Request};
use pipedeck::aws::account::Intervals;
use pipedeck::aws::{AwsTarget, Clients};
use pipedeck::backend::Backend;
use pipedeck::backend::aws::AwsBackend;
use tokio::sync::mpsc;

const IDLE: usize = 50;
const RUNNING: &str = "svc-00";
const STAGE_SECS: u64 = 4;
const NAIVE_EVERY: Duration = Duration::from_secs(3);

/// HTTP requests sent, by `service:Operation`.
#[derive(Clone, Default, Debug)]
struct Counter(Arc<Mutex<BTreeMap<String, u64>>>);

impl Counter {
    fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "BenchRequestCounter"
    }

    // Once per HTTP request (an attempt), after signing.
    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = cfg.load::<Metadata>().map_or_else(
            || "?".to_owned(),
            |m| format!("{}:{}", m.service(), m.name()),
        );
        *self.0.lock().unwrap().entry(op).or_default() += 1;
        Ok(())
    }
}

/// Every client of `conf` with the counter on it.
fn counted(conf: &aws_config::SdkConfig, counter: &Counter) -> Clients {
    let mut c = Clients::from_conf(conf, None);
    c.codepipeline = aws_sdk_codepipeline::Client::from_conf(
        aws_sdk_codepipeline::config::Builder::from(conf)
            .interceptor(counter.clone())
            .build(),
    );
    c.codebuild = aws_sdk_codebuild::Client::from_conf(
        aws_sdk_codebuild::config::Builder::from(conf)
            .interceptor(counter.clone())
            .build(),
    );
    c.logs = aws_sdk_cloudwatchlogs::Client::from_conf(
        aws_sdk_cloudwatchlogs::config::Builder::from(conf)
            .interceptor(counter.clone())
            .build(),
    );
    c.cloudtrail = aws_sdk_cloudtrail::Client::from_conf(
        aws_sdk_cloudtrail::config::Builder::from(conf)
            .interceptor(counter.clone())
            .build(),
    );
    c.sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(conf)
            .interceptor(counter.clone())
            .build(),
    );
    c
}

fn window() -> Duration {
    let mut args = std::env::args().skip(1);
    let mut secs = std::env::var("PIPEDECK_BENCH_WINDOW")
        .ok()
        .and_then(|v| v.parse::<f64>().ok());
    while let Some(a) = args.next() {
        if a == "--window" {
            secs = args.next().and_then(|v| v.parse().ok());
        } else if let Some(v) = a.strip_prefix("--window=") {
            secs = v.parse().ok();
        }
    }
    Duration::from_secs_f64(secs.unwrap_or(20.0).max(5.0))
}

/// The workspace: `svc-00` with `stages` slow build stages, 50 idle
/// pipelines with one quick build stage.
fn workspace(stages: usize) -> common::Ws {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let data = dir.path().join("data");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::create_dir_all(root.join("pipelines")).unwrap();
    let slow: Vec<String> = (1..=stages)
        .map(|i| {
            stage(
                &format!("Build{i:02}"),
                &[build_action("Build", 1, "slow.yml", "")],
                "",
            )
        })
        .collect();
    let quick = [stage(
        "Build",
        &[build_action("Build", 1, "quick.yml", "")],
        "",
    )];
    let mut files = Vec::new();
    for i in 0..=IDLE {
        let name = format!("svc-{i:02}");
        let stages: &[String] = if name == RUNNING { &slow } else { &quick };
        let f = format!("pipelines/{name}.json");
        std::fs::write(root.join(&f), common::pipeline(&name, "SUPERSEDED", stages)).unwrap();
        files.push(format!("\"{f}\""));
    }
    std::fs::write(
        root.join("pipedeck.toml"),
        format!(
            "[workspace]\nidentity = \"bench\"\npoll_interval_seconds = 0.2\ntriggers = false\npipelines = [{}]\n\n[repositories.app]\npath = \"app\"\nbranch = \"main\"\n",
            files.join(", ")
        ),
    )
    .unwrap();
    let repo = root.join("app");
    common::git(&repo, &["init", "-q", "-b", "main"]);
    let slow_spec = buildspec(&[&format!("sleep {STAGE_SECS}")]);
    let quick_spec = buildspec(&["true"]);
    common::commit(
        &repo,
        &[("slow.yml", &slow_spec), ("quick.yml", &quick_spec)],
        "initial commit",
    );
    common::Ws { dir, root, data }
}

fn per_minute(n: u64, w: Duration) -> f64 {
    n as f64 * 60.0 / w.as_secs_f64()
}

fn total(m: &BTreeMap<String, u64>) -> u64 {
    m.values().sum()
}

fn breakdown(m: &BTreeMap<String, u64>, w: Duration) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {:.1}", per_minute(*v, w)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a screen holds: the names, and which pipeline an execution is of.
#[derive(Default)]
struct Screen {
    versions: HashMap<String, u32>,
    execution_of: HashMap<String, String>,
}

/// The TUI's full read (`snapshot` + `fetch_definitions` + EngineInfo).
async fn full_read(b: &dyn Backend, screen: &mut Screen) {
    let Ok(Reply::Pipelines { pipelines, .. }) = b.call(Request::list_pipelines()).await else {
        return;
    };
    for p in &pipelines {
        pipeline_read(b, &p.name, screen).await;
    }
    let _ = b.call(Request::ListEnvironments).await;
    for p in &pipelines {
        if screen.versions.get(&p.name) != Some(&p.version) {
            let r = b
                .call(Request::GetPipeline {
                    pipeline_name: p.name.clone(),
                    pipeline_version: None,
                })
                .await;
            if r.is_ok() {
                screen.versions.insert(p.name.clone(), p.version);
            }
        }
    }
    let _ = b.call(Request::EngineInfo).await;
}

/// The TUI's `pipeline_snapshot`: the state and the newest executions.
async fn pipeline_read(b: &dyn Backend, name: &str, screen: &mut Screen) {
    let _ = b
        .call(Request::GetPipelineState {
            pipeline_name: name.to_owned(),
        })
        .await;
    if let Ok(Reply::Executions { executions, .. }) =
        b.call(Request::list_executions(name, 50)).await
    {
        for e in executions {
            screen
                .execution_of
                .insert(e.pipeline_execution_id, name.to_owned());
        }
    }
}

/// What one event asks the TUI to read again (`App::on_engine`):
/// `Some(None)` everything, `Some(Some(name))` one pipeline.
fn asks(ev: &EngineEvent, screen: &Screen) -> Option<Option<String>> {
    let of_exec = |id: &str| Some(screen.execution_of.get(id).cloned());
    match ev {
        EngineEvent::ExecutionChanged { execution } => {
            if execution.status == ExecutionStatus::Failed {
                Some(None)
            } else {
                Some(Some(execution.pipeline_name.clone()))
            }
        }
        EngineEvent::StageChanged { pipeline_name, .. }
        | EngineEvent::TransitionChanged { pipeline_name, .. } => Some(Some(pipeline_name.clone())),
        EngineEvent::ActionChanged { action } | EngineEvent::ApprovalPending { action } => {
            of_exec(&action.pipeline_execution_id)
        }
        EngineEvent::PipelineUpdated { .. } | EngineEvent::Resync { .. } => Some(None),
        _ => None,
    }
}

type Change = (String, String, String);

fn change_of(ev: &EngineEvent) -> Option<(String, Change)> {
    match ev {
        EngineEvent::StageChanged {
            pipeline_name,
            pipeline_execution_id,
            stage_name,
            status,
        } => Some((
            pipeline_name.clone(),
            (
                pipeline_execution_id.clone(),
                stage_name.clone(),
                format!("{status:?}"),
            ),
        )),
        _ => None,
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench());
}

async fn bench() {
    let w = window();
    let t_setup = Instant::now();
    // Long enough for the set-up, both windows and some slack.
    let stages = ((2.0 * w.as_secs_f64() + 40.0) / STAGE_SECS as f64).ceil() as usize;
    let ws = workspace(stages);
    let engine = ws.engine_with(false);
    // The idle ones: one finished execution each.
    let mut ids = Vec::new();
    for i in 1..=IDLE {
        let name = format!("svc-{i:02}");
        let id = common::start(&engine, &name).await;
        ids.push((name, id));
    }
    for (name, id) in &ids {
        common::until_status(&engine, name, id, ExecutionStatus::Succeeded).await;
    }
    let creds = pipedeck::awsapi::Credentials::generate();
    let server = pipedeck::awsapi::start(
        engine.clone(),
        pipedeck::awsapi::Options {
            addr: "127.0.0.1:0".parse().unwrap(),
            readonly: false,
            protected: Vec::new(),
            protected_via_api: false,
            credentials: creds.clone(),
            workspace_root: ws.root.clone(),
        },
    )
    .await
    .unwrap();
    let endpoint = format!("http://{}", server.local_addr);
    let conf = Clients::conf_with_keys(
        &endpoint,
        "us-east-1",
        &creds.access_key_id,
        &creds.secret_access_key,
    )
    .await;

    // The engine's own stage changes of the running pipeline.
    let engine_changes: Arc<Mutex<Vec<(Instant, Change)>>> = Arc::default();
    {
        let mut rx = engine.subscribe();
        let log = engine_changes.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        let at = Instant::now();
                        if let Some((p, c)) = change_of(&ev)
                            && p == RUNNING
                        {
                            log.lock().unwrap().push((at, c));
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        eprintln!("warning: the engine's event stream lagged by {n}");
                    }
                    Err(_) => return,
                }
            }
        });
    }
    let running_id = common::start(&engine, RUNNING).await;
    let setup = t_setup.elapsed();

    // ---------------------------------------------------------- pipedeck
    let ours_counter = Counter::default();
    let target = AwsTarget {
        label: "local".into(),
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.clone()),
        no_retries: true,
        ..AwsTarget::default()
    };
    let iv = Intervals {
        rate: 50.0,
        burst: 60.0,
        ..Intervals::default()
    };
    let state_dir = tempfile::tempdir().unwrap();
    let aws = AwsBackend::with_clients(
        vec![(target, counted(&conf, &ours_counter))],
        iv,
        state_dir.path().to_path_buf(),
        "pipedeck-bench",
    );
    let b: &dyn Backend = &aws;
    let mut events = b.subscribe().await.unwrap();
    // The subscriber: every event timestamped on arrival, then to the
    // screen's loop.
    let (etx, mut erx) = mpsc::unbounded_channel::<(Instant, EngineEvent)>();
    tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            if etx.send((Instant::now(), ev)).is_err() {
                return;
            }
        }
    });
    let mut screen = Screen::default();
    let t0 = Instant::now();
    full_read(b, &mut screen).await;
    let first_read = t0.elapsed();
    let warmup = ours_counter.take();
    let mut seen: Vec<(Instant, Change)> = Vec::new();
    let mut asked_full = 1u64;
    let mut asked_pipeline = 0u64;
    let win_start = Instant::now();
    let end = win_start + w;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Ok(Some(first)) = tokio::time::timeout(left, erx.recv()).await else {
            continue;
        };
        // A burst of events is one batch; what it asks is merged.
        let mut batch = vec![first];
        while let Ok(e) = erx.try_recv() {
            batch.push(e);
        }
        let mut full = false;
        let mut names = BTreeSet::new();
        for (at, ev) in &batch {
            if let Some((p, c)) = change_of(ev)
                && p == RUNNING
            {
                seen.push((*at, c));
            }
            match asks(ev, &screen) {
                Some(None) => full = true,
                Some(Some(n)) => {
                    names.insert(n);
                }
                None => {}
            }
        }
        if full {
            asked_full += 1;
            full_read(b, &mut screen).await;
        } else {
            for n in names {
                asked_pipeline += 1;
                pipeline_read(b, &n, &mut screen).await;
            }
        }
    }
    let ours = ours_counter.take();
    let budget_calls = aws.calls();
    // Events that arrived while the last read ran.
    while let Ok((at, ev)) = erx.try_recv() {
        if let Some((p, c)) = change_of(&ev)
            && p == RUNNING
        {
            seen.push((at, c));
        }
    }
    b.close().await;

    // ------------------------------------------------------------- naive
    let naive_counter = Counter::default();
    let naive_clients = counted(&conf, &naive_counter);
    let cp = naive_clients.codepipeline.clone();
    let t0 = Instant::now();
    let mut rounds = 0u32;
    while t0.elapsed() < w {
        let r0 = Instant::now();
        let l = cp.list_pipelines().send().await.unwrap();
        for p in l.pipelines() {
            let n = p.name().unwrap_or_default();
            cp.get_pipeline().name(n).send().await.unwrap();
            cp.get_pipeline_state().name(n).send().await.unwrap();
        }
        rounds += 1;
        let rest = NAIVE_EVERY.saturating_sub(r0.elapsed());
        let rest = rest.min(w.saturating_sub(t0.elapsed()));
        tokio::time::sleep(rest).await;
    }
    let naive_w = t0.elapsed();
    let naive = naive_counter.take();

    // ----------------------------------------------------------- latency
    let changes = engine_changes.lock().unwrap().clone();
    let mut lat = Vec::new();
    for (at, c) in &seen {
        // The newest engine change with the same execution, stage and
        // status before the backend's event.
        if let Some((e_at, _)) = changes
            .iter()
            .filter(|(e_at, ec)| ec == c && e_at <= at)
            .max_by_key(|(e_at, _)| *e_at)
        {
            lat.push(at.duration_since(*e_at));
        }
    }
    lat.sort();
    let in_window = changes
        .iter()
        .filter(|(e_at, _)| *e_at >= win_start && *e_at <= end)
        .count();

    let ours_total = total(&ours);
    let naive_total = total(&naive);
    println!(
        "aws_poll: 1 running pipeline among {IDLE} idle (one finished execution each), local AWS API at {endpoint}, set-up {:.1} s",
        setup.as_secs_f64()
    );
    println!(
        "  pipedeck  {:>7.1} calls/min over {:.0} s  [{}]",
        per_minute(ours_total, w),
        w.as_secs_f64(),
        breakdown(&ours, w)
    );
    println!(
        "            + {} calls once at start ({:.1} s: {}); the screen asked {} full + {} one-pipeline reads ({:.1}/min), answered from the cache; budget counted {} calls in all",
        total(&warmup),
        first_read.as_secs_f64(),
        warmup
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        asked_full,
        asked_pipeline,
        per_minute(asked_pipeline, w),
        budget_calls
    );
    if w < iv.idle {
        println!(
            "            (idle pipelines are read every {} s and none fell due in this {:.0} s window: over a minute, add their {IDLE} GetPipelineState calls; --window {} measures it)",
            iv.idle.as_secs(),
            w.as_secs_f64(),
            iv.idle.as_secs() + 10
        );
    }
    println!(
        "  naive     {:>7.1} calls/min over {:.0} s  [{}]  ({rounds} rounds of list + GetPipeline + GetPipelineState each, every {} s)",
        per_minute(naive_total, naive_w),
        naive_w.as_secs_f64(),
        breakdown(&naive, naive_w),
        NAIVE_EVERY.as_secs()
    );
    if ours_total > 0 {
        println!(
            "  ratio     naive / pipedeck = {:.1}x",
            per_minute(naive_total, naive_w) / per_minute(ours_total, w)
        );
    }
    println!(
        "  stage change -> backend event ({RUNNING}, execution {running_id}, {STAGE_SECS} s stages): {} samples, p50 {}, max {}, min {} (running interval {} s); {} stage changes on the engine during the window",
        lat.len(),
        ms(pct(&lat, 0.5)),
        ms(lat.last().copied().unwrap_or_default()),
        ms(lat.first().copied().unwrap_or_default()),
        iv.running.as_secs_f64(),
        in_window
    );
    server.stop().await;
    engine.shutdown().await;
}
