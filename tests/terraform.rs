//! Terraform through the whole loading path: `aws_codepipeline` resources
//! read into the same model as CodePipeline JSON, expressions resolved as a
//! plan could without a cloud, placeholders with one warning each, inline
//! buildspecs checked at the .tf file's own lines, folders read as modules.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pipedeck::model::diag::Pos;
use pipedeck::model::load::{FileReport, Format, LoadOptions, load_bytes, load_path};
use pipedeck::model::terraform::TfOptions;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/terraform")
}

fn opts_env(env: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        terraform: TfOptions {
            env: Some(
                env.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..TfOptions::default()
        },
        ..LoadOptions::default()
    }
}

fn load_tf(text: &str) -> FileReport {
    load_bytes("main.tf", text.as_bytes(), &opts_env(&[]))
}

fn messages(r: &FileReport) -> String {
    let mut out = String::new();
    for d in &r.diagnostics {
        let pos = d.pos.map_or("-".to_owned(), |p| p.to_string());
        let sev = if d.is_error() { "error" } else { "warning" };
        let file = d.file.as_deref().unwrap_or("");
        let _ = writeln!(out, "{file}:{pos} {sev}: {}", d.message);
    }
    out
}

#[test]
fn a_terraform_pipeline_and_the_same_pipeline_in_codepipeline_json_load_to_equal_models() {
    let dir = fixtures().join("equal");
    let tf = load_path(&dir.join("main.tf"), &opts_env(&[]));
    let json = load_path(&dir.join("pipeline.json"), &LoadOptions::default());
    assert_eq!(tf.format, Format::Terraform);
    assert!(tf.ok(), "{}", messages(&tf));
    assert!(json.ok(), "{}", messages(&json));
    assert_eq!(tf.pipelines.len(), 1);
    assert_eq!(tf.pipelines[0].pipeline, json.pipelines[0].pipeline);
    // The project's inline buildspec comes along for the action naming it.
    assert!(tf.project_buildspecs.contains_key("shop-build"));
    // The same folder read as a module gives the same pipeline.
    let module = load_path(&dir, &opts_env(&[]));
    assert_eq!(module.pipelines[0].pipeline, json.pipelines[0].pipeline);
}

const RESOLVE: &str = r#"
variable "app" { default = "shop" }
variable "env" {}
variable "regions" {
  type    = list(string)
  default = ["us-east-1"]
}
variable "approve" {
  type    = bool
  default = true
}

locals {
  prefix   = "${var.app}-${var.env}"
  envs     = { dev = "Dev", prod = "Prod" }
  settings = merge({ a = "1" }, { b = "2" })
  tags     = join(",", concat(["x"], ["y"]))
}

resource "aws_s3_bucket" "artifacts" {
  bucket = "${local.prefix}-artifacts"
}

resource "aws_codebuild_project" "build" {
  count = 2
  name  = format("%s-build-%d", local.prefix, count.index)
}

resource "aws_codepipeline" "p" {
  for_each = local.envs
  name     = "${lower(each.value)}-${local.prefix}"
  role_arn = aws_iam_role.pipeline.arn

  artifact_store {
    location = aws_s3_bucket.artifacts.bucket
    type     = "S3"
  }

  stage {
    name = "Source"
    action {
      name             = "Src"
      category         = "Source"
      owner            = "AWS"
      provider         = "CodeCommit"
      version          = "1"
      output_artifacts = ["Code"]
      configuration = {
        RepositoryName = upper(var.app)
        BranchName     = "%{ if each.key == "prod" }main%{ else }develop%{ endif }"
      }
    }
  }

  dynamic "stage" {
    for_each = var.approve ? ["Approve"] : []
    content {
      name = stage.value
      action {
        name     = stage.value
        category = "Approval"
        owner    = "AWS"
        provider = "Manual"
        version  = "1"
        configuration = {
          CustomData = lookup(local.settings, "b", "none")
        }
      }
    }
  }

  stage {
    name = "Build"
    dynamic "action" {
      for_each = var.regions
      iterator = r
      content {
        name            = "Build-${r.value}"
        category        = "Build"
        owner           = "AWS"
        provider        = "CodeBuild"
        version         = "1"
        region          = r.value
        input_artifacts = ["Code"]
        configuration = {
          ProjectName = aws_codebuild_project.build[1].name
          Tags        = coalesce("", local.tags)
          Key         = try(local.settings.missing, "fallback")
          Remote      = data.aws_ssm_parameter.token.value
        }
      }
    }
  }
}
"#;

