//! Scenario 4: the real binary idle in a pty with an approval pending.
//!
//! Every pipedeck process is measured: the host (`pipedeck serve`) and the
//! TUI attached to it as a client, then the TUI hosting the engine itself.
//! CPU is utime+stime from /proc/PID/stat over each window; the pty's
//! bytes and frames (bursts of output, and the ones that left the screen
//! as it was) come from the reader thread. The baseline, measured in the
//! same run: `cat` idle in the same pty.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use super::*;

/// The goals (issue 19).
const GOAL_CPU: f64 = 0.3;
const GOAL_RSS_MB: f64 = 20.0;

struct Window {
    /// % of a core, per process measured.
    cpu: Vec<f64>,
    bytes: u64,
    frames: u64,
    unchanged: u64,
}

/// One window of `secs` seconds over `pids`, with `tui`'s pty output.
fn window(pids: &[u32], tui: &Tui, secs: u64, tck: u64) -> Window {
    let c0: Vec<u64> = pids.iter().map(|&p| cpu_ticks(p)).collect();
    let (b0, (f0, u0), t0) = (tui.bytes(), tui.frames(), Instant::now());
    std::thread::sleep(Duration::from_secs(secs));
    let c1: Vec<u64> = pids.iter().map(|&p| cpu_ticks(p)).collect();
    let (b1, (f1, u1), wall) = (tui.bytes(), tui.frames(), t0.elapsed());
    Window {
        cpu: c0
            .iter()
            .zip(&c1)
            .map(|(a, b)| 100.0 * (b - a) as f64 / tck as f64 / wall.as_secs_f64())
            .collect(),
        bytes: b1 - b0,
        frames: f1 - f0,
        unchanged: u1 - u0,
    }
}

fn print_window(label: &str, names: &[&str], w: &Window) {
    let cpu: Vec<String> = names
        .iter()
        .zip(&w.cpu)
        .map(|(n, c)| format!("{n} {c:.2} %"))
        .collect();
    println!(
        "  {label:<34} {}  | pty {:.1} KB, {} frames ({} unchanged)",
        cpu.join(", "),
        w.bytes as f64 / 1e3,
        w.frames,
        w.unchanged
    );
}

/// What a process holds resident: VmRSS = RssAnon (heap, stacks) +
/// RssFile (the binary's text and data, shared libraries) + RssShmem.
fn resident(name: &str, pid: u32) -> f64 {
    let p = pid.to_string();
    let rss = status_kb(&p, "VmRSS");
    println!(
        "  {name:<34} VmRSS {:>5.1} MB = anon {:.1} + file {:.1} + shmem {:.1}; {} threads",
        mb(rss),
        mb(status_kb(&p, "RssAnon")),
        mb(status_kb(&p, "RssFile")),
        mb(status_kb(&p, "RssShmem")),
        status_kb(&p, "Threads"),
    );
    mb(rss)
}

/// `pipedeck serve` on the demo workspace, once it says it runs.
fn serve(env: &Env) -> Child {
    let mut child = std::process::Command::new(bin())
        .arg("serve")
        .env("PIPEDECK_DATA_DIR", &env.data)
        .env("PIPEDECK_CONFIG", &env.config)
        .env("PIPEDECK_WORKSPACE", &env.ws)
        .env("USER", "alice")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    assert!(line.contains("is running"), "serve said {line:?}");
    // Keep reading (and dropping) what it says, so it never blocks on it.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    child
}

/// A release started from another terminal, up to its first approval.
fn run_to_approval(env: &Env, tui: &Tui) {
    env.cli(&["run"]);
    tui.wait_for("approval(s) pending", 180);
    // Let the last refresh and the build processes settle.
    std::thread::sleep(Duration::from_secs(3));
}

