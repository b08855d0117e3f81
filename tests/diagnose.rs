//! Failure diagnosis: every labelled fixture in tests/fixtures/diagnose,
//! top-1 accuracy, clean logs, and unit checks of the Rust-side logic.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use pipedeck::api::{ActionExecutionDetail, AuditEvent, ExecutionSummary, TransitionState};
use pipedeck::diagnose::{Catalogue, Evidence, HealthEvent, Input, diagnose};
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diagnose")
}

fn merge(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Object(mut b), Value::Object(o)) => {
            for (k, v) in o {
                let old = b.remove(&k).unwrap_or(Value::Null);
                b.insert(k, merge(old, v));
            }
            Value::Object(b)
        }
        (_, o) => o,
    }
}

fn base_action() -> Value {
    json!({
        "actionExecutionId": "a-1", "pipelineExecutionId": "e-1", "stageName": "Build",
        "actionName": "Build", "attempt": 1, "status": "Failed", "summary": null,
        "startTime": "2026-11-26T20:00:00Z", "lastStatusChange": "2026-11-26T20:10:00Z",
        "token": null, "externalExecutionId": null, "errorDetails": null,
        "resolvedConfiguration": {}, "inputArtifacts": [], "outputArtifacts": [],
        "outputVariables": {}, "testReport": null, "approval": null, "logLines": 0, "phases": []
    })
}

fn base_execution() -> Value {
    json!({
        "pipelineExecutionId": "e-1", "pipelineName": "web", "pipelineVersion": 1,
        "status": "Failed", "statusSummary": null, "startTime": "2026-11-26T20:00:00Z",
        "lastUpdateTime": "2026-11-26T20:10:00Z",
        "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "alice"},
        "executionMode": "SUPERSEDED", "executionType": "STANDARD", "rollbackTarget": null,
        "sourceRevisions": [], "variables": {}, "stopReason": null, "currentStage": null
    })
}

fn base_audit() -> Value {
    json!({
        "eventVersion": "1.08", "eventId": "ev-1", "eventTime": "2026-11-26T20:05:00Z",
        "eventSource": "codepipeline.amazonaws.com", "eventName": "X", "awsRegion": "us-east-1",
        "sourceIpAddress": "127.0.0.1", "userAgent": "pipedeck",
        "userIdentity": {"type": "IAMUser", "principalId": "P", "arn": "arn:aws:iam::123456789012:user/x",
                         "accountId": "123456789012", "userName": null, "invokedBy": null},
        "requestParameters": {}, "responseElements": null, "errorCode": null, "errorMessage": null,
        "eventType": "AwsApiCall", "readOnly": false
    })
}

fn read_json(dir: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display())))
}

struct Case {
    name: String,
    top: String,
    title_contains: Option<String>,
    log: Vec<String>,
    action: Option<ActionExecutionDetail>,
    execution: Option<ExecutionSummary>,
    audit: Vec<AuditEvent>,
    health: Vec<HealthEvent>,
    transition: Option<(String, TransitionState)>,
}

fn load(dir: &Path) -> Case {
    let expected: toml::Table =
        toml::from_str(&std::fs::read_to_string(dir.join("expected.toml")).unwrap()).unwrap();
    let log = std::fs::read_to_string(dir.join("log.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let action = read_json(dir, "action.json")
        .map(|v| serde_json::from_value(merge(base_action(), v)).unwrap());
    let execution = read_json(dir, "execution.json")
        .map(|v| serde_json::from_value(merge(base_execution(), v)).unwrap());
    let audit = read_json(dir, "audit.json")
        .map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|e| serde_json::from_value(merge(base_audit(), e.clone())).unwrap())
                .collect()
        })
        .unwrap_or_default();
    let health = read_json(dir, "health.json")
        .map(|v| serde_json::from_value(v).unwrap())
        .unwrap_or_default();
    let transition = read_json(dir, "transition.json").map(|v| {
        let stage = v["stage"].as_str().unwrap().to_owned();
        let t = TransitionState {
            enabled: v["enabled"].as_bool().unwrap(),
            last_changed_by: v["lastChangedBy"].as_str().map(str::to_owned),
            last_changed_at: None,
            disabled_reason: v["disabledReason"].as_str().map(str::to_owned),
        };
        (stage, t)
    });
    Case {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        top: expected["top"].as_str().unwrap().to_owned(),
        title_contains: expected
            .get("title_contains")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        log,
        action,
        execution,
        audit,
        health,
        transition,
    }
}

fn all_cases() -> Vec<Case> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.toml").exists())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load(d)).collect()
}

fn run(case: &Case, cat: &Catalogue) -> Vec<pipedeck::diagnose::Finding> {
    let input = Input {
        log: &case.log,
        action: case.action.as_ref(),
        execution: case.execution.as_ref(),
        audit: &case.audit,
        health: &case.health,
        disabled_transition: case.transition.as_ref().map(|(s, t)| (s.as_str(), t)),
        window: None,
    };
    diagnose(&input, cat)
}

