//! The terminal UI. Only this module imports ratatui and crossterm.
//!
//! One task owns the [`app::App`]. A `select!` takes input (a reader
//! thread), backend events, results of effects (tasks on the
//! [backend](crate::backend)), and a one-second tick for the clock and
//! durations; after draining what is ready it draws once. The TUI reads
//! nothing from disk itself: definitions, states, logs and the audit trail
//! all come from the backend.

pub mod app;
pub mod keymap;
pub mod theme;
pub mod view;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event};
use tokio::sync::mpsc;

use ratatui::Terminal;

use self::app::{App, Effect, Msg, Snapshot};
use crate::api::{ApiError, LogRef, Reply, Request};
use crate::backend::{self, Backend, BoxFuture, OpenOptions, Shared};
use crate::config::workspace::Workspace;

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
    /// Serve the local AWS API from the engine this TUI hosts (`aws_api`
    /// in the config).
    pub aws_api: Option<crate::awsapi::cli::ServeApi>,
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
    let open_opts = OpenOptions {
        triggers: true,
        user_agent: "pipedeck-tui",
    };
    let backend = match backend::open(&ws, open_opts).await {
        Ok(b) => b,
        Err(e) => {
            let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
            ratatui::restore();
            return Err(eyre!("{e}"));
        }
    };
    let mut app = App::new(
        ws.name.clone(),
        backend.describe(),
        backend.hosted(),
        opts.theme,
        opts.keymap,
    );
    app.readonly = opts.readonly;
    app.bell = opts.bell;
    app.protected = opts.protected;
    for w in opts.warnings {
        app.toast(w, true);
    }
    // The local AWS API, when asked for and this process hosts the engine.
    let mut aws_api = None;
    if let (Some(api), Some(engine)) = (&opts.aws_api, backend.engine()) {
        match api.start_quiet(engine).await {
            Ok(server) => {
                app.toast(
                    format!(
                        "AWS API on http://{} (credentials: `pipedeck aws-credentials`)",
                        server.local_addr
                    ),
                    false,
                );
                if let Some(w) = crate::awsapi::server::exposure_warning(&api.addr) {
                    app.toast(w, true);
                }
                aws_api = Some(server);
            }
            Err(e) => app.toast(format!("the AWS API did not start: {e}"), true),
        }
    }
    let (tx, rx) = mpsc::unbounded_channel::<Msg>();
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
    let size = terminal.size()?;
    app.size = (size.width, size.height);
    let first = opts
        .start_first
        .then_some(ws.pipelines.as_slice())
        .and_then(|p| match p {
            [one] => Some(one.pipeline.name.clone()),
            _ => None,
        });
    let reopen: Reopen = std::sync::Arc::new(move || {
        let ws = ws.clone();
        Box::pin(async move { backend::open(&ws, open_opts).await })
    });
    let looped = Loop {
        backend: std::sync::Arc::new(std::sync::RwLock::new(backend)),
        catalogue: opts.catalogue,
        reopen: Some(reopen),
        start_first: first,
        reconnecting: Default::default(),
    };
    let (result, backend) = looped.run(&mut terminal, app, tx, rx).await;
    let _ = crossterm::execute!(std::io::stdout(), DisableMouseCapture);
    ratatui::restore();
    if let Some(server) = aws_api {
        server.stop().await;
    }
    // A hosted engine stops cleanly: answers in flight are written, builds
    // are stopped and recorded.
    backend.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// Opens the backend again after it went away (it may host the engine
/// this time, when the process that hosted it has gone).
pub type Reopen =
    std::sync::Arc<dyn Fn() -> BoxFuture<'static, Result<Shared, String>> + Send + Sync>;

/// What the loop itself handles (not the App): connection changes and
/// data the App holds as plain fields.
enum Ctl {
    /// The event stream ended: the backend has gone.
    Lost,
    Reconnected(Shared),
    /// Pipeline declarations, as the backend has them.
    Defs(Vec<(String, crate::model::pipeline::Pipeline)>),
    /// A read failed: say so (the screen keeps what it had).
    Failed {
        what: String,
        error: ApiError,
    },
}

