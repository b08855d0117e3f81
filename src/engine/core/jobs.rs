//! Jobs: an action runs as a task with its log, inputs, timeout and outputs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::ActionDone;
use super::scratch::Scratch;
use crate::api::EngineEvent;
use crate::config::workspace::Workspace;
use crate::providers::{self, ActionContext, ActionOutcome, InputArtifact, LogSink, OutcomeStatus};
use crate::store::artifacts::{ArtifactStore, StoredArtifact};
use crate::store::logs::LogWriter;

pub(super) fn action_timeout(ws: &Workspace, action: &crate::model::pipeline::Action) -> Duration {
    if let Some(m) = action.timeout_in_minutes {
        return Duration::from_secs(u64::from(m) * 60);
    }
    let minutes: f64 = match (action.action_type_id.category.as_str(), action.provider()) {
        (_, "CodeBuild") => action
            .configuration
            .get("ProjectName")
            .and_then(|p| ws.projects.get(p))
            .and_then(|p| p.timeout_minutes)
            .unwrap_or(8.0 * 60.0),
        ("Invoke", _) => action
            .configuration
            .get("FunctionName")
            .and_then(|f| ws.functions.get(f))
            .and_then(|f| f.timeout_minutes)
            .unwrap_or(20.0),
        ("Deploy", _) => 5.0 * 24.0 * 60.0,
        ("Source", _) => 60.0,
        _ => 8.0 * 60.0,
    };
    Duration::from_secs_f64(minutes.max(0.0) * 60.0)
}

pub(super) struct CtxBase {
    pub(super) pipeline: String,
    pub(super) execution_id: String,
    pub(super) stage: String,
    pub(super) aeid: String,
    pub(super) action: crate::model::pipeline::Action,
    pub(super) source_revision: Option<String>,
    pub(super) timeout: Duration,
}

