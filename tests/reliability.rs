//! Nothing lost, nobody forged: real `pipedeck` processes driven from
//! outside, as an attacker or a clumsy operator would. Tests that need root
//! (a tmpfs, a second uid) print why they are skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Env {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    data: PathBuf,
    config: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    env_in(tmp)
}

fn env_in(tmp: tempfile::TempDir) -> Env {
    let ws = tmp.path().join("ws");
    let data = tmp.path().join("data");
    let config = tmp.path().join("config.toml");
    Env {
        ws,
        data,
        config,
        _tmp: tmp,
    }
}

impl Env {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pipedeck"));
        c.env("PIPEDECK_DATA_DIR", &self.data)
            .env("PIPEDECK_CONFIG", &self.config)
            .env("PIPEDECK_WORKSPACE", &self.ws)
            .env("USER", "alice")
            .env_remove("NO_COLOR")
            .args(args)
            .stdin(Stdio::null());
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    fn spawn(&self, args: &[&str]) -> Host {
        Host(
            self.cmd(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        )
    }
    fn status_json(&self) -> serde_json::Value {
        let out = self.run(&["status", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
    fn serve(&self, extra: &[&str]) -> Host {
        let mut args = vec!["serve"];
        args.extend_from_slice(extra);
        let host = self.spawn(&args);
        wait_for("the engine socket", || {
            glob(&self.data, "engine.sock").is_some()
                && text(&self.run(&["status"]).stdout).contains("engine running")
        });
        host
    }
    fn socket(&self) -> PathBuf {
        glob(&self.data, "engine.sock").unwrap()
    }
}

/// A spawned pipedeck, stopped if a test ends early.
struct Host(Child);

impl std::ops::Deref for Host {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Host {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The first file named `name` under `dir`.
fn glob(dir: &Path, name: &str) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if e.file_name() == name {
                return Some(e.path());
            }
        }
    }
    None
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn git(repo: &Path, args: &[&str]) {
    let st = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@e"])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

const PIPELINE: &str = r#"{"pipeline": {"name": "p", "roleArn": "arn:aws:iam::123456789012:role/x",
  "artifactStore": {"type": "S3", "location": "b"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Source",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
      "configuration": {"RepositoryName": "app", "BranchName": "main"},
      "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Build", "actions": [{"name": "Build",
      "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
      "configuration": {"ProjectName": "b"__EXTRA__},
      "inputArtifacts": [{"name": "Src"}]}]}
  ]}}"#;

/// A workspace with pipeline `p` (Source → Build) building `buildspec`.
fn workspace(e: &Env, buildspec: &str, extra_config: &str, toml: &str) {
    let repo = e.ws.join("app");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("buildspec.yml"), buildspec).unwrap();
    std::fs::write(
        e.ws.join("pipeline.json"),
        PIPELINE.replace("__EXTRA__", extra_config),
    )
    .unwrap();
    std::fs::write(
        e.ws.join("pipedeck.toml"),
        format!("[repositories.app]\npath = \"app\"\nbranch = \"main\"\n{toml}"),
    )
    .unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "initial"]);
}

const QUICK: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built\n";

/// One raw request on the socket, as any same-uid program could send it.
fn raw_call(socket: &Path, envelope: serde_json::Value) -> serde_json::Value {
    let mut s = UnixStream::connect(socket).unwrap();
    let mut line = serde_json::json!({ "call": envelope }).to_string();
    line.push('\n');
    s.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap()
}

fn my_user_name() -> String {
    pipedeck::control::user_name(rustix::process::getuid().as_raw())
}

