//! Persistence: every change is written through to the store, then published.

use super::state::{ExecRec, Position};
use super::{Engine, STORE_FAILED};
use crate::api::types::{ActionStatus, ErrorDetails, ExecutionStatus, StageStatus};
use crate::api::{ApiError, AuditEvent, EngineEvent, Envelope, Reply, UserIdentity};
use crate::store::now_rfc3339;

impl Engine {
    /// Writes execution `id` (with `include_actions`, its actions too) to
    /// the store in one transaction. The error is the store's cause.
    pub(super) fn save(&mut self, id: &str, include_actions: bool) -> Result<(), String> {
        self.save_many(&[id], include_actions, &[])
    }

    /// Writes executions `ids` (with `include_actions`, their actions too)
    /// and the rows of `actions` to the store in one transaction. The
    /// error is the store's cause.
    pub(super) fn save_many(
        &mut self,
        ids: &[&str],
        include_actions: bool,
        actions: &[crate::api::ActionExecutionDetail],
    ) -> Result<(), String> {
        let mut todo = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(rec) = self.execs.get_mut(id) else {
                continue;
            };
            rec.summary.current_stage = match rec.position {
                Position::Waiting(i) | Position::InStage(i) => {
                    rec.stages.get(i).map(|s| s.name.clone())
                }
                Position::Done => None,
            };
            // Actions too when an earlier write was refused: what it lost
            // is written now. The stage rows last written are taken out:
            // should the write be refused, the next one writes every stage
            // again.
            let all = include_actions || self.unsaved.contains(id);
            todo.push((id, all, self.written.remove(id)));
        }
        if todo.is_empty() && actions.is_empty() {
            return Ok(());
        }
        let execs = &self.execs;
        let r = self
            .store
            .batch(|b| {
                let mut written = Vec::with_capacity(todo.len());
                for (id, all, prev) in &todo {
                    let Some(rec) = execs.get(*id) else { continue };
                    written.push((*id, rec.terminal(), write_exec(b, rec, prev.as_ref())?));
                    if *all {
                        for a in rec.stages.iter().flat_map(|s| s.actions.iter().flatten()) {
                            b.action_execution(a)?;
                        }
                    }
                }
                for a in actions {
                    b.action_execution(a)?;
                }
                Ok(written)
            })
            .map_err(|e| e.to_string());
        match r {
            Ok(written) => {
                let mut cleared = false;
                for (id, terminal, w) in written {
                    // A finished execution's rows are rarely written again:
                    // not worth keeping in memory.
                    if !terminal {
                        self.written.insert(id.to_owned(), w);
                    }
                    cleared |= self.unsaved.remove(id);
                }
                if cleared && self.unsaved.is_empty() {
                    tracing::info!("the store takes writes again");
                    self.store_problem = None;
                }
                Ok(())
            }
            Err(cause) => {
                if self.store_problem.is_none() {
                    tracing::error!(error = cause, "the store refuses writes");
                }
                self.store_problem = Some(super::name_disk_full(&cause));
                for (id, _, _) in &todo {
                    self.unsaved.insert((*id).to_owned());
                }
                self.arm_retry();
                Err(cause)
            }
        }
    }

    /// Schedules [`retry_saves`](Self::retry_saves) in a second.
    fn arm_retry(&mut self) {
        if self.retry_armed {
            return;
        }
        self.retry_armed = true;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let _ = tx.send(super::Msg::RetrySaves);
        });
    }

    /// Writes again every execution whose last write was refused (whole,
    /// with its actions); what is still refused is tried again later.
    pub(super) fn retry_saves(&mut self) {
        self.retry_armed = false;
        let ids: Vec<String> = self.unsaved.iter().cloned().collect();
        for id in ids {
            if !self.execs.contains_key(&id) {
                self.unsaved.remove(&id);
                continue;
            }
            if self.save(&id, true).is_ok() {
                tracing::info!(execution = id, "recorded what the store refused before");
                self.publish_exec(&id);
            }
        }
        if self.unsaved.is_empty() {
            self.store_problem = None;
        }
    }

    /// Saves a new execution. When the store refuses it, the execution is
    /// forgotten: it never started, and the request says why.
    pub(super) fn save_new(&mut self, id: &str) -> Result<(), ApiError> {
        let Err(cause) = self.save(id, false) else {
            return Ok(());
        };
        tracing::error!(
            execution = id,
            error = cause,
            "cannot store a new execution"
        );
        if let Some(e) = self.execs.remove(id)
            && let Some(ps) = self.pipelines.get_mut(&e.summary.pipeline_name)
        {
            ps.order.retain(|x| x != id);
        }
        Err(ApiError::new(
            "InternalError",
            format!(
                "the execution could not be recorded, so it did not start: {}",
                super::name_disk_full(&cause)
            ),
        ))
    }

    /// [`save`](Self::save) as a step of the execution: when the store
    /// refuses the write, nothing of the step is announced and the
    /// execution fails with the cause ([`store_failed`](Self::store_failed)).
    ///
    /// Within a step ([`Step`](super::step::Step)) the write waits for the
    /// step's end, where all of it is one transaction.
    pub(super) fn persist(&mut self, id: &str) -> Result<(), String> {
        if let Some(step) = &mut self.step {
            step.touch(id);
            return Ok(());
        }
        self.save(id, false)
            .inspect_err(|cause| self.store_failed(id, cause))
    }

    /// The store refused a write of execution `id`'s state. What the step
    /// changed is not announced as done: whatever runs in the execution
    /// is stopped and recorded as Failed, the execution fails with the
    /// cause in its summary, its stages are released, and one more write
    /// records that (the refused write may have been the step, not the
    /// whole store).
    pub(super) fn store_failed(&mut self, id: &str, cause: &str) {
        tracing::error!(
            execution = id,
            error = cause,
            "cannot store an execution: it fails"
        );
        let why = format!("{STORE_FAILED}: {}", super::name_disk_full(cause));
        let now = now_rfc3339();
        let Some(e) = self.execs.get_mut(id) else {
            return;
        };
        let mut ended = Vec::new();
        for st in e.stages.iter_mut() {
            let mut touched = false;
            for a in st.actions.iter_mut().flatten() {
                if a.status == ActionStatus::InProgress {
                    a.status = ActionStatus::Failed;
                    a.token = None;
                    a.summary = Some(why.clone());
                    a.error_details = Some(ErrorDetails {
                        code: "JobFailed".into(),
                        message: why.clone(),
                    });
                    a.last_status_change = now.clone();
                    ended.push(a.clone());
                    touched = true;
                }
            }
            if touched
                || matches!(
                    st.status,
                    Some(StageStatus::InProgress | StageStatus::Stopping)
                )
            {
                st.status = Some(StageStatus::Failed);
            }
        }
        e.summary.status = ExecutionStatus::Failed;
        e.summary.status_summary = Some(why);
        e.summary.last_update_time = now;
        e.stop = None;
        e.position = Position::Done;
        let pipeline = e.summary.pipeline_name.clone();
        for a in &ended {
            if let Some(r) = self.running.get(&a.action_execution_id) {
                let _ = r.stop.send(true);
            }
        }
        if let Some(ps) = self.pipelines.get_mut(&pipeline) {
            for l in ps.locks.iter_mut() {
                if l.as_deref() == Some(id) {
                    *l = None;
                }
            }
            for q in ps.inbound.iter_mut() {
                q.retain(|x| x != id);
            }
        }
        if let Err(again) = self.save(id, true) {
            tracing::error!(
                execution = id,
                error = again,
                "cannot record the failure either"
            );
        }
        for a in ended {
            self.publish(EngineEvent::ActionChanged { action: a });
        }
        self.publish_exec(id);
        self.advance(&pipeline);
    }

    pub(super) fn publish_exec(&mut self, id: &str) {
        if let Some(e) = self.execs.get(id) {
            let ev = EngineEvent::ExecutionChanged {
                execution: e.summary.clone(),
            };
            self.publish(ev);
        }
    }

    /// Stores stage `i` of `id` and announces it (not when the store
    /// refused it: then the execution has failed, see `persist`).
    pub(super) fn stage_changed(&mut self, id: &str, i: usize) -> Result<(), String> {
        self.persist(id)?;
        if let Some(e) = self.execs.get(id)
            && let Some(status) = e.stages[i].status
        {
            let ev = EngineEvent::StageChanged {
                pipeline_name: e.summary.pipeline_name.clone(),
                pipeline_execution_id: id.to_owned(),
                stage_name: e.stages[i].name.clone(),
                status,
            };
            self.publish(ev);
        }
        Ok(())
    }

    pub(super) fn audit_call(&mut self, env: &Envelope, result: &Result<Reply, ApiError>) {
        let service = env.user_agent == "engine";
        let event = AuditEvent {
            event_version: "1.09".into(),
            event_id: uuid::Uuid::new_v4().to_string(),
            event_time: now_rfc3339(),
            event_source: "codepipeline.amazonaws.com".into(),
            event_name: env.request.event_name().into(),
            aws_region: "local".into(),
            source_ip_address: if service {
                "codepipeline.amazonaws.com".into()
            } else {
                "127.0.0.1".into()
            },
            user_agent: env.user_agent.clone(),
            user_identity: UserIdentity {
                identity_type: if service { "AWSService" } else { "IAMUser" }.into(),
                principal_id: env.identity.clone(),
                arn: if service {
                    String::new()
                } else {
                    format!("arn:aws:iam::000000000000:user/{}", env.identity)
                },
                account_id: "000000000000".into(),
                user_name: (!service).then(|| env.identity.clone()),
                invoked_by: service.then(|| "codepipeline.amazonaws.com".into()),
            },
            request_parameters: serde_json::to_value(&env.request)
                .unwrap_or(serde_json::Value::Null),
            response_elements: result
                .as_ref()
                .ok()
                .and_then(|r| serde_json::to_value(r).ok()),
            error_code: result
                .as_ref()
                .err()
                .map(|e| format!("{}Exception", e.code.trim_end_matches("Exception"))),
            error_message: result.as_ref().err().map(|e| e.message.clone()),
            event_type: if service {
                "AwsServiceEvent"
            } else {
                "AwsApiCall"
            }
            .into(),
            read_only: false,
        };
        if let Err(e) = self.store.batch(|b| b.audit(&event)) {
            tracing::error!(error = %e, "cannot store an audit event");
        }
        self.publish(EngineEvent::Audit { event });
    }

    /// The triggers could not read or keep what they saw: logged, and
    /// recorded in the audit trail as a failed service event, which every
    /// subscriber sees as it happens.
    pub(super) fn trigger_problem(&mut self, message: &str) {
        tracing::error!(error = message, "trigger store failure");
        let service = "codepipeline.amazonaws.com";
        let event = AuditEvent {
            event_version: "1.09".into(),
            event_id: uuid::Uuid::new_v4().to_string(),
            event_time: now_rfc3339(),
            event_source: service.into(),
            event_name: "PollForSourceChanges".into(),
            aws_region: "local".into(),
            source_ip_address: service.into(),
            user_agent: "engine".into(),
            user_identity: UserIdentity {
                identity_type: "AWSService".into(),
                principal_id: service.into(),
                arn: String::new(),
                account_id: "000000000000".into(),
                user_name: None,
                invoked_by: Some(service.into()),
            },
            request_parameters: serde_json::Value::Null,
            response_elements: None,
            error_code: Some("TriggerStoreException".into()),
            error_message: Some(message.to_owned()),
            event_type: "AwsServiceEvent".into(),
            read_only: false,
        };
        if let Err(e) = self.store.batch(|b| b.audit(&event)) {
            tracing::error!(error = %e, "cannot store an audit event");
        }
        self.publish(EngineEvent::Audit { event });
    }
}

