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
    /// Print a shell completion script: `warmstart completions bash > /etc/bash_completion.d/warmstart`.
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
        Failure::Usage(e.to_string())
    }
}

impl From<PlanError> for Failure {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::Spec(s) => s.into(),
            PlanError::Other(e) => Failure::Failed(format!("error: {e:#}")),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Failed(format!("error: {e:#}"))
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
        Err(Failure::Usage(msg)) => {
            eprintln!("{msg}");
            2
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("{msg}");
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
                return Err(Failure::Usage("error: --slurm-arg needs --executor slurm".into()));
            }
            let runner = match executor {
                ExecutorKind::Local => executor::Runner::Local,
                ExecutorKind::Slurm => executor::Runner::Slurm(Box::new(
                    crate::slurm::Slurm::new(&cli.workspace, &spec, &sets, slurm_args)
                        .map_err(|e| Failure::Usage(format!("error: {e:#}")))?,
                )),
            };
            run(&cli.workspace, &spec, &sets, jobs, force, json, &runner)
        }
        Command::ExecJob { job } => exec_job(&cli.workspace, &job),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "warmstart", &mut std::io::stdout());
            Ok(0)
        }
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

fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExecutorKind {
    Local,
    Slurm,
}

fn run(
    workspace: &Path,
    spec_path: &Path,
    sets: &[String],
    jobs: Option<usize>,
    force: Vec<String>,
    json: bool,
    runner: &executor::Runner,
) -> Result<i32, Failure> {
    let study = crate::pipeline::load(spec_path, sets)?;
    let jobs = jobs.unwrap_or_else(default_jobs);
    if jobs == 0 {
        return Err(Failure::Usage("error: --jobs must be at least 1".into()));
    }
    for f in &force {
        if study.find(f).is_none() && study.variants[0].stage(f).is_none() {
            let names: Vec<&str> = study.variants[0].stages.iter().map(|s| s.name.as_str()).collect();
            return Err(Failure::Usage(format!(
                "error: --force {f}: no such stage (stages: {})",
                names.join(", ")
            )));
        }
    }
    // One thread count for the whole process: data-parallel work inside stages (rayon) uses it,
    // and results depend on it only through floating-point summation order.
    global_pool(jobs);
    let ws = Workspace::open(workspace)?;
    let reporter = Reporter::new();
    let _lock = ws.lock(|holder| {
        reporter.line(&format!(
            "waiting for another warmstart run on workspace {} to finish ({})",
            workspace.display(),
            if holder.is_empty() { "unknown process" } else { holder }
        ))
    })?;
    let plan = plan::plan(&study, &ws)?;
    if matches!(runner, executor::Runner::Slurm(_)) {
        // Ctrl-C / SIGTERM: cancel this run's jobs, then stop (nothing half-written is trusted:
        // entries are committed by rename, on the nodes as here).
        let _ = ctrlc::set_handler(|| {
            eprintln!("interrupted: cancelling this run's Slurm jobs");
            crate::slurm::cancel_all();
            std::process::exit(130);
        });
    }
    let opts = Options {
        jobs,
        force: force.into_iter().collect::<BTreeSet<_>>(),
        reporter: &reporter,
        runner,
    };
    let report = executor::run(&study, &plan, &ws, &opts);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
        );
    } else {
        let quiet = crate::verbosity::get().quiet;
        for s in &report.stages {
            if quiet && s.status != Status::Failed {
                continue;
            }
            // Padded before painting, so that colour codes do not shift the columns.
            let status = match s.status {
                Status::Ran => crate::verbosity::paint(&format!("{:<8}", "ran"), 32),
                Status::Cached => format!("{:<8}", "cached"),
                Status::Failed => crate::verbosity::paint(&format!("{:<8}", "FAILED"), 31),
                Status::Skipped => crate::verbosity::paint(&format!("{:<8}", "skipped"), 33),
            };
            let detail = s.error.clone().unwrap_or_else(|| s.summary.clone());
            let job = s
                .job
                .as_ref()
                .map(|j| format!("  [Slurm job {}, {}]", j.id, j.log.display()))
                .unwrap_or_default();
            println!("{:<24} {status} {:>8.2}s  {}{job}", s.name, s.seconds, detail);
        }
        println!(
            "{}: {} in {:.2}s",
            report.pipeline,
            if report.ok {
                crate::verbosity::paint("ok", 32)
            } else {
                crate::verbosity::paint("FAILED", 31)
            },
            report.seconds
        );
    }
    Ok(if report.ok { 0 } else { 1 })
}

