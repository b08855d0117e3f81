//! The Logs screen: a window of an action's (or a replica's) log, read a
//! page at a time, with a cursor line, follow, wrap, timestamps, search
//! (every occurrence counted and highlighted alike), a filter mode that
//! shows only the matching lines, and a walk through the error lines.

use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use std::collections::BTreeMap;

use crate::api::ActionExecutionDetail;
use crate::tui::app::screens::log_lines::{self, ErrorLines, LineKind, LogScan, classify};
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
    /// The cursor line (0-based): `E` and the matches move it, `Enter` in
    /// the filter mode lands on it.
    pub cursor: u64,
    pub search: Option<String>,
    pub search_input: Option<String>,
    /// Every occurrence of the search: (line, byte offset in the line
    /// without its colours), in order.
    pub matches: Vec<(u64, usize)>,
    /// The index in `matches` of the current one.
    pub current: usize,
    /// The text of the lines with a match (what the filter mode shows).
    pub match_lines: BTreeMap<u64, String>,
    /// The filter mode: only the matching lines are shown.
    pub only_matches: bool,
    /// The selected row of the filter mode (an index in `match_lines`).
    pub filter_sel: usize,
    /// The search prompt was opened for the filter mode (`F`).
    pub filter_after_search: bool,
    /// The error lines, as of a line count.
    pub errors: Option<ErrorLines>,
    /// An error walk (forward?) waiting for the error lines.
    pub pending_walk: Option<bool>,
    pub detail: Option<ActionExecutionDetail>,
    pub height: u16,
}

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

    /// Puts the cursor on `line`, shown a third of the way down.
    pub(crate) fn goto(&mut self, line: u64) -> Vec<Effect> {
        let h = u64::from(self.height.max(1));
        self.follow = false;
        self.cursor = line;
        self.top = line.saturating_sub(h / 3);
        self.window()
    }

    /// Moves the cursor by `by` lines, scrolling to keep it in view.
    fn move_cursor(&mut self, by: i64) {
        let h = u64::from(self.height.max(1));
        self.follow = false;
        let last = self.total.saturating_sub(1);
        self.cursor = self.cursor.saturating_add_signed(by).min(last);
        if self.cursor < self.top {
            self.top = self.cursor;
        } else if self.cursor >= self.top + h {
            self.top = self.cursor + 1 - h;
        }
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
                self.cursor = total.saturating_sub(1);
            }
        }
    }

    /// The engine wrote lines to the log this screen shows.
    pub(crate) fn on_appended(&mut self, lines: u64) -> Vec<Effect> {
        self.total = lines;
        if self.follow {
            let h = u64::from(self.height.max(1));
            self.top = lines.saturating_sub(h);
            self.cursor = lines.saturating_sub(1);
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
            KeyCode::Esc => {
                self.search_input = None;
                self.filter_after_search = false;
            }
            KeyCode::Enter => {
                self.search_input = None;
                self.only_matches = std::mem::take(&mut self.filter_after_search);
                self.matches.clear();
                self.match_lines.clear();
                if input.is_empty() {
                    self.search = None;
                    self.only_matches = false;
                    return Vec::new();
                }
                self.search = Some(input.clone());
                return vec![Effect::ScanLog {
                    aeid: self.aeid.clone(),
                    scan: LogScan::Search(input),
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
    Command::OnlyMatches,
    Command::NextMatch,
    Command::NextError,
    Command::PrevError,
    Command::Wrap,
];

/// A command for the Logs screen (the global ones are the App's).
pub(crate) fn on_command(app: &mut App, c: Command) -> Vec<Effect> {
    let h = u64::from(app.logs.height.max(1));
    let max_top = app.logs.total.saturating_sub(h);
    if app.logs.only_matches
        && let Some(fx) = filter_command(app, c)
    {
        return fx;
    }
    let lv = &mut app.logs;
    match c {
        Command::Down => lv.move_cursor(1),
        Command::Up => lv.move_cursor(-1),
        Command::PageDown => {
            lv.top = (lv.top + h).min(max_top);
            lv.move_cursor(h as i64);
        }
        Command::PageUp => {
            lv.top = lv.top.saturating_sub(h);
            lv.move_cursor(-(h as i64));
        }
        Command::Top => {
            lv.follow = false;
            lv.top = 0;
            lv.cursor = 0;
        }
        Command::Bottom | Command::Follow => {
            lv.follow = c == Command::Bottom || !lv.follow;
            lv.top = max_top;
            lv.cursor = lv.total.saturating_sub(1);
        }
        Command::Wrap => lv.wrap = !lv.wrap,
        Command::Timestamps => lv.timestamps = !lv.timestamps,
        Command::Filter => lv.search_input = Some(String::new()),
        Command::OnlyMatches => {
            if lv.search.is_none() {
                // Ask for the text first; Enter then shows only its lines.
                lv.search_input = Some(String::new());
                lv.filter_after_search = true;
            } else if lv.match_lines.is_empty() {
                app.toast("no matching lines to show", true);
            } else {
                lv.only_matches = true;
                lv.filter_sel = lv.filter_sel.min(lv.match_lines.len() - 1);
            }
            return Vec::new();
        }
        Command::NextMatch | Command::PrevMatch => {
            if lv.matches.is_empty() {
                app.toast("no search: press / to search", true);
                return Vec::new();
            }
            let n = lv.matches.len();
            lv.current = if c == Command::NextMatch {
                (lv.current + 1) % n
            } else {
                (lv.current + n - 1) % n
            };
            let line = lv.matches[lv.current].0;
            lv.filter_sel = lv.match_lines.keys().position(|&k| k == line).unwrap_or(0);
            return lv.goto(line);
        }
        Command::NextError | Command::PrevError => {
            return log_lines::walk_errors(app, c == Command::NextError);
        }
        _ => return Vec::new(),
    }
    app.logs.window()
}

/// The filter mode's own moves: rows are the matching lines. `None`: the
/// command works as in the whole log.
fn filter_command(app: &mut App, c: Command) -> Option<Vec<Effect>> {
    let lv = &mut app.logs;
    let rows = lv.match_lines.len();
    let h = usize::from(lv.height.max(1));
    let last = rows.saturating_sub(1);
    match c {
        Command::Down => lv.filter_sel = (lv.filter_sel + 1).min(last),
        Command::Up => lv.filter_sel = lv.filter_sel.saturating_sub(1),
        Command::PageDown => lv.filter_sel = (lv.filter_sel + h).min(last),
        Command::PageUp => lv.filter_sel = lv.filter_sel.saturating_sub(h),
        Command::Top => lv.filter_sel = 0,
        Command::Bottom => lv.filter_sel = last,
        // Back to the whole log, on the selected line.
        Command::OnlyMatches | Command::Open => {
            lv.only_matches = false;
            let line = lv.match_lines.keys().nth(lv.filter_sel).copied();
            return Some(line.map_or_else(Vec::new, |n| lv.goto(n)));
        }
        _ => return None,
    }
    Some(Vec::new())
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
    if app.logs.only_matches {
        draw_only_matches(f, app, text, status_line);
        return;
    }
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
        let at_cursor = !lv.follow && n == lv.cursor;
        let mut spans = vec![Span::styled(
            format!("{:>gutter$}{}", n + 1, if at_cursor { "▶" } else { " " }),
            if at_cursor {
                app.theme.selection
            } else {
                app.theme.log_timestamp
            },
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
        spans.extend(text_spans(app, n, raw));
        let line = Line::from(spans);
        lines.push(if at_cursor {
            line.style(app.theme.selection)
        } else {
            line
        });
    }
    let mut p = Paragraph::new(lines);
    if lv.wrap {
        p = p.wrap(Wrap { trim: false });
    }
    f.render_widget(p, text);
    let end = (lv.top + u64::from(text.height)).min(lv.total);
    let mut info = format!(
        " lines {}–{end} of {}{} · follow {} · wrap {} · times {}",
        if lv.total == 0 { 0 } else { lv.top + 1 },
        lv.total,
        if lv.follow || lv.total == 0 {
            String::new()
        } else {
            format!(" · at {}", lv.cursor + 1)
        },
        if lv.follow { "on" } else { "off" },
        if lv.wrap { "on" } else { "off" },
        if lv.timestamps { "on" } else { "off" },
    );
    if let Some(q) = &lv.search {
        info.push_str(&format!(" · /{q}: {}", match_counter(lv)));
    }
    draw_status(f, app, info, status_line);
}

/// `match 3/7` (every highlighted occurrence counts), or that there is none.
fn match_counter(lv: &LogView) -> String {
    if lv.matches.is_empty() {
        "no match".into()
    } else {
        format!(
            "match {}/{} on {} line(s)",
            lv.current + 1,
            lv.matches.len(),
            lv.match_lines.len()
        )
    }
}

/// The status line, or the search prompt while it is open.
fn draw_status(f: &mut Frame, app: &App, info: String, area: Rect) {
    let line = match &app.logs.search_input {
        Some(buf) => Line::from(vec![
            Span::styled(
                if app.logs.filter_after_search {
                    " show only lines with: "
                } else {
                    " search: "
                },
                app.theme.footer_key,
            ),
            Span::raw(format!("{buf}▏")),
        ]),
        None => Line::from(Span::styled(info, app.theme.muted)),
    };
    f.render_widget(Paragraph::new(line), area);
}

/// A line's text: the build's own colours, or the kind's colour with the
/// search's occurrences highlighted (only on the lines the search found,
/// so what is highlighted is what the counter counts).
fn text_spans(app: &App, n: u64, raw: &str) -> Vec<Span<'static>> {
    let lv = &app.logs;
    let l = strip_ansi(raw);
    let style = log_line_style(app, &l);
    let query = lv
        .search
        .as_deref()
        .filter(|q| !q.is_empty() && lv.match_lines.contains_key(&n));
    let Some(q) = query else {
        if raw.contains('\x1b') {
            // Keep the build's own colours.
            use ansi_to_tui::IntoText;
            if let Ok(text) = raw.as_bytes().into_text()
                && let Some(first) = text.lines.into_iter().next()
            {
                return first.spans;
            }
        }
        return vec![Span::styled(l.into_owned(), style)];
    };
    let current = lv.matches.get(lv.current).copied();
    let mut spans = Vec::new();
    let mut from = 0;
    for at in log_lines::occurrences(&l, q) {
        let hl = if current == Some((n, at)) {
            app.theme.search_current
        } else {
            app.theme.search_match
        };
        spans.push(Span::styled(l[from..at].to_owned(), style));
        spans.push(Span::styled(q.to_owned(), hl));
        from = at + q.len();
    }
    spans.push(Span::styled(l[from..].to_owned(), style));
    spans
}

/// The filter mode: only the lines with a match, with their numbers.
fn draw_only_matches(f: &mut Frame, app: &App, text: Rect, status_line: Rect) {
    let lv = &app.logs;
    let h = usize::from(text.height.max(1));
    let first = lv.filter_sel.saturating_sub(h.saturating_sub(1));
    let gutter = lv.total.max(1).to_string().len();
    let lines: Vec<Line> = lv
        .match_lines
        .iter()
        .enumerate()
        .skip(first)
        .take(h)
        .map(|(row, (&n, t))| {
            let sel = row == lv.filter_sel;
            let mut spans = vec![Span::styled(
                format!("{:>gutter$}{}", n + 1, if sel { "▶" } else { " " }),
                if sel {
                    app.theme.selection
                } else {
                    app.theme.log_timestamp
                },
            )];
            spans.extend(text_spans(app, n, t));
            let line = Line::from(spans);
            if sel {
                line.style(app.theme.selection)
            } else {
                line
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), text);
    let q = lv.search.clone().unwrap_or_default();
    let info = format!(
        " only lines with /{q}: {} of {} lines · {} · Enter: this line in the whole log · F: all lines",
        lv.match_lines.len(),
        lv.total,
        match_counter(lv),
    );
    draw_status(f, app, info, status_line);
}

fn log_line_style(app: &App, l: &str) -> Style {
    match classify(l) {
        LineKind::PhaseFailed => app.theme.failed,
        LineKind::Phase => app.theme.log_phase,
        LineKind::Error => app.theme.log_error,
        LineKind::Warn => app.theme.log_warn,
        LineKind::Info => app.theme.log_info,
    }
}
