//! The harness: trains a scenario's cells with burn and writes their traces.
//!
//! The only module that knows burn. It writes the run folder:
//! `manifest.json` and `<arm>/seed-<n>/{trace.csv,val.csv}` per cell.

pub mod bench;
pub mod budget;
pub mod data;
pub mod device;
pub mod model;
pub mod overfit_bench;
pub mod parallel;
pub mod schedule;
pub mod stacked;
pub mod train;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub use device::DeviceChoice;
pub use stacked::Engine;

use crate::error::InputError;
use crate::manifest::{
    ArmInfo, CellInfo, CellStatus, MANIFEST_SCHEMA_VERSION, Manifest, ScenarioInfo,
};
use crate::scenario::{Cell, DataSource, ScenarioFile, train_size};

/// Which cells of a scenario this process runs: shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// A stable assignment: the k-th cell in scenario order (arms × seeds) goes to shard
    /// k mod N, so every shard of a sweep agrees without talking to the others.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("'{s}' is not I/N (e.g. 0/4)"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("'{i}' is not a number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("'{n}' is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: need 0 <= I < N"));
        }
        Ok(Shard { index, count })
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out: PathBuf,
    pub device: DeviceChoice,
    pub shard: Option<Shard>,
    pub quiet: bool,
    /// Replace another scenario's run in `out` (only the files dropscope wrote there).
    pub force: bool,
    /// Run even beyond `budget::WORK_WITHOUT_ASKING` cell-steps.
    pub yes: bool,
    /// Cells trained at once (`--jobs`): 1 trains them one after another in this process;
    /// more start that many worker processes of the running executable (which must be the
    /// `dropscope` binary: see [`parallel`]), capped by the cells and the memory.
    pub jobs: usize,
    /// How cells train: alone ([`Engine::Cell`]), in stacks of one shape
    /// ([`Engine::Stacked`]), or stacked where that is supported and faster ([`Engine::Auto`]).
    pub engine: Engine,
}

/// The outcome of a scenario run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub manifest: Manifest,
    pub out: PathBuf,
}

impl RunSummary {
    pub fn failed_cells(&self) -> usize {
        self.manifest
            .cells
            .iter()
            .filter(|c| c.status == CellStatus::Failed)
            .count()
    }
}

fn expected_train_len(file: &ScenarioFile, arm: usize) -> usize {
    let d = &file.arms[arm].config.data;
    match d.source {
        DataSource::Clusters => train_size(d.samples, d.validation_fraction),
        DataSource::Digits => train_size(d.samples.min(1797), d.validation_fraction),
        DataSource::Csv => d
            .path
            .as_deref()
            .and_then(|p| data::read_csv(p, &d.label_column).ok())
            .map(|ds| train_size(ds.len(), d.validation_fraction))
            .unwrap_or(0),
    }
}

/// Redraws of the progress bar per second: enough to look alive, few enough that a log
/// captured from stderr is not one line per step.
pub(crate) const PROGRESS_HZ: u8 = 2;

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    if !quiet {
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps ({rate}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            // indicatif's {per_sec} prints four decimals ("5723.4512/s"): whole steps say it.
            .with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} steps/s", s.per_sec());
                },
            ),
        );
    }
    pb
}

fn json_value(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

pub fn burn_version() -> &'static str {
    env!("DROPSCOPE_BURN_VERSION")
}

