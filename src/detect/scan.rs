//! Blind multiscale scan for level shifts.
//!
//! Each window shape is evaluated on a grid half its short side apart (a shift is seen
//! from several grid points at that scale), reading a coarse copy of the prefix sums that
//! holds only the grid points; only where a statistic passes the candidate level is the
//! position refined at full resolution. That keeps the scan linear in the series length
//! and mostly in cache.

use super::DetectConfig;
use super::jump::{Fit, anchor, curvature_on, quick_anchor, shared_slope, shared_slope_on};
use super::prepare::Prepared;
use super::reach::Reach;
use super::sums::WindowSums;

/// A window shape: points before and after the boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shape {
    pub left: usize,
    pub right: usize,
    /// The fit allows for the curvature (see [`super::ScanConfig::curvature_from`]).
    pub curved: bool,
}

/// A position where some window shape saw a shift beyond the candidate level.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    pub at: usize,
    pub fit: Fit,
    pub shape: Shape,
}

/// Window shapes for the given short sides: long-before/short-after finds shifts that soon
/// recover, short-before/long-after the reverse. (Balanced windows are the segment scan's.)
pub(crate) fn shapes(cfg: &DetectConfig) -> Vec<Shape> {
    let mut out = Vec::new();
    for &s in &cfg.scales {
        let long = (s * cfg.long_ratio).min(cfg.max_window).max(s);
        // Below `curvature_from` a smooth decay bends too little over the long side to pass
        // for a shift, and the curvature estimate would cost more than it saves.
        let curved = long != s && long >= cfg.scan.curvature_from;
        for sh in [
            Shape {
                left: long,
                right: s,
                curved,
            },
            Shape {
                left: s,
                right: long,
                curved,
            },
        ] {
            if !out.contains(&sh) {
                out.push(sh);
            }
        }
    }
    out
}

/// A fit at grid point `j` of `w` for a shape given in grid points.
fn fit_on(
    p: &Prepared,
    w: &WindowSums,
    j: usize,
    (left, right): (usize, usize),
    curved: bool,
    reach: &Reach,
) -> Option<Fit> {
    let g = w.spacing();
    let at = j * g;
    if at == 0 || at >= p.len() || left.max(right) * g > reach.at(at) {
        return None;
    }
    let last = w.len() - 1;
    let l = j.saturating_sub(left);
    let r = (j + right).min(last);
    if (j - l) * g < super::MIN_SIDE || (r - j) * g < super::MIN_SIDE {
        return None;
    }
    let k = if w.spacing() > 1 {
        quick_anchor(p, at)
    } else {
        anchor(p, at)
    };
    let curv = if curved {
        let c = left.max(right);
        curvature_on(w, k, (j.saturating_sub(c), j, (j + c).min(last)))
    } else {
        None
    };
    shared_slope_on(w, k, (l, j), (j, r), curv)
}

