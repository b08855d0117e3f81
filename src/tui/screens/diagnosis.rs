//! The Diagnosis screen: the findings for a failed action, with their
//! evidence; Enter jumps to a log line.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::api::ActionExecutionDetail;
use crate::api::types::ActionStatus;
use crate::tui::app::widgets::{block, strip_ansi};
use crate::tui::app::{App, Effect, Screen};
use crate::tui::keymap::Command;

#[derive(Debug, Clone, Default)]
pub struct DiagnosisView {
    /// The action the screen shows.
    pub action: Option<ActionExecutionDetail>,
    /// The selected row (a finding or one of its evidence lines).
    pub sel: usize,
}

/// The keys the footer shows on this screen (after them: back, palette,
/// help, quit).
pub(crate) const KEYS: &[Command] = &[Command::Open, Command::Down];

/// A command for the Diagnosis screen (the global ones are the App's).
pub(crate) fn on_command(app: &mut App, c: Command) -> Vec<Effect> {
    let rows = app.diag_rows();
    match c {
        Command::Down => {
            app.diagnosis.sel = (app.diagnosis.sel + 1).min(rows.len().saturating_sub(1))
        }
        Command::Up => app.diagnosis.sel = app.diagnosis.sel.saturating_sub(1),
        Command::Top => app.diagnosis.sel = 0,
        Command::Bottom => app.diagnosis.sel = rows.len().saturating_sub(1),
        Command::Open | Command::Logs => {
            let Some(a) = app.diagnosis.action.clone() else {
                return Vec::new();
            };
            let line = rows.get(app.diagnosis.sel).and_then(|(i, j)| {
                let f = app.diagnoses.get(&a.action_execution_id)?.get(*i)?;
                match f.evidence.get((*j)?)? {
                    // 1-based evidence; the log view counts from 0.
                    crate::diagnose::Evidence::LogLine { line, .. } => {
                        Some((*line as u64).saturating_sub(1))
                    }
                    _ => None,
                }
            });
            let mut fx = app.open_logs(a);
            if let Some(line) = line {
                // Jump to the evidence line, the cursor on it.
                app.logs.follow = false;
                let h = u64::from(app.logs.height.max(1));
                app.logs.top = line.saturating_sub(h / 3);
                fx = vec![Effect::ReadLog {
                    aeid: app.logs.aeid.clone(),
                    start: app.logs.top.saturating_sub(h),
                    count: h * 3,
                }];
                app.logs.cursor = line;
            }
            return fx;
        }
        _ => {}
    }
    Vec::new()
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let Some(a) = &app.diagnosis.action else {
        return;
    };
    let title = format!(
        "Diagnosis — {} / {} · attempt {}",
        a.stage_name, a.action_name, a.attempt
    );
    let mut lines: Vec<Line> = Vec::new();
    if let Some(s) = &a.summary {
        lines.push(Line::from(Span::styled(s.clone(), t.failed)));
        lines.push(Line::from(""));
    }
    match app.diagnoses.get(&a.action_execution_id) {
        None => lines.push(Line::from(Span::styled("diagnosing…", t.muted))),
        Some(list) if list.is_empty() => lines.push(Line::from(Span::styled(
            "no finding: nothing in the log or the records matches a known failure",
            t.muted,
        ))),
        Some(list) => {
            let rows = app.diag_rows();
            for (r, (i, j)) in rows.iter().enumerate() {
                let f = &list[*i];
                let sel = r == app.diagnosis.sel;
                let style = |s: Style| if sel { s.patch(t.selection) } else { s };
                match j {
                    None => {
                        if *i > 0 {
                            lines.push(Line::from(""));
                        }
                        lines.push(Line::from(vec![
                            Span::styled(format!("{}. {}", i + 1, f.title), style(t.title)),
                            Span::styled(
                                format!("  [{} · {:.0}%]", f.category, f.confidence * 100.0),
                                t.muted,
                            ),
                        ]));
                        for (k, l) in f.fix.lines().enumerate() {
                            lines.push(Line::from(Span::styled(
                                format!("   {}{l}", if k == 0 { "fix: " } else { "     " }),
                                t.succeeded,
                            )));
                        }
                    }
                    Some(j) => {
                        let text = match &f.evidence[*j] {
                            crate::diagnose::Evidence::LogLine { line, text } => {
                                format!("   ▸ log line {line}: {}", strip_ansi(text))
                            }
                            crate::diagnose::Evidence::Audit {
                                event_time,
                                event_name,
                                who,
                                error_code,
                            } => format!(
                                "   ▸ audit {} {event_name} by {who}{}",
                                event_time.get(..19).unwrap_or(event_time),
                                error_code
                                    .as_deref()
                                    .map(|c| format!(" → {c}"))
                                    .unwrap_or_default()
                            ),
                            crate::diagnose::Evidence::Health { name, detail, .. } => {
                                format!("   ▸ {name}: {detail}")
                            }
                            crate::diagnose::Evidence::TestCase { name } => {
                                format!("   ▸ failing test {name}")
                            }
                            crate::diagnose::Evidence::Status { field, text } => {
                                format!("   ▸ {field}: {text}")
                            }
                        };
                        lines.push(Line::from(Span::styled(text, style(t.base))));
                    }
                }
            }
        }
    }
    // Keep the selected row in view.
    let h = usize::from(area.height.saturating_sub(2));
    let sel_line = lines
        .iter()
        .position(|l| {
            l.spans
                .iter()
                .any(|s| s.style == s.style.patch(t.selection) && t.selection != Style::default())
        })
        .unwrap_or(0);
    let skip = sel_line.saturating_sub(h.saturating_sub(3));
    f.render_widget(
        Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>())
            .wrap(Wrap { trim: false })
            .block(block(app, title, true)),
        area,
    );
}

impl App {
    /// Failed actions of the shown pipeline that have no diagnosis yet:
    /// diagnose them in the background (the graph shows the top finding).
    pub fn auto_diagnose(&mut self) -> Vec<Effect> {
        let Some(st) = self.state() else {
            return Vec::new();
        };
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
                    execution: self.execution_of(&a).map(Box::new),
                    action: Box::new(a),
                }
            })
            .collect()
    }

    pub(crate) fn open_diagnosis(&mut self) -> Vec<Effect> {
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
        self.diagnosis.action = Some(d.clone());
        self.diagnosis.sel = 0;
        self.go(Screen::Diagnosis);
        if self.diagnoses.contains_key(&aeid) || self.diagnosing.contains(&aeid) {
            return Vec::new();
        }
        self.diagnosing.insert(aeid);
        vec![Effect::Diagnose {
            execution: self.execution_of(&d).map(Box::new),
            action: Box::new(d),
        }]
    }

    /// The execution an action ran in (not the latest one: after a restart
    /// or a newer run they differ, and the finding belongs to its own).
    fn execution_of(&self, a: &ActionExecutionDetail) -> Option<crate::api::ExecutionSummary> {
        self.executions()
            .iter()
            .find(|e| e.pipeline_execution_id == a.pipeline_execution_id)
            .cloned()
    }

    /// Rows of the Diagnosis screen: (finding index, evidence index).
    pub fn diag_rows(&self) -> Vec<(usize, Option<usize>)> {
        let Some(f) = self
            .diagnosis
            .action
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
}
