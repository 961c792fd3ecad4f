//! Every threshold the [`Watcher`](super::Watcher) uses, with its default and its reason.
//!
//! Lengths are in logged points (one `push` is one point), not optimizer steps: a log
//! written every 10 steps gives one point per 10 steps, and the windows count what was
//! logged. Event tolerances, which compare steps with steps, are in steps.

use serde::{Deserialize, Serialize};

use crate::attribute::AttributionConfig;
use crate::detect::DetectConfig;

/// How the watcher decides. `WatchConfig::default()` is what `dropscope watch` uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchConfig {
    /// Short sides of the two-window shift statistic, in points. Default 64 and 256: the
    /// short side finds an easy drop (a noise sigma or more) within tens of points; the
    /// long one a drop below one step's noise, which needs hundreds of points to show
    /// (the batch detector's scales run 64 to 512 for the same reason).
    pub scales: Vec<usize>,
    /// Long (left) side of the shift statistic, as a multiple of the short side. Default 4,
    /// the batch detector's `long_ratio`: a line fitted over four times the points
    /// predicts the level after the boundary almost as well as a plain mean would (its
    /// prediction variance is 1.4 sigma^2 / h against 1 sigma^2 / h), so a smooth decay
    /// is not mistaken for a drop.
    pub long_ratio: usize,
    /// |z| of the shift statistic from which a drop candidate is followed by the batch
    /// detector. Default 4.0: a candidate costs a few detector runs; at 4 a clean series
    /// costs about 70 runs per million points (`bench watch`), and the detector decides
    /// what is a drop.
    pub z_candidate: f64,
    /// Most points the batch detector is run on to confirm a candidate (the most recent
    /// ones; 16 right windows of the scale that raised it, so 1,024 for the short one).
    /// Default 2048: the longest scale's windows (4 x 256 before, 256 after) with room on
    /// the left, as the detector's own windows reach up to 1024 points on a side.
    pub confirm_points: usize,
    /// Points from a candidate to the second detector run on it, doubling for each
    /// further run (until the candidate expires, after 8 of its right windows). Default
    /// 32: a drop the shift statistic sees may need a few times more points after it
    /// before the detector's local line fits confirm it, so it is looked at again after
    /// 32, 96, 224, ... points. Also the first pause between candidates that expire
    /// unconfirmed, doubling up to `max_retry_points`.
    pub retry_points: usize,
    /// The longest pause between candidates that expire unconfirmed (a long bend of the
    /// curve). Default 2048, one window.
    pub max_retry_points: usize,
    /// Fewest points after a drop before it can be confirmed. Default 16: the detector's
    /// local fits need points on both sides, and fewer make its size a guess.
    pub min_points_after: usize,
    /// The batch detector's settings for confirmation runs. Default: the detector's own,
    /// with the global search off (`z_global = 0`): it refits a whole-series trend per
    /// candidate (microseconds per point below 50,000 points), which per confirmation
    /// would cost more than all the streaming work, and on a 2,048-point window the local
    /// tests see nearly as much.
    pub detect: DetectConfig,

    /// What explains a drop and what makes a spike episode: attribution's own thresholds
    /// (`spike_min_height_log`, `spike_min_height_sigmas`, `spike_min_points`, the event
    /// tolerances, the LR aftermath, `min_effect_log`, `min_drop_noise_sigmas`), so that
    /// `watch` and `investigate` call the same things by the same names.
    #[serde(skip)]
    pub attribution: AttributionConfig,
    /// Points over which the running level spikes are measured against adapts (its EWMA
    /// span). Default 32: short enough to follow the decay of early training, long enough
    /// that the few points before an episode is called barely lift it (they are also
    /// clipped at 4 sigmas).
    pub level_span: usize,

    /// A sustained rise: the mean log-loss over this many points ... Default 100, the
    /// window of llm-foundry's and the running-mean baselines.
    pub rise_window: usize,
    /// ... stays at least this many times above its lowest value so far ... Default 2.0:
    /// the loss has doubled from its best level, which no schedule does on purpose.
    pub rise_ratio: f64,
    /// ... for this many points in a row. Default 200: longer than a spike episode (tens of
    /// points), so a spike that recovers never reads as divergence.
    pub rise_hold: usize,
    /// Non-finite losses in a row that make a divergence. Default 1: a NaN or infinite
    /// training loss is what every trainer's guard stops on, and waiting costs the steps
    /// the guard is there to save.
    pub nonfinite_points: usize,

    /// Points before any alert but divergence. Default 320: the longest scale's windows
    /// and a settled noise estimate; early training is a fast decay, not an event.
    pub warmup_points: usize,
    /// Validation points kept for the overfitting rule. Default 256: the rule costs
    /// O(n^2 log n) per validation point (Mann-Kendall and Theil-Sen), under a millisecond
    /// at 256. Beyond this many, the oldest points before the best go first (they take no
    /// part in the rise test), then the oldest after it.
    pub max_val_points: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            scales: vec![64, 256],
            long_ratio: 4,
            z_candidate: 4.0,
            confirm_points: 2048,
            retry_points: 32,
            max_retry_points: 2048,
            min_points_after: 16,
            detect: DetectConfig {
                z_global: 0.0,
                ..DetectConfig::default()
            },
            attribution: AttributionConfig::default(),
            level_span: 32,
            rise_window: 100,
            rise_ratio: 2.0,
            rise_hold: 200,
            nonfinite_points: 1,
            warmup_points: 320,
            max_val_points: 256,
        }
    }
}

impl WatchConfig {
    /// The points the watcher keeps: the confirmation window, or the longest shift
    /// statistic's windows if those are longer.
    pub fn ring_points(&self) -> usize {
        let longest = self.scales.iter().max().copied().unwrap_or(0);
        self.confirm_points
            .max(longest * (self.long_ratio + 1))
            .max(self.rise_window)
            .max(2)
    }

    /// The height over the running level, in log-loss, that starts a spike episode at a
    /// noise sigma: attribution's `spike_min_height_log` (the loss doubles), and at least
    /// `spike_min_height_sigmas` sigmas on a very noisy log.
    pub fn spike_threshold(&self, sigma: f64) -> f64 {
        let a = &self.attribution;
        a.spike_min_height_log
            .max(a.spike_min_height_sigmas * sigma)
    }

    /// Points in a row above the spike threshold that make an episode, and back below
    /// half its peak that end one: attribution's `spike_min_points` (one or two high points
    /// are an outlier).
    pub fn spike_points(&self) -> usize {
        self.attribution.spike_min_points.max(1)
    }
}
