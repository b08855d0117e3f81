//! The Approvals screen: pending manual approvals of every pipeline, then
//! the ones answered in the latest executions; every row is selectable and
//! the details pane shows it. `a` opens what is being approved (the
//! approval modal, drawn here too): CustomData, the revision, and the
//! commits between the release live in the next environment and the
//! candidate.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use crate::api::ActionExecutionDetail;
use crate::api::types::{ActionStatus, CommitRange, SourceCommits, SourceRevision};
use crate::tui::app::modals::{Modal, Pending};
use crate::tui::app::widgets::{between, block, truncate};
use crate::tui::app::{App, Effect, Screen};
use crate::tui::keymap::Command;

#[derive(Debug, Clone, Default)]
pub struct ApprovalsView {
    /// The selected row: pending approvals first, then answered ones.
    pub sel: usize,
}

/// A pending approval, found in the pipeline states.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingApproval {
    pub pipeline: String,
    pub stage: String,
    pub action: ActionExecutionDetail,
}

/// The commits an approval lets through, as far as they are known.
#[derive(Debug, Clone, PartialEq)]
pub enum Commits {
    Loading,
    Loaded(SourceCommits),
    /// The backend could not list them (AWS: CodePipeline does not read
    /// the repository), in its words.
    Unavailable(String),
}

/// What `a` is about to approve.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalModal {
    pub pipeline: String,
    pub stage: String,
    pub action: String,
    pub execution: String,
    pub custom_data: Option<String>,
    pub link: Option<String>,
    pub expires: String,
    pub revision: Option<SourceRevision>,
    /// The environment the pipeline deploys to after this approval.
    pub environment: Option<String>,
    pub commits: Commits,
    /// (the name to type, what was typed): protected approvals with
    /// `protected_approvals = true`.
    pub typed: Option<(String, String)>,
}

/// The keys the footer shows on this screen (after them: back, palette,
/// help, quit).
pub(crate) const KEYS: &[Command] = &[
    Command::Approve,
    Command::Reject,
    Command::Open,
    Command::Copy,
];

/// A command for the Approvals screen (the global ones are the App's).
pub(crate) fn on_command(app: &mut App, c: Command) -> Vec<Effect> {
    let rows = app.approval_rows();
    match c {
        Command::Down => {
            app.approvals.sel = (app.approvals.sel + 1).min(rows.len().saturating_sub(1))
        }
        Command::Up => app.approvals.sel = app.approvals.sel.saturating_sub(1),
        Command::Top => app.approvals.sel = 0,
        Command::Bottom => app.approvals.sel = rows.len().saturating_sub(1),
        Command::Approve | Command::Reject => {
            let Some(a) = rows.get(app.approvals.sel) else {
                app.toast("no approval is pending", true);
                return Vec::new();
            };
            if let Some(r) = a.action.approval.as_ref().and_then(|x| x.result.as_ref()) {
                app.toast(
                    format!(
                        "{}/{} was already answered: {} by {} at {}",
                        a.stage,
                        a.action.action_name,
                        r.status,
                        r.by,
                        r.at.get(..16).unwrap_or(&r.at).replace('T', " ")
                    ),
                    true,
                );
                return Vec::new();
            }
            let (pipeline, stage, action) = (
                a.pipeline.clone(),
                a.stage.clone(),
                a.action.action_name.clone(),
            );
            return app.ask_approval(c, pipeline, stage, action);
        }
        Command::Open => {
            if let Some(a) = rows.get(app.approvals.sel) {
                app.pipeline = Some(a.pipeline.clone());
                app.go(Screen::Pipeline);
            }
        }
        Command::Copy => {
            let id = rows
                .get(app.approvals.sel)
                .map(|a| a.action.pipeline_execution_id.clone());
            return app.copy(id, "no approval is selected");
        }
        _ => {}
    }
    Vec::new()
}

