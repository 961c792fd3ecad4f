//! Attribution: which known cause explains a trace's drops, and across arms
//! and seeds, which varied factor does.
//!
//! Reads a [`Trace`] (and, for runs, the manifest), never burn. Returns plain
//! data; `report` and `check` present and judge it.

pub mod arms;
pub mod overfit;
pub mod period;
pub mod signatures;
pub mod stats;

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::detect::{self, DetectConfig, Detection, DropShape, Prepared};
use crate::events::{self, EventKind, Events};
use crate::trace::{LogMode, Trace};

pub use arms::{ArmAnalysis, DivergedCell, FactorEffect, RunAnalysis, analyze_run};
pub use overfit::{OverfitVerdict, Overfitting, TrendTest, TrendWindow};
pub use period::{Hint, RecurringDrops};
pub use signatures::{DataOrderTest, FoldedProfile, LastBatchTest, RunningMeanTest};
pub use stats::Interval;

pub const SCHEMA_VERSION: u32 = 1;

/// Fewest positive finite losses worth analysing. A drop is the gap between a line on
/// each side (at least 3 points each) measured against noise estimated from first
/// differences; with fewer than 20 points no drop can reach the detector's |z| of 4 apart
/// from a bend of the curve, and "no drop" would read as an answer when it is none.
pub const MIN_USABLE_LOSSES: usize = 20;

/// The fixed vocabulary of causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Drops at epoch starts as memorized examples come round again.
    EpochBoundary,
    /// A drop at an LR decrease.
    LrChange,
    /// A rise at an LR restart, then a fall as the LR anneals.
    WarmRestart,
    /// The logged value is an epoch-cumulative mean: its "drops" are an artifact.
    RunningMeanArtifact,
    /// Unshuffled or sorted data: a repeating within-epoch pattern.
    DataOrder,
    /// An outlier at the last step of each epoch, tied to a short last batch.
    LastBatch,
    /// A fall that only recovers from a spike.
    LossSpike,
    /// Significant drops that match no event type.
    Unexplained,
    /// No significant drops.
    None,
}

impl Cause {
    pub const ALL: [Cause; 9] = [
        Cause::EpochBoundary,
        Cause::LrChange,
        Cause::WarmRestart,
        Cause::RunningMeanArtifact,
        Cause::DataOrder,
        Cause::LastBatch,
        Cause::LossSpike,
        Cause::Unexplained,
        Cause::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::EpochBoundary => "epoch_boundary",
            Cause::LrChange => "lr_change",
            Cause::WarmRestart => "warm_restart",
            Cause::RunningMeanArtifact => "running_mean_artifact",
            Cause::DataOrder => "data_order",
            Cause::LastBatch => "last_batch",
            Cause::LossSpike => "loss_spike",
            Cause::Unexplained => "unexplained",
            Cause::None => "none",
        }
    }

    /// What it means, and what would confirm it.
    pub fn advice(self) -> &'static str {
        match self {
            Cause::EpochBoundary => {
                "the model re-sees examples it has memorized at each epoch start; confirm by training on fresh data each epoch (the drops vanish) or by removing label noise / capacity (they shrink)"
            }
            Cause::LrChange => {
                "the learning rate was cut; confirm by moving the milestone (the drop moves with it) or using a constant LR"
            }
            Cause::WarmRestart => {
                "the LR schedule restarts: the loss rises at each restart and falls as the LR anneals; expected for SGDR"
            }
            Cause::RunningMeanArtifact => {
                "the logged value is an epoch-cumulative mean (as progress bars print), not the loss of each step; log the per-step loss to see the real curve"
            }
            Cause::DataOrder => {
                "batches are not shuffled (or are sorted by class): the loss repeats a within-epoch pattern; shuffle every epoch"
            }
            Cause::LastBatch => {
                "the last batch of each epoch is short; with batch norm its statistics are poor; set drop_last = true"
            }
            Cause::LossSpike => {
                "a fall that only recovers from a spike; look at the spike's cause (a bad batch, a too-high LR) instead"
            }
            Cause::Unexplained => {
                "drops at no known event: an escape from a plateau, or a cause the log does not show"
            }
            Cause::None => "no significant drops",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cause {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cause::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown cause '{s}' (known: {})",
                    Cause::ALL.map(|c| c.as_str()).join(", ")
                )
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfidenceLevel {
    Low,
    Medium,
    High,
}

/// One named cause with the evidence that decided it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CauseFinding {
    pub cause: Cause,
    /// 0 to 1: one minus the adjusted p-value of the deciding test, for event causes.
    pub confidence: f64,
    pub level: ConfidenceLevel,
    /// The effect at its events in log-loss (negative = drop), with a 95% interval.
    pub effect_log: Option<Interval>,
    /// Named by its own test: at its events (epoch starts, LR decreases, warm restarts)
    /// or by its within-epoch signature (running mean, data order, last batch). False for
    /// causes that only the detected drops name (`loss_spike`, `unexplained`) and `none`.
    pub named_by_test: bool,
    /// Detected drops attributed to it.
    pub drops_explained: usize,
    pub evidence: Vec<String>,
}

