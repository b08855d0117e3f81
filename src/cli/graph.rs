//! `pipedeck graph`: the stage graph as text. Stages are boxes left to
//! right; inside, actions grouped by runOrder with parallel actions stacked;
//! the arrows between stages carry the artifacts that cross them. Rows wrap
//! to the terminal width.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::model::load::{LoadOptions, load_path};
use crate::model::pipeline::{Pipeline, Stage};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Width to wrap to (default: the terminal's, else 100)
    #[arg(long)]
    pub width: Option<usize>,
    /// A CloudFormation parameter value (repeatable)
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = super::key_value)]
    pub params: Vec<(String, String)>,
    /// A Terraform variable value (repeatable)
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = super::key_value)]
    pub vars: Vec<(String, String)>,
    /// A Terraform .tfvars file (repeatable)
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// A pipeline definition (CodePipeline JSON, pipedeck TOML, CloudFormation, Terraform)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

pub fn terminal_width() -> usize {
    if let Some(w) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return w;
    }
    // The terminal on stdout, else on stderr (stdout piped), else 100.
    [
        rustix::termios::tcgetwinsize(std::io::stdout()),
        rustix::termios::tcgetwinsize(std::io::stderr()),
    ]
    .into_iter()
    .flatten()
    .map(|w| usize::from(w.ws_col))
    .find(|&w| w > 0)
    .unwrap_or(100)
}

pub fn run(args: &Args) -> color_eyre::Result<ExitCode> {
    let opts = LoadOptions {
        params: super::params(&args.params),
        terraform: crate::model::terraform::TfOptions::new(&args.vars, &args.var_files),
    };
    let report = load_path(&args.file, &opts);
    if report.pipelines.is_empty() {
        eprint!("{}", super::validate::human(std::slice::from_ref(&report)));
        eprintln!(
            "pipedeck graph: no pipeline to draw in {}",
            args.file.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let width = args.width.unwrap_or_else(terminal_width);
    let mut out = String::new();
    for lp in &report.pipelines {
        out.push_str(&render(&lp.pipeline, width));
    }
    if !report.ok() {
        out.push_str(&format!(
            "\n(the definition has errors; `pipedeck validate {}` lists them)\n",
            args.file.display()
        ));
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}

const MAX_BOX_TEXT: usize = 40;

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn width_of(s: &str) -> usize {
    s.chars().count()
}

/// The lines inside a stage box (without borders).
fn stage_lines(stage: &Stage) -> Vec<String> {
    let mut groups: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for a in &stage.actions {
        groups
            .entry(a.run_order)
            .or_default()
            .push(format!("{} ({})", a.name, a.action_type_id.provider));
    }
    let mut lines = Vec::new();
    for (order, actions) in groups {
        let n = actions.len();
        for (i, a) in actions.into_iter().enumerate() {
            let lead = if i == 0 {
                format!("{order:>3}")
            } else {
                "   ".to_owned()
            };
            let branch = match (n, i) {
                (1, _) => '─',
                (_, 0) => '┬',
                (_, i) if i + 1 == n => '└',
                _ => '├',
            };
            lines.push(clip(&format!("{lead} {branch} {a}"), MAX_BOX_TEXT));
        }
    }
    if lines.is_empty() {
        lines.push("(no actions)".to_owned());
    }
    lines
}

/// A stage box as lines of equal width.
fn stage_box(stage: &Stage) -> Vec<String> {
    let body = stage_lines(stage);
    let title = clip(&stage.name, MAX_BOX_TEXT);
    let inner = body
        .iter()
        .map(|l| width_of(l))
        .chain([width_of(&title) + 2])
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = Vec::with_capacity(body.len() + 2);
    let top_fill = inner.saturating_sub(width_of(&title) + 2);
    out.push(format!(
        "┌─ {title} {}┐",
        "─".repeat(top_fill.saturating_sub(1))
    ));
    for l in body {
        out.push(format!("│ {l}{} │", " ".repeat(inner - 2 - width_of(&l))));
    }
    out.push(format!("└{}┘", "─".repeat(inner)));
    out
}

/// The artifacts that flow into `stages[i]` from earlier stages.
fn arrow_label(p: &Pipeline, i: usize) -> String {
    let mut names: Vec<&str> = Vec::new();
    for a in &p.stages[i].actions {
        for input in &a.input_artifacts {
            let from_earlier = p.stages[..i]
                .iter()
                .any(|s| s.actions.iter().any(|x| x.output_artifacts.contains(input)));
            if from_earlier && !names.contains(&input.as_str()) {
                names.push(input);
            }
        }
    }
    names.join(", ")
}

/// Renders the stage graph, wrapping rows of boxes to `width` columns.
pub fn render(p: &Pipeline, width: usize) -> String {
    let mode = p.execution_mode.as_str();
    let kind = p.pipeline_type.map_or("V1 (default)", |t| match t {
        crate::model::pipeline::PipelineType::V1 => "V1",
        crate::model::pipeline::PipelineType::V2 => "V2",
    });
    let mut out = format!(
        "pipeline {} · {} stages · {kind} · {mode}\n",
        p.name,
        p.stages.len()
    );
    // Each piece: an optional incoming arrow, then the box.
    let mut pieces: Vec<(Vec<String>, usize)> = Vec::new();
    for (i, stage) in p.stages.iter().enumerate() {
        let bx = stage_box(stage);
        let w = bx.first().map_or(0, |l| width_of(l));
        // The arrow into this stage: the artifacts that enter it on the
        // border row, the arrow itself on the first action's row.
        let arrow: Option<[String; 2]> = (i > 0).then(|| {
            let label = clip(&arrow_label(p, i), 18);
            let inner = width_of(&label).max(3);
            let pad = inner - width_of(&label);
            [
                format!(
                    " {}{label}{} ",
                    " ".repeat(pad / 2),
                    " ".repeat(pad - pad / 2)
                ),
                format!(" {}▶ ", "─".repeat(inner - 1)),
            ]
        });
        let aw = arrow.as_ref().map_or(0, |a| width_of(&a[0]));
        let mut lines = Vec::with_capacity(bx.len());
        for (row, l) in bx.into_iter().enumerate() {
            let prefix = match &arrow {
                Some(a) if row < 2 => a[row].clone(),
                Some(_) => " ".repeat(aw),
                None => String::new(),
            };
            lines.push(format!("{prefix}{l}"));
        }
        pieces.push((lines, w + aw));
    }
    let width = width.max(20);
    let mut row: Vec<(Vec<String>, usize)> = Vec::new();
    let mut used = 0;
    let flush = |row: &mut Vec<(Vec<String>, usize)>, out: &mut String| {
        let h = row.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for r in 0..h {
            let mut line = String::new();
            for (lines, w) in row.iter() {
                match lines.get(r) {
                    Some(l) => line.push_str(l),
                    None => line.push_str(&" ".repeat(*w)),
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        row.clear();
    };
    for piece in pieces {
        if !row.is_empty() && used + piece.1 > width {
            flush(&mut row, &mut out);
            used = 0;
        }
        used += piece.1;
        row.push(piece);
    }
    flush(&mut row, &mut out);
    out
}
