//! Diagnosing a 1,000,000-line build log: realistic noise (compiler
//! progress, npm and test chatter, timestamps, words such as "error" in
//! passing) with one failure near the end. Plain `main`: prints the time of
//! each run and the best (goal: under 1 s), beside the baseline. The
//! fallback scoring runs here too: the failed command's output is the whole
//! log, so every line is a candidate explanation.
//!
//! Then the real `pipedeck diagnose --log` (the binary built with this
//! bench) on the same log written to 1M- and 10M-line files in a temp dir
//! (62 MB and 620 MB; skipped when the disk has too little room), beside
//! `grep -c -E 'error|fatal|failed|exception'` on the same file: wall time
//! per 1M lines and peak RSS (VmHWM polled from /proc). Goals: < 0.3 s per
//! 1M lines, < 40 MB at 10M lines.
//!
//! Measured 2026-12-01 (2 cores shared with 4 other builds; ranges of 3
//! runs at 1M, 2 at 10M):
//! - before issue 19 (the whole log held; load average 4.7): in memory best
//!   0.356 s (0.257 s on CPU); CLI 1M lines 0.49-0.83 s, 143 MB; 10M lines
//!   0.555-0.558 s per 1M lines, 1017 MB; grep 0.070 s per 1M lines, 2 MB.
//! - after (diagnose_reader streams the file; load average 2.6): in memory
//!   best 0.303 s (0.231 s on CPU); CLI 1M lines 0.42-0.56 s, 47 MB; 10M
//!   lines 0.38-0.45 s per 1M lines, 47 MB; grep 0.050-0.054 s per 1M
//!   lines, 2 MB. Memory no longer grows with the log; the 47 MB is the
//!   process itself (45 MB on an empty log: the binary and the compiled
//!   catalogue), so the 40 MB goal is missed by that floor, and the time
//!   goal too (about 7.7x grep: the RegexSet of 113 rules and the fallback's
//!   strong-line check on every line).
//! - after the rule regexes became lazy (compiled at their first prefilter
//!   hit; 16:55 UTC, load average 1.0, nothing else building): in memory
//!   best 0.241 s (0.240 s on CPU); CLI 1M lines 0.324-0.336 s, 25 MB;
//!   10M lines 0.298-0.300 s per 1M lines, 25 MB peak; grep 0.042-0.047 s
//!   per 1M lines, 2 MB (pipedeck 7.1x grep). Memory goal met (25 MB at
//!   10M lines); time at the goal at 10M lines and 8-12% over it at 1M
//!   (start-up counts there), on a quiet machine only.
//! - after the strong-line gate (18:10-18:23 UTC, other builds running,
//!   load average 2.6-4.2 over the runs; two `cargo bench` runs of each
//!   side): the profile of `diagnose --log` on the 1M-line log put 30% of
//!   its time in the fallback's strong-line regex, run on every line that
//!   leaves the ring, and 39% in the RegexSet prefilter; reading, UTF-8
//!   checks and line cleaning about 15%, start-up 13 ms (an empty log).
//!   A byte-level test now says which lines the regex can match at all.
//!   Before (the previous commit, same two runs' conditions): in memory
//!   best 0.236-0.238 s; CLI 1M lines 0.352-0.441 s, 25-26 MB, grep
//!   0.048-0.072 s; 10M lines 0.309-0.322 and 0.320-0.339 s per 1M lines,
//!   26 MB, grep 0.045-0.046 s per 1M lines. After: in memory best
//!   0.167-0.173 s (0.167-0.168 s on CPU); CLI 1M lines 0.254-0.258 and
//!   0.256-0.268 s, 25-26 MB, grep 0.046-0.049 s; 10M lines 0.224-0.229
//!   and 0.227-0.238 s per 1M lines, 26 MB peak, grep 0.043-0.044 s per
//!   1M lines (pipedeck 5.1-5.6x grep). Both goals met with the machine
//!   busy. What is left is mostly the RegexSet (about half of the time,
//!   ~1.8 ns a byte in its lazy DFA).
//!
//! `cargo bench --bench diagnose`

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pipedeck::diagnose::{Catalogue, Input, diagnose};

