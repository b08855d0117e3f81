//! The Pipeline screen: the stage graph (current state, or one execution as
//! it ran) above the list of executions.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use crate::api::types::ActionStatus;
use crate::api::{ActionExecutionDetail, Request};
use crate::tui::app::modals::{Modal, Pending};
use crate::tui::app::screens::pipelines::start;
use crate::tui::app::widgets::{
    action_glyph, between, block, exec_glyph, exec_style, stage_style, truncate,
};
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
}

const BOX_W: u16 = 28;

/// Room between stage boxes for the arrow and the artifact names.
const GAP: u16 = 11;

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
        }
        (Command::Left, Pane::Graph) => {
            app.sel_stage = app.sel_stage.saturating_sub(1);
            app.sel_action = 0;
        }
        (Command::Down, Pane::Graph) => {
            app.sel_action = (app.sel_action + 1).min(actions.saturating_sub(1));
        }
        (Command::Up, Pane::Graph) => app.sel_action = app.sel_action.saturating_sub(1),
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
    let [graph, execs] = areas(area);
    let viewing = match &app.graph.viewed {
        Some((id, _)) => format!(
            " — execution {} (Esc: current state)",
            crate::api::short_id(id, 8)
        ),
        None => String::new(),
    };
    let outer = block(
        app,
        format!("{}{viewing}", st.pipeline_name),
        app.graph.pane == Pane::Graph,
    );
    let inner = outer.inner(graph);
    f.render_widget(outer, graph);
    // Scroll sideways to keep the selected stage visible.
    let per_row = usize::from((inner.width / (BOX_W + GAP)).max(1));
    if app.sel_stage < app.graph.scroll {
        app.graph.scroll = app.sel_stage;
    } else if app.sel_stage >= app.graph.scroll + per_row {
        app.graph.scroll = app.sel_stage + 1 - per_row;
    }
    let mut x = inner.x;
    for (i, s) in st
        .stage_states
        .iter()
        .enumerate()
        .skip(app.graph.scroll)
        .take(per_row)
    {
        let status = if app.graph.viewed.is_some() {
            None
        } else {
            s.latest_execution.as_ref().map(|l| l.status)
        };
        let mut lines: Vec<Line> = Vec::new();
        // Above the box: the transition and who waits at it.
        if !s.inbound_transition_state.enabled {
            lines.push(Line::from(Span::styled(
                format!(
                    "✖ disabled: {}",
                    s.inbound_transition_state
                        .disabled_reason
                        .clone()
                        .unwrap_or_default()
                ),
                app.theme.disabled_transition,
            )));
        } else {
            lines.push(Line::from(""));
        }
        let waiting: Vec<String> = s
            .inbound_executions
            .iter()
            .map(|w| crate::api::short_id(&w.pipeline_execution_id, 8).to_owned())
            .collect();
        lines.push(if waiting.is_empty() {
            Line::from("")
        } else {
            Line::from(Span::styled(
                format!("⏳ {}", waiting.join(" ")),
                app.theme.waiting,
            ))
        });
        let title_status = status.map_or("—".to_owned(), |x| x.as_str().to_owned());
        let mut body: Vec<Line> = Vec::new();
        let mut last_order = None;
        for (j, a) in s.action_states.iter().enumerate() {
            let detail = app.action_detail(i, j);
            let (glyph, gstyle) = detail
                .as_ref()
                .map_or(("·".to_owned(), app.theme.muted), |d| action_glyph(app, d));
            let dur = detail
                .as_ref()
                .map(|d| {
                    between(
                        &d.start_time,
                        (d.status != ActionStatus::InProgress)
                            .then_some(d.last_status_change.as_str()),
                        app.now,
                    )
                })
                .unwrap_or_default();
            let order = st_run_order(app, i, j);
            let prefix = if last_order == Some(order) {
                "  │".to_owned()
            } else {
                format!("{order:>3}")
            };
            last_order = Some(order);
            let selected =
                app.graph.pane == Pane::Graph && i == app.sel_stage && j == app.sel_action;
            let name_style = if selected {
                app.theme.selection
            } else {
                app.theme.base
            };
            body.push(Line::from(vec![
                Span::styled(prefix, app.theme.muted),
                Span::raw(" "),
                Span::styled(glyph, gstyle),
                Span::raw(" "),
                Span::styled(format!("{:<12}", truncate(&a.action_name, 12)), name_style),
                Span::styled(format!(" {dur:>6}"), app.theme.muted),
            ]));
            if let Some(sum) = detail.as_ref().and_then(|d| failure_line(app, d)) {
                body.push(Line::from(Span::styled(
                    format!("     {}", truncate(sum, 24)),
                    app.theme.failed,
                )));
            }
        }
        let h = (body.len() as u16 + 2).min(inner.height.saturating_sub(2));
        let top = Rect::new(x, inner.y, BOX_W, 2.min(inner.height));
        f.render_widget(Paragraph::new(lines), top);
        let b = Block::default()
            .borders(Borders::ALL)
            .border_style(if i == app.sel_stage && app.graph.pane == Pane::Graph {
                app.theme.border_focus
            } else {
                app.theme.border
            })
            .title(Line::from(vec![
                Span::styled(
                    format!(" {} ", truncate(&s.stage_name, 16)),
                    app.theme.title,
                ),
                Span::styled(format!("{title_status} "), stage_style(app, status)),
            ]));
        let rect = Rect::new(x, inner.y + 2, BOX_W, h).intersection(inner);
        f.render_widget(Paragraph::new(body).block(b), rect);
        if i + 1 < st.stage_states.len() {
            // The artifacts this stage hands on, above the arrow.
            let label = app
                .pipeline
                .as_deref()
                .and_then(|p| app.defs.get(p))
                .and_then(|d| d.stages.get(i))
                .map(|s| {
                    s.actions
                        .iter()
                        .flat_map(|a| a.output_artifacts.iter().cloned())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let lab = Rect::new(x + BOX_W + 1, inner.y + 3, GAP - 1, 1).intersection(inner);
            f.render_widget(
                Paragraph::new(truncate(&label, usize::from(GAP - 1))).style(app.theme.muted),
                lab,
            );
            let arrow = Rect::new(x + BOX_W, inner.y + 4, GAP, 1).intersection(inner);
            f.render_widget(
                Paragraph::new(format!(" {}▶", "─".repeat(usize::from(GAP) - 2)))
                    .style(app.theme.muted),
                arrow,
            );
        }
        x += BOX_W + GAP;
    }
    if st.stage_states.len() > per_row {
        let more = Rect::new(
            inner.x,
            inner.y + inner.height.saturating_sub(1),
            inner.width,
            1,
        );
        f.render_widget(
            Paragraph::new(format!(
                "stages {}–{} of {} (h/l to scroll)",
                app.graph.scroll + 1,
                (app.graph.scroll + per_row).min(st.stage_states.len()),
                st.stage_states.len()
            ))
            .style(app.theme.muted),
            more,
        );
    }
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

/// The line under a failed action in its stage box: its finding, else its
/// own summary.
fn failure_line<'a>(app: &'a App, d: &'a crate::api::ActionExecutionDetail) -> Option<&'a String> {
    if d.status != ActionStatus::Failed {
        return None;
    }
    // Supporting evidence (the audit trail) is not a cause: when no rule
    // matched, the action's own error is.
    app.diagnoses
        .get(&d.action_execution_id)
        .and_then(|f| f.iter().find(|f| f.rule != "audit.trail"))
        .map(|f| &f.title)
        .or(d.summary.as_ref())
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
    if col < inner.x {
        return None;
    }
    let slot = usize::from((col - inner.x) / (BOX_W + GAP));
    if (col - inner.x) % (BOX_W + GAP) >= BOX_W {
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
                .and_then(|d| failure_line(app, d))
                .is_some(),
        );
        if row >= y && row < y + lines {
            return Some(Hit::Action(i, j));
        }
        y += lines;
    }
    None
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

fn st_run_order(app: &App, stage: usize, action: usize) -> u32 {
    app.pipeline
        .as_deref()
        .and_then(|p| app.defs.get(p))
        .and_then(|d| d.stages.get(stage))
        .and_then(|s| s.actions.get(action))
        .map_or(1, |a| a.run_order)
}
