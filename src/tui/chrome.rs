//! The frame around the screens: the header (workspace, engine, what runs,
//! what waits, the clock), the footer (the focused screen's keys) and the
//! toasts.

use std::time::SystemTime;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::tui::app::screens;
use crate::tui::app::{App, Screen};
use crate::tui::keymap::Command;

#[derive(Debug, Clone)]
pub struct Toast {
    pub text: String,
    pub error: bool,
    pub until: SystemTime,
}

pub(crate) fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let clock = humantime::format_rfc3339_seconds(app.now).to_string();
    let clock = clock.get(11..19).unwrap_or("").to_owned();
    let running = app.running();
    let approvals = app.pending_approvals().len();
    let mut spans = vec![
        Span::styled(" pipedeck ", app.theme.title),
        Span::raw(format!("· {} · local · {} ", app.workspace, app.engine)),
    ];
    if running > 0 {
        spans.push(Span::styled(
            format!("· {running} running "),
            app.theme.in_progress,
        ));
    }
    if approvals > 0 {
        spans.push(Span::styled(
            format!("· {approvals} approval(s) pending "),
            app.theme.waiting,
        ));
    }
    if app.readonly {
        spans.push(Span::styled("· READ-ONLY ", app.theme.failed));
    }
    if let Some(p) = &app.store_problem {
        spans.push(Span::styled(format!("· STORE: {p} "), app.theme.failed));
    }
    if let Some(why) = &app.stale {
        spans.push(Span::styled(format!("· STALE: {why} "), app.theme.failed));
    }
    let left = Line::from(spans);
    let width = usize::from(area.width);
    let used: usize = left.width();
    let pad = width.saturating_sub(used + clock.len() + 1);
    let mut line = left;
    line.spans.push(Span::raw(" ".repeat(pad)));
    line.spans.push(Span::raw(format!("{clock} ")));
    f.render_widget(Paragraph::new(line).style(app.theme.header), area);
}

pub(crate) fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let scope = app.screen.scope();
    let wanted: &[Command] = match app.screen {
        Screen::Pipelines => screens::pipelines::KEYS,
        Screen::Pipeline => screens::pipeline::KEYS,
        Screen::Logs => screens::logs::KEYS,
        Screen::Approvals => screens::approvals::KEYS,
        Screen::Audit => screens::audit::KEYS,
        Screen::Environments => screens::environments::KEYS,
        Screen::Diagnosis => screens::diagnosis::KEYS,
    };
    // The full labels; else the short ones; else the short ones with only
    // `?` of the keys every screen has (the help lists them all).
    let keys = |short: bool, all_global: bool| {
        let global: &[Command] = if all_global {
            &[
                Command::Back,
                Command::Palette,
                Command::Help,
                Command::Quit,
            ]
        } else {
            &[Command::Help]
        };
        let mut spans = Vec::new();
        // First, so a narrow terminal still shows it.
        if let Some(note) = &app.backend_note {
            spans.push(Span::styled(format!(" {note} ·"), app.theme.waiting));
        }
        for c in wanted.iter().chain(global) {
            if app.readonly && c.mutates() {
                continue;
            }
            if let Some(k) = app.keymap.key_for(scope, *c) {
                // The focus keys go together: `1/2/3`.
                let k = match (*c, app.screen) {
                    (Command::Focus1, Screen::Environments) if k == "1" => {
                        let n = app.snap.envs.len().clamp(1, 9);
                        (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join("/")
                    }
                    _ => k,
                };
                spans.push(Span::styled(format!(" {k}"), app.theme.footer_key));
                spans.push(Span::styled(
                    if short {
                        format!(" {}", c.short_in(scope))
                    } else {
                        format!(" {} ", c.describe_in(scope))
                    },
                    app.theme.footer_text,
                ));
            }
        }
        spans
    };
    let fits = |s: &Vec<Span>| Line::from(s.clone()).width() <= usize::from(area.width);
    let mut spans = keys(false, true);
    if !fits(&spans) {
        spans = keys(true, true);
    }
    if !fits(&spans) {
        spans = keys(true, false);
    }
    if app.filter_editing {
        spans = vec![
            Span::styled(" filter: ", app.theme.footer_key),
            Span::raw(format!("{}▏", app.filter)),
        ];
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub(crate) fn draw_toasts(f: &mut Frame, app: &App, area: Rect) {
    for (i, t) in app.toasts.iter().rev().enumerate() {
        let w = (t.text.chars().count() as u16 + 4).min(area.width);
        let y = area.y + area.height.saturating_sub(2 + i as u16 * 3 + 1);
        let r = Rect::new(
            area.x + area.width.saturating_sub(w),
            y.saturating_sub(1),
            w,
            3,
        )
        .intersection(area);
        f.render_widget(Clear, r);
        f.render_widget(
            Paragraph::new(t.text.clone())
                .style(if t.error {
                    app.theme.toast_error
                } else {
                    app.theme.toast_info
                })
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .border_style(app.theme.border),
                ),
            r,
        );
    }
}

/// A key while the filter prompt (`/` on Pipelines and Audit) is open.
pub(crate) fn on_filter_key(app: &mut App, k: KeyEvent) {
    match k.code {
        KeyCode::Esc => {
            app.filter.clear();
            app.filter_editing = false;
        }
        KeyCode::Enter => app.filter_editing = false,
        KeyCode::Backspace => {
            app.filter.pop();
        }
        KeyCode::Char(c) => app.filter.push(c),
        _ => {}
    }
    app.clamp();
}
