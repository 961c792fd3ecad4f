//! Attribution: which known cause explains a trace's drops, and across arms
//! and seeds, which varied factor does.
//!
//! Reads a [`Trace`] (and, for runs, the manifest), never burn. Returns plain
//! data; `report` and `check` present and judge it.

pub mod arms;
pub mod bench;
pub mod config;
pub mod evidence;
pub mod overfit;
pub mod period;
pub mod signatures;
pub mod spikes;
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
pub use config::AttributionConfig;
pub use evidence::{Direction, EventTest, LogUnits};
pub use overfit::{OverfitVerdict, Overfitting, TrendTest, TrendWindow};
pub use period::{Hint, RecurringDrops};
pub use signatures::{DataOrderTest, FoldedProfile, LastBatchTest, RunningMeanTest};
pub use spikes::SpikeEpisode;
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
    /// Smaller than [`AttributionConfig::min_effect_log`]: detected, but too small to ask
    /// for a cause (`explained_by` is `none`).
    #[serde(default)]
    pub minor: bool,
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
    /// The log's own units: steps per log point, and whether points are window summaries.
    #[serde(default)]
    pub units: LogUnits,
    /// Each event tested on its own (epoch starts, LR decreases, warm restarts, ...).
    #[serde(default)]
    pub event_tests: Vec<EventTest>,
    /// Spikes that last several points and come back (see [`spikes`]).
    #[serde(default)]
    pub spike_episodes: Vec<SpikeEpisode>,
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

    /// The per-event tests of one kind, in step order.
    pub fn tests_of(&self, kind: EventKind) -> impl Iterator<Item = &EventTest> {
        self.event_tests.iter().filter(move |t| t.kind == kind)
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
    /// Decision thresholds (see [`config`]).
    pub attribution: AttributionConfig,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            detect: DetectConfig::default(),
            shifts: 499,
            alpha: 0.05,
            reset_every_epochs: None,
            seed: 0x00d5_c09e,
            attribution: AttributionConfig::default(),
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
    /// The shape for `kind` in the log's own units, on a series of `n` points: physical
    /// delays (an LR cut's settling) are steps turned into points, every line has at least
    /// `min_window_points` and at most `max_window_share` of the series, and in a log of
    /// window summaries the point whose window straddles the event belongs to neither side.
    fn of(kind: EventKind, units: LogUnits, cfg: &AttributionConfig, n: usize) -> JumpShape {
        let cap = ((n as f64 * cfg.max_window_share) as usize).max(cfg.min_window_points.min(n));
        let window = |steps: u64| units.points(steps).max(cfg.min_window_points).min(cap);
        match kind {
            // A short last batch right before the boundary must not pose as a drop after it;
            // re-seen samples act on the very first batch, so the line after starts at once.
            EventKind::EpochStart => JumpShape {
                gap: 1,
                settle: units.straddle(),
                window: window(cfg.event_window_steps),
            },
            // An LR cut acts through the optimizer: momentum and the shrinking noise ball
            // take tens of steps to bring the loss to its new level, so the line after the
            // cut starts once that has settled, and reaches further to see the new level.
            EventKind::LrDecrease => JumpShape {
                gap: 0,
                settle: units.points(cfg.lr_settle_steps) + units.straddle(),
                window: window(cfg.lr_window_steps),
            },
            _ => JumpShape {
                gap: 0,
                settle: units.straddle(),
                window: window(cfg.event_window_steps),
            },
        }
    }
}

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
    /// The fences of other events only (not this type's own).
    other_fences: Vec<usize>,
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
    let other_fences = fence_idx.clone();
    fence_idx.extend(at.iter().copied());
    fence_idx.sort_unstable();
    fence_idx.dedup();
    Windows {
        at,
        left,
        right,
        fences: fence_idx,
        other_fences,
    }
}

/// One measured jump: the event's place in its type's list, the index it was measured
/// at, the jump in log-loss and its z.
#[derive(Debug, Clone, Copy)]
struct Jump {
    k: usize,
    at: usize,
    jump: f64,
    z: f64,
    /// At a random time: the windows kept at least three quarters of the event's own room
    /// on each side after stopping at other events' fences too (only such draws test one
    /// event alone).
    full: bool,
}

