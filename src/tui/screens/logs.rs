//! The Logs screen: a window of an action's (or a replica's) log, read a
//! page at a time, with follow, wrap, timestamps and search.

use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::api::ActionExecutionDetail;
use crate::tui::app::widgets::{action_glyph, strip_ansi};
use crate::tui::app::{App, Effect, Screen};
use crate::tui::keymap::Command;

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

/// Lines `E` jumps to.
pub const ERROR_PATTERN: &str =
    r"(?i)(\berror\b|\bfailed\b|\bfailure\b|exception|exit status [1-9]|State: FAILED)";

impl LogView {
    /// Reads the last three screens of the log (and follows from there).
    pub(crate) fn read_tail(&self) -> Effect {
        Effect::ReadLog {
            aeid: self.aeid.clone(),
            start: u64::MAX,
            count: u64::from(self.height.max(10)) * 3,
        }
    }

    /// Reads three screens around `top`.
    pub(crate) fn read_window(&self) -> Effect {
        let h = u64::from(self.height.max(10));
        Effect::ReadLog {
            aeid: self.aeid.clone(),
            start: self.top.saturating_sub(h),
            count: h * 3,
        }
    }

    /// Shows `line` a third of the way down.
    pub(crate) fn goto(&mut self, line: u64) -> Vec<Effect> {
        let h = u64::from(self.height.max(1));
        self.follow = false;
        self.top = line.saturating_sub(h / 3);
        self.window()
    }

    /// Reads around `top` when the visible lines are not in the cache.
    pub(crate) fn window(&self) -> Vec<Effect> {
        let h = u64::from(self.height.max(1));
        let have = self.cache_start..self.cache_start + self.cache.len() as u64;
        let need_end = (self.top + h).min(self.total);
        if have.contains(&self.top) && (need_end == 0 || have.contains(&(need_end - 1))) {
            Vec::new()
        } else {
            vec![self.read_window()]
        }
    }

    /// A page read for this log (pages of another log are dropped).
    pub(crate) fn on_page(
        &mut self,
        aeid: String,
        total: u64,
        start: u64,
        lines: Vec<String>,
        times: Vec<Option<u64>>,
    ) {
        if aeid == self.aeid {
            self.total = total;
            self.cache_start = start;
            self.cache = lines;
            self.cache_times = times;
            if self.follow {
                self.top = total.saturating_sub(u64::from(self.height));
            }
        }
    }

    /// The engine wrote lines to the log this screen shows.
    pub(crate) fn on_appended(&mut self, lines: u64) -> Vec<Effect> {
        self.total = lines;
        if self.follow {
            let h = u64::from(self.height.max(1));
            self.top = lines.saturating_sub(h);
            return vec![self.read_window()];
        }
        Vec::new()
    }

    /// A key while the search prompt (`/`) is open.
    pub(crate) fn on_search_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let Some(mut input) = self.search_input.clone() else {
            return Vec::new();
        };
        match k.code {
            KeyCode::Esc => self.search_input = None,
            KeyCode::Enter => {
                self.search_input = None;
                if input.is_empty() {
                    self.search = None;
                    self.matches.clear();
                    return Vec::new();
                }
                self.search = Some(input.clone());
                return vec![Effect::SearchLog {
                    aeid: self.aeid.clone(),
                    pattern: input,
                    regex: false,
                }];
            }
            KeyCode::Backspace => {
                input.pop();
                self.search_input = Some(input);
            }
            KeyCode::Char(c) => {
                input.push(c);
                self.search_input = Some(input);
            }
            _ => {}
        }
        Vec::new()
    }
}

/// Search results for a log: jump to the first match at or below the view.
pub(crate) fn on_matches(app: &mut App, aeid: String, matches: Vec<u64>) -> Vec<Effect> {
    if aeid == app.logs.aeid {
        app.logs.matches = matches;
        app.logs.current = 0;
        if let Some(&first) = app.logs.matches.iter().find(|&&m| m >= app.logs.top) {
            app.logs.current = app
                .logs
                .matches
                .iter()
                .position(|&m| m == first)
                .unwrap_or(0);
            return app.logs.goto(first);
        }
        if app.logs.matches.is_empty() {
            app.toast("no match", true);
        }
    }
    Vec::new()
}

