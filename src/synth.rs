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
    let y = base_log_curve(&mut rng, spec.n, spec.noise, spec.sigma);
    plant(&mut rng, spec, y, &|_| spec.sigma)
}

/// Plants `spec`'s drops into the log-curve `y`, each sized in units of the noise scale
/// `sigma(t)` where it is planted.
fn plant(
    rng: &mut ChaCha8Rng,
    spec: &SynthSpec,
    mut y: Vec<f64>,
    sigma: &dyn Fn(usize) -> f64,
) -> SynthSeries {
    let n = y.len();
    let mut drops = Vec::new();
    if let Some((lo, hi)) = spec.drop_sigmas {
        let gap = spec.min_gap.max(1);
        let positions = spaced_positions(rng, spec.n_drops, gap, n.saturating_sub(gap), gap);
        let n_rec = (positions.len() as f64 * spec.recovering_share).round() as usize;
        for (i, &pos) in positions.iter().enumerate() {
            let size = sigma(pos) * rng.random_range(lo..=hi);
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

/// Trend shapes of the widened benchmark (issue 11: no single generator decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrendShape {
    /// An exponential decay to a floor (the in-repo generator's shape).
    ExpFloor,
    /// A power law, loss ∝ (1 + t/t0)^-a.
    PowerLaw,
    /// A linear LR warm-up over the first 5% (the loss hardly moves, then falls fast),
    /// then an exponential decay.
    WarmupDecay,
    /// A plateau for the first third, then a second descent.
    PlateauSecondDescent,
}

impl TrendShape {
    pub const ALL: [TrendShape; 4] = [
        TrendShape::ExpFloor,
        TrendShape::PowerLaw,
        TrendShape::WarmupDecay,
        TrendShape::PlateauSecondDescent,
    ];

    pub fn label(self) -> &'static str {
        match self {
            TrendShape::ExpFloor => "exp-floor",
            TrendShape::PowerLaw => "power-law",
            TrendShape::WarmupDecay => "warmup-decay",
            TrendShape::PlateauSecondDescent => "plateau-2nd",
        }
    }

    /// The log-loss trend at `t` of `n`, with the shape's random parameters drawn from `rng`
    /// once (`params`).
    fn at(self, t: f64, n: f64, p: &[f64; 3]) -> f64 {
        let (l0, l_inf) = (2.3, p[0]);
        let level = match self {
            TrendShape::ExpFloor => l_inf + (l0 - l_inf) * (-t / (n * p[1])).exp(),
            TrendShape::PowerLaw => {
                let t0 = n * 0.002 * p[2];
                l_inf + (l0 - l_inf) * (1.0 + t / t0).powf(-0.3 - 0.4 * p[1])
            }
            TrendShape::WarmupDecay => {
                let w = 0.05 * n;
                let eff = if t < w {
                    t * t / (2.0 * w)
                } else {
                    t - w / 2.0
                };
                l_inf + (l0 - l_inf) * (-eff / (n * p[1])).exp()
            }
            TrendShape::PlateauSecondDescent => {
                let mid = l_inf + 0.5 * (l0 - l_inf);
                let first = mid + (l0 - mid) * (-t / (n * 0.05)).exp();
                let s = n / 3.0;
                if t < s {
                    first
                } else {
                    let drop = (mid - l_inf) * (1.0 - (-(t - s) / (n * p[1] * 0.6)).exp());
                    first - drop
                }
            }
        };
        level.ln()
    }
}

/// Noise models of the widened benchmark, all on the log scale with scale `sigma`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoiseModel {
    Gaussian,
    /// Student-t(3) scaled so its MAD matches the Gaussian's: the same bulk, heavy tails.
    StudentT3Mad,
    /// Right-skewed, as minibatch losses are (a few hard batches far above): a centred
    /// log-normal, unit variance.
    Skewed,
    /// Gaussian whose scale shrinks with the loss: sigma × sqrt(loss / initial loss).
    Shrinking,
}

impl NoiseModel {
    pub const ALL: [NoiseModel; 4] = [
        NoiseModel::Gaussian,
        NoiseModel::StudentT3Mad,
        NoiseModel::Skewed,
        NoiseModel::Shrinking,
    ];

    pub fn label(self) -> &'static str {
        match self {
            NoiseModel::Gaussian => "gaussian",
            NoiseModel::StudentT3Mad => "t3 (MAD)",
            NoiseModel::Skewed => "skewed",
            NoiseModel::Shrinking => "shrinking",
        }
    }
}

