//! Local noise scale and outlier damping of a log-loss series.
//!
//! Minibatch noise is large, heavy-tailed and shrinks as the loss falls, so the scale is
//! estimated per block from first differences (a level shift moves one difference, not
//! the median of many) and outliers are pulled in towards a running median, which keeps
//! level shifts sharp where a running mean would smear them.

/// Points per block of the local noise estimate: enough for a stable MAD, small enough to
/// follow the noise as the loss falls.
pub(crate) const NOISE_BLOCK: usize = 128;
pub(crate) const NOISE_BLOCK_SHIFT: u32 = NOISE_BLOCK.trailing_zeros();
/// Half-width of the robust level that outliers are pulled towards.
const MEDIAN_HALF: usize = 7;
/// MAD of a difference of two independent N(0, s^2) values, in units of s.
const MAD_DIFF_TO_SIGMA: f64 = 1.482_602_218_505_602 / std::f64::consts::SQRT_2;
/// The smallest scale used, so constant series give zero statistics, not NaN.
pub(crate) const SIGMA_FLOOR: f64 = 1e-9;

/// Robust sigma of each block of `NOISE_BLOCK` points, smoothed over neighbouring blocks.
pub(crate) fn block_sigmas(y: &[f64]) -> Vec<f64> {
    if y.is_empty() {
        return Vec::new();
    }
    let n_blocks = y.len().div_ceil(NOISE_BLOCK);
    let mut raw = Vec::with_capacity(n_blocks);
    let mut buf = Vec::with_capacity(NOISE_BLOCK);
    for b in 0..n_blocks {
        let start = (b * NOISE_BLOCK).max(1);
        let end = ((b + 1) * NOISE_BLOCK).min(y.len());
        buf.clear();
        buf.extend((start..end).map(|i| (y[i] - y[i - 1]).abs()));
        raw.push(abs_diff_sigma(&mut buf));
    }
    // A block that holds a drop, a spike's edges or a quiet stretch should not set its own
    // scale: the median of three neighbours does.
    let smooth: Vec<f64> = (0..n_blocks)
        .map(|b| {
            let lo = b.saturating_sub(1);
            let hi = (b + 2).min(n_blocks);
            let mut w: Vec<f64> = raw[lo..hi].to_vec();
            median(&mut w)
        })
        .collect();
    let global = global_sigma(&smooth);
    smooth
        .into_iter()
        .map(|s| if s > SIGMA_FLOOR { s } else { global })
        .collect()
}

/// The series-wide scale: the median of block scales (so quiet and noisy stretches count
/// by their length), floored.
pub(crate) fn global_sigma(blocks: &[f64]) -> f64 {
    let mut v: Vec<f64> = blocks
        .iter()
        .copied()
        .filter(|s| *s > SIGMA_FLOOR)
        .collect();
    if v.is_empty() {
        return SIGMA_FLOOR;
    }
    median(&mut v).max(SIGMA_FLOOR)
}

/// Sigma from absolute first differences; falls back to their mean when more than half are
/// zero (losses logged with few digits).
fn abs_diff_sigma(d: &mut [f64]) -> f64 {
    if d.is_empty() {
        return 0.0;
    }
    let mad = median(d);
    if mad > 0.0 {
        return mad * MAD_DIFF_TO_SIGMA;
    }
    // Mean absolute difference of N(0, 2 s^2) is 2 s / sqrt(pi).
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    mean * std::f64::consts::PI.sqrt() / 2.0
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    *m
}

fn med3(a: f64, b: f64, c: f64) -> f64 {
    a.min(b).max(a.max(b).min(c))
}

fn med5(v: [f64; 5]) -> f64 {
    // Sorting network that leaves the median in the middle (7 compare-swaps).
    let [mut a, mut b, mut c, mut d, mut e] = v;
    let cs = |x: &mut f64, y: &mut f64| {
        let (lo, hi) = (x.min(*y), x.max(*y));
        *x = lo;
        *y = hi;
    };
    cs(&mut a, &mut b);
    cs(&mut d, &mut e);
    cs(&mut a, &mut d);
    cs(&mut b, &mut e);
    cs(&mut c, &mut d);
    cs(&mut b, &mut c);
    cs(&mut c, &mut d);
    c
}

/// Medians of five around each point; the first and last two take the nearest full one.
fn medians_of_five(y: &[f64]) -> Vec<f64> {
    let n = y.len();
    if n < 5 {
        let mut s = y.to_vec();
        let m = median(&mut s);
        return vec![m; n];
    }
    (0..n)
        .map(|i| {
            let c = i.clamp(2, n - 3);
            med5([y[c - 2], y[c - 1], y[c], y[c + 1], y[c + 2]])
        })
        .collect()
}

/// A robust local level over 15 points: the median of three medians of five. Like a
/// running median it ignores lone outliers and keeps a level shift sharp, at a fraction
/// of the cost. Near the ends it takes the nearest full level: an outlier among the first
/// few points must be clipped as firmly as one in the middle.
fn level(m5: &[f64], i: usize) -> f64 {
    let n = m5.len();
    if n <= 2 * MEDIAN_HALF {
        return m5[i];
    }
    let c = i.clamp(MEDIAN_HALF, n - 1 - MEDIAN_HALF);
    med3(m5[c - 5], m5[c], m5[c + 5])
}

#[cfg(test)]
pub(crate) fn running_median(y: &[f64]) -> Vec<f64> {
    let m5 = medians_of_five(y);
    (0..y.len()).map(|i| level(&m5, i)).collect()
}

