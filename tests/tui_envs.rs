//! Environments, approvals and audit on ratatui's TestBackend, from
//! fixtures with a fixed clock: what an on-call engineer reads before a
//! keypress (promotion order, focus, the release a rollback goes back to,
//! what an approval lets through, the full audit record).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::SystemTime;

use pipedeck::api::types::{CommitRange, SourceCommit, SourceCommits};
use pipedeck::api::{AuditEvent, Request};
use pipedeck::tui::app::{App, Effect, Modal, Msg, Screen, Snapshot};
use pipedeck::tui::keymap::Keymap;
use pipedeck::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

const T0: &str = "2026-11-26T10:00:00.000Z";

fn clock() -> SystemTime {
    humantime::parse_rfc3339("2026-11-26T10:05:00Z").unwrap()
}

fn key(c: char) -> Msg {
    Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char(c),
        crossterm::event::KeyModifiers::NONE,
    ))
}

fn enter() -> Msg {
    Msg::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Enter,
        crossterm::event::KeyModifiers::NONE,
    ))
}

fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    app.size = (w, h);
    t.draw(|f| pipedeck::tui::view::draw(f, app)).unwrap();
    format!("{}", t.backend())
}

/// The demo pipeline as `web`, an approval waiting in Approve-Prod (the
/// gate in front of Deploy-Prod) of execution e2000000 on 0123456789ab.
fn app() -> App {
    let mut app = App::new(
        "demo".into(),
        "engine hosted here (pid 4242)".into(),
        true,
        Theme::builtin("default").unwrap(),
        Keymap::default(),
    );
    app.now = clock();
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
            let pending = s.name == "Approve-Prod";
            json!({"stageName": s.name, "inboundExecutions": [],
                "inboundTransitionState": {"enabled": true, "lastChangedBy": null, "lastChangedAt": null, "disabledReason": null},
                "latestExecution": {"pipelineExecutionId": "e2000000-0000", "status": if pending { "InProgress" } else { "Succeeded" }, "type": "STANDARD"},
                "actionStates": s.actions.iter().map(|a| json!({"actionName": a.name, "latestExecution": if pending { json!({
                    "actionExecutionId": "ae-release-prod", "pipelineExecutionId": "e2000000-0000",
                    "stageName": s.name, "actionName": a.name, "attempt": 1, "status": "InProgress",
                    "summary": null, "startTime": T0, "lastStatusChange": T0, "token": "tok",
                    "externalExecutionId": null, "errorDetails": null, "resolvedConfiguration": {},
                    "inputArtifacts": [], "outputArtifacts": [], "outputVariables": {}, "testReport": null,
                    "approval": {"customData": "Release the greeting fix to prod (CHG-1234)?",
                        "externalEntityLink": "http://127.0.0.1:8081/", "expires": "2026-12-03T10:00:00.000Z", "result": null},
                    "logLines": 0}) } else { json!(null) }})).collect::<Vec<_>>(),
                "retryStageMetadata": {"autoStageRetryAttempt": 0, "manualStageRetryAttempt": 0, "latestRetryTrigger": null},
                "condition": null})
        })
        .collect();
    let exec = json!({
        "pipelineExecutionId": "e2000000-0000", "pipelineName": "web", "pipelineVersion": 1,
        "status": "InProgress", "statusSummary": null, "startTime": T0, "lastUpdateTime": T0,
        "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "alice"},
        "executionMode": "SUPERSEDED", "executionType": "STANDARD", "rollbackTarget": null,
        "sourceRevisions": [{"actionName": "Source", "revisionId": "0123456789abcdef",
            "revisionSummary": "Fix the greeting", "revisionUrl": null}],
        "variables": {}, "stopReason": null, "currentStage": "Approve-Prod"
    });
    app.defs.insert("web".into(), def);
    let mut snap = Snapshot {
        pipelines: vec![
            serde_json::from_value(json!({
                "name": "web", "version": 1, "pipelineType": "V2", "executionMode": "SUPERSEDED",
                "latestExecution": exec, "pendingApprovals": 1
            }))
            .unwrap(),
        ],
        envs: envs(),
        ..Snapshot::default()
    };
    snap.states.insert(
        "web".into(),
        serde_json::from_value(
            json!({"pipelineName": "web", "pipelineVersion": 1, "stageStates": stages}),
        )
        .unwrap(),
    );
    snap.executions
        .insert("web".into(), vec![serde_json::from_value(exec).unwrap()]);
    app.update(Msg::Snapshot(snap));
    app
}

