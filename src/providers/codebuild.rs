//! CodeBuild actions: the buildspec runs from the primary input artifact as
//! a local process tree (see [`super::codebuild_local`] for the phase
//! semantics); around it this provider does what the CodeBuild service
//! does: picks the buildspec, resolves environment variables and secrets,
//! restores and saves the cache, parses JUnit reports, and packages the
//! `artifacts` / `secondary-artifacts` into the action's output artifacts.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::codebuild_local::{self, BuildRequest, Status};
use super::{ActionContext, ActionOutcome, BoxFuture, Provider};
use crate::api::types::TestReport;
use crate::model::buildspec::{self, Artifacts, Buildspec};

pub struct CodeBuild;

impl Provider for CodeBuild {
    fn run(&self, ctx: ActionContext) -> BoxFuture<ActionOutcome> {
        Box::pin(run(ctx))
    }
}

/// Where the buildspec comes from, for the log.
fn choose_buildspec(ctx: &ActionContext, src: &Path) -> Result<(Buildspec, String), String> {
    let cfg = &ctx.action.configuration;
    let project = cfg.get("ProjectName").cloned().unwrap_or_default();
    let from_text = |text: &str, origin: String| -> Result<(Buildspec, String), String> {
        match buildspec::parse_str(text) {
            Ok(l) => Ok((l.buildspec, origin)),
            Err(diags) => Err(format!(
                "{origin}: the buildspec does not load: {}",
                diags
                    .iter()
                    .filter(|d| d.is_error())
                    .map(|d| match d.pos {
                        Some(p) => format!("{}:{}: {}", p.line, p.column, d.message),
                        None => d.message.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    };
    let from_path_or_inline = |v: &str, what: &str| -> Result<(Buildspec, String), String> {
        if v.contains('\n') {
            return from_text(v, format!("the inline buildspec of {what}"));
        }
        let p = inside(src, v).map_err(|why| {
            format!("CLIENT_ERROR: {what} names buildspec `{v}`, which is refused: {why}")
        })?;
        match crate::model::source::read_file(&p) {
            Ok(t) => from_text(&t.text, format!("{v} ({what})")),
            Err(e) => Err(format!(
                "{what} names buildspec `{v}`, which the primary source does not hold: {e}"
            )),
        }
    };
    if let Some(v) = cfg.get("BuildspecOverride") {
        return from_path_or_inline(v, "the action's BuildspecOverride");
    }
    if let Some(v) = ctx
        .workspace
        .projects
        .get(&project)
        .and_then(|p| p.buildspec.clone())
    {
        return from_path_or_inline(&v, &format!("[projects.{project}] in pipedeck.toml"));
    }
    if let Some(spec) = ctx
        .workspace
        .pipeline(&ctx.pipeline)
        .and_then(|p| p.project_buildspecs.get(&project))
    {
        return Ok((
            spec.clone(),
            format!("the inline buildspec of CloudFormation project {project}"),
        ));
    }
    for name in ["buildspec.yml", "buildspec.yaml"] {
        let p = src.join(name);
        if let Ok(t) = std::fs::read_to_string(&p) {
            return from_text(&t, name.to_owned());
        }
    }
    Err(format!(
        "YAML_FILE_ERROR: no buildspec.yml in the primary source, and project `{project}` maps \
         none: add buildspec.yml to the repository or [projects.{project}] buildspec = \"...\" \
         to pipedeck.toml"
    ))
}

/// `path` resolved inside the source directory `src`, as CodeBuild does
/// (relative to `CODEBUILD_SRC_DIR`; a leading `/` too): a path that
/// climbs out (`..`) or a symbolic link leading out is refused.
fn inside(src: &Path, path: &str) -> Result<std::path::PathBuf, String> {
    use std::path::Component;
    let rel = Path::new(path.trim_start_matches('/'));
    let mut depth = 0usize;
    for c in rel.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            _ => return Err("it leads out of the primary source artifact".into()),
        }
    }
    let p = src.join(rel);
    if let (Ok(real), Ok(root)) = (p.canonicalize(), src.canonicalize())
        && !real.starts_with(&root)
    {
        return Err(format!(
            "it is a link to {}, outside the primary source artifact",
            real.display()
        ));
    }
    Ok(p)
}

type Pairs = Vec<(String, String)>;

/// `EnvironmentVariables`: `[{name, value, type}]` with type PLAINTEXT,
/// PARAMETER_STORE or SECRETS_MANAGER.
fn action_env(ctx: &ActionContext) -> Result<(Pairs, Pairs), String> {
    let mut plain = Vec::new();
    let mut secret = Vec::new();
    let Some(raw) = ctx.action.configuration.get("EnvironmentVariables") else {
        return Ok((plain, secret));
    };
    let list: Vec<serde_json::Value> = serde_json::from_str(raw)
        .map_err(|e| format!("EnvironmentVariables is not a JSON list: {e}"))?;
    for v in list {
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        let value = v["value"].as_str().unwrap_or_default().to_owned();
        match v["type"].as_str().unwrap_or("PLAINTEXT") {
            "PARAMETER_STORE" | "SECRETS_MANAGER" => match ctx.workspace.secret(&value)? {
                Some(s) => secret.push((name, s)),
                None => {
                    return Err(format!(
                        "Decrypted Variables Error: `{value}` (for {name}) is not in the local \
                         secrets source; add it to the [secrets] file or environment"
                    ));
                }
            },
            _ => plain.push((name, value)),
        }
    }
    Ok((plain, secret))
}

fn buildspec_secrets(
    ctx: &ActionContext,
    spec: &Buildspec,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (var, name) in &spec.env.parameter_store {
        match ctx.workspace.secret(name)? {
            Some(v) => out.push((var.clone(), v)),
            None => {
                return Err(format!(
                    "Decrypted Variables Error: parameter-store `{name}` (for {var}) is not in \
                     the local secrets source; add it to the [secrets] file or environment"
                ));
            }
        }
    }
    for (var, r) in &spec.env.secrets_manager {
        let Some(v) = ctx.workspace.secret(&r.secret_id)? else {
            return Err(format!(
                "Decrypted Variables Error: secrets-manager `{}` (for {var}) is not in the \
                 local secrets source; add it to the [secrets] file or environment",
                r.secret_id
            ));
        };
        let v = match &r.json_key {
            Some(k) => match serde_json::from_str::<serde_json::Value>(&v)
                .ok()
                .and_then(|j| j.get(k).cloned())
            {
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => {
                    return Err(format!(
                        "Decrypted Variables Error: secret `{}` has no JSON key `{k}`",
                        r.secret_id
                    ));
                }
            },
            None => v,
        };
        out.push((var.clone(), v));
    }
    Ok(out)
}

/// Runs the build; what it reports (summary, error, output variables) is
/// masked like its log, wherever it is later stored or shown (the state
/// store, `--json`, the audit trail's responses).
async fn run(ctx: ActionContext) -> ActionOutcome {
    let mut secrets = Vec::new();
    let outcome = build(ctx, &mut secrets).await;
    mask_outcome(outcome, &codebuild_local::Masker::new(secrets))
}

fn mask_outcome(mut o: ActionOutcome, m: &codebuild_local::Masker) -> ActionOutcome {
    if m.is_empty() {
        return o;
    }
    if let Some(s) = &mut o.summary {
        *s = m.mask(s).into_owned();
    }
    if let Some(e) = &mut o.error {
        e.message = m.mask(&e.message).into_owned();
    }
    for v in o.output_variables.values_mut() {
        *v = m.mask(v).into_owned();
    }
    o
}

async fn build(mut ctx: ActionContext, found: &mut Vec<String>) -> ActionOutcome {
    let project = ctx
        .action
        .configuration
        .get("ProjectName")
        .cloned()
        .unwrap_or_else(|| ctx.action.name.clone());
    let build_id = format!("{project}:{}", ctx.action_execution_id);
    let fail = |msg: String| ActionOutcome {
        external_execution_id: Some(format!("{project}:{}", ctx.action_execution_id)),
        ..ActionOutcome::failed("JobFailed", msg)
    };
    // The primary source: `PrimarySource` names it, else the first input.
    let primary_name = ctx.action.configuration.get("PrimarySource").cloned();
    let primary = match &primary_name {
        Some(n) => ctx.inputs.iter().find(|i| &i.name == n),
        None => ctx.inputs.first(),
    };
    let Some(primary) = primary.cloned() else {
        let msg = match primary_name {
            Some(n) => format!("PrimarySource `{n}` is not one of the action's input artifacts"),
            None => "a CodeBuild action needs at least one input artifact".to_owned(),
        };
        ctx.log.line(&format!("[Container] {msg}"));
        return fail(msg);
    };
    let src = primary.dir.clone();
    let (spec, origin) = match choose_buildspec(&ctx, &src) {
        Ok(x) => x,
        Err(e) => {
            ctx.log.line(&format!(
                "[Container] Phase DOWNLOAD_SOURCE State: FAILED: {e}"
            ));
            return fail(e);
        }
    };
    ctx.log.line(&format!(
        "[Container] Build {build_id} starting; buildspec from {origin}"
    ));
    let (action_plain, action_secret) = match action_env(&ctx) {
        Ok(x) => x,
        Err(e) => {
            ctx.log.line(&format!("[Container] {e}"));
            return fail(e);
        }
    };
    let mut secrets = match buildspec_secrets(&ctx, &spec) {
        Ok(s) => s,
        Err(e) => {
            ctx.log.line(&format!("[Container] {e}"));
            return fail(e);
        }
    };
    secrets.extend(action_secret);
    found.extend(secrets.iter().map(|(_, v)| v.clone()));
    let proj = ctx
        .workspace
        .projects
        .get(&project)
        .cloned()
        .unwrap_or_default();
    let mut overrides: Vec<(String, String)> = proj.environment.clone().into_iter().collect();
    overrides.extend(action_plain);
    let revision = primary.revision.clone().unwrap_or_default();
    let builtins = vec![
        ("CODEBUILD_BUILD_ID".to_owned(), build_id.clone()),
        (
            "CODEBUILD_BUILD_ARN".to_owned(),
            format!("arn:aws:codebuild:local:000000000000:build/{build_id}"),
        ),
        (
            "CODEBUILD_INITIATOR".to_owned(),
            format!("codepipeline/{}", ctx.pipeline),
        ),
        (
            "CODEBUILD_RESOLVED_SOURCE_VERSION".to_owned(),
            revision.clone(),
        ),
        ("CODEBUILD_SOURCE_VERSION".to_owned(), revision),
        (
            "CODEBUILD_LOG_PATH".to_owned(),
            ctx.action_execution_id.clone(),
        ),
        (
            "CODEBUILD_BUILD_IMAGE".to_owned(),
            proj.image.clone().unwrap_or_else(|| "local".into()),
        ),
        (
            "CODEBUILD_START_TIME".to_owned(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
                .to_string(),
        ),
        ("CODEBUILD_CI".to_owned(), "true".into()),
        (
            "CODEPIPELINE_EXECUTION_ID".to_owned(),
            ctx.execution_id.clone(),
        ),
    ];
    restore_cache(&spec, &src, &ctx.cache_dir, &mut *ctx.log);
    let req = BuildRequest {
        spec: spec.clone(),
        src_dir: src.clone(),
        secondary_sources: ctx
            .inputs
            .iter()
            .filter(|i| i.name != primary.name)
            .map(|i| (i.name.clone(), i.dir.clone()))
            .collect(),
        builtins,
        overrides,
        secrets,
        timeout: Some(ctx.remaining()),
        pgid_file: Some(ctx.work_dir.with_file_name("pgid")),
    };
    let report = match codebuild_local::run(&req, &mut *ctx.log, &mut ctx.stop).await {
        Ok(r) => r,
        Err(e) => {
            ctx.log.line(&format!("[Container] {e}"));
            return fail(e.to_string());
        }
    };
    save_cache(&spec, &src, &ctx.cache_dir, &mut *ctx.log);
    let test_report = reports(&spec, &src, &mut *ctx.log);
    let mut outcome = ActionOutcome {
        external_execution_id: Some(build_id.clone()),
        test_report,
        phases: report
            .phases
            .iter()
            .map(|p| crate::api::types::PhaseState {
                phase_type: p.name.to_uppercase(),
                phase_status: p.status.map(|s| {
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                }),
                duration_ms: p.duration.as_millis() as u64,
            })
            .collect(),
        ..ActionOutcome::succeeded()
    };
    if report.status != Status::Succeeded {
        let what = report
            .phases
            .iter()
            .find(|p| p.failed_command.is_some() || matches!(p.status, Some(Status::TimedOut)))
            .map(|p| match &p.failed_command {
                Some((cmd, code)) => {
                    format!(" in {}: `{cmd}` exited with {code}", p.name.to_uppercase())
                }
                None => format!(" in {}", p.name.to_uppercase()),
            })
            .unwrap_or_default();
        let msg = match report.status {
            Status::TimedOut => format!(
                "Build timed out after {}{what}",
                humantime::format_duration(ctx.timeout)
            ),
            Status::Stopped => "Build stopped".to_owned(),
            _ => format!("Build failed{what}"),
        };
        let msg = match &outcome.test_report {
            Some(t) if t.failed > 0 => format!(
                "{msg}; tests: {} passed, {} failed ({}), {} skipped",
                t.passed,
                t.failed,
                t.failing.join(", "),
                t.skipped
            ),
            _ => msg,
        };
        return failed_with(outcome, msg);
    }
    outcome.output_variables = report.exported.into_iter().collect();
    // Artifacts: the primary goes to the first output, secondary ones by
    // their identifier (or, if the names do not match, in order).
    let outputs = ctx.action.output_artifacts.clone();
    if !outputs.is_empty() {
        let Some(arts) = &spec.artifacts else {
            let msg = format!(
                "CLIENT_ERROR: the action declares output artifact {} but the buildspec has no \
                 artifacts section",
                outputs.join(", ")
            );
            ctx.log.line(&format!(
                "[Container] Phase UPLOAD_ARTIFACTS State: FAILED: {msg}"
            ));
            return failed_with(outcome, msg);
        };
        let mut plan: Vec<(String, &Artifacts)> = Vec::new();
        if arts.files.is_empty() && !arts.secondary.is_empty() {
            for (i, out) in outputs.iter().enumerate() {
                let sec = arts
                    .secondary
                    .iter()
                    .find(|(k, _)| k == out)
                    .or_else(|| arts.secondary.get(i));
                if let Some((_, a)) = sec {
                    plan.push((out.clone(), a));
                }
            }
        } else {
            plan.push((outputs[0].clone(), arts));
            for (i, out) in outputs.iter().enumerate().skip(1) {
                let sec = arts
                    .secondary
                    .iter()
                    .find(|(k, _)| k == out)
                    .or_else(|| arts.secondary.get(i - 1));
                if let Some((_, a)) = sec {
                    plan.push((out.clone(), a));
                }
            }
        }
        for (name, a) in plan {
            let dest = ctx.work_dir.join(format!("artifact-{name}"));
            match package(a, &src, &dest) {
                Ok(n) => {
                    ctx.log.line(&format!(
                        "[Container] Phase UPLOAD_ARTIFACTS: {n} file(s) into artifact {name}{}",
                        a.name
                            .as_deref()
                            .map(|x| format!(" (name {x} is used on S3 only)"))
                            .unwrap_or_default()
                    ));
                    outcome.output_artifacts.push((name, dest));
                }
                Err(msg) => {
                    ctx.log.line(&format!(
                        "[Container] Phase UPLOAD_ARTIFACTS State: FAILED: {msg}"
                    ));
                    return failed_with(outcome, msg);
                }
            }
        }
    }
    outcome.summary = Some(match &outcome.test_report {
        Some(t) => format!(
            "Build succeeded; tests: {} passed, {} failed, {} skipped",
            t.passed, t.failed, t.skipped
        ),
        None => "Build succeeded".to_owned(),
    });
    outcome
}

/// `outcome` (its test report, build id, phases) as a failure saying `msg`.
fn failed_with(outcome: ActionOutcome, msg: String) -> ActionOutcome {
    ActionOutcome {
        status: super::OutcomeStatus::Failed,
        summary: Some(msg.clone()),
        error: Some(crate::api::types::ErrorDetails {
            code: "JobFailed".into(),
            message: msg,
        }),
        ..outcome
    }
}

fn globs(patterns: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let p = p.trim_start_matches("./");
        let g = GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("bad pattern `{p}`: {e}"))?;
        b.add(g);
    }
    b.build().map_err(|e| e.to_string())
}

/// Every file under `root`, relative, sorted.
fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(_) => {
                    if let Ok(rel) = p.strip_prefix(root) {
                        out.push(rel.to_string_lossy().replace('\\', "/"));
                    }
                }
                Err(_) => {}
            }
        }
    }
    out.sort();
    out
}

