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
        /// The merged run folder to write (new, empty, or a run folder with --force).
        #[arg(long)]
        out: PathBuf,
        /// The shard folders.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Write the merged folder even when cells are missing or partial (the manifest lists them).
        #[arg(long)]
        allow_partial: bool,
        /// Replace an existing run folder at --out.
        #[arg(long)]
        force: bool,
    },
    /// List the bundled scenarios.
    List,
    /// Print a bundled scenario's TOML, to start a scenario of your own from.
    Scenario {
        #[command(subcommand)]
        what: ScenarioCommand,
    },
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
    /// cpu (the faster CPU backend), flex, ndarray, or wgpu (also: gpu). wgpu on a machine
    /// without a GPU runs on a software adapter, and the run warns.
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
    /// Replace another scenario's run in --out (only the files dropscope wrote there).
    #[arg(long)]
    pub force: bool,
    /// Train even when the run is larger than 10 million cell-steps.
    #[arg(long)]
    pub yes: bool,
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
    /// Force the log format (default: detected by content; --help lists them).
    #[arg(long, long_help = format!("Force the log format (default: detected by content):\n{}", crate::import::Format::help()))]
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
    /// Analyse minus the logged value (a log-likelihood or a reward, where higher is
    /// better), for the training and validation loss alike; applied before --offset.
    #[arg(long)]
    pub negate: bool,
    /// Add X to every logged value (after --negate), e.g. to make a reward positive:
    /// dropscope analyses log(loss), which needs positive values.
    #[arg(
        long,
        default_value_t = 0.0,
        allow_hyphen_values = true,
        value_name = "X"
    )]
    pub offset: f64,
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
    /// Tolerance mode: allowed relative difference per step (a finite number >= 0).
    #[arg(long, default_value_t = 0.05, value_parser = parse_rtol)]
    pub rtol: f64,
    /// Tolerance mode: steps allowed outside the tolerance, per cell.
    #[arg(long, default_value_t = 0)]
    pub max_failing_steps: usize,
    /// Statistical mode: significance level, strictly between 0 and 1.
    #[arg(long, default_value_t = 0.05, value_parser = parse_alpha)]
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
    /// Replace another scenario's run in --out.
    #[arg(long)]
    pub force: bool,
    /// Train even when the run is larger than 10 million cell-steps.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Subcommand, Debug)]
