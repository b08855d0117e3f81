//! Drawing: state in, frame out. No I/O, no state changes.

use std::time::{Duration, SystemTime};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};

use super::app::{App, Modal, Pane, Screen};
use super::keymap::{Command, Scope};
use crate::api::ActionExecutionDetail;
use crate::api::types::{ActionStatus, ExecutionStatus, StageStatus};

pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 15;
const SPIN: [&str; 4] = ["◐", "◓", "◑", "◒"];

fn parse_time(s: &str) -> Option<SystemTime> {
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

fn between(a: &str, b: Option<&str>, now: SystemTime) -> String {
    let Some(start) = parse_time(a) else {
        return String::new();
    };
    let end = b.and_then(parse_time).unwrap_or(now);
    short_duration(end.duration_since(start).unwrap_or_default())
}

fn exec_glyph(s: ExecutionStatus) -> &'static str {
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

fn exec_style(app: &App, s: ExecutionStatus) -> Style {
    let t = &app.theme;
    match s {
        ExecutionStatus::Succeeded => t.succeeded,
        ExecutionStatus::Failed => t.failed,
        ExecutionStatus::InProgress => t.in_progress,
        ExecutionStatus::Stopping | ExecutionStatus::Stopped => t.stopped,
        ExecutionStatus::Superseded | ExecutionStatus::Cancelled => t.superseded,
    }
}

fn stage_style(app: &App, s: Option<StageStatus>) -> Style {
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

fn action_glyph(app: &App, a: &ActionExecutionDetail) -> (String, Style) {
    let t = &app.theme;
    match a.status {
        ActionStatus::Succeeded => ("✔".into(), t.succeeded),
        ActionStatus::Failed => ("✘".into(), t.failed),
        ActionStatus::Abandoned => ("⊘".into(), t.stopped),
        ActionStatus::InProgress if a.token.is_some() => ("⏸".into(), t.waiting),
        ActionStatus::InProgress => (SPIN[app.spinner % SPIN.len()].into(), t.in_progress),
    }
}

pub fn draw(f: &mut Frame, app: &mut App) {
    let area = f.area();
    if area.width < MIN_W || area.height < MIN_H {
        let msg = format!(
            "The terminal is too small for pipedeck: {}×{}, it needs at least {MIN_W}×{MIN_H}.\nEnlarge the window (q quits).",
            area.width, area.height
        );
        f.render_widget(
            Paragraph::new(msg)
                .style(app.theme.base)
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, header);
    match app.screen {
        Screen::Pipelines => draw_pipelines(f, app, body),
        Screen::Pipeline => draw_pipeline(f, app, body),
        Screen::Logs => draw_logs(f, app, body),
        Screen::Approvals => draw_approvals(f, app, body),
        Screen::Audit => draw_audit(f, app, body),
        Screen::Environments => draw_envs(f, app, body),
        Screen::Diagnosis => draw_diagnosis(f, app, body),
    }
    draw_footer(f, app, footer);
    draw_toasts(f, app, body);
    if let Some(m) = app.modal.clone() {
        draw_modal(f, app, &m, body);
    }
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
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
    let left = Line::from(spans);
    let width = usize::from(area.width);
    let used: usize = left.width();
    let pad = width.saturating_sub(used + clock.len() + 1);
    let mut line = left;
    line.spans.push(Span::raw(" ".repeat(pad)));
    line.spans.push(Span::raw(format!("{clock} ")));
    f.render_widget(Paragraph::new(line).style(app.theme.header), area);
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let scope = app.screen.scope();
    let wanted: &[Command] = match app.screen {
        Screen::Pipelines => &[
            Command::Open,
            Command::Start,
            Command::Stop,
            Command::Filter,
            Command::Approvals,
        ],
        Screen::Pipeline => &[
            Command::Logs,
            Command::Approve,
            Command::Reject,
            Command::Retry,
            Command::Stop,
            Command::Rollback,
            Command::Transition,
            Command::NextPane,
        ],
        Screen::Logs => &[
            Command::Follow,
            Command::Filter,
            Command::NextMatch,
            Command::NextError,
            Command::Wrap,
        ],
        Screen::Approvals => &[Command::Approve, Command::Reject, Command::Open],
        Screen::Audit => &[Command::Filter],
        Screen::Environments => &[Command::Rollback, Command::Right],
        Screen::Diagnosis => &[Command::Open, Command::Down],
    };
    let mut spans = Vec::new();
    for c in wanted.iter().chain(&[
        Command::Back,
        Command::Palette,
        Command::Help,
        Command::Quit,
    ]) {
        if app.readonly && c.mutates() {
            continue;
        }
        if let Some(k) = app.keymap.key_for(scope, *c) {
            spans.push(Span::styled(format!(" {k}"), app.theme.footer_key));
            spans.push(Span::styled(
                format!(" {} ", c.describe()),
                app.theme.footer_text,
            ));
        }
    }
    if app.filter_editing {
        spans = vec![
            Span::styled(" filter: ", app.theme.footer_key),
            Span::raw(format!("{}▏", app.filter)),
        ];
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn block<'a>(app: &App, title: String, focus: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(if focus {
            app.theme.border_focus
        } else {
            app.theme.border
        })
        .title(Span::styled(format!(" {title} "), app.theme.title))
}

fn draw_pipelines(f: &mut Frame, app: &App, area: Rect) {
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

const BOX_W: u16 = 28;
/// Room between stage boxes for the arrow and the artifact names.
const GAP: u16 = 11;

fn draw_pipeline(f: &mut Frame, app: &mut App, area: Rect) {
    let Some(st) = app.state().cloned() else {
        f.render_widget(
            Paragraph::new("loading…").block(block(app, "Pipeline".into(), true)),
            area,
        );
        return;
    };
    let [graph, execs] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let viewing = match &app.viewed {
        Some((id, _)) => format!(
            " — execution {} (Esc: current state)",
            &id[..id.len().min(8)]
        ),
        None => String::new(),
    };
    let outer = block(
        app,
        format!("{}{viewing}", st.pipeline_name),
        app.pane == Pane::Graph,
    );
    let inner = outer.inner(graph);
    f.render_widget(outer, graph);
    // Scroll sideways to keep the selected stage visible.
    let per_row = usize::from((inner.width / (BOX_W + GAP)).max(1));
    if app.sel_stage < app.graph_scroll {
        app.graph_scroll = app.sel_stage;
    } else if app.sel_stage >= app.graph_scroll + per_row {
        app.graph_scroll = app.sel_stage + 1 - per_row;
    }
    let mut x = inner.x;
    for (i, s) in st
        .stage_states
        .iter()
        .enumerate()
        .skip(app.graph_scroll)
        .take(per_row)
    {
        let status = if app.viewed.is_some() {
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
            .map(|w| w.pipeline_execution_id[..8.min(w.pipeline_execution_id.len())].to_owned())
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
            let selected = app.pane == Pane::Graph && i == app.sel_stage && j == app.sel_action;
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
            if let Some(d) = &detail
                && d.status == ActionStatus::Failed
                && let Some(sum) = app
                    .diagnoses
                    .get(&d.action_execution_id)
                    .and_then(|f| f.first())
                    .map(|f| &f.title)
                    .or(d.summary.as_ref())
            {
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
            .border_style(if i == app.sel_stage && app.pane == Pane::Graph {
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
                app.graph_scroll + 1,
                (app.graph_scroll + per_row).min(st.stage_states.len()),
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
                Cell::from(
                    e.pipeline_execution_id[..8.min(e.pipeline_execution_id.len())].to_owned(),
                ),
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
            if app.pane == Pane::Executions && i == app.sel_exec {
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
        app.pane == Pane::Executions,
    ));
    f.render_widget(table, execs);
}

fn st_run_order(app: &App, stage: usize, action: usize) -> u32 {
    app.pipeline
        .as_deref()
        .and_then(|p| app.defs.get(p))
        .and_then(|d| d.stages.get(stage))
        .and_then(|s| s.actions.get(action))
        .map_or(1, |a| a.run_order)
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
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
        regex::Regex::new(super::app::ERROR_PATTERN).unwrap_or_else(|_| unreachable!())
    });
    &R
}

/// Strips ANSI escape sequences (colours are shown by the line's kind).
pub fn strip_ansi(s: &str) -> std::borrow::Cow<'_, str> {
    static R: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
            .unwrap_or_else(|_| unreachable!())
    });
    R.replace_all(s, "")
}

fn draw_logs(f: &mut Frame, app: &mut App, area: Rect) {
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

fn draw_approvals(f: &mut Frame, app: &App, area: Rect) {
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
            if i == app.sel_approval {
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
    let text: Vec<Line> = match list.get(app.sel_approval) {
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
                        &a.action.pipeline_execution_id
                            [..8.min(a.action.pipeline_execution_id.len())]
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

fn draw_diagnosis(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let Some(a) = &app.diag_action else {
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
                let sel = r == app.sel_diag;
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
                                format!("   ▸ log line {}: {}", line + 1, strip_ansi(text))
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

fn sparkline(values: impl Iterator<Item = f64>) -> String {
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

fn draw_envs(f: &mut Frame, app: &App, area: Rect) {
    let envs = &app.snap.envs;
    if envs.is_empty() {
        f.render_widget(
            Paragraph::new(
                "no environments are configured: declare [environments.NAME] in pipedeck.toml",
            )
            .style(app.theme.muted)
            .block(block(app, "Environments".into(), true)),
            area,
        );
        return;
    }
    let cols =
        Layout::horizontal(vec![Constraint::Ratio(1, envs.len() as u32); envs.len()]).split(area);
    for (i, (e, col)) in envs.iter().zip(cols.iter()).enumerate() {
        let t = &app.theme;
        let mut lines: Vec<Line> = Vec::new();
        lines.push(Line::from(Span::styled(e.location.clone(), t.muted)));
        lines.push(Line::from(vec![
            Span::raw("live: "),
            Span::styled(
                e.live.clone().unwrap_or_else(|| "split".to_owned()),
                if e.live.as_deref() == Some("green") {
                    t.succeeded
                } else {
                    t.in_progress
                },
            ),
            Span::raw(format!(
                "  release {}",
                e.release.as_ref().map_or("—", |r| r.revision.as_str())
            )),
        ]));
        lines.push(Line::from(Span::styled(
            format!("strategy {}", e.strategy),
            t.muted,
        )));
        // Traffic split gauge: blue | green.
        let width = usize::from(col.width.saturating_sub(12)).max(10);
        let green_percent = e.weight_of("green");
        let g = (green_percent as usize * width) / 100;
        lines.push(Line::from(vec![
            Span::raw("traffic "),
            Span::styled("█".repeat(width - g), t.in_progress),
            Span::styled("█".repeat(g), t.succeeded),
        ]));
        lines.push(Line::from(Span::styled(
            format!(
                "        blue {}% · green {}%",
                100 - green_percent,
                green_percent
            ),
            t.muted,
        )));
        for g in &e.variants {
            let style = if g.ready == g.total {
                t.succeeded
            } else {
                t.failed
            };
            lines.push(Line::from(vec![
                Span::raw(format!("{:<6}", g.label)),
                Span::styled(format!("{}/{} healthy", g.ready, g.total), style),
                Span::raw(format!("  {} restarts  {}", g.restarts, g.revision)),
            ]));
        }
        let hist = app.env_history.get(&e.name);
        let spark = |k: usize| {
            hist.map(|h| {
                sparkline(h.iter().rev().take(20).rev().map(|x| match k {
                    0 => x.0,
                    1 => x.1,
                    _ => x.2,
                }))
            })
            .unwrap_or_default()
        };
        if let Some(m) = &e.metrics {
            lines.push(Line::from(format!("req/s {:>7.1} {}", m.rps, spark(0))));
            lines.push(Line::from(vec![
                Span::styled(
                    format!("5xx % {:>7.1} ", m.error_rate),
                    if m.error_rate > 0.0 { t.failed } else { t.base },
                ),
                Span::raw(spark(1)),
            ]));
            lines.push(Line::from(format!("p99ms {:>7.1} {}", m.p99_ms, spark(2))));
        }
        if let Some(d) = &e.deployment {
            let status_style = match d.status {
                crate::api::env::DeploymentStatus::Succeeded => t.succeeded,
                crate::api::env::DeploymentStatus::Failed => t.failed,
                crate::api::env::DeploymentStatus::Stopped => t.stopped,
                _ => t.in_progress,
            };
            lines.push(Line::from(""));
            lines.push(Line::from(vec![
                Span::raw(format!("deployment {} ", d.id)),
                Span::styled(format!("{:?}", d.status), status_style),
            ]));
            let next = d
                .next_step_at
                .and_then(|n| n.duration_since(app.now).ok())
                .map(|left| format!(" · next in {}", short_duration(left)))
                .unwrap_or_default();
            lines.push(Line::from(format!(
                "{} · {}% on {}{next}",
                d.step, d.traffic_percent, d.new_variant
            )));
            if let Some(r) = &d.reason {
                lines.push(Line::from(Span::styled(r.clone(), t.failed)));
            }
        }
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled("recent events", t.title)));
        for ev in e.events.iter().take(8) {
            let style = match ev.kind.as_str() {
                "alarm" | "rollback" => t.failed,
                "health" => t.waiting,
                _ => t.muted,
            };
            let at = humantime::format_rfc3339_seconds(ev.at).to_string();
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{} ", at.get(11..19).unwrap_or("")),
                    t.log_timestamp,
                ),
                Span::styled(ev.message.clone(), style),
            ]));
        }
        let title = format!(
            "{}{}",
            e.name,
            if e.protected { " (protected)" } else { "" }
        );
        f.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: true }).block(block(
                app,
                title,
                i == app.sel_env,
            )),
            *col,
        );
    }
}

