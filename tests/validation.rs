#![allow(clippy::unwrap_used)]
//! Each structural rule of CodePipeline (reference §1) as pipedeck reports
//! it: the message, the path in the file's spelling, and the position.

use pipedeck::model::diag::{Diagnostic, Pos};
use pipedeck::model::load::{FileReport, LoadOptions, load_bytes};
use serde_json::{Value, json};

fn base() -> Value {
    json!({"pipeline": {
        "name": "p",
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Src",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
                "configuration": {"RepositoryName": "r", "BranchName": "main"},
                "outputArtifacts": [{"name": "SourceOut"}],
                "namespace": "SourceVariables"
            }]},
            {"name": "Build", "actions": [{
                "name": "Compile",
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "runOrder": 1,
                "configuration": {"ProjectName": "x"},
                "inputArtifacts": [{"name": "SourceOut"}],
                "outputArtifacts": [{"name": "BuildOut"}],
                "namespace": "BuildVariables"
            }]}
        ]
    }})
}

fn load(v: &Value) -> FileReport {
    let text = serde_json::to_string_pretty(v).unwrap();
    load_bytes("p.json", text.as_bytes(), &LoadOptions::default())
}

fn errors(r: &FileReport) -> Vec<&Diagnostic> {
    r.errors().collect()
}

fn only_error(r: &FileReport) -> Diagnostic {
    let e = errors(r);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    e[0].clone()
}

fn action(v: &mut Value, stage: usize, action: usize) -> &mut Value {
    &mut v["pipeline"]["stages"][stage]["actions"][action]
}

fn push_action(v: &mut Value, stage: usize, a: Value) {
    v["pipeline"]["stages"][stage]["actions"]
        .as_array_mut()
        .unwrap()
        .push(a);
}

fn build_action(name: &str, run_order: u32, input: &str) -> Value {
    json!({
        "name": name,
        "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "runOrder": run_order,
        "configuration": {"ProjectName": "t"},
        "inputArtifacts": [{"name": input}]
    })
}

#[test]
fn a_valid_pipeline_has_no_findings() {
    let r = load(&base());
    assert!(r.diagnostics.is_empty(), "{:#?}", r.diagnostics);
    assert_eq!(r.pipelines[0].pipeline.stages.len(), 2);
}

#[test]
fn a_pipeline_needs_at_least_two_stages() {
    let mut v = base();
    v["pipeline"]["stages"].as_array_mut().unwrap().pop();
    let e = only_error(&load(&v));
    assert!(e.message.contains("2 to 50 stages"), "{}", e.message);
    assert_eq!(e.path, "pipeline.stages");
}

#[test]
fn stage_names_must_be_unique() {
    let mut v = base();
    v["pipeline"]["stages"][1]["name"] = json!("Source");
    let e = only_error(&load(&v));
    assert!(e.message.contains("used twice"));
    assert_eq!(e.path, "pipeline.stages[1].name");
}

#[test]
fn action_names_must_be_unique_within_a_stage() {
    let mut v = base();
    push_action(&mut v, 1, build_action("Compile", 2, "SourceOut"));
    let e = only_error(&load(&v));
    assert_eq!(e.path, "pipeline.stages[1].actions[1].name");
}

#[test]
fn the_first_stage_holds_only_source_actions() {
    let mut v = base();
    push_action(&mut v, 0, build_action("Early", 2, "SourceOut"));
    let e = only_error(&load(&v));
    assert!(
        e.message.contains("first stage may hold only Source"),
        "{}",
        e.message
    );
}

#[test]
fn source_actions_appear_only_in_the_first_stage() {
    let mut v = base();
    let mut src = action(&mut v, 0, 0).clone();
    src["name"] = json!("Late");
    src["outputArtifacts"] = json!([{"name": "Other"}]);
    src["namespace"] = json!("Other");
    push_action(&mut v, 1, src);
    let e = only_error(&load(&v));
    assert!(
        e.message.contains("must be in the first stage"),
        "{}",
        e.message
    );
}

#[test]
fn an_input_artifact_must_be_produced_by_some_action() {
    let mut v = base();
    action(&mut v, 1, 0)["inputArtifacts"] = json!([{"name": "SourceOutt"}]);
    let r = load(&v);
    let e = only_error(&r);
    assert!(e.message.contains("not produced by any action"));
    assert_eq!(e.fix.as_deref(), Some("did you mean `SourceOut`?"));
    assert_eq!(e.path, "pipeline.stages[1].actions[0].inputArtifacts[0]");
    // The position is the artifact's name in the file.
    let text = serde_json::to_string_pretty(&v).unwrap();
    let line = text.lines().position(|l| l.contains("SourceOutt")).unwrap() + 1;
    assert_eq!(e.pos.unwrap().line as usize, line);
}

#[test]
fn an_input_from_the_same_run_order_does_not_run_before() {
    let mut v = base();
    push_action(&mut v, 1, build_action("UsesBuildOut", 1, "BuildOut"));
    let e = only_error(&load(&v));
    assert!(e.message.contains("does not run before"), "{}", e.message);
}

