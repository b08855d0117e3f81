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
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;

use crate::model::buildspec::{Buildspec, BuildspecVersion, OnFailure, Phase};
use crate::proc;

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

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Keeps the last lines of a command's output for RETRY pattern matching
/// without growing with a long log.
fn push_bounded(v: &mut Vec<String>, line: String) {
    const KEEP: usize = 10_000;
    if v.len() >= 2 * KEEP {
        v.drain(..KEEP);
    }
    v.push(line);
}

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

/// `TimedOut` when `deadline` has come (within the few milliseconds
/// between the engine's timer and this build's), else `other`.
fn timed_out_or(deadline: Option<Instant>, other: Outcome) -> Outcome {
    const SLACK: Duration = Duration::from_millis(250);
    if deadline.is_some_and(|d| Instant::now() + SLACK >= d) {
        Outcome::TimedOut
    } else {
        other
    }
}

enum Outcome {
    Exit(i32),
    /// The shell itself ended (a command ran `exit`).
    ShellDied,
    TimedOut,
    Stopped,
}

struct Shell {
    /// The shell's pid, which is its process group's id.
    pgid: Option<u32>,
    /// The build's pid file, whose mark every process it starts inherits.
    mark: Option<PathBuf>,
    /// When the shell started (clock ticks since boot): what carries its
    /// mark started later.
    started: Option<u64>,
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    nonce: String,
    /// Finds the nonce in a line without building a searcher per line.
    finder: memchr::memmem::Finder<'static>,
    /// [`Shell::kill`] has taken the shell and what it left running.
    swept: bool,
    /// The output pipe holds 1 MiB: reads may wait for it to fill.
    big_pipe: bool,
}

/// How much one read of the build's output takes at most.
const READ_BUF: usize = 256 * 1024;
/// How long a flood of output is left to gather in the pipe between two
/// reads (about 1 MiB at the speed of `seq`).
const COALESCE: Duration = Duration::from_millis(1);
/// Reads smaller than this (and of a pipe block or more) wait
/// [`COALESCE`] before the next one.
const COALESCE_BELOW: usize = 64 * 1024;

struct Ctx<'a> {
    sink: &'a mut dyn LogSink,
    masker: Masker,
    deadline: Option<Instant>,
    stop: &'a mut watch::Receiver<bool>,
    /// Keep command output for an `on-failure` RETRY pattern.
    collect: bool,
}

impl Ctx<'_> {
    fn log(&mut self, line: &str) {
        let m = self.masker.mask(line);
        self.sink.line(&m);
    }
}

/// A shell dropped on an early return or a cancelled build takes its
/// background processes with it.
impl Drop for Shell {
    fn drop(&mut self) {
        if !self.swept {
            self.kill_escapees();
        }
    }
}

/// Where `bash` is on this process's `PATH`, looked up once: a build
/// starts a shell or more, and each `exec` by name tries every `PATH`
/// entry before the right one. `bash` itself where it is not found (the
/// spawn then says so).
fn bash_path() -> &'static std::ffi::OsStr {
    static BASH: std::sync::OnceLock<std::ffi::OsString> = std::sync::OnceLock::new();
    BASH.get_or_init(|| {
        std::env::var_os("PATH")
            .and_then(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join("bash"))
                    .find(|p| {
                        use std::os::unix::fs::PermissionsExt;
                        p.metadata()
                            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                    })
            })
            .map_or_else(|| "bash".into(), std::path::PathBuf::into_os_string)
    })
}

/// The environment variable that carries the build shell's setup.
const SETUP_ENV: &str = "__PD_SETUP";
/// The largest setup passed in the environment (Linux takes up to 128 KiB
/// in one string).
const SETUP_IN_ENV_MAX: usize = 64 * 1024;

/// What the build shell runs before the first command: stderr into
/// stdout, the build's variables, and the two functions that frame each
/// command's end and read an exported variable back.
fn setup_script(env: &[(String, String)], n: &str) -> String {
    let mut setup = String::from("exec 2>&1\n");
    for (k, v) in env {
        setup.push_str(&format!("export {k}={}\n", quote(v)));
    }
    setup.push_str(&format!(
        "__pd_run() {{ eval \"$1\" </dev/null; printf '%s %s\\n' '{n}' \"$?\"; }}\n\
         __pd_export() {{ printf '%s X %s\\n' '{n}' \"$(printf '%s' \"${{!1-}}\" | od -An -tx1 | tr -d ' \\n')\"; }}\n"
    ));
    setup
}

