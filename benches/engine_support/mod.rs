//! What the engine bench measures with: figures over runs, timings of
//! plain commands, this process's CPU time, and the build runner alone.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipedeck::api::ActionExecutionDetail;
use pipedeck::providers::LogSink;
use pipedeck::providers::codebuild_local::{self, BuildRequest};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const RUNS: usize = 3;

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Named figures collected over the runs of one scenario.
#[derive(Default)]
pub struct Figures {
    rows: Vec<(String, String, Vec<f64>)>,
}

impl Figures {
    pub fn add(&mut self, label: &str, unit: &str, value: f64) {
        match self.rows.iter_mut().find(|(l, _, _)| l == label) {
            Some((_, _, v)) => v.push(value),
            None => self
                .rows
                .push((label.to_owned(), unit.to_owned(), vec![value])),
        }
    }

    pub fn get(&self, label: &str) -> f64 {
        self.rows
            .iter()
            .find(|(l, _, _)| l == label)
            .map(|(_, _, v)| median(v))
            .unwrap_or(f64::NAN)
    }

    pub fn print(&self, title: &str) {
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

pub fn time_cmd(program: &str, args: &[&str]) -> Duration {
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
pub fn cpu_ms() -> f64 {
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

pub fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

pub fn engine_duration(a: &ActionExecutionDetail) -> Duration {
    let s = humantime::parse_rfc3339(&a.start_time).unwrap();
    let e = humantime::parse_rfc3339(&a.last_status_change).unwrap();
    e.duration_since(s).unwrap_or_default()
}

/// What a CodeBuild action's processes cost without the engine: the
/// provider's bash (`--noprofile --norc -s`, own process group, pipes, its
/// setup in the environment), one command through it and its marker, then
/// the group killed.
pub async fn shell_floor() -> Duration {
    let t = Instant::now();
    let mut child = tokio::process::Command::new("bash")
        .env("__PD_SETUP", "exec 2>&1\n")
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
        .write_all(b"eval \"unset __PD_SETUP; $__PD_SETUP\"\neval true </dev/null; printf '%s %s\\n' MARK \"$?\"\n")
        .await
        .unwrap();
    while let Some(l) = out.next_line().await.unwrap() {
        if l.starts_with("MARK") {
            break;
        }
    }
    pipedeck::proc::kill_group(child.id().unwrap());
    let _ = child.wait().await;
    t.elapsed()
}

/// Counts lines and drops them.
pub struct CountSink(pub u64);

impl LogSink for CountSink {
    fn line(&mut self, _line: &str) {
        self.0 += 1;
    }
}

/// The engine's build runner alone (no engine, no artifacts): runs the
/// buildspec `text` in `dir` into `sink`, on a runtime worker like an
/// action does. Returns the time and the sink.
pub async fn runner<S: LogSink + 'static>(text: &str, dir: &Path, mut sink: S) -> (Duration, S) {
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
