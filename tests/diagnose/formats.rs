//! Parsers of tools' output formats, on small logs written from each tool's
//! documented format (not from the fixtures): several errors, Windows
//! paths, colour codes, other versions' wording.

use pipedeck::diagnose::{Catalogue, Finding, Input, diagnose};

/// `out` as the output of `cmd` in a BUILD phase, failed with `code`.
pub(crate) fn framed(cmd: &str, out: &[&str], code: i32) -> Vec<String> {
    let mut log = vec![
        "[Container] Entering phase BUILD".to_owned(),
        format!("[Container] Running command {cmd}"),
    ];
    log.extend(out.iter().map(|s| (*s).to_owned()));
    log.push(format!(
        "[Container] Command did not exit successfully {cmd} exit status {code}"
    ));
    log.push("[Container] Phase complete: BUILD State: FAILED".to_owned());
    log
}

fn top(log: &[String]) -> Finding {
    let cat = Catalogue::builtin();
    let found = diagnose(
        &Input {
            log,
            ..Input::default()
        },
        &cat,
    );
    found.into_iter().next().expect("a finding")
}

pub(crate) fn assert_top(log: &[String], rule: &str, parts: &[&str]) {
    let f = top(log);
    assert_eq!(f.rule, rule, "{}", f.title);
    for p in parts {
        assert!(f.title.contains(p), "{:?} not in {:?}", p, f.title);
    }
}

#[test]
fn missing_script_or_bin_for_npm_yarn_and_pnpm() {
    // npm 7+ / npm 6.
    let log = framed(
        "npm run e2e",
        &[
            "npm error Missing script: \"e2e\"",
            "npm error",
            "npm error To see a list of scripts, run:",
        ],
        1,
    );
    assert_top(&log, "npm.missing_script", &["npm script \"e2e\""]);
    let log = framed("npm run e2e", &["npm ERR! Missing script: \"e2e\""], 1);
    assert_top(&log, "npm.missing_script", &["\"e2e\""]);
    // yarn 1 and yarn berry.
    let log = framed(
        "yarn typecheck",
        &[
            "yarn run v1.22.19",
            "error Command \"typecheck\" not found.",
            "info Visit https://yarnpkg.com/en/docs/cli/run for documentation about this command.",
        ],
        1,
    );
    assert_top(&log, "npm.missing_script", &["yarn script \"typecheck\""]);
    let log = framed(
        "yarn run typecheck",
        &[
            "Usage Error: Couldn't find a script named \"typecheck\".",
            "",
            "$ yarn run [--inspect] [--inspect-brk] <scriptName> ...",
        ],
        1,
    );
    assert_top(&log, "npm.missing_script", &["yarn script \"typecheck\""]);
    // pnpm 8/9 on one line; pnpm 10+ in a miette report.
    let log = framed(
        "pnpm run deploy:prod",
        &[
            " ERR_PNPM_NO_SCRIPT  Missing script: deploy:prod",
            "",
            "Command \"deploy:prod\" not found.",
        ],
        1,
    );
    assert_top(&log, "npm.missing_script", &["pnpm script \"deploy:prod\""]);
    let log = framed(
        "pnpm --filter web run lint",
        &[
            "Error: ERR_PNPM_NO_SCRIPT",
            "",
            "  × Missing script: lint",
            "  help: Command \"lint\" not found.",
            "",
        ],
        1,
    );
    assert_top(&log, "npm.missing_script", &["pnpm script \"lint\""]);
    // A bin, not a script.
    let log = framed(
        "pnpm exec prisma generate",
        &[
            "Error: ERR_PNPM_RECURSIVE_EXEC_FIRST_FAIL",
            "",
            "  × Command \"prisma\" not found",
            "",
        ],
        1,
    );
    assert_top(
        &log,
        "npm.missing_script",
        &["command \"prisma\" not found"],
    );
}

#[test]
fn pnpm_miette_report_gives_message_and_root_cause() {
    let log = framed(
        "pnpm install --frozen-lockfile",
        &[
            "Error: ERR_PNPM_FETCH_404",
            "",
            "  × installing dependencies",
            "  ├─▶ GET https://registry.example.com/@acme%2Fui: Not Found - 404",
            "  │   (the package may be private)",
            "  ╰─▶ @acme/ui is not in the registry",
            "",
        ],
        1,
    );
    assert_top(
        &log,
        "pnpm.error",
        &[
            "ERR_PNPM_FETCH_404",
            "installing dependencies",
            "@acme/ui is not in the registry",
        ],
    );
    // A network failure deep in the chain names the host, without the tree
    // drawing.
    let log = framed(
        "pnpm install",
        &[
            "Error: ERR_PNPM_META_FETCH_FAIL",
            "  × installing dependencies",
            "  ├─▶ Failed to fetch metadata from https://npm.internal.example:8443/lodash",
            "  ╰─▶ tcp connect error: Connection refused (os error 111)",
        ],
        1,
    );
    let f = top(&log);
    assert!(f.title.contains("npm.internal.example:8443"), "{}", f.title);
    assert!(
        !f.title.contains('╰') && !f.title.contains('│'),
        "{}",
        f.title
    );
}

