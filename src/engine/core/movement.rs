//! Movement: an execution arrives at a stage boundary, enters a stage,
//! passes its conditions and runOrder groups, and leaves it.

use std::path::Path;

use super::state::{Position, scope_of};
use super::{Engine, Msg};
use crate::api::types::{ActionStatus, ExecutionStatus, ExecutionType, StageStatus, TriggerType};
use crate::api::{ConditionState, Envelope, Request, RuleState};
use crate::engine::conditions;
use crate::model::pipeline::{Condition, ExecutionMode, Rule};
use crate::store::artifacts::ArtifactStore;
use crate::store::now_rfc3339;

impl Engine {
    /// An execution reaches the boundary in front of stage `i` (or the end).
    pub(super) fn arrive(&mut self, id: &str, i: usize) {
        let Some(pipeline) = self.execs.get(id).map(|e| e.summary.pipeline_name.clone()) else {
            return;
        };
        let Some(ps) = self.pipelines.get(&pipeline) else {
            return;
        };
        let n = ps.def.pipeline.stages.len();
        let is_rollback = self
            .execs
            .get(id)
            .is_some_and(|e| e.summary.execution_type == ExecutionType::Rollback);
        if i >= n || (is_rollback && i > 0) {
            let _ = self.finish_exec(id, ExecutionStatus::Succeeded, None);
            return;
        }
        let mode = ps.mode();
        if let Some(e) = self.execs.get_mut(id) {
            e.position = Position::Waiting(i);
        }
        let mut superseded = Vec::new();
        if let Some(ps) = self.pipelines.get_mut(&pipeline) {
            if mode == ExecutionMode::Superseded {
                // One waiter per boundary: the newer execution stays.
                let my_seq = self.execs.get(id).map_or(0, |e| e.seq);
                let mut keep = id.to_owned();
                for w in ps.inbound[i].drain(..) {
                    let w_seq = self.execs.get(&w).map_or(0, |e| e.seq);
                    if w_seq > my_seq {
                        superseded.push(keep);
                        keep = w;
                    } else {
                        superseded.push(w);
                    }
                }
                ps.inbound[i].push_back(keep);
            } else {
                ps.inbound[i].push_back(id.to_owned());
            }
        }
        for s in superseded {
            if let Some(e) = self.execs.get_mut(&s) {
                e.position = Position::Done;
                e.summary.status_summary = Some(format!(
                    "superseded by a newer execution while waiting to enter stage {}",
                    e.stages.get(i).map_or("", |st| st.name.as_str())
                ));
            }
            let _ = self.finish_exec(&s, ExecutionStatus::Superseded, None);
        }
        if self.persist(id).is_ok() {
            self.publish_exec(id);
        }
        self.advance(&pipeline);
    }

    /// Lets waiting executions into every stage that can take one.
    pub(super) fn advance(&mut self, pipeline: &str) {
        loop {
            let mut entered = None;
            if let Some(ps) = self.pipelines.get_mut(pipeline) {
                let parallel = ps.mode() == ExecutionMode::Parallel;
                for i in 0..ps.inbound.len() {
                    if (parallel || ps.locks[i].is_none())
                        && ps.transitions[i].enabled
                        && let Some(id) = ps.inbound[i].pop_front()
                    {
                        entered = Some((id, i));
                        break;
                    }
                }
            }
            match entered {
                Some((id, i)) => self.enter_stage(&id, i),
                None => return,
            }
        }
    }

    pub(super) fn enter_stage(&mut self, id: &str, i: usize) {
        let Some(pipeline) = self.execs.get(id).map(|e| e.summary.pipeline_name.clone()) else {
            return;
        };
        self.entry_counter += 1;
        let seq = self.entry_counter;
        let (parallel, before_entry) = {
            let Some(ps) = self.pipelines.get_mut(&pipeline) else {
                return;
            };
            if ps.mode() != ExecutionMode::Parallel {
                ps.locks[i] = Some(id.to_owned());
            }
            ps.latest[i] = Some(id.to_owned());
            (
                ps.mode() == ExecutionMode::Parallel,
                ps.def.pipeline.stages[i].before_entry.clone(),
            )
        };
        let _ = parallel;
        if let Some(e) = self.execs.get_mut(id) {
            e.position = Position::InStage(i);
            let st = &mut e.stages[i];
            st.status = Some(StageStatus::InProgress);
            st.entry_seq = seq;
            st.condition = None;
            for a in st.actions.iter_mut() {
                *a = None;
            }
        }
        if self.stage_changed(id, i).is_err() {
            return;
        }
        match before_entry.and_then(|c| c.conditions.into_iter().next()) {
            Some(cond) => self.check_condition(id, i, "BEFORE_ENTRY", cond),
            None => self.progress_stage(id, i),
        }
    }

