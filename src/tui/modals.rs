//! Modals over the screens: confirmations (typed for protected targets),
//! text prompts (a rejection summary, a reason), the help overlay, the
//! command palette and the quit confirmation. An open modal takes every key.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use crate::api::Request;
use crate::tui::app::screens::approvals::ApprovalModal;
use crate::tui::app::widgets::centered;
use crate::tui::app::{App, Effect};
use crate::tui::keymap::Scope;

/// An operation waiting for confirmation or input.
#[derive(Debug, Clone, PartialEq)]
pub enum Pending {
    Approve {
        pipeline: String,
        stage: String,
        action: String,
    },
    Reject {
        pipeline: String,
        stage: String,
        action: String,
        summary: String,
    },
    Stop {
        pipeline: String,
        execution: String,
    },
    Rollback {
        pipeline: String,
        stage: String,
    },
    RollbackEnv {
        env: String,
    },
    /// `f` / `z` on a kubernetes environment: its Flux object.
    Flux {
        env: String,
        object: String,
        operation: crate::api::FluxOperation,
    },
    Disable {
        pipeline: String,
        stage: String,
        reason: String,
    },
    /// `r` on a failed stage whose branch has moved on: a retry re-runs the
    /// execution's revision, so releasing the newer commit is offered.
    Release {
        pipeline: String,
        stage: String,
        retry_mode: String,
        revision: String,
        newer: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Modal {
    Help,
    Palette(String),
    /// `typed`: (the name to type, what was typed) for protected targets.
    Confirm {
        text: String,
        op: Pending,
        typed: Option<(String, String)>,
    },
    /// A summary or reason; `op` gets the text when Enter is pressed.
    Input {
        prompt: String,
        buf: String,
        op: Pending,
    },
    /// `q` while this process hosts running executions.
    QuitConfirm {
        running: usize,
    },
    /// What `a` approves: CustomData, revision, commits.
    Approve(Box<ApprovalModal>),
    /// A full record (an audit event as CloudTrail shapes it), scrolled
    /// by `scroll` lines; `y` copies `id`.
    Record {
        title: String,
        lines: Vec<String>,
        scroll: usize,
        id: String,
    },
}

pub fn draw(f: &mut Frame, app: &App, m: &Modal, area: Rect) {
    let (title, lines, w, h): (String, Vec<Line>, u16, u16) = match m {
        Modal::Approve(a) => {
            let w = area.width.saturating_sub(4).min(110);
            (
                "Approve".into(),
                crate::tui::app::screens::approvals::modal_lines(app, a, usize::from(w) - 2),
                w,
                0,
            )
        }
        Modal::Record {
            title,
            lines,
            scroll,
            ..
        } => {
            let h = area.height.saturating_sub(4);
            let mut out: Vec<Line> = lines
                .iter()
                .skip(*scroll)
                .take(usize::from(h.saturating_sub(1)))
                .map(|l| Line::from(l.clone()))
                .collect();
            out.push(Line::from(Span::styled(
                format!(
                    "j/k: scroll · y: copy the id · Esc: close   ({}-{} of {})",
                    scroll + 1,
                    (scroll + usize::from(h.saturating_sub(1))).min(lines.len()),
                    lines.len()
                ),
                app.theme.muted,
            )));
            (title.clone(), out, area.width.saturating_sub(4).min(110), h)
        }
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
                            format!(
                                "{}{}",
                                c.describe_in(scope),
                                if dim { " (read-only)" } else { "" }
                            ),
                            if dim { app.theme.muted } else { app.theme.base },
                        ),
                    ]));
                }
            }
            lines.push(Line::from(Span::styled(
                "  :pipelines :approvals :audit :envs :diagnose :logs :approve :reject :retry :rollback :start :stop :help :quit",
                app.theme.muted,
            )));
            (
                "Help — keys (remap them under [keys] in the config)".into(),
                lines,
                64,
                area.height.saturating_sub(2),
            )
        }
        Modal::Palette(buf) => {
            let mut lines = vec![Line::from(format!(":{buf}▏"))];
            lines.extend(crate::tui::app::palette::suggestion_lines(app, buf));
            lines.push(Line::from(Span::styled(
                "Tab: complete · ↑↓: history · Enter: run · Esc: close",
                app.theme.muted,
            )));
            ("Command".into(), lines, 64, 4)
        }
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
    let h = if matches!(m, Modal::Help | Modal::Record { .. }) {
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

impl App {
    pub(crate) fn modal_key(&mut self, m: Modal, k: KeyEvent) -> Vec<Effect> {
        let ctrl_c = k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
        match m {
            Modal::Approve(mut a) => {
                let approve = |me: &mut App, a: &ApprovalModal| {
                    me.modal = None;
                    vec![me.effect_of(Pending::Approve {
                        pipeline: a.pipeline.clone(),
                        stage: a.stage.clone(),
                        action: a.action.clone(),
                    })]
                };
                match &mut a.typed {
                    Some((want, got)) => match k.code {
                        KeyCode::Enter if got == want => return approve(self, &a),
                        KeyCode::Enter => self.toast(format!("type `{want}` to approve"), true),
                        KeyCode::Backspace => {
                            got.pop();
                            self.modal = Some(Modal::Approve(a));
                        }
                        KeyCode::Char(c) if !ctrl_c => {
                            got.push(c);
                            self.modal = Some(Modal::Approve(a));
                        }
                        _ => self.modal = None,
                    },
                    None => match k.code {
                        KeyCode::Char('y') | KeyCode::Enter => return approve(self, &a),
                        _ => self.modal = None,
                    },
                }
                Vec::new()
            }
            Modal::Record {
                title,
                lines,
                scroll,
                id,
            } => {
                let page = usize::from(self.size.1.saturating_sub(6)).max(1);
                let last = lines.len().saturating_sub(page);
                let scroll = match k.code {
                    KeyCode::Char('j') | KeyCode::Down => (scroll + 1).min(last),
                    KeyCode::Char('k') | KeyCode::Up => scroll.saturating_sub(1),
                    KeyCode::PageDown | KeyCode::Char(' ') => (scroll + page).min(last),
                    KeyCode::PageUp => scroll.saturating_sub(page),
                    KeyCode::Char('g') | KeyCode::Home => 0,
                    KeyCode::Char('G') | KeyCode::End => last,
                    KeyCode::Char('y') => {
                        let fx = self.copy(Some(id.clone()), "");
                        self.modal = Some(Modal::Record {
                            title,
                            lines,
                            scroll,
                            id,
                        });
                        return fx;
                    }
                    _ => {
                        self.modal = None;
                        return Vec::new();
                    }
                };
                self.modal = Some(Modal::Record {
                    title,
                    lines,
                    scroll,
                    id,
                });
                Vec::new()
            }
            Modal::Help => {
                if matches!(
                    k.code,
                    KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
                ) || ctrl_c
                {
                    self.modal = None;
                }
                Vec::new()
            }
            Modal::QuitConfirm { .. } => {
                match k.code {
                    KeyCode::Char('y') | KeyCode::Enter => {
                        self.quit = true;
                        return vec![Effect::Quit];
                    }
                    _ => self.modal = None,
                }
                Vec::new()
            }
            Modal::Palette(buf) => self.palette_key(buf, k),
            Modal::Input {
                prompt,
                mut buf,
                op,
            } => {
                match k.code {
                    KeyCode::Esc => self.modal = None,
                    KeyCode::Enter => {
                        let op = match op {
                            Pending::Reject {
                                pipeline,
                                stage,
                                action,
                                ..
                            } => Pending::Reject {
                                pipeline,
                                stage,
                                action,
                                summary: buf.clone(),
                            },
                            Pending::Disable {
                                pipeline, stage, ..
                            } => Pending::Disable {
                                pipeline,
                                stage,
                                reason: buf.clone(),
                            },
                            other => other,
                        };
                        if matches!(op, Pending::Disable { .. }) {
                            self.modal = None;
                            return vec![self.effect_of(op)];
                        }
                        self.confirm(op);
                    }
                    KeyCode::Backspace => {
                        buf.pop();
                        self.modal = Some(Modal::Input { prompt, buf, op });
                    }
                    KeyCode::Char(c) if !ctrl_c => {
                        buf.push(c);
                        self.modal = Some(Modal::Input { prompt, buf, op });
                    }
                    _ => self.modal = None,
                }
                Vec::new()
            }
            Modal::Confirm { text, op, typed } => {
                if let Some((want, mut got)) = typed {
                    match k.code {
                        KeyCode::Esc => self.modal = None,
                        KeyCode::Enter if got == want => {
                            self.modal = None;
                            return vec![self.effect_of(op)];
                        }
                        KeyCode::Enter => self.toast(format!("type `{want}` to confirm"), true),
                        KeyCode::Backspace => {
                            got.pop();
                            self.modal = Some(Modal::Confirm {
                                text,
                                op,
                                typed: Some((want, got)),
                            });
                        }
                        KeyCode::Char(c) if !ctrl_c => {
                            got.push(c);
                            self.modal = Some(Modal::Confirm {
                                text,
                                op,
                                typed: Some((want, got)),
                            });
                        }
                        _ => self.modal = None,
                    }
                    return Vec::new();
                }
                self.modal = None;
                match (k.code, &op) {
                    (KeyCode::Char('y') | KeyCode::Enter, _) => vec![self.effect_of(op)],
                    (
                        KeyCode::Char('r'),
                        Pending::Release {
                            pipeline,
                            stage,
                            retry_mode,
                            ..
                        },
                    ) => vec![retry(pipeline.clone(), stage.clone(), retry_mode.clone())],
                    (
                        KeyCode::Char('A'),
                        Pending::Stop {
                            pipeline,
                            execution,
                        },
                    ) => {
                        vec![Effect::Op {
                            label: "stop (abandon)".into(),
                            request: Request::StopPipelineExecution {
                                pipeline_name: pipeline.clone(),
                                pipeline_execution_id: Some(execution.clone()),
                                abandon: true,
                                reason: Some("stopped from pipedeck".into()),
                            },
                        }]
                    }
                    _ => Vec::new(),
                }
            }
        }
    }

    /// Asks for confirmation (typed, for protected stages).
    pub(crate) fn confirm(&mut self, op: Pending) {
        let (text, stage) = match &op {
            Pending::Approve { stage, action, .. } => (format!("Approve {stage}/{action}?"), stage),
            Pending::Reject {
                stage,
                action,
                summary,
                ..
            } => (
                format!(
                    "Reject {stage}/{action} with summary \u{201c}{summary}\u{201d}? The stage and the execution fail."
                ),
                stage,
            ),
            Pending::Stop { execution, .. } => (
                format!(
                    "Stop execution {}? y: let running actions finish · A: abandon them",
                    crate::api::short_id(execution, 8)
                ),
                &String::new(),
            ),
            Pending::Rollback { stage, .. } => (
                format!("Roll back stage {stage} to its last successful execution?"),
                stage,
            ),
            Pending::Disable { stage, .. } => {
                (format!("Disable the transition into {stage}?"), stage)
            }
            Pending::Release {
                stage,
                revision,
                newer,
                ..
            } => (
                format!(
                    "Retry re-runs revision {} in {stage} (the execution's own source, as on AWS); \
                     the branch has a newer commit {}. y: release {} in a new execution · \
                     r: retry {} anyway · n: cancel",
                    short_rev(revision),
                    short_rev(newer),
                    short_rev(newer),
                    short_rev(revision)
                ),
                &String::new(),
            ),
            Pending::RollbackEnv { env } => (self.rollback_env_text(env), env),
            Pending::Flux {
                env,
                object,
                operation,
            } => (flux_text(env, object, *operation), env),
        };
        let env_protected = matches!(&op, Pending::RollbackEnv { env } | Pending::Flux { env, .. }
            if self.snap.envs.iter().any(|e| &e.name == env && e.protected));
        let typed = (env_protected || self.protected.iter().any(|p| p == stage))
            .then(|| (stage.clone(), String::new()));
        self.modal = Some(Modal::Confirm { text, op, typed });
    }

    pub(crate) fn effect_of(&self, op: Pending) -> Effect {
        match op {
            Pending::Approve {
                pipeline,
                stage,
                action,
            } => Effect::Op {
                label: format!("approve {stage}/{action}"),
                request: Request::PutApprovalResult {
                    pipeline_name: pipeline,
                    stage_name: stage,
                    action_name: action,
                    token: None,
                    status: "Approved".into(),
                    summary: String::new(),
                },
            },
            Pending::Reject {
                pipeline,
                stage,
                action,
                summary,
            } => Effect::Op {
                label: format!("reject {stage}/{action}"),
                request: Request::PutApprovalResult {
                    pipeline_name: pipeline,
                    stage_name: stage,
                    action_name: action,
                    token: None,
                    status: "Rejected".into(),
                    summary,
                },
            },
            Pending::Stop {
                pipeline,
                execution,
            } => Effect::Op {
                label: "stop".into(),
                request: Request::StopPipelineExecution {
                    pipeline_name: pipeline,
                    pipeline_execution_id: Some(execution),
                    abandon: false,
                    reason: Some("stopped from pipedeck".into()),
                },
            },
            Pending::RollbackEnv { env } => Effect::Op {
                label: format!("roll back {env}"),
                request: Request::RollbackEnvironment {
                    environment_name: env,
                },
            },
            Pending::Flux {
                env,
                object,
                operation,
            } => Effect::Op {
                label: format!("flux {} {object}", operation.as_str()),
                request: Request::FluxObject {
                    environment_name: env,
                    object,
                    operation,
                },
            },
            Pending::Rollback { pipeline, stage } => Effect::Op {
                label: format!("roll back {stage}"),
                request: Request::RollbackStage {
                    pipeline_name: pipeline,
                    stage_name: stage,
                    target_pipeline_execution_id: None,
                },
            },
            Pending::Release { pipeline, .. } => {
                crate::tui::app::screens::pipelines::start(pipeline)
            }
            Pending::Disable {
                pipeline,
                stage,
                reason,
            } => Effect::Op {
                label: format!("disable transition into {stage}"),
                request: Request::DisableStageTransition {
                    pipeline_name: pipeline,
                    stage_name: stage,
                    reason,
                },
            },
        }
    }
}

fn short_rev(r: &str) -> &str {
    r.get(..8).unwrap_or(r)
}

/// A stage retry (`FAILED_ACTIONS` or `ALL_ACTIONS`) of the latest
/// execution in the stage.
pub(crate) fn retry(pipeline: String, stage: String, retry_mode: String) -> Effect {
    Effect::Op {
        label: format!("retry {stage}"),
        request: Request::RetryStageExecution {
            pipeline_name: pipeline,
            stage_name: stage,
            pipeline_execution_id: None,
            retry_mode,
        },
    }
}

/// What `f` / `z` ask, as `flux` would do it.
fn flux_text(env: &str, object: &str, op: crate::api::FluxOperation) -> String {
    use crate::api::FluxOperation as F;
    match op {
        F::Reconcile => format!(
            "Reconcile {object} in {env} now? Flux applies its source's latest revision \
             (flux reconcile; pipedeck waits until the controller has handled it)."
        ),
        F::Suspend => format!(
            "Suspend {object} in {env}? Flux stops reconciling it until it is resumed \
             (spec.suspend = true)."
        ),
        F::Resume => {
            format!("Resume {object} in {env}? Flux reconciles it again (spec.suspend = false).")
        }
    }
}
