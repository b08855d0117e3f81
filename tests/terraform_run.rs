//! A pipeline read from Terraform runs locally end to end: a git source and
//! a CodeBuild action whose buildspec is the `aws_codebuild_project`'s
//! inline heredoc (the repository has no buildspec.yml).
#![allow(clippy::unwrap_used)]

mod common;

use common::{actions, commit, execution, git, start, until};
use pipedeck::api::types::ExecutionStatus;
use pipedeck::config::workspace::Workspace;
use pipedeck::engine::EngineOptions;
use pipedeck::store::logs::LogReader;

const MAIN_TF: &str = r#"
variable "repo" {
  default = "app"
}

locals {
  name = "tf-${var.repo}"
}

resource "aws_codebuild_project" "build" {
  name         = "${local.name}-build"
  service_role = aws_iam_role.build.arn
  source {
    type      = "CODEPIPELINE"
    buildspec = <<-EOT
      version: 0.2
      phases:
        build:
          commands:
            - echo "built ${local.name} from $(cat v.txt)"
      artifacts:
        files:
          - v.txt
    EOT
  }
}

resource "aws_codepipeline" "main" {
  name     = local.name
  role_arn = aws_iam_role.pipeline.arn

  artifact_store {
    location = "artifacts"
    type     = "S3"
  }

  stage {
    name = "Source"
    action {
      name             = "Source"
      category         = "Source"
      owner            = "AWS"
      provider         = "CodeCommit"
      version          = "1"
      namespace        = "SourceVariables"
      output_artifacts = ["Src"]
      configuration = {
        RepositoryName = var.repo
        BranchName     = "main"
      }
    }
  }

  stage {
    name = "Build"
    action {
      name             = "Compile"
      category         = "Build"
      owner            = "AWS"
      provider         = "CodeBuild"
      version          = "1"
      input_artifacts  = ["Src"]
      output_artifacts = ["Out"]
      configuration = {
        ProjectName = aws_codebuild_project.build.name
      }
    }
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terraform_pipeline_runs_its_projects_inline_buildspec() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let data = dir.path().join("data");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::create_dir_all(root.join("infra")).unwrap();
    std::fs::write(root.join("infra/main.tf"), MAIN_TF).unwrap();
    std::fs::write(
        root.join("pipedeck.toml"),
        "[workspace]\nidentity = \"tester\"\npipelines = [\"infra\"]\npoll_interval_seconds = 0.2\n\n\
         [repositories.app]\npath = \"app\"\nbranch = \"main\"\n",
    )
    .unwrap();
    let repo = root.join("app");
    git(&repo, &["init", "-q", "-b", "main"]);
    commit(&repo, &[("v.txt", "version-one")], "initial commit");

    let ws = Workspace::load(&root, &data).unwrap();
    assert_eq!(ws.pipelines[0].pipeline.name, "tf-app");
    assert!(
        ws.pipelines[0]
            .project_buildspecs
            .contains_key("tf-app-build")
    );
    let h = pipedeck::engine::start(ws.clone(), EngineOptions { triggers: false }).unwrap();
    let id = start(&h, "tf-app").await;
    let id2 = id.clone();
    until(&h, "tf-app", "the execution to end", move |_, ex| {
        ex.iter()
            .any(|e| e.pipeline_execution_id == id2 && e.status.is_terminal())
    })
    .await;
    let acts = actions(&h, "tf-app", &id).await;
    let b = acts.iter().find(|a| a.action_name == "Compile").unwrap();
    let mut r = LogReader::open(&ws.state_dir.join("logs"), &b.action_execution_id).unwrap();
    let n = r.len();
    let log = r.read(0, n).unwrap().join("\n");
    assert_eq!(
        execution(&h, "tf-app", &id).await.status,
        ExecutionStatus::Succeeded,
        "{log}"
    );
    assert!(log.contains("built tf-app from version-one"), "{log}");
    h.shutdown().await;
}
