//! The real binary in a pseudo-terminal: start it on a temporary demo
//! workspace, type keys, read the screen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

struct Tui {
    screen: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    raw: Arc<Mutex<Vec<u8>>>,
    _tmp: tempfile::TempDir,
    ws: std::path::PathBuf,
    data: std::path::PathBuf,
}

impl Drop for Tui {
    /// A failing test leaves no pipedeck (nor its replicas) behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            if let Some(pid) = self.child.process_id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
                std::thread::sleep(Duration::from_millis(500));
            }
            let _ = self.child.kill();
        }
    }
}

impl Tui {
    fn start(extra_args: &[&str]) -> Tui {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let ws = tmp.path().join("ws");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipedeck"))
            .args(["init", "--demo", ws.to_str().unwrap()])
            .env("PIPEDECK_DATA_DIR", &data)
            .output()
            .unwrap();
        assert!(out.status.success());
        let pty = native_pty_system();
        let pair = pty
            .openpty(PtySize {
                rows: 40,
                cols: 140,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_pipedeck"));
        cmd.args(extra_args);
        cmd.env("PIPEDECK_DATA_DIR", &data);
        cmd.env("PIPEDECK_CONFIG", tmp.path().join("config.toml"));
        cmd.env("PIPEDECK_WORKSPACE", &ws);
        cmd.env("TERM", "xterm-256color");
        cmd.env("USER", "alice");
        cmd.env("PIPEDECK_EPHEMERAL_PORTS", "1");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
        let screen = Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(40).unwrap(),
            std::num::NonZeroU16::new(140).unwrap(),
            0,
        )));
        let raw = Arc::new(Mutex::new(Vec::new()));
        {
            let screen = screen.clone();
            let raw = raw.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            screen.lock().unwrap().process(&buf[..n]);
                            raw.lock().unwrap().extend_from_slice(&buf[..n]);
                        }
                    }
                }
            });
        }
        // Keep the master alive as long as the test.
        std::mem::forget(pair.master);
        Tui {
            screen,
            writer,
            child,
            raw,
            _tmp: tmp,
            ws,
            data,
        }
    }

    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let t = self.text();
            if t.contains(what) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what:?}; screen:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&mut self, s: &str) {
        self.writer.write_all(s.as_bytes()).unwrap();
        self.writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }

    fn wait_exit(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.success();
            }
            assert!(Instant::now() < deadline, "pipedeck did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_run(&self) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipedeck"))
            .args(["run"])
            .env("PIPEDECK_DATA_DIR", &self.data)
            .env("PIPEDECK_WORKSPACE", &self.ws)
            .env("PIPEDECK_EPHEMERAL_PORTS", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn approve_from_the_tui_then_read_logs_and_quit_restoring_the_terminal() {
    let mut t = Tui::start(&[]);
    t.wait_for("Pipelines");
    // Another terminal starts a release through the TUI's engine.
    t.start_run();
    t.wait_for("approval(s) pending");
    t.keys("\r"); // open the pipeline
    t.wait_for("Executions");
    t.keys("lll"); // to the Approve stage (Source, Build, Dev, Approve)
    t.keys("a");
    t.wait_for("Approve Approve/Release?");
    t.keys("y");
    let screen = t.wait_for("Approve Succeeded");
    assert!(screen.contains("✔ Release"), "{screen}");
    // Logs of UnitTests: a known line.
    t.keys("hhj"); // Build / UnitTests
    t.keys("L");
    let logs = t.wait_for("Ran 4 tests");
    assert!(logs.contains("tests: 4 passed, 0 failed"), "{logs}");
    t.keys("\x1b"); // back
    t.keys("q");
    // The release is still on its way to production: quitting asks first.
    t.wait_for("Quit?");
    t.keys("y");
    assert!(t.wait_exit());
    let raw = t.raw.lock().unwrap().clone();
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(200)..]).into_owned();
    // Left the alternate screen and showed the cursor again.
    assert!(tail.contains("\x1b[?1049l"), "{tail:?}");
    assert!(tail.contains("\x1b[?25h"), "{tail:?}");
}

#[test]
fn reject_with_a_summary_fails_the_execution() {
    let mut t = Tui::start(&[]);
    t.wait_for("Pipelines");
    t.start_run();
    t.wait_for("approval(s) pending");
    t.keys("A"); // approvals screen
    t.wait_for("(stable channel)?");
    t.keys("x");
    t.wait_for("summary");
    t.keys("not on a Friday");
    t.keys("\r");
    t.wait_for("not on a Friday");
    t.keys("y");
    t.wait_for("reject Approve/Release: done");
    let s = t.wait_for("not on a Friday");
    assert!(s.contains("Rejected"), "{s}");
    assert!(s.contains("by alice"), "{s}");
    t.keys(":pipelines\r");
    let s = t.wait_for("Failed");
    assert!(s.contains("demo-web"), "{s}");
    t.keys("q");
    assert!(t.wait_exit());
}

#[test]
fn readonly_mode_refuses_to_approve() {
    let mut t = Tui::start(&["--readonly"]);
    t.wait_for("READ-ONLY");
    t.start_run();
    t.wait_for("approval(s) pending");
    t.keys("A");
    t.keys("a");
    t.wait_for("read-only mode");
    t.keys("q");
    // Quitting with a running execution asks first.
    t.wait_for("Quit?");
    t.keys("y");
    assert!(t.wait_exit());
}
