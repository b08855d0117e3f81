//! The AWS backend against recorded responses (aws-smithy-mocks answering
//! with HTTP bodies shaped as the AWS API reference shows them, so the
//! SDK's real deserializer and error parser run) and against moto's server
//! (`moto_server` from the test venv, `PIPEDECK_TEST_VENV`, on a free
//! loopback port). Nothing here reaches AWS: endpoints are 127.0.0.1,
//! credentials are static dummies, retries are off.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_smithy_mocks::{RuleMode, mock, mock_client};
use pipedeck::api::types::StageStatus;
use pipedeck::api::{EngineEvent, LogRef, Reply, Request};
use pipedeck::aws::account::Intervals;
use pipedeck::aws::{AwsTarget, Clients};
use pipedeck::backend::Backend;
use pipedeck::backend::aws::AwsBackend;

// ------------------------------------------------------------ helpers

fn target(label: &str) -> AwsTarget {
    AwsTarget {
        label: label.into(),
        profile: Some(label.into()),
        region: Some("eu-west-1".into()),
        no_retries: true,
        ..AwsTarget::default()
    }
}

/// Clients for the services a test mocks; the others go to a port that
/// refuses connections.
async fn clients(
    cp: Option<aws_sdk_codepipeline::Client>,
    logs: Option<aws_sdk_cloudwatchlogs::Client>,
    ct: Option<aws_sdk_cloudtrail::Client>,
) -> Clients {
    let conf = Clients::static_conf("http://127.0.0.1:1", "eu-west-1").await;
    let mut c = Clients::from_conf(&conf, Some("prod".into()));
    if let Some(cp) = cp {
        c.codepipeline = cp;
    }
    if let Some(l) = logs {
        c.logs = l;
    }
    if let Some(t) = ct {
        c.cloudtrail = t;
    }
    c
}

fn dynb(b: &AwsBackend) -> &dyn Backend {
    b
}

fn resp<O, E>(body: String) -> aws_smithy_mocks::MockResponse<O, E> {
    aws_smithy_mocks::MockResponse::Http(aws_smithy_runtime_api::http::Response::new(
        200.try_into().unwrap(),
        aws_smithy_types::body::SdkBody::from(body),
    ))
}

fn no_retry_cp(b: aws_sdk_codepipeline::config::Builder) -> aws_sdk_codepipeline::config::Builder {
    b.retry_config(aws_sdk_codepipeline::config::retry::RetryConfig::disabled())
}

fn fast() -> Intervals {
    Intervals {
        running: Duration::from_secs(1),
        idle: Duration::from_secs(60),
        list: Duration::from_secs(300),
        rate: 50.0,
        burst: 50.0,
    }
}

fn backend(c: Clients, dir: &Path) -> AwsBackend {
    AwsBackend::with_clients(
        vec![(target("prod"), c)],
        fast(),
        dir.to_path_buf(),
        "pipedeck-test",
    )
}

const STATE_RUNNING: &str = r#"{
  "pipelineName": "web", "pipelineVersion": 3,
  "stageStates": [
    {"stageName": "Source",
     "inboundTransitionState": {"enabled": true},
     "latestExecution": {"pipelineExecutionId": "e-1", "status": "Succeeded"},
     "actionStates": [{"actionName": "Src", "latestExecution": {"actionExecutionId": "a-1", "status": "Succeeded", "lastStatusChange": 1764583200}}]},
    {"stageName": "Approve",
     "inboundTransitionState": {"enabled": true},
     "latestExecution": {"pipelineExecutionId": "e-1", "status": "InProgress"},
     "actionStates": [{"actionName": "Manual", "latestExecution": {"actionExecutionId": "a-2", "status": "InProgress", "token": "tok-123", "lastStatusChange": 1764583260}}]}
  ]
}"#;

const STATE_DONE: &str = r#"{
  "pipelineName": "web", "pipelineVersion": 3,
  "stageStates": [
    {"stageName": "Source",
     "inboundTransitionState": {"enabled": true},
     "latestExecution": {"pipelineExecutionId": "e-1", "status": "Succeeded"},
     "actionStates": [{"actionName": "Src", "latestExecution": {"actionExecutionId": "a-1", "status": "Succeeded"}}]},
    {"stageName": "Approve",
     "inboundTransitionState": {"enabled": false, "disabledReason": "freeze", "lastChangedBy": "alice"},
     "latestExecution": {"pipelineExecutionId": "e-1", "status": "Succeeded"},
     "actionStates": [{"actionName": "Manual", "latestExecution": {"actionExecutionId": "a-2", "status": "Succeeded", "summary": "ok"}}]}
  ]
}"#;

