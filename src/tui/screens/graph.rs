//! The stage graph of the Pipeline screen: stage boxes side by side
//! (normal or compact), markers for the stages scrolled out of view with
//! their status, the detail of the selected action below the boxes (the
//! whole failure reason, wrapped), and where the activity is (failed,
//! waiting, running) for the selection to follow.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::api::types::{ActionStatus, StageStatus};
use crate::api::{ActionExecutionDetail, PipelineState};
use crate::tui::app::App;
use crate::tui::app::screens::pipeline::Pane;
use crate::tui::app::widgets::{action_glyph, between, stage_style, truncate};

/// Width of a stage box and of the room between two boxes (the arrow and,
/// in the normal mode, the artifact names above it).
const NORMAL: (u16, u16) = (28, 11);
const COMPACT: (u16, u16) = (22, 4);
/// A column of markers for the stages out of view on each side.
const MARK_W: u16 = 7;

/// What a stage shows to someone looking for trouble, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Mark {
    Failed,
    Waiting,
    Running,
    Stopped,
    Succeeded,
    NotRun,
}

impl Mark {
    const ALL: [Mark; 6] = [
        Mark::Failed,
        Mark::Waiting,
        Mark::Running,
        Mark::Stopped,
        Mark::Succeeded,
        Mark::NotRun,
    ];

    fn glyph(self) -> &'static str {
        match self {
            Mark::Failed => "✘",
            Mark::Waiting => "⏸",
            Mark::Running => "◐",
            Mark::Stopped => "■",
            Mark::Succeeded => "✔",
            Mark::NotRun => "·",
        }
    }

    fn style(self, app: &App) -> Style {
        let t = &app.theme;
        match self {
            Mark::Failed => t.failed,
            Mark::Waiting => t.waiting,
            Mark::Running => t.in_progress,
            Mark::Stopped => t.stopped,
            Mark::Succeeded => t.succeeded,
            Mark::NotRun => t.muted,
        }
    }

    /// Failed and waiting stages are where `n` / `N` go.
    pub(crate) fn needs_attention(self) -> bool {
        matches!(self, Mark::Failed | Mark::Waiting)
    }
}

/// The mark of stage `i` as the graph shows it (the current state, or the
/// viewed execution).
pub(crate) fn mark(app: &App, st: &PipelineState, i: usize) -> Mark {
    let Some(s) = st.stage_states.get(i) else {
        return Mark::NotRun;
    };
    let details: Vec<ActionExecutionDetail> = (0..s.action_states.len())
        .filter_map(|j| app.action_detail(i, j))
        .collect();
    if details.iter().any(|d| d.status == ActionStatus::Failed) {
        return Mark::Failed;
    }
    if details
        .iter()
        .any(|d| d.status == ActionStatus::InProgress && d.token.is_some())
    {
        return Mark::Waiting;
    }
    if details.iter().any(|d| d.status == ActionStatus::InProgress) {
        return Mark::Running;
    }
    let status = if app.graph.viewed.is_some() {
        None
    } else {
        s.latest_execution.as_ref().map(|l| l.status)
    };
    match status {
        Some(StageStatus::Failed) => Mark::Failed,
        Some(StageStatus::InProgress) => Mark::Running,
        Some(StageStatus::Stopping | StageStatus::Stopped) => Mark::Stopped,
        Some(StageStatus::Succeeded) => Mark::Succeeded,
        _ if details.iter().any(|d| d.status == ActionStatus::Abandoned) => Mark::Stopped,
        _ if !details.is_empty() => Mark::Succeeded,
        _ => Mark::NotRun,
    }
}

/// The stage and action where the activity is: the first failed stage,
/// else the first waiting for an approval, else the first running; the
/// action in it that failed, waits or runs.
pub(crate) fn activity(app: &App) -> Option<(usize, usize)> {
    let st = app.state()?;
    let marks: Vec<Mark> = (0..st.stage_states.len())
        .map(|i| mark(app, st, i))
        .collect();
    let i = [Mark::Failed, Mark::Waiting, Mark::Running]
        .iter()
        .find_map(|m| marks.iter().position(|x| x == m))?;
    let actions = st.stage_states[i].action_states.len();
    let j = (0..actions)
        .find(|&j| {
            app.action_detail(i, j).is_some_and(|d| match marks[i] {
                Mark::Failed => d.status == ActionStatus::Failed,
                Mark::Waiting => d.token.is_some(),
                _ => d.status == ActionStatus::InProgress,
            })
        })
        .unwrap_or(0);
    Some((i, j))
}

