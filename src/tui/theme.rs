//! Themes: semantic style slots. (Interim default; the full theme system
//! with files, NO_COLOR and 16-colour fallback replaces this.)

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub base: Style,
    pub muted: Style,
    pub border: Style,
    pub border_focus: Style,
    pub title: Style,
    pub selection: Style,
    pub header: Style,
    pub footer_key: Style,
    pub footer_text: Style,
    pub succeeded: Style,
    pub failed: Style,
    pub in_progress: Style,
    pub stopped: Style,
    pub superseded: Style,
    pub waiting: Style,
    pub skipped: Style,
    pub disabled_transition: Style,
    pub log_error: Style,
    pub log_warn: Style,
    pub log_info: Style,
    pub log_debug: Style,
    pub log_timestamp: Style,
    pub log_phase: Style,
    pub search_match: Style,
    pub search_current: Style,
    pub toast_info: Style,
    pub toast_error: Style,
    pub popup: Style,
}

impl Theme {
    pub fn builtin(_name: &str) -> Option<Theme> {
        let fg = |c| Style::default().fg(c);
        Some(Theme {
            name: "default".into(),
            base: Style::default(),
            muted: fg(Color::DarkGray),
            border: fg(Color::DarkGray),
            border_focus: fg(Color::Cyan),
            title: fg(Color::White).add_modifier(Modifier::BOLD),
            selection: Style::default()
                .bg(Color::Indexed(237))
                .add_modifier(Modifier::BOLD),
            header: Style::default().bg(Color::Indexed(236)),
            footer_key: fg(Color::Cyan).add_modifier(Modifier::BOLD),
            footer_text: fg(Color::Gray),
            succeeded: fg(Color::Green),
            failed: fg(Color::Red).add_modifier(Modifier::BOLD),
            in_progress: fg(Color::Blue),
            stopped: fg(Color::Magenta),
            superseded: fg(Color::DarkGray),
            waiting: fg(Color::Yellow),
            skipped: fg(Color::DarkGray),
            disabled_transition: fg(Color::Red),
            log_error: fg(Color::Red),
            log_warn: fg(Color::Yellow),
            log_info: Style::default(),
            log_debug: fg(Color::DarkGray),
            log_timestamp: fg(Color::DarkGray),
            log_phase: fg(Color::Cyan).add_modifier(Modifier::BOLD),
            search_match: Style::default().bg(Color::Yellow).fg(Color::Black),
            search_current: Style::default().bg(Color::LightRed).fg(Color::Black),
            toast_info: fg(Color::Green),
            toast_error: fg(Color::Red).add_modifier(Modifier::BOLD),
            popup: Style::default(),
        })
    }
}

impl Theme {
    pub fn load(name: &str, _dir: Option<&std::path::Path>) -> (Theme, Vec<String>) {
        (
            Theme::builtin(name).unwrap_or_else(|| unreachable!()),
            Vec::new(),
        )
    }
    pub fn for_terminal(self, _a: Option<&str>, _b: Option<&str>, _c: Option<&str>) -> Theme {
        self
    }
}