fn draw_audit(f: &mut Frame, app: &App, area: Rect) {
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
                Cell::from(e.event_name.clone()),
                Cell::from(
                    e.user_identity
                        .user_name
                        .clone()
                        .unwrap_or_else(|| e.user_identity.principal_id.clone()),
                ),
                Cell::from(Span::styled(err, app.theme.failed)),
                Cell::from(params.unwrap_or_default()),
            ]);
            if i == app.sel_audit {
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
    let table = Table::new(
        rows,
        [
            Constraint::Length(19),
            Constraint::Length(24),
            Constraint::Length(26),
            Constraint::Length(28),
            Constraint::Min(10),
        ],
    )
    .header(Row::new(["TIME", "EVENT", "WHO", "ERROR", "REQUEST"]).style(app.theme.muted))
    .block(block(app, title, true));
    f.render_widget(table, area);
}

fn draw_toasts(f: &mut Frame, app: &App, area: Rect) {
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

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn draw_modal(f: &mut Frame, app: &App, m: &Modal, area: Rect) {
    let (title, lines, w, h): (String, Vec<Line>, u16, u16) = match m {
        Modal::Help => {
            let mut lines = Vec::new();
            for scope in [app.screen.scope(), Scope::Global] {
                lines.push(Line::from(Span::styled(
                    if scope == Scope::Global {
                        "Everywhere".to_owned()
                    } else {
                        app.screen.title().to_owned()
                    },
                    app.theme.title,
                )));
                for (k, c) in app.keymap.bindings(scope) {
                    let dim = app.readonly && c.mutates();
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {k:<10}"), app.theme.footer_key),
                        Span::styled(
                            format!("{}{}", c.describe(), if dim { " (read-only)" } else { "" }),
                            if dim { app.theme.muted } else { app.theme.base },
                        ),
                    ]));
                }
            }
            lines.push(Line::from(Span::styled(
                "  :pipelines :approvals :audit :envs :diagnose :help :quit",
                app.theme.muted,
            )));
            (
                "Help — keys (remap them under [keys] in the config)".into(),
                lines,
                64,
                area.height.saturating_sub(2),
            )
        }
        Modal::Palette(buf) => (
            "Command".into(),
            vec![
                Line::from(format!(":{buf}▏")),
                Line::from(Span::styled(
                    ":pipelines :approvals :audit :envs :diagnose :help :quit",
                    app.theme.muted,
                )),
            ],
            64,
            4,
        ),
        Modal::Confirm { text, typed, .. } => {
            let mut lines = vec![Line::from(text.clone()), Line::from("")];
            match typed {
                Some((want, got)) => {
                    lines.push(Line::from(Span::styled(
                        format!("{want} is protected: type its name to confirm"),
                        app.theme.waiting,
                    )));
                    lines.push(Line::from(format!("> {got}▏")));
                }
                None => lines.push(Line::from(Span::styled(
                    "y / Enter: yes · any other key: no",
                    app.theme.muted,
                ))),
            }
            ("Confirm".into(), lines, 72, 7)
        }
        Modal::Input { prompt, buf, .. } => (
            "Input".into(),
            vec![
                Line::from(prompt.clone()),
                Line::from(""),
                Line::from(format!("> {buf}▏")),
            ],
            72,
            5,
        ),
        Modal::QuitConfirm { running } => (
            "Quit?".into(),
            vec![
                Line::from(format!(
                    "{running} execution(s) are running in the engine this pipedeck hosts."
                )),
                Line::from(
                    "Quitting stops them: they are recorded as Failed (interrupted: engine stopped)",
                ),
                Line::from("and can be retried later. y / Enter: quit · any other key: stay"),
            ],
            86,
            5,
        ),
    };
    // Dialogs fit their text (plus wrapping room); help takes the screen.
    let h = if matches!(m, Modal::Help) {
        h
    } else {
        lines.len() as u16 + u16::from(lines.iter().any(|l| l.width() > usize::from(w) - 2))
    };
    let r = centered(area, w, h + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .style(app.theme.popup)
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(app.theme.border_focus)
                    .title(Span::styled(
                        format!(" {title} "),
                        app.theme.title.add_modifier(Modifier::BOLD),
                    )),
            ),
        r,
    );
}
