//! What `pipedeck` does without a subcommand until the TUI exists: show the
//! help, then validate and draw the built-in demo pipeline.

use std::process::ExitCode;

use crate::model::load::{LoadOptions, load_bytes};

/// The demo pipeline shipped in the binary (`assets/demo/pipeline.json`).
pub const DEMO_PIPELINE: &str = include_str!("../../assets/demo/pipeline.json");

pub fn run() -> color_eyre::Result<ExitCode> {
    let report = load_bytes(
        "assets/demo/pipeline.json",
        DEMO_PIPELINE.as_bytes(),
        &LoadOptions::default(),
    );
    let mut out = String::new();
    out.push_str(
        "pipedeck: the terminal UI is not built yet; this is what works today.\n\
         Run `pipedeck --help` for the commands.\n\n\
         The built-in demo pipeline, validated:\n",
    );
    out.push_str(&super::validate::human(std::slice::from_ref(&report)));
    if let Some(lp) = report.pipelines.first() {
        out.push('\n');
        out.push_str(&super::graph::render(
            &lp.pipeline,
            super::graph::terminal_width(),
        ));
    }
    print!("{out}");
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
