//! The streaming reader (`diagnose_reader`, what `pipedeck diagnose --log`
//! runs) gives exactly the findings of the in-memory diagnosis: on every
//! fixture, and on long logs where it holds only an excerpt.

use pipedeck::diagnose::{Catalogue, Evidence, Finding, Input, diagnose, diagnose_reader};

use super::{all_cases, fixtures, run};

/// Both paths over `log` (as the file's bytes: lines joined with `\n`).
fn both(log: &[String], input: &Input, cat: &Catalogue) -> (Vec<Finding>, Vec<Finding>, usize) {
    let memory = diagnose(&Input { log, ..*input }, cat);
    let mut bytes = log.join("\n").into_bytes();
    bytes.push(b'\n');
    let read = diagnose_reader(&bytes[..], input, cat).unwrap();
    assert_eq!(read.lines, log.len());
    (memory, read.findings, read.kept)
}

fn lines_of(f: &Finding) -> Vec<usize> {
    f.evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::LogLine { line, .. } => Some(*line),
            _ => None,
        })
        .collect()
}

#[test]
fn every_fixture_gives_the_same_findings_streamed() {
    let cat = Catalogue::builtin();
    let cases = all_cases();
    assert!(cases.len() > 500, "{} cases", cases.len());
    for c in &cases {
        let input = Input {
            log: &[],
            action: c.action.as_ref(),
            execution: c.execution.as_ref(),
            audit: &c.audit,
            health: &c.health,
            disabled_transition: c.transition.as_ref().map(|(s, t)| (s.as_str(), t)),
            window: None,
        };
        // The file's own bytes: CRLF and a missing last newline read as
        // the in-memory path reads them (its loader reads no log from a
        // file that is not UTF-8).
        let bytes = std::fs::read_to_string(fixtures().join(&c.name).join("log.txt"))
            .unwrap_or_default()
            .into_bytes();
        let streamed = diagnose_reader(&bytes[..], &input, &cat).unwrap();
        assert_eq!(streamed.lines, c.log.len(), "{}", c.name);
        assert_eq!(streamed.findings, run(c, &cat), "{}", c.name);
    }
}

/// Deterministic build chatter without error words.
fn chatter(n: usize, seed: u64) -> Vec<String> {
    let mut s = seed | 1;
    (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            match s % 5 {
                0 => format!("   Compiling crate{} v1.{}.0", s % 97, i % 13),
                1 => format!("test suite::case_{} ... ok", s % 5000),
                2 => format!("INFO request handled status=200 latency_ms={}", s % 250),
                3 => format!(
                    "  src/mod{}.rs: checked {} items, 0 errors",
                    s % 40,
                    s % 400
                ),
                _ => format!("Downloading artifact {} of 900 ({} kB)", i % 900, s % 90),
            }
        })
        .collect()
}

fn failed_action() -> pipedeck::api::ActionExecutionDetail {
    serde_json::from_value(serde_json::json!({
        "actionExecutionId": "a-1", "pipelineExecutionId": "e-1", "stageName": "Deploy",
        "actionName": "Publish", "attempt": 1, "status": "Failed", "summary": null,
        "startTime": "2026-11-26T20:00:00Z", "lastStatusChange": "2026-11-26T20:10:00Z",
        "token": null, "externalExecutionId": null, "errorDetails": null,
        "resolvedConfiguration": {}, "inputArtifacts": [], "outputArtifacts": [],
        "outputVariables": {}, "testReport": null, "approval": null, "logLines": 0, "phases": []
    }))
    .unwrap()
}