/// Drops (negative shifts) and rises whose |z| passes `z_candidate` at some shape.
pub(crate) fn scan(
    p: &Prepared,
    shapes: &[Shape],
    reach: &Reach,
    z_candidate: f64,
) -> (Vec<Candidate>, Vec<Candidate>) {
    let mut drops = Vec::new();
    let mut rises = Vec::new();
    let mut order: Vec<Shape> = shapes.to_vec();
    order.sort_by_key(|sh| sh.left.min(sh.right));
    // Each grid is coarsened from the previous one, so only the first reads the full sums.
    let mut grid: Option<WindowSums> = None;
    for sh in order {
        let g = (sh.left.min(sh.right) / 2).max(1);
        let w = match grid.take() {
            Some(w) if w.spacing() == g => w,
            Some(w) if g % w.spacing() == 0 => w.coarsen(g / w.spacing()),
            _ => p.sums().coarsen(g),
        };
        let grid_shape = (sh.left.div_ceil(g), sh.right.div_ceil(g));
        let curved = sh.curved;
        // Runs of grid points beyond the level; each run is refined once around its peak.
        let mut run: Option<(usize, f64)> = None;
        for j in 1..w.len() {
            let z = fit_on(p, &w, j, grid_shape, curved, reach).map_or(0.0, |f| f.z);
            let sign = if z <= -z_candidate {
                -1.0
            } else if z >= z_candidate {
                1.0
            } else {
                0.0
            };
            match run {
                Some((best_at, best_z)) if sign != 0.0 && sign == best_z.signum() => {
                    if z.abs() > best_z.abs() {
                        run = Some((j * g, z));
                    } else {
                        run = Some((best_at, best_z));
                    }
                }
                _ => {
                    if let Some((best_at, best_z)) = run.take() {
                        push_refined(
                            p,
                            (sh, reach),
                            best_at,
                            best_z < 0.0,
                            g,
                            &mut drops,
                            &mut rises,
                        );
                    }
                    if sign != 0.0 {
                        run = Some((j * g, z));
                    }
                }
            }
        }
        if let Some((best_at, best_z)) = run {
            push_refined(
                p,
                (sh, reach),
                best_at,
                best_z < 0.0,
                g,
                &mut drops,
                &mut rises,
            );
        }
        grid = Some(w);
    }
    (drops, rises)
}

/// The best point within one grid spacing of `near`, at full resolution: coarse steps
/// first, then ever finer ones around the best so far.
fn push_refined(
    p: &Prepared,
    (sh, reach): (Shape, &Reach),
    near: usize,
    drop: bool,
    stride: usize,
    drops: &mut Vec<Candidate>,
    rises: &mut Vec<Candidate>,
) {
    let full = p.sums();
    let shape = (sh.left, sh.right);
    let curved = sh.curved;
    let sign = if drop { -1.0 } else { 1.0 };
    let best_in = |lo: usize, hi: usize, step: usize| {
        (lo..=hi)
            .step_by(step)
            .filter_map(|at| fit_on(p, full, at, shape, curved, reach).map(|f| (at, f)))
            .max_by(|a, b| (sign * a.1.z).total_cmp(&(sign * b.1.z)))
    };
    let last = p.len().saturating_sub(1);
    // Coarse to fine: each pass searches around the last best with a quarter of its step.
    let mut step = (stride / 8).max(1);
    let mut best = best_in(
        near.saturating_sub(stride).max(1),
        (near + stride).min(last),
        step,
    );
    while step > 1 {
        let Some((at, _)) = best else {
            return;
        };
        let finer = (step / 4).max(1);
        best = best_in(at.saturating_sub(step).max(1), (at + step).min(last), finer);
        step = finer;
    }
    if let Some((at, fit)) = best {
        let c = Candidate { at, fit, shape: sh };
        if drop { drops.push(c) } else { rises.push(c) }
    }
}

/// Keeps the strongest candidate of each cluster: a weaker one is dropped when it lies
/// within half the short side of a stronger one's window shape (and `min_sep` at least).
pub(crate) fn suppress(cands: Vec<Candidate>, min_sep: usize) -> Vec<Candidate> {
    suppress_clusters(cands, min_sep)
        .into_iter()
        .map(|(c, _)| c)
        .collect()
}

/// As [`suppress`], with the positions of each kept candidate's cluster (itself first,
/// then the weaker ones it suppressed, strongest first).
pub(crate) fn suppress_clusters(
    mut cands: Vec<Candidate>,
    min_sep: usize,
) -> Vec<(Candidate, Vec<usize>)> {
    cands.sort_by(|a, b| b.fit.z.abs().total_cmp(&a.fit.z.abs()));
    let mut kept: Vec<(Candidate, Vec<usize>)> = Vec::new();
    for c in cands {
        let clash = kept.iter().position(|(k, _)| {
            let sep = (k
                .shape
                .left
                .min(k.shape.right)
                .min(c.shape.left.min(c.shape.right))
                / 2)
            .max(min_sep);
            k.at.abs_diff(c.at) < sep
        });
        match clash {
            Some(i) => kept[i].1.push(c.at),
            None => {
                let at = c.at;
                kept.push((c, vec![at]));
            }
        }
    }
    kept.sort_by_key(|(c, _)| c.at);
    kept
}

