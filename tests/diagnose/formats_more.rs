//! More tools' output formats (after batch 5), on small hand-written logs:
//! several errors, other versions' wording, colour codes.

use super::formats::{assert_top, framed};

#[test]
fn linkers_name_the_symbol_defined_twice() {
    // GNU ld, with a second duplicate and colour on collect2's line.
    let log = framed(
        "gcc -o app x.c y.c",
        &[
            "/usr/bin/ld: /tmp/cc1.o:(.bss+0x0): multiple definition of `counter'; /tmp/cc2.o:(.bss+0x0): first defined here",
            "/usr/bin/ld: /tmp/cc1.o: in function `main':",
            "x.c:(.text+0x0): multiple definition of `helper'; /tmp/cc2.o:y.c:(.text+0x0): first defined here",
            "collect2: \x1b[01;31merror: \x1b[mld returned 1 exit status",
        ],
        1,
    );
    assert_top(
        &log,
        "compile.link_duplicate",
        &["multiple definition of `counter`"],
    );
    // Newer binutils quote with ‘’; lld and Apple ld say duplicate symbol.
    let log = framed(
        "make",
        &["ld: a.o: multiple definition of ‘table’; b.o: first defined here"],
        2,
    );
    assert_top(&log, "compile.link_duplicate", &["`table`"]);
    let log = framed(
        "clang -fuse-ld=lld a.o b.o",
        &[
            "ld.lld: error: duplicate symbol: init_cfg",
            ">>> defined at a.c:3",
            "clang: error: linker command failed with exit code 1 (use -v to see invocation)",
        ],
        1,
    );
    assert_top(&log, "compile.link_duplicate", &["`init_cfg`"]);
    let log = framed(
        "clang a.o b.o",
        &[
            "duplicate symbol '_state' in:",
            "    a.o",
            "    b.o",
            "ld: 1 duplicate symbol for architecture arm64",
        ],
        1,
    );
    assert_top(&log, "compile.link_duplicate", &["`_state`"]);
}

#[test]
fn go_toolchain_older_than_the_module() {
    let log = framed(
        "go build ./...",
        &[
            "# example.com/svc/internal/loop",
            "internal/loop/loop.go:9:14: cannot range over n (variable of type int)",
            "internal/loop/loop.go:21:3: undefined: min",
            "note: module requires Go 1.22.1",
        ],
        1,
    );
    assert_top(&log, "go.version_too_old", &["Go 1.22.1"]);
    // Go 1.21+ refuses before compiling (GOTOOLCHAIN=local).
    let log = framed(
        "go test ./...",
        &["go: go.mod requires go >= 1.23 (running go 1.21.5; GOTOOLCHAIN=local)"],
        1,
    );
    assert_top(&log, "go.version_too_old", &["1.23", "1.21.5"]);
}

#[test]
fn coverage_thresholds_of_jest_vitest_and_nyc() {
    // Jest 27+, two metrics under the threshold, colour on the line.
    let log = framed(
        "npx jest --coverage",
        &[
            "Tests:       12 passed, 12 total",
            "\x1b[31mJest: Coverage for branches (41.5%) does not meet \"global\" threshold (80%)\x1b[39m",
            "Jest: Coverage for lines (72%) does not meet \"src/api/\" threshold (85%)",
            "Ran all test suites.",
        ],
        1,
    );
    assert_top(
        &log,
        "test.coverage_threshold",
        &["threshold", "branches 41.5% < 80%"],
    );
    // Older Jest.
    let log = framed(
        "yarn test --coverage",
        &["Jest: \"global\" coverage threshold for functions (90%) not met: 66.66%"],
        1,
    );
    assert_top(&log, "test.coverage_threshold", &["functions 66.66% < 90%"]);
    // vitest / nyc.
    let log = framed(
        "npx vitest run --coverage",
        &["ERROR: Coverage for statements (55.1%) does not meet global threshold (70%)"],
        1,
    );
    assert_top(&log, "test.coverage_threshold", &["statements 55.1% < 70%"]);
}