#[test]
fn an_input_from_a_lower_run_order_in_the_same_stage_is_fine() {
    let mut v = base();
    push_action(&mut v, 1, build_action("UsesBuildOut", 2, "BuildOut"));
    assert!(load(&v).ok());
}

#[test]
fn output_artifact_names_are_unique_in_the_pipeline() {
    let mut v = base();
    action(&mut v, 1, 0)["outputArtifacts"] = json!([{"name": "SourceOut"}]);
    let e = only_error(&load(&v));
    assert!(e.message.contains("already produced"), "{}", e.message);
}

#[test]
fn namespaces_are_unique() {
    let mut v = base();
    action(&mut v, 1, 0)["namespace"] = json!("SourceVariables");
    let e = only_error(&load(&v));
    assert!(e.message.contains("more than one action"));
}

#[test]
fn a_variable_reference_needs_an_earlier_namespace() {
    let mut v = base();
    action(&mut v, 1, 0)["configuration"]["EnvironmentVariables"] =
        json!("[{\"name\":\"C\",\"value\":\"#{BuildVariables.X}\"}]");
    let e = only_error(&load(&v));
    assert!(e.message.contains("does not run before"), "{}", e.message);
    assert_eq!(
        e.path,
        "pipeline.stages[1].actions[0].configuration.EnvironmentVariables"
    );
}

#[test]
fn a_variable_reference_to_an_unknown_namespace_suggests_one() {
    let mut v = base();
    action(&mut v, 1, 0)["configuration"]["ProjectName"] = json!("#{SourceVariable.CommitId}");
    let e = only_error(&load(&v));
    assert!(e.message.contains("no action declares"));
    assert_eq!(e.fix.as_deref(), Some("did you mean `SourceVariables`?"));
}

#[test]
fn earlier_namespace_references_are_fine() {
    let mut v = base();
    action(&mut v, 1, 0)["configuration"]["ProjectName"] =
        json!("#{SourceVariables.CommitId}-#{codepipeline.PipelineExecutionId}");
    assert!(load(&v).diagnostics.is_empty());
}

#[test]
fn pipeline_variable_references_must_be_declared() {
    let mut v = base();
    v["pipeline"]["variables"] = json!([{"name": "Env", "defaultValue": "dev"}]);
    action(&mut v, 1, 0)["configuration"]["ProjectName"] = json!("#{variables.Envv}");
    let e = only_error(&load(&v));
    assert!(e.message.contains("undeclared pipeline variable"));
    assert_eq!(e.fix.as_deref(), Some("did you mean `Env`?"));
}

#[test]
fn run_order_must_be_between_1_and_999() {
    for bad in [0, 1000] {
        let mut v = base();
        action(&mut v, 1, 0)["runOrder"] = json!(bad);
        let e = only_error(&load(&v));
        assert!(e.message.contains("1 to 999"), "{}", e.message);
    }
}

#[test]
fn run_order_may_be_written_as_a_string() {
    let mut v = base();
    action(&mut v, 1, 0)["runOrder"] = json!("3");
    let r = load(&v);
    assert!(r.ok());
    assert_eq!(r.pipelines[0].pipeline.stages[1].actions[0].run_order, 3);
}

#[test]
fn manual_approval_configuration_keys_are_checked() {
    let mut v = base();
    push_action(
        &mut v,
        1,
        json!({"name": "Approve", "runOrder": 2,
               "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
               "configuration": {"CustomDat": "x"}}),
    );
    let e = only_error(&load(&v));
    assert!(
        e.message
            .contains("not a Manual approval configuration key")
    );
    assert_eq!(e.fix.as_deref(), Some("did you mean `CustomData`?"));
}

#[test]
fn v2_features_on_a_v1_pipeline_are_errors() {
    let mut v = base();
    v["pipeline"]["pipelineType"] = json!("V1");
    v["pipeline"]["executionMode"] = json!("QUEUED");
    v["pipeline"]["variables"] = json!([{"name": "Env", "defaultValue": "dev"}]);
    let r = load(&v);
    let e = errors(&r);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e.iter()
            .all(|d| d.fix.as_deref() == Some("set pipelineType to V2"))
    );
}

#[test]
fn v2_features_without_a_pipeline_type_are_a_warning() {
    let mut v = base();
    v["pipeline"]
        .as_object_mut()
        .unwrap()
        .remove("pipelineType");
    v["pipeline"]["executionMode"] = json!("PARALLEL");
    let r = load(&v);
    assert!(r.ok());
    assert_eq!(r.warnings().count(), 1);
}

#[test]
fn providers_that_cannot_run_locally_are_named_in_a_warning() {
    let mut v = base();
    action(&mut v, 1, 0)["actionTypeId"]["provider"] = json!("Jenkins");
    action(&mut v, 1, 0)["actionTypeId"]["owner"] = json!("Custom");
    let r = load(&v);
    assert!(r.ok());
    let w: Vec<_> = r.warnings().collect();
    assert_eq!(w.len(), 1);
    assert!(
        w[0].message.contains("provider `Jenkins`"),
        "{}",
        w[0].message
    );
}