const LINES: usize = 1_000_000;

/// The noise lines, one at a time (the same sequence for every log).
struct Noise {
    state: u64,
}

impl Noise {
    fn new() -> Noise {
        Noise {
            state: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn next_line(&mut self) -> String {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let r = self.state;
        let crates = [
            "serde", "tokio", "regex", "hyper", "rustls", "clap", "tracing", "anyhow",
        ];
        let c = crates[(r % crates.len() as u64) as usize];
        let k = (r >> 8) % 12;
        match k {
            0 => format!("   Compiling {c} v1.{}.{}", r % 40, (r >> 4) % 10),
            1 => format!(
                "2026-11-26T20:{:02}:{:02}.{:03}Z INFO  app::server: request handled status=200 latency_ms={}",
                (r >> 3) % 60,
                (r >> 9) % 60,
                r % 1000,
                r % 250
            ),
            2 => format!("test {c}::tests::case_{} ... ok", r % 5000),
            3 => format!(
                "npm http fetch GET 200 https://registry.npmjs.org/{c} {}ms (cache hit)",
                r % 90
            ),
            4 => format!(
                "  src/{c}/mod.rs: checked {} items, 0 errors, 0 warnings",
                r % 400
            ),
            5 => "warning: unused variable: `retry_error_count`".to_owned(),
            6 => format!(
                "DEBUG retrying on error=false attempt={} of 3 (error handling enabled)",
                r % 3
            ),
            7 => format!(
                "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/{c}/{c}-core/2.{}/{c}-core-2.{}.jar (12 kB at 400 kB/s)",
                r % 9,
                r % 9
            ),
            8 => format!(
                "    Finished `dev` profile [unoptimized + debuginfo] target(s) in {}.{}s",
                r % 60,
                r % 100
            ),
            9 => format!(
                "{:>6} | fn handle_{}(req: Request) -> Result<Response, Error> {{",
                r % 9000,
                c
            ),
            10 => format!("ok  \texample.com/web/internal/{c}\t0.0{}s", r % 90),
            _ => format!(
                "  {} passing ({}ms), {} pending, 0 failing",
                r % 300,
                r % 4000,
                r % 5
            ),
        }
    }
}

const HEAD: [&str; 3] = [
    "[Container] 2026/11/26 20:01:02.113 Running on CodeBuild On-demand",
    "[Container] Entering phase BUILD",
    "[Container] Running command ./ci/build-and-test.sh",
];

/// The failure, near the end (6 lines).
fn tail() -> [String; 6] {
    [
        "aws s3 cp dist/app.zip s3://release-bucket-prod/web/app.zip".to_owned(),
        "upload failed: dist/app.zip to s3://release-bucket-prod/web/app.zip An error occurred \
         (AccessDenied) when calling the PutObject operation: User: \
         arn:aws:sts::123456789012:assumed-role/build-role/AWSCodeBuild-7f3c2a1e is not \
         authorized to perform: s3:PutObject on resource: \
         \"arn:aws:s3:::release-bucket-prod/web/app.zip\" because no identity-based policy \
         allows the s3:PutObject action"
            .to_owned(),
        "[Container] Command did not exit successfully ./ci/build-and-test.sh exit status 1"
            .to_owned(),
        "[Container] Phase complete: BUILD State: FAILED".to_owned(),
        "[Container] Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: ./ci/build-and-test.sh. Reason: exit status 1".to_owned(),
        "[Container] Build FAILED".to_owned(),
    ]
}

fn noise(n: usize) -> Vec<String> {
    let mut g = Noise::new();
    let mut out: Vec<String> = HEAD.iter().map(|s| (*s).to_owned()).collect();
    out.reserve(n);
    while out.len() < n - 6 {
        out.push(g.next_line());
    }
    out.extend(tail());
    out
}

/// On-CPU time of this thread (Linux `schedstat`, ns): the machine is
/// shared, so wall-clock time alone says as much about the neighbours.
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn main() {
    let log = noise(LINES);
    let bytes: usize = log.iter().map(|l| l.len() + 1).sum();
    let cat = Catalogue::builtin();
    let input = Input {
        log: &log,
        ..Input::default()
    };
    let mut best = Duration::MAX;
    let mut best_cpu = Duration::MAX;
    for run in 1..=5 {
        let c0 = cpu_time();
        let t = Instant::now();
        let found = black_box(diagnose(black_box(&input), &cat));
        let el = t.elapsed();
        let cpu = match (c0, cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => el,
        };
        best = best.min(el);
        best_cpu = best_cpu.min(cpu);
        // The noise itself must not produce findings.
        for f in &found {
            for e in &f.evidence {
                if let pipedeck::diagnose::Evidence::LogLine { line, text } = e {
                    assert!(*line >= log.len() - 6, "noise matched {}: {text}", f.rule);
                }
            }
        }
        assert_eq!(
            found.first().map(|f| f.title.as_str()),
            Some("Missing IAM permission s3:PutObject for role build-role (AccessDenied)"),
            "{found:#?}"
        );
        println!(
            "run {run}: diagnosed {} lines ({:.1} MB) in {:.3} s ({:.3} s on CPU), {} finding(s)",
            log.len(),
            bytes as f64 / 1e6,
            el.as_secs_f64(),
            cpu.as_secs_f64(),
            found.len()
        );
    }
    // A noisier log: every 10th line is a retried connection error (a rule
    // fires on 100,000 lines), to show the cost of matches, not only scans.
    let noisy: Vec<String> = log
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i % 10 == 5 && i + 10 < log.len() {
                format!(
                    "WARN retry {i}: connect ECONNREFUSED 10.0.{}.{}:5432",
                    i % 7,
                    i % 13
                )
            } else {
                l.clone()
            }
        })
        .collect();
    let t = Instant::now();
    let found = black_box(diagnose(
        &Input {
            log: &noisy,
            ..Input::default()
        },
        &cat,
    ));
    println!(
        "noisy variant (100,000 matching lines): {:.3} s, top: {}",
        t.elapsed().as_secs_f64(),
        found.first().map_or("-", |f| f.title.as_str())
    );
    println!(
        "diagnose/1M-line log: best {:.3} s, {:.3} s on CPU (goal < 1 s; baseline before \
         the fallback scoring and the parsers of issue 16: 0.11-0.14 s) {}",
        best.as_secs_f64(),
        best_cpu.as_secs_f64(),
        if best < Duration::from_secs(1) {
            "OK"
        } else {
            "SLOW"
        }
    );
    cli_figures();
}

