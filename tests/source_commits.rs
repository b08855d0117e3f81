//! ListSourceCommits through the engine: what an approval lets through
//! (the commits since the release live in the environment it gates) and
//! what a retry would not release (the commits after the execution's
//! revision on its branch), read from the mapped git repository.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use pipedeck::api::types::{CommitRange, ExecutionStatus, SourceCommits};
use pipedeck::api::{Reply, Request};

const SERVER: &str = "import os\nfrom http.server import BaseHTTPRequestHandler, HTTPServer\nclass H(BaseHTTPRequestHandler):\n    def do_GET(self):\n        self.send_response(200)\n        self.send_header('Content-Length', '2')\n        self.end_headers()\n        self.wfile.write(b'ok')\n    def log_message(self, *a):\n        pass\nHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n";

async fn commits(
    h: &pipedeck::engine::EngineHandle,
    exec: &str,
    range: CommitRange,
) -> Result<SourceCommits, pipedeck::api::ApiError> {
    call(
        h,
        Request::ListSourceCommits {
            pipeline_name: "p".into(),
            pipeline_execution_id: exec.into(),
            range,
            max_results: None,
        },
    )
    .await
    .map(|r| match r {
        Reply::SourceCommits { commits } => commits,
        other => panic!("{other:?}"),
    })
}

async fn approval_waits(h: &pipedeck::engine::EngineHandle, exec: &str) {
    let exec = exec.to_owned();
    until(h, "p", "the approval to wait", move |st, _| {
        st.stage_states.iter().any(|s| {
            s.stage_name == "Approve"
                && s.latest_execution
                    .as_ref()
                    .is_some_and(|l| l.pipeline_execution_id == exec)
                && s.action_states[0]
                    .latest_execution
                    .as_ref()
                    .is_some_and(|a| a.token.is_some())
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_lists_the_commits_since_the_release_live_where_it_goes() {
    let deploy = r#"{"name": "Deploy-Prod", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeployToECS", "version": "1"},
        "configuration": {"ApplicationName": "web", "DeploymentGroupName": "prod"},
        "inputArtifacts": [{"name": "Src"}]}"#;
    let p = pipeline(
        "p",
        "QUEUED",
        &[
            stage("Approve", &[approval_action("Release")], ""),
            stage("Prod", &[deploy.to_owned()], ""),
        ],
    );
    let ws = workspace(
        &p,
        "[environments.prod]\nport = 0\ncommand = \"exec python3 server.py\"\nhealth_path = \"/\"\nhealth_interval_ms = 50\nhealthy_threshold = 1\nactions = [\"Deploy-Prod\"]\nprotected = true\n",
        &[("server.py", SERVER)],
    );
    let first = git(&ws.repo(), &["rev-parse", "HEAD"]);
    let loaded = ws.load();
    let lock = pipedeck::control::WorkspaceLock::acquire(&loaded).unwrap();
    let h = ws.engine();
    // Another terminal's view: the socket remote of this engine.
    let server = pipedeck::control::serve(&h, &lock).unwrap();
    let remote = pipedeck::backend::remote::Remote::new(
        &loaded,
        pipedeck::control::Client::connect(&loaded).await.unwrap(),
        "pipedeck-tui",
    );
    let e1 = start(&h, "p").await;
    approval_waits(&h, &e1).await;
    // Nothing is live in prod yet: the history up to the candidate.
    let c = commits(
        &h,
        &e1,
        CommitRange::SinceLive {
            stage_name: "Approve".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(c.environment.as_deref(), Some("prod"));
    assert_eq!(c.from, None);
    assert_eq!(c.to, first);
    assert_eq!(c.commits.len(), 1);
    assert_eq!(c.commits[0].message, "initial commit");
    assert_eq!(c.commits[0].author, "Test");
    call(
        &h,
        Request::PutApprovalResult {
            pipeline_name: "p".into(),
            stage_name: "Approve".into(),
            action_name: "Release".into(),
            token: None,
            status: "Approved".into(),
            summary: String::new(),
        },
    )
    .await
    .unwrap();
    until_status(&h, "p", &e1, ExecutionStatus::Succeeded).await;
    // Two commits later, the next release waits at the approval.
    commit(&ws.repo(), &[("a.txt", "a")], "Add a");
    let head = commit(&ws.repo(), &[("b.txt", "b")], "Add b");
    // The first execution's branch has moved on: a retry would not
    // release these.
    let newer = commits(&h, &e1, CommitRange::ToBranchHead).await.unwrap();
    assert_eq!(newer.from.as_deref(), Some(first.as_str()));
    assert_eq!(newer.to, head);
    let subjects: Vec<&str> = newer.commits.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(subjects, ["Add b", "Add a"]);
    // The same answer over the socket.
    use pipedeck::backend::Backend;
    let over_socket = remote
        .call(Request::ListSourceCommits {
            pipeline_name: "p".into(),
            pipeline_execution_id: e1.clone(),
            range: CommitRange::ToBranchHead,
            max_results: Some(1),
        })
        .await
        .unwrap();
    let Reply::SourceCommits { commits: one } = over_socket else {
        panic!("{over_socket:?}")
    };
    assert_eq!(one.commits.len(), 1);
    assert_eq!(one.commits[0].message, "Add b");
    assert!(one.truncated, "two commits, one listed");
    let e2 = start(&h, "p").await;
    approval_waits(&h, &e2).await;
    let c = commits(
        &h,
        &e2,
        CommitRange::SinceLive {
            stage_name: "Approve".into(),
        },
    )
    .await
    .unwrap();
    // From what prod runs (the first commit) to the candidate, newest first.
    assert_eq!(c.from.as_deref(), Some(first.as_str()));
    assert_eq!(c.to, head);
    let subjects: Vec<&str> = c.commits.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(subjects, ["Add b", "Add a"]);
    assert!(!c.truncated);
    // Bad input is an error that names it, never a panic.
    let err = commits(
        &h,
        &e2,
        CommitRange::SinceLive {
            stage_name: "Nope".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, "StageNotFound");
    let err = commits(&h, "no-such-execution", CommitRange::ToBranchHead)
        .await
        .unwrap_err();
    assert_eq!(err.code, "PipelineExecutionNotFound");
    remote.close().await;
    server.drain().await;
    h.shutdown().await;
    drop(lock);
}

#[tokio::test]
async fn the_aws_backend_says_the_commits_are_not_available() {
    use pipedeck::backend::Backend;
    let dir = tempfile::tempdir().unwrap();
    let conf = pipedeck::aws::Clients::static_conf("http://127.0.0.1:1", "eu-west-1").await;
    let clients = pipedeck::aws::Clients::from_conf(&conf, Some("prod".into()));
    let target = pipedeck::aws::AwsTarget {
        label: "prod".into(),
        region: Some("eu-west-1".into()),
        no_retries: true,
        ..Default::default()
    };
    let b = pipedeck::backend::aws::AwsBackend::with_clients(
        vec![(target, clients)],
        Default::default(),
        dir.path().to_path_buf(),
        "pipedeck-test",
    );
    let e = b
        .call(Request::ListSourceCommits {
            pipeline_name: "web".into(),
            pipeline_execution_id: "e-1".into(),
            range: CommitRange::SinceLive {
                stage_name: "Approve".into(),
            },
            max_results: None,
        })
        .await
        .unwrap_err();
    // Said at once, without a call to AWS (the endpoint refuses connections).
    assert_eq!(e.code, "UnsupportedOperation");
    assert!(e.message.contains("not available on AWS"), "{e}");
    assert!(e.message.contains("revision"), "{e}");
}
