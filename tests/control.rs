//! Control from any shell: real `pipedeck` processes on one workspace.
//! One hosts the engine, others talk to it over the socket; a host killed
//! with SIGKILL leaves a store the next engine recovers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Env {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    data: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let data = tmp.path().join("data");
    Env {
        ws,
        data,
        _tmp: tmp,
    }
}

impl Env {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pipedeck"));
        c.env("PIPEDECK_DATA_DIR", &self.data)
            .env("PIPEDECK_CONFIG", self.data.join("none.toml"))
            .env("PIPEDECK_WORKSPACE", &self.ws)
            .env("USER", "alice")
            .env("PIPEDECK_EPHEMERAL_PORTS", "1")
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
}

/// A spawned pipedeck, killed (SIGTERM: it stops its engine cleanly) if a
/// test ends early, so a failing test leaves no host behind.
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

/// A process is alive if /proc has it and it is not a zombie.
fn alive(proc_dir: &Path) -> bool {
    std::fs::read_to_string(proc_dir.join("stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// The one file named `name` somewhere under `dir`.
fn glob_one(dir: &Path, name: &str) -> PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if e.file_name() == name {
                return e.path();
            }
        }
    }
    panic!("no {name} under {}", dir.display());
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    // Generous: a build and a deploy on two cores shared with other builds.
    let deadline = Instant::now() + Duration::from_secs(180);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "the hosting process did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_approval_from_a_second_terminal_lets_the_hosted_execution_proceed() {
    let e = env();
    let out = e.run(&["init", "--demo", e.ws.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Terminal 1: hosts the engine until the execution ends.
    let mut host = e.spawn(&["run", "--wait"]);
    // Terminal 2: sees the approval wait, approves it.
    wait_for("the approval to be pending", || {
        e.status_json()["pipelines"][0]["pendingApprovals"] == 1
    });
    let status = e.status_json();
    let stages = &status["states"][0]["stageStates"];
    assert_eq!(
        stages[1]["latestExecution"]["status"], "Succeeded",
        "{status}"
    );
    let approve = e.run(&[
        "approve",
        "demo-web",
        "Approve",
        "Release",
        "--summary",
        "ship it",
    ]);
    assert!(approve.status.success(), "{}", text(&approve.stderr));
    // Staging deploys (a canary), then production waits for its approval.
    wait_for("the production approval", || {
        let st = e.status_json();
        st["states"][0]["stageStates"][5]["actionStates"][0]["latestExecution"]["token"].is_string()
    });
    let prod = e.run(&["approve", "demo-web", "Approve-Prod", "Release-Prod"]);
    assert!(prod.status.success(), "{}", text(&prod.stderr));
    let code = wait_exit(&mut host);
    let mut stdout = String::new();
    std::io::Read::read_to_string(host.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(code.success(), "run --wait failed:\n{stdout}");
    assert!(stdout.contains("Succeeded"), "{stdout}");
    assert!(stdout.contains("waits for approval"), "{stdout}");
    assert!(stdout.contains("deployed"), "{stdout}");
    assert!(stdout.contains("to prod (BlueGreen)"), "{stdout}");
    // A second approval of the same action is refused, by name.
    let again = e.run(&["approve", "demo-web", "Approve", "Release"]);
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("ApprovalAlreadyCompleted"),
        "{}",
        text(&again.stderr)
    );
    // The audit trail names who approved.
    let execs = e.run(&["executions", "demo-web", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&execs.stdout).unwrap();
    assert_eq!(v[0]["status"], "Succeeded");
}

#[test]
fn a_second_approve_while_the_engine_still_runs_is_already_completed() {
    let e = env();
    assert!(
        e.run(&["init", "--demo", e.ws.to_str().unwrap()])
            .status
            .success()
    );
    let mut host = e.spawn(&["serve"]);
    wait_for("the engine socket", || {
        e.run(&["status"]).status.success()
            && text(&e.run(&["status"]).stdout).contains("engine running")
    });
    let run = e.run(&["run"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    wait_for("the approval", || {
        e.status_json()["pipelines"][0]["pendingApprovals"] == 1
    });
    assert!(
        e.run(&["approve", "demo-web", "Approve", "Release"])
            .status
            .success()
    );
    let again = e.run(&["approve", "demo-web", "Approve", "Release"]);
    assert!(text(&again.stderr).contains("ApprovalAlreadyCompleted"));
    let reject = e.run(&["reject", "demo-web", "Approve", "Release"]);
    assert!(text(&reject.stderr).contains("ApprovalAlreadyCompleted"));
    // A second host on the same workspace is refused.
    let second = e.run(&["serve"]);
    assert!(!second.status.success());
    assert!(text(&second.stderr).contains("already has an engine"));
    Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status()
        .unwrap();
    assert!(wait_exit(&mut host).success());
}

fn crash_workspace(e: &Env, gate: &Path) {
    let repo = e.ws.join("app");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(
        repo.join("buildspec.yml"),
        format!(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo before the crash\n      - for i in $(seq 1 50); do echo line $i; done\n      - while [ ! -f {} ]; do sleep 0.05; done\n      - echo after the gate\n",
            gate.display()
        ),
    )
    .unwrap();
    std::fs::write(
        e.ws.join("pipeline.json"),
        r#"{"pipeline": {"name": "p", "roleArn": "arn:aws:iam::123456789012:role/x",
  "artifactStore": {"type": "S3", "location": "b"},
  "stages": [
    {"name": "Source", "actions": [{"name": "Source",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
      "configuration": {"RepositoryName": "app", "BranchName": "main"},
      "outputArtifacts": [{"name": "Src"}]}]},
    {"name": "Build", "actions": [{"name": "Build",
      "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
      "configuration": {"ProjectName": "b"},
      "inputArtifacts": [{"name": "Src"}]}]}
  ]}}"#,
    )
    .unwrap();
    std::fs::write(
        e.ws.join("pipedeck.toml"),
        "[repositories.app]\npath = \"app\"\nbranch = \"main\"\n",
    )
    .unwrap();
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "-A"],
        vec![
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "gate build",
        ],
    ] {
        assert!(
            Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(&args)
                .status()
                .unwrap()
                .success()
        );
    }
}

#[test]
fn after_kill_9_during_a_build_the_execution_is_failed_logs_are_intact_and_retry_works() {
    let e = env();
    let gate = e._tmp.path().join("gate");
    crash_workspace(&e, &gate);
    let mut host = e.spawn(&["run"]);
    // Wait until the build has printed its lines and is held at the gate.
    wait_for("the build to reach the gate", || {
        let out = e.run(&["logs", "p", "Build", "Build"]);
        text(&out.stdout).contains("line 50")
    });
    let pgid_file = glob_one(&e.data.join("workspaces"), "pgid");
    let pid = std::fs::read_to_string(&pgid_file).unwrap();
    host.kill().unwrap(); // SIGKILL
    host.wait().unwrap();
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
    assert!(
        alive(&proc_dir),
        "the build should outlive its killed engine"
    );
    // The next engine finds a consistent state.
    let status = e.status_json();
    let exec = &status["pipelines"][0]["latestExecution"];
    assert_eq!(exec["status"], "Failed", "{status}");
    assert_eq!(exec["statusSummary"], "interrupted: engine stopped");
    let build = &status["states"][0]["stageStates"][1];
    assert_eq!(build["latestExecution"]["status"], "Failed");
    let action = &build["actionStates"][0]["latestExecution"];
    assert_eq!(action["status"], "Failed");
    assert_eq!(action["summary"], "interrupted: engine stopped");
    // Every line written before the kill is there.
    let logs = text(&e.run(&["logs", "p", "Build", "Build"]).stdout);
    assert!(logs.contains("before the crash"), "{logs}");
    assert!(logs.contains("line 50"), "{logs}");
    // The orphaned build was killed by the new engine.
    wait_for("the orphaned build to be killed", || !alive(&proc_dir));
    // A stage retry works on the recovered execution.
    std::fs::write(&gate, "open").unwrap();
    let retry = e.run(&["retry", "p", "Build"]);
    assert!(
        retry.status.success(),
        "{}\n{}",
        text(&retry.stdout),
        text(&retry.stderr)
    );
    let status = e.status_json();
    assert_eq!(
        status["pipelines"][0]["latestExecution"]["status"], "Succeeded",
        "{status}"
    );
    let logs = text(&e.run(&["logs", "p", "Build", "Build"]).stdout);
    assert!(logs.contains("after the gate"), "{logs}");
}

#[test]
fn errors_name_the_aws_reason_and_exit_non_zero() {
    let e = env();
    assert!(
        e.run(&["init", "--demo", e.ws.to_str().unwrap()])
            .status
            .success()
    );
    let cases: &[(&[&str], &str)] = &[
        (&["retry", "demo-web", "Build"], "StageNotRetryable"),
        (&["retry", "demo-web", "Nope"], "StageNotFound"),
        (
            &["approve", "nope", "Approve", "Release"],
            "PipelineNotFound",
        ),
        (
            &["approve", "demo-web", "Approve", "Release"],
            "InvalidApprovalToken",
        ),
        (&["stop", "demo-web"], "PipelineExecutionNotStoppable"),
        (&["rollback", "demo-web", "Source"], "UnableToRollbackStage"),
        (
            &["transition", "demo-web", "Build", "--disable", "bad#reason"],
            "ValidationException",
        ),
        (&["run", "--var", "Nope=1"], "ValidationException"),
    ];
    for (args, code) in cases {
        let out = e.run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            text(&out.stderr).contains(code),
            "{args:?}: expected {code}, got {}",
            text(&out.stderr)
        );
    }
    // --json on a mutation: the error as JSON, still exit 1.
    let out = e.run(&["retry", "demo-web", "Build", "--json"]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "StageNotRetryable", "{v}");
    let out = e.run(&["approve", "demo-web", "Approve", "Release", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "InvalidApprovalToken", "{v}");
    // Near-miss names get a "did you mean".
    for (args, hint) in [
        (
            &["retry", "demo-web", "build"][..],
            "did you mean stage Build?",
        ),
        (
            &["retry", "demo-wep", "Build"][..],
            "did you mean pipeline demo-web?",
        ),
        (
            &["logs", "demo-web", "Build", "UnitTest"][..],
            "did you mean action UnitTests",
        ),
    ] {
        let out = e.run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            text(&out.stderr).contains(hint),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Not a workspace: the message says what is wrong and how to fix it.
    let out = e
        .cmd(&["status"])
        .env("PIPEDECK_WORKSPACE", e._tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a workspace"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn demo_break_makes_the_unit_tests_fail_and_demo_fix_recovers_with_a_new_run() {
    let e = env();
    assert!(
        e.run(&["init", "--demo", e.ws.to_str().unwrap()])
            .status
            .success()
    );
    assert!(e.run(&["demo", "break"]).status.success());
    let run = e.run(&["run", "--wait"]);
    assert!(!run.status.success());
    let out = text(&run.stdout);
    assert!(out.contains("UnitTests"), "{out}");
    assert!(out.contains("3 failed"), "{out}");
    let status = e.status_json();
    assert_eq!(
        status["pipelines"][0]["latestExecution"]["status"],
        "Failed"
    );
    let failing = &status["states"][0]["stageStates"][1]["actionStates"][1]["latestExecution"];
    assert_eq!(failing["testReport"]["failed"], 3, "{failing}");
    // Package (runOrder 2) never started.
    assert!(status["states"][0]["stageStates"][1]["actionStates"][2]["latestExecution"].is_null());
    assert!(e.run(&["demo", "fix"]).status.success());
    // Execution ids are accepted by a unique prefix (the TUI shows 8).
    let id = status["pipelines"][0]["latestExecution"]["pipelineExecutionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let logs = e.run(&[
        "logs",
        "demo-web",
        "Build",
        "UnitTests",
        "--execution",
        &id[..8],
    ]);
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    // A retry re-runs the execution's revision (as on AWS): it says so,
    // and with --wait it exits non-zero when that execution fails again.
    let retry = e.run(&[
        "retry",
        "demo-web",
        "Build",
        "--execution",
        &id[..8],
        "--wait",
    ]);
    let out = text(&retry.stdout);
    assert!(!retry.status.success(), "{out}");
    assert!(
        out.contains("a retry re-runs the execution's revision"),
        "{out}"
    );
    assert!(out.contains("`pipedeck run` releases it"), "{out}");
    let mut host = e.spawn(&["run", "--wait"]);
    wait_for("the approval after the fix", || {
        e.status_json()["pipelines"][0]["pendingApprovals"] == 1
    });
    let status = e.status_json();
    assert_eq!(
        status["states"][0]["stageStates"][1]["latestExecution"]["status"],
        "Succeeded"
    );
    let reject = e.run(&[
        "reject",
        "demo-web",
        "Approve",
        "Release",
        "--summary",
        "not on a Friday",
    ]);
    assert!(reject.status.success(), "{}", text(&reject.stderr));
    // Reject counts as a failure: `run --wait` exits 1.
    assert!(!wait_exit(&mut host).success());
    let status = e.status_json();
    let exec = &status["pipelines"][0]["latestExecution"];
    assert_eq!(exec["status"], "Failed");
    let approval = &status["states"][0]["stageStates"][3]["actionStates"][0]["latestExecution"];
    assert_eq!(approval["approval"]["result"]["summary"], "not on a Friday");
    // Who approved comes from the socket peer's uid, not from `USER`.
    let me = pipedeck::control::user_name(rustix::process::getuid().as_raw());
    assert_eq!(approval["approval"]["result"]["by"], me.as_str());
}

#[test]
fn logs_follow_prints_a_running_build_to_its_end() {
    let e = env();
    let gate = e._tmp.path().join("gate");
    crash_workspace(&e, &gate);
    let mut host = e.spawn(&["serve"]);
    wait_for("the engine", || {
        text(&e.run(&["status"]).stdout).contains("engine running")
    });
    assert!(e.run(&["run"]).status.success());
    wait_for("the build to start", || {
        text(&e.run(&["logs", "p", "Build", "Build"]).stdout).contains("line 50")
    });
    let follower = e
        .cmd(&["logs", "p", "Build", "Build", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&gate, "open").unwrap();
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success());
    let log = text(&out.stdout);
    assert!(log.contains("before the crash"), "{log}");
    assert!(log.contains("after the gate"), "{log}");
    assert!(
        log.contains("[Container] Phase complete: BUILD State: SUCCEEDED"),
        "{log}"
    );
    Command::new("kill")
        .args(["-TERM", &host.id().to_string()])
        .status()
        .unwrap();
    assert!(wait_exit(&mut host).success());
}

#[test]
fn a_release_that_answers_5xx_is_rolled_back_by_the_staging_alarm() {
    let e = env();
    assert!(
        e.run(&["init", "--demo", e.ws.to_str().unwrap()])
            .status
            .success()
    );
    // A good release reaches staging first (production is refused).
    let mut host = e.spawn(&["run", "--wait"]);
    wait_for("the staging approval", || {
        e.status_json()["pipelines"][0]["pendingApprovals"] == 1
    });
    assert!(
        e.run(&["approve", "demo-web", "Approve", "Release"])
            .status
            .success()
    );
    wait_for("the production approval", || {
        let st = e.status_json();
        st["states"][0]["stageStates"][5]["actionStates"][0]["latestExecution"]["token"].is_string()
    });
    assert!(
        e.run(&["reject", "demo-web", "Approve-Prod", "Release-Prod"])
            .status
            .success()
    );
    assert!(!wait_exit(&mut host).success());
    // Then a release whose tests pass but whose front page answers 500.
    assert!(e.run(&["demo", "break", "--5xx"]).status.success());
    let mut host = e.spawn(&["run", "--wait"]);
    wait_for("the staging approval", || {
        e.status_json()["pipelines"][0]["pendingApprovals"] == 1
    });
    // The tests passed and dev took the release.
    let st = e.status_json();
    assert_eq!(
        st["states"][0]["stageStates"][2]["latestExecution"]["status"],
        "Succeeded"
    );
    assert!(
        e.run(&["approve", "demo-web", "Approve", "Release"])
            .status
            .success()
    );
    assert!(!wait_exit(&mut host).success(), "the execution must fail");
    let st = e.status_json();
    let staging = &st["states"][0]["stageStates"][4]["actionStates"][0]["latestExecution"];
    assert_eq!(staging["status"], "Failed", "{staging}");
    let why = staging["summary"].as_str().unwrap();
    assert!(
        why.contains("alarm staging-5xx-rate") && why.contains("threshold 5%"),
        "{why}"
    );
    // The diagnosis names the alarm.
    let d = e.run(&["diagnose", "demo-web"]);
    assert!(
        text(&d.stdout).contains("Alarm staging-5xx-rate fired in staging"),
        "{}",
        text(&d.stdout)
    );
    // Staging's remembered release is still the good one: a new engine
    // brings it back, not the release that failed.
    let envs: serde_json::Value =
        serde_json::from_slice(&e.run(&["envs", "--json"]).stdout).unwrap();
    let staging_env = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "staging")
        .unwrap();
    let bad = staging["externalExecutionId"].as_str().unwrap();
    assert_ne!(staging_env["release"]["id"], bad, "{staging_env}");
}

#[test]
fn without_a_terminal_pipedeck_workspace_prints_that_workspaces_status() {
    let e = env();
    assert!(
        e.run(&["init", "--demo", e.ws.to_str().unwrap()])
            .status
            .success()
    );
    // stdin is /dev/null and stdout a pipe: no TUI.
    let out = e
        .cmd(&["--workspace", e.ws.to_str().unwrap()])
        .env_remove("PIPEDECK_WORKSPACE")
        .output()
        .unwrap();
    let o = text(&out.stdout);
    assert!(out.status.success(), "{o}\n{}", text(&out.stderr));
    assert!(!o.contains("not built yet"), "{o}");
    assert!(!o.contains("assets/demo/pipeline.json"), "{o}");
    let status = text(&e.run(&["status"]).stdout);
    assert_eq!(o, status);
}

#[test]
fn init_demo_picks_free_ports_and_prints_them_and_the_whole_pipeline() {
    let e = env();
    // Hold dev's shipped port (or find it already taken).
    let _held = std::net::TcpListener::bind(("127.0.0.1", 8081));
    let out = e.run(&["init", "--demo", e.ws.to_str().unwrap()]);
    let o = text(&out.stdout);
    assert!(out.status.success(), "{o}");
    assert!(o.contains("→ Staging → Approve-Prod → Prod"), "{o}");
    let line = o.lines().find(|l| l.contains("environments on")).unwrap();
    let dev: u16 = line
        .split("dev :")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(dev, 8081, "{o}");
    let toml = std::fs::read_to_string(e.ws.join("pipedeck.toml")).unwrap();
    assert!(toml.contains(&format!("port = {dev}\n")), "{toml}");
    let json = std::fs::read_to_string(e.ws.join("pipeline.json")).unwrap();
    assert!(json.contains(&format!("127.0.0.1:{dev}/")), "{json}");
    assert!(std::net::TcpListener::bind(("127.0.0.1", dev)).is_ok());
}

#[test]
fn renaming_the_workspace_keeps_its_state_and_history() {
    let e = env();
    assert!(
        e.run(&["init", "--demo", e.ws.to_str().unwrap()])
            .status
            .success()
    );
    let before = pipedeck::config::workspace::Workspace::load(&e.ws, &e.data).unwrap();
    std::fs::create_dir_all(&before.state_dir).unwrap();
    let toml = std::fs::read_to_string(e.ws.join("pipedeck.toml")).unwrap();
    std::fs::write(
        e.ws.join("pipedeck.toml"),
        toml.replace("name = \"demo\"", "name = \"renamed\""),
    )
    .unwrap();
    let after = pipedeck::config::workspace::Workspace::load(&e.ws, &e.data).unwrap();
    assert_eq!(after.name, "renamed");
    assert_eq!(after.state_dir, before.state_dir);
}