/// The jumps at the events of `w`, moved by `offset` points (0: at the events themselves).
/// At a random time the windows must have about the room the event's own had before the
/// ends of the series (at least three quarters on each side): a line shortened by the end
/// bends less with the curve, and a null of short windows would make any event on a curved
/// stretch look significant (short logs). Fences cut random windows as they cut the event's.
fn jumps(p: &Prepared, w: &Windows, offset: isize, shape: JumpShape) -> Vec<Jump> {
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
            if offset != 0 {
                // Not cut short by the ends of the series (fences cut the event's own too).
                let own_l = wl.min(shape.gap + shape.window);
                let own_r = wr.min(shape.settle + shape.window);
                if 4 * (a2 - lo) < 3 * own_l || 4 * (hi - a2) < 3 * own_r {
                    return None;
                }
            }
            // At a random time the windows stop at fences too, as the event's own did. At
            // offset 0 the own events among them are the window ends already.
            let i = w.fences.partition_point(|&f| f < a2);
            if i > 0 {
                lo = lo.max(w.fences[i - 1]);
            }
            if i < w.fences.len() && w.fences[i] > a2 {
                hi = hi.min(w.fences[i]);
            }
            // Room left by other events' fences (this type's own events cut a random window
            // only to keep the null from straddling them, which can only make it wider).
            let (mut lo_o, mut hi_o) = (a2.saturating_sub(wl), (a2 + wr).min(p.len()));
            let j = w.other_fences.partition_point(|&f| f < a2);
            if j > 0 {
                lo_o = lo_o.max(w.other_fences[j - 1]);
            }
            if j < w.other_fences.len() && w.other_fences[j] > a2 {
                hi_o = hi_o.min(w.other_fences[j]);
            }
            let own_l = wl.min(shape.gap + shape.window);
            let own_r = wr.min(shape.settle + shape.window);
            let full = 4 * (a2 - lo_o) >= 3 * own_l && 4 * (hi_o - a2) >= 3 * own_r;
            shaped_jump(p, a2, lo, hi, shape).map(|(jump, z)| Jump {
                k,
                at: a2,
                jump,
                z,
                full,
            })
        })
        .collect()
}

/// Fewest random times a p-value may rest on: with fewer, p cannot reach 5%.
const MIN_NULL_DRAWS: usize = 19;

/// What the tests at one event type need besides the series.
struct StatInput<'a> {
    kind: EventKind,
    steps: &'a [u64],
    /// Steps near which no random time may fall (every event).
    avoid: &'a [u64],
    /// Steps at which windows stop.
    fences: &'a [u64],
    /// For events on epoch boundaries: the other boundaries, the reference.
    epoch_starts: Option<&'a [u64]>,
    units: LogUnits,
}

