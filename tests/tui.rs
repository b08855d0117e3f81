//! TUI screens on ratatui's TestBackend, from fixtures with a fixed clock:
//! one snapshot per screen and state that matters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use pipedeck::api::{
    ActionExecutionDetail, AuditEvent, ExecutionSummary, PipelineState, PipelineSummary,
};
use pipedeck::tui::app::{App, Msg, Screen, Snapshot};
use pipedeck::tui::keymap::Keymap;
use pipedeck::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

const T0: &str = "2026-11-26T10:00:00.000Z";

fn clock() -> SystemTime {
    humantime::parse_rfc3339("2026-11-26T10:05:00Z").unwrap()
}

fn exec(
    id: &str,
    status: &str,
    kind: &str,
    trigger: &str,
    stage: Option<&str>,
) -> ExecutionSummary {
    serde_json::from_value(json!({
        "pipelineExecutionId": id, "pipelineName": "web", "pipelineVersion": 1,
        "status": status, "statusSummary": null, "startTime": T0,
        "lastUpdateTime": "2026-11-26T10:02:30.000Z",
        "trigger": {"triggerType": trigger, "triggerDetail": "alice"},
        "executionMode": "SUPERSEDED", "executionType": kind, "rollbackTarget": null,
        "sourceRevisions": [{"actionName": "Source", "revisionId": "0123456789abcdef",
            "revisionSummary": "Fix the greeting", "revisionUrl": null}],
        "variables": {}, "stopReason": null, "currentStage": stage
    }))
    .unwrap()
}

fn action(
    stage: &str,
    name: &str,
    status: &str,
    token: bool,
    summary: Option<&str>,
) -> serde_json::Value {
    json!({
        "actionExecutionId": format!("ae-{name}"), "pipelineExecutionId": "e2000000-0000",
        "stageName": stage, "actionName": name, "attempt": 1, "status": status,
        "summary": summary, "startTime": T0, "lastStatusChange": "2026-11-26T10:01:05.000Z",
        "token": if token { json!("tok") } else { json!(null) },
        "externalExecutionId": null, "errorDetails": null, "resolvedConfiguration": {},
        "inputArtifacts": [], "outputArtifacts": [], "outputVariables": {},
        "testReport": null,
        "approval": if token { json!({"customData": "Release 0123456 to stable?",
            "externalEntityLink": "http://127.0.0.1:8080/", "expires": "2026-12-03T10:00:00.000Z", "result": null}) } else { json!(null) },
        "logLines": 42
    })
}

struct Fx {
    build: &'static str,
    build_summary: Option<&'static str>,
    approval_pending: bool,
    disabled: bool,
    waiting: bool,
    latest: ExecutionSummary,
    history: Vec<ExecutionSummary>,
}

fn state(fx: &Fx) -> PipelineState {
    let build_status = fx.build;
    serde_json::from_value(json!({
        "pipelineName": "web", "pipelineVersion": 1,
        "stageStates": [
            {"stageName": "Source", "inboundExecutions": [],
             "inboundTransitionState": {"enabled": true, "lastChangedBy": null, "lastChangedAt": null, "disabledReason": null},
             "latestExecution": {"pipelineExecutionId": "e2000000-0000", "status": "Succeeded", "type": "STANDARD"},
             "actionStates": [{"actionName": "Source", "latestExecution": action("Source", "Source", "Succeeded", false, None)}],
             "retryStageMetadata": {"autoStageRetryAttempt": 0, "manualStageRetryAttempt": 0, "latestRetryTrigger": null},
             "condition": null},
            {"stageName": "Build",
             "inboundExecutions": if fx.waiting { json!([{"pipelineExecutionId": "e3000000-0000", "status": "InProgress", "type": "STANDARD"}]) } else { json!([]) },
             "inboundTransitionState": {"enabled": true, "lastChangedBy": null, "lastChangedAt": null, "disabledReason": null},
             "latestExecution": {"pipelineExecutionId": "e2000000-0000", "status": if build_status == "Failed" { "Failed" } else if build_status == "InProgress" { "InProgress" } else { "Succeeded" }, "type": "STANDARD"},
             "actionStates": [
                {"actionName": "Lint", "latestExecution": action("Build", "Lint", "Succeeded", false, None)},
                {"actionName": "UnitTests", "latestExecution": action("Build", "UnitTests", build_status, false, fx.build_summary)},
                {"actionName": "Package", "latestExecution": if build_status == "Succeeded" { action("Build", "Package", "Succeeded", false, None) } else { json!(null) }}],
             "retryStageMetadata": {"autoStageRetryAttempt": 0, "manualStageRetryAttempt": 0, "latestRetryTrigger": null},
             "condition": null},
            {"stageName": "Approve", "inboundExecutions": [],
             "inboundTransitionState": {"enabled": !fx.disabled, "lastChangedBy": "alice", "lastChangedAt": T0,
                "disabledReason": if fx.disabled { json!("freeze for the holidays") } else { json!(null) }},
             "latestExecution": if fx.approval_pending { json!({"pipelineExecutionId": "e2000000-0000", "status": "InProgress", "type": "STANDARD"}) } else { json!(null) },
             "actionStates": [{"actionName": "Release", "latestExecution": if fx.approval_pending { action("Approve", "Release", "InProgress", true, None) } else { json!(null) }}],
             "retryStageMetadata": {"autoStageRetryAttempt": 0, "manualStageRetryAttempt": 0, "latestRetryTrigger": null},
             "condition": null}
        ]
    }))
    .unwrap()
}

