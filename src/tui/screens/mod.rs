//! One component per screen: each file holds the screen's state, its
//! commands (`on_command`, called by `App::command` for the focused screen)
//! and its drawing (`draw`, called by `view::draw` for the body).

pub mod approvals;
pub mod audit;
pub mod diagnosis;
pub mod environments;
pub mod graph;
pub mod log_lines;
pub mod logs;
pub mod pipeline;
pub mod pipelines;

use crate::tui::keymap::Scope;

/// The screens, each with its keymap scope and title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Pipelines,
    Pipeline,
    Logs,
    Approvals,
    Audit,
    Environments,
    Diagnosis,
}

impl Screen {
    pub fn scope(self) -> Scope {
        match self {
            Screen::Pipelines => Scope::Pipelines,
            Screen::Pipeline => Scope::Pipeline,
            Screen::Logs => Scope::Logs,
            Screen::Approvals => Scope::Approvals,
            Screen::Audit => Scope::Audit,
            Screen::Environments => Scope::Environments,
            Screen::Diagnosis => Scope::Diagnosis,
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Screen::Pipelines => "Pipelines",
            Screen::Pipeline => "Pipeline",
            Screen::Logs => "Logs",
            Screen::Approvals => "Approvals",
            Screen::Audit => "Audit",
            Screen::Environments => "Environments",
            Screen::Diagnosis => "Diagnosis",
        }
    }
}