/// prod, staging, dev as a backend might list them (not in promotion
/// order). dev waits out a blue/green termination: green takes 100% while
/// its last successful release is still blue's.
fn envs() -> Vec<pipedeck::api::env::EnvironmentSummary> {
    let t = |s: u64| json!({"secs_since_epoch": 1_795_687_200u64 + s, "nanos_since_epoch": 0});
    let env = |name: &str, action: &str, live: &str, blue: u32, dep: serde_json::Value| {
        let variants = vec![
            json!({"label": "blue", "revision": "0a0a0a0a0a0a", "commitMessage": null, "ready": 2, "total": 2, "restarts": 0, "weightPercent": blue}),
            json!({"label": "green", "revision": "0123456789ab", "commitMessage": null, "ready": 2, "total": 2, "restarts": 0, "weightPercent": 100 - blue}),
        ];
        let url = format!("http://127.0.0.1:80{}", name.len());
        serde_json::from_value(json!({
            "name": name, "kind": "local", "location": url, "url": url, "strategy": "CodeDeployDefault.AllAtOnce",
            "protected": name == "prod", "live": live, "variants": variants,
            "deployment": dep,
            "release": {"id": "d-0a0a", "revision": "0a0a0a0a0a0a"},
            "rollbackTarget": {"id": "d-0909", "revision": "090909090909"},
            "actions": [action],
            "metrics": null, "flux": null,
            "events": [{"at": t(240), "kind": "deploy", "message": format!("{name}: deployment started")}]
        }))
        .unwrap()
    };
    let waiting = json!({"id": "d-0123", "revision": "0123456789ab", "status": "Baking", "step": "TerminationWait",
        "newVariant": "green", "trafficPercent": 100, "nextStepAt": t(420), "reason": null, "hooksRun": []});
    vec![
        env("prod", "Deploy-Prod", "blue", 100, json!(null)),
        env("staging", "Deploy-Staging", "blue", 100, json!(null)),
        env("dev", "Deploy-Dev", "green", 0, waiting),
    ]
}

#[test]
fn environments_in_promotion_order_with_the_focus_marker_and_the_live_release() {
    let mut a = app();
    a.update(key('e'));
    assert_eq!(a.screen, Screen::Environments);
    let names: Vec<&str> = a.snap.envs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
    let screen = render(&mut a, 150, 24);
    // dev waits out the termination: the release shown takes the traffic.
    assert!(
        screen.contains("live: green  release 0123456789ab"),
        "{screen}"
    );
    insta::assert_snapshot!("envs_promotion_order_focus", screen);
    // `3` focuses prod; its rollback prompt names the release it goes to.
    a.update(key('3'));
    assert_eq!(a.envs.sel, 2);
    a.update(key('b'));
    let screen = render(&mut a, 150, 24);
    assert!(
        screen.contains("Roll back environment prod to release 090909090909"),
        "{screen}"
    );
    insta::assert_snapshot!("envs_rollback_prompt_names_the_release", screen);
    // During dev's termination wait, the rollback flips back to blue's release.
    a.modal = None;
    a.update(key('1'));
    a.update(key('b'));
    let Some(Modal::Confirm { text, .. }) = &a.modal else {
        panic!("no prompt: {:?}", a.modal)
    };
    assert!(text.contains("to release 0a0a0a0a0a0a"), "{text}");
    assert!(text.contains("Deployment d-0123"), "{text}");
    // A focus key past the last environment says so.
    a.modal = None;
    a.update(key('7'));
    assert_eq!(a.envs.sel, 0);
    assert!(a.toasts.iter().any(|t| t.text.contains("no environment 7")));
}