/// What a cause rests on: its own test, the detected drops it explains, or both. A cause
/// its test named need not explain any detected drop (many small drops at its events can
/// be significant together though none is alone), and a report must say which it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Test,
    Drops,
    Both,
    /// `none`: nothing was found.
    Neither,
}

impl CauseFinding {
    pub fn basis(&self) -> Basis {
        match (self.named_by_test, self.drops_explained > 0) {
            (true, true) => Basis::Both,
            (true, false) => Basis::Test,
            (false, true) => Basis::Drops,
            (false, false) => Basis::Neither,
        }
    }
}

/// The targeted tests at one event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventStat {
    pub kind: EventKind,
    pub n_events: usize,
    /// Events tested (inside the series, with enough points on both sides).
    pub n_tested: usize,
    pub n_significant_drops: usize,
    pub n_significant_rises: usize,
    /// Median jump in log-loss at these events (negative = drop), 95% bootstrap interval.
    pub median_effect_log: Interval,
    /// One-sided p-values of the median jump against the same statistic at random times.
    pub p_drop: f64,
    pub p_rise: f64,
    /// Holm-adjusted across event types.
    pub p_drop_adjusted: f64,
    pub p_rise_adjusted: f64,
    /// How the null was built: "random times" or "other epoch starts".
    pub null: String,
    pub effects: Vec<EventEffect>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEffect {
    pub step: u64,
    pub jump_log: f64,
    pub z: f64,
}

/// A detected drop and what explains it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainedDrop {
    pub step: u64,
    /// ln(before) - ln(after): positive for a drop.
    pub log: f64,
    pub rel: f64,
    pub z: f64,
    pub shape: DropShape,
    pub explained_by: Cause,
    /// The event it sits at, if any: for a drop an event cause explains, the nearest event
    /// of that cause's kind (so the two columns of a drop table never disagree).
    pub event: Option<EventKind>,
}

/// Everything known about one trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceAnalysis {
    pub name: String,
    pub n_steps: usize,
    pub steps_per_epoch: Option<f64>,
    /// The loss turned NaN or infinite for good: `diverged_at.is_some()`.
    pub diverged: bool,
    /// The step from which every loss is NaN or infinite (the analysis covers the steps
    /// before it); from the cleaning report.
    pub diverged_at: Option<u64>,
    pub log_mode: Option<LogMode>,
    pub events: Events,
    pub detection: Detection,
    pub event_stats: Vec<EventStat>,
    pub profile: Option<FoldedProfile>,
    pub data_order: Option<DataOrderTest>,
    pub running_mean: Option<RunningMeanTest>,
    pub last_batch: Option<LastBatchTest>,
    pub causes: Vec<CauseFinding>,
    pub drops: Vec<ExplainedDrop>,
    pub unexplained_drops: Vec<u64>,
    pub overfitting: Overfitting,
    /// What the log does not say but the drops suggest (see [`period`]).
    pub hints: Vec<Hint>,
}

impl TraceAnalysis {
    pub fn names(&self, cause: Cause) -> bool {
        self.causes.iter().any(|c| c.cause == cause)
    }

    pub fn finding(&self, cause: Cause) -> Option<&CauseFinding> {
        self.causes.iter().find(|c| c.cause == cause)
    }

    pub fn stat(&self, kind: EventKind) -> Option<&EventStat> {
        self.event_stats.iter().find(|s| s.kind == kind)
    }
}

#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    pub detect: DetectConfig,
    /// Random event sets for the null distribution.
    pub shifts: usize,
    pub alpha: f64,
    /// Planted optimizer resets (from a scenario), every this many epochs.
    pub reset_every_epochs: Option<u64>,
    pub seed: u64,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            detect: DetectConfig::default(),
            shifts: 499,
            alpha: 0.05,
            reset_every_epochs: None,
            seed: 0x00d5_c09e,
        }
    }
}

/// How an event type's jump is measured: local lines on either side of the event, the one
/// before stopping `gap` points early and the one after starting `settle` points late, each
/// at most `window` points long.
#[derive(Debug, Clone, Copy)]
struct JumpShape {
    gap: usize,
    settle: usize,
    window: usize,
}

impl JumpShape {
    fn of(kind: EventKind) -> JumpShape {
        match kind {
            // A short last batch right before the boundary must not pose as a drop after it;
            // re-seen samples act on the very first batch, so the line after starts at once.
            EventKind::EpochStart => JumpShape {
                gap: 1,
                settle: 0,
                window: 100,
            },
            // An LR cut acts through the optimizer: momentum and the shrinking noise ball
            // take tens of steps to bring the loss to its new level, so the line after the
            // cut starts once that has settled, and reaches further to see the new level.
            EventKind::LrDecrease => JumpShape {
                gap: 0,
                settle: LR_SETTLE,
                window: 200,
            },
            _ => JumpShape {
                gap: 0,
                settle: 0,
                window: 100,
            },
        }
    }
}

