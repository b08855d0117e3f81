//! Carries out the App's effects on tasks against the backend; results come
//! back as messages (`Msg`) or, for what the loop itself handles, as
//! [`Ctl`]. Refreshes are merged while one runs.

use tokio::sync::mpsc;

use super::app::{Effect, Msg, Snapshot};
use super::{Ctl, current};
use crate::api::{ApiError, LogRef, Reply, Request};
use crate::backend::{Backend, Shared};

/// Carries out effects on tasks; results come back as messages.
#[derive(Clone)]
pub(super) struct Runner {
    pub(super) catalogue: std::sync::Arc<crate::diagnose::Catalogue>,
    pub(super) backend: std::sync::Arc<std::sync::RwLock<Shared>>,
    pub(super) tx: mpsc::UnboundedSender<Msg>,
    pub(super) ctl: mpsc::UnboundedSender<Ctl>,
    /// What is to be read again, and whether a reader runs.
    pub(super) refreshes: std::sync::Arc<std::sync::Mutex<Refreshes>>,
    /// The definition version the App has, by pipeline.
    pub(super) versions: std::sync::Arc<std::sync::Mutex<BTreeMap<String, u32>>>,
}

use std::collections::{BTreeMap, BTreeSet};

/// Refreshes asked for while one runs are merged: one reader at a time
/// reads what was asked since it last looked, so a burst of events costs
/// one read of each thing they named.
#[derive(Default)]
pub(super) struct Refreshes {
    running: bool,
    full: bool,
    pipelines: BTreeSet<String>,
    envs: bool,
}

impl Refreshes {
    fn is_empty(&self) -> bool {
        !self.full && !self.envs && self.pipelines.is_empty()
    }
}

