//! The command line: parse, call the library, map errors to exit codes
//! (0 ok, 1 a failed run or check, 2 bad input).

use std::path::{Path, PathBuf};

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

// Parsed once per process: the size of the largest variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a scenario's arms × seeds and write their traces (and the analysis).
    Run(RunArgs),
    /// Analyse a training log another pipeline wrote (CSV, JSONL, TensorBoard, burn-train, trainer_state.json).
    Investigate(InvestigateArgs),
    /// Follow a training log while it is written and print each event as it is confirmed
    /// (spikes, drops with their cause, divergence, overfitting); --fail-on stops a run.
    Watch(WatchArgs),
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
    /// Internal: one cell of `run --jobs N`, or one cell of `bench sweep`, in a process of its own.
    #[command(name = "internal-worker", hide = true)]
    Worker {
        #[command(subcommand)]
        what: WorkerCommand,
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
    /// Cells trained at once, each in a worker process of its own (default: the available
    /// cores; 1 trains them one after another in this process). Results are the same
    /// whatever N.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    /// cell: each cell alone (today's engine); stacked: cells of one model shape train as
    /// one model with a leading cell axis (refuses dropout, exit 2); auto: stacked for every
    /// group of two or more such cells on a CPU device, the rest one cell at a time.
    #[arg(long, default_value = "cell")]
    pub engine: crate::harness::Engine,
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
    #[arg(long, default_value = "text")]
    pub format: OutputFormat,
    /// Also write a report folder (Markdown, HTML, JSON, plots) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub read: LogArgs,
}

/// How to read a foreign log: shared by `investigate`, `check LOG` and `baseline save LOG`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LogArgs {
    /// Validation data: epoch[,step],val_loss[,val_accuracy,train_loss_eval].
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Epoch length in steps, for logs without an epoch column.
    #[arg(long)]
    pub steps_per_epoch: Option<u64>,
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
    /// A scenario file or bundled name (trained, then checked), a run folder, or one or
    /// more training logs of any format `investigate` reads.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
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
    /// Cells trained at once, each in a worker process of its own (default: the available
    /// cores; 1 trains them one after another in this process). Results are the same
    /// whatever N.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: Option<u64>,
    /// cell: each cell alone (today's engine); stacked: cells of one model shape train as
    /// one model with a leading cell axis (refuses dropout, exit 2); auto: stacked for every
    /// group of two or more such cells on a CPU device, the rest one cell at a time.
    #[arg(long, default_value = "cell")]
    pub engine: crate::harness::Engine,
    #[command(flatten)]
    pub expect: ExpectArgs,
    #[command(flatten)]
    pub read: LogArgs,
}

impl LogArgs {
    pub fn import_options(&self) -> crate::import::ImportOptions {
        crate::import::ImportOptions {
            format: self.input_format,
            step_col: self.step_col.clone(),
            loss_col: self.loss_col.clone(),
            epoch_col: self.epoch_col.clone(),
            lr_col: self.lr_col.clone(),
            tag: self.tag.clone(),
        }
    }

    /// The epoch length, sign and offset to apply after reading, checked.
    pub fn transform(&self, log: &Path) -> Result<crate::import::Transform, InputError> {
        if self.steps_per_epoch == Some(0) {
            return Err(InputError::new(log, "--steps-per-epoch must be at least 1")
                .field("--steps-per-epoch"));
        }
        if !self.offset.is_finite() {
            return Err(InputError::new(log, "--offset must be a finite number").field("--offset"));
        }
        Ok(crate::import::Transform {
            steps_per_epoch: self.steps_per_epoch,
            negate: self.negate,
            offset: self.offset,
        })
    }
}

