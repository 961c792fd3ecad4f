//! Baselines: a saved run to compare later runs with, in three modes.
//!
//! A baseline folder is a copy of the run folder (manifest and every cell's
//! `trace.csv`/`val.csv`) plus `baseline.json`, the per-seed summary the
//! statistical mode compares (final loss, steps to a threshold, drop effects).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{BaselineMode, CheckReport, push_completeness};
use crate::attribute::{AnalyzeOptions, analyze_trace};
use crate::error::InputError;
use crate::events::EventKind;
use crate::fsio;
use crate::manifest::Manifest;
use crate::rundir::{self, Traces};
use crate::trace::Trace;

pub const BASELINE_SCHEMA_VERSION: u32 = 1;

/// What one cell of the baseline achieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    /// Mean loss over the last 5% of steps; None when none of them is finite (diverged).
    pub final_loss: Option<f64>,
    /// First step at which the smoothed loss reaches the arm's threshold (None: never).
    pub steps_to_threshold: Option<u64>,
    pub steps: u64,
    /// Median jump (log-loss) at each event type.
    pub effects: BTreeMap<EventKind, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmSummary {
    /// The smoothed loss the baseline reaches half-way through training (median over seeds):
    /// reaching it later means converging more slowly. None when no seed had a finite
    /// smoothed loss there (every seed diverged before half-way).
    pub threshold: Option<f64>,
    pub seeds: BTreeMap<u64, CellSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub schema_version: u32,
    pub scenario: String,
    pub device: String,
    pub dropscope_version: String,
    pub arms: BTreeMap<String, ArmSummary>,
    /// A baseline of foreign logs (`baseline save LOG... BASE`): their sources, in order;
    /// their summaries are arm `log`, seeds 0, 1, ... Empty for a baseline of a run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
}

/// Options of a baseline comparison.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub mode: BaselineMode,
    /// Tolerance mode: allowed relative difference per step.
    pub rtol: f64,
    /// Tolerance mode: steps allowed outside the tolerance per cell.
    pub max_failing_steps: usize,
    /// Statistical mode: significance level of each test.
    pub alpha: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            mode: BaselineMode::Statistical,
            rtol: 0.05,
            max_failing_steps: 0,
            alpha: 0.05,
        }
    }
}

fn smoothed(losses: &[f64]) -> Vec<f64> {
    let w = (losses.len() / 20).max(1);
    let mut out = Vec::with_capacity(losses.len());
    let mut sum = 0.0;
    let mut n = 0usize;
    for (i, &v) in losses.iter().enumerate() {
        if v.is_finite() {
            sum += v;
            n += 1;
        }
        if i >= w && losses[i - w].is_finite() {
            sum -= losses[i - w];
            n -= 1;
        }
        out.push(if n > 0 { sum / n as f64 } else { f64::NAN });
    }
    out
}