/// A widened-benchmark series: `spec` gives length, drops and seed; `shape` and `noise`
/// replace the in-repo curve and noise. Drops are sized in units of the noise's bulk
/// scale where they are planted (for shrinking noise, the scale at that point).
pub fn planted_wide(spec: &SynthSpec, shape: TrendShape, noise: NoiseModel) -> SynthSeries {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5eed_0f11);
    let params = [
        rng.random_range(0.05..0.3),
        rng.random_range(0.15..0.4),
        rng.random_range(0.5..2.0),
    ];
    let n = spec.n as f64;
    let t3 = StudentT::new(3.0).ok();
    // MAD of Student-t(3) is 0.7649; of a standard Gaussian 0.6745.
    let t3_scale = 0.6745 / 0.7649;
    let lognormal_sd = ((0.5f64).exp() * ((0.5f64).exp() - 1.0)).sqrt();
    let first = shape.at(0.0, n, &params);
    let levels: Vec<f64> = (0..spec.n)
        .map(|t| shape.at(t as f64, n, &params))
        .collect();
    let scale = |t: usize| match noise {
        NoiseModel::Shrinking => spec.sigma * ((levels[t] - first) / 2.0).exp(),
        _ => spec.sigma,
    };
    let y: Vec<f64> = (0..spec.n)
        .map(|t| {
            let z: f64 = StandardNormal.sample(&mut rng);
            let eps = match noise {
                NoiseModel::Gaussian | NoiseModel::Shrinking => z,
                NoiseModel::StudentT3Mad => {
                    t3.as_ref().map_or(z, |d| d.sample(&mut rng) * t3_scale)
                }
                NoiseModel::Skewed => ((0.5f64.sqrt() * z).exp() - (0.25f64).exp()) / lognormal_sd,
            };
            levels[t] + scale(t) * eps
        })
        .collect();
    plant(&mut rng, spec, y, &scale)
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

    /// Residuals of a wide series about its noise-free trend (same seed, no noise).
    fn noise_of(shape: TrendShape, noise: NoiseModel, seed: u64) -> (Vec<f64>, SynthSeries) {
        let spec = SynthSpec::new(NoiseKind::Gaussian, Difficulty::Clean, seed);
        let s = planted_wide(&spec, shape, noise);
        let quiet = planted_wide(
            &SynthSpec {
                sigma: 0.0,
                ..spec.clone()
            },
            shape,
            noise,
        );
        let r = s
            .loss
            .iter()
            .zip(&quiet.loss)
            .map(|(a, b)| a.ln() - b.ln())
            .collect();
        (r, s)
    }

    fn mad(v: &[f64]) -> f64 {
        let mut a: Vec<f64> = v.iter().map(|x| x.abs()).collect();
        a.sort_by(f64::total_cmp);
        a[a.len() / 2]
    }

    #[test]
    fn every_widened_trend_falls_and_every_noise_model_has_its_shape() {
        for shape in TrendShape::ALL {
            let (_, s) = noise_of(shape, NoiseModel::Gaussian, 1);
            let head: f64 = s.loss[..500].iter().sum::<f64>() / 500.0;
            let tail: f64 = s.loss[s.loss.len() - 500..].iter().sum::<f64>() / 500.0;
            assert!(tail < 0.8 * head, "{shape:?}: {head} -> {tail}");
        }
        let (g, _) = noise_of(TrendShape::ExpFloor, NoiseModel::Gaussian, 2);
        let (t, _) = noise_of(TrendShape::ExpFloor, NoiseModel::StudentT3Mad, 2);
        // The same bulk (MAD within 10%), heavier tails.
        assert!(
            (mad(&t) / mad(&g) - 1.0).abs() < 0.1,
            "{} {}",
            mad(&t),
            mad(&g)
        );
        let big = |v: &[f64]| v.iter().filter(|x| x.abs() > 0.4).count();
        assert!(big(&t) > 10 * big(&g).max(1), "{} {}", big(&t), big(&g));
        // Right-skewed: more far above than far below.
        let (k, _) = noise_of(TrendShape::ExpFloor, NoiseModel::Skewed, 3);
        let above = k.iter().filter(|&&x| x > 0.2).count();
        let below = k.iter().filter(|&&x| x < -0.2).count();
        assert!(above > 2 * below, "{above} {below}");
        // Shrinking: less noise at the end, where the loss is low.
        let (h, _) = noise_of(TrendShape::ExpFloor, NoiseModel::Shrinking, 4);
        assert!(mad(&h[9000..]) < 0.6 * mad(&h[..1000]));
    }
}
