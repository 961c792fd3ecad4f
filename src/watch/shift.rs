//! The cheap streaming statistics: a running noise scale and a two-window level shift.
//!
//! The shift compares the mean log-loss of the last `h` points with what a line fitted
//! to the `r * h` points before them predicts there, in units of its standard error. A
//! smooth decay is a line locally and gives no shift; a drop between the windows does.
//! Sums are updated in O(1) per point and recomputed exactly once per window length, so
//! rounding cannot drift.

use super::ring::Ring;

/// Differences kept before the running noise scale starts: their median starts it, so a
/// jump among the first points cannot set the scale.
const NOISE_START: usize = 32;
/// Points over which the noise scale adapts (EWMA span): long against a drop, so a drop's
/// one large difference moves it by a fraction of a percent.
const NOISE_SPAN: f64 = 256.0;
/// A difference counts at most this many times the current mean absolute difference: a
/// spike or a drop is not noise. For Gaussian noise this clips 0.1% of the differences.
const NOISE_CLIP: f64 = 4.0;
/// Mean |first difference| of iid Gaussian noise of sigma 1: 2 / sqrt(pi).
const MEAN_ABS_DIFF: f64 = std::f64::consts::FRAC_2_SQRT_PI;
/// Median |first difference| of iid Gaussian noise of sigma 1: 0.6745 * sqrt(2).
const MEDIAN_ABS_DIFF: f64 = 0.953_872_552_417_314_6;

/// A robust running estimate of the per-point noise sigma of the log-loss, from first
/// differences (a smooth trend contributes next to nothing to them).
#[derive(Debug, Clone, Default)]
pub(crate) struct Noise {
    start: Vec<f64>,
    mean_abs: Option<f64>,
}

impl Noise {
    pub(crate) fn observe(&mut self, diff: f64) {
        let d = diff.abs();
        match self.mean_abs {
            Some(m) => {
                let d = d.min(NOISE_CLIP * m);
                self.mean_abs = Some(m + (d - m) / NOISE_SPAN);
            }
            None => {
                self.start.push(d);
                if self.start.len() == NOISE_START {
                    self.start.sort_by(f64::total_cmp);
                    let median = self.start[NOISE_START / 2];
                    // From the median to the mean of |d| under Gaussian noise.
                    self.mean_abs = Some(median / MEDIAN_ABS_DIFF * MEAN_ABS_DIFF);
                    self.start = Vec::new();
                }
            }
        }
    }

    /// The noise sigma, once enough points were seen.
    pub(crate) fn sigma(&self) -> Option<f64> {
        self.mean_abs.map(|m| m / MEAN_ABS_DIFF)
    }
}

/// The shift statistic at one scale: `h` points after the boundary, `n_left` before.
#[derive(Debug, Clone)]
pub(crate) struct Shift {
    h: usize,
    n_left: usize,
    /// Sum of the right window's log-losses.
    right: f64,
    /// Sum of the left window's log-losses, and of position * log-loss (position 0 the
    /// oldest).
    left: f64,
    left_moment: f64,
    /// Points since the sums were last recomputed exactly; None before the first time.
    since_exact: Option<usize>,
    /// (x_c - x_mean) / Sxx and the variance factor of the shift, fixed per scale.
    lever: f64,
    var_factor: f64,
}

impl Shift {
    pub(crate) fn new(h: usize, long_ratio: usize) -> Self {
        let h = h.max(2);
        let n = (h * long_ratio.max(1)).max(3);
        let nf = n as f64;
        let mean_x = (nf - 1.0) / 2.0;
        let sxx = nf * (nf * nf - 1.0) / 12.0;
        // The right window's centre, on the left window's axis.
        let xc = nf + (h as f64 - 1.0) / 2.0;
        let lever = (xc - mean_x) / sxx;
        Shift {
            h,
            n_left: n,
            right: 0.0,
            left: 0.0,
            left_moment: 0.0,
            since_exact: None,
            lever,
            var_factor: 1.0 / h as f64 + 1.0 / nf + (xc - mean_x) * lever,
        }
    }

