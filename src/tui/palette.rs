//! The command palette (`:`): screens and actions by name, matched by
//! prefix then fuzzily (`:env` finds `:envs`, `:adt` finds `:audit`),
//! Tab to complete the command or its argument (stages, actions,
//! environments, pipelines), Up / Down through the commands run before.
//! Actions run the code the keys run: `:approve` opens the approval modal
//! `a` opens, `:rollback prod` the confirmation `b` asks, `:logs
//! Build/UnitTests` the log `L` opens.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::text::{Line, Span};

use crate::tui::app::screens::{self, Screen};
use crate::tui::app::{App, Effect, Modal};
use crate::tui::keymap::Command;

/// The palette's memory between openings.
#[derive(Debug, Clone, Default)]
pub struct PaletteState {
    /// Commands run, oldest first (consecutive repeats once).
    pub history: Vec<String>,
    /// Where Up / Down are in the history (None: the line being typed).
    pub hist_pos: Option<usize>,
    /// What was typed before Tab started cycling, and the next pick.
    pub stem: Option<String>,
    pub pick: usize,
}

/// What a command's argument names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    None,
    Pipeline,
    /// `Stage/Action` of the shown pipeline.
    Action,
    /// A waiting approval, as `Stage/Action`.
    Approval,
    Stage,
    /// An environment, else a stage of the shown pipeline.
    StageOrEnv,
}

struct Cmd {
    name: &'static str,
    aliases: &'static [&'static str],
    arg: Arg,
    help: &'static str,
}

const CMDS: &[Cmd] = &[
    cmd("pipelines", &["p"], Arg::None, "the Pipelines screen"),
    cmd("pipeline", &[], Arg::Pipeline, "open a pipeline's graph"),
    cmd("approvals", &["a"], Arg::None, "the Approvals screen"),
    cmd("audit", &[], Arg::None, "the audit trail"),
    cmd(
        "envs",
        &["environments"],
        Arg::None,
        "the Environments screen",
    ),
    cmd("diagnose", &[], Arg::None, "diagnose the selected failure"),
    cmd("logs", &[], Arg::Action, "the log of Stage/Action"),
    cmd("approve", &[], Arg::Approval, "approve Stage/Action"),
    cmd("reject", &[], Arg::Approval, "reject Stage/Action"),
    cmd(
        "retry",
        &[],
        Arg::Stage,
        "retry the failed actions of a stage",
    ),
    cmd(
        "rollback",
        &[],
        Arg::StageOrEnv,
        "roll back an environment or a stage",
    ),
    cmd("start", &[], Arg::Pipeline, "start a release of a pipeline"),
    cmd("stop", &[], Arg::None, "stop the running execution"),
    cmd("help", &[], Arg::None, "the keys"),
    cmd("quit", &["q"], Arg::None, "quit"),
];

const fn cmd(
    name: &'static str,
    aliases: &'static [&'static str],
    arg: Arg,
    help: &'static str,
) -> Cmd {
    Cmd {
        name,
        aliases,
        arg,
        help,
    }
}

/// How well `typed` names `name`: 0 exact, 1 prefix, 2 + gaps for the
/// letters in order (fuzzy), None when the letters are not all there.
fn score(typed: &str, name: &str) -> Option<usize> {
    let (t, n) = (typed.to_lowercase(), name.to_lowercase());
    if t == n {
        return Some(0);
    }
    if n.starts_with(&t) {
        return Some(1);
    }
    let mut gaps = 0;
    let mut chars = n.chars();
    for c in t.chars() {
        let mut skipped = 0;
        loop {
            match chars.next() {
                Some(x) if x == c => break,
                Some(_) => skipped += 1,
                None => return None,
            }
        }
        gaps += skipped;
    }
    Some(2 + gaps)
}

/// The commands `word` may name, best first.
fn commands_for(word: &str) -> Vec<&'static Cmd> {
    let mut scored: Vec<(usize, &Cmd)> = CMDS
        .iter()
        .filter_map(|c| {
            std::iter::once(c.name)
                .chain(c.aliases.iter().copied())
                .filter_map(|n| score(word, n))
                .min()
                .map(|s| (s, c))
        })
        .collect();
    scored.sort_by_key(|(s, c)| (*s, c.name.len()));
    scored.into_iter().map(|(_, c)| c).collect()
}

