//! Spike episodes: the loss goes up several-fold for a while, then comes back.
//!
//! The detector reports sharp rises as single `spikes` and each fall as a drop; an
//! LLM-style spike (several-fold for tens of steps) then reads as no spike and a drop or
//! two that nothing explains. An episode is found on the raw log-loss: a run of points
//! at least [`AttributionConfig::spike_min_height_log`] above the median of the points
//! before it, up to where the loss is back below half the height. Its fall back is the
//! spike's, not a drop of its own.

use serde::{Deserialize, Serialize};

use super::config::AttributionConfig;
use super::stats;
use crate::detect::Prepared;

/// One spike episode, in optimizer steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpikeEpisode {
    /// The first elevated point.
    pub start: u64,
    /// The highest point.
    pub peak: u64,
    /// The first point back below half the height.
    pub recovered: u64,
    /// Peak over the level before, in log-loss (ln of the factor).
    pub height_log: f64,
    /// `recovered - start`, in steps.
    pub width: u64,
    /// Points at least half the height up.
    pub elevated_points: usize,
}

impl SpikeEpisode {
    /// Whether `step` lies in the episode or within `tol` steps after its recovery.
    pub fn covers(&self, step: u64, tol: u64) -> bool {
        step >= self.start && step <= self.recovered + tol
    }
}

/// The spike episodes of a prepared series, in order.
pub fn episodes(p: &Prepared, cfg: &AttributionConfig) -> Vec<SpikeEpisode> {
    let n = p.len();
    let b = cfg.spike_baseline_points.max(3);
    let min_height = cfg
        .spike_min_height_log
        .max(cfg.spike_min_height_sigmas * p.noise_sigma());
    let mut out = Vec::new();
    if n < b + cfg.spike_min_points + 1 {
        return out;
    }
    // A median of three, so one stray point neither starts nor ends an episode.
    let med3 = |i: usize| {
        let a = p.raw(i.saturating_sub(1));
        let c = p.raw((i + 1).min(n - 1));
        let v = p.raw(i);
        a.min(v).max(a.max(v).min(c))
    };
    let mut i = b;
    while i < n {
        if p.raw(i) - p.raw(i - 1) < 0.5 * min_height && med3(i) - p.raw(i - 1) < min_height {
            i += 1;
            continue;
        }
        let before: Vec<f64> = (i - b..i).map(|j| p.raw(j)).collect();
        let base = stats::median(&before);
        if med3(i) - base < min_height {
            i += 1;
            continue;
        }
        let start_step = p.steps()[i];
        let mut peak = i;
        let mut j = i;
        let mut back = None;
        while j < n && p.steps()[j] - start_step <= cfg.spike_max_steps {
            if p.raw(j) > p.raw(peak) {
                peak = j;
            }
            let height = p.raw(peak) - base;
            if j > peak && med3(j) < base + height / 2.0 {
                back = Some(j);
                break;
            }
            j += 1;
        }
        let Some(back) = back else {
            // Still up: a new level, not a spike.
            i = j.max(i + 1);
            continue;
        };
        let height = p.raw(peak) - base;
        let elevated = (i..back)
            .filter(|&k| p.raw(k) - base >= height / 2.0)
            .count();
        if elevated >= cfg.spike_min_points {
            out.push(SpikeEpisode {
                start: start_step,
                peak: p.steps()[peak],
                recovered: p.steps()[back],
                height_log: height,
                width: p.steps()[back] - start_step,
                elevated_points: elevated,
            });
        }
        i = back + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::prepare;

    fn series(spike: Option<(usize, usize, f64)>, outlier: Option<usize>) -> (Vec<u64>, Vec<f64>) {
        let steps: Vec<u64> = (0..3000u64).collect();
        let loss = steps
            .iter()
            .map(|&s| {
                let t = s as usize;
                let mut l = 3.0 * (-(s as f64) / 1500.0).exp() + 1.0;
                // Deterministic wiggle of about 2%.
                l *= 1.0 + 0.02 * ((s as f64) * 1.7).sin();
                if let Some((at, len, factor)) = spike
                    && t >= at
                    && t < at + len
                {
                    l *= factor;
                }
                if outlier == Some(t) {
                    l *= 4.0;
                }
                l
            })
            .collect();
        (steps, loss)
    }

    #[test]
    fn a_several_fold_spike_for_tens_of_steps_is_one_episode() {
        let (s, l) = series(Some((1500, 40, 4.0)), None);
        let e = episodes(&prepare(&s, &l), &AttributionConfig::default());
        assert_eq!(e.len(), 1, "{e:?}");
        let e = &e[0];
        assert_eq!(e.start, 1500);
        assert!((1500..1540).contains(&e.peak), "{e:?}");
        assert!((1540..=1542).contains(&e.recovered), "{e:?}");
        assert!((e.height_log - 4f64.ln()).abs() < 0.1, "{e:?}");
        assert!((40..=42).contains(&e.width), "{e:?}");
    }

    #[test]
    fn a_single_point_outlier_is_no_episode() {
        let (s, l) = series(None, Some(1200));
        assert!(episodes(&prepare(&s, &l), &AttributionConfig::default()).is_empty());
        // A loss that goes up and stays up is a new level, not a spike.
        let (s, l) = series(Some((2000, 1000, 3.0)), None);
        assert!(episodes(&prepare(&s, &l), &AttributionConfig::default()).is_empty());
    }
}