#[test]
fn a_failure_on_line_3_of_200000_lines_is_found_streamed() {
    let cat = Catalogue::builtin();
    // Framed: the failed command is the first; a later phase goes on.
    let mut log = vec![
        "[Container] Running command ./scripts/render-config.sh".to_owned(),
        "fatal: the template values.prod.yaml names an unknown key replicaz".to_owned(),
        "[Container] Command did not exit successfully ./scripts/render-config.sh exit status 3"
            .to_owned(),
        "[Container] Phase complete: BUILD State: FAILED".to_owned(),
        "[Container] Entering phase POST_BUILD".to_owned(),
        "[Container] Running command ./scripts/report.sh".to_owned(),
    ];
    log.extend(chatter(200_000 - log.len() - 1, 7));
    log.push("[Container] Phase complete: POST_BUILD State: SUCCEEDED".to_owned());
    assert_eq!(log.len(), 200_000);
    let (memory, streamed, kept) = both(&log, &Input::default(), &cat);
    assert!(!memory.is_empty());
    assert!(lines_of(&memory[0]).contains(&2), "{memory:#?}");
    assert_eq!(streamed, memory);
    assert!(kept < 20_000, "kept {kept} lines of 200,000");

    // Unframed (a Commands action): the one error line is 199,997 lines
    // before the end, far outside the fallback's window.
    let mut log = vec![
        "starting publish".to_owned(),
        "resolving targets".to_owned(),
        "FAILURE while uploading bundle 7: the release store closed the stream".to_owned(),
    ];
    log.extend(chatter(200_000 - 3, 11));
    let action = failed_action();
    let input = Input {
        action: Some(&action),
        ..Input::default()
    };
    let (memory, streamed, kept) = both(&log, &input, &cat);
    assert_eq!(memory.len(), 1, "{memory:#?}");
    assert_eq!(lines_of(&memory[0]), vec![3], "{memory:#?}");
    assert_eq!(streamed, memory);
    assert!(kept < 20_000, "kept {kept} lines of 200,000");

    // Framed, the error at the start of a long output: the failed
    // command's fallback reads 10,000 lines back, then a later phase.
    let mut log = vec![
        "[Container] Running command ./scripts/publish.sh".to_owned(),
        "FAILURE while uploading bundle 7: the release store closed the stream".to_owned(),
    ];
    log.extend(chatter(10_000, 13));
    log.extend([
        "[Container] Command did not exit successfully ./scripts/publish.sh exit status 1"
            .to_owned(),
        "[Container] Phase complete: BUILD State: FAILED".to_owned(),
        "[Container] Entering phase POST_BUILD".to_owned(),
        "[Container] Running command ./scripts/report.sh".to_owned(),
    ]);
    log.extend(chatter(190_000, 17));
    let (memory, streamed, kept) = both(&log, &Input::default(), &cat);
    assert_eq!(memory[0].rule, "build.command_failed", "{memory:#?}");
    assert!(lines_of(&memory[0]).contains(&2), "{memory:#?}");
    assert_eq!(streamed, memory);
    assert!(kept < 20_000, "kept {kept} lines of {}", log.len());
}

#[test]
fn a_test_summary_followed_by_50000_lines_of_a_later_phase_is_found_streamed() {
    let cat = Catalogue::builtin();
    let mut log = vec![
        "[Container] Entering phase BUILD".to_owned(),
        "[Container] Running command python -m pytest -q".to_owned(),
        "..F.".to_owned(),
        "=================================== FAILURES ==================================="
            .to_owned(),
        "_______________________________ test_total_price _______________________________"
            .to_owned(),
        "    def test_total_price():".to_owned(),
        ">       assert total([5.5, 8.25]) == 13.0".to_owned(),
        "E       assert 13.75 == 13.0".to_owned(),
        "tests/test_cart.py:9: AssertionError".to_owned(),
    ];
    // A long captured output between the section and the summary, so the
    // section header is far behind the summary line.
    log.push(
        "----------------------------- Captured stdout call -----------------------------"
            .to_owned(),
    );
    log.extend(chatter(9_000, 3));
    log.extend([
        "=========================== short test summary info ============================"
            .to_owned(),
        "FAILED tests/test_cart.py::test_total_price - assert 13.75 == 13.0".to_owned(),
        "1 failed, 3 passed in 0.12s".to_owned(),
        "[Container] Command did not exit successfully python -m pytest -q exit status 1"
            .to_owned(),
        "[Container] Phase complete: BUILD State: FAILED".to_owned(),
        "[Container] Entering phase POST_BUILD".to_owned(),
        "[Container] Running command ./scripts/upload-reports.sh".to_owned(),
    ]);
    let summary = log.len() - 5;
    log.extend(chatter(50_000, 5));
    log.push("[Container] Phase complete: POST_BUILD State: SUCCEEDED".to_owned());
    let (memory, streamed, kept) = both(&log, &Input::default(), &cat);
    assert_eq!(memory[0].rule, "test.pytest", "{memory:#?}");
    assert!(
        memory[0].title.ends_with("failed: assert 13.75 == 13.0"),
        "{}",
        memory[0].title
    );
    assert!(
        memory[0].fix.contains("tests/test_cart.py:9"),
        "{}",
        memory[0].fix
    );
    assert!(lines_of(&memory[0]).contains(&summary), "{memory:#?}");
    assert_eq!(streamed, memory);
    assert!(kept < 30_000, "kept {kept} lines of {}", log.len());
}

