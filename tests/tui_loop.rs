//! The whole TUI loop, headless: the real event loop over a TestBackend
//! terminal and the fake backend. Keys go in, requests come out, the
//! screen is read back (television's app tests do the same).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use pipedeck::api::{ApiError, EngineEvent, Request};
use pipedeck::backend::Backend;
use pipedeck::backend::fake::{Fake, FakeState};
use pipedeck::tui::app::{App, Msg};
use pipedeck::tui::keymap::Keymap;
use pipedeck::tui::theme::Theme;
use pipedeck::tui::{Loop, Reopen};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;
use tokio::sync::mpsc;

const T0: &str = "2026-11-26T10:00:00.000Z";

fn action(stage: &str, name: &str, status: &str, token: bool) -> serde_json::Value {
    json!({
        "actionExecutionId": format!("ae-{name}"), "pipelineExecutionId": "e2000000-0000",
        "stageName": stage, "actionName": name, "attempt": 1, "status": status,
        "summary": null, "startTime": T0, "lastStatusChange": T0,
        "token": if token { json!("tok-1") } else { json!(null) },
        "externalExecutionId": null, "errorDetails": null, "resolvedConfiguration": {},
        "inputArtifacts": [], "outputArtifacts": [], "outputVariables": {},
        "testReport": null,
        "approval": if token { json!({"customData": "Ship it?", "externalEntityLink": null,
            "expires": "2026-12-03T10:00:00.000Z", "result": null}) } else { json!(null) },
        "logLines": 3
    })
}

fn stage(name: &str, status: &str, actions: Vec<serde_json::Value>) -> serde_json::Value {
    json!({"stageName": name, "inboundExecutions": [],
        "inboundTransitionState": {"enabled": true, "lastChangedBy": null, "lastChangedAt": null, "disabledReason": null},
        "latestExecution": {"pipelineExecutionId": "e2000000-0000", "status": status, "type": "STANDARD"},
        "actionStates": actions,
        "retryStageMetadata": {"autoStageRetryAttempt": 0, "manualStageRetryAttempt": 0, "latestRetryTrigger": null},
        "condition": null})
}

/// The demo pipeline as `web`, its Build succeeded and an approval waiting.
fn state() -> FakeState {
    let mut def = pipedeck::model::load::load_bytes(
        "p.json",
        pipedeck::cli::demo::DEMO_PIPELINE.as_bytes(),
        &Default::default(),
    )
    .pipelines[0]
        .pipeline
        .clone();
    def.name = "web".into();
    let stages: Vec<serde_json::Value> = def
        .stages
        .iter()
        .map(|s| {
            let first = s.name == def.stages[0].name;
            let approval = s.actions.iter().any(|a| a.action_type_id.category == "Approval");
            let acts = s
                .actions
                .iter()
                .map(|a| {
                    json!({"actionName": a.name, "latestExecution": if first || approval {
                        action(&s.name, &a.name, if approval { "InProgress" } else { "Succeeded" }, approval)
                    } else { json!(null) }})
                })
                .collect();
            stage(&s.name, if approval { "InProgress" } else { "Succeeded" }, acts)
        })
        .collect();
    let exec = json!({
        "pipelineExecutionId": "e2000000-0000", "pipelineName": "web", "pipelineVersion": 1,
        "status": "InProgress", "statusSummary": null, "startTime": T0, "lastUpdateTime": T0,
        "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "alice"},
        "executionMode": "SUPERSEDED", "executionType": "STANDARD", "rollbackTarget": null,
        "sourceRevisions": [], "variables": {}, "stopReason": null, "currentStage": null
    });
    let mut s = FakeState {
        pipelines: vec![
            serde_json::from_value(json!({
                "name": "web", "version": 1, "pipelineType": "V2", "executionMode": "SUPERSEDED",
                "latestExecution": exec, "pendingApprovals": 1
            }))
            .unwrap(),
        ],
        ..FakeState::default()
    };
    s.states.insert(
        "web".into(),
        serde_json::from_value(
            json!({"pipelineName": "web", "pipelineVersion": 1, "stageStates": stages}),
        )
        .unwrap(),
    );
    s.executions
        .insert("web".into(), vec![serde_json::from_value(exec).unwrap()]);
    s.definitions.insert("web".into(), def);
    s.logs.insert(
        "ae-Source".into(),
        vec![
            "cloning".into(),
            "checked out 0123456".into(),
            "done".into(),
        ],
    );
    s
}

