//! The engine against the AWS semantics of reference §1 (CodePipeline) and
//! §3 (CodeBuild): execution modes, runOrder, retry, approvals, stop,
//! transitions, rollback, conditions, variables, secrets and reports. Each
//! test is named after the behaviour it pins down and asserts what a user
//! would see through the API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use pipedeck::api::types::{ActionStatus, ExecutionStatus, ExecutionType, TriggerType};
use pipedeck::api::{ActionExecutionDetail, ApiError, EngineEvent, Reply, Request};
use pipedeck::engine::EngineHandle;

// ------------------------------------------------------------- helpers

/// A shell loop that holds the build until `file` exists (60 s at most,
/// then the command fails so a broken test cannot hang a build forever).
fn wait_for_file(file: &Path) -> String {
    format!(
        "n=0; while [ ! -f {f} ]; do sleep 0.05; n=$((n+1)); if [ $n -ge 1200 ]; then exit 1; fi; done",
        f = file.display()
    )
}

/// A CodeBuild action with plaintext `EnvironmentVariables` (values may
/// hold `#{...}` references).
fn build_action_env(name: &str, run_order: u32, buildspec: &str, env: &[(&str, &str)]) -> String {
    let list: Vec<serde_json::Value> = env
        .iter()
        .map(|(n, v)| serde_json::json!({"name": n, "value": v, "type": "PLAINTEXT"}))
        .collect();
    let text = serde_json::to_string(&list).unwrap();
    let quoted = serde_json::to_string(&text).unwrap();
    format!(
        r#"{{"name": "{name}", "runOrder": {run_order},
      "actionTypeId": {{"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}},
      "configuration": {{"ProjectName": "{name}", "BuildspecOverride": "{buildspec}", "EnvironmentVariables": {quoted}}},
      "inputArtifacts": [{{"name": "Src"}}]}}"#
    )
}

/// The `EXEC` environment variable every gated build gets: the pipeline
/// execution id, resolved by the engine from `#{codepipeline...}`.
const EXEC_ENV: (&str, &str) = ("EXEC", "#{codepipeline.PipelineExecutionId}");

async fn err(h: &EngineHandle, r: Request) -> ApiError {
    match call(h, r).await {
        Ok(reply) => panic!("expected an error, got {reply:?}"),
        Err(e) => e,
    }
}

fn of<'a>(acts: &'a [ActionExecutionDetail], action: &str) -> Vec<&'a ActionExecutionDetail> {
    let mut v: Vec<_> = acts.iter().filter(|a| a.action_name == action).collect();
    v.sort_by_key(|a| a.attempt);
    v
}

fn exec_status(execs: &[pipedeck::api::ExecutionSummary], id: &str) -> Option<ExecutionStatus> {
    execs
        .iter()
        .find(|e| e.pipeline_execution_id == id)
        .map(|e| e.status)
}

