//! Small statistics the attribution needs: line fits, robust summaries,
//! resampling intervals, multiple-testing correction, trend tests.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor, Normal};

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
