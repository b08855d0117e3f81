//! End-to-end engine figures (a plain `main`, not criterion): per-transition
//! overhead, log throughput, and 50 parallel actions. Every scenario runs 3
//! times on a fresh workspace and engine; the median of each figure is shown.
//!
//!     cargo bench --bench engine
//!
//! Figures measured 2026-11-26 on the 2-core dev machine (medians of 3; the
//! machine is noisy: the same figure moves by a third between whole runs):
//!
//! 1. Source + 19 CodeBuild `true` stages against 20 × `sh -c true`:
//!    4.3 ms per transition in quiet runs, 6.2–6.9 ms in busy ones (goal
//!    < 5 ms). The engine's own gap between stages is 0.6–1.0 ms; the rest is
//!    the CodeBuild action itself (3.7–6.6 ms, of which 2.5–3.3 ms is
//!    starting and killing its bash).
//! 2. `seq 1 2000000` in an action against `seq 1 2000000 > file`: 1.49–1.6x
//!    (goal < 1.5x); stored .log + sparse .idx = 1.0x the raw output.
//! 3. 50 parallel `sleep 0.2` actions: stage 334–425 ms (50 bare bash from
//!    Rust: 270 ms); first->last action InProgress 10–15 ms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use pipedeck::api::types::{ActionStatus, StageStatus};
use pipedeck::api::{ActionExecutionDetail, EngineEvent};
use pipedeck::engine::EngineHandle;
use pipedeck::providers::LogSink;
use pipedeck::providers::codebuild_local::{self, BuildRequest};
use pipedeck::store::logs::LogWriter;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const RUNS: usize = 3;

// ------------------------------------------------------------ recording

/// One engine event as the bench saw it arrive.
struct Seen {
    at: Instant,
    wall: SystemTime,
    event: EngineEvent,
}

/// One pipeline execution, watched from the request to its end.
struct Recorded {
    t0: Instant,
    /// Request sent → terminal `ExecutionChanged` received.
    wall: Duration,
    events: Vec<Seen>,
    lagged: u64,
    actions: Vec<ActionExecutionDetail>,
}

impl Recorded {
    fn action_events(&self) -> impl Iterator<Item = (&Seen, &ActionExecutionDetail)> {
        self.events.iter().filter_map(|s| match &s.event {
            EngineEvent::ActionChanged { action } => Some((s, action)),
            _ => None,
        })
    }

    /// When the bench saw action `aeid` become `status`.
    fn action_at(&self, aeid: &str, status: ActionStatus) -> Option<Instant> {
        self.action_events()
            .find(|(_, a)| a.action_execution_id == aeid && a.status == status)
            .map(|(s, _)| s.at)
    }

    /// InProgress → Succeeded of each action (event receipt times), in
    /// start order: (stage, action, duration).
    fn action_durations(&self) -> Vec<(String, String, Duration)> {
        let mut out = Vec::new();
        for (s, a) in self.action_events() {
            if a.status == ActionStatus::InProgress
                && let Some(end) = self.action_at(&a.action_execution_id, ActionStatus::Succeeded)
            {
                out.push((a.stage_name.clone(), a.action_name.clone(), end - s.at));
            }
        }
        out
    }

    fn stage_at(&self, stage: &str, status: StageStatus) -> Option<(Instant, SystemTime)> {
        self.events.iter().find_map(|s| match &s.event {
            EngineEvent::StageChanged {
                stage_name,
                status: st,
                ..
            } if stage_name == stage && *st == status => Some((s.at, s.wall)),
            _ => None,
        })
    }
}

/// Starts `pipeline` and records every event until the execution ends.
async fn run_pipeline(h: &EngineHandle, pipeline: &str) -> Recorded {
    let mut rx = h.subscribe();
    let t0 = Instant::now();
    let id = start(h, pipeline).await;
    let mut events = Vec::new();
    let mut lagged = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let wall = loop {
        let ev = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(ev)) => ev,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => {
                lagged += n;
                continue;
            }
            Ok(Err(e)) => panic!("event stream ended: {e}"),
            Err(_) => panic!("{pipeline}: execution {id} did not end within 300 s"),
        };
        let (at, wall) = (Instant::now(), SystemTime::now());
        if matches!(
            ev,
            EngineEvent::LogAppended { .. } | EngineEvent::Audit { .. }
        ) {
            continue;
        }
        let end = match &ev {
            EngineEvent::ExecutionChanged { execution } => {
                execution.pipeline_execution_id == id && execution.status.is_terminal()
            }
            _ => false,
        };
        events.push(Seen {
            at,
            wall,
            event: ev,
        });
        if end {
            break at - t0;
        }
    };
    let actions = actions(h, pipeline, &id).await;
    for a in &actions {
        assert_eq!(
            a.status,
            ActionStatus::Succeeded,
            "{}/{}: {:?}",
            a.stage_name,
            a.action_name,
            a.error_details
        );
    }
    Recorded {
        t0,
        wall,
        events,
        lagged,
        actions,
    }
}

