//! Triggers: the engine watches the git repositories the workspace maps
//! and starts an execution when a tracked ref moves. V2 `triggers` with
//! push filters (branches, tags, file paths; excludes beat includes;
//! filters OR, fields inside one AND) replace default change detection for
//! their source action; otherwise the action's branch is tracked (V1
//! change detection), unless `DetectChanges` is `false`.
//!
//! Refs seen are stored, so commits made while pipedeck was not running
//! start an execution on the next start, as a webhook would have.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::core::{EngineHandle, Msg};
use super::short_id;
use crate::config::workspace::Workspace;
use crate::model::pipeline::{Globs, PushFilter};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct Watch {
    pub pipeline: String,
    pub action: String,
    pub repo: PathBuf,
    /// Tracked branch (no filters).
    pub branch: String,
    /// V2 push filters; empty means "track `branch`".
    pub filters: Vec<PushFilter>,
    /// ref → commit, as last seen.
    pub known: BTreeMap<String, String>,
}

/// The watches a workspace asks for, and what could not be read for them
/// (a watch whose stored refs cannot be read starts as if new: a commit
/// pushed while pipedeck was not running does not start an execution).
pub fn watches(ws: &Workspace, store: &Store) -> (Vec<Watch>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for wp in &ws.pipelines {
        let p = &wp.pipeline;
        let Some(first) = p.stages.first() else {
            continue;
        };
        for a in &first.actions {
            if a.action_type_id.category != "Source" {
                continue;
            }
            let Some(repo) = ws.repository_for(&a.configuration) else {
                continue;
            };
            let filters: Vec<PushFilter> = p
                .triggers
                .iter()
                .filter(|t| t.source_action_name == a.name)
                .flat_map(|t| t.push.clone())
                .collect();
            let has_trigger = p.triggers.iter().any(|t| t.source_action_name == a.name);
            if !has_trigger
                && a.configuration.get("DetectChanges").map(String::as_str) == Some("false")
            {
                continue;
            }
            if has_trigger && filters.is_empty() {
                // Pull-request-only triggers: nothing local to watch.
                continue;
            }
            let branch = a
                .configuration
                .get("BranchName")
                .cloned()
                .or(repo.branch.clone())
                .unwrap_or_else(|| "main".into());
            let known = match store.trigger_refs(&p.name, &a.name) {
                Ok(refs) => refs.into_iter().collect(),
                Err(e) => {
                    problems.push(format!(
                        "pipeline {}, source {}: the refs seen before cannot be read, so commits \
                         pushed while pipedeck was not running do not start an execution: {e}",
                        p.name, a.name
                    ));
                    BTreeMap::new()
                }
            };
            out.push(Watch {
                pipeline: p.name.clone(),
                action: a.name.clone(),
                repo: repo.path.clone(),
                branch,
                filters,
                known,
            });
        }
    }
    (out, problems)
}

