//! Keys → commands, per screen, with the defaults of DESIGN.md. The user's
//! config may remap per screen (`[keys.<screen>] "ctrl-r" = "retry"`, or
//! `[keys.global]`); unknown keys or commands become readable warnings and
//! the defaults stay.

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Serialize};

/// What a key can do. The names are what the config uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Quit,
    Help,
    Back,
    Palette,
    Filter,
    NextPane,
    PrevPane,
    Up,
    Down,
    Left,
    Right,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Open,
    Start,
    Stop,
    Approve,
    Reject,
    Retry,
    RetryAll,
    Rollback,
    Transition,
    Logs,
    Diagnose,
    Environments,
    Approvals,
    Audit,
    Follow,
    Wrap,
    Timestamps,
    NextMatch,
    PrevMatch,
    NextError,
    /// Copy the selected id to the terminal's clipboard (OSC 52).
    Copy,
    /// `flux reconcile` of the focused environment's Flux object.
    FluxReconcile,
    /// `flux suspend` / `flux resume` of it (a toggle).
    FluxSuspend,
    /// Focus the Nth panel (environments in promotion order).
    Focus1,
    Focus2,
    Focus3,
    Focus4,
    Focus5,
    Focus6,
    Focus7,
    Focus8,
    Focus9,
    PrevError,
    OnlyMatches,
    NextAttention,
    PrevAttention,
    Compact,
}

impl Command {
    pub fn describe(self) -> &'static str {
        match self {
            Command::Quit => "quit",
            Command::Help => "help",
            Command::Back => "back / close",
            Command::Palette => "command palette",
            Command::Filter => "filter / search",
            Command::NextPane => "next pane",
            Command::PrevPane => "previous pane",
            Command::Up => "up",
            Command::Down => "down",
            Command::Left => "left",
            Command::Right => "right",
            Command::Top => "top",
            Command::Bottom => "bottom",
            Command::PageUp => "page up",
            Command::PageDown => "page down",
            Command::Open => "open",
            Command::Start => "start a release",
            Command::Stop => "stop the execution",
            Command::Approve => "approve",
            Command::Reject => "reject (with a summary)",
            Command::Retry => "retry failed actions",
            Command::RetryAll => "retry all actions",
            Command::Rollback => "roll back the stage",
            Command::Transition => "disable / enable transition",
            Command::Logs => "logs of the action",
            Command::Diagnose => "diagnose",
            Command::Environments => "environments",
            Command::Approvals => "approvals",
            Command::Audit => "audit trail",
            Command::Follow => "follow",
            Command::Wrap => "wrap lines",
            Command::Timestamps => "timestamps",
            Command::NextMatch => "next match",
            Command::PrevMatch => "previous match",
            Command::NextError => "next error line",
            Command::Copy => "copy id",
            Command::FluxReconcile => "reconcile Flux",
            Command::FluxSuspend => "suspend/resume Flux",
            Command::Focus1 => "focus panel 1",
            Command::Focus2 => "focus panel 2",
            Command::Focus3 => "focus panel 3",
            Command::Focus4 => "focus panel 4",
            Command::Focus5 => "focus panel 5",
            Command::Focus6 => "focus panel 6",
            Command::Focus7 => "focus panel 7",
            Command::Focus8 => "focus panel 8",
            Command::Focus9 => "focus panel 9",
            Command::PrevError => "previous error",
            Command::OnlyMatches => "only matching lines",
            Command::NextAttention => "next failed/waiting",
            Command::PrevAttention => "previous failed/waiting",
            Command::Compact => "compact",
        }
    }

    /// A shorter label, for a footer that does not fit otherwise.
    pub fn short(self) -> &'static str {
        match self {
            Command::Back => "back",
            Command::Palette => "palette",
            Command::Filter => "search",
            Command::NextPane => "pane",
            Command::Start => "start",
            Command::Stop => "stop",
            Command::Reject => "reject",
            Command::Retry => "retry",
            Command::RetryAll => "retry all",
            Command::Rollback => "rollback",
            Command::Transition => "transition",
            Command::Logs => "logs",
            Command::NextMatch => "next match",
            Command::PrevMatch => "prev match",
            Command::NextError => "next error",
            Command::PrevError => "prev error",
            Command::OnlyMatches => "only matches",
            Command::NextAttention => "next failed",
            Command::PrevAttention => "prev failed",
            Command::Wrap => "wrap",
            Command::FluxReconcile => "reconcile",
            Command::FluxSuspend => "suspend/resume",
            other => other.describe(),
        }
    }

    /// What the command does on a screen (the footer and the help say
    /// this): `b` rolls back a stage on the graph, an environment on
    /// Environments.
    pub fn describe_in(self, scope: Scope) -> &'static str {
        match (self, scope) {
            (Command::Rollback, Scope::Environments) => "roll back the environment",
            (Command::Logs, Scope::Environments) => "replica output",
            (Command::Focus1, Scope::Environments) => "focus an environment",
            (c, Scope::Environments) if c.focus_index().is_some() => "focus that environment",
            _ => self.describe(),
        }
    }

    /// [`Command::short`] on a screen: what must stay said there.
    pub fn short_in(self, scope: Scope) -> &'static str {
        match (self, scope) {
            (Command::Rollback, Scope::Environments) => "roll back the environment",
            (Command::Logs, Scope::Environments) => "replica output",
            (Command::Focus1, Scope::Environments) => "focus",
            _ => self.short(),
        }
    }

    /// `FocusN` → N-1.
    pub fn focus_index(self) -> Option<usize> {
        let all = [
            Command::Focus1,
            Command::Focus2,
            Command::Focus3,
            Command::Focus4,
            Command::Focus5,
            Command::Focus6,
            Command::Focus7,
            Command::Focus8,
            Command::Focus9,
        ];
        all.iter().position(|c| *c == self)
    }

    /// Commands that change something (refused in readonly mode).
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Command::Start
                | Command::Stop
                | Command::Approve
                | Command::Reject
                | Command::Retry
                | Command::RetryAll
                | Command::Rollback
                | Command::Transition
                | Command::FluxReconcile
                | Command::FluxSuspend
        )
    }
}

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    Pipelines,
    Pipeline,
    Logs,
    Approvals,
    Audit,
    Environments,
    Diagnosis,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Pipelines => "pipelines",
            Scope::Pipeline => "pipeline",
            Scope::Logs => "logs",
            Scope::Approvals => "approvals",
            Scope::Audit => "audit",
            Scope::Environments => "environments",
            Scope::Diagnosis => "diagnosis",
        }
    }
    const ALL: [Scope; 8] = [
        Scope::Diagnosis,
        Scope::Global,
        Scope::Pipelines,
        Scope::Pipeline,
        Scope::Logs,
        Scope::Approvals,
        Scope::Audit,
        Scope::Environments,
    ];
}

