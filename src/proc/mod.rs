//! Process groups that pipedeck starts and must be able to stop: build
//! shells (the local CodeBuild runner) and environment replicas. Each
//! leads its own process group, so stopping it takes its children too,
//! and each is marked with the file its pid is written to, so an engine
//! started after a crash (`kill -9`) can stop what the old one left
//! running without touching a process that merely reuses the pid.

use std::path::Path;

/// The environment variable that marks a process with its pid file.
pub const PGID_ENV: &str = "PIPEDECK_PGID_FILE";

/// Makes `cmd` lead its own process group and marks it with `pid_file`
/// (see [`record`] and [`kill_orphan`]).
pub fn mark(cmd: &mut tokio::process::Command, pid_file: &Path) {
    cmd.env(PGID_ENV, pid_file).process_group(0);
}

/// Writes a marked process's pid (its process-group id) to its pid file.
pub fn record(pid_file: &Path, pid: Option<u32>) {
    if let Some(pid) = pid {
        let _ = std::fs::write(pid_file, pid.to_string());
    }
}

/// Kills a process group left running by an engine that died (`kill -9`),
/// if `/proc` confirms the process is the one that was marked with
/// `pgid_file` (a recycled pid is left alone).
pub fn kill_orphan(pgid_file: &Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(pgid_file) else {
        return false;
    };
    let pid = pid.trim();
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let marker = format!("{PGID_ENV}={}", pgid_file.display());
    if !environ.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()) {
        return false;
    }
    pid.parse::<u32>().is_ok_and(kill_group)
}

/// Kills the orphans of every `*.pid` file in `dir` and removes the files;
/// returns the files whose group was killed.
pub fn reap_dir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut killed = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return killed;
    };
    for f in rd.flatten() {
        let p = f.path();
        if p.extension().is_some_and(|x| x == "pid") {
            if kill_orphan(&p) {
                killed.push(p.clone());
            }
            let _ = std::fs::remove_file(&p);
        }
    }
    killed
}

/// SIGKILL to a process group; false if there is no such group.
pub fn kill_group(pgid: u32) -> bool {
    i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|p| {
            rustix::process::kill_process_group(p, rustix::process::Signal::KILL).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_orphan_is_killed_only_when_proc_shows_its_mark() {
        let dir = tempfile::tempdir().unwrap();
        let marked = dir.path().join("a.pid");
        let mut cmd = tokio::process::Command::new("sleep");
        cmd.arg("30").kill_on_drop(true);
        mark(&mut cmd, &marked);
        let mut child = cmd.spawn().unwrap();
        record(&marked, child.id());
        // A file naming a live process that does not carry its mark.
        let mut other = tokio::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stranger = dir.path().join("b.pid");
        std::fs::write(&stranger, other.id().unwrap().to_string()).unwrap();
        std::fs::write(dir.path().join("junk.pid"), "12x").unwrap();

        assert!(
            !kill_orphan(&stranger),
            "a pid without the mark is left alone"
        );
        let killed = reap_dir(dir.path());
        assert_eq!(killed, vec![marked.clone()]);
        let st = child.wait().await.unwrap();
        assert!(!st.success(), "the marked group was killed: {st}");
        assert!(
            other.try_wait().unwrap().is_none(),
            "the stranger still runs"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let _ = other.kill().await;
    }
}