fn app(fx: &Fx) -> App {
    let mut app = App::new(
        "demo".into(),
        "engine hosted here (pid 4242)".into(),
        true,
        Theme::builtin("default").unwrap(),
        Keymap::default(),
    );
    app.now = clock();
    let defs = pipedeck::model::load::load_bytes(
        "p.json",
        pipedeck::cli::demo::DEMO_PIPELINE.as_bytes(),
        &Default::default(),
    );
    let mut def = defs.pipelines[0].pipeline.clone();
    def.name = "web".into();
    app.defs.insert("web".into(), def);
    let summary: PipelineSummary = serde_json::from_value(json!({
        "name": "web", "version": 1, "pipelineType": "V2", "executionMode": "SUPERSEDED",
        "latestExecution": fx.latest, "pendingApprovals": u32::from(fx.approval_pending)
    }))
    .unwrap();
    let mut snap = Snapshot {
        pipelines: vec![summary],
        ..Snapshot::default()
    };
    snap.states.insert("web".into(), state(fx));
    snap.executions.insert("web".into(), fx.history.clone());
    app.update(Msg::Snapshot(snap));
    app
}

fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    app.size = (w, h);
    t.draw(|f| pipedeck::tui::view::draw(f, app)).unwrap();
    format!("{}", t.backend())
}

fn running() -> Fx {
    Fx {
        build: "InProgress",
        build_summary: None,
        approval_pending: false,
        disabled: false,
        waiting: false,
        latest: exec(
            "e2000000-0000",
            "InProgress",
            "STANDARD",
            "StartPipelineExecution",
            Some("Build"),
        ),
        history: vec![
            exec(
                "e2000000-0000",
                "InProgress",
                "STANDARD",
                "StartPipelineExecution",
                Some("Build"),
            ),
            exec("e1000000-0000", "Succeeded", "STANDARD", "Webhook", None),
        ],
    }
}

fn key(c: char) -> Msg {
    Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char(c),
        crossterm::event::KeyModifiers::NONE,
    ))
}

#[test]
fn pipelines_screen_running() {
    let mut a = app(&running());
    insta::assert_snapshot!(render(&mut a, 120, 16));
}

#[test]
fn pipeline_screen_running_with_a_waiting_execution() {
    let mut fx = running();
    fx.waiting = true;
    let mut a = app(&fx);
    a.screen = Screen::Pipeline;
    insta::assert_snapshot!(render(&mut a, 120, 30));
}

#[test]
fn pipeline_screen_failed_shows_the_failure_summary() {
    let mut fx = running();
    fx.build = "Failed";
    fx.build_summary = Some("Build failed in BUILD: `pytest` exited with 1");
    fx.latest = exec(
        "e2000000-0000",
        "Failed",
        "STANDARD",
        "StartPipelineExecution",
        None,
    );
    fx.history[0] = fx.latest.clone();
    let mut a = app(&fx);
    a.screen = Screen::Pipeline;
    insta::assert_snapshot!(render(&mut a, 120, 30));
}

