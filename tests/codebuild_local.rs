//! The local CodeBuild runner against reference §3, one test per behaviour.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pipedeck::model::buildspec::parse_str;
use pipedeck::providers::codebuild_local::{BuildReport, BuildRequest, Status, run};

struct Run {
    report: BuildReport,
    log: Vec<String>,
    dir: tempfile::TempDir,
}

impl Run {
    fn has(&self, line: &str) -> bool {
        self.log.iter().any(|l| l == line)
    }
    fn phase(&self, name: &str) -> Option<Status> {
        self.report
            .phases
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.status)
    }
}

fn request(spec: &str, dir: &std::path::Path) -> BuildRequest {
    BuildRequest {
        spec: parse_str(spec).unwrap().buildspec,
        src_dir: dir.to_path_buf(),
        secondary_sources: vec![],
        builtins: vec![("CODEBUILD_BUILD_ID".into(), "demo:1234".into())],
        overrides: vec![],
        secrets: vec![],
        timeout: None,
        pgid_file: None,
    }
}

async fn build_with(spec: &str, tweak: impl FnOnce(&mut BuildRequest)) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut req = request(spec, dir.path());
    tweak(&mut req);
    let (_tx, mut rx) = tokio::sync::watch::channel(false);
    let mut log = Vec::new();
    let report = run(&req, &mut log, &mut rx).await.unwrap();
    Run { report, log, dir }
}

async fn build(spec: &str) -> Run {
    build_with(spec, |_| {}).await
}

#[tokio::test]
async fn one_shell_so_cd_and_export_persist_across_commands_and_phases() {
    let r = build(
        "version: 0.2\nphases:\n  pre_build:\n    commands:\n      - mkdir sub && cd sub\n      - export GREETING=hello\n  build:\n    commands:\n      - echo \"$GREETING from $(basename $PWD)\"\n",
    )
    .await;
    assert_eq!(r.report.status, Status::Succeeded);
    assert!(r.has("hello from sub"), "{:#?}", r.log);
}

#[tokio::test]
async fn a_failed_pre_build_skips_build_and_post_build() {
    let r = build(
        "version: 0.2\nphases:\n  pre_build:\n    commands: [\"false\"]\n  build:\n    commands: [echo BUILD-RAN]\n  post_build:\n    commands: [echo POST-RAN]\n",
    )
    .await;
    assert_eq!(r.report.status, Status::Failed);
    assert_eq!(r.phase("pre_build"), Some(Status::Failed));
    assert_eq!(r.phase("build"), None);
    assert_eq!(r.phase("post_build"), None);
    assert!(!r.has("BUILD-RAN") && !r.has("POST-RAN"));
}

#[tokio::test]
async fn a_failed_build_still_runs_post_build_with_succeeding_0() {
    let r = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"during build: $CODEBUILD_BUILD_SUCCEEDING\"\n      - exit_code_2() { return 2; }; exit_code_2\n      - echo NOT-REACHED\n  post_build:\n    commands:\n      - echo \"post: $CODEBUILD_BUILD_SUCCEEDING\"\n",
    )
    .await;
    assert_eq!(r.report.status, Status::Failed);
    assert!(r.has("during build: 1"));
    assert!(!r.has("NOT-REACHED"));
    assert!(r.has("post: 0"), "{:#?}", r.log);
    assert_eq!(r.phase("post_build"), Some(Status::Succeeded));
    let build = r.report.phases.iter().find(|p| p.name == "build").unwrap();
    assert_eq!(build.failed_command.as_ref().unwrap().1, 2);
}

#[tokio::test]
async fn finally_runs_after_a_failure_and_must_succeed_too() {
    let r = build(
        "version: 0.2\nphases:\n  build:\n    commands: [\"false\", echo SKIPPED]\n    finally: [echo CLEANUP]\n",
    )
    .await;
    assert!(r.has("CLEANUP") && !r.has("SKIPPED"));
    let r = build(
        "version: 0.2\nphases:\n  build:\n    commands: [\"true\"]\n    finally: [\"false\"]\n",
    )
    .await;
    assert_eq!(r.phase("build"), Some(Status::Failed));
}

#[tokio::test]
async fn on_failure_continue_runs_the_next_phase_but_the_build_fails() {
    let r = build(
        "version: 0.2\nphases:\n  pre_build:\n    on-failure: CONTINUE\n    commands: [\"false\"]\n  build:\n    commands: [echo BUILD-RAN]\n",
    )
    .await;
    assert!(r.has("BUILD-RAN"));
    assert_eq!(r.report.status, Status::Failed);
}

