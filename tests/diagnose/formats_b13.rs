//! Formats read after batch 13's misses, on other wordings: titles in the
//! tool's own words (missing files, Go test timeouts, dash syntax errors),
//! Maven's unresolvable parent / import POMs, openssl's `-pass env:` and
//! miette reports whose root cause wraps.

use super::formats::{assert_top, framed};

#[test]
fn titles_keep_the_tools_own_words() {
    let log = framed(
        "bash scripts/release-notes.sh",
        &["cat: docs/CHANGELOG.md: No such file or directory"],
        1,
    );
    assert_top(
        &log,
        "shell.no_such_file",
        &["docs/CHANGELOG.md: No such file or directory"],
    );
    let log = framed(
        "go test ./...",
        &[
            "panic: test timed out after 10m0s",
            "running tests:",
            "\tTestReplicaCatchUp (10m0s)",
        ],
        1,
    );
    assert_top(&log, "go.test_timeout", &["test timed out after 10m0s"]);
    let log = framed(
        "sh ./ci/publish.sh",
        &["./ci/publish.sh: 12: Syntax error: \"fi\" unexpected (expecting \"then\")"],
        2,
    );
    assert_top(&log, "shell.syntax", &["Syntax error: \"fi\" unexpected"]);
}

#[test]
fn maven_says_which_kind_of_pom_it_could_not_resolve() {
    let log = framed(
        "mvn -o package",
        &[
            "[ERROR] [ERROR] Some problems were encountered while processing the POMs:",
            "[ERROR] Non-resolvable parent POM for com.acme:billing:2.1.0: Cannot access central (https://repo.maven.apache.org/maven2) in offline mode and the artifact com.acme:platform-parent:pom:7 has not been downloaded from it before. @ line 5, column 11",
            "[ERROR] The build could not read 1 project -> [Help 1]",
        ],
        1,
    );
    assert_top(
        &log,
        "maven.dependency",
        &[
            "com.acme:platform-parent:pom:7",
            "Non-resolvable parent POM",
        ],
    );
}

#[test]
fn openssl_names_the_unset_passphrase_variable() {
    let log = framed(
        "openssl pkcs12 -in cert.p12 -nokeys -passin env:P12_PASSWORD -out cert.pem",
        &[
            "No environment variable P12_PASSWORD",
            "Error getting passwords",
        ],
        1,
    );
    assert_top(
        &log,
        "openssl.pass_env",
        &["No environment variable P12_PASSWORD"],
    );
}

#[test]
fn a_miette_report_gives_its_whole_root_cause() {
    let log = framed(
        "pnpm install --frozen-lockfile",
        &[
            "Error:   × installing dependencies",
            "  ╰─▶ the lockfile needs updates: packages/api depends on \"zod@^3.23.0\" but",
            "      the lockfile has \"zod@3.22.4\"",
        ],
        1,
    );
    assert_top(
        &log,
        "tool.miette_report",
        &[
            "pnpm: installing dependencies",
            "the lockfile has \"zod@3.22.4\"",
        ],
    );
}
