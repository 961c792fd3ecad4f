//! Synthetic loss curves with planted drops, for tests and the accuracy benchmark.
//!
//! A curve is an exponential decay in loss units with multiplicative noise (additive
//! noise on log-loss), plus planted level drops in log-loss. Half of the drops recover
//! part of their size afterwards, gradually, like the sawtooth seen at epoch starts.
//! Everything is drawn from a ChaCha8 stream seeded by a `u64`, so a seed names a curve.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, StudentT};
use serde::{Deserialize, Serialize};

/// The distribution of the per-step noise on log-loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseKind {
    Gaussian,
    /// Student-t with 3 degrees of freedom, scaled so its standard deviation is `sigma`:
    /// most steps are quieter than Gaussian noise of the same sigma, a few are far out.
    StudentT3,
}

/// How large the planted drops are, in noise sigmas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Difficulty {
    /// 0.75 to 2 sigmas.
    Easy,
    /// 0.3 to 0.75 sigmas: below the noise of a single step.
    Hard,
    /// No drops: the same curves, to count false alarms.
    Clean,
}

impl Difficulty {
    /// The range of drop sizes, in noise sigmas; empty for `Clean`.
    pub fn sigmas(self) -> Option<(f64, f64)> {
        match self {
            Difficulty::Easy => Some((0.75, 2.0)),
            Difficulty::Hard => Some((0.3, 0.75)),
            Difficulty::Clean => None,
        }
    }
}

/// What to generate. `SynthSpec::new` gives the benchmark's standard curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSpec {
    pub n: usize,
    pub noise: NoiseKind,
    /// Standard deviation of the log-loss noise.
    pub sigma: f64,
    /// Drop sizes in noise sigmas, drawn uniformly; `None` plants no drop.
    pub drop_sigmas: Option<(f64, f64)>,
    pub n_drops: usize,
    /// Smallest distance between two drops, and between a drop and either end.
    pub min_gap: usize,
    /// Share of the drops (taken alternately) that recover afterwards.
    pub recovering_share: f64,
    /// How much of a recovering drop comes back, eventually.
    pub recover_fraction: f64,
    pub seed: u64,
}

impl SynthSpec {
    /// n = 10,000, sigma = 0.1, 8 drops at least 600 steps apart, half recovering 60%.
    pub fn new(noise: NoiseKind, difficulty: Difficulty, seed: u64) -> Self {
        SynthSpec {
            n: 10_000,
            noise,
            sigma: 0.1,
            drop_sigmas: difficulty.sigmas(),
            n_drops: 8,
            min_gap: 600,
            recovering_share: 0.5,
            recover_fraction: 0.6,
            seed,
        }
    }
}

/// A planted drop, as generated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlantedDrop {
    /// The first step at the lower level.
    pub step: u64,
    /// Size in log-loss (positive: the loss falls by this much).
    pub size_log: f64,
    /// Whether it recovers `recover_fraction` of its size afterwards.
    pub recovers: bool,
}

/// A generated curve and what was planted in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthSeries {
    pub steps: Vec<u64>,
    pub loss: Vec<f64>,
    pub drops: Vec<PlantedDrop>,
    /// Where a planted spike starts, when there is one.
    pub spikes: Vec<u64>,
}

impl SynthSeries {
    /// The true drop steps, in order.
    pub fn drop_steps(&self) -> Vec<u64> {
        self.drops.iter().map(|d| d.step).collect()
    }
}

/// Draws a smooth decay and its noise; returns the log-loss before any planted event.
fn base_log_curve(rng: &mut ChaCha8Rng, n: usize, noise: NoiseKind, sigma: f64) -> Vec<f64> {
    let l0 = 2.3;
    let l_inf = rng.random_range(0.05..0.3);
    let tau = (n as f64) * rng.random_range(0.15..0.4);
    let t3 = StudentT::new(3.0).ok();
    (0..n)
        .map(|t| {
            let trend = l_inf + (l0 - l_inf) * (-(t as f64) / tau).exp();
            let eps: f64 = match (noise, &t3) {
                (NoiseKind::StudentT3, Some(d)) => d.sample(rng) / 3f64.sqrt(),
                _ => StandardNormal.sample(rng),
            };
            trend.ln() + sigma * eps
        })
        .collect()
}