pub(super) fn midpoint_level(t: &Trace) -> f64 {
    let s = smoothed(&t.losses());
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Summarises one cell; `threshold` is the arm's.
pub fn summarize(t: &Trace, threshold: Option<f64>) -> CellSummary {
    let losses = t.losses();
    let tail = (losses.len() / 20).max(1);
    let fin: Vec<f64> = losses[losses.len().saturating_sub(tail)..]
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let final_loss = (!fin.is_empty()).then(|| fin.iter().sum::<f64>() / fin.len() as f64);
    let s = smoothed(&losses);
    let steps_to_threshold = threshold
        .and_then(|th| s.iter().position(|&v| v <= th))
        .map(|i| t.steps[i].step);
    let analysis = analyze_trace(
        t,
        &AnalyzeOptions {
            shifts: 0,
            ..AnalyzeOptions::default()
        },
    );
    CellSummary {
        final_loss,
        steps_to_threshold,
        steps: t.steps.len() as u64,
        // A NaN would be written as null and not read back: leave such a type out.
        effects: analysis
            .event_stats
            .iter()
            .filter(|s| s.median_effect_log.estimate.is_finite())
            .map(|s| (s.kind, s.median_effect_log.estimate))
            .collect(),
    }
}

fn summarize_run(manifest: &Manifest, traces: &Traces) -> Baseline {
    let mut arms = BTreeMap::new();
    for arm in &manifest.arms {
        let cells: Vec<(u64, &Trace)> = traces
            .iter()
            .filter(|((a, _), _)| a == &arm.name)
            .map(|((_, s), t)| (*s, t))
            .collect();
        let mut mids: Vec<f64> = cells
            .iter()
            .map(|(_, t)| midpoint_level(t))
            .filter(|v| v.is_finite())
            .collect();
        mids.sort_by(|a, b| a.total_cmp(b));
        let threshold = mids.get(mids.len() / 2).copied();
        let seeds = cells
            .iter()
            .map(|(s, t)| (*s, summarize(t, threshold)))
            .collect();
        arms.insert(arm.name.clone(), ArmSummary { threshold, seeds });
    }
    Baseline {
        schema_version: BASELINE_SCHEMA_VERSION,
        scenario: manifest.scenario.name.clone(),
        device: manifest.device.clone(),
        dropscope_version: env!("CARGO_PKG_VERSION").into(),
        arms,
        logs: Vec::new(),
    }
}

/// Refuses a baseline destination that holds something `save` must not replace.
pub(super) fn check_destination(base_dir: &Path, force: bool) -> Result<(), InputError> {
    if !base_dir.exists() || (base_dir.is_dir() && fsio::is_empty_dir(base_dir)) {
        return Ok(());
    }
    let why = if !base_dir.is_dir() {
        "exists and is not a folder"
    } else if base_dir.join("baseline.json").is_file() {
        if force {
            return Ok(());
        }
        "already holds a baseline; pass --force to replace it"
    } else if base_dir.join("manifest.json").is_file() {
        "is a run folder, not a baseline: choose a new folder for the baseline"
    } else {
        "exists, is not empty and holds no baseline; choose a new folder"
    };
    Err(InputError::new(base_dir, why).field("BASE_DIR"))
}

/// `dropscope baseline save RUN_DIR BASE_DIR`: refuses an incomplete run (a killed cell
/// would count as a seed), never writes into the run it reads, and replaces an existing
/// baseline only with `force`, all at once (built beside it, then renamed).
pub fn save(run_dir: &Path, base_dir: &Path, force: bool) -> Result<Baseline, InputError> {
    fsio::refuse_overlap(base_dir, "BASE_DIR", &[run_dir])?;
    check_destination(base_dir, force)?;
    let (manifest, traces, done) = rundir::load_checked(run_dir)?;
    if let Some(why) = done.headline() {
        return Err(InputError::new(
            run_dir,
            format!("cannot be a baseline: {why}; finish the run (rerun it) first"),
        ));
    }
    let staged = fsio::StagedDir::new(base_dir)?;
    fsio::copy_atomic(
        &run_dir.join("manifest.json"),
        &staged.staging.join("manifest.json"),
    )?;
    for c in &manifest.cells {
        for f in ["trace.csv", "val.csv"] {
            let src = manifest.cell_dir(run_dir, c).join(f);
            if src.is_file() {
                fsio::copy_atomic(&src, &manifest.cell_dir(&staged.staging, c).join(f))?;
            }
        }
    }
    let b = summarize_run(&manifest, &traces);
    let p = staged.staging.join("baseline.json");
    let text = serde_json::to_string_pretty(&b).map_err(|e| InputError::new(&p, e.to_string()))?;
    fsio::write_atomic(&p, (text + "\n").as_bytes())?;
    staged.commit()?;
    Ok(b)
}

pub fn load(base_dir: &Path) -> Result<Baseline, InputError> {
    let p = base_dir.join("baseline.json");
    if !p.is_file() && base_dir.join("manifest.json").is_file() {
        return Err(InputError::new(
            base_dir,
            "is a run folder, not a baseline (no baseline.json); save one with \
             `dropscope baseline save RUN_DIR BASE_DIR`",
        )
        .field("--baseline"));
    }
    let text = std::fs::read_to_string(&p).map_err(|e| InputError::io(&p, &e))?;
    let b: Baseline = serde_json::from_str(&text)
        .map_err(|e| InputError::new(&p, e.to_string()).at_line(e.line() as u64))?;
    if b.schema_version > BASELINE_SCHEMA_VERSION {
        return Err(InputError::new(
            &p,
            format!(
                "schema_version {} is newer than this dropscope",
                b.schema_version
            ),
        )
        .field("schema_version"));
    }
    Ok(b)
}

/// `dropscope check RUN_DIR --baseline BASE_DIR`.
pub fn compare(
    run_dir: &Path,
    base_dir: &Path,
    opts: &CompareOptions,
) -> Result<CheckReport, InputError> {
    let base = load(base_dir)?;
    let (manifest, traces, done) = rundir::load_checked(run_dir)?;
    let mut report = CheckReport::new(format!(
        "dropscope baseline {} ({})",
        base.scenario, opts.mode
    ));
    push_completeness(&mut report, &done);
    // A partial cell is not a seed: compare only cells that ran to the end.
    let traces: Traces = traces
        .into_iter()
        .filter(|((arm, seed), _)| {
            manifest.cells.iter().any(|c| {
                &c.arm == arm
                    && c.seed == *seed
                    && !done
                        .problems
                        .iter()
                        .any(|p| p.starts_with(&format!("{arm}/seed-{seed}:")))
            })
        })
        .collect();
    match opts.mode {
        BaselineMode::Exact | BaselineMode::Tolerance => {
            let base_manifest = Manifest::read(base_dir)?;
            for c in &base_manifest.cells {
                let subject = format!("{}/seed-{}", c.arm, c.seed);
                let ours = manifest
                    .cells
                    .iter()
                    .find(|m| m.arm == c.arm && m.seed == c.seed);
                let Some(ours) = ours else {
                    report.push(
                        &subject,
                        "cell present".into(),
                        false,
                        format!(
                            "the run (scenario '{}') has no such cell of the baseline (scenario '{}')",
                            manifest.scenario.name, base.scenario
                        ),
                    );
                    continue;
                };
                if opts.mode == BaselineMode::Exact {
                    let a = std::fs::read(manifest.cell_dir(run_dir, ours).join("trace.csv")).ok();
                    let b =
                        std::fs::read(base_manifest.cell_dir(base_dir, c).join("trace.csv")).ok();
                    let same = a.is_some() && a == b;
                    report.push(
                        &subject,
                        "trace.csv byte-identical".into(),
                        same,
                        if same {
                            "identical".into()
                        } else {
                            first_difference(
                                a.as_deref().unwrap_or(&[]),
                                b.as_deref().unwrap_or(&[]),
                            )
                        },
                    );
                } else {
                    let b = crate::import::read_trace_dir(&base_manifest.cell_dir(base_dir, c))?;
                    let empty = Trace::default();
                    let a = traces.get(&(c.arm.clone(), c.seed)).unwrap_or(&empty);
                    let (pass, msg) = tolerance(a, &b, opts, Steps::All);
                    report.push(
                        &subject,
                        format!("per-step loss within {}%", opts.rtol * 100.0),
                        pass,
                        msg,
                    );
                }
            }
        }
        BaselineMode::Statistical => {
            let ours = summarize_against(&manifest, &traces, &base);
            for (arm, b) in &base.arms {
                let Some(o) = ours.get(arm) else {
                    report.push(
                        arm,
                        "arm present".into(),
                        false,
                        format!(
                            "the run (scenario '{}') has no arm '{arm}' of the baseline (scenario '{}')",
                            manifest.scenario.name, base.scenario
                        ),
                    );
                    continue;
                };
                statistical(arm, b, o, opts.alpha, &mut report);
            }
        }
    }
    Ok(report)
}

fn summarize_against(
    manifest: &Manifest,
    traces: &Traces,
    base: &Baseline,
) -> BTreeMap<String, Vec<CellSummary>> {
    let mut out = BTreeMap::new();
    for arm in &manifest.arms {
        let threshold = base.arms.get(&arm.name).and_then(|a| a.threshold);
        let cells: Vec<CellSummary> = traces
            .iter()
            .filter(|((a, _), _)| a == &arm.name)
            .map(|(_, t)| summarize(t, threshold))
            .collect();
        out.insert(arm.name.clone(), cells);
    }
    out
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let la = String::from_utf8_lossy(a);
    let lb = String::from_utf8_lossy(b);
    for (i, (x, y)) in la.lines().zip(lb.lines()).enumerate() {
        if x != y {
            return format!("line {} differs: run '{x}' vs baseline '{y}'", i + 1);
        }
    }
    format!(
        "lengths differ: run {} lines, baseline {} lines",
        la.lines().count(),
        lb.lines().count()
    )
}

/// How `tolerance` treats baseline steps the run lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Steps {
    /// Every baseline step must be in the run (a dropscope run against its baseline).
    All,
    /// Compare on the steps both have (two logs written at different intervals).
    Common,
}

