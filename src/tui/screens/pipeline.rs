//! The Pipeline screen: the stage graph (current state, or one execution as
//! it ran; drawn by `graph.rs`) above the list of executions. The
//! selection follows the activity (failed, waiting, running) until the
//! user moves it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use crate::api::types::ActionStatus;
use crate::api::{ActionExecutionDetail, Request};
use crate::tui::app::modals::{Modal, Pending};
use crate::tui::app::screens::graph;
use crate::tui::app::screens::pipelines::start;
use crate::tui::app::widgets::{between, block, exec_glyph, exec_style};
use crate::tui::app::{App, Effect};
use crate::tui::keymap::Command;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pane {
    #[default]
    Graph,
    Executions,
}

/// The Pipeline screen's state (the pipeline and the selected stage and
/// action are the App's).
#[derive(Debug, Clone, Default)]
pub struct PipelineView {
    /// The pane with the focus.
    pub pane: Pane,
    /// The selected row of the executions pane.
    pub sel_exec: usize,
    /// The execution the graph shows (None: the pipeline's current state).
    pub viewed: Option<(String, Vec<ActionExecutionDetail>)>,
    /// The first stage drawn (the graph scrolls sideways).
    pub scroll: usize,
    /// Compact stage boxes (more stages side by side).
    pub compact: bool,
    /// The user moved the selection: it no longer follows the activity.
    pub pinned: bool,
}

/// The keys the footer shows on this screen (after them: back, palette,
/// help, quit).
pub(crate) const KEYS: &[Command] = &[
    Command::Logs,
    Command::Approve,
    Command::Reject,
    Command::Retry,
    Command::Stop,
    Command::Rollback,
    Command::Transition,
    Command::NextAttention,
    Command::Compact,
    Command::NextPane,
];