#[test]
fn wrapper_summaries_carry_the_scripts_own_words() {
    // yarn 1: the script's output sits between `$ cmd` and yarn's summary.
    let log = framed(
        "yarn build",
        &[
            "yarn run v1.22.19",
            "$ vite build",
            "vite v5.0.0 building for production...",
            "Could not resolve entry module \"index.html\".",
            "error Command failed with exit code 1.",
            "info Visit https://yarnpkg.com/en/docs/cli/run for documentation about this command.",
        ],
        1,
    );
    assert_top(&log, "yarn.error", &["Could not resolve entry module"]);
    // npm: `> pkg@1.0.0 build` / `> cmd`, output, then the lifecycle line.
    let log = framed(
        "npm run build",
        &[
            "",
            "> web@1.0.0 build",
            "> node scripts/build.mjs",
            "",
            "build: 2 pages failed to render",
            "npm error Lifecycle script `build` failed with error:",
            "npm error code 1",
        ],
        1,
    );
    let f = top(&log);
    assert!(f.title.contains("2 pages failed to render"), "{}", f.title);
}

#[test]
fn npm_messages_wrapped_over_several_lines_are_joined() {
    let log = framed(
        "npm ci",
        &[
            "npm error code EUSAGE",
            "npm error",
            "npm error The `npm ci` command can only install with an existing package-lock.json or",
            "npm error npm-shrinkwrap.json with lockfileVersion >= 1.",
            "npm error",
            "npm error Clean install a project",
        ],
        1,
    );
    assert_top(
        &log,
        "npm.error",
        &["EUSAGE", "package-lock.json or npm-shrinkwrap.json"],
    );
}

#[test]
fn mypy_reports_the_first_real_type_error_with_its_code() {
    // --strict adds errors that follow from a real one (an unknown
    // attribute is Any; returning it is no-any-return): the real one
    // ranks first even when printed second.
    let log = framed(
        "mypy --strict src",
        &[
            "src/app/models.py:14: error: Function is missing a return type annotation  [no-untyped-def]",
            "src/app/models.py:20: error: Returning Any from function declared to return \"int\"  [no-any-return]",
            "src/app/models.py:20: error: \"Order\" has no attribute \"totl\"; maybe \"total\"?  [attr-defined]",
            "src/app/views.py:3: error: Argument 1 to \"render\" has incompatible type \"int\"; expected \"str\"  [arg-type]",
            "Found 4 errors in 2 files (checked 9 source files)",
        ],
        1,
    );
    assert_top(&log, "lint.mypy", &["attr-defined", "models.py:20", "totl"]);
    // Columns, and a Windows path.
    let log = framed(
        "mypy --show-column-numbers .",
        &[
            r#"C:\build\src\pkg\io.py:7:12: error: Incompatible types in assignment (expression has type "str", variable has type "int")  [assignment]"#,
            "Found 1 error in 1 file (checked 3 source files)",
        ],
        1,
    );
    assert_top(&log, "lint.mypy", &["assignment", "io.py:7"]);
}

#[test]
fn c_compilers_name_the_source_line_and_msvc_is_read() {
    let log = framed(
        "make",
        &[
            "cc -O2 -c src/net.c -o build/net.o",
            "src/net.c: In function 'connect_all':",
            "src/net.c:41:5: error: unknown type name 'socklen'",
            "   41 |     socklen len = sizeof addr;",
            "      |     ^~~~~~~",
            "src/net.c:52:9: error: 'len' undeclared (first use in this function)",
            "make: *** [Makefile:9: build/net.o] Error 1",
        ],
        2,
    );
    assert_top(
        &log,
        "compile.c",
        &[
            "net.c:41",
            "unknown type name",
            "socklen len = sizeof addr;",
        ],
    );
    let log = framed(
        "msbuild app.sln",
        &[
            r"C:\src\app\main.cpp(17,5): error C2065: 'cout': undeclared identifier [C:\src\app\app.vcxproj]",
        ],
        1,
    );
    assert_top(
        &log,
        "compile.c",
        &["main.cpp:17", "'cout': undeclared identifier"],
    );
}