pub(super) fn tolerance(
    a: &Trace,
    b: &Trace,
    opts: &CompareOptions,
    steps: Steps,
) -> (bool, String) {
    let by_step: BTreeMap<u64, f64> = a.steps.iter().map(|s| (s.step, s.loss)).collect();
    let mut failing = Vec::new();
    let mut missing = 0usize;
    let mut compared = 0usize;
    for s in &b.steps {
        match by_step.get(&s.step) {
            None => missing += 1,
            Some(&v) => {
                let ok = if s.loss.is_finite() && v.is_finite() {
                    (v - s.loss).abs() <= opts.rtol * s.loss.abs().max(1e-12)
                } else {
                    v.is_nan() == s.loss.is_nan() && (v.is_nan() || v == s.loss)
                };
                compared += 1;
                if !ok {
                    failing.push((s.step, v, s.loss));
                }
            }
        }
    }
    let mut msg = match steps {
        Steps::All => format!(
            "{} of {} steps outside tolerance (allowed {}), {} missing",
            failing.len(),
            b.steps.len(),
            opts.max_failing_steps,
            missing
        ),
        Steps::Common => format!(
            "{} of {compared} common steps outside tolerance (allowed {}); compared on the \
             steps both logs have ({} run, {} baseline)",
            failing.len(),
            opts.max_failing_steps,
            a.steps.len(),
            b.steps.len()
        ),
    };
    let pass = match steps {
        Steps::All => missing == 0,
        Steps::Common => compared > 0,
    } && failing.len() <= opts.max_failing_steps;
    if compared == 0 && steps == Steps::Common {
        msg = "no step in common: the logs cannot be compared step by step".into();
    }
    if let Some((s, v, w)) = failing.first() {
        msg.push_str(&format!("; first at step {s}: run {v} vs baseline {w}"));
    }
    (pass, msg)
}

