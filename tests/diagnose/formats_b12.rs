//! Formats read after batch 12's misses (a project's own scripts, errors
//! not at the end of the log), each on other wordings than the batch's:
//! what the fallback ranks, Rust panics outside tests, `go generate`,
//! zip's I/O errors.

use super::formats::{assert_top, framed};

#[test]
fn a_scripts_own_complaint_beats_its_data_and_its_summary() {
    // The complaint, then the data it is about.
    let log = framed(
        "python3 check_schema.py",
        &[
            "loading schema v12",
            "constraint violations in orders (column|rule):",
            "orders.total|non-negative",
        ],
        1,
    );
    assert_top(
        &log,
        "build.command_failed",
        &["constraint violations in orders"],
    );
    // The complaint, then a count of it.
    let log = framed(
        "node scripts/check-images.mjs",
        &[
            "image too large: public/hero.png (2.4 MB > 500 kB)",
            "scanned public/about.png",
            "scanned public/logo.svg",
            "12 images checked, 1 too large",
        ],
        1,
    );
    assert_top(
        &log,
        "build.command_failed",
        &["image too large: public/hero.png"],
    );
    // A checker's located diagnostic, whatever its words.
    let log = framed(
        "./ci/lint-compose.sh",
        &[
            "docker-compose.yml:14: service api publishes port 22",
            "compose lint done (3 services)",
        ],
        1,
    );
    assert_top(
        &log,
        "build.command_failed",
        &["docker-compose.yml:14: service api publishes port 22"],
    );
}

#[test]
fn a_headline_error_carries_the_sentence_below_it() {
    let log = framed(
        "./deploy.sh",
        &[
            "Error: Invalid stage name",
            "",
            "Stage names may contain only letters and digits; got \"prod eu\".",
            "cleanup: removed build/tmp",
        ],
        1,
    );
    assert_top(
        &log,
        "build.command_failed",
        &["Invalid stage name", "got \"prod eu\""],
    );
}

#[test]
fn a_rust_program_that_panics_names_its_message() {
    let log = framed(
        "cargo run --release -- migrate",
        &[
            "    Finished `release` profile [optimized] target(s) in 0.10s",
            "     Running `target/release/svc migrate`",
            "thread 'main' panicked at src/db.rs:88:14:",
            "called `Result::unwrap()` on an `Err` value: DatabaseUrlMissing",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ],
        101,
    );
    assert_top(
        &log,
        "rust.panic",
        &["src/db.rs:88:14", "DatabaseUrlMissing"],
    );
    // Before Rust 1.73 the message was quoted on the same line.
    let log = framed(
        "./target/debug/seed",
        &["thread 'main' panicked at 'SEED_FILE must be set', src/main.rs:5:10"],
        101,
    );
    assert_top(
        &log,
        "rust.panic",
        &["SEED_FILE must be set", "src/main.rs:5:10"],
    );
}

#[test]
fn go_generate_names_the_directive_and_the_generators_words() {
    let log = framed(
        "go generate ./...",
        &[
            "stringer: can't find type State",
            "internal/fsm/state.go:5: running \"stringer\": exit status 1",
        ],
        1,
    );
    assert_top(
        &log,
        "go.generate",
        &["state.go:5", "`stringer`", "can't find type State"],
    );
}

#[test]
fn zip_io_errors_name_the_output_file() {
    let log = framed(
        "zip -q -r /out/site/site.zip public",
        &[
            "zip I/O error: Permission denied",
            "zip error: Could not create output file (/out/site/site.zip)",
        ],
        15,
    );
    assert_top(
        &log,
        "zip.error",
        &["/out/site/site.zip", "Permission denied"],
    );
}

#[test]
fn unbound_variables_and_checksums_are_told_in_the_tools_words() {
    let log = framed(
        "bash release.sh",
        &["release.sh: line 9: RELEASE_TAG: unbound variable"],
        1,
    );
    assert_top(
        &log,
        "shell.unbound",
        &["RELEASE_TAG: unbound variable", "release.sh:9"],
    );
    let log = framed(
        "shasum -a 256 -c SHA256SUMS",
        &[
            "app-linux-amd64: OK",
            "app-linux-arm64: FAILED",
            "shasum: WARNING: 1 computed checksum did NOT match",
        ],
        1,
    );
    assert_top(&log, "checksum.mismatch", &["app-linux-arm64: FAILED"]);
}
