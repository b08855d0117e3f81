//! CodeBuild's log framing: which lines are the output of which command,
//! and which command failed. Both AWS CodeBuild and pipedeck's local runner
//! write `[Container] Running command C` before a command's output and
//! `[Container] Command did not exit successfully C exit status N` after a
//! failed one (optionally with a timestamp after `[Container]`).

/// One command of the build and the lines it printed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Command {
    /// The `Running command` line.
    pub run: usize,
    /// The first line after its output (the failure line, the next framing
    /// line, or the log's length).
    pub end: usize,
    pub text: String,
    pub phase: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Outcome {
    Succeeded,
    /// Exited non-zero (the status when the log gives it).
    Failed(Option<i32>),
    /// The log ends (or the build timed out / was stopped) during it.
    Unfinished,
}

#[derive(Debug, Default)]
pub(crate) struct Framing {
    pub commands: Vec<Command>,
}

/// The text after `[Container] ` and an optional `YYYY/MM/DD HH:MM:SS.mmm `
/// timestamp, for a framing line.
pub(crate) fn container(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("[Container] ")?;
    let b = rest.as_bytes();
    // "2026/11/26 20:01:02.113 "
    if b.len() > 24
        && b[4] == b'/'
        && b[7] == b'/'
        && b[10] == b' '
        && b[..4].iter().all(u8::is_ascii_digit)
        && let Some(i) = rest.get(11..).and_then(|r| r.find(' '))
    {
        return rest.get(11 + i + 1..);
    }
    Some(rest)
}

/// `C exit status N` → (C, N).
pub(crate) fn failure(line: &str) -> Option<(&str, Option<i32>)> {
    let rest = container(line)?.strip_prefix("Command did not exit successfully ")?;
    match rest.rsplit_once(" exit status ") {
        Some((cmd, code)) => Some((cmd, code.trim().parse().ok())),
        None => Some((rest, None)),
    }
}

/// How the open command ended, told by the framing line after its output
/// (`body` is that line's [`container`] text).
pub(crate) fn outcome(line: &str, body: &str) -> Outcome {
    if let Some((_, code)) = failure(line) {
        Outcome::Failed(code)
    } else if body.contains("State: TIMED_OUT")
        || body.contains("State: STOPPED")
        || body.starts_with("Build timed out")
    {
        Outcome::Unfinished
    } else if body.contains("State: FAILED") {
        Outcome::Failed(None)
    } else {
        Outcome::Succeeded
    }
}

impl Framing {
    pub(crate) fn parse(log: &[String]) -> Framing {
        let mut commands: Vec<Command> = Vec::new();
        let mut phase = String::new();
        let mut open: Option<Command> = None;
        for (i, line) in log.iter().enumerate() {
            if !line.starts_with("[Container] ") {
                continue;
            }
            let Some(body) = container(line) else {
                continue;
            };
            if let Some(mut c) = open.take() {
                c.end = i;
                c.outcome = outcome(line, body);
                commands.push(c);
            }
            if let Some(p) = body.strip_prefix("Entering phase ") {
                phase = p.trim().to_owned();
            } else if let Some(cmd) = body.strip_prefix("Running command ") {
                open = Some(Command {
                    run: i,
                    end: log.len(),
                    text: cmd.trim().to_owned(),
                    phase: phase.clone(),
                    outcome: Outcome::Unfinished,
                });
            }
        }
        if let Some(c) = open {
            commands.push(c);
        }
        Framing { commands }
    }

    /// The command whose output holds line `i`.
    pub(crate) fn owner(&self, i: usize) -> Option<&Command> {
        let k = self.commands.partition_point(|c| c.run < i);
        let c = self.commands.get(k.checked_sub(1)?)?;
        (i > c.run && i < c.end).then_some(c)
    }

    pub(crate) fn first_failed(&self) -> Option<&Command> {
        self.commands
            .iter()
            .find(|c| matches!(c.outcome, Outcome::Failed(_)))
    }
}