pub(super) struct Job {
    pub(super) exec: String,
    pub(super) stage: usize,
    pub(super) action_index: usize,
    pub(super) ctx_base: CtxBase,
    pub(super) inputs: Vec<(String, String)>,
    pub(super) revisions: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_job(
    job: Job,
    provider: Arc<dyn providers::Provider>,
    ws: Arc<Workspace>,
    artifacts: ArtifactStore,
    scratch: Scratch,
    events: broadcast::Sender<EngineEvent>,
    stop_tx: Arc<watch::Sender<bool>>,
    stop_rx: watch::Receiver<bool>,
) -> ActionDone {
    let base = job.ctx_base;
    let aeid = base.aeid.clone();
    let cache_dir = ws.state_dir.join("cache").join(sanitize(&format!(
        "{}-{}-{}",
        base.pipeline, base.stage, base.action.name
    )));
    let lines = Arc::new(AtomicU64::new(0));
    let done =
        |outcome: ActionOutcome, artifacts: Vec<(String, StoredArtifact)>, lines: u64| ActionDone {
            exec: job.exec.clone(),
            stage: job.stage,
            action: job.action_index,
            action_execution_id: aeid.clone(),
            outcome,
            artifacts,
            lines,
        };
    let log_failed = Arc::new(Mutex::new(None));
    let log = {
        let lines = lines.clone();
        let id = aeid.clone();
        match LogWriter::create(&ws.state_dir.join("logs"), &aeid) {
            Ok(w) => CheckedLog {
                inner: w.on_flush(Box::new(move |n| {
                    lines.store(n, Ordering::Relaxed);
                    let _ = events.send(EngineEvent::LogAppended {
                        action_execution_id: id.clone(),
                        lines: n,
                    });
                })),
                failed: log_failed.clone(),
                stop: stop_tx.clone(),
            },
            Err(e) => {
                return done(
                    ActionOutcome::failed(
                        "JobFailed",
                        format!(
                            "cannot create the action's log in {}: {e}",
                            ws.state_dir.display()
                        ),
                    ),
                    Vec::new(),
                    0,
                );
            }
        }
    };
    // The action's directories, in one blocking step: a scratch directory
    // from the pool, a fresh copy of each input artifact, the output
    // directory and the cache.
    let setup = {
        let (a, cache, scratch) = (artifacts.clone(), cache_dir.clone(), scratch.clone());
        let wanted = job.inputs.clone();
        tokio::task::spawn_blocking(move || -> Result<_, String> {
            let work_dir = scratch
                .take()
                .map_err(|e| format!("the action's scratch directory: {e}"))?;
            let made = (|| {
                let mut inputs = Vec::new();
                for (name, id) in wanted {
                    // `in.<name>`: one directory less to make than
                    // `in/<name>`, and no clash with `out` or `pgid`
                    // (names are sanitized).
                    let dir = work_dir.join(format!("in.{}", sanitize(&name)));
                    a.materialize(&id, &dir)
                        .map_err(|e| format!("input artifact {name}: {e}"))?;
                    inputs.push((name, dir));
                }
                let out = work_dir.join("out");
                std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
                let _ = std::fs::create_dir_all(&cache);
                Ok(inputs)
            })();
            match made {
                Ok(inputs) => Ok((work_dir, inputs)),
                Err(e) => {
                    scratch.give_back(work_dir);
                    Err(e)
                }
            }
        })
        .await
        .unwrap_or_else(|e| Err(format!("the action's directories: {e}")))
    };
    let (work_dir, inputs) = match setup {
        Ok((work_dir, inputs)) => (
            work_dir,
            inputs
                .into_iter()
                .enumerate()
                .map(|(n, (name, dir))| InputArtifact {
                    name,
                    dir,
                    revision: job.revisions.get(n).cloned(),
                })
                .collect::<Vec<_>>(),
        ),
        Err(msg) => return done(ActionOutcome::failed("JobFailed", msg), Vec::new(), 0),
    };
    let out_dir = work_dir.join("out");
    let timeout = base.timeout;
    let deadline = std::time::Instant::now() + timeout;
    let ctx = ActionContext {
        pipeline: base.pipeline,
        execution_id: base.execution_id,
        stage: base.stage,
        action_execution_id: aeid.clone(),
        action: base.action,
        inputs,
        work_dir: out_dir,
        cache_dir,
        workspace: ws.clone(),
        source_revision: base.source_revision,
        stop: stop_rx,
        timeout,
        deadline,
        log: Box::new(log),
    };
    let outcome = {
        // The provider's future owns the context (and the log): it is
        // dropped at the end of this block, with the log's last flush.
        let mut fut = provider.run(ctx);
        tokio::select! {
            o = &mut fut => o,
            () = tokio::time::sleep_until(deadline.into()) => {
                // The one timer: the provider is stopped at the deadline it
                // was given. A build that reports its phases keeps them (it
                // says TIMED_OUT itself); anything else gets the timeout.
                let _ = stop_tx.send(true);
                let o = fut.await;
                if o.status == OutcomeStatus::Failed && !o.phases.is_empty() {
                    o
                } else {
                    ActionOutcome::failed(
                        "JobFailed",
                        format!("the action timed out after {}", humantime::format_duration(timeout)),
                    )
                }
            }
        }
    };
    let mut stored = Vec::new();
    let mut outcome = outcome;
    let log_error = log_failed.lock().ok().and_then(|mut f| f.take());
    if let Some(cause) = log_error {
        // A cut log is not a success: the action fails with the cause.
        outcome = ActionOutcome::failed(
            "JobFailed",
            format!(
                "the action's log could not be written, so the action fails: {}",
                super::name_disk_full(&cause.to_string())
            ),
        );
    }
    if outcome.status == OutcomeStatus::Succeeded {
        for (name, dir) in outcome.output_artifacts.clone() {
            let a = artifacts.clone();
            match tokio::task::spawn_blocking(move || a.ingest(&dir)).await {
                Ok(Ok(s)) => stored.push((name, s)),
                Ok(Err(e)) => {
                    outcome = ActionOutcome::failed(
                        "JobFailed",
                        format!("cannot store output artifact {name}: {e}"),
                    );
                    break;
                }
                Err(e) => {
                    outcome = ActionOutcome::failed(
                        "JobFailed",
                        format!("cannot store output artifact {name}: {e}"),
                    );
                    break;
                }
            }
        }
    }
    // The scratch directory is emptied and given back after the action is
    // reported: emptying it right after a large log was written waited
    // 6-8 ms on the file system (`seq 1 2000000` in the engine bench), and
    // nothing reads it again. Those a crash left are removed at the next
    // start (`reap_orphans`).
    tokio::task::spawn_blocking(move || scratch.give_back(work_dir));
    done(outcome, stored, lines.load(Ordering::Relaxed))
}

/// The action's log as its provider sees it. The first write error (a
/// full disk) is kept for the action's outcome and stops the action: a
/// build never ends Succeeded with a cut log.
struct CheckedLog {
    inner: LogWriter,
    failed: Arc<Mutex<Option<String>>>,
    stop: Arc<watch::Sender<bool>>,
}

impl CheckedLog {
    fn check(&mut self) {
        let Some(e) = self.inner.error() else {
            return;
        };
        if let Ok(mut f) = self.failed.lock()
            && f.is_none()
        {
            *f = Some(e.to_string());
            let _ = self.stop.send(true);
        }
    }
}

impl LogSink for CheckedLog {
    fn line(&mut self, line: &str) {
        self.inner.line(line);
        self.check();
    }
    fn chunk(&mut self, data: &[u8]) {
        self.inner.chunk(data);
        self.check();
    }
    fn flush(&mut self) {
        LogSink::flush(&mut self.inner);
        self.check();
    }
}

impl Drop for CheckedLog {
    fn drop(&mut self) {
        // The last lines reach the disk here, or their error is kept.
        LogSink::flush(&mut self.inner);
        self.check();
    }
}

pub(super) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Where an action execution's log lives.
pub fn log_dir(ws: &Workspace) -> PathBuf {
    ws.state_dir.join("logs")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PIPELINE: &str = r#"{"pipeline": {"name": "p", "roleArn": "arn:aws:iam::123456789012:role/x",
      "artifactStore": {"type": "S3", "location": "bucket"}, "stages": [
        {"name": "Source", "actions": [{"name": "Source",
          "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
          "configuration": {"RepositoryName": "app", "BranchName": "main"},
          "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Build", "actions": [{"name": "A",
          "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
          "configuration": {"ProjectName": "A"}, "inputArtifacts": [{"name": "Src"}]}]}]}}"#;

    /// Prints ten lines, flushes, and succeeds.
    struct Chatty;

    impl providers::Provider for Chatty {
        fn run(&self, mut ctx: ActionContext) -> providers::BoxFuture<ActionOutcome> {
            Box::pin(async move {
                for i in 0..10 {
                    ctx.log.line(&format!("line {i}"));
                }
                ctx.log.flush();
                ActionOutcome::succeeded()
            })
        }
    }

    fn job(ws: &Workspace, aeid: &str) -> Job {
        Job {
            exec: "e".into(),
            stage: 0,
            action_index: 0,
            ctx_base: CtxBase {
                pipeline: "p".into(),
                execution_id: "e".into(),
                stage: "Build".into(),
                aeid: aeid.into(),
                action: ws.pipelines[0].pipeline.stages[1].actions[0].clone(),
                source_revision: None,
                timeout: Duration::from_secs(30),
            },
            inputs: Vec::new(),
            revisions: Vec::new(),
        }
    }

    async fn run(ws: &Arc<Workspace>, aeid: &str) -> ActionDone {
        let (events, _) = broadcast::channel(64);
        let (stop_tx, stop_rx) = watch::channel(false);
        run_job(
            job(ws, aeid),
            Arc::new(Chatty),
            ws.clone(),
            ArtifactStore::new(&ws.state_dir),
            Scratch::new(ws.state_dir.join("work")),
            events,
            Arc::new(stop_tx),
            stop_rx,
        )
        .await
    }

    #[tokio::test]
    async fn a_log_the_disk_cannot_take_fails_the_action_with_the_cause() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("ws");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("pipeline.json"), PIPELINE).unwrap();
        let ws = Arc::new(Workspace::load(&root, &d.path().join("data")).unwrap());
        // A healthy disk: the action succeeds with its ten lines.
        let ok = run(&ws, "healthy").await;
        assert_eq!(ok.outcome.status, OutcomeStatus::Succeeded);
        assert_eq!(ok.lines, 10);
        // A full disk: the flush of the log's timing file hits ENOSPC.
        let logs = log_dir(&ws);
        std::os::unix::fs::symlink("/dev/full", logs.join("full.ts")).unwrap();
        let done = run(&ws, "full").await;
        assert_eq!(done.outcome.status, OutcomeStatus::Failed);
        let err = done.outcome.error.unwrap();
        assert_eq!(err.code, "JobFailed");
        assert!(
            err.message.contains("log could not be written")
                && err.message.contains("No space left on device"),
            "{}",
            err.message
        );
    }
}