#[test]
fn variables_locals_templates_functions_and_repetition_are_resolved() {
    let r = load_bytes(
        "main.tf",
        RESOLVE.as_bytes(),
        &LoadOptions {
            terraform: TfOptions {
                vars: vec![("regions".into(), r#"["us-east-1", "eu-west-1"]"#.into())],
                env: Some(BTreeMap::from([("TF_VAR_env".into(), "qa".into())])),
                ..TfOptions::default()
            },
            ..LoadOptions::default()
        },
    );
    assert!(r.ok(), "{}", messages(&r));
    let names: Vec<&str> = r
        .pipelines
        .iter()
        .map(|p| p.pipeline.name.as_str())
        .collect();
    assert_eq!(names, ["dev-shop-qa", "prod-shop-qa"]);
    let dev = &r.pipelines[0].pipeline;
    assert_eq!(
        dev.role_arn.as_deref(),
        Some("«tf:aws_iam_role.pipeline.arn»")
    );
    assert_eq!(
        dev.artifact_store.as_ref().unwrap().location,
        "shop-qa-artifacts"
    );
    let src = &dev.stages[0].actions[0].configuration;
    assert_eq!(src["RepositoryName"], "SHOP");
    assert_eq!(src["BranchName"], "develop");
    assert_eq!(
        r.pipelines[1].pipeline.stages[0].actions[0].configuration["BranchName"],
        "main"
    );
    assert_eq!(dev.stages[1].name, "Approve");
    assert_eq!(dev.stages[1].actions[0].configuration["CustomData"], "2");
    let builds = &dev.stages[2].actions;
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[1].name, "Build-eu-west-1");
    assert_eq!(builds[1].region.as_deref(), Some("eu-west-1"));
    let c = &builds[0].configuration;
    assert_eq!(c["ProjectName"], "shop-qa-build-1");
    assert_eq!(c["Tags"], "x,y");
    assert_eq!(c["Key"], "fallback");
    assert_eq!(c["Remote"], "«tf:data.aws_ssm_parameter.token.value»");
    // One warning per placeholder, naming what is unknown and where.
    let m = messages(&r);
    assert_eq!(
        m.matches("«tf:aws_iam_role.pipeline.arn»").count(),
        1,
        "{m}"
    );
    assert_eq!(
        m.matches("«tf:data.aws_ssm_parameter.token.value»").count(),
        1,
        "{m}"
    );
    assert!(
        m.contains(":32:14 warning: no resource `aws_iam_role.pipeline`"),
        "{m}"
    );
}

#[test]
fn var_files_and_vars_take_precedence_over_defaults_in_terraform_order() {
    let dir = tempfile::tempdir().unwrap();
    let tfvars = dir.path().join("prod.tfvars");
    std::fs::write(&tfvars, "app = \"fromfile\"\nenv = \"prod\"\n").unwrap();
    let load = |vars: Vec<(String, String)>| {
        load_bytes(
            "main.tf",
            RESOLVE.as_bytes(),
            &LoadOptions {
                terraform: TfOptions {
                    vars,
                    var_files: vec![tfvars.clone()],
                    env: Some(BTreeMap::from([("TF_VAR_app".into(), "fromenv".into())])),
                },
                ..LoadOptions::default()
            },
        )
    };
    let r = load(Vec::new());
    assert_eq!(r.pipelines[0].pipeline.name, "dev-fromfile-prod");
    let r = load(vec![("app".into(), "fromflag".into())]);
    assert_eq!(r.pipelines[0].pipeline.name, "dev-fromflag-prod");
}

#[test]
fn a_variable_without_a_value_is_a_placeholder_and_a_warning_not_an_error() {
    let r = load_tf(RESOLVE);
    assert!(r.ok(), "{}", messages(&r));
    assert_eq!(r.pipelines[0].pipeline.name, "dev-shop-«tf:var.env»");
    let m = messages(&r);
    assert!(
        m.contains("variable `env` has no value: give one with --var env=VALUE"),
        "{m}"
    );
}

#[test]
fn an_inline_buildspec_is_checked_with_messages_at_the_tf_lines() {
    let text = r#"resource "aws_codebuild_project" "build" {
  name = "b"
  source {
    type      = "CODEPIPELINE"
    buildspec = <<-EOT
      version: 0.2
      phases:
        build:
          comands: [make]
    EOT
  }
}

resource "aws_codepipeline" "p" {
  name     = "p"
  role_arn = "arn:aws:iam::123456789012:role/x"
  artifact_store {
    location = "b"
    type     = "S3"
  }
  stage {
    name = "Source"
    action {
      name             = "S"
      category         = "Source"
      owner            = "AWS"
      provider         = "CodeCommit"
      version          = "1"
      output_artifacts = ["Code"]
      configuration    = { RepositoryName = "app", BranchName = "main" }
    }
  }
  stage {
    name = "Build"
    action {
      name            = "B"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = ["Code"]
      configuration   = { ProjectName = aws_codebuild_project.build.id }
    }
  }
}
"#;
    let r = load_tf(text);
    let d = r
        .diagnostics
        .iter()
        .find(|d| d.message.contains("comands"))
        .unwrap_or_else(|| panic!("{}", messages(&r)));
    // `comands` is on line 9 of the .tf file, column 11.
    assert_eq!(d.pos, Some(Pos::new(9, 11)), "{}", messages(&r));
    assert!(
        d.path
            .starts_with("aws_codebuild_project.build.source.buildspec"),
        "{}",
        d.path
    );
    assert!(!r.ok());
    // The action names the project by a reference known only at apply; the
    // buildspec is found for it all the same.
    let r = load_tf(&text.replace("comands", "commands"));
    assert!(r.ok(), "{}", messages(&r));
    let key = "«tf:aws_codebuild_project.build.id»";
    assert!(
        r.project_buildspecs.contains_key(key),
        "{:?}",
        r.project_buildspecs.keys()
    );
}