// ------------------------------------------------------------ figures

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Named figures collected over the runs of one scenario.
#[derive(Default)]
struct Figures {
    rows: Vec<(String, String, Vec<f64>)>,
}

impl Figures {
    fn add(&mut self, label: &str, unit: &str, value: f64) {
        match self.rows.iter_mut().find(|(l, _, _)| l == label) {
            Some((_, _, v)) => v.push(value),
            None => self
                .rows
                .push((label.to_owned(), unit.to_owned(), vec![value])),
        }
    }

    fn get(&self, label: &str) -> f64 {
        self.rows
            .iter()
            .find(|(l, _, _)| l == label)
            .map(|(_, _, v)| median(v))
            .unwrap_or(f64::NAN)
    }

    fn print(&self, title: &str) {
        println!("\n== {title} (median of {RUNS}; [all runs])");
        for (label, unit, v) in &self.rows {
            let all: Vec<String> = v.iter().map(|x| format!("{x:.1}")).collect();
            println!(
                "  {label:<58} {:>10.1} {unit:<5} [{}]",
                median(v),
                all.join(", ")
            );
        }
    }
}

fn time_cmd(program: &str, args: &[&str]) -> Duration {
    let t = Instant::now();
    let st = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{program} {args:?}");
    t.elapsed()
}

/// On-CPU seconds of this process and its waited-for children so far
/// (`/proc/self/stat` utime + stime + cutime + cstime, clock ticks of 10 ms).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<f64>() * 10.0
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn engine_duration(a: &ActionExecutionDetail) -> Duration {
    let s = humantime::parse_rfc3339(&a.start_time).unwrap();
    let e = humantime::parse_rfc3339(&a.last_status_change).unwrap();
    e.duration_since(s).unwrap_or_default()
}

