//! The TUI's one state owner. `update` takes a message (a key, an engine
//! event, a loaded result), changes the state without I/O, and returns the
//! effects the runtime should carry out (engine calls, log reads).
//!
//! Each screen is a component in `screens/`: its state, its commands and its
//! drawing in one file. `App` owns them all and dispatches: keys go to the
//! open modal, then to an active text input, then to the focused screen;
//! messages with results go to the screen they belong to. The modals, the
//! header and footer, and the shared widgets live beside the screens.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyEvent, MouseEvent, MouseEventKind};

use super::keymap::{Command, Keymap};
use super::theme::Theme;
use crate::api::{
    ActionExecutionDetail, AuditEvent, EngineEvent, ExecutionSummary, PipelineState,
    PipelineSummary, Request,
};

// The components. They are declared here rather than in `tui/mod.rs` (the
// runtime's file); paths name them as `tui::app::<component>`.
#[path = "chrome.rs"]
pub mod chrome;
#[path = "modals.rs"]
pub mod modals;
#[path = "palette.rs"]
pub mod palette;
#[path = "prompts.rs"]
pub mod prompts;
#[path = "redraw.rs"]
mod redraw;
#[path = "screens/mod.rs"]
pub mod screens;
#[path = "widgets.rs"]
pub mod widgets;

pub use chrome::Toast;
pub use modals::{Modal, Pending};
pub use screens::Screen;
pub use screens::approvals::PendingApproval;
pub use screens::log_lines::{ERROR_PATTERN, LogScan};
pub use screens::logs::LogView;
pub use screens::pipeline::Pane;

/// Everything the engine told us, as of the last refresh.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub pipelines: Vec<PipelineSummary>,
    pub states: BTreeMap<String, PipelineState>,
    pub executions: BTreeMap<String, Vec<ExecutionSummary>>,
    pub envs: Vec<crate::api::env::EnvironmentSummary>,
}

/// What the runtime must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Reload everything: pipelines, states, executions, environments.
    Refresh,
    /// Reload one pipeline's state and executions (an event named it).
    RefreshPipeline(String),
    /// Reload the environments.
    RefreshEnvironments,
    /// A mutating request; its outcome comes back as `Msg::Done`.
    Op {
        label: String,
        request: Request,
    },
    /// The actions of one execution (to draw the graph as it ran).
    ExecActions {
        pipeline: String,
        execution: String,
    },
    Audit,
    /// Diagnose a failed action (its log, record and the audit trail).
    Diagnose {
        action: Box<ActionExecutionDetail>,
        execution: Option<Box<ExecutionSummary>>,
    },
    ReadLog {
        aeid: String,
        start: u64,
        count: u64,
    },
    /// Lines of a log the engine's search finds, read with their text.
    ScanLog {
        aeid: String,
        scan: LogScan,
    },
    /// Commits of an execution's source over a range (what an approval
    /// lets through, what a retry would not release): `Msg::Commits`.
    Commits {
        pipeline: String,
        execution: String,
        range: crate::api::types::CommitRange,
    },
    /// Put text on the terminal's clipboard (OSC 52).
    Copy(String),
    Bell,
    Quit,
}

#[allow(clippy::large_enum_variant)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    Tick,
    /// `None`: events were lost; resync from the store.
    Engine(Option<EngineEvent>),
    Snapshot(Snapshot),
    /// One pipeline's state and executions, read again.
    Pipeline {
        name: String,
        state: PipelineState,
        executions: Vec<ExecutionSummary>,
    },
    /// The environments, read again.
    Environments(Vec<crate::api::env::EnvironmentSummary>),
    ExecActions(String, Vec<ActionExecutionDetail>),
    Audit(Vec<AuditEvent>),
    Done {
        label: String,
        result: Result<String, String>,
    },
    LogPage {
        aeid: String,
        total: u64,
        start: u64,
        lines: Vec<String>,
        times: Vec<Option<u64>>,
    },
    /// A scan's candidate lines with their text, as of `total` lines
    /// (`truncated`: more were found than are kept).
    Matches {
        aeid: String,
        scan: LogScan,
        total: u64,
        lines: Vec<(u64, String)>,
        truncated: bool,
    },
    Diagnosis {
        aeid: String,
        findings: Vec<crate::diagnose::Finding>,
    },
    Commits {
        execution: String,
        range: crate::api::types::CommitRange,
        result: Result<crate::api::types::SourceCommits, crate::api::ApiError>,
    },
}

