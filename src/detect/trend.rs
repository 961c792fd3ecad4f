//! A downsampled trend line for reports: local line fits that do not reach across
//! detected shifts, so the line shows each drop as the step it is.

use serde::{Deserialize, Serialize};

use super::prepare::Prepared;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    pub step: u64,
    /// The fitted trend, in loss units.
    pub value: f64,
    /// Robust sigma of the log-loss noise around this step.
    pub sigma: f64,
}

/// At most `points` trend points, evenly spaced in index; `cuts` are sorted indices where
/// a fit must not reach across.
pub(crate) fn trend(p: &Prepared, cuts: &[usize], points: usize) -> Vec<TrendPoint> {
    let n = p.len();
    if n == 0 || points == 0 {
        return Vec::new();
    }
    let m = points.min(n);
    let half = (n / m).max(50);
    (0..m)
        .map(|j| {
            let i = if m == 1 { 0 } else { j * (n - 1) / (m - 1) };
            let seg = cuts.partition_point(|&c| c <= i);
            let lo = if seg > 0 { cuts[seg - 1] } else { 0 };
            let hi = cuts.get(seg).copied().unwrap_or(n);
            let a = i.saturating_sub(half).max(lo);
            let b = (i + half + 1).min(hi);
            let mo = p.window(a, b, p.x(i)).moments();
            let level = if mo.n >= 3.0 && mo.sxx > 0.0 {
                mo.ybar - mo.sxy / mo.sxx * mo.ubar
            } else {
                mo.ybar
            };
            TrendPoint {
                step: p.steps()[i],
                value: (level + p.center()).exp(),
                sigma: p.local_sigma(i),
            }
        })
        .collect()
}