/// `k` sorted positions in `[lo, hi]`, pairwise at least `gap` apart, uniformly over such sets.
fn spaced_positions(
    rng: &mut ChaCha8Rng,
    k: usize,
    lo: usize,
    hi: usize,
    gap: usize,
) -> Vec<usize> {
    let need = gap * k.saturating_sub(1);
    if k == 0 || hi < lo + need {
        return Vec::new();
    }
    let free = hi - lo - need;
    let mut u: Vec<usize> = (0..k).map(|_| rng.random_range(0..=free)).collect();
    u.sort_unstable();
    u.iter()
        .enumerate()
        .map(|(i, &x)| lo + x + i * gap)
        .collect()
}

/// Generates a curve with planted drops, deterministically from `spec.seed`.
pub fn planted(spec: &SynthSpec) -> SynthSeries {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let n = spec.n;
    let mut y = base_log_curve(&mut rng, n, spec.noise, spec.sigma);
    let mut drops = Vec::new();
    if let Some((lo, hi)) = spec.drop_sigmas {
        let gap = spec.min_gap.max(1);
        let positions = spaced_positions(&mut rng, spec.n_drops, gap, n.saturating_sub(gap), gap);
        let n_rec = (positions.len() as f64 * spec.recovering_share).round() as usize;
        for (i, &pos) in positions.iter().enumerate() {
            let size = spec.sigma * rng.random_range(lo..=hi);
            // Alternate so recovering drops are spread over the curve, not bunched at one end.
            let recovers = i % 2 == 1 && i / 2 < n_rec;
            let tau_r = rng.random_range(100.0..250.0);
            for (t, v) in y.iter_mut().enumerate().skip(pos) {
                let back = if recovers {
                    spec.recover_fraction * (1.0 - (-((t - pos) as f64) / tau_r).exp())
                } else {
                    0.0
                };
                *v -= size * (1.0 - back);
            }
            drops.push(PlantedDrop {
                step: pos as u64,
                size_log: size,
                recovers,
            });
        }
    }
    SynthSeries {
        steps: (0..n as u64).collect(),
        loss: y.iter().map(|v| v.exp()).collect(),
        drops,
        spikes: Vec::new(),
    }
}

/// A clean curve with one loss spike: the loss jumps up by `height_log` at `at` and decays
/// back to the trend with time constant `tau` steps, as after an unstable optimizer step.
pub fn spike_then_recovery(
    n: usize,
    at: usize,
    height_log: f64,
    tau: f64,
    seed: u64,
) -> SynthSeries {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut y = base_log_curve(&mut rng, n, NoiseKind::Gaussian, 0.1);
    for (t, v) in y.iter_mut().enumerate().skip(at) {
        *v += height_log * (-((t - at) as f64) / tau.max(1e-9)).exp();
    }
    SynthSeries {
        steps: (0..n as u64).collect(),
        loss: y.iter().map(|v| v.exp()).collect(),
        drops: Vec::new(),
        spikes: if at < n { vec![at as u64] } else { Vec::new() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_curve() {
        let spec = SynthSpec::new(NoiseKind::StudentT3, Difficulty::Hard, 7);
        assert_eq!(planted(&spec), planted(&spec));
        let other = SynthSpec {
            seed: 8,
            ..spec.clone()
        };
        assert_ne!(planted(&spec).loss, planted(&other).loss);
    }

    #[test]
    fn drops_are_spaced_sized_and_half_recover() {
        let spec = SynthSpec::new(NoiseKind::Gaussian, Difficulty::Easy, 3);
        let s = planted(&spec);
        assert_eq!(s.loss.len(), 10_000);
        assert_eq!(s.drops.len(), 8);
        assert_eq!(s.drops.iter().filter(|d| d.recovers).count(), 4);
        for w in s.drops.windows(2) {
            assert!(w[1].step - w[0].step >= 600);
        }
        for d in &s.drops {
            assert!(d.size_log >= 0.075 - 1e-12 && d.size_log <= 0.2 + 1e-12);
        }
        assert!(s.loss.iter().all(|v| v.is_finite() && *v > 0.0));
    }

    #[test]
    fn clean_curves_have_no_drops() {
        let s = planted(&SynthSpec::new(NoiseKind::Gaussian, Difficulty::Clean, 1));
        assert!(s.drops.is_empty());
        assert_eq!(s.loss.len(), 10_000);
    }
}