fn json_err(kind: &str, msg: &str) -> String {
    format!(r#"{{"__type":"{kind}","message":"{msg}"}}"#)
}

// ------------------------------------------------------------ recorded

#[tokio::test]
async fn get_pipeline_state_maps_stages_actions_and_the_approval_token() {
    let rule = mock!(aws_sdk_codepipeline::Client::get_pipeline_state)
        .sequence()
        .http_status(200, Some(STATE_RUNNING.into()))
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
    assert_eq!(state.pipeline_version, 3);
    assert_eq!(state.stage_states.len(), 2);
    let appr = &state.stage_states[1];
    assert_eq!(appr.stage_name, "Approve");
    assert_eq!(
        appr.latest_execution.as_ref().unwrap().status,
        StageStatus::InProgress
    );
    let x = appr.action_states[0].latest_execution.as_ref().unwrap();
    assert_eq!(x.token.as_deref(), Some("tok-123"));
    assert_eq!(x.pipeline_execution_id, "e-1");
    assert_eq!(x.last_status_change, "2025-12-01T10:01:00Z");
    // A second read within the interval is the cache: no call.
    b.call(Request::GetPipelineState {
        pipeline_name: "web".into(),
    })
    .await
    .unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn throttling_backs_off_with_jitter_and_recovers() {
    let rule = mock!(aws_sdk_codepipeline::Client::get_pipeline_state)
        .sequence()
        .http_status(400, Some(json_err("ThrottlingException", "Rate exceeded")))
        .times(2)
        .http_status(200, Some(STATE_RUNNING.into()))
        .build();
    let cp = mock_client!(
        aws_sdk_codepipeline,
        RuleMode::Sequential,
        &[&rule],
        no_retry_cp
    );
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(Some(cp), None, None).await, dir.path());
    let t0 = Instant::now();
    let r = b
        .call(Request::GetPipelineState {
            pipeline_name: "web".into(),
        })
        .await
        .unwrap();
    let waited = t0.elapsed();
    let Reply::State { state } = r else { panic!() };
    assert_eq!(
        state.stage_states[1].stage_name, "Approve",
        "content, not {{}}"
    );
    assert_eq!(rule.num_calls(), 3);
    let a = b.accounts().next().unwrap();
    assert_eq!(a.budget.throttles(), 2);
    // 0.25–0.5 s, then 0.5–1 s.
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
    assert!(waited <= Duration::from_millis(2500), "{waited:?}");
    assert!(b.describe().contains("updates slowed"), "{}", b.describe());
}

/// The header and footer learn it live: a `BackendStatus` event when the
/// poller's calls are throttled, another when updates are normal again.
#[tokio::test]
async fn throttled_polling_is_announced_and_so_is_the_recovery() {
    let state = mock!(aws_sdk_codepipeline::Client::get_pipeline_state)
        .sequence()
        .http_status(400, Some(json_err("ThrottlingException", "Rate exceeded")))
        .times(2)
        .http_status(200, Some(STATE_RUNNING.into()))
        .repeatedly()
        .build();
    let list = mock!(aws_sdk_codepipeline::Client::list_pipelines)
        .sequence()
        .http_status(
            200,
            Some(r#"{"pipelines":[{"name":"web","version":3,"pipelineType":"V2","executionMode":"QUEUED"}]}"#.into()),
        )
        .repeatedly()
        .build();
    let cp = mock_client!(
        aws_sdk_codepipeline,
        RuleMode::MatchAny,
        &[&state, &list],
        no_retry_cp
    );
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(Some(cp), None, None).await, dir.path());
    assert!(!b.describe().contains("slowed"), "{}", b.describe());
    let mut ev = b.subscribe().await.unwrap();
    let mut notes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(5), ev.next()).await else {
            continue;
        };
        if let EngineEvent::BackendStatus { description, note } = e {
            let normal = note.is_none();
            notes.push((description, note));
            if normal && notes.iter().any(|(_, n)| n.is_some()) {
                break;
            }
        }
    }
    let slowed = notes
        .iter()
        .position(|(d, n)| {
            n.as_deref() == Some("updates slowed (throttled)") && d.contains("updates slowed")
        })
        .unwrap_or_else(|| panic!("a slowed status: {notes:?}"));
    let normal = notes
        .iter()
        .rposition(|(d, n)| n.is_none() && !d.contains("slowed"))
        .unwrap_or_else(|| panic!("back to normal: {notes:?}"));
    assert!(slowed < normal, "{notes:?}");
    assert!(notes[normal].0.starts_with("AWS prod"), "{notes:?}");
    assert!(state.num_calls() >= 4, "{} calls", state.num_calls());
    b.close().await;
}

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

#[tokio::test]
async fn expired_token_and_access_denied_say_what_to_do() {
    let expired = mock!(aws_sdk_codepipeline::Client::list_pipelines)
        .sequence()
        .http_status(
            400,
            Some(json_err(
                "ExpiredTokenException",
                "The security token included in the request is expired",
            )),
        )
        .build();
    let denied = mock!(aws_sdk_codepipeline::Client::get_pipeline_state)
        .sequence()
        .http_status(
            400,
            Some(json_err(
                "AccessDeniedException",
                "User: arn:aws:sts::123456789012:assumed-role/ReadOnly/alice is not authorized to perform: codepipeline:GetPipelineState on resource: arn:aws:codepipeline:eu-west-1:123456789012:web",
            )),
        )
        .build();
    let cp = mock_client!(
        aws_sdk_codepipeline,
        RuleMode::MatchAny,
        &[&expired, &denied],
        no_retry_cp
    );
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(Some(cp), None, None).await, dir.path());
    let e = b.call(Request::list_pipelines()).await.unwrap_err();
    assert_eq!(e.code, "ExpiredTokenException");
    assert!(e.message.contains("aws sso login --profile prod"), "{e}");
    let e = b
        .call(Request::GetPipelineState {
            pipeline_name: "web".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    assert!(
        e.message.contains("needs codepipeline:GetPipelineState"),
        "{e}"
    );
    assert!(e.message.contains("assumed-role/ReadOnly/alice"), "{e}");
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(None, None, None).await, dir.path());
    let e = b.call(Request::list_pipelines()).await.unwrap_err();
    assert_eq!(e.code, "EndpointUnreachable", "{e}");
    assert!(e.message.contains("Connection refused"), "{e}");
}

