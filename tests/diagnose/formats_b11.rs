//! Formats read after batch 11's misses, each on other wordings than the
//! batch's own logs: shell `[` tests, killed jobs, make's fatal errors,
//! Maven with `-e`, Go's race detector, several failing Rust tests,
//! messages continued below, unreadable tool configs, javac `-Werror`,
//! mocha's TAP, zip and signature checks.

use super::formats::{assert_top, framed};

#[test]
fn shell_test_builtin_errors_name_the_script_line_and_complaint() {
    let log = framed(
        "./ci/check-size.sh",
        &[
            "checking bundle size",
            "./ci/check-size.sh: line 12: [: 12.5: integer expression expected",
            "bundle too large",
        ],
        1,
    );
    assert_top(
        &log,
        "shell.test_builtin",
        &["check-size.sh:12", "integer expression expected", "`12.5`"],
    );
    let log = framed(
        "bash deploy.sh",
        &["deploy.sh: line 3: [: too many arguments"],
        2,
    );
    assert_top(
        &log,
        "shell.test_builtin",
        &["deploy.sh:3", "too many arguments"],
    );
    // dash names the line without `line`.
    let log = framed(
        "sh release.sh",
        &["release.sh: 7: [: v1.2: unexpected operator"],
        2,
    );
    assert_top(
        &log,
        "shell.test_builtin",
        &["release.sh:7", "unexpected operator"],
    );
}

#[test]
fn a_killed_job_names_the_command_and_timeout_is_not_called_memory() {
    let log = framed(
        "bash run-e2e.sh",
        &[
            "starting browser tests",
            "run-e2e.sh: line 9: 41211 Killed                  timeout -s KILL 300 npx playwright test",
        ],
        137,
    );
    assert_top(
        &log,
        "shell.killed",
        &["npx playwright test", "run-e2e.sh:9", "killed by `timeout`"],
    );
    let log = framed(
        "./build.sh",
        &[
            "./build.sh: line 4:  901 Killed                  node --max-old-space-size=8192 build.js",
        ],
        137,
    );
    assert_top(
        &log,
        "shell.killed",
        &["node --max-old-space-size", "likely out of memory"],
    );
}

#[test]
fn make_fatal_errors_win_over_the_error_lines_that_repeat_them() {
    let log = framed(
        "make -C infra",
        &[
            "make: Entering directory '/src/infra'",
            "make[1]: *** No targets specified and no makefile found.  Stop.",
            "make: *** [Makefile:7: infra] Error 2",
        ],
        2,
    );
    assert_top(
        &log,
        "make.error",
        &["No targets specified and no makefile found"],
    );
}

#[test]
fn maven_e_problems_are_found_past_the_stack_trace() {
    let mut lines = vec![
        "[ERROR] [ERROR] Some problems were encountered while processing the POMs:".to_owned(),
        "[ERROR] 'build.plugins.plugin.version' for org.apache.maven.plugins:maven-jar-plugin must be a valid version but is '${jar.version}'. @ line 31, column 20".to_owned(),
        "[ERROR] The build could not read 1 project -> [Help 1]".to_owned(),
        "org.apache.maven.project.ProjectBuildingException: Some problems were encountered while processing the POMs:".to_owned(),
    ];
    for i in 0..30 {
        lines.push(format!(
            "    at org.apache.maven.Frame{i}.run (Frame{i}.java:{i})"
        ));
    }
    lines.push("[ERROR]   The project com.x:svc:1.0 (/src/pom.xml) has 1 error".to_owned());
    lines.push("[ERROR]     'build.plugins.plugin.version' for org.apache.maven.plugins:maven-jar-plugin must be a valid version but is '${jar.version}'. @ line 31, column 20".to_owned());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let log = framed("mvn -e -o verify", &refs, 1);
    assert_top(
        &log,
        "maven.error",
        &[
            "could not read 1 project",
            "must be a valid version",
            "line 31",
        ],
    );
}

#[test]
fn a_go_test_failed_by_the_race_detector_names_the_race() {
    let log = framed(
        "go test -race ./cache/...",
        &[
            "==================",
            "WARNING: DATA RACE",
            "Write at 0x00c000120060 by goroutine 12:",
            "  runtime.mapassign_faststr()",
            "      /usr/local/go/src/runtime/map_faststr.go:203 +0x0",
            "  example.org/svc/cache.(*LRU).Put()",
            "      /src/cache/lru.go:41 +0x1c4",
            "",
            "Previous read at 0x00c000120060 by goroutine 11:",
            "  example.org/svc/cache.(*LRU).Get()",
            "      /src/cache/lru.go:30 +0x88",
            "==================",
            "--- FAIL: TestParallelPut (0.01s)",
            "    testing.go:1398: race detected during execution of test",
            "FAIL",
            "FAIL\texample.org/svc/cache\t0.031s",
        ],
        1,
    );
    assert_top(
        &log,
        "go.test_fail",
        &[
            "TestParallelPut",
            "DATA RACE",
            "write at map_faststr.go:203",
        ],
    );
}