/// The stage rows of an execution as the store holds them: stage name →
/// the record written (it carries the row's status and entry order).
pub(super) type Written = std::collections::HashMap<String, String>;

/// Writes execution `rec`: its row, its stages' rows but those `prev` says
/// the store already holds as they are, and its variables. Returns what
/// the store holds of its stages once this commits.
pub(super) fn write_exec(
    b: &crate::store::Batch<'_>,
    rec: &ExecRec,
    prev: Option<&Written>,
) -> Result<Written, rusqlite::Error> {
    let s = &rec.summary;
    // The entered stages' details are in their own rows (below), written
    // only when they changed: the execution's row stays small however
    // many actions ran.
    b.execution(
        &s.pipeline_execution_id,
        &s.pipeline_name,
        rec.seq,
        s.status.as_str(),
        s.execution_type.as_str(),
        &s.start_time,
        &rec.stored(),
    )?;
    let mut written = Written::new();
    for st in &rec.stages {
        if st.status.is_some() {
            let record = crate::store::to_json(st);
            if prev.and_then(|p| p.get(&st.name)) != Some(&record) {
                b.stage_execution_json(
                    &s.pipeline_execution_id,
                    &s.pipeline_name,
                    &st.name,
                    st.status.map(StageStatus::as_str),
                    st.entry_seq,
                    &record,
                )?;
            }
            written.insert(st.name.clone(), record);
        }
    }
    for (k, v) in &s.variables {
        b.variable(&s.pipeline_execution_id, "variables", k, v)?;
    }
    for (ns, m) in &rec.namespaces {
        for (k, v) in m {
            b.variable(&s.pipeline_execution_id, ns, k, v)?;
        }
    }
    Ok(written)
}