/// Clips each value to within `k` local sigmas of the robust local level, and returns that
/// level at the middle of the series (a typical value, to centre on).
pub(crate) fn winsorize(y: &mut [f64], sigma_of: impl Fn(usize) -> f64, k: f64) -> f64 {
    let m5 = medians_of_five(y);
    for (i, v) in y.iter_mut().enumerate() {
        let m = level(&m5, i);
        let k = k * sigma_of(i);
        *v = v.clamp(m - k, m + k);
    }
    if m5.is_empty() {
        0.0
    } else {
        level(&m5, m5.len() / 2)
    }
}

/// Points per block of the long-run variance check.
const LONG_RUN_BLOCK: usize = 64;
/// The most the long-run factor may inflate variances.
const LONG_RUN_MAX: f64 = 4.0;

/// Means of whole `LONG_RUN_BLOCK`-point blocks; `None` with fewer than 16 blocks, too
/// few for a long-run estimate.
fn block_means(y: &[f64]) -> Option<Vec<f64>> {
    let b = LONG_RUN_BLOCK;
    let means: Vec<f64> = y
        .chunks_exact(b)
        .map(|c| c.iter().sum::<f64>() / b as f64)
        .collect();
    (means.len() >= 16).then_some(means)
}

/// How much more a mean over many points varies than independent noise would make it:
/// the ratio of the long-run variance (from second differences of block means) to the
/// short-run one (from second differences of points), at least 1. Clipped outliers share
/// their neighbours' level, and real minibatch losses are often autocorrelated; both
/// make long windows noisier than their pointwise scatter says.
pub(crate) fn long_run_factor(y: &[f64]) -> f64 {
    let b = LONG_RUN_BLOCK;
    let Some(means) = block_means(y) else {
        return 1.0;
    };
    let mut long: Vec<f64> = means
        .windows(3)
        .map(|w| (w[2] - 2.0 * w[1] + w[0]).abs())
        .collect();
    // Every fourth point is plenty for a median and keeps this pass cheap.
    let mut short: Vec<f64> = y
        .windows(3)
        .step_by(4)
        .map(|w| (w[2] - 2.0 * w[1] + w[0]).abs())
        .collect();
    // Both second differences have variance 6 times their source's; the ratio needs no
    // constant beyond the block length.
    let ratio = (median(&mut long) / median(&mut short)).powi(2) * b as f64;
    if ratio.is_finite() {
        ratio.clamp(1.0, LONG_RUN_MAX)
    } else {
        1.0
    }
}

/// How much more block means of the residuals vary than independent noise would make
/// them: the variance of block means (from their first differences) against that of the
/// points, both by medians, so a change the fit has not modelled yet moves one difference
/// and a few points, not the estimate. 1 unless the excess is beyond two standard errors:
/// under white noise the ratio of a few hundred medians scatters by about a fifth, and
/// taking that scatter for autocorrelation would blunt every test.
pub(crate) fn residual_long_run(r: &[f64]) -> f64 {
    let b = LONG_RUN_BLOCK;
    let Some(means) = block_means(r) else {
        return 1.0;
    };
    let nb = means.len();
    let mut long: Vec<f64> = means.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let mut short: Vec<f64> = r.iter().map(|v| v.abs()).collect();
    let (l, s) = (median(&mut long), median(&mut short));
    // A difference of two block means has twice their variance.
    let ratio = (l / s).powi(2) * b as f64 / 2.0;
    // Relative standard error of a variance from the median absolute value of Gaussian
    // draws: 2 * 0.5 / (f(m) m) / sqrt(k), with m = 0.674 and f(m) = 0.636.
    let se = 2.33 / (nb as f64).sqrt();
    if ratio.is_finite() && ratio > 1.0 + 2.0 * se {
        ratio.min(LONG_RUN_MAX)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_median_ignores_lone_outliers_and_keeps_steps_sharp() {
        let mut y = vec![0.0; 40];
        for v in y.iter_mut().skip(20) {
            *v = 1.0;
        }
        y[5] = 100.0;
        let m = running_median(&y);
        assert_eq!(m[5], 0.0);
        assert_eq!(m[18], 0.0);
        assert_eq!(m[22], 1.0);
    }

    #[test]
    fn block_sigma_of_white_noise_is_close_to_truth() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let y: Vec<f64> = (0..20_000)
            .map(|_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                0.3 * e
            })
            .collect();
        let s = global_sigma(&block_sigmas(&y));
        assert!((s - 0.3).abs() < 0.02, "{s}");
    }

    #[test]
    fn the_long_run_factor_is_one_for_white_noise_and_more_for_drifting_noise() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let white: Vec<f64> = (0..10_000)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        assert_eq!(residual_long_run(&white), 1.0);
        // AR(1) with coefficient 0.5 has a long-run variance 3 times its pointwise one.
        let mut ar = vec![0.0; 10_000];
        for t in 1..ar.len() {
            ar[t] = 0.5 * ar[t - 1] + white[t];
        }
        let l = residual_long_run(&ar);
        assert!((2.0..4.0).contains(&l), "{l}");
        // Level shifts move a few block differences, not the median.
        let mut shifted = white.clone();
        for (t, v) in shifted.iter_mut().enumerate() {
            *v += 0.5 * (t / 1000) as f64;
        }
        assert_eq!(residual_long_run(&shifted), 1.0);
    }
}
