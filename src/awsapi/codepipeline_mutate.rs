//! CodePipeline's mutating operations: start (with `clientRequestToken`
//! idempotency), stop, retry, approve, roll back, transitions.

use std::collections::BTreeMap;

use serde_json::json;

use super::codepipeline::{action_executions, pipeline_def, unexpected};
use super::input::Input;
use super::{AwsError, AwsResult, Caller, Ctx, prune, ts};
use crate::api::types::SourceRevisionOverride;
use crate::api::{Reply, Request};

/// A used token: `ApprovalAlreadyCompletedException` when it belonged to an
/// approval that has its result now.
async fn used_token(ctx: &Ctx, caller: &Caller, pipeline: &str, token: &str) -> Option<AwsError> {
    let (exec, action) = super::approval_tokens_get(ctx, token)?;
    let acts = action_executions(ctx, caller, pipeline, &exec).await.ok()?;
    let a = acts.iter().find(|a| a.action_execution_id == action)?;
    let r = a.approval.as_ref()?.result.as_ref()?;
    Some(AwsError::new(
        "ApprovalAlreadyCompletedException",
        format!(
            "{}.{} was already {} by {} at {}",
            a.stage_name,
            a.action_name,
            r.status.to_lowercase(),
            r.by,
            r.at
        ),
    ))
}

pub(super) async fn start(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("name", 1, 100)?;
    let mut variables = BTreeMap::new();
    for v in i.items("variables", "variables")? {
        let k = v.str_len("name", 1, 128)?;
        let val = v.str_len("value", 1, 1000)?;
        variables.insert(k.to_owned(), val.to_owned());
    }
    let mut source_revisions = Vec::new();
    for r in i.items("sourceRevisions", "sourceRevisions")? {
        source_revisions.push(SourceRevisionOverride {
            action_name: r.str_len("actionName", 1, 100)?.to_owned(),
            revision_type: r
                .enum_opt(
                    "revisionType",
                    &[
                        "COMMIT_ID",
                        "IMAGE_DIGEST",
                        "S3_OBJECT_VERSION_ID",
                        "S3_OBJECT_KEY",
                    ],
                )?
                .ok_or_else(|| {
                    AwsError::validation(
                        "1 validation error detected: Value null at 'sourceRevisions.revisionType' \
                         failed to satisfy constraint: Member must not be null",
                    )
                })?
                .to_owned(),
            revision_value: r.str_len("revisionValue", 1, 1500)?.to_owned(),
        });
    }
    let client_token = i.str_opt("clientRequestToken")?;
    if let Some(t) = client_token {
        i.check_len("clientRequestToken", t, 1, 128)?;
    }
    let fingerprint = json!([
        name,
        variables,
        source_revisions
            .iter()
            .map(|r| (&r.action_name, &r.revision_type, &r.revision_value))
            .collect::<Vec<_>>()
    ])
    .to_string();
    let _serial = match client_token {
        Some(_) => Some(ctx.start_lock.lock().await),
        None => None,
    };
    if let Some(t) = client_token
        && let Some((fp, id)) = super::client_tokens_get(ctx, t)
    {
        if fp == fingerprint {
            return Ok(json!({"pipelineExecutionId": id}));
        }
        return Err(AwsError::new(
            "IdempotentParameterMismatchException",
            format!(
                "clientRequestToken {t} was used for a different StartPipelineExecution request"
            ),
        ));
    }
    let r = ctx
        .call(
            caller,
            Request::StartPipelineExecution {
                pipeline_name: name.to_owned(),
                variables,
                source_revisions,
            },
        )
        .await?;
    let Reply::Started {
        pipeline_execution_id,
    } = r
    else {
        return Err(unexpected(&r));
    };
    if let Some(t) = client_token {
        super::client_tokens_put(ctx, t, fingerprint, &pipeline_execution_id);
    }
    Ok(json!({"pipelineExecutionId": pipeline_execution_id}))
}

pub(super) async fn stop(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("pipelineName", 1, 100)?;
    let id = i.str_req("pipelineExecutionId")?;
    let abandon = i.bool_opt("abandon")?.unwrap_or(false);
    let reason = i.str_opt("reason")?;
    if let Some(r) = reason {
        i.check_len("reason", r, 0, 200)?;
    }
    match ctx
        .call(
            caller,
            Request::StopPipelineExecution {
                pipeline_name: name.to_owned(),
                pipeline_execution_id: Some(id.to_owned()),
                abandon,
                reason: reason.map(str::to_owned),
            },
        )
        .await?
    {
        Reply::Stopped {
            pipeline_execution_id,
        } => Ok(json!({"pipelineExecutionId": pipeline_execution_id})),
        _ => Ok(json!({"pipelineExecutionId": id})),
    }
}

