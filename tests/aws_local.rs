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

/// The benchmark against the local AWS API: calls per minute for one
/// running pipeline on screen among 50 idle ones (the screen's refresh
/// every second, answered by the backend), beside a naive console's
/// polling measured in the same run, and the time from a stage's change in
/// the engine to the backend's event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn benchmark_one_running_among_fifty_idle_over_the_local_aws_api() {
    let Some(_venv) = awsapi_common::venv() else {
        return;
    };
    let build = |name: &str| {
        common::pipeline(
            name,
            "SUPERSEDED",
            &[stage(
                "Build",
                &[build_action("Build", 1, "slow.yml", "")],
                "",
            )],
        )
    };
    let slow = buildspec(&["sleep 20", "echo done"]);
    let ws = common::workspace(&build("svc-00"), "", &[("slow.yml", &slow)]);
    let mut files = vec!["pipeline.json".to_owned()];
    for i in 1..51 {
        let f = format!("p{i:02}.json");
        std::fs::write(ws.root.join(&f), build(&format!("svc-{i:02}"))).unwrap();
        files.push(f);
    }
    let toml = std::fs::read_to_string(ws.root.join("pipedeck.toml")).unwrap();
    let list = files
        .iter()
        .map(|f| format!("\"{f}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        ws.root.join("pipedeck.toml"),
        toml.replacen(
            "[workspace]\n",
            &format!("[workspace]\npipelines = [{list}]\n"),
            1,
        ),
    )
    .unwrap();
    let engine = ws.engine();
    let creds = pipedeck::awsapi::Credentials::generate();
    let server = pipedeck::awsapi::start(engine.clone(), awsapi_common::options(&creds, &ws.root))
        .await
        .unwrap();
    let endpoint = format!("http://{}", server.local_addr);
    let conf = Clients::conf_with_keys(
        &endpoint,
        "us-east-1",
        &creds.access_key_id,
        &creds.secret_access_key,
    )
    .await;
    let cp = aws_sdk_codepipeline::Client::new(&conf);
    let window = Duration::from_secs(12);
    let per_minute = |n: u64| n as f64 * 60.0 / window.as_secs_f64();

    // Baseline: ListPipelines + GetPipeline + GetPipelineState of every
    // pipeline every 3 s.
    let mut naive = 0u64;
    let t0 = Instant::now();
    while t0.elapsed() < window {
        let l = cp.list_pipelines().send().await.unwrap();
        naive += 1;
        for p in l.pipelines() {
            let n = p.name().unwrap();
            cp.get_pipeline().name(n).send().await.unwrap();
            cp.get_pipeline_state().name(n).send().await.unwrap();
            naive += 2;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

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
            rate: 50.0,
            burst: 60.0,
            ..Intervals::default()
        },
        state_dir.path().to_path_buf(),
        "bench",
    );
    let b: &dyn Backend = &aws;
    let mut events = b.subscribe().await.unwrap();
    let id = common::start(&engine, "svc-00").await;
    let mut engine_events = engine.subscribe();
    let refresh = || async {
        let mut asked = 0u64;
        if let Ok(Reply::Pipelines { pipelines, .. }) = b.call(Request::list_pipelines()).await {
            asked += 1;
            for p in pipelines {
                let _ = b
                    .call(Request::GetPipelineState {
                        pipeline_name: p.name.clone(),
                    })
                    .await;
                let _ = b.call(Request::list_executions(&p.name, 50)).await;
                asked += 2;
            }
        }
        asked
    };
    // Warm-up: the first read of everything.
    refresh().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let warmup = aws.calls();
    let t0 = Instant::now();
    let mut asked = 0u64;
    while t0.elapsed() < window {
        asked += refresh().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ours = per_minute(aws.calls() - warmup);
    // The build ends: the engine's StageChanged, then the backend's.
    let changed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(EngineEvent::StageChanged {
                status, stage_name, ..
            }) = engine_events.recv().await
                && stage_name == "Build"
                && status != pipedeck::api::types::StageStatus::InProgress
            {
                return Instant::now();
            }
        }
    })
    .await
    .expect("the build ended");
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = events.next().await {
            if let EngineEvent::StageChanged {
                status, stage_name, ..
            } = e
                && stage_name == "Build"
                && status != pipedeck::api::types::StageStatus::InProgress
            {
                return Instant::now();
            }
        }
        panic!("events ended")
    })
    .await
    .expect("the backend saw it");
    let latency = seen.saturating_duration_since(changed);
    println!(
        "local AWS API, 1 running among 50 idle, {}s window: pipedeck {ours:.0} calls/min (+{warmup} once at start; the screen asked {:.0}/min) vs naive console {:.0} calls/min; stage change to event {latency:?} (running interval 3 s)",
        window.as_secs(),
        per_minute(asked),
        per_minute(naive)
    );
    assert!(ours < per_minute(naive) / 3.0);
    assert!(latency <= Duration::from_secs(5), "{latency:?}");
    let _ = id;
    aws.close().await;
    server.stop().await;
    engine.shutdown().await;
}