#[test]
fn maven_unknown_phases_and_goals() {
    let log = framed(
        "mvn -B pakage",
        &[
            "[INFO] BUILD FAILURE",
            "[ERROR] Unknown lifecycle phase \"pakage\". You must specify a valid lifecycle phase or a goal in the format <plugin-prefix>:<goal> or <plugin-group-id>:<plugin-artifact-id>[:<plugin-version>]:<goal>. Available lifecycle phases are: validate, compile. -> [Help 1]",
            "[ERROR] [Help 1] http://cwiki.apache.org/confluence/display/MAVEN/LifecyclePhaseNotFoundException",
        ],
        1,
    );
    assert_top(&log, "maven.unknown_phase", &["\"pakage\""]);
    let log = framed(
        "mvn -B jibb:build",
        &[
            "[INFO] BUILD FAILURE",
            "[ERROR] No plugin found for prefix 'jibb' in the current project and in the plugin groups [org.apache.maven.plugins] available from the repositories -> [Help 1]",
        ],
        1,
    );
    assert_top(&log, "maven.unknown_phase", &["\"jibb\""]);
}

#[test]
fn git_submodules_name_the_path() {
    // (An authentication failure above it is ranked by the git auth rule.)
    let log = framed(
        "git submodule update --init",
        &[
            "Submodule 'libs/core' (/srv/git/core.git) registered for path 'libs/core'",
            "Cloning into '/codebuild/output/src1/src/libs/core'...",
            "fatal: '/srv/git/core.git' does not appear to be a git repository",
            "fatal: clone of '/srv/git/core.git' into submodule path '/codebuild/output/src1/src/libs/core' failed",
            "Failed to clone 'libs/core'. Retry scheduled",
        ],
        1,
    );
    assert_top(
        &log,
        "git.submodule",
        &[
            "submodule libs/core ",
            "does not appear to be a git repository",
        ],
    );
    let log = framed(
        "git submodule update --init",
        &[
            "error: Server does not allow request for unadvertised object 4f2a9c1",
            "fatal: Fetched in submodule path 'third_party/zlib', but it did not contain 4f2a9c1. Direct fetching of that commit failed.",
        ],
        1,
    );
    assert_top(&log, "git.submodule", &["third_party/zlib"]);
}

#[test]
fn ruff_grouped_output_names_file_and_code() {
    let log = framed(
        "ruff check --output-format=grouped .",
        &[
            "app/models.py:",
            "  12:5  F401 [*] `os` imported but unused",
            "  30:1  E722 Do not use bare `except`",
            "",
            "app/views.py:",
            "  3:80 B008 Do not perform function call in argument defaults",
            "",
            "Found 3 errors.",
            "[*] 1 fixable with the `--fix` option.",
        ],
        1,
    );
    assert_top(&log, "lint.python", &["F401", "app/models.py:12"]);
}

#[test]
fn pnpm_recursive_runs_name_the_project_and_its_error() {
    // pnpm 8/9 (one-line error) and pnpm 10+ (miette report).
    for tail in [
        &[
            " ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL  @acme/web@0.1.0 build: `vite build`",
            "Exit status 1",
        ][..],
        &[
            "Error: ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL",
            "",
            "  × \"pnpm recursive run\" failed in /w/apps/web",
        ][..],
    ] {
        let mut out = vec![
            "Scope: all 3 workspace projects",
            "apps/web build$ vite build",
            "libs/ui build: built in 1.2s",
            "apps/web build: vite v5.2.0 building for production...",
            "apps/web build: error during build:",
            "apps/web build: Error: Could not resolve \"./routes\" from \"src/main.ts\"",
            "apps/web build:     at getRollupError (node_modules/rollup/dist/es/shared/parseAst.js:392:41)",
            "apps/web build: Failed",
            "/w/apps/web:",
        ];
        out.extend_from_slice(tail);
        let log = framed("pnpm -r run build", &out, 1);
        assert_top(
            &log,
            "pnpm.error",
            &["apps/web build failed", "Could not resolve \"./routes\""],
        );
    }
}

#[test]
fn terraform_reads_the_explanation_under_the_value_annotations() {
    let log = framed(
        "terraform plan -input=false",
        &[
            "╷",
            "│ Error: Invalid function argument",
            "│ ",
            "│   on iam.tf line 8, in resource \"aws_iam_policy\" \"deploy\":",
            "│    8:   policy = templatefile(\"${path.module}/tpl/deploy.json\", {})",
            "│     ├────────────────",
            "│     │ while calling templatefile(path, vars)",
            "│     │ path.module is \".\"",
            "│ ",
            "│ Invalid value for \"path\" parameter: no file exists at",
            "│ \"./tpl/deploy.json\"; this function works only with files that are",
            "│ distributed as part of the configuration source code.",
            "╵",
        ],
        1,
    );
    assert_top(
        &log,
        "terraform.error",
        &["iam.tf:8", "no file exists at \"./tpl/deploy.json\""],
    );
}