#[test]
fn pipeline_screen_pending_approval_and_disabled_transition() {
    let mut fx = running();
    fx.build = "Succeeded";
    fx.approval_pending = true;
    fx.disabled = true;
    fx.latest = exec(
        "e2000000-0000",
        "InProgress",
        "STANDARD",
        "StartPipelineExecution",
        Some("Approve"),
    );
    let mut a = app(&fx);
    a.screen = Screen::Pipeline;
    insta::assert_snapshot!(render(&mut a, 120, 30));
}

#[test]
fn pipeline_screen_superseded_and_rollback_executions() {
    let mut fx = running();
    fx.build = "Succeeded";
    fx.latest = exec(
        "e4000000-0000",
        "Succeeded",
        "ROLLBACK",
        "ManualRollback",
        None,
    );
    fx.history = vec![
        fx.latest.clone(),
        exec("e3000000-0000", "Superseded", "STANDARD", "Webhook", None),
        exec(
            "e2000000-0000",
            "Succeeded",
            "STANDARD",
            "StartPipelineExecution",
            None,
        ),
    ];
    let mut a = app(&fx);
    a.screen = Screen::Pipeline;
    insta::assert_snapshot!(render(&mut a, 120, 30));
}

#[test]
fn approvals_screen_and_the_reject_summary_input() {
    let mut fx = running();
    fx.build = "Succeeded";
    fx.approval_pending = true;
    let mut a = app(&fx);
    a.screen = Screen::Approvals;
    insta::assert_snapshot!("approvals", render(&mut a, 120, 16));
    a.update(key('x'));
    for c in "not today".chars() {
        a.update(key(c));
    }
    insta::assert_snapshot!("reject_input", render(&mut a, 120, 16));
}

#[test]
fn readonly_refuses_mutating_keys_and_says_so() {
    let mut fx = running();
    fx.approval_pending = true;
    let mut a = app(&fx);
    a.readonly = true;
    a.screen = Screen::Approvals;
    let fx = a.update(key('a'));
    assert!(fx.is_empty());
    assert!(a.modal.is_none());
    insta::assert_snapshot!(render(&mut a, 120, 16));
}

#[test]
fn too_small_terminal_shows_a_message() {
    let mut a = app(&running());
    insta::assert_snapshot!(render(&mut a, 50, 10));
}

#[test]
fn logs_screen_with_a_search() {
    let mut a = app(&running());
    a.screen = Screen::Logs;
    a.logs.aeid = "ae-UnitTests".into();
    a.logs.title = "web / Build / UnitTests · attempt 1".into();
    a.logs.total = 6;
    a.logs.cache = vec![
        "[Container] Entering phase BUILD".into(),
        "[Container] Running command pytest".into(),
        "test_greet PASSED".into(),
        "test_default FAILED".into(),
        "[Container] Phase complete: BUILD State: FAILED".into(),
        "\u{1b}[31mred text\u{1b}[0m".into(),
    ];
    a.logs.search = Some("FAILED".into());
    // The search's answer: the lines the engine found, with their text.
    let lines: Vec<(u64, String)> = a.logs.cache[3..5]
        .iter()
        .enumerate()
        .map(|(i, t)| (3 + i as u64, t.clone()))
        .collect();
    a.update(Msg::Matches {
        aeid: "ae-UnitTests".into(),
        scan: pipedeck::tui::app::LogScan::Search("FAILED".into()),
        total: 6,
        lines,
        truncated: false,
    });
    a.logs.top = 0;
    insta::assert_snapshot!(render(&mut a, 100, 16));
}

#[test]
fn audit_and_help() {
    let mut a = app(&running());
    let ev: AuditEvent = serde_json::from_value(json!({
        "eventVersion": "1.09", "eventId": "1", "eventTime": "2026-11-26T10:01:00.000Z",
        "eventSource": "codepipeline.amazonaws.com", "eventName": "RetryStageExecution",
        "awsRegion": "local", "sourceIpAddress": "127.0.0.1", "userAgent": "pipedeck-cli",
        "userIdentity": {"type": "IAMUser", "principalId": "alice", "arn": "", "accountId": "0", "userName": "alice", "invokedBy": null},
        "requestParameters": {"op": "retryStageExecution", "pipelineName": "web", "stageName": "Build"},
        "responseElements": null, "errorCode": "StageNotRetryableException", "errorMessage": "no",
        "eventType": "AwsApiCall", "readOnly": false
    }))
    .unwrap();
    a.update(Msg::Audit(vec![ev]));
    a.screen = Screen::Audit;
    insta::assert_snapshot!("audit", render(&mut a, 120, 12));
    a.screen = Screen::Pipeline;
    a.update(key('?'));
    insta::assert_snapshot!("help", render(&mut a, 100, 48));
}

