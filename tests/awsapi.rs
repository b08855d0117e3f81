//! The local AWS API driven by the real AWS CLI (awscli 1.46) and boto3
//! (1.44) from the test venv: approvals, retry, rollback, stop, paging,
//! variables, logs, builds, the audit trail and the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod awsapi_common;

use std::collections::BTreeSet;

use awsapi_common::common::{self, approval_action, build_action, buildspec, stage};
use awsapi_common::{Api, pipeline_with_variables, s};
use pipedeck::api::types::ExecutionStatus;
use serde_json::Value;

/// Source → Approve (manual) → Deploy (a build).
fn approval_pipeline() -> String {
    pipeline_with_variables(
        "web",
        "SUPERSEDED",
        &[
            stage("Approve", &[approval_action("Ship")], ""),
            stage("Deploy", &[build_action("Deploy", 1, "deploy.yml", "")], ""),
        ],
    )
}

fn deploy_files() -> Vec<(&'static str, String)> {
    vec![("deploy.yml", buildspec(&["echo deploying"]))]
}

fn files<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, t)| (*k, t.as_str())).collect()
}

async fn token_of(api: &Api, stage_name: &str) -> (String, String) {
    for _ in 0..300 {
        let st = api
            .aws_ok(&["codepipeline", "get-pipeline-state", "--name", "web"])
            .await;
        let stage = st["stageStates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stageName"] == stage_name)
            .unwrap()
            .clone();
        let a = &stage["actionStates"][0];
        if let Some(t) = a["latestExecution"]["token"].as_str() {
            assert_eq!(a["latestExecution"]["status"], "InProgress");
            return (s(&a["actionName"]).to_owned(), t.to_owned());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("no approval token appeared in {stage_name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_token_flow_and_variables() {
    let f = deploy_files();
    let Some(api) = Api::new(&approval_pipeline(), &files(&f)).await else {
        return;
    };
    let r = api
        .aws_ok(&[
            "codepipeline",
            "start-pipeline-execution",
            "--name",
            "web",
            "--variables",
            "name=Channel,value=beta",
            "--client-request-token",
            "release-1",
        ])
        .await;
    let id = s(&r["pipelineExecutionId"]).to_owned();
    // The same clientRequestToken starts nothing new.
    let again = api
        .aws_ok(&[
            "codepipeline",
            "start-pipeline-execution",
            "--name",
            "web",
            "--variables",
            "name=Channel,value=beta",
            "--client-request-token",
            "release-1",
        ])
        .await;
    assert_eq!(again["pipelineExecutionId"], id.as_str());

    let (action, token) = token_of(&api, "Approve").await;
    assert_eq!(action, "Ship");
    let r = api
        .aws_ok(&[
            "codepipeline",
            "put-approval-result",
            "--pipeline-name",
            "web",
            "--stage-name",
            "Approve",
            "--action-name",
            "Ship",
            "--token",
            &token,
            "--result",
            "summary=looks good,status=Approved",
        ])
        .await;
    assert!(r["approvedAt"].as_f64().unwrap() > 1.7e9, "{r}");
    api.wait_status("web", &id, ExecutionStatus::Succeeded)
        .await;

    // A second answer with the used token, through a fresh server (nothing
    // in memory: what an engine restart leaves), is ApprovalAlreadyCompleted.
    let fresh = api.second(|_| {}).await;
    let fresh_url = format!("http://{}", fresh.local_addr);
    let o = api
        .aws_at(
            &fresh_url,
            &[
                "codepipeline",
                "put-approval-result",
                "--pipeline-name",
                "web",
                "--stage-name",
                "Approve",
                "--action-name",
                "Ship",
                "--token",
                &token,
                "--result",
                "summary=again,status=Approved",
            ],
            &[],
        )
        .await;
    assert!(
        o.stderr.contains("(ApprovalAlreadyCompletedException)"),
        "{}",
        o.stderr
    );
    fresh.stop().await;
    let err = api
        .aws_err(&[
            "codepipeline",
            "put-approval-result",
            "--pipeline-name",
            "web",
            "--stage-name",
            "Approve",
            "--action-name",
            "Ship",
            "--token",
            &token,
            "--result",
            "summary=again,status=Approved",
        ])
        .await;
    assert!(err.contains("(ApprovalAlreadyCompletedException)"), "{err}");

    let st = api
        .aws_ok(&["codepipeline", "get-pipeline-state", "--name", "web"])
        .await;
    for stage in st["stageStates"].as_array().unwrap() {
        assert_eq!(stage["latestExecution"]["status"], "Succeeded", "{stage}");
        assert_eq!(stage["latestExecution"]["pipelineExecutionId"], id.as_str());
    }
    let e = api
        .aws_ok(&[
            "codepipeline",
            "get-pipeline-execution",
            "--pipeline-name",
            "web",
            "--pipeline-execution-id",
            &id,
        ])
        .await;
    let e = &e["pipelineExecution"];
    assert_eq!(e["status"], "Succeeded");
    assert_eq!(e["trigger"]["triggerType"], "StartPipelineExecution");
    assert_eq!(
        e["trigger"]["triggerDetail"],
        api.creds.access_key_id.as_str()
    );
    assert!(
        e["variables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "Channel" && v["resolvedValue"] == "beta"),
        "{e}"
    );
    assert_eq!(e["artifactRevisions"][0]["name"], "Source");
    // An unknown pipeline is refused by AWS's name.
    let err = api
        .aws_err(&[
            "codepipeline",
            "list-pipeline-executions",
            "--pipeline-name",
            "nope",
        ])
        .await;
    assert!(err.contains("(PipelineNotFoundException)"), "{err}");
    api.stop().await;
}

/// Source → Test (Unit passes, Flaky fails until a marker exists) → Deploy.
fn retry_pipeline(marker: &str) -> (String, Vec<(&'static str, String)>) {
    let p = pipeline_with_variables(
        "web",
        "SUPERSEDED",
        &[
            stage(
                "Test",
                &[
                    build_action("Unit", 1, "unit.yml", ""),
                    build_action("Flaky", 1, "flaky.yml", ""),
                ],
                "",
            ),
            stage("Deploy", &[build_action("Deploy", 1, "deploy.yml", "")], ""),
        ],
    );
    let f = vec![
        ("unit.yml", buildspec(&["echo unit ok"])),
        ("flaky.yml", buildspec(&[&format!("test -e {marker}")])),
        ("deploy.yml", buildspec(&["echo deploying"])),
    ];
    (p, f)
}

fn count_actions(details: &Value, action: &str) -> usize {
    details["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["actionName"] == action)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_actions_then_rollback() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("ok");
    let (p, f) = retry_pipeline(&marker.display().to_string());
    let Some(api) = Api::new(&p, &files(&f)).await else {
        return;
    };
    let first = s(&api
        .aws_ok(&["codepipeline", "start-pipeline-execution", "--name", "web"])
        .await["pipelineExecutionId"])
    .to_owned();
    api.wait_status("web", &first, ExecutionStatus::Failed)
        .await;
    std::fs::write(&marker, "").unwrap();
    let r = api
        .aws_ok(&[
            "codepipeline",
            "retry-stage-execution",
            "--pipeline-name",
            "web",
            "--stage-name",
            "Test",
            "--pipeline-execution-id",
            &first,
            "--retry-mode",
            "FAILED_ACTIONS",
        ])
        .await;
    assert_eq!(r["pipelineExecutionId"], first.as_str());
    api.wait_status("web", &first, ExecutionStatus::Succeeded)
        .await;
    let details = api
        .aws_ok(&[
            "codepipeline",
            "list-action-executions",
            "--pipeline-name",
            "web",
            "--filter",
            &format!("pipelineExecutionId={first}"),
        ])
        .await;
    assert_eq!(
        count_actions(&details, "Unit"),
        1,
        "Unit ran again: {details}"
    );
    assert_eq!(count_actions(&details, "Flaky"), 2, "{details}");
    let build = details["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["actionName"] == "Unit")
        .unwrap();
    let ext = s(&build["output"]["executionResult"]["externalExecutionId"]);
    assert!(ext.starts_with("Unit:"), "{build}");
    assert_eq!(build["input"]["actionTypeId"]["provider"], "CodeBuild");

    let second = s(&api
        .aws_ok(&["codepipeline", "start-pipeline-execution", "--name", "web"])
        .await["pipelineExecutionId"])
    .to_owned();
    api.wait_status("web", &second, ExecutionStatus::Succeeded)
        .await;
    let filtered = api
        .aws_ok(&[
            "codepipeline",
            "list-pipeline-executions",
            "--pipeline-name",
            "web",
            "--filter",
            "succeededInStage={stageName=Test}",
        ])
        .await;
    assert_eq!(
        filtered["pipelineExecutionSummaries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let rb = s(&api
        .aws_ok(&[
            "codepipeline",
            "rollback-stage",
            "--pipeline-name",
            "web",
            "--stage-name",
            "Deploy",
            "--target-pipeline-execution-id",
            &first,
        ])
        .await["pipelineExecutionId"])
    .to_owned();
    assert_ne!(rb, second);
    api.wait_status("web", &rb, ExecutionStatus::Succeeded)
        .await;
    let list = api
        .aws_ok(&[
            "codepipeline",
            "list-pipeline-executions",
            "--pipeline-name",
            "web",
        ])
        .await;
    let e = list["pipelineExecutionSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pipelineExecutionId"] == rb.as_str())
        .unwrap()
        .clone();
    assert_eq!(e["executionType"], "ROLLBACK", "{e}");
    assert_eq!(e["trigger"]["triggerType"], "ManualRollback");
    assert_eq!(
        e["rollbackMetadata"]["rollbackTargetPipelineExecutionId"],
        first.as_str()
    );
    let st = api
        .aws_ok(&["codepipeline", "get-pipeline-state", "--name", "web"])
        .await;
    let deploy = &st["stageStates"][2];
    assert_eq!(deploy["latestExecution"]["type"], "ROLLBACK", "{deploy}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_transitions() {
    let p = pipeline_with_variables(
        "web",
        "SUPERSEDED",
        &[stage(
            "Build",
            &[build_action("Slow", 1, "slow.yml", "")],
            "",
        )],
    );
    let f = vec![("slow.yml", buildspec(&["echo started", "sleep 60"]))];
    let Some(api) = Api::new(&p, &files(&f)).await else {
        return;
    };
    let id = s(&api
        .aws_ok(&["codepipeline", "start-pipeline-execution", "--name", "web"])
        .await["pipelineExecutionId"])
    .to_owned();
    common::until(&api.engine, "web", "the build runs", |st, _| {
        common::action_status(st, "Build", "Slow").as_deref() == Some("InProgress")
    })
    .await;
    // A running build already names its build id.
    let st = api
        .aws_ok(&["codepipeline", "get-pipeline-state", "--name", "web"])
        .await;
    let running = &st["stageStates"][1]["actionStates"][0]["latestExecution"];
    assert_eq!(running["status"], "InProgress");
    assert_eq!(
        running["externalExecutionId"],
        format!("Slow:{}", s(&running["actionExecutionId"])).as_str()
    );
    api.aws_ok(&[
        "codepipeline",
        "stop-pipeline-execution",
        "--pipeline-name",
        "web",
        "--pipeline-execution-id",
        &id,
        "--abandon",
        "--reason",
        "wrong commit",
    ])
    .await;
    api.wait_status("web", &id, ExecutionStatus::Stopped).await;
    let e = api
        .aws_ok(&[
            "codepipeline",
            "list-pipeline-executions",
            "--pipeline-name",
            "web",
        ])
        .await;
    assert_eq!(e["pipelineExecutionSummaries"][0]["status"], "Stopped");
    assert_eq!(
        e["pipelineExecutionSummaries"][0]["stopTrigger"]["reason"],
        "wrong commit"
    );
    let err = api
        .aws_err(&[
            "codepipeline",
            "stop-pipeline-execution",
            "--pipeline-name",
            "web",
            "--pipeline-execution-id",
            &id,
        ])
        .await;
    assert!(err.contains("Exception)"), "{err}");

    // Disable (reason required), then enable; Outbound of Source is Build's inbound.
    api.aws_ok(&[
        "codepipeline",
        "disable-stage-transition",
        "--pipeline-name",
        "web",
        "--stage-name",
        "Source",
        "--transition-type",
        "Outbound",
        "--reason",
        "freeze",
    ])
    .await;
    let st = api
        .aws_ok(&["codepipeline", "get-pipeline-state", "--name", "web"])
        .await;
    let t = &st["stageStates"][1]["inboundTransitionState"];
    assert_eq!(t["enabled"], false, "{t}");
    assert_eq!(t["disabledReason"], "freeze");
    assert_eq!(t["lastChangedBy"], api.creds.access_key_id.as_str());
    api.aws_ok(&[
        "codepipeline",
        "enable-stage-transition",
        "--pipeline-name",
        "web",
        "--stage-name",
        "Build",
        "--transition-type",
        "Inbound",
    ])
    .await;
    let st = api
        .aws_ok(&["codepipeline", "get-pipeline-state", "--name", "web"])
        .await;
    assert_eq!(
        st["stageStates"][1]["inboundTransitionState"]["enabled"],
        true
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_over_250_executions() {
    // SUPERSEDED: a newcomer supersedes the one waiting, so 250 are cheap.
    let p = pipeline_with_variables(
        "web",
        "SUPERSEDED",
        &[stage("Build", &[build_action("B", 1, "b.yml", "")], "")],
    );
    let f = vec![("b.yml", buildspec(&["true"]))];
    let Some(api) = Api::new(&p, &files(&f)).await else {
        return;
    };
    common::call(
        &api.engine,
        pipedeck::api::Request::DisableStageTransition {
            pipeline_name: "web".into(),
            stage_name: "Build".into(),
            reason: "paging test".into(),
        },
    )
    .await
    .unwrap();
    let mut want = BTreeSet::new();
    for _ in 0..250 {
        want.insert(common::start(&api.engine, "web").await);
    }
    // The CLI's --max-items pages (its NextToken wraps ours).
    let mut got = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut args = vec![
            "codepipeline",
            "list-pipeline-executions",
            "--pipeline-name",
            "web",
            "--max-items",
            "100",
        ];
        if let Some(t) = &token {
            args.extend(["--starting-token", t.as_str()]);
        }
        let r = api.aws_ok(&args).await;
        pages += 1;
        got.extend(
            r["pipelineExecutionSummaries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| s(&e["pipelineExecutionId"]).to_owned()),
        );
        match r["NextToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(got.len(), 250, "duplicates or misses");
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    // Newest first, as AWS lists them.
    let first = common::execution(&api.engine, "web", &got[0]).await;
    let last = common::execution(&api.engine, "web", &got[249]).await;
    assert!(first.start_time >= last.start_time);

    // Small server pages, all of them through the CLI's own pagination.
    let all = api
        .aws_ok(&[
            "codepipeline",
            "list-pipeline-executions",
            "--pipeline-name",
            "web",
            "--page-size",
            "30",
        ])
        .await;
    assert_eq!(
        all["pipelineExecutionSummaries"].as_array().unwrap().len(),
        250
    );

    let r = api.py("paginate.py", &["web", "100"]).await;
    assert_eq!(r["pages"], 3);
    let ids: BTreeSet<String> = r["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| s(v).to_owned())
        .collect();
    assert_eq!(ids, want);
    assert_eq!(r["ids"].as_array().unwrap().len(), 250);

    let err = api
        .aws_err(&[
            "codepipeline",
            "list-pipeline-executions",
            "--pipeline-name",
            "web",
            "--no-paginate",
            "--next-token",
            "made-up",
        ])
        .await;
    assert!(err.contains("(InvalidNextTokenException)"), "{err}");
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_pipeline_round_trips_through_validate() {
    let f = deploy_files();
    let Some(api) = Api::new(&approval_pipeline(), &files(&f)).await else {
        return;
    };
    let p = api
        .aws_ok(&["codepipeline", "get-pipeline", "--name", "web"])
        .await;
    assert_eq!(p["pipeline"]["name"], "web");
    assert_eq!(p["pipeline"]["version"], 1);
    assert_eq!(
        p["metadata"]["pipelineArn"],
        "arn:aws:codepipeline:us-east-1:000000000000:web"
    );
    assert_eq!(
        p["pipeline"]["stages"][1]["actions"][0]["actionTypeId"]["category"],
        "Approval"
    );
    let file = api.home.path().join("p.json");
    std::fs::write(&file, serde_json::to_string_pretty(&p).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipedeck"))
        .arg("validate")
        .arg(&file)
        .env("PIPEDECK_DATA_DIR", api.home.path().join("data"))
        .env("PIPEDECK_CONFIG", api.home.path().join("none.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pipedeck validate rejected get-pipeline's output:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // update-pipeline reads the same file; the engine cannot take it yet,
    // and the answer says so instead of pretending.
    let mut edited = p.clone();
    edited["pipeline"]["stages"][2]["name"] = Value::from("Release");
    if let Value::Object(m) = &mut edited {
        m.remove("metadata");
    }
    std::fs::write(&file, edited.to_string()).unwrap();
    let err = api
        .aws_err(&[
            "codepipeline",
            "update-pipeline",
            "--cli-input-json",
            &format!("file://{}", file.display()),
        ])
        .await;
    assert!(err.contains("UpdatePipeline"), "{err}");
    assert!(err.contains("definition is valid"), "{err}");
    // An invalid edit is refused with the problems named.
    edited["pipeline"]["stages"][2]["actions"][0]["actionTypeId"]["category"] =
        Value::from("Bogus");
    std::fs::write(&file, edited.to_string()).unwrap();
    let err = api
        .aws_err(&[
            "codepipeline",
            "update-pipeline",
            "--cli-input-json",
            &format!("file://{}", file.display()),
        ])
        .await;
    assert!(err.contains("(InvalidStructureException)"), "{err}");
    let err = api.aws_err(&["codepipeline", "list-webhooks"]).await;
    assert!(
        err.contains("ListWebhooks") && err.contains("not available"),
        "{err}"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn condition_states_and_rule_executions() {
    let cond = r##", "beforeEntry": {"conditions": [{"result": "SKIP", "rules": [{"name": "OnRelease",
          "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"},
          "configuration": {"Variable": "#{SourceVariables.BranchName}", "Value": "release", "Operator": "EQ"}}]}]}"##;
    let p = pipeline_with_variables(
        "web",
        "SUPERSEDED",
        &[
            stage("Gate", &[build_action("G", 1, "g.yml", "")], cond),
            stage("Final", &[build_action("F", 1, "f.yml", "")], ""),
        ],
    );
    let f = vec![
        ("g.yml", buildspec(&["echo gated"])),
        ("f.yml", buildspec(&["echo final"])),
    ];
    let Some(api) = Api::new(&p, &files(&f)).await else {
        return;
    };
    let id = common::start(&api.engine, "web").await;
    api.wait_status("web", &id, ExecutionStatus::Succeeded)
        .await;
    let st = api
        .aws_ok(&["codepipeline", "get-pipeline-state", "--name", "web"])
        .await;
    let gate = &st["stageStates"][1];
    assert_eq!(gate["latestExecution"]["status"], "Skipped", "{gate}");
    let c = &gate["beforeEntryConditionState"];
    assert_eq!(c["latestExecution"]["status"], "Failed", "{gate}");
    assert_eq!(
        c["conditionStates"][0]["ruleStates"][0]["ruleName"],
        "OnRelease"
    );
    let rules = api
        .aws_ok(&[
            "codepipeline",
            "list-rule-executions",
            "--pipeline-name",
            "web",
            "--filter",
            &format!("pipelineExecutionId={id}"),
        ])
        .await;
    let r = &rules["ruleExecutionDetails"][0];
    assert_eq!(r["ruleName"], "OnRelease", "{rules}");
    assert_eq!(r["stageName"], "Gate");
    assert_eq!(r["status"], "Failed");
    let err = api
        .aws_err(&[
            "codepipeline",
            "override-stage-condition",
            "--pipeline-name",
            "web",
            "--stage-name",
            "Gate",
            "--pipeline-execution-id",
            &id,
            "--condition-type",
            "BEFORE_ENTRY",
        ])
        .await;
    assert!(err.contains("OverrideStageCondition"), "{err}");
    api.stop().await;
}