/// Where the boxes go in the graph's inner area.
pub(crate) struct Layout {
    pub box_w: u16,
    pub gap: u16,
    /// How many boxes are drawn, from `scroll`.
    pub per_row: usize,
    /// Where the first box starts.
    pub x0: u16,
    /// Stages do not all fit: marker columns on both sides.
    pub overflow: bool,
}

/// The layout for `inner`, with the scroll moved to keep the selected
/// stage in view.
pub(crate) fn layout(app: &mut App, inner: Rect, stages: usize) -> Layout {
    let l = layout_at(app, inner, stages);
    if app.sel_stage < app.graph.scroll {
        app.graph.scroll = app.sel_stage;
    } else if app.sel_stage >= app.graph.scroll + l.per_row {
        app.graph.scroll = app.sel_stage + 1 - l.per_row;
    }
    app.graph.scroll = app.graph.scroll.min(stages.saturating_sub(l.per_row));
    l
}

/// The layout for `inner` (the scroll as it is).
pub(crate) fn layout_at(app: &App, inner: Rect, stages: usize) -> Layout {
    let (box_w, gap) = if app.graph.compact { COMPACT } else { NORMAL };
    let fit = |w: u16| {
        usize::from(if w < box_w {
            1
        } else {
            (w + gap) / (box_w + gap)
        })
    };
    if stages <= fit(inner.width) {
        return Layout {
            box_w,
            gap,
            per_row: stages.max(1),
            x0: inner.x,
            overflow: false,
        };
    }
    Layout {
        box_w,
        gap,
        per_row: fit(inner.width.saturating_sub(2 * MARK_W)),
        x0: inner.x + MARK_W,
        overflow: true,
    }
}

/// The graph's title: the pipeline, the viewed execution, and which
/// stages are in view when they do not all fit.
pub(crate) fn title(app: &App, st: &PipelineState, inner_width: u16) -> String {
    let viewing = match &app.graph.viewed {
        Some((id, _)) => format!(
            " — execution {} (Esc: current state)",
            crate::api::short_id(id, 8)
        ),
        None => String::new(),
    };
    let n = st.stage_states.len();
    let l = layout_at(app, Rect::new(0, 0, inner_width, 1), n);
    let range = if l.overflow {
        format!(
            " · stages {}–{} of {n}",
            app.graph.scroll + 1,
            (app.graph.scroll + l.per_row).min(n)
        )
    } else {
        String::new()
    };
    format!("{}{range}{viewing}", st.pipeline_name)
}

/// Draws the stage boxes, the markers and the detail into `inner`.
pub(crate) fn draw(f: &mut Frame, app: &mut App, st: &PipelineState, inner: Rect) {
    let n = st.stage_states.len();
    let l = layout(app, inner, n);
    let mut x = l.x0;
    let mut tallest = 0;
    let last = (app.graph.scroll + l.per_row).min(n).saturating_sub(1);
    for i in (app.graph.scroll..n).take(l.per_row) {
        let col = Rect::new(x, inner.y, l.box_w, inner.height);
        let h = draw_stage(f, app, st, i, col, &l, i < last);
        tallest = tallest.max(h);
        x += l.box_w + l.gap;
    }
    if l.overflow {
        let hidden_left = 0..app.graph.scroll;
        let hidden_right = (app.graph.scroll + l.per_row).min(n)..n;
        let y = inner.y + 2;
        let h = inner.height.saturating_sub(2);
        let left = markers(app, st, hidden_left, true);
        f.render_widget(Paragraph::new(left), Rect::new(inner.x, y, MARK_W - 1, h));
        let right = markers(app, st, hidden_right, false);
        let rx = inner.right().saturating_sub(MARK_W - 1);
        f.render_widget(
            Paragraph::new(right).alignment(ratatui::layout::Alignment::Right),
            Rect::new(rx, y, MARK_W - 1, h),
        );
    }
    // Under the boxes: the selected action in full.
    let top = inner.y + 2 + tallest;
    if top < inner.bottom() {
        let area = Rect::new(inner.x, top, inner.width, inner.bottom() - top);
        f.render_widget(
            Paragraph::new(detail_lines(app)).wrap(Wrap { trim: false }),
            area,
        );
    }
}