#[test]
fn quitting_with_running_executions_asks_first() {
    let mut a = app(&running());
    a.update(key('q'));
    assert!(!a.quit);
    insta::assert_snapshot!(render(&mut a, 120, 16));
    a.update(key('y'));
    assert!(a.quit);
    let _ = Duration::ZERO;
    let _: Vec<ActionExecutionDetail> = Vec::new();
}

#[test]
fn a_protected_stage_needs_its_name_typed_before_a_rollback() {
    let mut fx = running();
    fx.build = "Succeeded";
    let mut a = app(&fx);
    a.protected = vec!["Build".into()];
    a.screen = Screen::Pipeline;
    // From the Source stage (the selection had followed the activity).
    a.sel_stage = 0;
    a.update(key('l')); // the Build stage
    assert!(a.update(key('b')).is_empty());
    assert!(matches!(
        a.modal,
        Some(pipedeck::tui::app::Modal::Confirm { typed: Some(_), .. })
    ));
    // `y` is not enough: it is typed into the box.
    assert!(a.update(key('y')).is_empty());
    let enter = || {
        Msg::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Enter,
            crossterm::event::KeyModifiers::NONE,
        ))
    };
    assert!(a.update(enter()).is_empty(), "`y` is not the stage's name");
    let backspace = Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Backspace,
        crossterm::event::KeyModifiers::NONE,
    ));
    a.update(backspace);
    for c in "Build".chars() {
        a.update(key(c));
    }
    insta::assert_snapshot!(render(&mut a, 120, 30));
    let fx = a.update(enter());
    assert!(
        matches!(
            fx.as_slice(),
            [pipedeck::tui::app::Effect::Op {
                request: pipedeck::api::Request::RollbackStage { .. },
                ..
            }]
        ),
        "{fx:?}"
    );
}

#[test]
fn user_keymaps_remap_and_warn_about_unknown_names() {
    let t: toml::Table =
        toml::from_str("[pipeline]\n\"ctrl-r\" = \"retry_all\"\n\"z\" = \"fly\"\n").unwrap();
    let (km, warnings) = Keymap::load(Some(&t));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("\"fly\""), "{warnings:?}");
    let mut fx = running();
    fx.build = "Failed";
    let mut a = app(&fx);
    a.keymap = km;
    a.screen = Screen::Pipeline;
    // The selection follows the activity: the failed Build is selected.
    let effects = a.update(Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('r'),
        crossterm::event::KeyModifiers::CONTROL,
    )));
    // The retry first asks whether the branch has moved on; it has not.
    assert!(
        matches!(
            effects.as_slice(),
            [pipedeck::tui::app::Effect::Commits {
                range: pipedeck::api::types::CommitRange::ToBranchHead,
                ..
            }]
        ),
        "{effects:?}"
    );
    let effects = a.update(Msg::Commits {
        execution: "e2000000-0000".into(),
        range: pipedeck::api::types::CommitRange::ToBranchHead,
        result: Ok(pipedeck::api::types::SourceCommits {
            action_name: "Source".into(),
            from: Some("0123456789abcdef".into()),
            to: "0123456789abcdef".into(),
            environment: None,
            commits: Vec::new(),
            truncated: false,
        }),
    });
    assert!(
        matches!(
            effects.as_slice(),
            [pipedeck::tui::app::Effect::Op {
                request: pipedeck::api::Request::RetryStageExecution { retry_mode, .. },
                ..
            }] if retry_mode == "ALL_ACTIONS"
        ),
        "{effects:?}"
    );
    // The help lists the remapped key.
    a.update(key('?'));
    let screen = render(&mut a, 100, 48);
    assert!(screen.contains("ctrl-r"), "{screen}");
}

