//! `dropscope bench overfit`: the overfitting verdict's false-positive rate on runs that
//! cannot overfit, and its detection rate on a control that does.
//!
//! Both are small scenarios built here from the scenario types, identical but for one
//! setting: the null draws a fresh training set every epoch (`data.fresh_each_epoch`: no
//! example is seen twice, so nothing can be memorized, and with label noise the validation
//! loss ends on a noisy plateau, the hard case for a false rise); the control trains on the
//! same fixed 480 examples every epoch and memorizes their flipped labels. Each is trained
//! by the harness (`run --jobs`'s worker processes) into a run folder, read back and
//! analysed by [`crate::attribute::analyze_run`], the function `run` and `report` use, so
//! each cell's verdict is the one its report shows.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::{DeviceChoice, RunOptions, run_scenario};
use crate::attribute::stats::{Interval, clopper_pearson};
use crate::attribute::{AnalyzeOptions, OverfitVerdict, TrendTest, analyze_run};
use crate::error::InputError;
use crate::manifest::CellStatus;
use crate::scenario::{
    DataSource, DataSpec, LrSpec, ModelSpec, OptimizerKind, OptimizerSpec, Scenario, ScenarioFile,
    TrainSpec,
};

/// The false-positive rate the verdict is held to.
pub const TARGET_RATE: f64 = 0.05;
/// Seeds a rate needs before it counts as a measurement of the target.
pub const MIN_SEEDS: usize = 100;
/// Examples before the validation split (480 train, 120 validation).
const SAMPLES: usize = 600;

#[derive(Debug, Clone)]
pub struct OverfitBenchOptions {
    /// Cells of the null (fresh data), seeds `seed`, `seed + 1`, ...
    pub seeds: usize,
    pub seed: u64,
    /// Cells of the control (fixed data), the first `controls` of the same seeds; 0: none.
    pub controls: usize,
    pub epochs: u64,
    pub lr: f64,
    pub device: DeviceChoice,
    pub jobs: usize,
    /// Keep the two run folders here; None: a temporary folder, removed afterwards.
    pub out: Option<PathBuf>,
    pub quiet: bool,
}

/// The verdicts of one scenario's cells.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictCounts {
    pub scenario: String,
    pub fresh_each_epoch: bool,
    pub seeds: Vec<u64>,
    /// Cells analysed (completed or diverged).
    pub analysed: usize,
    pub failed: usize,
    pub overfitting: usize,
    pub not_overfitting: usize,
    pub plateau: usize,
    pub unknown: usize,
    /// Share of analysed cells called `overfitting`, with its 95% Clopper-Pearson interval.
    pub rate: Interval,
    /// The seeds called `overfitting`.
    pub overfitting_seeds: Vec<u64>,
    /// The seeds whose validation loss rose after its best (the rise test passed) but whose
    /// train/validation gap did not widen: not called overfitting, counted under `plateau`.
    pub gap_overruled_seeds: Vec<u64>,
    /// Training and analysis, seconds.
    pub wall_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverfitBench {
    pub device: String,
    pub epochs: u64,
    pub lr: f64,
    pub jobs: usize,
    /// Runs that cannot overfit: every `overfitting` verdict is a false positive.
    pub fresh: VerdictCounts,
    /// Runs that do overfit: the share called `overfitting` is the verdict's power.
    pub control: Option<VerdictCounts>,
    pub wall_s: f64,
}