#[test]
fn maven_parent_and_import_poms_name_the_artifact() {
    let log = framed(
        "mvn -B package",
        &[
            "[INFO] Scanning for projects...",
            "[ERROR] [ERROR] Some problems were encountered while processing the POMs:",
            "[FATAL] Non-resolvable parent POM for com.acme:web:1.4.0: Could not find artifact com.acme:platform-parent:pom:7.2 in central (https://repo.maven.apache.org/maven2) and 'parent.relativePath' points at wrong local POM @ line 6, column 11",
            "[ERROR]     Non-resolvable parent POM for com.acme:web:1.4.0: Could not find artifact com.acme:platform-parent:pom:7.2 in central (https://repo.maven.apache.org/maven2) and 'parent.relativePath' points at wrong local POM @ line 6, column 11 -> [Help 2]",
        ],
        1,
    );
    assert_top(
        &log,
        "maven.dependency",
        &["com.acme:platform-parent:pom:7.2"],
    );
}

#[test]
fn colour_codes_and_carriage_returns_are_not_part_of_the_text() {
    let log = framed(
        "npx tsc --noEmit --pretty",
        &[
            "\u{1b}[96msrc/api.ts\u{1b}[0m:\u{1b}[93m12\u{1b}[0m:\u{1b}[93m7\u{1b}[0m - \u{1b}[91merror\u{1b}[0m\u{1b}[90m TS2322: \u{1b}[0mType 'string' is not assignable to type 'number'.\r",
            "",
            "Found 1 error in src/api.ts\u{1b}[90m:12\u{1b}[0m\r",
        ],
        2,
    );
    assert_top(&log, "compile.tsc", &["TS2322", "src/api.ts:12"]);
    let f = top(&log);
    assert!(!f.title.contains('\u{1b}'));
    // A progress line redrawn with `\r`, then the error.
    let log = framed(
        "./deploy.sh",
        &["uploading  10%\ruploading  60%\r./deploy.sh: line 9: DEPLOY_ENV: unbound variable"],
        1,
    );
    assert_top(&log, "shell.unbound", &["DEPLOY_ENV"]);
}

#[test]
fn node_spec_reporter_names_the_test_its_file_and_assertion() {
    let log = framed(
        "node --test",
        &[
            "✔ parses empty input (0.5ms)",
            "✖ rejects bad ids (1.1ms)",
            "  AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:",
            "",
            "  1 !== 2",
            "",
            "      at TestContext.<anonymous> (file:///src/test/ids.test.mjs:8:10)",
            "ℹ tests 2",
            "ℹ fail 1",
            "",
            "✖ failing tests:",
            "",
            "test at test/ids.test.mjs:6:1",
            "✖ rejects bad ids (1.1ms)",
            "  AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:",
        ],
        1,
    );
    assert_top(
        &log,
        "test.node",
        &["rejects bad ids", "ids.test.mjs:6", "1 !== 2"],
    );
}

#[test]
fn yarn_berry_codes_are_read_and_progress_codes_are_not() {
    let log = framed(
        "yarn install --immutable",
        &[
            "➤ YN0000: · Yarn 4.1.0",
            "➤ YN0000: ┌ Resolution step",
            "➤ YN0002: │ web@workspace:. doesn't provide react (p1a2b3), requested by react-dom.",
            "➤ YN0028: │ The lockfile would have been modified by this install, which is explicitly forbidden.",
            "➤ YN0000: └ Completed in 0s 210ms",
            "➤ YN0000: · Failed with errors in 0s 215ms",
        ],
        1,
    );
    assert_top(
        &log,
        "yarn.berry",
        &["YN0028", "lockfile would have been modified"],
    );
}

#[test]
fn eslint_compact_and_unix_formats_and_go_vet_on_windows() {
    for line in [
        "/src/web/src/app.js: line 3, col 7, Error - 'unused' is assigned a value but never used. (no-unused-vars)",
        "/src/web/src/app.js:3:7: 'unused' is assigned a value but never used. [Error/no-unused-vars]",
    ] {
        let log = framed("npx eslint .", &[line, "", "1 problem"], 1);
        assert_top(&log, "lint.eslint", &["no-unused-vars", "app.js:3"]);
    }
    let log = framed(
        "go vet ./...",
        &[
            "# example.com/app",
            r".\cmd\main.go:9:2: fmt.Printf format %d has arg name of wrong type string",
        ],
        1,
    );
    assert_top(
        &log,
        "go.build_error",
        &["main.go:9:2", "wrong type string"],
    );
}

