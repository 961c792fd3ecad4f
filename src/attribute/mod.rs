//! Attribution: which known cause explains a trace's drops, and across arms
//! and seeds, which varied factor does.
//!
//! Reads a [`Trace`] (and, for runs, the manifest), never burn. Returns plain
//! data; `report` and `check` present and judge it.

pub mod arms;
pub mod bench;
pub mod causes;
pub mod config;
pub mod cycle;
pub mod evidence;
mod jumps;
pub mod overfit;
pub mod period;
pub mod signatures;
pub mod spikes;
pub mod stats;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::detect::{self, DetectConfig, Detection, DropShape, Prepared};
use crate::events::{self, EventKind, Events};
use crate::trace::{LogMode, Trace};

pub use arms::{ArmAnalysis, DivergedCell, FactorEffect, RunAnalysis, analyze_run};
pub use config::AttributionConfig;
pub use evidence::{Direction, EventTest, Evidence, LogUnits};
use jumps::StatInput;
pub use overfit::{GapTrend, OverfitVerdict, Overfitting, TrainLossSource, TrendTest, TrendWindow};
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

    /// What it means, and what would confirm it (from the cause's rule in [`causes`]).
    pub fn advice(self) -> &'static str {
        match self {
            Cause::Unexplained => {
                "drops at no known event: an escape from a plateau, or a cause the log does not show"
            }
            Cause::None => "no significant drops",
            c => causes::rule(c).map_or("", |r| r.advice()),
        }
    }

    /// What the cause's own test is called, for "evidence from ..." ("no test" for the
    /// outcomes and causes named by drops alone).
    pub fn test_name(self) -> &'static str {
        causes::rule(self).map_or("no test", |r| r.test_name())
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
    pub evidence: Vec<Evidence>,
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
    /// Detected, but too small to ask for a cause (`explained_by` is `none`): under
    /// [`AttributionConfig::min_effect_log`], within the noise of an interval log, or no
    /// larger than the curve's own fall just before it ([`AttributionConfig::bend_points`]).
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
    /// The loss's cycle within the epoch, in steps, when it has one (length-grouped
    /// batches); the epoch-start test then compares whole periods (see [`cycle`]).
    #[serde(default)]
    pub within_epoch_period: Option<u64>,
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

/// The type-level and per-event tests at every event type present, Holm-adjusted across
/// types. Epoch starts that coincide with another event (within one log point) belong to it;
/// an event type mostly on epoch boundaries is compared with the other boundaries.
fn test_events(
    trace: &Trace,
    p: &Prepared,
    ev: &Events,
    units: LogUnits,
    period: Option<usize>,
    opts: &AnalyzeOptions,
) -> (Vec<EventStat>, Vec<EventTest>) {
    const OTHERS: [EventKind; 4] = [
        EventKind::LrDecrease,
        EventKind::WarmRestart,
        EventKind::LrIncrease,
        EventKind::OptimizerReset,
    ];
    let one_point = units.steps(1);
    let others: Vec<u64> = ev
        .events
        .iter()
        .filter(|e| OTHERS.contains(&e.kind))
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
    let mut run = |input: &StatInput<'_>| {
        if let Some((s, t)) = jumps::event_stat(p, input, opts) {
            stats_list.push(s);
            event_tests.extend(t);
        }
    };
    run(&StatInput {
        kind: EventKind::EpochStart,
        steps: &epoch_starts,
        avoid: &all_steps,
        fences: &[],
        epoch_starts: None,
        units,
        period,
    });
    let all_epoch_starts = ev.steps_of(EventKind::EpochStart);
    let warmup = warmup_end(trace);
    for kind in OTHERS {
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
        run(&StatInput {
            kind,
            steps: &s,
            avoid: &all_steps,
            fences: &fences,
            epoch_starts: cmp,
            units,
            period: None,
        });
    }
    let adj_drop = stats::holm(&stats_list.iter().map(|s| s.p_drop).collect::<Vec<_>>());
    let adj_rise = stats::holm(&stats_list.iter().map(|s| s.p_rise).collect::<Vec<_>>());
    for (i, s) in stats_list.iter_mut().enumerate() {
        s.p_drop_adjusted = adj_drop[i];
        s.p_rise_adjusted = adj_rise[i];
    }
    (stats_list, event_tests)
}

/// The loss's cycle within the epoch, in log points (see [`cycle`]); `steps_per_epoch`
/// counts log points.
fn within_epoch_period(p: &Prepared, ev: &Events) -> Option<usize> {
    cycle::within_epoch_period(p, ev.steps_per_epoch?.round() as usize)
}

/// Fewest points a line before a drop is fitted through: with fewer its slope's standard
/// error is too rough to test (three degrees of freedom).
const MIN_BEND_POINTS: usize = 5;

/// Whether drop `d` is no larger than the curve's own fall over `bend_points` points
/// just before it (see [`AttributionConfig::bend_points`]).
fn is_bend(p: &Prepared, d: &detect::LossDrop, cfg: &AttributionConfig) -> bool {
    let end = d.index.min(p.len());
    let from = end.saturating_sub(cfg.bend_slope_points);
    // Before winsorizing: the winsorizer clips a fast early fall towards the trend.
    let (xs, ys): (Vec<f64>, Vec<f64>) = (from..end)
        .filter(|&i| p.log_loss(i).is_some())
        .map(|i| (i as f64, p.raw(i)))
        .unzip();
    if xs.len() < MIN_BEND_POINTS {
        return false;
    }
    let Some((_, slope, rss)) = stats::fit_line(&xs, &ys) else {
        return false;
    };
    let mx = stats::mean(&xs);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let se = (rss / (xs.len() as f64 - 2.0) / sxx).sqrt();
    slope < -cfg.bend_slope_z * se && d.log <= -slope * cfg.bend_points
}