/// `run --dry-run`: the stages a run would execute (stale or forced) and why; nothing runs and
/// nothing is written (not even the run lock is taken).
fn dry_run_plan(
    workspace: &Path,
    spec_path: &Path,
    sets: &[String],
    force: &[String],
    json: bool,
) -> Result<i32, Failure> {
    let study = crate::pipeline::load(spec_path, sets)?;
    let ws = Workspace::open(workspace)?;
    let plan = plan::plan(&study, &ws)?;
    let mut would = Vec::new();
    let mut seen = BTreeSet::new();
    for p in plan.all() {
        let forced = force.iter().any(|f| f == &p.name || f == &p.stage);
        if !forced && p.fresh {
            continue;
        }
        let why = if forced {
            "forced".to_string()
        } else if !seen.insert(p.job) {
            format!("shared with `{}` (same key)", plan.planned(p.job).name)
        } else {
            crate::fingerprint::sentences(&p.reasons)
        };
        would.push((p, why));
    }
    if json {
        let stages: Vec<_> = would
            .iter()
            .map(|(p, why)| json!({"name": p.name, "kind": p.fingerprint.kind, "key": p.key, "why": why}))
            .collect();
        let out = json!({"pipeline": study.name, "would_run": stages, "cached": plan.all().count() - would.len()});
        println!("{}", serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?);
    } else {
        for (p, why) in &would {
            println!("{:<24} would run: {why}", p.name);
        }
        println!(
            "{}: {} of {} stages would run (dry run: nothing was run)",
            study.name,
            would.len(),
            plan.all().count()
        );
    }
    Ok(0)
}

/// `exec-job JOB.json`: on a compute node, plan the job's spec again, check that the stage
/// still has the job's key, and run it into the store (exit 0 when the entry is committed,
/// also when it already was; 1 when the stage failed; 2 when the job no longer matches).
fn exec_job(workspace: &Path, job_path: &Path) -> Result<i32, Failure> {
    let bytes = std::fs::read(job_path)
        .map_err(|e| Failure::Usage(format!("error: cannot read job file {}: {e}", job_path.display())))?;
    let job: crate::slurm::JobFile = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::Usage(format!("error: {} is not a job file: {e}", job_path.display())))?;
    let study = crate::pipeline::load(&job.spec, &job.sets)?;
    // The allocation's CPUs (artefacts do not depend on the count).
    let threads = std::env::var("SLURM_CPUS_PER_TASK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(default_jobs);
    global_pool(threads);
    let ws = Workspace::open(workspace)?;
    let plan = plan::plan(&study, &ws)?;
    let p = plan.find(&job.name).ok_or_else(|| {
        Failure::Usage(format!(
            "error: the spec {} has no stage `{}` any more",
            job.spec.display(),
            job.name
        ))
    })?;
    if p.key != job.key {
        return Err(Failure::Usage(format!(
            "error: stage `{}` now has key {}, not the job's {}: the spec or its data changed since the job was submitted",
            job.name, p.key, job.key
        )));
    }
    if ws.store.lookup(&job.key).is_some() && ws.store.verify(&job.key).is_ok() {
        eprintln!("{}: already committed ({})", job.name, job.key);
        return Ok(0);
    }
    let reporter = Reporter::new();
    let progress = reporter.stage(&job.name);
    eprintln!("{}: running on {}", job.name, hostname());
    let t = std::time::Instant::now();
    let r = executor::execute(&study, &plan, &ws, p.job, &progress);
    progress.finish();
    match r {
        Ok(meta) => {
            eprintln!(
                "{}: done in {:.2}s — {}",
                job.name,
                t.elapsed().as_secs_f64(),
                meta.summary
            );
            Ok(0)
        }
        Err(e) => Err(Failure::Failed(format!("{}: FAILED: {e:#}", job.name))),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "this node".into())
}