struct Running {
    tx: mpsc::UnboundedSender<Msg>,
    done: tokio::task::JoinHandle<Terminal<TestBackend>>,
}

fn key(c: char) -> Msg {
    Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char(c),
        crossterm::event::KeyModifiers::NONE,
    ))
}

fn code(k: crossterm::event::KeyCode) -> Msg {
    Msg::Key(crossterm::event::KeyEvent::new(
        k,
        crossterm::event::KeyModifiers::NONE,
    ))
}

/// Starts the loop on a 120×30 TestBackend terminal over `fake`.
fn start(fake: Arc<Fake>, reopen: Option<Reopen>) -> Running {
    let mut app = App::new(
        "demo".into(),
        fake.describe(),
        false,
        Theme::builtin("default").unwrap(),
        Keymap::default(),
    );
    app.size = (120, 30);
    let (tx, rx) = mpsc::unbounded_channel();
    let backend: pipedeck::backend::Shared = fake;
    let l = Loop {
        backend: Arc::new(std::sync::RwLock::new(backend)),
        catalogue: Arc::new(pipedeck::diagnose::Catalogue::builtin()),
        reopen,
        start_first: None,
        reconnecting: Default::default(),
        out: None,
    };
    let tx2 = tx.clone();
    let done = tokio::spawn(async move {
        let mut t = Terminal::new(TestBackend::new(120, 30)).unwrap();
        let (r, _) = l.run(&mut t, app, tx2, rx).await;
        r.unwrap();
        t
    });
    Running { tx, done }
}

impl Running {
    fn send(&self, m: Msg) {
        self.tx.send(m).unwrap();
    }