/// Each detected drop: at which event (within a tolerance in log points, compared in steps),
/// and so explained by which cause (see [`causes::explain`]).
fn explain_drops(
    detection: &Detection,
    facts: &causes::Facts,
    named: &causes::Named,
    episodes: &[SpikeEpisode],
) -> Vec<ExplainedDrop> {
    let (cfg, ev, spe) = (facts.cfg, facts.ev, facts.spe);
    let k = facts.units.interval_steps;
    let tol0 = event_tolerance(spe as f64, cfg) as u64 * k;
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
        let in_episode = episodes
            .iter()
            .any(|e| e.peak < d.step && e.covers(d.step, tol));
        let df = causes::DropFacts {
            drop: d,
            tolerance: tol,
            shape: if in_episode {
                DropShape::Recovery
            } else {
                d.shape
            },
            in_episode,
            minor: d.log < cfg.min_effect_log
                || (k > 1 && d.log < cfg.min_drop_noise_sigmas * detection.noise_sigma)
                || is_bend(facts.p, d, cfg),
            ev,
        };
        let explained_by = causes::explain(&df, facts, named);
        // The event column names the event that ties the drop to its cause, where the
        // nearest event of any kind could be another (a last batch one step before the
        // epoch start that explains it).
        let nearest = |kinds: Option<&[EventKind]>, reach: u64| {
            ev.events
                .iter()
                .filter(|e| kinds.is_none_or(|k| k.contains(&e.kind)))
                .filter(|e| e.step.abs_diff(d.step) <= reach)
                .min_by_key(|e| e.step.abs_diff(d.step))
                .map(|e| e.kind)
        };
        let tied =
            causes::rule(explained_by).and_then(|r| nearest(Some(r.ties()), r.reach(tol, facts)));
        drops.push(ExplainedDrop {
            step: d.step,
            log: d.log,
            rel: d.rel,
            z: d.z,
            shape: df.shape,
            explained_by,
            event: tied.or_else(|| nearest(None, tol)),
            minor: df.minor && explained_by == Cause::None,
        });
    }
    drops
}

/// Analyses one trace: events, detection, targeted tests, causes, overfitting.
pub fn analyze_trace(trace: &Trace, opts: &AnalyzeOptions) -> TraceAnalysis {
    let ev = events::extract(trace, opts.reset_every_epochs);
    let steps = trace.step_numbers();
    let losses = trace.losses();
    let p = detect::prepare_with(&steps, &losses, &opts.detect.prepare);
    let cfg = &opts.attribution;
    let units = LogUnits::of(trace);
    // Drops are placed for the question asked of them here: are they at an event, within
    // the tolerance used below to tie them to one.
    let mut dcfg = opts.detect.clone();
    if let Some(spe) = ev.steps_per_epoch {
        dcfg.placement_window = dcfg.placement_window.min(event_tolerance(spe, cfg));
    }
    let detection = detect::detect_prepared(&p, &ev.all_steps(), &dcfg);
    let period = within_epoch_period(&p, &ev);
    let (stats_list, event_tests) = test_events(trace, &p, &ev, units, period, opts);

    let spe = ev.steps_per_epoch.map(|v| v.round() as usize).unwrap_or(0);
    let table = signatures::EpochTable::build(trace, &p, spe);
    let profile = table.as_ref().map(signatures::folded_profile);
    let data_order = table.as_ref().and_then(signatures::data_order);
    let running_mean = table.as_ref().and_then(signatures::running_mean);
    let last_batch = signatures::last_batch(trace, &p, &ev.steps_of(EventKind::EpochStart));
    let spike_episodes = spikes::episodes(&p, cfg);

    let facts = causes::Facts {
        trace,
        p: &p,
        ev: &ev,
        stats: &stats_list,
        event_tests: &event_tests,
        table: table.as_ref(),
        data_order: data_order.as_ref(),
        running_mean: running_mean.as_ref(),
        last_batch: last_batch.as_ref(),
        units,
        cfg,
        alpha: opts.alpha,
        spe,
        period,
    };
    let named = causes::name_all(&facts);
    let drops = explain_drops(&detection, &facts, &named, &spike_episodes);
    let explained: Vec<(u64, Cause)> = drops.iter().map(|d| (d.step, d.explained_by)).collect();
    let mut causes: Vec<CauseFinding> = named.0.into_iter().map(|f| f.finding).collect();
    causes.extend(causes::from_drops(&explained));
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
            evidence: vec![Evidence::DropsAtNoEvent {
                steps: unexplained.clone(),
            }],
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
            evidence: vec![Evidence::NoDrop],
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
        overfitting: overfit::assess(
            &trace.val,
            &overfit::epoch_train_losses(&trace.steps, trace.log_mode),
            final_train,
        ),
        hints,
        units,
        event_tests,
        spike_episodes,
        within_epoch_period: period.map(|k| units.steps(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::StepRecord;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
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