fn inbound(st: &pipedeck::api::PipelineState, stage: &str) -> Vec<String> {
    st.stage_states
        .iter()
        .find(|s| s.stage_name == stage)
        .map(|s| {
            s.inbound_executions
                .iter()
                .map(|i| i.pipeline_execution_id.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn stage_state<'a>(
    st: &'a pipedeck::api::PipelineState,
    stage: &str,
) -> &'a pipedeck::api::StageState {
    st.stage_states
        .iter()
        .find(|s| s.stage_name == stage)
        .unwrap()
}

fn retry_req(stage: &str, id: Option<&str>, mode: &str) -> Request {
    Request::RetryStageExecution {
        pipeline_name: "p".into(),
        stage_name: stage.into(),
        pipeline_execution_id: id.map(str::to_owned),
        retry_mode: mode.into(),
    }
}

fn stop_req(id: &str, abandon: bool, reason: &str) -> Request {
    Request::StopPipelineExecution {
        pipeline_name: "p".into(),
        pipeline_execution_id: Some(id.into()),
        abandon,
        reason: Some(reason.into()),
    }
}

fn rollback_req(stage: &str, target: Option<&str>) -> Request {
    Request::RollbackStage {
        pipeline_name: "p".into(),
        stage_name: stage.into(),
        target_pipeline_execution_id: target.map(str::to_owned),
    }
}

/// Waits until the latest execution in `stage` runs `action`.
async fn until_action(h: &EngineHandle, stage: &str, action: &str, status: &str) {
    until(h, "p", &format!("{stage}.{action} {status}"), |st, _| {
        action_status(st, stage, action).as_deref() == Some(status)
    })
    .await;
}

/// A pipeline with one gated build stage: its action `B` appends the
/// execution id to `order` as it starts, then waits for `open`.
fn gated_build(mode: &str, gates: &Path) -> Ws {
    let p = pipeline(
        "p",
        mode,
        &[stage(
            "Build",
            &[build_action_env("B", 1, "b.yml", &[EXEC_ENV])],
            "",
        )],
    );
    let order = gates.join("order");
    workspace(
        &p,
        "",
        &[(
            "b.yml",
            &buildspec(&[
                &format!("echo $EXEC >> {}", order.display()),
                &wait_for_file(&gates.join("open")),
            ]),
        )],
    )
}

fn touch(p: &Path) {
    std::fs::write(p, "").unwrap();
}

// ------------------------------------------------------ execution modes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_mode_replaces_the_waiting_execution_never_the_running_one() {
    let g = tempfile::tempdir().unwrap();
    let ws = gated_build("SUPERSEDED", g.path());
    let h = ws.engine();
    let e1 = start(&h, "p").await;
    until_action(&h, "Build", "B", "InProgress").await;
    let e2 = start(&h, "p").await;
    until(&h, "p", "e2 waits in front of Build", |st, _| {
        inbound(st, "Build") == [e2.clone()]
    })
    .await;
    let e3 = start(&h, "p").await;
    until(&h, "p", "e3 replaces e2 in front of Build", |st, execs| {
        inbound(st, "Build") == [e3.clone()]
            && exec_status(execs, &e2) == Some(ExecutionStatus::Superseded)
    })
    .await;
    // Execution 1 holds Build and is not superseded mid-stage.
    let st = state(&h, "p").await;
    assert_eq!(
        stage_state(&st, "Build")
            .latest_execution
            .as_ref()
            .unwrap()
            .pipeline_execution_id,
        e1
    );
    assert_eq!(
        action_status(&st, "Build", "B").as_deref(),
        Some("InProgress")
    );
    assert_eq!(
        execution(&h, "p", &e1).await.status,
        ExecutionStatus::InProgress
    );
    touch(&g.path().join("open"));
    until_status(&h, "p", &e1, ExecutionStatus::Succeeded).await;
    until_status(&h, "p", &e3, ExecutionStatus::Succeeded).await;
    // Superseded is terminal: execution 2 never ran Build.
    let x2 = execution(&h, "p", &e2).await;
    assert_eq!(x2.status, ExecutionStatus::Superseded);
    assert!(of(&actions(&h, "p", &e2).await, "B").is_empty());
    let b3 = actions(&h, "p", &e3).await;
    assert_eq!(of(&b3, "B").len(), 1);
    assert_eq!(of(&b3, "B")[0].status, ActionStatus::Succeeded);
    let order = std::fs::read_to_string(g.path().join("order")).unwrap();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        [e1.as_str(), e3.as_str()]
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_mode_queues_waiters_fifo_in_inbound_executions_and_runs_them_all() {
    let g = tempfile::tempdir().unwrap();
    let ws = gated_build("QUEUED", g.path());
    let h = ws.engine();
    let e1 = start(&h, "p").await;
    until_action(&h, "Build", "B", "InProgress").await;
    let e2 = start(&h, "p").await;
    until(&h, "p", "e2 queued in front of Build", |st, _| {
        inbound(st, "Build") == [e2.clone()]
    })
    .await;
    let e3 = start(&h, "p").await;
    until(&h, "p", "e2, e3 queued in front of Build", |st, _| {
        inbound(st, "Build") == [e2.clone(), e3.clone()]
    })
    .await;
    let st = state(&h, "p").await;
    let q = &stage_state(&st, "Build").inbound_executions;
    assert!(
        q.iter().all(|i| i.status == ExecutionStatus::InProgress
            && i.execution_type == ExecutionType::Standard)
    );
    touch(&g.path().join("open"));
    for id in [&e1, &e2, &e3] {
        until_status(&h, "p", id, ExecutionStatus::Succeeded).await;
    }
    let order = std::fs::read_to_string(g.path().join("order")).unwrap();
    assert_eq!(
        order.lines().collect::<Vec<_>>(),
        [e1.as_str(), e2.as_str(), e3.as_str()]
    );
    assert!(inbound(&state(&h, "p").await, "Build").is_empty());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_mode_runs_two_executions_in_the_same_stage_at_once() {
    let g = tempfile::tempdir().unwrap();
    // A rendezvous: each build announces itself, then waits until both have
    // (10 s at most). It can only succeed if both run at the same time.
    let dir = g.path().display().to_string();
    let p = pipeline(
        "p",
        "PARALLEL",
        &[stage(
            "Build",
            &[build_action_env("B", 1, "b.yml", &[EXEC_ENV])],
            "",
        )],
    );
    let ws = workspace(
        &p,
        "",
        &[(
            "b.yml",
            &buildspec(&[
                &format!("touch {dir}/started-$EXEC"),
                &format!(
                    "n=0; while [ $(ls {dir} | grep -c started-) -lt 2 ]; do sleep 0.05; n=$((n+1)); if [ $n -ge 200 ]; then echo alone; exit 1; fi; done"
                ),
            ]),
        )],
    );
    let h = ws.engine();
    let e1 = start(&h, "p").await;
    let e2 = start(&h, "p").await;
    until(&h, "p", "both finished", |_, execs| {
        [&e1, &e2]
            .iter()
            .all(|id| exec_status(execs, id).is_some_and(|s| s.is_terminal()))
    })
    .await;
    for id in [&e1, &e2] {
        let x = execution(&h, "p", id).await;
        assert_eq!(x.status, ExecutionStatus::Succeeded, "{x:?}");
        assert_eq!(x.execution_mode, "PARALLEL");
    }
    h.shutdown().await;
}

// ------------------------------------------------------------ runOrder

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_action_lets_its_running_sibling_finish_and_stops_later_run_orders() {
    let g = tempfile::tempdir().unwrap();
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage(
            "Build",
            &[
                build_action("A", 1, "a.yml", ""),
                build_action("B", 1, "b.yml", ""),
                build_action("C", 2, "c.yml", ""),
            ],
            "",
        )],
    );
    let ws = workspace(
        &p,
        "",
        &[
            ("a.yml", &buildspec(&["echo failing", "exit 1"])),
            (
                "b.yml",
                &buildspec(&[&wait_for_file(&g.path().join("open"))]),
            ),
            ("c.yml", &buildspec(&["echo c-ran"])),
        ],
    );
    let h = ws.engine();
    let id = start(&h, "p").await;
    until(&h, "p", "A failed while B runs", |st, _| {
        action_status(st, "Build", "A").as_deref() == Some("Failed")
            && action_status(st, "Build", "B").as_deref() == Some("InProgress")
    })
    .await;
    // The stage is Failed only once nothing runs in it.
    let st = state(&h, "p").await;
    assert_eq!(stage_status(&st, "Build").as_deref(), Some("InProgress"));
    assert_eq!(
        execution(&h, "p", &id).await.status,
        ExecutionStatus::InProgress
    );
    touch(&g.path().join("open"));
    until_status(&h, "p", &id, ExecutionStatus::Failed).await;
    let st = state(&h, "p").await;
    assert_eq!(stage_status(&st, "Build").as_deref(), Some("Failed"));
    assert_eq!(
        action_status(&st, "Build", "B").as_deref(),
        Some("Succeeded")
    );
    assert_eq!(action_status(&st, "Build", "C"), None);
    let acts = actions(&h, "p", &id).await;
    assert!(of(&acts, "C").is_empty(), "runOrder 2 must never start");
    assert_eq!(of(&acts, "B")[0].status, ActionStatus::Succeeded);
    assert_eq!(of(&acts, "A")[0].status, ActionStatus::Failed);
    h.shutdown().await;
}

// --------------------------------------------------------------- retry

/// Build: A always succeeds, B fails until `fixed` exists.
fn flaky(g: &Path) -> Ws {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage(
            "Build",
            &[
                build_action("A", 1, "a.yml", ""),
                build_action("B", 1, "b.yml", ""),
            ],
            "",
        )],
    );
    workspace(
        &p,
        "",
        &[
            ("a.yml", &buildspec(&["echo a-ran"])),
            (
                "b.yml",
                &buildspec(&[&format!("test -f {}", g.join("fixed").display())]),
            ),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_actions_reruns_only_the_failed_action_and_the_execution_resumes() {
    let g = tempfile::tempdir().unwrap();
    let ws = flaky(g.path());
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Failed).await;
    touch(&g.path().join("fixed"));
    let mut events = h.subscribe();
    let r = call(&h, retry_req("Build", Some(&id), "FAILED_ACTIONS"))
        .await
        .unwrap();
    assert_eq!(
        r,
        Reply::Retried {
            pipeline_execution_id: id.clone()
        }
    );
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    // Failed → InProgress → Succeeded, as the published changes show.
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let EngineEvent::ExecutionChanged { execution } = ev
            && execution.pipeline_execution_id == id
            && seen.last() != Some(&execution.status)
        {
            seen.push(execution.status);
        }
    }
    assert_eq!(
        seen,
        [ExecutionStatus::InProgress, ExecutionStatus::Succeeded],
        "a retried execution goes back to InProgress"
    );
    let acts = actions(&h, "p", &id).await;
    let a = of(&acts, "A");
    assert_eq!(a.len(), 1, "the succeeded sibling is not re-run: {a:?}");
    assert_eq!(a[0].attempt, 1);
    let b = of(&acts, "B");
    assert_eq!(
        b.iter().map(|x| (x.attempt, x.status)).collect::<Vec<_>>(),
        [(1, ActionStatus::Failed), (2, ActionStatus::Succeeded)]
    );
    let st = state(&h, "p").await;
    assert_eq!(stage_status(&st, "Build").as_deref(), Some("Succeeded"));
    let meta = &stage_state(&st, "Build").retry_stage_metadata;
    assert_eq!(meta.manual_stage_retry_attempt, 1);
    assert_eq!(
        meta.latest_retry_trigger.as_deref(),
        Some("ManualStageRetry")
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_all_actions_reruns_every_action_of_the_stage() {
    let g = tempfile::tempdir().unwrap();
    let ws = flaky(g.path());
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Failed).await;
    touch(&g.path().join("fixed"));
    call(&h, retry_req("Build", Some(&id), "ALL_ACTIONS"))
        .await
        .unwrap();
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let acts = actions(&h, "p", &id).await;
    let attempts = |n: &str| {
        of(&acts, n)
            .iter()
            .map(|x| (x.attempt, x.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        attempts("A"),
        [(1, ActionStatus::Succeeded), (2, ActionStatus::Succeeded)]
    );
    assert_eq!(
        attempts("B"),
        [(1, ActionStatus::Failed), (2, ActionStatus::Succeeded)]
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_stage_that_succeeded_is_stage_not_retryable() {
    let g = tempfile::tempdir().unwrap();
    touch(&g.path().join("fixed"));
    let ws = flaky(g.path());
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    for mode in ["FAILED_ACTIONS", "ALL_ACTIONS"] {
        let e = err(&h, retry_req("Build", Some(&id), mode)).await;
        assert_eq!(e.code, "StageNotRetryable", "{mode}: {e}");
    }
    assert_eq!(
        execution(&h, "p", &id).await.status,
        ExecutionStatus::Succeeded
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_an_older_execution_after_a_newer_one_entered_the_stage_is_not_latest() {
    let g = tempfile::tempdir().unwrap();
    let ws = flaky(g.path());
    let h = ws.engine();
    let e1 = start(&h, "p").await;
    until_status(&h, "p", &e1, ExecutionStatus::Failed).await;
    let e2 = start(&h, "p").await;
    until_status(&h, "p", &e2, ExecutionStatus::Failed).await;
    touch(&g.path().join("fixed"));
    let e = err(&h, retry_req("Build", Some(&e1), "FAILED_ACTIONS")).await;
    assert_eq!(e.code, "NotLatestPipelineExecution", "{e}");
    assert_eq!(
        execution(&h, "p", &e1).await.status,
        ExecutionStatus::Failed
    );
    // The latest one still can.
    call(&h, retry_req("Build", Some(&e2), "FAILED_ACTIONS"))
        .await
        .unwrap();
    until_status(&h, "p", &e2, ExecutionStatus::Succeeded).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_actions_is_allowed_while_a_sibling_still_runs() {
    // A fails until `fixed` exists; its second run creates `a-retried`,
    // which B waits for (10 s at most): B can only succeed if the retried
    // A runs while B is still running.
    let g = tempfile::tempdir().unwrap();
    let dir = g.path().display().to_string();
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage(
            "Build",
            &[
                build_action("A", 1, "a.yml", ""),
                build_action("B", 1, "b.yml", ""),
                build_action("C", 2, "c.yml", ""),
            ],
            "",
        )],
    );
    let ws = workspace(
        &p,
        "",
        &[
            (
                "a.yml",
                &buildspec(&[&format!("test -f {dir}/fixed && touch {dir}/a-retried")]),
            ),
            (
                "b.yml",
                &buildspec(&[&format!(
                    "n=0; while [ ! -f {dir}/a-retried ]; do sleep 0.05; n=$((n+1)); if [ $n -ge 200 ]; then echo A-was-not-retried; exit 1; fi; done"
                )]),
            ),
            ("c.yml", &buildspec(&["echo c-ran"])),
        ],
    );
    let h = ws.engine();
    let id = start(&h, "p").await;
    until(&h, "p", "A failed while B runs", |st, _| {
        action_status(st, "Build", "A").as_deref() == Some("Failed")
            && action_status(st, "Build", "B").as_deref() == Some("InProgress")
    })
    .await;
    // ALL_ACTIONS needs nothing in progress.
    let e = err(&h, retry_req("Build", Some(&id), "ALL_ACTIONS")).await;
    assert_eq!(e.code, "StageNotRetryable", "{e}");
    touch(&g.path().join("fixed"));
    call(&h, retry_req("Build", Some(&id), "FAILED_ACTIONS"))
        .await
        .unwrap();
    until(&h, "p", "the execution ends", |_, execs| {
        exec_status(execs, &id).is_some_and(ExecutionStatus::is_terminal)
    })
    .await;
    let acts = actions(&h, "p", &id).await;
    let attempts = |n: &str| {
        of(&acts, n)
            .iter()
            .map(|x| (x.attempt, x.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        attempts("A"),
        [(1, ActionStatus::Failed), (2, ActionStatus::Succeeded)]
    );
    assert_eq!(attempts("B"), [(1, ActionStatus::Succeeded)]);
    assert_eq!(attempts("C"), [(1, ActionStatus::Succeeded)]);
    assert_eq!(
        execution(&h, "p", &id).await.status,
        ExecutionStatus::Succeeded
    );
    h.shutdown().await;
}

// ------------------------------------------------------------ approvals

fn approval_pipeline() -> Ws {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[
            stage("Approve", &[approval_action("Ok")], ""),
            stage("Ship", &[build_action("S", 1, "s.yml", "")], ""),
        ],
    );
    workspace(&p, "", &[("s.yml", &buildspec(&["echo shipped"]))])
}

fn approval_token(st: &pipedeck::api::PipelineState) -> String {
    stage_state(st, "Approve").action_states[0]
        .latest_execution
        .as_ref()
        .and_then(|a| a.token.clone())
        .expect("a pending approval has a token")
}

fn approval_req(token: Option<&str>, status: &str, summary: &str) -> Request {
    Request::PutApprovalResult {
        pipeline_name: "p".into(),
        stage_name: "Approve".into(),
        action_name: "Ok".into(),
        token: token.map(str::to_owned),
        status: status.into(),
        summary: summary.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejecting_an_approval_fails_the_action_stage_and_execution_and_records_who_and_why() {
    let ws = approval_pipeline();
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_action(&h, "Approve", "Ok", "InProgress").await;
    let token = approval_token(&state(&h, "p").await);
    let r = call(&h, approval_req(Some(&token), "Rejected", "not today"))
        .await
        .unwrap();
    assert!(matches!(r, Reply::ApprovalRecorded { .. }), "{r:?}");
    until_status(&h, "p", &id, ExecutionStatus::Failed).await;
    let st = state(&h, "p").await;
    assert_eq!(stage_status(&st, "Approve").as_deref(), Some("Failed"));
    assert_eq!(
        action_status(&st, "Approve", "Ok").as_deref(),
        Some("Failed")
    );
    assert_eq!(stage_status(&st, "Ship"), None, "the next stage never runs");
    let acts = actions(&h, "p", &id).await;
    let ok = of(&acts, "Ok")[0];
    assert_eq!(ok.status, ActionStatus::Failed);
    assert_eq!(ok.token, None, "an answered approval has no token");
    let result = ok.approval.as_ref().unwrap().result.clone().unwrap();
    assert_eq!(result.status, "Rejected");
    assert_eq!(result.summary, "not today");
    assert_eq!(result.by, "tester");
    assert!(of(&acts, "S").is_empty());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_with_a_wrong_token_is_invalid_approval_token_and_leaves_it_pending() {
    let ws = approval_pipeline();
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_action(&h, "Approve", "Ok", "InProgress").await;
    let e = err(
        &h,
        approval_req(Some("00000000-0000-0000-0000-000000000000"), "Approved", ""),
    )
    .await;
    assert_eq!(e.code, "InvalidApprovalToken", "{e}");
    let st = state(&h, "p").await;
    assert_eq!(
        action_status(&st, "Approve", "Ok").as_deref(),
        Some("InProgress")
    );
    // The right token still works.
    let token = approval_token(&st);
    call(&h, approval_req(Some(&token), "Approved", "lgtm"))
        .await
        .unwrap();
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    // The old token is answered now: it is no longer valid.
    let e = err(&h, approval_req(Some(&token), "Approved", "")).await;
    assert!(
        matches!(
            e.code.as_str(),
            "InvalidApprovalToken" | "ApprovalAlreadyCompleted"
        ),
        "{e}"
    );
    h.shutdown().await;
}

// ----------------------------------------------------------------- stop

/// Build.B waits for `open`; Post.P runs after it.
fn stoppable(g: &Path) -> Ws {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[
            stage("Build", &[build_action("B", 1, "b.yml", "")], ""),
            stage("Post", &[build_action("P", 1, "p.yml", "")], ""),
        ],
    );
    workspace(
        &p,
        "",
        &[
            (
                "b.yml",
                &buildspec(&[&wait_for_file(&g.join("open")), "echo b-finished"]),
            ),
            ("p.yml", &buildspec(&["echo post"])),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_in_wait_mode_lets_the_running_action_finish_then_the_execution_is_stopped() {
    let g = tempfile::tempdir().unwrap();
    let ws = stoppable(g.path());
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_action(&h, "Build", "B", "InProgress").await;
    let r = call(&h, stop_req(&id, false, "change of plan"))
        .await
        .unwrap();
    assert_eq!(
        r,
        Reply::Stopped {
            pipeline_execution_id: id.clone()
        }
    );
    let x = execution(&h, "p", &id).await;
    assert_eq!(x.status, ExecutionStatus::Stopping);
    assert_eq!(x.stop_reason.as_deref(), Some("change of plan"));
    let e = err(&h, stop_req(&id, false, "change of plan")).await;
    assert_eq!(e.code, "DuplicatedStopRequest", "{e}");
    touch(&g.path().join("open"));
    until_status(&h, "p", &id, ExecutionStatus::Stopped).await;
    let st = state(&h, "p").await;
    assert_eq!(
        action_status(&st, "Build", "B").as_deref(),
        Some("Succeeded")
    );
    assert_eq!(stage_status(&st, "Build").as_deref(), Some("Stopped"));
    let acts = actions(&h, "p", &id).await;
    assert!(
        of(&acts, "P").is_empty(),
        "a stopped execution goes no further"
    );
    let e = err(&h, stop_req(&id, false, "again")).await;
    assert_eq!(e.code, "PipelineExecutionNotStoppable", "{e}");
    let e = err(&h, stop_req(&id, true, "again")).await;
    assert_eq!(e.code, "PipelineExecutionNotStoppable", "{e}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_abandon_abandons_the_running_action_and_stops_the_execution_at_once() {
    let g = tempfile::tempdir().unwrap();
    let ws = stoppable(g.path());
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_action(&h, "Build", "B", "InProgress").await;
    call(&h, stop_req(&id, true, "abandon ship")).await.unwrap();
    // No waiting: the reply already reflects it.
    assert_eq!(
        execution(&h, "p", &id).await.status,
        ExecutionStatus::Stopped
    );
    let st = state(&h, "p").await;
    assert_eq!(
        action_status(&st, "Build", "B").as_deref(),
        Some("Abandoned")
    );
    assert_eq!(stage_status(&st, "Build").as_deref(), Some("Stopped"));
    let acts = actions(&h, "p", &id).await;
    assert_eq!(of(&acts, "B")[0].status, ActionStatus::Abandoned);
    assert!(of(&acts, "P").is_empty());
    let e = err(&h, stop_req(&id, true, "again")).await;
    assert_eq!(e.code, "PipelineExecutionNotStoppable", "{e}");
    // The stage lock is released: a new execution runs Build.
    touch(&g.path().join("open"));
    let id2 = start(&h, "p").await;
    until_status(&h, "p", &id2, ExecutionStatus::Succeeded).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_mode_stop_can_be_escalated_to_abandon() {
    let g = tempfile::tempdir().unwrap();
    let ws = stoppable(g.path());
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_action(&h, "Build", "B", "InProgress").await;
    call(&h, stop_req(&id, false, "wait")).await.unwrap();
    assert_eq!(
        execution(&h, "p", &id).await.status,
        ExecutionStatus::Stopping
    );
    call(&h, stop_req(&id, true, "now")).await.unwrap();
    assert_eq!(
        execution(&h, "p", &id).await.status,
        ExecutionStatus::Stopped
    );
    let st = state(&h, "p").await;
    assert_eq!(
        action_status(&st, "Build", "B").as_deref(),
        Some("Abandoned")
    );
    h.shutdown().await;
}

// ---------------------------------------------------------- transitions

fn two_builds(mode: &str) -> Ws {
    let p = pipeline(
        "p",
        mode,
        &[stage("Build", &[build_action("B", 1, "b.yml", "")], "")],
    );
    workspace(&p, "", &[("b.yml", &buildspec(&["echo built"]))])
}

fn disable_req(reason: &str) -> Request {
    Request::DisableStageTransition {
        pipeline_name: "p".into(),
        stage_name: "Build".into(),
        reason: reason.into(),
    }
}

fn enable_req() -> Request {
    Request::EnableStageTransition {
        pipeline_name: "p".into(),
        stage_name: "Build".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_transition_holds_the_execution_until_it_is_enabled() {
    let ws = two_builds("SUPERSEDED");
    let h = ws.engine();
    let r = call(&h, disable_req("freeze (release 1.2) ok?"))
        .await
        .unwrap();
    assert_eq!(r, Reply::Done);
    let st = state(&h, "p").await;
    let t = &stage_state(&st, "Build").inbound_transition_state;
    assert!(!t.enabled);
    assert_eq!(
        t.disabled_reason.as_deref(),
        Some("freeze (release 1.2) ok?")
    );
    assert_eq!(t.last_changed_by.as_deref(), Some("tester"));
    let id = start(&h, "p").await;
    until(&h, "p", "the execution waits in front of Build", |st, _| {
        inbound(st, "Build") == [id.clone()]
    })
    .await;
    let x = execution(&h, "p", &id).await;
    assert_eq!(x.status, ExecutionStatus::InProgress);
    assert_eq!(x.current_stage.as_deref(), Some("Build"));
    assert!(of(&actions(&h, "p", &id).await, "B").is_empty());
    call(&h, enable_req()).await.unwrap();
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let st = state(&h, "p").await;
    assert!(stage_state(&st, "Build").inbound_transition_state.enabled);
    assert_eq!(stage_status(&st, "Build").as_deref(), Some("Succeeded"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_transition_with_an_invalid_reason_is_a_validation_exception() {
    let ws = two_builds("SUPERSEDED");
    let h = ws.engine();
    for reason in ["ticket #42", "", "semi;colon"] {
        let e = err(&h, disable_req(reason)).await;
        assert_eq!(e.code, "ValidationException", "{reason:?}: {e}");
    }
    let long = "a".repeat(301);
    let e = err(&h, disable_req(&long)).await;
    assert_eq!(e.code, "ValidationException", "{e}");
    let st = state(&h, "p").await;
    assert!(stage_state(&st, "Build").inbound_transition_state.enabled);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_disabled_transition_a_newer_execution_supersedes_the_waiter() {
    let ws = two_builds("SUPERSEDED");
    let h = ws.engine();
    call(&h, disable_req("hold")).await.unwrap();
    let e1 = start(&h, "p").await;
    until(&h, "p", "e1 waits", |st, _| {
        inbound(st, "Build") == [e1.clone()]
    })
    .await;
    let e2 = start(&h, "p").await;
    until(&h, "p", "e2 replaces e1", |st, execs| {
        inbound(st, "Build") == [e2.clone()]
            && exec_status(execs, &e1) == Some(ExecutionStatus::Superseded)
    })
    .await;
    call(&h, enable_req()).await.unwrap();
    until_status(&h, "p", &e2, ExecutionStatus::Succeeded).await;
    assert!(of(&actions(&h, "p", &e1).await, "B").is_empty());
    h.shutdown().await;
}

// ------------------------------------------------------------- rollback

/// Source → Build → Deploy; Deploy exports the source's `version.txt` as
/// VERSION and fails when the source has `fail.txt`.
fn deployable(deploy_extra: &str) -> Ws {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[
            stage("Build", &[build_action("B", 1, "b.yml", "")], ""),
            stage(
                "Deploy",
                &[build_action(
                    "D",
                    1,
                    "d.yml",
                    r#", "namespace": "DeployVars""#,
                )],
                deploy_extra,
            ),
        ],
    );
    workspace(
        &p,
        "",
        &[
            ("b.yml", &buildspec(&["echo build"])),
            (
                "d.yml",
                "version: 0.2\nenv:\n  exported-variables: [VERSION]\nphases:\n  build:\n    commands:\n      - test ! -f fail.txt\n      - export VERSION=$(cat version.txt)\n",
            ),
            ("version.txt", "v1"),
        ],
    )
}

fn deploy_version(acts: &[ActionExecutionDetail]) -> Option<String> {
    of(acts, "D")
        .last()
        .and_then(|d| d.output_variables.get("VERSION").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_stage_starts_a_rollback_execution_of_that_stage_with_the_targets_revision() {
    let ws = deployable("");
    let h = ws.engine();
    let e1 = start(&h, "p").await;
    until_status(&h, "p", &e1, ExecutionStatus::Succeeded).await;
    let c2 = commit(&ws.repo(), &[("version.txt", "v2")], "v2");
    let e2 = start(&h, "p").await;
    until_status(&h, "p", &e2, ExecutionStatus::Succeeded).await;
    assert_eq!(
        deploy_version(&actions(&h, "p", &e2).await).as_deref(),
        Some("v2")
    );
    let x1 = execution(&h, "p", &e1).await;
    assert_ne!(x1.source_revisions[0].revision_id, c2);

    let e = err(&h, rollback_req("Source", Some(&e1))).await;
    assert_eq!(e.code, "UnableToRollbackStage", "{e}");

    let r = match call(&h, rollback_req("Deploy", Some(&e1))).await.unwrap() {
        Reply::RolledBack {
            pipeline_execution_id,
        } => pipeline_execution_id,
        other => panic!("{other:?}"),
    };
    assert_ne!(r, e1);
    until_status(&h, "p", &r, ExecutionStatus::Succeeded).await;
    let x = execution(&h, "p", &r).await;
    assert_eq!(x.execution_type, ExecutionType::Rollback);
    assert_eq!(x.trigger.trigger_type, TriggerType::ManualRollback);
    assert_eq!(x.rollback_target.as_deref(), Some(e1.as_str()));
    assert_eq!(
        x.source_revisions[0].revision_id, x1.source_revisions[0].revision_id,
        "a rollback reuses the target's source revision"
    );
    let acts = actions(&h, "p", &r).await;
    assert!(
        acts.iter().all(|a| a.stage_name == "Deploy"),
        "a rollback runs only the rolled-back stage: {:?}",
        acts.iter()
            .map(|a| (&a.stage_name, &a.action_name))
            .collect::<Vec<_>>()
    );
    assert_eq!(of(&acts, "D").len(), 1);
    assert_eq!(deploy_version(&acts).as_deref(), Some("v1"));
    let st = state(&h, "p").await;
    let dep = stage_state(&st, "Deploy").latest_execution.clone().unwrap();
    assert_eq!(dep.pipeline_execution_id, r);
    assert_eq!(dep.execution_type, ExecutionType::Rollback);
    // Build keeps e2 as its latest: the rollback did not run it.
    assert_eq!(
        stage_state(&st, "Build")
            .latest_execution
            .as_ref()
            .unwrap()
            .pipeline_execution_id,
        e2
    );
    // A rollback is not itself a rollback target.
    let e = err(&h, rollback_req("Deploy", Some(&r))).await;
    assert_eq!(e.code, "UnableToRollbackStage", "{e}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_rollback_rolls_the_stage_back_to_the_last_success_automatically() {
    let ws = deployable(r#", "onFailure": {"result": "ROLLBACK"}"#);
    let h = ws.engine();
    // A failure with no earlier success: nothing to roll back to.
    commit(&ws.repo(), &[("fail.txt", "x")], "break");
    let e0 = start(&h, "p").await;
    until_status(&h, "p", &e0, ExecutionStatus::Failed).await;
    let execs = |h: &EngineHandle| {
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
                Reply::Executions { executions, .. } => executions,
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(execs(&h).await.len(), 1, "no rollback without a success");

    git(&ws.repo(), &["rm", "-q", "fail.txt"]);
    commit(&ws.repo(), &[("version.txt", "v1")], "fix");
    let e1 = start(&h, "p").await;
    until_status(&h, "p", &e1, ExecutionStatus::Succeeded).await;
    commit(
        &ws.repo(),
        &[("fail.txt", "x"), ("version.txt", "v2")],
        "break again",
    );
    let e2 = start(&h, "p").await;
    until(
        &h,
        "p",
        "an automatic rollback after e2 fails",
        |_, execs| {
            exec_status(execs, &e2) == Some(ExecutionStatus::Failed)
                && execs
                    .iter()
                    .any(|e| e.execution_type == ExecutionType::Rollback)
        },
    )
    .await;
    let all = execs(&h).await;
    let rb: Vec<_> = all
        .iter()
        .filter(|e| e.execution_type == ExecutionType::Rollback)
        .collect();
    assert_eq!(rb.len(), 1, "{all:?}");
    let r = rb[0].pipeline_execution_id.clone();
    assert_eq!(rb[0].trigger.trigger_type, TriggerType::AutomatedRollback);
    assert_eq!(rb[0].rollback_target.as_deref(), Some(e1.as_str()));
    until_status(&h, "p", &r, ExecutionStatus::Succeeded).await;
    let acts = actions(&h, "p", &r).await;
    assert!(acts.iter().all(|a| a.stage_name == "Deploy"));
    assert_eq!(deploy_version(&acts).as_deref(), Some("v1"));
    assert_eq!(
        execution(&h, "p", &e2).await.status,
        ExecutionStatus::Failed
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_is_refused_while_the_stage_runs_and_in_parallel_mode() {
    let g = tempfile::tempdir().unwrap();
    let ws = stoppable(g.path());
    let h = ws.engine();
    touch(&g.path().join("open"));
    let e1 = start(&h, "p").await;
    until_status(&h, "p", &e1, ExecutionStatus::Succeeded).await;
    std::fs::remove_file(g.path().join("open")).unwrap();
    let e2 = start(&h, "p").await;
    until_action(&h, "Build", "B", "InProgress").await;
    let e = err(&h, rollback_req("Build", Some(&e1))).await;
    assert_eq!(e.code, "UnableToRollbackStage", "{e}");
    touch(&g.path().join("open"));
    until_status(&h, "p", &e2, ExecutionStatus::Succeeded).await;
    h.shutdown().await;

    let p = pipeline(
        "p",
        "PARALLEL",
        &[stage("Build", &[build_action("B", 1, "b.yml", "")], "")],
    );
    let ws = workspace(&p, "", &[("b.yml", &buildspec(&["echo built"]))]);
    let h = ws.engine();
    let e1 = start(&h, "p").await;
    until_status(&h, "p", &e1, ExecutionStatus::Succeeded).await;
    let e2 = start(&h, "p").await;
    until_status(&h, "p", &e2, ExecutionStatus::Succeeded).await;
    let e = err(&h, rollback_req("Build", Some(&e1))).await;
    assert_eq!(e.code, "UnableToRollbackStage", "{e}");
    h.shutdown().await;
}

// ----------------------------------------------------- automatic retry

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_retry_retries_the_stage_once_then_fails() {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage(
            "Build",
            &[build_action("B", 1, "b.yml", "")],
            r#", "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}}"#,
        )],
    );
    let ws = workspace(&p, "", &[("b.yml", &buildspec(&["echo nope", "exit 1"]))]);
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Failed).await;
    let st = state(&h, "p").await;
    let meta = &stage_state(&st, "Build").retry_stage_metadata;
    assert_eq!(meta.auto_stage_retry_attempt, 1);
    assert_eq!(meta.manual_stage_retry_attempt, 0);
    assert_eq!(
        meta.latest_retry_trigger.as_deref(),
        Some("AutomatedStageRetry")
    );
    assert_eq!(stage_status(&st, "Build").as_deref(), Some("Failed"));
    let acts = actions(&h, "p", &id).await;
    assert_eq!(
        of(&acts, "B")
            .iter()
            .map(|a| (a.attempt, a.status))
            .collect::<Vec<_>>(),
        [(1, ActionStatus::Failed), (2, ActionStatus::Failed)]
    );
    h.shutdown().await;
}

/// Build.B fails on its first run only; the stage retries itself in `mode`.
/// Returns once the execution has ended, having checked the retry happened
/// once and the second attempt succeeded.
async fn transient_failure_is_retried_automatically(mode: &str) {
    let g = tempfile::tempdir().unwrap();
    let tried = g.path().join("tried");
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage(
            "Build",
            &[build_action("B", 1, "b.yml", "")],
            &format!(
                r#", "onFailure": {{"result": "RETRY", "retryConfiguration": {{"retryMode": "{mode}"}}}}"#
            ),
        )],
    );
    let ws = workspace(
        &p,
        "",
        &[(
            "b.yml",
            &buildspec(&[&format!(
                "if [ ! -f {t} ]; then touch {t}; echo first-try-fails; false; fi",
                t = tried.display()
            )]),
        )],
    );
    let h = ws.engine();
    let id = start(&h, "p").await;
    until(&h, "p", "the execution ends", |_, execs| {
        exec_status(execs, &id).is_some_and(ExecutionStatus::is_terminal)
    })
    .await;
    let st = state(&h, "p").await;
    let meta = &stage_state(&st, "Build").retry_stage_metadata;
    assert_eq!(meta.auto_stage_retry_attempt, 1, "{mode}: {meta:?}");
    assert_eq!(
        meta.latest_retry_trigger.as_deref(),
        Some("AutomatedStageRetry")
    );
    assert_eq!(
        execution(&h, "p", &id).await.status,
        ExecutionStatus::Succeeded
    );
    let acts = actions(&h, "p", &id).await;
    assert_eq!(
        of(&acts, "B")
            .iter()
            .map(|a| (a.attempt, a.status))
            .collect::<Vec<_>>(),
        [(1, ActionStatus::Failed), (2, ActionStatus::Succeeded)]
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_retry_with_failed_actions_recovers_a_transient_failure() {
    transient_failure_is_retried_automatically("FAILED_ACTIONS").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_retry_with_all_actions_recovers_a_transient_failure() {
    transient_failure_is_retried_automatically("ALL_ACTIONS").await;
}

// ----------------------------------------------------------- conditions

fn conditioned(result: &str, value: &str) -> Ws {
    let cond = format!(
        r##", "beforeEntry": {{"conditions": [{{"result": "{result}", "rules": [{{"name": "r",
          "ruleTypeId": {{"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"}},
          "configuration": {{"Variable": "#{{SourceVariables.BranchName}}", "Value": "{value}", "Operator": "EQ"}}}}]}}]}}"##
    );
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[
            stage("Gate", &[build_action("G", 1, "g.yml", "")], &cond),
            stage("Final", &[build_action("F", 1, "f.yml", "")], ""),
        ],
    );
    workspace(
        &p,
        "",
        &[
            ("g.yml", &buildspec(&["echo gated"])),
            ("f.yml", &buildspec(&["echo final"])),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_before_entry_condition_with_skip_skips_the_stage_and_the_execution_continues() {
    let ws = conditioned("SKIP", "release");
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let st = state(&h, "p").await;
    assert_eq!(stage_status(&st, "Gate").as_deref(), Some("Skipped"));
    assert_eq!(stage_status(&st, "Final").as_deref(), Some("Succeeded"));
    let cond = stage_state(&st, "Gate").condition.clone().unwrap();
    assert_eq!(cond.condition_type, "BEFORE_ENTRY");
    assert_eq!(cond.status, "Failed");
    assert_eq!(cond.result.as_deref(), Some("SKIP"));
    assert!(!cond.rules[0].passed);
    let acts = actions(&h, "p", &id).await;
    assert!(of(&acts, "G").is_empty(), "a skipped stage runs no action");
    assert_eq!(of(&acts, "F")[0].status, ActionStatus::Succeeded);
    // A skipped stage cannot be retried.
    let e = err(&h, retry_req("Gate", Some(&id), "ALL_ACTIONS")).await;
    assert_eq!(e.code, "StageNotRetryable", "{e}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_before_entry_condition_with_fail_fails_the_execution() {
    let ws = conditioned("FAIL", "release");
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Failed).await;
    let st = state(&h, "p").await;
    assert_eq!(stage_status(&st, "Gate").as_deref(), Some("Failed"));
    assert_eq!(stage_status(&st, "Final"), None);
    let acts = actions(&h, "p", &id).await;
    assert!(of(&acts, "G").is_empty());
    assert!(of(&acts, "F").is_empty());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_before_entry_condition_lets_the_stage_run() {
    let ws = conditioned("FAIL", "main");
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let st = state(&h, "p").await;
    assert_eq!(stage_status(&st, "Gate").as_deref(), Some("Succeeded"));
    let cond = stage_state(&st, "Gate").condition.clone().unwrap();
    assert_eq!(cond.status, "Succeeded");
    let acts = actions(&h, "p", &id).await;
    assert_eq!(of(&acts, "G")[0].status, ActionStatus::Succeeded);
    h.shutdown().await;
}

// ------------------------------------------------------------ variables

fn with_variables(p: &str, mode: &str, decls: &str) -> String {
    let anchor = format!("\"executionMode\": \"{mode}\",");
    assert!(p.contains(&anchor));
    p.replacen(&anchor, &format!("{anchor} \"variables\": {decls},"), 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_variables_reach_environment_variables_with_start_overrides_over_defaults() {
    let p = pipeline(
        "p",
        "QUEUED",
        &[stage(
            "Build",
            &[build_action_env(
                "B",
                1,
                "b.yml",
                &[("TARGET", "#{variables.DEPLOY_ENV}")],
            )],
            "",
        )],
    );
    let p = with_variables(
        &p,
        "QUEUED",
        r#"[{"name": "DEPLOY_ENV", "defaultValue": "dev", "description": "where to"}]"#,
    );
    let ws = workspace(
        &p,
        "",
        &[(
            "b.yml",
            "version: 0.2\nenv:\n  exported-variables: [SEEN]\nphases:\n  build:\n    commands:\n      - echo target=$TARGET\n      - export SEEN=$TARGET\n",
        )],
    );
    let h = ws.engine();
    let start_with = |vars: &[(&str, &str)]| Request::StartPipelineExecution {
        pipeline_name: "p".into(),
        variables: vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        source_revisions: vec![],
    };
    let id = match call(&h, start_with(&[("DEPLOY_ENV", "prod")]))
        .await
        .unwrap()
    {
        Reply::Started {
            pipeline_execution_id,
        } => pipeline_execution_id,
        other => panic!("{other:?}"),
    };
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let x = execution(&h, "p", &id).await;
    assert_eq!(
        x.variables.get("DEPLOY_ENV").map(String::as_str),
        Some("prod")
    );
    let acts = actions(&h, "p", &id).await;
    let b = of(&acts, "B")[0];
    let env = b
        .resolved_configuration
        .get("EnvironmentVariables")
        .unwrap();
    assert!(env.contains("\"prod\""), "{env}");
    assert!(!env.contains("#{"), "{env}");
    assert_eq!(
        b.output_variables.get("SEEN").map(String::as_str),
        Some("prod")
    );

    // Without an override the default applies.
    let id2 = start(&h, "p").await;
    until_status(&h, "p", &id2, ExecutionStatus::Succeeded).await;
    let acts = actions(&h, "p", &id2).await;
    assert_eq!(
        of(&acts, "B")[0]
            .output_variables
            .get("SEEN")
            .map(String::as_str),
        Some("dev")
    );

    // Undeclared or empty values are refused, and nothing starts.
    let e = err(&h, start_with(&[("NOPE", "x")])).await;
    assert_eq!(e.code, "ValidationException", "{e}");
    let e = err(&h, start_with(&[("DEPLOY_ENV", "")])).await;
    assert_eq!(e.code, "ValidationException", "{e}");
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
        Reply::Executions { executions, .. } => assert_eq!(executions.len(), 2),
        other => panic!("{other:?}"),
    }
    h.shutdown().await;
}

// -------------------------------------------------------------- secrets

/// Build.B reads `/app/token` (= `s3cr3t`, from a secrets file outside the
/// workspace) through `parameter-store`, prints it and lists it in
/// `exported-variables` beside a plain variable.
fn with_secret(g: &Path) -> Ws {
    let secrets = g.join("secrets.toml");
    std::fs::write(&secrets, "\"/app/token\" = \"s3cr3t\"\n").unwrap();
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage(
            "Build",
            &[build_action(
                "B",
                1,
                "b.yml",
                r#", "namespace": "BuildVars""#,
            )],
            "",
        )],
    );
    workspace(
        &p,
        &format!("[secrets]\nfile = \"{}\"\n", secrets.display()),
        &[(
            "b.yml",
            "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /app/token\n  exported-variables: [TOKEN, PLAIN]\nphases:\n  build:\n    commands:\n      - echo token=$TOKEN\n      - echo \"len=${#TOKEN}\"\n      - export PLAIN=visible\n",
        )],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_store_secrets_are_masked_in_the_action_log() {
    let g = tempfile::tempdir().unwrap();
    let ws = with_secret(g.path());
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let acts = actions(&h, "p", &id).await;
    let b = of(&acts, "B")[0];
    let mut log = pipedeck::store::logs::LogReader::open(
        &ws.load().state_dir.join("logs"),
        &b.action_execution_id,
    )
    .unwrap();
    assert!(!log.is_empty());
    let lines = log.read(0, log.len()).unwrap();
    let text = lines.join("\n");
    assert!(
        lines.iter().any(|l| l.contains("token=***")),
        "the secret is masked: {text}"
    );
    // The build did get the value (6 characters), only the log hides it.
    assert!(lines.iter().any(|l| l.contains("len=6")), "{text}");
    assert!(!text.contains("s3cr3t"), "the secret leaked: {text}");
    assert_eq!(
        b.output_variables.get("PLAIN").map(String::as_str),
        Some("visible")
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameter_store_secrets_are_never_exported_as_output_variables() {
    let g = tempfile::tempdir().unwrap();
    let ws = with_secret(g.path());
    let h = ws.engine();
    let id = start(&h, "p").await;
    until(&h, "p", "the execution ends", |_, execs| {
        exec_status(execs, &id).is_some_and(ExecutionStatus::is_terminal)
    })
    .await;
    let acts = actions(&h, "p", &id).await;
    let b = of(&acts, "B")[0];
    assert_eq!(
        b.output_variables.get("PLAIN").map(String::as_str),
        Some("visible")
    );
    assert!(
        !b.output_variables.contains_key("TOKEN"),
        "secrets are never exported: {:?}",
        b.output_variables
    );
    let all = serde_json::to_string(&acts).unwrap();
    assert!(
        !all.contains("s3cr3t"),
        "the secret leaked through the API: {all}"
    );
    h.shutdown().await;
}

// -------------------------------------------------------------- reports

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_reports_are_counted_with_the_failing_case_named() {
    let xml = "<testsuite name='calc' tests='4'>\
<testcase classname='calc' name='adds'/>\
<testcase classname='calc' name='subtracts'/>\
<testcase classname='calc' name='divides'><failure message='by zero'>boom</failure></testcase>\
<testcase classname='calc' name='roots'><skipped/></testcase>\
</testsuite>";
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out/tests\n      - {}\nreports:\n  unit:\n    files: ['**/*.xml']\n    base-directory: out/tests\n    file-format: JUNITXML\n",
        yaml_quote(&format!("echo \"{xml}\" > out/tests/junit.xml"))
    );
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[stage("Test", &[build_action("T", 1, "t.yml", "")], "")],
    );
    let ws = workspace(&p, "", &[("t.yml", &spec)]);
    let h = ws.engine();
    let id = start(&h, "p").await;
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let acts = actions(&h, "p", &id).await;
    let t = of(&acts, "T")[0];
    let r = t.test_report.clone().expect("a test report");
    assert_eq!((r.passed, r.failed, r.skipped), (2, 1, 1), "{r:?}");
    assert_eq!(r.failing, ["calc.divides"]);
    assert_eq!(r.files.len(), 1, "{r:?}");
    h.shutdown().await;
}