    /// Points the statistic needs: both windows.
    pub(crate) fn span(&self) -> usize {
        self.h + self.n_left
    }

    /// Points in the right window (after the boundary).
    pub(crate) fn right_points(&self) -> usize {
        self.h
    }

    /// Takes in the ring's newest point.
    pub(crate) fn update(&mut self, ring: &Ring) {
        let span = self.span();
        if ring.len() <= span {
            if ring.len() == span {
                self.recompute(ring);
            }
            return;
        }
        match self.since_exact {
            Some(k) if k < self.n_left => {
                let (h, n) = (self.h, self.n_left);
                let into_left = ring.log_back(h);
                let out_of_left = ring.log_back(h + n);
                self.right += ring.log_back(0) - into_left;
                self.left_moment += -(self.left - out_of_left) + (n as f64 - 1.0) * into_left;
                self.left += into_left - out_of_left;
                self.since_exact = Some(k + 1);
            }
            _ => self.recompute(ring),
        }
    }

    fn recompute(&mut self, ring: &Ring) {
        let (h, n) = (self.h, self.n_left);
        self.right = ring.log_sum(0, h);
        self.left = ring.log_sum(h, h + n);
        // Position 0 is the oldest point of the left window: `h + n - 1` points back.
        self.left_moment = (0..n)
            .map(|i| i as f64 * ring.log_back(h + n - 1 - i))
            .sum();
        self.since_exact = Some(0);
    }

    /// The shift's z (negative for a drop), when both windows are full.
    pub(crate) fn z(&self, sigma: f64) -> Option<f64> {
        self.since_exact?;
        if sigma <= 0.0 {
            return None;
        }
        let n = self.n_left as f64;
        let mean_x = (n - 1.0) / 2.0;
        let slope_times_sxx = self.left_moment - mean_x * self.left;
        let predicted = self.left / n + slope_times_sxx * self.lever;
        let shift = self.right / self.h as f64 - predicted;
        Some(shift / (sigma * self.var_factor.sqrt()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_of(ys: &[f64]) -> (Ring, Shift) {
        let mut ring = Ring::new(ys.len() + 1);
        let mut s = Shift::new(8, 4);
        for (i, &y) in ys.iter().enumerate() {
            ring.push(i as u64, y.exp(), y);
            s.update(&ring);
        }
        (ring, s)
    }

    #[test]
    fn a_straight_line_gives_no_shift_and_a_step_does() {
        let line: Vec<f64> = (0..200).map(|i| 1.0 - 0.01 * i as f64).collect();
        let (_, s) = ring_of(&line);
        assert!(s.z(0.1).unwrap().abs() < 1e-9, "{:?}", s.z(0.1));
        let step: Vec<f64> = (0..200).map(|i| if i < 192 { 1.0 } else { 0.5 }).collect();
        let (_, s) = ring_of(&step);
        assert!(s.z(0.1).unwrap() < -8.0, "{:?}", s.z(0.1));
    }

    #[test]
    fn incremental_sums_match_exact_ones() {
        let ys: Vec<f64> = (0..333).map(|i| ((i * 37 % 101) as f64).sin()).collect();
        let (ring, s) = ring_of(&ys);
        let mut exact = s.clone();
        exact.recompute(&ring);
        assert!((s.z(0.3).unwrap() - exact.z(0.3).unwrap()).abs() < 1e-9);
    }

    #[test]
    fn the_noise_scale_is_the_sigma_of_gaussian_noise() {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let normal = Normal::new(0.0, 0.2).unwrap();
        let mut noise = Noise::default();
        let mut prev: f64 = normal.sample(&mut rng);
        for _ in 0..20_000 {
            let y: f64 = normal.sample(&mut rng);
            noise.observe(y - prev);
            prev = y;
        }
        let s = noise.sigma().unwrap();
        assert!((s - 0.2).abs() < 0.01, "{s}");
    }
}