/// Expectations for a log, from a file and inline (`check LOG --expect E.toml`,
/// `check LOG --not-cause unexplained`); inline values add to or override the file's.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ExpectArgs {
    /// A TOML file with the keys of a scenario's [expect.all] at the top level.
    #[arg(long, value_name = "EXPECT.toml")]
    pub expect: Option<PathBuf>,
    /// A cause that must be named (repeatable).
    #[arg(long = "cause", value_name = "CAUSE")]
    pub causes: Vec<String>,
    /// A cause that must not be named (repeatable), e.g. unexplained.
    #[arg(long = "not-cause", value_name = "CAUSE")]
    pub not_causes: Vec<String>,
    #[arg(long, value_name = "N")]
    pub max_unexplained_drops: Option<usize>,
    /// Significant drops allowed only at these event types (comma-separated; none for drops at no event).
    #[arg(long, value_delimiter = ',', value_name = "EVENTS")]
    pub drops_only_at: Option<Vec<String>>,
    #[arg(long, value_name = "LOSS")]
    pub max_final_val_loss: Option<f64>,
    #[arg(long, value_name = "LOSS")]
    pub max_best_val_loss: Option<f64>,
    #[arg(long, value_name = "EPOCH")]
    pub no_overfitting_before_epoch: Option<u64>,
    /// Fail when the loss turns NaN/inf for good (the default; kept for explicit scripts).
    #[arg(long, conflicts_with = "allow_divergence")]
    pub no_divergence: bool,
    /// Do not fail on a diverged log.
    #[arg(long)]
    pub allow_divergence: bool,
}

impl ExpectArgs {
    fn given(&self) -> bool {
        self.expect.is_some()
            || !self.causes.is_empty()
            || !self.not_causes.is_empty()
            || self.max_unexplained_drops.is_some()
            || self.drops_only_at.is_some()
            || self.max_final_val_loss.is_some()
            || self.max_best_val_loss.is_some()
            || self.no_overfitting_before_epoch.is_some()
            || self.no_divergence
            || self.allow_divergence
    }

