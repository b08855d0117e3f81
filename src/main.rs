//! The `pipedeck` binary: command line, logging and wiring. No logic here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pipedeck::cli;
use pipedeck::cli::{demo_ws, ops};
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
    /// The workspace (default: the current directory if it holds a pipeline,
    /// else the demo workspace in the data dir)
    #[arg(
        long,
        short = 'w',
        global = true,
        env = "PIPEDECK_WORKSPACE",
        value_name = "DIR"
    )]
    workspace: Option<PathBuf>,
    /// Disable every key that changes something (also `readonly = true` in the config)
    #[arg(long, global = true)]
    readonly: bool,
    /// Colour theme: default, light, high-contrast, catppuccin-mocha, or a file name in the config dir's themes/
    #[arg(long, global = true, value_name = "NAME")]
    theme: Option<String>,
    /// Show the pipelines of AWS accounts instead of the workspace's engine
    /// (one account with --profile/--region, else the config's [[aws.accounts]])
    #[arg(long, global = true)]
    aws: bool,
    /// With --aws: the AWS profile (default: AWS_PROFILE, else `default`)
    #[arg(long, global = true, value_name = "NAME", requires = "aws")]
    profile: Option<String>,
    /// With --aws: the region (default: AWS_REGION, else the profile's)
    #[arg(long, global = true, value_name = "REGION", requires = "aws")]
    region: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// `--aws`: every backend this process opens is the AWS one.
fn select_aws(args: &Cli, paths: &Paths) {
    if !args.aws {
        return;
    }
    let (cfg, _) = pipedeck::config::UserConfig::load(&paths.config_file);
    let mut targets =
        if args.profile.is_some() || args.region.is_some() || cfg.aws.accounts.is_empty() {
            vec![pipedeck::aws::AwsTarget {
                label: args
                    .profile
                    .clone()
                    .or_else(|| std::env::var("AWS_PROFILE").ok())
                    .unwrap_or_else(|| "default".into()),
                profile: args.profile.clone(),
                region: args.region.clone(),
                ..Default::default()
            }]
        } else {
            cfg.aws.accounts.clone()
        };
    for t in &mut targets {
        t.readonly |= args.readonly || cfg.readonly;
    }
    pipedeck::backend::select_aws(pipedeck::backend::AwsSelection {
        targets,
        intervals: cfg.aws.intervals.unwrap_or_default(),
    });
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check pipeline definitions and buildspecs; exit 1 if any has errors
    Validate(cli::validate::Args),
    /// Draw a pipeline's stage graph as text
    Graph(cli::graph::Args),
    /// Start an execution (hosting the engine until it ends if none runs)
    Run(ops::RunArgs),
    /// Host the workspace's engine, with triggers, until Ctrl-C
    Serve(pipedeck::awsapi::cli::ServeArgs),
    /// Print the local AWS API's key pair as AWS CLI profile snippets
    AwsCredentials(pipedeck::awsapi::cli::CredentialsArgs),
    /// Pipelines, their latest execution and every stage's state
    Status(ops::StatusArgs),
    /// A pipeline's executions, newest first
    Executions(ops::ExecutionsArgs),
    /// Print an action's log (--follow to keep printing)
    #[command(after_help = "Example: pipedeck logs demo-web Build UnitTests --execution 7088eebb")]
    Logs(ops::LogsArgs),
    /// Approve a pending manual approval
    #[command(
        after_help = "Example: pipedeck approve demo-web Approve Release --summary \"ship it\""
    )]
    Approve(ops::ApprovalArgs),
    /// Reject a pending manual approval (the stage fails)
    #[command(
        after_help = "Example: pipedeck reject demo-web Approve Release --summary \"not on a Friday\""
    )]
    Reject(ops::ApprovalArgs),
    /// Retry a failed stage (its failed actions, or --all)
    #[command(after_help = "Example: pipedeck retry demo-web Build --wait")]
    Retry(ops::RetryArgs),
    /// Stop an execution (let running actions finish, or --abandon them)
    #[command(after_help = "Example: pipedeck stop demo-web --abandon --wait")]
    Stop(ops::StopArgs),
    /// Roll a stage back to an earlier successful execution
    #[command(after_help = "Example: pipedeck rollback demo-web Prod --wait")]
    Rollback(ops::RollbackArgs),
    /// Disable or enable a stage's inbound transition
    #[command(after_help = "Example: pipedeck transition demo-web Prod --disable \"freeze\"")]
    Transition(ops::TransitionArgs),
    /// Why a stage failed: ranked findings with evidence and a fix
    Diagnose(cli::diagnose::DiagnoseArgs),
    /// The workspace's environments: live version, traffic, health
    Envs(ops::StatusArgs),
    /// Roll an environment back (a traffic flip during a deployment, else the previous release)
    RollbackEnv(ops::RollbackEnvArgs),
    /// List, reconcile, suspend or resume the Flux objects of a kubernetes environment
    #[command(subcommand)]
    Flux(ops::FluxCommand),
    /// Create or update the workspace's pipeline on AWS CodePipeline (with --aws)
    Push(pipedeck::aws::push::PushArgs),
    /// Create a workspace (`init --demo DIR`)
    Init(demo_ws::InitArgs),
    /// Change the demo workspace's service: `demo break` / `demo fix`
    #[command(subcommand)]
    Demo(demo_ws::DemoCommand),
}