/// `◀ ✘ 2` lines for the stages in `range`, one per status present.
fn markers(
    app: &App,
    st: &PipelineState,
    range: std::ops::Range<usize>,
    left: bool,
) -> Vec<Line<'static>> {
    let marks: Vec<Mark> = range.map(|i| mark(app, st, i)).collect();
    Mark::ALL
        .iter()
        .filter_map(|m| {
            let count = marks.iter().filter(|x| *x == m).count();
            (count > 0).then(|| {
                let arrow = Span::styled(if left { "◀ " } else { " ▶" }, app.theme.muted);
                let text = Span::styled(format!("{} {count}", m.glyph()), m.style(app));
                Line::from(if left {
                    vec![arrow, text]
                } else {
                    vec![text, arrow]
                })
            })
        })
        .collect()
}

/// One stage: the transition and waiters above it, its box with its
/// actions, the arrow to the next. Gives the box's height.
fn draw_stage(
    f: &mut Frame,
    app: &App,
    st: &PipelineState,
    i: usize,
    col: Rect,
    l: &Layout,
    arrow: bool,
) -> u16 {
    let s = &st.stage_states[i];
    let compact = app.graph.compact;
    let status = if app.graph.viewed.is_some() {
        None
    } else {
        s.latest_execution.as_ref().map(|l| l.status)
    };
    // Above the box: the transition and who waits at it.
    let mut above: Vec<Line> = Vec::new();
    above.push(if s.inbound_transition_state.enabled {
        Line::from("")
    } else {
        Line::from(Span::styled(
            format!(
                "✖ disabled: {}",
                s.inbound_transition_state
                    .disabled_reason
                    .clone()
                    .unwrap_or_default()
            ),
            app.theme.disabled_transition,
        ))
    });
    let waiting: Vec<&str> = s
        .inbound_executions
        .iter()
        .map(|w| crate::api::short_id(&w.pipeline_execution_id, 8))
        .collect();
    above.push(if waiting.is_empty() {
        Line::from("")
    } else {
        Line::from(Span::styled(
            format!("⏳ {}", waiting.join(" ")),
            app.theme.waiting,
        ))
    });
    let inner_w = usize::from(l.box_w.saturating_sub(2));
    let name_w = if compact { inner_w - 9 } else { 12 };
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
                    (d.status != ActionStatus::InProgress).then_some(d.last_status_change.as_str()),
                    app.now,
                )
            })
            .unwrap_or_default();
        let selected = app.graph.pane == Pane::Graph && i == app.sel_stage && j == app.sel_action;
        let name_style = if selected {
            app.theme.selection
        } else {
            app.theme.base
        };
        let mut spans = Vec::new();
        if !compact {
            let order = run_order(app, i, j);
            let prefix = if last_order == Some(order) {
                "  │".to_owned()
            } else {
                format!("{order:>3}")
            };
            last_order = Some(order);
            spans.push(Span::styled(prefix, app.theme.muted));
        }
        spans.extend([
            Span::raw(" "),
            Span::styled(glyph, gstyle),
            Span::raw(" "),
            Span::styled(
                format!("{:<name_w$}", truncate(&a.action_name, name_w)),
                name_style,
            ),
            Span::styled(
                if compact {
                    format!(" {dur:>5}")
                } else {
                    format!(" {dur:>6}")
                },
                app.theme.muted,
            ),
        ]);
        body.push(Line::from(spans));
        if let Some(sum) = detail.as_ref().and_then(|d| failure_line(app, d)) {
            let indent = if compact { 3 } else { 5 };
            body.push(Line::from(Span::styled(
                format!(
                    "{}{}",
                    " ".repeat(indent),
                    truncate(sum, inner_w.saturating_sub(indent + 1))
                ),
                app.theme.failed,
            )));
        }
    }
    let h = (body.len() as u16 + 2).min(col.height.saturating_sub(2));
    f.render_widget(
        Paragraph::new(above),
        Rect::new(col.x, col.y, l.box_w, 2.min(col.height)),
    );
    let focused = i == app.sel_stage && app.graph.pane == Pane::Graph;
    let title = if compact {
        let m = mark(app, st, i);
        Line::from(vec![
            Span::styled(format!(" {} ", m.glyph()), m.style(app)),
            Span::styled(
                format!("{} ", truncate(&s.stage_name, inner_w.saturating_sub(4))),
                app.theme.title,
            ),
        ])
    } else {
        Line::from(vec![
            Span::styled(
                format!(" {} ", truncate(&s.stage_name, 16)),
                app.theme.title,
            ),
            Span::styled(
                format!(
                    "{} ",
                    status.map_or("—".to_owned(), |x| x.as_str().to_owned())
                ),
                stage_style(app, status),
            ),
        ])
    };
    let b = Block::default()
        .borders(Borders::ALL)
        .border_style(if focused {
            app.theme.border_focus
        } else {
            app.theme.border
        })
        .title(title);
    let rect = Rect::new(col.x, col.y + 2, l.box_w, h).intersection(col);
    f.render_widget(Paragraph::new(body).block(b), rect);
    // The arrow to the next stage when it is in view (the markers say
    // what lies beyond).
    if arrow && h >= 3 {
        let arrow_y = col.y + 2 + h.min(3) - 1;
        if !compact {
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
            let lab = Rect::new(col.x + l.box_w + 1, arrow_y - 1, l.gap - 1, 1);
            f.render_widget(
                Paragraph::new(truncate(&label, usize::from(l.gap - 1))).style(app.theme.muted),
                lab,
            );
        }
        let arrow = Rect::new(col.x + l.box_w, arrow_y, l.gap, 1);
        f.render_widget(
            Paragraph::new(format!(" {}▶", "─".repeat(usize::from(l.gap) - 2)))
                .style(app.theme.muted),
            arrow,
        );
    }
    h
}

