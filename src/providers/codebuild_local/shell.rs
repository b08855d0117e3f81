//! The build's one shell: `bash` started with its setup, each command sent
//! on its stdin and its output read up to the command's marker line (the
//! nonce and the exit status), stop and timeout watched while it runs, and
//! what the build left running swept when the shell goes.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;

use super::{BuildRequest, LogSink, Masker, RunnerError};
use crate::proc;

pub(super) fn quote(s: &str) -> String {
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

/// `TimedOut` when `deadline` has come (within the few milliseconds
/// between the engine's timer and this build's), else `other`.
pub(super) fn timed_out_or(deadline: Option<Instant>, other: Outcome) -> Outcome {
    const SLACK: Duration = Duration::from_millis(250);
    if deadline.is_some_and(|d| Instant::now() + SLACK >= d) {
        Outcome::TimedOut
    } else {
        other
    }
}

pub(super) enum Outcome {
    Exit(i32),
    /// The shell itself ended (a command ran `exit`).
    ShellDied,
    TimedOut,
    Stopped,
}

pub(super) struct Shell {
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

pub(super) struct Ctx<'a> {
    pub(super) sink: &'a mut dyn LogSink,
    pub(super) masker: Masker,
    pub(super) deadline: Option<Instant>,
    pub(super) stop: &'a mut watch::Receiver<bool>,
    /// Keep command output for an `on-failure` RETRY pattern.
    pub(super) collect: bool,
}

impl Ctx<'_> {
    pub(super) fn log(&mut self, line: &str) {
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
        proc::on_path("bash").map_or_else(|| "bash".into(), std::path::PathBuf::into_os_string)
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
    pub(super) async fn start(
        req: &BuildRequest,
        env: &[(String, String)],
    ) -> Result<Shell, RunnerError> {
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
    pub(super) async fn exit_code(&mut self) -> i32 {
        match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(st)) => st.code().unwrap_or(-1),
            _ => -1,
        }
    }

    pub(super) async fn kill(&mut self) {
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
    pub(super) async fn send(
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
                    // A line split across reads (the usual end of a read)
                    // is joined on its own first, then the fast path goes on.
                    let fast = !ctx.collect && ctx.masker.is_empty();
                    loop {
                        if fast && self.partial.is_empty() {
                            let rest = &data[consumed..];
                            let upto = match self.finder.find(rest) {
                                Some(m) => memchr::memrchr(b'\n', &rest[..m]).map_or(0, |p| p + 1),
                                None => memchr::memrchr(b'\n', rest).map_or(0, |p| p + 1),
                            };
                            if upto > 0 {
                                ctx.sink.chunk(&rest[..upto]);
                                consumed += upto;
                                since_check += (upto / 256) as u32;
                            }
                        }
                        // One line at a time: the marker's line, masking,
                        // RETRY output, a line split across reads.
                        let Some(nl) = memchr::memchr(b'\n', &data[consumed..]) else {
                            break;
                        };
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

    pub(super) async fn exec(
        &mut self,
        cmd: &str,
        ctx: &mut Ctx<'_>,
        collect: &mut Vec<String>,
    ) -> Outcome {
        self.send(&format!("__pd_run {}\n", quote(cmd)), ctx, collect)
            .await
            .0
    }
}
