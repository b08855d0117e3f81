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
        Tui::start_with_config(extra_args, "")
    }

    fn start_with_config(extra_args: &[&str], config: &str) -> Tui {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config.toml"), config).unwrap();
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
    // The selection follows the activity: the waiting Approve stage.
    t.keys("a");
    t.wait_for("Approve Approve/Release of demo-web");
    // What it lets through, read by the engine from the demo's repository:
    // nothing is live in staging yet.
    let modal = t.wait_for("going to staging");
    assert!(modal.contains("nothing live yet"), "{modal}");
    t.keys("y");
    let screen = t.wait_for("Approve Succeeded");
    assert!(screen.contains("✔ Release"), "{screen}");
    // Logs of UnitTests: a known line.
    // The palette opens the log the selection no longer is on (it went
    // on with the release).
    t.keys(":logs Build/UnitTests\r");
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

/// The test venv's real AWS CLI, when `scripts/test` made it.
fn venv() -> Option<std::path::PathBuf> {
    let v = std::env::var_os("PIPEDECK_TEST_VENV").map(std::path::PathBuf::from);
    match v {
        Some(v) if v.join("bin/aws").exists() => Some(v),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI needs the test venv (scripts/test makes it): PIPEDECK_TEST_VENV is not set"
            );
            eprintln!("skipped: no test venv (run scripts/test, or set PIPEDECK_TEST_VENV)");
            None
        }
    }
}

#[test]
fn the_tui_serves_the_local_aws_api_when_the_config_asks() {
    let Some(venv) = venv() else { return };
    let mut t = Tui::start_with_config(&[], "aws_api = \"127.0.0.1:0\"\n");
    let screen = t.wait_for("AWS API on http://");
    let addr: String = screen
        .split("AWS API on http://")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    let config = t.ws.parent().unwrap().join("config.toml");
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_pipedeck"))
        .args(["aws-credentials", "--addr", &addr])
        .env("PIPEDECK_CONFIG", &config)
        .env("PIPEDECK_DATA_DIR", &t.data)
        .output()
        .unwrap();
    let text = String::from_utf8(printed.stdout).unwrap();
    let (creds, conf) = text.split_once("# Add to ~/.aws/config:").unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("credentials"), creds).unwrap();
    std::fs::write(home.path().join("config"), conf).unwrap();
    let mut c = std::process::Command::new(venv.join("bin/aws"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    let o = c
        .args(["--profile", "pipedeck-local", "--output", "json"])
        .args(["codepipeline", "list-pipelines"])
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the AWS CLI against the TUI's engine: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pipelines"][0]["name"], "demo-web", "{v}");
    t.keys("q");
    t.keys("y");
    assert!(t.wait_exit());
}