#[test]
fn docker_kubectl_terraform_git_and_dash_wordings() {
    let log = framed(
        "docker build -t web .",
        &[
            "ERROR: failed to connect to the docker API at unix:///var/run/docker.sock; check if the path is correct and if the daemon is running: dial unix /var/run/docker.sock: connect: no such file or directory",
        ],
        1,
    );
    assert_top(&log, "docker.no_daemon", &["privileged"]);
    let log = framed(
        "kubectl apply -f k8s/",
        &[
            "error: resource mapping not found for name: \"web\" namespace: \"\" from \"k8s/ing.yaml\": no matches for kind \"Ingress\" in version \"extensions/v1beta1\"",
            "ensure CRDs are installed first",
        ],
        1,
    );
    assert_top(&log, "k8s.server_error", &["k8s/ing.yaml", "Ingress"]);
    let log = framed(
        "terraform apply -auto-approve",
        &[
            "╷",
            "│ Error: creating S3 Bucket (acme-site): BucketAlreadyExists",
            "│ ",
            "│   with module.web.aws_s3_bucket.site,",
            "│   on modules/web/main.tf line 10, in resource \"aws_s3_bucket\" \"site\":",
            "│   10: resource \"aws_s3_bucket\" \"site\" {",
            "│ ",
            "╵",
        ],
        1,
    );
    assert_top(
        &log,
        "terraform.error",
        &[
            "BucketAlreadyExists",
            "modules/web/main.tf:10",
            "module.web.aws_s3_bucket.site",
        ],
    );
    let log = framed(
        "git push origin main",
        &[
            "error: src refspec main does not match any",
            "error: failed to push some refs to 'https://example.com/acme/web.git'",
        ],
        1,
    );
    assert_top(&log, "git.fatal", &["src refspec main does not match any"]);
    let log = framed(
        "git push origin HEAD:main",
        &[
            "To https://example.com/acme/web.git",
            " ! [rejected]        HEAD -> main (fetch first)",
            "error: failed to push some refs to 'https://example.com/acme/web.git'",
        ],
        1,
    );
    assert_top(&log, "git.fatal", &["HEAD -> main (fetch first)"]);
    let log = framed(
        "sh ./ci.sh",
        &["./ci.sh: 7: Syntax error: \"fi\" unexpected"],
        2,
    );
    assert_top(
        &log,
        "shell.syntax",
        &["./ci.sh", "line 7", "\"fi\" unexpected"],
    );
}

#[test]
fn npm_codes_with_a_tag_on_each_line_and_peer_conflicts() {
    let log = framed(
        "npm install",
        &[
            "npm error code ETARGET",
            "npm error notarget No matching version found for left-pad@^9.0.0.",
            "npm error notarget In most cases you or one of your dependencies are requesting",
            "npm error notarget a package version that doesn't exist.",
        ],
        1,
    );
    let f = top(&log);
    assert!(
        f.title
            .contains("No matching version found for left-pad@^9.0.0"),
        "{}",
        f.title
    );
    assert!(!f.title.contains("notarget"), "{}", f.title);
    let log = framed(
        "npm install",
        &[
            "npm error code ERESOLVE",
            "npm error ERESOLVE unable to resolve dependency tree",
            "npm error",
            "npm error While resolving: web@1.0.0",
            "npm error Found: react@18.2.0",
            "npm error",
            "npm error Could not resolve dependency:",
            "npm error peer react@\"^17.0.0\" from legacy-widget@2.1.0",
        ],
        1,
    );
    assert_top(
        &log,
        "npm.error",
        &[
            "ERESOLVE",
            "peer react@\"^17.0.0\" from legacy-widget@2.1.0",
        ],
    );
}

