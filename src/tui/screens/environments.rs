//! The Environments screen: one column per environment (traffic split,
//! variants, metrics with sparklines, the deployment, recent events).

use std::collections::{BTreeMap, VecDeque};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::api::env::EnvironmentSummary;
use crate::tui::app::screens::logs::LogView;
use crate::tui::app::widgets::{block, short_duration, sparkline};
use crate::tui::app::{App, Effect, Screen};
use crate::tui::keymap::Command;

#[derive(Debug, Clone, Default)]
pub struct EnvironmentsView {
    /// The selected environment (column).
    pub sel: usize,
    /// The selected Flux object of the selected environment (what `f` and
    /// `z` act on), by its id, so that it stays selected when a refresh
    /// reorders the objects; `None`: the first (the most pressing).
    pub flux_sel: Option<String>,
    /// Recent (requests/s, 5xx %, p99 ms) per environment, for sparklines.
    pub history: BTreeMap<String, VecDeque<(f64, f64, f64)>>,
}

/// The index of the selected Flux object among `f`'s objects.
pub(crate) fn flux_index(view: &EnvironmentsView, f: &crate::api::env::FluxStatus) -> usize {
    view.flux_sel
        .as_ref()
        .and_then(|id| f.objects.iter().position(|o| o.id() == *id))
        .unwrap_or(0)
}

impl EnvironmentsView {
    /// Keeps the last 60 metric samples of each environment.
    pub(crate) fn record(&mut self, envs: &[EnvironmentSummary]) {
        for e in envs {
            let Some(m) = e.metrics else { continue };
            let h = self.history.entry(e.name.clone()).or_default();
            h.push_back((m.rps, m.error_rate, m.p99_ms));
            while h.len() > 60 {
                h.pop_front();
            }
        }
    }
}

/// The keys the footer shows on this screen (after them: back, palette,
/// help, quit).
pub(crate) const KEYS: &[Command] = &[
    Command::Focus1,
    Command::Rollback,
    Command::Logs,
    Command::FluxReconcile,
    Command::FluxSuspend,
    Command::Copy,
];