fn commits() -> SourceCommits {
    let c = |id: &str, who: &str, msg: &str| SourceCommit {
        commit_id: id.into(),
        author: who.into(),
        date: "2026-11-25T16:20:00+00:00".into(),
        message: msg.into(),
    };
    SourceCommits {
        action_name: "Source".into(),
        from: Some("0a0a0a0a0a0a0a0a".into()),
        to: "0123456789abcdef".into(),
        environment: Some("prod".into()),
        commits: vec![
            c("0123456789abcdef", "Alice Martin", "Fix the greeting"),
            c(
                "1111111111111111",
                "Bob",
                "Log the request id on every 5xx so that on-call can find a failing request from the alarm",
            ),
        ],
        truncated: false,
    }
}

#[test]
fn the_approval_modal_shows_custom_data_the_revision_and_the_commits() {
    let mut a = app();
    a.update(key('A'));
    assert_eq!(a.screen, Screen::Approvals);
    let fx = a.update(key('a'));
    assert_eq!(
        fx,
        vec![Effect::Commits {
            pipeline: "web".into(),
            execution: "e2000000-0000".into(),
            range: CommitRange::SinceLive {
                stage_name: "Approve-Prod".into()
            },
        }]
    );
    let loading = render(&mut a, 120, 30);
    assert!(
        loading.contains("reading the source repository"),
        "{loading}"
    );
    a.update(Msg::Commits {
        execution: "e2000000-0000".into(),
        range: CommitRange::SinceLive {
            stage_name: "Approve-Prod".into(),
        },
        result: Ok(commits()),
    });
    let screen = render(&mut a, 120, 30);
    assert!(screen.contains("CHG-1234"), "{screen}");
    assert!(screen.contains("revision 0123456789ab"), "{screen}");
    assert!(screen.contains("Alice Martin"), "{screen}");
    // The long subject is cut to the modal with an ellipsis.
    assert!(screen.contains("…"), "{screen}");
    insta::assert_snapshot!("approval_modal_with_commits", screen);
    // y approves.
    let fx = a.update(key('y'));
    assert!(
        matches!(fx.as_slice(), [Effect::Op { request: Request::PutApprovalResult { status, .. }, .. }] if status == "Approved"),
        "{fx:?}"
    );
}

#[test]
fn where_the_backend_cannot_list_commits_the_modal_says_so() {
    let mut a = app();
    a.update(key('A'));
    a.update(key('a'));
    a.update(Msg::Commits {
        execution: "e2000000-0000".into(),
        range: CommitRange::SinceLive {
            stage_name: "Approve-Prod".into(),
        },
        result: Err(pipedeck::api::ApiError::new(
            "UnsupportedOperation",
            "the commits between releases are not available on AWS",
        )),
    });
    let screen = render(&mut a, 120, 30);
    assert!(
        screen.contains(
            "commits: not available: the commits between releases are not available on AWS"
        ),
        "{screen}"
    );
    // The revision (CodePipeline's revision summary) is still there.
    assert!(screen.contains("Fix the greeting"), "{screen}");
}

fn audit_event() -> AuditEvent {
    serde_json::from_value(json!({
        "eventVersion": "1.09", "eventId": "5f0c2a4e-9b1d-4c3e-8a7f-2d6b1e0c9a11",
        "eventTime": "2026-11-26T10:01:00.000Z",
        "eventSource": "codepipeline.amazonaws.com", "eventName": "PutApprovalResult",
        "awsRegion": "local", "sourceIpAddress": "127.0.0.1", "userAgent": "pipedeck-tui",
        "userIdentity": {"type": "IAMUser", "principalId": "alice", "arn": "arn:aws:iam::000000000000:user/alice", "accountId": "000000000000", "userName": "alice", "invokedBy": null},
        "requestParameters": {"op": "putApprovalResult", "pipelineName": "web", "stageName": "Approve-Prod",
            "actionName": "Release-Prod", "result": {"status": "Approved", "summary": "checked the dashboards, the canary is clean and CHG-1234 is signed off"}},
        "responseElements": {"approvedAt": "2026-11-26T10:01:00.000Z"}, "errorCode": null, "errorMessage": null,
        "eventType": "AwsApiCall", "readOnly": false
    }))
    .unwrap()
}

