//! The terminal UI. Only this module imports ratatui and crossterm.
//!
//! One task owns the [`app::App`]. A `select!` takes input (a reader
//! thread), backend events, results of effects (tasks on the
//! [backend](crate::backend)), and timers only for what moves on screen
//! (a clock text at the precision it is shown, a spinner, a screen that
//! reads by the clock); after draining what is ready it draws once, and a
//! frame identical to the last writes nothing to the terminal. The TUI reads
//! nothing from disk itself: definitions, states, logs and the audit trail
//! all come from the backend.

pub mod app;
pub mod keymap;
mod runner;
pub mod term;
pub mod theme;
pub mod view;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use color_eyre::eyre::{Result, eyre};
use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event};
use tokio::sync::mpsc;

use ratatui::Terminal;

use self::app::{App, Effect, Msg};
use self::runner::Runner;
use crate::api::{ApiError, Reply, Request};
use crate::backend::{self, BoxFuture, OpenOptions, Shared};
use crate::config::workspace::Workspace;

pub struct Options {
    pub readonly: bool,
    pub theme: theme::Theme,
    pub keymap: keymap::Keymap,
    pub warnings: Vec<String>,
    pub protected: Vec<String>,
    /// `protected_approvals = true`: approvals of protected stages and
    /// environments need the name typed.
    pub protected_approvals: bool,
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
    let mut terminal = term::init();
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
    app.protected_approvals = opts.protected_approvals;
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
        out: None,
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
pub(crate) enum Ctl {
    /// The event stream ended: the backend has gone.
    Lost,
    Reconnected(Shared),
    /// Pipeline declarations, as the backend has them.
    Defs(Vec<(String, crate::model::pipeline::Pipeline)>),
    /// What the engine says it could not write to its store (`None`: all
    /// recorded).
    StoreProblem(Option<String>),
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
    /// Where the sequences the frames do not carry go (the bell, OSC 52
    /// clipboard writes); `None`: stdout, the terminal.
    pub out: Option<RawOut>,
}

/// A byte sink standing for the terminal (tests read it back).
pub type RawOut = std::sync::Arc<std::sync::Mutex<dyn Write + Send>>;

/// OSC 52: set the terminal's clipboard (`c`) to `text`, base64-encoded.
pub fn osc52(text: &str) -> Vec<u8> {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = b"\x1b]52;c;".to_vec();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out.push(0x07);
    out
}

pub(crate) fn current(b: &std::sync::RwLock<Shared>) -> Shared {
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
            versions: Default::default(),
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
        // Timers only for what moves on screen (see `redraw.rs`): the
        // one-second tick of a screen that reads by the clock, the spinner
        // while one turns, and the instant the next clock text changes.
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
            let polls = app.polls();
            let clock = (!polls)
                .then(|| app.next_change(std::time::SystemTime::now()))
                .flatten()
                .map(|d| tokio::time::Instant::now() + d.max(CLOCK_MIN) + CLOCK_SLACK);
            let next_frame = last_draw + FRAME;
            let first = tokio::select! {
                _ = term.recv() => break,
                _ = hup.recv() => break,
                m = rx.recv() => match m { Some(m) => Some(m), None => break },
                c = crx.recv() => {
                    if let Some(c) = c {
                        // No tick may have come for a long while: what the
                        // control changes (a toast) goes by the current time.
                        app.catch_up();
                        self.control(c, app, runner, ctx, tx);
                        app.needs_redraw = true;
                    }
                    None
                }
                _ = tick.tick(), if polls => Some(Msg::Tick),
                _ = spin.tick(), if spinning => Some(Msg::Tick),
                _ = sleep_until_some(clock), if clock.is_some() => Some(Msg::Tick),
                _ = tokio::time::sleep_until(next_frame), if deferred => None,
            };
            let mut batch: Vec<Msg> = first.into_iter().collect();
            while let Ok(m) = rx.try_recv() {
                batch.push(m);
                if batch.len() > 512 {
                    break;
                }
            }
            // Likewise for what this batch draws and the toasts it raises
            // (a tick brings the time itself).
            if !batch.is_empty() && !matches!(batch[0], Msg::Tick) {
                app.catch_up();
            }
            for m in batch {
                for fx in app.update(m) {
                    match fx {
                        Effect::Quit => {}
                        Effect::Bell => self.write_raw(b"\x07"),
                        Effect::Copy(text) => self.write_raw(&osc52(&text)),
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

    /// Bytes for the terminal outside a frame (between frames, so they
    /// never land inside one).
    fn write_raw(&self, bytes: &[u8]) {
        match &self.out {
            Some(out) => {
                let mut g = match out.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                let _ = g.write_all(bytes);
                let _ = g.flush();
            }
            None => {
                let mut o = std::io::stdout();
                let _ = o.write_all(bytes);
                let _ = o.flush();
            }
        }
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
            Ctl::Defs(defs) => {
                app.defs.extend(defs);
                // The environments' promotion order comes from them.
                crate::api::env::promotion_order(&mut app.snap.envs, app.defs.values());
            }
            Ctl::StoreProblem(p) => app.store_problem = p,
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

/// A clock wake-up at least this far off (a text due sooner waits this
/// long: never a busy loop), a little after the instant it changes (the
/// tick then reads the new text).
const CLOCK_MIN: Duration = Duration::from_millis(10);
const CLOCK_SLACK: Duration = Duration::from_millis(2);

async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