/// Points an LR cut is given to take effect (see `JumpShape`).
const LR_SETTLE: usize = 32;
/// Points after a cut within which a drop is the cut's own. A cut changes the rate of
/// decay as well as the level, and a whole-series trend meets that bend with a drop or
/// two more in the following hundred steps (bundled `lr-step`: 40 to 90 steps after).
const LR_AFTERMATH: usize = 100;

/// Share of a type's events that must show a significant jump on their own.
const MIN_SHARE_SIGNIFICANT: f64 = 0.25;

/// A jump test shaped by `shape`, measured as the gap between the two lines at the event.
fn shaped_jump(
    p: &Prepared,
    at: usize,
    left: usize,
    right: usize,
    shape: JumpShape,
) -> Option<(f64, f64)> {
    let l_end = at.checked_sub(shape.gap)?;
    let lo = left.max(l_end.saturating_sub(shape.window));
    let r_start = at + shape.settle;
    let hi = right.min(r_start + shape.window).min(p.len());
    if l_end < lo + 3 || hi < r_start + 3 {
        return None;
    }
    let x0 = p.steps()[at] as f64;
    let side = |a: usize, b: usize| -> Option<(f64, f64, f64, usize)> {
        let (xs, ys): (Vec<f64>, Vec<f64>) = (a..b)
            .filter_map(|i| Some((p.steps()[i] as f64 - x0, p.log_loss(i)?)))
            .unzip();
        let (icpt, slope, rss) = stats::fit_line(&xs, &ys)?;
        let n = xs.len() as f64;
        let mx = stats::mean(&xs);
        let sxx: f64 = xs.iter().map(|v| (v - mx).powi(2)).sum();
        // Variance factor of the fitted level at x = 0 (the boundary).
        Some((icpt + slope * 0.0, 1.0 / n + mx * mx / sxx, rss, xs.len()))
    };
    let (yl, vl, rl, nl) = side(lo, l_end)?;
    let (yr, vr, rr, nr) = side(r_start, hi)?;
    let dof = (nl + nr) as f64 - 4.0;
    let s2 = ((rl + rr) / dof.max(1.0)).max((0.5 * p.local_sigma(at)).powi(2));
    let se = (s2 * (vl + vr)).sqrt();
    let jump = yr - yl;
    Some((jump, if se > 0.0 { jump / se } else { 0.0 }))
}

struct Windows {
    at: Vec<usize>,
    left: Vec<usize>,
    right: Vec<usize>,
    fences: Vec<usize>,
}

/// Each event's window reaches to its neighbouring events of the same type, and stops at
/// any `fence` (other events' steps) so a window never straddles another cause.
fn windows(p: &Prepared, steps: &[u64], fences: &[u64]) -> Windows {
    let mut at: Vec<usize> = steps
        .iter()
        .filter_map(|&s| p.index_of(s))
        .filter(|&i| i > 0)
        .collect();
    at.sort_unstable();
    at.dedup();
    let n = p.len();
    let mut fence_idx: Vec<usize> = fences.iter().filter_map(|&s| p.index_of(s)).collect();
    fence_idx.sort_unstable();
    let mut left = Vec::with_capacity(at.len());
    let mut right = Vec::with_capacity(at.len());
    for (k, &a) in at.iter().enumerate() {
        let mut l = if k == 0 { 0 } else { at[k - 1] };
        let mut r = if k + 1 < at.len() { at[k + 1] } else { n };
        for &f in &fence_idx {
            if f + 1 < a && f > l {
                l = f;
            }
            if f > a + 1 && f < r {
                r = f;
            }
        }
        left.push(l);
        right.push(r);
    }
    // At random times the windows also stop at this type's own events, so a null window
    // never straddles the very drop under test (which would pull the null towards it).
    fence_idx.extend(at.iter().copied());
    fence_idx.sort_unstable();
    fence_idx.dedup();
    Windows {
        at,
        left,
        right,
        fences: fence_idx,
    }
}

fn jumps(p: &Prepared, w: &Windows, offset: isize, shape: JumpShape) -> Vec<(usize, f64, f64)> {
    let n = p.len() as isize;
    w.at.iter()
        .enumerate()
        .filter_map(|(k, &a)| {
            let shift = |i: usize| ((i as isize + offset).rem_euclid(n)) as usize;
            let a2 = shift(a);
            let wl = a - w.left[k];
            let wr = w.right[k] - a;
            let mut lo = a2.saturating_sub(wl);
            let mut hi = (a2 + wr).min(p.len());
            // At a random time the windows stop at fences too, as the event's own did. At
            // offset 0 the own events among them are the window ends already.
            let i = w.fences.partition_point(|&f| f < a2);
            if i > 0 {
                lo = lo.max(w.fences[i - 1]);
            }
            if i < w.fences.len() && w.fences[i] > a2 {
                hi = hi.min(w.fences[i]);
            }
            shaped_jump(p, a2, lo, hi, shape).map(|(j, z)| (a2, j, z))
        })
        .collect()
}