impl Runner {
    fn refreshes(&self) -> std::sync::MutexGuard<'_, Refreshes> {
        match self.refreshes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Asks for a refresh; starts the reader unless it runs.
    fn refresh(&self, ask: impl FnOnce(&mut Refreshes)) {
        {
            let mut r = self.refreshes();
            ask(&mut r);
            if r.running {
                return;
            }
            r.running = true;
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let todo = {
                    let mut r = me.refreshes();
                    if r.is_empty() {
                        r.running = false;
                        return;
                    }
                    std::mem::replace(
                        &mut *r,
                        Refreshes {
                            running: true,
                            ..Refreshes::default()
                        },
                    )
                };
                me.read_again(todo).await;
            }
        });
    }

    async fn read_again(&self, todo: Refreshes) {
        let b = current(&self.backend);
        if todo.full {
            match snapshot(&*b).await {
                Ok(s) => {
                    self.fetch_definitions(&*b, &s).await;
                    let _ = self.tx.send(Msg::Snapshot(s));
                    // What the engine could not write (a full disk, say).
                    if let Ok(Reply::Info { info }) = b.call(Request::EngineInfo).await {
                        let _ = self.ctl.send(Ctl::StoreProblem(info.store_problem));
                    }
                }
                Err(e) => self.failed("refresh", e),
            }
            return;
        }
        for name in todo.pipelines {
            match pipeline_snapshot(&*b, &name).await {
                Ok((state, executions)) => {
                    let _ = self.tx.send(Msg::Pipeline {
                        name,
                        state,
                        executions,
                    });
                }
                Err(e) => self.failed(&format!("refreshing {name}"), e),
            }
        }
        if todo.envs {
            match b.call(Request::ListEnvironments).await {
                Ok(Reply::Environments { environments }) => {
                    let _ = self.tx.send(Msg::Environments(environments));
                }
                Ok(_) => {}
                Err(e) => self.failed("refreshing the environments", e),
            }
        }
    }

    fn failed(&self, what: &str, error: ApiError) {
        let _ = self.ctl.send(Ctl::Failed {
            what: what.to_owned(),
            error,
        });
    }

    pub(super) fn run(&self, fx: Effect) {
        let me = self.clone();
        let b = current(&self.backend);
        match fx {
            Effect::Refresh => self.refresh(|p| p.full = true),
            Effect::RefreshPipeline(name) => self.refresh(|p| {
                p.pipelines.insert(name);
            }),
            Effect::RefreshEnvironments => self.refresh(|p| p.envs = true),
            Effect::Op { label, request } => {
                tokio::spawn(async move {
                    let result = match b.call(request).await {
                        Ok(Reply::Started {
                            pipeline_execution_id,
                        }) => Ok(format!(
                            "execution {} started",
                            crate::api::short_id(&pipeline_execution_id, 8)
                        )),
                        Ok(Reply::RolledBack {
                            pipeline_execution_id,
                        }) => Ok(format!(
                            "rollback execution {} started",
                            crate::api::short_id(&pipeline_execution_id, 8)
                        )),
                        Ok(_) => Ok("done".to_owned()),
                        Err(e) => Err(format!("{}: {}", e.code, e.message)),
                    };
                    let _ = me.tx.send(Msg::Done { label, result });
                });
            }
            Effect::ExecActions {
                pipeline,
                execution,
            } => {
                tokio::spawn(async move {
                    match b.action_executions(&pipeline, &execution).await {
                        Ok(actions) => {
                            // Newest first: keep each action's latest attempt.
                            let mut latest: Vec<crate::api::ActionExecutionDetail> = Vec::new();
                            for a in actions {
                                if !latest.iter().any(|x| {
                                    x.stage_name == a.stage_name && x.action_name == a.action_name
                                }) {
                                    latest.push(a);
                                }
                            }
                            let _ = me.tx.send(Msg::ExecActions(execution, latest));
                        }
                        Err(e) => me.failed("reading the execution's actions", e),
                    }
                });
            }
            Effect::Audit => {
                tokio::spawn(async move {
                    match b.call(Request::lookup_events(500)).await {
                        Ok(Reply::Events { events, .. }) => {
                            let _ = me.tx.send(Msg::Audit(events));
                        }
                        Ok(other) => me.failed(
                            "reading the audit trail",
                            ApiError::new("InternalError", format!("unexpected {other:?}")),
                        ),
                        Err(e) => me.failed("reading the audit trail", e),
                    }
                });
            }
            Effect::ReadLog { aeid, start, count } => {
                tokio::spawn(async move {
                    let log = LogRef::parse(&aeid);
                    let start = (start != u64::MAX).then_some(start);
                    let limit = u32::try_from(count).unwrap_or(u32::MAX);
                    let page = match b.read_log(&log, start, limit).await {
                        Ok(p) => p,
                        Err(e) => {
                            // A log not written yet is empty, not an error.
                            if e.code != "ResourceNotFoundException" {
                                me.failed(&format!("reading log {aeid}"), e);
                            }
                            crate::api::LogPage::default()
                        }
                    };
                    let _ = me.tx.send(Msg::LogPage {
                        aeid,
                        total: page.total,
                        start: page.start,
                        lines: page.lines,
                        times: page.times,
                    });
                });
            }
            Effect::ScanLog { aeid, scan } => {
                tokio::spawn(async move {
                    match scan_log(&*b, &LogRef::parse(&aeid), &scan).await {
                        Ok((total, lines, truncated)) => {
                            let _ = me.tx.send(Msg::Matches {
                                aeid,
                                scan,
                                total,
                                lines,
                                truncated,
                            });
                        }
                        Err(e) => {
                            let what = match &scan {
                                crate::tui::app::LogScan::Search(q) => {
                                    format!("searching for `{q}`")
                                }
                                crate::tui::app::LogScan::Errors => {
                                    "looking for the error lines".to_owned()
                                }
                            };
                            me.failed(&what, e);
                        }
                    }
                });
            }
            Effect::Diagnose { action, execution } => {
                tokio::spawn(async move {
                    let audit = match b.call(Request::lookup_events(1000)).await {
                        Ok(Reply::Events { events, .. }) => events,
                        Ok(_) => Vec::new(),
                        Err(e) => {
                            me.failed("reading the audit trail for the diagnosis", e);
                            Vec::new()
                        }
                    };
                    let aeid = action.action_execution_id.clone();
                    let log = match b.read_whole_log(&LogRef::action(&aeid)).await {
                        Ok(l) => l,
                        Err(e) if e.code == "ResourceNotFoundException" => Vec::new(),
                        Err(e) => {
                            me.failed("reading the log for the diagnosis", e);
                            Vec::new()
                        }
                    };
                    // Flux failures in the environments the action deploys to.
                    let health = match b.call(Request::ListEnvironments).await {
                        Ok(Reply::Environments { environments }) => {
                            crate::diagnose::flux::health(&environments, &action.action_name)
                        }
                        _ => Vec::new(),
                    };
                    let cat = me.catalogue.clone();
                    let findings = tokio::task::spawn_blocking(move || {
                        crate::diagnose::diagnose(
                            &crate::diagnose::Input {
                                log: &log,
                                action: Some(&action),
                                execution: execution.as_deref(),
                                audit: &audit,
                                health: &health,
                                ..crate::diagnose::Input::default()
                            },
                            &cat,
                        )
                    })
                    .await
                    .unwrap_or_default();
                    let _ = me.tx.send(Msg::Diagnosis { aeid, findings });
                });
            }
            Effect::Commits {
                pipeline,
                execution,
                range,
            } => {
                tokio::spawn(async move {
                    let result = match b
                        .call(Request::ListSourceCommits {
                            pipeline_name: pipeline,
                            pipeline_execution_id: execution.clone(),
                            range: range.clone(),
                            max_results: Some(50),
                        })
                        .await
                    {
                        Ok(Reply::SourceCommits { commits }) => Ok(commits),
                        Ok(other) => Err(ApiError::new(
                            "InternalError",
                            format!("unexpected {other:?}"),
                        )),
                        Err(e) => Err(e),
                    };
                    let _ = me.tx.send(Msg::Commits {
                        execution,
                        range,
                        result,
                    });
                });
            }
            // The loop writes these to the terminal itself.
            Effect::Copy(_) | Effect::Bell | Effect::Quit => {}
        }
    }

    /// Reads the declarations of pipelines that are new or changed.
    async fn fetch_definitions(&self, b: &dyn Backend, s: &Snapshot) {
        let wanted: Vec<(String, u32)> = {
            let known = match self.versions.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            s.pipelines
                .iter()
                .filter(|p| known.get(&p.name) != Some(&p.version))
                .map(|p| (p.name.clone(), p.version))
                .collect()
        };
        let mut defs = Vec::new();
        for (name, version) in wanted {
            match b
                .call(Request::GetPipeline {
                    pipeline_name: name.clone(),
                    pipeline_version: None,
                })
                .await
            {
                Ok(Reply::Pipeline { pipeline, .. }) => {
                    if let Ok(mut g) = self.versions.lock() {
                        g.insert(name.clone(), version);
                    }
                    defs.push((name, *pipeline));
                }
                Ok(_) => {}
                Err(e) => self.failed(&format!("reading pipeline {name}"), e),
            }
        }
        if !defs.is_empty() {
            let _ = self.ctl.send(Ctl::Defs(defs));
        }
    }
}

