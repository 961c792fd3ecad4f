//! A period within the epoch: length-grouped batching (the default of several fine-tuning
//! recipes) makes the loss rise and fall with a period of tens of steps, as batches of long
//! and short sequences take turns. With such a cycle a line through the points next to an
//! epoch start measures the cycle's phase there as much as the jump; the epoch-start test
//! then compares whole periods (see `jumps::shaped_jump`).
//!
//! Assumes the cycle is a fixed number of log points long over the stretch examined; a
//! cycle whose length drifts gives a weak autocorrelation peak and is not reported.

use crate::detect::Prepared;

/// Shortest period reported, in log points: below it, "cycle" and noise autocorrelation
/// cannot be told apart.
const MIN_PERIOD: usize = 3;
/// Longest period looked for: a third of an epoch (so at least three cycles show in every
/// epoch), and at most this many points, which bounds the cost.
const MAX_PERIOD: usize = 512;
/// Points examined: the last this many (the cost is points × lags).
const MAX_POINTS: usize = 1 << 16;
/// Autocorrelation of the detrended loss at the period: a cycle that explains under a
/// third of the variation left after the trend is not worth changing the test for.
const MIN_ACF: f64 = 0.3;
/// The autocorrelation must dip by this much between lag 1 and the period: smooth,
/// positively correlated noise falls monotonically and has no peak.
const MIN_DIP: f64 = 0.2;

/// The within-epoch period in log points, if the loss has a clear one.
pub fn within_epoch_period(p: &Prepared, points_per_epoch: usize) -> Option<usize> {
    let max_lag = (points_per_epoch / 3).min(MAX_PERIOD);
    if max_lag < MIN_PERIOD + 1 {
        return None;
    }
    let start = p.len().saturating_sub(MAX_POINTS);
    let y: Vec<f64> = (start..p.len())
        .map(|i| p.log_loss(i).unwrap_or(f64::NAN))
        .collect();
    let r = detrend(&y, 2 * max_lag + 1);
    if r.len() < 4 * max_lag {
        return None;
    }
    let acf = autocorrelation(&r, max_lag);
    let (best, &peak) = acf
        .iter()
        .enumerate()
        .skip(MIN_PERIOD)
        .max_by(|a, b| a.1.total_cmp(b.1))?;
    let dip = acf[1..best].iter().copied().fold(f64::INFINITY, f64::min);
    (peak >= MIN_ACF && dip <= peak - MIN_DIP).then(|| refine(&acf, best))
}

/// The peak of a cycle is flat (a sine's autocorrelation one lag off is cos(2π/P) of it),
/// so noise can move it by a lag; the multiples of the true period stay high further out,
/// while a period one off drifts out of phase by one more lag at each multiple.
fn refine(acf: &[f64], best: usize) -> usize {
    let max_lag = acf.len() - 1;
    let score = |l: usize| {
        let v: Vec<f64> = (1..)
            .map(|k| k * l)
            .take_while(|&m| m <= max_lag)
            .map(|m| acf[m])
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    (best.saturating_sub(2).max(MIN_PERIOD)..=(best + 2).min(max_lag))
        .max_by(|&a, &b| score(a).total_cmp(&score(b)))
        .unwrap_or(best)
}

/// The series minus its centred moving mean of `width` points (NaN where a point is missing
/// or the window runs off the ends).
fn detrend(y: &[f64], width: usize) -> Vec<f64> {
    let half = width / 2;
    let mut sum = vec![0.0; y.len() + 1];
    let mut cnt = vec![0usize; y.len() + 1];
    for (i, v) in y.iter().enumerate() {
        let ok = v.is_finite();
        sum[i + 1] = sum[i] + if ok { *v } else { 0.0 };
        cnt[i + 1] = cnt[i] + ok as usize;
    }
    (0..y.len())
        .map(|i| {
            if i < half || i + half >= y.len() || !y[i].is_finite() {
                return f64::NAN;
            }
            let (a, b) = (i - half, i + half + 1);
            let c = cnt[b] - cnt[a];
            if c == 0 {
                f64::NAN
            } else {
                y[i] - (sum[b] - sum[a]) / c as f64
            }
        })
        .collect()
}

/// Autocorrelation at lags 0..=max_lag over the pairs where both points are present.
fn autocorrelation(r: &[f64], max_lag: usize) -> Vec<f64> {
    let var: f64 = r.iter().filter(|v| v.is_finite()).map(|v| v * v).sum();
    (0..=max_lag)
        .map(|lag| {
            let s: f64 = r
                .iter()
                .zip(&r[lag..])
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .map(|(a, b)| a * b)
                .sum();
            if var > 0.0 { s / var } else { 0.0 }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn series(period: Option<usize>, n: usize, seed: u64) -> Prepared {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let steps: Vec<u64> = (0..n as u64).collect();
        let loss: Vec<f64> = (0..n)
            .map(|i| {
                let noise: f64 = StandardNormal.sample(&mut rng);
                let cycle = period.map_or(0.0, |p| {
                    0.1 * (2.0 * std::f64::consts::PI * i as f64 / p as f64).sin()
                });
                (1.0 - i as f64 / (2 * n) as f64 + cycle + 0.05 * noise).exp()
            })
            .collect();
        detect::prepare(&steps, &loss)
    }

    #[test]
    fn a_length_grouped_cycle_of_40_steps_is_found() {
        assert_eq!(
            within_epoch_period(&series(Some(40), 4000, 1), 800),
            Some(40)
        );
    }

    #[test]
    fn plain_noise_and_a_smooth_trend_have_no_period() {
        for seed in 0..10 {
            assert_eq!(within_epoch_period(&series(None, 4000, seed), 800), None);
        }
    }

    #[test]
    fn a_period_longer_than_a_third_of_the_epoch_is_not_looked_for() {
        assert_eq!(within_epoch_period(&series(Some(40), 4000, 2), 90), None);
    }
}
