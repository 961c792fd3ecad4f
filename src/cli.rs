//! The command line: parse, call the library, map errors to exit codes
//! (0 ok, 1 a failed run or check, 2 bad input).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::InputError;
use crate::harness::{DeviceChoice, RunOptions, Shard};
use crate::scenario;

#[derive(Parser, Debug)]
#[command(
    name = "dropscope",
    version,
    about = "Finds out why a training loss suddenly drops"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a scenario's arms × seeds and write their traces (and the analysis).
    Run(RunArgs),
    /// Analyse a training log another pipeline wrote (CSV, JSONL, TensorBoard, burn-train, trainer_state.json).
    Investigate(InvestigateArgs),
    /// Rebuild a run folder's report from its saved traces, without retraining.
    Report {
        /// A run folder written by `dropscope run` (or `merge`).
        run: PathBuf,
        /// Where to write the report (default: RUN/report).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a scenario's [expect] table, or a run against a saved baseline (exit 1 on failure).
    Check(CheckArgs),
    /// Save and manage baselines for `check --baseline`.
    Baseline {
        #[command(subcommand)]
        what: BaselineCommand,
    },
    /// Combine the run folders of a sharded sweep (`run --shard I/N`) into one.
    Merge {
        /// The merged run folder to write.
        #[arg(long)]
        out: PathBuf,
        /// The shard folders.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
    },
    /// List the bundled scenarios.
    List,
    /// Measure training throughput or the detector.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A scenario file, or the name of a bundled scenario (see `dropscope list`).
    pub scenario: String,
    /// The run folder to write.
    #[arg(long, default_value = "runs/latest")]
    pub out: PathBuf,
    /// cpu (the faster CPU backend), flex, ndarray or wgpu.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Run only shard I of N (0-based), e.g. 0/4; combine the folders with `dropscope merge`.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// What to print when done.
    #[arg(long, default_value = "text")]
    pub format: OutputFormat,
    /// Skip the analysis and report (sharded runs always skip them: analyse the merged folder).
    #[arg(long)]
    pub no_report: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct InvestigateArgs {
    /// The log: a file, or a folder (TensorBoard run, burn-train metrics, a dropscope cell).
    pub log: PathBuf,
    /// Validation data: epoch,step,val_loss[,val_accuracy,train_loss_eval].
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Epoch length in steps, for logs without an epoch column.
    #[arg(long)]
    pub steps_per_epoch: Option<u64>,
    #[arg(long, default_value = "text")]
    pub format: OutputFormat,
    /// Also write a report folder (Markdown, HTML, JSON, plots) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Force the log format: csv, jsonl, tensorboard, burn-train, hf-trainer.
    #[arg(long)]
    pub input_format: Option<crate::import::Format>,
    /// Column holding the step (default: step, global_step, iteration, ...).
    #[arg(long)]
    pub step_col: Option<String>,
    /// Column holding the training loss (default: loss, train_loss, ...).
    #[arg(long)]
    pub loss_col: Option<String>,
    #[arg(long)]
    pub epoch_col: Option<String>,
    #[arg(long)]
    pub lr_col: Option<String>,
    /// TensorBoard scalar tag of the training loss.
    #[arg(long)]
    pub tag: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// A scenario file or bundled name (trained, then checked), or a run folder.
    pub target: String,
    /// Compare the run folder with this baseline instead of checking expectations.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Baseline comparison: exact, tolerance or statistical.
    #[arg(long, default_value = "statistical")]
    pub mode: crate::check::BaselineMode,
    /// Tolerance mode: allowed relative difference per step.
    #[arg(long, default_value_t = 0.05)]
    pub rtol: f64,
    /// Tolerance mode: steps allowed outside the tolerance, per cell.
    #[arg(long, default_value_t = 0)]
    pub max_failing_steps: usize,
    /// Statistical mode: significance level.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Write JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Where a scenario's run goes.
    #[arg(long, default_value = "runs/check")]
    pub out: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum BaselineCommand {
    /// Save RUN_DIR as a baseline in BASE_DIR (traces, manifest, baseline.json).
    Save { run: PathBuf, base: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Optimizer steps per second on the benchmark MLP (64 inputs, batch norm, 10 classes, SGD momentum).
    Train {
        /// Devices to compare.
        #[arg(long, value_delimiter = ',', default_value = "flex,ndarray")]
        devices: Vec<DeviceChoice>,
        /// Timed steps per size (default: a second or two per size on 2 cores).
        #[arg(long)]
        steps: Option<usize>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Detector accuracy (precision/recall/F1 on planted drops) and speed (points/s).
    Detect {
        /// Planted series per accuracy cell (200: an F1 then varies by about ±0.01 from
        /// seed to seed, against ±0.02 with 50).
        #[arg(long, default_value_t = 200)]
        series: usize,
        /// Seed of the planted series (the tables in the README use 1, 1000 and 5000).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Series lengths for the speed table.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "10000,30000,50000,100000,1000000,10000000"
        )]
        sizes: Vec<usize>,
        /// Only the accuracy table, or only the speed table.
        #[arg(long)]
        only: Option<String>,
    },
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32, InputError> {
    match cli.command {
        Command::Run(args) => run(args),
        Command::Investigate(args) => investigate(args),
        Command::Report { run, out } => {
            let out = out.unwrap_or_else(|| run.join("report"));
            let (manifest, traces) = crate::rundir::load(&run)?;
            let analysis = analyze_run(&manifest, &traces);
            let files = crate::report::write_run_report(&out, &manifest, &analysis, &traces)?;
            println!("{}", files.markdown.display());
            Ok(0)
        }
        Command::Check(args) => check(args),
        Command::Baseline { what } => match what {
            BaselineCommand::Save { run, base } => {
                let b = crate::check::baseline::save(&run, &base)?;
                eprintln!(
                    "saved baseline of {} ({} arms) in {}",
                    b.scenario,
                    b.arms.len(),
                    base.display()
                );
                Ok(0)
            }
        },
        Command::Merge { out, shards } => {
            let dirs: Vec<&std::path::Path> = shards.iter().map(|p| p.as_path()).collect();
            let m = crate::merge::merge(&out, &dirs)?;
            eprintln!("merged {} cells into {}", m.cells.len(), out.display());
            Ok(0)
        }
        Command::List => {
            for (name, src) in scenario::BUNDLED {
                let desc = scenario::ScenarioFile::parse(
                    std::path::Path::new(&format!("scenarios/{name}.toml")),
                    src,
                )
                .map(|f| f.scenario.description)
                .unwrap_or_default();
                println!("{name:22} {desc}");
            }
            Ok(0)
        }
        Command::Bench { what } => match what {
            BenchCommand::Train {
                devices,
                steps,
                json,
            } => {
                let mut rows = Vec::new();
                for &(batch, hidden) in &crate::harness::bench::SIZES {
                    for &d in &devices {
                        let n = steps
                            .unwrap_or_else(|| crate::harness::bench::default_steps(batch, hidden));
                        rows.push(crate::harness::bench::train_throughput(
                            d,
                            batch,
                            hidden,
                            (n / 10).max(5),
                            n,
                        ));
                    }
                }
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&rows).unwrap_or_default()
                    );
                } else {
                    println!("| device | batch | hidden | steps/s |");
                    println!("|---|---:|---:|---:|");
                    for r in rows {
                        println!(
                            "| {} | {} | {} | {:.0} |",
                            r.device, r.batch, r.hidden, r.steps_per_s
                        );
                    }
                }
                Ok(0)
            }
            BenchCommand::Detect {
                series,
                seed,
                sizes,
                only,
            } => {
                let cfg = crate::detect::DetectConfig::default();
                if only.as_deref() != Some("speed") {
                    println!("{}", crate::detect::bench::accuracy(series, seed, &cfg));
                }
                if only.as_deref() != Some("accuracy") {
                    println!("{}", crate::detect::bench::speed(&sizes, &cfg));
                }
                Ok(0)
            }
        },
    }
}