#[test]
fn diagnosis_marks_the_failed_action_and_d_opens_findings_that_jump_to_the_log() {
    let mut fx = running();
    fx.build = "Failed";
    fx.build_summary = Some("Build failed in BUILD: `pytest` exited with 1");
    fx.latest = exec(
        "e2000000-0000",
        "Failed",
        "STANDARD",
        "StartPipelineExecution",
        None,
    );
    let mut a = app(&fx);
    a.screen = Screen::Pipeline;
    // The snapshot asked for a diagnosis of the failed action.
    assert!(a.diagnosing.contains("ae-UnitTests"));
    let finding: pipedeck::diagnose::Finding = serde_json::from_value(json!({
        "rule": "test.pytest", "title": "pytest test_greet failed: assert 'Hello' == 'Hello, Ada!'",
        "category": "test", "confidence": 0.9,
        "evidence": [{"type": "logLine", "line": 18, "text": "E   AssertionError: assert 'Hello' == 'Hello, Ada!'"}],
        "fix": "Run `python3 -m pytest tests/test_greet.py::test_greet` locally.", "reference": null
    }))
    .unwrap();
    a.update(Msg::Diagnosis {
        aeid: "ae-UnitTests".into(),
        findings: vec![finding],
    });
    insta::assert_snapshot!("diagnosis_marks_graph", render(&mut a, 120, 30));
    // `d` on the failed action (the selection went to it on its own).
    assert_eq!((a.sel_stage, a.sel_action), (1, 1));
    a.update(key('d'));
    assert_eq!(a.screen, Screen::Diagnosis);
    insta::assert_snapshot!("diagnosis_pane", render(&mut a, 120, 20));
    // Down to the evidence, Enter: the Logs screen at that line.
    a.update(key('j'));
    let fx = a.update(Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Enter,
        crossterm::event::KeyModifiers::NONE,
    )));
    assert_eq!(a.screen, Screen::Logs);
    assert_eq!(a.logs.cursor, 17);
    assert!(!a.logs.follow);
    assert!(
        matches!(fx.as_slice(), [pipedeck::tui::app::Effect::ReadLog { .. }]),
        "{fx:?}"
    );
}

fn click(col: u16, row: u16) -> Msg {
    Msg::Mouse(crossterm::event::MouseEvent {
        kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
        column: col,
        row,
        modifiers: crossterm::event::KeyModifiers::NONE,
    })
}

/// Where `text` is drawn on screen: (column, row) of its first character.
fn find(screen: &str, text: &str) -> (u16, u16) {
    for (y, line) in screen.lines().enumerate() {
        let line = line.trim_matches('"');
        if let Some(i) = line.find(text) {
            let x = line[..i].chars().count();
            return (x as u16, y as u16);
        }
    }
    panic!("{text} not on screen:\n{screen}")
}

#[test]
fn a_click_selects_the_clicked_execution_row_and_the_clicked_action() {
    let mut fx = running();
    fx.build = "Failed";
    fx.build_summary = Some("Build failed in BUILD: `pytest` exited with 1");
    let mut a = app(&fx);
    a.screen = Screen::Pipeline;
    let screen = render(&mut a, 120, 30);
    // The second execution row, clicked: that row is selected.
    let (x, y) = find(&screen, "e1000000");
    a.update(click(x, y));
    assert_eq!(a.graph.pane, pipedeck::tui::app::Pane::Executions);
    assert_eq!(a.graph.sel_exec, 1);
    let (x, y) = find(&screen, "e2000000");
    a.update(click(x, y));
    assert_eq!(a.graph.sel_exec, 0);
    // An action in the graph, below a failed one and its failure line.
    let (x, y) = find(&screen, "Package");
    a.update(click(x, y));
    assert_eq!(a.graph.pane, pipedeck::tui::app::Pane::Graph);
    assert_eq!((a.sel_stage, a.sel_action), (1, 2));
    let (x, y) = find(&screen, "Source  ");
    a.update(click(x, y));
    assert_eq!((a.sel_stage, a.sel_action), (0, 0));
}

