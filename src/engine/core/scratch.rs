//! Scratch directories for actions, reused: an action borrows one, and
//! gives it back emptied. Making and removing a directory per action cost
//! inodes (the action's directory, its `out/`, the shell's `pgid` file),
//! and on ext4 without a journal every new inode scans the inodes deleted
//! in the last minutes, so the cost of each grew with the actions before.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The pool of an engine's scratch directories under `<state>/work`.
#[derive(Clone)]
pub(super) struct Scratch {
    root: PathBuf,
    free: Arc<Mutex<Pool>>,
}

#[derive(Default)]
struct Pool {
    dirs: Vec<PathBuf>,
    made: usize,
}

/// What an emptied directory keeps: the shell rewrites its `pgid` file
/// (the next engine reads it to kill what a crashed one left running).
const KEPT_FILE: &str = "pgid";

impl Scratch {
    pub(super) fn new(root: PathBuf) -> Scratch {
        Scratch {
            root,
            free: Arc::default(),
        }
    }

    /// A free directory, made when none is free. Blocking.
    pub(super) fn take(&self) -> io::Result<PathBuf> {
        let name = {
            let mut p = self.free.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(d) = p.dirs.pop() {
                return Ok(d);
            }
            p.made += 1;
            // The process id keeps two engines' names apart, should a
            // second one ever run on the same state directory.
            format!("{}-{}", std::process::id(), p.made)
        };
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Empties `dir` and gives it back: its directories stay, emptied (an
    /// action's `out/` and `in.<name>` are made again by the next one),
    /// and of its files only `pgid`. A directory that cannot be emptied
    /// is removed instead and not given back. Blocking.
    pub(super) fn give_back(&self, dir: PathBuf) {
        match empty(&dir, true) {
            Ok(()) => self
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .dirs
                .push(dir),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot empty a scratch directory; removing it");
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
}

/// Removes what is in `dir`: the directories at its top stay (emptied),
/// and with `top`, the `pgid` file too.
fn empty(dir: &Path, top: bool) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        let t = e.file_type()?;
        if t.is_dir() {
            if top {
                // Its top level is kept: making it again costs an inode.
                empty(&path, false)?;
            } else {
                std::fs::remove_dir_all(&path)?;
            }
        } else if !(top && e.file_name() == KEPT_FILE) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_given_back_is_emptied_and_lent_again() {
        let d = tempfile::tempdir().unwrap();
        let s = Scratch::new(d.path().join("work"));
        let a = s.take().unwrap();
        let b = s.take().unwrap();
        assert_ne!(a, b, "two actions at once get two directories");
        std::fs::create_dir_all(a.join("in.Src/deep/er")).unwrap();
        std::fs::write(a.join("in.Src/deep/er/f"), "x").unwrap();
        std::fs::write(a.join("in.Src/top"), "x").unwrap();
        std::fs::create_dir_all(a.join("out")).unwrap();
        std::fs::write(a.join("out/built"), "x").unwrap();
        std::fs::write(a.join("pgid"), "123").unwrap();
        std::fs::write(a.join("stray"), "x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.path(), a.join("out/link")).unwrap();
        s.give_back(a.clone());
        let mut left: Vec<String> = walk(&a);
        left.sort();
        assert_eq!(left, ["in.Src", "out", "pgid"]);
        assert!(d.path().exists(), "a symlink is removed, not followed");
        assert_eq!(s.take().unwrap(), a, "the emptied directory is lent again");
        assert_ne!(s.take().unwrap(), b, "b is still lent");
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let rel = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                for sub in walk(&e.path()) {
                    out.push(format!("{rel}/{sub}"));
                }
            }
            out.push(rel);
        }
        out
    }
}