fn event_stat(
    p: &Prepared,
    kind: EventKind,
    steps: &[u64],
    avoid: &[u64],
    fences: &[u64],
    epoch_starts: Option<&[u64]>,
    opts: &AnalyzeOptions,
) -> Option<EventStat> {
    let w = windows(p, steps, fences);
    let shape = JumpShape::of(kind);
    let observed = jumps(p, &w, 0, shape);
    if observed.is_empty() {
        return None;
    }
    let effects: Vec<f64> = observed.iter().map(|o| o.1).collect();
    // Against random times the statistic is the median z, not the median jump: a random
    // time's windows end at whatever fences lie near it, and a raw jump from a short window
    // is noisy enough to pose as any drop.
    let obs_median = stats::median(&observed.iter().map(|o| o.2).collect::<Vec<_>>());
    // One-sided 5% per event: under no effect about one event in twenty passes by chance.
    let z_crit = 1.645;
    let n_drop = observed.iter().filter(|o| o.2 < -z_crit).count();
    let n_rise = observed.iter().filter(|o| o.2 > z_crit).count();
    let seed = opts.seed ^ (kind as u64 + 1).wrapping_mul(0x9e37_79b9);
    // Measured as this type's jumps are, so a slower-settling test is not compared with
    // boundaries measured the epoch-start way.
    let others: Option<Vec<f64>> = epoch_starts.map(|starts| {
        jumps(p, &windows(p, starts, &[]), 0, shape)
            .iter()
            .map(|o| o.1)
            .collect()
    });
    let (p_drop, p_rise, null) = match others.as_deref() {
        // Events on epoch boundaries are compared with the other boundaries, so an epoch
        // effect cannot pose as, say, an LR effect.
        Some(others) if others.len() >= 3 => {
            // Median and MAD: one boundary in the first, fast-falling epoch (or in a
            // high-LR phase that bounces) must not widen the reference enough to hide a cut.
            let m = stats::median(others);
            let dev: Vec<f64> = others.iter().map(|v| (v - m).abs()).collect();
            let mad = 1.4826 * stats::median(&dev);
            let sd = if mad > 1e-12 {
                mad
            } else {
                (others.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (others.len() - 1) as f64)
                    .sqrt()
                    .max(1e-12)
            };
            let t = (stats::mean(&effects) - m)
                / (sd * (1.0 / effects.len() as f64 + 1.0 / others.len() as f64).sqrt());
            let d = StudentsT::new(0.0, 1.0, (others.len() - 1) as f64).ok();
            let cdf = d.map(|d| d.cdf(t)).unwrap_or(0.5);
            (cdf, 1.0 - cdf, "other epoch starts".to_string())
        }
        _ => {
            let n = p.len();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let near = |i: usize| {
                let s = p.steps()[i];
                avoid
                    .iter()
                    .chain(steps.iter())
                    .any(|&e| e.abs_diff(s) <= 3)
            };
            let mut le = 1usize;
            let mut ge = 1usize;
            let mut done = 0usize;
            let mut tries = 0usize;
            while done < opts.shifts && tries < opts.shifts * 20 && n > 8 {
                tries += 1;
                let off = rng.random_range(1..n) as isize;
                let moved = |a: usize| ((a as isize + off).rem_euclid(n as isize)) as usize;
                if w.at.iter().any(|&a| near(moved(a))) {
                    continue;
                }
                let null: Vec<f64> = jumps(p, &w, off, shape).iter().map(|o| o.2).collect();
                if null.is_empty() {
                    continue;
                }
                let m = stats::median(&null);
                le += (m <= obs_median) as usize;
                ge += (m >= obs_median) as usize;
                done += 1;
            }
            if done == 0 {
                (1.0, 1.0, "none (too few random times)".to_string())
            } else {
                let d = (done + 1) as f64;
                (le as f64 / d, ge as f64 / d, "random times".to_string())
            }
        }
    };
    Some(EventStat {
        kind,
        n_events: steps.len(),
        n_tested: observed.len(),
        n_significant_drops: n_drop,
        n_significant_rises: n_rise,
        median_effect_log: stats::bootstrap(&effects, stats::median, seed, 1000),
        p_drop,
        p_rise,
        p_drop_adjusted: p_drop,
        p_rise_adjusted: p_rise,
        null,
        effects: observed
            .iter()
            .map(|&(i, j, z)| EventEffect {
                step: p.steps()[i],
                jump_log: j,
                z,
            })
            .collect(),
    })
}

fn level_of(p_adj: f64, frac: f64) -> ConfidenceLevel {
    if p_adj <= 0.01 && frac >= 0.5 {
        ConfidenceLevel::High
    } else if p_adj <= 0.05 {
        ConfidenceLevel::Medium
    } else {
        ConfidenceLevel::Low
    }
}

/// Steps within which a drop counts as at an event: 5% of an epoch, at least 2.
fn event_tolerance(steps_per_epoch: f64) -> usize {
    ((steps_per_epoch * 0.05).round() as usize).max(2)
}