#[derive(Debug, Clone)]
pub struct Keymap {
    map: BTreeMap<(Scope, String), Command>,
}

const DEFAULTS: &[(Scope, &str, Command)] = &[
    (Scope::Global, "?", Command::Help),
    (Scope::Global, "q", Command::Quit),
    (Scope::Global, "ctrl-c", Command::Quit),
    (Scope::Global, "esc", Command::Back),
    (Scope::Global, ":", Command::Palette),
    (Scope::Global, "/", Command::Filter),
    (Scope::Global, "tab", Command::NextPane),
    (Scope::Global, "backtab", Command::PrevPane),
    (Scope::Global, "j", Command::Down),
    (Scope::Global, "down", Command::Down),
    (Scope::Global, "k", Command::Up),
    (Scope::Global, "up", Command::Up),
    (Scope::Global, "h", Command::Left),
    (Scope::Global, "left", Command::Left),
    (Scope::Global, "l", Command::Right),
    (Scope::Global, "right", Command::Right),
    (Scope::Global, "g", Command::Top),
    (Scope::Global, "home", Command::Top),
    (Scope::Global, "G", Command::Bottom),
    (Scope::Global, "end", Command::Bottom),
    (Scope::Global, "pageup", Command::PageUp),
    (Scope::Global, "ctrl-u", Command::PageUp),
    (Scope::Global, "pagedown", Command::PageDown),
    (Scope::Global, "ctrl-d", Command::PageDown),
    (Scope::Global, "enter", Command::Open),
    (Scope::Global, "e", Command::Environments),
    (Scope::Global, "A", Command::Approvals),
    (Scope::Pipelines, "s", Command::Start),
    (Scope::Pipelines, "S", Command::Stop),
    (Scope::Pipeline, "s", Command::Start),
    (Scope::Pipeline, "S", Command::Stop),
    (Scope::Pipeline, "a", Command::Approve),
    (Scope::Pipeline, "x", Command::Reject),
    (Scope::Pipeline, "r", Command::Retry),
    (Scope::Pipeline, "R", Command::RetryAll),
    (Scope::Pipeline, "b", Command::Rollback),
    (Scope::Pipeline, "t", Command::Transition),
    (Scope::Pipeline, "L", Command::Logs),
    (Scope::Pipeline, "d", Command::Diagnose),
    (Scope::Pipeline, "n", Command::NextAttention),
    (Scope::Pipeline, "N", Command::PrevAttention),
    (Scope::Pipeline, "c", Command::Compact),
    (Scope::Approvals, "a", Command::Approve),
    (Scope::Approvals, "x", Command::Reject),
    (Scope::Environments, "b", Command::Rollback),
    (Scope::Environments, "L", Command::Logs),
    (Scope::Environments, "y", Command::Copy),
    (Scope::Environments, "f", Command::FluxReconcile),
    (Scope::Environments, "z", Command::FluxSuspend),
    (Scope::Environments, "1", Command::Focus1),
    (Scope::Environments, "2", Command::Focus2),
    (Scope::Environments, "3", Command::Focus3),
    (Scope::Environments, "4", Command::Focus4),
    (Scope::Environments, "5", Command::Focus5),
    (Scope::Environments, "6", Command::Focus6),
    (Scope::Environments, "7", Command::Focus7),
    (Scope::Environments, "8", Command::Focus8),
    (Scope::Environments, "9", Command::Focus9),
    (Scope::Approvals, "y", Command::Copy),
    (Scope::Audit, "y", Command::Copy),
    (Scope::Diagnosis, "L", Command::Logs),
    (Scope::Logs, "d", Command::Diagnose),
    (Scope::Logs, "f", Command::Follow),
    (Scope::Logs, "w", Command::Wrap),
    (Scope::Logs, "T", Command::Timestamps),
    (Scope::Logs, "n", Command::NextMatch),
    (Scope::Logs, "N", Command::PrevMatch),
    (Scope::Logs, "E", Command::NextError),
    (Scope::Logs, "ctrl-e", Command::PrevError),
    (Scope::Logs, "F", Command::OnlyMatches),
];