#[test]
fn an_audit_row_cut_ends_with_an_ellipsis_and_opens_its_full_record() {
    let mut a = app();
    a.update(Msg::Audit(vec![audit_event()]));
    a.screen = Screen::Audit;
    let screen = render(&mut a, 120, 16);
    let row = screen
        .lines()
        .find(|l| l.contains("PutApprovalResult"))
        .unwrap_or_else(|| panic!("{screen}"));
    assert!(
        row.trim_end_matches(['"', '│', ' ']).ends_with('…'),
        "{row}"
    );
    insta::assert_snapshot!("audit_row_ellipsis", screen);
    a.update(enter());
    let Some(Modal::Record { id, .. }) = &a.modal else {
        panic!("no record: {:?}", a.modal)
    };
    assert_eq!(id, "5f0c2a4e-9b1d-4c3e-8a7f-2d6b1e0c9a11");
    let screen = render(&mut a, 120, 40);
    assert!(screen.contains("\"eventVersion\": \"1.09\""), "{screen}");
    assert!(screen.contains("CHG-1234 is signed off"), "{screen}");
    insta::assert_snapshot!("audit_record", screen);
    // y in the record copies the event id.
    assert_eq!(
        a.update(key('y')),
        vec![Effect::Copy("5f0c2a4e-9b1d-4c3e-8a7f-2d6b1e0c9a11".into())]
    );
}

#[test]
fn answered_approvals_are_selectable_with_their_details() {
    let mut a = app();
    // Approve-Prod answered: Approved by bob, with a summary.
    let st = a.snap.states.get_mut("web").unwrap();
    let s = st
        .stage_states
        .iter_mut()
        .find(|s| s.stage_name == "Approve-Prod")
        .unwrap();
    let x = s.action_states[0].latest_execution.as_mut().unwrap();
    x.token = None;
    x.status = pipedeck::api::types::ActionStatus::Succeeded;
    x.approval.as_mut().unwrap().result = Some(pipedeck::api::types::ApprovalResult {
        status: "Approved".into(),
        summary: "dashboards clean".into(),
        by: "bob".into(),
        at: "2026-11-26T10:03:00.000Z".into(),
    });
    a.update(key('A'));
    let screen = render(&mut a, 120, 16);
    assert!(
        screen.contains("Approved by bob at 2026-11-26 10:03:00"),
        "{screen}"
    );
    // `a` on it says it was answered, not "nothing pending".
    assert!(a.update(key('a')).is_empty());
    assert!(
        a.toasts
            .iter()
            .any(|t| t.text.contains("already answered: Approved by bob")),
        "{:?}",
        a.toasts
    );
    assert_eq!(
        a.update(key('y')),
        vec![Effect::Copy("e2000000-0000".into())]
    );
}