fn analyze_run(
    manifest: &crate::manifest::Manifest,
    traces: &crate::rundir::Traces,
) -> crate::attribute::RunAnalysis {
    crate::attribute::analyze_run(
        manifest,
        traces,
        &crate::attribute::AnalyzeOptions::default(),
    )
}

fn print_run_text(a: &crate::attribute::RunAnalysis) {
    println!("{}: {}", a.scenario, a.description);
    for line in &a.headline {
        println!("  {line}");
    }
    for arm in &a.arms {
        for c in arm
            .causes
            .iter()
            .filter(|c| c.cause != crate::attribute::Cause::None)
        {
            println!(
                "  {} : {} named in {}/{} seeds",
                arm.name, c.cause, c.seeds_named, c.seeds
            );
        }
        if let Some(cell) = arm.cells.first() {
            println!("  {} : {}", arm.name, cell.analysis.overfitting.message);
        }
    }
}

fn print_trace_text(source: &str, a: &crate::attribute::TraceAnalysis, warnings: &[String]) {
    println!("{source}: {} steps", a.n_steps);
    for w in warnings {
        println!("  warning: {w}");
    }
    let c = &a.detection.cleaning;
    if c.n_nan + c.n_inf + c.n_duplicates > 0 || c.unsorted {
        println!(
            "  cleaned: {} NaN, {} infinite, {} duplicate steps{}",
            c.n_nan,
            c.n_inf,
            c.n_duplicates,
            if c.unsorted {
                ", steps were out of order"
            } else {
                ""
            }
        );
    }
    println!(
        "  noise sigma (log-loss per step): {:.4}",
        a.detection.noise_sigma
    );
    if a.drops.is_empty() {
        println!("  drops: none");
    } else {
        println!("  drops:");
        println!(
            "    {:>10} {:>9} {:>8} {:>7}  {:<10} explained by",
            "step", "log-drop", "rel", "z", "shape"
        );
        for d in &a.drops {
            println!(
                "    {:>10} {:>9.4} {:>7.1}% {:>7.1}  {:<10} {}",
                d.step,
                d.log,
                100.0 * d.rel,
                d.z,
                format!("{:?}", d.shape).to_lowercase(),
                d.explained_by
            );
        }
    }
    for s in &a.detection.spikes {
        println!(
            "  spike at step {} (+{:.3} log-loss, z {:.1})",
            s.step, s.height_log, s.z
        );
    }
    println!("  causes:");
    for f in &a.causes {
        println!(
            "    {} ({:?}, confidence {:.2})",
            f.cause, f.level, f.confidence
        );
        for e in &f.evidence {
            println!("      - {e}");
        }
    }
    println!("  {}", a.overfitting.message);
}