/// Approves staging, then production, until the execution has ended.
fn approve_all(env: &Env, tui: &Tui) {
    env.cli(&["approve", "demo-web", "Approve", "Release"]);
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut prod_approved = false;
    while tui.text().contains("approval(s) pending") || !tui.text().contains("Succeeded") {
        assert!(
            Instant::now() < deadline,
            "the execution did not end: {}",
            tui.text()
        );
        if !prod_approved && tui.text().contains("approval(s) pending") {
            prod_approved = env
                .try_cli(&["approve", "demo-web", "Approve-Prod", "Release-Prod"])
                .status
                .success();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
}

/// Runs the scenario; gives back the workspace (one Succeeded execution
/// last) for scenario 5.
pub(super) fn idle(secs: u64) -> Env {
    let tck = clk_tck();
    let la = load();
    println!(
        "\n== 4. The real binary ({}) idle in a pty {W}x{H}, CLK_TCK {tck}, load average {la}",
        bin().display()
    );
    // The baseline: `cat` waiting on the same kind of pty.
    let cat = Tui::spawn(CommandBuilder::new("cat"));
    std::thread::sleep(Duration::from_millis(500));
    let base = window(&[cat.pid()], &cat, 10, tck);
    print_window("baseline: `cat` idle, 10 s", &["cat"], &base);
    drop(cat);

    // A: `pipedeck serve` hosts, the TUI attaches as a client.
    let env = Env::new();
    let mut host = serve(&env);
    let tui = Tui::start(&env);
    tui.wait_for("Pipelines", 60);
    run_to_approval(&env, &tui);
    let (hp, cp) = (host.id(), tui.pid());
    println!(
        "  A. host `pipedeck serve` (pid {hp}) + the TUI attached (pid {cp}), approval pending:"
    );
    let mut worst = (0.0f64, 0.0f64, 0u64);
    for k in 0..secs.div_ceil(10) {
        let w = window(&[hp, cp], &tui, 10, tck);
        print_window(
            &format!("  {}-{} s", k * 10, k * 10 + 10),
            &["host", "client"],
            &w,
        );
        worst = (
            worst.0.max(w.cpu[0]),
            worst.1.max(w.cpu[1]),
            worst.2 + w.unchanged,
        );
    }
    let rss_host = resident("  host", hp);
    let rss_client = resident("  client", cp);
    approve_all(&env, &tui);
    let w = window(&[hp, cp], &tui, 10, tck);
    print_window(
        "  nothing running (Succeeded), 10 s",
        &["host", "client"],
        &w,
    );

    // B: the host goes; the TUI reconnects by hosting the engine itself.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &hp.to_string()])
        .status();
    let _ = host.wait();
    tui.wait_for("this process hosts the engine now", 30);
    run_to_approval(&env, &tui);
    println!("  B. the TUI hosting the engine (pid {cp}), approval pending:");
    let w = window(&[cp], &tui, 10, tck);
    print_window("  0-10 s", &["tui+engine"], &w);
    let rss_self = resident("  tui+engine", cp);
    let (worst_self, unchanged_self) = (w.cpu[0], w.unchanged);
    approve_all(&env, &tui);

    println!(
        "  => approval pending, {secs} s, CPU per 10 s at most: host {:.2} %, client {:.2} %, \
         TUI hosting {:.2} % (baseline `cat` {:.2} %; goal < {GOAL_CPU} %: {})",
        worst.0,
        worst.1,
        worst_self,
        base.cpu[0],
        met(worst.0.max(worst.1).max(worst_self) < GOAL_CPU)
    );
    println!(
        "  => unchanged frames written: {} attached, {unchanged_self} hosting (goal 0: {})",
        worst.2,
        met(worst.2 + unchanged_self == 0)
    );
    println!(
        "  => VmRSS: host {rss_host:.1} MB, client {rss_client:.1} MB, TUI hosting \
         {rss_self:.1} MB (goal < {GOAL_RSS_MB} MB: {})",
        met(rss_host.max(rss_client).max(rss_self) < GOAL_RSS_MB)
    );
    let _ = tui.quit();
    env
}

/// The load averages (1, 5, 15 minutes), as /proc/loadavg says them.
fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