fn event_stat(
    p: &Prepared,
    input: &StatInput<'_>,
    opts: &AnalyzeOptions,
) -> Option<(EventStat, Vec<EventTest>)> {
    let StatInput {
        kind,
        steps,
        avoid,
        fences,
        epoch_starts,
        units,
    } = *input;
    let cfg = &opts.attribution;
    let w = windows(p, steps, fences);
    let shape = JumpShape::of(kind, units, cfg, p.len());
    let observed = jumps(p, &w, 0, shape);
    if observed.is_empty() {
        return None;
    }
    let effects: Vec<f64> = observed.iter().map(|o| o.jump).collect();
    // Against random times the statistic is the median z, not the median jump: a random
    // time's windows end at whatever fences lie near it, and a raw jump from a short window
    // is noisy enough to pose as any drop.
    let obs_median = stats::median(&observed.iter().map(|o| o.z).collect::<Vec<_>>());
    // One-sided 5% per event: under no effect about one event in twenty passes by chance.
    let z_crit = 1.645;
    let n_drop = observed.iter().filter(|o| o.z < -z_crit).count();
    let n_rise = observed.iter().filter(|o| o.z > z_crit).count();
    let seed = opts.seed ^ (kind as u64 + 1).wrapping_mul(0x9e37_79b9);
    // Measured as this type's jumps are, so a slower-settling test is not compared with
    // boundaries measured the epoch-start way.
    let others: Option<Vec<f64>> = epoch_starts.map(|starts| {
        jumps(p, &windows(p, starts, &[]), 0, shape)
            .iter()
            .map(|o| o.jump)
            .collect()
    });
    // Per event: (p_drop, p_rise).
    let mut per_event: Vec<(f64, f64)> = vec![(1.0, 1.0); observed.len()];
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
            let d = StudentsT::new(0.0, 1.0, (others.len() - 1) as f64).ok();
            let cdf_of = |mean: f64, count: usize| {
                let t = (mean - m) / (sd * (1.0 / count as f64 + 1.0 / others.len() as f64).sqrt());
                d.as_ref().map(|d| d.cdf(t)).unwrap_or(0.5)
            };
            for (slot, o) in per_event.iter_mut().zip(&observed) {
                let cdf = cdf_of(o.jump, 1);
                *slot = (cdf, 1.0 - cdf);
            }
            let cdf = cdf_of(stats::mean(&effects), effects.len());
            (cdf, 1.0 - cdf, "other epoch starts".to_string())
        }
        _ => {
            let n = p.len();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // Within three log points of an event a random time would straddle it.
            let near_steps = units.steps(3);
            let near = |i: usize| {
                let s = p.steps()[i];
                avoid
                    .iter()
                    .chain(steps.iter())
                    .any(|&e| e.abs_diff(s) <= near_steps)
            };
            let mut le = 1usize;
            let mut ge = 1usize;
            let mut done = 0usize;
            // Per observed event: (null z at or below, at or above, draws).
            let mut each: Vec<(usize, usize, usize)> = vec![(0, 0, 0); observed.len()];
            let slot_of: Vec<Option<usize>> = (0..w.at.len())
                .map(|k| observed.iter().position(|o| o.k == k))
                .collect();
            let mut tries = 0usize;
            while done < opts.shifts && tries < opts.shifts * 20 && n > 8 {
                tries += 1;
                let off = rng.random_range(1..n) as isize;
                let moved = |a: usize| ((a as isize + off).rem_euclid(n as isize)) as usize;
                if w.at.iter().any(|&a| near(moved(a))) {
                    continue;
                }
                let null = jumps(p, &w, off, shape);
                if null.is_empty() {
                    continue;
                }
                // One event against itself moved: the jump, measured with windows of the
                // same room, fences included (`Jump::full`). Its z would reward the event's
                // place on the curve: where the curve bends harder the lines fit worse,
                // which shrinks z there.
                for j in null.iter().filter(|j| j.full) {
                    if let Some(slot) = slot_of[j.k] {
                        let e = &mut each[slot];
                        e.0 += (j.jump <= observed[slot].jump) as usize;
                        e.1 += (j.jump >= observed[slot].jump) as usize;
                        e.2 += 1;
                    }
                }
                let m = stats::median(&null.iter().map(|o| o.z).collect::<Vec<_>>());
                le += (m <= obs_median) as usize;
                ge += (m >= obs_median) as usize;
                done += 1;
            }
            for (slot, &(l, g, d)) in per_event.iter_mut().zip(&each) {
                if d >= MIN_NULL_DRAWS {
                    let d = (d + 1) as f64;
                    *slot = ((l + 1) as f64 / d, (g + 1) as f64 / d);
                }
            }
            if observed.len() == 1 {
                // One event: the type's test is that event's own, on its jump (see above).
                let (d, r) = per_event[0];
                let null = if each[0].2 >= MIN_NULL_DRAWS {
                    "random times"
                } else {
                    "none (too few random times)"
                };
                (d, r, null.to_string())
            } else if done < MIN_NULL_DRAWS {
                (1.0, 1.0, "none (too few random times)".to_string())
            } else {
                let d = (done + 1) as f64;
                (le as f64 / d, ge as f64 / d, "random times".to_string())
            }
        }
    };
    let direction = match kind {
        EventKind::WarmRestart | EventKind::LrIncrease => Direction::Rise,
        _ => Direction::Drop,
    };
    let raw_p: Vec<f64> = per_event
        .iter()
        .map(|&(d, r)| if direction == Direction::Drop { d } else { r })
        .collect();
    let adjusted = stats::holm(&raw_p);
    let tests: Vec<EventTest> = observed
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let right_way = match direction {
                Direction::Drop => o.jump <= -cfg.min_effect_log,
                Direction::Rise => o.jump >= cfg.min_effect_log,
            };
            EventTest {
                kind,
                step: p.steps()[o.at],
                ordinal: i + 1,
                jump_log: o.jump,
                z: o.z,
                direction,
                p: raw_p[i],
                p_adjusted: adjusted[i],
                acted: adjusted[i] < cfg.event_alpha && right_way,
            }
        })
        .collect();
    let stat = EventStat {
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
            .map(|o| EventEffect {
                step: p.steps()[o.at],
                jump_log: o.jump,
                z: o.z,
            })
            .collect(),
    };
    Some((stat, tests))
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