fn status(workspace: &Path, spec_path: &Path, sets: &[String], json: bool) -> Result<i32, Failure> {
    let study = crate::pipeline::load(spec_path, sets)?;
    let ws = Workspace::open(workspace)?;
    let plan = plan::plan(&study, &ws)?;
    // Stale stages that a Slurm run submitted and that are still queued or running.
    let on_cluster = if workspace.join("jobs").is_dir() {
        crate::slurm::live_jobs()
    } else {
        Default::default()
    };
    let cluster = |key: &str| on_cluster.get(&crate::slurm::job_name(key));
    if json {
        let stages: Vec<_> = plan
            .all()
            .map(|p| {
                let mut v = json!({"name": p.name, "stage": p.stage, "variant": study.variants[p.variant].variant,
                       "kind": p.fingerprint.kind, "fresh": p.fresh, "key": p.key, "reasons": p.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(), "why": p.reasons});
                if let (false, Some((id, state))) = (p.fresh, cluster(&p.key)) {
                    v["slurm"] = json!({"id": id, "state": state});
                }
                v
            })
            .collect();
        let out = json!({"pipeline": study.name, "stages": stages});
        println!("{}", serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?);
    } else {
        for p in plan.all() {
            if p.fresh {
                println!("{:<24} fresh", p.name);
            } else if let Some((id, state)) = cluster(&p.key) {
                println!("{:<24} {} on Slurm (job {id})", p.name, state.to_lowercase());
            } else {
                println!("{:<24} stale: {}", p.name, crate::fingerprint::sentences(&p.reasons));
            }
        }
    }
    Ok(0)
}

/// The store folder of a trained model stage of a spec; fails if it is not trained yet.
/// A trained model stage, found, planned and verified: what predict and export read.
struct Trained {
    study: Study,
    plan: plan::Plan,
    ws: Workspace,
    /// `stage@variant`.
    name: String,
    /// The verified `files/` folder of its entry.
    dir: PathBuf,
}

fn trained_model_dir(workspace: &Path, spec_path: &Path, stage: &str, sets: &[String]) -> Result<PathBuf, Failure> {
    trained_model(workspace, spec_path, stage, sets).map(|t| t.dir)
}

fn trained_model(workspace: &Path, spec_path: &Path, stage: &str, sets: &[String]) -> Result<Trained, Failure> {
    let study = crate::pipeline::load(spec_path, sets)?;
    let Some((_, s)) = study.find(stage) else {
        let names: Vec<String> = study
            .variants
            .iter()
            .flat_map(|v| v.stages.iter().map(|s| Study::display(v, &s.name)))
            .collect();
        return Err(Failure::Usage(format!(
            "error: no stage `{stage}` in {} (stages: {})",
            spec_path.display(),
            names.join(", ")
        )));
    };
    if !["finetune", "feature-extract"].contains(&s.kind.name) {
        return Err(Failure::Usage(format!(
            "error: stage `{stage}` is a `{}` stage; predict and export need a finetune or feature-extract stage",
            s.kind.name
        )));
    }
    let ws = Workspace::open(workspace)?;
    let plan = plan::plan(&study, &ws)?;
    let (spec, s) = study.find(stage).expect("found above");
    let name = Study::display(spec, &s.name);
    let p = plan.find(&name).expect("stage planned");
    if !p.fresh {
        return Err(Failure::Failed(format!(
            "error: stage `{stage}` has no trained model for this spec yet ({}); run `warmstart run {}` first",
            crate::fingerprint::sentences(&p.reasons),
            spec_path.display()
        )));
    }
    let dir = ws.store.verified_files(&p.key).map_err(|e| {
        Failure::Failed(format!(
            "error: {e:#}; run `warmstart run {}` to recompute it",
            spec_path.display()
        ))
    })?;
    Ok(Trained {
        study,
        plan,
        ws,
        name,
        dir,
    })
}