#[test]
fn toml_parse_errors_name_the_file_the_line_and_what_is_wrong() {
    // cargo's wording, not ruff's: the manifest path, then `Caused by:`.
    let log = framed(
        "cargo build --release",
        &[
            "error: failed to parse manifest at `/codebuild/output/src1/src/Cargo.toml`",
            "",
            "Caused by:",
            "  TOML parse error at line 4, column 11",
            "    |",
            "  4 | edition = 2021",
            "    |           ^^^^",
            "  invalid type: integer `2021`, expected a string",
        ],
        101,
    );
    assert_top(
        &log,
        "config.toml_parse",
        &[
            "Cargo.toml",
            "line 4",
            "edition = 2021",
            "expected a string",
        ],
    );
}

#[test]
fn archives_that_are_not_what_their_name_says() {
    let log = framed(
        "tar xJf toolchain.tar.xz",
        &[
            "xz: (stdin): File format not recognized",
            "tar: Child returned status 1",
            "tar: Error is not recoverable: exiting now",
        ],
        2,
    );
    assert_top(
        &log,
        "archive.unreadable",
        &["toolchain.tar.xz", "File format not recognized"],
    );
    let log = framed(
        "tar xf site.tar",
        &[
            "tar: This does not look like a tar archive",
            "tar: Exiting with failure status due to previous errors",
        ],
        2,
    );
    assert_top(
        &log,
        "archive.unreadable",
        &["site.tar", "does not look like a tar"],
    );
}

#[test]
fn git_working_tree_refusals_list_the_files() {
    let log = framed(
        "git merge origin/release",
        &[
            "error: The following untracked working tree files would be overwritten by merge:",
            "\tdist/app.js",
            "\tdist/app.css",
            "\tdist/index.html",
            "\tdist/vendor.js",
            "Please move or remove them before you merge.",
            "Aborting",
        ],
        1,
    );
    assert_top(
        &log,
        "git.working_tree",
        &[
            "git merge refused",
            "dist/app.js, dist/app.css, dist/index.html and 1 more",
        ],
    );
    let log = framed(
        "git commit -am 'bump'",
        &[
            "*** Please tell me who you are.",
            "fatal: empty ident name (for <>) not allowed",
        ],
        128,
    );
    assert_top(&log, "git.identity", &["Author identity unknown"]);
}

#[test]
fn python_syntax_errors_need_the_python_frame() {
    let log = framed(
        "python3 manage.py check",
        &[
            "  File \"/codebuild/output/src1/src/app/settings.py\", line 14",
            "    DEBUG = True if ENV == 'dev' else",
            "                                      ^",
            "SyntaxError: invalid syntax",
        ],
        1,
    );
    assert_top(
        &log,
        "python.syntax",
        &[
            "SyntaxError at /codebuild/output/src1/src/app/settings.py:14",
            "invalid syntax",
        ],
    );
    // node's SyntaxError has no Python frame above it: not a Python finding.
    let log = framed(
        "node build.js",
        &[
            "/codebuild/output/src1/src/build.js:3",
            "const x = {;",
            "           ^",
            "",
            "SyntaxError: Unexpected token ';'",
        ],
        1,
    );
    let findings = all_findings(&log);
    assert!(
        findings.first().is_none_or(|f| f.rule != "python.syntax"),
        "{findings:?}"
    );
}

#[test]
fn a_connection_refused_inside_a_test_names_the_test_and_a_hook_names_its_script() {
    let log = framed(
        "python -m pytest -q",
        &[
            "==================================== ERRORS ====================================",
            "___________________ ERROR at setup of test_orders_are_listed ___________________",
            "    def db():",
            ">       conn = psycopg2.connect(DSN)",
            "E       psycopg2.OperationalError: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
            "=========================== short test summary info ============================",
        ],
        1,
    );
    let findings = all_findings(&log);
    let top = findings.first().expect("a finding");
    assert!(
        top.title.contains("test_orders_are_listed"),
        "{}: {}",
        top.rule,
        top.title
    );
    let log = framed(
        "yarn build",
        &[
            "> @acme/web@2.1.0 prebuild",
            "> node scripts/check-env.js",
            "",
            "missing API_URL in the environment",
        ],
        1,
    );
    assert_top(
        &log,
        "build.command_failed",
        &["script `prebuild`", "check-env.js"],
    );
}

fn all_findings(log: &[String]) -> Vec<pipedeck::diagnose::Finding> {
    let cat = pipedeck::diagnose::Catalogue::builtin();
    pipedeck::diagnose::diagnose(
        &pipedeck::diagnose::Input {
            log,
            ..pipedeck::diagnose::Input::default()
        },
        &cat,
    )
}