#[test]
fn a_socket_caller_cannot_forge_who_it_is_nor_speak_as_the_engine() {
    let e = env();
    workspace(&e, QUICK, "", "");
    let _host = e.serve(&[]);
    let sock = e.socket();
    let disable = serde_json::json!({"op": "disableStageTransition", "pipelineName": "p",
        "stageName": "Build", "reason": "forged"});
    // Claiming the engine's user agent: refused outright.
    let r = raw_call(
        &sock,
        serde_json::json!({"identity": "forged-alice", "userAgent": "engine", "request": disable}),
    );
    assert_eq!(r["err"]["code"], "AccessDeniedException", "{r}");
    // Claiming another identity: the engine records the peer's user.
    let r = raw_call(
        &sock,
        serde_json::json!({"identity": "forged-alice", "userAgent": "pipedeck-cli", "request": disable}),
    );
    assert!(r.get("ok").is_some(), "{r}");
    let r = raw_call(
        &sock,
        serde_json::json!({"identity": "x", "userAgent": "pipedeck-cli",
            "request": {"op": "lookupEvents", "maxResults": 50}}),
    );
    let events = r["ok"]["events"].as_array().unwrap().clone();
    let me = my_user_name();
    let mut forged = 0;
    for ev in &events {
        let id = &ev["userIdentity"];
        if id["principalId"] == "forged-alice"
            || ev["userAgent"] == "engine" && ev["eventName"] == "DisableStageTransition"
        {
            forged += 1;
        }
    }
    println!("forged identities accepted: {forged} of 2");
    assert_eq!(forged, 0, "{events:#?}");
    let disabled = events
        .iter()
        .find(|ev| ev["eventName"] == "DisableStageTransition")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(disabled["userIdentity"]["type"], "IAMUser");
    assert_eq!(disabled["userIdentity"]["principalId"], me.as_str());
    assert_eq!(disabled["userIdentity"]["userName"], me.as_str());
    assert!(disabled["userIdentity"]["invokedBy"].is_null());
}

fn mutations() -> Vec<Vec<&'static str>> {
    vec![
        vec!["transition", "p", "Build", "--disable", "no"],
        vec!["run"],
        vec!["stop", "p"],
        vec!["approve", "p", "Build", "Build"],
        vec!["retry", "p", "Build"],
    ]
}

