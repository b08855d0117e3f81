//! The real binary in a pseudo-terminal over the AWS backend: `pipedeck
//! serve --aws-api` hosts the demo workspace's engine as the local AWS API;
//! `pipedeck --aws` (another data dir, no workspace) shows its pipelines,
//! reads a running build's log live through CodeBuild and CloudWatch Logs
//! and approves the release by keypress; with two `[[aws.accounts]]`, one of them on a port
//! that refuses connections, it shows that account's error while the other
//! fails a broken build, retries it after the fix (re-running the
//! execution's own revision, as AWS does) and releases the fix, and finds
//! the refused operation in the Audit screen. Nothing reaches AWS: the
//! profiles' endpoints are 127.0.0.1 and their files are temp files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
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

/// The demo workspace's engine served as the local AWS API, and the AWS
/// CLI files of its `pipedeck-local` profile.
struct LocalApi {
    data: PathBuf,
    ws: PathBuf,
    aws: PathBuf,
    _host: Killed,
}

impl LocalApi {
    fn start(tmp: &Path) -> LocalApi {
        let (data, ws) = (tmp.join("data"), tmp.join("ws"));
        let out = pipedeck(&data, &ws)
            .args(["init", "--demo", ws.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success());
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let host = Killed(
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
        let aws = tmp.join("aws");
        std::fs::create_dir_all(&aws).unwrap();
        std::fs::write(aws.join("credentials"), creds).unwrap();
        std::fs::write(aws.join("config"), config).unwrap();
        LocalApi {
            data,
            ws,
            aws,
            _host: host,
        }
    }

    /// A command of the engine's workspace ("another terminal"); it must
    /// succeed.
    fn engine(&self, args: &[&str]) -> String {
        let out = pipedeck(&self.data, &self.ws).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@pipedeck.invalid",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `pipedeck --aws ARGS` in a 40×140 pseudo-terminal, with its own data
/// dir and `config` as its config file.
struct Tui {
    child: Box<dyn portable_pty::Child + Send + Sync>,
    screen: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    master: Option<Box<dyn portable_pty::MasterPty + Send>>,
}

impl Tui {
    fn start(tmp: &Path, api: &LocalApi, args: &[&str], config: &str) -> Tui {
        let tui_data = tmp.join("tui-data");
        std::fs::create_dir_all(&tui_data).unwrap();
        std::fs::write(tui_data.join("config.toml"), config).unwrap();
        let elsewhere = tmp.join("elsewhere");
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
        cmd.args(args);
        cmd.cwd(&elsewhere);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("PIPEDECK_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("PIPEDECK_DATA_DIR", &tui_data);
        cmd.env("PIPEDECK_CONFIG", tui_data.join("config.toml"));
        cmd.env("AWS_CONFIG_FILE", api.aws.join("config"));
        cmd.env("AWS_SHARED_CREDENTIALS_FILE", api.aws.join("credentials"));
        cmd.env("AWS_EC2_METADATA_DISABLED", "true");
        cmd.env("HOME", tmp);
        cmd.env("TERM", "xterm-256color");
        cmd.env("USER", "alice");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = pair.master.take_writer().unwrap();
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
        Tui {
            child,
            screen,
            writer,
            master: Some(pair.master),
        }
    }

    fn text(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// The screen once it shows `what` (up to 180 s: builds on a loaded
    /// machine).
    fn wait(&self, what: &str) -> String {
        self.wait_until(what, |t| t.contains(what))
    }

    fn wait_until(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let t = self.text();
            if ok(&t) {
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

    /// `q` (answering its question) and a clean exit.
    fn quit(mut self) {
        self.keys("q");
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                assert!(st.success());
                break;
            }
            if self.text().contains("Quit?") {
                self.keys("y");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "pipedeck did not exit"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::mem::forget(self.master.take());
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
    }
}

/// Idle pipelines polled every 2 s, running ones every second.
const INTERVALS: &str = "[aws]\nrunning_interval_seconds = 1\nidle_interval_seconds = 2\n";

#[test]
fn read_a_running_builds_log_live_and_approve_over_the_local_aws_api() {
    let tmp = tempfile::tempdir().unwrap();
    let api = LocalApi::start(tmp.path());
    let mut t = Tui::start(
        tmp.path(),
        &api,
        &["--aws", "--profile", "pipedeck-local"],
        INTERVALS,
    );
    let first = t.wait("demo-web");
    assert!(
        first.contains("AWS pipedeck-local"),
        "the header names the account:\n{first}"
    );
    t.keys("\r"); // open the pipeline
    t.wait("Executions");
    // A commit whose unit tests take a few seconds, printing as they go;
    // the engine's trigger starts its release.
    let repo = api.ws.join("demo-web");
    let spec = repo.join("buildspec-test.yml");
    let text = std::fs::read_to_string(&spec).unwrap().replace(
        "      - python3 --version\n",
        "      - python3 --version\n      - 'for i in 1 2 3 4 5 6 7 8; do echo \"live tick $i\"; sleep 1; done'\n",
    );
    assert!(text.contains("live tick"), "{text}");
    std::fs::write(&spec, text).unwrap();
    git(&repo, &["commit", "-qam", "Slower tests"]);
    // Its log read while the build runs: the lines written after the view
    // opened arrive in it (CloudWatch Logs followed; Live Tail cannot
    // reach a loopback endpoint, so GetLogEvents is polled).
    t.wait("Build InProgress");
    // The graph follows the activity; the palette names the action.
    t.keys(":logs Build/UnitTests\r");
    let early = t.wait("live tick 1");
    assert!(
        !early.contains("Ran 4 tests"),
        "opened after the end:\n{early}"
    );
    let logs = t.wait("Ran 4 tests");
    assert!(logs.contains("live tick 8"), "{logs}");
    assert!(logs.contains("tests: 4 passed, 0 failed"), "{logs}");
    t.keys("\x1b");
    t.wait("approval(s) pending");
    t.keys(":approve\r"); // the approval waiting in Approve
    t.wait("Approve Approve/Release of demo-web");
    t.keys("y");
    t.wait("approve Approve/Release: done");
    // The graph stays on the log's stage (the selection was moved there):
    // the next waiting or failed stage is `n` away; Approve is no longer
    // one, so it is reached by moving right from Build.
    t.keys("ll");
    let after = t.wait("Approve Succeeded");
    assert!(after.contains("✔ Release"), "{after}");
    t.keys("\x1b");
    t.quit();
}

/// The engine's view of an action's latest attempt: (attempt, status).
fn attempt(api: &LocalApi, stage: &str, action: &str) -> Option<(u64, String)> {
    let v: serde_json::Value = serde_json::from_str(&api.engine(&["status", "--json"])).unwrap();
    let st = v["states"][0]["stageStates"]
        .as_array()?
        .iter()
        .find(|s| s["stageName"] == stage)?;
    let x = st["actionStates"]
        .as_array()?
        .iter()
        .find(|a| a["actionName"] == action)?
        .get("latestExecution")?;
    Some((x["attempt"].as_u64()?, x["status"].as_str()?.to_owned()))
}

#[test]
fn one_account_down_the_other_fails_retries_after_the_fix_and_audits() {
    let tmp = tempfile::tempdir().unwrap();
    let api = LocalApi::start(tmp.path());
    // Two accounts: the local AWS API, and the same profile on a port
    // nothing listens on.
    let closed = free_port();
    let config = format!(
        "{INTERVALS}\n[[aws.accounts]]\nname = \"local\"\nprofile = \"pipedeck-local\"\n\n\
         [[aws.accounts]]\nname = \"down\"\nprofile = \"pipedeck-local\"\n\
         endpoint_url = \"http://127.0.0.1:{closed}\"\n"
    );
    let mut t = Tui::start(tmp.path(), &api, &["--aws"], &config);
    t.wait("local:us-east-1/demo-web");
    // The down account's error, in the footer, while the other is listed.
    let footer = |t: &str| t.lines().last().unwrap_or_default().to_owned();
    let s = t.wait_until("the down account's error in the footer", |s| {
        footer(s).contains("down/us-east-1: stale: EndpointUnreachable")
    });
    assert!(
        !s.contains("down:us-east-1/"),
        "no pipeline of the down account:\n{s}"
    );
    t.keys("\r"); // open the pipeline
    t.wait("Executions");

    // A broken commit: the engine's trigger starts an execution and its
    // unit tests fail.
    api.engine(&["demo", "break"]);
    let s = t.wait("Build Failed");
    assert!(s.contains("Simplify the greeting"), "{s}");
    // Hold the next execution before Build, then commit the fix: its
    // execution waits at the boundary.
    api.engine(&["transition", "demo-web", "Build", "--disable", "hold"]);
    t.wait("disabled: hold");
    api.engine(&["demo", "fix"]);
    t.wait_until("the fix's execution waiting before Build", |s| {
        s.contains("Restore the greeting") && s.contains('⏳')
    });
    // Retry the failed stage: as on AWS it re-runs the failed execution's
    // own revision, and the TUI says so before doing it.
    t.keys(":retry Build\r");
    let modal = t.wait("Retry re-runs revision");
    assert!(
        modal.contains("(the execution's own source,") && modal.contains("r: retry"),
        "{modal}"
    );
    t.keys("r"); // retry it anyway
    t.wait("retry Build: done");
    let t0 = Instant::now();
    loop {
        // The retried attempt ran, on the broken revision: failed again.
        if let Some((n, status)) = attempt(&api, "Build", "UnitTests")
            && n >= 2
            && status == "Failed"
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "UnitTests was not retried: {:?}",
            attempt(&api, "Build", "UnitTests")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    t.wait("Build Failed");
    // The fix is released by its own execution: let it into Build.
    api.engine(&["transition", "demo-web", "Build", "--enable"]);
    let s = t.wait("Build Succeeded");
    assert!(!s.contains("✖ disabled"), "{s}");
    // Build has nothing failed now: a retry is refused, and the Audit
    // screen (CloudTrail's LookupEvents) shows the refusal.
    t.keys("r");
    t.wait("StageNotRetryable");
    t.keys(":audit\r");
    // A row of the table (not the toast): the event and its error code.
    let audit = t.wait_until("the refused retry in the Audit screen", |s| {
        s.lines()
            .any(|l| l.contains("RetryStageExecution") && l.contains("StageNotRetryableException"))
    });
    assert!(audit.contains("Audit trail"), "{audit}");
    assert!(audit.contains("DisableStageTransition"), "{audit}");
    // The down account still says why, the other kept updating all along.
    let s = t.text();
    assert!(
        footer(&s).contains("down/us-east-1: stale: EndpointUnreachable"),
        "{s}"
    );
    t.keys("\x1b");
    t.quit();
}
