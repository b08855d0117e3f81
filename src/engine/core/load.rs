//! Loading: pipeline versions, transitions and stored executions come back
//! when the engine starts; orphaned builds are reaped.

use std::collections::VecDeque;
use std::sync::Arc;

use super::persist::write_exec;
use super::state::{ExecRec, PState, recover_interrupted};
use super::{Engine, EngineError};
use crate::api::{ActionExecutionDetail, TransitionState};
use crate::providers::{self};
use crate::store::now_rfc3339;

impl Engine {
    /// Kills builds an engine that died left running, and clears their
    /// scratch directories.
    pub(super) fn reap_orphans(&self) {
        let work = self.ws.state_dir.join("work");
        let Ok(rd) = std::fs::read_dir(&work) else {
            return;
        };
        for e in rd.flatten() {
            let pgid = e.path().join("pgid");
            if providers::codebuild_local::kill_orphan(&pgid) {
                tracing::warn!(dir = %e.path().display(), "killed a build orphaned by a crashed engine");
            }
            let _ = std::fs::remove_dir_all(e.path());
        }
    }

    pub(super) fn load(&mut self) -> Result<(), EngineError> {
        self.reap_orphans();
        let now = now_rfc3339();
        let ws = self.ws.clone();
        for wp in &ws.pipelines {
            self.load_pipeline(wp, &now)?;
        }
        Ok(())
    }

    /// One pipeline: its version (a new one when the definition changed),
    /// transitions and the stored executions the engine holds: the newest,
    /// every unfinished one (recovered here) and the latest of each stage.
    /// Older ones stay in the store and are read when asked for. At start,
    /// and again for a pipeline whose definition UpdatePipeline replaced.
    pub(super) fn load_pipeline(
        &mut self,
        wp: &crate::config::workspace::WorkspacePipeline,
        now: &str,
    ) -> Result<(), EngineError> {
        let now = now.to_owned();
        {
            let def = serde_json::to_string(&wp.pipeline).unwrap_or_default();
            let hash = {
                use sha2::{Digest, Sha256};
                Sha256::digest(def.as_bytes())
                    .iter()
                    .take(16)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            };
            let name = wp.pipeline.name.clone();
            let version = match self.store.latest_pipeline_version(&name)? {
                Some((v, h)) if h == hash => v,
                Some((v, _)) => v + 1,
                None => wp.pipeline.version.unwrap_or(1).max(1),
            };
            self.store
                .batch(|b| b.pipeline_version(&name, version, &hash, &def, &now))?;
            let n = wp.pipeline.stages.len();
            let mut transitions: Vec<TransitionState> = (0..n)
                .map(|_| TransitionState {
                    enabled: true,
                    last_changed_by: None,
                    last_changed_at: None,
                    disabled_reason: None,
                })
                .collect();
            for d in &wp.pipeline.disabled_inbound_transitions {
                if let Some(i) = wp
                    .pipeline
                    .stages
                    .iter()
                    .position(|s| s.name == d.stage_name)
                {
                    transitions[i].enabled = false;
                    transitions[i].disabled_reason = Some(d.reason.clone());
                    transitions[i].last_changed_by = Some("pipeline definition".into());
                }
            }
            for (stage, st) in self.store.transitions(&name)? {
                if let Some(i) = wp.pipeline.stages.iter().position(|s| s.name == stage) {
                    transitions[i] = st;
                }
            }
            let mut ps = PState {
                def: Arc::new(wp.clone()),
                version,
                locks: vec![None; n],
                latest: vec![None; n],
                inbound: vec![VecDeque::new(); n],
                transitions,
                order: Vec::new(),
            };
            let mut latest_seq = vec![0u64; n];
            let stage_names: Vec<&str> =
                wp.pipeline.stages.iter().map(|s| s.name.as_str()).collect();
            let (rows, entered) = self.store.startup_executions(&name, &stage_names)?;
            self.entry_counter = self.entry_counter.max(entered);
            for row in rows {
                let mut rec: ExecRec = match self.decode_exec(&row.id, &row.record) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(execution = row.id, error = %e, "skipping a stored execution");
                        continue;
                    }
                };
                let interrupted = !rec.terminal();
                if interrupted {
                    recover_interrupted(&mut rec, &now);
                }
                for (i, st) in rec.stages.iter().enumerate().take(n) {
                    if st.status.is_some() && st.entry_seq >= latest_seq[i] {
                        latest_seq[i] = st.entry_seq;
                        ps.latest[i] = Some(rec.summary.pipeline_execution_id.clone());
                    }
                    self.entry_counter = self.entry_counter.max(st.entry_seq);
                }
                ps.order.push(rec.summary.pipeline_execution_id.clone());
                if interrupted {
                    let actions: Vec<ActionExecutionDetail> = rec
                        .stages
                        .iter()
                        .flat_map(|s| s.actions.iter().flatten().cloned())
                        .collect();
                    self.store.batch(|b| {
                        write_exec(b, &rec, None)?;
                        for a in &actions {
                            b.action_execution(a)?;
                        }
                        Ok(())
                    })?;
                    tracing::warn!(
                        execution = row.id,
                        "recorded an interrupted execution as Failed"
                    );
                }
                self.execs
                    .insert(rec.summary.pipeline_execution_id.clone(), rec);
            }
            self.pipelines.insert(name, ps);
        }
        Ok(())
    }

    pub(super) fn trigger_specs(&mut self) -> Vec<crate::engine::triggers::Watch> {
        let (watches, problems) = crate::engine::triggers::watches(&self.ws, &self.store);
        for p in problems {
            self.trigger_problem(&p);
        }
        watches
    }
}
