//! Engine errors are seen, never swallowed: each test provokes one failure
//! (a write the store refuses, an unreadable artifact, a trigger store that
//! fails) and checks that the message reaches the caller, the execution or
//! the audit trail, and that nothing claims a success that did not happen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use pipedeck::api::types::{ActionStatus, ExecutionStatus};
use pipedeck::api::{EngineEvent, Reply, Request};
use pipedeck::engine::{EngineHandle, STORE_FAILED};

const INJECTED: &str = "injected: disk I/O error";

/// Source, then one build that prints a line.
fn one_build() -> Ws {
    let p = pipeline(
        "p",
        "QUEUED",
        &[stage("Build", &[build_action("A", 1, "a.yml", "")], "")],
    );
    workspace(&p, "", &[("a.yml", &buildspec(&["echo a-ran"]))])
}

/// Makes the engine's store refuse writes: `sql` holds trigger bodies'
/// conditions, installed through a second connection to the same file
/// (SQLite applies a schema change to every connection).
fn refuse(h: &EngineHandle, triggers: &[(&str, &str, &str)]) {
    let db = rusqlite::Connection::open(h.workspace.state_dir.join("state.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    for (name, on, when) in triggers {
        db.execute_batch(&format!(
            "CREATE TRIGGER {name} BEFORE {on} WHEN {when} \
             BEGIN SELECT RAISE(ABORT, '{INJECTED}'); END;"
        ))
        .unwrap();
    }
}

/// Every event until execution `id` is terminal (60 s at most).
async fn events_until_done(
    h: &EngineHandle,
    rx: &mut tokio::sync::broadcast::Receiver<EngineEvent>,
    id: &str,
) -> Vec<EngineEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            Ok(Ok(ev)) => seen.push(ev),
            Ok(Err(e)) => panic!("event stream: {e}"),
            Err(_) => {}
        }
        if execution(h, "p", id).await.status.is_terminal() {
            // What was sent before the answer is in the channel already.
            while let Ok(ev) = rx.try_recv() {
                seen.push(ev);
            }
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_the_store_refuses_is_not_announced_and_the_execution_fails_with_the_cause() {
    let ws = one_build();
    let h = ws.engine();
    refuse(
        &h,
        &[
            (
                "no_ok_i",
                "INSERT ON executions",
                "NEW.status = 'Succeeded'",
            ),
            (
                "no_ok_u",
                "UPDATE ON executions",
                "NEW.status = 'Succeeded'",
            ),
        ],
    );
    let mut rx = h.subscribe();
    let id = start(&h, "p").await;
    let seen = events_until_done(&h, &mut rx, &id).await;
    for ev in &seen {
        if let EngineEvent::ExecutionChanged { execution } = ev {
            assert_ne!(
                execution.status,
                ExecutionStatus::Succeeded,
                "a success the store did not record was announced"
            );
        }
    }
    let exec = execution(&h, "p", &id).await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    let summary = exec.status_summary.unwrap_or_default();
    assert!(
        summary.starts_with(STORE_FAILED) && summary.contains(INJECTED),
        "{summary}"
    );
    assert!(
        seen.iter().any(
            |ev| matches!(ev, EngineEvent::ExecutionChanged { execution }
            if execution.status == ExecutionStatus::Failed)
        ),
        "the failure is announced"
    );
    // What the store holds agrees: a restarted engine sees the failure.
    h.shutdown().await;
    let h = ws.engine();
    let exec = execution(&h, "p", &id).await;
    assert_eq!(exec.status, ExecutionStatus::Failed);
    assert!(exec.status_summary.unwrap_or_default().contains(INJECTED));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_end_the_store_refuses_fails_the_action_with_the_cause() {
    let ws = one_build();
    let h = ws.engine();
    refuse(
        &h,
        &[
            (
                "no_a_i",
                "INSERT ON action_executions",
                "NEW.action = 'A' AND NEW.status = 'Succeeded'",
            ),
            (
                "no_a_u",
                "UPDATE ON action_executions",
                "NEW.action = 'A' AND NEW.status = 'Succeeded'",
            ),
        ],
    );
    let mut rx = h.subscribe();
    let id = start(&h, "p").await;
    let seen = events_until_done(&h, &mut rx, &id).await;
    for ev in &seen {
        if let EngineEvent::ActionChanged { action } = ev {
            assert!(
                !(action.action_name == "A" && action.status == ActionStatus::Succeeded),
                "an action end the store did not record was announced"
            );
        }
    }
    let acts = actions(&h, "p", &id).await;
    let a = acts.iter().find(|a| a.action_name == "A").unwrap();
    assert_eq!(a.status, ActionStatus::Failed);
    let msg = a.error_details.as_ref().unwrap().message.clone();
    assert!(msg.contains(INJECTED), "{msg}");
    assert_eq!(
        execution(&h, "p", &id).await.status,
        ExecutionStatus::Failed
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_the_store_refuses_is_refused_with_the_cause_and_leaves_nothing() {
    let ws = one_build();
    let h = ws.engine();
    refuse(&h, &[("no_new", "INSERT ON executions", "1")]);
    let mut rx = h.subscribe();
    let err = call(
        &h,
        Request::StartPipelineExecution {
            pipeline_name: "p".into(),
            variables: Default::default(),
            source_revisions: vec![],
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InternalError");
    assert!(err.message.contains(INJECTED), "{}", err.message);
    let Reply::Executions { executions, .. } = call(
        &h,
        Request::ListPipelineExecutions {
            pipeline_name: "p".into(),
            max_results: None,
            next_token: None,
        },
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert!(executions.is_empty(), "{executions:?}");
    while let Ok(ev) = rx.try_recv() {
        assert!(
            !matches!(ev, EngineEvent::ExecutionChanged { .. }),
            "an execution the store refused was announced: {ev:?}"
        );
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transition_change_the_store_refuses_is_not_made() {
    let ws = one_build();
    let h = ws.engine();
    refuse(&h, &[("no_tr", "INSERT ON transitions", "1")]);
    let err = call(
        &h,
        Request::DisableStageTransition {
            pipeline_name: "p".into(),
            stage_name: "Build".into(),
            reason: "freeze".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "InternalError");
    assert!(err.message.contains(INJECTED), "{}", err.message);
    let st = state(&h, "p").await;
    let build = st
        .stage_states
        .iter()
        .find(|s| s.stage_name == "Build")
        .unwrap();
    assert!(build.inbound_transition_state.enabled);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_whose_input_artifact_cannot_be_read_fails_with_the_reason() {
    let cond = r#", "beforeEntry": {"conditions": [{"rules": [{"name": "has-file",
          "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "Commands", "version": "1"},
          "inputArtifacts": [{"name": "Src"}],
          "commands": ["test -f a.yml"]}]}]}"#;
    let p = pipeline(
        "p",
        "QUEUED",
        &[stage("Gate", &[build_action("G", 1, "a.yml", "")], cond)],
    );
    let ws = workspace(&p, "", &[("a.yml", &buildspec(&["echo gated"]))]);
    let h = ws.engine();
    // Held in front of Gate while the artifact goes missing.
    call(
        &h,
        Request::DisableStageTransition {
            pipeline_name: "p".into(),
            stage_name: "Gate".into(),
            reason: "hold".into(),
        },
    )
    .await
    .unwrap();
    let id = start(&h, "p").await;
    until(&h, "p", "waiting in front of Gate", |st, _| {
        st.stage_states
            .iter()
            .find(|s| s.stage_name == "Gate")
            .is_some_and(|s| !s.inbound_executions.is_empty())
    })
    .await;
    let store = h.workspace.state_dir.join("artifacts");
    for e in std::fs::read_dir(&store).unwrap() {
        std::fs::remove_dir_all(e.unwrap().path()).unwrap();
    }
    call(
        &h,
        Request::EnableStageTransition {
            pipeline_name: "p".into(),
            stage_name: "Gate".into(),
        },
    )
    .await
    .unwrap();
    until_status(&h, "p", &id, ExecutionStatus::Failed).await;
    let st = state(&h, "p").await;
    let gate = st
        .stage_states
        .iter()
        .find(|s| s.stage_name == "Gate")
        .unwrap();
    let cond = gate.condition.as_ref().unwrap();
    assert_eq!(cond.status, "Failed");
    let rule = &cond.rules[0];
    assert!(!rule.passed);
    assert!(
        rule.message.contains("input artifact `Src` cannot be read")
            && rule.message.contains("missing"),
        "{}",
        rule.message
    );
    let summary = execution(&h, "p", &id).await.status_summary.unwrap();
    assert!(summary.contains("cannot be read"), "{summary}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_store_failure_is_reported_in_the_audit_trail() {
    let ws = one_build();
    // The store exists (and has its schema) before the refusal goes in.
    let h = ws.engine();
    refuse(&h, &[("no_refs", "INSERT ON trigger_refs", "1")]);
    h.shutdown().await;
    let h = ws.engine_with(true);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
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
        if let Some(e) = events
            .iter()
            .find(|e| e.event_name == "PollForSourceChanges")
        {
            assert_eq!(e.error_code.as_deref(), Some("TriggerStoreException"));
            let msg = e.error_message.clone().unwrap_or_default();
            assert!(
                msg.contains(INJECTED) && msg.contains("pipeline p, source Source"),
                "{msg}"
            );
            // Reported once, not at every poll.
            tokio::time::sleep(Duration::from_millis(800)).await;
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
            assert_eq!(
                events
                    .iter()
                    .filter(|e| e.event_name == "PollForSourceChanges")
                    .count(),
                1
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no trigger failure was reported"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.shutdown().await;
}
