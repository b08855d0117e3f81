//! The real binary in a pseudo-terminal over the AWS backend: `pipedeck
//! serve --aws-api` hosts the demo workspace's engine as the local AWS API;
//! `pipedeck --aws --profile pipedeck-local` (another data dir, no
//! workspace) shows its pipelines, approves a release by keypress and reads
//! a build's log through CodeBuild and CloudWatch Logs. Nothing reaches
//! AWS: the profile's endpoint is 127.0.0.1 and its files are temp files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }
}

fn pipedeck(data: &Path, ws: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pipedeck"));
    c.env("PIPEDECK_DATA_DIR", data)
        .env("PIPEDECK_CONFIG", data.join("none.toml"))
        .env("PIPEDECK_WORKSPACE", ws)
        .env("PIPEDECK_EPHEMERAL_PORTS", "1")
        .env("USER", "alice")
        .stdin(Stdio::null());
    c
}

fn screen_wait(screen: &Arc<Mutex<vt100::Parser>>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let t = screen.lock().unwrap().screen().contents();
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

#[test]
fn approve_and_read_a_log_over_the_local_aws_api() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, ws) = (tmp.path().join("data"), tmp.path().join("ws"));
    let out = pipedeck(&data, &ws)
        .args(["init", "--demo", ws.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let _host = Killed(
        pipedeck(&data, &ws)
            .args(["serve", "--aws-api", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no AWS API on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The profile snippet `pipedeck aws-credentials` prints, as the two
    // AWS files.
    let snippet = pipedeck(&data, &ws)
        .args(["aws-credentials", "--addr", &addr])
        .output()
        .unwrap();
    let snippet = String::from_utf8_lossy(&snippet.stdout).into_owned();
    let (creds, config) = snippet
        .split_once("# Add to ~/.aws/config:")
        .expect("both parts");
    let aws = tmp.path().join("aws");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::write(aws.join("credentials"), creds).unwrap();
    std::fs::write(aws.join("config"), config).unwrap();
    // The TUI's own data dir and config: idle pipelines polled every 2 s.
    let tui_data = tmp.path().join("tui-data");
    std::fs::create_dir_all(&tui_data).unwrap();
    std::fs::write(
        tui_data.join("config.toml"),
        "[aws]\nrunning_interval_seconds = 1\nidle_interval_seconds = 2\n",
    )
    .unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();

    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 140,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_pipedeck"));
    cmd.args(["--aws", "--profile", "pipedeck-local"]);
    cmd.cwd(&elsewhere);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("PIPEDECK_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PIPEDECK_DATA_DIR", &tui_data);
    cmd.env("PIPEDECK_CONFIG", tui_data.join("config.toml"));
    cmd.env("AWS_CONFIG_FILE", aws.join("config"));
    cmd.env("AWS_SHARED_CREDENTIALS_FILE", aws.join("credentials"));
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd.env("HOME", tmp.path());
    cmd.env("TERM", "xterm-256color");
    cmd.env("USER", "alice");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut writer = pair.master.take_writer().unwrap();
    let screen = Arc::new(Mutex::new(vt100::Parser::new(
        std::num::NonZeroU16::new(40).unwrap(),
        std::num::NonZeroU16::new(140).unwrap(),
        0,
    )));
    {
        let screen = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    return;
                }
                screen.lock().unwrap().process(&buf[..n]);
            }
        });
    }
    let mut keys = |s: &str| {
        writer.write_all(s.as_bytes()).unwrap();
        writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150));
    };
    let first = screen_wait(&screen, "demo-web");
    assert!(
        first.contains("AWS pipedeck-local"),
        "the header names the account:\n{first}"
    );
    // A release started from another terminal, through the engine.
    let run = pipedeck(&data, &ws).args(["run"]).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    screen_wait(&screen, "approval(s) pending");
    keys("\r"); // open the pipeline
    screen_wait(&screen, "Executions");
    keys("lll"); // Source, Build, Dev, Approve
    keys("a");
    screen_wait(&screen, "Approve Approve/Release?");
    keys("y");
    let after = screen_wait(&screen, "Approve Succeeded");
    assert!(after.contains("✔ Release"), "{after}");
    // A build's log, from CodeBuild's stream.
    keys("hhj"); // Build / UnitTests
    keys("L");
    let logs = screen_wait(&screen, "Ran 4 tests");
    assert!(logs.contains("tests: 4 passed, 0 failed"), "{logs}");
    keys("\x1b");
    keys("q");
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success());
            break;
        }
        if screen.lock().unwrap().screen().contents().contains("Quit?") {
            keys("y");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "pipedeck did not exit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::mem::forget(pair.master);
}
