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

use crossterm::event::{KeyCode, KeyEvent, MouseEvent, MouseEventKind};

use super::keymap::{Command, Keymap, Scope};
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
#[path = "screens/mod.rs"]
pub mod screens;
#[path = "widgets.rs"]
pub mod widgets;

pub use chrome::Toast;
pub use modals::{Modal, Pending};
pub use screens::approvals::PendingApproval;
pub use screens::logs::{ERROR_PATTERN, LogView};
pub use screens::pipeline::Pane;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Pipelines,
    Pipeline,
    Logs,
    Approvals,
    Audit,
    Environments,
    Diagnosis,
}

impl Screen {
    pub fn scope(self) -> Scope {
        match self {
            Screen::Pipelines => Scope::Pipelines,
            Screen::Pipeline => Scope::Pipeline,
            Screen::Logs => Scope::Logs,
            Screen::Approvals => Scope::Approvals,
            Screen::Audit => Scope::Audit,
            Screen::Environments => Scope::Environments,
            Screen::Diagnosis => Scope::Diagnosis,
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Screen::Pipelines => "Pipelines",
            Screen::Pipeline => "Pipeline",
            Screen::Logs => "Logs",
            Screen::Approvals => "Approvals",
            Screen::Audit => "Audit",
            Screen::Environments => "Environments",
            Screen::Diagnosis => "Diagnosis",
        }
    }
}

/// Everything the engine told us, as of the last refresh.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub pipelines: Vec<PipelineSummary>,
    pub states: BTreeMap<String, PipelineState>,
    pub executions: BTreeMap<String, Vec<ExecutionSummary>>,
    pub envs: Vec<crate::api::env::EnvironmentSummary>,
}