/// Trains every cell (of the shard) and writes the run folder.
///
/// A cell that panics inside burn is recorded as failed and the run goes on; a cell that
/// diverges is a result. Errors are returned only for bad input or an unwritable folder.
pub fn run_scenario(file: &ScenarioFile, opts: &RunOptions) -> Result<RunSummary, InputError> {
    let started = Instant::now();
    let cost = budget::estimate(file, |arm| expected_train_len(file, arm));
    budget::admit(file, &cost, budget::available_bytes(), opts.yes)?;
    if opts.engine == Engine::Stacked
        && let Some((arm, why)) = file
            .arms
            .iter()
            .find_map(|a| stacked::unsupported(&a.config).map(|w| (&a.name, w)))
    {
        return Err(InputError::new(
            &file.path,
            format!(
                "--engine stacked cannot train arm '{arm}': {why} (use --engine cell, or auto \
                 to train such cells one at a time)"
            ),
        ));
    }
    let device_name = opts.device.resolve().to_string();
    let prepared = crate::rundir::prepare_out(
        &opts.out,
        &crate::rundir::RunIdentity {
            name: &file.scenario.name,
            source: &file.source,
            device: &device_name,
            shard: opts.shard.map(|s| [s.index, s.count]),
        },
        opts.force,
    )?;
    let (scenario_index, cells): (Vec<usize>, Vec<Cell>) = file
        .cells()
        .into_iter()
        .enumerate()
        .filter(|(k, _)| opts.shard.is_none_or(|s| s.owns(*k)))
        .unzip();
    let s = &file.scenario;
    let mut manifest = Manifest {
        schema_version: MANIFEST_SCHEMA_VERSION,
        dropscope_version: env!("CARGO_PKG_VERSION").into(),
        burn_version: burn_version().into(),
        scenario: ScenarioInfo {
            name: s.name.clone(),
            description: s.description.clone(),
            path: file.path.display().to_string(),
            source: file.source.clone(),
        },
        device: device_name,
        adapter: None,
        seeds: s.seeds.clone(),
        factors: s.vary.iter().map(|v| v.path.clone()).collect(),
        arms: file
            .arms
            .iter()
            .map(|a| ArmInfo {
                name: a.name.clone(),
                factors: a
                    .factors
                    .iter()
                    .map(|(k, v)| (k.clone(), json_value(v)))
                    .collect::<BTreeMap<_, _>>(),
                is_control: a.is_control,
            })
            .collect(),
        cells: cells
            .iter()
            .map(|c| CellInfo {
                arm: c.arm.clone(),
                seed: c.seed,
                dir: c.rel_dir().display().to_string(),
                status: CellStatus::Pending,
                steps: 0,
                epochs: 0,
                planned_steps: train::planned_steps(
                    &file.arms[c.arm_index].config,
                    expected_train_len(file, c.arm_index),
                ),
                diverged_at_step: None,
                wall_s: 0.0,
                error: None,
            })
            .collect(),
        shard: opts.shard.map(|s| [s.index, s.count]),
        missing_cells: Vec::new(),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        wall_s: 0.0,
    };
    let kept = keep_finished(&mut manifest, prepared.resume.as_ref(), &opts.out);
    if kept > 0 && !opts.quiet {
        eprintln!(
            "resuming the unfinished run in {}: {kept} of {} cells already complete (--force starts over)",
            opts.out.display(),
            cells.len()
        );
    }
    manifest.write(&opts.out)?;

    let total: u64 = cells
        .iter()
        .map(|c| {
            let arm = &file.arms[c.arm_index];
            train::planned_steps(&arm.config, expected_train_len(file, c.arm_index))
        })
        .sum();
    let pb = progress_bar(total, opts.quiet);
    let base = opts.device.device();
    let adapter = opts.device.adapter(&base);
    if let Some(w) = adapter.warning() {
        eprintln!("warning: {w}");
    }
    manifest.adapter = Some(adapter);
    manifest.write(&opts.out)?;
    let stacks = plan_stacks(file, opts, &cells, &manifest);
    if !stacks.is_empty() {
        run_stacks(
            file,
            opts,
            &cells,
            &stacks,
            &base,
            &mut manifest,
            &pb,
            started,
        )?;
    }
    let pending = manifest
        .cells
        .iter()
        .filter(|c| c.status == CellStatus::Pending)
        .count();
    if pending == 0 {
        pb.finish_and_clear();
        manifest.wall_s = started.elapsed().as_secs_f64();
        manifest.write(&opts.out)?;
        drop(prepared.lock);
        return Ok(RunSummary {
            manifest,
            out: opts.out.clone(),
        });
    }
    let jobs = parallel::effective_jobs(
        opts.jobs,
        pending,
        cost.peak_bytes,
        budget::available_bytes(),
    );
    if jobs < opts.jobs.min(pending) && !opts.quiet {
        eprintln!(
            "running {jobs} cells at once, not {}: each needs about {} MiB and memory is short",
            opts.jobs.min(pending),
            (cost.peak_bytes + parallel::WORKER_BASE_BYTES) >> 20
        );
    }
    if jobs > 1 {
        let batch = parallel::Batch {
            opts,
            cells: &cells,
            scenario_index: &scenario_index,
            jobs,
            started,
        };
        let outcome = parallel::run_cells(&batch, &mut manifest, &pb);
        pb.finish_and_clear();
        manifest.wall_s = started.elapsed().as_secs_f64();
        manifest.write(&opts.out)?;
        if let Some(e) = outcome? {
            return Err(e);
        }
    } else {
        run_sequential(file, opts, &cells, &base, &mut manifest, &pb, started)?;
    }
    drop(prepared.lock);
    Ok(RunSummary {
        manifest,
        out: opts.out.clone(),
    })
}