/// Analyses one trace: events, detection, targeted tests, causes, overfitting.
pub fn analyze_trace(trace: &Trace, opts: &AnalyzeOptions) -> TraceAnalysis {
    let ev = events::extract(trace, opts.reset_every_epochs);
    let steps = trace.step_numbers();
    let losses = trace.losses();
    let p = detect::prepare(&steps, &losses);
    // Drops are placed for the question asked of them here: are they at an event, within
    // the tolerance used below to tie them to one.
    let mut dcfg = opts.detect.clone();
    if let Some(spe) = ev.steps_per_epoch {
        dcfg.placement_window = dcfg.placement_window.min(event_tolerance(spe));
    }
    let detection = detect::detect_prepared(&p, &ev.all_steps(), &dcfg);

    // Epoch starts that coincide with another event belong to that event.
    let others: Vec<u64> = ev
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::LrDecrease
                    | EventKind::WarmRestart
                    | EventKind::LrIncrease
                    | EventKind::OptimizerReset
            )
        })
        .map(|e| e.step)
        .collect();
    let coincides = |s: u64| others.iter().any(|&o| o.abs_diff(s) <= 1);
    let epoch_starts: Vec<u64> = ev
        .steps_of(EventKind::EpochStart)
        .into_iter()
        .filter(|&s| !coincides(s))
        .collect();
    let all_steps = ev.all_steps();
    let mut stats_list = Vec::new();
    let epoch_stat = event_stat(
        &p,
        EventKind::EpochStart,
        &epoch_starts,
        &all_steps,
        &[],
        None,
        opts,
    );
    if let Some(s) = epoch_stat {
        stats_list.push(s);
    }
    let all_epoch_starts = ev.steps_of(EventKind::EpochStart);
    for kind in [
        EventKind::LrDecrease,
        EventKind::WarmRestart,
        EventKind::LrIncrease,
        EventKind::OptimizerReset,
    ] {
        let s = ev.steps_of(kind);
        if s.is_empty() {
            continue;
        }
        let on_boundaries = s
            .iter()
            .filter(|&&x| all_epoch_starts.iter().any(|&e| e.abs_diff(x) <= 1))
            .count();
        let cmp = (on_boundaries * 2 >= s.len() && !epoch_starts.is_empty())
            .then_some(epoch_starts.as_slice());
        // Between epoch boundaries, an event's windows stop at the boundaries (and other
        // events), so a sawtooth next door cannot pose as its jump.
        let fences: Vec<u64> = if cmp.is_some() {
            Vec::new()
        } else {
            all_steps
                .iter()
                .copied()
                .filter(|f| !s.iter().any(|x| x.abs_diff(*f) <= 1))
                .collect()
        };
        if let Some(st) = event_stat(&p, kind, &s, &all_steps, &fences, cmp, opts) {
            stats_list.push(st);
        }
    }
    let adj_drop = stats::holm(&stats_list.iter().map(|s| s.p_drop).collect::<Vec<_>>());
    let adj_rise = stats::holm(&stats_list.iter().map(|s| s.p_rise).collect::<Vec<_>>());
    for (i, s) in stats_list.iter_mut().enumerate() {
        s.p_drop_adjusted = adj_drop[i];
        s.p_rise_adjusted = adj_rise[i];
    }

    let spe = ev.steps_per_epoch.map(|v| v.round() as usize).unwrap_or(0);
    let table = signatures::EpochTable::build(trace, &p, spe);
    let profile = table.as_ref().map(signatures::folded_profile);
    let data_order = table.as_ref().and_then(signatures::data_order);
    let running_mean = table.as_ref().and_then(signatures::running_mean);
    let last_batch = signatures::last_batch(trace, &p, &ev.steps_of(EventKind::EpochStart));

    let mut causes = Vec::new();
    let alpha = opts.alpha;
    let stat_of = |k: EventKind| stats_list.iter().find(|s| s.kind == k);

    let artifact = running_mean
        .as_ref()
        .is_some_and(|r| r.slope < -0.5 && r.r_squared > 0.5);
    if let Some(r) = running_mean.as_ref().filter(|_| artifact) {
        let mut evidence = vec![format!(
            "step-to-step changes shrink with the position k in the epoch as k^{:.2} (R² {:.2}); a running mean gives k^-1, raw losses k^0",
            r.slope, r.r_squared
        )];
        if let Some(s) = stat_of(EventKind::EpochStart) {
            evidence.push(format!(
                "the value resets at every epoch start (median jump {:+.3} log-loss)",
                s.median_effect_log.estimate
            ));
        }
        if trace.log_mode == Some(LogMode::RunningMean) {
            evidence.push("the run logged in running-mean mode".into());
        }
        let conf = ((-r.slope).min(1.0) * r.r_squared).clamp(0.0, 0.999);
        causes.push(CauseFinding {
            cause: Cause::RunningMeanArtifact,
            confidence: conf,
            level: if r.slope < -0.8 && r.r_squared > 0.8 {
                ConfidenceLevel::High
            } else {
                ConfidenceLevel::Medium
            },
            effect_log: stat_of(EventKind::EpochStart).map(|s| s.median_effect_log),
            named_by_test: true,
            drops_explained: 0,
            evidence,
        });
    }
    let event_cause = |kind: EventKind,
                       cause: Cause,
                       want_drop: bool,
                       causes: &mut Vec<CauseFinding>| {
        let Some(s) = stat_of(kind) else { return };
        let (p_adj, sig, dir_ok) = if want_drop {
            (
                s.p_drop_adjusted,
                s.n_significant_drops,
                s.median_effect_log.estimate < 0.0,
            )
        } else {
            (
                s.p_rise_adjusted,
                s.n_significant_rises,
                s.median_effect_log.estimate > 0.0,
            )
        };
        let frac = sig as f64 / s.n_tested.max(1) as f64;
        // The median can be pushed past the null by many tiny, individually invisible jumps;
        // a cause must also show at a good share of its events (five times the chance rate).
        if p_adj < alpha && dir_ok && frac >= MIN_SHARE_SIGNIFICANT {
            causes.push(CauseFinding {
                cause,
                confidence: (1.0 - p_adj).clamp(0.0, 0.999),
                level: level_of(p_adj, frac),
                effect_log: Some(s.median_effect_log),
                named_by_test: true,
                drops_explained: 0,
                evidence: vec![format!(
                    "{} of {} {}s show a significant {} (median {:+.3} log-loss, {}); against {}: p = {:.3} (Holm-adjusted {:.3})",
                    sig,
                    s.n_tested,
                    kind.label(),
                    if want_drop { "drop" } else { "rise" },
                    s.median_effect_log.estimate,
                    if s.median_effect_log.has_bounds() {
                        format!(
                            "95% CI [{:+.3}, {:+.3}]",
                            s.median_effect_log.low, s.median_effect_log.high
                        )
                    } else {
                        "one event, no CI".to_string()
                    },
                    s.null,
                    if want_drop { s.p_drop } else { s.p_rise },
                    p_adj
                )],
            });
        }
    };
    if !artifact {
        event_cause(
            EventKind::EpochStart,
            Cause::EpochBoundary,
            true,
            &mut causes,
        );
    }
    event_cause(EventKind::LrDecrease, Cause::LrChange, true, &mut causes);
    event_cause(
        EventKind::WarmRestart,
        Cause::WarmRestart,
        false,
        &mut causes,
    );

    let is_ordered = |d: &signatures::DataOrderTest| {
        d.p_value < 1e-3 && d.eta_squared >= 0.05 && d.split_half_r >= 0.5
    };
    let ordered = data_order.as_ref().is_some_and(is_ordered);
    let short_last = match (
        ev.of(EventKind::LastBatch).filter_map(|e| e.value).next(),
        ev.typical_batch_size,
    ) {
        (Some(last), Some(typical)) => Some(last < typical as f64),
        _ => None,
    };
    // A short last batch is evidence before any test: it lowers the bar the outlier
    // must clear. Without it, only a strong, unordered-data outlier counts.
    let last_batch_named = last_batch.as_ref().is_some_and(|lb| match short_last {
        Some(true) => lb.p_value < 0.05 && lb.median_z >= 1.5,
        None => !ordered && lb.p_value < 0.01 && lb.median_z.abs() >= 2.0,
        Some(false) => false,
    });

    // The steps after a bad last-batch update recover the same way every epoch, which is
    // a repeating pattern too (damped, over many steps); data order must show in the second
    // half of the epoch as well.
    let aftermath_only = last_batch_named
        && ordered
        && short_last == Some(true)
        && !table
            .as_ref()
            .and_then(|t| signatures::data_order_from(t, t.len / 2))
            .is_some_and(|d| is_ordered(&d));
    if let Some(d) = data_order
        .as_ref()
        .filter(|_| ordered && !artifact && !aftermath_only)
    {
        causes.push(CauseFinding {
            cause: Cause::DataOrder,
            confidence: (1.0 - d.p_value).clamp(0.0, 0.999),
            level: if d.eta_squared >= 0.2 && d.split_half_r >= 0.8 {
                ConfidenceLevel::High
            } else {
                ConfidenceLevel::Medium
            },
            effect_log: None,
            named_by_test: true,
            drops_explained: 0,
            evidence: vec![format!(
                "the position within the epoch explains {:.0}% of the within-epoch variation beyond a per-epoch trend (F = {:.1}, p = {:.1e}); the pattern repeats (even vs odd epochs r = {:.2})",
                100.0 * d.eta_squared,
                d.f,
                d.p_value,
                d.split_half_r
            )],
        });
    }

    if let Some(lb) = last_batch.as_ref().filter(|_| last_batch_named) {
        let mut evidence = vec![format!(
            "the last step of each epoch sits {:+.1} noise sigmas ({:+.3} log-loss) off the line through the steps before it, in {} epochs (sign test p = {:.1e})",
            lb.median_z, lb.median_effect_log, lb.epochs, lb.p_value
        )];
        if let (Some(true), Some(t)) = (short_last, ev.typical_batch_size) {
            let last = ev
                .of(EventKind::LastBatch)
                .filter_map(|e| e.value)
                .next()
                .unwrap_or(0.0);
            evidence.push(format!(
                "the last batch has {last} examples, the others {t}"
            ));
        }
        causes.push(CauseFinding {
            cause: Cause::LastBatch,
            confidence: (1.0 - lb.p_value).clamp(0.0, 0.999),
            level: if lb.p_value < 1e-4 {
                ConfidenceLevel::High
            } else {
                ConfidenceLevel::Medium
            },
            effect_log: None,
            named_by_test: true,
            drops_explained: 0,
            evidence,
        });
    }

    // Each detected drop: at which event, and so explained by which cause.
    let tol0 = event_tolerance(spe as f64) as u64;
    let named = |c: Cause| causes.iter().any(|f| f.cause == c);
    let mut drops = Vec::new();
    for d in &detection.drops {
        // A drop is placed no better than its size allows: a step of size d in noise s is
        // located to within about (s / d)^2 steps, so a small drop a few steps off an
        // event is still at it. Capped at a quarter epoch, so no drop is at every event.
        let tol = if d.log > 0.0 && detection.noise_sigma > 0.0 {
            let spread = (detection.noise_sigma / d.log).powi(2).round();
            let cap = (spe / 4).max(tol0 as usize) as f64;
            tol0.max(spread.min(cap) as u64)
        } else {
            tol0
        };
        let event = ev
            .events
            .iter()
            .filter(|e| e.step.abs_diff(d.step) <= tol)
            .min_by_key(|e| e.step.abs_diff(d.step))
            .map(|e| e.kind);
        let at = |k: EventKind| {
            ev.events
                .iter()
                .any(|e| e.kind == k && e.step.abs_diff(d.step) <= tol)
        };
        // The loss takes a while to reach its new level after a cut (see `LR_AFTERMATH`).
        let settling_after_cut = |step: u64| {
            ev.events.iter().any(|e| {
                e.kind == EventKind::LrDecrease
                    && step + tol >= e.step
                    && step <= e.step + LR_AFTERMATH as u64 + tol
            })
        };
        let explained_by = if named(Cause::RunningMeanArtifact) {
            // A running mean's every wiggle is the logger's, not the model's.
            Cause::RunningMeanArtifact
        } else if d.shape == DropShape::Recovery {
            if named(Cause::LastBatch) && (at(EventKind::EpochStart) || at(EventKind::LastBatch)) {
                Cause::LastBatch
            } else if named(Cause::WarmRestart) {
                Cause::WarmRestart
            } else {
                Cause::LossSpike
            }
        } else if settling_after_cut(d.step) && named(Cause::LrChange) {
            Cause::LrChange
        } else if at(EventKind::WarmRestart) && named(Cause::WarmRestart) {
            Cause::WarmRestart
        } else if at(EventKind::EpochStart) && named(Cause::RunningMeanArtifact) {
            Cause::RunningMeanArtifact
        } else if at(EventKind::EpochStart) && named(Cause::EpochBoundary) {
            Cause::EpochBoundary
        } else if (at(EventKind::EpochStart) || at(EventKind::LastBatch)) && named(Cause::LastBatch)
        {
            Cause::LastBatch
        } else if named(Cause::DataOrder) && spe > 0 {
            Cause::DataOrder
        } else if named(Cause::WarmRestart) {
            // Within a restart cycle the loss falls as the LR anneals.
            Cause::WarmRestart
        } else {
            Cause::Unexplained
        };
        // The event column names the event that ties the drop to its cause, where the
        // nearest event of any kind could be another (a last batch one step before the
        // epoch start that explains it).
        let tied: &[EventKind] = match explained_by {
            Cause::EpochBoundary => &[EventKind::EpochStart],
            Cause::LrChange => &[EventKind::LrDecrease],
            Cause::WarmRestart => &[EventKind::WarmRestart],
            Cause::LastBatch => &[EventKind::LastBatch, EventKind::EpochStart],
            _ => &[],
        };
        let reach = tol
            + if explained_by == Cause::LrChange {
                LR_AFTERMATH as u64
            } else {
                0
            };
        let event = ev
            .events
            .iter()
            .filter(|e| tied.contains(&e.kind) && e.step.abs_diff(d.step) <= reach)
            .min_by_key(|e| e.step.abs_diff(d.step))
            .map(|e| e.kind)
            .or(event);
        drops.push(ExplainedDrop {
            step: d.step,
            log: d.log,
            rel: d.rel,
            z: d.z,
            shape: d.shape,
            explained_by,
            event,
        });
    }
    let spikes_recovered: Vec<&ExplainedDrop> = drops
        .iter()
        .filter(|d| d.explained_by == Cause::LossSpike)
        .collect();
    if !spikes_recovered.is_empty() {
        causes.push(CauseFinding {
            cause: Cause::LossSpike,
            confidence: 0.9,
            level: ConfidenceLevel::Medium,
            effect_log: None,
            named_by_test: false,
            drops_explained: 0,
            evidence: vec![format!(
                "{} drop(s) only fall back after a spike (steps {})",
                spikes_recovered.len(),
                list_steps(spikes_recovered.iter().map(|d| d.step))
            )],
        });
    }
    let unexplained: Vec<u64> = drops
        .iter()
        .filter(|d| d.explained_by == Cause::Unexplained)
        .map(|d| d.step)
        .collect();
    if !unexplained.is_empty() {
        causes.push(CauseFinding {
            cause: Cause::Unexplained,
            confidence: 0.5,
            level: ConfidenceLevel::Low,
            effect_log: None,
            named_by_test: false,
            drops_explained: 0,
            evidence: vec![format!(
                "{} significant drop(s) at no known event (steps {})",
                unexplained.len(),
                list_steps(unexplained.iter().copied())
            )],
        });
    }
    if causes.is_empty() {
        causes.push(CauseFinding {
            cause: Cause::None,
            confidence: 0.5,
            level: ConfidenceLevel::Medium,
            effect_log: None,
            named_by_test: false,
            drops_explained: 0,
            evidence: vec!["no significant drop, at events or elsewhere".into()],
        });
    }
    for f in &mut causes {
        f.drops_explained = drops.iter().filter(|d| d.explained_by == f.cause).count();
    }
    let final_train = trace
        .steps
        .iter()
        .rev()
        .find(|s| s.loss.is_finite())
        .map(|s| s.loss);
    // Without epochs, drops that recur at a fixed distance suggest the epoch length.
    let hints = if ev.steps_per_epoch.is_none() {
        period::recurring_drops(&detection, opts.seed)
            .map(Hint::RecurringDrops)
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    let diverged_at = detection.cleaning.diverged_at;
    TraceAnalysis {
        name: trace.name.clone(),
        n_steps: trace.steps.len(),
        steps_per_epoch: ev.steps_per_epoch,
        diverged: diverged_at.is_some(),
        diverged_at,
        log_mode: trace.log_mode,
        events: ev,
        detection,
        event_stats: stats_list,
        profile,
        data_order,
        running_mean,
        last_batch,
        causes,
        drops,
        unexplained_drops: unexplained,
        overfitting: overfit::assess(&trace.val, final_train),
        hints,
    }
}