#[test]
fn read_only_refuses_every_mutation_from_the_flag_the_config_and_a_read_only_host() {
    let e = env();
    workspace(&e, QUICK, "", "");
    let mut accepted = 0;
    let mut tried = 0;
    // The flag, with and without an engine running.
    for args in mutations() {
        let mut a = vec!["--readonly"];
        a.extend(args.iter());
        let out = e.run(&a);
        tried += 1;
        if out.status.success() {
            accepted += 1;
        }
        assert!(
            text(&out.stderr).contains("read-only mode"),
            "{a:?}: {}",
            text(&out.stderr)
        );
    }
    // The config.
    std::fs::write(&e.config, "readonly = true\n").unwrap();
    for args in mutations() {
        let out = e.run(&args);
        tried += 1;
        if out.status.success() {
            accepted += 1;
        }
        assert!(
            text(&out.stderr).contains("read-only mode"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Reads still work read-only.
    let st = e.run(&["status", "--json"]);
    assert!(st.status.success(), "{}", text(&st.stderr));
    std::fs::remove_file(&e.config).unwrap();
    // An engine hosted read-only refuses clients that are not.
    let _host = e.serve(&["--readonly"]);
    for args in mutations() {
        let out = e.run(&args);
        tried += 1;
        if out.status.success() {
            accepted += 1;
        }
        assert!(
            text(&out.stderr).contains("read-only"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let r = raw_call(
        &e.socket(),
        serde_json::json!({"identity": "x", "userAgent": "script", "request":
            {"op": "startPipelineExecution", "pipelineName": "p"}}),
    );
    tried += 1;
    if r.get("ok").is_some() {
        accepted += 1;
    }
    println!("mutations accepted in read-only: {accepted} of {tried}");
    assert_eq!(accepted, 0);
    let st = e.status_json();
    assert!(
        st["pipelines"][0]["latestExecution"].is_null(),
        "nothing ran: {st}"
    );
}

#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    let e = env();
    workspace(&e, QUICK, "", "");
    let mut child = e
        .cmd(&["status", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close our end before it writes (as `| head -c 0` would).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !text(&out.stderr).contains("panicked") && !text(&out.stderr).contains("Broken pipe"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn errors_to_a_pipe_or_with_no_color_carry_no_ansi_codes() {
    let e = env();
    // No workspace here: the command fails with an error report.
    std::fs::create_dir_all(&e.ws).unwrap();
    for no_color in [false, true] {
        let mut c = e.cmd(&["status"]);
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let out = c.output().unwrap();
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(!err.is_empty());
        assert!(!err.contains('\u{1b}'), "ANSI in {err:?}");
    }
}

/// Runs `f` with a user created for the test, removed afterwards.
fn with_second_user(f: impl FnOnce(&str)) {
    if !is_root() {
        println!("skipped: creating a second user needs root");
        return;
    }
    let name = format!("pdtest{}", std::process::id() % 100000);
    let made = Command::new("useradd")
        .args(["-M", "-N", "-s", "/bin/sh", &name])
        .status();
    if !matches!(made, Ok(s) if s.success()) {
        println!("skipped: useradd is not available");
        return;
    }
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("userdel").arg(&self.0).status();
        }
    }
    let _gone = Gone(name.clone());
    f(&name);
}

#[test]
fn another_users_cli_is_told_it_may_not_use_the_workspace_and_does_not_panic() {
    with_second_user(|user| {
        let tmp = tempfile::tempdir().unwrap();
        // The other user must be able to reach the binary and the workspace.
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let e = env_in(tmp);
        workspace(&e, QUICK, "", "");
        let st = e.run(&["status"]);
        assert!(st.status.success(), "{}", text(&st.stderr));
        let _host = e.serve(&[]);
        for args in [vec!["approve", "p", "Build", "Build"], vec!["status"]] {
            let out = Command::new("setpriv")
                .args([
                    "--reuid",
                    user,
                    "--regid",
                    "nogroup",
                    "--clear-groups",
                    "--",
                ])
                .arg(env!("CARGO_BIN_EXE_pipedeck"))
                .args(&args)
                .env("PIPEDECK_DATA_DIR", &e.data)
                .env("PIPEDECK_CONFIG", &e.config)
                .env("PIPEDECK_WORKSPACE", &e.ws)
                .env("HOME", "/nonexistent")
                .env("USER", user)
                .output()
                .unwrap();
            let err = text(&out.stderr);
            assert!(!out.status.success(), "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert!(err.contains("may not use"), "{args:?}: {err}");
        }
    });
}

/// Processes whose command line contains `needle`: (pid, state, ppid).
fn procs_with(needle: &str) -> Vec<(u32, char, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut f = rest.split(' ');
        let state = f.next().unwrap().chars().next().unwrap();
        let ppid = f.next().unwrap().parse().unwrap();
        // A zombie has no command line: `zombies_of` finds them by parent.
        let zombie_of = needle
            .strip_prefix("zombie-of:")
            .and_then(|p| p.parse::<u32>().ok());
        if zombie_of.map_or(cmd.contains(needle), |p| state == 'Z' && ppid == p) {
            out.push((pid, state, ppid));
        }
    }
    out
}

fn daemon_buildspec(tag: u32, gate: &Path) -> String {
    format!(
        "version: 0.2\nphases:\n  install:\n    commands:\n      - nohup sleep {a} >/dev/null 2>&1 &\n      - setsid sleep {b} >/dev/null 2>&1 &\n      - ( setsid sleep {c} >/dev/null 2>&1 & )\n  build:\n    commands:\n      - for i in $(seq 1 100); do echo line $i; done\n      - echo daemons started\n      - while [ ! -f {g} ]; do sleep 0.05; done\n      - echo after the gate\n",
        a = tag * 10 + 1,
        b = tag * 10 + 2,
        c = tag * 10 + 3,
        g = gate.display()
    )
}

#[test]
fn background_daemons_end_with_their_build_and_across_kill_9_restarts() {
    let e = env();
    let tag = 90_000 + std::process::id() % 9_000;
    let needle = format!("sleep {tag}");
    let gate = e._tmp.path().join("gate");
    workspace(&e, &daemon_buildspec(tag, &gate), "", "");
    let mut left = 0;
    let mut lost_lines = 0;
    let cycles = 3;
    for cycle in 0..cycles {
        let mut host = e.spawn(&["run"]);
        wait_for("the daemons", || {
            procs_with(&needle).iter().filter(|p| p.1 != 'Z').count() == 3
        });
        // Double-forked away from its shell: re-parented to the engine,
        // the child subreaper, not to init.
        let c = format!("sleep {}", tag * 10 + 3);
        let orphan = procs_with(&c);
        assert_eq!(orphan.len(), 1, "{orphan:?}");
        assert_eq!(orphan[0].2, host.id(), "cycle {cycle}: {orphan:?}");
        wait_for("the log to show the daemons", || {
            text(&e.run(&["logs", "p", "Build", "Build"]).stdout).contains("daemons started")
        });
        let before = text(&e.run(&["logs", "p", "Build", "Build"]).stdout);
        host.kill().unwrap();
        host.wait().unwrap();
        // The next engine's restart sweep finds them, leader dead or not.
        let st = e.run(&["status"]);
        assert!(st.status.success(), "{}", text(&st.stderr));
        let after = text(&e.run(&["logs", "p", "Build", "Build"]).stdout);
        lost_lines += before.lines().filter(|l| !after.contains(l)).count();
        std::thread::sleep(Duration::from_millis(500));
        let alive: Vec<_> = procs_with(&needle)
            .into_iter()
            .filter(|p| p.1 != 'Z')
            .collect();
        left += alive.len();
        for (pid, _, _) in &alive {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
    // A build that ends normally takes its daemons with it, and the
    // engine reaps the ones re-parented to it.
    std::fs::write(&gate, "open").unwrap();
    let host = e.serve(&[]);
    let run = e.run(&["run", "--wait"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    // The engine reaps every second: give it a few under load.
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline
        && (!procs_with(&needle).is_empty()
            || !procs_with(&format!("zombie-of:{}", host.id())).is_empty())
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let rest: Vec<_> = procs_with(&needle);
    let zombies: Vec<_> = procs_with(&format!("zombie-of:{}", host.id()));
    left += rest.len();
    println!(
        "escaped processes left: {left} after {cycles} kill -9 cycles and a normal end; zombies of the engine: {}",
        zombies.len()
    );
    println!("log lines lost across {cycles} kill -9 cycles: {lost_lines}");
    assert_eq!(lost_lines, 0);
    assert!(rest.is_empty(), "{rest:?}");
    assert!(zombies.is_empty(), "{zombies:?}");
    assert_eq!(left, 0);
}

/// A tmpfs of `size` mounted on `dir` for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        if !is_root() {
            println!("skipped: mounting a small filesystem needs root");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status();
        if !matches!(st, Ok(s) if s.success()) {
            println!("skipped: cannot mount a tmpfs here");
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }

    /// Fills the filesystem up; returns the filler's path.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        // Whatever is left in smaller pieces.
        let small = vec![0u8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn disk_full_fails_the_execution_says_so_and_loses_nothing_once_space_is_back() {
    let e = env();
    let Some(fs) = Tmpfs::mount(&e.data, "24m") else {
        return;
    };
    let gate = e._tmp.path().join("gate");
    let buildspec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - for i in $(seq 1 200); do echo early line $i; done\n      - while [ ! -f {} ]; do sleep 0.05; done\n      - for i in $(seq 1 20000); do echo late line $i with some padding to fill a disk quickly; done\n",
        gate.display()
    );
    workspace(&e, &buildspec, "", "");
    let mut host = e.serve(&[]);
    let run = e.run(&["run", "--json"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let id =
        serde_json::from_slice::<serde_json::Value>(&run.stdout).unwrap()["pipelineExecutionId"]
            .as_str()
            .unwrap()
            .to_owned();
    wait_for("the early lines", || {
        text(&e.run(&["logs", "p", "Build", "Build"]).stdout).contains("early line 200")
    });
    let before = text(&e.run(&["logs", "p", "Build", "Build"]).stdout);
    let filler = fs.fill();
    std::fs::write(&gate, "open").unwrap();
    wait_for("the execution to end", || {
        e.status_json()["pipelines"][0]["latestExecution"]["status"] != "InProgress"
    });
    let st = e.status_json();
    let exec = &st["pipelines"][0]["latestExecution"];
    assert_eq!(exec["pipelineExecutionId"], id.as_str());
    assert_eq!(exec["status"], "Failed", "{st}");
    let summary = exec["statusSummary"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let action = &st["states"][0]["stageStates"][1]["actionStates"][0]["latestExecution"];
    let said = format!("{summary} {}", action["summary"]);
    assert!(said.contains("disk full"), "{st}");
    // A second execution on the full disk: refused or failed, and it says why.
    let second = e.run(&["run", "--wait"]);
    assert!(!second.status.success());
    let all = format!("{}{}", text(&second.stdout), text(&second.stderr));
    assert!(all.contains("disk full"), "{all}");
    let status = text(&e.run(&["status"]).stdout);
    println!("status while full:\n{status}");
    // Space comes back: the engine records what it could not.
    std::fs::remove_file(&filler).unwrap();
    wait_for("the store to take writes again", || {
        e.status_json().get("storeProblem").is_none()
    });
    let reported = e.status_json();
    // Even a kill -9 now loses nothing: a fresh engine reads the same.
    host.kill().unwrap();
    host.wait().unwrap();
    let after = e.status_json();
    let latest = |v: &serde_json::Value| {
        let x = &v["pipelines"][0]["latestExecution"];
        (x["pipelineExecutionId"].clone(), x["status"].clone())
    };
    assert_eq!(latest(&after), latest(&reported), "{after}\n{reported}");
    let execs: serde_json::Value =
        serde_json::from_slice(&e.run(&["executions", "p", "--json"]).stdout).unwrap();
    let first = execs
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["pipelineExecutionId"] == id.as_str())
        .unwrap_or_else(|| panic!("the failed execution is in the store: {execs}"));
    assert_eq!(first["status"], "Failed", "{execs}");
    // Every line reported before the disk filled is kept, in order.
    let log = text(
        &e.run(&["logs", "p", "Build", "Build", "--execution", &id])
            .stdout,
    );
    let lost = before
        .lines()
        .filter(|l| l.contains("early line"))
        .filter(|l| !log.contains(l))
        .count();
    println!("log lines lost across the disk-full cycle: {lost}");
    assert_eq!(lost, 0, "{log}");
}

#[test]
fn a_host_whose_execution_ended_stays_up_while_another_client_waits() {
    let e = env();
    let spec =
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 2\n      - echo built\n";
    workspace(&e, spec, "", "");
    let mut first = e.spawn(&["run", "--wait"]);
    wait_for("the first host's socket", || {
        glob(&e.data, "engine.sock").is_some()
            && text(&e.run(&["status"]).stdout).contains("engine running")
    });
    let second = e.spawn(&["run", "--wait"]);
    let second = second_output(second);
    let first_st = first.wait().unwrap();
    let mut first_err = String::new();
    std::io::Read::read_to_string(first.stderr.as_mut().unwrap(), &mut first_err).unwrap();
    assert!(first_st.success(), "{first_err}");
    assert!(
        second.status.success(),
        "the second client's execution: {}\n{}",
        text(&second.stdout),
        text(&second.stderr)
    );
    assert!(text(&second.stdout).contains("Succeeded"));
    assert!(first_err.contains("stays up"), "{first_err}");
}

fn second_output(mut h: Host) -> Output {
    let child = std::mem::replace(&mut h.0, Command::new("true").spawn().unwrap());
    child.wait_with_output().unwrap()
}

#[test]
fn validate_refuses_a_provider_near_miss_devices_and_pipes_with_a_message() {
    let e = env();
    workspace(&e, QUICK, "", "");
    let bad = std::fs::read_to_string(e.ws.join("pipeline.json"))
        .unwrap()
        .replace("\"CodeBuild\"", "\"CodeBiuld\"");
    let f = e._tmp.path().join("typo.json");
    std::fs::write(&f, bad).unwrap();
    let out = e.run(&["validate", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("did you mean `CodeBuild`?"),
        "{}",
        text(&out.stdout)
    );
    // /dev/zero: read up to the cap, not without limit.
    let started = Instant::now();
    let out = e.run(&["validate", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(1));
    let said = text(&out.stdout);
    assert!(said.contains("character device"), "{said}");
    assert!(said.contains("16777216"), "{said}");
    assert!(!said.contains("memory"), "{said}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // A pipe that never ends.
    let mut v = e
        .cmd(&["validate", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = v.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b'a'; 1 << 16];
        while w.write_all(&chunk).is_ok() {}
    });
    let out = v.wait_with_output().unwrap();
    feeder.join().unwrap();
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("a pipe"), "{said}");
}

#[test]
fn a_buildspec_override_is_read_inside_the_source_artifact_only() {
    let e = env();
    let evil = e._tmp.path().join("evil.yml");
    std::fs::write(
        &evil,
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo EVIL RAN\n",
    )
    .unwrap();
    let extra = format!(r#", "BuildspecOverride": "{}""#, evil.display());
    workspace(&e, QUICK, &extra, "");
    let run = e.run(&["run", "--wait"]);
    let all = format!("{}{}", text(&run.stdout), text(&run.stderr));
    assert!(!run.status.success(), "{all}");
    let logs = text(&e.run(&["logs", "p", "Build", "Build"]).stdout);
    assert!(!logs.contains("EVIL RAN"), "{logs}");
    // Climbing out is refused by name.
    let e2 = env();
    std::fs::write(
        e2._tmp.path().join("evil.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo EVIL RAN\n",
    )
    .unwrap();
    workspace(
        &e2,
        QUICK,
        r#", "BuildspecOverride": "../../../evil.yml""#,
        "",
    );
    let run = e2.run(&["run", "--wait"]);
    assert!(!run.status.success());
    let st = e2.status_json();
    let action = &st["states"][0]["stageStates"][1]["actionStates"][0]["latestExecution"];
    assert!(
        action["summary"]
            .as_str()
            .unwrap_or("")
            .contains("leads out"),
        "{st}"
    );
    let logs = text(&e2.run(&["logs", "p", "Build", "Build"]).stdout);
    assert!(!logs.contains("EVIL RAN"), "{logs}");
}

const TOKEN: &str = "Zq9TOKENvalue-0123456789";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----";

fn secret_workspace(e: &Env, commands: &str) {
    let secrets = e._tmp.path().join("secrets.toml");
    std::fs::write(
        &secrets,
        format!("\"/app/token\" = \"{TOKEN}\"\n\"/app/key\" = \"\"\"\n{PEM}\"\"\"\n"),
    )
    .unwrap();
    let spec = format!(
        "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /app/token\n    KEY: /app/key\n  exported-variables: [COPY]\nphases:\n  build:\n    commands:\n{commands}"
    );
    workspace(
        e,
        &spec,
        r#", "namespace": "B""#,
        &format!("[secrets]\nfile = \"{}\"\n", secrets.display()),
    );
}

/// Every byte the workspace's state dir holds (store, WAL, logs).
fn stored_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend(b);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    memchr::memmem::find(hay, needle.as_bytes()).is_some()
}

#[test]
fn secrets_are_masked_line_by_line_across_cuts_and_wherever_a_value_is_kept() {
    let e = env();
    secret_workspace(
        &e,
        "      - echo \"$KEY\"\n      - export COPY=$TOKEN\n      - for i in $(seq 1 120000); do printf '....%s' \"$TOKEN\"; done; echo\n      - echo \"plain $TOKEN end\"\n",
    );
    let host = e.serve(&[]);
    let run = e.run(&["run", "--wait", "--json"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let json = text(&run.stdout);
    let log = text(&e.run(&["logs", "p", "Build", "Build"]).stdout);
    let id = e.status_json()["pipelines"][0]["latestExecution"]["pipelineExecutionId"].clone();
    let r = raw_call(
        &e.socket(),
        serde_json::json!({"identity": "x", "userAgent": "test", "request":
            {"op": "listActionExecutions", "pipelineName": "p", "pipelineExecutionId": id}}),
    );
    let actions = r.to_string();
    drop(host);
    let stored = stored_bytes(&e.data);
    let mut forms = vec![];
    // Fragments only the token holds: none may show, whole or cut.
    let fragments = ["Zq9T", "6789", &TOKEN[6..16]];
    let checks: Vec<(&str, bool)> = vec![
        (
            "each line of a multi-line secret",
            PEM.lines().all(|l| !log.contains(l)),
        ),
        (
            "a long line cut into pieces",
            fragments.iter().all(|f| !log.contains(f)) && log.contains("....***"),
        ),
        ("a plain echo", log.contains("plain *** end")),
        (
            "an exported copy (outputVariables)",
            !actions.contains(TOKEN) && actions.contains("COPY"),
        ),
        ("run --json", !json.contains(TOKEN)),
        (
            "the state store and logs on disk",
            !contains(&stored, TOKEN) && PEM.lines().all(|l| !contains(&stored, l)),
        ),
    ];
    for (what, ok) in &checks {
        println!("masked: {what}: {ok}");
        if *ok {
            forms.push(*what);
        }
    }
    println!("secret forms masked: {} of {}", forms.len(), checks.len());
    assert_eq!(forms.len(), checks.len(), "{checks:?}\n{actions}");
    // A failure summary naming the secret is masked too.
    let e2 = env();
    secret_workspace(&e2, &format!("      - \"false {TOKEN}\"\n"));
    let run = e2.run(&["run", "--wait"]);
    assert!(!run.status.success());
    let st = e2.status_json().to_string();
    assert!(st.contains("false ***"), "{st}");
    assert!(!st.contains(TOKEN), "{st}");
    // (The source artifact holds the buildspec, which names the token: the
    // repository's own content, kept as it is. The store and logs do not.)
    let kept = stored_bytes_but(&e2.data, "artifacts");
    assert!(!contains(&kept, TOKEN));
}

fn stored_bytes_but(dir: &Path, skip: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if e.file_name() != skip {
                    stack.push(p);
                }
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend(b);
            }
        }
    }
    out
}