/// The benchmark's scenario: clusters data with label noise 0.15, an MLP with one hidden
/// layer of 64, SGD with momentum; `fresh` draws a new training set every epoch.
pub fn scenario(fresh: bool, seeds: Vec<u64>, epochs: u64, lr: f64) -> Scenario {
    let (name, description) = if fresh {
        (
            "bench-overfit-fresh",
            "bench overfit: a fresh training set every epoch, so nothing can be memorized (every overfitting verdict is false)",
        )
    } else {
        (
            "bench-overfit-fixed",
            "bench overfit, the control: the same 480 examples every epoch, their flipped labels memorized",
        )
    };
    Scenario {
        name: name.into(),
        description: description.into(),
        seeds,
        data: DataSpec {
            source: DataSource::Clusters,
            samples: SAMPLES,
            features: 16,
            classes: 5,
            separation: 2.0,
            label_noise: 0.15,
            validation_fraction: 0.2,
            fresh_each_epoch: fresh,
            ..DataSpec::default()
        },
        model: ModelSpec {
            hidden: vec![64],
            ..ModelSpec::default()
        },
        train: TrainSpec {
            epochs,
            batch_size: 32,
            optimizer: OptimizerSpec {
                kind: OptimizerKind::Sgd,
                momentum: 0.9,
                ..OptimizerSpec::default()
            },
            lr: LrSpec {
                base: lr,
                ..LrSpec::default()
            },
            ..TrainSpec::default()
        },
        vary: Vec::new(),
        expect: None,
    }
}

/// The scenario as a parsed, validated file: its TOML text travels in the run's manifest,
/// where the worker processes read it.
pub fn scenario_file(s: &Scenario) -> Result<ScenarioFile, InputError> {
    let path = PathBuf::from(format!("{}.toml", s.name));
    let source = toml::to_string(s)
        .map_err(|e| InputError::new(&path, format!("cannot write the scenario: {e}")))?;
    ScenarioFile::parse(&path, &source)
}

/// Removes the temporary folder on every way out.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Trains and analyses both scenarios.
pub fn run(opts: &OverfitBenchOptions) -> Result<OverfitBench, InputError> {
    let started = Instant::now();
    let flag = |f: &str, m: &str| InputError::new("dropscope bench overfit", m).field(f);
    if opts.seeds == 0 {
        return Err(flag("--seeds", "need at least one seed"));
    }
    let last = opts
        .seed
        .checked_add(opts.seeds.max(opts.controls) as u64 - 1)
        .ok_or_else(|| flag("--seed", "the seeds run past 2^64 - 1"))?;
    let seeds: Vec<u64> = (opts.seed..=last).take(opts.seeds).collect();
    let control_seeds: Vec<u64> = (opts.seed..=last).take(opts.controls).collect();
    let fresh = scenario_file(&scenario(true, seeds, opts.epochs, opts.lr))?;
    let fixed = (opts.controls > 0)
        .then(|| scenario_file(&scenario(false, control_seeds, opts.epochs, opts.lr)))
        .transpose()?;
    let (dir, _cleanup) = match &opts.out {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!(
                "dropscope-bench-overfit-{}-{}",
                std::process::id(),
                started.elapsed().as_nanos()
            ));
            (d.clone(), Some(TempDir(d)))
        }
    };
    let fresh = verdicts(&fresh, &dir.join("fresh-data"), opts)?;
    let control = fixed
        .map(|f| verdicts(&f, &dir.join("fixed-data"), opts))
        .transpose()?;
    Ok(OverfitBench {
        device: opts.device.resolve().to_string(),
        epochs: opts.epochs,
        lr: opts.lr,
        jobs: opts.jobs,
        fresh,
        control,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// Trains one scenario into `out` and counts its cells' overfitting verdicts.
fn verdicts(
    file: &ScenarioFile,
    out: &Path,
    opts: &OverfitBenchOptions,
) -> Result<VerdictCounts, InputError> {
    let started = Instant::now();
    let run_opts = RunOptions {
        out: out.to_path_buf(),
        device: opts.device,
        shard: None,
        quiet: opts.quiet,
        force: true,
        yes: true,
        jobs: opts.jobs,
        engine: crate::harness::Engine::Cell,
    };
    run_scenario(file, &run_opts)?;
    let (manifest, traces) = crate::rundir::load(out)?;
    let analysis = analyze_run(&manifest, &traces, &AnalyzeOptions::default());
    let mut c = VerdictCounts {
        scenario: file.scenario.name.clone(),
        fresh_each_epoch: file.scenario.data.fresh_each_epoch,
        seeds: file.scenario.seeds.clone(),
        analysed: 0,
        failed: manifest
            .cells
            .iter()
            .filter(|c| c.status == CellStatus::Failed)
            .count(),
        overfitting: 0,
        not_overfitting: 0,
        plateau: 0,
        unknown: 0,
        rate: Interval::point(f64::NAN),
        overfitting_seeds: Vec::new(),
        gap_overruled_seeds: Vec::new(),
        wall_s: 0.0,
    };
    for cell in analysis.arms.iter().flat_map(|a| &a.cells) {
        c.analysed += 1;
        match cell.analysis.overfitting.verdict {
            OverfitVerdict::Overfitting => {
                c.overfitting += 1;
                c.overfitting_seeds.push(cell.seed);
            }
            OverfitVerdict::NotOverfitting => c.not_overfitting += 1,
            OverfitVerdict::Plateau => {
                c.plateau += 1;
                let o = &cell.analysis.overfitting;
                if o.window.as_ref().is_some_and(|w| {
                    w.test == TrendTest::RiseAfterBest
                        && w.gap_trend.as_ref().is_some_and(|g| !g.widened)
                }) {
                    c.gap_overruled_seeds.push(cell.seed);
                }
            }
            OverfitVerdict::Unknown => c.unknown += 1,
        }
    }
    c.rate = clopper_pearson(c.overfitting, c.analysed, 0.95);
    c.wall_s = started.elapsed().as_secs_f64();
    Ok(c)
}

fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", 100.0 * x)
    } else {
        "-".into()
    }
}

