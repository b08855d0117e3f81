//! Backend calls per minute of the TUI: the whole loop (`tui::Loop`) over
//! a fake backend with 20 pipelines, on a paused clock so a minute takes
//! milliseconds. This is the figure that keeps the AWS backend inside
//! CodePipeline's rate limits (GetPipelineState: 20 requests per second
//! per account, shared by every client).
//!
//! Cases, each a simulated minute:
//! - idle on the Pipelines screen, nothing happening;
//! - one pipeline running: an action changes every 2 s and its log grows
//!   every 100 ms (what a build publishes);
//! - the same on the Environments screen (it follows metrics by the clock).
//!
//! The baseline printed beside each figure is the cost of one full
//! snapshot (what every event cost before refreshes named what changed).
//!
//! Measured 2026-12-01 (the figures do not depend on the machine): before
//! refreshes named what changed, one running pipeline cost 1,260 calls a
//! minute (21/s: 30 full snapshots); after, 60 (1/s: GetPipelineState and
//! ListPipelineExecutions of that pipeline when its action changes), idle
//! 0, and the Environments screen adds one ListEnvironments a second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use pipedeck::api::{EngineEvent, Request};
use pipedeck::backend::fake::{Fake, FakeState};
use pipedeck::tui::Loop;
use pipedeck::tui::app::{App, Msg};
use pipedeck::tui::keymap::Keymap;
use pipedeck::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

const PIPELINES: usize = 20;
const T0: &str = "2026-11-26T10:00:00.000Z";

fn state() -> FakeState {
    let mut s = FakeState::default();
    for i in 0..PIPELINES {
        let name = format!("p{i:02}");
        let exec = json!({
            "pipelineExecutionId": format!("e-{i:02}"), "pipelineName": name, "pipelineVersion": 1,
            "status": if i == 0 { "InProgress" } else { "Succeeded" }, "statusSummary": null,
            "startTime": T0, "lastUpdateTime": T0,
            "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "alice"},
            "executionMode": "SUPERSEDED", "executionType": "STANDARD", "rollbackTarget": null,
            "sourceRevisions": [], "variables": {}, "stopReason": null, "currentStage": null
        });
        s.pipelines.push(
            serde_json::from_value(json!({
                "name": name, "version": 1, "pipelineType": "V2", "executionMode": "SUPERSEDED",
                "latestExecution": exec, "pendingApprovals": 0
            }))
            .unwrap(),
        );
        s.states.insert(
            name.clone(),
            serde_json::from_value(
                json!({"pipelineName": name, "pipelineVersion": 1, "stageStates": []}),
            )
            .unwrap(),
        );
        s.executions
            .insert(name.clone(), vec![serde_json::from_value(exec).unwrap()]);
        let mut def = pipedeck::model::load::load_bytes(
            "p.json",
            pipedeck::cli::demo::DEMO_PIPELINE.as_bytes(),
            &Default::default(),
        )
        .pipelines[0]
            .pipeline
            .clone();
        def.name = name.clone();
        s.definitions.insert(name, def);
    }
    for env in ["dev", "staging", "prod"] {
        s.environments.push(
            serde_json::from_value(json!({
                "name": env, "kind": "local", "location": "http://127.0.0.1:8081", "url": "http://127.0.0.1:8081",
                "strategy": "AllAtOnce", "protected": env == "prod", "live": "blue",
                "variants": [{"label": "blue", "revision": "0123456789ab", "commitMessage": null,
                    "ready": 2, "total": 2, "restarts": 0, "weightPercent": 100}],
                "release": null, "metrics": {"rps": 10.0, "errorRate": 0.0, "p99Ms": 3.0},
                "sync": null, "deployment": null, "events": []
            }))
            .unwrap(),
        );
    }
    s
}

fn action_event(n: u64) -> EngineEvent {
    EngineEvent::ActionChanged {
        action: serde_json::from_value(json!({
            "actionExecutionId": "ae-build", "pipelineExecutionId": "e-00",
            "stageName": "Build", "actionName": "UnitTests", "attempt": 1, "status": "InProgress",
            "summary": null, "startTime": T0, "lastStatusChange": T0, "token": null,
            "externalExecutionId": null, "errorDetails": null,
            "resolvedConfiguration": {}, "inputArtifacts": [], "outputArtifacts": [],
            "outputVariables": {}, "testReport": null, "approval": null, "logLines": n
        }))
        .unwrap(),
    }
}

/// Runs one simulated minute; the calls it made, by operation.
fn minute(running: bool, screen: &str) -> Vec<&'static str> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let fake = Arc::new(Fake::new(state()));
        let mut app = App::new(
            "bench".into(),
            "fake".into(),
            false,
            Theme::builtin("default").unwrap(),
            Keymap::default(),
        );
        app.size = (120, 40);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let backend: pipedeck::backend::Shared = fake.clone();
        let l = Loop {
            backend: Arc::new(std::sync::RwLock::new(backend)),
            catalogue: Arc::new(pipedeck::diagnose::Catalogue::builtin()),
            reopen: None,
            start_first: None,
            reconnecting: Default::default(),
            out: None,
        };
        let tx2 = tx.clone();
        let ui = tokio::spawn(async move {
            let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
            let _ = l.run(&mut t, app, tx2, rx).await;
        });
        // Settle the first refresh, then count from zero.
        tokio::time::sleep(Duration::from_secs(2)).await;
        if screen == "envs" {
            tx.send(Msg::Key(crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char('e'),
                crossterm::event::KeyModifiers::NONE,
            )))
            .unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        fake.with(|s| s.calls.clear());
        let mut lines = 0u64;
        for tenth in 0..600u64 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if running {
                lines += 50;
                fake.publish(EngineEvent::LogAppended {
                    action_execution_id: "ae-build".into(),
                    lines,
                });
                if tenth % 20 == 0 {
                    fake.publish(action_event(lines));
                }
            }
        }
        let calls = fake.call_names();
        ui.abort();
        calls
    })
}

fn per_op(calls: &[&'static str]) -> String {
    let mut m = std::collections::BTreeMap::new();
    for c in calls {
        *m.entry(*c).or_insert(0) += 1;
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() {
    // The cost of one full snapshot with this many pipelines.
    let snapshot = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let fake = Fake::new(state());
            use pipedeck::backend::Backend;
            let _ = fake.call(Request::list_pipelines()).await;
            for i in 0..PIPELINES {
                let name = format!("p{i:02}");
                let _ = fake
                    .call(Request::GetPipelineState {
                        pipeline_name: name.clone(),
                    })
                    .await;
                let _ = fake
                    .call(Request::ListPipelineExecutions {
                        pipeline_name: name,
                        max_results: Some(50),
                        next_token: None,
                    })
                    .await;
            }
            let _ = fake.call(Request::ListEnvironments).await;
            fake.call_names().len()
        })
    };
    println!("backend calls per simulated minute, {PIPELINES} pipelines");
    println!("baseline: one full snapshot = {snapshot} calls");
    for (label, running, screen) in [
        ("idle, Pipelines screen", false, "pipelines"),
        (
            "one running (action event /2 s, log /100 ms), Pipelines screen",
            true,
            "pipelines",
        ),
        ("one running, Environments screen", true, "envs"),
    ] {
        let calls = minute(running, screen);
        println!(
            "{label:<66} {:>6} calls/min ({:.1}/s; {:.1} full snapshots)  [{}]",
            calls.len(),
            calls.len() as f64 / 60.0,
            calls.len() as f64 / snapshot as f64,
            per_op(&calls)
        );
    }
}