/// Welch's t-test that `run` is larger than `base` (one-sided), or differs (two-sided).
/// Identical constant samples give p = 1; different constants give p = 0.
fn welch(run: &[f64], base: &[f64], one_sided_larger: bool) -> f64 {
    let (n1, n2) = (run.len() as f64, base.len() as f64);
    if n1 < 1.0 || n2 < 1.0 {
        return 1.0;
    }
    let m1 = run.iter().sum::<f64>() / n1;
    let m2 = base.iter().sum::<f64>() / n2;
    let var = |v: &[f64], m: f64| {
        if v.len() < 2 {
            0.0
        } else {
            v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
        }
    };
    let (v1, v2) = (var(run, m1), var(base, m2));
    let se2 = v1 / n1 + v2 / n2;
    let diff = m1 - m2;
    let tiny = 1e-9 * m1.abs().max(m2.abs()).max(1e-12);
    if se2 <= 0.0 {
        let differs = if one_sided_larger {
            diff > tiny
        } else {
            diff.abs() > tiny
        };
        return if differs { 0.0 } else { 1.0 };
    }
    let t = diff / se2.sqrt();
    let df_den = (v1 / n1).powi(2) / (n1 - 1.0).max(1.0) + (v2 / n2).powi(2) / (n2 - 1.0).max(1.0);
    let df = if df_den > 0.0 {
        se2 * se2 / df_den
    } else {
        1.0
    };
    let Ok(d) = StudentsT::new(0.0, 1.0, df.max(1.0)) else {
        return 1.0;
    };
    if one_sided_larger {
        d.sf(t)
    } else {
        2.0 * d.sf(t.abs())
    }
}

/// A per-seed quantity compared with the baseline: None where the seed has no value
/// (no finite final loss: diverged; threshold never reached).
type Metric = dyn Fn(&CellSummary) -> Option<f64>;

/// p-values print with two significant digits and never as a bare 0.
fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else {
        format!("p = {p:.3}")
    }
}

