//! One component per screen: each file holds the screen's state, its
//! commands (`on_command`, called by `App::command` for the focused screen)
//! and its drawing (`draw`, called by `view::draw` for the body).

pub mod approvals;
pub mod audit;
pub mod diagnosis;
pub mod environments;
pub mod logs;
pub mod pipeline;
pub mod pipelines;