/// Every fixture's log in one long build, each in a command of its own
/// with 3,000 lines of chatter before its output (so most of what a rule
/// or the fallback reads is far from everything else): the same findings.
#[test]
fn fixtures_far_apart_in_one_long_log_give_the_same_findings_streamed() {
    let cat = Catalogue::builtin();
    let cases = all_cases();
    for (k, chunk) in cases.chunks(60).enumerate() {
        let mut log = Vec::new();
        for (j, c) in chunk.iter().enumerate() {
            log.push(format!("[Container] Running command ./step-{j}.sh"));
            log.extend(chatter(3_000, (k * 100 + j) as u64 + 1));
            log.extend(c.log.iter().cloned());
            if j % 3 == 0 {
                log.push(format!(
                    "[Container] Command did not exit successfully ./step-{j}.sh exit status 2"
                ));
            }
        }
        let action = failed_action();
        for input in [
            Input::default(),
            Input {
                action: Some(&action),
                ..Input::default()
            },
        ] {
            let (memory, streamed, _) = both(&log, &input, &cat);
            assert_eq!(streamed, memory, "chunk {k}");
        }
    }
}

/// `pipedeck diagnose --log` on bad input: a clear message naming the
/// file, never a panic; a log with a failure names its real line.
#[test]
fn the_cli_reads_any_file_and_names_the_file_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let run = |arg: &std::path::Path, stdin: &[u8]| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pipedeck"))
            .env("PIPEDECK_CONFIG", dir.path().join("config.toml"))
            .env("PIPEDECK_DATA_DIR", dir.path())
            .arg("diagnose")
            .arg("--log")
            .arg(arg)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let missing = dir.path().join("no-such.log");
    let (ok, _, err) = run(&missing, b"");
    assert!(!ok && err.contains("no-such.log"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let (ok, _, err) = run(dir.path(), b"");
    assert!(
        !ok && err.contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let (ok, out, _) = run(&empty, b"");
    assert!(
        ok && out.contains("empty.log: 0 lines") && out.contains("no finding"),
        "{out}"
    );

    // Binary, invalid UTF-8, NULs, a line far over the line limit.
    let binary = dir.path().join("core.bin");
    let mut bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    bytes.extend(std::iter::repeat_n(b'x', 300_000));
    bytes.extend(b"\n\xff\xfe error: \xc3\x28 bad\n");
    std::fs::write(&binary, &bytes).unwrap();
    let (ok, out, err) = run(&binary, b"");
    assert!(ok && out.contains("core.bin: "), "{out}{err}");

    let log = dir.path().join("build.log");
    let mut text = String::from("[Container] Running command make\n");
    for i in 0..30_000 {
        text.push_str(&format!("compiling unit {i}\n"));
    }
    text.push_str("bash: line 1: cdk: command not found\n");
    text.push_str("[Container] Command did not exit successfully make exit status 127\r\n");
    std::fs::write(&log, &text).unwrap();
    let (ok, out, err) = run(&log, b"");
    assert!(ok && out.contains("build.log: 30003 lines"), "{out}{err}");
    assert!(
        out.contains("log line 30002: bash: line 1: cdk: command not found"),
        "{out}"
    );
    // The same through standard input.
    let (ok, out, _) = run(std::path::Path::new("-"), text.as_bytes());
    assert!(ok && out.contains("log line 30002: bash"), "{out}");
}