impl App {
    /// Opens the Logs screen on an action's log, following its end.
    pub(crate) fn open_logs(&mut self, detail: ActionExecutionDetail) -> Vec<Effect> {
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
        vec![self.logs.read_tail()]
    }
}

/// The keys the footer shows on this screen (after them: back, palette,
/// help, quit).
pub(crate) const KEYS: &[Command] = &[
    Command::Follow,
    Command::Filter,
    Command::NextMatch,
    Command::NextError,
    Command::Wrap,
];

/// A command for the Logs screen (the global ones are the App's).
pub(crate) fn on_command(app: &mut App, c: Command) -> Vec<Effect> {
    let h = u64::from(app.logs.height.max(1));
    let max_top = app.logs.total.saturating_sub(h);
    match c {
        Command::Down => {
            app.logs.follow = false;
            app.logs.top = (app.logs.top + 1).min(max_top);
        }
        Command::Up => {
            app.logs.follow = false;
            app.logs.top = app.logs.top.saturating_sub(1);
        }
        Command::PageDown => {
            app.logs.follow = false;
            app.logs.top = (app.logs.top + h).min(max_top);
        }
        Command::PageUp => {
            app.logs.follow = false;
            app.logs.top = app.logs.top.saturating_sub(h);
        }
        Command::Top => {
            app.logs.follow = false;
            app.logs.top = 0;
        }
        Command::Bottom | Command::Follow => {
            app.logs.follow = c == Command::Bottom || !app.logs.follow;
            app.logs.top = max_top;
        }
        Command::Wrap => app.logs.wrap = !app.logs.wrap,
        Command::Timestamps => app.logs.timestamps = !app.logs.timestamps,
        Command::Filter => app.logs.search_input = Some(String::new()),
        Command::NextMatch | Command::PrevMatch => {
            if app.logs.matches.is_empty() {
                app.toast("no search: press / to search", true);
                return Vec::new();
            }
            let n = app.logs.matches.len();
            app.logs.current = if c == Command::NextMatch {
                (app.logs.current + 1) % n
            } else {
                (app.logs.current + n - 1) % n
            };
            let line = app.logs.matches[app.logs.current];
            return app.logs.goto(line);
        }
        Command::NextError => {
            return vec![Effect::SearchLog {
                aeid: app.logs.aeid.clone(),
                pattern: ERROR_PATTERN.into(),
                regex: true,
            }];
        }
        _ => return Vec::new(),
    }
    app.logs.window()
}