#[test]
fn a_buildspec_read_with_file_has_its_messages_in_that_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    comands: [make]\n",
    )
    .unwrap();
    let main = RESOLVE.replace(
        "  name  = format(\"%s-build-%d\", local.prefix, count.index)\n",
        "  name  = format(\"%s-build-%d\", local.prefix, count.index)\n  source {\n    type = \"CODEPIPELINE\"\n    buildspec = file(\"${path.module}/buildspec.yml\")\n  }\n",
    );
    std::fs::write(dir.path().join("main.tf"), main).unwrap();
    let r = load_path(
        &dir.path().join("main.tf"),
        &opts_env(&[("TF_VAR_env", "qa")]),
    );
    let d = r
        .diagnostics
        .iter()
        .find(|d| d.message.contains("comands"))
        .unwrap_or_else(|| panic!("{}", messages(&r)));
    assert_eq!(d.pos, Some(Pos::new(4, 5)));
    assert!(
        d.file.as_deref().unwrap().ends_with("buildspec.yml"),
        "{d:?}"
    );
}

#[test]
fn a_folder_is_one_module_and_every_message_names_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let (vars, rest) = RESOLVE.split_at(RESOLVE.find("locals {").unwrap());
    std::fs::write(dir.path().join("variables.tf"), vars).unwrap();
    std::fs::write(dir.path().join("main.tf"), rest).unwrap();
    std::fs::write(dir.path().join("terraform.tfvars"), "env = \"stage\"\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not terraform").unwrap();
    let r = load_path(dir.path(), &opts_env(&[]));
    assert_eq!(r.format, Format::Terraform);
    assert!(r.ok(), "{}", messages(&r));
    assert_eq!(r.pipelines[0].pipeline.name, "dev-shop-stage");
    for d in &r.diagnostics {
        assert!(
            d.file.as_deref().is_some_and(|f| f.ends_with("main.tf")),
            "{d:?}"
        );
    }
}