fn list_steps(steps: impl Iterator<Item = u64>) -> String {
    let v: Vec<String> = steps.map(|s| s.to_string()).collect();
    if v.len() > 8 {
        format!("{}, ... ({} in all)", v[..8].join(", "), v.len())
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::StepRecord;
    use rand_distr::{Distribution, StandardNormal};

    /// 2400 steps in epochs of 400, noise 0.1 on log-loss, and (with `cut_at`) the LR cut
    /// to a tenth there, after which the loss eases down by `effect` log-loss with a time
    /// constant of 10 steps: not a one-step jump, as an optimizer with momentum gives.
    fn trace(cut_at: Option<u64>, effect: f64, seed: u64) -> Trace {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut t = Trace::new("cut");
        for step in 0..2400u64 {
            let settled = cut_at
                .filter(|&c| step >= c)
                .map_or(0.0, |c| 1.0 - (-((step - c) as f64) / 10.0).exp());
            let noise: f64 = StandardNormal.sample(&mut rng);
            let log = 0.2 - step as f64 / 8000.0 - effect * settled + 0.1 * noise;
            t.steps.push(StepRecord {
                step,
                epoch: Some(step / 400),
                batch: Some(step % 400),
                loss: log.exp(),
                lr: Some(if cut_at.is_some_and(|c| step >= c) {
                    0.01
                } else {
                    0.1
                }),
                batch_size: Some(64),
            });
        }
        t
    }

    #[test]
    fn a_cut_that_takes_tens_of_steps_to_act_is_still_the_cuts_drop() {
        for seed in 1..=3 {
            let a = analyze_trace(&trace(Some(1000), 0.25, seed), &AnalyzeOptions::default());
            assert!(
                a.names(Cause::LrChange),
                "seed {seed}: {:?} {:?}",
                a.causes,
                a.event_stats
            );
            let lr = a.stat(EventKind::LrDecrease).expect("the cut is an event");
            assert!(lr.median_effect_log.estimate < -0.15, "{lr:?}");
            for d in a.drops.iter().filter(|d| (1000..=1045).contains(&d.step)) {
                assert_eq!(d.explained_by, Cause::LrChange, "{d:?}");
            }
            // The same cut in the LR column with no effect on the loss: a placebo.
            let placebo = analyze_trace(&trace(Some(1000), 0.0, seed), &AnalyzeOptions::default());
            assert!(placebo.stat(EventKind::LrDecrease).is_some());
            assert!(!placebo.names(Cause::LrChange), "{:?}", placebo.causes);
        }
    }

    #[test]
    fn a_cut_on_an_epoch_boundary_is_judged_against_the_other_boundaries() {
        let a = analyze_trace(&trace(Some(1200), 0.25, 4), &AnalyzeOptions::default());
        let lr = a.stat(EventKind::LrDecrease).unwrap();
        assert_eq!(lr.null, "other epoch starts");
        assert!(a.names(Cause::LrChange), "{:?}", a.causes);
        assert!(!a.names(Cause::EpochBoundary), "{:?}", a.causes);
        let placebo = analyze_trace(&trace(Some(1200), 0.0, 4), &AnalyzeOptions::default());
        assert!(!placebo.names(Cause::LrChange), "{:?}", placebo.causes);
    }
}