    /// The file's rules with the inline ones on top, validated.
    fn rules(&self) -> Result<crate::scenario::ExpectRules, InputError> {
        let mut r = match &self.expect {
            Some(p) => crate::check::logs::load_expect(p)?,
            None => crate::scenario::ExpectRules::default(),
        };
        r.causes.extend(self.causes.iter().cloned());
        r.not_causes.extend(self.not_causes.iter().cloned());
        r.max_unexplained_drops = self.max_unexplained_drops.or(r.max_unexplained_drops);
        r.drops_only_at = self.drops_only_at.clone().or(r.drops_only_at);
        r.max_final_val_loss = self.max_final_val_loss.or(r.max_final_val_loss);
        r.max_best_val_loss = self.max_best_val_loss.or(r.max_best_val_loss);
        r.no_overfitting_before_epoch = self
            .no_overfitting_before_epoch
            .or(r.no_overfitting_before_epoch);
        if self.allow_divergence {
            r.no_divergence = false;
        }
        crate::check::validate_rules(&r).map_err(|m| {
            InputError::new("dropscope check", m).field("--cause/--not-cause/--drops-only-at")
        })?;
        Ok(r)
    }
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
    /// Save RUN_DIR, or one or more logs of one pipeline (e.g. several seeds), as a
    /// baseline in BASE_DIR: `baseline save RUN_DIR BASE_DIR`, `baseline save LOG... BASE_DIR`.
    Save {
        /// RUN_DIR or LOG..., then BASE_DIR.
        #[arg(required = true, num_args = 2.., value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Replace an existing baseline in BASE_DIR.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        read: LogArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum WorkerCommand {
    /// Train cell K (scenario order) of the run folder OUT, reporting on stdout.
    Cell {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        device: DeviceChoice,
        #[arg(long)]
        cell: usize,
    },
    /// Train the benchmark MLP for STEPS steps and report the time.
    Bench {
        #[arg(long)]
        device: DeviceChoice,
        #[arg(long)]
        batch: usize,
        #[arg(long)]
        hidden: usize,
        #[arg(long)]
        steps: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// `watch`'s throughput, detection delay per event kind, and false alarms and misses
    /// beside common watchdog rules, on planted series.
    Watch {
        /// Planted series of 10,000 steps per cell.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        series: u64,
        /// Seed of the first planted series.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Points of the throughput series.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(10_000..))]
        points: u64,
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Cell-steps per second of N cells at once (`run --jobs`'s engine: one worker process
    /// per cell) against one cell alone, on the benchmark MLP.
    Sweep {
        /// Cell counts to measure (one cell alone is always measured, as the reference).
        #[arg(long, value_delimiter = ',', default_value = "1,4,16", value_parser = clap::value_parser!(u64).range(1..=4096))]
        cells: Vec<u64>,
        #[arg(long, default_value = "flex")]
        device: DeviceChoice,
        /// Cells at once (default: the available cores).
        #[arg(long, short = 'j', value_parser = clap::value_parser!(u64).range(1..))]
        jobs: Option<u64>,
        /// Sizes as BATCHxHIDDEN (the fourth size: 1024x4096).
        #[arg(long, value_delimiter = ',', default_value = "32x64,64x256,256x1024", value_parser = crate::harness::bench::parse_size)]
        sizes: Vec<(usize, usize)>,
        /// Steps per cell (default: a few hundred, fewer at large sizes).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        steps: Option<u64>,
        /// cell: one worker process per cell, `jobs` at once; stacked: all the cells as one
        /// stack in this process (`run --engine stacked`).
        #[arg(long, default_value = "cell")]
        engine: crate::harness::Engine,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
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
        /// Planted series per accuracy cell (default 200: an F1 then varies by about ±0.01
        /// from seed to seed, against ±0.02 with 50); with --ablate the default is 50 (17
        /// tables), with --widened 20 (24 rows, some of 50k points).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        series: Option<u64>,
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
        /// The accuracy table with each stage switched off in turn and each z threshold
        /// moved by ±0.5 (changes from the full detector), instead of the usual tables.
        #[arg(long)]
        ablate: bool,
        /// The widened accuracy table instead: hard drops and clean curves under four
        /// trend shapes × four noise models at 10k points, and each noise model at 2k and
        /// 50k points, each its own row.
        #[arg(long)]
        widened: bool,
    },
    /// The overfitting verdict's false-positive rate on runs that cannot overfit (a fresh
    /// training set every epoch, label noise, a long plateau), with a 95% interval, and its
    /// detection rate on a control that does (the same runs on one fixed training set).
    Overfit {
        /// Runs on fresh data, one per seed (at least 100 to measure the 5% target).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
        seeds: u64,
        /// The first seed (the runs use SEED, SEED+1, ...).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Runs of the control (fixed data, the first of the same seeds); 0 leaves it out.
        #[arg(long, default_value_t = 20)]
        controls: u64,
        /// Epochs per run: each epoch is one validation point.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=10_000))]
        epochs: u64,
        /// The (constant) learning rate of SGD with momentum 0.9.
        #[arg(long, default_value_t = 0.05, value_parser = parse_lr)]
        lr: f64,
        #[arg(long, default_value = "cpu")]
        device: DeviceChoice,
        /// Runs trained at once, each in a worker process (default: the available cores).
        #[arg(long, short = 'j', value_parser = clap::value_parser!(u64).range(1..))]
        jobs: Option<u64>,
        /// Keep the two run folders in this folder (fresh-data/, fixed-data/; replaced if
        /// there) for `dropscope report`; default: a temporary folder, removed afterwards.
        #[arg(long)]
        out: Option<PathBuf>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Attribution: how often an ineffective event's cause is named (LR cuts, epoch starts
    /// on fresh data; log lengths 300 to 5,000, noise 0.5% to 10%), and the hit table on
    /// the real public logs of tests/fixtures/real.
    Attribute {
        /// Synthetic curves per grid cell.
        #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..))]
        series: u64,
        /// Seed of the first curve.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The folder of real logs (the corpus table is left out when it is missing).
        #[arg(long, default_value = "tests/fixtures/real")]
        corpus: PathBuf,
        /// Only the false-naming grid, or only the corpus table.
        #[arg(long, value_parser = ["null", "corpus"])]
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

/// `--lr`: a learning rate is a finite number above 0.
fn parse_lr(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a finite number above 0"))
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
    // Rust ignores SIGPIPE, so a write to a closed pipe (`dropscope report RUN | head -1`)
    // is an error that println! turns into a panic; a command-line tool should just stop.
    #[cfg(unix)]
    // SAFETY: setting a signal's action to its default at start-up, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
        Command::Watch(args) => watch(args),
        Command::Report { run, out } => {
            let out = out.unwrap_or_else(|| run.join("report"));
            let (manifest, traces, done) = crate::rundir::load_checked(&run)?;
            let mut analysis = analyze_run(&manifest, &traces);
            if let Some(h) = done.headline() {
                println!("{h}");
                analysis.notes.push(h);
            }
            let files = crate::report::write_run_report(&out, &manifest, &analysis, &traces)?;
            println!("{}", files.markdown.display());
            Ok(0)
        }
        Command::Check(args) => check(args),
        Command::Baseline { what } => match what {
            BaselineCommand::Save { paths, force, read } => {
                let (base, sources) = paths.split_last().unwrap_or((&paths[0], &[]));
                if let [run] = sources
                    && run.join("manifest.json").is_file()
                {
                    let b = crate::check::baseline::save(run, base, force)?;
                    eprintln!(
                        "saved baseline of {} ({} arms) in {}",
                        b.scenario,
                        b.arms.len(),
                        base.display()
                    );
                } else {
                    let logs = read_logs(sources, &read)?;
                    crate::check::logs::save_logs(&logs, base, force)?;
                    eprintln!(
                        "saved a baseline of {} log(s) in {}",
                        logs.len(),
                        base.display()
                    );
                }
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
        Command::Worker { what } => Ok(match what {
            WorkerCommand::Cell { out, device, cell } => {
                crate::harness::parallel::cell_worker(&out, device, cell)
            }
            WorkerCommand::Bench {
                device,
                batch,
                hidden,
                steps,
            } => crate::harness::bench::sweep_worker(device, batch, hidden, steps),
        }),
        Command::Bench { what } => match what {
            BenchCommand::Attribute {
                series,
                seed,
                corpus,
                only,
            } => {
                use crate::attribute::bench;
                if only.as_deref() != Some("corpus") {
                    print!(
                        "{}",
                        bench::null_table(&bench::null_grid(series as usize, seed))
                    );
                }
                if only.as_deref() != Some("null") && corpus.is_dir() {
                    let rows = bench::corpus(&corpus).map_err(|m| InputError::new(&corpus, m))?;
                    print!("{}", bench::corpus_table(&rows));
                }
                Ok(0)
            }
            BenchCommand::Overfit {
                seeds,
                seed,
                controls,
                epochs,
                lr,
                device,
                jobs,
                out,
                quiet,
                json,
            } => {
                use crate::harness::overfit_bench;
                let b = overfit_bench::run(&overfit_bench::OverfitBenchOptions {
                    seeds: seeds as usize,
                    seed,
                    controls: controls as usize,
                    epochs,
                    lr,
                    device,
                    jobs: crate::harness::parallel::jobs_or_default(jobs),
                    out,
                    quiet,
                })?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&b).unwrap_or_default());
                } else {
                    print!("{}", overfit_bench::table(&b));
                }
                Ok(0)
            }
            BenchCommand::Watch {
                series,
                seed,
                points,
                json,
            } => {
                let b = crate::watch::bench::run(series as usize, seed, points as usize);
                if json {
                    println!("{}", serde_json::to_string_pretty(&b).unwrap_or_default());
                } else {
                    print!("{b}");
                }
                Ok(0)
            }
            BenchCommand::Sweep {
                cells,
                device,
                jobs,
                sizes,
                steps,
                engine,
                json,
            } => {
                let cells: Vec<usize> = cells.iter().map(|&c| c as usize).collect();
                let rows = crate::harness::bench::sweep(
                    device,
                    &sizes,
                    &cells,
                    crate::harness::parallel::jobs_or_default(jobs),
                    steps.map(|s| s as usize),
                    engine,
                )?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&rows).unwrap_or_default()
                    );
                } else {
                    print!("{}", crate::harness::bench::sweep_table(&rows));
                }
                Ok(0)
            }
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
                ablate,
                widened,
            } => {
                let cfg = crate::detect::DetectConfig::default();
                if widened {
                    println!(
                        "{}",
                        crate::detect::bench::widened(series.unwrap_or(20) as usize, seed, &cfg)
                    );
                    return Ok(0);
                }
                if ablate {
                    println!(
                        "{}",
                        crate::detect::bench::ablate(series.unwrap_or(50) as usize, seed, &cfg)
                    );
                    return Ok(0);
                }
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
                        crate::detect::bench::accuracy(series.unwrap_or(200) as usize, seed, &cfg)
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

/// Reads one foreign log the way `investigate` does: import, epochs, validation points,
/// sign and offset. Returns the trace and the importer's warnings.
fn load_log(path: &Path, read: &LogArgs) -> Result<(crate::trace::Trace, Vec<String>), InputError> {
    let transform = read.transform(path)?;
    let imported = crate::import::read_trace(path, &read.import_options())?;
    let mut warnings = imported.warnings;
    if let Some(note) = crate::rundir::cell_note(path) {
        warnings.insert(0, note);
    }
    let mut trace = imported.trace;
    if trace.steps.is_empty() {
        return Err(InputError::new(path, "no training-loss rows found"));
    }
    if let Some(v) = &read.val {
        trace.val = crate::import::read_val_csv(v)?;
    }
    // The analysis reads log(loss): a log-likelihood or a reward becomes a loss here,
    // and its validation values with it, so the overfitting verdict reads them alike.
    transform.apply(&mut trace);
    if read.val.is_some() {
        let unplaced = crate::import::place_val_steps(&mut trace);
        if unplaced > 0 {
            warnings.push(format!(
                "{unplaced} validation points have no step and no epoch in the training log: not placed"
            ));
        }
    }
    Ok((trace, warnings))
}

/// Analyses a log, refusing one with too few usable losses to say anything.
fn analyze_log(
    path: &Path,
    trace: &crate::trace::Trace,
) -> Result<crate::attribute::TraceAnalysis, InputError> {
    let analysis =
        crate::attribute::analyze_trace(trace, &crate::attribute::AnalyzeOptions::default());
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
            path,
            format!(
                "{what}: dropscope analyses log(loss); for a log-likelihood or a reward, pass --negate / --offset"
            ),
        ));
    }
    Ok(analysis)
}

/// Several logs for `check` and `baseline save`.
fn read_logs<P: AsRef<Path>>(
    paths: &[P],
    read: &LogArgs,
) -> Result<Vec<crate::check::logs::NamedLog>, InputError> {
    paths
        .iter()
        .map(|p| {
            let (trace, warnings) = load_log(p.as_ref(), read)?;
            for w in warnings {
                eprintln!("{}: warning: {w}", p.as_ref().display());
            }
            Ok(crate::check::logs::NamedLog {
                source: p.as_ref().display().to_string(),
                trace,
            })
        })
        .collect()
}

fn investigate(args: InvestigateArgs) -> Result<i32, InputError> {
    let (trace, warnings) = load_log(&args.log, &args.read)?;
    let analysis = analyze_log(&args.log, &trace)?;
    let source = args.log.display().to_string();
    match args.format {
        OutputFormat::Json => {
            let mut doc = crate::report::trace_json(&source, &trace, &analysis);
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("warnings".into(), serde_json::json!(warnings));
            }
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        OutputFormat::Text => print_trace_text(&source, &analysis, &warnings),
    }
    if let Some(dir) = &args.report {
        let files = crate::report::write_trace_report(dir, &source, &trace, &analysis)?;
        eprintln!("report: {}", files.markdown.display());
    }
    Ok(0)
}

/// What `check` was given: a scenario to train, a run folder, or foreign logs.
enum CheckTarget {
    Scenario,
    Run,
    Logs,
}

fn check_target(args: &CheckArgs) -> CheckTarget {
    let first = Path::new(&args.targets[0]);
    if args.targets.len() > 1 || args.expect.given() {
        return CheckTarget::Logs;
    }
    if first.join("manifest.json").is_file() {
        return CheckTarget::Run;
    }
    let scenario_like = first.extension().is_some_and(|e| e == "toml")
        || (!first.exists() && scenario::BUNDLED.iter().any(|(n, _)| *n == args.targets[0]));
    if scenario_like {
        CheckTarget::Scenario
    } else {
        CheckTarget::Logs
    }
}

fn compare_options(args: &CheckArgs) -> crate::check::baseline::CompareOptions {
    crate::check::baseline::CompareOptions {
        mode: args.mode,
        rtol: args.rtol,
        max_failing_steps: args.max_failing_steps,
        alpha: args.alpha,
    }
}

/// `check LOG... --expect E.toml | --not-cause ... | --baseline BASE`.
fn check_logs(args: &CheckArgs) -> Result<crate::check::CheckReport, InputError> {
    let logs = read_logs(&args.targets, &args.read)?;
    if let Some(base) = &args.baseline {
        return crate::check::logs::compare_logs(&logs, base, &compare_options(args));
    }
    if !args.expect.given() {
        return Err(InputError::new(
            &args.targets[0],
            "nothing to check a log against: pass --expect EXPECT.toml, inline expectations \
             (--not-cause unexplained, --max-unexplained-drops 0, ...) or --baseline BASE",
        ));
    }
    let rules = args.expect.rules()?;
    let mut report = crate::check::CheckReport::new("dropscope check logs");
    for log in &logs {
        let analysis = analyze_log(Path::new(&log.source), &log.trace)?;
        crate::check::check_trace(&rules, &analysis, &log.source, &mut report);
    }
    Ok(report)
}

/// `check SCENARIO|RUN_DIR`: trains the scenario (or takes the run) and checks [expect].
fn check_run_target(
    args: &CheckArgs,
    target: CheckTarget,
) -> Result<Option<crate::check::CheckReport>, InputError> {
    let path = Path::new(&args.targets[0]);
    if let Some(base) = &args.baseline {
        if !matches!(target, CheckTarget::Run) {
            return Err(InputError::new(
                path,
                "--baseline needs a run folder (with manifest.json) or logs",
            ));
        }
        return crate::check::baseline::compare(path, base, &compare_options(args)).map(Some);
    }
    let (run_dir, file) = if matches!(target, CheckTarget::Run) {
        let m = crate::manifest::Manifest::read(path)?;
        let f = scenario::ScenarioFile::parse(Path::new(&m.scenario.path), &m.scenario.source)?;
        (path.to_path_buf(), f)
    } else {
        let f = scenario::load(&args.targets[0])?;
        let opts = RunOptions {
            out: args.out.clone(),
            device: args.device,
            shard: None,
            quiet: args.quiet,
            force: args.force,
            yes: args.yes,
            jobs: crate::harness::parallel::jobs_or_default(args.jobs),
            engine: args.engine,
        };
        let summary = crate::harness::run_scenario(&f, &opts)?;
        if summary.failed_cells() > 0 {
            eprintln!("{} cells failed to train", summary.failed_cells());
            return Ok(None);
        }
        (args.out.clone(), f)
    };
    let Some(spec) = file.scenario.expect.clone() else {
        return Err(
            InputError::new(&file.path, "the scenario has no [expect] table to check")
                .field("expect"),
        );
    };
    let (manifest, traces, done) = crate::rundir::load_checked(&run_dir)?;
    let analysis = analyze_run(&manifest, &traces);
    Ok(Some(crate::check::check_run(&spec, &analysis, &done)))
}

fn check(args: CheckArgs) -> Result<i32, InputError> {
    let report = match check_target(&args) {
        CheckTarget::Logs => check_logs(&args)?,
        t => match check_run_target(&args, t)? {
            Some(r) => r,
            None => return Ok(1),
        },
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
        jobs: crate::harness::parallel::jobs_or_default(args.jobs),
        engine: args.engine,
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
        let (manifest, traces, done) = crate::rundir::load_checked(&args.out)?;
        let mut analysis = analyze_run(&manifest, &traces);
        analysis.notes.extend(done.headline());
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

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// The log being written: a file (CSV, JSON Lines, text, trainer_state.json,
    /// TensorBoard event file) or a folder (a TensorBoard run gaining event files).
    pub log: PathBuf,
    /// One line per event (text), or one JSON object per line.
    #[arg(long, default_value = "text")]
    pub format: OutputFormat,
    /// Exit 1 at the first event of these kinds (comma-separated), so a wrapper can stop
    /// the run.
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub fail_on: Vec<FailOn>,
    /// Analyse what the log holds now, print its events (as `investigate` finds them) and
    /// exit: for cron. With --fail-on, exit 1 if any event is of those kinds.
    #[arg(long)]
    pub once: bool,
    /// Seconds between looks at the log.
    #[arg(long, default_value_t = 2.0, value_name = "SECS", value_parser = parse_interval)]
    pub interval: f64,
    #[command(flatten)]
    pub read: LogArgs,
}

/// The event kinds `watch --fail-on` stops on.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    /// NaN or infinite loss, or a sustained rise.
    Divergence,
    /// A spike episode started (several-fold, sustained).
    Spike,
    /// A sudden drop no known event explains.
    UnexplainedDrop,
    /// Validation loss turned up (investigate's overfitting rule).
    Overfitting,
}

impl FailOn {
    fn kind(self) -> crate::watch::FailKind {
        use crate::watch::FailKind;
        match self {
            FailOn::Divergence => FailKind::Divergence,
            FailOn::Spike => FailKind::Spike,
            FailOn::UnexplainedDrop => FailKind::UnexplainedDrop,
            FailOn::Overfitting => FailKind::Overfitting,
        }
    }
}

/// `--interval`: a finite number of seconds above zero.
fn parse_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!(
            "{s} is not a number of seconds between 0 and 86400"
        ))
    }
}