/// One metric, one arm: seeds without a value in the run (where the baseline has them
/// all) fail at once; otherwise a one-sided Welch test on the seeds that have one.
fn compare_metric(
    arm: &str,
    name: &str,
    (unit, decimals): (&str, usize),
    run: &[Option<f64>],
    base: &[Option<f64>],
    alpha: f64,
    report: &mut CheckReport,
) {
    let r: Vec<f64> = run.iter().flatten().copied().collect();
    let s: Vec<f64> = base.iter().flatten().copied().collect();
    let check = format!("{name} not worse than baseline (one-sided Welch t, alpha {alpha})");
    let (run_gaps, base_gaps) = (run.len() - r.len(), base.len() - s.len());
    if run_gaps > base_gaps {
        let what = if name == "final loss" {
            "no finite loss at the end (diverged)"
        } else {
            "never reached the threshold"
        };
        report.push(
            arm,
            check,
            false,
            format!(
                "{run_gaps} of {} run seeds {what}, against {base_gaps} of {} baseline seeds",
                run.len(),
                base.len()
            ),
        );
        return;
    }
    let p = welch(&r, &s, true);
    report.push(
        arm,
        check,
        p >= alpha,
        format!(
            "run mean {:.decimals$}{unit} over {} seeds vs baseline {:.decimals$}{unit} over {} seeds; {}",
            mean(&r),
            r.len(),
            mean(&s),
            s.len(),
            fmt_p(p)
        ),
    );
}

pub(super) fn statistical(
    arm: &str,
    base: &ArmSummary,
    run: &[CellSummary],
    alpha: f64,
    report: &mut CheckReport,
) {
    let b: Vec<&CellSummary> = base.seeds.values().collect();
    let reach = |c: &CellSummary| c.steps_to_threshold.map(|s| s as f64);
    let final_loss = |c: &CellSummary| c.final_loss;
    let threshold = base
        .threshold
        .map(|t| format!("steps to the loss {t:.4}"))
        .unwrap_or_else(|| "steps to threshold".into());
    let metrics: [(&str, (&str, usize), &Metric); 2] = [
        ("final loss", ("", 4), &final_loss),
        (&threshold, (" steps", 0), &reach),
    ];
    for (name, format, f) in metrics {
        let r: Vec<Option<f64>> = run.iter().map(f).collect();
        let s: Vec<Option<f64>> = b.iter().map(|c| f(c)).collect();
        compare_metric(arm, name, format, &r, &s, alpha, report);
    }
    let kinds: Vec<EventKind> = b
        .iter()
        .flat_map(|c| c.effects.keys().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for k in kinds {
        let r: Vec<f64> = run
            .iter()
            .filter_map(|c| c.effects.get(&k).copied())
            .collect();
        let s: Vec<f64> = b
            .iter()
            .filter_map(|c| c.effects.get(&k).copied())
            .collect();
        let p = welch(&r, &s, false);
        report.push(
            arm,
            format!(
                "drop effect at {}s unchanged (two-sided Welch t, alpha {alpha})",
                k.label()
            ),
            p >= alpha,
            format!(
                "run {:+.4} vs baseline {:+.4} log-loss; {}",
                mean(&r),
                mean(&s),
                fmt_p(p)
            ),
        );
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_flags_a_slower_run_and_not_an_equal_one() {
        let base = [100.0, 110.0, 105.0, 98.0];
        assert!(welch(&[150.0, 160.0, 155.0, 149.0], &base, true) < 0.01);
        assert!(welch(&[101.0, 108.0, 104.0, 99.0], &base, true) > 0.2);
        assert_eq!(welch(&[1.0, 1.0], &[1.0, 1.0], true), 1.0);
        assert_eq!(welch(&[1.5], &[1.0], true), 0.0);
    }

    #[test]
    fn tolerance_counts_steps_outside_the_band() {
        let mk = |f: f64| {
            let mut t = Trace::new("t");
            for s in 0..10 {
                t.steps.push(crate::trace::StepRecord {
                    step: s,
                    epoch: None,
                    batch: None,
                    loss: 1.0 + if s == 3 { f } else { 0.0 },
                    lr: None,
                    batch_size: None,
                });
            }
            t
        };
        let opts = CompareOptions {
            mode: BaselineMode::Tolerance,
            ..CompareOptions::default()
        };
        assert!(tolerance(&mk(0.01), &mk(0.0), &opts, Steps::All).0);
        let (ok, msg) = tolerance(&mk(0.5), &mk(0.0), &opts, Steps::All);
        assert!(!ok && msg.contains("first at step 3"), "{msg}");
        let lenient = CompareOptions {
            max_failing_steps: 1,
            ..opts
        };
        assert!(tolerance(&mk(0.5), &mk(0.0), &lenient, Steps::All).0);
    }
}