pub struct App {
    pub workspace: String,
    pub engine: String,
    pub hosted: bool,
    pub readonly: bool,
    pub bell: bool,
    pub theme: Theme,
    pub keymap: Keymap,
    pub protected: Vec<String>,
    /// Approvals of protected stages and environments need the name typed
    /// too (`protected_approvals = true`).
    pub protected_approvals: bool,
    /// `r` waits for the branch's head before it retries (see
    /// `prompts::RetryCheck`).
    pub retry_check: Option<prompts::RetryCheck>,
    /// The pipeline definitions (for runOrder and artifacts).
    pub defs: BTreeMap<String, crate::model::pipeline::Pipeline>,
    pub snap: Snapshot,
    pub screen: Screen,
    pub back: Vec<Screen>,
    /// The filter typed after `/`, shared by the Pipelines and Audit screens.
    pub filter: String,
    pub filter_editing: bool,
    /// The pipeline the Pipeline screen shows.
    pub pipeline: Option<String>,
    /// The selected stage and action of the graph (the Diagnosis screen
    /// starts from them too).
    pub sel_stage: usize,
    pub sel_action: usize,
    /// Findings per action execution id (computed on demand), and the ones
    /// being computed: the graph and the Diagnosis screen show them.
    pub diagnoses: BTreeMap<String, Vec<crate::diagnose::Finding>>,
    pub diagnosing: std::collections::BTreeSet<String>,
    // The screens' own state.
    pub pipelines: screens::pipelines::PipelinesView,
    pub graph: screens::pipeline::PipelineView,
    pub logs: LogView,
    pub approvals: screens::approvals::ApprovalsView,
    pub audit: screens::audit::AuditView,
    pub envs: screens::environments::EnvironmentsView,
    pub diagnosis: screens::diagnosis::DiagnosisView,
    pub modal: Option<Modal>,
    /// The command palette's history and completion.
    pub palette: palette::PaletteState,
    pub toasts: Vec<Toast>,
    pub now: SystemTime,
    pub spinner: usize,
    pub size: (u16, u16),
    pub quit: bool,
    /// Something visible changed since the last frame (see `redraw.rs`):
    /// `update` sets it, the loop clears it when it draws.
    pub needs_redraw: bool,
    /// The last refresh failed: what is on screen is older than it looks
    /// (the header says so until a refresh succeeds).
    pub stale: Option<String>,
    /// The engine could not write to its store (disk full): said in the
    /// header until it has recorded everything again.
    pub store_problem: Option<String>,
    /// The backend says updates are slow or stale (AWS throttling, an
    /// account that does not answer): in the footer until it says normal.
    pub backend_note: Option<String>,
}

impl App {
    pub fn new(
        workspace: String,
        engine: String,
        hosted: bool,
        theme: Theme,
        keymap: Keymap,
    ) -> App {
        App {
            workspace,
            engine,
            hosted,
            readonly: false,
            bell: true,
            theme,
            keymap,
            protected: Vec::new(),
            protected_approvals: false,
            retry_check: None,
            defs: BTreeMap::new(),
            snap: Snapshot::default(),
            screen: Screen::Pipelines,
            back: Vec::new(),
            filter: String::new(),
            filter_editing: false,
            pipeline: None,
            sel_stage: 0,
            sel_action: 0,
            diagnoses: BTreeMap::new(),
            diagnosing: std::collections::BTreeSet::new(),
            pipelines: Default::default(),
            graph: Default::default(),
            logs: LogView::default(),
            approvals: Default::default(),
            audit: Default::default(),
            envs: Default::default(),
            diagnosis: Default::default(),
            modal: None,
            palette: Default::default(),
            toasts: Vec::new(),
            now: SystemTime::now(),
            spinner: 0,
            size: (80, 24),
            quit: false,
            needs_redraw: true,
            stale: None,
            backend_note: None,
            store_problem: None,
        }
    }

    pub fn toast(&mut self, text: impl Into<String>, error: bool) {
        self.toasts.push(Toast {
            text: text.into(),
            error,
            until: self.now + Duration::from_secs(if error { 8 } else { 4 }),
        });
        if self.toasts.len() > 3 {
            self.toasts.remove(0);
        }
    }

    pub fn running(&self) -> usize {
        self.snap
            .pipelines
            .iter()
            .filter_map(|p| p.latest_execution.as_ref())
            .filter(|e| !e.status.is_terminal())
            .count()
    }

    pub fn state(&self) -> Option<&PipelineState> {
        self.snap.states.get(self.pipeline.as_deref()?)
    }

