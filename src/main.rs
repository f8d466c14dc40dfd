//! The `spark-control` command line: a thin shell over the library.
//!
//! Owns argument parsing, exit codes and printing. Everything else lives in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use spark_control::model::{self, Observed, Severity};
use spark_control::plan;

/// The control plane for a small vLLM cluster of NVIDIA DGX Spark boxes.
#[derive(Parser)]
#[command(name = "spark-control", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check desired-state files; exit 1 with FILE:LINE:COL errors when any is invalid.
    Validate {
        /// Files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the JSON schema of the desired-state file.
    Schema,
    /// Print the plan that would converge OBSERVED towards DESIRED (a git-ops preview).
    Plan {
        /// The desired-state file.
        #[arg(long)]
        desired: PathBuf,
        /// An observed state, as JSON or YAML (the shape `/api/state` reports as `observed`).
        #[arg(long)]
        observed: PathBuf,
        /// Print the plan as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { files } => Ok(validate(&files)),
        Command::Schema => {
            print!("{}", model::schema::schema_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            desired,
            observed,
            json,
        } => plan_cmd(&desired, &observed, json),
    }
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for f in files {
        let v = model::validate_file(f);
        for d in &v.diagnostics {
            eprintln!("{d}");
        }
        if v.is_ok() {
            let warnings = v
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Warning)
                .count();
            if warnings == 0 {
                println!("{}: valid", f.display());
            } else {
                println!("{}: valid ({warnings} warning(s))", f.display());
            }
        } else {
            ok = false;
            println!("{}: invalid ({} error(s))", f.display(), v.errors().count());
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn plan_cmd(desired: &Path, observed: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let v = model::validate_file(desired);
    for d in &v.diagnostics {
        eprintln!("{d}");
    }
    let Some(d) = v.desired else {
        return Ok(ExitCode::from(1));
    };
    let text = std::fs::read_to_string(observed)
        .with_context(|| format!("reading {}", observed.display()))?;
    let o: Observed = if observed.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).with_context(|| format!("parsing {}", observed.display()))?
    } else {
        // Through a JSON value, so enums are written as maps (`known: {...}`) in YAML too.
        let v: serde_json::Value = serde_yaml::from_str(&text)
            .with_context(|| format!("parsing {}", observed.display()))?;
        serde_json::from_value(v).with_context(|| format!("reading {}", observed.display()))?
    };
    let p = plan::plan(&d, &o);
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
    } else {
        print!("{}", plan::render(&p));
    }
    if p.steps.is_empty() && !p.complete {
        bail!("the plan is incomplete: see the lines starting with `!`");
    }
    Ok(ExitCode::SUCCESS)
}