/// One pipeline's state and its newest executions.
async fn pipeline_snapshot(
    b: &dyn Backend,
    name: &str,
) -> Result<(crate::api::PipelineState, Vec<crate::api::ExecutionSummary>), ApiError> {
    let state = match b
        .call(Request::GetPipelineState {
            pipeline_name: name.to_owned(),
        })
        .await?
    {
        Reply::State { state } => state,
        other => {
            return Err(ApiError::new(
                "InternalError",
                format!("GetPipelineState: unexpected {other:?}"),
            ));
        }
    };
    let executions = match b.call(Request::list_executions(name, 50)).await? {
        Reply::Executions { executions, .. } => executions,
        _ => Vec::new(),
    };
    Ok((state, executions))
}

async fn snapshot(b: &dyn Backend) -> Result<Snapshot, ApiError> {
    let Reply::Pipelines { pipelines, .. } = b.call(Request::list_pipelines()).await? else {
        return Ok(Snapshot::default());
    };
    let mut s = Snapshot {
        pipelines,
        ..Snapshot::default()
    };
    for p in s.pipelines.clone() {
        let (state, executions) = pipeline_snapshot(b, &p.name).await?;
        s.states.insert(p.name.clone(), state);
        s.executions.insert(p.name.clone(), executions);
    }
    if let Reply::Environments { environments } = b.call(Request::ListEnvironments).await? {
        s.envs = environments;
    }
    Ok(s)
}

