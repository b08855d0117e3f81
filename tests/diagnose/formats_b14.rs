//! Formats read after batch 14's misses, on other wordings: AWS error
//! codes and the CLI's own words, Docker's, Go compile errors before the
//! toolchain note, the object Kubernetes refused, tar after gzip, Java
//! exceptions a program printed itself, jest `--ci` snapshots, `npm ci`
//! out of sync, dash's `not found`.

use super::formats::{assert_top, framed};

#[test]
fn aws_and_docker_titles_keep_the_error_code_and_words() {
    let log = framed(
        "aws ssm get-parameter --name /billing/prod/db-url --with-decryption",
        &["An error occurred (ParameterNotFound) when calling the GetParameter operation: "],
        254,
    );
    assert_top(&log, "aws.parameter_not_found", &["(ParameterNotFound)"]);
    let log = framed(
        "aws lambda get-function --function-name thumbs",
        &[
            "Could not connect to the endpoint URL: \"https://lambda.eu-west-3.amazonaws.com/2015-03-31/functions/thumbs\"",
        ],
        255,
    );
    assert_top(
        &log,
        "aws.endpoint_unreachable",
        &["Could not connect to the endpoint URL", "lambda.eu-west-3"],
    );
    let log = framed(
        "docker push 123.dkr.ecr.eu-west-1.amazonaws.com/api:1",
        &[
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
        ],
        1,
    );
    assert_top(
        &log,
        "docker.no_daemon",
        &["Cannot connect to the Docker daemon"],
    );
}

#[test]
fn a_go_compile_error_leads_the_newer_toolchain_note() {
    let log = framed(
        "go vet ./...",
        &[
            "# example.org/jobs",
            "./queue.go:31:9: undefined: slices.Contains",
            "note: module requires Go 1.21",
        ],
        1,
    );
    assert_top(
        &log,
        "go.version_too_old",
        &[
            "./queue.go:31:9: undefined: slices.Contains",
            "requires Go 1.21",
        ],
    );
}

#[test]
fn kubernetes_names_the_object_it_refused_and_tar_follows_gzip() {
    let log = framed(
        "kubectl apply -f cm.yaml",
        &[
            "Error from server (Forbidden): error when retrieving current configuration of:",
            "Resource: \"/v1, Resource=configmaps\", GroupVersionKind: \"/v1, Kind=ConfigMap\"",
            "Name: \"flags\", Namespace: \"web\"",
            "from server for: \"cm.yaml\": configmaps \"flags\" is forbidden: User \"ci\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"web\"",
        ],
        1,
    );
    assert_top(
        &log,
        "k8s.forbidden",
        &["configmaps \"flags\" is forbidden"],
    );
    let log = framed(
        "tar -xzf assets.tar.gz -C public",
        &[
            "gzip: stdin: invalid compressed data--crc error",
            "tar: Child returned status 1",
            "tar: Error is not recoverable: exiting now",
        ],
        2,
    );
    assert_top(
        &log,
        "archive.unreadable",
        &["crc error", "tar: Child returned status 1"],
    );
}

#[test]
fn a_java_exception_the_program_printed_names_its_frame() {
    let log = framed(
        "java -cp build Main",
        &[
            "loading tariffs",
            "java.lang.IllegalStateException: tariff table empty",
            "\tat Tariffs.load(Tariffs.java:22)",
            "\tat Main.main(Main.java:5)",
        ],
        1,
    );
    assert_top(
        &log,
        "java.exception",
        &[
            "IllegalStateException: tariff table empty",
            "Tariffs.load(Tariffs.java:22)",
        ],
    );
}

#[test]
fn jest_ci_snapshots_npm_ci_sync_and_dash_not_found_in_their_words() {
    let log = framed(
        "npx jest --ci",
        &[
            "  ● header › renders the logo",
            "",
            "    expect(received).toMatchInlineSnapshot()",
            "",
            "    New snapshot was not written. The update flag must be explicitly passed to write a new snapshot.",
        ],
        1,
    );
    assert_top(
        &log,
        "test.jest",
        &["renders the logo", "New snapshot was not written"],
    );
    let log = framed(
        "npm ci",
        &[
            "npm error code EUSAGE",
            "npm error",
            "npm error `npm ci` can only install packages when your package.json and package-lock.json or npm-shrinkwrap.json are in sync. Please update your lock file with `npm install` before continuing.",
            "npm error",
            "npm error Missing: zod@3.23.8 from lock file",
        ],
        1,
    );
    assert_top(&log, "npm.error", &["Missing: zod@3.23.8 from lock file"]);
    let log = framed("sh ci/env.sh", &["ci/env.sh: 4: source: not found"], 127);
    assert_top(&log, "shell.command_not_found", &["source: not found"]);
}