/// Scans the stretches between known changes with balanced windows that reach to the
/// nearer end (capped by `reach`): a shift between close neighbours is seen at full
/// strength only once the windows stop at the neighbours, which the fixed shapes of the
/// first scan cannot do. Balanced windows let a curved trend cancel out without a
/// curvature estimate, which early in training, where the curvature itself changes fast,
/// would not hold. `grid` is [`segment_grid`]'s.
///
/// Only stretches that end at one of `fresh` are scanned when it is given: the others were
/// scanned before with the same ends.
pub(crate) fn segment_scan(
    p: &Prepared,
    grid: &WindowSums,
    (cuts, fresh): (&[usize], Option<&[usize]>),
    reach: &Reach,
    z_candidate: f64,
) -> Vec<(usize, bool)> {
    let n = p.len();
    let g = grid.spacing();
    let mut bounds: Vec<usize> = Vec::with_capacity(cuts.len() + 2);
    bounds.push(0);
    bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < n));
    bounds.push(n);
    // On the grid: window ends are grid points, so the coarse sums serve.
    let fit_grid = |lo: usize, hi: usize, j: usize| {
        let t = j * g;
        let w = (t - lo).min(hi - t).min(reach.at(t)) / g;
        if w * g < super::MIN_SIDE {
            return None;
        }
        shared_slope_on(grid, quick_anchor(p, t), (j - w, j), (j, j + w), None)
    };
    let fit_full = |lo: usize, hi: usize, t: usize| {
        let w = (t - lo).min(hi - t).min(reach.at(t));
        shared_slope(p, t, (t - w, t), (t, t + w), None)
    };
    let mut out = Vec::new();
    for seg in bounds.windows(2) {
        let (lo, hi) = (seg[0], seg[1]);
        let stale = fresh.is_some_and(|f| !f.contains(&lo) && !f.contains(&hi));
        if hi < lo + 2 * super::MIN_SIDE || stale {
            continue;
        }
        let flush = |run: Option<(usize, f64)>, out: &mut Vec<(usize, bool)>| {
            if let Some((t0, z0)) = run {
                let sign = z0.signum();
                let best = (t0.saturating_sub(g).max(lo + super::MIN_SIDE)
                    ..=(t0 + g).min(hi - super::MIN_SIDE))
                    .filter_map(|t| fit_full(lo, hi, t).map(|f| (t, sign * f.z)))
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                if let Some((t, _)) = best {
                    out.push((t, sign < 0.0));
                }
            }
        };
        let mut run: Option<(usize, f64)> = None;
        for j in (lo + super::MIN_SIDE).div_ceil(g)..=(hi.saturating_sub(super::MIN_SIDE) / g) {
            let z = fit_grid(lo, hi, j).map_or(0.0, |f| f.z);
            let sign = if z.abs() >= z_candidate {
                z.signum()
            } else {
                0.0
            };
            match run {
                Some((_, bz)) if sign != 0.0 && sign == bz.signum() => {
                    if z.abs() > bz.abs() {
                        run = Some((j * g, z));
                    }
                }
                _ => {
                    flush(run.take(), &mut out);
                    if sign != 0.0 {
                        run = Some((j * g, z));
                    }
                }
            }
        }
        flush(run, &mut out);
    }
    out
}

/// The coarse sums `segment_scan` reads.
pub(crate) fn segment_grid(p: &Prepared, cfg: &DetectConfig) -> WindowSums {
    p.sums().coarsen(cfg.scan.segment_grid.max(1))
}