impl Shell {
    async fn start(req: &BuildRequest, env: &[(String, String)]) -> Result<Shell, RunnerError> {
        let nonce = format!(
            "__pipedeck_{}_{}__",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let mut cmd = Command::new(bash_path());
        if let Some(f) = &req.pgid_file {
            // Marks the process so a later engine can tell it is ours.
            proc::mark(&mut cmd, f);
        }
        let setup = setup_script(env, &nonce);
        // bash reads a pipe one byte at a time (it must not read past the
        // line it runs), so the setup, often a kilobyte of exports, comes
        // in the environment and one short line on stdin evaluates it.
        // Too large for one environment string, or holding a NUL, it is
        // written on stdin as is.
        let via_env = setup.len() <= SETUP_IN_ENV_MAX && !setup.contains('\0');
        if via_env {
            cmd.env(SETUP_ENV, &setup);
        }
        let mut child = cmd
            .args(["--noprofile", "--norc", "-s"])
            .current_dir(&req.src_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(RunnerError::Spawn)?;
        if let Some(f) = &req.pgid_file {
            proc::record(f, child.id());
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(RunnerError::Io(std::io::Error::other("no pipes")));
        };
        // A larger pipe lets a chatty build write more per wake-up (Linux;
        // best effort: the default 64 KiB still works).
        #[cfg(target_os = "linux")]
        let big_pipe =
            rustix::pipe::fcntl_setpipe_size(&stdout, 1 << 20).is_ok_and(|n| n >= 1 << 20);
        #[cfg(not(target_os = "linux"))]
        let big_pipe = false;
        let mut shell = Shell {
            pgid: child.id(),
            mark: req.pgid_file.clone(),
            started: child.id().and_then(proc::start_time),
            child,
            stdin,
            out: BufReader::with_capacity(READ_BUF, stdout),
            partial: Vec::new(),
            finder: memchr::memmem::Finder::new(nonce.as_bytes()).into_owned(),
            nonce,
            swept: false,
            big_pipe,
        };
        // The variable goes before the setup runs: a build variable of
        // the same name, which the setup exports, is kept.
        let first = if via_env {
            format!("eval \"unset {SETUP_ENV}; ${SETUP_ENV}\"\n")
        } else {
            setup
        };
        shell
            .stdin
            .write_all(first.as_bytes())
            .await
            .map_err(RunnerError::Io)?;
        Ok(shell)
    }

    /// The shell's exit status once it has ended (-1 if unknown).
    async fn exit_code(&mut self) -> i32 {
        match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(st)) => st.code().unwrap_or(-1),
            _ => -1,
        }
    }

    async fn kill(&mut self) {
        self.kill_escapees();
        let _ = self.child.kill().await;
        self.swept = true;
    }

    /// The shell leads its own process group: take the whole tree, and
    /// whatever left the group but carries the build's mark (`setsid`).
    /// The shell's descendants and this process's re-parented children
    /// are read when they can be; else every process is looked at.
    fn kill_escapees(&self) {
        // The shell's own tree only while it is not reaped (its pid could
        // be another process's by then).
        if let Some(mark) = &self.mark
            && proc::kill_marked_tree(mark, self.child.id(), self.pgid, self.started).is_some()
        {
            return;
        }
        if let Some(pgid) = self.pgid {
            proc::kill_group(pgid);
        }
        if let Some(mark) = &self.mark {
            proc::kill_marked_since(mark, self.pgid, self.started);
        }
    }

