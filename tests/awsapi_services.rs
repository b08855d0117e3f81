//! CloudWatch Logs, CodeBuild and CloudTrail through the local AWS API,
//! driven by the real AWS CLI and boto3: a boto3 script tails a running
//! build by the token rule, filter-log-events finds a line, batch-get-builds
//! describes the build, lookup-events answers each attribute key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod awsapi_common;

use awsapi_common::common::{build_action, buildspec, stage};
use awsapi_common::{Api, pipeline_with_variables, s};
use pipedeck::api::types::ExecutionStatus;
use serde_json::Value;

fn build_pipeline() -> String {
    pipeline_with_variables(
        "web",
        "SUPERSEDED",
        &[stage(
            "Build",
            &[build_action(
                "Build",
                1,
                "build.yml",
                r#", "outputVariables": ["VERSION"]"#,
            )],
            "",
        )],
    )
}

fn build_files() -> Vec<(&'static str, String)> {
    let spec = "version: 0.2\nenv:\n  exported-variables:\n    - VERSION\nphases:\n  build:\n    commands:\n      - 'for i in $(seq 1 300); do echo line-$i; sleep 0.02; done'\n      - 'export VERSION=1.2.3'\n".to_owned();
    vec![("build.yml", spec)]
}

fn numbered(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("line-"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_filter_and_builds() {
    let f = build_files();
    let files: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let Some(api) = Api::new(&build_pipeline(), &files).await else {
        return;
    };
    let id = awsapi_common::common::start(&api.engine, "web").await;
    let tail = api.py("tail_build.py", &["web", &id, "Build"]).await;
    api.wait_status("web", &id, ExecutionStatus::Succeeded)
        .await;
    let lines: Vec<String> = tail["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| s(v).to_owned())
        .collect();
    let want: Vec<String> = (1..=300).map(|i| format!("line-{i}")).collect();
    assert_eq!(
        numbered(&lines),
        want,
        "tailing lost, doubled or reordered lines"
    );
    assert!(
        tail["polls"].as_u64().unwrap() > 2,
        "the build was not running: {tail}"
    );

    let build = &tail["build"];
    let build_id = s(&build["id"]).to_owned();
    let (project, uuid) = build_id.split_once(':').unwrap();
    assert_eq!(project, "Build");
    assert_eq!(build["logs"]["groupName"], "/aws/codebuild/Build");
    assert_eq!(build["logs"]["streamName"], uuid);

    // The whole stream, read with the CLI from the head, is what was tailed.
    let all = api
        .aws_ok(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            "/aws/codebuild/Build",
            "--log-stream-name",
            uuid,
            "--start-from-head",
        ])
        .await;
    let events = all["events"].as_array().unwrap();
    let full: Vec<String> = events.iter().map(|e| s(&e["message"]).to_owned()).collect();
    assert_eq!(full, lines);
    let ts: Vec<i64> = events
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "timestamps go back");
    assert!(
        ts[0] > 1_700_000_000_000,
        "timestamps are not epoch ms: {}",
        ts[0]
    );
    // Forward token at the end comes back unchanged.
    let fwd = s(&all["nextForwardToken"]).to_owned();
    let again = api
        .aws_ok(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            "/aws/codebuild/Build",
            "--log-stream-name",
            uuid,
            "--start-from-head",
            "--next-token",
            &fwd,
        ])
        .await;
    assert_eq!(again["events"].as_array().unwrap().len(), 0);
    assert_eq!(again["nextForwardToken"], fwd.as_str());
    // Newest first without startFromHead: the last `limit` lines, then back.
    let tail10 = api
        .aws_ok(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            "/aws/codebuild/Build",
            "--log-stream-name",
            uuid,
            "--limit",
            "10",
        ])
        .await;
    let last10: Vec<String> = tail10["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["message"]).to_owned())
        .collect();
    assert_eq!(last10, full[full.len() - 10..].to_vec());
    let before = api
        .aws_ok(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            "/aws/codebuild/Build",
            "--log-stream-name",
            uuid,
            "--limit",
            "10",
            "--next-token",
            s(&tail10["nextBackwardToken"]),
        ])
        .await;
    let prev10: Vec<String> = before["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["message"]).to_owned())
        .collect();
    assert_eq!(prev10, full[full.len() - 20..full.len() - 10].to_vec());

    let found = api
        .aws_ok(&[
            "logs",
            "filter-log-events",
            "--log-group-name",
            "/aws/codebuild/Build",
            "--filter-pattern",
            "\"line-42\"",
        ])
        .await;
    let hits: Vec<&str> = found["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["message"]))
        .collect();
    assert_eq!(hits, vec!["line-42"], "{found}");
    assert_eq!(found["events"][0]["logStreamName"], uuid);
    // Terms: all must appear; a small limit pages with nextToken (the CLI follows it).
    let paged = api
        .aws_ok(&[
            "logs",
            "filter-log-events",
            "--log-group-name",
            "/aws/codebuild/Build",
            "--filter-pattern",
            "line- 9",
            "--page-size",
            "7",
        ])
        .await;
    let n = paged["events"].as_array().unwrap().len();
    let want = (1..=300).filter(|i| i.to_string().contains('9')).count();
    assert_eq!(n, want, "{paged}");

    let groups = api.aws_ok(&["logs", "describe-log-groups"]).await;
    let names: Vec<&str> = groups["logGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| s(&g["logGroupName"]))
        .collect();
    assert!(names.contains(&"/aws/codebuild/Build"), "{groups}");
    assert!(names.contains(&"/pipedeck/web"), "{groups}");
    let streams = api
        .aws_ok(&[
            "logs",
            "describe-log-streams",
            "--log-group-name",
            "/aws/codebuild/Build",
        ])
        .await;
    assert_eq!(streams["logStreams"][0]["logStreamName"], uuid);
    let err = api
        .aws_err(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            "/aws/codebuild/Nope",
            "--log-stream-name",
            uuid,
        ])
        .await;
    assert!(err.contains("(ResourceNotFoundException)"), "{err}");

    let b = api
        .aws_ok(&[
            "codebuild",
            "batch-get-builds",
            "--ids",
            &build_id,
            "Build:missing",
        ])
        .await;
    let build = &b["builds"][0];
    assert_eq!(build["buildStatus"], "SUCCEEDED");
    assert_eq!(build["buildComplete"], true);
    assert_eq!(build["initiator"], "codepipeline/web");
    assert_eq!(build["projectName"], "Build");
    assert_eq!(b["buildsNotFound"][0], "Build:missing");
    let phases: Vec<&str> = build["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| s(&p["phaseType"]))
        .collect();
    assert!(
        phases.contains(&"BUILD") && phases.last() == Some(&"COMPLETED"),
        "{build}"
    );
    assert!(
        build["exportedEnvironmentVariables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "VERSION" && v["value"] == "1.2.3"),
        "{build}"
    );
    api.stop().await;
}

fn events_of(v: &Value) -> Vec<Value> {
    v["Events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_events_by_each_attribute() {
    let p = pipeline_with_variables(
        "web",
        "SUPERSEDED",
        &[stage("Build", &[build_action("B", 1, "b.yml", "")], "")],
    );
    let spec = buildspec(&["true"]);
    let Some(api) = Api::new(&p, &[("b.yml", spec.as_str())]).await else {
        return;
    };
    let key = api.creds.access_key_id.clone();
    let id = s(&api
        .aws_ok(&["codepipeline", "start-pipeline-execution", "--name", "web"])
        .await["pipelineExecutionId"])
    .to_owned();
    api.wait_status("web", &id, ExecutionStatus::Succeeded)
        .await;
    for args in [
        ["disable-stage-transition", "--reason", "freeze"],
        ["enable-stage-transition", "--reason", ""],
    ] {
        let mut a = vec![
            "codepipeline",
            args[0],
            "--pipeline-name",
            "web",
            "--stage-name",
            "Build",
            "--transition-type",
            "Inbound",
        ];
        if !args[2].is_empty() {
            a.extend([args[1], args[2]]);
        }
        api.aws_ok(&a).await;
    }
    let all = api.aws_ok(&["cloudtrail", "lookup-events"]).await;
    let evs = events_of(&all);
    let names: Vec<&str> = evs.iter().map(|e| s(&e["EventName"])).collect();
    assert_eq!(
        names,
        vec![
            "EnableStageTransition",
            "DisableStageTransition",
            "StartPipelineExecution"
        ],
        "newest first: {all}"
    );
    let start = evs[2].clone();
    let record: Value = serde_json::from_str(s(&start["CloudTrailEvent"])).unwrap();
    assert_eq!(record["userIdentity"]["accessKeyId"], key.as_str());
    assert_eq!(record["userIdentity"]["type"], "IAMUser");
    assert_eq!(record["eventSource"], "codepipeline.amazonaws.com");
    assert_eq!(record["eventName"], "StartPipelineExecution");
    assert_eq!(record["awsRegion"], "us-east-1");
    assert_eq!(record["requestParameters"]["pipelineName"], "web");
    assert_eq!(record["eventType"], "AwsApiCall");
    assert_eq!(record["readOnly"], false);
    assert_eq!(record["eventID"], start["EventId"]);
    assert!(s(&record["userAgent"]).contains("aws-cli/1.46"), "{record}");
    for f in [
        "eventVersion",
        "eventTime",
        "sourceIPAddress",
        "recipientAccountId",
        "requestID",
    ] {
        assert!(record.get(f).is_some(), "{f} missing: {record}");
    }
    let event_id = s(&start["EventId"]).to_owned();
    for (k, v, n) in [
        ("EventId", event_id.as_str(), 1),
        ("EventName", "DisableStageTransition", 1),
        ("ReadOnly", "false", 3),
        ("Username", key.as_str(), 3),
        ("ResourceType", "AWS::CodePipeline::Pipeline", 3),
        ("ResourceName", "web", 3),
        ("EventSource", "codepipeline.amazonaws.com", 3),
        ("AccessKeyId", key.as_str(), 3),
    ] {
        let r = api
            .aws_ok(&[
                "cloudtrail",
                "lookup-events",
                "--lookup-attributes",
                &format!("AttributeKey={k},AttributeValue={v}"),
            ])
            .await;
        assert_eq!(events_of(&r).len(), n, "{k}={v}: {r}");
    }
    let none = api
        .aws_ok(&[
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=ResourceName,AttributeValue=other",
        ])
        .await;
    assert!(events_of(&none).is_empty());

    // MaxResults 1 pages with NextToken, bound to the parameters.
    let p1 = api
        .aws_ok(&[
            "cloudtrail",
            "lookup-events",
            "--max-results",
            "1",
            "--no-paginate",
        ])
        .await;
    assert_eq!(events_of(&p1).len(), 1);
    let t = s(&p1["NextToken"]).to_owned();
    let p2 = api
        .aws_ok(&[
            "cloudtrail",
            "lookup-events",
            "--max-results",
            "1",
            "--no-paginate",
            "--next-token",
            &t,
        ])
        .await;
    assert_eq!(events_of(&p2)[0]["EventName"], "DisableStageTransition");
    let paged = api
        .aws_ok(&["cloudtrail", "lookup-events", "--page-size", "1"])
        .await;
    assert_eq!(events_of(&paged).len(), 3);
    for (args, code) in [
        (
            vec![
                "--lookup-attributes",
                "AttributeKey=EventName,AttributeValue=a",
                "AttributeKey=Username,AttributeValue=b",
            ],
            "InvalidLookupAttributesException",
        ),
        (
            vec![
                "--start-time",
                "2026-12-02T00:00:00Z",
                "--end-time",
                "2026-12-01T00:00:00Z",
            ],
            "InvalidTimeRangeException",
        ),
        (
            vec!["--max-results", "51", "--no-paginate"],
            "InvalidMaxResultsException",
        ),
        (
            vec![
                "--no-paginate",
                "--next-token",
                t.as_str(),
                "--lookup-attributes",
                "AttributeKey=ResourceName,AttributeValue=web",
            ],
            "InvalidNextTokenException",
        ),
    ] {
        let mut a = vec!["cloudtrail", "lookup-events"];
        a.extend(args);
        let err = api.aws_err(&a).await;
        assert!(err.contains(&format!("({code})")), "{a:?}: {err}");
    }
    // A time window that holds nothing.
    let old = api
        .aws_ok(&[
            "cloudtrail",
            "lookup-events",
            "--start-time",
            "2020-01-01T00:00:00Z",
            "--end-time",
            "2020-01-02T00:00:00Z",
        ])
        .await;
    assert!(events_of(&old).is_empty());
    api.stop().await;
}
