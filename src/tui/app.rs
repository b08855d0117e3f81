//! The TUI's one state owner. `update` takes a message (a key, an engine
//! event, a loaded result), changes the state without I/O, and returns the
//! effects the runtime should carry out (engine calls, log reads).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};

use super::keymap::{Command, Keymap, Scope};
use super::theme::Theme;
use crate::api::types::ActionStatus;
use crate::api::{
    ActionExecutionDetail, AuditEvent, EngineEvent, ExecutionSummary, PipelineState,
    PipelineSummary, Request,
};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Graph,
    Executions,
}

/// An operation waiting for confirmation or input.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    Approve {
        pipeline: String,
        stage: String,
        action: String,
    },
    Reject {
        pipeline: String,
        stage: String,
        action: String,
        summary: String,
    },
    Stop {
        pipeline: String,
        execution: String,
    },
    Rollback {
        pipeline: String,
        stage: String,
    },
    RollbackEnv {
        env: String,
    },
    Disable {
        pipeline: String,
        stage: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Modal {
    Help,
    Palette(String),
    /// `typed`: (the name to type, what was typed) for protected targets.
    Confirm {
        text: String,
        op: Pending,
        typed: Option<(String, String)>,
    },
    /// A summary or reason; `op` gets the text when Enter is pressed.
    Input {
        prompt: String,
        buf: String,
        op: Pending,
    },
    /// `q` while this process hosts running executions.
    QuitConfirm {
        running: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Toast {
    pub text: String,
    pub error: bool,
    pub until: SystemTime,
}

#[derive(Debug, Clone, Default)]
pub struct LogView {
    pub aeid: String,
    pub title: String,
    pub total: u64,
    pub top: u64,
    pub follow: bool,
    pub wrap: bool,
    /// A window of lines: (first line number, lines).
    pub cache_start: u64,
    pub cache: Vec<String>,
    /// Unix milliseconds of each cached line, when known.
    pub cache_times: Vec<Option<u64>>,
    pub timestamps: bool,
    pub search: Option<String>,
    pub search_input: Option<String>,
    pub matches: Vec<u64>,
    pub current: usize,
    pub detail: Option<ActionExecutionDetail>,
    pub height: u16,
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

/// A pending approval, found in the pipeline states.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingApproval {
    pub pipeline: String,
    pub stage: String,
    pub action: ActionExecutionDetail,
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

    /// Pipelines that match the filter.
    pub fn visible_pipelines(&self) -> Vec<&PipelineSummary> {
        let f = self.filter.to_lowercase();
        self.snap
            .pipelines
            .iter()
            .filter(|p| f.is_empty() || p.name.to_lowercase().contains(&f))
            .collect()
    }

    pub fn pending_approvals(&self) -> Vec<PendingApproval> {
        let mut out = Vec::new();
        for (p, st) in &self.snap.states {
            for s in &st.stage_states {
                for a in &s.action_states {
                    if let Some(x) = &a.latest_execution
                        && x.token.is_some()
                        && x.status == ActionStatus::InProgress
                    {
                        out.push(PendingApproval {
                            pipeline: p.clone(),
                            stage: s.stage_name.clone(),
                            action: x.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Approvals answered in the latest executions (who and when).
    pub fn decided_approvals(&self) -> Vec<PendingApproval> {
        let mut out = Vec::new();
        for (p, st) in &self.snap.states {
            for s in &st.stage_states {
                for a in &s.action_states {
                    if let Some(x) = &a.latest_execution
                        && x.approval.as_ref().is_some_and(|ap| ap.result.is_some())
                    {
                        out.push(PendingApproval {
                            pipeline: p.clone(),
                            stage: s.stage_name.clone(),
                            action: x.clone(),
                        });
                    }
                }
            }
        }
        out
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

    fn go(&mut self, s: Screen) {
        if self.screen != s {
            self.back.push(self.screen);
            self.screen = s;
        }
    }

    fn go_back(&mut self) {
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

    fn clamp(&mut self) {
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

    fn modal_key(&mut self, m: Modal, k: KeyEvent) -> Vec<Effect> {
        let ctrl_c = k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
        match m {
            Modal::Help => {
                if matches!(
                    k.code,
                    KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
                ) || ctrl_c
                {
                    self.modal = None;
                }
                Vec::new()
            }
            Modal::QuitConfirm { .. } => {
                match k.code {
                    KeyCode::Char('y') | KeyCode::Enter => {
                        self.quit = true;
                        return vec![Effect::Quit];
                    }
                    _ => self.modal = None,
                }
                Vec::new()
            }
            Modal::Palette(mut buf) => {
                match k.code {
                    KeyCode::Esc => self.modal = None,
                    KeyCode::Enter => {
                        self.modal = None;
                        return self.palette(buf.trim());
                    }
                    KeyCode::Backspace => {
                        buf.pop();
                        self.modal = Some(Modal::Palette(buf));
                    }
                    KeyCode::Char(c) if !ctrl_c => {
                        buf.push(c);
                        self.modal = Some(Modal::Palette(buf));
                    }
                    _ => self.modal = None,
                }
                Vec::new()
            }
            Modal::Input {
                prompt,
                mut buf,
                op,
            } => {
                match k.code {
                    KeyCode::Esc => self.modal = None,
                    KeyCode::Enter => {
                        let op = match op {
                            Pending::Reject {
                                pipeline,
                                stage,
                                action,
                                ..
                            } => Pending::Reject {
                                pipeline,
                                stage,
                                action,
                                summary: buf.clone(),
                            },
                            Pending::Disable {
                                pipeline, stage, ..
                            } => Pending::Disable {
                                pipeline,
                                stage,
                                reason: buf.clone(),
                            },
                            other => other,
                        };
                        if matches!(op, Pending::Disable { .. }) {
                            self.modal = None;
                            return vec![self.effect_of(op)];
                        }
                        self.confirm(op);
                    }
                    KeyCode::Backspace => {
                        buf.pop();
                        self.modal = Some(Modal::Input { prompt, buf, op });
                    }
                    KeyCode::Char(c) if !ctrl_c => {
                        buf.push(c);
                        self.modal = Some(Modal::Input { prompt, buf, op });
                    }
                    _ => self.modal = None,
                }
                Vec::new()
            }
            Modal::Confirm { text, op, typed } => {
                if let Some((want, mut got)) = typed {
                    match k.code {
                        KeyCode::Esc => self.modal = None,
                        KeyCode::Enter if got == want => {
                            self.modal = None;
                            return vec![self.effect_of(op)];
                        }
                        KeyCode::Enter => self.toast(format!("type `{want}` to confirm"), true),
                        KeyCode::Backspace => {
                            got.pop();
                            self.modal = Some(Modal::Confirm {
                                text,
                                op,
                                typed: Some((want, got)),
                            });
                        }
                        KeyCode::Char(c) if !ctrl_c => {
                            got.push(c);
                            self.modal = Some(Modal::Confirm {
                                text,
                                op,
                                typed: Some((want, got)),
                            });
                        }
                        _ => self.modal = None,
                    }
                    return Vec::new();
                }
                self.modal = None;
                match (k.code, &op) {
                    (KeyCode::Char('y') | KeyCode::Enter, _) => vec![self.effect_of(op)],
                    (
                        KeyCode::Char('A'),
                        Pending::Stop {
                            pipeline,
                            execution,
                        },
                    ) => {
                        vec![Effect::Op {
                            label: "stop (abandon)".into(),
                            request: Request::StopPipelineExecution {
                                pipeline_name: pipeline.clone(),
                                pipeline_execution_id: Some(execution.clone()),
                                abandon: true,
                                reason: Some("stopped from pipedeck".into()),
                            },
                        }]
                    }
                    _ => Vec::new(),
                }
            }
        }
    }

    /// Asks for confirmation (typed, for protected stages).
    fn confirm(&mut self, op: Pending) {
        let (text, stage) = match &op {
            Pending::Approve { stage, action, .. } => (format!("Approve {stage}/{action}?"), stage),
            Pending::Reject {
                stage,
                action,
                summary,
                ..
            } => (
                format!(
                    "Reject {stage}/{action} with summary \u{201c}{summary}\u{201d}? The stage and the execution fail."
                ),
                stage,
            ),
            Pending::Stop { execution, .. } => (
                format!(
                    "Stop execution {}? y: let running actions finish · A: abandon them",
                    &execution[..execution.len().min(8)]
                ),
                &String::new(),
            ),
            Pending::Rollback { stage, .. } => (
                format!("Roll back stage {stage} to its last successful execution?"),
                stage,
            ),
            Pending::Disable { stage, .. } => {
                (format!("Disable the transition into {stage}?"), stage)
            }
            Pending::RollbackEnv { env } => (
                format!(
                    "Roll back environment {env}? During a deployment this flips traffic back; \
                     otherwise the previous release is deployed again."
                ),
                env,
            ),
        };
        let env_protected = matches!(&op, Pending::RollbackEnv { env }
            if self.snap.envs.iter().any(|e| &e.name == env && e.protected));
        let typed = (env_protected || self.protected.iter().any(|p| p == stage))
            .then(|| (stage.clone(), String::new()));
        self.modal = Some(Modal::Confirm { text, op, typed });
    }

    fn effect_of(&self, op: Pending) -> Effect {
        match op {
            Pending::Approve {
                pipeline,
                stage,
                action,
            } => Effect::Op {
                label: format!("approve {stage}/{action}"),
                request: Request::PutApprovalResult {
                    pipeline_name: pipeline,
                    stage_name: stage,
                    action_name: action,
                    token: None,
                    status: "Approved".into(),
                    summary: String::new(),
                },
            },
            Pending::Reject {
                pipeline,
                stage,
                action,
                summary,
            } => Effect::Op {
                label: format!("reject {stage}/{action}"),
                request: Request::PutApprovalResult {
                    pipeline_name: pipeline,
                    stage_name: stage,
                    action_name: action,
                    token: None,
                    status: "Rejected".into(),
                    summary,
                },
            },
            Pending::Stop {
                pipeline,
                execution,
            } => Effect::Op {
                label: "stop".into(),
                request: Request::StopPipelineExecution {
                    pipeline_name: pipeline,
                    pipeline_execution_id: Some(execution),
                    abandon: false,
                    reason: Some("stopped from pipedeck".into()),
                },
            },
            Pending::RollbackEnv { env } => Effect::Op {
                label: format!("roll back {env}"),
                request: Request::RollbackEnvironment {
                    environment_name: env,
                },
            },
            Pending::Rollback { pipeline, stage } => Effect::Op {
                label: format!("roll back {stage}"),
                request: Request::RollbackStage {
                    pipeline_name: pipeline,
                    stage_name: stage,
                    target_pipeline_execution_id: None,
                },
            },
            Pending::Disable {
                pipeline,
                stage,
                reason,
            } => Effect::Op {
                label: format!("disable transition into {stage}"),
                request: Request::DisableStageTransition {
                    pipeline_name: pipeline,
                    stage_name: stage,
                    reason,
                },
            },
        }
    }

    fn palette(&mut self, cmd: &str) -> Vec<Effect> {
        match cmd.trim_start_matches(':') {
            "pipelines" | "p" => {
                self.back.clear();
                self.screen = Screen::Pipelines;
            }
            "approvals" | "a" => self.go(Screen::Approvals),
            "audit" => {
                self.go(Screen::Audit);
                return vec![Effect::Audit];
            }
            "envs" | "environments" => return self.command(Command::Environments),
            "diagnose" => return self.command(Command::Diagnose),
            "help" => self.modal = Some(Modal::Help),
            "q" | "quit" => return self.command(Command::Quit),
            other => self.toast(
                format!("unknown command `:{other}` (try :pipelines, :approvals, :audit, :envs, :diagnose, :help, :quit)"),
                true,
            ),
        }
        Vec::new()
    }

    fn read_window(&self) -> Effect {
        let h = u64::from(self.logs.height.max(10));
        Effect::ReadLog {
            aeid: self.logs.aeid.clone(),
            start: self.logs.top.saturating_sub(h),
            count: h * 3,
        }
    }

    fn log_goto(&mut self, line: u64) -> Vec<Effect> {
        let h = u64::from(self.logs.height.max(1));
        self.logs.follow = false;
        self.logs.top = line.saturating_sub(h / 3);
        self.log_window()
    }

    /// Reads around `top` when the visible lines are not in the cache.
    fn log_window(&self) -> Vec<Effect> {
        let h = u64::from(self.logs.height.max(1));
        let have = self.logs.cache_start..self.logs.cache_start + self.logs.cache.len() as u64;
        let need_end = (self.logs.top + h).min(self.logs.total);
        if have.contains(&self.logs.top) && (need_end == 0 || have.contains(&(need_end - 1))) {
            Vec::new()
        } else {
            vec![self.read_window()]
        }
    }

    fn open_logs(&mut self, detail: ActionExecutionDetail) -> Vec<Effect> {
        self.logs = LogView {
            aeid: detail.action_execution_id.clone(),
            title: format!(
                "{} / {} / {} · attempt {}",
                self.pipeline.clone().unwrap_or_default(),
                detail.stage_name,
                detail.action_name,
                detail.attempt
            ),
            total: detail.log_lines,
            follow: true,
            wrap: false,
            height: self.size.1.saturating_sub(6),
            detail: Some(detail),
            ..LogView::default()
        };
        self.go(Screen::Logs);
        vec![Effect::ReadLog {
            aeid: self.logs.aeid.clone(),
            start: u64::MAX,
            count: u64::from(self.logs.height.max(10)) * 3,
        }]
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

    fn pipelines_cmd(&mut self, c: Command) -> Vec<Effect> {
        let n = self.visible_pipelines().len();
        let name = self
            .visible_pipelines()
            .get(self.sel_pipeline)
            .map(|p| p.name.clone());
        match c {
            Command::Down => self.sel_pipeline = (self.sel_pipeline + 1).min(n.saturating_sub(1)),
            Command::Up => self.sel_pipeline = self.sel_pipeline.saturating_sub(1),
            Command::Top => self.sel_pipeline = 0,
            Command::Bottom => self.sel_pipeline = n.saturating_sub(1),
            Command::Filter => self.filter_editing = true,
            Command::Open | Command::Right => {
                if let Some(name) = name {
                    if self.pipeline.as_deref() != Some(&name) {
                        self.sel_stage = 0;
                        self.sel_action = 0;
                        self.sel_exec = 0;
                        self.viewed = None;
                    }
                    self.pipeline = Some(name);
                    self.go(Screen::Pipeline);
                }
            }
            Command::Start => {
                if let Some(name) = name {
                    return vec![start(name)];
                }
            }
            Command::Stop => {
                if let Some(p) = self.visible_pipelines().get(self.sel_pipeline)
                    && let Some(e) = &p.latest_execution
                    && !e.status.is_terminal()
                {
                    let op = Pending::Stop {
                        pipeline: p.name.clone(),
                        execution: e.pipeline_execution_id.clone(),
                    };
                    self.confirm(op);
                } else {
                    self.toast("nothing to stop: no execution is in progress", true);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn selected(&self) -> Option<(String, String, String)> {
        let st = self.state()?;
        let s = st.stage_states.get(self.sel_stage)?;
        let a = s.action_states.get(self.sel_action)?;
        Some((
            st.pipeline_name.clone(),
            s.stage_name.clone(),
            a.action_name.clone(),
        ))
    }

    fn pipeline_cmd(&mut self, c: Command) -> Vec<Effect> {
        let stages = self.state().map_or(0, |s| s.stage_states.len());
        let actions = self
            .state()
            .and_then(|s| s.stage_states.get(self.sel_stage))
            .map_or(0, |s| s.action_states.len());
        let execs = self.executions().len();
        let Some((pipeline, stage, action)) = self.selected() else {
            return Vec::new();
        };
        match (c, self.pane) {
            (Command::NextPane | Command::PrevPane, _) => {
                self.pane = if self.pane == Pane::Graph {
                    Pane::Executions
                } else {
                    Pane::Graph
                };
            }
            (Command::Right, Pane::Graph) => {
                self.sel_stage = (self.sel_stage + 1).min(stages.saturating_sub(1));
                self.sel_action = 0;
            }
            (Command::Left, Pane::Graph) => {
                self.sel_stage = self.sel_stage.saturating_sub(1);
                self.sel_action = 0;
            }
            (Command::Down, Pane::Graph) => {
                self.sel_action = (self.sel_action + 1).min(actions.saturating_sub(1));
            }
            (Command::Up, Pane::Graph) => self.sel_action = self.sel_action.saturating_sub(1),
            (Command::Down, Pane::Executions) => {
                self.sel_exec = (self.sel_exec + 1).min(execs.saturating_sub(1));
            }
            (Command::Up, Pane::Executions) => self.sel_exec = self.sel_exec.saturating_sub(1),
            (Command::Top, Pane::Executions) => self.sel_exec = 0,
            (Command::Bottom, Pane::Executions) => self.sel_exec = execs.saturating_sub(1),
            (Command::Open, Pane::Executions) => {
                if let Some(e) = self.executions().get(self.sel_exec) {
                    let exec = e.pipeline_execution_id.clone();
                    self.pane = Pane::Graph;
                    return vec![Effect::ExecActions {
                        pipeline,
                        execution: exec,
                    }];
                }
            }
            (Command::Open | Command::Logs, Pane::Graph) | (Command::Logs, _) => {
                match self.action_detail(self.sel_stage, self.sel_action) {
                    Some(d) => return self.open_logs(d),
                    None => self.toast(format!("{stage}/{action} has not run yet"), true),
                }
            }
            (Command::Start, _) => return vec![start(pipeline)],
            (Command::Stop, _) => {
                let running = self
                    .executions()
                    .iter()
                    .find(|e| !e.status.is_terminal())
                    .map(|e| e.pipeline_execution_id.clone());
                match running {
                    Some(execution) => self.confirm(Pending::Stop {
                        pipeline,
                        execution,
                    }),
                    None => self.toast("nothing to stop: no execution is in progress", true),
                }
            }
            (Command::Approve | Command::Reject, _) => {
                let d = self.action_detail(self.sel_stage, self.sel_action);
                if d.as_ref().is_none_or(|d| d.token.is_none()) {
                    self.toast(
                        format!("{stage}/{action} is not waiting for approval"),
                        true,
                    );
                } else {
                    self.ask_approval(c, pipeline, stage, action);
                }
            }
            (Command::Retry | Command::RetryAll, _) => {
                return vec![Effect::Op {
                    label: format!("retry {stage}"),
                    request: Request::RetryStageExecution {
                        pipeline_name: pipeline,
                        stage_name: stage,
                        pipeline_execution_id: None,
                        retry_mode: if c == Command::Retry {
                            "FAILED_ACTIONS"
                        } else {
                            "ALL_ACTIONS"
                        }
                        .into(),
                    },
                }];
            }
            (Command::Rollback, _) => self.confirm(Pending::Rollback { pipeline, stage }),
            (Command::Transition, _) => {
                let enabled = self
                    .state()
                    .and_then(|s| s.stage_states.get(self.sel_stage))
                    .is_none_or(|s| s.inbound_transition_state.enabled);
                if enabled {
                    self.modal = Some(Modal::Input {
                        prompt: format!("Disable the transition into {stage}: reason"),
                        buf: String::new(),
                        op: Pending::Disable {
                            pipeline,
                            stage,
                            reason: String::new(),
                        },
                    });
                } else {
                    return vec![Effect::Op {
                        label: format!("enable transition into {stage}"),
                        request: Request::EnableStageTransition {
                            pipeline_name: pipeline,
                            stage_name: stage,
                        },
                    }];
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn logs_cmd(&mut self, c: Command) -> Vec<Effect> {
        let h = u64::from(self.logs.height.max(1));
        let max_top = self.logs.total.saturating_sub(h);
        match c {
            Command::Down => {
                self.logs.follow = false;
                self.logs.top = (self.logs.top + 1).min(max_top);
            }
            Command::Up => {
                self.logs.follow = false;
                self.logs.top = self.logs.top.saturating_sub(1);
            }
            Command::PageDown => {
                self.logs.follow = false;
                self.logs.top = (self.logs.top + h).min(max_top);
            }
            Command::PageUp => {
                self.logs.follow = false;
                self.logs.top = self.logs.top.saturating_sub(h);
            }
            Command::Top => {
                self.logs.follow = false;
                self.logs.top = 0;
            }
            Command::Bottom | Command::Follow => {
                self.logs.follow = c == Command::Bottom || !self.logs.follow;
                self.logs.top = max_top;
            }
            Command::Wrap => self.logs.wrap = !self.logs.wrap,
            Command::Timestamps => self.logs.timestamps = !self.logs.timestamps,
            Command::Filter => self.logs.search_input = Some(String::new()),
            Command::NextMatch | Command::PrevMatch => {
                if self.logs.matches.is_empty() {
                    self.toast("no search: press / to search", true);
                    return Vec::new();
                }
                let n = self.logs.matches.len();
                self.logs.current = if c == Command::NextMatch {
                    (self.logs.current + 1) % n
                } else {
                    (self.logs.current + n - 1) % n
                };
                let line = self.logs.matches[self.logs.current];
                return self.log_goto(line);
            }
            Command::NextError => {
                return vec![Effect::SearchLog {
                    aeid: self.logs.aeid.clone(),
                    pattern: ERROR_PATTERN.into(),
                    regex: true,
                }];
            }
            _ => return Vec::new(),
        }
        self.log_window()
    }

    /// Approve asks for confirmation; reject first asks for a summary.
    fn ask_approval(&mut self, c: Command, pipeline: String, stage: String, action: String) {
        if c == Command::Approve {
            self.confirm(Pending::Approve {
                pipeline,
                stage,
                action,
            });
        } else {
            self.modal = Some(Modal::Input {
                prompt: format!(
                    "Reject {stage}/{action}: summary (Enter to continue, Esc to cancel)"
                ),
                buf: String::new(),
                op: Pending::Reject {
                    pipeline,
                    stage,
                    action,
                    summary: String::new(),
                },
            });
        }
    }

    fn approvals_cmd(&mut self, c: Command) -> Vec<Effect> {
        let list = self.pending_approvals();
        match c {
            Command::Down => {
                self.sel_approval = (self.sel_approval + 1).min(list.len().saturating_sub(1))
            }
            Command::Up => self.sel_approval = self.sel_approval.saturating_sub(1),
            Command::Approve | Command::Reject => {
                let Some(a) = list.get(self.sel_approval) else {
                    self.toast("no approval is pending", true);
                    return Vec::new();
                };
                let (pipeline, stage, action) = (
                    a.pipeline.clone(),
                    a.stage.clone(),
                    a.action.action_name.clone(),
                );
                self.ask_approval(c, pipeline, stage, action);
            }
            Command::Open => {
                if let Some(a) = list.get(self.sel_approval) {
                    self.pipeline = Some(a.pipeline.clone());
                    self.go(Screen::Pipeline);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn audit_cmd(&mut self, c: Command) -> Vec<Effect> {
        let n = self.audit_visible().len();
        match c {
            Command::Down => self.sel_audit = (self.sel_audit + 1).min(n.saturating_sub(1)),
            Command::Up => self.sel_audit = self.sel_audit.saturating_sub(1),
            Command::Top => self.sel_audit = 0,
            Command::Bottom => self.sel_audit = n.saturating_sub(1),
            Command::Filter => self.filter_editing = true,
            _ => {}
        }
        Vec::new()
    }

    /// Failed actions of the shown pipeline that have no diagnosis yet:
    /// diagnose them in the background (the graph shows the top finding).
    pub fn auto_diagnose(&mut self) -> Vec<Effect> {
        let Some(st) = self.state() else {
            return Vec::new();
        };
        let exec = self.executions().first().cloned();
        let failed: Vec<ActionExecutionDetail> = st
            .stage_states
            .iter()
            .flat_map(|s| {
                s.action_states
                    .iter()
                    .filter_map(|a| a.latest_execution.clone())
            })
            .filter(|a| a.status == ActionStatus::Failed)
            .filter(|a| {
                !self.diagnoses.contains_key(&a.action_execution_id)
                    && !self.diagnosing.contains(&a.action_execution_id)
            })
            .collect();
        failed
            .into_iter()
            .map(|a| {
                self.diagnosing.insert(a.action_execution_id.clone());
                Effect::Diagnose {
                    action: Box::new(a),
                    execution: exec.clone().map(Box::new),
                }
            })
            .collect()
    }

    fn open_diagnosis(&mut self) -> Vec<Effect> {
        let detail = match self.screen {
            Screen::Pipeline => self.action_detail(self.sel_stage, self.sel_action),
            Screen::Logs => self.logs.detail.clone(),
            _ => None,
        };
        let Some(d) = detail else {
            self.toast(
                "select a failed action first (on the Pipeline screen)",
                true,
            );
            return Vec::new();
        };
        if !matches!(d.status, ActionStatus::Failed | ActionStatus::Abandoned) {
            self.toast(
                format!(
                    "{}/{} has not failed: nothing to diagnose",
                    d.stage_name, d.action_name
                ),
                true,
            );
            return Vec::new();
        }
        let aeid = d.action_execution_id.clone();
        self.diag_action = Some(d.clone());
        self.sel_diag = 0;
        self.go(Screen::Diagnosis);
        if self.diagnoses.contains_key(&aeid) || self.diagnosing.contains(&aeid) {
            return Vec::new();
        }
        self.diagnosing.insert(aeid);
        vec![Effect::Diagnose {
            action: Box::new(d),
            execution: self.executions().first().cloned().map(Box::new),
        }]
    }

    /// Rows of the Diagnosis screen: (finding index, evidence index).
    pub fn diag_rows(&self) -> Vec<(usize, Option<usize>)> {
        let Some(f) = self
            .diag_action
            .as_ref()
            .and_then(|a| self.diagnoses.get(&a.action_execution_id))
        else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for (i, x) in f.iter().enumerate() {
            rows.push((i, None));
            for j in 0..x.evidence.len() {
                rows.push((i, Some(j)));
            }
        }
        rows
    }

    fn diag_cmd(&mut self, c: Command) -> Vec<Effect> {
        let rows = self.diag_rows();
        match c {
            Command::Down => self.sel_diag = (self.sel_diag + 1).min(rows.len().saturating_sub(1)),
            Command::Up => self.sel_diag = self.sel_diag.saturating_sub(1),
            Command::Top => self.sel_diag = 0,
            Command::Bottom => self.sel_diag = rows.len().saturating_sub(1),
            Command::Open | Command::Logs => {
                let Some(a) = self.diag_action.clone() else {
                    return Vec::new();
                };
                let line = rows.get(self.sel_diag).and_then(|(i, j)| {
                    let f = self.diagnoses.get(&a.action_execution_id)?.get(*i)?;
                    match f.evidence.get((*j)?)? {
                        crate::diagnose::Evidence::LogLine { line, .. } => Some(*line as u64),
                        _ => None,
                    }
                });
                let mut fx = self.open_logs(a);
                if let Some(line) = line {
                    // Jump to the evidence line, highlighted as the match.
                    self.logs.follow = false;
                    let h = u64::from(self.logs.height.max(1));
                    self.logs.top = line.saturating_sub(h / 3);
                    fx = vec![Effect::ReadLog {
                        aeid: self.logs.aeid.clone(),
                        start: self.logs.top.saturating_sub(h),
                        count: h * 3,
                    }];
                    self.logs.matches = vec![line];
                    self.logs.current = 0;
                }
                return fx;
            }
            _ => {}
        }
        Vec::new()
    }

    fn envs_cmd(&mut self, c: Command) -> Vec<Effect> {
        let n = self.snap.envs.len();
        match c {
            Command::Right | Command::Down | Command::NextPane => {
                self.sel_env = (self.sel_env + 1).min(n.saturating_sub(1));
            }
            Command::Left | Command::Up | Command::PrevPane => {
                self.sel_env = self.sel_env.saturating_sub(1);
            }
            Command::Rollback => {
                if let Some(e) = self.snap.envs.get(self.sel_env) {
                    let env = e.name.clone();
                    self.confirm(Pending::RollbackEnv { env });
                }
            }
            Command::Logs | Command::Open => {
                // The live group's first replica: its output file.
                if let Some(e) = self.snap.envs.get(self.sel_env) {
                    let color = e.live.clone().unwrap_or_else(|| "blue".to_owned());
                    let aeid = format!("env/{}/{}-{}-0", e.name, e.name, color);
                    self.logs = LogView {
                        title: format!("{} · {} replica 0 output", e.name, color),
                        aeid,
                        follow: true,
                        height: self.size.1.saturating_sub(6),
                        ..LogView::default()
                    };
                    self.go(Screen::Logs);
                    return vec![Effect::ReadLog {
                        aeid: self.logs.aeid.clone(),
                        start: u64::MAX,
                        count: u64::from(self.logs.height.max(10)) * 3,
                    }];
                }
            }
            _ => {}
        }
        Vec::new()
    }

    pub fn audit_visible(&self) -> Vec<&AuditEvent> {
        let f = self.filter.to_lowercase();
        self.audit
            .iter()
            .filter(|e| {
                f.is_empty()
                    || e.event_name.to_lowercase().contains(&f)
                    || e.user_identity.principal_id.to_lowercase().contains(&f)
                    || e.error_code
                        .as_deref()
                        .unwrap_or("")
                        .to_lowercase()
                        .contains(&f)
                    || e.request_parameters.to_string().to_lowercase().contains(&f)
            })
            .collect()
    }
}

/// Lines `E` jumps to.
pub const ERROR_PATTERN: &str =
    r"(?i)(\berror\b|\bfailed\b|\bfailure\b|exception|exit status [1-9]|State: FAILED)";

fn start(pipeline: String) -> Effect {
    Effect::Op {
        label: format!("start {pipeline}"),
        request: Request::StartPipelineExecution {
            pipeline_name: pipeline,
            variables: BTreeMap::new(),
            source_revisions: Vec::new(),
        },
    }
}