/// Copies the files an `artifacts` block selects into `dest`.
pub fn package(a: &Artifacts, src: &Path, dest: &Path) -> Result<usize, String> {
    let base = match &a.base_directory {
        Some(b) => src.join(b.trim_start_matches("./")),
        None => src.to_path_buf(),
    };
    if !base.is_dir() {
        return Err(format!(
            "CLIENT_ERROR: base-directory `{}` does not exist",
            a.base_directory.clone().unwrap_or_default()
        ));
    }
    let include = globs(&a.files)?;
    let exclude = globs(&a.exclude_paths)?;
    std::fs::create_dir_all(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    let mut n = 0;
    for rel in files_under(&base) {
        if !include.is_match(&rel) || exclude.is_match(&rel) {
            continue;
        }
        let target = if a.discard_paths {
            dest.join(Path::new(&rel).file_name().unwrap_or_default())
        } else {
            dest.join(&rel)
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::copy(base.join(&rel), &target).map_err(|e| format!("{rel}: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err(format!(
            "CLIENT_ERROR: no matching artifact paths found for {}",
            a.files.join(", ")
        ));
    }
    Ok(n)
}

/// Parses the JUnit XML files the `reports` groups name.
fn reports(spec: &Buildspec, src: &Path, log: &mut dyn super::LogSink) -> Option<TestReport> {
    if spec.reports.is_empty() {
        return None;
    }
    let mut total = TestReport::default();
    for group in &spec.reports {
        let base: PathBuf = match &group.base_directory {
            Some(b) => src.join(b),
            None => src.to_path_buf(),
        };
        let Ok(set) = globs(&group.files) else {
            log.line(&format!(
                "[Container] Report group {}: bad file pattern",
                group.name
            ));
            continue;
        };
        let files: Vec<String> = files_under(&base)
            .into_iter()
            .filter(|f| set.is_match(f))
            .collect();
        if files.is_empty() {
            log.line(&format!(
                "[Container] Report group {}: no report files match {}",
                group.name,
                group.files.join(", ")
            ));
            continue;
        }
        let fmt = group.file_format.to_uppercase();
        if !fmt.starts_with("JUNIT") {
            log.line(&format!(
                "[Container] Report group {}: format {fmt} is not read locally (JUNITXML is)",
                group.name
            ));
            continue;
        }
        let mut r = TestReport::default();
        for f in &files {
            match std::fs::read_to_string(base.join(f)) {
                Ok(text) => match parse_junit(&text, &mut r) {
                    Ok(()) => r.files.push(f.clone()),
                    Err(e) => log.line(&format!("[Container] Report {f}: {e}")),
                },
                Err(e) => log.line(&format!("[Container] Report {f}: {e}")),
            }
        }
        log.line(&format!(
            "[Container] Report group {}: {} passed, {} failed, {} skipped{}",
            group.name,
            r.passed,
            r.failed,
            r.skipped,
            if r.failing.is_empty() {
                String::new()
            } else {
                format!(" (failing: {})", r.failing.join(", "))
            }
        ));
        total.passed += r.passed;
        total.failed += r.failed;
        total.skipped += r.skipped;
        total.failing.extend(r.failing);
        total.files.extend(r.files);
    }
    Some(total)
}

/// Adds one JUnit XML document's cases to `r`.
pub fn parse_junit(text: &str, r: &mut TestReport) -> Result<(), String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not JUnit XML: {e}"))?;
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let failed = case
            .children()
            .any(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
        let skipped = case.children().any(|c| c.has_tag_name("skipped"));
        if failed {
            r.failed += 1;
            let name = case.attribute("name").unwrap_or("?");
            r.failing.push(match case.attribute("classname") {
                Some(c) if !c.is_empty() => format!("{c}.{name}"),
                _ => name.to_owned(),
            });
        } else if skipped {
            r.skipped += 1;
        } else {
            r.passed += 1;
        }
    }
    Ok(())
}

/// The directory a cache path names, relative to the source: the part
/// before the first glob character.
fn cache_root(path: &str) -> Option<String> {
    if path.starts_with('/') || path.starts_with('~') {
        return None;
    }
    let cut = path.find(['*', '?', '[']).unwrap_or(path.len());
    let root = path[..cut].trim_end_matches('/').trim_start_matches("./");
    (!root.is_empty()).then(|| root.to_owned())
}

fn restore_cache(spec: &Buildspec, src: &Path, cache: &Path, log: &mut dyn super::LogSink) {
    let Some(c) = &spec.cache else { return };
    let mut restored = 0;
    for p in &c.paths {
        match cache_root(p) {
            Some(root) => {
                let from = cache.join("paths").join(&root);
                if from.is_dir()
                    && crate::store::artifacts::copy_tree(&from, &src.join(&root)).is_ok()
                {
                    restored += 1;
                }
            }
            None => log.line(&format!(
                "[Container] cache path {p} is on this machine already; left as it is"
            )),
        }
    }
    log.line(&format!(
        "[Container] cache: restored {restored} of {} path(s)",
        c.paths.len()
    ));
}

fn save_cache(spec: &Buildspec, src: &Path, cache: &Path, log: &mut dyn super::LogSink) {
    let Some(c) = &spec.cache else { return };
    let mut saved = 0;
    for p in &c.paths {
        if let Some(root) = cache_root(p) {
            let from = src.join(&root);
            if !from.exists() {
                continue;
            }
            let to = cache.join("paths").join(&root);
            let _ = std::fs::remove_dir_all(&to);
            if from.is_dir() && crate::store::artifacts::copy_tree(&from, &to).is_ok() {
                saved += 1;
            }
        }
    }
    log.line(&format!(
        "[Container] cache: saved {saved} path(s) for the next build"
    ));
}