pub enum ScenarioCommand {
    /// Print the TOML of a bundled scenario (`dropscope scenario show lr-step > mine.toml`).
    Show {
        /// A bundled scenario's name (see `dropscope list`).
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum BaselineCommand {
    /// Save RUN_DIR as a baseline in BASE_DIR (traces, manifest, baseline.json).
    Save {
        run: PathBuf,
        base: PathBuf,
        /// Replace an existing baseline in BASE_DIR.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Optimizer steps per second on the benchmark MLP (64 inputs, batch norm, 10 classes, SGD momentum).
    Train {
        /// Devices to compare.
        #[arg(long, value_delimiter = ',', default_value = "flex,ndarray")]
        devices: Vec<DeviceChoice>,
        /// Timed steps per size (default: a second or two per size on 2 cores).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        steps: Option<u64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Detector accuracy (precision/recall/F1 on planted drops) and speed (points/s).
    Detect {
        /// Planted series per accuracy cell (200: an F1 then varies by about ±0.01 from
        /// seed to seed, against ±0.02 with 50).
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
        series: u64,
        /// Seed of the planted series (the tables in the README use 1, 1000 and 5000).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Series lengths for the speed table (each at least 100).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "10000,30000,50000,100000,1000000,10000000",
            value_parser = clap::value_parser!(u64).range(100..)
        )]
        sizes: Vec<u64>,
        /// Only the accuracy table, or only the speed table.
        #[arg(long)]
        only: Option<String>,
    },
}

/// `--alpha`: a significance level is a probability strictly between 0 and 1 (0 would
/// pass every check, 1 fail every one).
fn parse_alpha(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if v > 0.0 && v < 1.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not strictly between 0 and 1"))
    }
}

/// `--rtol`: a relative tolerance is finite and not negative (inf would pass every step).
fn parse_rtol(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a finite number >= 0"))
    }
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
            let (manifest, traces, done) = crate::rundir::load_checked(&run)?;
            let analysis = analyze_run(&manifest, &traces);
            if let Some(h) = done.headline() {
                println!("{h}");
            }
            let files = crate::report::write_run_report(&out, &manifest, &analysis, &traces)?;
            println!("{}", files.markdown.display());
            Ok(0)
        }
        Command::Check(args) => check(args),
        Command::Baseline { what } => match what {
            BaselineCommand::Save { run, base, force } => {
                let b = crate::check::baseline::save(&run, &base, force)?;
                eprintln!(
                    "saved baseline of {} ({} arms) in {}",
                    b.scenario,
                    b.arms.len(),
                    base.display()
                );
                Ok(0)
            }
        },
        Command::Merge {
            out,
            shards,
            allow_partial,
            force,
        } => {
            let dirs: Vec<&std::path::Path> = shards.iter().map(|p| p.as_path()).collect();
            let opts = crate::merge::MergeOptions {
                allow_partial,
                force,
            };
            let m = crate::merge::merge(&out, &dirs, opts)?;
            eprintln!("merged {} cells into {}", m.cells.len(), out.display());
            if !m.missing_cells.is_empty() {
                eprintln!(
                    "warning: incomplete merge (--allow-partial): {}",
                    m.missing_cells.join("; ")
                );
            }
            Ok(0)
        }
        Command::Scenario {
            what: ScenarioCommand::Show { name },
        } => match scenario::BUNDLED.iter().find(|(n, _)| *n == name) {
            Some((_, src)) => {
                print!("{src}");
                Ok(0)
            }
            None => Err(InputError::new(
                &name,
                format!(
                    "no bundled scenario of that name (bundled: {})",
                    scenario::BUNDLED
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        },
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
                        let n = steps.map_or_else(
                            || crate::harness::bench::default_steps(batch, hidden),
                            |s| s as usize,
                        );
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
                if let Some(o) = only
                    .as_deref()
                    .filter(|o| !["speed", "accuracy"].contains(o))
                {
                    return Err(InputError::new(
                        "dropscope bench detect",
                        format!("--only {o}: expected accuracy or speed"),
                    )
                    .field("--only"));
                }
                let sizes: Vec<usize> = sizes.iter().map(|&n| n as usize).collect();
                if only.as_deref() != Some("speed") {
                    println!(
                        "{}",
                        crate::detect::bench::accuracy(series as usize, seed, &cfg)
                    );
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
    print!("{}", crate::report::text::run(a));
}

fn print_trace_text(source: &str, a: &crate::attribute::TraceAnalysis, warnings: &[String]) {
    print!("{}", crate::report::text::trace(source, a, warnings));
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
    if !args.offset.is_finite() {
        return Err(
            InputError::new(&args.log, "--offset must be a finite number").field("--offset"),
        );
    }
    if args.negate || args.offset != 0.0 {
        // The analysis reads log(loss): a log-likelihood or a reward becomes a loss here,
        // and its validation values with it, so the overfitting verdict reads them alike.
        let sign = if args.negate { -1.0 } else { 1.0 };
        let f = |v: f64| sign * v + args.offset;
        for s in &mut trace.steps {
            s.loss = f(s.loss);
        }
        for v in &mut trace.val {
            v.val_loss = f(v.val_loss);
            v.train_loss_eval = v.train_loss_eval.map(f);
        }
    }
    let analysis =
        crate::attribute::analyze_trace(&trace, &crate::attribute::AnalyzeOptions::default());
    let usable = analysis.detection.cleaning.n_kept;
    if usable < crate::attribute::MIN_USABLE_LOSSES {
        let what = if usable == 0 {
            "no positive finite losses".to_string()
        } else {
            format!(
                "only {usable} positive finite losses (at least {} needed)",
                crate::attribute::MIN_USABLE_LOSSES
            )
        };
        return Err(InputError::new(
            &args.log,
            format!(
                "{what}: dropscope analyses log(loss); for a log-likelihood or a reward, pass --negate / --offset"
            ),
        ));
    }
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
                force: args.force,
                yes: args.yes,
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
        let (manifest, traces, done) = crate::rundir::load_checked(&run_dir)?;
        let analysis = analyze_run(&manifest, &traces);
        crate::check::check_run(&spec, &analysis, &done)
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
        force: args.force,
        yes: args.yes,
    };
    let summary = crate::harness::run_scenario(&file, &opts)?;
    let failed = summary.failed_cells();
    if !args.quiet {
        eprintln!(
            "wrote {} cells to {} in {:.1} s on {}",
            summary.manifest.cells.len(),
            summary.out.display(),
            summary.manifest.wall_s,
            summary
                .manifest
                .adapter
                .as_ref()
                .map_or_else(|| summary.manifest.device.clone(), |a| a.to_string())
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
