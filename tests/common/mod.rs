//! Shared helpers for engine tests: a temporary workspace with its own git
//! repository, an engine on it, and waits driven by the engine's events.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pipedeck::api::types::ExecutionStatus;
use pipedeck::api::{ActionExecutionDetail, ExecutionSummary, PipelineState, Reply, Request};
use pipedeck::config::workspace::Workspace;
use pipedeck::engine::{EngineHandle, EngineOptions};

pub struct Ws {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub data: PathBuf,
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Writes `files` into the repo and commits them; returns the commit.
pub fn commit(repo: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (name, text) in files {
        let p = repo.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", message]);
    git(repo, &["rev-parse", "HEAD"])
}

/// A workspace whose root holds `pipeline.json`, `pipedeck.toml` and a
/// repository `app/` (branch main) with `files`.
pub fn workspace(pipeline: &str, config: &str, files: &[(&str, &str)]) -> Ws {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let data = dir.path().join("data");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("pipeline.json"), pipeline).unwrap();
    let config = format!(
        "[workspace]\nidentity = \"tester\"\npoll_interval_seconds = 0.2\n\n[repositories.app]\npath = \"app\"\nbranch = \"main\"\n\n{config}"
    );
    std::fs::write(root.join("pipedeck.toml"), config).unwrap();
    let repo = root.join("app");
    git(&repo, &["init", "-q", "-b", "main"]);
    commit(&repo, files, "initial commit");
    Ws { dir, root, data }
}

impl Ws {
    pub fn repo(&self) -> PathBuf {
        self.root.join("app")
    }
    pub fn load(&self) -> Workspace {
        Workspace::load(&self.root, &self.data).unwrap()
    }
    pub fn engine(&self) -> EngineHandle {
        self.engine_with(false)
    }
    pub fn engine_with(&self, triggers: bool) -> EngineHandle {
        pipedeck::engine::start(self.load(), EngineOptions { triggers }).unwrap()
    }
}

pub async fn call(h: &EngineHandle, r: Request) -> Result<Reply, pipedeck::api::ApiError> {
    h.request("test", r).await
}

pub async fn start(h: &EngineHandle, pipeline: &str) -> String {
    match call(
        h,
        Request::StartPipelineExecution {
            pipeline_name: pipeline.into(),
            variables: Default::default(),
            source_revisions: vec![],
        },
    )
    .await
    .unwrap()
    {
        Reply::Started {
            pipeline_execution_id,
        } => pipeline_execution_id,
        other => panic!("{other:?}"),
    }
}

pub async fn execution(h: &EngineHandle, pipeline: &str, id: &str) -> ExecutionSummary {
    match call(
        h,
        Request::GetPipelineExecution {
            pipeline_name: pipeline.into(),
            pipeline_execution_id: id.into(),
        },
    )
    .await
    .unwrap()
    {
        Reply::Execution { execution } => execution,
        other => panic!("{other:?}"),
    }
}

pub async fn state(h: &EngineHandle, pipeline: &str) -> PipelineState {
    match call(
        h,
        Request::GetPipelineState {
            pipeline_name: pipeline.into(),
        },
    )
    .await
    .unwrap()
    {
        Reply::State { state } => state,
        other => panic!("{other:?}"),
    }
}

pub async fn actions(h: &EngineHandle, pipeline: &str, id: &str) -> Vec<ActionExecutionDetail> {
    match call(
        h,
        Request::ListActionExecutions {
            pipeline_name: pipeline.into(),
            pipeline_execution_id: id.into(),
            max_results: None,
            next_token: None,
        },
    )
    .await
    .unwrap()
    {
        Reply::ActionExecutions { actions, .. } => actions,
        other => panic!("{other:?}"),
    }
}

/// Waits (event-driven, 60 s at most) until `pred` holds for the pipeline.
pub async fn until<F>(h: &EngineHandle, pipeline: &str, what: &str, mut pred: F)
where
    F: FnMut(&PipelineState, &[ExecutionSummary]) -> bool,
{
    let mut rx = h.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let st = state(h, pipeline).await;
        let execs = match call(
            h,
            Request::ListPipelineExecutions {
                pipeline_name: pipeline.into(),
                max_results: None,
                next_token: None,
            },
        )
        .await
        .unwrap()
        {
            Reply::Executions { executions, .. } => executions,
            other => panic!("{other:?}"),
        };
        if pred(&st, &execs) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for: {what}\nstate: {}\nexecutions: {}",
                serde_json::to_string_pretty(&st).unwrap(),
                serde_json::to_string_pretty(&execs).unwrap()
            );
        }
        let _ = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    }
}

