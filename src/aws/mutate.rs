//! The operations: approve / reject (the token from GetPipelineState),
//! retry, stop, rollback, transitions, start with variables. AWS's error
//! names are passed on as they are; every operation is also appended to the
//! local audit trail (`<data dir>/aws/audit.jsonl`).

use aws_sdk_codepipeline::types as t;

use super::account::Account;
use crate::api::{ApiError, Reply, Request};

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new("ValidationException", msg)
}

impl Account {
    /// A mutating request against this account.
    pub async fn mutate(&self, req: &Request) -> Result<Reply, ApiError> {
        if self.target.readonly {
            return Err(ApiError::new(
                "ReadOnlyAccount",
                format!(
                    "account {} is read-only in pipedeck's config: {} refused",
                    self.target.label,
                    req.event_name()
                ),
            ));
        }
        let cp = &self.clients.codepipeline;
        let reply = match req {
            Request::StartPipelineExecution {
                pipeline_name,
                variables,
                source_revisions,
            } => {
                let vars = variables
                    .iter()
                    .map(|(k, v)| {
                        t::PipelineVariable::builder()
                            .name(k)
                            .value(v)
                            .build()
                            .map_err(|e| invalid(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let revs = source_revisions
                    .iter()
                    .map(|r| {
                        t::SourceRevisionOverride::builder()
                            .action_name(&r.action_name)
                            .revision_type(t::SourceRevisionType::from(r.revision_type.as_str()))
                            .revision_value(&r.revision_value)
                            .build()
                            .map_err(|e| invalid(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let vars = (!vars.is_empty()).then_some(vars);
                let revs = (!revs.is_empty()).then_some(revs);
                let out = self
                    .send("codepipeline", "StartPipelineExecution", || {
                        cp.start_pipeline_execution()
                            .name(pipeline_name)
                            .set_variables(vars.clone())
                            .set_source_revisions(revs.clone())
                            .send()
                    })
                    .await?;
                Reply::Started {
                    pipeline_execution_id: out
                        .pipeline_execution_id()
                        .unwrap_or_default()
                        .to_owned(),
                }
            }
            Request::StopPipelineExecution {
                pipeline_name,
                pipeline_execution_id,
                abandon,
                reason,
            } => {
                let id = match pipeline_execution_id {
                    Some(id) => id.clone(),
                    None => self
                        .executions(pipeline_name)
                        .await?
                        .into_iter()
                        .find(|e| !e.status.is_terminal())
                        .map(|e| e.pipeline_execution_id)
                        .ok_or_else(|| {
                            ApiError::new(
                                "PipelineExecutionNotStoppableException",
                                format!("{pipeline_name} has no execution in progress"),
                            )
                        })?,
                };
                let out = self
                    .send("codepipeline", "StopPipelineExecution", || {
                        cp.stop_pipeline_execution()
                            .pipeline_name(pipeline_name)
                            .pipeline_execution_id(&id)
                            .abandon(*abandon)
                            .set_reason(reason.clone())
                            .send()
                    })
                    .await?;
                Reply::Stopped {
                    pipeline_execution_id: out
                        .pipeline_execution_id()
                        .map_or(id.clone(), str::to_owned),
                }
            }
            Request::RetryStageExecution {
                pipeline_name,
                stage_name,
                pipeline_execution_id,
                retry_mode,
            } => {
                let id = match pipeline_execution_id {
                    Some(id) => id.clone(),
                    None => self
                        .fetch_state(pipeline_name)
                        .await?
                        .stage_states
                        .iter()
                        .find(|s| &s.stage_name == stage_name)
                        .and_then(|s| s.latest_execution.as_ref())
                        .map(|l| l.pipeline_execution_id.clone())
                        .ok_or_else(|| {
                            ApiError::new(
                                "StageNotRetryableException",
                                format!("{pipeline_name}/{stage_name} has no execution to retry"),
                            )
                        })?,
                };
                let out = self
                    .send("codepipeline", "RetryStageExecution", || {
                        cp.retry_stage_execution()
                            .pipeline_name(pipeline_name)
                            .stage_name(stage_name)
                            .pipeline_execution_id(&id)
                            .retry_mode(t::StageRetryMode::from(retry_mode.as_str()))
                            .send()
                    })
                    .await?;
                Reply::Retried {
                    pipeline_execution_id: out.pipeline_execution_id().map_or(id, str::to_owned),
                }
            }
            Request::PutApprovalResult {
                pipeline_name,
                stage_name,
                action_name,
                token,
                status,
                summary,
            } => {
                let token = match token {
                    Some(t) => t.clone(),
                    None => self
                        .fetch_state(pipeline_name)
                        .await?
                        .stage_states
                        .iter()
                        .filter(|s| &s.stage_name == stage_name)
                        .flat_map(|s| &s.action_states)
                        .filter(|a| &a.action_name == action_name)
                        .find_map(|a| a.latest_execution.as_ref()?.token.clone())
                        .ok_or_else(|| {
                            ApiError::new(
                                "InvalidApprovalTokenException",
                                format!(
                                    "{pipeline_name}/{stage_name}/{action_name} is not waiting for approval (GetPipelineState shows no token)"
                                ),
                            )
                        })?,
                };
                let result = t::ApprovalResult::builder()
                    .summary(if summary.is_empty() {
                        format!("{status} in pipedeck")
                    } else {
                        summary.clone()
                    })
                    .status(t::ApprovalStatus::from(status.as_str()))
                    .build()
                    .map_err(|e| invalid(e.to_string()))?;
                let out = self
                    .send("codepipeline", "PutApprovalResult", || {
                        cp.put_approval_result()
                            .pipeline_name(pipeline_name)
                            .stage_name(stage_name)
                            .action_name(action_name)
                            .result(result.clone())
                            .token(&token)
                            .send()
                    })
                    .await?;
                Reply::ApprovalRecorded {
                    approved_at: super::convert::time(out.approved_at()),
                }
            }
            Request::RollbackStage {
                pipeline_name,
                stage_name,
                target_pipeline_execution_id,
            } => {
                let (decl, _) = self.definition(pipeline_name, None).await?;
                if decl.effective_type() != crate::model::pipeline::PipelineType::V2 {
                    return Err(ApiError::new(
                        "ValidationException",
                        format!(
                            "{pipeline_name} is a V1 pipeline: RollbackStage needs a V2 pipeline (change pipelineType to V2, or retry / start an earlier revision instead)"
                        ),
                    ));
                }
                let target = match target_pipeline_execution_id {
                    Some(t) => t.clone(),
                    None => self.succeeded_in(pipeline_name, stage_name).await?,
                };
                let out = self
                    .send("codepipeline", "RollbackStage", || {
                        cp.rollback_stage()
                            .pipeline_name(pipeline_name)
                            .stage_name(stage_name)
                            .target_pipeline_execution_id(&target)
                            .send()
                    })
                    .await?;
                Reply::RolledBack {
                    pipeline_execution_id: out.pipeline_execution_id().to_owned(),
                }
            }
            Request::DisableStageTransition {
                pipeline_name,
                stage_name,
                reason,
            } => {
                self.send("codepipeline", "DisableStageTransition", || {
                    cp.disable_stage_transition()
                        .pipeline_name(pipeline_name)
                        .stage_name(stage_name)
                        .transition_type(t::StageTransitionType::Inbound)
                        .reason(if reason.is_empty() {
                            "disabled in pipedeck"
                        } else {
                            reason
                        })
                        .send()
                })
                .await?;
                Reply::Done
            }
            Request::EnableStageTransition {
                pipeline_name,
                stage_name,
            } => {
                self.send("codepipeline", "EnableStageTransition", || {
                    cp.enable_stage_transition()
                        .pipeline_name(pipeline_name)
                        .stage_name(stage_name)
                        .transition_type(t::StageTransitionType::Inbound)
                        .send()
                })
                .await?;
                Reply::Done
            }
            other => {
                return Err(ApiError::new(
                    "UnsupportedOperation",
                    format!("{} is not an AWS operation", other.event_name()),
                ));
            }
        };
        Ok(reply)
    }

    /// The newest execution that succeeded in `stage` (RollbackStage's
    /// default target), from ListPipelineExecutions' succeededInStage filter.
    async fn succeeded_in(&self, name: &str, stage: &str) -> Result<String, ApiError> {
        let cp = &self.clients.codepipeline;
        let filter = t::PipelineExecutionFilter::builder()
            .succeeded_in_stage(
                t::SucceededInStageFilter::builder()
                    .stage_name(stage)
                    .build(),
            )
            .build();
        let out = self
            .send("codepipeline", "ListPipelineExecutions", || {
                cp.list_pipeline_executions()
                    .pipeline_name(name)
                    .filter(filter.clone())
                    .max_results(5)
                    .send()
            })
            .await?;
        out.pipeline_execution_summaries()
            .iter()
            .filter(|e| e.execution_type().is_none_or(|t| t.as_str() != "ROLLBACK"))
            .find_map(|e| e.pipeline_execution_id().map(str::to_owned))
            .ok_or_else(|| {
                ApiError::new(
                    "UnableToRollbackStageException",
                    format!("no earlier execution of {name} succeeded in {stage}"),
                )
            })
    }
}