const WIDTHS: [Constraint; 6] = [
    Constraint::Length(12),
    Constraint::Length(14),
    Constraint::Length(20),
    Constraint::Min(20),
    Constraint::Length(12),
    Constraint::Length(17),
];

/// Each column's width inside a table block of `area` (as the table lays
/// them out), so cut text can end with `…`.
pub(crate) fn column_widths(area: Rect, widths: &[Constraint]) -> Vec<usize> {
    let inner = Rect::new(0, 0, area.width.saturating_sub(2), 1);
    Layout::horizontal(widths.to_vec())
        .flex(Flex::Start)
        .spacing(1)
        .split(inner)
        .iter()
        .map(|r| usize::from(r.width))
        .collect()
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let rows_data = app.approval_rows();
    let [top, detail] = Layout::vertical([Constraint::Min(5), Constraint::Length(8)]).areas(area);
    let w = column_widths(top, &WIDTHS);
    let cut = |s: String, i: usize| truncate(&s, w.get(i).copied().unwrap_or(10));
    let rows: Vec<Row> = rows_data
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let ap = a.action.approval.as_ref();
            let cells = match ap.and_then(|x| x.result.as_ref()) {
                None => vec![
                    Cell::from(Span::styled("⏸ pending", app.theme.waiting)),
                    Cell::from(cut(a.pipeline.clone(), 1)),
                    Cell::from(cut(format!("{}/{}", a.stage, a.action.action_name), 2)),
                    Cell::from(cut(
                        ap.and_then(|x| x.custom_data.clone()).unwrap_or_default(),
                        3,
                    )),
                    Cell::from(between(&a.action.start_time, None, app.now)),
                    Cell::from(
                        ap.map(|x| x.expires.get(..16).unwrap_or("").replace('T', " "))
                            .unwrap_or_default(),
                    ),
                ],
                Some(r) => {
                    let (glyph, style) = if r.status == "Approved" {
                        ("✔", app.theme.succeeded)
                    } else {
                        ("✘", app.theme.failed)
                    };
                    vec![
                        Cell::from(Span::styled(format!("{glyph} {}", r.status), style)),
                        Cell::from(cut(a.pipeline.clone(), 1)),
                        Cell::from(cut(format!("{}/{}", a.stage, a.action.action_name), 2)),
                        Cell::from(cut(
                            if r.summary.is_empty() {
                                String::new()
                            } else {
                                format!("\u{201c}{}\u{201d}", r.summary)
                            },
                            3,
                        )),
                        Cell::from(cut(format!("by {}", r.by), 4)),
                        Cell::from(r.at.get(..16).unwrap_or("").replace('T', " ")),
                    ]
                }
            };
            let row = Row::new(cells);
            if i == app.approvals.sel {
                row.style(app.theme.selection)
            } else {
                row
            }
        })
        .collect();
    let empty = rows.is_empty();
    let table = Table::new(rows, WIDTHS)
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
    let text = match rows_data.get(app.approvals.sel) {
        Some(a) => details(app, a),
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

/// The details pane of a pending or an answered approval.
fn details<'a>(app: &App, a: &PendingApproval) -> Vec<Line<'a>> {
    let ap = a.action.approval.as_ref();
    let mut lines = vec![Line::from(Span::styled(
        format!("{} / {} / {}", a.pipeline, a.stage, a.action.action_name),
        app.theme.title,
    ))];
    lines.push(Line::from(format!(
        "CustomData: {}",
        ap.and_then(|x| x.custom_data.clone())
            .unwrap_or_else(|| "(none)".into())
    )));
    if let Some(r) = app.revision_of(&a.pipeline, &a.action.pipeline_execution_id) {
        lines.push(Line::from(revision_text(&r)));
    }
    if let Some(l) = ap.and_then(|x| x.external_entity_link.clone()) {
        lines.push(Line::from(Span::styled(
            format!("link: {l}"),
            app.theme.muted,
        )));
    }
    let exec = crate::api::short_id(&a.action.pipeline_execution_id, 8).to_owned();
    match ap.and_then(|x| x.result.as_ref()) {
        Some(r) => {
            lines.push(Line::from(format!(
                "{} by {} at {}{}",
                r.status,
                r.by,
                r.at.get(..19).unwrap_or(&r.at).replace('T', " "),
                if r.summary.is_empty() {
                    String::new()
                } else {
                    format!(": \u{201c}{}\u{201d}", r.summary)
                }
            )));
            lines.push(Line::from(Span::styled(
                format!("execution {exec} · Enter: its pipeline · y: copy the execution id"),
                app.theme.muted,
            )));
        }
        None => lines.push(Line::from(Span::styled(
            format!(
                "execution {exec} · a: approve (shows the commits) · x: reject with a summary · y: copy the id"
            ),
            app.theme.muted,
        ))),
    }
    lines
}

fn revision_text(r: &SourceRevision) -> String {
    format!(
        "revision {} ({}){}",
        crate::api::short_id(&r.revision_id, 12),
        r.action_name,
        r.revision_summary
            .as_deref()
            .map(|s| format!(": {}", s.lines().next().unwrap_or("")))
            .unwrap_or_default()
    )
}

/// The approval modal: what is approved, then the commits, then the keys.
pub(crate) fn modal_lines<'a>(app: &App, m: &ApprovalModal, width: usize) -> Vec<Line<'a>> {
    let t = &app.theme;
    let mut lines = vec![
        Line::from(Span::styled(
            format!(
                "Approve {}/{} of {} (execution {})?",
                m.stage,
                m.action,
                m.pipeline,
                crate::api::short_id(&m.execution, 8)
            ),
            t.title,
        )),
        Line::from(format!(
            "CustomData: {}",
            m.custom_data.as_deref().unwrap_or("(none)")
        )),
    ];
    match &m.revision {
        Some(r) => lines.push(Line::from(revision_text(r))),
        None => lines.push(Line::from(Span::styled(
            "revision: the execution has no source revision recorded",
            t.muted,
        ))),
    }
    if let Some(l) = &m.link {
        lines.push(Line::from(Span::styled(format!("link: {l}"), t.muted)));
    }
    let expires = m.expires.get(..16).unwrap_or(&m.expires).replace('T', " ");
    if !expires.trim().is_empty() {
        lines.push(Line::from(Span::styled(
            format!("expires {expires}"),
            t.muted,
        )));
    }
    lines.push(Line::from(""));
    match &m.commits {
        Commits::Loading => lines.push(Line::from(Span::styled(
            "commits: reading the source repository…",
            t.muted,
        ))),
        Commits::Unavailable(why) => lines.push(Line::from(Span::styled(
            format!("commits: not available: {why}"),
            t.waiting,
        ))),
        Commits::Loaded(c) => {
            let env = c
                .environment
                .clone()
                .or(m.environment.clone())
                .unwrap_or_else(|| "the next environment".into());
            let live = c
                .from
                .as_deref()
                .map(|f| crate::api::short_id(f, 12).to_owned())
                .unwrap_or_else(|| "nothing live yet".into());
            lines.push(Line::from(Span::styled(
                format!(
                    "{} commit(s){} going to {env}: live {live} → candidate {}",
                    c.commits.len(),
                    if c.truncated { " (and more)" } else { "" },
                    crate::api::short_id(&c.to, 12)
                ),
                t.title,
            )));
            if c.commits.is_empty() {
                lines.push(Line::from(Span::styled(
                    format!("  none: {env} already runs this revision"),
                    t.muted,
                )));
            }
            for k in c.commits.iter().take(12) {
                let head = format!(
                    "  {}  {}  {:<14} ",
                    crate::api::short_id(&k.commit_id, 8),
                    k.date.get(..10).unwrap_or(&k.date),
                    truncate(&k.author, 14)
                );
                let room = width.saturating_sub(head.chars().count());
                lines.push(Line::from(vec![
                    Span::styled(head, t.muted),
                    Span::raw(truncate(&k.message, room.max(8))),
                ]));
            }
            if c.commits.len() > 12 {
                lines.push(Line::from(Span::styled(
                    format!("  … {} more", c.commits.len() - 12),
                    t.muted,
                )));
            }
        }
    }
    lines.push(Line::from(""));
    match &m.typed {
        Some((want, got)) => {
            lines.push(Line::from(Span::styled(
                format!("{want} is protected: type its name to approve · Esc: cancel"),
                t.waiting,
            )));
            lines.push(Line::from(format!("> {got}▏")));
        }
        None => lines.push(Line::from(Span::styled(
            "y / Enter: approve · any other key: cancel",
            t.muted,
        ))),
    }
    lines
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

    /// The rows of the Approvals screen: pending first, then answered.
    pub fn approval_rows(&self) -> Vec<PendingApproval> {
        let mut rows = self.pending_approvals();
        rows.extend(self.decided_approvals());
        rows
    }

    /// The first source revision of an execution, when it is listed.
    pub(crate) fn revision_of(&self, pipeline: &str, execution: &str) -> Option<SourceRevision> {
        self.snap
            .executions
            .get(pipeline)?
            .iter()
            .find(|e| e.pipeline_execution_id == execution)?
            .source_revisions
            .first()
            .cloned()
    }

    /// The environment the first Deploy action at or after `stage` lands
    /// in (from the definitions and the environments' `actions`).
    pub(crate) fn next_environment(
        &self,
        pipeline: &str,
        stage: &str,
    ) -> Option<&crate::api::env::EnvironmentSummary> {
        let def = self.defs.get(pipeline)?;
        let at = def.stages.iter().position(|s| s.name == stage)?;
        def.stages[at..]
            .iter()
            .flat_map(|s| {
                let mut acts: Vec<_> = s.actions.iter().collect();
                acts.sort_by_key(|a| a.run_order);
                acts
            })
            .find_map(|a| self.snap.envs.iter().find(|e| e.actions.contains(&a.name)))
    }

    /// Approve opens the approval modal (and asks for the commits); reject
    /// first asks for a summary.
    pub(crate) fn ask_approval(
        &mut self,
        c: Command,
        pipeline: String,
        stage: String,
        action: String,
    ) -> Vec<Effect> {
        if c != Command::Approve {
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
            return Vec::new();
        }
        let Some(a) = self
            .pending_approvals()
            .into_iter()
            .find(|a| a.pipeline == pipeline && a.stage == stage && a.action.action_name == action)
        else {
            self.toast(
                format!("{stage}/{action} is not waiting for approval"),
                true,
            );
            return Vec::new();
        };
        let ap = a.action.approval.as_ref();
        let next = self.next_environment(&pipeline, &stage);
        let environment = next.map(|e| e.name.clone());
        let typed = self.protected_approvals.then_some(()).and_then(|()| {
            match next.filter(|e| e.protected) {
                Some(e) => Some(e.name.clone()),
                None => self.protected.contains(&stage).then(|| stage.clone()),
            }
        });
        let execution = a.action.pipeline_execution_id.clone();
        self.modal = Some(Modal::Approve(Box::new(ApprovalModal {
            revision: self.revision_of(&pipeline, &execution),
            pipeline: pipeline.clone(),
            stage: stage.clone(),
            action,
            execution: execution.clone(),
            custom_data: ap.and_then(|x| x.custom_data.clone()),
            link: ap.and_then(|x| x.external_entity_link.clone()),
            expires: ap.map(|x| x.expires.clone()).unwrap_or_default(),
            environment,
            commits: Commits::Loading,
            typed: typed.map(|t| (t, String::new())),
        })));
        vec![Effect::Commits {
            pipeline,
            execution,
            range: CommitRange::SinceLive { stage_name: stage },
        }]
    }
}