/// `dropscope watch`: `--once` prints the events of the analysis `investigate` makes;
/// otherwise the log is followed and each event printed as the watcher confirms it.
fn watch(args: WatchArgs) -> Result<i32, InputError> {
    if args.once {
        let (trace, warnings) = load_log(&args.log, &args.read)?;
        for w in warnings {
            eprintln!("{}: warning: {w}", args.log.display());
        }
        let analysis = analyze_log(&args.log, &trace)?;
        let alerts = crate::watch::once::alerts(&trace, &analysis);
        let mut failed = false;
        for a in &alerts {
            failed |= print_alert(a, &args);
        }
        return Ok(i32::from(failed));
    }
    watch_follow(&args)
}

/// Prints one alert; true when `--fail-on` names its kind.
fn print_alert(a: &crate::watch::Alert, args: &WatchArgs) -> bool {
    match args.format {
        OutputFormat::Json => println!("{}", crate::watch::text::json_line(a)),
        OutputFormat::Text => println!("{}", crate::watch::text::line(a)),
    }
    a.fail_kind()
        .is_some_and(|k| args.fail_on.iter().any(|f| f.kind() == k))
}

fn watch_notice(message: &str, args: &WatchArgs) {
    let json = args.format == OutputFormat::Json;
    println!("{}", crate::watch::text::notice(message, json));
}

