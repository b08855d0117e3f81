//! The cost of history (a plain `main`, not criterion): a store of 10,000
//! executions × 20 actions, generated here, and what `status`,
//! `executions` and an engine start cost on it, each beside the same
//! command on a store holding one execution, measured in the same run.
//!
//!     cargo bench --bench history [-- EXECUTIONS]
//!
//! The store is made by running the pipeline (Source + 19 CodeBuild `true`
//! stages) once through the engine and copying its rows (executions,
//! stages, actions, variables, artifacts) with fresh ids and sequence
//! numbers in one transaction. Each command is run 5 times under
//! `/usr/bin/time` (user + system CPU in 10 ms ticks, max RSS; wall from
//! the bench, so it includes `time`'s own exec); medians and ranges are
//! printed.
//!
//! 2026-12-01, 2-core machine shared with other builds (load ~10), after
//! the engine stopped loading history (10,000 executions, 200,000 action
//! rows, 645 MB store), median [range] of 5 beside one execution:
//! `status` 14.4 ms [13.8–21.1] / 25.2 MB beside 17.2 ms [11.4–24.2] /
//! 24.9 MB (was 250 ms / 113 MB); `executions hist` 18.7 ms [12.3–21.1] /
//! 25.3 MB beside 19.9 ms [16.5–23.1] / 24.8 MB; engine start to its first
//! answer 0.9 ms [0.8–1.2] beside 0.8 ms [0.8–1.7].
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use pipedeck::api::Request;

const RUNS: usize = 5;

/// One run of a command: wall ms, CPU ms, max RSS MB.
fn measure(ws: &Ws, args: &[&str]) -> (f64, f64, f64) {
    let t = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %U %S %M"])
        .arg(env!("CARGO_BIN_EXE_pipedeck"))
        .arg("--data-dir")
        .arg(&ws.data)
        .arg("--workspace")
        .arg(&ws.root)
        .args(args)
        .output()
        .unwrap();
    let wall = t.elapsed().as_secs_f64() * 1000.0;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap();
    let f: Vec<f64> = last
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let _ = f[0];
    (wall, (f[1] + f[2]) * 1000.0, f[3] / 1024.0)
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Runs `args` RUNS times on both stores, alternating, and prints each
/// figure beside its baseline.
fn compare(label: &str, base: &Ws, big: &Ws, args: &[&str]) {
    let (mut b, mut g) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        b.push(measure(base, args));
        g.push(measure(big, args));
    }
    println!("\n== {label} (median [min–max] of {RUNS})");
    for (i, name, unit) in [(0, "wall", "ms"), (1, "CPU", "ms"), (2, "max RSS", "MB")] {
        let pick = |v: &[(f64, f64, f64)]| -> Vec<f64> {
            v.iter()
                .map(|t| match i {
                    0 => t.0,
                    1 => t.1,
                    _ => t.2,
                })
                .collect()
        };
        let (bm, bl, bh) = stats(&pick(&b));
        let (gm, gl, gh) = stats(&pick(&g));
        println!(
            "  {name:<8} one execution {bm:>7.1} {unit} [{bl:.1}–{bh:.1}]   history {gm:>7.1} {unit} [{gl:.1}–{gh:.1}]   ratio {:.2}x",
            gm / bm
        );
    }
}