/// Log points within which a drop counts as at an event: a share of an epoch (given in
/// log points), at least `min_tolerance_points`.
fn event_tolerance(points_per_epoch: f64, cfg: &AttributionConfig) -> usize {
    ((points_per_epoch * cfg.tolerance_epoch_share).round() as usize).max(cfg.min_tolerance_points)
}

/// The step where an LR warm-up ends: the LR's first maximum, when it rose to it from at
/// most two thirds of it without falling on the way (a linear or exponential warm-up).
fn warmup_end(trace: &Trace) -> Option<u64> {
    let lr: Vec<(u64, f64)> = trace
        .steps
        .iter()
        .filter_map(|s| s.lr.filter(|v| v.is_finite()).map(|v| (s.step, v)))
        .collect();
    let (_, first) = *lr.first()?;
    let mut peak = 0;
    for (i, w) in lr.windows(2).enumerate() {
        if w[1].1 < w[0].1 {
            break;
        }
        if w[1].1 > w[0].1 {
            peak = i + 1;
        }
    }
    (peak > 0 && first <= lr[peak].1 * 2.0 / 3.0).then(|| lr[peak].0)
}

/// Analyses one trace: events, detection, targeted tests, causes, overfitting.
pub fn analyze_trace(trace: &Trace, opts: &AnalyzeOptions) -> TraceAnalysis {
    let ev = events::extract(trace, opts.reset_every_epochs);
    let steps = trace.step_numbers();
    let losses = trace.losses();
    let p = detect::prepare(&steps, &losses);
    let cfg = &opts.attribution;
    let units = LogUnits::of(trace);
    // Drops are placed for the question asked of them here: are they at an event, within
    // the tolerance used below to tie them to one.
    let mut dcfg = opts.detect.clone();
    if let Some(spe) = ev.steps_per_epoch {
        dcfg.placement_window = dcfg.placement_window.min(event_tolerance(spe, cfg));
    }
    let detection = detect::detect_prepared(&p, &ev.all_steps(), &dcfg);

    // Epoch starts that coincide with another event (within one log point) belong to it.
    let one_point = units.steps(1);
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
    let coincides = |s: u64| others.iter().any(|&o| o.abs_diff(s) <= one_point);
    let epoch_starts: Vec<u64> = ev
        .steps_of(EventKind::EpochStart)
        .into_iter()
        .filter(|&s| !coincides(s))
        .collect();
    let all_steps = ev.all_steps();
    let mut stats_list = Vec::new();
    let mut event_tests = Vec::new();
    let epoch_stat = event_stat(
        &p,
        &StatInput {
            kind: EventKind::EpochStart,
            steps: &epoch_starts,
            avoid: &all_steps,
            fences: &[],
            epoch_starts: None,
            units,
        },
        opts,
    );
    if let Some((s, t)) = epoch_stat {
        stats_list.push(s);
        event_tests.extend(t);
    }
    let all_epoch_starts = ev.steps_of(EventKind::EpochStart);
    let warmup = warmup_end(trace);
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
            .filter(|&&x| all_epoch_starts.iter().any(|&e| e.abs_diff(x) <= one_point))
            .count();
        let cmp = (on_boundaries * 2 >= s.len() && !epoch_starts.is_empty())
            .then_some(epoch_starts.as_slice());
        // Between epoch boundaries, an event's windows stop at the boundaries (and other
        // events), so a sawtooth next door cannot pose as its jump; and at the end of an LR
        // warm-up, where the loss's fall changes pace (a line across it bends).
        let fences: Vec<u64> = if cmp.is_some() {
            Vec::new()
        } else {
            all_steps
                .iter()
                .copied()
                .chain(warmup)
                .filter(|f| !s.iter().any(|x| x.abs_diff(*f) <= one_point))
                .collect()
        };
        let input = StatInput {
            kind,
            steps: &s,
            avoid: &all_steps,
            fences: &fences,
            epoch_starts: cmp,
            units,
        };
        if let Some((st, t)) = event_stat(&p, &input, opts) {
            stats_list.push(st);
            event_tests.extend(t);
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
    // Which events of each kind a named cause stands on: all of them when the type-level
    // test names it, only those that acted on their own when only per-event tests do.
    let mut acting: Vec<(EventKind, Vec<u64>)> = Vec::new();
    let mut event_cause = |kind: EventKind,
                           cause: Cause,
                           want_drop: bool,
                           causes: &mut Vec<CauseFinding>| {
        let Some(s) = stat_of(kind) else { return };
        let (p_adj, sig, dir_ok) = if want_drop {
            (
                s.p_drop_adjusted,
                s.n_significant_drops,
                s.median_effect_log.estimate <= -cfg.min_effect_log,
            )
        } else {
            (
                s.p_rise_adjusted,
                s.n_significant_rises,
                s.median_effect_log.estimate >= cfg.min_effect_log,
            )
        };
        let frac = sig as f64 / s.n_tested.max(1) as f64;
        // The median can be pushed past the null by many tiny, individually invisible jumps;
        // a cause must also show at a good share of its events (five times the chance rate),
        // and be large enough to matter (`min_effect_log`).
        if p_adj < alpha && dir_ok && frac >= cfg.min_share_significant {
            acting.push((kind, ev.steps_of(kind)));
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
            return;
        }
        // One event of the type can act where the others do not (the first of several LR
        // cuts, before the model has converged): named by that event's own test. The
        // report says which events acted (the per-event tests are its evidence).
        let acted: Vec<&EventTest> = event_tests
            .iter()
            .filter(|t| t.kind == kind && t.acted)
            .collect();
        if let Some(best) = acted
            .iter()
            .min_by(|a, b| a.p_adjusted.total_cmp(&b.p_adjusted))
        {
            let frac = acted.len() as f64 / s.n_tested.max(1) as f64;
            acting.push((kind, acted.iter().map(|t| t.step).collect()));
            causes.push(CauseFinding {
                cause,
                confidence: (1.0 - best.p_adjusted).clamp(0.0, 0.999),
                level: level_of(best.p_adjusted, frac).min(ConfidenceLevel::Medium),
                effect_log: Some(Interval::point(best.jump_log)),
                named_by_test: true,
                drops_explained: 0,
                evidence: Vec::new(),
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

    // Each detected drop: at which event, and so explained by which cause. Tolerances are
    // counted in log points and compared in steps.
    let k = units.interval_steps;
    let tol0 = event_tolerance(spe as f64, cfg) as u64 * k;
    let aftermath = cfg
        .lr_aftermath_steps
        .max(units.steps(cfg.min_aftermath_points));
    let spike_episodes = spikes::episodes(&p, cfg);
    let named = |c: Cause| causes.iter().any(|f| f.cause == c);
    let acting_of = |kind: EventKind| -> &[u64] {
        acting
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(&[], |(_, v)| v.as_slice())
    };
    let mut drops = Vec::new();
    for d in &detection.drops {
        // A drop is placed no better than its size allows: a step of size d in noise s is
        // located to within about (s / d)^2 points, so a small drop a few points off an
        // event is still at it. Capped at a quarter epoch, so no drop is at every event.
        let tol = if d.log > 0.0 && detection.noise_sigma > 0.0 {
            let spread = (detection.noise_sigma / d.log).powi(2).round();
            let cap = (spe / 4).max((tol0 / k) as usize) as f64;
            tol0.max(spread.min(cap) as u64 * k)
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
        // At an event of `kind` that the named cause stands on.
        let at_acting =
            |kind: EventKind| acting_of(kind).iter().any(|&e| e.abs_diff(d.step) <= tol);
        // The loss takes a while to reach its new level after a cut (`lr_aftermath_steps`).
        let settling_after_cut = |step: u64| {
            acting_of(EventKind::LrDecrease)
                .iter()
                .any(|&e| step + tol >= e && step <= e + aftermath + tol)
        };
        let in_episode = spike_episodes
            .iter()
            .any(|e| e.peak < d.step && e.covers(d.step, tol));
        let minor = d.log < cfg.min_effect_log
            || (k > 1 && d.log < cfg.min_drop_noise_sigmas * detection.noise_sigma);
        let shape = if in_episode {
            DropShape::Recovery
        } else {
            d.shape
        };
        let explained_by = if named(Cause::RunningMeanArtifact) {
            // A running mean's every wiggle is the logger's, not the model's.
            Cause::RunningMeanArtifact
        } else if in_episode {
            // The fall back of a spike episode is the spike's.
            Cause::LossSpike
        } else if shape == DropShape::Recovery {
            if named(Cause::LastBatch) && (at(EventKind::EpochStart) || at(EventKind::LastBatch)) {
                Cause::LastBatch
            } else if named(Cause::WarmRestart) {
                Cause::WarmRestart
            } else if minor {
                Cause::None
            } else {
                Cause::LossSpike
            }
        } else if settling_after_cut(d.step) && named(Cause::LrChange) {
            Cause::LrChange
        } else if at_acting(EventKind::WarmRestart) && named(Cause::WarmRestart) {
            Cause::WarmRestart
        } else if at(EventKind::EpochStart) && named(Cause::RunningMeanArtifact) {
            Cause::RunningMeanArtifact
        } else if at_acting(EventKind::EpochStart) && named(Cause::EpochBoundary) {
            Cause::EpochBoundary
        } else if (at(EventKind::EpochStart) || at(EventKind::LastBatch)) && named(Cause::LastBatch)
        {
            Cause::LastBatch
        } else if named(Cause::DataOrder) && spe > 0 {
            Cause::DataOrder
        } else if named(Cause::WarmRestart) {
            // Within a restart cycle the loss falls as the LR anneals.
            Cause::WarmRestart
        } else if minor {
            // Too small to ask for a cause (`min_effect_log`).
            Cause::None
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
                aftermath
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
            shape,
            explained_by,
            event,
            minor: minor && explained_by == Cause::None,
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
    for f in causes.iter_mut().filter(|f| f.cause != Cause::None) {
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
        units,
        event_tests,
        spike_episodes,
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

    /// A per-step log: `n` steps, noise `sigma` on log-loss, a slow decline, with
    /// `epoch_len` epochs whose starts drop the loss by `epoch_drop` for good, and LR cuts
    /// to a tenth at `cuts` (each `(step, effect)`: the loss eases down by `effect` with a
    /// time constant of 10 steps).
    fn planted(
        n: u64,
        sigma: f64,
        epoch_len: Option<u64>,
        epoch_drop: f64,
        cuts: &[(u64, f64)],
        seed: u64,
    ) -> Trace {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut t = Trace::new("planted");
        for step in 0..n {
            let noise: f64 = StandardNormal.sample(&mut rng);
            let epoch = epoch_len.map(|l| step / l);
            let mut log = 0.5 - step as f64 / (4.0 * n as f64) + sigma * noise;
            log -= epoch_drop * epoch.unwrap_or(0) as f64;
            let mut lr = 0.1;
            for &(c, effect) in cuts.iter().filter(|(c, _)| step >= *c) {
                log -= effect * (1.0 - (-((step - c) as f64) / 10.0).exp());
                lr /= 10.0;
            }
            t.steps.push(StepRecord {
                step,
                epoch,
                batch: epoch_len.map(|l| step % l),
                loss: log.exp(),
                lr: Some(lr),
                batch_size: Some(64),
            });
        }
        t
    }

    /// The mean of the loss over each window of `k` steps, logged at the window's last step
    /// with that step's epoch and LR (as the Hugging Face Trainer logs with
    /// `logging_steps = k`).
    fn window_means(t: &Trace, k: usize) -> Trace {
        let mut out = Trace::new(format!("{}-k{k}", t.name));
        for w in t.steps.chunks(k).filter(|w| w.len() == k) {
            let last = w[k - 1];
            out.steps.push(StepRecord {
                loss: w.iter().map(|s| s.loss).sum::<f64>() / k as f64,
                ..last
            });
        }
        out.sampling = Some(crate::import::Sampling::window_mean(Some(k as u64)));
        out
    }

    fn named(a: &TraceAnalysis) -> Vec<Cause> {
        let mut v: Vec<Cause> = a.causes.iter().map(|c| c.cause).collect();
        v.sort();
        v
    }

    #[test]
    fn of_three_lr_cuts_only_the_first_acts_and_the_drop_after_it_is_that_cuts() {
        let t = planted(
            6000,
            0.05,
            None,
            0.0,
            &[(3000, 0.25), (4000, 0.0), (5000, 0.0)],
            7,
        );
        let a = analyze_trace(&t, &AnalyzeOptions::default());
        assert_eq!(named(&a), vec![Cause::LrChange], "{:?}", a.causes);
        let acted: Vec<u64> = a
            .tests_of(EventKind::LrDecrease)
            .filter(|t| t.acted)
            .map(|t| t.step)
            .collect();
        assert_eq!(acted, vec![3000], "{:?}", a.event_tests);
        assert_eq!(a.tests_of(EventKind::LrDecrease).count(), 3);
        let first = a.tests_of(EventKind::LrDecrease).next().unwrap();
        assert!(
            first.jump_log < -0.15 && first.p_adjusted < 0.05,
            "{first:?}"
        );
        for d in a.drops.iter().filter(|d| (2990..=3150).contains(&d.step)) {
            assert_eq!(d.explained_by, Cause::LrChange, "{d:?}");
        }
        assert!(a.drops.iter().all(|d| d.explained_by != Cause::Unexplained));
    }

    #[test]
    fn a_one_percent_staircase_on_a_smooth_log_names_no_cause() {
        // hf_t5_cnndm: epoch starts drop the loss by about 1% in a log with 0.2% noise. The
        // test at epoch starts is significant; the effect is below `min_effect_log`.
        let t = planted(3000, 0.002, Some(1000), 0.01, &[], 3);
        let a = analyze_trace(&t, &AnalyzeOptions::default());
        let s = a.stat(EventKind::EpochStart).unwrap();
        assert!(s.p_drop < 0.05, "{s:?}");
        assert_eq!(named(&a), vec![Cause::None], "{:?} {:?}", a.causes, a.drops);
        // The same staircase at 10% is named.
        let t = planted(3000, 0.002, Some(1000), 0.1, &[], 3);
        let a = analyze_trace(&t, &AnalyzeOptions::default());
        assert!(a.names(Cause::EpochBoundary), "{:?}", a.causes);
    }

    #[test]
    fn the_same_run_logged_as_window_means_every_10_50_or_500_steps_gives_the_same_causes() {
        let t = planted(60_000, 0.1, Some(10_000), 0.15, &[(35_000, 0.3)], 11);
        let expected = vec![Cause::EpochBoundary, Cause::LrChange];
        let a = analyze_trace(&t, &AnalyzeOptions::default());
        assert_eq!(named(&a), expected, "k = 1: {:?}", a.causes);
        for k in [10, 50, 500] {
            let a = analyze_trace(&window_means(&t, k), &AnalyzeOptions::default());
            assert_eq!(a.units.interval_steps, k as u64);
            assert!(a.units.aggregated);
            assert_eq!(
                named(&a),
                expected,
                "k = {k}: {:?} drops {:?} tests {:?}",
                a.causes,
                a.drops,
                a.event_tests
            );
            let lr = a.tests_of(EventKind::LrDecrease).next().unwrap();
            assert!(lr.acted, "k = {k}: {lr:?}");
        }
    }

    #[test]
    fn an_llm_style_spike_is_one_episode_and_its_fall_back_is_the_spikes() {
        let mut t = planted(4000, 0.05, None, 0.0, &[], 5);
        for s in t
            .steps
            .iter_mut()
            .filter(|s| (2000..2040).contains(&s.step))
        {
            s.loss *= 4.0;
        }
        let a = analyze_trace(&t, &AnalyzeOptions::default());
        assert_eq!(a.spike_episodes.len(), 1, "{:?}", a.spike_episodes);
        let e = &a.spike_episodes[0];
        assert_eq!(e.start, 2000);
        assert!((2038..=2042).contains(&e.recovered), "{e:?}");
        assert!((e.height_log - 4f64.ln()).abs() < 0.2, "{e:?}");
        let falls: Vec<&ExplainedDrop> = a
            .drops
            .iter()
            .filter(|d| (2000..=2060).contains(&d.step))
            .collect();
        assert!(!falls.is_empty(), "{:?}", a.drops);
        for d in falls {
            assert_eq!(d.shape, DropShape::Recovery, "{d:?}");
            assert_eq!(d.explained_by, Cause::LossSpike, "{d:?}");
        }
        assert!(!a.names(Cause::Unexplained), "{:?}", a.causes);
        assert!(a.names(Cause::LossSpike), "{:?}", a.causes);
    }
}