/// Follows the log until `--fail-on` fires (exit 1) or the process is stopped.
fn watch_follow(args: &WatchArgs) -> Result<i32, InputError> {
    use crate::watch::follow::{Follower, Update, ValFollower};
    let read = &args.read;
    let transform = read.transform(&args.log)?;
    let mut follower = Follower::new(&args.log, read.import_options(), transform.clone());
    let mut val = read
        .val
        .as_ref()
        .map(|p| ValFollower::new(p, transform.clone()));
    let mut session = WatchSession {
        args,
        watcher: crate::watch::Watcher::default(),
        last_step: 0,
    };
    let (mut said_waiting, mut said_following) = (false, false);
    loop {
        let updates = follower.poll()?;
        match follower.describe() {
            Some(how) if !said_following => {
                said_following = true;
                watch_notice(&how, args);
            }
            None if !said_waiting => {
                said_waiting = true;
                eprintln!("waiting for {} to hold a log", args.log.display());
            }
            _ => {}
        }
        for update in updates {
            let failed = match update {
                Update::Restart { reason } => session.restart(&reason),
                Update::Data(t) => session.feed(&t),
            };
            if failed {
                return Ok(1);
            }
        }
        for v in val
            .as_mut()
            .map(|f| f.poll())
            .transpose()?
            .unwrap_or_default()
        {
            if session.val(&v) {
                return Ok(1);
            }
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(args.interval));
    }
}