#[test]
fn a_diagnosis_reads_the_execution_the_action_ran_in_not_the_latest() {
    let mut fx = running();
    fx.build = "Failed";
    fx.build_summary = Some("Build failed in BUILD: `pytest` exited with 1");
    // The failed Build ran in e2000000; a later execution was interrupted.
    let later = exec(
        "e3000000-0000",
        "Failed",
        "STANDARD",
        "StartPipelineExecution",
        None,
    );
    fx.history[0] = exec(
        "e2000000-0000",
        "Failed",
        "STANDARD",
        "StartPipelineExecution",
        None,
    );
    fx.history.insert(0, later.clone());
    fx.latest = later;
    let mut a = app(&fx);
    a.screen = Screen::Pipeline;
    a.diagnosing.clear();
    let own = |fx: &[pipedeck::tui::app::Effect]| {
        fx.iter()
            .filter_map(|e| match e {
                pipedeck::tui::app::Effect::Diagnose { execution, .. } => {
                    Some(execution.as_ref().map(|x| x.pipeline_execution_id.clone()))
                }
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(own(&a.auto_diagnose()), vec![Some("e2000000-0000".into())]);
    a.diagnosing.clear();
    // The selection is on the failed action already.
    assert_eq!((a.sel_stage, a.sel_action), (1, 1));
    let fx = a.update(key('d'));
    assert_eq!(own(&fx), vec![Some("e2000000-0000".into())]);
}

#[test]
fn the_graph_shows_the_actions_own_error_when_only_the_audit_trail_matched() {
    let mut fx = running();
    fx.build = "Failed";
    fx.build_summary = Some("Build failed in BUILD: `pytest` exited with 1");
    let mut a = app(&fx);
    a.screen = Screen::Pipeline;
    let trail: pipedeck::diagnose::Finding = serde_json::from_value(json!({
        "rule": "audit.trail", "title": "1 audit event(s) around the failure, by alice",
        "category": "audit", "confidence": 0.3, "evidence": [],
        "fix": "Supporting evidence.", "reference": null
    }))
    .unwrap();
    a.update(Msg::Diagnosis {
        aeid: "ae-UnitTests".into(),
        findings: vec![trail],
    });
    let screen = render(&mut a, 120, 30);
    assert!(screen.contains("Build failed in BUILD"), "{screen}");
    assert!(!screen.contains("audit event"), "{screen}");
}

#[test]
fn r_on_a_failed_stage_with_a_newer_commit_says_what_retry_reruns_and_offers_the_release() {
    let mut fx = running();
    fx.build = "Failed";
    fx.build_summary = Some("Build failed in BUILD: `pytest` exited with 1");
    // The Build failed in e2000000 on 01234567…; a trigger then started
    // e3000000 with the fix.
    fx.history[0] = exec(
        "e2000000-0000",
        "Failed",
        "STANDARD",
        "StartPipelineExecution",
        None,
    );
    let mut newer = exec(
        "e3000000-0000",
        "InProgress",
        "STANDARD",
        "Webhook",
        Some("Source"),
    );
    newer.source_revisions[0].revision_id = "fedcba9876543210".into();
    fx.history.insert(0, newer.clone());
    fx.latest = newer;
    let mut a = app(&fx);
    a.screen = Screen::Pipeline;
    // The selection follows the activity: the failed Build.
    assert_eq!(a.sel_stage, 1);
    let fx1 = a.update(key('r'));
    assert!(fx1.is_empty(), "{fx1:?}");
    let screen = render(&mut a, 120, 30);
    assert!(
        screen.contains("Retry re-runs revision 01234567"),
        "{screen}"
    );
    assert!(screen.contains("fedcba98"), "{screen}");
    // y: release the new commit (a new execution).
    let fx2 = a.update(key('y'));
    assert!(
        matches!(
            fx2.as_slice(),
            [pipedeck::tui::app::Effect::Op {
                request: pipedeck::api::Request::StartPipelineExecution { .. },
                ..
            }]
        ),
        "{fx2:?}"
    );
    // r in the prompt: retry the old revision anyway.
    a.update(key('r'));
    let fx3 = a.update(key('r'));
    assert!(
        matches!(
            fx3.as_slice(),
            [pipedeck::tui::app::Effect::Op {
                request: pipedeck::api::Request::RetryStageExecution { .. },
                ..
            }]
        ),
        "{fx3:?}"
    );
}
