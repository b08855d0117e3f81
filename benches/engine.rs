//! End-to-end engine figures (a plain `main`, not criterion): per-transition
//! overhead, log throughput, and 50 parallel actions. Every scenario runs 3
//! times on a fresh workspace and engine; the median of each figure is shown.
//!
//!     cargo bench --bench engine
//!
//! Figures measured 2026-11-26 on the 2-core dev machine (medians of 3; the
//! machine is noisy: the same figure moves by a third between whole runs):
//!
//! 1. Then Source + 19 CodeBuild `true` stages against 20 x `sh -c true`
//!    ((pipeline - baseline)/20): 4.3 ms per transition in quiet runs,
//!    6.2-6.9 ms in busy ones.
//! 2. `seq 1 2000000` in an action against `seq 1 2000000 > file`: 1.49–1.6x
//!    (goal < 1.5x); stored .log + sparse .idx = 1.0x the raw output.
//! 3. 50 parallel `sleep 0.2` actions: stage 334–425 ms (50 bare bash from
//!    Rust: 270 ms); first->last action InProgress 10–15 ms.
//!
//! Measured 2026-12-01 (load average 2.3–2.7, runs of the code before and
//! after issue 19's first changes, alternated):
//!
//! 1. Now issue 19's figure: Source + 20 stages (T20) against Source + 1
//!    (T1), per stage (T20 - T1)/19, minus one `sh -c true` of the same run
//!    (goal <= 2 ms): 15.1–18.3 ms wall and 4.5–7.3 ms CPU before, 15.9–17.2
//!    ms wall and 6.9 ms CPU after: no change beyond the noise. Per stage
//!    17–22 ms wall; one `sh -c true` 2.7–3.8 ms wall, 0.5–1.5 ms CPU. A
//!    CodeBuild `true` action takes 15–20 ms in the engine against 1.3–4 ms
//!    for `codebuild_local::run` alone: the rest of the action (its job,
//!    log files, artifacts, the store) is where the time goes, not yet
//!    broken down further.
//! 2. 1.53x and 1.61x before, 1.32x and 1.23x after (`seq > file` 44–49 ms),
//!    every one of the 2,000,005 lines kept.
//!
//! Measured 2026-12-01 16:58 UTC on a quiet machine (load average 1.0,
//! nothing else building), release, the merged round:
//!
//! 1. per stage (T20 - T1)/19: 4.4–4.8 ms wall, 3.6–4.5 ms CPU; one
//!    `sh -c true` 0.8 ms wall, 0.5–1.0 ms CPU; above it 3.6–4.0 ms wall,
//!    2.6–4.0 ms CPU (goal <= 2 ms: NOT met). A CodeBuild `true` action
//!    3.8–4.0 ms, of which `codebuild_local::run` 1.5 ms and bare bash
//!    1.4 ms; the engine's gap between stages 0.4 ms. The 15–18 ms above
//!    were the load: the same code on a quiet machine is 4x cheaper.
//! 2. 1.6–1.9x `seq > file` (25 ms) on this quiet run, every line kept
//!    (goal < 1.5x: NOT met; the 1.23–1.32x above were on a loaded one).
//!
//! Measured 2026-12-01 18:27–18:56 UTC (load average 0.9–1.9), after the
//! end-of-build sweep walks the shell's tree instead of every process
//! (twice), the execution row stops repeating every action's detail, bash
//! is looked up once, and an action's directories are made in one
//! blocking step:
//!
//! 1. per stage (T20 - T1)/19: 3.1–3.6 ms wall, 2.5–3.9 ms CPU; one
//!    `sh -c true` 0.7–0.9 ms; above it 2.3–3.0 ms wall (goal <= 2 ms: NOT
//!    met), 1.0–3.4 ms CPU. Above the action's own processes (bash running
//!    `true`, 1.4–1.8 ms in the same runs): 1.7–2.1 ms. A CodeBuild `true`
//!    action 2.7–3.1 ms (was 3.8–4.2), `codebuild_local::run` alone
//!    1.5–1.9 ms. `perf` shows most of the rest in the kernel creating
//!    files (ext4 inode allocation checking recently deleted inodes: each
//!    action makes and removes its scratch directories, and makes three
//!    log files).
//! 2. 1.7–1.8x `seq > file` (25 ms) in the engine, every line kept (goal
//!    < 1.5x: NOT met); `codebuild_local::run` into the same log writer
//!    1.45–1.6x; `seq | cat > file` 1.0–1.1x. A flood is now read in
//!    ~128 KiB reads (~128 per 15 MB, was ~2,600).
//!
//! Measured 2026-12-02 00:27 UTC, three builds alternated in 3 rounds
//! (c352444; f789b0c, which writes an action's change with its stage's
//! row for crash safety; 1aa267a, with engine steps and reused scratch
//! directories):
//!
//! 1. per stage above `sh -c true` (0.8-1.1 ms), wall: 3.5 / 5.8 / 6.6 ms,
//!    5.9 / 6.8 / 6.8 ms and 3.8 / 5.4 / 5.4 ms (goal <= 2 ms: NOT met).
//!    The crash fix cost 0.2-2.4 ms; steps and reused directories took
//!    0.5-2.1 ms off it in every round. Since steps, an action's end and
//!    the next action's start are announced together, at the step's end:
//!    "as announced" and "between announced actions" no longer split the
//!    engine's time from the action's.
//! 2. 1.0-1.3x `seq > file` for all three (goal < 1.5x: met).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;
mod engine_support;

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use engine_support::*;
use pipedeck::api::types::{ActionStatus, StageStatus};
use pipedeck::api::{ActionExecutionDetail, EngineEvent};
use pipedeck::engine::EngineHandle;
use pipedeck::store::logs::LogWriter;

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