/// A command for the Pipeline screen (the global ones are the App's).
pub(crate) fn on_command(app: &mut App, c: Command) -> Vec<Effect> {
    let stages = app.state().map_or(0, |s| s.stage_states.len());
    let actions = app
        .state()
        .and_then(|s| s.stage_states.get(app.sel_stage))
        .map_or(0, |s| s.action_states.len());
    let execs = app.executions().len();
    let Some((pipeline, stage, action)) = app.selected() else {
        return Vec::new();
    };
    match (c, app.graph.pane) {
        (Command::NextPane | Command::PrevPane, _) => {
            app.graph.pane = if app.graph.pane == Pane::Graph {
                Pane::Executions
            } else {
                Pane::Graph
            };
        }
        (Command::Right, Pane::Graph) => {
            app.sel_stage = (app.sel_stage + 1).min(stages.saturating_sub(1));
            app.sel_action = 0;
            app.graph.pinned = true;
        }
        (Command::Left, Pane::Graph) => {
            app.sel_stage = app.sel_stage.saturating_sub(1);
            app.sel_action = 0;
            app.graph.pinned = true;
        }
        (Command::Down, Pane::Graph) => {
            app.sel_action = (app.sel_action + 1).min(actions.saturating_sub(1));
            app.graph.pinned = true;
        }
        (Command::Up, Pane::Graph) => {
            app.sel_action = app.sel_action.saturating_sub(1);
            app.graph.pinned = true;
        }
        (Command::NextAttention | Command::PrevAttention, _) => {
            jump_to_attention(app, c == Command::NextAttention)
        }
        (Command::Compact, _) => app.graph.compact = !app.graph.compact,
        (Command::Down, Pane::Executions) => {
            app.graph.sel_exec = (app.graph.sel_exec + 1).min(execs.saturating_sub(1));
        }
        (Command::Up, Pane::Executions) => {
            app.graph.sel_exec = app.graph.sel_exec.saturating_sub(1)
        }
        (Command::Top, Pane::Executions) => app.graph.sel_exec = 0,
        (Command::Bottom, Pane::Executions) => app.graph.sel_exec = execs.saturating_sub(1),
        (Command::Open, Pane::Executions) => {
            if let Some(e) = app.executions().get(app.graph.sel_exec) {
                let exec = e.pipeline_execution_id.clone();
                app.graph.pane = Pane::Graph;
                return vec![Effect::ExecActions {
                    pipeline,
                    execution: exec,
                }];
            }
        }
        (Command::Open | Command::Logs, Pane::Graph) | (Command::Logs, _) => {
            match app.action_detail(app.sel_stage, app.sel_action) {
                Some(d) => return app.open_logs(d),
                None => app.toast(format!("{stage}/{action} has not run yet"), true),
            }
        }
        (Command::Start, _) => return vec![start(pipeline)],
        (Command::Stop, _) => {
            let running = app
                .executions()
                .iter()
                .find(|e| !e.status.is_terminal())
                .map(|e| e.pipeline_execution_id.clone());
            match running {
                Some(execution) => app.confirm(Pending::Stop {
                    pipeline,
                    execution,
                }),
                None => app.toast("nothing to stop: no execution is in progress", true),
            }
        }
        (Command::Approve | Command::Reject, _) => {
            let d = app.action_detail(app.sel_stage, app.sel_action);
            if d.as_ref().is_none_or(|d| d.token.is_none()) {
                app.toast(
                    format!("{stage}/{action} is not waiting for approval"),
                    true,
                );
            } else {
                return app.ask_approval(c, pipeline, stage, action);
            }
        }
        (Command::Retry | Command::RetryAll, _) => {
            let retry_mode = if c == Command::Retry {
                "FAILED_ACTIONS"
            } else {
                "ALL_ACTIONS"
            }
            .to_owned();
            // A newer commit on the branch is offered instead (modals.rs).
            return app.ask_retry(pipeline, stage, retry_mode);
        }
        (Command::Rollback, _) => app.confirm(Pending::Rollback { pipeline, stage }),
        (Command::Transition, _) => {
            let enabled = app
                .state()
                .and_then(|s| s.stage_states.get(app.sel_stage))
                .is_none_or(|s| s.inbound_transition_state.enabled);
            if enabled {
                app.modal = Some(Modal::Input {
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

pub fn draw(f: &mut Frame, app: &mut App, area: Rect) {
    let Some(st) = app.state().cloned() else {
        f.render_widget(
            Paragraph::new("loading…").block(block(app, "Pipeline".into(), true)),
            area,
        );
        return;
    };
    let [graph_area, execs] = areas(area);
    let probe = Block::default().borders(Borders::ALL).inner(graph_area);
    // The scroll first: the title says which stages are in view.
    graph::layout(app, probe, st.stage_states.len());
    let outer = block(
        app,
        graph::title(app, &st, probe.width),
        app.graph.pane == Pane::Graph,
    );
    let inner = outer.inner(graph_area);
    f.render_widget(outer, graph_area);
    graph::draw(f, app, &st, inner);
    // Executions.
    let rows: Vec<Row> = app
        .executions()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let rev = e.source_revisions.first();
            let row = Row::new(vec![
                Cell::from(Span::styled(
                    format!("{} {}", exec_glyph(e.status), e.status.as_str()),
                    exec_style(app, e.status),
                )),
                Cell::from(crate::api::short_id(&e.pipeline_execution_id, 8).to_owned()),
                Cell::from(e.execution_type.as_str()),
                Cell::from(format!("{:?}", e.trigger.trigger_type)),
                Cell::from(
                    rev.map(|r| r.revision_id.chars().take(8).collect::<String>())
                        .unwrap_or_default(),
                ),
                Cell::from(
                    rev.and_then(|r| r.revision_summary.clone())
                        .unwrap_or_default(),
                ),
                Cell::from(e.start_time.get(11..19).unwrap_or("").to_owned()),
                Cell::from(between(
                    &e.start_time,
                    e.status
                        .is_terminal()
                        .then_some(e.last_update_time.as_str()),
                    app.now,
                )),
            ]);
            if app.graph.pane == Pane::Executions && i == app.graph.sel_exec {
                row.style(app.theme.selection)
            } else {
                row
            }
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(13),
            Constraint::Length(9),
            Constraint::Length(9),
            Constraint::Length(24),
            Constraint::Length(9),
            Constraint::Min(10),
            Constraint::Length(9),
            Constraint::Length(7),
        ],
    )
    .header(
        Row::new([
            "STATUS", "ID", "TYPE", "TRIGGER", "REVISION", "MESSAGE", "STARTED", "TOOK",
        ])
        .style(app.theme.muted),
    )
    .block(block(
        app,
        "Executions (Enter: show in the graph)".into(),
        app.graph.pane == Pane::Executions,
    ));
    f.render_widget(table, execs);
}

/// The graph above, the executions below (the same split for drawing and
/// for mouse clicks).
fn areas(body: Rect) -> [Rect; 2] {
    Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body)
}

/// What a click at (`col`, `row`) hits on this screen, laid out in `body`.
pub(crate) enum Hit {
    Action(usize, usize),
    Execution(usize),
}

pub(crate) fn hit(app: &App, body: Rect, col: u16, row: u16) -> Option<Hit> {
    let [graph, execs] = areas(body);
    let pos = ratatui::layout::Position::new(col, row);
    if execs.contains(pos) {
        // The border and the table's header come first.
        let first = execs.y + 2;
        return (row >= first && row + 1 < execs.bottom())
            .then(|| Hit::Execution(usize::from(row - first)));
    }
    if !graph.contains(pos) {
        return None;
    }
    let st = app.state()?;
    let inner = Block::default().borders(Borders::ALL).inner(graph);
    let l = graph::layout_at(app, inner, st.stage_states.len());
    if col < l.x0 {
        return None;
    }
    let slot = usize::from((col - l.x0) / (l.box_w + l.gap));
    if (col - l.x0) % (l.box_w + l.gap) >= l.box_w || slot >= l.per_row {
        return None;
    }
    let i = app.graph.scroll + slot;
    let s = st.stage_states.get(i)?;
    // Two lines above the box, then its top border: actions from there,
    // a failed one followed by its failure line.
    let mut y = inner.y + 3;
    for j in 0..s.action_states.len() {
        let lines = 1 + u16::from(
            app.action_detail(i, j)
                .as_ref()
                .and_then(|d| graph::failure_line(app, d))
                .is_some(),
        );
        if row >= y && row < y + lines {
            return Some(Hit::Action(i, j));
        }
        y += lines;
    }
    None
}

/// `n` / `N`: the next (previous) failed or waiting stage after (before)
/// the selected one.
fn jump_to_attention(app: &mut App, forward: bool) {
    let Some(st) = app.state() else {
        return;
    };
    let n = st.stage_states.len();
    let marks: Vec<graph::Mark> = (0..n).map(|i| graph::mark(app, st, i)).collect();
    let at = app.sel_stage;
    let found = if forward {
        (at + 1..n).find(|&i| marks[i].needs_attention())
    } else {
        (0..at).rev().find(|&i| marks[i].needs_attention())
    };
    match found {
        Some(i) => {
            app.graph.pane = Pane::Graph;
            app.graph.pinned = true;
            app.sel_stage = i;
            app.sel_action = 0;
            let actions = app
                .state()
                .map_or(0, |s| s.stage_states[i].action_states.len());
            if let Some(j) = (0..actions).find(|&j| {
                app.action_detail(i, j)
                    .is_some_and(|d| d.status == ActionStatus::Failed || d.token.is_some())
            }) {
                app.sel_action = j;
            }
        }
        None => app.toast(
            format!(
                "no failed or waiting stage {} {}",
                if forward { "after" } else { "before" },
                st_name(app, at)
            ),
            false,
        ),
    }
}

fn st_name(app: &App, i: usize) -> String {
    app.state()
        .and_then(|s| s.stage_states.get(i))
        .map_or_else(String::new, |s| s.stage_name.clone())
}

/// Until the user moves the selection, it goes where the activity is.
pub(crate) fn follow_activity(app: &mut App) {
    if app.graph.pinned || app.graph.viewed.is_some() {
        return;
    }
    if let Some((i, j)) = graph::activity(app) {
        app.sel_stage = i;
        app.sel_action = j;
    }
}

impl App {
    /// For a stage whose latest execution failed: its source revision and a
    /// newer commit of the branch, when a later execution carries one (a
    /// trigger started it). A retry re-runs the old one.
    pub(crate) fn newer_revision(&self, stage: usize) -> Option<(String, String)> {
        let st = self.state()?;
        let latest = st.stage_states.get(stage)?.latest_execution.as_ref()?;
        if latest.status != crate::api::types::StageStatus::Failed {
            return None;
        }
        let execs = self.executions();
        let at = execs
            .iter()
            .position(|e| e.pipeline_execution_id == latest.pipeline_execution_id)?;
        let revision = execs[at].source_revisions.first()?.revision_id.clone();
        // Newest first: the executions before it started later.
        execs[..at]
            .iter()
            .filter_map(|e| e.source_revisions.first())
            .map(|r| r.revision_id.clone())
            .find(|r| *r != revision)
            .map(|newer| (revision, newer))
    }

    pub(crate) fn selected(&self) -> Option<(String, String, String)> {
        let st = self.state()?;
        let s = st.stage_states.get(self.sel_stage)?;
        let a = s.action_states.get(self.sel_action)?;
        Some((
            st.pipeline_name.clone(),
            s.stage_name.clone(),
            a.action_name.clone(),
        ))
    }
}
