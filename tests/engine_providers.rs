//! Providers, triggers, timeouts, the store and the audit trail, as a user
//! of the local engine sees them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use pipedeck::api::types::{ActionStatus, ExecutionStatus, SourceRevisionOverride, TriggerType};
use pipedeck::api::{Reply, Request};
use pipedeck::store::logs::LogReader;

fn log_of(ws: &Ws, aeid: &str) -> Vec<String> {
    let mut r = LogReader::open(&ws.load().state_dir.join("logs"), aeid).unwrap();
    let n = r.len();
    r.read(0, n).unwrap()
}

async fn run_to_end(h: &pipedeck::engine::EngineHandle, p: &str) -> (String, ExecutionStatus) {
    let id = start(h, p).await;
    let id2 = id.clone();
    until(h, p, "the execution to end", move |_, ex| {
        ex.iter()
            .any(|e| e.pipeline_execution_id == id2 && e.status.is_terminal())
    })
    .await;
    let st = execution(h, p, &id).await.status;
    (id, st)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_actions_output_the_commit_and_its_variables_by_namespace() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage(
            "Build",
            &[r##"{"name": "B", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "configuration": {"ProjectName": "B", "BuildspecOverride": "b.yml", "EnvironmentVariables": "[{\"name\":\"C\",\"value\":\"#{SourceVariables.CommitId}\",\"type\":\"PLAINTEXT\"},{\"name\":\"X\",\"value\":\"#{codepipeline.PipelineExecutionId}\",\"type\":\"PLAINTEXT\"}]"},
                "inputArtifacts": [{"name": "Src"}]}"##
                .to_owned()],
            "",
        )],
    );
    let ws = workspace(
        &p,
        "",
        &[(
            "b.yml",
            &buildspec(&[
                "echo commit=$C exec=$X src=$CODEBUILD_RESOLVED_SOURCE_VERSION",
                "ls",
            ]),
        )],
    );
    let head = git(&ws.repo(), &["rev-parse", "HEAD"]);
    let h = ws.engine();
    let (id, st) = run_to_end(&h, "p").await;
    assert_eq!(st, ExecutionStatus::Succeeded);
    let acts = actions(&h, "p", &id).await;
    let src = acts.iter().find(|a| a.action_name == "Source").unwrap();
    let v = &src.output_variables;
    assert_eq!(v["CommitId"], head);
    assert_eq!(v["BranchName"], "main");
    assert_eq!(v["CommitMessage"], "initial commit");
    assert_eq!(v["RepositoryName"], "app");
    assert!(v["AuthorDate"].ends_with('Z'), "{}", v["AuthorDate"]);
    let b = acts.iter().find(|a| a.action_name == "B").unwrap();
    assert!(b.resolved_configuration["EnvironmentVariables"].contains(&head));
    let log = log_of(&ws, &b.action_execution_id).join("\n");
    assert!(
        log.contains(&format!("commit={head} exec={id} src={head}")),
        "{log}"
    );
    // The artifact is the commit's tree: the buildspec is there, .git is not.
    assert!(log.contains("b.yml"), "{log}");
    assert!(!log.contains(".git\n"), "{log}");
    let exec = execution(&h, "p", &id).await;
    assert_eq!(exec.source_revisions[0].revision_id, head);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_with_a_source_revision_runs_that_commit() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Build", &[build_action("B", 1, "b.yml", "")], "")],
    );
    let ws = workspace(
        &p,
        "",
        &[("b.yml", &buildspec(&["cat v.txt"])), ("v.txt", "one")],
    );
    let first = git(&ws.repo(), &["rev-parse", "HEAD"]);
    commit(&ws.repo(), &[("v.txt", "two")], "second");
    let h = ws.engine();
    let r = call(
        &h,
        Request::StartPipelineExecution {
            pipeline_name: "p".into(),
            variables: Default::default(),
            source_revisions: vec![SourceRevisionOverride {
                action_name: "Source".into(),
                revision_type: "COMMIT_ID".into(),
                revision_value: first.clone(),
            }],
        },
    )
    .await
    .unwrap();
    let Reply::Started {
        pipeline_execution_id: id,
    } = r
    else {
        panic!()
    };
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let acts = actions(&h, "p", &id).await;
    let b = acts.iter().find(|a| a.action_name == "B").unwrap();
    let log = log_of(&ws, &b.action_execution_id);
    assert!(log.iter().any(|l| l == "one"), "{log:?}");
    assert_eq!(
        execution(&h, "p", &id).await.source_revisions[0].revision_id,
        first
    );
    // Other revision types are refused by git sources.
    let e = call(
        &h,
        Request::StartPipelineExecution {
            pipeline_name: "p".into(),
            variables: Default::default(),
            source_revisions: vec![SourceRevisionOverride {
                action_name: "Source".into(),
                revision_type: "S3_OBJECT_VERSION_ID".into(),
                revision_value: "x".into(),
            }],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "ValidationException");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_commit_on_the_tracked_branch_starts_an_execution_and_other_branches_do_not() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Build", &[build_action("B", 1, "b.yml", "")], "")],
    );
    let ws = workspace(&p, "", &[("b.yml", &buildspec(&["true"]))]);
    let h = ws.engine_with(true);
    // Let the watcher record the current refs first.
    tokio::time::sleep(Duration::from_millis(600)).await;
    git(&ws.repo(), &["checkout", "-q", "-b", "feature"]);
    commit(&ws.repo(), &[("f.txt", "x")], "on a feature branch");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let ex = match call(
        &h,
        Request::ListPipelineExecutions {
            pipeline_name: "p".into(),
            max_results: None,
            next_token: None,
        },
    )
    .await
    .unwrap()
    {
        Reply::Executions { executions, .. } => executions,
        _ => panic!(),
    };
    assert!(ex.is_empty(), "a feature-branch commit started {ex:?}");
    git(&ws.repo(), &["checkout", "-q", "main"]);
    let c = commit(&ws.repo(), &[("m.txt", "y")], "on main");
    until(&h, "p", "a push-triggered execution", |_, ex| {
        ex.iter().any(|e| e.status == ExecutionStatus::Succeeded)
    })
    .await;
    let ex = match call(
        &h,
        Request::ListPipelineExecutions {
            pipeline_name: "p".into(),
            max_results: None,
            next_token: None,
        },
    )
    .await
    .unwrap()
    {
        Reply::Executions { executions, .. } => executions,
        _ => panic!(),
    };
    assert_eq!(ex.len(), 1);
    assert_eq!(ex[0].trigger.trigger_type, TriggerType::Webhook);
    assert_eq!(ex[0].source_revisions[0].revision_id, c);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_trigger_file_path_filters_start_only_for_matching_changes() {
    let mut p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Build", &[build_action("B", 1, "b.yml", "")], "")],
    );
    let triggers = r#""triggers": [{"providerType": "CodeStarSourceConnection", "gitConfiguration": {"sourceActionName": "Source", "push": [{"branches": {"includes": ["main"]}, "filePaths": {"includes": ["src/**"], "excludes": ["src/docs/**"]}}]}}],"#;
    p = p.replacen("\"stages\"", &format!("{triggers} \"stages\""), 1);
    let ws = workspace(&p, "", &[("b.yml", &buildspec(&["true"]))]);
    let h = ws.engine_with(true);
    tokio::time::sleep(Duration::from_millis(600)).await;
    commit(&ws.repo(), &[("README.md", "x")], "docs only");
    commit(&ws.repo(), &[("src/docs/a.md", "x")], "excluded path");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let count = |h: &pipedeck::engine::EngineHandle| {
        let h = h.clone();
        async move {
            match call(
                &h,
                Request::ListPipelineExecutions {
                    pipeline_name: "p".into(),
                    max_results: None,
                    next_token: None,
                },
            )
            .await
            .unwrap()
            {
                Reply::Executions { executions, .. } => executions.len(),
                _ => panic!(),
            }
        }
    };
    assert_eq!(
        count(&h).await,
        0,
        "non-matching paths started an execution"
    );
    commit(&ws.repo(), &[("src/main.rs", "fn main() {}")], "code");
    until(&h, "p", "a filtered trigger", |_, ex| !ex.is_empty()).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_timeout_fails_the_action_and_kills_its_process_tree() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Build", &[build_action("Slow", 1, "b.yml", "")], "")],
    );
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("child-alive");
    let ws = workspace(
        &p,
        "[projects.Slow]\ntimeout_minutes = 0.02\n",
        &[(
            "b.yml",
            &buildspec(&[&format!("(sleep 3; touch {}) & sleep 30", marker.display())]),
        )],
    );
    let h = ws.engine();
    let (id, st) = run_to_end(&h, "p").await;
    assert_eq!(st, ExecutionStatus::Failed);
    let acts = actions(&h, "p", &id).await;
    let slow = acts.iter().find(|a| a.action_name == "Slow").unwrap();
    assert_eq!(slow.status, ActionStatus::Failed);
    assert!(
        slow.summary.as_deref().unwrap().contains("timed out"),
        "{:?}",
        slow.summary
    );
    // One timer: the build itself says TIMED_OUT, with the phases that ran.
    assert!(
        slow.summary
            .as_deref()
            .unwrap()
            .starts_with("Build timed out"),
        "{:?}",
        slow.summary
    );
    let build = slow.phases.iter().find(|p| p.phase_type == "BUILD");
    assert_eq!(
        build.and_then(|p| p.phase_status.as_deref()),
        Some("TIMED_OUT"),
        "{:?}",
        slow.phases
    );
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        !marker.exists(),
        "a background child of the build survived the timeout"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_that_nobody_answers_times_out_as_a_failure() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Approve", &[approval_action("Ok")], "")],
    );
    let ws = workspace(&p, "", &[("x", "x")]);
    let cfg = std::fs::read_to_string(ws.root.join("pipedeck.toml")).unwrap();
    std::fs::write(
        ws.root.join("pipedeck.toml"),
        cfg.replace(
            "[workspace]\n",
            "[workspace]\napproval_timeout_minutes = 0.01\n",
        ),
    )
    .unwrap();
    let h = ws.engine();
    let (id, st) = run_to_end(&h, "p").await;
    assert_eq!(st, ExecutionStatus::Failed);
    let acts = actions(&h, "p", &id).await;
    let ok = acts.iter().find(|a| a.action_name == "Ok").unwrap();
    assert_eq!(ok.error_details.as_ref().unwrap().code, "ApprovalTimedOut");
    assert!(ok.token.is_none());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_artifacts_follow_files_base_directory_discard_and_exclude_paths_and_secondaries() {
    let spec = "version: 0.2
phases:
  build:
    commands:
      - mkdir -p out/a/b docs
      - echo 1 > out/a/b/one.txt
      - echo 2 > out/a/two.txt
      - echo skip > out/a/skip.log
      - echo d > docs/readme.md
artifacts:
  files: ['**/*']
  base-directory: out
  exclude-paths: ['**/*.log']
  discard-paths: yes
  secondary-artifacts:
    Docs:
      files: ['docs/*']
";
    let consumer = "version: 0.2
phases:
  build:
    commands:
      - ls $CODEBUILD_SRC_DIR
      - ls $CODEBUILD_SRC_DIR_Docs/docs
";
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[
            stage(
                "Build",
                &[build_action(
                    "Make",
                    1,
                    "make.yml",
                    r#", "outputArtifacts": [{"name": "Bin"}, {"name": "Docs"}]"#,
                )],
                "",
            ),
            stage(
                "Use",
                &[                    r#"{"name": "Use", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                      "configuration": {"ProjectName": "Use", "BuildspecOverride": "use.yml", "PrimarySource": "Src"},
                      "inputArtifacts": [{"name": "Src"}, {"name": "Docs"}]}"#
                    .to_owned()],
                "",
            ),
        ],
    );
    let ws = workspace(&p, "", &[("make.yml", spec), ("use.yml", consumer)]);
    let h = ws.engine();
    let (id, st) = run_to_end(&h, "p").await;
    assert_eq!(st, ExecutionStatus::Succeeded);
    let acts = actions(&h, "p", &id).await;
    let make = acts.iter().find(|a| a.action_name == "Make").unwrap();
    let names: Vec<_> = make
        .output_artifacts
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["Bin", "Docs"]);
    let store = pipedeck::store::artifacts::ArtifactStore::new(&ws.load().state_dir);
    let bin = store.path_of(&make.output_artifacts[0].id);
    let mut files: Vec<_> = std::fs::read_dir(&bin)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["one.txt", "two.txt"],
        "discard-paths flattens, exclude-paths drops *.log"
    );
    let use_ = acts.iter().find(|a| a.action_name == "Use").unwrap();
    let log = log_of(&ws, &use_.action_execution_id).join("\n");
    assert!(
        log.contains("readme.md"),
        "the secondary input is at CODEBUILD_SRC_DIR_Docs: {log}"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_output_with_no_matching_files_fails_like_codebuild() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage(
            "Build",
            &[build_action(
                "Make",
                1,
                "make.yml",
                r#", "outputArtifacts": [{"name": "Bin"}]"#,
            )],
            "",
        )],
    );
    let ws = workspace(
        &p,
        "",
        &[(
            "make.yml",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - 'true'\nartifacts:\n  files: ['dist/**/*']\n",
        )],
    );
    let h = ws.engine();
    let (id, st) = run_to_end(&h, "p").await;
    assert_eq!(st, ExecutionStatus::Failed);
    let acts = actions(&h, "p", &id).await;
    let m = acts.iter().find(|a| a.action_name == "Make").unwrap();
    assert!(
        m.summary
            .as_deref()
            .unwrap()
            .contains("no matching artifact paths"),
        "{:?}",
        m.summary
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_build_cache_is_kept_between_runs() {
    let spec = "version: 0.2
phases:
  build:
    commands:
      - if [ -f deps/fetched ]; then echo cache-hit; else echo cache-miss; mkdir -p deps; touch deps/fetched; fi
cache:
  paths:
    - 'deps/**/*'
";
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Build", &[build_action("B", 1, "b.yml", "")], "")],
    );
    let ws = workspace(&p, "", &[("b.yml", spec)]);
    let h = ws.engine();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (id, st) = run_to_end(&h, "p").await;
        assert_eq!(st, ExecutionStatus::Succeeded);
        let acts = actions(&h, "p", &id).await;
        let b = acts.iter().find(|a| a.action_name == "B").unwrap();
        let log = log_of(&ws, &b.action_execution_id);
        seen.push(if log.iter().any(|l| l == "cache-hit") {
            "hit"
        } else {
            "miss"
        });
    }
    assert_eq!(seen, ["miss", "hit"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_sources_and_unmapped_deploys_fail_with_a_message_that_says_what_to_do() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage(
            "Deploy",
            &[r#"{"name": "Ship", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
                 "configuration": {"ClusterName": "c", "ServiceName": "s"}, "inputArtifacts": [{"name": "Src"}]}"#
                .to_owned()],
            "",
        )],
    );
    let ws = workspace(&p, "", &[("x", "x")]);
    let h = ws.engine();
    let (id, st) = run_to_end(&h, "p").await;
    assert_eq!(st, ExecutionStatus::Failed);
    let acts = actions(&h, "p", &id).await;
    let ship = acts.iter().find(|a| a.action_name == "Ship").unwrap();
    assert!(
        ship.summary
            .as_deref()
            .unwrap()
            .contains("no environment mapped for this deploy action"),
        "{:?}",
        ship.summary
    );
    h.shutdown().await;

    let s3 = pipeline(
        "q",
        "SUPERSEDED",
        &[stage("Build", &[build_action("B", 1, "b.yml", "")], "")],
    )
    .replace(r#""provider": "CodeCommit""#, r#""provider": "S3""#)
    .replace(
        r#""RepositoryName": "app", "BranchName": "main""#,
        r#""S3Bucket": "b", "S3ObjectKey": "k.zip""#,
    );
    let ws = workspace(&s3, "", &[("b.yml", &buildspec(&["true"]))]);
    let h = ws.engine();
    let (id, st) = run_to_end(&h, "q").await;
    assert_eq!(st, ExecutionStatus::Failed);
    let acts = actions(&h, "q", &id).await;
    assert!(
        acts[0]
            .summary
            .as_deref()
            .unwrap()
            .contains("not supported locally yet"),
        "{:?}",
        acts[0].summary
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_invokes_run_the_mapped_command_and_commands_actions_export_variables() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage(
            "Run",
            &[
                r#"{"name": "Fn", "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
                   "configuration": {"FunctionName": "notify", "UserParameters": "hello"}, "namespace": "FnVars"}"#
                    .to_owned(),
                r#"{"name": "Cmd", "runOrder": 2, "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
                   "commands": ["export GREETING=\"hi from $(cat x)\""], "outputVariables": ["GREETING"],
                   "inputArtifacts": [{"name": "Src"}]}"#
                    .to_owned(),
                r#"{"name": "Missing", "runOrder": 3, "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
                   "configuration": {"FunctionName": "nope"}}"#
                    .to_owned(),
            ],
            "",
        )],
    );
    let ws = workspace(
        &p,
        "[functions.notify]\ncommand = \"echo got $PIPEDECK_USER_PARAMETERS; echo SENT=yes >> $PIPEDECK_OUTPUT_VARIABLES\"\n",
        &[("x", "there")],
    );
    let h = ws.engine();
    let (id, st) = run_to_end(&h, "p").await;
    assert_eq!(
        st,
        ExecutionStatus::Failed,
        "the unmapped function fails the stage"
    );
    let acts = actions(&h, "p", &id).await;
    let f = acts.iter().find(|a| a.action_name == "Fn").unwrap();
    assert_eq!(f.status, ActionStatus::Succeeded);
    assert_eq!(f.output_variables["SENT"], "yes");
    assert!(
        log_of(&ws, &f.action_execution_id)
            .iter()
            .any(|l| l == "got hello")
    );
    let c = acts.iter().find(|a| a.action_name == "Cmd").unwrap();
    assert_eq!(c.output_variables["GREETING"], "hi from there");
    let m = acts.iter().find(|a| a.action_name == "Missing").unwrap();
    assert!(
        m.summary
            .as_deref()
            .unwrap()
            .contains("[functions.\"nope\"]"),
        "{:?}",
        m.summary
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_in_the_audit_trail_with_who_and_the_error() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Approve", &[approval_action("Ok")], "")],
    );
    let ws = workspace(&p, "", &[("x", "x")]);
    let h = ws.engine();
    let id = start(&h, "p").await;
    until(&h, "p", "approval", |st, _| {
        action_status(st, "Approve", "Ok").as_deref() == Some("InProgress")
    })
    .await;
    let _ = call(
        &h,
        Request::RetryStageExecution {
            pipeline_name: "p".into(),
            stage_name: "Approve".into(),
            pipeline_execution_id: Some(id.clone()),
            retry_mode: "FAILED_ACTIONS".into(),
        },
    )
    .await
    .unwrap_err();
    call(
        &h,
        Request::PutApprovalResult {
            pipeline_name: "p".into(),
            stage_name: "Approve".into(),
            action_name: "Ok".into(),
            token: None,
            status: "Rejected".into(),
            summary: "no".into(),
        },
    )
    .await
    .unwrap();
    let Reply::Events { events, .. } = call(
        &h,
        Request::LookupEvents {
            max_results: None,
            next_token: None,
        },
    )
    .await
    .unwrap() else {
        panic!()
    };
    let names: Vec<_> = events.iter().map(|e| e.event_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "PutApprovalResult",
            "RetryStageExecution",
            "StartPipelineExecution"
        ],
        "newest first"
    );
    let retry = &events[1];
    assert_eq!(
        retry.error_code.as_deref(),
        Some("StageNotRetryableException")
    );
    assert!(retry.error_message.is_some());
    assert_eq!(retry.user_identity.user_name.as_deref(), Some("tester"));
    assert_eq!(retry.event_source, "codepipeline.amazonaws.com");
    assert_eq!(events[0].request_parameters["status"], "Rejected");
    h.shutdown().await;
    // The trail is in the store: a new engine reads it back.
    let h = ws.engine();
    let Reply::Events { events, .. } = call(&h, Request::lookup_events(1)).await.unwrap() else {
        panic!()
    };
    assert_eq!(events[0].event_name, "PutApprovalResult");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_engine_keeps_history_and_marks_what_ran_as_interrupted() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Approve", &[approval_action("Ok")], "")],
    );
    let ws = workspace(&p, "", &[("x", "x")]);
    let h = ws.engine();
    let id = start(&h, "p").await;
    until(&h, "p", "approval", |st, _| {
        action_status(st, "Approve", "Ok").as_deref() == Some("InProgress")
    })
    .await;
    h.shutdown().await;
    let h = ws.engine();
    let e = execution(&h, "p", &id).await;
    assert_eq!(e.status, ExecutionStatus::Failed);
    assert_eq!(
        e.status_summary.as_deref(),
        Some(pipedeck::engine::INTERRUPTED)
    );
    let st = state(&h, "p").await;
    assert_eq!(stage_status(&st, "Approve").as_deref(), Some("Failed"));
    // The interrupted approval can be retried: it asks again.
    call(
        &h,
        Request::RetryStageExecution {
            pipeline_name: "p".into(),
            stage_name: "Approve".into(),
            pipeline_execution_id: None,
            retry_mode: "FAILED_ACTIONS".into(),
        },
    )
    .await
    .unwrap();
    until(&h, "p", "approval again", |st, _| {
        action_status(st, "Approve", "Ok").as_deref() == Some("InProgress")
    })
    .await;
    h.shutdown().await;
}