fn predict(
    workspace: &Path,
    args: Vec<String>,
    model: Option<PathBuf>,
    input: Option<PathBuf>,
    format: OutFormat,
    sets: &[String],
) -> Result<i32, Failure> {
    let (dir, mut texts) = match model {
        Some(d) => (d, args),
        None => {
            if args.len() < 2 {
                return Err(Failure::Usage(
                    "error: predict needs SPEC STAGE [TEXT...] or --model DIR [TEXT...]".into(),
                ));
            }
            let dir = trained_model_dir(workspace, Path::new(&args[0]), &args[1], sets)?;
            (dir, args[2..].to_vec())
        }
    };
    if let Some(f) = input {
        let fmt = crate::dataset::Format::from_extension(&f.to_string_lossy()).unwrap_or(crate::dataset::Format::Txt);
        let ds = crate::dataset::DatasetSpec {
            name: "input".into(),
            path: f.clone(),
            rel_path: f.to_string_lossy().into(),
            format: fmt,
            text: "text".into(),
            label: None,
        };
        texts.extend(ds.read().map_err(|e| Failure::Usage(format!("error: {e}")))?.texts);
    }
    if texts.is_empty() {
        return Err(Failure::Usage(
            "error: no texts to classify: give them as arguments or with --input FILE".into(),
        ));
    }
    let p = crate::predict::Predictor::from_dir(&dir)?;
    let preds = p.predict(&texts)?;
    match format {
        OutFormat::Json => {
            let v: Vec<_> = preds
                .iter()
                .map(|r| json!({"text": r.text, "label": r.label, "probabilities": r.probabilities.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&v).map_err(anyhow::Error::from)?);
        }
        OutFormat::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            let mut header = vec!["text".to_string(), "label".to_string()];
            header.extend(p.labels().iter().map(|l| format!("p_{l}")));
            w.write_record(&header).map_err(anyhow::Error::from)?;
            for r in &preds {
                let mut row = vec![r.text.clone(), r.label.clone()];
                row.extend(r.probabilities.iter().map(|(_, v)| format!("{v:.4}")));
                w.write_record(&row).map_err(anyhow::Error::from)?;
            }
            w.flush().map_err(anyhow::Error::from)?;
        }
    }
    Ok(0)
}

fn verify(workspace: &Path, repair: bool) -> Result<i32, Failure> {
    let ws = Workspace::open(workspace)?;
    let _lock = ws.lock(|holder| eprintln!("waiting for the run on this workspace to finish ({holder})"))?;
    let keys = ws.store.keys()?;
    let mut bad = 0;
    for k in &keys {
        if let Err(e) = ws.store.verify_full(k) {
            bad += 1;
            let stage = ws.store.lookup(k).map(|m| m.stage).unwrap_or_else(|| "?".into());
            println!("CORRUPT {k} (stage `{stage}`): {e:#}");
            if repair {
                ws.store.remove(k)?;
                println!("  removed; the stage reruns on the next `warmstart run`");
            }
        }
    }
    println!(
        "{} entries checked, {} ok, {} corrupt",
        keys.len(),
        keys.len() - bad,
        bad
    );
    Ok(if bad > 0 && !repair { 1 } else { 0 })
}

fn gc(workspace: &Path, specs: &[PathBuf], dry_run: bool) -> Result<i32, Failure> {
    let ws = Workspace::open(workspace)?;
    // Holding the run lock means no run is using (or about to commit) any entry.
    let _lock = ws.lock(|holder| eprintln!("waiting for the run on this workspace to finish ({holder})"))?;
    let mut keep = BTreeSet::new();
    for path in specs {
        let study = crate::pipeline::load(path, &[])?;
        let plan = plan::plan(&study, &ws)?;
        keep.extend(plan.jobs.into_iter().map(|j| j.key));
    }
    let (mut n, mut bytes) = (0usize, 0u64);
    for k in ws.store.keys()? {
        if keep.contains(&k) {
            continue;
        }
        let size = ws
            .store
            .lookup(&k)
            .map(|m| m.files.values().map(|f| f.bytes).sum::<u64>())
            .unwrap_or(0);
        if !dry_run {
            ws.store.remove(&k)?;
        }
        n += 1;
        bytes += size;
    }
    if !dry_run {
        bytes += ws.store.clear_tmp()?;
    }
    let verb = if dry_run { "would free" } else { "freed" };
    println!(
        "{verb} {:.1} MB in {n} entries; kept {} referenced by {} spec(s)",
        bytes as f64 / 1e6,
        keep.len(),
        specs.len()
    );
    Ok(0)
}

fn compare(workspace: &Path, spec_path: &Path, a: &str, b: &str, sets: &[String]) -> Result<i32, Failure> {
    let study = crate::pipeline::load(spec_path, sets)?;
    let names: Vec<&str> = study.variants.iter().map(|v| v.variant.as_str()).collect();
    let (ga, gb) = (crate::compare::select(a, &names), crate::compare::select(b, &names));
    for (sel, g) in [(a, &ga), (b, &gb)] {
        if g.is_empty() {
            return Err(Failure::Usage(format!(
                "error: `{sel}` selects no variant; give `key=value` parts of a name (e.g. `train_size=100`) or a whole name; variants: {}",
                names.join(" | ")
            )));
        }
    }
    let ws = Workspace::open(workspace)?;
    let plan = plan::plan(&study, &ws)?;
    let rows = crate::report::rows(&study, &plan, &ws);
    print!("{}", crate::compare::render(&rows, (a, &ga), (b, &gb)));
    Ok(0)
}
