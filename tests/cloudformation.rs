//! CloudFormation templates through the whole loading path: intrinsics
//! resolved, pipelines read in CloudFormation's spelling, messages pointing
//! into the template, inline buildspecs found and checked.
#![allow(clippy::unwrap_used)]

use pipedeck::model::diag::Pos;
use pipedeck::model::load::{Format, LoadOptions, load_bytes};

const TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  App:
    Type: String
Resources:
  Build:
    Type: AWS::CodeBuild::Project
    Properties:
      Name: !Sub '${App}-build'
      Source:
        Type: CODEPIPELINE
        BuildSpec: |
          version: 0.2
          phases:
            build:
              comands: [make]
  Pipeline:
    Type: AWS::CodePipeline::Pipeline
    Properties:
      Name: !Sub '${App}-pipeline'
      RoleArn: !GetAtt Role.Arn
      Stages:
        - Name: Source
          Actions:
            - Name: Src
              ActionTypeId: {Category: Source, Owner: AWS, Provider: CodeCommit, Version: '1'}
              Configuration: {RepositoryName: !Ref App, BranchName: main}
              OutputArtifacts: [{Name: Code}]
        - Name: Build
          Actions:
            - Name: Compile
              ActionTypeId: {Category: Build, Owner: AWS, Provider: CodeBuild, Version: '1'}
              Configuration: {ProjectName: !Ref Build}
              InputArtifacts: [{Name: Cod}]
"#;

fn load(params: &[(&str, &str)]) -> pipedeck::model::load::FileReport {
    let opts = LoadOptions {
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..LoadOptions::default()
    };
    load_bytes("stack.yaml", TEMPLATE.as_bytes(), &opts)
}

#[test]
fn a_pipeline_resource_is_read_with_params_resolved() {
    let r = load(&[("App", "shop")]);
    assert_eq!(r.format, Format::Cloudformation);
    let p = &r.pipelines[0].pipeline;
    assert_eq!(p.name, "shop-pipeline");
    assert_eq!(p.role_arn.as_deref(), Some("«GetAtt:Role.Arn»"));
    assert_eq!(
        p.stages[0].actions[0].configuration["RepositoryName"],
        "shop"
    );
    assert_eq!(p.stages[1].actions[0].configuration["ProjectName"], "Build");
}

#[test]
fn validation_errors_point_into_the_template_in_its_spelling() {
    let r = load(&[("App", "shop")]);
    let e = r
        .errors()
        .find(|d| d.message.contains("not produced"))
        .unwrap();
    assert_eq!(
        e.path,
        "Resources.Pipeline.Properties.Stages[1].Actions[0].InputArtifacts[0]"
    );
    assert_eq!(e.pos, Some(Pos::new(34, 39)));
    assert_eq!(e.fix.as_deref(), Some("did you mean `Code`?"));
}

#[test]
fn an_inline_buildspec_of_the_named_project_is_checked_at_template_lines() {
    let r = load(&[("App", "shop")]);
    assert!(
        r.project_buildspecs.is_empty(),
        "the buildspec has an error"
    );
    let e = r
        .errors()
        .find(|d| {
            d.path
                .starts_with("Resources.Build.Properties.Source.BuildSpec")
        })
        .unwrap();
    assert!(e.message.contains("needs `commands`"), "{}", e.message);
    // The phase's map starts at its first key, line 16 of the template.
    assert_eq!(e.pos.unwrap().line, 16);
    let w = r
        .warnings()
        .find(|d| d.message.contains("`comands`"))
        .unwrap();
    assert_eq!(w.pos, Some(Pos::new(16, 15)));
}

#[test]
fn an_unresolvable_name_is_a_placeholder_and_a_warning_not_an_error() {
    let r = load(&[]);
    let p = &r.pipelines[0].pipeline;
    assert_eq!(p.name, "«Ref:App»-pipeline");
    assert!(
        r.warnings()
            .any(|d| d.message.contains("--param App=VALUE"))
    );
    assert!(!r.errors().any(|d| d.message.contains("name")));
}

#[test]
fn pseudo_parameters_are_configurable_through_params() {
    let text = "Resources:\n  P:\n    Type: AWS::CodePipeline::Pipeline\n    Properties:\n      Name: !Sub '${AWS::StackName}-${AWS::Region}-${AWS::AccountId}'\n";
    let opts = LoadOptions {
        params: [
            ("AWS::Region", "eu-west-1"),
            ("AWS::StackName", "shop"),
            ("AWS::AccountId", "111122223333"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
        ..LoadOptions::default()
    };
    let r = load_bytes("t.yaml", text.as_bytes(), &opts);
    assert_eq!(r.pipelines[0].pipeline.name, "shop-eu-west-1-111122223333");
}