    /// Quits and gives back the last screen.
    async fn quit(self) -> String {
        self.send(key('q'));
        // Quitting with an execution running asks first.
        self.send(key('y'));
        let t = tokio::time::timeout(Duration::from_secs(10), self.done)
            .await
            .expect("the loop ends on q")
            .unwrap();
        format!("{}", t.backend())
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

async fn until(fake: &Fake, what: &str, pred: impl Fn(&[&'static str]) -> bool) {
    for _ in 0..100 {
        if pred(&fake.call_names()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: calls were {:?}", fake.call_names());
}

#[tokio::test]
async fn keys_in_requests_out_screen_back() {
    let fake = Arc::new(Fake::new(state()));
    let r = start(fake.clone(), None);
    // The first refresh reads the list, each state, the executions, the
    // environments and the definition (never a file).
    until(&fake, "first refresh", |c| {
        c.contains(&"ListPipelines")
            && c.contains(&"GetPipeline")
            && c.contains(&"ListEnvironments")
    })
    .await;
    settle().await;
    // `:approvals` lists the pending approval; `a` asks, `y` approves: a
    // PutApprovalResult for that pipeline goes out.
    for c in ":approvals".chars() {
        r.send(key(c));
    }
    r.send(code(crossterm::event::KeyCode::Enter));
    settle().await;
    r.send(key('a'));
    settle().await;
    r.send(key('y'));
    until(&fake, "approval", |c| c.contains(&"PutApprovalResult")).await;
    let approval = fake.with(|s| {
        s.calls
            .iter()
            .find(|c| matches!(c, Request::PutApprovalResult { .. }))
            .cloned()
            .unwrap()
    });
    let Request::PutApprovalResult {
        pipeline_name,
        status,
        ..
    } = approval
    else {
        unreachable!()
    };
    assert_eq!(pipeline_name, "web");
    assert_eq!(status, "Approved");
    settle().await;
    let screen = r.quit().await;
    assert!(screen.contains("demo"), "{screen}");
    assert!(screen.contains("web"), "{screen}");
}

#[tokio::test]
async fn an_event_refreshes_and_a_failed_refresh_is_said_not_hidden() {
    let fake = Arc::new(Fake::new(state()));
    let r = start(fake.clone(), None);
    until(&fake, "first refresh", |c| c.contains(&"ListEnvironments")).await;
    settle().await;
    let before = fake.call_names().len();
    fake.with(|s| {
        s.failures.insert(
            "GetPipelineState".into(),
            ApiError::new("ThrottlingException", "Rate exceeded"),
        );
    });
    fake.publish(EngineEvent::StageChanged {
        pipeline_name: "web".into(),
        pipeline_execution_id: "e2000000-0000".into(),
        stage_name: "Build".into(),
        status: pipedeck::api::types::StageStatus::InProgress,
    });
    until(&fake, "refresh after an event", |c| c.len() > before).await;
    settle().await;
    let screen = r.quit().await;
    assert!(
        screen.contains("ThrottlingException"),
        "a failed refresh shows its error:\n{screen}"
    );
    let header = screen.lines().next().unwrap_or_default().to_owned();
    assert!(
        header.contains("STALE"),
        "and the header marks the data stale:\n{screen}"
    );
}

#[tokio::test]
async fn an_event_reads_again_only_what_it_names() {
    let fake = Arc::new(Fake::new(state()));
    let r = start(fake.clone(), None);
    until(&fake, "first refresh", |c| c.contains(&"ListEnvironments")).await;
    settle().await;
    fake.with(|s| s.calls.clear());
    fake.publish(EngineEvent::StageChanged {
        pipeline_name: "web".into(),
        pipeline_execution_id: "e2000000-0000".into(),
        stage_name: "Build".into(),
        status: pipedeck::api::types::StageStatus::InProgress,
    });
    until(&fake, "the pipeline read again", |c| {
        c.contains(&"ListPipelineExecutions")
    })
    .await;
    fake.publish(EngineEvent::EnvironmentChanged {
        environment_name: "dev".into(),
    });
    until(&fake, "the environments read again", |c| {
        c.contains(&"ListEnvironments")
    })
    .await;
    settle().await;
    assert_eq!(
        fake.call_names(),
        [
            "GetPipelineState",
            "ListPipelineExecutions",
            "ListEnvironments"
        ],
        "no full snapshot for an event that names what changed"
    );
    // A lost event reads everything again.
    fake.with(|s| s.calls.clear());
    fake.publish(EngineEvent::Resync { missed: 3 });
    until(&fake, "a full refresh", |c| c.contains(&"ListPipelines")).await;
    r.quit().await;
}

#[tokio::test]
async fn a_failed_log_read_shows_its_error_instead_of_an_empty_page() {
    let fake = Arc::new(Fake::new(state()));
    fake.with(|s| {
        s.failures.insert(
            "GetLogEvents".into(),
            ApiError::new("InternalError", "reading log ae-Source: Input/output error"),
        );
    });
    let r = start(fake.clone(), None);
    until(&fake, "first refresh", |c| c.contains(&"ListEnvironments")).await;
    settle().await;
    r.send(code(crossterm::event::KeyCode::Enter));
    settle().await;
    r.send(key('L'));
    until(&fake, "log read", |c| c.contains(&"GetLogEvents")).await;
    settle().await;
    let screen = r.quit().await;
    assert!(
        screen.contains("Input/output error"),
        "the log read's error is on screen:\n{screen}"
    );
}

#[tokio::test]
async fn when_the_engine_goes_the_header_says_so_and_it_reconnects() {
    let fake = Arc::new(Fake::new(state()));
    let second = Arc::new(Fake::new(state()));
    let s2 = second.clone();
    let reopen: Reopen = Arc::new(move || {
        let b: pipedeck::backend::Shared = s2.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(b)
        })
    });
    let r = start(fake.clone(), Some(reopen));
    until(&fake, "first refresh", |c| c.contains(&"ListEnvironments")).await;
    settle().await;
    fake.go_away();
    // The reconnection reads everything again from the new backend.
    until(&second, "refresh after reconnecting", |c| {
        c.contains(&"ListPipelines") && c.contains(&"ListEnvironments")
    })
    .await;
    settle().await;
    let screen = r.quit().await;
    assert!(screen.contains("reconnected"), "{screen}");
}

#[tokio::test]
async fn without_a_way_back_the_header_keeps_saying_the_engine_is_gone() {
    let fake = Arc::new(Fake::new(state()));
    let r = start(fake.clone(), None);
    until(&fake, "first refresh", |c| c.contains(&"ListEnvironments")).await;
    settle().await;
    fake.go_away();
    settle().await;
    let screen = r.quit().await;
    let header = screen.lines().next().unwrap_or_default().to_owned();
    assert!(header.contains("engine gone"), "{screen}");
}

#[tokio::test]
async fn a_failed_search_and_a_failed_audit_read_are_said() {
    let fake = Arc::new(Fake::new(state()));
    fake.with(|s| {
        s.failures.insert(
            "FilterLogEvents".into(),
            ApiError::new(
                "InvalidParameterException",
                "invalid pattern: unclosed group",
            ),
        );
        s.failures.insert(
            "LookupEvents".into(),
            ApiError::new("AccessDeniedException", "cloudtrail:LookupEvents denied"),
        );
    });
    let r = start(fake.clone(), None);
    until(&fake, "first refresh", |c| c.contains(&"ListEnvironments")).await;
    settle().await;
    // The Source action's log, then `/` and a pattern.
    r.send(code(crossterm::event::KeyCode::Enter));
    settle().await;
    r.send(key('L'));
    until(&fake, "log read", |c| c.contains(&"GetLogEvents")).await;
    settle().await;
    r.send(key('/'));
    for c in "chec(".chars() {
        r.send(key(c));
    }
    r.send(code(crossterm::event::KeyCode::Enter));
    until(&fake, "search", |c| c.contains(&"FilterLogEvents")).await;
    settle().await;
    // The audit trail.
    for c in ":audit".chars() {
        r.send(key(c));
    }
    r.send(code(crossterm::event::KeyCode::Enter));
    until(&fake, "audit read", |c| c.contains(&"LookupEvents")).await;
    settle().await;
    let screen = r.quit().await;
    assert!(
        screen.contains("cloudtrail:LookupEvents denied"),
        "the audit read's error is on screen:\n{screen}"
    );
    assert!(
        screen.contains("unclosed group"),
        "the search's error is on screen (not \"no match\"):\n{screen}"
    );
}

#[tokio::test]
async fn a_diagnosis_whose_log_cannot_be_read_says_so() {
    let mut st = state();
    // The Source action failed: the TUI diagnoses it on its own.
    if let Some(a) = st
        .states
        .get_mut("web")
        .and_then(|s| s.stage_states[0].action_states[0].latest_execution.as_mut())
    {
        a.status = pipedeck::api::types::ActionStatus::Failed;
    }
    st.failures.insert(
        "GetLogEvents".into(),
        ApiError::new("InternalError", "reading log ae-Source: Permission denied"),
    );
    let fake = Arc::new(Fake::new(st));
    let r = start(fake.clone(), None);
    until(&fake, "the diagnosis reads the log", |c| {
        c.contains(&"LookupEvents") && c.contains(&"GetLogEvents")
    })
    .await;
    settle().await;
    let screen = r.quit().await;
    assert!(
        screen.contains("reading the log for the diagnosis failed"),
        "the diagnosis says its log could not be read:\n{screen}"
    );
}

#[tokio::test]
async fn a_store_the_engine_cannot_write_is_said_in_the_header() {
    let mut st = state();
    st.store_problem = Some("disk full: 2 writes wait (No space left on device)".into());
    let fake = Arc::new(Fake::new(st));
    let r = start(fake.clone(), None);
    until(&fake, "engine info", |c| c.contains(&"EngineInfo")).await;
    settle().await;
    let screen = r.quit().await;
    let header = screen.lines().next().unwrap_or_default().to_owned();
    assert!(header.contains("STORE: disk full"), "{screen}");
}

#[tokio::test]
async fn slowed_updates_are_said_in_the_footer_until_they_are_normal_again() {
    let slowed = || EngineEvent::BackendStatus {
        description: "AWS prod · 123456789012 · eu-west-1 · updates slowed (throttled)".into(),
        note: Some("updates slowed (throttled)".into()),
    };
    let fake = Arc::new(Fake::new(state()));
    let r = start(fake.clone(), None);
    until(&fake, "first refresh", |c| c.contains(&"ListEnvironments")).await;
    settle().await;
    fake.publish(slowed());
    settle().await;
    let screen = r.quit().await;
    let lines: Vec<&str> = screen.lines().collect();
    let footer = lines.last().copied().unwrap_or_default();
    assert!(footer.contains("updates slowed (throttled)"), "{screen}");
    assert!(lines[0].contains("AWS prod · 123456789012"), "{screen}");

    // Back to normal: the footer no longer says it.
    let fake = Arc::new(Fake::new(state()));
    let r = start(fake.clone(), None);
    until(&fake, "first refresh", |c| c.contains(&"ListEnvironments")).await;
    settle().await;
    fake.publish(slowed());
    settle().await;
    fake.publish(EngineEvent::BackendStatus {
        description: "AWS prod · 123456789012 · eu-west-1".into(),
        note: None,
    });
    settle().await;
    let screen = r.quit().await;
    let lines: Vec<&str> = screen.lines().collect();
    assert!(!screen.contains("slowed"), "{screen}");
    assert!(
        lines[0].contains("AWS prod · 123456789012 · eu-west-1"),
        "{screen}"
    );
}