    pub(super) fn check_condition(
        &mut self,
        id: &str,
        i: usize,
        kind: &'static str,
        cond: Condition,
    ) {
        let Some(e) = self.execs.get_mut(id) else {
            return;
        };
        e.stages[i].condition = Some(ConditionState {
            condition_type: kind.to_owned(),
            status: "InProgress".into(),
            result: cond.result.clone(),
            rules: Vec::new(),
        });
        let scope = scope_of(e);
        // The rules' input artifact (the first named): materialised into
        // the rules' working directory.
        let input = cond
            .rules
            .iter()
            .flat_map(|r| r.input_artifacts.first())
            .next()
            .map(|n| (n.clone(), e.artifacts.get(n).cloned()));
        let rules: Vec<Rule> = cond.rules.clone();
        let tx = self.tx.clone();
        let exec = id.to_owned();
        let artifacts = self.artifacts.clone();
        let work = self
            .ws
            .state_dir
            .join("work")
            .join(format!("cond-{}", uuid::Uuid::new_v4().simple()));
        if self.persist(id).is_err() {
            return;
        }
        // Evaluated once the store has the condition InProgress (within a
        // step, at its end).
        self.launch(Box::pin(async move {
            let unreadable = prepare_input(&work, input, artifacts).await;
            let results = match &unreadable {
                None => conditions::evaluate(&rules, &scope, &work).await,
                Some(why) => {
                    // A rule that reads the artifact fails with the reason;
                    // the others are evaluated as usual.
                    let mut out = Vec::new();
                    for r in &rules {
                        if r.input_artifacts.is_empty() {
                            out.extend(
                                conditions::evaluate(std::slice::from_ref(r), &scope, &work).await,
                            );
                        } else {
                            out.push(conditions::RuleResult {
                                rule: r.name.clone(),
                                passed: false,
                                message: why.clone(),
                            });
                        }
                    }
                    out
                }
            };
            let _ = tokio::fs::remove_dir_all(&work).await;
            let _ = tx.send(Msg::ConditionDone {
                exec,
                stage: i,
                kind,
                results,
            });
        }));
    }

    pub(super) fn condition_done(
        &mut self,
        id: &str,
        i: usize,
        kind: &'static str,
        results: Vec<conditions::RuleResult>,
    ) {
        let Some(e) = self.execs.get_mut(id) else {
            return;
        };
        if e.terminal() || e.position != Position::InStage(i) {
            return;
        }
        let passed = results.iter().all(|r| r.passed);
        let failed_rule = results
            .iter()
            .find(|r| !r.passed)
            .map(|r| format!("rule {}: {}", r.rule, r.message));
        let result = e.stages[i]
            .condition
            .as_ref()
            .and_then(|c| c.result.clone());
        e.stages[i].condition = Some(ConditionState {
            condition_type: kind.to_owned(),
            status: if passed { "Succeeded" } else { "Failed" }.into(),
            result: result.clone(),
            rules: results
                .into_iter()
                .map(|r| RuleState {
                    rule_name: r.rule,
                    passed: r.passed,
                    message: r.message,
                })
                .collect(),
        });
        if e.stop.is_some() {
            self.progress_stage(id, i);
            return;
        }
        let reason = failed_rule.unwrap_or_default();
        match (kind, passed, result.as_deref()) {
            (_, true, _) if kind == "BEFORE_ENTRY" => self.progress_stage(id, i),
            (_, true, _) => self.stage_succeeded(id, i),
            ("BEFORE_ENTRY", false, Some("SKIP")) => {
                if let Some(e) = self.execs.get_mut(id) {
                    e.stages[i].status = Some(StageStatus::Skipped);
                }
                self.release(id, i);
                if self.stage_changed(id, i).is_ok() {
                    self.arrive(id, i + 1);
                }
            }
            ("ON_SUCCESS", false, Some("ROLLBACK")) => {
                self.fail_stage(id, i, format!("onSuccess condition failed ({reason})"));
                self.auto_rollback(id, i);
            }
            ("BEFORE_ENTRY", false, _) => {
                self.fail_stage(id, i, format!("beforeEntry condition failed ({reason})"));
            }
            _ => {
                self.fail_stage(id, i, format!("onSuccess condition failed ({reason})"));
            }
        }
    }

