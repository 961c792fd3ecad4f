//! Spike episodes and sustained rises, point by point.
//!
//! A spike episode starts when the log-loss stays `spike_threshold` above its running
//! level for `spike_points` points in a row (so a single bad batch is none), and recovers
//! when it stays below half its peak height for as many points (attribution's episodes
//! end where the loss is back below half the height). The level is an EWMA of the
//! log-loss, its input clipped to a few noise sigmas, frozen during an episode.
//!
//! A sustained rise is divergence without NaN: the mean log-loss over `rise_window`
//! points stays `ln(rise_ratio)` above the lowest such mean so far for `rise_hold` points.

use super::alert::{AlertKind, DivergenceReason};
use super::config::WatchConfig;
use super::ring::Ring;

/// A level input counts at most this many noise sigmas from the level: the points before
/// an episode is called must not lift the level it is measured against.
const LEVEL_CLIP_SIGMAS: f64 = 4.0;

/// An event found by a tracker: where it is, and what.
pub(crate) type Found = (u64, AlertKind);

#[derive(Debug, Clone, Copy)]
struct Episode {
    start: u64,
    peak: f64,
    /// Points in a row back below half the peak height, and the first of them.
    below: usize,
    below_from: u64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Spikes {
    level: Option<f64>,
    above: usize,
    above_from: u64,
    above_peak: f64,
    episode: Option<Episode>,
    /// The last episode's span, once it recovered.
    last: Option<(u64, u64)>,
}

impl Spikes {
    /// Takes in one point; `armed` is false during the warm-up (the level still learns).
    pub(crate) fn update(
        &mut self,
        step: u64,
        y: f64,
        sigma: Option<f64>,
        armed: bool,
        cfg: &WatchConfig,
    ) -> Option<Found> {
        let Some(level) = self.level else {
            self.level = Some(y);
            return None;
        };
        let threshold = cfg.spike_threshold(sigma.unwrap_or(0.0));
        let height = y - level;
        if let Some(ep) = &mut self.episode {
            ep.peak = ep.peak.max(height);
            if height < ep.peak / 2.0 {
                if ep.below == 0 {
                    ep.below_from = step;
                }
                ep.below += 1;
            } else {
                ep.below = 0;
            }
            if ep.below < cfg.spike_points() {
                return None;
            }
            let ep = *ep;
            self.episode = None;
            self.last = Some((ep.start, ep.below_from));
            let kind = AlertKind::SpikeRecovered {
                started: ep.start,
                peak_log: ep.peak,
            };
            return Some((ep.below_from, kind));
        }
        self.follow_level(level, y, sigma, cfg);
        if !(armed && sigma.is_some() && height >= threshold) {
            self.above = 0;
            return None;
        }
        if self.above == 0 {
            self.above_from = step;
            self.above_peak = height;
        }
        self.above += 1;
        self.above_peak = self.above_peak.max(height);
        if self.above < cfg.spike_points() {
            return None;
        }
        self.above = 0;
        self.episode = Some(Episode {
            start: self.above_from,
            peak: self.above_peak,
            below: 0,
            below_from: step,
        });
        let kind = AlertKind::SpikeStarted {
            height_log: self.above_peak,
            episode: true,
        };
        Some((self.above_from, kind))
    }

    fn follow_level(&mut self, level: f64, y: f64, sigma: Option<f64>, cfg: &WatchConfig) {
        let input = match sigma {
            Some(s) => y.clamp(level - LEVEL_CLIP_SIGMAS * s, level + LEVEL_CLIP_SIGMAS * s),
            None => y,
        };
        let alpha = 2.0 / (cfg.level_span.max(1) as f64 + 1.0);
        self.level = Some(level + alpha * (input - level));
    }

    /// Whether `step` lies after the start of the current episode or of the last one,
    /// up to its width again after its recovery (the detector places a fall's drop
    /// anywhere along the fall): a drop there is the spike's fall back.
    pub(crate) fn covers(&self, step: u64) -> bool {
        let current = self.episode.is_some_and(|e| step > e.start);
        let last = self
            .last
            .is_some_and(|(a, b)| step > a && step <= b + (b - a));
        current || last
    }
}

/// The mean log-loss over the last `rise_window` points against its lowest value so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rise {
    sum: f64,
    since_exact: usize,
    best: Option<f64>,
    held: usize,
    held_from: u64,
}

impl Rise {
    /// Takes in the ring's newest point (already pushed).
    pub(crate) fn update(&mut self, ring: &Ring, cfg: &WatchConfig) -> Option<Found> {
        let w = cfg.rise_window.max(1);
        if ring.len() < w {
            return None;
        }
        // Exact once per window, O(1) in between: rounding cannot drift.
        if ring.len() == w || self.since_exact >= w || ring.len() <= w {
            self.sum = ring.log_sum(0, w);
            self.since_exact = 0;
        } else {
            self.sum += ring.log_back(0) - ring.log_back(w);
            self.since_exact += 1;
        }
        let mean = self.sum / w as f64;
        let best = self.best.map_or(mean, |b| b.min(mean));
        self.best = Some(best);
        if mean - best < cfg.rise_ratio.ln() {
            self.held = 0;
            return None;
        }
        if self.held == 0 {
            self.held_from = ring.step_back(0);
        }
        self.held += 1;
        (self.held == cfg.rise_hold.max(1)).then(|| {
            let reason = DivergenceReason::SustainedRise {
                ratio: (mean - best).exp(),
                window: w,
                held: self.held,
            };
            (self.held_from, AlertKind::Divergence { reason })
        })
    }
}