fn investigate(args: InvestigateArgs) -> Result<i32, InputError> {
    let opts = crate::import::ImportOptions {
        format: args.input_format,
        step_col: args.step_col,
        loss_col: args.loss_col,
        epoch_col: args.epoch_col,
        lr_col: args.lr_col,
        tag: args.tag,
    };
    let imported = crate::import::read_trace(&args.log, &opts)?;
    let mut trace = imported.trace;
    if let Some(spe) = args.steps_per_epoch {
        if spe == 0 {
            return Err(
                InputError::new(&args.log, "--steps-per-epoch must be at least 1")
                    .field("--steps-per-epoch"),
            );
        }
        trace.assign_epochs(spe);
    }
    if let Some(v) = &args.val {
        trace.val = crate::import::read_val_csv(v)?;
    }
    if trace.steps.is_empty() {
        return Err(InputError::new(&args.log, "no training-loss rows found"));
    }
    let analysis =
        crate::attribute::analyze_trace(&trace, &crate::attribute::AnalyzeOptions::default());
    let source = args.log.display().to_string();
    match args.format {
        OutputFormat::Json => {
            let mut doc = crate::report::trace_json(&source, &trace, &analysis);
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("warnings".into(), serde_json::json!(imported.warnings));
            }
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        OutputFormat::Text => print_trace_text(&source, &analysis, &imported.warnings),
    }
    if let Some(dir) = &args.report {
        let files = crate::report::write_trace_report(dir, &source, &trace, &analysis)?;
        eprintln!("report: {}", files.markdown.display());
    }
    Ok(0)
}

