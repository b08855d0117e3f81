//! Small drawing helpers the screens share: glyphs and styles per status,
//! durations, bordered blocks, truncation, sparklines, ANSI stripping.

use std::time::{Duration, SystemTime};

use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Block, Borders};

use crate::api::ActionExecutionDetail;
use crate::api::types::{ActionStatus, ExecutionStatus, StageStatus};
use crate::tui::app::App;

pub(crate) const SPIN: [&str; 4] = ["◐", "◓", "◑", "◒"];

pub(crate) fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z').split('.').next()?).ok()
}

/// `1h02m`, `3m05s`, `12s`.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 {
        format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600)
    } else if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

pub(crate) fn between(a: &str, b: Option<&str>, now: SystemTime) -> String {
    let Some(start) = parse_time(a) else {
        return String::new();
    };
    let end = b.and_then(parse_time).unwrap_or(now);
    short_duration(end.duration_since(start).unwrap_or_default())
}

pub(crate) fn exec_glyph(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::Succeeded => "✔",
        ExecutionStatus::Failed => "✘",
        ExecutionStatus::InProgress => "▶",
        ExecutionStatus::Stopping => "◼",
        ExecutionStatus::Stopped => "■",
        ExecutionStatus::Superseded => "⤼",
        ExecutionStatus::Cancelled => "⊘",
    }
}

pub(crate) fn exec_style(app: &App, s: ExecutionStatus) -> Style {
    let t = &app.theme;
    match s {
        ExecutionStatus::Succeeded => t.succeeded,
        ExecutionStatus::Failed => t.failed,
        ExecutionStatus::InProgress => t.in_progress,
        ExecutionStatus::Stopping | ExecutionStatus::Stopped => t.stopped,
        ExecutionStatus::Superseded | ExecutionStatus::Cancelled => t.superseded,
    }
}

pub(crate) fn stage_style(app: &App, s: Option<StageStatus>) -> Style {
    let t = &app.theme;
    match s {
        Some(StageStatus::Succeeded) => t.succeeded,
        Some(StageStatus::Failed) => t.failed,
        Some(StageStatus::InProgress) => t.in_progress,
        Some(StageStatus::Stopping | StageStatus::Stopped) => t.stopped,
        Some(StageStatus::Skipped) => t.skipped,
        Some(StageStatus::Cancelled) | None => t.muted,
    }
}

pub(crate) fn action_glyph(app: &App, a: &ActionExecutionDetail) -> (String, Style) {
    let t = &app.theme;
    match a.status {
        ActionStatus::Succeeded => ("✔".into(), t.succeeded),
        ActionStatus::Failed => ("✘".into(), t.failed),
        ActionStatus::Abandoned => ("⊘".into(), t.stopped),
        ActionStatus::InProgress if a.token.is_some() => ("⏸".into(), t.waiting),
        ActionStatus::InProgress => (SPIN[app.spinner % SPIN.len()].into(), t.in_progress),
    }
}

pub(crate) fn block<'a>(app: &App, title: String, focus: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focus {
            app.theme.border_focus
        } else {
            app.theme.border
        })
        .title(Span::styled(format!(" {title} "), app.theme.title))
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Strips ANSI escape sequences (colours are shown by the line's kind).
pub fn strip_ansi(s: &str) -> std::borrow::Cow<'_, str> {
    static R: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
            .unwrap_or_else(|_| unreachable!())
    });
    R.replace_all(s, "")
}

pub(crate) fn sparkline(values: impl Iterator<Item = f64>) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let v: Vec<f64> = values.collect();
    let max = v.iter().copied().fold(0.0f64, f64::max);
    v.iter()
        .map(|x| {
            if max <= 0.0 {
                BARS[0]
            } else {
                BARS[((x / max) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}