    /// Decides what happens next in a stage: start the next runOrder
    /// group, or finish the stage.
    pub(super) fn progress_stage(&mut self, id: &str, i: usize) {
        let Some(pipeline) = self.execs.get(id).map(|e| e.summary.pipeline_name.clone()) else {
            return;
        };
        let Some(def) = self.pipelines.get(&pipeline).map(|p| p.def.clone()) else {
            return;
        };
        let Some(e) = self.execs.get_mut(id) else {
            return;
        };
        if e.position != Position::InStage(i) {
            return;
        }
        let st = &e.stages[i];
        let running = st
            .actions
            .iter()
            .flatten()
            .any(|a| a.status == ActionStatus::InProgress);
        if e.stop.is_some() {
            if !running {
                if let Some(e) = self.execs.get_mut(id) {
                    e.stages[i].status = Some(StageStatus::Stopped);
                }
                self.release(id, i);
                if self.stage_changed(id, i).is_ok() {
                    let _ = self.finish_exec(id, ExecutionStatus::Stopped, None);
                }
            }
            return;
        }
        if running {
            return;
        }
        if let Some(failed) = st
            .actions
            .iter()
            .flatten()
            .find(|a| matches!(a.status, ActionStatus::Failed | ActionStatus::Abandoned))
        {
            let why = format!(
                "action {} failed{}",
                failed.action_name,
                failed
                    .summary
                    .as_deref()
                    .map(|s| format!(": {s}"))
                    .unwrap_or_default()
            );
            self.stage_failed(id, i, why);
            return;
        }
        // The first runOrder group with an action still to run.
        let stage = &def.pipeline.stages[i];
        let pending: Vec<usize> = {
            let next_order = stage
                .actions
                .iter()
                .enumerate()
                .filter(|(j, _)| st.actions[*j].is_none())
                .map(|(_, a)| a.run_order)
                .min();
            match next_order {
                Some(o) => stage
                    .actions
                    .iter()
                    .enumerate()
                    .filter(|(j, a)| a.run_order == o && st.actions[*j].is_none())
                    .map(|(j, _)| j)
                    .collect(),
                None => Vec::new(),
            }
        };
        if pending.is_empty() {
            match stage
                .on_success
                .clone()
                .and_then(|c| c.conditions.into_iter().next())
            {
                Some(cond)
                    if e.stages[i]
                        .condition
                        .as_ref()
                        .is_none_or(|c| c.condition_type != "ON_SUCCESS") =>
                {
                    self.check_condition(id, i, "ON_SUCCESS", cond);
                }
                _ => self.stage_succeeded(id, i),
            }
            return;
        }
        for j in pending {
            self.start_action(id, i, j);
        }
        let _ = self.persist(id);
    }

    pub(super) fn stage_succeeded(&mut self, id: &str, i: usize) {
        if let Some(e) = self.execs.get_mut(id) {
            e.stages[i].status = Some(StageStatus::Succeeded);
            e.stages[i].auto_retried = false;
        }
        self.release(id, i);
        if self.stage_changed(id, i).is_ok() {
            self.arrive(id, i + 1);
        }
    }

    /// Every action has ended and one failed: apply `onFailure`.
    pub(super) fn stage_failed(&mut self, id: &str, i: usize, why: String) {
        let Some(pipeline) = self.execs.get(id).map(|e| e.summary.pipeline_name.clone()) else {
            return;
        };
        let Some(ps) = self.pipelines.get(&pipeline) else {
            return;
        };
        let on_failure = ps.def.pipeline.stages[i].on_failure.clone();
        let parallel = ps.mode() == ExecutionMode::Parallel;
        let auto_retried = self.execs.get(id).is_some_and(|e| e.stages[i].auto_retried);
        match on_failure.as_ref().and_then(|f| f.result.as_deref()) {
            Some("RETRY") if !auto_retried => {
                // Nothing runs any more: the stage has failed, and the
                // automatic retry starts from there.
                if let Some(e) = self.execs.get_mut(id) {
                    e.stages[i].status = Some(StageStatus::Failed);
                }
                let mode = on_failure
                    .as_ref()
                    .and_then(|f| f.retry_mode.clone())
                    .unwrap_or_else(|| "FAILED_ACTIONS".into());
                let stage = self.execs[id].stages[i].name.clone();
                let r = self.retry(&pipeline, &stage, Some(id), &mode, true);
                let env = Envelope {
                    identity: "codepipeline.amazonaws.com".into(),
                    user_agent: "engine".into(),
                    request: Request::RetryStageExecution {
                        pipeline_name: pipeline.clone(),
                        stage_name: stage,
                        pipeline_execution_id: Some(id.to_owned()),
                        retry_mode: mode,
                    },
                };
                self.audit_call(&env, &r);
                if r.is_err() {
                    self.fail_stage(id, i, why);
                }
            }
            Some("ROLLBACK") if !parallel => {
                self.fail_stage(id, i, why);
                self.auto_rollback(id, i);
            }
            _ => self.fail_stage(id, i, why),
        }
    }