#[tokio::test]
async fn retry_n_reruns_the_phase_n_more_times() {
    let r = build(
        "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-2\n    commands: [\"echo try >> tries\", \"false\"]\n",
    )
    .await;
    let tries = std::fs::read_to_string(r.dir.path().join("tries")).unwrap();
    assert_eq!(tries.lines().count(), 3);
    assert_eq!(r.report.phases[0].attempts, 3);
}

#[tokio::test]
async fn retry_with_a_regex_retries_only_when_the_output_matches() {
    let spec = "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-1-flaky.*network\n    commands: [\"echo try >> tries\", \"echo $MSG; false\"]\n";
    let r = build_with(spec, |q| {
        q.overrides.push(("MSG".into(), "flaky network".into()))
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(r.dir.path().join("tries"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    let r = build_with(spec, |q| {
        q.overrides.push(("MSG".into(), "compile error".into()))
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(r.dir.path().join("tries"))
            .unwrap()
            .lines()
            .count(),
        1
    );
}

#[tokio::test]
async fn action_variables_override_the_buildspec_and_values_are_literal() {
    let r = build_with(
        "version: 0.2\nenv:\n  variables:\n    STAGE: dev\n    RAW: $PATH\nphases:\n  build:\n    commands: [\"echo stage=$STAGE raw=$RAW\"]\n",
        |q| q.overrides.push(("STAGE".into(), "prod".into())),
    )
    .await;
    assert!(r.has("stage=prod raw=$PATH"), "{:#?}", r.log);
}

#[tokio::test]
async fn builtins_and_source_dirs_are_set() {
    let r = build("version: 0.2\nphases:\n  build:\n    commands: [\"echo id=$CODEBUILD_BUILD_ID\", \"test \\\"$CODEBUILD_SRC_DIR\\\" = \\\"$PWD\\\" && echo same-dir\"]\n").await;
    assert!(r.has("id=demo:1234"));
    assert!(r.has("same-dir"), "{:#?}", r.log);
}

#[tokio::test]
async fn exported_variables_come_back_after_success() {
    let r = build(
        "version: 0.2\nenv:\n  exported-variables: [IMAGE_TAG, MULTI]\nphases:\n  build:\n    commands: [\"export IMAGE_TAG=v1.2.3\", \"export MULTI='a b'\"]\n",
    )
    .await;
    assert_eq!(
        r.report.exported,
        vec![
            ("IMAGE_TAG".into(), "v1.2.3".into()),
            ("MULTI".into(), "a b".into())
        ]
    );
}

#[tokio::test]
async fn secrets_are_masked_in_every_line() {
    let r = build_with(
        "version: 0.2\nenv:\n  secrets-manager:\n    DB_PASS: db:password\nphases:\n  build:\n    commands: [\"echo the password is $DB_PASS\"]\n",
        |q| q.secrets.push(("DB_PASS".into(), "s3cr3t".into())),
    )
    .await;
    assert!(r.has("the password is ***"), "{:#?}", r.log);
    assert!(r.log.iter().all(|l| !l.contains("s3cr3t")));
}

#[tokio::test]
async fn output_without_a_final_newline_and_stdin_readers_are_handled() {
    let r = build("version: 0.2\nphases:\n  build:\n    commands: [\"printf partial\", \"cat\", \"echo after\"]\n").await;
    assert!(r.has("partial") && r.has("after"), "{:#?}", r.log);
    assert_eq!(r.report.status, Status::Succeeded);
}

/// True while a process exists and is not a zombie.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let r = build_with(
        "version: 0.2\nphases:\n  build:\n    commands: [\"sleep 30 & echo $! > bgpid; sleep 30\"]\n  post_build:\n    commands: [echo POST]\n",
        |q| q.timeout = Some(Duration::from_millis(500)),
    )
    .await;
    assert_eq!(r.report.status, Status::TimedOut);
    assert!(!r.has("POST"));
    // The backgrounded grandchild went with the process group.
    let pid = std::fs::read_to_string(r.dir.path().join("bgpid")).unwrap();
    let pid = pid.trim();
    let mut gone = false;
    for _ in 0..50 {
        if !alive(pid) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "background process {pid} survived the timeout");
}

#[tokio::test]
async fn a_stop_request_stops_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let req = request(
        "version: 0.2\nphases:\n  build:\n    commands: [\"sleep 30\"]\n",
        dir.path(),
    );
    let (tx, mut rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tx.send(true);
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let mut log = Vec::new();
    let report = run(&req, &mut log, &mut rx).await.unwrap();
    assert_eq!(report.status, Status::Stopped);
}

#[tokio::test]
async fn version_0_1_runs_each_command_in_its_own_shell() {
    let r = build(
        "version: 0.1\nphases:\n  build:\n    commands: [\"export X=1\", \"echo x=${X:-unset}\"]\n",
    )
    .await;
    assert!(r.has("x=unset"), "{:#?}", r.log);
}

#[tokio::test]
async fn a_command_that_exits_the_shell_fails_the_phase_and_the_build_goes_on() {
    let r = build("version: 0.2\nphases:\n  build:\n    commands: [\"exit 3\"]\n  post_build:\n    commands: [echo POST]\n").await;
    assert_eq!(r.phase("build"), Some(Status::Failed));
    assert!(r.has("POST"));
}

#[tokio::test]
async fn exit_0_ends_the_shell_but_does_not_fail_the_command() {
    let r = build(
        "version: 0.2\nphases:\n  build:\n    commands: [\"echo A\", \"exit 0\", \"echo B\"]\n",
    )
    .await;
    assert_eq!(r.phase("build"), Some(Status::Succeeded), "{:#?}", r.log);
    assert_eq!(r.report.status, Status::Succeeded);
    assert!(r.has("B"), "{:#?}", r.log);
    assert!(
        !r.log
            .iter()
            .any(|l| l.contains("did not exit successfully"))
    );
}

#[tokio::test]
async fn the_log_carries_codebuild_style_phase_lines() {
    let r = build("version: 0.2\nphases:\n  build:\n    commands: [\"false\"]\n").await;
    assert!(r.has("[Container] Entering phase BUILD"));
    assert!(r.has("[Container] Phase complete: BUILD State: FAILED"));
    assert!(r.has("[Container] Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: false. Reason: exit status 1"));
}

#[tokio::test]
async fn long_lines_lines_without_newline_and_floods_are_logged_whole_and_in_order() {
    let r = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - python3 -c \"print('x' * 200000)\"\n      - printf 'no newline'\n      - seq 1 100000\n      - echo after\n",
    )
    .await;
    assert_eq!(r.report.status, Status::Succeeded);
    let long = r.log.iter().find(|l| l.starts_with("xxx")).unwrap();
    assert_eq!(long.len(), 200_000);
    assert!(r.log.iter().any(|l| l == "no newline"), "{:?}", &r.log[..8]);
    let nums: Vec<&String> = r
        .log
        .iter()
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty())
        .collect();
    assert_eq!(nums.len(), 100_000);
    // Every line once and in order, across every read's split line.
    let expected: Vec<String> = (1..=100_000).map(|n: u32| n.to_string()).collect();
    assert!(nums.iter().zip(&expected).all(|(a, b)| *a == b));
    let after = r.log.iter().position(|l| l == "after").unwrap();
    let last_num = r.log.iter().position(|l| l == "100000").unwrap();
    assert!(after > last_num);
}

#[tokio::test]
async fn the_setup_reaches_the_shell_whatever_its_size_and_leaves_no_trace() {
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"v=$V n=${#BIG} s=${__PD_SETUP-unset} q=$Q\"\n      - env | grep -c '^__PD_SETUP=' || true\n";
    let quoted = "it's \"quoted\" $HOME `x` \\ end".to_owned();
    // A small setup (through the environment), then one above 64 KiB
    // (written on stdin): the same variables, quoting kept, and the
    // carrier variable is gone before the first command.
    for size in [10usize, 100_000] {
        let big = "x".repeat(size);
        let q = quoted.clone();
        let r = build_with(spec, |req| {
            req.overrides = vec![
                ("V".into(), "one".into()),
                ("BIG".into(), big),
                ("Q".into(), q),
            ];
        })
        .await;
        assert_eq!(r.report.status, Status::Succeeded, "{:#?}", r.log);
        let want = format!("v=one n={size} s=unset q={quoted}");
        assert!(r.has(&want), "{size}: {:#?}", r.log);
        assert!(r.has("0"), "{size}: {:#?}", r.log);
    }
    // A build variable of the carrier's own name is kept.
    let r = build_with(spec, |req| {
        req.overrides = vec![("__PD_SETUP".into(), "mine".into())];
    })
    .await;
    assert!(r.log.iter().any(|l| l.contains("s=mine")), "{:#?}", r.log);
}