/// The TUI's event loop, over any terminal backend and any pipedeck
/// backend: the real terminal in [`run`], a `TestBackend` and
/// [`backend::fake::Fake`] in tests.
pub struct Loop {
    pub backend: std::sync::Arc<std::sync::RwLock<Shared>>,
    pub catalogue: std::sync::Arc<crate::diagnose::Catalogue>,
    /// How to reconnect when the backend goes; `None`: stay disconnected.
    pub reopen: Option<Reopen>,
    /// Start an execution of this pipeline when it has none yet.
    pub start_first: Option<String>,
    /// A reconnection is under way.
    pub reconnecting: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn current(b: &std::sync::RwLock<Shared>) -> Shared {
    match b.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

impl Loop {
    /// Runs until the user quits (or `rx` closes); gives back the backend
    /// that is current at the end, for the caller to close.
    pub async fn run<T: ratatui::backend::Backend>(
        self,
        terminal: &mut Terminal<T>,
        mut app: App,
        tx: mpsc::UnboundedSender<Msg>,
        mut rx: mpsc::UnboundedReceiver<Msg>,
    ) -> (Result<()>, Shared) {
        let (ctx, mut crx) = mpsc::unbounded_channel::<Ctl>();
        let runner = Runner {
            catalogue: self.catalogue.clone(),
            backend: self.backend.clone(),
            tx: tx.clone(),
            ctl: ctx.clone(),
            refreshes: Default::default(),
            versions: std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new())),
        };
        bridge(current(&self.backend), tx.clone(), ctx.clone());
        runner.run(Effect::Refresh);
        if let Some(name) = self.start_first.clone() {
            start_first_run(current(&self.backend), name, tx.clone());
        }
        let result = self
            .event_loop(terminal, &mut app, &runner, &mut rx, &mut crx, &ctx, &tx)
            .await;
        (result, current(&self.backend))
    }

    #[allow(clippy::too_many_arguments)]
    async fn event_loop<T: ratatui::backend::Backend>(
        &self,
        terminal: &mut Terminal<T>,
        app: &mut App,
        runner: &Runner,
        rx: &mut mpsc::UnboundedReceiver<Msg>,
        crx: &mut mpsc::UnboundedReceiver<Ctl>,
        ctx: &mpsc::UnboundedSender<Ctl>,
        tx: &mpsc::UnboundedSender<Msg>,
    ) -> Result<()> {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut spin = tokio::time::interval(Duration::from_millis(200));
        spin.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // SIGTERM and SIGHUP (the terminal went away) end the UI like `q`:
        // the engine this process hosts stops cleanly.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        // Frames are drawn when something visible changed (`take_redraw`),
        // at most one per FRAME: a burst of events makes one frame, an idle
        // screen none.
        const FRAME: Duration = Duration::from_millis(16);
        let mut last_draw = tokio::time::Instant::now();
        terminal
            .draw(|f| view::draw(f, app))
            .map_err(|e| eyre!("{e}"))?;
        app.take_redraw();
        let mut deferred = false;
        loop {
            let spinning = app.spinning();
            let next_frame = last_draw + FRAME;
            let first = tokio::select! {
                _ = term.recv() => break,
                _ = hup.recv() => break,
                m = rx.recv() => match m { Some(m) => Some(m), None => break },
                c = crx.recv() => {
                    if let Some(c) = c {
                        self.control(c, app, runner, ctx, tx);
                        app.needs_redraw = true;
                    }
                    None
                }
                _ = tick.tick() => Some(Msg::Tick),
                _ = spin.tick(), if spinning => Some(Msg::Tick),
                _ = tokio::time::sleep_until(next_frame), if deferred => None,
            };
            let mut batch: Vec<Msg> = first.into_iter().collect();
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
            if deferred || app.needs_redraw {
                if tokio::time::Instant::now() < next_frame {
                    deferred = true;
                    continue;
                }
                deferred = false;
                if app.take_redraw() {
                    terminal
                        .draw(|f| view::draw(f, app))
                        .map_err(|e| eyre!("{e}"))?;
                    last_draw = tokio::time::Instant::now();
                }
            }
        }
        Ok(())
    }

