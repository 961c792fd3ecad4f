//! How far a window may reach around each point before the trend's changing curvature
//! would pass for a shift.
//!
//! The fits allow for a slope and a constant curvature; what they cannot follow is a
//! curvature that itself changes, as in the fast early decay of a run, and its bias grows
//! with the cube of the window. So windows reach as far as the locally measured rate of
//! change of curvature keeps that bias at a fraction of the noise.

use super::jump::curvature;
use super::prepare::Prepared;
use super::{DetectConfig, ReachConfig};

/// Bias of a shared-slope jump on balanced windows of half-width `w` from a trend with third
/// derivative `d`: `BIAS_COEF * d * w^3`.
const BIAS_COEF: f64 = 1.0 / 15.0;

#[derive(Debug, Clone)]
pub(crate) struct Reach {
    per_block: Vec<usize>,
    block: usize,
}

impl Reach {
    pub fn build(p: &Prepared, cfg: &DetectConfig) -> Reach {
        let (c, max_window) = (&cfg.reach, cfg.max_window);
        let n = p.len();
        let block = c.block.max(1);
        let per_block = (0..n.div_ceil(block).max(1))
            .map(|k| {
                let t = (k * block + block / 2).min(n.saturating_sub(1));
                let mut w = max_window.max(c.shortest);
                while w > c.shortest && !gentle(p, t, w, c) {
                    w /= 2;
                }
                w.min(max_window)
            })
            .collect();
        Reach { per_block, block }
    }

    /// Points a window may reach on either side of index `i`.
    pub fn at(&self, i: usize) -> usize {
        let k = (i / self.block).min(self.per_block.len() - 1);
        self.per_block[k]
    }
}

/// Whether windows of `w` points either side of `t` keep the changing-curvature bias small.
fn gentle(p: &Prepared, t: usize, w: usize, c: &ReachConfig) -> bool {
    let n = p.len();
    let half = w / 2;
    if t < half || t + half >= n {
        return true;
    }
    let lo = t.saturating_sub(w);
    let hi = (t + w).min(n);
    let (Some(cl), Some(cr)) = (curvature(p, t - half, lo, t), curvature(p, t + half, t, hi))
    else {
        return true;
    };
    let gap = ((t + half).min(n - 1) - (t - half)) as f64;
    let d = (cr.c - cl.c) / gap;
    let d_se = (cl.var + cr.var).sqrt() / gap;
    let sigma = p.local_sigma(t);
    let d_sig = (d.abs() - c.d_noise_se * d_se * sigma).max(0.0);
    let wf = w as f64;
    BIAS_COEF * d_sig * wf.powi(3) <= c.bias_share * sigma * (8.0 / wf).sqrt()
}