/// The stacks to train: groups of pending cells (indices into `cells`) of one
/// [`stacked::StackKey`]. `cell` stacks nothing; `stacked` everything (support was checked
/// before the run began); `auto` the groups, on a CPU device, whose steps are small enough
/// for stacking to pay ([`stacked::AUTO_MAX_WORK`]) and that hold at least twice as many
/// cells as `--jobs` runs at once (otherwise parallel cells are as fast: 16 cells at
/// (32, 64) stacked ran 1.8× one cell at a time, as two parallel cells do on 2 cores).
fn plan_stacks(
    file: &ScenarioFile,
    opts: &RunOptions,
    cells: &[Cell],
    manifest: &Manifest,
) -> Vec<Vec<usize>> {
    let auto = match opts.engine {
        Engine::Cell => return Vec::new(),
        Engine::Auto if !opts.device.is_cpu() => return Vec::new(),
        Engine::Auto => true,
        Engine::Stacked => false,
    };
    let mut groups: BTreeMap<stacked::StackKey, Vec<usize>> = BTreeMap::new();
    for (i, c) in cells.iter().enumerate() {
        let arm = &file.arms[c.arm_index].config;
        if manifest.cells[i].status != CellStatus::Pending || stacked::unsupported(arm).is_some() {
            continue;
        }
        let key = stacked::key(arm, expected_train_len(file, c.arm_index));
        groups.entry(key).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = groups
        .into_iter()
        .filter(|(key, g)| !auto || stacked::auto_stacks(key, g.len(), opts.jobs))
        .map(|(_, g)| g)
        .collect();
    out.sort();
    out
}

/// Trains each stack in this process, keeping the manifest as [`run_sequential`] does.
#[allow(clippy::too_many_arguments)]
fn run_stacks(
    file: &ScenarioFile,
    opts: &RunOptions,
    cells: &[Cell],
    stacks: &[Vec<usize>],
    base: &burn::tensor::Device,
    manifest: &mut Manifest,
    pb: &ProgressBar,
    started: Instant,
) -> Result<(), InputError> {
    for group in stacks {
        let members: Vec<stacked::Member<'_>> = group
            .iter()
            .map(|&i| stacked::Member {
                scenario: &file.arms[cells[i].arm_index].config,
                seed: cells[i].seed,
                dir: opts.out.join(cells[i].rel_dir()),
            })
            .collect();
        for &i in group {
            manifest.cells[i].status = CellStatus::Running;
        }
        manifest.write(&opts.out)?;
        pb.set_message(format!("a stack of {} cells", group.len()));
        let mut write_error = None;
        let mut on = |e: stacked::StackEvent| match e {
            stacked::StackEvent::Steps(n) => {
                pb.inc(n);
                if !opts.quiet && pb.is_hidden() && started.elapsed() > Duration::from_secs(1) {
                    pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(PROGRESS_HZ));
                }
            }
            stacked::StackEvent::Epoch {
                member,
                steps,
                epochs,
            } => {
                let info = &mut manifest.cells[group[member]];
                info.steps = steps;
                info.epochs = epochs;
                manifest.wall_s = started.elapsed().as_secs_f64();
                if let Err(e) = manifest.write(&opts.out) {
                    write_error.get_or_insert(e);
                }
            }
            stacked::StackEvent::Done { member, outcome } => {
                let info = &mut manifest.cells[group[member]];
                info.status = outcome.status;
                info.steps = outcome.steps;
                info.epochs = outcome.epochs;
                info.diverged_at_step = outcome.diverged_at_step;
                info.wall_s = outcome.wall_s;
                manifest.wall_s = started.elapsed().as_secs_f64();
                if let Err(e) = manifest.write(&opts.out) {
                    write_error.get_or_insert(e);
                }
            }
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            stacked::train_stack(&members, &file.path, base, &mut on)
        }));
        if let Some(e) = write_error {
            pb.finish_and_clear();
            return Err(e);
        }
        let unfinished: Vec<usize> = group
            .iter()
            .copied()
            .filter(|&i| manifest.cells[i].status == CellStatus::Running)
            .collect();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                for &i in &unfinished {
                    manifest.cells[i].status = CellStatus::Failed;
                    manifest.cells[i].error = Some(e.to_string());
                }
                manifest.wall_s = started.elapsed().as_secs_f64();
                manifest.write(&opts.out)?;
                pb.finish_and_clear();
                return Err(e);
            }
            Err(panic) => {
                let msg = parallel::panic_message(panic.as_ref());
                for &i in &unfinished {
                    let c = &mut manifest.cells[i];
                    c.status = CellStatus::Failed;
                    c.error = Some(format!("{} on {} (stacked): {msg}", c.arm, opts.device));
                }
            }
        }
        manifest.wall_s = started.elapsed().as_secs_f64();
        manifest.write(&opts.out)?;
    }
    Ok(())
}