/// A command for the Environments screen (the global ones are the App's).
pub(crate) fn on_command(app: &mut App, c: Command) -> Vec<Effect> {
    let n = app.snap.envs.len();
    let before = app.envs.sel;
    let flux = app
        .snap
        .envs
        .get(app.envs.sel)
        .and_then(|e| e.flux.clone())
        .filter(|f| f.objects.len() > 1);
    match c {
        // Up / Down walk the focused environment's Flux objects when it
        // has several; otherwise they move between environments.
        Command::Down | Command::Up if flux.is_some() => {
            let f = flux.as_ref().map(|f| &f.objects[..]).unwrap_or_default();
            let at = flux.as_ref().map_or(0, |f| flux_index(&app.envs, f));
            let next = if c == Command::Down {
                (at + 1).min(f.len().saturating_sub(1))
            } else {
                at.saturating_sub(1)
            };
            app.envs.flux_sel = f.get(next).map(|o| o.id());
        }
        Command::Right | Command::Down | Command::NextPane => {
            app.envs.sel = (app.envs.sel + 1).min(n.saturating_sub(1));
        }
        Command::Left | Command::Up | Command::PrevPane => {
            app.envs.sel = app.envs.sel.saturating_sub(1);
        }
        c if c.focus_index().is_some() => {
            let i = c.focus_index().unwrap_or(0);
            if i < n {
                app.envs.sel = i;
            } else {
                app.toast(
                    format!("there is no environment {} (there are {n})", i + 1),
                    true,
                );
            }
        }
        Command::Rollback => {
            if let Some(e) = app.snap.envs.get(app.envs.sel) {
                let env = e.name.clone();
                app.ask_rollback_env(env);
            }
        }
        Command::FluxReconcile | Command::FluxSuspend => {
            if let Some(e) = app.snap.envs.get(app.envs.sel) {
                let object = e
                    .flux
                    .as_ref()
                    .and_then(|f| f.objects.get(flux_index(&app.envs, f)).cloned());
                let env = e.name.clone();
                app.ask_flux(env, object.as_ref(), c == Command::FluxReconcile);
            }
        }
        Command::Copy => {
            // The deployment under way, else the live release.
            let id = app.snap.envs.get(app.envs.sel).and_then(|e| {
                e.deployment
                    .as_ref()
                    .map(|d| d.id.clone())
                    .or_else(|| e.release.as_ref().map(|r| r.id.clone()))
            });
            return app.copy(id, "this environment has no release or deployment yet");
        }
        Command::Logs | Command::Open => {
            // The live group's first replica: its output file.
            if let Some(e) = app.snap.envs.get(app.envs.sel) {
                let color = e.live.clone().unwrap_or_else(|| "blue".to_owned());
                let aeid = format!("env/{}/{}-{}-0", e.name, e.name, color);
                app.logs = LogView {
                    title: format!("{} · {} replica 0 output", e.name, color),
                    aeid,
                    follow: true,
                    height: app.size.1.saturating_sub(6),
                    ..LogView::default()
                };
                app.go(Screen::Logs);
                return vec![app.logs.read_tail()];
            }
        }
        _ => {}
    }
    if app.envs.sel != before {
        app.envs.flux_sel = None;
    }
    Vec::new()
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
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
            Span::raw(format!("  release {}", e.live_revision().unwrap_or("—"))),
        ]));
        lines.push(Line::from(Span::styled(
            format!("strategy {}", e.strategy),
            t.muted,
        )));
        // The split over the variants: router weights (blue / green,
        // canary) or, for a Kubernetes rollout, each ReplicaSet's share of
        // the ready replicas. Each variant has its own glyph too, so the
        // gauge reads without colour.
        let width = usize::from(col.width.saturating_sub(12)).max(10);
        let (gauge, legend) = split_gauge(app, e, width);
        lines.push(gauge);
        lines.push(Line::from(Span::styled(legend, t.muted)));
        if let Some(fx) = &e.flux {
            // What else the panel shows, so that the Flux rows take the
            // room that is left (at least one, then "+N more").
            let below = e.variants.len()
                + if e.metrics.is_some() { 3 } else { 0 }
                + if e.deployment.is_some() { 4 } else { 0 }
                + 2
                + e.events.len().min(2);
            let room = usize::from(col.height.saturating_sub(2))
                .saturating_sub(lines.len() + 1 + below)
                .max(1);
            let sel = (i == app.envs.sel).then(|| flux_index(&app.envs, fx));
            lines.extend(flux_lines(
                app,
                fx,
                room,
                sel,
                usize::from(col.width.saturating_sub(2)),
            ));
        }
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
        let hist = app.envs.history.get(&e.name);
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
        let focused = i == app.envs.sel;
        // Unmistakable: a marker, the word, a thick border in the focus
        // colour; the number is the key that focuses it.
        let title = format!(
            "{}{} {}{}{}",
            if focused { "▶ " } else { "" },
            i + 1,
            e.name,
            if e.protected { " (protected)" } else { "" },
            if focused { " · focused" } else { "" }
        );
        let mut b = block(app, title, focused);
        if focused {
            b = b.border_type(ratatui::widgets::BorderType::Thick);
        }
        f.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: true }).block(b),
            *col,
        );
    }
}

const GLYPHS: [&str; 3] = ["█", "▒", "░"];