pub(super) async fn retry(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("pipelineName", 1, 100)?;
    let stage = i.str_len("stageName", 1, 100)?;
    let id = i.str_req("pipelineExecutionId")?;
    let mode = i
        .enum_opt("retryMode", &["FAILED_ACTIONS", "ALL_ACTIONS"])?
        .ok_or_else(|| {
            AwsError::validation(
                "1 validation error detected: Value null at 'retryMode' failed to satisfy \
                 constraint: Member must not be null",
            )
        })?;
    ctx.check_protected("RetryStageExecution", stage)?;
    match ctx
        .call(
            caller,
            Request::RetryStageExecution {
                pipeline_name: name.to_owned(),
                stage_name: stage.to_owned(),
                pipeline_execution_id: Some(id.to_owned()),
                retry_mode: mode.to_owned(),
            },
        )
        .await?
    {
        Reply::Retried {
            pipeline_execution_id,
        } => Ok(json!({"pipelineExecutionId": pipeline_execution_id})),
        r => Err(unexpected(&r)),
    }
}

pub(super) async fn put_approval_result(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("pipelineName", 1, 100)?;
    let stage = i.str_len("stageName", 1, 100)?;
    let action = i.str_len("actionName", 1, 100)?;
    let result = i.obj_req("result", "result")?;
    let summary = result.str_len("summary", 0, 512)?;
    let status = result
        .enum_opt("status", &["Approved", "Rejected"])?
        .ok_or_else(|| {
            AwsError::validation(
                "1 validation error detected: Value null at 'result.status' failed to satisfy \
                 constraint: Member must not be null",
            )
        })?;
    let token = i.str_req("token")?;
    ctx.check_protected("PutApprovalResult", stage)?;
    let r = ctx
        .call(
            caller,
            Request::PutApprovalResult {
                pipeline_name: name.to_owned(),
                stage_name: stage.to_owned(),
                action_name: action.to_owned(),
                token: Some(token.to_owned()),
                status: status.to_owned(),
                summary: summary.to_owned(),
            },
        )
        .await;
    let r = match r {
        Err(e) if e.code == "InvalidApprovalTokenException" => {
            return Err(used_token(ctx, caller, name, token).await.unwrap_or(e));
        }
        r => r?,
    };
    match r {
        Reply::ApprovalRecorded { approved_at } => Ok(json!({"approvedAt": ts(&approved_at)})),
        r => Err(unexpected(&r)),
    }
}

pub(super) async fn rollback(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("pipelineName", 1, 100)?;
    let stage = i.str_len("stageName", 1, 100)?;
    let target = i.str_req("targetPipelineExecutionId")?;
    ctx.check_protected("RollbackStage", stage)?;
    match ctx
        .call(
            caller,
            Request::RollbackStage {
                pipeline_name: name.to_owned(),
                stage_name: stage.to_owned(),
                target_pipeline_execution_id: Some(target.to_owned()),
            },
        )
        .await?
    {
        Reply::RolledBack {
            pipeline_execution_id,
        } => Ok(json!({"pipelineExecutionId": pipeline_execution_id})),
        r => Err(unexpected(&r)),
    }
}

/// `Outbound` of a stage is the `Inbound` of the stage after it.
pub(super) async fn transition(
    ctx: &Ctx,
    caller: &Caller,
    i: Input<'_>,
    disable: bool,
) -> AwsResult {
    let name = i.str_len("pipelineName", 1, 100)?;
    let stage = i.str_len("stageName", 1, 100)?;
    let kind = i
        .enum_opt("transitionType", &["Inbound", "Outbound"])?
        .ok_or_else(|| {
            AwsError::validation(
                "1 validation error detected: Value null at 'transitionType' failed to satisfy \
                 constraint: Member must not be null",
            )
        })?;
    let reason = if disable {
        Some(i.str_len("reason", 1, 300)?)
    } else {
        None
    };
    let target = if kind == "Outbound" {
        let (p, _) = pipeline_def(ctx, caller, name).await?;
        let at = p
            .stages
            .iter()
            .position(|s| s.name == stage)
            .ok_or_else(|| {
                AwsError::new(
                    "StageNotFoundException",
                    format!("pipeline {name} has no stage {stage}"),
                )
            })?;
        p.stages
            .get(at + 1)
            .map(|s| s.name.clone())
            .ok_or_else(|| {
                AwsError::validation(format!(
                    "stage {stage} is the last stage: it has no outbound transition"
                ))
            })?
    } else {
        stage.to_owned()
    };
    let request = match reason {
        Some(r) => Request::DisableStageTransition {
            pipeline_name: name.to_owned(),
            stage_name: target,
            reason: r.to_owned(),
        },
        None => Request::EnableStageTransition {
            pipeline_name: name.to_owned(),
            stage_name: target,
        },
    };
    ctx.call(caller, request).await?;
    Ok(prune(json!({})))
}
