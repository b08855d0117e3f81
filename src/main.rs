//! The `pipedeck` binary: command line, logging and wiring. No logic here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pipedeck::cli;
use pipedeck::config::Paths;

#[derive(Parser, Debug)]
#[command(
    name = "pipedeck",
    version,
    about = "Operate and observe release pipelines from a terminal",
    long_about = "Operate and observe release pipelines from a terminal.\n\n\
        pipedeck reads AWS CodePipeline definitions (JSON, TOML, CloudFormation) and \
        CodeBuild buildspecs. Without a subcommand it shows the built-in demo pipeline."
)]
struct Cli {
    /// Config file (default: the user config dir's pipedeck/config.toml)
    #[arg(long, global = true, env = "PIPEDECK_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Directory for state and logs (default: the user data dir)
    #[arg(long, global = true, env = "PIPEDECK_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check pipeline definitions and buildspecs; exit 1 if any has errors
    Validate(cli::validate::Args),
    /// Draw a pipeline's stage graph as text
    Graph(cli::graph::Args),
}

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        eprintln!("pipedeck: cannot install the error reporter: {e}");
    }
    let args = Cli::parse();
    let paths = Paths::resolve(args.config, args.data_dir);
    let _log = pipedeck::logging::init(&paths.log_dir());
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "pipedeck starting");
    let code = match args.command {
        Some(Command::Validate(a)) => cli::validate::run(&a),
        Some(Command::Graph(a)) => cli::graph::run(&a),
        None => cli::demo::run(),
    };
    match code {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pipedeck: {e:?}");
            ExitCode::FAILURE
        }
    }
}