fn check(args: CheckArgs) -> Result<i32, InputError> {
    let target = std::path::Path::new(&args.target);
    let is_run = target.join("manifest.json").is_file();
    let report = if let Some(base) = &args.baseline {
        if !is_run {
            return Err(InputError::new(
                target,
                "--baseline needs a run folder (with manifest.json)",
            ));
        }
        let opts = crate::check::baseline::CompareOptions {
            mode: args.mode,
            rtol: args.rtol,
            max_failing_steps: args.max_failing_steps,
            alpha: args.alpha,
        };
        crate::check::baseline::compare(target, base, &opts)?
    } else {
        let (run_dir, file) = if is_run {
            let m = crate::manifest::Manifest::read(target)?;
            let f = scenario::ScenarioFile::parse(
                std::path::Path::new(&m.scenario.path),
                &m.scenario.source,
            )?;
            (target.to_path_buf(), f)
        } else {
            let f = scenario::load(&args.target)?;
            let opts = RunOptions {
                out: args.out.clone(),
                device: args.device,
                shard: None,
                quiet: args.quiet,
            };
            let summary = crate::harness::run_scenario(&f, &opts)?;
            if summary.failed_cells() > 0 {
                eprintln!("{} cells failed to train", summary.failed_cells());
                return Ok(1);
            }
            (args.out.clone(), f)
        };
        let Some(spec) = file.scenario.expect.clone() else {
            return Err(
                InputError::new(&file.path, "the scenario has no [expect] table to check")
                    .field("expect"),
            );
        };
        for rules in std::iter::once(&spec.all).chain(spec.arm.values()) {
            crate::check::validate_rules(rules)
                .map_err(|m| InputError::new(&file.path, m).field("expect"))?;
        }
        let (manifest, traces) = crate::rundir::load(&run_dir)?;
        let analysis = analyze_run(&manifest, &traces);
        crate::check::check_run(&spec, &analysis)
    };
    println!("{report}");
    if let Some(j) = &args.junit {
        crate::check::junit::write(&report, j)?;
    }
    Ok(if report.passed() { 0 } else { 1 })
}

fn run(args: RunArgs) -> Result<i32, InputError> {
    let file = scenario::load(&args.scenario)?;
    let opts = RunOptions {
        out: args.out.clone(),
        device: args.device,
        shard: args.shard,
        quiet: args.quiet,
    };
    let summary = crate::harness::run_scenario(&file, &opts)?;
    let failed = summary.failed_cells();
    if !args.quiet {
        eprintln!(
            "wrote {} cells to {} in {:.1} s",
            summary.manifest.cells.len(),
            summary.out.display(),
            summary.manifest.wall_s
        );
    }
    for c in &summary.manifest.cells {
        if let Some(e) = &c.error {
            eprintln!("cell {} seed {} failed: {e}", c.arm, c.seed);
        }
    }
    if args.shard.is_none() && !args.no_report {
        let (manifest, traces) = crate::rundir::load(&args.out)?;
        let analysis = analyze_run(&manifest, &traces);
        let files = crate::report::write_run_report(
            &args.out.join("report"),
            &manifest,
            &analysis,
            &traces,
        )?;
        match args.format {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&crate::report::run_json(&manifest, &analysis))
                    .unwrap_or_default()
            ),
            OutputFormat::Text => {
                print_run_text(&analysis);
                println!("report: {}", files.markdown.display());
            }
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}
