//! The AWS backend against moto's server (`moto_server` from the test
//! venv, `PIPEDECK_TEST_VENV`, on a free loopback port): pipelines and
//! executions, a log stream backfilled and followed, `push` creating then
//! updating a pipeline (and refusing import placeholders). Nothing here
//! reaches AWS: the endpoint is 127.0.0.1, the credentials are dummies.

#![allow(clippy::unwrap_used)]

mod aws_mocks;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use aws_mocks::*;
use pipedeck::api::{LogRef, Reply, Request};
use pipedeck::aws::Clients;
use pipedeck::backend::Backend;
use pipedeck::backend::aws::AwsBackend;

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