/// What a CodeBuild action's processes cost without the engine: the
/// provider's bash (`--noprofile --norc -s`, own process group, pipes),
/// one command through it and its marker, then the `kill` process the
/// provider spawns to end the group.
async fn shell_floor() -> Duration {
    let t = Instant::now();
    let mut child = tokio::process::Command::new("bash")
        .args(["--noprofile", "--norc", "-s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    stdin
        .write_all(b"exec 2>&1\neval true </dev/null; printf '%s %s\\n' MARK \"$?\"\n")
        .await
        .unwrap();
    while let Some(l) = out.next_line().await.unwrap() {
        if l.starts_with("MARK") {
            break;
        }
    }
    let pid = child.id().unwrap();
    tokio::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status()
        .await
        .unwrap();
    let _ = child.wait().await;
    t.elapsed()
}

/// Counts lines and drops them.
struct CountSink(u64);

impl LogSink for CountSink {
    fn line(&mut self, _line: &str) {
        self.0 += 1;
    }
}

/// The engine's build runner alone (no engine, no artifacts): runs the
/// buildspec `text` in `dir` into `sink`, on a runtime worker like an
/// action does. Returns the time and the sink.
async fn runner<S: LogSink + 'static>(text: &str, dir: &Path, mut sink: S) -> (Duration, S) {
    let spec = pipedeck::model::buildspec::parse_str(text)
        .ok()
        .unwrap()
        .buildspec;
    let req = BuildRequest {
        spec,
        src_dir: dir.to_path_buf(),
        secondary_sources: Vec::new(),
        builtins: Vec::new(),
        overrides: Vec::new(),
        secrets: Vec::new(),
        timeout: Some(Duration::from_secs(3600)),
        pgid_file: None,
    };
    tokio::spawn(async move {
        let (_stop_tx, mut stop) = tokio::sync::watch::channel(false);
        let t = Instant::now();
        let report = codebuild_local::run(&req, &mut sink, &mut stop)
            .await
            .unwrap();
        let d = t.elapsed();
        assert_eq!(report.status, codebuild_local::Status::Succeeded);
        (d, sink)
    })
    .await
    .unwrap()
}

// ------------------------------------------------------------ scenarios

/// 1. Source + 19 one-action CodeBuild stages running `true`.
async fn transitions(fig: &mut Figures) {
    let spec = buildspec(&["true"]);
    let one = pipeline(
        "one",
        "QUEUED",
        &[stage("Build", &[build_action("B", 1, "t.yml", "")], "")],
    );
    let stages: Vec<String> = (1..20)
        .map(|k| {
            stage(
                &format!("S{k:02}"),
                &[build_action(&format!("B{k:02}"), 1, "t.yml", "")],
                "",
            )
        })
        .collect();
    let twenty = pipeline("twenty", "QUEUED", &stages);

    // Warm-up (not reported): page in bash, git, the engine's code.
    {
        let ws = workspace(&one, "", &[("t.yml", &spec)]);
        let h = ws.engine();
        run_pipeline(&h, "one").await;
        h.shutdown().await;
    }

    for _ in 0..RUNS {
        // Baseline: 20 sequential `sh -c true`.
        let (t, c) = (Instant::now(), cpu_ms());
        for _ in 0..20 {
            time_cmd("sh", &["-c", "true"]);
        }
        let baseline = t.elapsed();
        let baseline_cpu = cpu_ms() - c;

        // The provider's process work alone, 20 times.
        let mut floor = Vec::new();
        for _ in 0..20 {
            floor.push(ms(shell_floor().await));
        }

        // The build runner alone on the same buildspec, 20 times.
        let tmp = tempfile::tempdir().unwrap();
        let mut run_alone = Vec::new();
        for _ in 0..20 {
            run_alone.push(ms(runner(&spec, tmp.path(), CountSink(0)).await.0));
        }

        // Single-action pipeline: what one CodeBuild action costs (5
        // executions one after the other on one engine, median).
        let ws1 = workspace(&one, "", &[("t.yml", &spec)]);
        let h1 = ws1.engine();
        let (mut w1, mut src1, mut a1) = (Vec::new(), Vec::new(), Vec::new());
        let c1 = cpu_ms();
        for _ in 0..5 {
            let r1 = run_pipeline(&h1, "one").await;
            let d1 = r1.action_durations();
            w1.push(ms(r1.wall));
            src1.push(ms(d1.iter().find(|d| d.0 == "Source").unwrap().2));
            a1.push(ms(d1.iter().find(|d| d.0 == "Build").unwrap().2));
        }
        let cpu1 = (cpu_ms() - c1) / 5.0;
        h1.shutdown().await;
        let (w1, src1, a1) = (median(&w1), median(&src1), median(&a1));

        // The 20-stage pipeline.
        let ws = workspace(&twenty, "", &[("t.yml", &spec)]);
        let h = ws.engine();
        let c20 = cpu_ms();
        let r = run_pipeline(&h, "twenty").await;
        let cpu20 = cpu_ms() - c20;
        h.shutdown().await;
        assert_eq!(r.actions.len(), 20);
        let durs = r.action_durations();
        assert_eq!(durs.len(), 20, "lost events: lagged {}", r.lagged);
        let in_actions: Duration = durs.iter().map(|d| d.2).sum();
        let source = durs[0].2;
        let builds: Vec<f64> = durs[1..].iter().map(|d| ms(d.2)).collect();
        if std::env::var_os("BENCH_DEBUG").is_some() {
            eprintln!("build action durations by stage (ms): {builds:.1?}");
        }
        // Gaps between one action's Succeeded and the next one's InProgress.
        let mut gaps = Vec::new();
        let starts: Vec<(Instant, String)> = r
            .action_events()
            .filter(|(_, a)| a.status == ActionStatus::InProgress)
            .map(|(s, a)| (s.at, a.action_execution_id.clone()))
            .collect();
        for w in starts.windows(2) {
            let end = r.action_at(&w[0].1, ActionStatus::Succeeded).unwrap();
            gaps.push(ms(w[1].0 - end));
        }
        let first_start = starts[0].0 - r.t0;
        let last_end = r.action_at(&starts[19].1, ActionStatus::Succeeded).unwrap();
        let tail = (r.t0 + r.wall) - last_end;

        let w = ms(r.wall);
        let b = ms(baseline);
        fig.add("20-stage pipeline wall time", "ms", w);
        fig.add("20 sequential `sh -c true` (baseline)", "ms", b);
        fig.add(
            "(pipeline - baseline)/20  [asked figure]",
            "ms",
            (w - b) / 20.0,
        );
        fig.add("single-action pipeline wall time (median of 5)", "ms", w1);
        fig.add("  its Source action (InProgress->Succeeded)", "ms", src1);
        fig.add("  its CodeBuild `true` action (A1)", "ms", a1);
        fig.add(
            "(pipeline - source - 19*A1)/20  [A1-subtracted]",
            "ms",
            (w - ms(source) - 19.0 * a1) / 20.0,
        );
        fig.add(
            "(pipeline - single pipeline)/18  [marginal stage]",
            "ms",
            (w - w1) / 18.0,
        );
        fig.add(
            "CPU: (T20 - T1)/18 per marginal stage  [asked figure]",
            "ms",
            (cpu20 - cpu1) / 18.0,
        );
        fig.add(
            "CPU: one `sh -c true` (baseline, /20)",
            "ms",
            baseline_cpu / 20.0,
        );
        fig.add(
            "wall: marginal stage / one `sh -c true`  [ratio]",
            "x",
            ((w - w1) / 18.0) / (b / 20.0),
        );
        fig.add("20-stage: Source action", "ms", ms(source));
        fig.add(
            "20-stage: CodeBuild `true` action, median",
            "ms",
            median(&builds),
        );
        fig.add(
            "20-stage: time outside actions, /20",
            "ms",
            (w - ms(in_actions)) / 20.0,
        );
        fig.add(
            "20-stage: Succeeded->next InProgress gap, median",
            "ms",
            median(&gaps),
        );
        fig.add(
            "20-stage: Succeeded->next InProgress gap, max",
            "ms",
            gaps.iter().copied().fold(0.0, f64::max),
        );
        fig.add(
            "20-stage: request -> Source InProgress",
            "ms",
            ms(first_start),
        );
        fig.add(
            "20-stage: last Succeeded -> execution Succeeded",
            "ms",
            ms(tail),
        );
        fig.add(
            "bash+kill processes of one action, no engine (median of 20)",
            "ms",
            median(&floor),
        );
        fig.add(
            "codebuild_local::run of the buildspec alone (median of 20)",
            "ms",
            median(&run_alone),
        );
    }
}

/// 2. One CodeBuild action printing 2,000,000 lines.
async fn log_throughput(fig: &mut Figures) {
    let p = pipeline(
        "log",
        "QUEUED",
        &[stage("Build", &[build_action("Log", 1, "l.yml", "")], "")],
    );
    let spec = buildspec(&["seq 1 2000000"]);
    for _ in 0..RUNS {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("seq.txt");
        let cmd = format!("seq 1 2000000 > {}", out.display());
        let direct = time_cmd("bash", &["-c", &cmd]);
        let raw = file_len(&out);
        let piped_cmd = format!("seq 1 2000000 | cat > {}", out.display());
        let piped = time_cmd("bash", &["-c", &piped_cmd]);

        // The build runner alone: into a sink that drops lines, then into
        // the engine's log writer (.log + .idx).
        let (to_null, count) = runner(&spec, tmp.path(), CountSink(0)).await;
        assert!(count.0 >= 2_000_000);
        let writer = LogWriter::create(&tmp.path().join("logs"), "bench").unwrap();
        let (to_writer, writer) = runner(&spec, tmp.path(), writer).await;
        drop(writer);
        fig.add(
            "codebuild_local::run alone, lines dropped",
            "ms",
            ms(to_null),
        );
        fig.add(
            "codebuild_local::run alone, into LogWriter",
            "ms",
            ms(to_writer),
        );

        let ws = workspace(&p, "", &[("l.yml", &spec)]);
        let h = ws.engine();
        let r = run_pipeline(&h, "log").await;
        let state_dir = h.workspace.state_dir.clone();
        h.shutdown().await;
        let a = r.actions.iter().find(|a| a.action_name == "Log").unwrap();
        let src = r
            .actions
            .iter()
            .find(|a| a.action_name == "Source")
            .unwrap();
        let by_engine = engine_duration(a);
        let by_events = r
            .action_durations()
            .into_iter()
            .find(|d| d.1 == "Log")
            .map(|d| d.2);
        let minus_source = r.wall.saturating_sub(engine_duration(src));
        let logs = state_dir.join("logs");
        let log = file_len(&logs.join(format!("{}.log", a.action_execution_id)));
        let idx = file_len(&logs.join(format!("{}.idx", a.action_execution_id)));
        let action_ms = ms(by_engine);

        fig.add("`seq 1 2000000 > file` in bash", "ms", ms(direct));
        fig.add(
            "`seq 1 2000000 | cat > file` in bash (via a pipe)",
            "ms",
            ms(piped),
        );
        fig.add(
            "action duration (engine start_time->last_status)",
            "ms",
            action_ms,
        );
        if let Some(d) = by_events {
            fig.add(
                "action duration (InProgress->Succeeded events)",
                "ms",
                ms(d),
            );
        }
        fig.add("execution wall minus Source action", "ms", ms(minus_source));
        fig.add(
            "ratio action / direct  [goal < 1.5]",
            "x",
            action_ms / ms(direct),
        );
        fig.add("raw output (seq.txt)", "MB", raw as f64 / 1e6);
        fig.add("stored .log", "MB", log as f64 / 1e6);
        fig.add("stored .idx", "MB", idx as f64 / 1e6);
        fig.add(
            "stored (.log+.idx) / raw",
            "x",
            (log + idx) as f64 / raw as f64,
        );
        fig.add("log lines", "lines", a.log_lines as f64);
        fig.add("events lost by the bench (lagged)", "n", r.lagged as f64);
    }
}

/// Baseline for 3: 50 bash processes started at once from Rust, each
/// stamping `$EPOCHREALTIME` then sleeping 0.2 s. Returns (wall time of
/// all, first->last stamp spread).
async fn fifty_bash() -> (Duration, Duration) {
    let t = Instant::now();
    let mut children = Vec::new();
    for _ in 0..50 {
        children.push(
            tokio::process::Command::new("bash")
                .args([
                    "--noprofile",
                    "--norc",
                    "-c",
                    "echo $EPOCHREALTIME; sleep 0.2",
                ])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let mut stamps = Vec::new();
    for c in children {
        let out = c.wait_with_output().await.unwrap();
        stamps.push(
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .unwrap(),
        );
    }
    let wall = t.elapsed();
    stamps.sort_by(f64::total_cmp);
    (wall, Duration::from_secs_f64(stamps[49] - stamps[0]))
}

/// 3. One stage with 50 CodeBuild actions at runOrder 1, each `sleep 0.2`.
async fn parallel(fig: &mut Figures) {
    let acts: Vec<String> = (0..50)
        .map(|k| build_action(&format!("P{k:02}"), 1, "p.yml", ""))
        .collect();
    let p = pipeline("par", "QUEUED", &[stage("Par", &acts, "")]);
    // `$EPOCHREALTIME` is a bash variable: it stamps when the command really
    // ran without another process.
    let spec = buildspec(&["echo T=$EPOCHREALTIME", "sleep 0.2"]);
    for _ in 0..RUNS {
        let (all, spread) = fifty_bash().await;
        fig.add(
            "baseline: 50 concurrent bash `sleep 0.2` from Rust, wall",
            "ms",
            ms(all),
        );
        fig.add(
            "baseline: their first->last command running",
            "ms",
            ms(spread),
        );
        let ws = workspace(&p, "", &[("p.yml", &spec)]);
        let h = ws.engine();
        let r = run_pipeline(&h, "par").await;
        let logs = h.workspace.state_dir.join("logs");
        h.shutdown().await;
        let (s_at, s_wall) = r.stage_at("Par", StageStatus::InProgress).unwrap();
        let (e_at, _) = r.stage_at("Par", StageStatus::Succeeded).unwrap();
        let par: Vec<(&Seen, &ActionExecutionDetail)> = r
            .action_events()
            .filter(|(_, a)| a.stage_name == "Par")
            .collect();
        let starts: Vec<Instant> = par
            .iter()
            .filter(|(_, a)| a.status == ActionStatus::InProgress)
            .map(|(s, _)| s.at)
            .collect();
        let ends: Vec<Instant> = par
            .iter()
            .filter(|(_, a)| a.status == ActionStatus::Succeeded)
            .map(|(s, _)| s.at)
            .collect();
        assert_eq!(starts.len(), 50, "lagged {}", r.lagged);
        assert_eq!(ends.len(), 50, "lagged {}", r.lagged);
        // When each action's first command ran, from its log.
        let mut ran: Vec<f64> = Vec::new();
        for a in r.actions.iter().filter(|a| a.stage_name == "Par") {
            let text = std::fs::read_to_string(logs.join(format!("{}.log", a.action_execution_id)))
                .unwrap();
            let t = text
                .lines()
                .find_map(|l| l.strip_prefix("T="))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .expect("the T= line");
            ran.push(t);
        }
        ran.sort_by(f64::total_cmp);
        let stage_wall_epoch = s_wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let engine_starts: Vec<SystemTime> = r
            .actions
            .iter()
            .filter(|a| a.stage_name == "Par")
            .map(|a| humantime::parse_rfc3339(&a.start_time).unwrap())
            .collect();
        let es_min = engine_starts.iter().min().unwrap();
        let es_max = engine_starts.iter().max().unwrap();

        fig.add(
            "stage wall (StageChanged InProgress->Succeeded)",
            "ms",
            ms(e_at - s_at),
        );
        fig.add("execution wall time", "ms", ms(r.wall));
        fig.add(
            "first->last action InProgress (events)",
            "ms",
            ms(*starts.iter().max().unwrap() - *starts.iter().min().unwrap()),
        );
        fig.add(
            "first->last action start_time (engine, ms res.)",
            "ms",
            ms(es_max.duration_since(*es_min).unwrap_or_default()),
        );
        fig.add(
            "first->last command really running (bash stamps)",
            "ms",
            (ran[49] - ran[0]) * 1000.0,
        );
        fig.add(
            "stage InProgress -> first command running",
            "ms",
            (ran[0] - stage_wall_epoch) * 1000.0,
        );
        fig.add(
            "stage InProgress -> last command running",
            "ms",
            (ran[49] - stage_wall_epoch) * 1000.0,
        );
        fig.add(
            "first->last action Succeeded (events)",
            "ms",
            ms(*ends.iter().max().unwrap() - *ends.iter().min().unwrap()),
        );
        let durs: Vec<f64> = r
            .action_durations()
            .iter()
            .filter(|d| d.0 == "Par")
            .map(|d| ms(d.2))
            .collect();
        fig.add("action InProgress->Succeeded, median", "ms", median(&durs));
        fig.add("events lost by the bench (lagged)", "n", r.lagged as f64);
    }
}

fn main() {
    // `cargo bench --bench engine -- [transitions] [log] [parallel]` picks
    // scenarios (all by default); cargo's own `--bench` flag is ignored.
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| picked.is_empty() || picked.iter().any(|p| p == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("pipedeck engine bench: {cpus} CPUs, tokio multi-thread runtime, {RUNS} runs each");

    if want("transitions") {
        let mut f = Figures::default();
        rt.block_on(transitions(&mut f));
        f.print("1. Per-transition overhead: Source + 19 CodeBuild `true` stages");
        let per = f.get("(pipeline - baseline)/20  [asked figure]");
        println!(
            "  => engine overhead per stage transition (asked figure): {per:.1} ms (goal < 5 ms: {})",
            if per < 5.0 { "met" } else { "NOT met" }
        );
        println!(
            "  => pure engine gap between stages: {:.1} ms; one CodeBuild `true` action: {:.1} ms, of which bash+kill processes ~{:.1} ms",
            f.get("20-stage: Succeeded->next InProgress gap, median"),
            f.get("20-stage: CodeBuild `true` action, median"),
            f.get("bash+kill processes of one action, no engine (median of 20)"),
        );
    }
    if want("log") {
        let mut f = Figures::default();
        rt.block_on(log_throughput(&mut f));
        f.print("2. Log throughput: `seq 1 2000000` in one CodeBuild action");
        let ratio = f.get("ratio action / direct  [goal < 1.5]");
        println!(
            "  => action/direct: {ratio:.2}x (goal < 1.5x: {})",
            if ratio < 1.5 { "met" } else { "NOT met" }
        );
    }
    if want("parallel") {
        let mut f = Figures::default();
        rt.block_on(parallel(&mut f));
        f.print("3. 50 parallel CodeBuild actions (`sleep 0.2`, one runOrder)");
    }
}
