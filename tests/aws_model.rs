//! GetPipeline's V2 declaration (stage conditions with rules, triggers
//! with git filters) and GetPipelineState's condition states, from
//! recorded responses shaped as the AWS API reference shows them, mapped
//! into the model a local pipeline file gives. Nothing here reaches AWS.

#![allow(clippy::unwrap_used)]

mod aws_mocks;

use aws_mocks::*;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use pipedeck::api::{Reply, Request};
use pipedeck::backend::Backend;

/// A V2 declaration as GetPipeline returns it: stage conditions with rules
/// (beforeEntry, onSuccess, onFailure with its retry mode) and a git
/// trigger with push and pull-request filters.
const PIPELINE_V2: &str = r#"{
  "pipeline": {
    "name": "web", "roleArn": "arn:aws:iam::123456789012:role/cp", "version": 4,
    "pipelineType": "V2", "executionMode": "QUEUED",
    "artifactStore": {"type": "S3", "location": "artifacts-bucket"},
    "stages": [
      {"name": "Source", "actions": [{"name": "Src",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
        "runOrder": 1, "outputArtifacts": [{"name": "Out"}],
        "configuration": {"ConnectionArn": "arn:aws:codeconnections:eu-west-1:123456789012:connection/abc", "FullRepositoryId": "acme/web", "BranchName": "main"}}]},
      {"name": "Prod",
       "beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
         {"name": "BusinessHours", "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "DeploymentWindow", "version": "1"},
          "configuration": {"Cron": "0 0 9-17 ? * MON-FRI *", "TimeZone": "Europe/Berlin"}}]}]},
       "onSuccess": {"conditions": [{"result": "ROLLBACK", "rules": [
         {"name": "NoAlarms", "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CloudWatchAlarm", "version": "1"},
          "configuration": {"AlarmName": "web-5xx"}, "region": "eu-west-1", "roleArn": "arn:aws:iam::123456789012:role/rules"}]}]},
       "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"},
         "conditions": [{"result": "ROLLBACK", "rules": [
           {"name": "Smoke", "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["curl -fsS https://web.example/health"], "inputArtifacts": [{"name": "Out"}], "timeoutInMinutes": 5}]}]},
       "actions": [{"name": "Deploy",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
        "runOrder": 1, "inputArtifacts": [{"name": "Out"}],
        "configuration": {"ClusterName": "prod", "ServiceName": "web"}}]}
    ],
    "triggers": [{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
      "sourceActionName": "Src",
      "push": [{"branches": {"includes": ["main", "release/*"], "excludes": ["release/old"]},
                "filePaths": {"includes": ["src/**"]}},
               {"tags": {"includes": ["v*"]}}],
      "pullRequest": [{"events": ["OPEN", "UPDATED"], "branches": {"includes": ["main"]}}]}}]
  },
  "metadata": {"pipelineArn": "arn:aws:codepipeline:eu-west-1:123456789012:web", "created": 1764583200, "updated": 1764586800}
}"#;

