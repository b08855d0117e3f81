//! The Pipelines screen: every pipeline with its latest execution, filtered
//! by name.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use crate::api::{PipelineSummary, Request};
use crate::tui::app::modals::Pending;
use crate::tui::app::widgets::{
    between, block, exec_glyph, exec_style, parse_time, short_duration,
};
use crate::tui::app::{App, Effect, Screen};
use crate::tui::keymap::Command;

/// The Pipelines screen's state (the filter is the App's).
#[derive(Debug, Clone, Default)]
pub struct PipelinesView {
    /// The selected row among the visible pipelines.
    pub sel: usize,
}

/// The keys the footer shows on this screen (after them: back, palette,
/// help, quit).
pub(crate) const KEYS: &[Command] = &[
    Command::Open,
    Command::Start,
    Command::Stop,
    Command::Filter,
    Command::Approvals,
];

/// A command for the Pipelines screen (the global ones are the App's).
pub(crate) fn on_command(app: &mut App, c: Command) -> Vec<Effect> {
    let n = app.visible_pipelines().len();
    let name = app
        .visible_pipelines()
        .get(app.pipelines.sel)
        .map(|p| p.name.clone());
    match c {
        Command::Down => app.pipelines.sel = (app.pipelines.sel + 1).min(n.saturating_sub(1)),
        Command::Up => app.pipelines.sel = app.pipelines.sel.saturating_sub(1),
        Command::Top => app.pipelines.sel = 0,
        Command::Bottom => app.pipelines.sel = n.saturating_sub(1),
        Command::Filter => app.filter_editing = true,
        Command::Open | Command::Right => {
            if let Some(name) = name {
                open(app, name);
            }
        }
        Command::Start => {
            if let Some(name) = name {
                return vec![start(name)];
            }
        }
        Command::Stop => {
            if let Some(p) = app.visible_pipelines().get(app.pipelines.sel)
                && let Some(e) = &p.latest_execution
                && !e.status.is_terminal()
            {
                let op = Pending::Stop {
                    pipeline: p.name.clone(),
                    execution: e.pipeline_execution_id.clone(),
                };
                app.confirm(op);
            } else {
                app.toast("nothing to stop: no execution is in progress", true);
            }
        }
        _ => {}
    }
    Vec::new()
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let title = if app.filter.is_empty() {
        "Pipelines".to_owned()
    } else {
        format!("Pipelines /{}", app.filter)
    };
    let rows: Vec<Row> = app
        .visible_pipelines()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (glyph, status, style, stage, age, dur) = match &p.latest_execution {
                Some(e) => (
                    exec_glyph(e.status),
                    e.status.as_str().to_owned(),
                    exec_style(app, e.status),
                    e.current_stage
                        .clone()
                        .filter(|_| !e.status.is_terminal())
                        .unwrap_or_default(),
                    parse_time(&e.start_time)
                        .map(|t| {
                            format!(
                                "{} ago",
                                short_duration(app.now.duration_since(t).unwrap_or_default())
                            )
                        })
                        .unwrap_or_default(),
                    between(
                        &e.start_time,
                        e.status
                            .is_terminal()
                            .then_some(e.last_update_time.as_str()),
                        app.now,
                    ),
                ),
                None => (
                    "·",
                    "no executions".to_owned(),
                    app.theme.muted,
                    String::new(),
                    String::new(),
                    String::new(),
                ),
            };
            let history: Vec<Span> = app
                .snap
                .executions
                .get(&p.name)
                .map(|v| {
                    v.iter()
                        .take(10)
                        .rev()
                        .map(|e| Span::styled(exec_glyph(e.status), exec_style(app, e.status)))
                        .collect()
                })
                .unwrap_or_default();
            let approvals = if p.pending_approvals > 0 {
                Span::styled(format!("⏸ {}", p.pending_approvals), app.theme.waiting)
            } else {
                Span::raw("")
            };
            let row = Row::new(vec![
                Cell::from(Span::styled(format!("{glyph} {status}"), style)),
                Cell::from(p.name.clone()),
                Cell::from(stage),
                Cell::from(age),
                Cell::from(dur),
                Cell::from(Line::from(history)),
                Cell::from(approvals),
            ]);
            if i == app.pipelines.sel {
                row.style(app.theme.selection)
            } else {
                row
            }
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Length(15),
            Constraint::Min(16),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(11),
            Constraint::Length(5),
        ],
    )
    .header(
        Row::new([
            "STATUS", "PIPELINE", "STAGE", "STARTED", "TOOK", "LAST 10", "APPR",
        ])
        .style(app.theme.muted),
    )
    .block(block(app, title, true));
    f.render_widget(table, area);
    if empty {
        let inner = area.inner(ratatui::layout::Margin::new(2, 2));
        f.render_widget(
            Paragraph::new("no pipeline matches").style(app.theme.muted),
            inner,
        );
    }
}

impl App {
    /// Pipelines that match the filter.
    pub fn visible_pipelines(&self) -> Vec<&PipelineSummary> {
        let f = self.filter.to_lowercase();
        self.snap
            .pipelines
            .iter()
            .filter(|p| f.is_empty() || p.name.to_lowercase().contains(&f))
            .collect()
    }
}

pub(crate) fn start(pipeline: String) -> Effect {
    Effect::Op {
        label: format!("start {pipeline}"),
        request: Request::StartPipelineExecution {
            pipeline_name: pipeline,
            variables: BTreeMap::new(),
            source_revisions: Vec::new(),
        },
    }
}

/// Opens a pipeline's graph (Enter here, `:pipeline NAME`): a pipeline
/// other than the one shown starts at its first stage and newest
/// execution, and every pipeline opens where its activity is.
pub(crate) fn open(app: &mut App, name: String) {
    if app.pipeline.as_deref() != Some(&name) {
        app.sel_stage = 0;
        app.sel_action = 0;
        app.graph.sel_exec = 0;
        app.graph.viewed = None;
    }
    app.pipeline = Some(name);
    app.graph.pinned = false;
    crate::tui::app::screens::pipeline::follow_activity(app);
    app.go(Screen::Pipeline);
}
