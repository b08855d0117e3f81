//! Logging goes to a file in the data dir, never to the terminal (which
//! belongs to the UI). The level comes from `PIPEDECK_LOG` (default `info`).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Starts file logging into `dir/pipedeck.log`. Returns the guard that must
/// live until exit, or `None` if the directory or the file cannot be
/// created or opened (another user's data dir, a read-only or full disk):
/// pipedeck then runs without a log rather than failing.
pub fn init(dir: &Path) -> Option<WorkerGuard> {
    std::fs::create_dir_all(dir).ok()?;
    // Opened here, not by `tracing_appender::rolling`, which panics when
    // the file cannot be opened.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("pipedeck.log"))
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = EnvFilter::try_from_env("PIPEDECK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(guard)
}