#[test]
fn builtin_catalogue_loads_cleanly() {
    let (cat, warnings) = Catalogue::with_user_dir(None);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(cat.rules.len() >= 40, "{} rules", cat.rules.len());
    assert_eq!(cat.rules.len(), Catalogue::builtin().rules.len());
}

#[test]
fn fixtures_top1_accuracy() {
    let cat = Catalogue::builtin();
    let cases = all_cases();
    let failures: Vec<&Case> = cases.iter().filter(|c| c.top != "none").collect();
    let clean: Vec<&Case> = cases.iter().filter(|c| c.top == "none").collect();
    assert!(
        failures.len() >= 40,
        "only {} failure cases",
        failures.len()
    );
    assert!(clean.len() >= 5, "only {} clean cases", clean.len());
    let mut hits = 0;
    let mut misses = Vec::new();
    for c in &failures {
        let found = run(c, &cat);
        let top = found.first();
        let ok = top.is_some_and(|f| {
            f.rule == c.top
                && c.title_contains
                    .as_deref()
                    .is_none_or(|t| f.title.contains(t))
        });
        println!(
            "{:<40} {}",
            c.name,
            top.map_or("-".to_owned(), |f| format!("[{}] {}", f.rule, f.title))
        );
        if ok {
            hits += 1;
        } else {
            misses.push(format!(
                "{}: expected {} ({:?}), got {:?}",
                c.name,
                c.top,
                c.title_contains,
                top.map(|f| (&f.rule, &f.title))
            ));
        }
    }
    let accuracy = hits as f64 / failures.len() as f64;
    println!(
        "top-1 accuracy: {hits}/{} = {:.1}%",
        failures.len(),
        accuracy * 100.0
    );
    for m in &misses {
        println!("  miss: {m}");
    }
    for c in &clean {
        let found = run(c, &cat);
        assert!(
            found.is_empty(),
            "clean log {} produced findings: {:?}",
            c.name,
            found.iter().map(|f| &f.title).collect::<Vec<_>>()
        );
    }
    assert!(
        accuracy >= 0.9,
        "top-1 accuracy {accuracy:.3} < 0.9: {misses:#?}"
    );
}

#[test]
fn findings_serialize_camel_case() {
    let cat = Catalogue::builtin();
    let c = load(&fixtures().join("aws_access_denied_ssm_cli"));
    let found = run(&c, &cat);
    let v = serde_json::to_value(&found[0]).unwrap();
    assert!(v.get("evidence").is_some() && v.get("reference").is_some());
    assert_eq!(v["evidence"][0]["type"], "logLine");
}

#[test]
fn iam_statement_grants_exactly_the_missing_action() {
    let cat = Catalogue::builtin();
    let log = vec![
        "[Container] Running command aws s3 cp s3://bucket-a/key.txt .".to_owned(),
        "fatal error: An error occurred (AccessDenied) when calling the GetObject operation: \
         User: arn:aws:sts::123456789012:assumed-role/build-role/AWSCodeBuild-1234 is not \
         authorized to perform: s3:GetObject on resource: \"arn:aws:s3:::bucket-a/key.txt\" \
         because no identity-based policy allows the s3:GetObject action"
            .to_owned(),
    ];
    let found = diagnose(
        &Input {
            log: &log,
            ..Input::default()
        },
        &cat,
    );
    let f = &found[0];
    assert_eq!(f.rule, "aws.access_denied");
    assert_eq!(
        f.title,
        "Missing IAM permission s3:GetObject for role build-role"
    );
    assert_eq!(f.category, "permissions");
    assert_eq!(
        f.evidence[0],
        Evidence::LogLine {
            line: 1,
            text: log[1].clone()
        }
    );
    let start = f.fix.find('{').unwrap();
    let stmt: Value = serde_json::from_str(&f.fix[start..]).unwrap();
    assert_eq!(stmt["Effect"], "Allow");
    assert_eq!(stmt["Action"], "s3:GetObject");
    assert_eq!(stmt["Resource"], "arn:aws:s3:::bucket-a/key.txt");
    assert!(f.fix.contains("--role-name build-role"), "{}", f.fix);
}