    /// Sends one line to the shell and reads output up to its marker.
    /// Returns the outcome and the text after the nonce on the marker line.
    async fn send(
        &mut self,
        line: &str,
        ctx: &mut Ctx<'_>,
        collect: &mut Vec<String>,
    ) -> (Outcome, String) {
        if self.stdin.write_all(line.as_bytes()).await.is_err() {
            return (Outcome::ShellDied, String::new());
        }
        // Output is buffered by the sink and flushed (made visible to
        // readers) at most FLUSH_EVERY after a line arrives, and whenever
        // the command ends. The timers and the stop listener are created
        // once per command, not per line: a build can print millions.
        const FLUSH_EVERY: Duration = Duration::from_millis(40);
        const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);
        let deadline = ctx.deadline;
        let timeout = async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timeout);
        let flush_timer = tokio::time::sleep(FAR);
        tokio::pin!(flush_timer);
        let mut flush_armed = false;
        let mut stop_rx = ctx.stop.clone();
        let stopped = async move {
            loop {
                if *stop_rx.borrow_and_update() {
                    return;
                }
                if stop_rx.changed().await.is_err() {
                    // The sender is gone: nobody can stop us any more.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::pin!(stopped);
        let mut since_check = 0u32;
        loop {
            tokio::select! {
                biased;
                chunk = self.out.fill_buf() => {
                    let data = match chunk {
                        Ok(d) if !d.is_empty() => d,
                        _ => {
                            // The shell ended (EOF or a broken pipe).
                            if !self.partial.is_empty() {
                                let rest = std::mem::take(&mut self.partial);
                                ctx.log(&String::from_utf8_lossy(&rest));
                            }
                            ctx.sink.flush();
                            return (Outcome::ShellDied, String::new());
                        }
                    };
                    let got = data.len();
                    let mut consumed = 0;
                    let mut marker: Option<(Outcome, String)> = None;
                    // Fast path: nothing to mask or keep, so every complete
                    // line before the marker's line goes to the sink at once.
                    if self.partial.is_empty() && !ctx.collect && ctx.masker.is_empty() {
                        let upto = match self.finder.find(data) {
                            Some(m) => memchr::memrchr(b'\n', &data[..m]).map_or(0, |p| p + 1),
                            None => memchr::memrchr(b'\n', data).map_or(0, |p| p + 1),
                        };
                        if upto > 0 {
                            ctx.sink.chunk(&data[..upto]);
                            consumed = upto;
                            since_check += (upto / 256) as u32;
                        }
                    }
                    // The rest, line by line (the marker's line, masking,
                    // RETRY output, a line split across reads).
                    while let Some(nl) = memchr::memchr(b'\n', &data[consumed..]) {
                        let raw = &data[consumed..consumed + nl];
                        consumed += nl + 1;
                        let joined;
                        let line: &[u8] = if self.partial.is_empty() {
                            raw
                        } else {
                            self.partial.extend_from_slice(raw);
                            joined = std::mem::take(&mut self.partial);
                            &joined
                        };
                        if let Some(i) = self.finder.find(line) {
                            if i > 0 {
                                let before = String::from_utf8_lossy(&line[..i]);
                                ctx.log(&before);
                                if ctx.collect {
                                    push_bounded(collect, before.into_owned());
                                }
                            }
                            let rest = String::from_utf8_lossy(&line[i + self.nonce.len()..])
                                .trim()
                                .to_owned();
                            let code = rest.parse::<i32>().unwrap_or(0);
                            marker = Some((Outcome::Exit(code), rest));
                            break;
                        }
                        let text = String::from_utf8_lossy(line);
                        ctx.log(&text);
                        if ctx.collect {
                            push_bounded(collect, text.into_owned());
                        }
                        since_check += 1;
                    }
                    if marker.is_none() {
                        // Keep the unfinished line for the next chunk (a
                        // runaway line without newlines is cut at 1 MiB).
                        self.partial.extend_from_slice(&data[consumed..]);
                        consumed = data.len();
                        if self.partial.len() > 1 << 20 {
                            // Masked before it is cut, and the cut keeps
                            // back what could be the start of a secret
                            // that the next piece ends.
                            let long = ctx.masker.mask_bytes(&std::mem::take(&mut self.partial));
                            let mut cut = long.len().saturating_sub(ctx.masker.longest().saturating_sub(1));
                            while cut > 0 && cut < long.len() && (long[cut] & 0xC0) == 0x80 {
                                cut -= 1;
                            }
                            self.partial = long[cut..].to_vec();
                            ctx.log(&String::from_utf8_lossy(&long[..cut]));
                            // A runaway line counts too: stop and timeout
                            // are looked at after each cut.
                            since_check = 4096;
                        }
                    }
                    self.out.consume(consumed);
                    if let Some(m) = marker {
                        ctx.sink.flush();
                        return m;
                    }
                    if !flush_armed {
                        flush_armed = true;
                        flush_timer
                            .as_mut()
                            .reset(tokio::time::Instant::now() + FLUSH_EVERY);
                    }
                    // Under a flood the other branches are not polled:
                    // look at stop and timeout every so often.
                    if since_check >= 4096 {
                        since_check = 0;
                        if *ctx.stop.borrow() {
                            ctx.sink.flush();
                            self.kill().await;
                            return (timed_out_or(deadline, Outcome::Stopped), String::new());
                        }
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            ctx.sink.flush();
                            self.kill().await;
                            return (Outcome::TimedOut, String::new());
                        }
                    }
                    // A flood comes a pipe block (4 KiB) per write, and
                    // reading each as it comes costs a wake-up per block.
                    // A read that brings a few blocks (the reader is ahead
                    // of the writer) lets the 1 MiB pipe fill for a moment
                    // first; a bigger one (the reader is behind) does not.
                    if self.big_pipe && (4096..COALESCE_BELOW).contains(&got) {
                        tokio::time::sleep(COALESCE).await;
                        // The other branches wait while output keeps coming.
                        since_check = 4096;
                    }
                },
                () = &mut stopped => {
                    ctx.sink.flush();
                    self.kill().await;
                    // The engine stops the action at the same deadline: that
                    // stop is the timeout, not an operator's stop.
                    return (timed_out_or(deadline, Outcome::Stopped), String::new());
                }
                () = &mut timeout => {
                    ctx.sink.flush();
                    self.kill().await;
                    return (Outcome::TimedOut, String::new());
                }
                () = &mut flush_timer, if flush_armed => {
                    ctx.sink.flush();
                    flush_armed = false;
                }
            }
        }
    }

    async fn exec(&mut self, cmd: &str, ctx: &mut Ctx<'_>, collect: &mut Vec<String>) -> Outcome {
        self.send(&format!("__pd_run {}\n", quote(cmd)), ctx, collect)
            .await
            .0
    }
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