// ------------------------------------------------------------ scenarios

/// Scenario 1, Source + 20 one-action CodeBuild stages running `true` (T20)
/// against Source + 1 (T1): the cost of one stage is (T20 - T1)/19, in wall
/// and in CPU time, beside one `sh -c true` measured in the same run.
async fn transitions(fig: &mut Figures) {
    let spec = buildspec(&["true"]);
    let builds = |n: usize| -> Vec<String> {
        (1..=n)
            .map(|k| {
                stage(
                    &format!("S{k:02}"),
                    &[build_action(&format!("B{k:02}"), 1, "t.yml", "")],
                    "",
                )
            })
            .collect()
    };
    let one = pipeline("one", "QUEUED", &builds(1));
    let twenty = pipeline("twenty", "QUEUED", &builds(20));

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
        let sh_wall = ms(t.elapsed()) / 20.0;
        let sh_cpu = (cpu_ms() - c) / 20.0;

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

        // T1: Source + one CodeBuild stage (5 executions one after the
        // other on one engine: median wall, mean CPU).
        let ws1 = workspace(&one, "", &[("t.yml", &spec)]);
        let h1 = ws1.engine();
        let (mut w1, mut a1) = (Vec::new(), Vec::new());
        let c1 = cpu_ms();
        for _ in 0..5 {
            let r1 = run_pipeline(&h1, "one").await;
            w1.push(ms(r1.wall));
            let d1 = r1.action_durations();
            a1.push(ms(d1.iter().find(|d| d.0 == "S01").unwrap().2));
        }
        let cpu1 = (cpu_ms() - c1) / 5.0;
        h1.shutdown().await;
        let (w1, a1) = (median(&w1), median(&a1));

        // T20: Source + twenty CodeBuild stages.
        let ws = workspace(&twenty, "", &[("t.yml", &spec)]);
        let h = ws.engine();
        let c20 = cpu_ms();
        let r = run_pipeline(&h, "twenty").await;
        let cpu20 = cpu_ms() - c20;
        h.shutdown().await;
        assert_eq!(r.actions.len(), 21);
        let durs = r.action_durations();
        assert_eq!(durs.len(), 21, "lost events: lagged {}", r.lagged);
        let in_actions: Duration = durs.iter().map(|d| d.2).sum();
        let builds: Vec<f64> = durs[1..].iter().map(|d| ms(d.2)).collect();
        if std::env::var_os("BENCH_DEBUG").is_some() {
            eprintln!("build action durations by stage (ms): {builds:.1?}");
        }
        // Gaps between one action's Succeeded and the next one's InProgress.
        let starts: Vec<(Instant, String)> = r
            .action_events()
            .filter(|(_, a)| a.status == ActionStatus::InProgress)
            .map(|(s, a)| (s.at, a.action_execution_id.clone()))
            .collect();
        let mut gaps = Vec::new();
        for w in starts.windows(2) {
            let end = r.action_at(&w[0].1, ActionStatus::Succeeded).unwrap();
            gaps.push(ms(w[1].0 - end));
        }
        let last_end = r.action_at(&starts[20].1, ActionStatus::Succeeded).unwrap();

        let w20 = ms(r.wall);
        let per_wall = (w20 - w1) / 19.0;
        let per_cpu = (cpu20 - cpu1) / 19.0;
        fig.add("T20: Source + 20 `true` stages, wall", "ms", w20);
        fig.add("T1: Source + 1 `true` stage, wall (median of 5)", "ms", w1);
        fig.add("wall per stage (T20 - T1)/19", "ms", per_wall);
        fig.add("one `sh -c true`, wall (baseline, /20)", "ms", sh_wall);
        fig.add(
            "wall per stage above `sh -c true`  [asked, goal <= 2]",
            "ms",
            per_wall - sh_wall,
        );
        fig.add("CPU per stage (T20 - T1)/19", "ms", per_cpu);
        fig.add("one `sh -c true`, CPU (baseline, /20)", "ms", sh_cpu);
        fig.add(
            "CPU per stage above `sh -c true`  [asked, goal <= 2]",
            "ms",
            per_cpu - sh_cpu,
        );
        fig.add("T1: its CodeBuild `true` action", "ms", a1);
        fig.add(
            "T20: CodeBuild `true` action as announced (with its step), median",
            "ms",
            median(&builds),
        );
        fig.add(
            "T20: time between announced actions, /21",
            "ms",
            (w20 - ms(in_actions)) / 21.0,
        );
        fig.add(
            "T20: Succeeded->next InProgress announced, median",
            "ms",
            median(&gaps),
        );
        fig.add(
            "T20: Succeeded->next InProgress announced, max",
            "ms",
            gaps.iter().copied().fold(0.0, f64::max),
        );
        fig.add(
            "T20: request -> Source InProgress",
            "ms",
            ms(starts[0].0 - r.t0),
        );
        fig.add(
            "T20: last Succeeded -> execution Succeeded",
            "ms",
            ms((r.t0 + r.wall) - last_end),
        );
        fig.add(
            "bash processes of one action, no engine (median of 20)",
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
        f.print("1. Cost per stage: Source + 20 CodeBuild `true` stages (T20) vs Source + 1 (T1)");
        let wall = f.get("wall per stage above `sh -c true`  [asked, goal <= 2]");
        let cpu = f.get("CPU per stage above `sh -c true`  [asked, goal <= 2]");
        println!(
            "  => per stage, (T20 - T1)/19 minus one `sh -c true`: {wall:.1} ms wall, {cpu:.1} ms CPU (goal <= 2 ms: {})",
            if wall <= 2.0 && cpu <= 2.0 {
                "met"
            } else {
                "NOT met"
            }
        );
        println!(
            "  => per stage {:.1} ms wall / {:.1} ms CPU; one `sh -c true` {:.1} ms wall / {:.1} ms CPU (same run)",
            f.get("wall per stage (T20 - T1)/19"),
            f.get("CPU per stage (T20 - T1)/19"),
            f.get("one `sh -c true`, wall (baseline, /20)"),
            f.get("one `sh -c true`, CPU (baseline, /20)"),
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
