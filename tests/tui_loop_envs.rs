//! The whole TUI loop over the fake backend for what an on-call engineer
//! does on Environments and Approvals: keys go in, requests come out, the
//! screen and the bytes written to the terminal are read back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::KeyCode;
use pipedeck::api::Request;
use pipedeck::api::types::{CommitRange, SourceCommit, SourceCommits};
use pipedeck::backend::Backend;
use pipedeck::backend::fake::{Fake, FakeState};
use pipedeck::tui::app::{App, Msg};
use pipedeck::tui::keymap::Keymap;
use pipedeck::tui::theme::Theme;
use pipedeck::tui::{Loop, RawOut};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;
use tokio::sync::mpsc;

const T0: &str = "2026-11-26T10:00:00.000Z";
const EXEC: &str = "e2000000-0000";

#[derive(Clone, Copy, PartialEq)]
enum Fixture {
    /// An approval waits in Approve-Prod, the gate in front of Deploy-Prod.
    ApprovalWaiting,
    /// UnitTests failed in Build.
    BuildFailed,
}

/// The demo pipeline as `web` and its three environments, as a backend
/// might list them (prod first).
fn state(fx: Fixture) -> FakeState {
    let mut def = pipedeck::model::load::load_bytes(
        "p.json",
        pipedeck::cli::demo::DEMO_PIPELINE.as_bytes(),
        &Default::default(),
    )
    .pipelines[0]
        .pipeline
        .clone();
    def.name = "web".into();
    let action = |stage: &str, name: &str, status: &str, token: bool| {
        json!({
            "actionExecutionId": format!("ae-{name}"), "pipelineExecutionId": EXEC,
            "stageName": stage, "actionName": name, "attempt": 1, "status": status,
            "summary": null, "startTime": T0, "lastStatusChange": T0,
            "token": if token { json!("tok-1") } else { json!(null) },
            "externalExecutionId": null, "errorDetails": null, "resolvedConfiguration": {},
            "inputArtifacts": [], "outputArtifacts": [], "outputVariables": {}, "testReport": null,
            "approval": if token { json!({"customData": "Ship to prod?", "externalEntityLink": null,
                "expires": "2026-12-03T10:00:00.000Z", "result": null}) } else { json!(null) },
            "logLines": 3
        })
    };
    let mut reached = true;
    let stages: Vec<serde_json::Value> = def
        .stages
        .iter()
        .map(|s| {
            let status = match (fx, s.name.as_str()) {
                (Fixture::BuildFailed, "Build") => "Failed",
                (Fixture::ApprovalWaiting, "Approve-Prod") => "InProgress",
                _ => "Succeeded",
            };
            let here = reached;
            if status != "Succeeded" {
                reached = false;
            }
            let acts: Vec<serde_json::Value> = s
                .actions
                .iter()
                .map(|a| {
                    let st = if status == "Failed" && a.name != "UnitTests" {
                        "Succeeded"
                    } else {
                        status
                    };
                    json!({"actionName": a.name, "latestExecution": if here {
                        action(&s.name, &a.name, st, st == "InProgress")
                    } else { json!(null) }})
                })
                .collect();
            json!({"stageName": s.name, "inboundExecutions": [],
                "inboundTransitionState": {"enabled": true, "lastChangedBy": null, "lastChangedAt": null, "disabledReason": null},
                "latestExecution": if here { json!({"pipelineExecutionId": EXEC, "status": status, "type": "STANDARD"}) } else { json!(null) },
                "actionStates": acts,
                "retryStageMetadata": {"autoStageRetryAttempt": 0, "manualStageRetryAttempt": 0, "latestRetryTrigger": null},
                "condition": null})
        })
        .collect();
    let exec = json!({
        "pipelineExecutionId": EXEC, "pipelineName": "web", "pipelineVersion": 1,
        "status": if fx == Fixture::BuildFailed { "Failed" } else { "InProgress" },
        "statusSummary": null, "startTime": T0, "lastUpdateTime": T0,
        "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "alice"},
        "executionMode": "SUPERSEDED", "executionType": "STANDARD", "rollbackTarget": null,
        "sourceRevisions": [{"actionName": "Source", "revisionId": "0123456789abcdef",
            "revisionSummary": "Fix the greeting", "revisionUrl": null}],
        "variables": {}, "stopReason": null, "currentStage": null
    });
    let env = |name: &str, action: &str| {
        serde_json::from_value(json!({
            "name": name, "kind": "local", "location": format!("http://127.0.0.1:81{}", name.len()),
            "url": "", "strategy": "CodeDeployDefault.AllAtOnce", "protected": name == "prod",
            "live": "blue",
            "variants": [{"label": "blue", "revision": "0a0a0a0a0a0a", "commitMessage": null,
                "ready": 2, "total": 2, "restarts": 0, "weightPercent": 100}],
            "deployment": null,
            "release": {"id": format!("d-{name}"), "revision": "0a0a0a0a0a0a"},
            "rollbackTarget": {"id": "d-0909", "revision": "090909090909"},
            "actions": [action], "metrics": null, "flux": null, "events": []
        }))
        .unwrap()
    };
    let mut s = FakeState {
        pipelines: vec![
            serde_json::from_value(json!({
                "name": "web", "version": 1, "pipelineType": "V2", "executionMode": "SUPERSEDED",
                "latestExecution": exec, "pendingApprovals": u32::from(fx == Fixture::ApprovalWaiting)
            }))
            .unwrap(),
        ],
        environments: vec![
            env("prod", "Deploy-Prod"),
            env("dev", "Deploy-Dev"),
            env("staging", "Deploy-Staging"),
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
    s
}

struct Running {
    tx: mpsc::UnboundedSender<Msg>,
    done: tokio::task::JoinHandle<Terminal<TestBackend>>,
    /// What the loop wrote to the terminal outside frames.
    out: Arc<Mutex<Vec<u8>>>,
}

fn key(c: char) -> Msg {
    code(KeyCode::Char(c))
}

fn code(k: KeyCode) -> Msg {
    Msg::Key(crossterm::event::KeyEvent::new(
        k,
        crossterm::event::KeyModifiers::NONE,
    ))
}

/// Starts the loop on a 150×32 TestBackend terminal over `fake`.
fn start(fake: Arc<Fake>, setup: impl FnOnce(&mut App)) -> Running {
    let mut app = App::new(
        "demo".into(),
        fake.describe(),
        false,
        Theme::builtin("default").unwrap(),
        Keymap::default(),
    );
    app.size = (150, 32);
    setup(&mut app);
    let (tx, rx) = mpsc::unbounded_channel();
    let out = Arc::new(Mutex::new(Vec::new()));
    let raw: RawOut = out.clone();
    let backend: pipedeck::backend::Shared = fake;
    let l = Loop {
        backend: Arc::new(std::sync::RwLock::new(backend)),
        catalogue: Arc::new(pipedeck::diagnose::Catalogue::builtin()),
        reopen: None,
        start_first: None,
        reconnecting: Default::default(),
        out: Some(raw),
    };
    let tx2 = tx.clone();
    let done = tokio::spawn(async move {
        let mut t = Terminal::new(TestBackend::new(150, 32)).unwrap();
        let (r, _) = l.run(&mut t, app, tx2, rx).await;
        r.unwrap();
        t
    });
    Running { tx, done, out }
}

impl Running {
    fn send(&self, m: Msg) {
        self.tx.send(m).unwrap();
    }

    fn keys(&self, s: &str) {
        for c in s.chars() {
            self.send(key(c));
        }
    }

    /// Quits and gives back the last screen.
    async fn quit(self) -> String {
        self.send(code(KeyCode::Esc));
        self.send(key('q'));
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

async fn first_refresh(fake: &Fake) {
    until(fake, "first refresh", |c| {
        c.contains(&"ListEnvironments") && c.contains(&"GetPipeline")
    })
    .await;
    settle().await;
}

#[tokio::test]
async fn number_keys_focus_environments_in_promotion_order() {
    let fake = Arc::new(Fake::new(state(Fixture::ApprovalWaiting)));
    let r = start(fake.clone(), |_| {});
    first_refresh(&fake).await;
    r.send(key('e'));
    settle().await;
    r.send(key('2'));
    settle().await;
    // Esc would leave the screen; quit straight from it.
    r.send(key('q'));
    let t = tokio::time::timeout(Duration::from_secs(10), r.done)
        .await
        .unwrap()
        .unwrap();
    let screen = format!("{}", t.backend());
    // dev, staging, prod whatever order the backend listed them in; `2`
    // focused staging.
    let dev = screen.find("1 dev").expect(&screen);
    let staging = screen.find("▶ 2 staging · focused").expect(&screen);
    let prod = screen.find("3 prod (protected)").expect(&screen);
    assert!(dev < staging && staging < prod, "{screen}");
    assert!(!screen.contains("▶ 1 dev"), "{screen}");
}

#[tokio::test]
async fn the_rollback_prompt_names_the_release_and_prod_needs_its_name() {
    let fake = Arc::new(Fake::new(state(Fixture::ApprovalWaiting)));
    let r = start(fake.clone(), |_| {});
    first_refresh(&fake).await;
    r.keys("e3b");
    settle().await;
    // `y` is typed into the box, not taken as yes.
    r.keys("y");
    r.send(code(KeyCode::Enter));
    settle().await;
    assert!(!fake.call_names().contains(&"RollbackEnvironment"));
    r.send(code(KeyCode::Backspace));
    r.keys("prod");
    settle().await;
    // The last frame is the prompt (Esc and q arrive together).
    let screen = r.quit().await;
    assert!(
        screen.contains("Roll back environment prod to release 090909090909?"),
        "{screen}"
    );
    assert!(screen.contains("> prod"), "{screen}");
    assert!(!fake.call_names().contains(&"RollbackEnvironment"));
}

#[tokio::test]
async fn typing_the_protected_name_rolls_the_environment_back() {
    let fake = Arc::new(Fake::new(state(Fixture::ApprovalWaiting)));
    let r = start(fake.clone(), |_| {});
    first_refresh(&fake).await;
    r.keys("e3bprod");
    settle().await;
    r.send(code(KeyCode::Enter));
    settle().await;
    if !fake.call_names().contains(&"RollbackEnvironment") {
        panic!("{}", r.quit().await);
    }
    let req = fake.with(|s| {
        s.calls
            .iter()
            .find(|c| matches!(c, Request::RollbackEnvironment { .. }))
            .cloned()
            .unwrap()
    });
    assert_eq!(
        req,
        Request::RollbackEnvironment {
            environment_name: "prod".into()
        }
    );
    r.quit().await;
}

#[tokio::test]
async fn a_protected_approval_needs_the_environment_typed_and_shows_the_commits() {
    let mut st = state(Fixture::ApprovalWaiting);
    st.commits.insert(
        FakeState::commits_key(
            EXEC,
            &CommitRange::SinceLive {
                stage_name: "Approve-Prod".into(),
            },
        ),
        SourceCommits {
            action_name: "Source".into(),
            from: Some("0a0a0a0a0a0a0a0a".into()),
            to: "0123456789abcdef".into(),
            environment: Some("prod".into()),
            commits: vec![SourceCommit {
                commit_id: "0123456789abcdef".into(),
                author: "Alice Martin".into(),
                date: "2026-11-25T16:20:00+00:00".into(),
                message: "Fix the greeting".into(),
            }],
            truncated: false,
        },
    );
    let fake = Arc::new(Fake::new(st));
    let r = start(fake.clone(), |a| a.protected_approvals = true);
    first_refresh(&fake).await;
    r.keys("Aa");
    until(&fake, "commits", |c| c.contains(&"ListSourceCommits")).await;
    let asked = fake.with(|s| {
        s.calls
            .iter()
            .find(|c| matches!(c, Request::ListSourceCommits { .. }))
            .cloned()
            .unwrap()
    });
    assert!(
        matches!(&asked, Request::ListSourceCommits { pipeline_execution_id, range: CommitRange::SinceLive { stage_name }, .. }
            if pipeline_execution_id == EXEC && stage_name == "Approve-Prod"),
        "{asked:?}"
    );
    settle().await;
    // `y` does not approve a protected approval: it is typed.
    r.keys("y");
    r.send(code(KeyCode::Enter));
    settle().await;
    assert!(!fake.call_names().contains(&"PutApprovalResult"));
    r.send(code(KeyCode::Backspace));
    r.keys("prod");
    r.send(code(KeyCode::Enter));
    until(&fake, "approval", |c| c.contains(&"PutApprovalResult")).await;
    let approved = fake.with(|s| {
        s.calls
            .iter()
            .find(|c| matches!(c, Request::PutApprovalResult { .. }))
            .cloned()
            .unwrap()
    });
    assert!(
        matches!(&approved, Request::PutApprovalResult { stage_name, status, .. }
            if stage_name == "Approve-Prod" && status == "Approved"),
        "{approved:?}"
    );
    r.quit().await;
}

#[tokio::test]
async fn y_writes_an_osc52_sequence_with_the_id_to_the_terminal() {
    let fake = Arc::new(Fake::new(state(Fixture::ApprovalWaiting)));
    let r = start(fake.clone(), |_| {});
    first_refresh(&fake).await;
    r.keys("Ay");
    settle().await;
    let bytes = r.out.lock().unwrap().clone();
    // ESC ] 52 ; c ; base64("e2000000-0000") BEL
    assert_eq!(bytes, b"\x1b]52;c;ZTIwMDAwMDAtMDAwMA==\x07".to_vec());
    r.quit().await;
}

/// Build failed on 0123456789ab; the branch has moved on to fedcba98.
fn newer_commit_state() -> FakeState {
    let mut st = state(Fixture::BuildFailed);
    st.commits.insert(
        FakeState::commits_key(EXEC, &CommitRange::ToBranchHead),
        SourceCommits {
            action_name: "Source".into(),
            from: Some("0123456789abcdef".into()),
            to: "fedcba9876543210".into(),
            environment: None,
            commits: vec![SourceCommit {
                commit_id: "fedcba9876543210".into(),
                author: "Bob".into(),
                date: "2026-11-26T10:10:00+00:00".into(),
                message: "Fix the failing test".into(),
            }],
            truncated: false,
        },
    );
    st
}

/// Pipelines → web → the Build stage → r, then waits for the branch check.
async fn r_on_build(fake: &Fake, r: &Running) {
    first_refresh(fake).await;
    r.send(code(KeyCode::Enter));
    settle().await;
    // The graph opens on the failed Build (it follows the activity).
    r.keys("r");
    until(fake, "branch check", |c| c.contains(&"ListSourceCommits")).await;
    settle().await;
    let asked = fake.with(|s| {
        s.calls
            .iter()
            .find(|c| matches!(c, Request::ListSourceCommits { .. }))
            .cloned()
            .unwrap()
    });
    assert!(
        matches!(
            &asked,
            Request::ListSourceCommits {
                range: CommitRange::ToBranchHead,
                pipeline_execution_id,
                ..
            } if pipeline_execution_id == EXEC
        ),
        "{asked:?}"
    );
}

#[tokio::test]
async fn r_with_a_newer_commit_says_what_retry_reruns() {
    let fake = Arc::new(Fake::new(newer_commit_state()));
    let r = start(fake.clone(), |_| {});
    r_on_build(&fake, &r).await;
    let screen = r.quit().await;
    assert!(
        screen.contains("Retry re-runs revision 01234567"),
        "{screen}"
    );
    assert!(screen.contains("newer commit fedcba98"), "{screen}");
    assert!(!fake.call_names().contains(&"RetryStageExecution"));
}

#[tokio::test]
async fn r_with_a_newer_commit_then_y_releases_it() {
    let fake = Arc::new(Fake::new(newer_commit_state()));
    let r = start(fake.clone(), |_| {});
    r_on_build(&fake, &r).await;
    r.keys("y");
    until(&fake, "release", |c| c.contains(&"StartPipelineExecution")).await;
    assert!(!fake.call_names().contains(&"RetryStageExecution"));
    r.quit().await;
}

#[tokio::test]
async fn r_without_a_newer_commit_retries_at_once() {
    let mut st = state(Fixture::BuildFailed);
    st.commits.insert(
        FakeState::commits_key(EXEC, &CommitRange::ToBranchHead),
        SourceCommits {
            action_name: "Source".into(),
            from: Some("0123456789abcdef".into()),
            to: "0123456789abcdef".into(),
            environment: None,
            commits: Vec::new(),
            truncated: false,
        },
    );
    let fake = Arc::new(Fake::new(st));
    let r = start(fake.clone(), |_| {});
    first_refresh(&fake).await;
    r.send(code(KeyCode::Enter));
    settle().await;
    // The graph opens on the failed Build (it follows the activity).
    r.keys("r");
    until(&fake, "retry", |c| c.contains(&"RetryStageExecution")).await;
    assert!(!fake.call_names().contains(&"StartPipelineExecution"));
    r.quit().await;
}

/// `f` reconciles and `z` suspends or resumes the selected Flux object of
/// the focused environment (the most pressing one first, `j` / `k` move),
/// after the same confirmation as other mutations; an environment without
/// one, or a suspended object asked to reconcile, says why instead.
#[tokio::test]
async fn flux_keys_reconcile_suspend_and_resume_the_focused_environments_object() {
    use pipedeck::api::FluxOperation;
    use pipedeck::api::env::{FluxObject, FluxStatus};
    let mut st = state(Fixture::ApprovalWaiting);
    let object = |kind: &str, name: &str, ready: bool, suspended| FluxObject {
        kind: kind.into(),
        namespace: "flux-system".into(),
        name: name.into(),
        ready: Some(ready),
        reason: None,
        since: None,
        revision: Some("main@sha1:0a0a0a0a".into()),
        message: "Applied revision".into(),
        suspended,
        image: None,
        last_scan: None,
        tags: None,
    };
    let flux = |suspended| FluxStatus {
        installed: vec!["GitRepository".into(), "Kustomization".into()],
        objects: vec![
            object("GitRepository", "shop", false, false),
            object("Kustomization", "apps", true, suspended),
        ],
        error: None,
    };
    st.environments[2].kind = "kubernetes".into();
    st.environments[2].flux = Some(flux(false));
    let fake = Arc::new(Fake::new(st));
    let r = start(fake.clone(), |_| {});
    first_refresh(&fake).await;
    // dev (1) has no Flux object: said, nothing sent.
    r.keys("e1f");
    settle().await;
    assert!(!fake.call_names().iter().any(|n| n.ends_with("FluxObject")));
    // staging (2): reconcile of its first row, confirmed; then `j` to the
    // Kustomization and suspend it.
    r.keys("2f");
    settle().await;
    r.keys("y");
    until(&fake, "reconcile", |c| c.contains(&"ReconcileFluxObject")).await;
    r.keys("jz");
    settle().await;
    r.keys("y");
    until(&fake, "suspend", |c| c.contains(&"SuspendFluxObject")).await;
    let ops: Vec<(String, String, FluxOperation)> = fake.with(|s| {
        s.calls
            .iter()
            .filter_map(|c| match c {
                Request::FluxObject {
                    environment_name,
                    object,
                    operation,
                } => Some((environment_name.clone(), object.clone(), *operation)),
                _ => None,
            })
            .collect()
    });
    assert_eq!(
        ops,
        [
            (
                "staging".into(),
                "GitRepository/flux-system/shop".into(),
                FluxOperation::Reconcile
            ),
            (
                "staging".into(),
                "Kustomization/flux-system/apps".into(),
                FluxOperation::Suspend
            ),
        ]
    );
    r.quit().await;
    // Suspended: `f` is refused with the reason, `z` resumes.
    let mut st = state(Fixture::ApprovalWaiting);
    st.environments[2].kind = "kubernetes".into();
    st.environments[2].flux = Some(flux(true));
    let fake = Arc::new(Fake::new(st));
    let r = start(fake.clone(), |_| {});
    first_refresh(&fake).await;
    r.keys("e2jz");
    settle().await;
    r.keys("y");
    until(&fake, "resume", |c| c.contains(&"ResumeFluxObject")).await;
    r.keys("f");
    settle().await;
    let screen = r.quit().await;
    assert!(
        screen.contains("Kustomization/flux-system/apps is suspended: resume it first (z)"),
        "{screen}"
    );
    assert!(!fake.call_names().contains(&"ReconcileFluxObject"));
}

/// A failed Deploy-Staging whose kubernetes environment has a HelmRelease
/// whose upgrade failed: the diagnosis of the action names the HelmRelease.
#[tokio::test]
async fn a_failed_deploy_is_diagnosed_with_the_environments_flux_failure() {
    use pipedeck::api::env::{FluxObject, FluxStatus};
    let mut st = state(Fixture::ApprovalWaiting);
    // Deploy-Staging failed; nothing ran after it.
    let stages = &mut st.states.get_mut("web").unwrap().stage_states;
    for s in stages.iter_mut() {
        if s.stage_name == "Staging" {
            s.latest_execution.as_mut().unwrap().status = pipedeck::api::types::StageStatus::Failed;
            for a in &mut s.action_states {
                if let Some(x) = a.latest_execution.as_mut() {
                    x.status = pipedeck::api::types::ActionStatus::Failed;
                }
            }
        }
        if s.stage_name == "Approve-Prod" || s.stage_name == "Prod" {
            s.latest_execution = None;
            for a in &mut s.action_states {
                a.latest_execution = None;
            }
        }
    }
    st.environments[2].kind = "kubernetes".into();
    st.environments[2].flux = Some(FluxStatus {
        installed: vec!["HelmRelease".into()],
        objects: vec![FluxObject {
            kind: "HelmRelease".into(),
            namespace: "shop".into(),
            name: "web".into(),
            ready: Some(false),
            reason: Some("UpgradeFailed".into()),
            since: Some(T0.into()),
            revision: Some("6.3.6".into()),
            message: "Helm upgrade failed for release shop/web with chart podinfo@6.3.6: \
                      context deadline exceeded"
                .into(),
            suspended: false,
            image: None,
            last_scan: None,
            tags: None,
        }],
        error: None,
    });
    let fake = Arc::new(Fake::new(st));
    let r = start(fake.clone(), |_| {});
    first_refresh(&fake).await;
    until(&fake, "the diagnosis reads the environments", |c| {
        c.iter().filter(|n| **n == "ListEnvironments").count() >= 2 && c.contains(&"LookupEvents")
    })
    .await;
    settle().await;
    r.send(code(KeyCode::Enter));
    settle().await;
    r.keys("d");
    settle().await;
    let screen = r.quit().await;
    assert!(
        screen.contains("Flux HelmRelease/shop/web failed: UpgradeFailed"),
        "{screen}"
    );
}
