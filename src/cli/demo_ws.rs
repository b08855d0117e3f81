//! The demo workspace: `pipedeck init --demo DIR` writes a workspace whose
//! pipeline builds a small Python web service from its own git repository;
//! `pipedeck demo break` / `demo fix` commit a change that makes its unit
//! tests fail / pass again.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, bail, eyre};

use crate::config::workspace::Workspace;

/// The repository's files: path → text.
const REPO: &[(&str, &str)] = &[
    (
        "README.md",
        include_str!("../../assets/demo/repo/README.md"),
    ),
    (
        ".gitignore",
        include_str!("../../assets/demo/repo/.gitignore"),
    ),
    (
        "app/__init__.py",
        include_str!("../../assets/demo/repo/app/__init__.py"),
    ),
    ("app/greeting.py", GREETING),
    (
        "app/server.py",
        include_str!("../../assets/demo/repo/app/server.py"),
    ),
    (
        "tests/__init__.py",
        include_str!("../../assets/demo/repo/tests/__init__.py"),
    ),
    (
        "tests/test_greeting.py",
        include_str!("../../assets/demo/repo/tests/test_greeting.py"),
    ),
    (
        "scripts/run_tests.py",
        include_str!("../../assets/demo/repo/scripts/run_tests.py"),
    ),
    (
        "scripts/lint.py",
        include_str!("../../assets/demo/repo/scripts/lint.py"),
    ),
    (
        "buildspec.yml",
        include_str!("../../assets/demo/repo/buildspec.yml"),
    ),
    (
        "buildspec-lint.yml",
        include_str!("../../assets/demo/repo/buildspec-lint.yml"),
    ),
    (
        "buildspec-test.yml",
        include_str!("../../assets/demo/repo/buildspec-test.yml"),
    ),
];

const GREETING: &str = include_str!("../../assets/demo/repo/app/greeting.py");
const GREETING_BROKEN: &str = include_str!("../../assets/demo/greeting_broken.py");
const SERVER: &str = include_str!("../../assets/demo/repo/app/server.py");
/// The line of `app/server.py` that `demo break --5xx` changes.
const FRONT_PAGE_OK: &str = r#"self._send(200, {"message": greeting(), "version": version()})"#;
const FRONT_PAGE_5XX: &str = r#"self._send(500, {"error": "boom", "version": version()})"#;

/// `app/server.py` whose front page answers 500 (its tests still pass).
fn server_5xx() -> String {
    SERVER.replace(FRONT_PAGE_OK, FRONT_PAGE_5XX)
}
pub const PIPELINE: &str = include_str!("../../assets/demo/pipeline.json");
const CONFIG: &str = include_str!("../../assets/demo/pipedeck.toml");

/// The repository's directory inside the workspace.
pub const REPO_DIR: &str = "demo-web";

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=pipedeck demo",
            "-c",
            "user.email=demo@pipedeck.invalid",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| eyre!("cannot run git (is it installed?): {e}"))?;
    if !out.status.success() {
        bail!(
            "git {} in {}: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Creates the demo workspace in `dir` (which must be absent or empty).
/// The demo's environment ports (dev, staging, prod, prod's test port),
/// as shipped.
const DEMO_PORTS: [u16; 4] = [8081, 8082, 8083, 9083];

/// The demo's ports: each shipped one if it is free now, else a free one
/// the system picks (a port taken later gives the deploy's own message).
fn free_ports() -> [u16; 4] {
    let mut out = DEMO_PORTS;
    let mut held = Vec::new();
    for p in &mut out {
        match std::net::TcpListener::bind(("127.0.0.1", *p)) {
            Ok(l) => held.push(l),
            Err(_) => {
                if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", 0))
                    && let Ok(a) = l.local_addr()
                {
                    *p = a.port();
                    held.push(l);
                }
            }
        }
    }
    out
}

/// Creates the demo workspace in `dir` (which must be empty or absent);
/// returns the environment ports it chose: dev, staging, prod, prod's test.
pub fn create(dir: &Path) -> Result<[u16; 4]> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .map_err(|e| eyre!("{}: {e}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{}: the directory is not empty; choose a new directory for the demo workspace",
            dir.display()
        );
    }
    let repo = dir.join(REPO_DIR);
    for (path, text) in REPO {
        let p = repo.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| eyre!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&p, text).map_err(|e| eyre!("{}: {e}", p.display()))?;
    }
    let ports = free_ports();
    let mut pipeline = PIPELINE.to_owned();
    let mut config = CONFIG.to_owned();
    for (from, to) in DEMO_PORTS.iter().zip(ports) {
        pipeline = pipeline.replace(&format!("127.0.0.1:{from}/"), &format!("127.0.0.1:{to}/"));
        config = config.replace(&format!("port = {from}\n"), &format!("port = {to}\n"));
    }
    std::fs::write(dir.join("pipeline.json"), pipeline)?;
    std::fs::write(dir.join("pipedeck.toml"), config)?;
    git(&repo, &["init", "-q", "-b", "main"])?;
    git(&repo, &["add", "-A"])?;
    git(
        &repo,
        &[
            "commit",
            "-q",
            "-m",
            "demo-web: a greeting service with tests",
        ],
    )?;
    Ok(ports)
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Create the demo workspace (a pipeline, its git repository and buildspecs)
    #[arg(long)]
    pub demo: bool,
    /// Where to create it
    pub dir: std::path::PathBuf,
}

