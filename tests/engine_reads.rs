//! Reads the TUI and remote backends need, answered by the engine:
//! GetPipeline of any stored version, log pages and searches by log
//! reference (through the engine, off its actor), and nextToken paging of
//! the lists (AWS semantics).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::*;
use pipedeck::api::types::ExecutionStatus;
use pipedeck::api::{ApiError, LogRef, PipelineState, Reply, Request};
use pipedeck::engine::EngineHandle;

async fn add(h: &EngineHandle, r: Request) -> Result<Reply, ApiError> {
    h.request("test", r).await
}

/// Source, then one build printing `n` numbered lines.
fn printing(n: u32) -> Ws {
    let p = pipeline(
        "p",
        "QUEUED",
        &[stage(
            "Build",
            &[
                build_action("A", 1, "a.yml", ""),
                build_action("B", 1, "a.yml", ""),
                build_action("C", 2, "a.yml", ""),
            ],
            "",
        )],
    );
    let cmd = format!("for i in $(seq 1 {n}); do echo line-$i; done; echo needle-here");
    workspace(&p, "", &[("a.yml", &buildspec(&[&cmd]))])
}

async fn run_once(h: &EngineHandle) -> String {
    let id = start(h, "p").await;
    until_status(h, "p", &id, ExecutionStatus::Succeeded).await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pipeline_returns_the_declaration_of_the_version_asked() {
    let ws = printing(1);
    let h = ws.engine();
    let Reply::Pipeline { pipeline, metadata } = add(
        &h,
        Request::GetPipeline {
            pipeline_name: "p".into(),
            pipeline_version: None,
        },
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(pipeline.name, "p");
    let stages: Vec<_> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stages, ["Source", "Build"]);
    assert_eq!(
        (metadata.pipeline_version, metadata.current_version),
        (1, 1)
    );
    assert!(!metadata.created.is_empty() && !metadata.updated.is_empty());
    h.shutdown().await;
    // The file changes: version 2 is current, version 1 is still there.
    let text = std::fs::read_to_string(ws.root.join("pipeline.json")).unwrap();
    std::fs::write(
        ws.root.join("pipeline.json"),
        text.replace(r#""name": "Build""#, r#""name": "Compile""#),
    )
    .unwrap();
    let h = ws.engine();
    let get = |v: Option<u32>| {
        add(
            &h,
            Request::GetPipeline {
                pipeline_name: "p".into(),
                pipeline_version: v,
            },
        )
    };
    let Reply::Pipeline { pipeline, metadata } = get(None).await.unwrap() else {
        panic!()
    };
    assert_eq!(pipeline.stages[1].name, "Compile");
    assert_eq!(metadata.pipeline_version, 2);
    let Reply::Pipeline { pipeline, metadata } = get(Some(1)).await.unwrap() else {
        panic!()
    };
    assert_eq!(pipeline.stages[1].name, "Build");
    assert_eq!(
        (metadata.pipeline_version, metadata.current_version),
        (1, 2)
    );
    assert_eq!(
        get(Some(7)).await.unwrap_err().code,
        "PipelineVersionNotFound"
    );
    // The contract's GetPipeline gives the current version.
    let Reply::Pipeline { pipeline, metadata } = call(
        &h,
        Request::GetPipeline {
            pipeline_name: "p".into(),
            pipeline_version: None,
        },
    )
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(
        (pipeline.stages[1].name.as_str(), metadata.pipeline_version),
        ("Compile", 2)
    );
    let e = add(
        &h,
        Request::GetPipeline {
            pipeline_name: "nope".into(),
            pipeline_version: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "PipelineNotFound");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_events_are_read_by_reference_with_a_line_range_and_the_total() {
    let ws = printing(300);
    let h = ws.engine();
    let id = run_once(&h).await;
    let a = actions(&h, "p", &id)
        .await
        .into_iter()
        .find(|a| a.action_name == "A")
        .unwrap();
    let log = LogRef::action(a.action_execution_id.clone());
    let read = |log: LogRef, start_line: Option<u64>, limit: u32| {
        call(
            &h,
            Request::GetLogEvents {
                log,
                start_line,
                limit,
            },
        )
    };
    // No start: the last `limit` lines.
    let Reply::LogEvents { page } = read(log.clone(), None, 5).await.unwrap() else {
        panic!()
    };
    assert_eq!(page.total, a.log_lines);
    assert_eq!(page.start, page.total - 5);
    assert_eq!((page.lines.len(), page.times.len()), (5, 5));
    assert!(page.times.iter().all(Option::is_some));
    assert!(
        page.lines.iter().any(|l| l.contains("needle-here")),
        "{:?}",
        page.lines
    );
    // A range from a line.
    let Reply::LogEvents { page } = read(log.clone(), Some(0), 3).await.unwrap() else {
        panic!()
    };
    assert_eq!((page.start, page.lines.len()), (0, 3));
    // The search finds the lines, up to the limit, and says when there were more.
    let find = |pattern: &str, regex: bool, limit: u32| {
        call(
            &h,
            Request::FilterLogEvents {
                log: log.clone(),
                pattern: pattern.into(),
                regex,
                limit: Some(limit),
            },
        )
    };
    let Reply::LogMatches { lines, truncated } = find("needle-here", false, 100).await.unwrap()
    else {
        panic!()
    };
    assert!(!truncated && !lines.is_empty());
    let Reply::LogEvents { page } = read(log.clone(), Some(lines[0]), 1).await.unwrap() else {
        panic!()
    };
    assert!(page.lines[0].contains("needle-here"), "{:?}", page.lines);
    let Reply::LogMatches { lines, truncated } = find(r"^line-\d+$", true, 10).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(lines.len(), 10);
    assert!(truncated);
    assert!(find("(", true, 10).await.is_err());
    // Unknown and unsafe references are refused with a reason.
    let e = read(LogRef::parse("no-such-execution"), None, 5)
        .await
        .unwrap_err();
    assert_eq!(e.code, "ResourceNotFoundException");
    assert!(e.message.contains("no-such-execution"), "{}", e.message);
    let e = read(LogRef::parse("../../etc/passwd"), None, 5)
        .await
        .unwrap_err();
    assert_eq!(e.code, "ValidationException");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_with_next_token_until_none_remain() {
    let ws = printing(1);
    // A second pipeline for ListPipelines.
    let cfg = std::fs::read_to_string(ws.root.join("pipedeck.toml")).unwrap();
    std::fs::write(
        ws.root.join("pipedeck.toml"),
        cfg.replace(
            "[workspace]\n",
            "[workspace]\npipelines = [\"pipeline.json\", \"q.json\"]\n",
        ),
    )
    .unwrap();
    let q = std::fs::read_to_string(ws.root.join("pipeline.json"))
        .unwrap()
        .replace(r#""name": "p""#, r#""name": "q""#);
    std::fs::write(ws.root.join("q.json"), q).unwrap();
    let h = ws.engine();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(run_once(&h).await);
    }
    ids.reverse(); // newest first

    // ListPipelines
    let Reply::Pipelines {
        pipelines,
        next_token,
    } = add(
        &h,
        Request::ListPipelines {
            max_results: Some(1),
            next_token: None,
        },
    )
    .await
    .unwrap()
    else {
        panic!()
    };
    assert_eq!(pipelines[0].name, "p");
    let Reply::Pipelines {
        pipelines,
        next_token,
    } = add(
        &h,
        Request::ListPipelines {
            max_results: Some(1),
            next_token,
        },
    )
    .await
    .unwrap()
    else {
        panic!()
    };
    assert_eq!(pipelines[0].name, "q");
    assert_eq!(next_token, None);

    // ListPipelineExecutions: two pages, newest first, no repeats, even
    // with a newer execution started between them.
    let Reply::Executions {
        executions,
        next_token,
    } = add(
        &h,
        Request::ListPipelineExecutions {
            pipeline_name: "p".into(),
            max_results: Some(2),
            next_token: None,
        },
    )
    .await
    .unwrap()
    else {
        panic!()
    };
    let mut seen: Vec<String> = executions
        .iter()
        .map(|e| e.pipeline_execution_id.clone())
        .collect();
    assert!(next_token.is_some());
    let newer = run_once(&h).await;
    let Reply::Executions {
        executions,
        next_token,
    } = add(
        &h,
        Request::ListPipelineExecutions {
            pipeline_name: "p".into(),
            max_results: Some(2),
            next_token,
        },
    )
    .await
    .unwrap()
    else {
        panic!()
    };
    seen.extend(executions.iter().map(|e| e.pipeline_execution_id.clone()));
    assert_eq!(seen, ids);
    assert_eq!(next_token, None);
    assert!(!seen.contains(&newer));
    let bad = add(
        &h,
        Request::ListPipelineExecutions {
            pipeline_name: "p".into(),
            max_results: Some(2),
            next_token: Some("not-a-token".into()),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code, "InvalidNextToken");

    // ListActionExecutions: Source, A, B, C in pages of 3.
    let all = actions(&h, "p", &ids[0]).await;
    assert_eq!(all.len(), 4);
    let mut token = None;
    let mut paged = Vec::new();
    loop {
        let Reply::ActionExecutions {
            actions,
            next_token,
        } = add(
            &h,
            Request::ListActionExecutions {
                pipeline_name: "p".into(),
                pipeline_execution_id: ids[0].clone(),
                max_results: Some(3),
                next_token: token,
            },
        )
        .await
        .unwrap()
        else {
            panic!()
        };
        assert!(actions.len() <= 3);
        paged.extend(actions.into_iter().map(|a| a.action_execution_id));
        token = next_token;
        if token.is_none() {
            break;
        }
    }
    let all: Vec<String> = all.into_iter().map(|a| a.action_execution_id).collect();
    assert_eq!(paged, all);

    // LookupEvents: pages of 2 give what one unpaged call gives.
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
    assert!(events.len() >= 4, "{}", events.len());
    let mut token = None;
    let mut paged = Vec::new();
    loop {
        let Reply::Events { events, next_token } = add(
            &h,
            Request::LookupEvents {
                max_results: Some(2),
                next_token: token,
            },
        )
        .await
        .unwrap() else {
            panic!()
        };
        paged.extend(events.into_iter().map(|e| e.event_id));
        token = next_token;
        if token.is_none() {
            break;
        }
    }
    let unpaged: Vec<String> = events.into_iter().map(|e| e.event_id).collect();
    assert_eq!(paged, unpaged);
    assert_eq!(paged.iter().collect::<HashSet<_>>().len(), paged.len());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_executions_are_answered_from_the_store_after_a_restart() {
    let ws = printing(1);
    let h = ws.engine();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(run_once(&h).await);
    }
    let before = state(&h, "p").await;
    h.shutdown().await;
    // The execution's own row does not repeat its actions' details: the
    // stage row holds them.
    let db = ws.load().state_dir.join("state.db");
    let record: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT record FROM executions WHERE id = ?1",
            [&ids[2]],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        !record.contains("actionExecutionId"),
        "the execution row repeats the actions: {record}"
    );
    // A new engine holds the newest execution and each stage's latest;
    // the two older ones are read from the store when asked for.
    let h = ws.engine();
    // The latest stage run comes back whole from its stage row.
    let after = state(&h, "p").await;
    let latest = |st: &PipelineState| -> Vec<(String, Option<String>)> {
        st.stage_states
            .iter()
            .flat_map(|s| s.action_states.iter())
            .map(|a| {
                let l = a.latest_execution.as_ref().unwrap();
                (
                    l.action_execution_id.clone(),
                    l.external_execution_id.clone(),
                )
            })
            .collect()
    };
    assert_eq!(latest(&after), latest(&before));
    assert_eq!(latest(&after).len(), 4, "Source and the three builds");
    let mut paged = Vec::new();
    let mut token = None;
    loop {
        let Reply::Executions {
            executions,
            next_token,
        } = add(
            &h,
            Request::ListPipelineExecutions {
                pipeline_name: "p".into(),
                max_results: Some(1),
                next_token: token,
            },
        )
        .await
        .unwrap()
        else {
            panic!()
        };
        paged.extend(executions.into_iter().map(|e| e.pipeline_execution_id));
        token = next_token;
        if token.is_none() {
            break;
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(paged, newest_first);
    let oldest = execution(&h, "p", &ids[0]).await;
    assert_eq!(oldest.status, ExecutionStatus::Succeeded);
    assert_eq!(actions(&h, "p", &ids[0]).await.len(), 4);
    let stop = add(
        &h,
        Request::StopPipelineExecution {
            pipeline_name: "p".into(),
            pipeline_execution_id: Some(ids[0].clone()),
            abandon: false,
            reason: None,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(stop.code, "PipelineExecutionNotStoppable", "{stop:?}");
    // The default rollback target is the success before the latest: an
    // execution only the store holds now.
    let Reply::RolledBack {
        pipeline_execution_id,
    } = add(
        &h,
        Request::RollbackStage {
            pipeline_name: "p".into(),
            stage_name: "Build".into(),
            target_pipeline_execution_id: None,
        },
    )
    .await
    .unwrap()
    else {
        panic!()
    };
    let rb = execution(&h, "p", &pipeline_execution_id).await;
    assert_eq!(rb.rollback_target.as_deref(), Some(ids[1].as_str()));
    until_status(&h, "p", &pipeline_execution_id, ExecutionStatus::Succeeded).await;
    // An explicit older target is read from the store too.
    let Reply::RolledBack {
        pipeline_execution_id,
    } = add(
        &h,
        Request::RollbackStage {
            pipeline_name: "p".into(),
            stage_name: "Build".into(),
            target_pipeline_execution_id: Some(ids[0].clone()),
        },
    )
    .await
    .unwrap()
    else {
        panic!()
    };
    let rb = execution(&h, "p", &pipeline_execution_id).await;
    assert_eq!(rb.rollback_target.as_deref(), Some(ids[0].as_str()));
    until_status(&h, "p", &pipeline_execution_id, ExecutionStatus::Succeeded).await;
    h.shutdown().await;
}