    pub fn executions(&self) -> &[ExecutionSummary] {
        self.pipeline
            .as_deref()
            .and_then(|p| self.snap.executions.get(p))
            .map_or(&[], Vec::as_slice)
    }

    /// The action detail the graph shows for (stage, action).
    pub fn action_detail(&self, stage: usize, action: usize) -> Option<ActionExecutionDetail> {
        let st = self.state()?;
        let s = st.stage_states.get(stage)?;
        let a = s.action_states.get(action)?;
        match &self.graph.viewed {
            Some((_, list)) => list
                .iter()
                .find(|x| x.stage_name == s.stage_name && x.action_name == a.action_name)
                .cloned(),
            None => a.latest_execution.clone(),
        }
    }

    pub(crate) fn go(&mut self, s: Screen) {
        if self.screen != s {
            self.back.push(self.screen);
            self.screen = s;
        }
    }

    pub(crate) fn go_back(&mut self) {
        if let Some(s) = self.back.pop() {
            self.screen = s;
        }
    }

    /// Handles one message; sets `needs_redraw` when it changed what is
    /// on screen.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        if self.changes_view(&msg) {
            self.needs_redraw = true;
        }
        self.handle(msg)
    }

    fn handle(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Tick => {
                // Replica output has no log events: follow it by the clock.
                let env_log = self.screen == Screen::Logs && self.logs.aeid.starts_with("env/");
                self.tick(!env_log);
                if self.screen == Screen::Environments {
                    vec![Effect::RefreshEnvironments]
                } else if env_log && self.logs.follow {
                    vec![self.logs.read_tail()]
                } else {
                    Vec::new()
                }
            }
            Msg::Resize(w, h) => {
                self.size = (w, h);
                Vec::new()
            }
            Msg::Engine(ev) => self.on_engine(ev),
            Msg::Snapshot(mut s) => {
                self.stale = None;
                self.envs.record(&s.envs);
                crate::api::env::promotion_order(&mut s.envs, self.defs.values());
                self.snap = s;
                if self.pipeline.is_none() {
                    self.pipeline = self.snap.pipelines.first().map(|p| p.name.clone());
                }
                self.clamp();
                screens::pipeline::follow_activity(self);
                self.auto_diagnose()
            }
            Msg::Pipeline {
                name,
                state,
                executions,
            } => {
                self.stale = None;
                self.patch_pipeline(name, state, executions);
                self.clamp();
                screens::pipeline::follow_activity(self);
                self.auto_diagnose()
            }
            Msg::Environments(mut envs) => {
                self.envs.record(&envs);
                crate::api::env::promotion_order(&mut envs, self.defs.values());
                self.snap.envs = envs;
                self.clamp();
                Vec::new()
            }
            Msg::Diagnosis { aeid, findings } => {
                self.diagnosing.remove(&aeid);
                self.diagnoses.insert(aeid, findings);
                Vec::new()
            }
            Msg::ExecActions(exec, list) => {
                self.graph.viewed = Some((exec, list));
                Vec::new()
            }
            Msg::Audit(list) => {
                self.audit.on_loaded(list);
                Vec::new()
            }
            Msg::Done { label, result } => {
                match result {
                    Ok(m) => self.toast(format!("{label}: {m}"), false),
                    Err(e) => self.toast(format!("{label}: {e}"), true),
                }
                vec![Effect::Refresh]
            }
            Msg::LogPage {
                aeid,
                total,
                start,
                lines,
                times,
            } => {
                self.logs.on_page(aeid, total, start, lines, times);
                Vec::new()
            }
            Msg::Matches {
                aeid,
                scan,
                total,
                lines,
                truncated,
            } => {
                if truncated && aeid == self.logs.aeid {
                    self.toast(
                        format!(
                            "only the first {} lines found are shown and walked",
                            lines.len()
                        ),
                        false,
                    );
                }
                screens::log_lines::on_scanned(self, aeid, scan, total, lines)
            }
            Msg::Commits {
                execution,
                range,
                result,
            } => self.on_commits(execution, range, result),
            Msg::Mouse(m) => self.on_mouse(m),
            Msg::Key(k) => self.on_key(k),
        }
    }

    /// What an event asks to read again: only what it names (that
    /// pipeline, the environments); a lost event, or one that names
    /// nothing we can place, reads everything.
    fn on_engine(&mut self, ev: Option<EngineEvent>) -> Vec<Effect> {
        let mut fx = Vec::new();
        match ev {
            Some(EngineEvent::LogAppended {
                action_execution_id,
                lines,
            }) => {
                if self.screen == Screen::Logs && action_execution_id == self.logs.aeid {
                    return self.logs.on_appended(lines);
                }
                return Vec::new();
            }
            Some(EngineEvent::Audit { .. }) => {
                if self.screen == Screen::Audit {
                    fx.push(Effect::Audit);
                }
                return fx;
            }
            Some(EngineEvent::BackendStatus { description, note }) => {
                self.engine = description;
                self.backend_note = note;
                return Vec::new();
            }
            Some(EngineEvent::EnvironmentChanged { .. }) => {
                return vec![Effect::RefreshEnvironments];
            }
            Some(EngineEvent::ExecutionChanged { execution }) => {
                let failed = execution.status == crate::api::types::ExecutionStatus::Failed;
                if self.bell && failed {
                    fx.push(Effect::Bell);
                }
                // A failure reads everything again, the engine's own
                // health too (a full disk fails executions).
                fx.push(if failed || self.store_problem.is_some() {
                    Effect::Refresh
                } else {
                    Effect::RefreshPipeline(execution.pipeline_name)
                });
            }
            Some(EngineEvent::StageChanged { pipeline_name, .. })
            | Some(EngineEvent::TransitionChanged { pipeline_name, .. }) => {
                fx.push(Effect::RefreshPipeline(pipeline_name));
            }
            Some(EngineEvent::ActionChanged { action }) => {
                if action.action_execution_id == self.logs.aeid {
                    self.logs.detail = Some(action.clone());
                }
                fx.push(self.refresh_of_execution(&action.pipeline_execution_id));
            }
            Some(EngineEvent::ApprovalPending { action }) => {
                if self.bell {
                    fx.push(Effect::Bell);
                }
                fx.push(self.refresh_of_execution(&action.pipeline_execution_id));
            }
            // A new declaration: everything about it is read again (its
            // definition comes with a full refresh).
            Some(EngineEvent::PipelineUpdated { .. }) | Some(EngineEvent::Resync { .. }) | None => {
                fx.push(Effect::Refresh)
            }
        }
        if let Some((exec, _)) = &self.graph.viewed
            && let Some(p) = &self.pipeline
        {
            fx.push(Effect::ExecActions {
                pipeline: p.clone(),
                execution: exec.clone(),
            });
        }
        fx
    }

    /// The refresh of the pipeline an execution belongs to, if we know it.
    fn refresh_of_execution(&self, execution: &str) -> Effect {
        self.snap
            .executions
            .iter()
            .find(|(_, list)| list.iter().any(|e| e.pipeline_execution_id == execution))
            .map(|(name, _)| name.clone())
            .or_else(|| {
                self.snap.states.iter().find_map(|(name, st)| {
                    st.stage_states
                        .iter()
                        .any(|s| {
                            s.latest_execution
                                .as_ref()
                                .is_some_and(|l| l.pipeline_execution_id == execution)
                                || s.inbound_executions
                                    .iter()
                                    .any(|i| i.pipeline_execution_id == execution)
                        })
                        .then(|| name.clone())
                })
            })
            .map_or(Effect::Refresh, Effect::RefreshPipeline)
    }

    /// One pipeline read again: its state, executions and the summary line
    /// derived from them.
    fn patch_pipeline(
        &mut self,
        name: String,
        state: PipelineState,
        executions: Vec<ExecutionSummary>,
    ) {
        if let Some(p) = self.snap.pipelines.iter_mut().find(|p| p.name == name) {
            p.latest_execution = executions.first().cloned();
            p.pending_approvals = state
                .stage_states
                .iter()
                .flat_map(|s| s.action_states.iter())
                .filter(|a| {
                    a.latest_execution
                        .as_ref()
                        .is_some_and(|x| x.token.is_some())
                })
                .count() as u32;
            p.version = state.pipeline_version;
        }
        self.snap.states.insert(name.clone(), state);
        self.snap.executions.insert(name, executions);
    }

    pub(crate) fn clamp(&mut self) {
        let n = self.visible_pipelines().len();
        self.pipelines.sel = self.pipelines.sel.min(n.saturating_sub(1));
        let stages = self.state().map_or(0, |s| s.stage_states.len());
        self.sel_stage = self.sel_stage.min(stages.saturating_sub(1));
        let actions = self
            .state()
            .and_then(|s| s.stage_states.get(self.sel_stage))
            .map_or(0, |s| s.action_states.len());
        self.sel_action = self.sel_action.min(actions.saturating_sub(1));
        let execs = self.executions().len();
        self.graph.sel_exec = self.graph.sel_exec.min(execs.saturating_sub(1));
        let appr = self.approval_rows().len();
        self.approvals.sel = self.approvals.sel.min(appr.saturating_sub(1));
    }

    fn on_mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        let cmd = match m.kind {
            MouseEventKind::ScrollDown => Command::Down,
            MouseEventKind::ScrollUp => Command::Up,
            MouseEventKind::Down(_) => {
                // Click to select a row in the list screens (rows start
                // below the header, the block border and the table header).
                let row = usize::from(m.row.saturating_sub(3));
                match self.screen {
                    Screen::Pipelines => self.pipelines.sel = row,
                    Screen::Approvals => self.approvals.sel = row,
                    Screen::Audit => self.audit.sel = row,
                    Screen::Pipeline => {
                        // The body lies between the header and the footer.
                        let body = ratatui::layout::Rect::new(
                            0,
                            1,
                            self.size.0,
                            self.size.1.saturating_sub(2),
                        );
                        match screens::pipeline::hit(self, body, m.column, m.row) {
                            Some(screens::pipeline::Hit::Execution(i)) => {
                                self.graph.pane = Pane::Executions;
                                self.graph.sel_exec = i;
                            }
                            Some(screens::pipeline::Hit::Action(i, j)) => {
                                self.graph.pane = Pane::Graph;
                                self.graph.pinned = true;
                                self.sel_stage = i;
                                self.sel_action = j;
                            }
                            None => {}
                        }
                    }
                    _ => {}
                }
                self.clamp();
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        let n = if self.screen == Screen::Logs { 3 } else { 1 };
        let mut fx = Vec::new();
        for _ in 0..n {
            fx.extend(self.command(cmd));
        }
        fx
    }

    fn on_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        if let Some(m) = self.modal.clone() {
            return self.modal_key(m, k);
        }
        if self.filter_editing {
            chrome::on_filter_key(self, k);
            return Vec::new();
        }
        if self.logs.search_input.is_some() {
            return self.logs.on_search_key(k);
        }
        match self.keymap.command(self.screen.scope(), &k) {
            Some(c) => self.command(c),
            None => Vec::new(),
        }
    }

    /// A command from the keymap.
    pub fn command(&mut self, c: Command) -> Vec<Effect> {
        if self.readonly && c.mutates() {
            self.toast(
                format!(
                    "read-only mode: `{}` is disabled (started with --readonly)",
                    c.describe()
                ),
                true,
            );
            return Vec::new();
        }
        match c {
            Command::Quit => {
                if self.hosted && self.running() > 0 {
                    self.modal = Some(Modal::QuitConfirm {
                        running: self.running(),
                    });
                    Vec::new()
                } else {
                    self.quit = true;
                    vec![Effect::Quit]
                }
            }
            Command::Help => {
                self.modal = Some(Modal::Help);
                Vec::new()
            }
            Command::Palette => {
                self.modal = Some(Modal::Palette(String::new()));
                Vec::new()
            }
            Command::Back => {
                if self.screen == Screen::Logs && self.logs.only_matches {
                    self.logs.only_matches = false;
                } else if self.screen == Screen::Logs && self.logs.search.is_some() {
                    self.logs.search = None;
                    self.logs.matches.clear();
                    self.logs.match_lines.clear();
                } else if self.screen == Screen::Pipeline && self.graph.viewed.is_some() {
                    self.graph.viewed = None;
                } else if !self.filter.is_empty() {
                    self.filter.clear();
                } else {
                    self.go_back();
                }
                Vec::new()
            }
            Command::Approvals => {
                self.go(Screen::Approvals);
                Vec::new()
            }
            Command::Audit => {
                self.go(Screen::Audit);
                vec![Effect::Audit]
            }
            Command::Environments => {
                if self.snap.envs.is_empty() {
                    self.toast(
                        "no environments are configured: declare [environments.NAME] in the workspace's pipedeck.toml",
                        false,
                    );
                    Vec::new()
                } else {
                    self.go(Screen::Environments);
                    vec![Effect::Refresh]
                }
            }
            Command::Diagnose => self.open_diagnosis(),
            _ => match self.screen {
                Screen::Pipelines => screens::pipelines::on_command(self, c),
                Screen::Pipeline => screens::pipeline::on_command(self, c),
                Screen::Logs => screens::logs::on_command(self, c),
                Screen::Approvals => screens::approvals::on_command(self, c),
                Screen::Audit => screens::audit::on_command(self, c),
                Screen::Environments => screens::environments::on_command(self, c),
                Screen::Diagnosis => screens::diagnosis::on_command(self, c),
            },
        }
    }
}