#[test]
fn empty_test_runs_build_scripts_and_generated_code_checks() {
    let log = framed(
        "npx vitest run src/api",
        &[
            "No test files found, exiting with code 1",
            "",
            "filter:  src/api",
            "include: **/*.{test,spec}.?(c|m)[jt]s?(x)",
        ],
        1,
    );
    assert_top(
        &log,
        "test.no_tests",
        &["vitest", "No test files found", "src/api"],
    );
    // A build script that fails without panicking: its first stderr line.
    let log = framed(
        "cargo build",
        &[
            "error: failed to run custom build command for `openssl-sys v0.9.103`",
            "",
            "Caused by:",
            "  process didn't exit successfully: `/src/target/debug/build/openssl-sys-1/build-script-main` (exit status: 101)",
            "  --- stdout",
            "  cargo:rerun-if-env-changed=OPENSSL_DIR",
            "  --- stderr",
            "  Could not find directory of OpenSSL installation",
        ],
        101,
    );
    assert_top(
        &log,
        "cargo.error_plain",
        &[
            "openssl-sys",
            "Could not find directory of OpenSSL installation",
        ],
    );
    let log = framed(
        "git diff --exit-code",
        &[
            "diff --git a/api/types.go b/api/types.go",
            "index 1..2 100644",
            "--- a/api/types.go",
            "+++ b/api/types.go",
            "@@ -1 +1 @@",
            "-type A struct{}",
            "+type A struct{ B int }",
            "diff --git a/api/client.go b/api/client.go",
        ],
        1,
    );
    assert_top(
        &log,
        "build.command_failed",
        &["differs from the commit: api/types.go, api/client.go"],
    );
    let log = framed(
        "npx eslint src",
        &[
            "Error: .eslintrc.json:",
            "\tConfiguration for rule \"indent\" is invalid:",
            "\tValue \"tab\" should be integer.",
        ],
        2,
    );
    assert_top(
        &log,
        "lint.eslint_rule_config",
        &["\"indent\"", "should be integer"],
    );
}

#[test]
fn chained_python_exceptions_perl_sqlite_and_plain_npm_errors() {
    // The exception that propagated is the last of the chain.
    let log = framed(
        "python3 app.py",
        &[
            "Traceback (most recent call last):",
            "  File \"/app/cfg.py\", line 3, in load",
            "    return json.load(f)",
            "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
            "",
            "The above exception was the direct cause of the following exception:",
            "",
            "Traceback (most recent call last):",
            "  File \"/app/app.py\", line 9, in <module>",
            "    cfg = load()",
            "app.errors.ConfigError: settings.json is not valid JSON",
        ],
        1,
    );
    assert_top(
        &log,
        "python.traceback",
        &["ConfigError: settings.json is not valid JSON", "app.py:9"],
    );
    let log = framed(
        "perl -Ilib bin/report.pl",
        &[
            "syntax error at bin/report.pl line 12, near \"}\"",
            "Global symbol \"@rows\" requires explicit package name at bin/report.pl line 14.",
            "Execution of bin/report.pl aborted due to compilation errors.",
        ],
        255,
    );
    assert_top(&log, "perl.compile", &["bin/report.pl:12", "syntax error"]);
    let log = framed(
        "sqlite3 -bail ci.db < seed.sql",
        &["Runtime error near line 7: UNIQUE constraint failed: users.email (19)"],
        1,
    );
    assert_top(
        &log,
        "sqlite.error",
        &["UNIQUE constraint failed: users.email", "line 7"],
    );
    let log = framed(
        "npm install",
        &[
            "npm error Unsupported URL Type \"workspace:\": workspace:*",
            "npm error A complete log of this run can be found in: /root/.npm/_logs/x.log",
        ],
        1,
    );
    assert_top(
        &log,
        "npm.error_plain",
        &["Unsupported URL Type \"workspace:\""],
    );
    let log = framed(
        "go test ./internal/store/...",
        &[
            "panic: open testdata/schema.sql: no such file or directory",
            "",
            "goroutine 1 [running]:",
            "main.init.0()",
            "FAIL\texample.com/shop/internal/store\t0.011s",
        ],
        1,
    );
    let findings = all_findings(&log);
    let top = findings.first().expect("a finding");
    assert!(
        top.title.contains("schema.sql"),
        "{}: {}",
        top.rule,
        top.title
    );
}