#[tokio::test]
async fn get_pipeline_maps_v2_conditions_and_triggers_as_a_local_file_does() {
    let rule = mock!(aws_sdk_codepipeline::Client::get_pipeline)
        .sequence()
        .http_status(200, Some(PIPELINE_V2.into()))
        .build();
    let cp = mock_client!(
        aws_sdk_codepipeline,
        RuleMode::Sequential,
        &[&rule],
        no_retry_cp
    );
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(Some(cp), None, None).await, dir.path());
    let Reply::Pipeline { pipeline, .. } = b
        .call(Request::GetPipeline {
            pipeline_name: "web".into(),
            pipeline_version: None,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    let prod = &pipeline.stages[1];
    let before = &prod.before_entry.as_ref().expect("beforeEntry").conditions[0];
    assert_eq!(before.result.as_deref(), Some("FAIL"));
    assert_eq!(before.rules[0].name, "BusinessHours");
    assert_eq!(before.rules[0].rule_type_id.provider, "DeploymentWindow");
    assert_eq!(before.rules[0].configuration["TimeZone"], "Europe/Berlin");
    let ok = &prod.on_success.as_ref().expect("onSuccess").conditions[0];
    assert_eq!(ok.rules[0].rule_type_id.provider, "CloudWatchAlarm");
    assert_eq!(ok.rules[0].region.as_deref(), Some("eu-west-1"));
    let fail = prod.on_failure.as_ref().expect("onFailure");
    assert_eq!(fail.result.as_deref(), Some("RETRY"));
    assert_eq!(fail.retry_mode.as_deref(), Some("FAILED_ACTIONS"));
    let smoke = &fail.conditions[0].rules[0];
    assert_eq!(smoke.commands, ["curl -fsS https://web.example/health"]);
    assert_eq!(smoke.input_artifacts, ["Out"]);
    assert_eq!(smoke.timeout_in_minutes, Some(5));
    assert_eq!(pipeline.triggers.len(), 1);
    let tr = &pipeline.triggers[0];
    assert_eq!(tr.provider_type, "CodeStarSourceConnection");
    assert_eq!(tr.source_action_name, "Src");
    assert_eq!(tr.push.len(), 2);
    let br = tr.push[0].branches.as_ref().unwrap();
    assert_eq!(br.includes, ["main", "release/*"]);
    assert_eq!(br.excludes, ["release/old"]);
    assert_eq!(tr.push[0].file_paths.as_ref().unwrap().includes, ["src/**"]);
    assert_eq!(tr.push[1].tags.as_ref().unwrap().includes, ["v*"]);
    assert_eq!(tr.pull_request[0].events, ["OPEN", "UPDATED"]);
    // The same declaration as a workspace file reads into the same model:
    // the screens get conditions and triggers alike from either backend.
    let body: serde_json::Value = serde_json::from_str(PIPELINE_V2).unwrap();
    let file = serde_json::json!({"pipeline": body["pipeline"]}).to_string();
    let local = pipedeck::model::load::load_bytes("web.json", file.as_bytes(), &Default::default());
    let local = &local.pipelines[0].pipeline;
    assert_eq!(pipeline.stages, local.stages);
    assert_eq!(pipeline.triggers, local.triggers);
}

#[tokio::test]
async fn get_pipeline_state_maps_the_latest_condition_and_its_rules() {
    let body = r#"{"pipelineName": "web", "pipelineVersion": 4, "stageStates": [
      {"stageName": "Prod", "inboundTransitionState": {"enabled": true},
       "latestExecution": {"pipelineExecutionId": "e-9", "status": "InProgress"},
       "beforeEntryConditionState": {
         "latestExecution": {"status": "Failed", "summary": "FAIL"},
         "conditionStates": [{"latestExecution": {"status": "Failed", "summary": "FAIL"},
           "ruleStates": [{"ruleName": "BusinessHours",
             "latestExecution": {"status": "Failed", "summary": "outside the deployment window"}}]}]},
       "actionStates": [{"actionName": "Deploy"}]}]}"#;
    let rule = mock!(aws_sdk_codepipeline::Client::get_pipeline_state)
        .sequence()
        .http_status(200, Some(body.into()))
        .build();
    let cp = mock_client!(
        aws_sdk_codepipeline,
        RuleMode::Sequential,
        &[&rule],
        no_retry_cp
    );
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(Some(cp), None, None).await, dir.path());
    let Reply::State { state } = b
        .call(Request::GetPipelineState {
            pipeline_name: "web".into(),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    let c = state.stage_states[0]
        .condition
        .as_ref()
        .expect("a condition");
    assert_eq!(c.condition_type, "BEFORE_ENTRY");
    assert_eq!(c.status, "Failed");
    assert_eq!(c.result.as_deref(), Some("FAIL"));
    assert_eq!(c.rules.len(), 1);
    assert_eq!(c.rules[0].rule_name, "BusinessHours");
    assert!(!c.rules[0].passed);
    assert_eq!(c.rules[0].message, "outside the deployment window");
}
