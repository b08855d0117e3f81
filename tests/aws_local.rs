//! The AWS backend against the local AWS API (pipedeck's engine served as
//! CodePipeline, CodeBuild, CloudWatch Logs and CloudTrail on a loopback
//! port, SigV4-checked): the real SDK clients through the backend seam run
//! a release with a failing test, read the failed build's log, find the
//! operations in the audit trail, retry after the fix, approve by token
//! and see the execution succeed, with the poller's events on the way.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod awsapi_common;

use std::time::{Duration, Instant};

use awsapi_common::Api;
use awsapi_common::common::{self, approval_action, build_action, buildspec, stage};
use pipedeck::api::types::{ActionStatus, ExecutionStatus};
use pipedeck::api::{EngineEvent, LogRef, Reply, Request};
use pipedeck::aws::account::Intervals;
use pipedeck::aws::{AwsTarget, Clients};
use pipedeck::backend::Backend;
use pipedeck::backend::aws::AwsBackend;

async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let t0 = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_over_the_local_aws_api() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("fixed");
    let p = common::pipeline(
        "web",
        "SUPERSEDED",
        &[
            stage("Test", &[build_action("Flaky", 1, "flaky.yml", "")], ""),
            stage("Approve", &[approval_action("Ship")], ""),
            stage("Deploy", &[build_action("Deploy", 1, "deploy.yml", "")], ""),
        ],
    );
    let flaky = buildspec(&[
        "echo running the tests",
        &format!(
            "test -e {} || (echo 'error: test suite failed' && exit 1)",
            marker.display()
        ),
    ]);
    let deploy = buildspec(&["echo deploying", "echo done"]);
    let Some(api) = Api::new(&p, &[("flaky.yml", &flaky), ("deploy.yml", &deploy)]).await else {
        return;
    };
    let conf = Clients::conf_with_keys(
        &api.endpoint,
        "us-east-1",
        &api.creds.access_key_id,
        &api.creds.secret_access_key,
    )
    .await;
    let target = AwsTarget {
        label: "local".into(),
        region: Some("us-east-1".into()),
        no_retries: true,
        ..AwsTarget::default()
    };
    let state_dir = tempfile::tempdir().unwrap();
    let aws = AwsBackend::with_clients(
        vec![(target, Clients::from_conf(&conf, None))],
        Intervals {
            running: Duration::from_secs(1),
            ..Intervals::default()
        },
        state_dir.path().to_path_buf(),
        "pipedeck-test",
    );
    let b: &dyn Backend = &aws;
    let mut events = b.subscribe().await.unwrap();

    let Reply::Pipelines { pipelines, .. } = b.call(Request::list_pipelines()).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        pipelines
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["web"]
    );
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
    assert_eq!(pipeline.stages.len(), 4, "{pipeline:?}");

    let Reply::Started {
        pipeline_execution_id: id,
    } = b
        .call(Request::StartPipelineExecution {
            pipeline_name: "web".into(),
            variables: Default::default(),
            source_revisions: Vec::new(),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    api.wait_status("web", &id, ExecutionStatus::Failed).await;

    // The failed build's log, by its action execution id: BatchGetBuilds
    // names the stream, GetLogEvents reads it into the mirror.
    let actions = b.action_executions("web", &id).await.unwrap();
    let failed = actions
        .iter()
        .find(|a| a.action_name == "Flaky")
        .expect("the Flaky action");
    assert_eq!(failed.status, ActionStatus::Failed);
    assert!(
        failed
            .external_execution_id
            .as_deref()
            .is_some_and(|x| x.starts_with("Flaky:")),
        "{failed:?}"
    );
    let lines = b
        .read_whole_log(&LogRef::action(&failed.action_execution_id))
        .await
        .unwrap();
    assert!(
        lines.iter().any(|l| l.contains("error: test suite failed")),
        "{lines:?}"
    );
    assert!(!failed.phases.is_empty(), "phases from BatchGetBuilds");

    // The Audit screen: CloudTrail's LookupEvents over the engine's trail.
    let Reply::Events { events: audit, .. } = b.call(Request::lookup_events(50)).await.unwrap()
    else {
        panic!()
    };
    assert!(
        audit
            .iter()
            .any(|e| e.event_name == "StartPipelineExecution"),
        "{audit:?}"
    );

    // Fixed: retry the failed actions.
    std::fs::write(&marker, "").unwrap();
    let r = b
        .call(Request::RetryStageExecution {
            pipeline_name: "web".into(),
            stage_name: "Test".into(),
            pipeline_execution_id: Some(id.clone()),
            retry_mode: "FAILED_ACTIONS".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        r,
        Reply::Retried {
            pipeline_execution_id: id.clone()
        }
    );

    // The poller sees the approval wait; approve with the token the
    // backend reads from GetPipelineState.
    let pending = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(e) = events.next().await {
            if let EngineEvent::ApprovalPending { action } = e {
                return action;
            }
        }
        panic!("events ended")
    })
    .await
    .expect("an ApprovalPending event");
    assert_eq!(pending.action_name, "Ship");
    let r = b
        .call(Request::PutApprovalResult {
            pipeline_name: "web".into(),
            stage_name: "Approve".into(),
            action_name: "Ship".into(),
            token: None,
            status: "Approved".into(),
            summary: "tests fixed".into(),
        })
        .await
        .unwrap();
    assert!(matches!(r, Reply::ApprovalRecorded { .. }), "{r:?}");
    api.wait_status("web", &id, ExecutionStatus::Succeeded)
        .await;
    let e = until("Succeeded through the backend", || async {
        let e = b.execution("web", &id).await.ok()?;
        (e.status == ExecutionStatus::Succeeded).then_some(e)
    })
    .await;
    assert_eq!(e.pipeline_execution_id, id);
    // A second approval of the same token is AWS's error, as it is.
    let again = b
        .call(Request::PutApprovalResult {
            pipeline_name: "web".into(),
            stage_name: "Approve".into(),
            action_name: "Ship".into(),
            token: Some(pending.token.clone().unwrap_or_default()),
            status: "Approved".into(),
            summary: String::new(),
        })
        .await
        .unwrap_err();
    assert!(
        again.code.ends_with("Exception"),
        "an AWS error name: {again}"
    );
    println!(
        "calls made through the budget: {} (the backend answered the rest from its cache)",
        aws.calls()
    );
    aws.close().await;
    api.stop().await;
}
