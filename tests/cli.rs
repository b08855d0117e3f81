//! The `pipedeck` binary as a user runs it: exit codes, output shapes.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn pipedeck(args: &[&str]) -> Output {
    let data = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_pipedeck"))
        .args(args)
        .env("PIPEDECK_DATA_DIR", data.path())
        .env("PIPEDECK_CONFIG", data.path().join("config.toml"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn version_and_help_work() {
    let v = pipedeck(&["--version"]);
    assert!(v.status.success());
    assert!(stdout(&v).starts_with("pipedeck "));
    let h = pipedeck(&["--help"]);
    assert!(stdout(&h).contains("validate"));
    assert!(stdout(&h).contains("graph"));
}

#[test]
fn usage_lines_do_not_show_config_and_data_dir_as_required() {
    // PIPEDECK_CONFIG and PIPEDECK_DATA_DIR are set (as in `pipedeck()`),
    // and --config is typed too: the usage shows the command's own form.
    let o = pipedeck(&["approve", "--config", "/nonexistent/c.toml", "web"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains("Usage: pipedeck approve <PIPELINE> <STAGE> <ACTION>"),
        "{err}"
    );
    assert!(!err.contains("--config <PATH>"), "{err}");
    assert!(!err.contains("--data-dir <DIR>"), "{err}");
    for args in [&["--help"][..], &["approve", "--help"], &["envs", "--help"]] {
        let o = pipedeck(args);
        let usage = stdout(&o)
            .lines()
            .find(|l| l.starts_with("Usage:"))
            .unwrap()
            .to_owned();
        assert!(!usage.contains("--config"), "{usage}");
        assert!(!usage.contains("--data-dir"), "{usage}");
    }
}

#[test]
fn validate_exits_0_for_valid_files() {
    let o = pipedeck(&[
        "validate",
        "assets/example-pipeline.json",
        "assets/example-pipeline.toml",
    ]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("2 files checked: 2 ok, 0 with errors"));
}

#[test]
fn validate_exits_1_and_names_line_and_column_for_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"pipeline\": {\"name\": \"p\",\n \"stages\": [{\"name\": \"S\", \"actions\": []}]}}",
    )
    .unwrap();
    let o = pipedeck(&["validate", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("bad.json:2:12: error: a pipeline needs 2 to 50 stages"),
        "{out}"
    );
}

#[test]
fn validate_json_output_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let o = pipedeck(&[
        "validate",
        "--json",
        "assets/example-pipeline.json",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let files = v.as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["ok"], true);
    assert_eq!(files[0]["format"], "codepipeline-json");
    assert_eq!(files[0]["pipelines"][0], "example");
    assert_eq!(files[1]["ok"], false);
    assert!(
        files[1]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot read the file")
    );
    for key in ["file", "format", "ok", "pipelines", "errors", "warnings"] {
        assert!(files[0].get(key).is_some(), "missing {key}");
    }
}

#[test]
fn graph_draws_stages_with_parallel_actions_and_artifacts() {
    let o = pipedeck(&["graph", "--width", "200", "assets/demo/pipeline.json"]);
    assert!(o.status.success());
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn graph_wraps_to_the_width() {
    let o = pipedeck(&["graph", "--width", "60", "assets/example-pipeline.toml"]);
    let out = stdout(&o);
    assert!(out.lines().all(|l| l.chars().count() <= 60), "{out}");
    assert!(out.contains("Release"));
}

#[test]
fn no_subcommand_creates_the_demo_workspace_and_prints_its_report() {
    let o = pipedeck(&[]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("Created the demo workspace in"), "{out}");
    assert!(out.contains("pipedeck run --wait"), "{out}");
    assert!(out.contains("no terminal here, so no terminal UI"), "{out}");
    assert!(out.contains("assets/demo/pipeline.json: ok"));
}

#[test]
fn validate_of_a_workspace_file_validates_the_pipelines_it_names() {
    let o = pipedeck(&["validate", "assets/demo/pipedeck.toml"]);
    let out = stdout(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}{err}");
    assert!(err.contains("is a workspace file"), "{err}");
    assert!(out.contains("assets/demo/pipeline.json: ok"), "{out}");
    assert!(!out.contains("pipedeck.toml"), "{out}");
}

#[test]
fn mutation_and_logs_help_explains_every_argument_with_an_example() {
    for cmd in [
        "logs",
        "approve",
        "reject",
        "retry",
        "stop",
        "rollback",
        "transition",
    ] {
        let o = pipedeck(&[cmd, "--help"]);
        let out = stdout(&o);
        assert!(out.contains("Example: pipedeck "), "{cmd}:\n{out}");
        let args = out.split("Arguments:").nth(1).unwrap_or("");
        let args = args.split("Options:").next().unwrap_or("");
        for l in args.lines().filter(|l| l.trim_start().starts_with('<')) {
            assert!(l.trim().contains(' '), "{cmd}: no help for {l:?}\n{out}");
        }
    }
}

#[test]
fn serve_with_aws_says_there_is_nothing_to_host() {
    let o = pipedeck(&["--aws", "--region", "us-east-1", "serve"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the pipelines run in AWS CodePipeline")
            && err.contains("Drop --aws")
            && !err.contains("already has an engine"),
        "{err}"
    );
}