/// `KeyEvent` → the config spelling: `a`, `A`, `ctrl-r`, `enter`, `f5`.
pub fn key_name(k: &KeyEvent) -> Option<String> {
    let base = match k.code {
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::BackTab => "backtab".into(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::Left => "left".into(),
        KeyCode::Right => "right".into(),
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        KeyCode::PageUp => "pageup".into(),
        KeyCode::PageDown => "pagedown".into(),
        KeyCode::Backspace => "backspace".into(),
        KeyCode::Delete => "delete".into(),
        KeyCode::F(n) => format!("f{n}"),
        _ => return None,
    };
    let mut name = String::new();
    if k.modifiers.contains(KeyModifiers::CONTROL) {
        name.push_str("ctrl-");
    }
    if k.modifiers.contains(KeyModifiers::ALT) {
        name.push_str("alt-");
    }
    name.push_str(&base);
    Some(name)
}

fn valid_key(k: &str) -> bool {
    let base = k.trim_start_matches("ctrl-").trim_start_matches("alt-");
    base.chars().count() == 1
        || matches!(
            base,
            "enter"
                | "esc"
                | "tab"
                | "backtab"
                | "up"
                | "down"
                | "left"
                | "right"
                | "home"
                | "end"
                | "pageup"
                | "pagedown"
                | "backspace"
                | "delete"
        )
        || (base.starts_with('f') && base[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)))
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            map: DEFAULTS
                .iter()
                .map(|(s, k, c)| ((*s, (*k).to_owned()), *c))
                .collect(),
        }
    }
}