/// `--jobs 1`: the cells one after another in this process.
fn run_sequential(
    file: &ScenarioFile,
    opts: &RunOptions,
    cells: &[Cell],
    base: &burn::tensor::Device,
    manifest: &mut Manifest,
    pb: &ProgressBar,
    started: Instant,
) -> Result<(), InputError> {
    let n = cells.len();
    let mut done = manifest
        .cells
        .iter()
        .filter(|c| c.status != CellStatus::Pending)
        .count();
    for (i, cell) in cells.iter().enumerate() {
        if manifest.cells[i].status != CellStatus::Pending {
            pb.inc(manifest.cells[i].steps);
            continue;
        }
        manifest.cells[i].status = CellStatus::Running;
        manifest.write(&opts.out)?;
        pb.set_message(format!(
            "{} seed {} ({done}/{n} cells done, 1 running)",
            cell.arm, cell.seed
        ));
        let dir = opts.out.join(cell.rel_dir());
        let arm = &file.arms[cell.arm_index];
        let mut write_error = None;
        let mut on_step = |p: train::Progress| match p {
            train::Progress::Step => {
                pb.inc(1);
                // Only runs that last draw a bar: short ones stay quiet in logs.
                if !opts.quiet && pb.is_hidden() && started.elapsed() > Duration::from_secs(1) {
                    pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(PROGRESS_HZ));
                }
            }
            train::Progress::EpochTrained => {}
            // The manifest follows the disk epoch by epoch, so a killed run says how far
            // each cell got.
            train::Progress::Epoch { steps, epochs } => {
                manifest.cells[i].steps = steps;
                manifest.cells[i].epochs = epochs;
                manifest.wall_s = started.elapsed().as_secs_f64();
                if let Err(e) = manifest.write(&opts.out) {
                    write_error.get_or_insert(e);
                }
            }
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            train::train_cell(&arm.config, cell.seed, &file.path, base, &dir, &mut on_step)
        }));
        if let Some(e) = write_error {
            pb.finish_and_clear();
            return Err(e);
        }
        done += 1;
        let info = &mut manifest.cells[i];
        match outcome {
            Ok(Ok(o)) => {
                info.status = o.status;
                info.steps = o.steps;
                info.epochs = o.epochs;
                info.diverged_at_step = o.diverged_at_step;
                info.wall_s = o.wall_s;
            }
            Ok(Err(e)) => {
                info.status = CellStatus::Failed;
                info.error = Some(e.to_string());
                manifest.wall_s = started.elapsed().as_secs_f64();
                manifest.write(&opts.out)?;
                pb.finish_and_clear();
                return Err(e);
            }
            Err(panic) => {
                let msg = parallel::panic_message(panic.as_ref());
                info.status = CellStatus::Failed;
                info.error = Some(format!("{} on {}: {msg}", cell.arm, opts.device));
            }
        }
        manifest.wall_s = started.elapsed().as_secs_f64();
        manifest.write(&opts.out)?;
    }
    pb.finish_and_clear();
    Ok(())
}

/// Takes over the cells of an unfinished earlier run that finished and are whole on
/// disk; returns how many.
fn keep_finished(manifest: &mut Manifest, old: Option<&Manifest>, out: &Path) -> usize {
    let Some(old) = old else { return 0 };
    let mut kept = 0;
    for c in manifest.cells.iter_mut() {
        let prev = old
            .cells
            .iter()
            .find(|p| p.arm == c.arm && p.seed == c.seed);
        if let Some(p) = prev.filter(|p| crate::rundir::finished_on_disk(out, old, p)) {
            *c = p.clone();
            kept += 1;
        }
    }
    kept
}

/// The folder of one cell in a run folder.
pub fn cell_dir(run: &Path, cell: &CellInfo) -> PathBuf {
    run.join(&cell.dir)
}
