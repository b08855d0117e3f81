//! The AWS backend against recorded responses (aws-smithy-mocks answering
//! with HTTP bodies shaped as the AWS API reference shows them, so the
//! SDK's real deserializer and error parser run): throttling, errors,
//! approvals, the poller's events, CloudTrail findings, the token rule of
//! GetLogEvents, several accounts, the benchmark. Nothing here reaches
//! AWS: endpoints are 127.0.0.1, credentials are static dummies, retries
//! are off. moto's server: tests/aws_moto.rs; GetPipeline's V2 conditions
//! and triggers: tests/aws_model.rs.

#![allow(clippy::unwrap_used)]

mod aws_mocks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_mocks::*;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use pipedeck::api::types::StageStatus;
use pipedeck::api::{EngineEvent, LogRef, Reply, Request};
use pipedeck::aws::account::Intervals;
use pipedeck::backend::Backend;
use pipedeck::backend::aws::AwsBackend;

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
            .any(|e| e.file_name().to_string_lossy().ends_with(".log")),
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