#[test]
fn pytest_extraction_names_file_test_and_assertion() {
    let cat = Catalogue::builtin();
    let c = load(&fixtures().join("pytest_assertion"));
    let f = &run(&c, &cat)[0];
    assert_eq!(f.rule, "test.pytest");
    assert_eq!(
        f.title,
        "pytest tests/test_cart.py::test_total_price failed: assert 13.75 == 13.0"
    );
    assert!(f.fix.contains("tests/test_cart.py:9"), "{}", f.fix);
    // Without the `- message` suffix the assertion comes from the `E` lines.
    let log: Vec<String> = c
        .log
        .iter()
        .map(|l| l.split(" - assert").next().unwrap().to_owned())
        .collect();
    let f = &diagnose(
        &Input {
            log: &log,
            ..Input::default()
        },
        &cat,
    )[0];
    assert!(
        f.title.ends_with("failed: assert 13.75 == 13.0"),
        "{}",
        f.title
    );
}

#[test]
fn unittest_extraction_names_file_and_error() {
    let cat = Catalogue::builtin();
    let c = load(&fixtures().join("unittest_error"));
    let f = &run(&c, &cat)[0];
    assert_eq!(f.rule, "test.unittest");
    assert!(
        f.title.contains("test_load") && f.title.contains("KeyError: 'region'"),
        "{}",
        f.title
    );
    assert!(f.fix.contains("test_config.py:6"), "{}", f.fix);
}

#[test]
fn user_rule_files_add_and_override_rules_and_warn_on_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("10-team.toml"),
        r#"
[[rule]]
id = "team.flaky_db"
category = "test"
patterns = ['could not connect to test database (?P<db>\w+)']
title = "Test database {db} unavailable"
fix = "Restart the {db} container"
confidence = 0.9
priority = 200

[[rule]]
id = "docker.no_basic_auth"
category = "credentials"
patterns = ['no basic auth credentials']
title = "Run the ECR login step first"
fix = "make ecr-login"
confidence = 0.99
priority = 95

[[rule]]
id = "team.broken"
category = "build"
patterns = ['(unclosed']
title = "never"
fix = "never"
confidence = 0.5
priority = 1

[[rule]]
id = "team.no_title"
category = "build"
patterns = ['x']
fix = "never"
confidence = 0.5
priority = 1
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("20-garbage.toml"), "this is = = not toml").unwrap();
    let (cat, warnings) = Catalogue::with_user_dir(Some(dir.path()));
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("10-team.toml") && w.contains("team.broken")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("10-team.toml") && w.contains("team.no_title")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("20-garbage.toml")),
        "{warnings:?}"
    );
    assert!(cat.rule("team.broken").is_none());
    let log = vec![
        "no basic auth credentials".to_owned(),
        "could not connect to test database orders".to_owned(),
    ];
    let found = diagnose(
        &Input {
            log: &log,
            ..Input::default()
        },
        &cat,
    );
    assert_eq!(found[0].title, "Test database orders unavailable");
    assert_eq!(found[1].title, "Run the ECR login step first");
    assert_eq!(found[1].fix, "make ecr-login");
    // A missing dir is not an error.
    let (_, w) = Catalogue::with_user_dir(Some(&dir.path().join("nope")));
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn audit_trail_is_supporting_evidence_within_the_window() {
    let cat = Catalogue::builtin();
    let c = load(&fixtures().join("execution_stopped"));
    let found = run(&c, &cat);
    assert_eq!(found[0].rule, "engine.stop_requested");
    let trail = found.iter().find(|f| f.rule == "audit.trail").unwrap();
    assert!(trail.title.contains("bob"), "{}", trail.title);
    // Outside the window: no trail.
    let input = Input {
        log: &c.log,
        action: c.action.as_ref(),
        audit: &c.audit,
        window: Some(("2026-11-27T00:00:00Z", "2026-11-27T01:00:00Z")),
        ..Input::default()
    };
    assert!(
        diagnose(&input, &cat)
            .iter()
            .all(|f| f.rule != "audit.trail")
    );
}

#[test]
fn alarm_finding_reports_threshold_and_measured() {
    let cat = Catalogue::builtin();
    let c = load(&fixtures().join("deploy_alarm"));
    let f = &run(&c, &cat)[0];
    assert_eq!(
        f.title,
        "Alarm web-5xx-rate fired: measured 7.2 vs threshold 5"
    );
    assert!(matches!(f.evidence[0], Evidence::Health { .. }));
}

#[test]
fn empty_input_and_templates() {
    let cat = Catalogue::builtin();
    assert!(diagnose(&Input::default(), &cat).is_empty());
    let mut vars = std::collections::BTreeMap::new();
    vars.insert("a".to_owned(), "x".to_owned());
    assert_eq!(
        pipedeck::diagnose::render("{a} {b|none} {c} {not a var} {}", &vars),
        "x none ? {not a var} {}"
    );
    // Status texts of a succeeded action are not diagnosed.
    let c = load(&fixtures().join("approval_rejected"));
    let mut a = c.action.clone().unwrap();
    a.status = pipedeck::api::types::ActionStatus::Succeeded;
    let input = Input {
        action: Some(&a),
        ..Input::default()
    };
    assert!(diagnose(&input, &cat).is_empty());
}