/// Commands that need a workspace and a tokio runtime.
fn engine_command(
    cmd: Command,
    workspace: Option<&std::path::Path>,
    paths: &Paths,
    readonly: bool,
) -> color_eyre::Result<ExitCode> {
    let ws = ops::find_workspace(workspace, &paths.data_dir)?;
    let aws_api = match &cmd {
        Command::Serve(a) => pipedeck::awsapi::cli::ServeApi::resolve(a, paths, readonly)?,
        _ => None,
    };
    let config_file = paths.config_file.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cmd {
            Command::Run(a) => ops::run(ws, a).await,
            Command::Serve(_) => ops::serve(ws, aws_api).await,
            Command::Status(a) => ops::status(ws, a).await,
            Command::Executions(a) => ops::executions(ws, a).await,
            Command::Logs(a) => ops::logs(ws, a).await,
            Command::Approve(a) => {
                let json = a.json;
                ops::mutate(ws, ops::approval_request(a, true), false, json).await
            }
            Command::Reject(a) => {
                let json = a.json;
                ops::mutate(ws, ops::approval_request(a, false), false, json).await
            }
            Command::Retry(a) => {
                let (wait, json) = (a.wait, a.json);
                ops::mutate(ws, ops::retry_request(a), wait, json).await
            }
            Command::Stop(a) => {
                let (wait, json) = (a.wait, a.json);
                ops::mutate(ws, ops::stop_request(a), wait, json).await
            }
            Command::Rollback(a) => {
                let (wait, json) = (a.wait, a.json);
                ops::mutate(ws, ops::rollback_request(a), wait, json).await
            }
            Command::Transition(a) => {
                ops::mutate(ws, ops::transition_request(a), false, false).await
            }
            Command::Demo(d) => demo_ws::demo(&ws, &d),
            Command::Push(a) => pipedeck::aws::push::run_cli(&ws, &a)
                .await
                .map_err(|e| color_eyre::eyre::eyre!("{e}")),
            Command::Envs(a) => ops::envs(ws, a).await,
            Command::Diagnose(a) => cli::diagnose::run(ws, a, &config_file).await,
            Command::RollbackEnv(a) => {
                ops::mutate(ws, ops::rollback_env_request(a), false, false).await
            }
            Command::Flux(c) => match ops::flux_request(c) {
                Ok(r) => ops::mutate(ws, r, false, false).await,
                Err(get) => ops::flux_get(ws, get).await,
            },
            Command::Validate(_)
            | Command::Graph(_)
            | Command::Init(_)
            | Command::AwsCredentials(_) => {
                unreachable!("handled before")
            }
        }
    })
}

struct TuiArgs {
    paths: Paths,
    workspace: Option<PathBuf>,
    readonly: bool,
    theme: Option<String>,
}

fn args_tui(
    paths: &Paths,
    ws: Option<&std::path::Path>,
    readonly: bool,
    theme: Option<String>,
) -> TuiArgs {
    TuiArgs {
        paths: paths.clone(),
        workspace: ws.map(std::path::Path::to_path_buf),
        readonly,
        theme,
    }
}

