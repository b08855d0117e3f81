//! Who may call the local AWS API and what a bad request gets: unsigned,
//! unknown-key, wrong-secret and stale-date requests as the AWS CLI and
//! boto3 see them; read-only and protected refusals; malformed bodies, an
//! oversized body and unknown operations over raw HTTP (these need no venv);
//! `pipedeck serve --aws-api` with the profile `pipedeck aws-credentials`
//! prints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod awsapi_common;

use std::io::{Read, Write};
use std::time::Duration;

use awsapi_common::common::{approval_action, build_action, buildspec, stage};
use awsapi_common::{Api, pipeline_with_variables};
use pipedeck::awsapi::{Credentials, sigv4};
use serde_json::Value;

fn pipeline() -> String {
    pipeline_with_variables(
        "web",
        "SUPERSEDED",
        &[
            stage("Approve", &[approval_action("Ship")], ""),
            stage("Build", &[build_action("B", 1, "b.yml", "")], ""),
        ],
    )
}

/// One raw request; returns (status, body). `sign` with the key pair.
fn raw(
    addr: std::net::SocketAddr,
    target: &str,
    body: &[u8],
    key: Option<&Credentials>,
    declared: Option<usize>,
) -> (u16, Value) {
    let mut headers = vec![
        ("host".to_owned(), addr.to_string()),
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        ("x-amz-target".to_owned(), target.to_owned()),
    ];
    if let Some(k) = key {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        sigv4::sign(
            &mut headers,
            "POST",
            "/",
            body,
            (&k.access_key_id, &k.secret_access_key),
            "us-east-1",
            "codepipeline",
            now,
        );
    }
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = String::from("POST / HTTP/1.1\r\nconnection: close\r\n");
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\n\r\n",
        declared.unwrap_or(body.len())
    ));
    s.write_all(head.as_bytes()).unwrap();
    if declared.is_none() {
        // The server may answer before reading it all (too large).
        let _ = s.write_all(body);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_name_the_member_and_never_crash() {
    let ws = awsapi_common::common::workspace(&pipeline(), "", &[("b.yml", "version: 0.2\n")]);
    let engine = ws.engine();
    let creds = Credentials::generate();
    let server = pipedeck::awsapi::start(engine.clone(), awsapi_common::options(&creds, &ws.root))
        .await
        .unwrap();
    let addr = server.local_addr;
    let k = creds.clone();
    let results = tokio::task::spawn_blocking(move || {
        let t = "CodePipeline_20150709.GetPipelineState";
        vec![
            ("not json", raw(addr, t, b"{not json", Some(&k), None)),
            ("array", raw(addr, t, b"[1,2]", Some(&k), None)),
            ("missing", raw(addr, t, b"{}", Some(&k), None)),
            ("wrong type", raw(addr, t, br#"{"name": 5}"#, Some(&k), None)),
            (
                "nested",
                raw(
                    addr,
                    "CodePipeline_20150709.PutApprovalResult",
                    br#"{"pipelineName":"web","stageName":"Approve","actionName":"Ship","token":"t","result":{"summary":"x","status":"Maybe"}}"#,
                    Some(&k),
                    None,
                ),
            ),
            (
                "range",
                raw(
                    addr,
                    "CodePipeline_20150709.ListPipelineExecutions",
                    br#"{"pipelineName":"web","maxResults":1000}"#,
                    Some(&k),
                    None,
                ),
            ),
            (
                "unknown op",
                raw(addr, "CodePipeline_20150709.MakeCoffee", b"{}", Some(&k), None),
            ),
            (
                "unknown service",
                raw(addr, "DynamoDB_20120810.ListTables", b"{}", Some(&k), None),
            ),
            ("no target", raw(addr, "", b"{}", Some(&k), None)),
            (
                "declared 20 MB",
                raw(addr, t, b"", Some(&k), Some(20 * 1024 * 1024 + 1)),
            ),
            (
                "sent 21 MB",
                raw(addr, t, &vec![b' '; 21 * 1024 * 1024], Some(&k), None),
            ),
            ("unsigned", raw(addr, t, br#"{"name":"web"}"#, None, None)),
            ("good", raw(addr, t, br#"{"name":"web"}"#, Some(&k), None)),
            (
                "botocore prefix",
                raw(
                    addr,
                    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
                    b"{}",
                    Some(&k),
                    None,
                ),
            ),
            (
                "sdk prefix",
                raw(addr, "CloudTrail_20131101.LookupEvents", b"", Some(&k), None),
            ),
        ]
    })
    .await
    .unwrap();
    let get = |name: &str| {
        results
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| r.clone())
            .unwrap()
    };
    let check = |name: &str, status: u16, code: &str, needle: &str| {
        let (st, body) = get(name);
        assert_eq!(st, status, "{name}: {body}");
        assert_eq!(body["__type"], code, "{name}: {body}");
        let msg = body["message"].as_str().unwrap_or("");
        assert!(msg.contains(needle), "{name}: `{needle}` not in {msg}");
    };
    check("not json", 400, "ValidationException", "not JSON");
    check("array", 400, "ValidationException", "JSON object");
    check("missing", 400, "ValidationException", "at 'name'");
    check("wrong type", 400, "ValidationException", "at 'name'");
    check("nested", 400, "ValidationException", "at 'result.status'");
    check("range", 400, "ValidationException", "at 'maxResults'");
    check("unknown op", 400, "UnknownOperationException", "MakeCoffee");
    check(
        "unknown service",
        400,
        "UnknownOperationException",
        "DynamoDB_20120810",
    );
    check(
        "no target",
        400,
        "UnknownOperationException",
        "X-Amz-Target",
    );
    check(
        "declared 20 MB",
        413,
        "RequestEntityTooLargeException",
        "20971520",
    );
    check(
        "sent 21 MB",
        413,
        "RequestEntityTooLargeException",
        "20971520",
    );
    check(
        "unsigned",
        400,
        "MissingAuthenticationTokenException",
        "Authentication",
    );
    let (st, body) = get("good");
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["pipelineName"], "web");
    for name in ["botocore prefix", "sdk prefix"] {
        let (st, body) = get(name);
        assert_eq!(st, 200, "{name}: {body}");
        assert!(body["Events"].is_array(), "{name}: {body}");
    }
    server.stop().await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_as_the_cli_and_boto3_report_them() {
    let spec = buildspec(&["true"]);
    let Some(api) = Api::new(&pipeline(), &[("b.yml", spec.as_str())]).await else {
        return;
    };
    // boto3: error code and HTTP status of each refusal.
    let r = api.py("refusals.py", &["web"]).await;
    for (case, code) in [
        ("unsigned", "MissingAuthenticationTokenException"),
        ("unknown_key", "UnrecognizedClientException"),
        ("wrong_secret", "InvalidSignatureException"),
        ("stale_date", "InvalidSignatureException"),
    ] {
        assert_eq!(r[case]["code"], code, "{case}: {r}");
        assert_eq!(r[case]["status"], 400, "{case}: {r}");
    }
    assert!(
        r["stale_date"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature expired:"),
        "{r}"
    );
    assert_eq!(r["good"]["status"], 200, "{r}");

    // The AWS CLI: what it prints, and the status in its --debug log.
    let endpoint = api.endpoint.clone();
    for (env, extra, code) in [
        (
            vec![],
            vec!["--no-sign-request"],
            "MissingAuthenticationTokenException",
        ),
        (
            vec![("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN000000000")],
            vec![],
            "UnrecognizedClientException",
        ),
        (
            vec![(
                "AWS_SECRET_ACCESS_KEY",
                "wrong-secret-wrong-secret-wrong-secret00",
            )],
            vec![],
            "InvalidSignatureException",
        ),
    ] {
        let mut args = extra.clone();
        args.extend(["--debug", "codepipeline", "list-pipelines"]);
        let o = api.aws_at(&endpoint, &args, &env).await;
        assert!(!o.ok);
        assert!(
            o.stderr.contains(&format!(
                "An error occurred ({code}) when calling the ListPipelines operation"
            )),
            "{code}: {}",
            o.stderr
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            o.stderr.contains("\"POST / HTTP/1.1\" 400"),
            "{code}: no 400 in the debug log"
        );
    }

    // Read-only: reads pass, every mutation is AccessDeniedException.
    let ro = api.second(|o| o.readonly = true).await;
    let ro_url = format!("http://{}", ro.local_addr);
    let o = api
        .aws_at(
            &ro_url,
            &["codepipeline", "get-pipeline-state", "--name", "web"],
            &[],
        )
        .await;
    assert!(o.ok, "{}", o.stderr);
    for args in [
        vec!["codepipeline", "start-pipeline-execution", "--name", "web"],
        vec![
            "codepipeline",
            "disable-stage-transition",
            "--pipeline-name",
            "web",
            "--stage-name",
            "Build",
            "--transition-type",
            "Inbound",
            "--reason",
            "x",
        ],
        vec![
            "codepipeline",
            "put-approval-result",
            "--pipeline-name",
            "web",
            "--stage-name",
            "Approve",
            "--action-name",
            "Ship",
            "--token",
            "t",
            "--result",
            "summary=x,status=Approved",
        ],
    ] {
        let o = api.aws_at(&ro_url, &args, &[]).await;
        assert!(
            o.stderr.contains("(AccessDeniedException)"),
            "{args:?}: {}",
            o.stderr
        );
        assert!(o.stderr.contains("read-only"), "{}", o.stderr);
    }
    ro.stop().await;

    // Protected stages need the TUI's confirmation, unless protected_via_api.
    let id = awsapi_common::common::start(&api.engine, "web").await;
    awsapi_common::common::until(&api.engine, "web", "the approval waits", |st, _| {
        st.stage_states[1].action_states[0]
            .latest_execution
            .as_ref()
            .is_some_and(|a| a.token.is_some())
    })
    .await;
    let prot = api.second(|o| o.protected = vec!["Approve".into()]).await;
    let prot_url = format!("http://{}", prot.local_addr);
    let st = api
        .aws_at(
            &prot_url,
            &["codepipeline", "get-pipeline-state", "--name", "web"],
            &[],
        )
        .await;
    let token = st.json["stageStates"][1]["actionStates"][0]["latestExecution"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let approve = [
        "codepipeline",
        "put-approval-result",
        "--pipeline-name",
        "web",
        "--stage-name",
        "Approve",
        "--action-name",
        "Ship",
        "--token",
        token.as_str(),
        "--result",
        "summary=x,status=Approved",
    ];
    let o = api.aws_at(&prot_url, &approve, &[]).await;
    assert!(o.stderr.contains("(AccessDeniedException)"), "{}", o.stderr);
    assert!(o.stderr.contains("protected"), "{}", o.stderr);
    prot.stop().await;
    let through = api
        .second(|o| {
            o.protected = vec!["Approve".into()];
            o.protected_via_api = true;
        })
        .await;
    let o = api
        .aws_at(&format!("http://{}", through.local_addr), &approve, &[])
        .await;
    assert!(o.ok, "{}", o.stderr);
    through.stop().await;
    api.wait_status("web", &id, pipedeck::api::types::ExecutionStatus::Succeeded)
        .await;
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_aws_api_and_the_printed_profile() {
    let Some(venv) = awsapi_common::venv() else {
        return;
    };
    let spec = buildspec(&["true"]);
    let ws = awsapi_common::common::workspace(&pipeline(), "", &[("b.yml", spec.as_str())]);
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = cfg_dir.path().join("config.toml");
    std::fs::write(&config, "aws_api = \"127.0.0.1:0\"\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_pipedeck");
    let mut serve = std::process::Command::new(bin)
        .args(["serve", "--aws-api"])
        .env("PIPEDECK_DATA_DIR", &ws.data)
        .env("PIPEDECK_CONFIG", &config)
        .env("PIPEDECK_WORKSPACE", &ws.root)
        .env("PIPEDECK_EPHEMERAL_PORTS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(serve.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let addr = line
        .strip_prefix("AWS API on http://")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    let creds_file = cfg_dir.path().join("aws-api-credentials");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&creds_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let printed = std::process::Command::new(bin)
        .args(["aws-credentials", "--addr", &addr])
        .env("PIPEDECK_CONFIG", &config)
        .env("PIPEDECK_DATA_DIR", &ws.data)
        .output()
        .unwrap();
    let text = String::from_utf8(printed.stdout).unwrap();
    let (creds_part, config_part) = text.split_once("# Add to ~/.aws/config:").unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("credentials"), creds_part).unwrap();
    std::fs::write(home.path().join("config"), config_part).unwrap();
    assert!(config_part.contains(&format!("endpoint_url = http://{addr}")));
    let mut c = std::process::Command::new(venv.join("bin/aws"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["--profile", "pipedeck-local", "--output", "json"]);
    let mut sts = std::process::Command::new(c.get_program());
    sts.args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => sts.env(k, v),
            None => sts.env_remove(k),
        };
    }
    let o = c.args(["codepipeline", "list-pipelines"]).output().unwrap();
    // The account for the TUI's header: STS GetCallerIdentity (query protocol).
    let who = sts.args(["sts", "get-caller-identity"]).output().unwrap();
    let _ = std::process::Command::new("kill")
        .arg(serve.id().to_string())
        .status();
    let status = serve.wait().unwrap();
    assert!(
        o.status.success(),
        "the profile did not work: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pipelines"][0]["name"], "web");
    assert!(
        who.status.success(),
        "sts get-caller-identity: {}",
        String::from_utf8_lossy(&who.stderr)
    );
    let w: Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(w["Account"], pipedeck::model::declaration::LOCAL_ACCOUNT);
    assert!(
        w["Arn"].as_str().unwrap().starts_with("arn:aws:iam::"),
        "{w}"
    );
    assert!(status.success(), "serve did not stop cleanly on SIGTERM");
}

#[test]
fn another_address_than_loopback_warns() {
    use pipedeck::awsapi::server::exposure_warning;
    assert!(exposure_warning(&"127.0.0.1:4590".parse().unwrap()).is_none());
    assert!(exposure_warning(&"[::1]:4590".parse().unwrap()).is_none());
    let w = exposure_warning(&"0.0.0.0:4590".parse().unwrap()).unwrap();
    assert!(w.contains("not a loopback address"), "{w}");
}