pub(crate) fn spawn(handle: &EngineHandle, watches: &[Watch]) {
    if watches.is_empty() {
        return;
    }
    let tx = handle.sender();
    let ws = handle.workspace.clone();
    let mut watches = watches.to_vec();
    tokio::spawn(async move {
        let store = {
            let dir = ws.state_dir.clone();
            let r = tokio::task::spawn_blocking(move || Store::open(&dir)).await;
            match r {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => {
                    report(
                        &tx,
                        format!(
                            "triggers cannot open the state store, so the refs they see are not kept: {e}"
                        ),
                    );
                    None
                }
                Err(e) => {
                    report(
                        &tx,
                        format!(
                            "triggers cannot open the state store, so the refs they see are not kept: {e}"
                        ),
                    );
                    None
                }
            }
        };
        // The last failure reported per watch: a store that keeps failing
        // is reported once, not at every poll.
        let mut reported: BTreeMap<usize, String> = BTreeMap::new();
        let store = store.map(|s| std::sync::Arc::new(std::sync::Mutex::new(s)));
        let mut tick = tokio::time::interval(ws.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // What each repository's ref files looked like at the last listing:
        // `git for-each-ref` (a process) runs only when they changed, and
        // every FULL_EVERY polls in case a file system's times are coarse.
        let mut seen: Vec<Option<RefsStamp>> = vec![None; watches.len()];
        let mut polls: u64 = 0;
        loop {
            tick.tick().await;
            if tx.is_closed() {
                return;
            }
            polls += 1;
            for (k, w) in watches.iter_mut().enumerate() {
                let repo = w.repo.clone();
                let stamp = tokio::task::spawn_blocking(move || refs_stamp(&repo))
                    .await
                    .ok()
                    .flatten();
                if stamp.is_some() && stamp == seen[k] && !polls.is_multiple_of(FULL_EVERY) {
                    continue;
                }
                let Some(refs) = list_refs(&w.repo).await else {
                    continue;
                };
                seen[k] = stamp;
                let first = w.known.is_empty();
                let mut changes = Vec::new();
                for (r, c) in &refs {
                    if w.known.get(r) != Some(c) {
                        changes.push((r.clone(), w.known.get(r).cloned(), c.clone()));
                    }
                }
                if changes.is_empty() {
                    continue;
                }
                if !first {
                    for (r, old, new) in &changes {
                        if fires(w, r, old.as_deref(), new).await {
                            let short = r
                                .strip_prefix("refs/heads/")
                                .or_else(|| r.strip_prefix("refs/tags/"))
                                .unwrap_or(r);
                            let _ = tx.send(Msg::SourceChange {
                                pipeline: w.pipeline.clone(),
                                action: w.action.clone(),
                                commit: new.clone(),
                                detail: format!("push to {short} ({})", short_id(new, 12)),
                            });
                        }
                    }
                }
                w.known = refs;
                if let Some(store) = &store {
                    let (s, w2) = (store.clone(), w.clone());
                    let r = tokio::task::spawn_blocking(move || {
                        let mut s = s.lock().map_err(|e| e.to_string())?;
                        s.batch(|b| {
                            for (r, c) in &w2.known {
                                b.trigger_ref(&w2.pipeline, &w2.action, r, c)?;
                            }
                            Ok(())
                        })
                        .map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r);
                    match r {
                        Ok(()) => {
                            reported.remove(&k);
                        }
                        Err(e) if reported.get(&k) != Some(&e) => {
                            report(
                                &tx,
                                format!(
                                    "pipeline {}, source {}: the refs seen cannot be stored, so a \
                                     restarted engine may start executions for them again: {e}",
                                    w.pipeline, w.action
                                ),
                            );
                            reported.insert(k, e);
                        }
                        Err(_) => {}
                    }
                }
            }
        }
    });
}

/// Tells the engine a trigger store failure (it logs and records it).
fn report(tx: &tokio::sync::mpsc::UnboundedSender<Msg>, message: String) {
    if let Err(e) = tx.send(Msg::TriggerProblem { message }) {
        // The engine is gone: the log is all that is left.
        if let Msg::TriggerProblem { message } = e.0 {
            tracing::error!(error = message, "trigger store failure");
        }
    }
}

async fn git(repo: &PathBuf, args: &[&str]) -> Option<String> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls between listings even when the ref files look unchanged.
const FULL_EVERY: u64 = 30;

/// Modification time and size of every file and directory that holds a
/// repository's refs (loose refs, packed-refs, reftable, HEAD): a push, a
/// `git tag` or a `git pack-refs` changes at least one of them.
type RefsStamp = Vec<(PathBuf, Option<std::time::SystemTime>, u64)>;

fn refs_stamp(repo: &std::path::Path) -> Option<RefsStamp> {
    let dot = repo.join(".git");
    let git_dir = if dot.is_dir() {
        dot
    } else if dot.is_file() {
        // A linked worktree or submodule: `gitdir: <path>`; its refs live
        // in the common directory, which this does not follow: list always.
        return None;
    } else {
        repo.to_path_buf()
    };
    let mut out = Vec::new();
    let mut stack = vec![
        git_dir.join("refs/heads"),
        git_dir.join("refs/tags"),
        git_dir.join("reftable"),
    ];
    for f in ["packed-refs", "HEAD"] {
        let p = git_dir.join(f);
        if let Ok(m) = std::fs::metadata(&p) {
            out.push((p, m.modified().ok(), m.len()));
        }
    }
    while let Some(dir) = stack.pop() {
        let Ok(m) = std::fs::metadata(&dir) else {
            continue;
        };
        out.push((dir.clone(), m.modified().ok(), m.len()));
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.modified().ok(), m.len()));
            }
        }
        if out.len() > 10_000 {
            // Too many refs to stamp cheaply: list every time.
            return None;
        }
    }
    out.sort();
    Some(out)
}

async fn list_refs(repo: &PathBuf) -> Option<BTreeMap<String, String>> {
    let text = git(
        repo,
        &[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/heads",
            "refs/tags",
        ],
    )
    .await?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(c, r)| (r.to_owned(), c.to_owned()))
            .collect(),
    )
}

fn set(globs: &[String]) -> Option<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for g in globs {
        b.add(
            globset::GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .or_else(|_| Glob::new(&globset::escape(g)))
                .ok()?,
        );
    }
    b.build().ok()
}

/// Includes (none = all) and not excludes; excludes win.
pub fn globs_match(g: &Globs, value: &str) -> bool {
    let inc = g.includes.is_empty() || set(&g.includes).is_some_and(|s| s.is_match(value));
    let exc = !g.excludes.is_empty() && set(&g.excludes).is_some_and(|s| s.is_match(value));
    inc && !exc
}

async fn fires(w: &Watch, refname: &str, old: Option<&str>, new: &str) -> bool {
    if w.filters.is_empty() {
        return refname == format!("refs/heads/{}", w.branch);
    }
    for f in &w.filters {
        if let Some(tags) = &f.tags {
            if let Some(tag) = refname.strip_prefix("refs/tags/")
                && globs_match(tags, tag)
            {
                return true;
            }
            continue;
        }
        let Some(branch) = refname.strip_prefix("refs/heads/") else {
            continue;
        };
        if let Some(b) = &f.branches
            && !globs_match(b, branch)
        {
            continue;
        }
        if let Some(paths) = &f.file_paths {
            let files = match old {
                Some(o) => git(&w.repo, &["diff", "--name-only", o, new]).await,
                None => {
                    git(
                        &w.repo,
                        &[
                            "diff-tree",
                            "--no-commit-id",
                            "--name-only",
                            "-r",
                            "--root",
                            new,
                        ],
                    )
                    .await
                }
            };
            let Some(files) = files else {
                continue;
            };
            if !files.lines().any(|f| globs_match(paths, f)) {
                continue;
            }
        }
        return true;
    }
    false
}
