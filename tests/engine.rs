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

/// Every action's scratch directory is emptied once the execution ends
/// (after the action is reported; the directories are lent again), and one
/// a crashed engine left is removed when the next engine starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch_directories_are_emptied_after_their_actions() {
    let ws = simple();
    let h = ws.engine();
    let work = h.workspace.state_dir.join("work");
    let id = start(&h, "p").await;
    until(&h, "p", "approval pending", |st, _| {
        action_status(st, "Approve", "Ok").as_deref() == Some("InProgress")
    })
    .await;
    let acts = actions(&h, "p", &id).await;
    let ran = acts.iter().filter(|a| a.action_name != "Ok").count();
    assert!(ran >= 4);
    // What is left in the work directory but empty directories and the
    // shells' pgid files.
    fn files(dir: &std::path::Path, depth: usize, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                files(&p, depth + 1, out);
            } else if !(depth == 1 && e.file_name() == "pgid") {
                out.push(p.display().to_string());
            }
        }
    }
    let left = || {
        let mut out = Vec::new();
        files(&work, 0, &mut out);
        out
    };
    let t = std::time::Instant::now();
    while !left().is_empty() && t.elapsed() < std::time::Duration::from_secs(10) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(left(), Vec::<String>::new(), "in {}", work.display());
    let slots = std::fs::read_dir(&work).unwrap().count();
    assert!(
        (1..=ran).contains(&slots),
        "{slots} scratch directories for {ran} actions"
    );
    h.shutdown().await;
    // A crash leaves one behind: the next engine removes it at start.
    let stale = work.join("00000000-dead-beef-0000-000000000000");
    std::fs::create_dir_all(stale.join("in.Src")).unwrap();
    std::fs::write(stale.join("in.Src/app.txt"), "x").unwrap();
    let h = ws.engine();
    assert!(!stale.exists(), "{} was left", stale.display());
    h.shutdown().await;
}