/// No subcommand: the TUI on a terminal; the text report otherwise.
fn tui_or_report(a: &TuiArgs) -> color_eyre::Result<ExitCode> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        // No terminal: the workspace's status report (`--workspace`, or the
        // current directory when it is one); else the demo's report.
        let cwd_ws = ["pipedeck.toml", "pipeline.json", "pipeline.toml"]
            .iter()
            .any(|f| std::path::Path::new(f).is_file());
        if a.workspace.is_none() && !cwd_ws {
            return cli::demo::run(&a.paths.data_dir);
        }
        let ws = ops::find_workspace(a.workspace.as_deref(), &a.paths.data_dir)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        return rt.block_on(ops::status(ws, ops::StatusArgs { json: false }));
    }
    let demo = ops::demo_dir(&a.paths.data_dir);
    let mut created = false;
    if a.workspace.is_none()
        && !demo.join("pipedeck.toml").is_file()
        && !pipedeck::backend::aws_selected()
    {
        let cwd_ws = ["pipedeck.toml", "pipeline.json", "pipeline.toml"]
            .iter()
            .any(|f| std::path::Path::new(f).is_file());
        if !cwd_ws {
            demo_ws::create(&demo)?;
            created = true;
        }
    }
    let ws = ops::find_workspace(a.workspace.as_deref(), &a.paths.data_dir)?;
    let (cfg, mut warnings) = pipedeck::config::UserConfig::load(&a.paths.config_file);
    let (keymap, kw) = pipedeck::tui::keymap::Keymap::load(cfg.keys.as_ref());
    warnings.extend(kw);
    let theme_name = a
        .theme
        .clone()
        .or(cfg.theme.clone())
        .unwrap_or_else(|| "default".into());
    let themes_dir = a.paths.config_file.parent().map(|p| p.join("themes"));
    let (theme, tw) = pipedeck::tui::theme::Theme::load(&theme_name, themes_dir.as_deref());
    warnings.extend(tw);
    let theme = theme.for_terminal(
        std::env::var("NO_COLOR").ok().as_deref(),
        std::env::var("COLORTERM").ok().as_deref(),
        std::env::var("TERM").ok().as_deref(),
    );
    let (catalogue, cw) = cli::diagnose::catalogue(&a.paths.config_file);
    warnings.extend(cw);
    let opts = pipedeck::tui::Options {
        catalogue: std::sync::Arc::new(catalogue),
        readonly: a.readonly || cfg.readonly,
        theme,
        keymap,
        warnings,
        // AWS accounts' protected stages are protected in the TUI too.
        protected: cfg
            .protected
            .iter()
            .cloned()
            .chain(
                pipedeck::backend::aws_selection()
                    .into_iter()
                    .flat_map(|s| s.targets.iter().flat_map(|t| t.protected.clone())),
            )
            .collect(),
        protected_approvals: cfg.protected_approvals,
        bell: cfg.bell,
        start_first: created,
        aws_api: pipedeck::awsapi::cli::ServeApi::resolve(
            &Default::default(),
            &a.paths,
            a.readonly || cfg.readonly,
        )?,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(pipedeck::tui::run(ws, opts))
}

/// The CLI name of a command that changes something (refused read-only).
fn mutation_name(cmd: &Command) -> Option<&'static str> {
    Some(match cmd {
        Command::Run(_) => "run",
        Command::Approve(_) => "approve",
        Command::Reject(_) => "reject",
        Command::Retry(_) => "retry",
        Command::Stop(_) => "stop",
        Command::Rollback(_) => "rollback",
        Command::Transition(_) => "transition",
        Command::RollbackEnv(_) => "rollback-env",
        // `flux get` only reads.
        Command::Flux(ops::FluxCommand::Get(_)) => return None,
        Command::Flux(_) => "flux",
        Command::Demo(_) => "demo",
        _ => return None,
    })
}

/// Plain error reports (no ANSI colours) unless stderr is a terminal and
/// `NO_COLOR` is unset.
fn install_error_reporter() {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let mut hook = color_eyre::config::HookBuilder::default();
    if no_color || !std::io::stderr().is_terminal() {
        hook = hook.theme(color_eyre::config::Theme::new());
    }
    if let Err(e) = hook.install() {
        eprintln!("pipedeck: cannot install the error reporter: {e}");
    }
}

fn main() -> ExitCode {
    install_error_reporter();
    let args = match Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            eprint!(
                "{}",
                cli::usage_without_global_options(&e.render().to_string())
            );
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let paths = Paths::resolve(args.config.clone(), args.data_dir.clone());
    let _log = pipedeck::logging::init(&paths.log_dir());
    select_aws(&args, &paths);
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "pipedeck starting");
    let readonly = args.readonly
        || pipedeck::config::UserConfig::load(&paths.config_file)
            .0
            .readonly;
    if readonly {
        pipedeck::backend::set_readonly();
        if matches!(args.command, Some(Command::Serve(_))) {
            pipedeck::backend::set_host_readonly();
        }
        if let Some(what) = args.command.as_ref().and_then(mutation_name) {
            eprintln!(
                "pipedeck: {}",
                pipedeck::backend::readonly_refusal(what).message
            );
            return ExitCode::FAILURE;
        }
    }
    let code = match args.command {
        Some(Command::Validate(a)) => cli::validate::run(&a),
        Some(Command::Graph(a)) => cli::graph::run(&a),
        Some(Command::Init(a)) => demo_ws::init(&a),
        Some(Command::AwsCredentials(a)) => {
            pipedeck::awsapi::cli::print_credentials(&a, &paths.config_file)
        }
        Some(Command::Diagnose(a)) if a.log.is_some() => {
            cli::diagnose::run_log(&a, &paths.config_file)
        }
        None => tui_or_report(&args_tui(
            &paths,
            args.workspace.as_deref(),
            readonly,
            args.theme,
        )),
        Some(cmd) => engine_command(cmd, args.workspace.as_deref(), &paths, args.readonly),
    };
    match code {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pipedeck: {e:?}");
            ExitCode::FAILURE
        }
    }
}