/// Copies the store's only execution `n - 1` times with fresh ids.
fn grow(db: &Path, n: usize) -> Duration {
    let t = Instant::now();
    let mut conn = rusqlite::Connection::open(db).unwrap();
    let (exec_id, pipeline, seq): (String, String, i64) = conn
        .query_row("SELECT id, pipeline, seq FROM executions", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    let action_ids: Vec<String> = {
        let mut st = conn
            .prepare("SELECT id FROM action_executions WHERE execution_id = ?1")
            .unwrap();
        st.query_map([&exec_id], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let tx = conn.transaction().unwrap();
    for (table, key) in [
        ("executions", "id"),
        ("stage_executions", "execution_id"),
        ("action_executions", "execution_id"),
        ("variables", "execution_id"),
        ("execution_artifacts", "execution_id"),
    ] {
        let cols: Vec<String> = {
            let mut st = tx.prepare(&format!("PRAGMA table_info({table})")).unwrap();
            st.query_map([], |r| r.get::<_, String>(1))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let rows: Vec<Vec<rusqlite::types::Value>> = {
            let mut st = tx
                .prepare(&format!("SELECT * FROM {table} WHERE {key} = ?1"))
                .unwrap();
            st.query_map([&exec_id], |r| {
                (0..cols.len())
                    .map(|i| r.get::<_, rusqlite::types::Value>(i))
                    .collect()
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
        };
        let marks = vec!["?"; cols.len()].join(",");
        let mut ins = tx
            .prepare(&format!("INSERT INTO {table} VALUES ({marks})"))
            .unwrap();
        // Each text with the ids turned into templates once: \u{1} stands
        // for the copy's number (8 hex digits, the length of a UUID's
        // first group).
        let templates: Vec<Vec<rusqlite::types::Value>> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| match v {
                        rusqlite::types::Value::Text(s) => {
                            let mut s = s.replace(&exec_id, "\u{1}-0000-4000-8000-000000000000");
                            for (j, a) in action_ids.iter().enumerate() {
                                s = s.replace(a, &format!("\u{1}-{j:04x}-4000-8000-000000000000"));
                            }
                            rusqlite::types::Value::Text(s)
                        }
                        other => other.clone(),
                    })
                    .collect()
            })
            .collect();
        for k in 1..n {
            let kk = format!("{k:08x}");
            for row in &templates {
                let vals: Vec<rusqlite::types::Value> = row
                    .iter()
                    .zip(&cols)
                    .map(|(v, c)| match v {
                        rusqlite::types::Value::Text(s) if s.contains('\u{1}') => {
                            rusqlite::types::Value::Text(s.replace('\u{1}', &kk))
                        }
                        rusqlite::types::Value::Integer(_) if c == "seq" => {
                            rusqlite::types::Value::Integer(seq + k as i64)
                        }
                        // Each copy entered its stages after the one before.
                        rusqlite::types::Value::Integer(e) if c == "entry_seq" => {
                            rusqlite::types::Value::Integer(e + 100 * k as i64)
                        }
                        other => other.clone(),
                    })
                    .collect();
                ins.execute(rusqlite::params_from_iter(vals)).unwrap();
            }
        }
    }
    tx.commit().unwrap();
    let count: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM action_executions a JOIN executions e ON a.execution_id = e.id WHERE e.pipeline = ?1",
            [&pipeline],
            |r| r.get(0),
        )
        .unwrap();
    println!(
        "generated {n} executions, {count} action executions in {:.1?}",
        t.elapsed()
    );
    t.elapsed()
}

fn one_run(ws: &Ws, rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        let h = ws.engine();
        let id = start(&h, "hist").await;
        wait_terminal(&h, "hist", &id).await;
        h.shutdown().await;
    });
}

async fn wait_terminal(h: &pipedeck::engine::EngineHandle, p: &str, id: &str) {
    loop {
        if execution(h, p, id).await.status.is_terminal() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Engine start to its first answer (what `run` and the TUI wait for
/// before anything else), in process.
fn engine_start(ws: &Ws, rt: &tokio::runtime::Runtime) -> f64 {
    rt.block_on(async {
        let t = Instant::now();
        let h = ws.engine();
        let _ = call(
            &h,
            Request::GetPipelineState {
                pipeline_name: "hist".into(),
            },
        )
        .await
        .unwrap();
        let d = t.elapsed();
        h.shutdown().await;
        d.as_secs_f64() * 1000.0
    })
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let spec = buildspec(&["true"]);
    let stages: Vec<String> = (1..20)
        .map(|k| {
            stage(
                &format!("S{k:02}"),
                &[build_action(&format!("B{k:02}"), 1, "t.yml", "")],
                "",
            )
        })
        .collect();
    let def = pipeline("hist", "QUEUED", &stages);
    let base = workspace(&def, "", &[("t.yml", &spec)]);
    let big = workspace(&def, "", &[("t.yml", &spec)]);
    one_run(&base, &rt);
    one_run(&big, &rt);
    let db = big.load().state_dir.join("state.db");
    grow(&db, n);
    println!(
        "store: {:.1} MB",
        std::fs::metadata(&db).unwrap().len() as f64 / 1e6
    );

    compare("`pipedeck status`", &base, &big, &["status"]);
    compare(
        "`pipedeck executions hist`",
        &base,
        &big,
        &["executions", "hist"],
    );
    let (mut b, mut g) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        b.push(engine_start(&base, &rt));
        g.push(engine_start(&big, &rt));
    }
    let (bm, bl, bh) = stats(&b);
    let (gm, gl, gh) = stats(&g);
    println!("\n== engine start -> first GetPipelineState answer, in process (`run` start-up)");
    println!(
        "  wall     one execution {bm:>7.1} ms [{bl:.1}–{bh:.1}]   history {gm:>7.1} ms [{gl:.1}–{gh:.1}]   ratio {:.2}x",
        gm / bm
    );
    println!(
        "\ngoals with {n} executions: status < 20 ms and < 25 MB; run start-up independent of history"
    );
}