#[test]
fn a_kubernetes_rollout_shows_its_replica_split_and_the_flux_objects() {
    let mut a = app();
    let kube = |name: &str, flux: serde_json::Value| {
        serde_json::from_value::<pipedeck::api::env::EnvironmentSummary>(json!({
            "name": name, "kind": "kubernetes", "location": "eks-prod/web", "url": "",
            "strategy": "RollingUpdate", "protected": false, "live": null,
            "variants": [
                {"label": "rev3", "revision": "v1.4.0", "commitMessage": null, "ready": 1, "total": 4, "restarts": 0, "weightPercent": 25},
                {"label": "rev2", "revision": "v1.3.2", "commitMessage": null, "ready": 3, "total": 3, "restarts": 0, "weightPercent": 75}
            ],
            "deployment": null, "release": {"id": "rs-2", "revision": "v1.3.2"},
            "actions": [], "metrics": null, "flux": flux, "events": []
        }))
        .unwrap()
    };
    let obj = |kind: &str,
               name: &str,
               ready: serde_json::Value,
               suspended: bool,
               extra: serde_json::Value| {
        let mut o = json!({"kind": kind, "namespace": "shop", "name": name, "ready": ready,
            "revision": null, "message": "", "suspended": suspended});
        for (k, v) in extra.as_object().unwrap() {
            o[k] = v.clone();
        }
        o
    };
    let all = [
        "GitRepository",
        "OCIRepository",
        "Kustomization",
        "HelmRelease",
        "ImageRepository",
        "ImagePolicy",
    ];
    a.snap.envs = vec![
        // Six kinds, worst first; more than the panel holds.
        kube(
            "eks-canary",
            json!({"installed": all, "objects": [
                obj("HelmRelease", "web", json!(false), false, json!({"revision": "1.4.0",
                    "reason": "UpgradeFailed", "message": "Helm upgrade failed: context deadline exceeded"})),
                obj("Kustomization", "apps", json!(null), false, json!({"revision": "main@sha1:0123abcd",
                    "message": "Reconciling: Progressing · Running health checks"})),
                obj("GitRepository", "shop", json!(true), true, json!({"revision": "main@sha1:0123abcd"})),
                obj("ImagePolicy", "web", json!(true), false, json!({"image": "ghcr.io/shop/web:1.4.2"})),
                obj("ImageRepository", "web", json!(true), false, json!({"lastScan": "2026-11-26T10:04:00Z", "tags": 14})),
                obj("OCIRepository", "charts", json!(true), false, json!({"revision": "6.3.5@sha256:0a1b2c3d"})),
            ]}),
        ),
        // The image automation controllers are not installed.
        kube(
            "eks-gitops",
            json!({"installed": ["GitRepository", "OCIRepository", "Kustomization", "HelmRelease"], "objects": [
                obj("Kustomization", "apps", json!(true), false, json!({"revision": "main@sha1:0123abcd"})),
                obj("GitRepository", "shop", json!(true), false, json!({"revision": "main@sha1:0123abcd"})),
            ]}),
        ),
        kube("eks-plain", json!({"installed": [], "objects": []})),
    ];
    a.update(key('e'));
    let screen = render(&mut a, 180, 18);
    // A ReplicaSet split is said to be replicas, not traffic, with each
    // revision's share; the gauge has a glyph per variant.
    assert!(screen.contains("█ rev3 25% · ▒ rev2 75%"), "{screen}");
    // The header speaks of the worst; the rows follow `flux get`, worst
    // first, the selected one marked.
    assert!(screen.contains("flux ✘ 2 of 6 not ready"), "{screen}");
    assert!(
        screen.contains("▸✘ hr shop/web  1.4.0  Helm upgrade failed: context"),
        "{screen}"
    );
    assert!(
        screen.contains("… ks shop/apps  main@sha1:0123abcd  Reconciling"),
        "{screen}"
    );
    assert!(
        screen.contains("⏸ git shop/shop  main@sha1:0123abcd"),
        "{screen}"
    );
    assert!(screen.contains("+3 more"), "{screen}");
    assert!(
        screen.contains("flux ✔ 2 ready  · not installed: ImageRepository, ImagePo…"),
        "{screen}"
    );
    assert!(
        screen.contains("flux: not installed in this cluster"),
        "{screen}"
    );
    insta::assert_snapshot!("envs_kubernetes_replicas_and_flux", screen);
    // A taller terminal holds every row, the picked image among them.
    let tall = render(&mut a, 210, 26);
    assert!(
        tall.contains("✔ imagepolicy shop/web  image: ghcr.io/shop/web:1.4.2"),
        "{tall}"
    );
    assert!(
        tall.contains("✔ imagerepo shop/web  scanned 2026-11-26T10:04:00Z · 14 tags"),
        "{tall}"
    );
    assert!(!tall.contains("more"), "{tall}");
    // `j` selects the next object (what `f` / `z` act on); it stays
    // selected when a refresh reorders the objects.
    a.update(key('j'));
    let marked = render(&mut a, 210, 26);
    assert!(marked.contains("▸… ks shop/apps"), "{marked}");
    a.snap.envs[0].flux.as_mut().unwrap().objects.swap(0, 1);
    a.update(key('f'));
    let asked = format!("{:?}", a.modal);
    assert!(
        asked.contains("Kustomization/shop/apps") && asked.contains("Reconcile"),
        "{asked}"
    );
}
