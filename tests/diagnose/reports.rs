//! Report formats, deploy events and the audit trail (part of the
//! `diagnose` test target).

use super::*;

/// Report formats the generator cannot run here (Surefire needs its plugin
/// downloaded, Gradle is not installed): their documented shapes.
#[test]
fn surefire_gradle_and_junit_xml_reports() {
    let cat = Catalogue::builtin();
    let top = |lines: &[&str]| {
        let log: Vec<String> = lines.iter().map(|s| (*s).to_owned()).collect();
        diagnose(
            &Input {
                log: &log,
                ..Input::default()
            },
            &cat,
        )
        .first()
        .map(|f| (f.rule.clone(), f.title.clone()))
    };
    let (rule, title) = top(&[
        "[INFO] Results:",
        "[INFO] ",
        "[ERROR] Failures: ",
        "[ERROR]   CartTest.totalIncludesTax:42 expected: <11.0> but was: <10.0>",
        "[INFO] ",
        "[ERROR] Tests run: 3, Failures: 1, Errors: 0, Skipped: 0",
    ])
    .unwrap();
    assert_eq!(rule, "maven.surefire_failures");
    assert!(
        title.contains("CartTest#totalIncludesTax") && title.contains("line 42"),
        "{title}"
    );
    let (rule, title) = top(&[
        "> Task :test",
        "",
        "com.acme.CartTest > totalIncludesTax() FAILED",
        "    org.opentest4j.AssertionFailedError: expected: <11.0> but was: <10.0>",
        "        at app//org.junit.jupiter.api.AssertionUtils.fail(AssertionUtils.java:151)",
    ])
    .unwrap();
    assert_eq!(rule, "gradle.test_failed");
    assert!(
        title.contains("totalIncludesTax()") && title.contains("AssertionFailedError"),
        "{title}"
    );
    let (rule, title) = top(&[
        r#"<testsuite name="pytest" errors="0" failures="1" tests="2">"#,
        r#"<testcase classname="tests.test_cart" name="test_ok" time="0.001" />"#,
        r#"<testcase classname="tests.test_cart" name="test_total" time="0.002">"#,
        r#"<failure message="assert 11.0 == 10.0">tests/test_cart.py:9: AssertionError</failure>"#,
        "</testcase>",
    ])
    .unwrap();
    assert_eq!(rule, "test.junit_xml");
    assert!(
        title.contains("test_total") && title.contains("assert 11.0 == 10.0"),
        "{title}"
    );
}

/// helm is not installable here: its documented error shapes, only inside
/// a helm command.
#[test]
fn helm_errors_inside_helm_commands() {
    let cat = Catalogue::builtin();
    let log: Vec<String> = [
        "[Container] Entering phase POST_BUILD",
        "[Container] Running command helm upgrade --install web ./chart -n prod",
        "Error: UPGRADE FAILED: template: web/templates/deployment.yaml:21:28: executing \"web/templates/deployment.yaml\" at <.Values.image.tag>: nil pointer evaluating interface {}.tag",
        "[Container] Command did not exit successfully helm upgrade --install web ./chart -n prod exit status 1",
        "[Container] Phase complete: POST_BUILD State: FAILED",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let f = &diagnose(
        &Input {
            log: &log,
            ..Input::default()
        },
        &cat,
    )[0];
    assert_eq!(f.rule, "helm.error");
    assert!(
        f.title.contains("UPGRADE FAILED") && f.title.contains(".Values.image.tag"),
        "{}",
        f.title
    );
    let other: Vec<String> = log
        .iter()
        .map(|l| l.replace("helm upgrade", "./deploy.sh"))
        .collect();
    let f = &diagnose(
        &Input {
            log: &other,
            ..Input::default()
        },
        &cat,
    )[0];
    assert_ne!(f.rule, "helm.error");
}

#[test]
fn the_5xx_fix_names_the_group_the_bad_release_ran_on() {
    let cat = Catalogue::builtin();
    let log: Vec<String> = [
        "[Deploy] canary: 10% of traffic on blue (rev-2)",
        "[Deploy] deployment d-1 to staging failed: alarm staging-5xx: 5xx rate 40.0% over 5 s (threshold 5%)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let action: ActionExecutionDetail = serde_json::from_value(base_action()).unwrap();
    let found = diagnose(
        &Input {
            log: &log,
            action: Some(&action),
            ..Input::default()
        },
        &cat,
    );
    let f = found.iter().find(|f| f.rule == "deploy.alarm_log").unwrap();
    assert!(f.fix.contains("the blue replicas of staging"), "{}", f.fix);
    assert!(!f.fix.contains("green"), "{}", f.fix);
}

#[test]
fn audit_evidence_is_nearest_the_failure_and_always_names_someone() {
    let cat = Catalogue::builtin();
    let action: ActionExecutionDetail = serde_json::from_value(base_action()).unwrap();
    // Newest first, as LookupEvents answers; the failure is at 20:10.
    let audit: Vec<AuditEvent> = (0..10)
        .rev()
        .map(|i| {
            serde_json::from_value(merge(
                base_audit(),
                json!({"eventTime": format!("2026-11-26T20:{:02}:00Z", i), "eventName": "StartPipelineExecution",
                       "userIdentity": {"type": "IAMUser", "principalId": "", "arn": "",
                                        "accountId": "123456789012", "userName": null, "invokedBy": null}}),
            ))
            .unwrap()
        })
        .collect();
    let found = diagnose(
        &Input {
            log: &[],
            action: Some(&action),
            audit: &audit,
            ..Input::default()
        },
        &cat,
    );
    let trail = found.iter().find(|f| f.rule == "audit.trail").unwrap();
    let times: Vec<String> = trail
        .evidence
        .iter()
        .filter_map(|e| match e {
            pipedeck::diagnose::Evidence::Audit {
                event_time, who, ..
            } => {
                assert!(!who.trim().is_empty());
                Some(event_time.clone())
            }
            _ => None,
        })
        .collect();
    assert!(!times.is_empty());
    // The latest events (nearest 20:10), not the oldest of the day.
    assert!(
        times.contains(&"2026-11-26T20:09:00Z".to_owned()),
        "{times:?}"
    );
    assert!(
        !times.contains(&"2026-11-26T20:00:00Z".to_owned()),
        "{times:?}"
    );
    assert!(!trail.title.ends_with("by "), "{}", trail.title);
}