#[test]
fn dependency_resolution_in_maven_and_gradle_names_the_artifact() {
    let log = framed(
        "mvn -B package",
        &[
            "[ERROR] Failed to execute goal on project app: Could not resolve dependencies for project com.acme:app:jar:1.0: The following artifacts could not be resolved: com.acme:lib:jar:2.0 (absent): Could not find artifact com.acme:lib:jar:2.0 in central (https://repo.maven.apache.org/maven2) -> [Help 1]",
        ],
        1,
    );
    let f = top(&log);
    assert_eq!(f.rule, "maven.dependency");
    assert!(
        f.title.ends_with("resolve com.acme:lib:jar:2.0"),
        "{}",
        f.title
    );
    let log = framed(
        "./gradlew build",
        &[
            "FAILURE: Build failed with an exception.",
            "",
            "* What went wrong:",
            "Execution failed for task ':app:compileJava'.",
            "> Could not resolve all files for configuration ':app:compileClasspath'.",
            "   > Could not find com.acme:lib:2.0.",
            "     Required by:",
            "         project :app",
            "",
            "* Try:",
        ],
        1,
    );
    assert_top(
        &log,
        "gradle.failure",
        &[":app:compileJava", "Could not find com.acme:lib:2.0"],
    );
}

#[test]
fn shell_docker_kubectl_pip_and_aws_configuration_problems() {
    let log = framed(
        "./build.sh",
        &["bash: ./build.sh: /bin/bash^M: bad interpreter: No such file or directory"],
        126,
    );
    assert_top(&log, "shell.bad_interpreter", &["./build.sh", "CRLF"]);
    let log = framed(
        "docker pull node:20",
        &[
            "Error response from daemon: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
        ],
        1,
    );
    assert_top(&log, "docker.rate_limit", &["rate limit"]);
    let log = framed(
        "kubectl get pods",
        &["error: exec plugin: invalid apiVersion \"client.authentication.k8s.io/v1alpha1\""],
        1,
    );
    assert_top(&log, "k8s.exec_plugin", &["v1alpha1"]);
    let log = framed(
        "kubectl get pods",
        &[
            "Unable to connect to the server: dial tcp: lookup ABC.gr7.us-east-1.eks.amazonaws.com on 10.0.0.2:53: no such host",
        ],
        1,
    );
    assert_top(
        &log,
        "k8s.connection_refused",
        &["ABC.gr7.us-east-1.eks.amazonaws.com", "no such host"],
    );
    let log = framed(
        "pip install -r requirements.txt",
        &[
            "error: externally-managed-environment",
            "",
            "× This environment is externally managed",
        ],
        1,
    );
    assert_top(&log, "pip.externally_managed", &["PEP 668"]);
    let log = framed(
        "aws s3 ls --profile deploy",
        &["The config profile (deploy) could not be found"],
        255,
    );
    assert_top(&log, "aws.no_credentials", &["config profile (deploy)"]);
    let log = framed(
        "aws sts get-caller-identity",
        &["Error when retrieving token from sso: Token has expired and refresh failed"],
        255,
    );
    assert_top(&log, "aws.expired_token", &["expired"]);
    let log = framed(
        "cargo clippy -- -D warnings",
        &[
            "error: this `if` has identical blocks",
            " --> src/main.rs:4:5",
            "  |",
            "  = note: `-D clippy::if-same-then-else` implied by `-D warnings`",
        ],
        101,
    );
    assert_top(
        &log,
        "cargo.error_plain",
        &["clippy::if_same_then_else", "src/main.rs:4:5"],
    );
}

#[test]
fn pylint_ranks_errors_above_conventions_and_flake8_pylint_format() {
    let log = framed(
        "pylint app",
        &[
            "************* Module app.cli",
            "app/cli.py:3:0: C0116: Missing function or method docstring (missing-function-docstring)",
            "app/cli.py:9:4: E1101: Instance of 'Config' has no 'regoin' member (no-member)",
        ],
        2,
    );
    assert_top(&log, "lint.python", &["pylint E1101", "cli.py:9", "regoin"]);
    let log = framed(
        "flake8 --format=pylint .",
        &["./app/cli.py:3: [E302] expected 2 blank lines, found 1"],
        1,
    );
    assert_top(&log, "lint.python", &["E302", "cli.py:3"]);
}

#[test]
fn kubectl_invalid_objects_and_shell_eof_and_zsh() {
    let log = framed(
        "kubectl apply -f deploy.yaml",
        &[
            "The Deployment \"web\" is invalid: spec.template.spec.containers[0].image: Required value",
        ],
        1,
    );
    assert_top(
        &log,
        "k8s.server_error",
        &["Deployment web", "image: Required value"],
    );
    let log = framed(
        "./scripts/check.sh",
        &["./scripts/check.sh: line 5: unexpected EOF while looking for matching `\"'"],
        2,
    );
    assert_top(&log, "shell.syntax", &["line 5", "unexpected EOF"]);
    let log = framed("zsh ./x.sh", &["./x.sh:3: command not found: jq"], 127);
    assert_top(&log, "shell.command_not_found", &["jq"]);
}