pub fn init(a: &InitArgs) -> Result<ExitCode> {
    if !a.demo {
        bail!("only `pipedeck init --demo DIR` exists so far");
    }
    let [dev, staging, prod, prod_test] = create(&a.dir)?;
    say!(
        "created the demo workspace in {}\n\
         - pipeline.json: Source → Build (Lint ∥ UnitTests, then Package) → Dev → Approve → \
         Staging → Approve-Prod → Prod\n\
         - environments on 127.0.0.1: dev :{dev}, staging :{staging}, prod :{prod} (test :{prod_test})\n\
         - {REPO_DIR}/: the service's git repository (branch main)\n\
         next: pipedeck --workspace {} run",
        a.dir.display(),
        a.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand, Debug)]
pub enum DemoCommand {
    /// Commit a change that makes the demo's unit tests fail (with --5xx:
    /// a release that passes its tests but answers 500, so staging's alarm
    /// fires and rolls it back)
    Break {
        #[arg(long = "5xx")]
        http_5xx: bool,
    },
    /// Commit the fix: the tests pass again
    Fix,
}

pub fn demo(ws: &Workspace, cmd: &DemoCommand) -> Result<ExitCode> {
    let repo = ws.root.join(REPO_DIR);
    if !repo.join(".git").exists() {
        bail!(
            "{}: workspace {} is not a pipedeck demo workspace (no {REPO_DIR}/ repository); \
             create one with `pipedeck init --demo DIR`",
            ws.root.display(),
            ws.name
        );
    }
    let broken_server = server_5xx();
    let (files, message, says): (Vec<(&str, &str)>, &str, &str) = match cmd {
        DemoCommand::Break { http_5xx: false } => (
            vec![
                ("app/greeting.py", GREETING_BROKEN),
                ("app/server.py", SERVER),
            ],
            "Simplify the greeting",
            "the unit tests now fail (3 of 4)",
        ),
        DemoCommand::Break { http_5xx: true } => (
            vec![
                ("app/greeting.py", GREETING),
                ("app/server.py", &broken_server),
            ],
            "Serve the front page from the new handler",
            "the tests pass but / answers 500: staging's alarm will roll it back",
        ),
        DemoCommand::Fix => (
            vec![("app/greeting.py", GREETING), ("app/server.py", SERVER)],
            "Restore the greeting and the front page",
            "the tests pass and / answers 200 again",
        ),
    };
    let unchanged = files
        .iter()
        .all(|(f, text)| std::fs::read_to_string(repo.join(f)).ok().as_deref() == Some(*text));
    if unchanged {
        say!("nothing to commit: {REPO_DIR} is already in that state");
        return Ok(ExitCode::SUCCESS);
    }
    for (f, text) in &files {
        std::fs::write(repo.join(f), text)?;
        git(&repo, &["add", f])?;
    }
    git(&repo, &["commit", "-q", "-m", message])?;
    let sha = git(&repo, &["rev-parse", "--short=12", "HEAD"])?;
    say!(
        "committed {sha} \"{message}\" to {REPO_DIR}: {says}.\n\
         A running engine (the TUI or `pipedeck serve`) starts an execution for it; \
         otherwise run `pipedeck run --wait`."
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_5xx_release_changes_exactly_the_front_page_line() {
        let broken = server_5xx();
        assert_ne!(
            broken, SERVER,
            "the line to replace is no longer in server.py"
        );
        assert_eq!(broken.matches(FRONT_PAGE_5XX).count(), 1);
        assert_eq!(broken.lines().count(), SERVER.lines().count());
    }
}
