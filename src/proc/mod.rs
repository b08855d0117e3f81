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
/// `pgid_file` (a recycled pid is left alone), and every other process
/// that still carries the mark: what the build started in the background
/// (`nohup dockerd &`, `setsid …`) outlives its shell, and is found even
/// when the group's leader is gone.
pub fn kill_orphan(pgid_file: &Path) -> bool {
    let leader = std::fs::read_to_string(pgid_file)
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok());
    let mut killed = false;
    if let Some(pid) = leader
        && marked_with(pid, pgid_file)
    {
        killed |= kill_group(pid);
    }
    killed |= kill_marked(pgid_file, leader) > 0;
    killed
}

/// True if process `pid` carries the mark of `pgid_file`.
fn marked_with(pid: u32, pgid_file: &Path) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let marker = format!("{PGID_ENV}={}", pgid_file.display());
    environ.split(|b| *b == 0).any(|kv| kv == marker.as_bytes())
}

fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
}

/// Kills every live process marked with `pgid_file` (and its group), but
/// `leader`'s process, whose waiting is its owner's; returns how many.
/// Those that were re-parented to this process (see [`become_subreaper`])
/// are reaped by [`reap_escapees`].
pub fn kill_marked(pgid_file: &Path, leader: Option<u32>) -> usize {
    kill_marked_since(pgid_file, leader, None)
}

/// [`kill_marked`], looking only at processes started at or after clock
/// tick `since` (a [`start_time`]): a process carries the mark only if it
/// descends from the one it was set on, so it started after it. Reading a
/// process's start time is much cheaper than reading its environment.
pub fn kill_marked_since(pgid_file: &Path, leader: Option<u32>, since: Option<u64>) -> usize {
    let mut n = 0;
    let me = std::process::id();
    for pid in pids() {
        if Some(pid) == leader || pid == me {
            continue;
        }
        if let Some(since) = since
            && start_time(pid).is_some_and(|t| t < since)
        {
            continue;
        }
        if !marked_with(pid, pgid_file) {
            continue;
        }
        let Some(p) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if let Some(st) = stat(pid)
            && st.pgrp == pid
        {
            kill_group(pid);
        }
        if rustix::process::kill_process(p, rustix::process::Signal::KILL).is_ok() {
            n += 1;
            // It may be re-parented here only once its parent (the build
            // shell, killed too) is gone: try to reap it a few times.
            if let Ok(mut k) = KILLED.lock() {
                k.push((pid, 0));
            }
        }
    }
    n
}

/// [`kill_marked_since`] without reading every process: the live build
/// shell `shell`'s descendants (its own, whatever their mark), then every
/// process under this one that started at or after `since` and carries the
/// mark (escapees re-parented here, see [`become_subreaper`]), with its
/// descendants. Kills the shell's `group` too, after its tree was read.
/// `None` where that cannot see everything: this process is not a child
/// subreaper (an orphan went to init), or the kernel has no `children`
/// files; then the caller scans every process.
pub fn kill_marked_tree(
    pgid_file: &Path,
    shell: Option<u32>,
    group: Option<u32>,
    since: Option<u64>,
) -> Option<usize> {
    if !is_subreaper() || !children_files() {
        return None;
    }
    let me = std::process::id();
    let mut seen = std::collections::HashSet::from([me]);
    seen.extend(shell);
    // The shell's tree is read before its group is killed: a child that
    // left the group stays findable under its parent until that dies,
    // and is re-parented here (read below) once it has.
    let mut tree = Vec::new();
    if let Some(l) = shell {
        let mut stack = children(l);
        while let Some(p) = stack.pop() {
            if seen.insert(p) {
                stack.extend(children(p));
                tree.push(p);
            }
        }
    }
    if let Some(g) = group {
        kill_group(g);
    }
    let mut n = tree.iter().filter(|p| kill_escapee(**p)).count();
    // Under this process: the build's if marked (and then all below it),
    // else looked through (a daemon that rewrote its environment may have
    // marked children). Only what started since the shell can be the build's.
    let started_since = |p: u32| since.is_none_or(|s| start_time(p).is_none_or(|t| t >= s));
    let mut look: Vec<u32> = reparented_here(me);
    let mut take: Vec<u32> = Vec::new();
    while let Some(p) = look.pop() {
        if !seen.insert(p) || !started_since(p) {
            continue;
        }
        if marked_with(p, pgid_file) {
            take.push(p);
        } else {
            look.extend(children(p));
        }
    }
    while let Some(p) = take.pop() {
        take.extend(children(p).into_iter().filter(|c| seen.insert(*c)));
        n += usize::from(kill_escapee(p));
    }
    Some(n)
}

/// SIGKILL to `pid` (and its group, when it leads one), remembered for
/// [`reap_escapees`]; true if the signal was sent.
fn kill_escapee(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    if let Some(st) = stat(pid)
        && st.pgrp == pid
    {
        kill_group(pid);
    }
    if rustix::process::kill_process(p, rustix::process::Signal::KILL).is_err() {
        return false;
    }
    // It may be re-parented here only once its parent is gone: try to
    // reap it a few times.
    if let Ok(mut k) = KILLED.lock() {
        k.push((pid, 0));
    }
    true
}