    fn control(
        &self,
        c: Ctl,
        app: &mut App,
        runner: &Runner,
        ctx: &mpsc::UnboundedSender<Ctl>,
        tx: &mpsc::UnboundedSender<Msg>,
    ) {
        match c {
            Ctl::Lost => {
                app.engine = "engine gone — reconnecting…".to_owned();
                app.toast(
                    "the engine went away; the screens show what it last said".to_owned(),
                    true,
                );
                use std::sync::atomic::Ordering;
                if let Some(reopen) = self.reopen.clone()
                    && !self.reconnecting.swap(true, Ordering::SeqCst)
                {
                    let ctx = ctx.clone();
                    let flag = self.reconnecting.clone();
                    // Every half second until it answers again (this
                    // process may host the engine this time).
                    tokio::spawn(async move {
                        loop {
                            match reopen().await {
                                Ok(b) => {
                                    flag.store(false, Ordering::SeqCst);
                                    let _ = ctx.send(Ctl::Reconnected(b));
                                    return;
                                }
                                Err(e) => tracing::debug!(error = %e, "reconnecting"),
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    });
                }
            }
            Ctl::Reconnected(b) => {
                app.engine = b.describe();
                app.hosted = b.hosted();
                let hosted = if b.hosted() {
                    " (this process hosts the engine now)"
                } else {
                    ""
                };
                app.toast(format!("reconnected{hosted}"), false);
                if let Ok(mut g) = self.backend.write() {
                    *g = b.clone();
                }
                bridge(b, tx.clone(), ctx.clone());
                runner.run(Effect::Refresh);
            }
            Ctl::Defs(defs) => app.defs.extend(defs),
            Ctl::Failed { what, error } => {
                if what.starts_with("refresh") {
                    app.stale = Some(format!("{what} failed ({})", error.code));
                }
                app.toast(
                    format!("{what} failed: {}: {}", error.code, error.message),
                    true,
                );
            }
        }
    }
}

/// Forwards the backend's events into the loop; a lagged subscription is
/// `Msg::Engine(None)` (read everything again), the end of the stream is
/// [`Ctl::Lost`].
fn bridge(b: Shared, tx: mpsc::UnboundedSender<Msg>, ctl: mpsc::UnboundedSender<Ctl>) {
    tokio::spawn(async move {
        let mut events = match b.subscribe().await {
            Ok(e) => e,
            Err(_) => {
                let _ = ctl.send(Ctl::Lost);
                return;
            }
        };
        while let Some(e) = events.next().await {
            let m = match e {
                crate::api::EngineEvent::Resync { .. } => Msg::Engine(None),
                e => Msg::Engine(Some(e)),
            };
            if tx.send(m).is_err() {
                return;
            }
        }
        let _ = ctl.send(Ctl::Lost);
    });
}

/// The demo's first run: start the pipeline when it has no execution yet.
fn start_first_run(b: Shared, name: String, tx: mpsc::UnboundedSender<Msg>) {
    tokio::spawn(async move {
        let none = matches!(
            b.call(Request::ListPipelineExecutions { pipeline_name: name.clone(), max_results: Some(1) ,    next_token: None,}).await,
            Ok(Reply::Executions { executions, .. }) if executions.is_empty()
        );
        if none {
            let r = b
                .call(Request::StartPipelineExecution {
                    pipeline_name: name.clone(),
                    variables: Default::default(),
                    source_revisions: Vec::new(),
                })
                .await;
            let _ = tx.send(Msg::Done {
                label: format!("first run of {name}"),
                result: r.map(|_| "started".into()).map_err(|e| e.to_string()),
            });
        }
    });
}

/// Carries out effects on tasks; results come back as messages.
#[derive(Clone)]
struct Runner {
    catalogue: std::sync::Arc<crate::diagnose::Catalogue>,
    backend: std::sync::Arc<std::sync::RwLock<Shared>>,
    tx: mpsc::UnboundedSender<Msg>,
    ctl: mpsc::UnboundedSender<Ctl>,
    /// What is to be read again, and whether a reader runs.
    refreshes: std::sync::Arc<std::sync::Mutex<Refreshes>>,
    /// The definition version the App has, by pipeline.
    versions: std::sync::Arc<std::sync::Mutex<BTreeMap<String, u32>>>,
}

use std::collections::{BTreeMap, BTreeSet};

/// Refreshes asked for while one runs are merged: one reader at a time
/// reads what was asked since it last looked, so a burst of events costs
/// one read of each thing they named.
#[derive(Default)]
struct Refreshes {
    running: bool,
    full: bool,
    pipelines: BTreeSet<String>,
    envs: bool,
}

impl Refreshes {
    fn is_empty(&self) -> bool {
        !self.full && !self.envs && self.pipelines.is_empty()
    }
}

impl Runner {
    fn refreshes(&self) -> std::sync::MutexGuard<'_, Refreshes> {
        match self.refreshes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Asks for a refresh; starts the reader unless it runs.
    fn refresh(&self, ask: impl FnOnce(&mut Refreshes)) {
        {
            let mut r = self.refreshes();
            ask(&mut r);
            if r.running {
                return;
            }
            r.running = true;
        }
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let todo = {
                    let mut r = me.refreshes();
                    if r.is_empty() {
                        r.running = false;
                        return;
                    }
                    std::mem::replace(
                        &mut *r,
                        Refreshes {
                            running: true,
                            ..Refreshes::default()
                        },
                    )
                };
                me.read_again(todo).await;
            }
        });
    }

    async fn read_again(&self, todo: Refreshes) {
        let b = current(&self.backend);
        if todo.full {
            match snapshot(&*b).await {
                Ok(s) => {
                    self.fetch_definitions(&*b, &s).await;
                    let _ = self.tx.send(Msg::Snapshot(s));
                }
                Err(e) => self.failed("refresh", e),
            }
            return;
        }
        for name in todo.pipelines {
            match pipeline_snapshot(&*b, &name).await {
                Ok((state, executions)) => {
                    let _ = self.tx.send(Msg::Pipeline {
                        name,
                        state,
                        executions,
                    });
                }
                Err(e) => self.failed(&format!("refreshing {name}"), e),
            }
        }
        if todo.envs {
            match b.call(Request::ListEnvironments).await {
                Ok(Reply::Environments { environments }) => {
                    let _ = self.tx.send(Msg::Environments(environments));
                }
                Ok(_) => {}
                Err(e) => self.failed("refreshing the environments", e),
            }
        }
    }

    fn failed(&self, what: &str, error: ApiError) {
        let _ = self.ctl.send(Ctl::Failed {
            what: what.to_owned(),
            error,
        });
    }

    fn run(&self, fx: Effect) {
        let me = self.clone();
        let b = current(&self.backend);
        match fx {
            Effect::Refresh => self.refresh(|p| p.full = true),
            Effect::RefreshPipeline(name) => self.refresh(|p| {
                p.pipelines.insert(name);
            }),
            Effect::RefreshEnvironments => self.refresh(|p| p.envs = true),
            Effect::Op { label, request } => {
                tokio::spawn(async move {
                    let result = match b.call(request).await {
                        Ok(Reply::Started {
                            pipeline_execution_id,
                        }) => Ok(format!(
                            "execution {} started",
                            crate::api::short_id(&pipeline_execution_id, 8)
                        )),
                        Ok(Reply::RolledBack {
                            pipeline_execution_id,
                        }) => Ok(format!(
                            "rollback execution {} started",
                            crate::api::short_id(&pipeline_execution_id, 8)
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
                    match b.action_executions(&pipeline, &execution).await {
                        Ok(actions) => {
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
                        Err(e) => me.failed("reading the execution's actions", e),
                    }
                });
            }
            Effect::Audit => {
                tokio::spawn(async move {
                    match b.call(Request::lookup_events(500)).await {
                        Ok(Reply::Events { events, .. }) => {
                            let _ = me.tx.send(Msg::Audit(events));
                        }
                        Ok(other) => me.failed(
                            "reading the audit trail",
                            ApiError::new("InternalError", format!("unexpected {other:?}")),
                        ),
                        Err(e) => me.failed("reading the audit trail", e),
                    }
                });
            }
            Effect::ReadLog { aeid, start, count } => {
                tokio::spawn(async move {
                    let log = LogRef::parse(&aeid);
                    let start = (start != u64::MAX).then_some(start);
                    let limit = u32::try_from(count).unwrap_or(u32::MAX);
                    let page = match b.read_log(&log, start, limit).await {
                        Ok(p) => p,
                        Err(e) => {
                            // A log not written yet is empty, not an error.
                            if e.code != "ResourceNotFoundException" {
                                me.failed(&format!("reading log {aeid}"), e);
                            }
                            crate::api::LogPage::default()
                        }
                    };
                    let _ = me.tx.send(Msg::LogPage {
                        aeid,
                        total: page.total,
                        start: page.start,
                        lines: page.lines,
                        times: page.times,
                    });
                });
            }
            Effect::SearchLog {
                aeid,
                pattern,
                regex,
            } => {
                tokio::spawn(async move {
                    let matches = match b.search_log(&LogRef::parse(&aeid), &pattern, regex).await {
                        Ok(m) => m,
                        Err(e) => {
                            me.failed(&format!("searching for `{pattern}`"), e);
                            Vec::new()
                        }
                    };
                    let _ = me.tx.send(Msg::Matches { aeid, matches });
                });
            }
            Effect::Diagnose { action, execution } => {
                tokio::spawn(async move {
                    let audit = match b.call(Request::lookup_events(1000)).await {
                        Ok(Reply::Events { events, .. }) => events,
                        Ok(_) => Vec::new(),
                        Err(e) => {
                            me.failed("reading the audit trail for the diagnosis", e);
                            Vec::new()
                        }
                    };
                    let aeid = action.action_execution_id.clone();
                    let log = match b.read_whole_log(&LogRef::action(&aeid)).await {
                        Ok(l) => l,
                        Err(e) if e.code == "ResourceNotFoundException" => Vec::new(),
                        Err(e) => {
                            me.failed("reading the log for the diagnosis", e);
                            Vec::new()
                        }
                    };
                    let cat = me.catalogue.clone();
                    let findings = tokio::task::spawn_blocking(move || {
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

    /// Reads the declarations of pipelines that are new or changed.
    async fn fetch_definitions(&self, b: &dyn Backend, s: &Snapshot) {
        let wanted: Vec<(String, u32)> = {
            let known = match self.versions.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            s.pipelines
                .iter()
                .filter(|p| known.get(&p.name) != Some(&p.version))
                .map(|p| (p.name.clone(), p.version))
                .collect()
        };
        let mut defs = Vec::new();
        for (name, version) in wanted {
            match b
                .call(Request::GetPipeline {
                    pipeline_name: name.clone(),
                    pipeline_version: None,
                })
                .await
            {
                Ok(Reply::Pipeline { pipeline, .. }) => {
                    if let Ok(mut g) = self.versions.lock() {
                        g.insert(name.clone(), version);
                    }
                    defs.push((name, *pipeline));
                }
                Ok(_) => {}
                Err(e) => self.failed(&format!("reading pipeline {name}"), e),
            }
        }
        if !defs.is_empty() {
            let _ = self.ctl.send(Ctl::Defs(defs));
        }
    }
}

/// One pipeline's state and its newest executions.
async fn pipeline_snapshot(
    b: &dyn Backend,
    name: &str,
) -> Result<(crate::api::PipelineState, Vec<crate::api::ExecutionSummary>), ApiError> {
    let state = match b
        .call(Request::GetPipelineState {
            pipeline_name: name.to_owned(),
        })
        .await?
    {
        Reply::State { state } => state,
        other => {
            return Err(ApiError::new(
                "InternalError",
                format!("GetPipelineState: unexpected {other:?}"),
            ));
        }
    };
    let executions = match b.call(Request::list_executions(name, 50)).await? {
        Reply::Executions { executions, .. } => executions,
        _ => Vec::new(),
    };
    Ok((state, executions))
}

async fn snapshot(b: &dyn Backend) -> Result<Snapshot, ApiError> {
    let Reply::Pipelines { pipelines, .. } = b.call(Request::list_pipelines()).await? else {
        return Ok(Snapshot::default());
    };
    let mut s = Snapshot {
        pipelines,
        ..Snapshot::default()
    };
    for p in s.pipelines.clone() {
        let (state, executions) = pipeline_snapshot(b, &p.name).await?;
        s.states.insert(p.name.clone(), state);
        s.executions.insert(p.name.clone(), executions);
    }
    if let Reply::Environments { environments } = b.call(Request::ListEnvironments).await? {
        s.envs = environments;
    }
    Ok(s)
}
