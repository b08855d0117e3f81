//! The recorded-response harness of the AWS backend tests: targets,
//! clients whose unmocked services go to a port that refuses connections,
//! recorded GetPipelineState bodies. Nothing here reaches AWS.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use pipedeck::aws::account::Intervals;
use pipedeck::aws::{AwsTarget, Clients};
use pipedeck::backend::Backend;
use pipedeck::backend::aws::AwsBackend;

pub fn target(label: &str) -> AwsTarget {
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
pub async fn clients(
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

pub fn dynb(b: &AwsBackend) -> &dyn Backend {
    b
}

pub fn resp<O, E>(body: String) -> aws_smithy_mocks::MockResponse<O, E> {
    aws_smithy_mocks::MockResponse::Http(aws_smithy_runtime_api::http::Response::new(
        200.try_into().unwrap(),
        aws_smithy_types::body::SdkBody::from(body),
    ))
}

pub fn no_retry_cp(
    b: aws_sdk_codepipeline::config::Builder,
) -> aws_sdk_codepipeline::config::Builder {
    b.retry_config(aws_sdk_codepipeline::config::retry::RetryConfig::disabled())
}

pub fn fast() -> Intervals {
    Intervals {
        running: Duration::from_secs(1),
        idle: Duration::from_secs(60),
        list: Duration::from_secs(300),
        rate: 50.0,
        burst: 50.0,
    }
}

pub fn backend(c: Clients, dir: &Path) -> AwsBackend {
    AwsBackend::with_clients(
        vec![(target("prod"), c)],
        fast(),
        dir.to_path_buf(),
        "pipedeck-test",
    )
}

pub const STATE_RUNNING: &str = r#"{
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

pub const STATE_DONE: &str = r#"{
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

pub fn json_err(kind: &str, msg: &str) -> String {
    format!(r#"{{"__type":"{kind}","message":"{msg}"}}"#)
}