/// The children of every thread of `pid` (`/proc/<pid>/task/*/children`);
/// empty once it is gone.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        let mut f = t.path();
        f.push("children");
        if let Ok(s) = std::fs::read_to_string(f) {
            out.extend(pids_in(&s));
        }
    }
    out
}

/// The children of this process's main thread: where the kernel puts an
/// orphan re-parented to a subreaper (its first live thread, the main one
/// while it runs). Every thread's list when the main thread's cannot be
/// read. One file, however many threads the runtime has.
fn reparented_here(me: u32) -> Vec<u32> {
    match std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")) {
        Ok(s) => pids_in(&s).collect(),
        Err(_) => children(me),
    }
}

/// The pids of a `children` file (`12 40 41 `).
fn pids_in(s: &str) -> impl Iterator<Item = u32> + '_ {
    s.split_ascii_whitespace().filter_map(|c| c.parse().ok())
}

/// Where `name` is on this process's `PATH`: the first executable file of
/// that name.
pub fn on_path(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether this kernel has `/proc/<pid>/task/<tid>/children`
/// (`CONFIG_PROC_CHILDREN`).
fn children_files() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        let me = std::process::id();
        std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists()
    })
}

/// Whether this process is a child subreaper (set by [`become_subreaper`]).
fn is_subreaper() -> bool {
    #[cfg(target_os = "linux")]
    {
        rustix::process::child_subreaper().is_ok_and(|p| p.is_some())
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Escapees killed while they were this process's children: reaped by
/// [`reap_escapees`] whatever their process group.
static KILLED: std::sync::Mutex<Vec<(u32, u8)>> = std::sync::Mutex::new(Vec::new());

struct Stat {
    state: char,
    ppid: u32,
    pgrp: u32,
}

/// When process `pid` started, in clock ticks since boot (`/proc/<pid>/stat`
/// field 22); `None` if it is gone or unreadable.
pub fn start_time(pid: u32) -> Option<u64> {
    use std::io::Read;
    // One read: the file is a few hundred bytes, and this runs for every
    // process at the end of every build.
    let mut buf = [0u8; 1024];
    let n = std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read(&mut buf)
        .ok()?;
    let s = std::str::from_utf8(&buf[..n]).ok()?;
    let (_, rest) = s.rsplit_once(") ")?;
    // `rest` starts at field 3 (state): field 22 is the 20th from here.
    rest.split(' ').nth(19)?.parse().ok()
}

fn stat(pid: u32) -> Option<Stat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(") ")?;
    let mut f = rest.split(' ');
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some(Stat { state, ppid, pgrp })
}

/// Makes this process the child subreaper of everything it starts
/// (`PR_SET_CHILD_SUBREAPER`): a build's background process whose shell
/// ended is re-parented here, not to init, so it can be killed with its
/// build and reaped ([`reap_escapees`], called every second from a task
/// started here). Best effort: false where the kernel refuses.
pub fn become_subreaper() -> bool {
    static ONCE: std::sync::Once = std::sync::Once::new();
    #[cfg(target_os = "linux")]
    let ok = rustix::process::set_child_subreaper(Some(rustix::process::getpid())).is_ok();
    #[cfg(not(target_os = "linux"))]
    let ok = false;
    if ok && let Ok(rt) = tokio::runtime::Handle::try_current() {
        ONCE.call_once(|| {
            rt.spawn(async {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    reap_escapees();
                }
            });
        });
    }
    ok
}

/// Reaps the zombies of processes re-parented to this one that no one
/// else waits for: a zombie child whose process group is neither its own
/// (every process pipedeck spawns and waits for leads its group or stays
/// in pipedeck's) nor this process's. Returns how many.
pub fn reap_escapees() -> usize {
    let me = std::process::id();
    let mut n = 0;
    let killed = KILLED
        .lock()
        .map(|mut k| std::mem::take(&mut *k))
        .unwrap_or_default();
    for (pid, tries) in killed {
        let Some(p) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG) {
            Ok(Some(_)) => n += 1,
            // Not dead, or not re-parented here yet: next time (not ours
            // after a few seconds: init's).
            Ok(None) | Err(_) if tries < 5 => {
                if let Ok(mut k) = KILLED.lock() {
                    k.push((pid, tries + 1));
                }
            }
            _ => {}
        }
    }
    // The scan below reads every process's stat: only worth it when a
    // child of this process has exited and waits to be reaped (peeked at,
    // not reaped, here), which an idle engine never has.
    if !zombie_child() {
        return n;
    }
    let my_pgrp = stat(me).map_or(0, |s| s.pgrp);
    for pid in pids() {
        let Some(st) = stat(pid) else { continue };
        if st.ppid != me || st.state != 'Z' || st.pgrp == pid || st.pgrp == my_pgrp {
            continue;
        }
        if let Some(p) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            && let Ok(Some(_)) =
                rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG)
        {
            n += 1;
        }
    }
    n
}