/// What an exit status means for this command: the documented codes of
/// curl and wget, else [`exit_meaning`].
pub(crate) fn exit_meaning_for(cmd: &str, code: i32) -> &'static str {
    let prog = cmd
        .split_whitespace()
        .find(|w| !w.contains('=') && *w != "sudo" && *w != "timeout" && *w != "env")
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .unwrap_or_default();
    let own = match (prog, code) {
        ("curl", 6) => "curl: could not resolve host",
        ("curl", 7) => "curl: failed to connect (refused or unreachable)",
        ("curl", 22) => "curl: the server answered with an HTTP error (-f)",
        ("curl", 28) => "curl: timed out",
        ("curl", 35) => "curl: TLS handshake failed",
        ("curl", 60) => "curl: the server certificate is not trusted",
        ("wget", 4) => "wget: network failure (connection refused, DNS or timeout)",
        ("wget", 5) => "wget: TLS verification failed",
        ("wget", 6) => "wget: authentication failed",
        ("wget", 8) => "wget: the server answered with an error (4xx/5xx)",
        _ => "",
    };
    if own.is_empty() {
        exit_meaning(code)
    } else {
        own
    }
}

/// What an exit status means, for the title: `" (SIGKILL: killed, likely
/// out of memory)"`, or nothing for an ordinary status.
pub(crate) fn exit_meaning(code: i32) -> &'static str {
    match code {
        124 => "timed out (`timeout` stopped it)",
        125 => "`timeout` or the container runtime itself failed",
        126 => "not executable (permission denied, or a directory)",
        127 => "command not found",
        128 => "invalid exit argument",
        129 => "SIGHUP: hangup",
        130 => "SIGINT: interrupted",
        131 => "SIGQUIT: quit, core dumped",
        132 => "SIGILL: illegal instruction",
        133 => "SIGTRAP: trace trap",
        134 => "SIGABRT: aborted (a failed assert or abort())",
        135 => "SIGBUS: bus error",
        136 => "SIGFPE: arithmetic exception",
        137 => "SIGKILL: killed, likely out of memory",
        139 => "SIGSEGV: segmentation fault",
        141 => "SIGPIPE: broken pipe",
        142 => "SIGALRM: alarm",
        143 => "SIGTERM: terminated",
        c if c > 128 && c < 160 => "killed by a signal",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn commands_and_outcomes() {
        let l = log(&[
            "[Container] Entering phase BUILD",
            "[Container] 2026/11/26 20:01:02.113 Running command make",
            "out 1",
            "[Container] Running command ./t.sh",
            "boom",
            "[Container] Command did not exit successfully ./t.sh exit status 139",
            "[Container] Phase complete: BUILD State: FAILED",
            "[Container] Entering phase POST_BUILD",
            "[Container] Running command sleep 9",
            "z",
        ]);
        let f = Framing::parse(&l);
        assert_eq!(f.commands.len(), 3);
        assert_eq!(f.commands[0].text, "make");
        assert_eq!(f.commands[0].outcome, Outcome::Succeeded);
        assert_eq!(f.commands[1].outcome, Outcome::Failed(Some(139)));
        assert_eq!(f.commands[1].phase, "BUILD");
        assert_eq!(f.commands[2].outcome, Outcome::Unfinished);
        assert_eq!(f.owner(2).map(|c| c.run), Some(1));
        assert_eq!(f.owner(4).map(|c| c.run), Some(3));
        assert!(f.owner(5).is_none() && f.owner(0).is_none());
        assert_eq!(f.owner(9).map(|c| c.run), Some(8));
        assert_eq!(f.first_failed().map(|c| c.run), Some(3));
        assert_eq!(exit_meaning(137), "SIGKILL: killed, likely out of memory");
        assert!(exit_meaning_for("FOO=1 /usr/bin/curl -f x", 22).contains("HTTP error"));
        assert_eq!(exit_meaning_for("make", 2), "");
        // Multi-byte text right after the prefix does not split a char.
        assert_eq!(
            container("[Container] ééééééééééééééééééééééééé"),
            Some("ééééééééééééééééééééééééé")
        );
        assert!(container("[Container] 2026/11/26 x").is_some());
    }
}
