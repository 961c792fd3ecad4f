//! The prepared series every test runs on: cleaned, on log scale, outliers damped,
//! with prefix sums so any window's line fit costs O(1).

use super::PrepareConfig;
use super::clean::{CleaningReport, clean};
use super::noise::{
    NOISE_BLOCK, NOISE_BLOCK_SHIFT, block_sigmas, global_sigma, long_run_factor, winsorize,
};
use super::sums::{Win, WindowSums};

/// Coordinates beyond this are replaced by the index: their cubed sums would leave the
/// exact integer range the window sums rely on.
const MAX_COORD: u64 = 1 << 31;

/// Prepared series: cleaned, log-transformed, winsorized, with prefix sums so that a jump
/// test at any step costs O(1). Attribution builds this once per trace and calls
/// [`jump_test`](super::jump_test) thousands of times.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    steps: Vec<u64>,
    /// Typical log-loss, subtracted before summing so sums keep their digits.
    center: f64,
    /// Log-loss before winsorizing: spikes are measured on it, since winsorizing clips a
    /// narrow spike. Single precision is plenty for that.
    raw: Vec<f32>,
    block_sigma: Vec<f64>,
    noise_sigma: f64,
    sums: WindowSums,
    cleaning: CleaningReport,
}

/// Cleans and prepares a loss series with the default preparation; never fails (an
/// unusable series gives an empty one).
pub fn prepare(steps: &[u64], loss: &[f64]) -> Prepared {
    prepare_with(steps, loss, &PrepareConfig::default())
}

/// [`prepare`] with the preparation of `cfg` (the detector's `DetectConfig::prepare`).
pub fn prepare_with(steps: &[u64], loss: &[f64], cfg: &PrepareConfig) -> Prepared {
    let c = clean(steps, loss);
    let mut y: Vec<f64> = c.loss.iter().map(|v| v.ln()).collect();
    let first = c.steps.first().copied().unwrap_or(0);
    let last = c.steps.last().copied().unwrap_or(0);
    // A constant stride is a rescaled index, and a jump and its z do not depend on the
    // time unit.
    let even = c.report.n_gaps == 0
        && c.steps
            .windows(2)
            .all(|w| w[1] - w[0] == c.report.typical_stride);
    let x: Option<Vec<u64>> = if !even && last - first < MAX_COORD {
        Some(c.steps.iter().map(|s| s - first).collect())
    } else {
        None
    };
    let block_sigma = block_sigmas(&y);
    let noise_sigma = global_sigma(&block_sigma);
    let sigma_of = |i: usize| block_sigma[i >> NOISE_BLOCK_SHIFT];
    let raw: Vec<f32> = y.iter().map(|&v| v as f32).collect();
    let center = winsorize(&mut y, sigma_of, cfg.winsor_k);
    for v in &mut y {
        *v -= center;
    }
    let block_var: Vec<f64> = block_sigma.iter().map(|s| s * s).collect();
    let lambda = long_run_factor(&y);
    let sums = WindowSums::new(x, y, NOISE_BLOCK_SHIFT, &block_var).with_long_run_factor(lambda);
    Prepared {
        steps: c.steps,
        center,
        raw,
        block_sigma,
        noise_sigma,
        sums,
        cleaning: c.report,
    }
}

impl Prepared {
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn steps(&self) -> &[u64] {
        &self.steps
    }

    /// The first index whose step is at or after `step`; `None` past the end.
    pub fn index_of(&self, step: u64) -> Option<usize> {
        let i = self.steps.partition_point(|&s| s < step);
        (i < self.steps.len()).then_some(i)
    }

    /// Global robust sigma of the log-loss noise (per step).
    pub fn noise_sigma(&self) -> f64 {
        self.noise_sigma
    }

    /// Robust sigma of the log-loss noise around index `i`.
    pub fn local_sigma(&self, i: usize) -> f64 {
        self.block_sigma
            .get(i / NOISE_BLOCK)
            .copied()
            .unwrap_or(self.noise_sigma)
    }

    pub fn cleaning(&self) -> &CleaningReport {
        &self.cleaning
    }

    /// The prepared (winsorized) log-loss at index `i`, in log-loss units.
    pub fn log_loss(&self, i: usize) -> Option<f64> {
        self.sums.value(i).map(|v| v + self.center)
    }

    /// Mean prepared (winsorized) log-loss over indices `[a, b)`, in log-loss units.
    pub fn mean_log_loss(&self, a: usize, b: usize) -> Option<f64> {
        let b = b.min(self.len());
        (a < b).then(|| self.sums.window(a, b, 0).sy / (b - a) as f64 + self.center)
    }

    /// The prepared (winsorized, centred) log-loss of every point.
    pub(crate) fn values(&self) -> &[f64] {
        self.sums.values()
    }

    /// Log-loss at `i` before winsorizing, minus `center`.
    pub(crate) fn raw(&self, i: usize) -> f64 {
        self.raw.get(i).map_or(0.0, |v| *v as f64 - self.center)
    }

    pub(crate) fn center(&self) -> f64 {
        self.center
    }

    /// The time axis of the fits at index `i`: steps from the first one, or the index
    /// (evenly logged runs, or steps too large for exact sums).
    pub(crate) fn x(&self, i: usize) -> u64 {
        self.sums.coord(i)
    }

    pub(crate) fn window(&self, a: usize, b: usize, origin: u64) -> Win {
        self.sums.window(a, b, origin)
    }

    pub(crate) fn sums(&self) -> &WindowSums {
        &self.sums
    }
}