fn rate_text(r: &Interval) -> String {
    format!(
        "{} [{}, {}]",
        percent(r.estimate),
        percent(r.low),
        percent(r.high)
    )
}

fn seed_range(seeds: &[u64]) -> String {
    match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) if a == b => format!("seed {a}"),
        (Some(a), Some(b)) => format!("seeds {a}-{b}"),
        _ => "no seeds".into(),
    }
}

/// The benchmark as a Markdown table and its verdict against the target.
pub fn table(b: &OverfitBench) -> String {
    let mut out = format!(
        "overfitting verdicts: clusters data ({SAMPLES} examples, 16 features, 5 classes, separation 2, label noise 0.15, 20% validation), MLP [64], SGD lr {} momentum 0.9, batch 32, {} epochs; device {}, --jobs {}\n\n",
        b.lr, b.epochs, b.device, b.jobs
    );
    out.push_str(
        "| training data | seeds | cells analysed | overfitting | rate [95% CI] | not overfitting | plateau | unknown | failed | wall s |\n\
         |---|---|---:|---:|---|---:|---:|---:|---:|---:|\n",
    );
    let row = |label: &str, c: &VerdictCounts| {
        format!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |\n",
            seed_range(&c.seeds),
            c.analysed,
            c.overfitting,
            rate_text(&c.rate),
            c.not_overfitting,
            c.plateau,
            c.unknown,
            c.failed,
            c.wall_s
        )
    };
    out.push_str(&row("fresh every epoch (cannot overfit)", &b.fresh));
    if let Some(c) = &b.control {
        out.push_str(&row(
            &format!(
                "fixed {} examples (control)",
                crate::scenario::train_size(SAMPLES, 0.2)
            ),
            c,
        ));
    }
    out.push('\n');
    let f = &b.fresh;
    let met = if f.analysed < MIN_SEEDS {
        format!("not measured: fewer than {MIN_SEEDS} cells")
    } else if f.rate.estimate <= TARGET_RATE {
        "met".into()
    } else {
        "NOT met".into()
    };
    out.push_str(&format!(
        "false-positive rate: {} of {} runs that cannot overfit called overfitting = {} (95% Clopper-Pearson interval {} to {}); target at most {}: {met}\n",
        f.overfitting,
        f.analysed,
        percent(f.rate.estimate),
        percent(f.rate.low),
        percent(f.rate.high),
        percent(TARGET_RATE),
    ));
    if !f.overfitting_seeds.is_empty() {
        out.push_str(&format!(
            "called overfitting on fresh data: seeds {}\n",
            seed_list(&f.overfitting_seeds)
        ));
    }
    let overruled = |label: &str, c: &VerdictCounts| {
        if c.gap_overruled_seeds.is_empty() {
            String::new()
        } else {
            format!(
                "validation loss rose but the train/validation gap did not widen (plateau, not overfitting) on {label}: seeds {}\n",
                seed_list(&c.gap_overruled_seeds)
            )
        }
    };
    out.push_str(&overruled("fresh data", f));
    if let Some(c) = &b.control {
        out.push_str(&overruled("the control", c));
        out.push_str(&format!(
            "detection rate on the control: {} of {} = {} (95% Clopper-Pearson interval {} to {})\n",
            c.overfitting,
            c.analysed,
            percent(c.rate.estimate),
            percent(c.rate.low),
            percent(c.rate.high),
        ));
    }
    out.push_str(&format!("wall time: {:.1} s\n", b.wall_s));
    out
}

