//! CodeBuild (`CodeBuild_20161006.*`): BatchGetBuilds for the builds the
//! engine ran. A build id is `<project>:<action execution id>`, what
//! ListActionExecutions reports as `externalExecutionId`.

use serde_json::{Value, json};

use super::input::Input;
use super::logs::{Stream, streams};
use super::{AwsError, AwsResult, Caller, Ctx, epoch_secs};
use crate::api::types::ActionStatus;

const SERVICE: &str = "CodeBuild";

pub async fn call(ctx: &Ctx, caller: &Caller, op: &str, body: &Value) -> AwsResult {
    let i = Input::root(body)?;
    match op {
        "BatchGetBuilds" => batch_get_builds(ctx, caller, i).await,
        _ => Err(AwsError::not_built(SERVICE, op, "")),
    }
}

fn build_status(s: &Stream) -> &'static str {
    match s.action.status {
        ActionStatus::InProgress => "IN_PROGRESS",
        ActionStatus::Succeeded => "SUCCEEDED",
        ActionStatus::Abandoned => "STOPPED",
        ActionStatus::Failed => match s.action.error_details.as_ref().map(|e| e.code.as_str()) {
            Some(c) if c.contains("Timeout") || c.contains("TIMED_OUT") => "TIMED_OUT",
            _ => "FAILED",
        },
    }
}

/// The `Build` of one build action execution.
pub fn build_json(s: &Stream, build_number: usize) -> Value {
    let a = &s.action;
    let id = a.external_execution_id.clone().unwrap_or_default();
    let project = s.project.clone().unwrap_or_default();
    let start = epoch_secs(&a.start_time).unwrap_or(0.0);
    let done = a.status != ActionStatus::InProgress;
    let end = done.then(|| epoch_secs(&a.last_status_change).unwrap_or(start));
    // The engine keeps each phase's status and duration; start and end times
    // are laid end to end from the build's start.
    let mut at = start;
    let mut phases = Vec::new();
    let mut current = "COMPLETED".to_owned();
    for p in &a.phases {
        let secs = p.duration_ms as f64 / 1000.0;
        let mut ph = json!({
            "phaseType": p.phase_type,
            "phaseStatus": p.phase_status,
            "startTime": at,
            "durationInSeconds": (p.duration_ms / 1000),
        });
        if p.phase_status.is_some() {
            ph["endTime"] = json!(at + secs);
        } else if !done {
            current.clone_from(&p.phase_type);
        }
        if p.phase_status
            .as_deref()
            .is_some_and(|st| st != "SUCCEEDED")
            && let Some(e) = &a.error_details
        {
            ph["contexts"] = json!([{"statusCode": e.code, "message": e.message}]);
        }
        phases.push(ph);
        at += secs;
    }
    if !done && current == "COMPLETED" {
        current = a
            .phases
            .iter()
            .rev()
            .find(|p| p.phase_status.is_none())
            .map_or_else(|| "BUILD".to_owned(), |p| p.phase_type.clone());
    }
    if done {
        phases.push(json!({"phaseType": "COMPLETED", "startTime": end}));
    }
    let arn = format!(
        "arn:aws:codebuild:{}:{}:build/{id}",
        super::REGION,
        super::ACCOUNT
    );
    json!({
        "id": id,
        "arn": arn,
        "buildNumber": build_number,
        "startTime": start,
        "endTime": end,
        "currentPhase": current,
        "buildStatus": build_status(s),
        "projectName": project,
        "phases": phases,
        "logs": {
            "groupName": s.group,
            "streamName": s.name,
            "deepLink": format!("pipedeck://logs/{}", a.action_execution_id),
            "cloudWatchLogsArn": format!(
                "arn:aws:logs:{}:{}:log-group:{}:log-stream:{}",
                super::REGION, super::ACCOUNT, s.group, s.name
            ),
            "cloudWatchLogs": {"status": "ENABLED", "groupName": s.group, "streamName": s.name},
        },
        "buildComplete": done,
        "initiator": format!("codepipeline/{}", s.pipeline),
        "exportedEnvironmentVariables": a
            .output_variables
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect::<Vec<_>>(),
        "resolvedSourceVersion": a.resolved_configuration.get("SourceVersion"),
        "timeoutInMinutes": 60,
        "queuedTimeoutInMinutes": 480,
    })
}

async fn batch_get_builds(ctx: &Ctx, caller: &Caller, i: Input<'_>) -> AwsResult {
    let ids = i.strings_opt("ids")?.unwrap_or_default();
    if ids.is_empty() || ids.len() > 100 {
        return Err(AwsError::new(
            "InvalidInputException",
            "ids must hold 1 to 100 build ids",
        ));
    }
    let all = streams(ctx, caller).await?;
    let mut builds = Vec::new();
    let mut not_found = Vec::new();
    for id in ids {
        let found = all
            .iter()
            .filter(|s| s.project.is_some())
            .find(|s| s.action.external_execution_id.as_deref() == Some(id));
        match found {
            Some(s) => {
                let project = s.project.as_deref().unwrap_or("");
                let number = all
                    .iter()
                    .filter(|x| x.project.as_deref() == Some(project))
                    .position(|x| x.action.action_execution_id == s.action.action_execution_id)
                    .map_or(1, |p| p + 1);
                builds.push(build_json(s, number));
            }
            None => not_found.push(id),
        }
    }
    Ok(json!({"builds": builds, "buildsNotFound": not_found}))
}
