//! Every decision threshold of attribution that is not a test's own significance level,
//! named once with its unit, its default and the reason for it.
//!
//! Windows and tolerances that are physical (an optimizer needs tens of steps to carry an
//! LR cut into the loss) are given in optimizer steps and turned into log points with the
//! log's own interval (see [`super::evidence::LogUnits`]); those that are about how many
//! points a fit or a placement needs are given in log points.

/// The thresholds attribution decides with. `AttributionConfig::default()` is what every
/// command uses; tests and benchmarks may change single fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionConfig {
    /// Log-loss (0.02 ≈ 2%). Smallest effect a cause must show to be named (an event
    /// type's median jump, or one event's own jump), and smallest detected drop that asks
    /// for a cause at all. Reason: with a smooth log a test's z grows without bound, so
    /// significance alone names a 1% staircase (hf_t5_cnndm: −0.9%, expected "none") and,
    /// on short clean logs, the bend of the curve at an ineffective LR cut; the smallest
    /// effect in the bundled scenarios and fixtures is several times larger.
    pub min_effect_log: f64,
    /// Noise sigmas (per log point). A detected drop that no named cause explains must also
    /// be at least this many times the per-point noise to count as `unexplained` (or as a
    /// spike's recovery). Reason: a smaller drop does not stand out of the plotted curve; the
    /// detector finds it by averaging many points, which is enough to tie it to an event
    /// whose test holds but not to ask the user for a cause of its own (lf_qwen25: 1.2
    /// sigmas at a resumed run's splice; d2_medwaste: a 1.8-sigma bump in a 20-step median).
    pub min_drop_noise_sigmas: f64,
    /// Probability. Family-wise level of the per-event tests within one event type
    /// (Holm over the type's events). Reason: the usual 5%, per type, as the type-level
    /// tests use across types.
    pub event_alpha: f64,
    /// Share (0–1). Share of a type's events that must show a significant jump for the
    /// type-level test to name its cause. Reason: five times the one-sided 5% chance rate,
    /// so many tiny, individually invisible jumps cannot carry the median past the null.
    pub min_share_significant: f64,
    /// Optimizer steps. The time an LR cut is given to act before the line after it starts.
    /// Reason: momentum and the shrinking noise ball take tens of steps to bring the loss to
    /// its new level (bundled `lr-step`).
    pub lr_settle_steps: u64,
    /// Optimizer steps. Drops up to this long after a cut that acted are the cut's. Reason:
    /// a cut bends the decay as well as moving the level, and the whole-series trend meets
    /// that bend with a drop or two more in the following hundred steps (bundled `lr-step`:
    /// 40 to 90 steps after).
    pub lr_aftermath_steps: u64,
    /// Log points. The aftermath is at least this many log points. Reason: a log written
    /// every k steps (a 20-iteration median, a window mean) spreads a cut's drop over
    /// several points, and the detector places it within a few points of its centre
    /// (d2_nyu_multistep: 7 points after the cut).
    pub min_aftermath_points: usize,
    /// Optimizer steps. Longest line on either side of an epoch start (and of events other
    /// than LR cuts). Reason: long enough to average the noise, short enough that the
    /// curve's bend does not enter the jump.
    pub event_window_steps: u64,
    /// Optimizer steps. Longest line on either side of an LR cut. Reason: the new level
    /// after a cut shows over a longer stretch than an epoch-start drop.
    pub lr_window_steps: u64,
    /// Log points. Every line is allowed at least this many points (when the neighbouring
    /// events leave room). Reason: a line through fewer points is too noisy to measure a
    /// jump on a log written every 20 or 500 steps (d2_nyu_multistep: with 20 points a side
    /// the first cut's −7% is z −1; with 50, clear); per-step logs have 100 or more anyway.
    pub min_window_points: usize,
    /// Share of a series. Longest line, on either side, as a share of the series. Reason:
    /// the null moves the same windows to random times, and on a short log (300 points)
    /// windows longer than this leave too few places for them, or only truncated ones,
    /// whose bias differs from the event's.
    pub max_window_share: f64,
    /// Share of an epoch. A drop within this share of an epoch (at least
    /// `min_tolerance_points`) of an event is at it. Reason: the placement of a drop of a
    /// few noise sigmas is good to a few percent of an epoch.
    pub tolerance_epoch_share: f64,
    /// Log points. Smallest tolerance between a drop and its event. Reason: in a log of
    /// window means (or medians) the point whose window straddles the event and the next
    /// one both carry the drop.
    pub min_tolerance_points: usize,
    /// Log-loss (ln 2 ≈ 0.69). Height above the level before that makes a run of points a
    /// spike episode: the loss at least doubles. Reason: an LLM-style spike is several-fold;
    /// a few percent of bump is noise or a small drop undone.
    pub spike_min_height_log: f64,
    /// Noise sigmas. A spike episode's height is also at least this many noise sigmas.
    /// Reason: in a very noisy log (sigma 0.3) a doubling is a 2-sigma wiggle.
    pub spike_min_height_sigmas: f64,
    /// Log points. Fewest elevated points in a spike episode. Reason: one or two high points
    /// are an outlier, which the detector's `spikes` already report as they are.
    pub spike_min_points: usize,
    /// Optimizer steps. Longest spike episode, start to recovery. Reason: a loss that stays
    /// up longer than this has moved to a new level (a divergence or a restart), which is
    /// no spike.
    pub spike_max_steps: u64,
    /// Log points. The level before a spike is the median of this many points before it.
    pub spike_baseline_points: usize,
    /// Log points. A drop no larger than the curve's own fall over this many points just
    /// before it is a bend (the fall slowing, as at the end of an LR warm-up), not a
    /// sudden drop, and asks for no cause. Reason: two lines meeting at a bend differ by
    /// about the fall of the point or two the bend is smeared over, and a fast early fall
    /// then looks like a drop of several noise sigmas on a quiet log (hf_nsllm: −2.1 % where
    /// the loss had been falling 1 % per point and then flattened); a real step is several
    /// points' fall, and late in training, where the fall is slow, nothing changes.
    pub bend_points: f64,
    /// Log points. The curve's fall before a drop is the slope of a line through this many
    /// points (fewer at the start of the log, at least 5). Reason: long enough that the
    /// slope's noise is a few percent of the per-point noise, short enough to be local.
    pub bend_slope_points: usize,
    /// Standard errors. The slope before a drop counts as a fall only this far below zero
    /// (and with at least 5 points). Reason: on a flat, noisy stretch the fitted slope is
    /// never exactly zero, and its noise must not declare a real drop a bend.
    pub bend_slope_z: f64,
    /// Adjusted p and share of events. An event cause is named at high confidence when its
    /// type-level p is at most `high_p` and at least `high_share` of its events show it on
    /// their own; at medium when p is at most 0.05. Reason: a cause that shows at half its
    /// events with p ≤ 1% is past doubt; at 5% it is a finding to confirm.
    pub high_p: f64,
    pub high_share: f64,
    /// The running-mean test (see `causes/running_mean.rs`).
    pub running_mean: super::causes::RunningMeanConfig,
    /// The data-order test (see `causes/data_order.rs`).
    pub data_order: super::causes::DataOrderConfig,
    /// The last-batch tests (see `causes/last_batch.rs`).
    pub last_batch: super::causes::LastBatchConfig,
}

impl Default for AttributionConfig {
    fn default() -> Self {
        AttributionConfig {
            min_effect_log: 0.02,
            min_drop_noise_sigmas: 2.0,
            event_alpha: 0.05,
            min_share_significant: 0.25,
            lr_settle_steps: 32,
            lr_aftermath_steps: 100,
            min_aftermath_points: 10,
            event_window_steps: 100,
            lr_window_steps: 200,
            min_window_points: 50,
            max_window_share: 0.25,
            tolerance_epoch_share: 0.05,
            min_tolerance_points: 2,
            spike_min_height_log: std::f64::consts::LN_2,
            spike_min_height_sigmas: 6.0,
            spike_min_points: 3,
            spike_max_steps: 2000,
            spike_baseline_points: 20,
            bend_points: 3.0,
            bend_slope_points: 20,
            bend_slope_z: 2.0,
            high_p: 0.01,
            high_share: 0.5,
            running_mean: Default::default(),
            data_order: Default::default(),
            last_batch: Default::default(),
        }
    }
}
