//! What `pipedeck` does without a subcommand and without a terminal: create
//! the demo workspace in the data dir on first run, then validate and draw
//! its pipeline and say how to run it.

use std::path::Path;
use std::process::ExitCode;

use crate::model::load::{LoadOptions, load_bytes};

/// The demo pipeline shipped in the binary (`assets/demo/pipeline.json`).
pub const DEMO_PIPELINE: &str = include_str!("../../assets/demo/pipeline.json");

pub fn run(data_dir: &Path) -> color_eyre::Result<ExitCode> {
    let dir = super::ops::demo_dir(data_dir);
    let mut out = String::new();
    if !dir.join("pipedeck.toml").is_file() {
        super::demo_ws::create(&dir)?;
        out.push_str(&format!(
            "Created the demo workspace in {}.\n\n",
            dir.display()
        ));
    }
    let report = load_bytes(
        "assets/demo/pipeline.json",
        DEMO_PIPELINE.as_bytes(),
        &LoadOptions::default(),
    );
    out.push_str(
        "pipedeck: no terminal here, so no terminal UI; this is the demo workspace.\n\
         Run the demo pipeline with `pipedeck run --wait` (it waits for an approval:\n\
         `pipedeck approve demo-web Approve Release` in another terminal), see it with\n\
         `pipedeck status`, break it with `pipedeck demo break`. `pipedeck --help` lists\n\
         every command.\n\n\
         The demo pipeline, validated:\n",
    );
    out.push_str(&super::validate::human(std::slice::from_ref(&report)));
    if let Some(lp) = report.pipelines.first() {
        out.push('\n');
        out.push_str(&super::graph::render(
            &lp.pipeline,
            super::graph::terminal_width(),
        ));
    }
    say_raw!("{out}");
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