/// What the runtime must do for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Reload pipelines, states and executions.
    Refresh,
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
    SearchLog {
        aeid: String,
        pattern: String,
        regex: bool,
    },
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
    Matches {
        aeid: String,
        matches: Vec<u64>,
    },
    Diagnosis {
        aeid: String,
        findings: Vec<crate::diagnose::Finding>,
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
    /// The pipeline definitions (for runOrder and artifacts).
    pub defs: BTreeMap<String, crate::model::pipeline::Pipeline>,
    pub snap: Snapshot,
    pub screen: Screen,
    pub back: Vec<Screen>,
    pub sel_pipeline: usize,
    pub filter: String,
    pub filter_editing: bool,
    pub pipeline: Option<String>,
    pub pane: Pane,
    pub sel_stage: usize,
    pub sel_action: usize,
    pub sel_exec: usize,
    /// The execution the graph shows (None: the pipeline's current state).
    pub viewed: Option<(String, Vec<ActionExecutionDetail>)>,
    pub graph_scroll: usize,
    pub logs: LogView,
    pub sel_approval: usize,
    pub audit: Vec<AuditEvent>,
    pub sel_audit: usize,
    pub sel_env: usize,
    /// Findings per action execution id (computed on demand).
    pub diagnoses: BTreeMap<String, Vec<crate::diagnose::Finding>>,
    pub diagnosing: std::collections::BTreeSet<String>,
    /// The action the Diagnosis screen shows, and the selected row.
    pub diag_action: Option<ActionExecutionDetail>,
    pub sel_diag: usize,
    /// Recent (requests/s, 5xx %, p99 ms) per environment, for sparklines.
    pub env_history: BTreeMap<String, std::collections::VecDeque<(f64, f64, f64)>>,
    pub modal: Option<Modal>,
    pub toasts: Vec<Toast>,
    pub now: SystemTime,
    pub spinner: usize,
    pub size: (u16, u16),
    pub quit: bool,
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
            defs: BTreeMap::new(),
            snap: Snapshot::default(),
            screen: Screen::Pipelines,
            back: Vec::new(),
            sel_pipeline: 0,
            filter: String::new(),
            filter_editing: false,
            pipeline: None,
            pane: Pane::Graph,
            sel_stage: 0,
            sel_action: 0,
            sel_exec: 0,
            viewed: None,
            graph_scroll: 0,
            logs: LogView::default(),
            sel_approval: 0,
            audit: Vec::new(),
            sel_audit: 0,
            sel_env: 0,
            diagnoses: BTreeMap::new(),
            diagnosing: std::collections::BTreeSet::new(),
            diag_action: None,
            sel_diag: 0,
            env_history: BTreeMap::new(),
            modal: None,
            toasts: Vec::new(),
            now: SystemTime::now(),
            spinner: 0,
            size: (80, 24),
            quit: false,
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
        match &self.viewed {
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

    /// Handles one message.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Tick if self.screen == Screen::Environments => {
                self.now = SystemTime::now();
                self.spinner = self.spinner.wrapping_add(1);
                let now = self.now;
                self.toasts.retain(|t| t.until > now);
                vec![Effect::Refresh]
            }
            Msg::Tick if self.screen == Screen::Logs && self.logs.aeid.starts_with("env/") => {
                // Replica output has no log events: follow it by the clock.
                self.now = SystemTime::now();
                let now = self.now;
                self.toasts.retain(|t| t.until > now);
                if self.logs.follow {
                    vec![Effect::ReadLog {
                        aeid: self.logs.aeid.clone(),
                        start: u64::MAX,
                        count: u64::from(self.logs.height.max(10)) * 3,
                    }]
                } else {
                    Vec::new()
                }
            }
            Msg::Tick => {
                self.now = SystemTime::now();
                self.spinner = self.spinner.wrapping_add(1);
                let now = self.now;
                self.toasts.retain(|t| t.until > now);
                Vec::new()
            }
            Msg::Resize(w, h) => {
                self.size = (w, h);
                Vec::new()
            }
            Msg::Engine(ev) => self.on_engine(ev),
            Msg::Snapshot(s) => {
                for e in &s.envs {
                    let Some(m) = e.metrics else { continue };
                    let h = self.env_history.entry(e.name.clone()).or_default();
                    h.push_back((m.rps, m.error_rate, m.p99_ms));
                    while h.len() > 60 {
                        h.pop_front();
                    }
                }
                self.snap = s;
                if self.pipeline.is_none() {
                    self.pipeline = self.snap.pipelines.first().map(|p| p.name.clone());
                }
                self.clamp();
                self.auto_diagnose()
            }
            Msg::Diagnosis { aeid, findings } => {
                self.diagnosing.remove(&aeid);
                self.diagnoses.insert(aeid, findings);
                Vec::new()
            }
            Msg::ExecActions(exec, list) => {
                self.viewed = Some((exec, list));
                Vec::new()
            }
            Msg::Audit(list) => {
                self.audit = list;
                self.sel_audit = self.sel_audit.min(self.audit.len().saturating_sub(1));
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
                if aeid == self.logs.aeid {
                    self.logs.total = total;
                    self.logs.cache_start = start;
                    self.logs.cache = lines;
                    self.logs.cache_times = times;
                    if self.logs.follow {
                        self.logs.top = total.saturating_sub(u64::from(self.logs.height));
                    }
                }
                Vec::new()
            }
            Msg::Matches { aeid, matches } => {
                if aeid == self.logs.aeid {
                    self.logs.matches = matches;
                    self.logs.current = 0;
                    if let Some(&first) = self.logs.matches.iter().find(|&&m| m >= self.logs.top) {
                        self.logs.current = self
                            .logs
                            .matches
                            .iter()
                            .position(|&m| m == first)
                            .unwrap_or(0);
                        return self.log_goto(first);
                    }
                    if self.logs.matches.is_empty() {
                        self.toast("no match", true);
                    }
                }
                Vec::new()
            }
            Msg::Mouse(m) => self.on_mouse(m),
            Msg::Key(k) => self.on_key(k),
        }
    }

    fn on_engine(&mut self, ev: Option<EngineEvent>) -> Vec<Effect> {
        let mut fx = vec![Effect::Refresh];
        match ev {
            Some(EngineEvent::LogAppended {
                action_execution_id,
                lines,
            }) => {
                if self.screen == Screen::Logs && action_execution_id == self.logs.aeid {
                    self.logs.total = lines;
                    if self.logs.follow {
                        let h = u64::from(self.logs.height.max(1));
                        self.logs.top = lines.saturating_sub(h);
                        return vec![self.read_window()];
                    }
                }
                return Vec::new();
            }
            Some(EngineEvent::ApprovalPending { .. }) if self.bell => fx.push(Effect::Bell),
            Some(EngineEvent::ExecutionChanged { execution })
                if self.bell && execution.status == crate::api::types::ExecutionStatus::Failed =>
            {
                fx.push(Effect::Bell);
            }
            Some(EngineEvent::ActionChanged { action })
                if action.action_execution_id == self.logs.aeid =>
            {
                self.logs.detail = Some(action);
            }
            Some(EngineEvent::Audit { .. }) if self.screen == Screen::Audit => {
                fx.push(Effect::Audit)
            }
            _ => {}
        }
        if let Some((exec, _)) = &self.viewed
            && let Some(p) = &self.pipeline
        {
            fx.push(Effect::ExecActions {
                pipeline: p.clone(),
                execution: exec.clone(),
            });
        }
        fx
    }

    pub(crate) fn clamp(&mut self) {
        let n = self.visible_pipelines().len();
        self.sel_pipeline = self.sel_pipeline.min(n.saturating_sub(1));
        let stages = self.state().map_or(0, |s| s.stage_states.len());
        self.sel_stage = self.sel_stage.min(stages.saturating_sub(1));
        let actions = self
            .state()
            .and_then(|s| s.stage_states.get(self.sel_stage))
            .map_or(0, |s| s.action_states.len());
        self.sel_action = self.sel_action.min(actions.saturating_sub(1));
        let execs = self.executions().len();
        self.sel_exec = self.sel_exec.min(execs.saturating_sub(1));
        let appr = self.pending_approvals().len();
        self.sel_approval = self.sel_approval.min(appr.saturating_sub(1));
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
                    Screen::Pipelines => self.sel_pipeline = row,
                    Screen::Approvals => self.sel_approval = row,
                    Screen::Audit => self.sel_audit = row,
                    Screen::Pipeline if self.pane == Pane::Executions => {
                        let top = usize::from(self.size.1 / 2 + 2);
                        self.sel_exec = usize::from(m.row).saturating_sub(top);
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
            match k.code {
                KeyCode::Esc => {
                    self.filter.clear();
                    self.filter_editing = false;
                }
                KeyCode::Enter => self.filter_editing = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.clamp();
            return Vec::new();
        }
        if let Some(mut input) = self.logs.search_input.clone() {
            match k.code {
                KeyCode::Esc => self.logs.search_input = None,
                KeyCode::Enter => {
                    self.logs.search_input = None;
                    if input.is_empty() {
                        self.logs.search = None;
                        self.logs.matches.clear();
                        return Vec::new();
                    }
                    self.logs.search = Some(input.clone());
                    return vec![Effect::SearchLog {
                        aeid: self.logs.aeid.clone(),
                        pattern: input,
                        regex: false,
                    }];
                }
                KeyCode::Backspace => {
                    input.pop();
                    self.logs.search_input = Some(input);
                }
                KeyCode::Char(c) => {
                    input.push(c);
                    self.logs.search_input = Some(input);
                }
                _ => {}
            }
            return Vec::new();
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
                if self.screen == Screen::Logs && self.logs.search.is_some() {
                    self.logs.search = None;
                    self.logs.matches.clear();
                } else if self.screen == Screen::Pipeline && self.viewed.is_some() {
                    self.viewed = None;
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
                Screen::Pipelines => self.pipelines_cmd(c),
                Screen::Pipeline => self.pipeline_cmd(c),
                Screen::Logs => self.logs_cmd(c),
                Screen::Approvals => self.approvals_cmd(c),
                Screen::Audit => self.audit_cmd(c),
                Screen::Environments => self.envs_cmd(c),
                Screen::Diagnosis => self.diag_cmd(c),
            },
        }
    }
}
