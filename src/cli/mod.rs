//! The command line (clap). Exit codes: 0 ok, 1 a stage failed (or an I/O failure), 2 bad spec
//! or usage.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::executor::{self, Options, Status};
use crate::plan::{self, PlanError};
use crate::progress::Reporter;
use crate::spec::{SpecErrors, Study};
use crate::workspace::Workspace;

mod compare;
mod completions;
mod exec_job;
mod model;
mod run;
mod status;
mod store;

use compare::compare;
use exec_job::exec_job;
use model::{predict, trained_model};
use run::{default_jobs, dry_run_plan, run, ExecutorKind};
use status::status;
use store::{gc, verify};

#[derive(Parser, Debug)]
#[command(
    name = "warmstart",
    version,
    about = "Declarative, cached transfer-learning pipelines for text classifiers"
)]
pub struct Cli {
    /// Workspace folder (artefact store and run records).
    #[arg(long, global = true, default_value = ".warmstart", value_name = "DIR")]
    workspace: PathBuf,
    /// Print nothing but results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More detail while running (an epoch line for every epoch of training stages).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Colour status words: auto (stdout is a terminal and NO_COLOR unset), always, never.
    #[arg(long, global = true, value_enum, default_value = "auto", value_name = "WHEN")]
    color: crate::verbosity::Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a pipeline: every stale stage, independent stages in parallel.
    Run {
        spec: PathBuf,
        /// Override a value of the spec: `stage.param=value` or `seed=7`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
        /// Stages (and threads inside them) to run at the same time [default: number of cores].
        #[arg(long, short = 'j')]
        jobs: Option<usize>,
        /// Rerun this stage even if it is cached (repeatable).
        #[arg(long, value_name = "STAGE")]
        force: Vec<String>,
        /// Print one JSON object with every stage's status at the end.
        #[arg(long)]
        json: bool,
        /// Print what would run and why, and run nothing (what `status` shows, for the stale
        /// stages only).
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Where stale stages run: `local` (this process) or `slurm` (one batch job per
        /// stage, against this workspace, which must be on a filesystem the nodes share).
        #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
        executor: ExecutorKind,
        /// An extra `sbatch` argument for every job, e.g. `--slurm-arg=--partition=cpu`
        /// (repeatable; with `--executor slurm`).
        #[arg(long = "slurm-arg", value_name = "ARG", allow_hyphen_values = true)]
        slurm_args: Vec<String>,
    },
    /// Run one stage job on a cluster node (what `--executor slurm` submits).
    #[command(hide = true)]
    ExecJob { job: PathBuf },
    /// The spec's stage names, one per line (what the bash completion script asks).
    #[command(hide = true)]
    CompleteStages { spec: PathBuf },
    /// Print a shell completion script: `warmstart completions bash > /etc/bash_completion.d/warmstart`
    /// (bash, zsh and fish also complete stage names from the spec after `predict SPEC`, `export SPEC`, `--force`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of spec files (for editors: `warmstart schema > warmstart.schema.json`).
    Schema,
    /// Show which stages are fresh or stale, and why.
    Status {
        spec: PathBuf,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check a spec (fields, references, cycles, dataset files and columns) without running it.
    Validate {
        spec: PathBuf,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
    /// Print the stage graph.
    Dag {
        spec: PathBuf,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
        #[arg(long, value_enum, default_value_t = DagFormat::Mermaid)]
        format: DagFormat,
    },
    /// Classify new texts with a trained finetune or feature-extract stage:
    /// `predict SPEC STAGE [TEXT...]`, or `predict --model DIR [TEXT...]`.
    Predict {
        /// SPEC STAGE then texts; with --model, texts only.
        args: Vec<String>,
        /// An exported model folder instead of SPEC STAGE.
        #[arg(long, value_name = "DIR")]
        model: Option<PathBuf>,
        /// Read texts from a file: one per line (.txt) or the `text` column of a .csv/.tsv/.jsonl.
        #[arg(long, value_name = "FILE")]
        input: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = OutFormat::Csv)]
        format: OutFormat,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
    /// Write a report comparing the variants: report.md, index.html (inline SVG plots), metrics.csv.
    Report {
        spec: PathBuf,
        /// Output folder [default: reports/<pipeline name>/].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
    /// Metric differences between two groups of variants' evaluate stages (B − A): `train_size=100`
    /// selects every variant with that part (repeats: mean ± std), a whole name one variant.
    Compare {
        spec: PathBuf,
        a: String,
        b: String,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
    /// Check every store entry against its checksums.
    Verify {
        /// Remove corrupt entries (their stages rerun on the next `run`).
        #[arg(long)]
        repair: bool,
    },
    /// Remove store entries that none of the given specs reference.
    Gc {
        #[arg(required = true)]
        specs: Vec<PathBuf>,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a trained model as a self-contained folder (tokenizer.json, model.safetensors, model.json).
    Export {
        spec: PathBuf,
        stage: String,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutFormat {
    Csv,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DagFormat {
    Mermaid,
    Dot,
}

enum Failure {
    /// Bad spec or usage: exit 2.
    Usage(String),
    /// A stage failed or the machine said no: exit 1.
    Failed(String),
}

impl From<SpecErrors> for Failure {
    fn from(e: SpecErrors) -> Self {
        // Every message gets its `error: ` in `main`; a spec's list already has one per line.
        let all = e.to_string();
        Failure::Usage(all.strip_prefix("error: ").unwrap_or(&all).to_string())
    }
}

impl From<PlanError> for Failure {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Spec(s) => s.into(),
            PlanError::Other(e) => Failure::Failed(format!("{e:#}")),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(format!("{e:#}"))
    }
}

/// Parses the arguments, runs the command and returns the exit code.
pub fn main() -> i32 {
    crate::determinism::init();
    crate::alloc::tune();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    crate::verbosity::set(crate::verbosity::Verbosity {
        quiet: cli.quiet,
        verbose: cli.verbose,
        color: cli.color,
    });
    match dispatch(cli) {
        Ok(code) => code,
        // The one place errors are printed.
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            2
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("error: {msg}");
            1
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32, Failure> {
    match cli.command {
        Command::Run {
            spec,
            sets,
            jobs,
            force,
            json,
            dry_run,
            executor,
            slurm_args,
        } => {
            if dry_run {
                return dry_run_plan(&cli.workspace, &spec, &sets, &force, json);
            }
            if executor == ExecutorKind::Local && !slurm_args.is_empty() {
                return Err(Failure::Usage("--slurm-arg needs --executor slurm".into()));
            }
            let runner = match executor {
                ExecutorKind::Local => executor::Runner::Local,
                ExecutorKind::Slurm => executor::Runner::Slurm(Box::new(
                    crate::slurm::Slurm::new(&cli.workspace, &spec, &sets, slurm_args)
                        .map_err(|e| Failure::Usage(format!("{e:#}")))?,
                )),
            };
            run(&cli.workspace, &spec, &sets, jobs, force, json, &runner)
        }
        Command::ExecJob { job } => exec_job(&cli.workspace, &job),
        Command::Completions { shell } => {
            completions::print(shell).map_err(|e| Failure::Failed(format!("cannot write the script: {e}")))?;
            Ok(0)
        }
        Command::CompleteStages { spec } => Ok(completions::stages(&spec)),
        Command::Schema => {
            println!("{:#}", crate::schema::spec_schema());
            Ok(0)
        }
        Command::Status { spec, sets, json } => status(&cli.workspace, &spec, &sets, json),
        Command::Validate { spec, sets } => {
            let study = crate::pipeline::load(&spec, &sets)?;
            for v in &study.variants {
                plan::check_datasets(v)?;
            }
            let s = &study.variants[0];
            let variants = if study.variants.len() > 1 {
                format!(", {} variants", study.variants.len())
            } else {
                String::new()
            };
            println!(
                "{}: ok ({} datasets, {} stages{variants})",
                spec.display(),
                s.datasets.len(),
                s.stages.len()
            );
            Ok(0)
        }
        Command::Predict {
            args,
            model,
            input,
            format,
            sets,
        } => predict(&cli.workspace, args, model, input, format, &sets),
        Command::Export { spec, stage, out, sets } => {
            let t = trained_model(&cli.workspace, &spec, &stage, &sets)?;
            crate::predict::export(&t.dir, &out)?;
            // The model card: read across the plan (pretraining upstream, evaluations downstream).
            let p = t.plan.find(&t.name).expect("stage planned");
            let card = crate::model_card::render(&t.study, &t.plan, &t.ws, p, &t.dir, &spec)?;
            crate::store::write_atomic(&out.join("README.md"), card.as_bytes())?;
            println!("exported `{stage}` to {} (model card: README.md)", out.display());
            Ok(0)
        }
        Command::Verify { repair } => verify(&cli.workspace, repair),
        Command::Report { spec, out, sets } => {
            let study = crate::pipeline::load(&spec, &sets)?;
            let ws = Workspace::open(&cli.workspace)?;
            let plan = plan::plan(&study, &ws)?;
            let out = out.unwrap_or_else(|| PathBuf::from("reports").join(&study.name));
            let rows = crate::report::write(&study, &plan, &ws, &out)?;
            let missing = rows.iter().filter(|r| r.metrics.is_none()).count();
            println!(
                "wrote {}/report.md, index.html and metrics.csv ({} evaluate stages{})",
                out.display(),
                rows.len(),
                if missing > 0 {
                    format!(", {missing} not run yet")
                } else {
                    String::new()
                }
            );
            Ok(0)
        }
        Command::Compare { spec, a, b, sets } => compare(&cli.workspace, &spec, &a, &b, &sets),
        Command::Gc { specs, dry_run } => gc(&cli.workspace, &specs, dry_run),
        Command::Dag { spec, sets, format } => {
            let study = crate::pipeline::load(&spec, &sets)?;
            match format {
                DagFormat::Mermaid => print!("{}", crate::graph::mermaid(&study)),
                DagFormat::Dot => print!("{}", crate::graph::dot(&study)),
            }
            Ok(0)
        }
    }
}

/// The process's one rayon pool (data-parallel work inside stages), with big stacks: a stage
/// that recurses deeply must fail as a stage, not abort the process.
fn global_pool(threads: usize) {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(64 << 20)
        .build_global();
}
