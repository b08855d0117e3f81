//! CodePipeline (`CodePipeline_20150709.*`): AWS's request and response
//! shapes over the engine's requests.

use serde_json::{Value, json};

use super::input::Input;
use super::{AwsError, AwsResult, Caller, Ctx, token, ts};
use crate::api::{
    ActionExecutionDetail, ActionState, ConditionState, ExecutionSummary, PipelineState, Reply,
    Request, StageState,
};
use crate::model::pipeline::Pipeline;

use super::codepipeline_mutate as mutate;

const SERVICE: &str = "CodePipeline";

pub(super) fn unexpected(r: &Reply) -> AwsError {
    AwsError::new(
        "InternalFailure",
        format!("the engine answered {r:?}, not what was asked"),
    )
    .with_status(500)
}

pub async fn call(ctx: &Ctx, caller: &Caller, op: &str, body: &Value) -> AwsResult {
    let i = Input::root(body)?;
    match op {
        "ListPipelines" => list_pipelines(ctx, caller, i).await,
        "GetPipeline" => get_pipeline(ctx, caller, i).await,
        "GetPipelineState" => get_pipeline_state(ctx, caller, i).await,
        "ListPipelineExecutions" => list_pipeline_executions(ctx, caller, i).await,
        "GetPipelineExecution" => get_pipeline_execution(ctx, caller, i).await,
        "ListActionExecutions" => list_action_executions(ctx, caller, i).await,
        "ListRuleExecutions" => list_rule_executions(ctx, caller, i).await,
        "StartPipelineExecution" => mutate::start(ctx, caller, i).await,
        "StopPipelineExecution" => mutate::stop(ctx, caller, i).await,
        "RetryStageExecution" => mutate::retry(ctx, caller, i).await,
        "PutApprovalResult" => mutate::put_approval_result(ctx, caller, i).await,
        "RollbackStage" => mutate::rollback(ctx, caller, i).await,
        "EnableStageTransition" | "DisableStageTransition" => {
            mutate::transition(ctx, caller, i, op == "DisableStageTransition").await
        }
        "UpdatePipeline" => {
            ctx.readonly_refusal(op)?;
            super::pipeline_json::update(ctx, caller, i).await
        }
        "CreatePipeline" | "DeletePipeline" => {
            ctx.readonly_refusal(op)?;
            super::pipeline_json::check_update(ctx, op, i)
        }
        "OverrideStageCondition" => Err(AwsError::not_built(
            SERVICE,
            op,
            ": the engine has no request to override a stage condition \
             (needs Request::OverrideStageCondition in src/api and the engine)",
        )),
        _ => Err(AwsError::not_built(SERVICE, op, "")),
    }
}

// ------------------------------------------------------------------ reads

pub(super) async fn pipeline_def(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
) -> Result<(Pipeline, u32), AwsError> {
    match ctx
        .call(
            caller,
            Request::GetPipeline {
                pipeline_name: name.to_owned(),
                pipeline_version: None,
            },
        )
        .await?
    {
        Reply::Pipeline { pipeline, metadata } => Ok((*pipeline, metadata.pipeline_version)),
        r => Err(unexpected(&r)),
    }
}

