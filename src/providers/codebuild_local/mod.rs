//! Runs a buildspec on this machine with CodeBuild's semantics (reference
//! §3): one shell for the whole build (0.2), so `cd` and `export` persist;
//! a failing command skips the rest of its phase's commands but `finally`
//! still runs; a failed `install` or `pre_build` skips `build` and
//! `post_build`; a failed `build` still runs `post_build`, with
//! `CODEBUILD_BUILD_SUCCEEDING=0`; `on-failure` ABORT / CONTINUE / RETRY
//! forms; exported variables read back at the end; secrets masked in every
//! line; a stop or timeout kills the whole process group.
//!
//! How: `bash` reads commands on its stdin, one byte at a time (a pipe: it
//! must not read past the line it runs), so its setup (exports and two
//! functions) comes in one environment variable and a short first line
//! evaluates it. Each command runs through a
//! small function that `eval`s it with stdin from /dev/null, then prints a
//! marker line holding a per-build nonce and the exit status. Output before
//! the marker is the command's; the marker may follow output that lacked a
//! final newline, so it is searched for anywhere in a line.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::model::buildspec::{Buildspec, BuildspecVersion, OnFailure, Phase};

mod shell;

use shell::{Ctx, Outcome, Shell};

/// Everything a build needs; the caller resolves sources and secrets.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub spec: Buildspec,
    /// The primary source: `CODEBUILD_SRC_DIR` and the working directory.
    pub src_dir: PathBuf,
    /// Secondary sources: `CODEBUILD_SRC_DIR_<name>`.
    pub secondary_sources: Vec<(String, PathBuf)>,
    /// Built-in `CODEBUILD_*` values the caller knows (build id, initiator…).
    pub builtins: Vec<(String, String)>,
    /// The action's `EnvironmentVariables`: they win over the buildspec's.
    pub overrides: Vec<(String, String)>,
    /// Resolved `parameter-store` / `secrets-manager` values by variable
    /// name; set in the environment and masked as `***` in every line.
    pub secrets: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    /// Where to write the build shell's process-group id while it runs, so
    /// an engine restarted after a crash can kill an orphaned build.
    pub pgid_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Succeeded,
    Failed,
    TimedOut,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseReport {
    pub name: &'static str,
    /// `None`: the phase is in the buildspec but did not run.
    pub status: Option<Status>,
    /// The first failing command and its exit status.
    pub failed_command: Option<(String, i32)>,
    pub attempts: u32,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildReport {
    pub status: Status,
    pub phases: Vec<PhaseReport>,
    /// `exported-variables` with their final values (only on success).
    pub exported: Vec<(String, String)>,
}

// The process-group helpers live in `crate::proc`; these names stay for
// callers that still reach them here.
pub use crate::proc::{PGID_ENV, kill_group, kill_orphan};

/// Where build output goes, one line at a time (already masked).
pub trait LogSink: Send {
    fn line(&mut self, line: &str);
    /// Called when no more output is ready right now: a sink that buffers
    /// writes it out here, so a reader never waits on an idle build.
    fn flush(&mut self) {}
    /// Complete lines (each ending in `\n`) in one piece, unmasked: used
    /// when there is nothing to mask. A sink may store them in bulk.
    fn chunk(&mut self, data: &[u8]) {
        let Some(body) = data.strip_suffix(b"\n") else {
            return;
        };
        for l in body.split(|b| *b == b'\n') {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            self.line(&String::from_utf8_lossy(l));
        }
    }
}

impl LogSink for Vec<String> {
    fn line(&mut self, line: &str) {
        self.push(line.to_owned());
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("cannot start bash for the build: {0}")]
    Spawn(std::io::Error),
    #[error("lost the build shell's pipes: {0}")]
    Io(std::io::Error),
}

pub use super::mask::Masker;

fn valid_env_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn hex_decode(h: &str) -> String {
    let bytes: Vec<u8> = (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs the build to the end (or stop / timeout) and reports it.
pub async fn run(
    req: &BuildRequest,
    sink: &mut dyn LogSink,
    stop: &mut watch::Receiver<bool>,
) -> Result<BuildReport, RunnerError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| set_env(&mut env, k, v);
    set("CODEBUILD_SRC_DIR", &req.src_dir.to_string_lossy());
    for (name, dir) in &req.secondary_sources {
        set(&format!("CODEBUILD_SRC_DIR_{name}"), &dir.to_string_lossy());
    }
    for (k, v) in &req.builtins {
        set(k, v);
    }
    // Precedence (lowest first): buildspec, secrets, the action's overrides.
    for (k, v) in req
        .spec
        .env
        .variables
        .iter()
        .chain(&req.secrets)
        .chain(&req.overrides)
    {
        set(k, v);
    }
    set("CODEBUILD_BUILD_SUCCEEDING", "1");
    let mut ctx = Ctx {
        sink,
        masker: Masker::new(req.secrets.iter().map(|(_, v)| v.clone())),
        deadline: req.timeout.map(|t| Instant::now() + t),
        stop,
        collect: false,
    };
    for (k, _) in &env {
        if !valid_env_name(k) {
            ctx.log(&format!(
                "[Container] Skipping environment variable `{k}`: not a valid name"
            ));
        }
    }
    env.retain(|(k, _)| valid_env_name(k));
    if let Some(install) = &req.spec.phases.install {
        for (lang, version) in &install.runtime_versions {
            ctx.log(&format!(
                "[Container] runtime-versions {lang}: {version} requested; using the local toolchain"
            ));
        }
    }
    if req.spec.batch.is_some() {
        ctx.log("[Container] batch configuration found; running as one build locally");
    }
    let per_command_shell = req.spec.version == BuildspecVersion::V0_1;
    let mut shell = Shell::start(req, &env).await?;
    let mut reports = Vec::new();
    let mut succeeding = true;
    let mut skip_main = false;
    let mut ended: Option<Status> = None;
    for (name, phase) in req.spec.phases.in_order() {
        let Some(phase) = phase else { continue };
        if ended.is_some() || (skip_main && matches!(name, "build" | "post_build")) {
            reports.push(PhaseReport {
                name,
                status: None,
                failed_command: None,
                attempts: 0,
                duration: Duration::ZERO,
            });
            continue;
        }
        let started = Instant::now();
        let (status, failed, attempts) = run_phase(
            name,
            phase,
            &mut shell,
            req,
            &env,
            per_command_shell,
            &mut ctx,
        )
        .await?;
        reports.push(PhaseReport {
            name,
            status: Some(status),
            failed_command: failed,
            attempts,
            duration: started.elapsed(),
        });
        match status {
            Status::Succeeded => {}
            Status::TimedOut | Status::Stopped => ended = Some(status),
            Status::Failed => {
                if succeeding {
                    succeeding = false;
                    set_env(&mut env, "CODEBUILD_BUILD_SUCCEEDING", "0");
                    let mut sink_lines = Vec::new();
                    shell
                        .exec(
                            "export CODEBUILD_BUILD_SUCCEEDING=0",
                            &mut ctx,
                            &mut sink_lines,
                        )
                        .await;
                }
                if phase.on_failure != OnFailure::Continue
                    && matches!(name, "install" | "pre_build")
                {
                    skip_main = true;
                }
            }
        }
    }
    let status = ended.unwrap_or(if succeeding {
        Status::Succeeded
    } else {
        Status::Failed
    });
    let mut exported = Vec::new();
    if status == Status::Succeeded {
        for name in &req.spec.env.exported_variables {
            // Secrets are never exported (they would leave the build in
            // clear text as output variables).
            if name.starts_with("AWS_")
                || !valid_env_name(name)
                || req.secrets.iter().any(|(k, _)| k == name)
            {
                if req.secrets.iter().any(|(k, _)| k == name) {
                    ctx.log(&format!(
                        "[Container] exported-variables: {name} holds a secret and is not exported"
                    ));
                }
                continue;
            }
            let mut quiet = Vec::new();
            let (outcome, rest) = shell
                .send(&format!("__pd_export {name}\n"), &mut ctx, &mut quiet)
                .await;
            if let (Outcome::Exit(_), Some(hex)) = (outcome, rest.strip_prefix('X')) {
                // A variable that copies a secret is exported masked.
                let value = hex_decode(hex.trim());
                exported.push((name.clone(), ctx.masker.mask(&value).into_owned()));
            }
        }
    }
    shell.kill().await;
    ctx.log(&format!("[Container] Build {}", status_word(status)));
    Ok(BuildReport {
        status,
        phases: reports,
        exported,
    })
}

fn set_env(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    env.retain(|(n, _)| n != k);
    env.push((k.to_owned(), v.to_owned()));
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED_OUT",
        Status::Stopped => "STOPPED",
    }
}

/// Runs one phase (with its retries): its commands until one fails, then
/// `finally`. Returns its status, the first failing command, and attempts.
async fn run_phase(
    name: &'static str,
    phase: &Phase,
    shell: &mut Shell,
    req: &BuildRequest,
    env: &[(String, String)],
    per_command_shell: bool,
    ctx: &mut Ctx<'_>,
) -> Result<(Status, Option<(String, i32)>, u32), RunnerError> {
    let upper = name.to_ascii_uppercase();
    let (max_retries, pattern) = match &phase.on_failure {
        OnFailure::Retry { attempts, pattern } => (*attempts, pattern.clone()),
        _ => (0, None),
    };
    let regex = pattern.as_deref().and_then(|p| match regex::Regex::new(p) {
        Ok(r) => Some(r),
        Err(e) => {
            ctx.log(&format!(
                "[Container] on-failure pattern `{p}` is not a valid regex ({e}); not retrying"
            ));
            None
        }
    });
    ctx.collect = regex.is_some();
    let mut attempt = 0;
    loop {
        attempt += 1;
        ctx.log(&format!("[Container] Entering phase {upper}"));
        let mut output = Vec::new();
        let mut failed: Option<(String, i32)> = None;
        for (list, is_finally) in [(&phase.commands, false), (&phase.finally, true)] {
            for cmd in list {
                if failed.is_some() && !is_finally {
                    break;
                }
                ctx.log(&format!("[Container] Running command {}", cmd.text));
                match shell.exec(&cmd.text, ctx, &mut output).await {
                    Outcome::Exit(0) => {}
                    Outcome::Exit(code) => {
                        ctx.log(&format!(
                            "[Container] Command did not exit successfully {} exit status {code}",
                            cmd.text
                        ));
                        failed.get_or_insert((cmd.text.clone(), code));
                    }
                    Outcome::ShellDied => {
                        // `exit N` ends the shared shell: its status is the
                        // command's, and only a non-zero one fails it.
                        let code = shell.exit_code().await;
                        if code != 0 {
                            ctx.log(&format!(
                                "[Container] Command did not exit successfully {} exit status {code}",
                                cmd.text
                            ));
                            failed.get_or_insert((cmd.text.clone(), code));
                        }
                        ctx.log("[Container] The build shell ended; starting a new one");
                        // What the old shell left goes first: the new one
                        // carries the same mark and must not be taken for it.
                        shell.kill().await;
                        *shell = Shell::start(req, env).await?;
                    }
                    outcome @ (Outcome::TimedOut | Outcome::Stopped) => {
                        let status = if matches!(outcome, Outcome::TimedOut) {
                            Status::TimedOut
                        } else {
                            Status::Stopped
                        };
                        ctx.log(&format!(
                            "[Container] Phase complete: {upper} State: {}",
                            status_word(status)
                        ));
                        return Ok((status, Some((cmd.text.clone(), -1)), attempt));
                    }
                }
                if per_command_shell {
                    // Version 0.1: every command runs in a shell of its own.
                    shell.kill().await;
                    *shell = Shell::start(req, env).await?;
                }
            }
        }
        let Some((cmd, code)) = failed else {
            ctx.log(&format!(
                "[Container] Phase complete: {upper} State: SUCCEEDED"
            ));
            return Ok((Status::Succeeded, None, attempt));
        };
        ctx.log(&format!(
            "[Container] Phase complete: {upper} State: FAILED"
        ));
        ctx.log(&format!(
            "[Container] Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: {cmd}. Reason: exit status {code}"
        ));
        let matches = match (&pattern, &regex) {
            (None, _) => true,
            (Some(_), Some(r)) => output.iter().any(|l| r.is_match(l)),
            (Some(_), None) => false,
        };
        if attempt > max_retries || !matches {
            return Ok((Status::Failed, Some((cmd, code)), attempt));
        }
        ctx.log(&format!(
            "[Container] Retrying phase {upper} (attempt {} of {})",
            attempt + 1,
            max_retries + 1
        ));
    }
}
