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
            if i == app.sel_pipeline {
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

    pub(crate) fn pipelines_cmd(&mut self, c: Command) -> Vec<Effect> {
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
}
