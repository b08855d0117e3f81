//! The local engine against reference §1 (CodePipeline) and §3 (CodeBuild):
//! each test is named after the behaviour it pins down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use pipedeck::api::types::{ActionStatus, ExecutionStatus};
use pipedeck::api::{Reply, Request};

fn simple() -> Ws {
    let p = pipeline(
        "p",
        "SUPERSEDED",
        &[
            stage(
                "Build",
                &[
                    build_action("A", 1, "a.yml", ""),
                    build_action("B", 1, "b.yml", ""),
                    build_action(
                        "C",
                        2,
                        "c.yml",
                        r#", "outputArtifacts": [{"name": "Out"}], "namespace": "C""#,
                    ),
                ],
                "",
            ),
            stage("Approve", &[approval_action("Ok")], ""),
        ],
    );
    workspace(
        &p,
        "",
        &[
            ("a.yml", &buildspec(&["echo a-ran"])),
            ("b.yml", &buildspec(&["echo b-ran"])),
            (
                "c.yml",
                "version: 0.2\nenv:\n  exported-variables: [OUT]\nphases:\n  build:\n    commands:\n      - mkdir -p dist && echo built > dist/app.txt\n      - export OUT=from-c\nartifacts:\n  files: ['**/*']\n  base-directory: dist\n",
            ),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_runs_source_build_groups_and_waits_for_approval() {
    let ws = simple();
    let h = ws.engine();
    let id = start(&h, "p").await;
    until(&h, "p", "approval pending", |st, _| {
        action_status(st, "Approve", "Ok").as_deref() == Some("InProgress")
    })
    .await;
    let st = state(&h, "p").await;
    assert_eq!(stage_status(&st, "Build").as_deref(), Some("Succeeded"));
    let acts = actions(&h, "p", &id).await;
    let c = acts.iter().find(|a| a.action_name == "C").unwrap();
    assert_eq!(
        c.output_variables.get("OUT").map(String::as_str),
        Some("from-c")
    );
    assert_eq!(c.output_artifacts[0].name, "Out");
    let a = acts.iter().find(|a| a.action_name == "A").unwrap();
    assert!(a.log_lines > 0);
    let ok = acts.iter().find(|a| a.action_name == "Ok").unwrap();
    let custom = ok.approval.as_ref().unwrap().custom_data.clone().unwrap();
    let exec = execution(&h, "p", &id).await;
    assert!(
        custom.contains(&exec.source_revisions[0].revision_id),
        "{custom}"
    );
    let r = call(
        &h,
        Request::PutApprovalResult {
            pipeline_name: "p".into(),
            stage_name: "Approve".into(),
            action_name: "Ok".into(),
            token: None,
            status: "Approved".into(),
            summary: "lgtm".into(),
        },
    )
    .await
    .unwrap();
    assert!(matches!(r, Reply::ApprovalRecorded { .. }));
    until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
    let again = call(
        &h,
        Request::PutApprovalResult {
            pipeline_name: "p".into(),
            stage_name: "Approve".into(),
            action_name: "Ok".into(),
            token: None,
            status: "Approved".into(),
            summary: String::new(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(again.code, "ApprovalAlreadyCompleted");
    let acts = actions(&h, "p", &id).await;
    assert!(acts.iter().all(|a| a.status == ActionStatus::Succeeded));
    h.shutdown().await;
}