#[test]
fn syntax_errors_and_missing_pipelines_are_refused_with_line_and_column() {
    let r = load_tf("resource \"aws_codepipeline\" \"p\" {\n  name = \n}\n");
    let e = r.errors().next().unwrap();
    assert!(e.message.starts_with("HCL syntax"), "{}", e.message);
    assert_eq!(e.pos.map(|p| p.line), Some(2));
    let r = load_tf("resource \"aws_s3_bucket\" \"b\" {\n  bucket = \"x\"\n}\n");
    assert!(!r.ok());
    assert!(
        r.errors()
            .next()
            .unwrap()
            .message
            .contains("no `resource \"aws_codepipeline\"`")
    );
}

#[test]
fn pathological_input_gives_an_error_not_a_crash() {
    // Deep nesting.
    let deep = format!(
        "locals {{ x = {}1{} }}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let r = load_tf(&deep);
    assert!(!r.ok());
    // A huge heredoc (8 MiB) in an otherwise real pipeline file.
    let huge = format!(
        "resource \"aws_codepipeline\" \"p\" {{\n  name = <<EOT\n{}\nEOT\n}}\n",
        "x".repeat(8 << 20)
    );
    let r = load_tf(&huge);
    assert!(!r.ok());
    // Exponential templates run into the step and size limits.
    let mut bomb = String::from("locals {\n  a0 = \"xxxxxxxxxxxxxxxx\"\n");
    for i in 1..40 {
        let _ = writeln!(
            bomb,
            "  a{i} = \"${{local.a{p}}}${{local.a{p}}}\"",
            p = i - 1
        );
    }
    bomb.push_str("}\nresource \"aws_codepipeline\" \"p\" {\n  name = local.a39\n}\n");
    let r = load_tf(&bomb);
    assert!(!r.ok());
    // Deeply nested values through a chain of locals (each nested 60 deep).
    let mut chain = String::from("locals {\n  l0 = 1\n");
    for i in 1..60 {
        let _ = writeln!(
            chain,
            "  l{i} = {}local.l{}{}",
            "[".repeat(60),
            i - 1,
            "]".repeat(60)
        );
    }
    chain.push_str("}\nresource \"aws_codepipeline\" \"p\" {\n  name = jsonencode(local.l59)\n}\n");
    let r = load_tf(&chain);
    assert!(!r.ok());
    assert!(messages(&r).contains("nest"), "{}", messages(&r));
    // A device is not read (it would never end).
    let r = load_tf("resource \"aws_codepipeline\" \"p\" {\n  name = file(\"/dev/zero\")\n}\n");
    assert!(
        messages(&r).contains("not a regular file"),
        "{}",
        messages(&r)
    );
    // A 50 MB file is refused before parsing.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.tf");
    std::fs::write(&big, " ".repeat(50 << 20)).unwrap();
    let r = load_path(&big, &LoadOptions::default());
    assert!(
        r.errors().next().unwrap().message.contains("larger than"),
        "{}",
        messages(&r)
    );
}

/// Every real Terraform pipeline file in the corpus loads, or is refused
/// with errors that name a line and column; none panics.
///
/// The real files are other people's code, so the project does not keep
/// copies: they belong in `../shared/corpus/terraform/` beside the other
/// real pipeline files (`tests/fixtures/terraform/CORPUS_SOURCES.tsv` says
/// where each comes from). Until they are there, the test says so.
#[test]
fn corpus_terraform_loads_or_is_refused_with_positions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/terraform");
    if !dir.is_dir() {
        eprintln!(
            "skipped: {} does not exist (the real Terraform files of CORPUS_SOURCES.tsv go there)",
            dir.display()
        );
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{}", files.len());
    let sources = std::fs::read_to_string(fixtures().join("CORPUS_SOURCES.tsv")).unwrap();
    for path in files {
        let mut out = String::new();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(sources.contains(&name), "{name} is not in SOURCES.tsv");
        let r = load_path(&path, &opts_env(&[]));
        let names: Vec<&str> = r
            .pipelines
            .iter()
            .map(|p| p.pipeline.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "{name}: {} {} pipelines={names:?}",
            r.format.as_str(),
            if r.ok() { "ok" } else { "REFUSED" },
        );
        for d in &r.diagnostics {
            if d.is_error() {
                assert!(
                    d.pos.is_some(),
                    "{name}: an error without line and column: {d:?}"
                );
            }
            let pos = d.pos.map_or("-".to_owned(), |p| p.to_string());
            let sev = if d.is_error() { "error" } else { "warning" };
            let _ = writeln!(out, "  {pos} {sev}: {} [{}]", d.message, d.path);
        }
        let stem = name.trim_end_matches(".tf").replace(['.', '-'], "_");
        insta::assert_snapshot!(format!("corpus_{stem}"), out);
    }
}

#[test]
fn the_cli_validates_a_folder_and_draws_a_tf_file_with_vars() {
    let bin = env!("CARGO_BIN_EXE_pipedeck");
    let dir = fixtures().join("equal");
    let o = std::process::Command::new(bin)
        .args(["validate", "--json", "--var", "app=web"])
        .arg(&dir)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["format"], "terraform");
    assert_eq!(v[0]["pipelines"][0], "web-pipeline");
    // In a folder, each message names its file.
    let w = &v[0]["warnings"][0];
    assert!(w["file"].as_str().unwrap().ends_with("main.tf"), "{w}");
    let o = std::process::Command::new(bin)
        .args(["graph", "--width", "120"])
        .arg(dir.join("main.tf"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("pipeline shop-pipeline · 2 stages · V2 · QUEUED"),
        "{out}"
    );
    assert!(out.contains("Compile (CodeBuild)"), "{out}");
}

#[test]
fn a_templatefile_buildspec_is_rendered_with_its_vars_and_directives() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("buildspec.tpl"),
        "version: 0.2\nphases:\n  build:\n    commands:\n%{ for c in cmds ~}\n      - ${c} ${env}\n%{ endfor ~}\n",
    )
    .unwrap();
    let main = RESOLVE.replace(
        "  name  = format(\"%s-build-%d\", local.prefix, count.index)\n",
        "  name  = format(\"%s-build-%d\", local.prefix, count.index)\n  source {\n    type = \"CODEPIPELINE\"\n    buildspec = templatefile(\"buildspec.tpl\", { cmds = [\"make\", \"make test\"], env = var.env })\n  }\n",
    );
    std::fs::write(dir.path().join("main.tf"), main).unwrap();
    let r = load_path(
        &dir.path().join("main.tf"),
        &opts_env(&[("TF_VAR_env", "qa")]),
    );
    assert!(r.ok(), "{}", messages(&r));
    let spec = &r.project_buildspecs["shop-qa-build-1"];
    let cmds: Vec<&str> = spec
        .phases
        .build
        .as_ref()
        .unwrap()
        .commands
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    assert_eq!(cmds, ["make qa", "make test qa"]);
}

#[test]
fn a_template_file_that_renders_itself_is_an_error_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.tpl"), "${templatefile(\"t.tpl\", {})}").unwrap();
    std::fs::write(
        dir.path().join("main.tf"),
        "resource \"aws_codepipeline\" \"p\" {\n  name = templatefile(\"t.tpl\", {})\n}\n",
    )
    .unwrap();
    let r = load_path(&dir.path().join("main.tf"), &opts_env(&[]));
    assert!(messages(&r).contains("calls itself"), "{}", messages(&r));
}