pub fn draw(f: &mut Frame, app: &mut App, area: Rect) {
    let lv = &app.logs;
    let status = lv.detail.as_ref().map(|d| {
        let (g, s) = action_glyph(app, d);
        Span::styled(format!("{g} {} ", d.status.as_str()), s)
    });
    let report = lv
        .detail
        .as_ref()
        .and_then(|d| d.test_report.as_ref())
        .map(|t| {
            Span::styled(
                format!(
                    "tests: {} passed, {} failed, {} skipped{} ",
                    t.passed,
                    t.failed,
                    t.skipped,
                    if t.failing.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", t.failing.join(", "))
                    }
                ),
                if t.failed > 0 {
                    app.theme.failed
                } else {
                    app.theme.succeeded
                },
            )
        });
    let mut title = vec![Span::styled(format!(" {} ", lv.title), app.theme.title)];
    title.extend(status);
    title.extend(report);
    // Buildspec phases with their status and duration.
    if let Some(d) = &lv.detail {
        for p in &d.phases {
            let (g, st) = match p.phase_status.as_deref() {
                Some("SUCCEEDED") => ("✔", app.theme.succeeded),
                Some("FAILED") => ("✘", app.theme.failed),
                Some(_) => ("■", app.theme.stopped),
                None => ("–", app.theme.skipped),
            };
            let took = if p.phase_status.is_some() {
                format!("{:.1}s", p.duration_ms as f64 / 1000.0)
            } else {
                "skipped".into()
            };
            title.push(Span::styled(format!("{g} {} {took} ", p.phase_type), st));
        }
    }
    let b = Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border_focus)
        .title(Line::from(title));
    let inner = b.inner(area);
    f.render_widget(b, area);
    let [text, status_line] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    app.logs.height = text.height;
    let lv = &app.logs;
    let gutter = lv.total.max(1).to_string().len();
    let mut lines = Vec::new();
    for n in lv.top..(lv.top + u64::from(text.height)).min(lv.total) {
        let Some(raw) = n
            .checked_sub(lv.cache_start)
            .and_then(|i| lv.cache.get(i as usize))
        else {
            lines.push(Line::from(Span::styled(
                format!("{:>gutter$} …", n + 1),
                app.theme.muted,
            )));
            continue;
        };
        let l = strip_ansi(raw);
        let style = log_line_style(app, &l);
        let mut spans = vec![Span::styled(
            format!("{:>gutter$} ", n + 1),
            app.theme.log_timestamp,
        )];
        if lv.timestamps {
            let t = n
                .checked_sub(lv.cache_start)
                .and_then(|i| lv.cache_times.get(i as usize).copied().flatten())
                .map(|ms| {
                    let s = humantime::format_rfc3339_millis(
                        SystemTime::UNIX_EPOCH + Duration::from_millis(ms),
                    )
                    .to_string();
                    s.get(11..23).unwrap_or("").to_owned()
                })
                .unwrap_or_else(|| " ".repeat(12));
            spans.push(Span::styled(format!("{t} "), app.theme.log_timestamp));
        }
        let searching = lv
            .search
            .as_ref()
            .is_some_and(|q| !q.is_empty() && l.contains(q.as_str()));
        if !searching && raw.contains('\x1b') {
            // Keep the build's own colours.
            use ansi_to_tui::IntoText;
            if let Ok(text) = raw.as_bytes().into_text()
                && let Some(first) = text.lines.into_iter().next()
            {
                spans.extend(first.spans);
                lines.push(Line::from(spans));
                continue;
            }
        }
        match &lv.search {
            Some(q) if !q.is_empty() && l.contains(q.as_str()) => {
                let hl = if lv.matches.get(lv.current) == Some(&n) {
                    app.theme.search_current
                } else {
                    app.theme.search_match
                };
                let mut rest: &str = &l;
                while let Some(i) = rest.find(q.as_str()) {
                    spans.push(Span::styled(rest[..i].to_owned(), style));
                    spans.push(Span::styled(q.clone(), hl));
                    rest = &rest[i + q.len()..];
                }
                spans.push(Span::styled(rest.to_owned(), style));
            }
            _ => spans.push(Span::styled(l.into_owned(), style)),
        }
        lines.push(Line::from(spans));
    }
    let mut p = Paragraph::new(lines);
    if lv.wrap {
        p = p.wrap(Wrap { trim: false });
    }
    f.render_widget(p, text);
    let end = (lv.top + u64::from(text.height)).min(lv.total);
    let mut info = format!(
        " lines {}–{end} of {} · follow {} · wrap {} · times {}",
        if lv.total == 0 { 0 } else { lv.top + 1 },
        lv.total,
        if lv.follow { "on" } else { "off" },
        if lv.wrap { "on" } else { "off" },
        if lv.timestamps { "on" } else { "off" },
    );
    if let Some(q) = &lv.search {
        info.push_str(&format!(" · /{q}: {} match(es)", lv.matches.len()));
    }
    let line = match &lv.search_input {
        Some(buf) => Line::from(vec![
            Span::styled(" search: ", app.theme.footer_key),
            Span::raw(format!("{buf}▏")),
        ]),
        None => Line::from(Span::styled(info, app.theme.muted)),
    };
    f.render_widget(Paragraph::new(line), status_line);
}

fn log_line_style(app: &App, l: &str) -> Style {
    if l.contains("[Container] Entering phase") || l.contains("Phase complete:") {
        if l.contains("State: FAILED") {
            app.theme.failed
        } else {
            app.theme.log_phase
        }
    } else if regex_error().is_match(l) {
        app.theme.log_error
    } else if l.to_lowercase().contains("warn") {
        app.theme.log_warn
    } else {
        app.theme.log_info
    }
}

fn regex_error() -> &'static regex::Regex {
    static R: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(ERROR_PATTERN).unwrap_or_else(|_| unreachable!())
    });
    &R
}