#[test]
fn unknown_keys_are_warnings_with_a_suggestion() {
    let mut v = base();
    action(&mut v, 1, 0)["runorder"] = json!(2);
    let r = load(&v);
    let w: Vec<_> = r.warnings().collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].fix.as_deref(), Some("did you mean `runOrder`?"));
    assert_eq!(w[0].path, "pipeline.stages[1].actions[0].runorder");
}

#[test]
fn trigger_source_action_must_exist() {
    let mut v = base();
    v["pipeline"]["triggers"] = json!([{
        "providerType": "CodeStarSourceConnection",
        "gitConfiguration": {"sourceActionName": "Srcc", "push": [{"branches": {"includes": ["main"]}}]}
    }]);
    let e = only_error(&load(&v));
    assert_eq!(e.fix.as_deref(), Some("did you mean `Src`?"));
}

#[test]
fn a_missing_required_field_is_an_error_at_its_parent() {
    let mut v = base();
    action(&mut v, 1, 0)
        .as_object_mut()
        .unwrap()
        .remove("actionTypeId");
    let r = load(&v);
    let e: Vec<_> = r.errors().collect();
    assert!(
        e.iter()
            .any(|d| d.message.contains("missing `actionTypeId`")),
        "{e:#?}"
    );
}

#[test]
fn json_syntax_errors_name_line_and_column() {
    let r = load_bytes(
        "bad.json",
        b"{\n  \"pipeline\": {\n    \"name\": \"x\",\n  }\n}",
        &LoadOptions::default(),
    );
    let e = only_error(&r);
    assert_eq!(e.pos, Some(Pos::new(4, 3)));
    assert!(e.message.contains("trailing comma"), "{}", e.message);
}

#[test]
fn nesting_100000_deep_is_an_error_not_a_crash() {
    let text = "[".repeat(100_000) + &"]".repeat(100_000);
    let r = load_bytes("deep.json", text.as_bytes(), &LoadOptions::default());
    assert!(only_error(&r).message.contains("nesting"));
    let yaml = "a: ".to_owned() + &"[".repeat(100_000);
    let r = load_bytes("deep.yml", yaml.as_bytes(), &LoadOptions::default());
    assert!(!r.ok());
    let toml = "a = ".to_owned() + &"[".repeat(100_000);
    let r = load_bytes("deep.toml", toml.as_bytes(), &LoadOptions::default());
    assert!(only_error(&r).message.contains("nesting"));
}

#[test]
fn a_50_mb_file_is_refused_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.json");
    let mut text = String::from("{\"pipeline\": {\"name\": \"");
    text.push_str(&"x".repeat(50 * 1024 * 1024));
    text.push_str("\"}}");
    std::fs::write(&path, text).unwrap();
    let r = pipedeck::model::load::load_path(&path, &LoadOptions::default());
    assert!(only_error(&r).message.contains("larger than"));
}

#[test]
fn utf16_json_with_crlf_loads() {
    let text = serde_json::to_string_pretty(&base())
        .unwrap()
        .replace('\n', "\r\n");
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        bytes.extend(u.to_le_bytes());
    }
    let r = load_bytes("u16.json", &bytes, &LoadOptions::default());
    assert!(r.diagnostics.is_empty(), "{:#?}", r.diagnostics);
}

#[test]
fn the_toml_and_json_examples_load_to_equal_models() {
    let root = env!("CARGO_MANIFEST_DIR");
    let opts = LoadOptions::default();
    let t = pipedeck::model::load::load_path(
        &std::path::Path::new(root).join("assets/example-pipeline.toml"),
        &opts,
    );
    let j = pipedeck::model::load::load_path(
        &std::path::Path::new(root).join("assets/example-pipeline.json"),
        &opts,
    );
    assert!(t.diagnostics.is_empty(), "{:#?}", t.diagnostics);
    assert!(j.diagnostics.is_empty(), "{:#?}", j.diagnostics);
    assert_eq!(t.pipelines[0].pipeline, j.pipelines[0].pipeline);
}

#[test]
fn toml_errors_use_snake_case_paths() {
    let text = "name = \"p\"\n[[stages]]\nname = \"S\"\n[[stages.actions]]\nname = \"A\"\nrun_order = 0\naction_type_id = { category = \"Source\", owner = \"AWS\", provider = \"CodeCommit\", version = \"1\" }\noutput_artifacts = [\"O\"]\n";
    let r = load_bytes("p.toml", text.as_bytes(), &LoadOptions::default());
    let run_order = r
        .errors()
        .find(|d| d.message.contains("1 to 999"))
        .expect("runOrder error");
    assert_eq!(run_order.path, "stages[0].actions[0].run_order");
    assert_eq!(run_order.pos, Some(Pos::new(6, 13)));
}