#[test]
fn a_second_engine_on_the_same_workspace_is_refused_by_the_lock() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Approve", &[approval_action("Ok")], "")],
    );
    let ws = workspace(&p, "", &[("x", "x")]);
    let w = ws.load();
    let _held = pipedeck::control::WorkspaceLock::acquire(&w).unwrap();
    let err = pipedeck::control::WorkspaceLock::acquire(&w)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("already has an engine"), "{err}");
    assert!(err.contains(&std::process::id().to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_that_exits_is_replaced_and_the_next_commands_run() {
    // `exit 0` ends the build's shell; the engine starts a new one, which
    // carries the same mark as the old one and must not be swept with it.
    // Version 0.1 runs every command in a shell of its own.
    let v02 = "version: 0.2\nphases:\n  build:\n    commands: [\"echo A\", \"exit 0\", \"echo B\", \"echo C\"]\n";
    let v01 = "version: 0.1\nphases:\n  build:\n    commands: [\"echo one\", \"echo two\", \"echo three\"]\n";
    let p = pipeline(
        "p",
        "QUEUED",
        &[stage(
            "Build",
            &[
                build_action("Exits", 1, "v02.yml", ""),
                build_action("PerCommand", 1, "v01.yml", ""),
            ],
            "",
        )],
    );
    let ws = workspace(&p, "", &[("v02.yml", v02), ("v01.yml", v01)]);
    let h = ws.engine();
    let (id, st) = run_to_end(&h, "p").await;
    let acts = actions(&h, "p", &id).await;
    let log = |name: &str| {
        let a = acts.iter().find(|a| a.action_name == name).unwrap();
        log_of(&ws, &a.action_execution_id)
    };
    assert_eq!(
        st,
        ExecutionStatus::Succeeded,
        "{:#?} {:#?}",
        log("Exits"),
        log("PerCommand")
    );
    let exits = log("Exits");
    for want in ["A", "B", "C"] {
        assert!(
            exits.iter().any(|l| l == want),
            "{want} missing: {exits:#?}"
        );
    }
    let per = log("PerCommand");
    for want in ["one", "two", "three"] {
        assert!(per.iter().any(|l| l == want), "{want} missing: {per:#?}");
    }
    h.shutdown().await;
}