/// Seeds as "1, 2, 3".
fn seed_list(seeds: &[u64]) -> String {
    seeds
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_scenarios_differ_only_in_fresh_data_and_parse_back() {
        let fresh = scenario_file(&scenario(true, vec![1, 2], 25, 0.05)).unwrap();
        let fixed = scenario_file(&scenario(false, vec![1, 2], 25, 0.05)).unwrap();
        assert_eq!(fresh.scenario.seeds, [1, 2]);
        assert_eq!(fresh.arms.len(), 1);
        assert!(fresh.scenario.data.fresh_each_epoch && !fixed.scenario.data.fresh_each_epoch);
        let mut same = fixed.scenario.clone();
        same.data.fresh_each_epoch = true;
        same.name = fresh.scenario.name.clone();
        same.description = fresh.scenario.description.clone();
        assert_eq!(same, fresh.scenario);
        // What a worker reads back from the manifest is the same scenario.
        let again = ScenarioFile::parse(&fresh.path, &fresh.source).unwrap();
        assert_eq!(again.scenario, fresh.scenario);
    }

    #[test]
    fn the_table_counts_every_verdict_and_judges_the_target() {
        let counts = |n: usize, over: usize| VerdictCounts {
            scenario: "s".into(),
            fresh_each_epoch: true,
            seeds: (1..=n as u64).collect(),
            analysed: n,
            failed: 0,
            overfitting: over,
            not_overfitting: 1,
            plateau: n - over - 1,
            unknown: 0,
            rate: clopper_pearson(over, n, 0.95),
            overfitting_seeds: (1..=over as u64).collect(),
            gap_overruled_seeds: vec![7, 9],
            wall_s: 1.0,
        };
        let b = OverfitBench {
            device: "flex".into(),
            epochs: 25,
            lr: 0.05,
            jobs: 2,
            fresh: counts(100, 3),
            control: Some(counts(20, 19)),
            wall_s: 2.0,
        };
        let t = table(&b);
        assert!(
            t.contains("| fresh every epoch (cannot overfit) | seeds 1-100 | 100 | 3 | 3.0% ["),
            "{t}"
        );
        assert!(
            t.contains("| fixed 480 examples (control) | seeds 1-20 | 20 | 19 | 95.0% ["),
            "{t}"
        );
        assert!(t.contains("target at most 5.0%: met"), "{t}");
        assert!(t.contains("seeds 1, 2, 3\n"), "{t}");
        assert!(
            t.contains("gap did not widen (plateau, not overfitting) on fresh data: seeds 7, 9\n"),
            "{t}"
        );
        let few = OverfitBench {
            fresh: counts(10, 0),
            control: None,
            ..b
        };
        let t = table(&few);
        assert!(t.contains("not measured: fewer than 100 cells"), "{t}");
        assert!(!t.contains("control"), "{t}");
    }
}