/// The names an argument may take, as the completion offers them.
fn arg_values(app: &App, arg: Arg) -> Vec<String> {
    let stages = || -> Vec<String> {
        app.state()
            .map(|s| {
                s.stage_states
                    .iter()
                    .map(|s| s.stage_name.clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    match arg {
        Arg::None => Vec::new(),
        Arg::Pipeline => app.snap.pipelines.iter().map(|p| p.name.clone()).collect(),
        Arg::Action => app
            .state()
            .map(|s| {
                s.stage_states
                    .iter()
                    .flat_map(|st| {
                        st.action_states
                            .iter()
                            .map(move |a| format!("{}/{}", st.stage_name, a.action_name))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Arg::Approval => app
            .pending_approvals()
            .iter()
            .map(|a| format!("{}/{}", a.stage, a.action.action_name))
            .collect(),
        Arg::Stage => stages(),
        Arg::StageOrEnv => app
            .snap
            .envs
            .iter()
            .map(|e| e.name.clone())
            .chain(stages())
            .collect(),
    }
}

/// The best values for a typed argument.
fn values_for(app: &App, arg: Arg, typed: &str) -> Vec<String> {
    let mut scored: Vec<(usize, String)> = arg_values(app, arg)
        .into_iter()
        .filter_map(|v| score(typed, &v).map(|s| (s, v)))
        .collect();
    scored.sort_by_key(|(s, v)| (*s, v.len()));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().map(|(_, v)| v).collect()
}

/// The completions of a line: whole lines, best first.
fn completions(app: &App, line: &str) -> Vec<String> {
    let line = line.trim_start_matches(':');
    match line.split_once(' ') {
        None => commands_for(line)
            .iter()
            .map(|c| {
                if c.arg == Arg::None {
                    c.name.to_owned()
                } else {
                    format!("{} ", c.name)
                }
            })
            .collect(),
        Some((word, rest)) => {
            let Some(c) = resolve(word) else {
                return Vec::new();
            };
            values_for(app, c.arg, rest.trim())
                .into_iter()
                .map(|v| format!("{} {v}", c.name))
                .collect()
        }
    }
}

/// The command a typed word runs: an exact name, else the best match.
fn resolve(word: &str) -> Option<&'static Cmd> {
    commands_for(word).into_iter().next()
}

/// The palette's lines under the input: what Tab would pick, then the
/// other matches (at most six).
pub(crate) fn suggestion_lines(app: &App, buf: &str) -> Vec<Line<'static>> {
    let stem = app.palette.stem.as_deref().unwrap_or(buf);
    let all = completions(app, stem);
    if all.is_empty() {
        return vec![Line::from(Span::styled(
            if stem.contains(' ') {
                "no such name here (Enter tries it anyway)".to_owned()
            } else {
                "no such command: :pipelines :approvals :audit :envs :logs :approve :rollback …"
                    .to_owned()
            },
            app.theme.muted,
        ))];
    }
    let current = buf.trim_start_matches(':');
    all.iter()
        .take(6)
        .enumerate()
        .map(|(i, s)| {
            let word = s.split(' ').next().unwrap_or_default();
            let help = if s.trim_end().contains(' ') {
                String::new()
            } else {
                CMDS.iter()
                    .find(|c| c.name == word)
                    .map_or(String::new(), |c| format!("  {}", c.help))
            };
            let picked =
                s.trim_end() == current.trim_end() || (i == 0 && app.palette.stem.is_none());
            Line::from(vec![
                Span::styled(
                    format!("{} :{}", if picked { "▶" } else { " " }, s.trim_end()),
                    if picked {
                        app.theme.selection
                    } else {
                        app.theme.base
                    },
                ),
                Span::styled(help, app.theme.muted),
            ])
        })
        .collect()
}

impl App {
    /// A key while the palette is open.
    pub(crate) fn palette_key(&mut self, mut buf: String, k: KeyEvent) -> Vec<Effect> {
        let ctrl_c = k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Esc => self.close_palette(),
            KeyCode::Enter => {
                self.close_palette();
                let line = buf.trim().trim_start_matches(':').to_owned();
                if line.is_empty() {
                    return Vec::new();
                }
                if self.palette.history.last() != Some(&line) {
                    self.palette.history.push(line.clone());
                }
                return self.palette(&line);
            }
            KeyCode::Tab | KeyCode::BackTab => {
                let stem = self.palette.stem.clone().unwrap_or_else(|| buf.clone());
                let all = completions(self, &stem);
                if all.is_empty() {
                    self.modal = Some(Modal::Palette(buf));
                    return Vec::new();
                }
                let n = all.len();
                let pick = if self.palette.stem.is_none() {
                    if k.code == KeyCode::Tab { 0 } else { n - 1 }
                } else if k.code == KeyCode::Tab {
                    (self.palette.pick + 1) % n
                } else {
                    (self.palette.pick + n - 1) % n
                };
                self.palette.stem = Some(stem);
                self.palette.pick = pick;
                self.modal = Some(Modal::Palette(all[pick].clone()));
            }
            KeyCode::Up | KeyCode::Down => {
                let h = &self.palette.history;
                let pos = match (k.code, self.palette.hist_pos) {
                    (KeyCode::Up, None) => h.len().checked_sub(1),
                    (KeyCode::Up, Some(p)) => Some(p.saturating_sub(1)),
                    (_, Some(p)) if p + 1 < h.len() => Some(p + 1),
                    _ => None,
                };
                self.palette.hist_pos = pos;
                self.palette.stem = None;
                let line = pos.and_then(|p| h.get(p)).cloned().unwrap_or_default();
                self.modal = Some(Modal::Palette(line));
            }
            KeyCode::Backspace => {
                buf.pop();
                self.palette.stem = None;
                self.modal = Some(Modal::Palette(buf));
            }
            KeyCode::Char(c) if !ctrl_c => {
                buf.push(c);
                self.palette.stem = None;
                self.modal = Some(Modal::Palette(buf));
            }
            _ => self.close_palette(),
        }
        Vec::new()
    }

    fn close_palette(&mut self) {
        self.modal = None;
        self.palette.stem = None;
        self.palette.hist_pos = None;
    }

    /// Runs a palette line: `name [argument]`.
    pub(crate) fn palette(&mut self, line: &str) -> Vec<Effect> {
        let line = line.trim().trim_start_matches(':');
        let (word, arg) = match line.split_once(' ') {
            Some((w, a)) => (w, a.trim()),
            None => (line, ""),
        };
        let Some(c) = resolve(word) else {
            self.toast(
                format!(
                    "unknown command `:{word}` (try :pipelines, :approvals, :audit, :envs, :logs, :approve, :rollback, :help)"
                ),
                true,
            );
            return Vec::new();
        };
        match c.name {
            "pipelines" => {
                self.back.clear();
                self.screen = Screen::Pipelines;
                Vec::new()
            }
            "approvals" => self.command(Command::Approvals),
            "audit" => self.command(Command::Audit),
            "envs" => self.command(Command::Environments),
            "diagnose" => self.command(Command::Diagnose),
            "help" => self.command(Command::Help),
            "quit" => self.command(Command::Quit),
            "pipeline" => self.palette_open_pipeline(arg),
            "start" => {
                let name = if arg.is_empty() {
                    self.pipeline.clone()
                } else {
                    self.pick_value(Arg::Pipeline, arg, "pipeline")
                };
                match name {
                    Some(p) if !self.readonly => vec![screens::pipelines::start(p)],
                    Some(_) => self.command(Command::Start),
                    None => Vec::new(),
                }
            }
            "stop" => self.on_graph(Command::Stop),
            "logs" => self.palette_on_action(Arg::Action, arg, Command::Logs),
            "approve" => self.palette_approval(arg, Command::Approve),
            "reject" => self.palette_approval(arg, Command::Reject),
            "retry" => self.palette_on_stage(arg, Command::Retry),
            "rollback" => self.palette_rollback(arg),
            _ => Vec::new(),
        }
    }

    /// A value of `arg` for `typed`: an exact name (any case), else the
    /// one best match; a toast says when there is none or several.
    fn pick_value(&mut self, arg: Arg, typed: &str, what: &str) -> Option<String> {
        let all = values_for(self, arg, typed);
        if let Some(v) = all.iter().find(|v| v.eq_ignore_ascii_case(typed)) {
            return Some(v.clone());
        }
        match all.as_slice() {
            [one] => Some(one.clone()),
            [] => {
                self.toast(format!("no {what} `{typed}` here"), true);
                None
            }
            many => {
                let best = score(typed, &many[0]);
                if best < score(typed, &many[1]) {
                    return Some(many[0].clone());
                }
                self.toast(
                    format!(
                        "`{typed}` could be {} (Tab completes)",
                        many.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
                    ),
                    true,
                );
                None
            }
        }
    }

    /// A command of the Pipeline screen, from anywhere, through the same
    /// code as its key (read-only mode refuses it the same way).
    fn on_graph(&mut self, c: Command) -> Vec<Effect> {
        if self.readonly && c.mutates() {
            return self.command(c);
        }
        screens::pipeline::on_command(self, c)
    }

    /// Selects `Stage/Action` (or the only action named so) in the graph.
    fn select_action(&mut self, name: &str) -> bool {
        let Some(st) = self.state() else {
            return false;
        };
        let (stage, action) = name.split_once('/').unwrap_or(("", name));
        let found = st.stage_states.iter().enumerate().find_map(|(i, s)| {
            if !stage.is_empty() && !s.stage_name.eq_ignore_ascii_case(stage) {
                return None;
            }
            s.action_states
                .iter()
                .position(|a| a.action_name.eq_ignore_ascii_case(action))
                .map(|j| (i, j))
        });
        match found {
            Some((i, j)) => {
                self.sel_stage = i;
                self.sel_action = j;
                self.graph.pinned = true;
                true
            }
            None => false,
        }
    }

    fn palette_on_action(&mut self, arg: Arg, typed: &str, c: Command) -> Vec<Effect> {
        if !typed.is_empty() {
            let Some(v) = self.pick_value(arg, typed, "action") else {
                return Vec::new();
            };
            if !self.select_action(&v) {
                self.toast(format!("no action `{v}` in this pipeline"), true);
                return Vec::new();
            }
        }
        self.on_graph(c)
    }

    /// `:approve` / `:reject`: the named approval, else the selected action
    /// when it waits, else the only one waiting; the modal the keys open.
    fn palette_approval(&mut self, typed: &str, c: Command) -> Vec<Effect> {
        let list = self.pending_approvals();
        let name = if typed.is_empty() {
            let selected = self
                .action_detail(self.sel_stage, self.sel_action)
                .is_some_and(|d| d.token.is_some());
            if selected {
                return self.on_graph(c);
            }
            match list.as_slice() {
                [one] => format!("{}/{}", one.stage, one.action.action_name),
                [] => {
                    self.toast("no approval is pending", true);
                    return Vec::new();
                }
                many => {
                    self.toast(
                        format!(
                            "{} approvals wait: name one (Tab completes), e.g. :{} {}/{}",
                            many.len(),
                            if c == Command::Approve {
                                "approve"
                            } else {
                                "reject"
                            },
                            many[0].stage,
                            many[0].action.action_name
                        ),
                        true,
                    );
                    return Vec::new();
                }
            }
        } else {
            match self.pick_value(Arg::Approval, typed, "waiting approval") {
                Some(v) => v,
                None => return Vec::new(),
            }
        };
        let Some(a) = list
            .iter()
            .find(|a| format!("{}/{}", a.stage, a.action.action_name) == name)
        else {
            return Vec::new();
        };
        if self.readonly {
            return self.command(c);
        }
        self.ask_approval(
            c,
            a.pipeline.clone(),
            a.stage.clone(),
            a.action.action_name.clone(),
        );
        Vec::new()
    }

    fn select_stage(&mut self, stage: &str) -> bool {
        let Some(i) = self.state().and_then(|s| {
            s.stage_states
                .iter()
                .position(|s| s.stage_name.eq_ignore_ascii_case(stage))
        }) else {
            return false;
        };
        self.sel_stage = i;
        self.sel_action = 0;
        self.graph.pinned = true;
        true
    }

    fn palette_on_stage(&mut self, typed: &str, c: Command) -> Vec<Effect> {
        if !typed.is_empty() {
            let Some(v) = self.pick_value(Arg::Stage, typed, "stage") else {
                return Vec::new();
            };
            self.select_stage(&v);
        }
        self.on_graph(c)
    }

    /// `:rollback NAME`: an environment of that name (the confirmation `b`
    /// asks on the Environments screen), else a stage of the shown
    /// pipeline (the one `b` asks on the graph).
    fn palette_rollback(&mut self, typed: &str) -> Vec<Effect> {
        if typed.is_empty() {
            return self.command(Command::Rollback);
        }
        let Some(v) = self.pick_value(Arg::StageOrEnv, typed, "environment or stage") else {
            return Vec::new();
        };
        if self.snap.envs.iter().any(|e| e.name == v) {
            if self.readonly {
                return self.command(Command::Rollback);
            }
            self.ask_rollback_env(v);
            return Vec::new();
        }
        self.select_stage(&v);
        self.on_graph(Command::Rollback)
    }

    fn palette_open_pipeline(&mut self, typed: &str) -> Vec<Effect> {
        let Some(name) = self.pick_value(Arg::Pipeline, typed, "pipeline") else {
            return Vec::new();
        };
        screens::pipelines::open(self, name);
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_beats_fuzzy_and_env_finds_envs() {
        assert_eq!(resolve("env").map(|c| c.name), Some("envs"));
        assert_eq!(resolve("apls").map(|c| c.name), Some("approvals"));
        assert_eq!(resolve("adt").map(|c| c.name), Some("audit"));
        assert_eq!(resolve("rb").map(|c| c.name), Some("rollback"));
        assert_eq!(resolve("approve").map(|c| c.name), Some("approve"));
        assert_eq!(resolve("q").map(|c| c.name), Some("quit"));
        assert!(resolve("zzz").is_none());
        assert_eq!(score("env", "envs"), Some(1));
        assert_eq!(score("ENVS", "envs"), Some(0));
        assert!(score("sv", "envs").is_none());
    }
}
