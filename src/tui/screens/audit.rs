//! The Audit screen: the audit trail, filtered; Enter opens a row's full
//! CloudTrail-shaped record, `y` copies its event id.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table};

use crate::api::AuditEvent;
use crate::tui::app::modals::Modal;
use crate::tui::app::screens::approvals::column_widths;
use crate::tui::app::widgets::{block, truncate};
use crate::tui::app::{App, Effect};
use crate::tui::keymap::Command;

#[derive(Debug, Clone, Default)]
pub struct AuditView {
    /// The trail as last read (newest first).
    pub events: Vec<AuditEvent>,
    /// The selected row among the visible (filtered) events.
    pub sel: usize,
}

impl AuditView {
    pub(crate) fn on_loaded(&mut self, events: Vec<AuditEvent>) {
        self.events = events;
        self.sel = self.sel.min(self.events.len().saturating_sub(1));
    }
}

/// The keys the footer shows on this screen (after them: back, palette,
/// help, quit).
pub(crate) const KEYS: &[Command] = &[Command::Open, Command::Copy, Command::Filter];

const WIDTHS: [Constraint; 5] = [
    Constraint::Length(19),
    Constraint::Length(24),
    Constraint::Length(26),
    Constraint::Length(28),
    Constraint::Min(10),
];

/// An audit event as CloudTrail prints it (`eventVersion` … `readOnly`),
/// one line per line of its pretty JSON.
pub(crate) fn record_lines(e: &AuditEvent) -> Vec<String> {
    serde_json::to_string_pretty(e)
        .unwrap_or_else(|err| format!("the record cannot be shown: {err}"))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A command for the Audit screen (the global ones are the App's).
pub(crate) fn on_command(app: &mut App, c: Command) -> Vec<Effect> {
    let n = app.audit_visible().len();
    match c {
        Command::Down => app.audit.sel = (app.audit.sel + 1).min(n.saturating_sub(1)),
        Command::Up => app.audit.sel = app.audit.sel.saturating_sub(1),
        Command::Top => app.audit.sel = 0,
        Command::Bottom => app.audit.sel = n.saturating_sub(1),
        Command::Filter => app.filter_editing = true,
        Command::Open => {
            let Some(e) = app.audit_visible().get(app.audit.sel).map(|e| (*e).clone()) else {
                app.toast("no audit event is selected", true);
                return Vec::new();
            };
            app.modal = Some(Modal::Record {
                title: format!("{} · {}", e.event_name, e.event_time),
                lines: record_lines(&e),
                scroll: 0,
                id: e.event_id.clone(),
            });
        }
        Command::Copy => {
            let id = app
                .audit_visible()
                .get(app.audit.sel)
                .map(|e| e.event_id.clone());
            return app.copy(id, "no audit event is selected");
        }
        _ => {}
    }
    Vec::new()
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let w = column_widths(area, &WIDTHS);
    let cut = |s: String, i: usize| truncate(&s, w.get(i).copied().unwrap_or(10));
    let rows: Vec<Row> = app
        .audit_visible()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let params = e.request_parameters.as_object().map(|o| {
                o.iter()
                    .filter(|(k, _)| *k != "op")
                    .map(|(k, v)| {
                        format!(
                            "{k}={}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            let err = e.error_code.clone().unwrap_or_default();
            let row = Row::new(vec![
                Cell::from(e.event_time.get(..19).unwrap_or("").replace('T', " ")),
                Cell::from(cut(e.event_name.clone(), 1)),
                Cell::from(cut(
                    e.user_identity
                        .user_name
                        .clone()
                        .unwrap_or_else(|| e.user_identity.principal_id.clone()),
                    2,
                )),
                Cell::from(Span::styled(cut(err, 3), app.theme.failed)),
                Cell::from(cut(params.unwrap_or_default(), 4)),
            ]);
            if i == app.audit.sel {
                row.style(app.theme.selection)
            } else {
                row
            }
        })
        .collect();
    let title = if app.filter.is_empty() {
        "Audit trail".to_owned()
    } else {
        format!("Audit trail /{}", app.filter)
    };
    let table = Table::new(rows, WIDTHS)
        .header(Row::new(["TIME", "EVENT", "WHO", "ERROR", "REQUEST"]).style(app.theme.muted))
        .block(block(app, title, true));
    f.render_widget(table, area);
}

impl App {
    pub fn audit_visible(&self) -> Vec<&AuditEvent> {
        let f = self.filter.to_lowercase();
        self.audit
            .events
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