/// `traffic ███▒▒` (or `replicas` for a ReplicaSet split) and its legend.
fn split_gauge<'a>(
    app: &App,
    e: &crate::api::env::EnvironmentSummary,
    width: usize,
) -> (Line<'a>, String) {
    let t = &app.theme;
    let slots = e
        .variants
        .iter()
        .any(|v| v.label == "blue" || v.label == "green");
    let what = if e.kind == "kubernetes" && !slots {
        "replicas"
    } else {
        "traffic"
    };
    let mut spans = vec![Span::raw(format!("{what} "))];
    let mut used = 0;
    let shown: Vec<_> = e.variants.iter().filter(|v| v.weight_percent > 0).collect();
    for (i, v) in shown.iter().enumerate() {
        let n = if i + 1 == shown.len() {
            width.saturating_sub(used)
        } else {
            (v.weight_percent as usize * width) / 100
        };
        used += n;
        let style = if e.live.as_deref() == Some(v.label.as_str()) {
            t.succeeded
        } else if Some(v.label.as_str()) == e.deployment.as_ref().map(|d| d.new_variant.as_str()) {
            t.waiting
        } else {
            t.in_progress
        };
        spans.push(Span::styled(GLYPHS[i.min(2)].repeat(n), style));
    }
    if shown.is_empty() {
        spans.push(Span::styled("no variant takes traffic", t.failed));
    }
    let legend = e
        .variants
        .iter()
        .map(|v| match shown.iter().position(|s| s.label == v.label) {
            Some(i) => format!("{} {} {}%", GLYPHS[i.min(2)], v.label, v.weight_percent),
            None => format!("{} {}%", v.label, v.weight_percent),
        })
        .collect::<Vec<_>>()
        .join(" · ");
    (Line::from(spans), format!("         {legend}"))
}

/// Flux in the environment's cluster, as `flux get` shows it: a header
/// (the worst status first), then one row per object, the most pressing
/// first, as many as `room` allows, and `+N more`. `sel` marks the row
/// `f` / `z` act on.
fn flux_lines<'a>(
    app: &App,
    fx: &crate::api::env::FluxStatus,
    room: usize,
    sel: Option<usize>,
    width: usize,
) -> Vec<Line<'a>> {
    let t = &app.theme;
    let mut out = Vec::new();
    if let Some(why) = &fx.error {
        out.push(Line::from(Span::styled(
            fit(&format!("flux: cannot read: {why}"), width),
            t.failed,
        )));
    }
    if !fx.is_installed() {
        if fx.error.is_none() {
            out.push(Line::from(Span::styled(
                "flux: not installed in this cluster",
                t.muted,
            )));
        }
        return out;
    }
    let total = fx.objects.len();
    let bad = fx.not_ready();
    let suspended = fx.objects.iter().filter(|o| o.suspended).count();
    let (head, style) = if total == 0 {
        ("flux: no objects".to_owned(), t.muted)
    } else if bad > 0 {
        (format!("flux ✘ {bad} of {total} not ready"), t.failed)
    } else if suspended > 0 {
        (
            format!("flux ⏸ {suspended} of {total} suspended"),
            t.waiting,
        )
    } else {
        (format!("flux ✔ {total} ready"), t.succeeded)
    };
    let missing = fx.missing();
    let left = width.saturating_sub(head.chars().count());
    let mut spans = vec![Span::styled(head, style)];
    if !missing.is_empty() {
        spans.push(Span::styled(
            fit(&format!("  · not installed: {}", missing.join(", ")), left),
            t.muted,
        ));
    }
    out.push(Line::from(spans));
    let shown = if total > room {
        room.saturating_sub(1).max(1)
    } else {
        total
    };
    let chosen = sel.map(|s| s.min(total.saturating_sub(1)));
    // Keep the selected row on screen.
    let start = chosen.map_or(0, |c| (c + 1).saturating_sub(shown));
    for (n, o) in fx.objects.iter().enumerate().skip(start).take(shown) {
        let (glyph, style) = match (o.suspended, o.ready) {
            (true, _) => ("⏸", t.waiting),
            (false, Some(true)) => ("✔", t.succeeded),
            (false, Some(false)) => ("✘", t.failed),
            (false, None) => ("…", t.in_progress),
        };
        let short = o.short_kind();
        let mark = if chosen == Some(n) { "▸" } else { " " };
        let mut text = format!("{mark}{glyph} {short} {}/{}", o.namespace, o.name);
        let detail = o.detail();
        if !detail.is_empty() {
            text.push_str(&format!("  {detail}"));
        }
        if o.ready != Some(true) && !o.message.is_empty() {
            text.push_str(&format!("  {}", o.message));
        }
        out.push(Line::from(Span::styled(fit(&text, width), style)));
    }
    if total > start + shown {
        out.push(Line::from(Span::styled(
            format!("  +{} more", total - start - shown),
            t.muted,
        )));
    }
    out
}

/// `text` cut to `width` characters, `…` where it was cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}
