//! The Approvals screen: pending manual approvals of every pipeline, and
//! the ones answered in the latest executions.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use crate::api::ActionExecutionDetail;
use crate::api::types::ActionStatus;
use crate::tui::app::modals::{Modal, Pending};
use crate::tui::app::widgets::{between, block};
use crate::tui::app::{App, Effect, Screen};
use crate::tui::keymap::Command;

#[derive(Debug, Clone, Default)]
pub struct ApprovalsView {
    /// The selected pending approval.
    pub sel: usize,
}

/// A pending approval, found in the pipeline states.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingApproval {
    pub pipeline: String,
    pub stage: String,
    pub action: ActionExecutionDetail,
}

/// The keys the footer shows on this screen (after them: back, palette,
/// help, quit).
pub(crate) const KEYS: &[Command] = &[Command::Approve, Command::Reject, Command::Open];

/// A command for the Approvals screen (the global ones are the App's).
pub(crate) fn on_command(app: &mut App, c: Command) -> Vec<Effect> {
    let list = app.pending_approvals();
    match c {
        Command::Down => {
            app.approvals.sel = (app.approvals.sel + 1).min(list.len().saturating_sub(1))
        }
        Command::Up => app.approvals.sel = app.approvals.sel.saturating_sub(1),
        Command::Approve | Command::Reject => {
            let Some(a) = list.get(app.approvals.sel) else {
                app.toast("no approval is pending", true);
                return Vec::new();
            };
            let (pipeline, stage, action) = (
                a.pipeline.clone(),
                a.stage.clone(),
                a.action.action_name.clone(),
            );
            app.ask_approval(c, pipeline, stage, action);
        }
        Command::Open => {
            if let Some(a) = list.get(app.approvals.sel) {
                app.pipeline = Some(a.pipeline.clone());
                app.go(Screen::Pipeline);
            }
        }
        _ => {}
    }
    Vec::new()
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let list = app.pending_approvals();
    let decided = app.decided_approvals();
    let [top, detail] = Layout::vertical([Constraint::Min(5), Constraint::Length(7)]).areas(area);
    let mut rows: Vec<Row> = list
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let ap = a.action.approval.as_ref();
            let row = Row::new(vec![
                Cell::from(Span::styled("⏸ pending", app.theme.waiting)),
                Cell::from(a.pipeline.clone()),
                Cell::from(format!("{}/{}", a.stage, a.action.action_name)),
                Cell::from(ap.and_then(|x| x.custom_data.clone()).unwrap_or_default()),
                Cell::from(between(&a.action.start_time, None, app.now)),
                Cell::from(
                    ap.map(|x| x.expires.get(..16).unwrap_or("").replace('T', " "))
                        .unwrap_or_default(),
                ),
            ]);
            if i == app.approvals.sel {
                row.style(app.theme.selection)
            } else {
                row
            }
        })
        .collect();
    for a in &decided {
        let Some(r) = a.action.approval.as_ref().and_then(|x| x.result.as_ref()) else {
            continue;
        };
        let (glyph, style) = if r.status == "Approved" {
            ("✔", app.theme.succeeded)
        } else {
            ("✘", app.theme.failed)
        };
        rows.push(Row::new(vec![
            Cell::from(Span::styled(format!("{glyph} {}", r.status), style)),
            Cell::from(a.pipeline.clone()),
            Cell::from(format!("{}/{}", a.stage, a.action.action_name)),
            Cell::from(if r.summary.is_empty() {
                String::new()
            } else {
                format!("\u{201c}{}\u{201d}", r.summary)
            }),
            Cell::from(format!("by {}", r.by)),
            Cell::from(r.at.get(..16).unwrap_or("").replace('T', " ")),
        ]));
    }
    let empty = rows.is_empty();
    let table = Table::new(
        rows,
        [
            Constraint::Length(12),
            Constraint::Length(14),
            Constraint::Length(20),
            Constraint::Min(20),
            Constraint::Length(12),
            Constraint::Length(17),
        ],
    )
    .header(
        Row::new([
            "STATUS",
            "PIPELINE",
            "ACTION",
            "CUSTOM DATA / SUMMARY",
            "WAITING / BY",
            "EXPIRES / AT",
        ])
        .style(app.theme.muted),
    )
    .block(block(app, "Approvals".into(), true));
    f.render_widget(table, top);
    if empty {
        let inner = top.inner(ratatui::layout::Margin::new(2, 2));
        f.render_widget(
            Paragraph::new("no approval is pending").style(app.theme.muted),
            inner,
        );
    }
    let text: Vec<Line> = match list.get(app.approvals.sel) {
        Some(a) => {
            let ap = a.action.approval.as_ref();
            vec![
                Line::from(Span::styled(
                    format!("{} / {} / {}", a.pipeline, a.stage, a.action.action_name),
                    app.theme.title,
                )),
                Line::from(
                    ap.and_then(|x| x.custom_data.clone())
                        .unwrap_or_else(|| "(no CustomData)".into()),
                ),
                Line::from(Span::styled(
                    ap.and_then(|x| x.external_entity_link.clone())
                        .map(|l| format!("link: {l}"))
                        .unwrap_or_default(),
                    app.theme.muted,
                )),
                Line::from(Span::styled(
                    format!(
                        "execution {} · a: approve · x: reject with a summary",
                        crate::api::short_id(&a.action.pipeline_execution_id, 8)
                    ),
                    app.theme.muted,
                )),
            ]
        }
        None => vec![Line::from(Span::styled(
            "nothing selected",
            app.theme.muted,
        ))],
    };
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(block(app, "Details".into(), false)),
        detail,
    );
}

impl App {
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

    /// Approve asks for confirmation; reject first asks for a summary.
    pub(crate) fn ask_approval(
        &mut self,
        c: Command,
        pipeline: String,
        stage: String,
        action: String,
    ) {
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
}