/// When the pipeline's file last changed, as epoch seconds.
fn file_time(ctx: &Ctx, name: &str) -> Value {
    ctx.engine
        .workspace
        .pipelines
        .iter()
        .find(|p| p.pipeline.name == name)
        .and_then(|p| std::fs::metadata(&p.file).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(Value::Null, |d| json!(d.as_millis() as f64 / 1000.0))
}

pub fn pipeline_arn(name: &str) -> String {
    format!(
        "arn:aws:codepipeline:{}:{}:{name}",
        super::REGION,
        super::ACCOUNT
    )
}

async fn list_pipelines(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let max = i.int_opt("maxResults", 1, 1000)?.unwrap_or(1000) as usize;
    let after = page_position(ctx, "ListPipelines", i)?;
    let Reply::Pipelines { pipelines, .. } = ctx.call(caller, Request::list_pipelines()).await?
    else {
        return Err(AwsError::new("InternalFailure", "unexpected reply").with_status(500));
    };
    let start = after.map_or(0, |n| n as usize);
    let page: Vec<Value> = pipelines
        .iter()
        .skip(start)
        .take(max)
        .map(|p| {
            json!({
                "name": p.name,
                "version": p.version,
                "pipelineType": p.pipeline_type,
                "executionMode": p.execution_mode,
                "created": file_time(ctx, &p.name),
                "updated": file_time(ctx, &p.name),
            })
        })
        .collect();
    let next = (start + page.len() < pipelines.len())
        .then(|| token::encode(&ctx.token_key, "ListPipelines", &json!(start + page.len())));
    Ok(json!({"pipelines": page, "nextToken": next}))
}

/// The numeric position a `nextToken` carries, or an InvalidNextToken error.
fn page_position(ctx: &Ctx, params: &str, i: Input<'_>) -> Result<Option<u64>, AwsError> {
    let Some(t) = i.str_opt("nextToken")? else {
        return Ok(None);
    };
    token::decode(&ctx.token_key, params, t)
        .and_then(|v| v.as_u64())
        .map(Some)
        .ok_or_else(invalid_token)
}

fn invalid_token() -> AwsError {
    AwsError::new(
        "InvalidNextTokenException",
        "The nextToken is not valid for this request (it comes from another listing or was altered)",
    )
}

async fn get_pipeline(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("name", 1, 100)?;
    let want = i.int_opt("version", 1, i64::from(u32::MAX))?;
    let (p, version) = pipeline_def(ctx, caller, name).await?;
    if let Some(v) = want
        && v != i64::from(version)
    {
        return Err(AwsError::new(
            "PipelineVersionNotFoundException",
            format!(
                "pipeline {name} version {v} is not kept; the engine has version {version} \
                 (earlier versions are recorded but not served)"
            ),
        ));
    }
    Ok(json!({
        "pipeline": super::pipeline_json::declaration(&p, version),
        "metadata": {
            "pipelineArn": pipeline_arn(name),
            "created": file_time(ctx, name),
            "updated": file_time(ctx, name),
        },
    }))
}

fn error_details(a: &ActionExecutionDetail) -> Value {
    a.error_details.as_ref().map_or(
        Value::Null,
        |e| json!({"code": e.code, "message": e.message}),
    )
}

fn action_state(a: &ActionState) -> Value {
    let latest = a.latest_execution.as_ref().map(|x| {
        json!({
            "actionExecutionId": x.action_execution_id,
            "status": x.status.as_str(),
            "summary": x.summary,
            "lastStatusChange": ts(&x.last_status_change),
            "token": x.token,
            "lastUpdatedBy": x.approval.as_ref().and_then(|ap| ap.result.as_ref()).map(|r| r.by.clone()),
            "externalExecutionId": x.external_execution_id,
            "errorDetails": error_details(x),
        })
    });
    json!({"actionName": a.action_name, "latestExecution": latest})
}

fn condition_state(c: &ConditionState) -> Value {
    let rule = |r: &crate::api::RuleState| {
        json!({
            "ruleName": r.rule_name,
            "latestExecution": {
                "status": if r.passed { "Succeeded" } else { "Failed" },
                "summary": r.message,
            },
        })
    };
    json!({
        "latestExecution": {"status": c.status, "summary": c.result},
        "conditionStates": [{
            "latestExecution": {"status": c.status, "summary": c.result},
            "ruleStates": c.rules.iter().map(rule).collect::<Vec<_>>(),
        }],
    })
}

fn stage_state(s: &StageState) -> Value {
    let inbound: Vec<Value> = s
        .inbound_executions
        .iter()
        .map(|x| {
            json!({
                "pipelineExecutionId": x.pipeline_execution_id,
                "status": x.status.as_str(),
                "type": x.execution_type.as_str(),
            })
        })
        .collect();
    let t = &s.inbound_transition_state;
    let mut v = json!({
        "stageName": s.stage_name,
        "inboundExecution": inbound.first().cloned(),
        "inboundExecutions": inbound,
        "inboundTransitionState": {
            "enabled": t.enabled,
            "lastChangedBy": t.last_changed_by,
            "lastChangedAt": t.last_changed_at.as_deref().map_or(Value::Null, ts),
            "disabledReason": t.disabled_reason,
        },
        "actionStates": s.action_states.iter().map(action_state).collect::<Vec<_>>(),
        "latestExecution": s.latest_execution.as_ref().map(|l| json!({
            "pipelineExecutionId": l.pipeline_execution_id,
            "status": l.status.as_str(),
            "type": l.execution_type.as_str(),
        })),
        "retryStageMetadata": {
            "autoStageRetryAttempt": s.retry_stage_metadata.auto_stage_retry_attempt,
            "manualStageRetryAttempt": s.retry_stage_metadata.manual_stage_retry_attempt,
            "latestRetryTrigger": s.retry_stage_metadata.latest_retry_trigger,
        },
    });
    if let Some(c) = &s.condition {
        let key = match c.condition_type.as_str() {
            "BEFORE_ENTRY" => "beforeEntryConditionState",
            "ON_SUCCESS" => "onSuccessConditionState",
            _ => "onFailureConditionState",
        };
        v[key] = condition_state(c);
    }
    v
}

fn remember_tokens(ctx: &Ctx, st: &PipelineState) {
    let seen: Vec<(String, (String, String))> = st
        .stage_states
        .iter()
        .flat_map(|s| s.action_states.iter())
        .filter_map(|a| a.latest_execution.as_ref())
        .filter_map(|a| {
            let t = a.token.clone()?;
            Some((
                t,
                (
                    a.pipeline_execution_id.clone(),
                    a.action_execution_id.clone(),
                ),
            ))
        })
        .collect();
    if !seen.is_empty() {
        super::approval_tokens_put(ctx, seen);
    }
}

/// A running build has its id before the engine records it:
/// `<project>:<action execution id>` (providers/codebuild.rs).
pub fn fill_build_ids(st: &mut PipelineState, p: &Pipeline) {
    for s in &mut st.stage_states {
        let Some(def) = p.stage(&s.stage_name) else {
            continue;
        };
        for a in &mut s.action_states {
            let project = def
                .actions
                .iter()
                .find(|d| d.name == a.action_name && d.action_type_id.provider == "CodeBuild")
                .and_then(|d| d.configuration.get("ProjectName"));
            if let (Some(pr), Some(x)) = (project, a.latest_execution.as_mut())
                && x.external_execution_id.is_none()
            {
                x.external_execution_id = Some(format!("{pr}:{}", x.action_execution_id));
            }
        }
    }
}

pub fn state_json(st: &PipelineState, created: Value) -> Value {
    json!({
        "pipelineName": st.pipeline_name,
        "pipelineVersion": st.pipeline_version,
        "stageStates": st.stage_states.iter().map(stage_state).collect::<Vec<_>>(),
        "created": created.clone(),
        "updated": created,
    })
}

async fn get_pipeline_state(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("name", 1, 100)?;
    match ctx
        .call(
            caller,
            Request::GetPipelineState {
                pipeline_name: name.to_owned(),
            },
        )
        .await?
    {
        Reply::State { mut state } => {
            remember_tokens(ctx, &state);
            if let Ok((p, _)) = pipeline_def(ctx, caller, name).await {
                fill_build_ids(&mut state, &p);
            }
            Ok(state_json(&state, file_time(ctx, name)))
        }
        r => Err(unexpected(&r)),
    }
}

fn execution_summary(e: &ExecutionSummary) -> Value {
    json!({
        "pipelineExecutionId": e.pipeline_execution_id,
        "status": e.status.as_str(),
        "statusSummary": e.status_summary,
        "startTime": ts(&e.start_time),
        "lastUpdateTime": ts(&e.last_update_time),
        "sourceRevisions": e.source_revisions.iter().map(|r| json!({
            "actionName": r.action_name,
            "revisionId": r.revision_id,
            "revisionSummary": r.revision_summary,
            "revisionUrl": r.revision_url,
        })).collect::<Vec<_>>(),
        "trigger": {
            "triggerType": e.trigger.trigger_type,
            "triggerDetail": e.trigger.trigger_detail,
        },
        "stopTrigger": e.stop_reason.as_ref().map(|r| json!({"reason": r})),
        "executionMode": e.execution_mode,
        "executionType": e.execution_type.as_str(),
        "rollbackMetadata": e.rollback_target.as_ref().map(|t| json!({
            "rollbackTargetPipelineExecutionId": t,
        })),
    })
}

async fn executions(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
) -> Result<Vec<ExecutionSummary>, AwsError> {
    match ctx
        .call(
            caller,
            Request::ListPipelineExecutions {
                pipeline_name: name.to_owned(),
                // The engine's most; see the report on paging beyond it.
                max_results: Some(1000),
                next_token: None,
            },
        )
        .await?
    {
        Reply::Executions { executions, .. } => Ok(executions),
        r => Err(unexpected(&r)),
    }
}

pub(super) async fn action_executions(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    exec: &str,
) -> Result<Vec<ActionExecutionDetail>, AwsError> {
    match ctx
        .call(
            caller,
            Request::ListActionExecutions {
                pipeline_name: name.to_owned(),
                pipeline_execution_id: exec.to_owned(),
                max_results: Some(1000),
                next_token: None,
            },
        )
        .await?
    {
        Reply::ActionExecutions { actions, .. } => Ok(actions),
        r => Err(unexpected(&r)),
    }
}

/// Whether `e` succeeded in `stage`: every action of the stage's latest
/// attempt succeeded in this execution.
async fn succeeded_in(
    ctx: &Ctx,
    caller: &Caller,
    p: &Pipeline,
    e: &ExecutionSummary,
    stage: &str,
) -> Result<bool, AwsError> {
    if e.status == crate::api::types::ExecutionStatus::Succeeded
        && e.execution_type == crate::api::types::ExecutionType::Standard
    {
        return Ok(true);
    }
    let Some(def) = p.stage(stage) else {
        return Ok(false);
    };
    let acts = action_executions(ctx, caller, &e.pipeline_name, &e.pipeline_execution_id).await?;
    Ok(def.actions.iter().all(|a| {
        acts.iter()
            .filter(|x| x.stage_name == stage && x.action_name == a.name)
            .max_by_key(|x| x.attempt)
            .is_some_and(|x| x.status == crate::api::types::ActionStatus::Succeeded)
    }))
}

async fn list_pipeline_executions(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("pipelineName", 1, 100)?;
    let max = i.int_opt("maxResults", 1, 100)?.unwrap_or(100) as usize;
    let stage = match i.obj_opt("filter", "filter")? {
        Some(f) => Some(
            f.obj_req("succeededInStage", "filter.succeededInStage")?
                .str_len("stageName", 1, 100)?
                .to_owned(),
        ),
        None => None,
    };
    let params = format!(
        "ListPipelineExecutions|{name}|{}",
        stage.as_deref().unwrap_or("")
    );
    let after = match i.str_opt("nextToken")? {
        Some(t) => Some(
            token::decode(&ctx.token_key, &params, t)
                .and_then(|v| v.as_str().map(str::to_owned))
                .ok_or_else(invalid_token)?,
        ),
        None => None,
    };
    let all = executions(ctx, caller, name).await?;
    let start = match &after {
        Some(id) => all
            .iter()
            .position(|e| &e.pipeline_execution_id == id)
            .map(|p| p + 1)
            .ok_or_else(invalid_token)?,
        None => 0,
    };
    let def = match &stage {
        Some(_) => Some(pipeline_def(ctx, caller, name).await?.0),
        None => None,
    };
    let mut page = Vec::new();
    let mut last = start;
    for (k, e) in all.iter().enumerate().skip(start) {
        if page.len() == max {
            break;
        }
        last = k + 1;
        if let (Some(st), Some(p)) = (&stage, &def)
            && !succeeded_in(ctx, caller, p, e, st).await?
        {
            continue;
        }
        page.push(execution_summary(e));
    }
    let next = (last < all.len() && page.len() == max).then(|| {
        token::encode(
            &ctx.token_key,
            &params,
            &json!(all[last - 1].pipeline_execution_id),
        )
    });
    Ok(json!({"pipelineExecutionSummaries": page, "nextToken": next}))
}

async fn get_pipeline_execution(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("pipelineName", 1, 100)?;
    let id = i.str_req("pipelineExecutionId")?;
    let e = match ctx
        .call(
            caller,
            Request::GetPipelineExecution {
                pipeline_name: name.to_owned(),
                pipeline_execution_id: id.to_owned(),
            },
        )
        .await?
    {
        Reply::Execution { execution } => execution,
        r => return Err(unexpected(&r)),
    };
    let mut v = execution_summary(&e);
    v["pipelineName"] = json!(e.pipeline_name);
    v["pipelineVersion"] = json!(e.pipeline_version);
    v["artifactRevisions"] = json!(
        e.source_revisions
            .iter()
            .map(|r| json!({
                "name": r.action_name,
                "revisionId": r.revision_id,
                "revisionSummary": r.revision_summary,
                "revisionUrl": r.revision_url,
            }))
            .collect::<Vec<_>>()
    );
    v["variables"] = json!(
        e.variables
            .iter()
            .map(|(k, val)| json!({"name": k, "resolvedValue": val}))
            .collect::<Vec<_>>()
    );
    if let Value::Object(m) = &mut v {
        m.remove("startTime");
        m.remove("lastUpdateTime");
        m.remove("sourceRevisions");
        m.remove("stopTrigger");
    }
    Ok(json!({"pipelineExecution": v}))
}

/// `actionExecutionDetails[]` entry; `p` gives the action's type and configuration.
pub fn action_detail(a: &ActionExecutionDetail, p: &Pipeline, version: u32) -> Value {
    let def = p
        .stage(&a.stage_name)
        .and_then(|s| s.actions.iter().find(|x| x.name == a.action_name));
    let input = def.map(|d| {
        json!({
            "actionTypeId": {
                "category": d.action_type_id.category,
                "owner": d.action_type_id.owner,
                "provider": d.action_type_id.provider,
                "version": d.action_type_id.version,
            },
            "configuration": d.configuration,
            "resolvedConfiguration": a.resolved_configuration,
            "roleArn": d.role_arn,
            "region": d.region.clone().unwrap_or_else(|| super::REGION.to_owned()),
            "inputArtifacts": a.input_artifacts.iter().map(|x| json!({"name": x.name})).collect::<Vec<_>>(),
            "namespace": d.namespace,
        })
    });
    // A running build has its id already: `<project>:<action execution id>`.
    let external = a.external_execution_id.clone().or_else(|| {
        def.filter(|d| d.action_type_id.provider == "CodeBuild")
            .and_then(|d| d.configuration.get("ProjectName"))
            .map(|p| format!("{p}:{}", a.action_execution_id))
    });
    let result = json!({
        "externalExecutionId": external,
        "externalExecutionSummary": a.summary,
        "errorDetails": error_details(a),
    });
    json!({
        "pipelineExecutionId": a.pipeline_execution_id,
        "actionExecutionId": a.action_execution_id,
        "pipelineVersion": version,
        "stageName": a.stage_name,
        "actionName": a.action_name,
        "startTime": ts(&a.start_time),
        "lastUpdateTime": ts(&a.last_status_change),
        "updatedBy": a.approval.as_ref().and_then(|ap| ap.result.as_ref()).map(|r| r.by.clone()),
        "status": a.status.as_str(),
        "input": input,
        "output": {
            "outputArtifacts": a.output_artifacts.iter().map(|x| json!({"name": x.name})).collect::<Vec<_>>(),
            "executionResult": result,
            "outputVariables": a.output_variables,
        },
    })
}

async fn list_action_executions(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("pipelineName", 1, 100)?;
    let max = i.int_opt("maxResults", 1, 100)?.unwrap_or(100) as usize;
    let exec = match i.obj_opt("filter", "filter")? {
        Some(f) => match f.str_opt("pipelineExecutionId")? {
            Some(id) => Some(id.to_owned()),
            None => f
                .obj_opt(
                    "latestInPipelineExecution",
                    "filter.latestInPipelineExecution",
                )?
                .map(|l| l.str_req("pipelineExecutionId").map(str::to_owned))
                .transpose()?,
        },
        None => None,
    };
    let params = format!(
        "ListActionExecutions|{name}|{}",
        exec.as_deref().unwrap_or("")
    );
    let skip = page_position(ctx, &params, i)?.unwrap_or(0) as usize;
    let (p, _) = pipeline_def(ctx, caller, name).await?;
    let execs: Vec<ExecutionSummary> = match &exec {
        Some(id) => executions(ctx, caller, name)
            .await?
            .into_iter()
            .filter(|e| &e.pipeline_execution_id == id)
            .collect(),
        None => executions(ctx, caller, name).await?,
    };
    if let (Some(id), true) = (&exec, execs.is_empty()) {
        return Err(AwsError::new(
            "PipelineExecutionNotFoundException",
            format!("pipeline {name} has no execution {id}"),
        ));
    }
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut more = false;
    'outer: for e in &execs {
        for a in action_executions(ctx, caller, name, &e.pipeline_execution_id).await? {
            if seen >= skip {
                if out.len() == max {
                    more = true;
                    break 'outer;
                }
                out.push(action_detail(&a, &p, e.pipeline_version));
            }
            seen += 1;
        }
    }
    let next = more.then(|| token::encode(&ctx.token_key, &params, &json!(skip + out.len())));
    Ok(json!({"actionExecutionDetails": out, "nextToken": next}))
}