/// The lines the engine's search finds, read back with their text (a page
/// around each, so the reads follow the matches, not the log's size), and
/// the log's line count then, and whether lines were left (at most
/// `SCAN_LINES` are kept).
async fn scan_log(
    b: &dyn Backend,
    log: &LogRef,
    scan: &crate::tui::app::LogScan,
) -> Result<(u64, Vec<(u64, String)>, bool), ApiError> {
    const PAGE: u32 = 2_000;
    const SCAN_LINES: usize = 20_000;
    let (pattern, regex) = scan.pattern();
    let found = b.search_log(log, pattern, regex).await?;
    let mut out = Vec::new();
    let mut total = None;
    let mut i = 0;
    while i < found.len() && out.len() < SCAN_LINES {
        // From this line to the last one found within a page: sparse
        // matches read a line each, dense ones a page for many.
        let last = found[i..]
            .iter()
            .take_while(|&&n| n < found[i] + u64::from(PAGE))
            .last()
            .copied()
            .unwrap_or(found[i]);
        let limit = u32::try_from(last - found[i] + 1).unwrap_or(PAGE);
        let page = b.read_log(log, Some(found[i]), limit).await?;
        total = Some(page.total);
        let end = page.start + page.lines.len() as u64;
        if page.lines.is_empty() || found[i] < page.start {
            break;
        }
        while i < found.len() && found[i] < end && out.len() < SCAN_LINES {
            let at = usize::try_from(found[i] - page.start).unwrap_or(usize::MAX);
            if let Some(text) = page.lines.get(at) {
                out.push((found[i], text.clone()));
            }
            i += 1;
        }
    }
    let total = match total {
        Some(t) => t,
        None => b.read_log(log, None, 1).await?.total,
    };
    Ok((total, out, i < found.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fake::{Fake, FakeState};
    use crate::tui::app::LogScan;

    /// A log of 60,000 lines with an error every 3,000 (sparse) and a run
    /// of 500 `FAIL` lines (dense): what the scan reads.
    #[tokio::test]
    async fn a_scan_reads_the_lines_found_not_the_log() {
        let mut lines: Vec<String> = (0..60_000).map(|n| format!("step {n} ok")).collect();
        for n in (1_000..60_000).step_by(3_000) {
            lines[n] = format!("error: step {n} broke");
        }
        for l in &mut lines[30_001..30_501] {
            *l = "FAIL: a test".into();
        }
        lines[40] = "lint: 0 failed, errors: 0".into();
        let mut st = FakeState::default();
        st.logs.insert("ae-x".into(), lines);
        let fake = Fake::new(st);
        let (total, found, truncated) = scan_log(&fake, &LogRef::action("ae-x"), &LogScan::Errors)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(total, 60_000);
        assert!(!truncated);
        // 20 sparse errors + 500 FAIL lines + the zero-count line (a
        // candidate: the App's classification drops it).
        assert_eq!(found.len(), 20 + 500 + 1);
        let reads: Vec<u32> = fake.with(|s| {
            s.calls
                .iter()
                .filter_map(|c| match c {
                    Request::GetLogEvents { limit, .. } => Some(*limit),
                    _ => None,
                })
                .collect()
        });
        // A read reaches from a line found to the last one found within a
        // page: lines 40..=1,000 together, the FAIL run with the error at
        // 31,000, the other errors a line each.
        let read_lines: u32 = reads.iter().sum();
        assert_eq!(reads.len(), 20, "{reads:?}");
        assert_eq!(read_lines, 961 + 1_000 + 18, "{reads:?}");
    }
}