#[tokio::test]
async fn approving_takes_the_token_from_get_pipeline_state() {
    let state = mock!(aws_sdk_codepipeline::Client::get_pipeline_state)
        .sequence()
        .http_status(200, Some(STATE_RUNNING.into()))
        .repeatedly()
        .build();
    let approve = mock!(aws_sdk_codepipeline::Client::put_approval_result)
        .match_requests(|r| {
            r.token() == Some("tok-123")
                && r.stage_name() == Some("Approve")
                && r.result()
                    .is_some_and(|x| x.status().as_str() == "Approved")
        })
        .sequence()
        .http_status(200, Some(r#"{"approvedAt": 1764583300}"#.into()))
        .build();
    let retry = mock!(aws_sdk_codepipeline::Client::retry_stage_execution)
        .sequence()
        .http_status(
            400,
            Some(json_err(
                "StageNotRetryableException",
                "Stage is not in a retryable state",
            )),
        )
        .build();
    let cp = mock_client!(
        aws_sdk_codepipeline,
        RuleMode::MatchAny,
        &[&approve, &retry, &state],
        no_retry_cp
    );
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(Some(cp), None, None).await, dir.path());
    let r = b
        .call(Request::PutApprovalResult {
            pipeline_name: "web".into(),
            stage_name: "Approve".into(),
            action_name: "Manual".into(),
            token: None,
            status: "Approved".into(),
            summary: "ship it".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        r,
        Reply::ApprovalRecorded {
            approved_at: "2025-12-01T10:01:40Z".into()
        }
    );
    assert_eq!(approve.num_calls(), 1);
    let e = b
        .call(Request::RetryStageExecution {
            pipeline_name: "web".into(),
            stage_name: "Approve".into(),
            pipeline_execution_id: Some("e-1".into()),
            retry_mode: "FAILED_ACTIONS".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, "StageNotRetryableException", "AWS's name, as it is");
    // Both went to the local audit trail.
    let trail = std::fs::read_to_string(dir.path().join("aws/audit.jsonl")).unwrap();
    assert!(trail.contains("PutApprovalResult"), "{trail}");
    assert!(trail.contains("StageNotRetryableException"), "{trail}");
}

#[tokio::test]
async fn the_poller_turns_state_changes_into_engine_events() {
    let flip = Arc::new(AtomicBool::new(false));
    let f = flip.clone();
    let state =
        mock!(aws_sdk_codepipeline::Client::get_pipeline_state).then_compute_response(move |_| {
            let body = if f.load(Ordering::SeqCst) {
                STATE_DONE
            } else {
                STATE_RUNNING
            };
            aws_smithy_mocks::MockResponse::Http(aws_smithy_runtime_api::http::Response::new(
                200.try_into().unwrap(),
                aws_smithy_types::body::SdkBody::from(body),
            ))
        });
    let list = mock!(aws_sdk_codepipeline::Client::list_pipelines)
        .sequence()
        .http_status(
            200,
            Some(r#"{"pipelines":[{"name":"web","version":3,"pipelineType":"V2","executionMode":"QUEUED"}]}"#.into()),
        )
        .repeatedly()
        .build();
    let execs = mock!(aws_sdk_codepipeline::Client::list_pipeline_executions)
        .sequence()
        .http_status(
            200,
            Some(r#"{"pipelineExecutionSummaries":[{"pipelineExecutionId":"e-1","status":"InProgress","startTime":1764583200,"lastUpdateTime":1764583260}]}"#.into()),
        )
        .repeatedly()
        .build();
    let cp = mock_client!(
        aws_sdk_codepipeline,
        RuleMode::MatchAny,
        &[&state, &list, &execs],
        no_retry_cp
    );
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(Some(cp), None, None).await, dir.path());
    let mut ev = b.subscribe().await.unwrap();
    // The first reads are the baseline.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let changed_at = Instant::now();
    flip.store(true, Ordering::SeqCst);
    let mut got = Vec::new();
    let mut first_change = None;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(4), ev.next()).await {
        first_change.get_or_insert_with(|| changed_at.elapsed());
        let done = matches!(e, EngineEvent::ExecutionChanged { .. });
        got.push(e);
        if done {
            break;
        }
    }
    let latency = first_change.expect("an event");
    println!("time from a stage's change to its event: {latency:?} (running interval 1 s)");
    assert!(latency <= Duration::from_millis(2500), "{latency:?}");
    assert!(got.iter().any(|e| matches!(e,
        EngineEvent::StageChanged { stage_name, status: StageStatus::Succeeded, .. } if stage_name == "Approve")), "{got:?}");
    assert!(got.iter().any(|e| matches!(e,
        EngineEvent::TransitionChanged { stage_name, state, .. } if stage_name == "Approve" && !state.enabled)), "{got:?}");
    assert!(got.iter().any(|e| matches!(e, EngineEvent::ActionChanged { action } if action.summary.as_deref() == Some("ok"))), "{got:?}");
    assert!(got.iter().any(|e| matches!(e, EngineEvent::ExecutionChanged { execution } if execution.pipeline_execution_id == "e-1")), "{got:?}");
    b.close().await;
}

/// A CloudTrail event as LookupEvents returns it: `CloudTrailEvent` is the
/// record as a JSON string.
fn trail_event(id: &str, name: &str, source: &str, code: Option<&str>, msg: &str) -> String {
    let record = serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:AWSCodeBuild-0f3c",
            "arn": "arn:aws:sts::123456789012:assumed-role/codebuild-web-role/AWSCodeBuild-0f3c",
            "accountId": "123456789012"
        },
        "eventTime": "2026-12-01T10:03:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "codebuild.amazonaws.com",
        "userAgent": "aws-cli/2.15",
        "errorCode": code,
        "errorMessage": msg,
        "requestParameters": {"repositoryName": "web"},
        "eventType": "AwsApiCall"
    });
    serde_json::json!({
        "EventId": id,
        "EventName": name,
        "ReadOnly": "false",
        "EventTime": 1764583380,
        "EventSource": source,
        "Username": "AWSCodeBuild-0f3c",
        "Resources": [{"ResourceType": "AWS::ECR::Repository", "ResourceName": "arn:aws:ecr:eu-west-1:123456789012:repository/web"}],
        "CloudTrailEvent": record.to_string()
    })
    .to_string()
}

