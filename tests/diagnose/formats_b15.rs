//! Formats read after the misses of batches 15 to 17, on other wordings:
//! libtest's terse format, cargo's `Caused by:` chain, the AWS error code
//! beside a missing permission, the CLI's own words for missing
//! credentials, scoped npm packages, the test a Java exception failed,
//! admission webhooks, openssl files it cannot read, bundlers that cannot
//! resolve an import.

use super::formats::{assert_top, framed};

#[test]
fn cargo_test_quiet_names_the_failing_tests() {
    let log = framed(
        "cargo test -q",
        &[
            "",
            "running 3 tests",
            "config::rejects_empty_port --- FAILED",
            ".",
            "config::reads_env_override --- FAILED",
            "",
            "failures:",
            "",
            "---- config::rejects_empty_port stdout ----",
            "",
            "thread 'config::rejects_empty_port' (811) panicked at src/config.rs:40:9:",
            "expected an error for an empty port",
            "",
            "failures:",
            "    config::rejects_empty_port",
            "    config::reads_env_override",
            "",
            "test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        ],
        101,
    );
    assert_top(
        &log,
        "cargo.test_failed",
        &[
            "config::rejects_empty_port",
            "2 failed",
            "config::reads_env_override",
            "src/config.rs:40:9",
            "expected an error for an empty port",
        ],
    );
}

#[test]
fn cargo_errors_carry_the_innermost_cause() {
    let log = framed(
        "cargo build --release",
        &[
            "error: failed to load manifest for workspace member `/src/crates/api`",
            "referenced by workspace at `/src/Cargo.toml`",
            "",
            "Caused by:",
            "  failed to parse manifest at `/src/crates/api/Cargo.toml`",
            "",
            "Caused by:",
            "  dependency (tokio) specified without providing a local path, Git repository, version, or workspace dependency to use",
        ],
        101,
    );
    assert_top(
        &log,
        "cargo.error_plain",
        &[
            "failed to load manifest",
            "dependency (tokio) specified without",
        ],
    );
}

#[test]
fn aws_titles_keep_the_error_code_and_the_cli_words() {
    let log = framed(
        "aws secretsmanager get-secret-value --secret-id prod/api",
        &[
            "An error occurred (AccessDeniedException) when calling the GetSecretValue operation: User: arn:aws:sts::111122223333:assumed-role/build/abc is not authorized to perform: secretsmanager:GetSecretValue on resource: prod/api because no identity-based policy allows the secretsmanager:GetSecretValue action",
        ],
        254,
    );
    assert_top(
        &log,
        "aws.access_denied",
        &["AccessDeniedException", "secretsmanager:GetSecretValue"],
    );
    let log = framed(
        "node deploy.js",
        &[
            "AccessDeniedException: User: arn:aws:iam::111122223333:user/ci is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:eu-west-1:111122223333:table/orders",
        ],
        1,
    );
    assert_top(
        &log,
        "aws.access_denied",
        &["AccessDeniedException", "dynamodb:PutItem"],
    );
    let log = framed(
        "aws s3 sync dist s3://site",
        &[
            "",
            "Unable to locate credentials. You can configure credentials by running \"aws configure\".",
        ],
        255,
    );
    assert_top(
        &log,
        "aws.no_credentials",
        &["Unable to locate credentials"],
    );
}

#[test]
fn scoped_npm_packages_are_named_as_written() {
    let log = framed(
        "npm ci",
        &[
            "npm error code E404",
            "npm error 404 Not Found - GET https://registry.npmjs.org/@org%2fui-kit - Not found",
            "npm error 404",
            "npm error 404  '@org/ui-kit@2.0.0' is not in this registry.",
        ],
        1,
    );
    assert_top(&log, "npm.not_found", &["@org/ui-kit"]);
    let log = framed(
        "npm install",
        &["npm ERR! 404 Not Found - GET https://registry.npmjs.org/left-padd - Not found"],
        1,
    );
    assert_top(&log, "npm.not_found", &["left-padd"]);
}

#[test]
fn a_java_exception_names_the_test_it_failed() {
    let log = framed(
        "java -cp build TestMain",
        &[
            "FAIL InvoiceTests.discountAppliesOnce",
            "java.lang.IllegalStateException: discount applied twice",
            "\tat billing.Invoice.apply(Invoice.java:41)",
            "\tat billing.InvoiceTests.discountAppliesOnce(InvoiceTests.java:18)",
            "\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)",
        ],
        1,
    );
    assert_top(
        &log,
        "java.exception",
        &[
            "IllegalStateException",
            "Invoice.java:41",
            "InvoiceTests.discountAppliesOnce",
        ],
    );
}

#[test]
fn admission_webhooks_name_the_policy() {
    let log = framed(
        "kubectl apply -f k8s/",
        &[
            "Error from server (Forbidden): error when creating \"k8s/pod.yaml\": admission webhook \"validation.gatekeeper.sh\" denied the request: [must-have-owner] you must provide labels: {\"owner\"}",
        ],
        1,
    );
    assert_top(
        &log,
        "k8s.webhook_denied",
        &["validation.gatekeeper.sh", "must-have-owner"],
    );
    let log = framed(
        "kubectl apply -f app.yaml",
        &[
            "Error from server: error when creating \"app.yaml\": admission webhook \"validate.kyverno.svc-fail\" denied the request: ",
            "",
            "resource Deployment/web/api was blocked due to the following policies ",
            "",
            "disallow-latest-tag:",
            "  validate-image-tag: 'validation error: Using a mutable image tag e.g. ''latest'' is not allowed. rule validate-image-tag failed at path /spec/template/spec/containers/0/image/'",
        ],
        1,
    );
    assert_top(
        &log,
        "k8s.webhook_denied",
        &["disallow-latest-tag", "mutable image tag"],
    );
}

#[test]
fn openssl_names_the_file_it_could_not_read() {
    let log = framed(
        "openssl rsa -in keys/signing.key -check -noout",
        &[
            "Could not read private key from keys/signing.key",
            "40F7D1E3A07F0000:error:1E08010C:DECODER routines:OSSL_DECODER_from_bio:unsupported:../crypto/encode_decode/decoder_lib.c:102:No supported data to decode.",
        ],
        1,
    );
    assert_top(
        &log,
        "openssl.load",
        &["Could not read private key from keys/signing.key"],
    );
    let log = framed(
        "openssl x509 -in ca.crt -noout -dates",
        &[
            "Could not open file or uri for loading certificate from ca.crt",
            "40A7E5F4A27F0000:error:16000069:STORE routines:ossl_store_get0_loader_int:unregistered scheme:../crypto/store/store_register.c:237:scheme=file",
            "Unable to load certificate",
        ],
        1,
    );
    assert_top(
        &log,
        "openssl.load",
        &["Could not open file or uri for loading certificate from ca.crt"],
    );
}

#[test]
fn bundlers_name_the_import_they_could_not_resolve() {
    let log = framed(
        "npm run build",
        &[
            "vite v5.4.10 building for production...",
            "✓ 12 modules transformed.",
            "x Build failed in 210ms",
            "error during build:",
            "[vite]: Rollup failed to resolve import \"@/stores/basket\" from \"/src/src/App.vue\".",
            "This is most likely unintended because it can break your application at runtime.",
        ],
        1,
    );
    assert_top(
        &log,
        "js.unresolved_import",
        &["@/stores/basket", "App.vue"],
    );
    let log = framed(
        "npx esbuild src/index.ts --bundle --outfile=dist/out.js",
        &[
            "✘ [ERROR] Could not resolve \"./handlers/refund\"",
            "",
            "    src/index.ts:3:23:",
            "      3 │ import { refund } from \"./handlers/refund\";",
            "",
            "1 error",
        ],
        1,
    );
    assert_top(&log, "js.unresolved_import", &["./handlers/refund"]);
    let log = framed(
        "npx webpack --mode production",
        &[
            "ERROR in ./src/index.js 4:0-38",
            "Module not found: Error: Can't resolve './Chart' in '/src/src'",
            "webpack 5.94.0 compiled with 1 error in 812 ms",
        ],
        1,
    );
    assert_top(&log, "js.unresolved_import", &["Can't resolve './Chart'"]);
}
