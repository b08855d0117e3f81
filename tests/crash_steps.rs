//! A `kill -9` of the engine host at any moment loses nothing it reported:
//! while many short stages run (one execution, or two, the second entering
//! each stage as the first leaves it, so that one engine step writes both), the
//! host is killed right after a client saw some of them end, and every
//! action and stage end the client saw is in the store, ended the same
//! way, and is what the next engine serves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pipedeck::api::types::{ActionStatus, StageStatus};
use pipedeck::api::{EngineEvent, Reply, Request};
use pipedeck::backend::Backend;
use pipedeck::backend::remote::Remote;
use pipedeck::config::workspace::Workspace;

const STAGES: usize = 40;

/// `pipedeck serve` on the workspace: the engine host.
fn host(ws: &Ws) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pipedeck"))
        .arg("--data-dir")
        .arg(&ws.data)
        .arg("--workspace")
        .arg(&ws.root)
        .arg("serve")
        .env("PIPEDECK_CONFIG", ws.data.join("none.toml"))
        .env("PIPEDECK_EPHEMERAL_PORTS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn connect(loaded: &Workspace) -> Remote {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(c) = pipedeck::control::Client::connect(loaded).await {
            return Remote::new(loaded, c, "pipedeck-cli");
        }
        assert!(Instant::now() < deadline, "the host never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a client saw end: action execution id → status, and
/// (execution, stage) → status.
#[derive(Default)]
struct Seen {
    actions: BTreeMap<String, ActionStatus>,
    stages: BTreeMap<(String, String), StageStatus>,
}

impl Seen {
    fn note(&mut self, ev: EngineEvent) {
        match ev {
            EngineEvent::ActionChanged { action } if action.status != ActionStatus::InProgress => {
                self.actions
                    .insert(action.action_execution_id, action.status);
            }
            EngineEvent::StageChanged {
                pipeline_execution_id,
                stage_name,
                status,
                ..
            } if matches!(status, StageStatus::Succeeded | StageStatus::Failed) => {
                self.stages
                    .insert((pipeline_execution_id, stage_name), status);
            }
            _ => {}
        }
    }
}

/// Every end in `seen` is in the store at `db`, the same.
fn in_store(db: &std::path::Path, seen: &Seen, when: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    for (id, status) in &seen.actions {
        let stored: Option<String> = c
            .query_row(
                "SELECT status FROM action_executions WHERE id = ?1",
                [id],
                |r| r.get(0),
            )
            .ok();
        assert_eq!(
            stored.as_deref(),
            Some(status.as_str()),
            "{when}: action {id} was reported {status:?}"
        );
    }
    for ((exec, stage), status) in &seen.stages {
        let stored: Option<Option<String>> = c
            .query_row(
                "SELECT status FROM stage_executions WHERE execution_id = ?1 AND stage = ?2",
                [exec, stage],
                |r| r.get(0),
            )
            .ok();
        assert_eq!(
            stored.flatten().as_deref(),
            Some(status.as_str()),
            "{when}: stage {stage} of {exec} was reported {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_while_short_stages_run_loses_no_end_a_client_saw() {
    let stages: Vec<String> = (1..=STAGES)
        .map(|k| {
            stage(
                &format!("S{k:02}"),
                &[build_action(&format!("B{k:02}"), 1, "t.yml", "")],
                "",
            )
        })
        .collect();
    let ws = workspace(
        &pipeline("p", "QUEUED", &stages),
        "",
        &[("t.yml", &buildspec(&["true"]))],
    );
    let loaded = ws.load();
    let db = loaded.state_dir.join("state.db");
    let mut seen = Seen::default();
    let mut executions = Vec::new();
    // Killed after a client saw 1, 2, 4, 6, 9 and 15 actions succeed (with
    // one execution, then two, in turn):
    // each kill lands somewhere in the writes of the steps that follow
    // (an action's end and its stage's row, its stage's end, the next
    // stage's start). Before the action's and the stage's rows were one
    // transaction, about half the runs caught an announced end that the
    // next engine took back as interrupted.
    const KILLS: [usize; 6] = [1, 2, 4, 6, 9, 15];
    for (cycle, after) in KILLS.into_iter().enumerate() {
        let mut child = host(&ws);
        let remote = connect(&loaded).await;
        let mut events = remote.subscribe().await.unwrap();
        // One execution, or two: in QUEUED mode the second enters each
        // stage as the first leaves it, so one step (an action's end)
        // writes both.
        let mut ids = Vec::new();
        for _ in 0..1 + cycle % 2 {
            match remote
                .call(Request::StartPipelineExecution {
                    pipeline_name: "p".into(),
                    variables: Default::default(),
                    source_revisions: vec![],
                })
                .await
                .unwrap()
            {
                Reply::Started {
                    pipeline_execution_id,
                } => ids.push(pipeline_execution_id),
                other => panic!("{other:?}"),
            }
        }
        executions.extend(ids.iter().cloned());
        let mut succeeded = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        while succeeded < after {
            let ev = tokio::time::timeout_at(deadline, events.next())
                .await
                .expect("the actions to succeed")
                .expect("the host to stay up");
            if let EngineEvent::ActionChanged { action } = &ev
                && ids.contains(&action.pipeline_execution_id)
                && action.status == ActionStatus::Succeeded
            {
                succeeded += 1;
            }
            seen.note(ev);
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // What was already on its way to the client was reported too.
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(5), events.next()).await {
            seen.note(ev);
        }
        in_store(&db, &seen, &format!("after kill {}", cycle + 1));
    }
    assert!(
        seen.actions.len() >= KILLS.iter().sum::<usize>(),
        "{}",
        seen.actions.len()
    );
    // The next engine recovers the interrupted executions and serves the
    // same ends.
    let h = ws.engine();
    for id in &executions {
        for a in actions(&h, "p", id).await {
            if let Some(status) = seen.actions.get(&a.action_execution_id) {
                assert_eq!(a.status, *status, "{}/{}", a.stage_name, a.action_name);
            }
        }
    }
    in_store(&db, &seen, "after the restart");
    h.shutdown().await;
}