#[tokio::test]
async fn cloudtrail_access_denied_becomes_the_permission_finding() {
    let page = format!(
        r#"{{"Events":[{},{}]}}"#,
        trail_event(
            "ev-1",
            "PutImage",
            "ecr.amazonaws.com",
            Some("AccessDenied"),
            "User: arn:aws:sts::123456789012:assumed-role/codebuild-web-role/AWSCodeBuild-0f3c is not authorized to perform: ecr:PutImage on resource: arn:aws:ecr:eu-west-1:123456789012:repository/web because no identity-based policy allows the ecr:PutImage action"
        ),
        trail_event(
            "ev-2",
            "GetAuthorizationToken",
            "ecr.amazonaws.com",
            None,
            ""
        )
    );
    let rule = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| {
            r.lookup_attributes()
                .first()
                .is_some_and(|a| a.attribute_value() == "AWSCodeBuild-0f3c")
        })
        .sequence()
        .http_status(200, Some(page))
        .build();
    let ct = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, &[&rule]);
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(None, None, Some(ct)).await, dir.path());
    let a = b.accounts().next().unwrap();
    let build = pipedeck::aws::logs::BuildInfo {
        id: "web:0f3c".into(),
        start_ms: Some(1_764_583_200_000),
        end_ms: Some(1_764_583_400_000),
        ..Default::default()
    };
    // An hour later: nothing may still be arriving.
    let (failed, findings) = a
        .build_trail(&build, 1_764_583_400_000 + 3_600_000)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "only the failed call");
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(failed[0].error_code.as_deref(), Some("AccessDenied"));
    // The same diagnosis module, through the records it takes.
    let catalogue = pipedeck::diagnose::Catalogue::builtin();
    let found = pipedeck::diagnose::diagnose(
        &pipedeck::diagnose::Input {
            audit: &failed,
            ..Default::default()
        },
        &catalogue,
    );
    let f = found
        .iter()
        .find(|f| f.rule == "aws.access_denied")
        .unwrap_or_else(|| panic!("{found:#?}"));
    assert!(f.title.contains("ecr:PutImage"), "{}", f.title);
    assert!(f.title.contains("codebuild-web-role"), "{}", f.title);
    assert!(f.fix.contains(r#""Action": "ecr:PutImage""#), "{}", f.fix);
    assert!(
        f.fix
            .contains("arn:aws:ecr:eu-west-1:123456789012:repository/web"),
        "{}",
        f.fix
    );
}

#[tokio::test]
async fn a_terse_denial_is_put_in_iams_words() {
    let page = format!(
        r#"{{"Events":[{}]}}"#,
        trail_event(
            "ev-3",
            "PutImage",
            "ecr.amazonaws.com",
            Some("AccessDenied"),
            "Access Denied"
        )
    );
    let rule = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .sequence()
        .http_status(200, Some(page))
        .build();
    let ct = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, &[&rule]);
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(None, None, Some(ct)).await, dir.path());
    let build = pipedeck::aws::logs::BuildInfo {
        id: "web:0f3c".into(),
        start_ms: Some(0),
        end_ms: Some(0),
        ..Default::default()
    };
    let (failed, _) = b
        .accounts()
        .next()
        .unwrap()
        .build_trail(&build, 3_600_000)
        .await
        .unwrap();
    let m = failed[0].error_message.as_deref().unwrap();
    assert!(
        m.starts_with("User: arn:aws:sts::123456789012:assumed-role/codebuild-web-role/AWSCodeBuild-0f3c is not authorized to perform: ecr:PutImage on resource: arn:aws:ecr:eu-west-1:123456789012:repository/web"),
        "{m}"
    );
}