/// Whether a child of this process has exited and is not reaped yet
/// (`waitid` with `WNOWAIT`: it stays a zombie for its owner to reap). In
/// doubt (the call fails otherwise than for having no children), yes.
fn zombie_child() -> bool {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    match waitid(
        WaitId::All,
        WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
    ) {
        Ok(found) => found.is_some(),
        Err(e) => e != rustix::io::Errno::CHILD,
    }
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

    #[test]
    fn an_exited_child_not_yet_reaped_is_seen_and_left_for_its_owner() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !zombie_child() {
            assert!(
                std::time::Instant::now() < deadline,
                "the child's exit is not seen"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Peeking did not reap it: its owner still gets its status.
        assert!(child.wait().unwrap().success());
    }

    #[tokio::test]
    async fn an_orphan_is_killed_only_when_proc_shows_its_mark() {
        let dir = tempfile::tempdir().unwrap();
        let marked = dir.path().join("a.pid");
        let mut cmd = tokio::process::Command::new("sleep");
        cmd.arg("30").kill_on_drop(true);
        mark(&mut cmd, &marked);
        let mut child = cmd.spawn().unwrap();
        record(&marked, child.id());
        // Until the child has exec'd, /proc shows the parent's environment
        // (an orphan of an earlier run has long exec'd).
        let pid = child.id().unwrap();
        let t0 = std::time::Instant::now();
        while !std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep"))
            && t0.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
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

    #[tokio::test]
    async fn a_marked_process_is_looked_at_only_when_it_started_since() {
        let dir = tempfile::tempdir().unwrap();
        let marked = dir.path().join("c.pid");
        let mut cmd = tokio::process::Command::new("sleep");
        cmd.arg("30").kill_on_drop(true);
        mark(&mut cmd, &marked);
        let mut child = cmd.spawn().unwrap();
        let pid = child.id().unwrap();
        let t0 = std::time::Instant::now();
        while !std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sleep"))
            && t0.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let started = start_time(pid).unwrap();
        assert!(start_time(std::process::id()).unwrap() <= started);
        // Started before the tick asked for: not looked at, still runs.
        assert_eq!(kill_marked_since(&marked, None, Some(started + 1)), 0);
        assert!(child.try_wait().unwrap().is_none());
        // Started at it: killed.
        assert_eq!(kill_marked_since(&marked, None, Some(started)), 1);
        let st = child.wait().await.unwrap();
        assert!(!st.success(), "killed: {st}");
    }

    #[tokio::test]
    async fn a_builds_escapees_are_found_in_its_tree_and_among_this_processs_orphans() {
        assert!(become_subreaper(), "the test needs PR_SET_CHILD_SUBREAPER");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let marked = d.join("t.pid");
        // Three ways out of the shell's group: a background job in it,
        // `setsid` under the shell, and a double fork re-parented here.
        let script = format!(
            "sleep 30 & echo $! > {d}/job; \
             setsid sh -c 'echo $$ > {d}/sess; exec sleep 31' & \
             ( setsid sh -c 'echo $$ > {d}/orphan; exec sleep 32' & ); \
             while [ ! -s {d}/job ] || [ ! -s {d}/sess ] || [ ! -s {d}/orphan ]; do sleep 0.01; done; \
             echo ready; exec sleep 33",
            d = d.display()
        );
        let mut cmd = tokio::process::Command::new("bash");
        cmd.args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        mark(&mut cmd, &marked);
        let mut shell = cmd.spawn().unwrap();
        let leader = shell.id().unwrap();
        let since = start_time(leader).unwrap();
        let mut out = tokio::io::BufReader::new(shell.stdout.take().unwrap());
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line)
            .await
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let pid = |f: &str| -> u32 {
            std::fs::read_to_string(d.join(f))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let (job, sess, orphan) = (pid("job"), pid("sess"), pid("orphan"));
        // Wait until the double fork's middle process is gone and its
        // child is ours.
        let t0 = std::time::Instant::now();
        while stat(orphan).map(|s| s.ppid) != Some(std::process::id()) {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "never re-parented"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // A child of this process that is not the build's: left alone.
        let mut stranger = tokio::process::Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap();

        let n = kill_marked_tree(&marked, Some(leader), Some(leader), Some(since));
        assert!(
            n.is_some(),
            "subreaper and children files: the tree is read"
        );
        let _ = shell.wait().await;
        let gone = |p: u32| stat(p).is_none_or(|s| s.state == 'Z');
        let t0 = std::time::Instant::now();
        while ![job, sess, orphan].into_iter().all(gone) {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "left running: job {} sess {} orphan {}",
                !gone(job),
                !gone(sess),
                !gone(orphan)
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            stranger.try_wait().unwrap().is_none(),
            "the stranger still runs"
        );
        let _ = stranger.kill().await;
    }
}