/// The import flags of a foreign log, as `investigate` reads them.
/// A watcher fed from the log, printing what it confirms. Each method returns true when
/// `--fail-on` names an event it printed.
struct WatchSession<'a> {
    args: &'a WatchArgs,
    watcher: crate::watch::Watcher,
    last_step: u64,
}

impl WatchSession<'_> {
    fn restart(&mut self, reason: &str) -> bool {
        self.watcher = crate::watch::Watcher::default();
        watch_notice(&format!("{reason}: starting over"), self.args);
        false
    }

    fn feed(&mut self, t: &crate::trace::Trace) -> bool {
        use crate::watch::follow::{Point, in_order};
        for p in in_order(t) {
            let alerts = match p {
                Point::Train(s) => {
                    self.last_step = s.step;
                    self.watcher.push(s.step, s.loss, s.lr, s.epoch)
                }
                Point::Val(v) => self.watcher.push_val_record(v),
            };
            if alerts.iter().any(|a| print_alert(a, self.args)) {
                return true;
            }
        }
        false
    }

    /// A point of the `--val` file; without a step it is placed at the last training step.
    fn val(&mut self, v: &crate::trace::ValRecord) -> bool {
        let step = if v.step == crate::import::UNKNOWN_STEP {
            self.last_step
        } else {
            v.step
        };
        let alerts = self
            .watcher
            .push_val_record(&crate::trace::ValRecord { step, ..*v });
        alerts.iter().any(|a| print_alert(a, self.args))
    }
}