#[test]
fn several_failing_rust_tests_are_all_named() {
    let log = framed(
        "cargo test",
        &[
            "running 4 tests",
            "test cfg::loads ... ok",
            "test cfg::rejects_empty ... FAILED",
            "test cfg::merges ... FAILED",
            "test cfg::defaults ... ok",
            "",
            "failures:",
            "",
            "---- cfg::rejects_empty stdout ----",
            "thread 'cfg::rejects_empty' panicked at src/cfg.rs:40:9:",
            "expected an error",
            "",
            "failures:",
            "    cfg::merges",
            "    cfg::rejects_empty",
            "",
            "test result: FAILED. 2 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        ],
        101,
    );
    assert_top(
        &log,
        "cargo.test_failed",
        &[
            "cfg::rejects_empty",
            "2 failed: cfg::rejects_empty, cfg::merges",
            "expected an error",
        ],
    );
}

#[test]
fn an_error_that_goes_on_below_its_colon_is_joined() {
    let log = framed(
        "cargo build --locked",
        &[
            "error: the lock file /src/Cargo.lock needs to be updated but --locked was passed to prevent this:",
            "  If you want to try to generate the lock file without accessing the network, remove the --locked flag and use --offline instead.",
        ],
        101,
    );
    assert_top(
        &log,
        "cargo.error_plain",
        &["--locked was passed", "If you want to try"],
    );
}

#[test]
fn tool_configs_that_do_not_load_are_named_with_the_parsers_error() {
    let log = framed(
        "npx eslint .",
        &[
            "Oops! Something went wrong! :(",
            "",
            "ESLint: 8.50.0",
            "",
            "Cannot read config file: /src/packages/web/.eslintrc.json",
            "Error: Unexpected token } in JSON at position 211",
        ],
        2,
    );
    assert_top(
        &log,
        "config.eslint_unreadable",
        &[".eslintrc.json", "Unexpected token } in JSON"],
    );
    let log = framed(
        "npx vite build",
        &[
            "failed to load config from /src/vite.config.ts",
            "error during build:",
            "Error: Build failed with 1 error:",
            "vite.config.ts:12:4: ERROR: Expected \"}\" but found \")\"",
            "    at failureErrorWithLog (/src/node_modules/esbuild/lib/main.js:1472:15)",
        ],
        1,
    );
    assert_top(&log, "config.vite_unloadable", &["vite.config.ts"]);
}

#[test]
fn javac_werror_names_the_warning_it_turned_into_an_error() {
    let log = framed(
        "javac -Werror -Xlint:deprecation -d out src/Main.java",
        &[
            "src/Main.java:14: warning: [deprecation] Date(String) in Date has been deprecated",
            "        Date d = new Date(s);",
            "                 ^",
            "error: warnings found and -Werror specified",
            "1 error",
            "1 warning",
        ],
        1,
    );
    assert_top(
        &log,
        "javac.werror",
        &["Main.java:14", "[deprecation] Date(String)"],
    );
}

#[test]
fn mocha_tap_names_the_test_and_its_message() {
    let log = framed(
        "npx mocha --reporter tap test/",
        &[
            "1..2",
            "ok 1 cart adds items",
            "not ok 2 cart applies the spring coupon",
            "  AssertionError [ERR_ASSERTION]: 90 == 85",
            "      at Context.<anonymous> (test/cart.spec.js:21:12)",
            "# tests 2",
            "# pass 1",
            "# fail 1",
        ],
        1,
    );
    assert_top(
        &log,
        "test.tap",
        &[
            "mocha test \"cart applies the spring coupon\"",
            "cart.spec.js:21",
            "90 == 85",
        ],
    );
}

#[test]
fn zip_paths_that_do_not_exist_and_bad_signatures() {
    let log = framed(
        "cd dist && zip -r ../fn.zip handler.py lib/",
        &[
            "\tzip warning: name not matched: lib/",
            "  adding: handler.py (deflated 48%)",
        ],
        12,
    );
    assert_top(&log, "zip.name_not_matched", &["name not matched: lib/"]);
    let log = framed(
        "openssl pkeyutl -verify -pubin -inkey pub.pem -sigfile a.sig -in digest.bin",
        &["Signature Verification Failure"],
        1,
    );
    assert_top(
        &log,
        "crypto.signature_mismatch",
        &["Signature Verification Failure"],
    );
}