/// The selected action in full: where it is, its status, and every reason
/// it failed or waits (the boxes cut them).
fn detail_lines(app: &App) -> Vec<Line<'static>> {
    let Some((_, stage, action)) = app.selected() else {
        return Vec::new();
    };
    let head = Span::styled(format!("{stage} / {action}: "), app.theme.title);
    let Some(d) = app.action_detail(app.sel_stage, app.sel_action) else {
        return vec![Line::from(vec![
            head,
            Span::styled("has not run yet", app.theme.muted),
        ])];
    };
    let (glyph, style) = action_glyph(app, &d);
    let mut lines = vec![Line::from(vec![
        head,
        Span::styled(format!("{glyph} {}", d.status.as_str()), style),
        Span::styled(
            format!(" · attempt {} · {} log lines", d.attempt, d.log_lines),
            app.theme.muted,
        ),
    ])];
    let mut reasons: Vec<String> = Vec::new();
    if d.status == ActionStatus::Failed
        && let Some(f) = app
            .diagnoses
            .get(&d.action_execution_id)
            .and_then(|f| f.iter().find(|f| f.rule != "audit.trail"))
    {
        reasons.push(f.title.clone());
    }
    if let Some(s) = &d.summary {
        reasons.push(s.clone());
    }
    if let Some(e) = &d.error_details {
        reasons.push(format!("{}: {}", e.code, e.message));
    }
    if d.token.is_some()
        && let Some(a) = &d.approval
    {
        reasons.push(format!(
            "waiting for approval: {}",
            a.custom_data.clone().unwrap_or_default()
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    let reason_style = if d.status == ActionStatus::Failed {
        app.theme.failed
    } else {
        app.theme.base
    };
    for r in reasons {
        if seen.insert(r.clone()) {
            lines.push(Line::from(Span::styled(r, reason_style)));
        }
    }
    lines
}

/// The line under a failed action in its stage box: its finding, else its
/// own summary.
pub(crate) fn failure_line<'a>(app: &'a App, d: &'a ActionExecutionDetail) -> Option<&'a String> {
    if d.status != ActionStatus::Failed {
        return None;
    }
    // Supporting evidence (the audit trail) is not a cause: when no rule
    // matched, the action's own error is.
    app.diagnoses
        .get(&d.action_execution_id)
        .and_then(|f| f.iter().find(|f| f.rule != "audit.trail"))
        .map(|f| &f.title)
        .or(d.summary.as_ref())
}

fn run_order(app: &App, stage: usize, action: usize) -> u32 {
    app.pipeline
        .as_deref()
        .and_then(|p| app.defs.get(p))
        .and_then(|d| d.stages.get(stage))
        .and_then(|s| s.actions.get(action))
        .map_or(1, |a| a.run_order)
}