async fn list_rule_executions(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let name = i.str_len("pipelineName", 1, 100)?;
    let exec = match i.obj_opt("filter", "filter")? {
        Some(f) => f.str_opt("pipelineExecutionId")?.map(str::to_owned),
        None => None,
    };
    let Reply::State { state } = ctx
        .call(
            caller,
            Request::GetPipelineState {
                pipeline_name: name.to_owned(),
            },
        )
        .await?
    else {
        return Err(AwsError::new("InternalFailure", "unexpected reply").with_status(500));
    };
    // The engine keeps the latest evaluation per stage, not every rule run.
    let mut out = Vec::new();
    for s in &state.stage_states {
        let (Some(c), Some(l)) = (&s.condition, &s.latest_execution) else {
            continue;
        };
        if exec.as_ref().is_some_and(|x| x != &l.pipeline_execution_id) {
            continue;
        }
        for r in &c.rules {
            out.push(json!({
                "pipelineExecutionId": l.pipeline_execution_id,
                "ruleExecutionId": format!("{}:{}:{}:{}", l.pipeline_execution_id, s.stage_name, c.condition_type, r.rule_name),
                "pipelineVersion": state.pipeline_version,
                "stageName": s.stage_name,
                "ruleName": r.rule_name,
                "status": if c.status == "InProgress" { "InProgress" } else if r.passed { "Succeeded" } else { "Failed" },
                "output": {"executionResult": {"externalExecutionSummary": r.message}},
            }));
        }
    }
    Ok(json!({"ruleExecutionDetails": out}))
}
