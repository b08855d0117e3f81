//! The terminal UI. Only this module imports ratatui and crossterm.
//!
//! One task owns the [`app::App`]. A `select!` takes input (a reader
//! thread), engine events (bridged from the engine's broadcast), results of
//! effects (tasks), and a one-second tick for the clock and durations;
//! after draining what is ready it draws once, and only if something
//! changed.

pub mod app;
pub mod keymap;
pub mod link;
pub mod theme;
pub mod view;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event};
use tokio::sync::mpsc;

use self::app::{App, Effect, Msg, Snapshot};
use self::link::Link;
use crate::api::{Reply, Request};
use crate::config::workspace::Workspace;
use crate::store::logs::LogReader;

pub struct Options {
    pub readonly: bool,
    pub theme: theme::Theme,
    pub keymap: keymap::Keymap,
    pub warnings: Vec<String>,
    pub protected: Vec<String>,
    pub bell: bool,
    /// Start an execution when the pipeline has none (the demo's first run).
    pub start_first: bool,
    /// The diagnosis rules (built-in plus the user's).
    pub catalogue: std::sync::Arc<crate::diagnose::Catalogue>,
}

/// Runs the TUI on a workspace until the user quits.
pub async fn run(ws: Workspace, opts: Options) -> Result<ExitCode> {
    // The first frame comes before the engine loads its store: a big
    // history must not leave the terminal blank.
    let mut terminal = ratatui::init();
    let _ = crossterm::execute!(std::io::stdout(), EnableMouseCapture);
    let name = ws.name.clone();
    let _ = terminal.draw(|f| {
        let area = f.area();
        f.render_widget(
            ratatui::widgets::Paragraph::new(format!(
                " pipedeck · {name} · opening the workspace's engine…"
            ))
            .style(opts.theme.header),
            ratatui::layout::Rect::new(area.x, area.y, area.width, 1.min(area.height)),
        );
    });
    let (link, hosting) = match Link::open(ws).await {
        Ok(x) => x,
        Err(e) => {
            let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
            ratatui::restore();
            return Err(e);
        }
    };
    let mut app = App::new(
        link.workspace().name.clone(),
        link.describe(),
        hosting.is_some(),
        opts.theme,
        opts.keymap,
    );
    app.readonly = opts.readonly;
    app.bell = opts.bell;
    app.protected = opts.protected;
    app.defs = link
        .workspace()
        .pipelines
        .iter()
        .map(|p| (p.pipeline.name.clone(), p.pipeline.clone()))
        .collect();
    for w in opts.warnings {
        app.toast(w, true);
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    // Input: a plain thread, blocking on crossterm.
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            loop {
                let msg = match crossterm::event::read() {
                    Ok(Event::Key(k)) if k.kind != crossterm::event::KeyEventKind::Release => {
                        Msg::Key(k)
                    }
                    Ok(Event::Mouse(m)) => Msg::Mouse(m),
                    Ok(Event::Resize(w, h)) => Msg::Resize(w, h),
                    Ok(_) => continue,
                    Err(_) => return,
                };
                if tx.send(msg).is_err() {
                    return;
                }
            }
        });
    }
    // Engine events.
    let (etx, mut erx) = mpsc::unbounded_channel();
    link.bridge(etx);
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(e) = erx.recv().await {
                if tx.send(Msg::Engine(e)).is_err() {
                    return;
                }
            }
        });
    }
    let size = terminal.size()?;
    app.size = (size.width, size.height);
    let runner = Runner {
        catalogue: opts.catalogue.clone(),
        link: link.clone(),
        tx: tx.clone(),
        refreshing: std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0)),
    };
    runner.run(Effect::Refresh);
    if opts.start_first && link.workspace().pipelines.len() == 1 {
        let name = link.workspace().pipelines[0].pipeline.name.clone();
        let l = link.clone();
        let tx2 = tx.clone();
        tokio::spawn(async move {
            let none = matches!(
                l.call(Request::ListPipelineExecutions { pipeline_name: name.clone(), max_results: Some(1) }).await,
                Ok(Reply::Executions { executions }) if executions.is_empty()
            );
            if none {
                let r = l
                    .call(Request::StartPipelineExecution {
                        pipeline_name: name.clone(),
                        variables: Default::default(),
                        source_revisions: Vec::new(),
                    })
                    .await;
                let _ = tx2.send(Msg::Done {
                    label: format!("first run of {name}"),
                    result: r.map(|_| "started".into()).map_err(|e| e.to_string()),
                });
            }
        });
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut spin = tokio::time::interval(Duration::from_millis(200));
    spin.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // SIGTERM and SIGHUP (the terminal went away) end the UI like `q`: the
    // engine this process hosts stops cleanly.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let result: Result<()> = async {
        terminal.draw(|f| view::draw(f, &mut app))?;
        loop {
            let spinning = app.running() > 0;
            let first = tokio::select! {
                _ = term.recv() => break,
                _ = hup.recv() => break,
                m = rx.recv() => match m { Some(m) => m, None => break },
                _ = tick.tick() => Msg::Tick,
                _ = spin.tick(), if spinning => Msg::Tick,
            };
            let mut batch = vec![first];
            while let Ok(m) = rx.try_recv() {
                batch.push(m);
                if batch.len() > 512 {
                    break;
                }
            }
            for m in batch {
                for fx in app.update(m) {
                    match fx {
                        Effect::Quit => {}
                        Effect::Bell => {
                            let _ = std::io::stdout().write_all(b"\x07");
                        }
                        other => runner.run(other),
                    }
                }
            }
            if app.quit {
                break;
            }
            terminal.draw(|f| view::draw(f, &mut app))?;
        }
        Ok(())
    }
    .await;
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    if let Some(h) = hosting {
        h.server.drain().await;
        if let Link::Hosted(handle) = &link {
            handle.shutdown().await;
            let _ = std::fs::remove_file(handle.workspace.socket_path());
        }
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// Carries out effects on tasks; results come back as messages.
#[derive(Clone)]
struct Runner {
    catalogue: std::sync::Arc<crate::diagnose::Catalogue>,
    link: Link,
    tx: mpsc::UnboundedSender<Msg>,
    /// 0 idle, 1 refreshing, 2 refreshing and another refresh wanted.
    refreshing: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

impl Runner {
    fn run(&self, fx: Effect) {
        use std::sync::atomic::Ordering;
        let me = self.clone();
        match fx {
            Effect::Refresh => {
                if self.refreshing.fetch_max(1, Ordering::SeqCst) > 0 {
                    self.refreshing.store(2, Ordering::SeqCst);
                    return;
                }
                tokio::spawn(async move {
                    loop {
                        if let Ok(s) = snapshot(&me.link).await {
                            let _ = me.tx.send(Msg::Snapshot(s));
                        }
                        if me
                            .refreshing
                            .compare_exchange(2, 1, Ordering::SeqCst, Ordering::SeqCst)
                            .is_err()
                        {
                            me.refreshing.store(0, Ordering::SeqCst);
                            return;
                        }
                    }
                });
            }
            Effect::Op { label, request } => {
                tokio::spawn(async move {
                    let result = match me.link.call(request).await {
                        Ok(Reply::Started {
                            pipeline_execution_id,
                        }) => Ok(format!("execution {} started", &pipeline_execution_id[..8])),
                        Ok(Reply::RolledBack {
                            pipeline_execution_id,
                        }) => Ok(format!(
                            "rollback execution {} started",
                            &pipeline_execution_id[..8]
                        )),
                        Ok(_) => Ok("done".to_owned()),
                        Err(e) => Err(format!("{}: {}", e.code, e.message)),
                    };
                    let _ = me.tx.send(Msg::Done { label, result });
                });
            }
            Effect::ExecActions {
                pipeline,
                execution,
            } => {
                tokio::spawn(async move {
                    if let Ok(Reply::ActionExecutions { actions }) = me
                        .link
                        .call(Request::ListActionExecutions {
                            pipeline_name: pipeline,
                            pipeline_execution_id: execution.clone(),
                        })
                        .await
                    {
                        // Newest first: keep each action's latest attempt.
                        let mut latest: Vec<crate::api::ActionExecutionDetail> = Vec::new();
                        for a in actions {
                            if !latest.iter().any(|x| {
                                x.stage_name == a.stage_name && x.action_name == a.action_name
                            }) {
                                latest.push(a);
                            }
                        }
                        let _ = me.tx.send(Msg::ExecActions(execution, latest));
                    }
                });
            }
            Effect::Audit => {
                tokio::spawn(async move {
                    if let Ok(Reply::Events { events }) = me
                        .link
                        .call(Request::LookupEvents {
                            max_results: Some(500),
                        })
                        .await
                    {
                        let _ = me.tx.send(Msg::Audit(events));
                    }
                });
            }
            Effect::ReadLog { aeid, start, count } => {
                let (dir, file_id) = log_location(&self.link.workspace().state_dir, &aeid);
                tokio::task::spawn_blocking(move || {
                    let msg = match LogReader::open(&dir, &file_id) {
                        Ok(mut r) => {
                            let total = r.len();
                            let start = if start == u64::MAX {
                                total.saturating_sub(count)
                            } else {
                                start
                            };
                            let lines = r.read(start, count).unwrap_or_default();
                            let ts =
                                crate::store::logs::read_times(&dir, &file_id).unwrap_or_default();
                            let times = (0..lines.len() as u64)
                                .map(|i| crate::store::logs::time_of(&ts, start + i))
                                .collect();
                            Msg::LogPage {
                                aeid,
                                total,
                                start,
                                lines,
                                times,
                            }
                        }
                        Err(_) => Msg::LogPage {
                            aeid,
                            total: 0,
                            start: 0,
                            lines: Vec::new(),
                            times: Vec::new(),
                        },
                    };
                    let _ = me.tx.send(msg);
                });
            }
            Effect::SearchLog {
                aeid,
                pattern,
                regex,
            } => {
                let (dir, file_id) = log_location(&self.link.workspace().state_dir, &aeid);
                tokio::task::spawn_blocking(move || {
                    let matches = search_log(&dir, &file_id, &pattern, regex).unwrap_or_default();
                    let _ = me.tx.send(Msg::Matches { aeid, matches });
                });
            }
            Effect::Diagnose { action, execution } => {
                let dir = self.link.workspace().state_dir.join("logs");
                tokio::spawn(async move {
                    let audit = match me
                        .link
                        .call(Request::LookupEvents {
                            max_results: Some(1000),
                        })
                        .await
                    {
                        Ok(Reply::Events { events }) => events,
                        _ => Vec::new(),
                    };
                    let cat = me.catalogue.clone();
                    let aeid = action.action_execution_id.clone();
                    let findings = tokio::task::spawn_blocking(move || {
                        let log = crate::cli::diagnose::read_log(&dir, &action.action_execution_id);
                        crate::diagnose::diagnose(
                            &crate::diagnose::Input {
                                log: &log,
                                action: Some(&action),
                                execution: execution.as_deref(),
                                audit: &audit,
                                ..crate::diagnose::Input::default()
                            },
                            &cat,
                        )
                    })
                    .await
                    .unwrap_or_default();
                    let _ = me.tx.send(Msg::Diagnosis { aeid, findings });
                });
            }
            Effect::Bell | Effect::Quit => {}
        }
    }
}

/// Where a log lives: an action's in `<state>/logs/<id>.log`; an
/// environment replica's output (`env/<env>/<file>`) in
/// `<state>/envs/<env>/logs/<file>.log`.
fn log_location(state_dir: &std::path::Path, aeid: &str) -> (std::path::PathBuf, String) {
    match aeid.strip_prefix("env/").and_then(|r| r.split_once('/')) {
        Some((env, file)) => (
            state_dir.join("envs").join(env).join("logs"),
            file.to_owned(),
        ),
        None => (state_dir.join("logs"), aeid.to_owned()),
    }
}

/// Line numbers (0-based) matching a pattern, streaming the log in chunks.
pub fn search_log(
    dir: &std::path::Path,
    aeid: &str,
    pattern: &str,
    regex: bool,
) -> Result<Vec<u64>> {
    let re = if regex {
        Some(regex::Regex::new(pattern).map_err(|e| eyre!("{e}"))?)
    } else {
        None
    };
    let mut r = LogReader::open(dir, aeid)?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < r.len() {
        let chunk = r.read(at, 50_000)?;
        if chunk.is_empty() {
            break;
        }
        for (i, l) in chunk.iter().enumerate() {
            let hit = match &re {
                Some(re) => re.is_match(l),
                None => l.contains(pattern),
            };
            if hit {
                out.push(at + i as u64);
            }
        }
        at += chunk.len() as u64;
    }
    Ok(out)
}

async fn snapshot(link: &Link) -> Result<Snapshot, crate::api::ApiError> {
    let Reply::Pipelines { pipelines } = link.call(Request::ListPipelines).await? else {
        return Ok(Snapshot::default());
    };
    let mut s = Snapshot {
        pipelines,
        ..Snapshot::default()
    };
    for p in s.pipelines.clone() {
        if let Ok(Reply::State { state }) = link
            .call(Request::GetPipelineState {
                pipeline_name: p.name.clone(),
            })
            .await
        {
            s.states.insert(p.name.clone(), state);
        }
        if let Ok(Reply::Executions { executions }) = link
            .call(Request::ListPipelineExecutions {
                pipeline_name: p.name.clone(),
                max_results: Some(50),
            })
            .await
        {
            s.executions.insert(p.name.clone(), executions);
        }
    }
    if let Ok(Reply::Environments { environments }) = link.call(Request::ListEnvironments).await {
        s.envs = environments;
    }
    Ok(s)
}