/// Writes the noise log of `n` lines to `path`; its size in bytes.
fn write_log(path: &Path, n: usize) -> u64 {
    let f = std::fs::File::create(path).expect("create the log");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut g = Noise::new();
    let mut bytes = 0u64;
    let mut put = |w: &mut std::io::BufWriter<std::fs::File>, l: &str| {
        w.write_all(l.as_bytes()).expect("write the log");
        w.write_all(b"\n").expect("write the log");
        bytes += l.len() as u64 + 1;
    };
    for l in HEAD {
        put(&mut w, l);
    }
    for _ in HEAD.len()..n - 6 {
        let l = g.next_line();
        put(&mut w, &l);
    }
    for l in tail() {
        put(&mut w, &l);
    }
    w.flush().expect("write the log");
    bytes
}

/// The peak resident set (VmHWM, kB) of a running process.
fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `cmd` with stdout into `out`: wall time and the peak RSS (MB), read
/// from /proc every millisecond while it runs (the kernel keeps the high
/// water mark, so a poll only has to come after the peak).
fn measure(cmd: &mut Command, out: &Path) -> (Duration, f64) {
    let f = std::fs::File::create(out).expect("create the output file");
    let t = Instant::now();
    let mut child = cmd
        .stdout(f)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the command");
    let pid = child.id();
    let mut peak = 0u64;
    loop {
        if let Some(kb) = vm_hwm(pid) {
            peak = peak.max(kb);
        }
        if child.try_wait().expect("wait for the command").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    (t.elapsed(), peak as f64 / 1024.0)
}

/// Free space of the filesystem holding `dir`, in bytes (`df -Pk`).
fn free_bytes(dir: &Path) -> Option<u64> {
    let o = Command::new("df").arg("-Pk").arg(dir).output().ok()?;
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let kb: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The real `pipedeck diagnose --log` (built with this bench) on generated
/// 1M- and 10M-line logs, beside `grep -c -E` of four words on the same
/// file: wall time per 1M lines and peak RSS.
fn cli_figures() {
    let bin = env!("CARGO_BIN_EXE_pipedeck");
    let dir = tempfile::tempdir().expect("a temp dir");
    let free = free_bytes(dir.path());
    let out = dir.path().join("out.txt");
    let cfg = dir.path().join("config.toml");
    for (lines, runs) in [(1_000_000usize, 3), (10_000_000, 2)] {
        let need = lines as u64 * 62 * 12 / 10 + (1 << 30);
        if free.is_some_and(|f| f < need) {
            println!(
                "cli/{lines} lines: skipped, {:.1} GB free in {}, {:.1} GB needed",
                free.unwrap_or(0) as f64 / 1e9,
                dir.path().display(),
                need as f64 / 1e9
            );
            continue;
        }
        let log = dir.path().join(format!("log-{lines}.txt"));
        let bytes = write_log(&log, lines);
        let per_m = lines as f64 / 1e6;
        let mut best = (Duration::MAX, f64::MAX);
        let mut worst = (Duration::ZERO, 0.0f64);
        let mut base = (Duration::MAX, f64::MAX);
        for run in 1..=runs {
            let (el, mb) = measure(
                Command::new(bin)
                    .env("PIPEDECK_CONFIG", &cfg)
                    .env("PIPEDECK_DATA_DIR", dir.path())
                    .arg("diagnose")
                    .arg("--log")
                    .arg(&log),
                &out,
            );
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            assert!(
                text.contains("Missing IAM permission s3:PutObject for role build-role")
                    && text.contains(&format!("log line {}:", lines - 4)),
                "pipedeck diagnose --log printed:\n{text}"
            );
            let (gel, gmb) = measure(
                Command::new("grep")
                    .arg("-c")
                    .arg("-E")
                    .arg("error|fatal|failed|exception")
                    .arg(&log),
                &out,
            );
            println!(
                "cli/{lines} lines ({:.0} MB) run {run}: pipedeck {:.3} s, {:.0} MB peak; \
                 grep {:.3} s, {:.1} MB peak",
                bytes as f64 / 1e6,
                el.as_secs_f64(),
                mb,
                gel.as_secs_f64(),
                gmb
            );
            best = (best.0.min(el), best.1.min(mb));
            worst = (worst.0.max(el), worst.1.max(mb));
            base = (base.0.min(gel), base.1.min(gmb));
        }
        let secs = best.0.as_secs_f64() / per_m;
        println!(
            "cli/diagnose --log {lines} lines: {:.3}-{:.3} s per 1M lines (goal < 0.3 s; \
             baseline grep -c -E of 4 words: {:.3} s per 1M lines, {:.1}x), peak RSS \
             {:.0}-{:.0} MB (goal < 40 MB at 10M lines; grep {:.1} MB) {}",
            secs,
            worst.0.as_secs_f64() / per_m,
            base.0.as_secs_f64() / per_m,
            best.0.as_secs_f64() / base.0.as_secs_f64(),
            best.1,
            worst.1,
            base.1,
            if secs < 0.3 && (lines < 10_000_000 || best.1 < 40.0) {
                "OK"
            } else {
                "MISSED"
            }
        );
        let _ = std::fs::remove_file(&log);
    }
}