impl Keymap {
    /// The defaults patched by the config's `[keys]` table. Warnings say
    /// what was ignored and why.
    pub fn load(keys: Option<&toml::Table>) -> (Keymap, Vec<String>) {
        let mut km = Keymap::default();
        let mut warnings = Vec::new();
        let Some(keys) = keys else {
            return (km, warnings);
        };
        for (scope_name, table) in keys {
            let Some(scope) = Scope::ALL.iter().find(|s| s.name() == scope_name) else {
                warnings.push(format!(
                    "[keys.{scope_name}]: unknown screen (screens: {})",
                    Scope::ALL.map(Scope::name).join(", ")
                ));
                continue;
            };
            let Some(table) = table.as_table() else {
                warnings.push(format!(
                    "[keys.{scope_name}] must be a table of \"key\" = \"command\""
                ));
                continue;
            };
            for (key, cmd) in table {
                if !valid_key(key) {
                    warnings.push(format!(
                        "[keys.{scope_name}] \"{key}\": not a key (e.g. \"r\", \"R\", \"ctrl-r\", \"enter\", \"f5\"); ignored"
                    ));
                    continue;
                }
                let name = cmd.as_str().unwrap_or_default();
                match serde_json::from_value::<Command>(serde_json::Value::String(name.to_owned()))
                {
                    Ok(c) => {
                        km.map.insert((*scope, key.clone()), c);
                    }
                    Err(_) => warnings.push(format!(
                        "[keys.{scope_name}] \"{key}\" = \"{name}\": unknown command; ignored"
                    )),
                }
            }
        }
        (km, warnings)
    }

    /// The command for a key on a screen (screen bindings beat global ones).
    pub fn command(&self, scope: Scope, key: &KeyEvent) -> Option<Command> {
        let name = key_name(key)?;
        self.map
            .get(&(scope, name.clone()))
            .or_else(|| self.map.get(&(Scope::Global, name)))
            .copied()
    }

    /// Bindings that apply on a screen, for the help and the footer.
    pub fn bindings(&self, scope: Scope) -> Vec<(String, Command)> {
        let mut out: Vec<(String, Command)> = self
            .map
            .iter()
            .filter(|((s, _), _)| *s == scope)
            .map(|((_, k), c)| (k.clone(), *c))
            .collect();
        out.sort_by_key(|(_, c)| *c);
        out
    }

    /// The first key bound to `cmd` on a screen (for hints).
    pub fn key_for(&self, scope: Scope, cmd: Command) -> Option<String> {
        // The screen's own key first; of several, the shortest (`q`, not
        // `ctrl-c`).
        [scope, Scope::Global].into_iter().find_map(|s| {
            self.bindings(s)
                .into_iter()
                .filter(|(_, c)| *c == cmd)
                .map(|(k, _)| k)
                .min_by_key(|k| k.chars().count())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn no_default_key_is_bound_twice_or_hides_a_global_one() {
        let mut seen = std::collections::BTreeSet::new();
        for (scope, key, _) in DEFAULTS {
            assert!(seen.insert((*scope, *key)), "{key} twice in {scope:?}");
        }
        for (scope, key, cmd) in DEFAULTS {
            if *scope != Scope::Global {
                assert!(
                    !seen.contains(&(Scope::Global, *key)),
                    "{key} ({cmd:?}) on {scope:?} hides a global key"
                );
            }
        }
    }

    #[test]
    fn defaults_and_user_remaps_with_warnings() {
        let (km, w) = Keymap::load(None);
        assert!(w.is_empty());
        assert_eq!(km.command(Scope::Pipeline, &key('r')), Some(Command::Retry));
        assert_eq!(km.command(Scope::Logs, &key('j')), Some(Command::Down));
        let t: toml::Table = toml::from_str(
            "[pipeline]\n\"ctrl-r\" = \"retry\"\n\"Z\" = \"nope\"\n\"bogus-key\" = \"quit\"\n[nowhere]\nq = \"quit\"\n",
        )
        .unwrap();
        let (km, w) = Keymap::load(Some(&t));
        let ctrl_r = KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL);
        assert_eq!(km.command(Scope::Pipeline, &ctrl_r), Some(Command::Retry));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w.iter().any(|x| x.contains("unknown command")));
        assert!(w.iter().any(|x| x.contains("not a key")));
        assert!(w.iter().any(|x| x.contains("unknown screen")));
        // Defaults still there.
        assert_eq!(km.command(Scope::Pipeline, &key('r')), Some(Command::Retry));
        // The names the config uses for the new commands.
        let t: toml::Table =
            toml::from_str("[environments]\n\"f4\" = \"focus4\"\n\"c\" = \"copy\"\n").unwrap();
        let (km, w) = Keymap::load(Some(&t));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            km.command(Scope::Environments, &key('c')),
            Some(Command::Copy)
        );
        let f4 = KeyEvent::new(KeyCode::F(4), KeyModifiers::NONE);
        assert_eq!(
            km.command(Scope::Environments, &f4)
                .and_then(Command::focus_index),
            Some(3)
        );
    }
}
