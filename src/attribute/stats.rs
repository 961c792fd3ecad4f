//! Small statistics the attribution needs: line fits, robust summaries,
//! resampling intervals, multiple-testing correction, trend tests.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{Beta, ContinuousCDF, FisherSnedecor, Normal};

/// An estimate with a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Coverage of [low, high], e.g. 0.95.
    pub level: f64,
}

impl Interval {
    /// An estimate without an interval (from a single value): NaN bounds, `null` in JSON.
    pub fn point(estimate: f64) -> Self {
        Interval {
            estimate,
            low: f64::NAN,
            high: f64::NAN,
            level: 0.95,
        }
    }

    /// Whether there is an interval at all (more than one value went into it).
    pub fn has_bounds(&self) -> bool {
        self.low.is_finite() && self.high.is_finite()
    }

    pub fn excludes_zero(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The q-quantile (0..=1) by linear interpolation.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// Percentile-bootstrap interval of a statistic of one sample. One value has no
/// interval: its bounds are NaN (resampling it would give a zero-width "interval").
pub fn bootstrap(v: &[f64], stat: fn(&[f64]) -> f64, seed: u64, reps: usize) -> Interval {
    let estimate = stat(v);
    if v.len() < 2 {
        return Interval::point(estimate);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut boots = Vec::with_capacity(reps);
    let mut buf = vec![0.0; v.len()];
    for _ in 0..reps {
        for b in buf.iter_mut() {
            *b = *v.choose(&mut rng).unwrap_or(&estimate);
        }
        boots.push(stat(&buf));
    }
    Interval {
        estimate,
        low: quantile(&boots, 0.025),
        high: quantile(&boots, 0.975),
        level: 0.95,
    }
}

/// Percentile-bootstrap interval of mean(b) - mean(a), resampling each group. A group of
/// one value has no spread to resample: the bounds are then NaN.
pub fn bootstrap_diff(a: &[f64], b: &[f64], seed: u64, reps: usize) -> Interval {
    let estimate = mean(b) - mean(a);
    if a.len() < 2 || b.len() < 2 {
        return Interval::point(estimate);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut boots = Vec::with_capacity(reps);
    for _ in 0..reps {
        let ma = (0..a.len())
            .map(|_| a[rng.random_range(0..a.len())])
            .sum::<f64>()
            / a.len() as f64;
        let mb = (0..b.len())
            .map(|_| b[rng.random_range(0..b.len())])
            .sum::<f64>()
            / b.len() as f64;
        boots.push(mb - ma);
    }
    Interval {
        estimate,
        low: quantile(&boots, 0.025),
        high: quantile(&boots, 0.975),
        level: 0.95,
    }
}

/// Holm's step-down adjustment: controls the family-wise error over several tests.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![1.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in idx.iter().enumerate() {
        let adj = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    out
}

/// Ordinary least squares of y on x: (intercept, slope, residual sum of squares).
pub fn fit_line(x: &[f64], y: &[f64]) -> Option<(f64, f64, f64)> {
    let n = x.len();
    if n < 3 || y.len() != n {
        return None;
    }
    let mx = mean(x);
    let my = mean(y);
    let sxx: f64 = x.iter().map(|v| (v - mx) * (v - mx)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let slope = sxy / sxx;
    let icpt = my - slope * mx;
    let rss = x
        .iter()
        .zip(y)
        .map(|(a, b)| (b - icpt - slope * a).powi(2))
        .sum();
    Some((icpt, slope, rss))
}

/// Mann-Kendall trend test: (S, two-sided p) under no ties correction beyond the usual.
pub fn mann_kendall(y: &[f64]) -> (f64, f64) {
    let n = y.len();
    if n < 3 {
        return (0.0, 1.0);
    }
    let mut s = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            s += (y[j] - y[i]).signum();
        }
    }
    let nf = n as f64;
    let var = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0;
    let z = if s > 0.0 {
        (s - 1.0) / var.sqrt()
    } else if s < 0.0 {
        (s + 1.0) / var.sqrt()
    } else {
        0.0
    };
    (s, 2.0 * normal_sf(z.abs()))
}

/// Largest lag-1 autocorrelation [`ar1_of_residuals`] returns: keeps the variance factor
/// finite.
const MAX_AR1: f64 = 0.95;

/// The lag-1 autocorrelation of a series' noise, as an AR(1) coefficient: the
/// autocorrelation of its residuals about its Theil-Sen line, with the first-order
/// small-sample bias of that estimate removed (E r1 = phi - (1 + 3 phi) / n, Marriott and
/// Pope 1954), clamped to [0, 0.95]. Negative estimates give 0: the correction never makes a
/// test more liberal. Fewer than 4 points, or no noise at all, give 0.
pub fn ar1_of_residuals(y: &[f64]) -> f64 {
    let n = y.len();
    if n < 4 {
        return 0.0;
    }
    let slope = theil_sen(y);
    let r: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(i, v)| v - slope * i as f64)
        .collect();
    let m = mean(&r);
    let ss: f64 = r.iter().map(|v| (v - m).powi(2)).sum();
    // Residuals at rounding level (an exactly straight line) carry no noise to correlate.
    let scale = y
        .iter()
        .fold(0.0f64, |a, v| a.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    if ss.is_nan() || ss <= n as f64 * (1e-9 * scale).powi(2) {
        return 0.0;
    }
    let r1 = r.windows(2).map(|w| (w[0] - m) * (w[1] - m)).sum::<f64>() / ss;
    let nf = n as f64;
    (r1 + (1.0 + 3.0 * r1) / nf).clamp(0.0, MAX_AR1)
}

/// Hamed and Rao's (1998) factor n/n* on the variance of Mann-Kendall's S for `n` points
/// whose noise is AR(1) with coefficient `phi`: 1 + 2 / (n (n-1) (n-2)) times the sum over
/// lags k of (n-k)(n-k-1)(n-k-2) rho_k, with rho_k = (6/pi) asin(phi^k / 2) the rank
/// correlation of two normal points phi^k correlated. 1 for independent points.
pub fn mk_variance_factor_ar1(n: usize, phi: f64) -> f64 {
    if n < 3 || phi <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let sum: f64 = (1..n - 2)
        .map(|k| {
            let kf = k as f64;
            let rho = 6.0 / std::f64::consts::PI * (phi.powi(k as i32) / 2.0).asin();
            (nf - kf) * (nf - kf - 1.0) * (nf - kf - 2.0) * rho
        })
        .sum();
    (1.0 + 2.0 * sum / (nf * (nf - 1.0) * (nf - 2.0))).max(1.0)
}

/// Mann-Kendall with its variance widened for serially correlated points (Hamed and Rao
/// 1998, with the AR(1) coefficient of [`ar1_of_residuals`]): successive validation points
/// of one training run are correlated (the model changes little from one epoch to the
/// next), and the plain test, which assumes independent points, then finds rises in a flat
/// curve's slow wander. Returns (S, two-sided p, the AR(1) coefficient used).
pub fn mann_kendall_ar1(y: &[f64]) -> (f64, f64, f64) {
    let (s, p) = mann_kendall(y);
    let phi = ar1_of_residuals(y);
    if phi <= 0.0 || s == 0.0 {
        return (s, p, phi);
    }
    let nf = y.len() as f64;
    let var = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0 * mk_variance_factor_ar1(y.len(), phi);
    let z = (s.abs() - 1.0) / var.sqrt();
    (s, 2.0 * normal_sf(z), phi)
}

/// Theil-Sen slope: the median of pairwise slopes, robust to a stray point.
pub fn theil_sen(y: &[f64]) -> f64 {
    let mut slopes = Vec::new();
    for i in 0..y.len() {
        for j in i + 1..y.len() {
            slopes.push((y[j] - y[i]) / (j - i) as f64);
        }
    }
    median(&slopes)
}

/// Upper tail of the standard normal.
pub fn normal_sf(z: f64) -> f64 {
    Normal::standard().sf(z)
}

/// Upper tail of an F distribution; 1 where the degrees of freedom make no sense.
pub fn f_sf(f: f64, d1: f64, d2: f64) -> f64 {
    match FisherSnedecor::new(d1, d2) {
        Ok(d) if f.is_finite() => d.sf(f.max(0.0)),
        _ => 1.0,
    }
}

/// Clopper-Pearson (exact binomial) interval of coverage `level` for `k` successes in `n`
/// trials: conservative, and never outside [0, 1] (k = 0 gives a lower bound of 0).
pub fn clopper_pearson(k: usize, n: usize, level: f64) -> Interval {
    if n == 0 {
        return Interval {
            estimate: f64::NAN,
            low: 0.0,
            high: 1.0,
            level,
        };
    }
    let (kf, nf) = (k.min(n) as f64, n as f64);
    let tail = (1.0 - level) / 2.0;
    let low = if k == 0 {
        0.0
    } else {
        Beta::new(kf, nf - kf + 1.0).map_or(0.0, |b| b.inverse_cdf(tail))
    };
    let high = if k >= n {
        1.0
    } else {
        Beta::new(kf + 1.0, nf - kf).map_or(1.0, |b| b.inverse_cdf(1.0 - tail))
    };
    Interval {
        estimate: kf / nf,
        low,
        high,
        level,
    }
}

/// Pearson correlation; NaN when either side is constant.
pub fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 3 {
        return f64::NAN;
    }
    let (ma, mb) = (mean(&a[..n]), mean(&b[..n]));
    let mut sab = 0.0;
    let mut saa = 0.0;
    let mut sbb = 0.0;
    for i in 0..n {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma).powi(2);
        sbb += (b[i] - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_adjusts_the_smallest_p_by_the_number_of_tests() {
        let adj = holm(&[0.01, 0.04, 0.03]);
        assert!((adj[0] - 0.03).abs() < 1e-12);
        assert!((adj[2] - 0.06).abs() < 1e-12);
        assert!((adj[1] - 0.06).abs() < 1e-12);
    }

    #[test]
    fn mann_kendall_sees_a_steady_rise_and_not_noise() {
        let rise: Vec<f64> = (0..10)
            .map(|i| i as f64 + if i % 2 == 0 { 0.3 } else { 0.0 })
            .collect();
        assert!(mann_kendall(&rise).1 < 0.001);
        let flat = [1.0, 1.2, 0.9, 1.1, 1.0, 0.95, 1.05];
        assert!(mann_kendall(&flat).1 > 0.2);
    }

    #[test]
    fn serial_correlation_widens_mann_kendall_and_independent_noise_does_not() {
        // A rise with a slow wander about it: each residual mostly the one before it.
        let wander: Vec<f64> = (0..14)
            .map(|i| 1.0 + 0.004 * i as f64 + 0.02 * (i as f64 / 2.0).sin())
            .collect();
        let (s, p_plain) = mann_kendall(&wander);
        let (s2, p, phi) = mann_kendall_ar1(&wander);
        assert_eq!(s, s2);
        assert!(phi > 0.0 && p > p_plain, "phi {phi}, p {p} vs {p_plain}");
        // Alternating noise is negatively correlated: no correction, never a smaller p.
        let alt: Vec<f64> = (0..12)
            .map(|i| 0.01 * i as f64 + if i % 2 == 0 { 0.02 } else { -0.02 })
            .collect();
        assert_eq!(ar1_of_residuals(&alt), 0.0);
        assert_eq!(mann_kendall_ar1(&alt).1, mann_kendall(&alt).1);
        // An exactly straight line has no noise to correlate.
        let line: Vec<f64> = (0..6).map(|i| 0.45 + 0.05 * i as f64).collect();
        assert_eq!(ar1_of_residuals(&line), 0.0);
    }

    #[test]
    fn the_hamed_rao_factor_is_one_without_correlation_and_grows_with_it() {
        assert_eq!(mk_variance_factor_ar1(10, 0.0), 1.0);
        let f3 = mk_variance_factor_ar1(20, 0.3);
        let f6 = mk_variance_factor_ar1(20, 0.6);
        assert!(1.0 < f3 && f3 < f6, "{f3} {f6}");
        // Large n: close to 1 + 2 sum_k rho_k (about 1.8 for phi = 0.3).
        let big = mk_variance_factor_ar1(2000, 0.3);
        assert!((big - 1.8).abs() < 0.1, "{big}");
    }

    #[test]
    fn clopper_pearson_matches_the_exact_binomial_interval() {
        // Reference values: R's binom.test(k, n)$conf.int.
        let iv = clopper_pearson(5, 100, 0.95);
        assert!((iv.low - 0.01643).abs() < 1e-4, "{iv:?}");
        assert!((iv.high - 0.11284).abs() < 1e-4, "{iv:?}");
        let zero = clopper_pearson(0, 100, 0.95);
        assert_eq!(zero.low, 0.0);
        assert!((zero.high - 0.03622).abs() < 1e-4, "{zero:?}");
        let all = clopper_pearson(20, 20, 0.95);
        assert_eq!(all.high, 1.0);
        assert!((all.low - 0.83157).abs() < 1e-4, "{all:?}");
    }

    #[test]
    fn bootstrap_interval_covers_the_estimate() {
        let v: Vec<f64> = (0..40).map(|i| (i % 7) as f64).collect();
        let iv = bootstrap(&v, median, 1, 500);
        assert!(iv.low <= iv.estimate && iv.estimate <= iv.high);
        let d = bootstrap_diff(&[0.0, 0.1, -0.1], &[1.0, 1.1, 0.9], 2, 500);
        assert!(d.excludes_zero() && d.estimate > 0.9);
    }

    #[test]
    fn one_value_gives_no_interval_rather_than_a_zero_width_one() {
        let iv = bootstrap(&[0.3], median, 1, 500);
        assert_eq!(iv.estimate, 0.3);
        assert!(!iv.has_bounds() && !iv.excludes_zero());
        assert!(!bootstrap_diff(&[0.0], &[1.0, 1.1], 2, 500).has_bounds());
    }
}
