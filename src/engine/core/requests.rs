//! The actor loop and request dispatch.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::state::recover_interrupted;
use super::{Engine, Msg, api};
use crate::api::types::{ExecutionTrigger, TriggerType};
use crate::api::{ApiError, EngineInfo, Envelope, Reply, Request};
use crate::store::now_rfc3339;

impl Engine {
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Call(env, reply)
                    if matches!(env.request, Request::RollbackEnvironment { .. }) =>
                {
                    // Slow (a redeploy): answered from a task when done.
                    self.rollback_environment(env, reply);
                }
                Msg::Call(env, reply)
                    if matches!(env.request, Request::ListSourceCommits { .. }) =>
                {
                    // Runs git: answered from a blocking task.
                    self.source_commits(env, reply);
                }
                Msg::Call(env, reply) if matches!(env.request, Request::FluxObject { .. }) => {
                    // Slow (a reconcile waits for the controller): from a task.
                    self.flux_object(env, reply);
                }
                Msg::Call(env, reply) if env.request.is_log_read() => {
                    // Reads files: answered from a blocking task.
                    let dir = self.ws.state_dir.clone();
                    tokio::task::spawn_blocking(move || {
                        let _ = reply.send(crate::store::log_query::answer(&dir, &env.request));
                    });
                }
                Msg::Call(env, reply) => {
                    let r = self.handle(&env);
                    if env.request.is_mutating() {
                        self.audit_call(&env, &r);
                    }
                    let _ = reply.send(r);
                }
                // The engine's own steps: one transaction each.
                Msg::ActionDone(done) => self.step(|e| e.action_done(*done)),
                Msg::ApprovalTimeout {
                    action_execution_id,
                } => self.step(|e| e.approval_timeout(&action_execution_id)),
                Msg::ConditionDone {
                    exec,
                    stage,
                    kind,
                    results,
                } => self.step(|e| e.condition_done(&exec, stage, kind, results)),
                Msg::SourceChange {
                    pipeline,
                    action,
                    commit,
                    detail,
                } => self.source_change(&pipeline, &action, &commit, &detail),
                Msg::TriggerProblem { message } => self.trigger_problem(&message),
                Msg::RetrySaves => self.retry_saves(),
                Msg::Audit(a) => self.audit_call(&a.0, &a.1),
                Msg::Shutdown(done) => {
                    self.shutdown().await;
                    let _ = done.send(());
                    return;
                }
            }
        }
        self.shutdown().await;
    }

    pub(super) async fn shutdown(&mut self) {
        self.stopping = true;
        for r in self.running.values() {
            let _ = r.stop.send(true);
        }
        let now = now_rfc3339();
        let ids: Vec<String> = self
            .execs
            .iter()
            .filter(|(_, e)| !e.terminal())
            .map(|(k, _)| k.clone())
            .collect();
        for id in ids {
            if let Some(rec) = self.execs.get_mut(&id) {
                recover_interrupted(rec, &now);
            }
            if let Err(e) = self.save(&id, true) {
                tracing::error!(
                    execution = id,
                    error = e,
                    "cannot record an interrupted execution"
                );
            }
            self.publish_exec(&id);
        }
        // What the store refused (disk full) gets a last few tries: what
        // is still refused is lost with this process, and the log says so.
        for _ in 0..3 {
            if self.unsaved.is_empty() {
                break;
            }
            self.retry_saves();
            if !self.unsaved.is_empty() {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        if !self.unsaved.is_empty() {
            tracing::error!(
                executions = ?self.unsaved,
                problem = self.store_problem.as_deref().unwrap_or(""),
                "the engine stops with executions the store refused to record"
            );
        }
        if let Some(Ok(envs)) = self.envs.get() {
            envs.shutdown().await;
        }
        // Give running process trees a moment to be killed.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !self.running.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.running.retain(|_, r| !r.stop.is_closed());
        }
    }

    pub(super) fn handle(&mut self, env: &Envelope) -> Result<Reply, ApiError> {
        if self.stopping && env.request.is_mutating() {
            return Err(api("EngineStopped", "the engine is shutting down"));
        }
        match &env.request {
            Request::StartPipelineExecution {
                pipeline_name,
                variables,
                source_revisions,
            } => {
                let id = self.start_execution(
                    pipeline_name,
                    variables,
                    source_revisions,
                    ExecutionTrigger {
                        trigger_type: TriggerType::StartPipelineExecution,
                        trigger_detail: env.identity.clone(),
                    },
                )?;
                Ok(Reply::Started {
                    pipeline_execution_id: id,
                })
            }
            Request::StopPipelineExecution {
                pipeline_name,
                pipeline_execution_id,
                abandon,
                reason,
            } => self.stop(
                pipeline_name,
                pipeline_execution_id.as_deref(),
                *abandon,
                reason,
            ),
            Request::RetryStageExecution {
                pipeline_name,
                stage_name,
                pipeline_execution_id,
                retry_mode,
            } => self.retry(
                pipeline_name,
                stage_name,
                pipeline_execution_id.as_deref(),
                retry_mode,
                false,
            ),
            Request::PutApprovalResult {
                pipeline_name,
                stage_name,
                action_name,
                token,
                status,
                summary,
            } => self.put_approval(
                pipeline_name,
                stage_name,
                action_name,
                token.as_deref(),
                status,
                summary,
                &env.identity,
            ),
            Request::RollbackStage {
                pipeline_name,
                stage_name,
                target_pipeline_execution_id,
            } => self.rollback(
                pipeline_name,
                stage_name,
                target_pipeline_execution_id.as_deref(),
                TriggerType::ManualRollback,
                &env.identity,
            ),
            Request::DisableStageTransition {
                pipeline_name,
                stage_name,
                reason,
            } => self.set_transition(pipeline_name, stage_name, Some(reason), &env.identity),
            Request::EnableStageTransition {
                pipeline_name,
                stage_name,
            } => self.set_transition(pipeline_name, stage_name, None, &env.identity),
            Request::ListPipelines {
                max_results,
                next_token,
            } => self.list_pipelines_page(*max_results, next_token.as_deref()),
            Request::GetPipeline {
                pipeline_name,
                pipeline_version,
            } => self.get_pipeline(pipeline_name, *pipeline_version),
            Request::UpdatePipeline { pipeline } => self.update_pipeline(pipeline),
            Request::GetLogEvents { .. } | Request::FilterLogEvents { .. } => Err(api(
                "InternalError",
                "log reads are answered from a blocking task",
            )),
            Request::GetPipelineState { pipeline_name } => Ok(Reply::State {
                state: self.state(pipeline_name)?,
            }),
            Request::ListPipelineExecutions {
                pipeline_name,
                max_results,
                next_token,
            } => self.executions_page(pipeline_name, *max_results, next_token.as_deref()),
            Request::GetPipelineExecution {
                pipeline_name,
                pipeline_execution_id,
            } => Ok(Reply::Execution {
                execution: self
                    .exec_of(pipeline_name, pipeline_execution_id)?
                    .summary
                    .clone(),
            }),
            Request::ListActionExecutions {
                pipeline_name,
                pipeline_execution_id,
                max_results,
                next_token,
            } => self.action_executions_page(
                pipeline_name,
                pipeline_execution_id,
                *max_results,
                next_token.as_deref(),
            ),
            Request::LookupEvents {
                max_results,
                next_token,
            } => self.events_page(*max_results, next_token.as_deref()),
            Request::ListEnvironments => Ok(Reply::Environments {
                environments: match self.envs.get() {
                    Some(Ok(envs)) => envs.summaries(&self.ws),
                    Some(Err(e)) => return Err(api("EnvironmentsUnavailable", e.clone())),
                    None => Vec::new(),
                },
            }),
            Request::RollbackEnvironment { .. }
            | Request::ListSourceCommits { .. }
            | Request::FluxObject { .. } => Err(api(
                "InternalError",
                format!("{} is handled asynchronously", env.request.event_name()),
            )),
            Request::EngineInfo => Ok(Reply::Info {
                info: EngineInfo {
                    workspace: self.ws.name.clone(),
                    workspace_root: self.ws.root.display().to_string(),
                    pid: std::process::id(),
                    started: self.started.clone(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    running_executions: self.execs.values().filter(|e| !e.terminal()).count()
                        as u32,
                    store_problem: self.store_problem.clone(),
                },
            }),
        }
    }

    pub(super) fn rollback_environment(
        &mut self,
        env: Envelope,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    ) {
        let Request::RollbackEnvironment { environment_name } = &env.request else {
            return;
        };
        let name = environment_name.clone();
        let envs = match self.environments_with(&name) {
            Ok(e) => e,
            Err(e) => {
                let r = Err(e);
                self.audit_call(&env, &r);
                let _ = reply.send(r);
                return;
            }
        };
        self.audit_call(
            &env,
            &Ok(Reply::Message {
                message: format!("rollback of {name} requested"),
            }),
        );
        tokio::spawn(async move {
            let r = envs
                .rollback(&name)
                .await
                .map(|message| Reply::Message { message })
                .map_err(|e| api("UnableToRollbackEnvironment", e));
            let _ = reply.send(r);
        });
    }

    /// The environments, when `name` is one of them.
    fn environments_with(
        &self,
        name: &str,
    ) -> Result<std::sync::Arc<crate::env::manager::Environments>, ApiError> {
        match self.envs.get() {
            Some(Ok(e)) if e.envs.contains_key(name) => Ok(e.clone()),
            Some(Err(e)) => Err(api("EnvironmentsUnavailable", e.clone())),
            None if self.ws.environments.contains_key(name) => Err(api(
                "EnvironmentsUnavailable",
                format!("environment `{name}` is still starting; try again in a moment"),
            )),
            _ => Err(api(
                "EnvironmentNotFound",
                format!(
                    "workspace {} has no environment `{name}` (environments: {})",
                    self.ws.name,
                    self.ws
                        .environments
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// `flux reconcile` / `suspend` / `resume`: run on a task, answered and
    /// audited (with its outcome) when done.
    pub(super) fn flux_object(
        &mut self,
        env: Envelope,
        reply: oneshot::Sender<Result<Reply, ApiError>>,
    ) {
        let Request::FluxObject {
            environment_name,
            object,
            operation,
        } = &env.request
        else {
            return;
        };
        let (name, object, operation) = (environment_name.clone(), object.clone(), *operation);
        if !self.ws.environments.contains_key(&name)
            && let Err(e) = self.environments_with(&name)
        {
            let r = Err(e);
            self.audit_call(&env, &r);
            let _ = reply.send(r);
            return;
        }
        let (tx, cell) = (self.tx.clone(), self.envs.clone());
        tokio::spawn(async move {
            // A CLI command may come while the environments still start.
            let until = std::time::Instant::now() + Duration::from_secs(30);
            let envs = loop {
                match cell.get() {
                    Some(Ok(e)) => break Ok(e.clone()),
                    Some(Err(e)) => break Err(api("EnvironmentsUnavailable", e.clone())),
                    None if std::time::Instant::now() < until => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    None => {
                        break Err(api(
                            "EnvironmentsUnavailable",
                            "the environments did not start within 30 s",
                        ));
                    }
                }
            };
            let r = match envs {
                Ok(envs) => envs
                    .flux(&name, operation, &object)
                    .await
                    .map(|message| Reply::Message { message }),
                Err(e) => Err(e),
            };
            let _ = tx.send(Msg::Audit(Box::new((env, r.clone()))));
            let _ = reply.send(r);
        });
    }
}