#[tokio::test]
async fn an_empty_cloudtrail_answer_may_still_be_arriving() {
    let rule = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .sequence()
        .http_status(200, Some(r#"{"Events":[]}"#.into()))
        .build();
    let ct = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, &[&rule]);
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(None, None, Some(ct)).await, dir.path());
    let build = pipedeck::aws::logs::BuildInfo {
        id: "web:0f3c".into(),
        start_ms: Some(1_000_000),
        end_ms: Some(2_000_000),
        ..Default::default()
    };
    // Two minutes after the build ended.
    let (failed, findings) = b
        .accounts()
        .next()
        .unwrap()
        .build_trail(&build, 2_000_000 + 120_000)
        .await
        .unwrap();
    assert!(failed.is_empty());
    assert_eq!(rule.num_calls(), 1);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].title.contains("may still be arriving"),
        "{findings:?}"
    );
    assert!(
        findings[0].fix.contains("diagnose again in 14 minute"),
        "{findings:?}"
    );
    assert!(
        !findings.iter().any(|f| f.title.contains("no permission")),
        "never a clean bill from an empty answer"
    );
}

#[tokio::test]
async fn get_log_events_follows_the_token_rule_and_mirrors_locally() {
    // Page 1 (no token) → f/1; page 2 (f/1) → f/2; page 3 (f/2) → f/2 (end).
    let p1 = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
        .match_requests(|r| r.next_token().is_none() && r.start_from_head() == Some(true))
        .sequence()
        .http_status(200, Some(r#"{"events":[{"timestamp":1,"message":"[Container] Phase BUILD\n"},{"timestamp":2,"message":"line 2"}],"nextForwardToken":"f/1","nextBackwardToken":"b/0"}"#.into()))
        .build();
    let p2 = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
        .match_requests(|r| r.next_token() == Some("f/1") && r.start_from_head() == Some(true))
        .sequence()
        .http_status(200, Some(r#"{"events":[{"timestamp":3,"message":"error: boom"}],"nextForwardToken":"f/2","nextBackwardToken":"b/1"}"#.into()))
        .build();
    let p3 = mock!(aws_sdk_cloudwatchlogs::Client::get_log_events)
        .match_requests(|r| r.next_token() == Some("f/2") && r.start_from_head() == Some(true))
        .sequence()
        .http_status(
            200,
            Some(r#"{"events":[],"nextForwardToken":"f/2","nextBackwardToken":"b/2"}"#.into()),
        )
        .repeatedly()
        .build();
    let logs = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, &[&p1, &p2, &p3]);
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(None, Some(logs), None).await, dir.path());
    let log = LogRef::Stream {
        log_group_name: "/custom/web".into(),
        log_stream_name: "build/0f3c".into(),
    };
    let page = dynb(&b).read_log(&log, Some(0), 100).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(
        page.lines,
        vec!["[Container] Phase BUILD", "line 2", "error: boom"]
    );
    assert_eq!((p1.num_calls(), p2.num_calls(), p3.num_calls()), (1, 1, 1));
    let hits = dynb(&b).search_log(&log, "error", false).await.unwrap();
    assert_eq!(hits, vec![2]);
    // Reading again continues from the kept token: no line twice.
    let page = dynb(&b).read_log(&log, None, 10).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(p1.num_calls(), 1, "the mirror starts from its cache");
    let mirror = dir.path().join("aws/prod/eu-west-1/logs");
    assert!(
        std::fs::read_dir(&mirror)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".idx")),
        "the local log store's format"
    );
}

/// The TUI's refresh: ListPipelines, then every state and execution list.
async fn refresh(b: &AwsBackend) -> usize {
    let b: &dyn Backend = b;
    let mut n = 0usize;
    if let Ok(Reply::Pipelines { pipelines, .. }) = b.call(Request::list_pipelines()).await {
        n += 1;
        for p in pipelines {
            let _ = b
                .call(Request::GetPipelineState {
                    pipeline_name: p.name.clone(),
                })
                .await;
            let _ = b.call(Request::list_executions(&p.name, 50)).await;
            n += 2;
        }
    }
    n
}

/// The benchmark: calls per minute for one running pipeline among 50 idle
/// ones, beside a naive console's polling (ListPipelines, then GetPipeline
/// and GetPipelineState of every pipeline, every refresh) measured in the
/// same run against the same recorded answers.
#[tokio::test]
async fn benchmark_calls_per_minute_one_running_among_fifty_idle() {
    let names: Vec<String> = (0..51).map(|i| format!("svc-{i:02}")).collect();
    let list_body = serde_json::json!({
        "pipelines": names.iter().map(|n| serde_json::json!({"name": n, "version": 1})).collect::<Vec<_>>()
    })
    .to_string();
    let calls = Arc::new(AtomicUsize::new(0));
    let (c1, c2, c3, c4) = (calls.clone(), calls.clone(), calls.clone(), calls.clone());
    let list =
        mock!(aws_sdk_codepipeline::Client::list_pipelines).then_compute_response(move |_| {
            c1.fetch_add(1, Ordering::Relaxed);
            resp(list_body.clone())
        });
    let state = mock!(aws_sdk_codepipeline::Client::get_pipeline_state).then_compute_response(move |r| {
        c2.fetch_add(1, Ordering::Relaxed);
        let running = r.name() == Some("svc-00");
        resp(serde_json::json!({
            "pipelineName": r.name(), "pipelineVersion": 1,
            "stageStates": [{"stageName": "Build",
                "latestExecution": {"pipelineExecutionId": "e", "status": if running {"InProgress"} else {"Succeeded"}},
                "actionStates": [{"actionName": "B", "latestExecution": {"actionExecutionId": "x", "status": if running {"InProgress"} else {"Succeeded"}}}]}]
        }).to_string())
    });
    let execs = mock!(aws_sdk_codepipeline::Client::list_pipeline_executions).then_compute_response(move |_| {
        c3.fetch_add(1, Ordering::Relaxed);
        resp(r#"{"pipelineExecutionSummaries":[{"pipelineExecutionId":"e","status":"Succeeded"}]}"#.into())
    });
    let get = mock!(aws_sdk_codepipeline::Client::get_pipeline).then_compute_response(move |r| {
        c4.fetch_add(1, Ordering::Relaxed);
        resp(serde_json::json!({"pipeline": {"name": r.name(), "roleArn": "arn:aws:iam::1:role/r", "version": 1, "stages": []}}).to_string())
    });
    let cp = mock_client!(
        aws_sdk_codepipeline,
        RuleMode::MatchAny,
        &[&list, &state, &execs, &get],
        no_retry_cp
    );
    let window = Duration::from_secs(15);
    let per_minute = |n: usize| n as f64 * 60.0 / window.as_secs_f64();

    // Baseline: a console refreshing everything every 3 s.
    calls.store(0, Ordering::Relaxed);
    let t0 = Instant::now();
    while t0.elapsed() < window {
        let l = cp.list_pipelines().send().await.unwrap();
        for p in l.pipelines() {
            let n = p.name().unwrap();
            cp.get_pipeline().name(n).send().await.unwrap();
            cp.get_pipeline_state().name(n).send().await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let naive = per_minute(calls.load(Ordering::Relaxed));

    // pipedeck: the poller (3 s running, 60 s idle) with the TUI's own
    // refresh (ListPipelines + every state + executions) on every event
    // and every second, all answered through the cache.
    calls.store(0, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let iv = Intervals {
        rate: 50.0,
        burst: 60.0,
        ..Intervals::default()
    };
    let b = AwsBackend::with_clients(
        vec![(target("prod"), clients(Some(cp), None, None).await)],
        iv,
        dir.path().to_path_buf(),
        "bench",
    );
    let _ev = b.subscribe().await.unwrap();
    // Warm-up: the first read of every pipeline (list, 51 states, 51
    // execution lists), counted apart.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(4) {
        refresh(&b).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let warmup = calls.swap(0, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut tui_calls = 0usize;
    while t0.elapsed() < window {
        tui_calls += refresh(&b).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ours = per_minute(calls.load(Ordering::Relaxed));
    // In steady state only the running pipeline is polled (every 3 s);
    // each idle one once a minute.
    println!(
        "calls/minute, 1 running among 50 idle, {}s window: pipedeck {ours:.0} in steady state (+{warmup} calls once at start; the screen asked {:.0}/min, answered from the cache) vs a naive console {naive:.0}",
        window.as_secs(),
        per_minute(tui_calls)
    );
    assert!(ours < naive / 3.0, "ours {ours} naive {naive}");
    b.close().await;
}

// ------------------------------------------------------------ moto

struct Moto {
    child: Child,
    url: String,
    venv: PathBuf,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn venv() -> Option<PathBuf> {
    let v = std::env::var_os("PIPEDECK_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test"));
    v.join("bin/moto_server").is_file().then_some(v)
}

fn moto() -> Option<Moto> {
    let Some(venv) = venv() else {
        eprintln!("SKIPPED: no moto_server (set PIPEDECK_TEST_VENV; scripts/test makes the venv)");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(venv.join("bin/moto_server"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let m = Moto {
        child,
        url: format!("http://127.0.0.1:{port}"),
        venv,
    };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(m)
}

impl Moto {
    /// The real AWS CLI against moto, never against AWS.
    fn aws(&self, args: &[&str]) -> String {
        let tmp = tempfile::tempdir().unwrap();
        let out = Command::new(self.venv.join("bin/aws"))
            .arg("--endpoint-url")
            .arg(&self.url)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "eu-west-1")
            .env("AWS_CONFIG_FILE", tmp.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                tmp.path().join("credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn backend(&self, dir: &Path) -> AwsBackend {
        let conf = Clients::static_conf(&self.url, "eu-west-1").await;
        AwsBackend::with_clients(
            vec![(
                target("moto"),
                Clients::from_conf(&conf, Some("moto".into())),
            )],
            fast(),
            dir.to_path_buf(),
            "pipedeck-test",
        )
    }
}

const MOTO_PIPELINE: &str = r#"{"pipeline":{"name":"web","roleArn":"arn:aws:iam::123456789012:role/cp","artifactStore":{"type":"S3","location":"bucket"},"stages":[
 {"name":"Source","actions":[{"name":"Src","actionTypeId":{"category":"Source","owner":"AWS","provider":"S3","version":"1"},"configuration":{"S3Bucket":"b","S3ObjectKey":"k"},"outputArtifacts":[{"name":"src"}]}]},
 {"name":"Build","actions":[{"name":"Build","actionTypeId":{"category":"Build","owner":"AWS","provider":"CodeBuild","version":"1"},"configuration":{"ProjectName":"web"},"inputArtifacts":[{"name":"src"}]}]}]}}"#;

#[tokio::test]
async fn moto_pipelines_appear_with_their_executions() {
    let Some(m) = moto() else { return };
    m.aws(&[
        "iam", "create-role", "--role-name", "cp",
        "--assume-role-policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codepipeline.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json");
    std::fs::write(&file, MOTO_PIPELINE).unwrap();
    m.aws(&[
        "codepipeline",
        "create-pipeline",
        "--cli-input-json",
        &format!("file://{}", file.display()),
    ]);
    let started = m.aws(&[
        "codepipeline",
        "start-pipeline-execution",
        "--name",
        "web",
        "--query",
        "pipelineExecutionId",
        "--output",
        "text",
    ]);
    let id = started.trim().to_owned();
    let b = m.backend(dir.path()).await;
    let Reply::Pipelines { pipelines, .. } = b.call(Request::list_pipelines()).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(pipelines.len(), 1);
    assert_eq!(pipelines[0].name, "web");
    assert_eq!(pipelines[0].version, 1);
    let latest = pipelines[0]
        .latest_execution
        .as_ref()
        .expect("its execution");
    assert_eq!(latest.pipeline_execution_id, id);
    let Reply::Pipeline { pipeline, metadata } = b
        .call(Request::GetPipeline {
            pipeline_name: "web".into(),
            pipeline_version: None,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(metadata.pipeline_version, 1);
    let stages: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(stages, ["Source", "Build"]);
    assert_eq!(pipeline.stages[1].actions[0].provider(), "CodeBuild");
    assert_eq!(
        pipeline.stages[1].actions[0]
            .configuration
            .get("ProjectName")
            .map(String::as_str),
        Some("web")
    );
    let e = dynb(&b).execution("web", &id).await.unwrap();
    assert_eq!(e.pipeline_execution_id, id);
    assert_eq!(e.pipeline_name, "web");
    // What moto lacks answers an HTML 500: an error that says so.
    let err = b
        .call(Request::GetPipelineState {
            pipeline_name: "web".into(),
        })
        .await
        .unwrap_err();
    assert!(!err.code.is_empty() && !err.message.is_empty(), "{err}");
}

#[tokio::test]
async fn moto_a_log_stream_is_backfilled_and_followed_by_the_token_rule() {
    let Some(m) = moto() else { return };
    m.aws(&[
        "logs",
        "create-log-group",
        "--log-group-name",
        "/aws/codebuild/web",
    ]);
    m.aws(&[
        "logs",
        "create-log-stream",
        "--log-group-name",
        "/aws/codebuild/web",
        "--log-stream-name",
        "0f3c",
    ]);
    // CloudWatch Logs refuses events older than 14 days.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let put = |from: usize, to: usize| {
        let events: Vec<serde_json::Value> = (from..to)
            .map(|i| serde_json::json!({"timestamp": now_ms + i as u64, "message": format!("line {i}")}))
            .collect();
        m.aws(&[
            "logs",
            "put-log-events",
            "--log-group-name",
            "/aws/codebuild/web",
            "--log-stream-name",
            "0f3c",
            "--log-events",
            &serde_json::to_string(&events).unwrap(),
        ]);
    };
    put(0, 3);
    let dir = tempfile::tempdir().unwrap();
    let b = m.backend(dir.path()).await;
    let log = LogRef::Stream {
        log_group_name: "/aws/codebuild/web".into(),
        log_stream_name: "0f3c".into(),
    };
    let page = dynb(&b).read_log(&log, Some(0), 100).await.unwrap();
    assert_eq!(page.lines, ["line 0", "line 1", "line 2"]);
    put(3, 5);
    let page = dynb(&b).read_log(&log, Some(0), 100).await.unwrap();
    assert_eq!(page.total, 5, "{:?}", page.lines);
    assert_eq!(
        page.lines[3..],
        ["line 3", "line 4"],
        "followed, no line twice"
    );
    // A reopened log starts from the mirror and its token.
    let b2 = m.backend(dir.path()).await;
    let page = dynb(&b2).read_log(&log, None, 2).await.unwrap();
    assert_eq!((page.total, page.start), (5, 3));
    assert_eq!(page.lines, ["line 3", "line 4"]);
}

#[tokio::test]
async fn an_unreachable_account_never_blocks_the_others() {
    let list = mock!(aws_sdk_codepipeline::Client::list_pipelines)
        .sequence()
        .http_status(
            200,
            Some(r#"{"pipelines":[{"name":"web","version":2,"pipelineType":"V2"}]}"#.into()),
        )
        .repeatedly()
        .build();
    let execs = mock!(aws_sdk_codepipeline::Client::list_pipeline_executions)
        .sequence()
        .http_status(200, Some(r#"{"pipelineExecutionSummaries":[]}"#.into()))
        .repeatedly()
        .build();
    let state = mock!(aws_sdk_codepipeline::Client::get_pipeline_state)
        .sequence()
        .http_status(200, Some(STATE_RUNNING.into()))
        .repeatedly()
        .build();
    let cp = mock_client!(
        aws_sdk_codepipeline,
        RuleMode::MatchAny,
        &[&list, &execs, &state],
        no_retry_cp
    );
    let dir = tempfile::tempdir().unwrap();
    let good = clients(Some(cp), None, None).await;
    // The other account's endpoint refuses connections.
    let bad = clients(None, None, None).await;
    let b = AwsBackend::with_clients(
        vec![(target("prod"), good), (target("dev"), bad)],
        fast(),
        dir.path().to_path_buf(),
        "pipedeck-test",
    );
    let Reply::Pipelines { pipelines, .. } = b.call(Request::list_pipelines()).await.unwrap()
    else {
        panic!()
    };
    let names: Vec<&str> = pipelines.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["prod:eu-west-1/web"],
        "account and region in the name"
    );
    let d = b.describe();
    assert!(
        d.contains("dev") && d.contains("stale: EndpointUnreachable"),
        "{d}"
    );
    // Requests are routed by the prefix.
    let Reply::State { state } = b
        .call(Request::GetPipelineState {
            pipeline_name: "prod:eu-west-1/web".into(),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(state.pipeline_name, "prod:eu-west-1/web");
    let e = b
        .call(Request::GetPipelineState {
            pipeline_name: "dev:eu-west-1/web".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, "EndpointUnreachable");
}

fn load_model(dir: &Path, json: &str) -> pipedeck::model::pipeline::Pipeline {
    let file = dir.join("pipeline.json");
    std::fs::write(&file, json).unwrap();
    let report = pipedeck::model::load::load_path(&file, &Default::default());
    assert!(report.ok(), "{report:?}");
    report.pipelines[0].pipeline.clone()
}

#[tokio::test]
async fn moto_push_creates_then_updates_the_pipeline() {
    let Some(m) = moto() else { return };
    m.aws(&[
        "iam", "create-role", "--role-name", "cp",
        "--assume-role-policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codepipeline.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let b = m.backend(dir.path()).await;
    let a = b.accounts().next().unwrap();
    let p = load_model(dir.path(), MOTO_PIPELINE);
    let mut asked = Vec::new();
    let pushed = a
        .push(&p, &mut |changes, protected| {
            asked.push((changes.len(), protected));
            true
        })
        .await
        .unwrap();
    assert_eq!(pushed, pipedeck::aws::push::Pushed::Created { version: 1 });
    assert!(asked[0].0 > 10, "the whole definition is shown as added");
    // The same definition again: nothing to do.
    let again = a
        .push(&p, &mut |_, _| panic!("nothing to confirm"))
        .await
        .unwrap();
    assert_eq!(again, pipedeck::aws::push::Pushed::Unchanged);
    // A change: the diff names it, and the version goes up.
    let changed = load_model(
        dir.path(),
        &MOTO_PIPELINE.replace(r#""ProjectName":"web""#, r#""ProjectName":"web-v2""#),
    );
    let mut diff = Vec::new();
    let pushed = a
        .push(&changed, &mut |changes, _| {
            diff = changes.to_vec();
            true
        })
        .await
        .unwrap();
    assert_eq!(pushed, pipedeck::aws::push::Pushed::Updated { version: 2 });
    assert!(
        diff.iter()
            .any(|l| l.starts_with('+') && l.contains("web-v2")),
        "{diff:?}"
    );
    assert!(
        diff.iter()
            .any(|l| l.starts_with('-') && l.contains("\"web\"")),
        "{diff:?}"
    );
    let got = m.aws(&[
        "codepipeline",
        "get-pipeline",
        "--name",
        "web",
        "--query",
        "pipeline.version",
    ]);
    assert_eq!(got.trim(), "2");
}

#[tokio::test]
async fn push_refuses_import_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let b = backend(clients(None, None, None).await, dir.path());
    let mut p = load_model(dir.path(), MOTO_PIPELINE);
    p.role_arn = Some("«ImportValue:SharedPipelineRole»".into());
    p.stages[1].actions[0]
        .configuration
        .insert("ProjectName".into(), "«Ref:BuildProject»".into());
    let e = b
        .accounts()
        .next()
        .unwrap()
        .push(&p, &mut |_, _| panic!("never asked"))
        .await
        .unwrap_err();
    assert!(
        e.message.contains("«ImportValue:SharedPipelineRole»"),
        "{e}"
    );
    assert!(e.message.contains("«Ref:BuildProject»"), "{e}");
    assert!(e.message.contains("template"), "{e}");
}