    pub(super) fn fail_stage(&mut self, id: &str, i: usize, why: String) {
        if let Some(e) = self.execs.get_mut(id) {
            e.stages[i].status = Some(StageStatus::Failed);
        }
        self.release(id, i);
        if self.stage_changed(id, i).is_err() {
            return;
        }
        let name = self
            .execs
            .get(id)
            .map(|e| e.stages[i].name.clone())
            .unwrap_or_default();
        let _ = self.finish_exec(
            id,
            ExecutionStatus::Failed,
            Some(format!("stage {name}: {why}")),
        );
    }

    pub(super) fn auto_rollback(&mut self, id: &str, i: usize) {
        let Some((pipeline, stage)) = self
            .execs
            .get(id)
            .map(|e| (e.summary.pipeline_name.clone(), e.stages[i].name.clone()))
        else {
            return;
        };
        let r = self.rollback(
            &pipeline,
            &stage,
            None,
            TriggerType::AutomatedRollback,
            "codepipeline.amazonaws.com",
        );
        if let Err(e) = &r {
            tracing::info!(pipeline, stage, error = %e, "automatic rollback did not start");
        }
        let env = Envelope {
            identity: "codepipeline.amazonaws.com".into(),
            user_agent: "engine".into(),
            request: Request::RollbackStage {
                pipeline_name: pipeline,
                stage_name: stage,
                target_pipeline_execution_id: None,
            },
        };
        self.audit_call(&env, &r);
    }

    pub(super) fn release(&mut self, id: &str, i: usize) {
        let Some(pipeline) = self.execs.get(id).map(|e| e.summary.pipeline_name.clone()) else {
            return;
        };
        if let Some(ps) = self.pipelines.get_mut(&pipeline)
            && ps.locks[i].as_deref() == Some(id)
        {
            ps.locks[i] = None;
        }
    }

    pub(super) fn finish_exec(
        &mut self,
        id: &str,
        status: ExecutionStatus,
        summary: Option<String>,
    ) -> Result<(), String> {
        let Some(e) = self.execs.get_mut(id) else {
            return Ok(());
        };
        e.summary.status = status;
        if summary.is_some() {
            e.summary.status_summary = summary;
        }
        e.summary.last_update_time = now_rfc3339();
        if !matches!(e.position, Position::InStage(_)) || status == ExecutionStatus::Succeeded {
            e.position = Position::Done;
        }
        let pipeline = e.summary.pipeline_name.clone();
        if let Some(ps) = self.pipelines.get_mut(&pipeline) {
            for q in ps.inbound.iter_mut() {
                q.retain(|x| x != id);
            }
        }
        let r = self.persist(id);
        if r.is_ok() {
            self.publish_exec(id);
        }
        self.advance(&pipeline);
        r
    }
}

/// Makes the rules' working directory and copies their input artifact
/// into it; the reason when that cannot be done.
async fn prepare_input(
    work: &Path,
    input: Option<(String, Option<String>)>,
    artifacts: ArtifactStore,
) -> Option<String> {
    if let Err(e) = tokio::fs::create_dir_all(work).await {
        return Some(format!(
            "cannot prepare the rules' directory {}: {e}",
            work.display()
        ));
    }
    let (name, id) = input?;
    let Some(id) = id else {
        return Some(format!(
            "input artifact `{name}` was not produced earlier in this execution"
        ));
    };
    let w = work.to_path_buf();
    match tokio::task::spawn_blocking(move || artifacts.materialize(&id, &w)).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("input artifact `{name}` cannot be read: {e}")),
        Err(e) => Some(format!("input artifact `{name}` cannot be read: {e}")),
    }
}