/// Waits until execution `id` has status `status`.
pub async fn until_status(h: &EngineHandle, pipeline: &str, id: &str, status: ExecutionStatus) {
    let id2 = id.to_owned();
    until(
        h,
        pipeline,
        &format!("{id} to be {status:?}"),
        move |_, execs| {
            execs
                .iter()
                .any(|e| e.pipeline_execution_id == id2 && e.status == status)
        },
    )
    .await;
}

pub fn stage_status(st: &PipelineState, stage: &str) -> Option<String> {
    st.stage_states
        .iter()
        .find(|s| s.stage_name == stage)
        .and_then(|s| s.latest_execution.as_ref())
        .map(|l| format!("{:?}", l.status))
}

pub fn action_status(st: &PipelineState, stage: &str, action: &str) -> Option<String> {
    st.stage_states
        .iter()
        .find(|s| s.stage_name == stage)?
        .action_states
        .iter()
        .find(|a| a.action_name == action)?
        .latest_execution
        .as_ref()
        .map(|a| format!("{:?}", a.status))
}

/// A pipeline JSON: a Source stage from repository `app`, then `stages`
/// (each a JSON stage object as text).
pub fn pipeline(name: &str, mode: &str, stages: &[String]) -> String {
    format!(
        r#"{{"pipeline": {{"name": "{name}", "roleArn": "arn:aws:iam::123456789012:role/x",
  "artifactStore": {{"type": "S3", "location": "bucket"}}, "pipelineType": "V2",
  "executionMode": "{mode}",
  "stages": [
    {{"name": "Source", "actions": [{{"name": "Source",
      "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
      "configuration": {{"RepositoryName": "app", "BranchName": "main"}},
      "outputArtifacts": [{{"name": "Src"}}], "namespace": "SourceVariables"}}]}}
    {}
  ]}}}}"#,
        stages.iter().map(|s| format!(",{s}")).collect::<String>()
    )
}

/// A CodeBuild action running `buildspec` (a path in the source).
pub fn build_action(name: &str, run_order: u32, buildspec: &str, extra: &str) -> String {
    format!(
        r#"{{"name": "{name}", "runOrder": {run_order},
      "actionTypeId": {{"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}},
      "configuration": {{"ProjectName": "{name}", "BuildspecOverride": "{buildspec}"}},
      "inputArtifacts": [{{"name": "Src"}}]{extra}}}"#
    )
}

pub fn approval_action(name: &str) -> String {
    format!(
        r#"{{"name": "{name}",
      "actionTypeId": {{"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
      "configuration": {{"CustomData": "ship #{{SourceVariables.CommitId}}?"}}}}"#
    )
}

pub fn stage(name: &str, actions: &[String], extra: &str) -> String {
    format!(
        r#"{{"name": "{name}", "actions": [{}]{extra}}}"#,
        actions.join(",")
    )
}

/// A buildspec whose build phase runs `cmds`.
pub fn buildspec(cmds: &[&str]) -> String {
    let mut s = String::from("version: 0.2\nphases:\n  build:\n    commands:\n");
    for c in cmds {
        s.push_str(&format!("      - {}\n", yaml_quote(c)));
    }
    s
}

pub fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
