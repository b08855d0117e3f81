//! History kept in the store: a store written before the history indexes
//! (schema 1) migrates on the first start, and a `kill -9` at any moment
//! of that migration loses nothing: the next start finds the old schema
//! intact (the migration is one transaction) or the new one complete.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pipedeck::api::types::ExecutionStatus;

const COPIES: i64 = 3000;

fn pipedeck(ws: &Ws, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pipedeck"));
    c.arg("--data-dir")
        .arg(&ws.data)
        .arg("--workspace")
        .arg(&ws.root)
        .args(args)
        .stdin(Stdio::null());
    c
}

/// Execution rows (id, record) and stage rows (execution, stage, record).
type Rows = (Vec<(String, String)>, Vec<(String, String, String)>);

/// Rows of the tables the migration touches, in a stable order.
fn rows(db: &std::path::Path) -> Rows {
    let c = rusqlite::Connection::open(db).unwrap();
    let execs = c
        .prepare("SELECT id, record FROM executions ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let stages = c
        .prepare("SELECT execution_id, stage, record FROM stage_executions ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (execs, stages)
}

#[test]
fn a_schema_1_store_migrates_and_a_kill_9_during_the_migration_loses_nothing() {
    let p = pipeline(
        "p",
        "QUEUED",
        &[stage("Build", &[build_action("B", 1, "b.yml", "")], "")],
    );
    let ws = workspace(&p, "", &[("b.yml", &buildspec(&["true"]))]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let first = rt.block_on(async {
        let h = ws.engine();
        let id = start(&h, "p").await;
        until_status(&h, "p", &id, ExecutionStatus::Succeeded).await;
        h.shutdown().await;
        id
    });
    let db = ws.load().state_dir.join("state.db");
    // Back to schema 1 (the columns and indexes migration 2 adds go), with
    // COPIES more executions so the migration takes a while.
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(&format!(
            "DROP INDEX stage_executions_latest;
             DROP INDEX executions_unfinished;
             DROP INDEX approvals_by_action_execution;
             ALTER TABLE stage_executions DROP COLUMN pipeline;
             ALTER TABLE stage_executions DROP COLUMN entry_seq;
             PRAGMA user_version = 1;
             WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {COPIES})
             INSERT INTO executions
                SELECT id || '-' || k, pipeline, seq + k, status, type, start_time,
                       replace(record, id, id || '-' || k)
                FROM executions, n WHERE id = '{first}';
             WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {COPIES})
             INSERT INTO stage_executions
                SELECT execution_id || '-' || k, stage, status,
                       replace(record, execution_id, execution_id || '-' || k)
                FROM stage_executions, n WHERE execution_id = '{first}';"
        ))
        .unwrap();
    }
    let before = rows(&db);
    assert_eq!(before.0.len() as i64, COPIES + 1);
    // Killed at spread moments of its start (and so of the migration).
    for delay in [0u64, 5, 15, 30, 60, 70, 80, 90, 100, 110, 120, 250] {
        let mut child = pipedeck(&ws, &["status"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(rows(&db), before, "rows changed by a kill after {delay} ms");
        let v: i64 = rusqlite::Connection::open(&db)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert!(v == 1 || v == 2, "schema {v} after a kill at {delay} ms");
        println!("killed after {delay} ms: schema {v}");
    }
    let t = Instant::now();
    let out = pipedeck(&ws, &["status", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("status after the kills: {:?}", t.elapsed());
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let newest = format!("{first}-{COPIES}");
    assert_eq!(
        st["pipelines"][0]["latestExecution"]["pipelineExecutionId"],
        newest.as_str(),
        "{st}"
    );
    assert_eq!(
        st["states"][0]["stageStates"][1]["latestExecution"]["pipelineExecutionId"],
        newest.as_str(),
        "{st}"
    );
    assert_eq!(rows(&db), before);
    let c = rusqlite::Connection::open(&db).unwrap();
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 2);
    // Every stage row gained its pipeline and entry order from its record.
    let wrong: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM stage_executions
             WHERE pipeline != 'p' OR entry_seq != json_extract(record, '$.entry_seq')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(wrong, 0);
    // The oldest is still there, read from the store by its id.
    let out = pipedeck(&ws, &["executions", "p", "--json", "--max", "1000"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1000);
    assert_eq!(list[0]["pipelineExecutionId"], newest.as_str());
}
