//! Local-linear jump tests: is the level after a boundary different from the level before,
//! once the trend on each side is allowed for?

use serde::{Deserialize, Serialize};
use statrs::function::erf::erfc;

use super::prepare::Prepared;
use super::sums::{Moments, WindowSums};

/// Points per side a jump test looks at, at most: further away, the trend's curvature
/// weighs more than the extra points help.
pub const MAX_TEST_WINDOW: usize = 2048;
/// Two-sided level for `JumpTest::significant_drop` when `jump_test` is called directly.
pub const DEFAULT_ALPHA: f64 = 0.01;

/// The outcome of a jump test at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JumpTest {
    /// The first step on the new level.
    pub step: u64,
    /// Level after minus level before, in log-loss (negative = drop).
    pub jump_log: f64,
    /// Standard error of `jump_log`; 0 when there was too little data to test.
    pub se: f64,
    pub z: f64,
    /// Two-sided, normal approximation; 1 when there was too little data to test.
    pub p_value: f64,
    pub n_left: usize,
    pub n_right: usize,
    /// `jump_log < 0` and `p_value < alpha`.
    pub significant_drop: bool,
}

/// A fitted jump, in the prepared (centred) log scale.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fit {
    pub jump: f64,
    pub se: f64,
    pub z: f64,
    pub before: f64,
    pub after: f64,
    pub n_left: usize,
    pub n_right: usize,
    /// Variance of `jump` in units of sigma^2: what a likelihood comparison across
    /// positions needs, free of each fit's own scale estimate.
    pub v: f64,
}

/// A side's level at `u` and its variance factor (times sigma^2), and its residual sum of
/// squares and degrees of freedom. Too few points for a slope: the mean.
fn side_level(m: &Moments, u: f64) -> (f64, f64, f64, f64) {
    if m.n >= 3.0 && m.sxx > 0.0 {
        let b = m.sxy / m.sxx;
        let d = u - m.ubar;
        let rss = (m.syy - b * m.sxy).max(0.0);
        (m.ybar + b * d, 1.0 / m.n + d * d / m.sxx, rss, m.n - 2.0)
    } else {
        (m.ybar, 1.0 / m.n, m.syy, m.n - 1.0)
    }
}

/// The noise scale of a fit: the residual scale, but never below the robust local noise,
/// so a lucky quiet window or a handful of points cannot make a jump look certain; then
/// widened by the series' long-run factor, since a jump compares means.
fn scale(rss: f64, df: f64, ml: &Moments, mr: &Moments) -> f64 {
    let local = (ml.s2 + mr.s2) / (ml.n + mr.n).max(1.0);
    let fitted = if df >= 1.0 { rss / df } else { 0.0 };
    (fitted.max(local) * ml.lambda.max(1.0)).sqrt()
}

/// The boundary sits half-way between the last old step and the first new one.
fn boundary(p: &Prepared, at: usize) -> f64 {
    if at == 0 {
        return 0.0;
    }
    -((p.x(at) - p.x(at - 1)) as f64) / 2.0
}

/// Separate lines on `[left, at)` and `[at, right)`, compared at the boundary.
pub(crate) fn two_lines(p: &Prepared, at: usize, left: usize, right: usize) -> Option<Fit> {
    if at == 0 || at >= p.len() || left >= at || right <= at {
        return None;
    }
    let o = p.x(at);
    let ub = boundary(p, at);
    let ml = p.window(left, at, o).moments();
    let mr = p.window(at, right, o).moments();
    let (lb, vl, rl, dl) = side_level(&ml, ub);
    let (la, vr, rr, dr) = side_level(&mr, ub);
    let sigma = scale(rl + rr, dl + dr, &ml, &mr);
    Some(finish(la - lb, (sigma, vl + vr), lb, la, &ml, &mr))
}

/// A curvature (second derivative of log-loss per squared step) and its variance in
/// units of sigma^2.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Curvature {
    pub c: f64,
    pub var: f64,
}

/// Where a fit is measured: the coordinate of the first point on the new level (the
/// origin of `u`) and the boundary, half-way back to the point before, relative to it.
/// `quick` takes the noise scale from the robust local noise alone, skipping the residual
/// scale: enough to propose positions, which are all re-tested in full.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    pub origin: u64,
    pub ub: f64,
    pub quick: bool,
}

pub(crate) fn anchor(p: &Prepared, at: usize) -> Anchor {
    Anchor {
        origin: p.x(at),
        ub: boundary(p, at),
        quick: false,
    }
}

/// `anchor`, for a quick scan.
pub(crate) fn quick_anchor(p: &Prepared, at: usize) -> Anchor {
    Anchor {
        quick: true,
        ..anchor(p, at)
    }
}

/// Curvature at `at` from the slopes of separate lines on `[lo, at)` and `[at, hi)`: a
/// shift at `at` moves neither slope, so it does not leak into the estimate.
pub(crate) fn curvature(p: &Prepared, at: usize, lo: usize, hi: usize) -> Option<Curvature> {
    if at == 0 || at >= p.len() {
        return None;
    }
    curvature_on(p.sums(), anchor(p, at), (lo, at, hi))
}

/// `curvature` on a grid of window sums: indices are grid points.
pub(crate) fn curvature_on(
    w: &WindowSums,
    k: Anchor,
    (lo, at, hi): (usize, usize, usize),
) -> Option<Curvature> {
    if lo >= at || hi <= at {
        return None;
    }
    let ml = w.window(lo, at, k.origin).moments();
    let mr = w.window(at, hi, k.origin).moments();
    let gap = mr.ubar - ml.ubar;
    if ml.n < 3.0 || mr.n < 3.0 || ml.sxx <= 0.0 || mr.sxx <= 0.0 || gap <= 0.0 {
        return None;
    }
    Some(Curvature {
        c: (mr.sxy / mr.sxx - ml.sxy / ml.sxx) / gap,
        var: (1.0 / ml.sxx + 1.0 / mr.sxx) / (gap * gap),
    })
}

/// One slope shared by `[l, a)` and `[b, r)`, with a level shift between them, measured at
/// the boundary before `at`. Borrowing the slope from the longer side is what lets a short
/// side (a jump that soon recovers) be tested at all. With unequal sides a curved trend
/// would pass for a shift, so a curvature estimated from wider context is taken out first
/// (its uncertainty is added to the standard error).
pub(crate) fn shared_slope(
    p: &Prepared,
    at: usize,
    left: (usize, usize),
    right: (usize, usize),
    curv: Option<Curvature>,
) -> Option<Fit> {
    if at == 0 || at >= p.len() {
        return None;
    }
    shared_slope_on(p.sums(), anchor(p, at), left, right, curv)
}

/// `shared_slope` on a grid of window sums: indices are grid points.
pub(crate) fn shared_slope_on(
    w: &WindowSums,
    k: Anchor,
    (l, a): (usize, usize),
    (b, r): (usize, usize),
    curv: Option<Curvature>,
) -> Option<Fit> {
    if l >= a || b >= r || a > b {
        return None;
    }
    let ub = k.ub;
    let ml = w.window(l, a, k.origin).moments();
    let mr = w.window(b, r, k.origin).moments();
    let sxx = ml.sxx + mr.sxx;
    let sxy = ml.sxy + mr.sxy;
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let before = ml.ybar + slope * (ub - ml.ubar);
    let after = mr.ybar + slope * (ub - mr.ubar);
    let du = mr.ubar - ml.ubar;
    let mut v = 1.0 / ml.n + 1.0 / mr.n;
    if sxx > 0.0 {
        v += du * du / sxx;
    }
    let (mut jump, mut before, mut after) = (after - before, before, after);
    // The model's slope at u is `slope_c + c u`; with no curvature, the shared slope.
    let (mut slope_c, mut c) = (slope, 0.0);
    if let Some(k) = curv {
        // Subtracting c*u^2/2 from y changes the means by c/2 * mean(u^2) and the slope by
        // c/2 * cov(u, u^2) / var(u); the jump moves by `c * g`.
        let su2 = if sxx > 0.0 {
            (ml.sxu2 + mr.sxu2) / sxx
        } else {
            0.0
        };
        let g = -0.5 * ((mr.u2bar - ml.u2bar) - su2 * du);
        let half = 0.5 * k.c;
        slope_c = slope - half * su2;
        c = k.c;
        before = ml.ybar - half * ml.u2bar + slope_c * (ub - ml.ubar) + half * ub * ub;
        after = mr.ybar - half * mr.u2bar + slope_c * (ub - mr.ubar) + half * ub * ub;
        jump += k.c * g;
        v += g * g * k.var;
    }
    if k.quick {
        let sigma = scale(0.0, 0.0, &ml, &mr);
        return Some(finish(jump, (sigma, v), before, after, &ml, &mr));
    }
    // Residuals of the constrained model: those of a free line per side, plus what forcing
    // each side's slope onto the model's costs. A trend the model cannot follow shows up
    // here and widens the standard error.
    let (_, _, rl, _) = side_level(&ml, ub);
    let (_, _, rr, _) = side_level(&mr, ub);
    let misfit = |m: &Moments| {
        if m.n >= 3.0 && m.sxx > 0.0 {
            let d = m.sxy / m.sxx - (slope_c + c * m.ubar);
            m.sxx * d * d
        } else {
            0.0
        }
    };
    let rss = rl + rr + misfit(&ml) + misfit(&mr);
    let sigma = scale(rss, ml.n + mr.n - 3.0, &ml, &mr);
    Some(finish(jump, (sigma, v), before, after, &ml, &mr))
}

fn finish(
    jump: f64,
    (sigma, v): (f64, f64),
    before: f64,
    after: f64,
    ml: &Moments,
    mr: &Moments,
) -> Fit {
    let se = sigma * v.sqrt();
    Fit {
        jump,
        se,
        z: if se > 0.0 { jump / se } else { 0.0 },
        before,
        after,
        n_left: ml.n as usize,
        n_right: mr.n as usize,
        v,
    }
}

pub(crate) fn p_two_sided(z: f64) -> f64 {
    erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

fn to_test(p: &Prepared, at: usize, fit: Option<Fit>, alpha: f64) -> JumpTest {
    let step = p.steps().get(at).copied().unwrap_or(0);
    match fit {
        Some(f) => {
            let p_value = p_two_sided(f.z);
            JumpTest {
                step,
                jump_log: f.jump,
                se: f.se,
                z: f.z,
                p_value,
                n_left: f.n_left,
                n_right: f.n_right,
                significant_drop: f.jump < 0.0 && p_value < alpha,
            }
        }
        None => JumpTest {
            step,
            jump_log: 0.0,
            se: 0.0,
            z: 0.0,
            p_value: 1.0,
            n_left: 0,
            n_right: 0,
            significant_drop: false,
        },
    }
}

/// Local-linear jump test at index `at` (the first index on the new level), fitting a line
/// on `[left, at)` and one on `[at, right)`, each side capped at [`MAX_TEST_WINDOW`] points
/// nearest the boundary. The jump is the difference of the two fits at the boundary in
/// log-loss (negative = drop); its standard error uses the residual scale of the fits,
/// floored at the robust local noise. `significant_drop` uses [`DEFAULT_ALPHA`].
/// Out-of-range or empty sides give an untestable result (`se` 0, `p_value` 1).
pub fn jump_test(p: &Prepared, at: usize, left: usize, right: usize) -> JumpTest {
    jump_test_alpha(p, at, left, right, DEFAULT_ALPHA)
}

fn jump_test_alpha(p: &Prepared, at: usize, left: usize, right: usize, alpha: f64) -> JumpTest {
    let left = left.max(at.saturating_sub(MAX_TEST_WINDOW));
    let right = right.min(at.saturating_add(MAX_TEST_WINDOW)).min(p.len());
    to_test(p, at, two_lines(p, at, left, right), alpha)
}

/// Tests each event step that lies inside the series, with windows reaching back to the
/// previous event and on to the next one (capped at [`MAX_TEST_WINDOW`] points a side),
/// so neighbouring events do not leak into each other's levels. Events are taken in step
/// order; repeated events, and events at or before the first step or after the last, are
/// skipped.
pub fn test_events(p: &Prepared, events: &[u64], alpha: f64) -> Vec<JumpTest> {
    let (Some(&first), Some(&last)) = (p.steps().first(), p.steps().last()) else {
        return Vec::new();
    };
    let mut idx: Vec<usize> = events
        .iter()
        .filter(|&&e| e > first && e <= last)
        .filter_map(|&e| p.index_of(e))
        .collect();
    idx.sort_unstable();
    idx.dedup();
    idx.iter()
        .enumerate()
        .map(|(k, &at)| {
            let left = if k > 0 { idx[k - 1] } else { 0 };
            let right = idx.get(k + 1).copied().unwrap_or(p.len());
            jump_test_alpha(p, at, left, right, alpha)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::prepare;
    use super::*;
    use crate::synth::{Difficulty, NoiseKind, SynthSpec, planted};

    /// A slowly decaying curve with noise, and a 5% drop (half a noise sigma) at step 5000.
    fn curve(with_jump: bool, seed: u64) -> (Vec<u64>, Vec<f64>) {
        let mut s = planted(&SynthSpec::new(
            NoiseKind::Gaussian,
            Difficulty::Clean,
            seed,
        ));
        if with_jump {
            for v in s.loss.iter_mut().skip(5000) {
                *v *= (-0.05f64).exp();
            }
        }
        (s.steps, s.loss)
    }

    #[test]
    fn a_known_drop_gives_a_large_negative_z() {
        let (steps, loss) = curve(true, 11);
        let p = prepare(&steps, &loss);
        let t = jump_test(&p, 5000, 4000, 6000);
        assert!(t.z < -4.0, "{t:?}");
        assert!((t.jump_log + 0.05).abs() < 0.02, "{t:?}");
        assert!(t.significant_drop);
        assert_eq!((t.n_left, t.n_right, t.step), (1000, 1000, 5000));
        // Windows are capped at MAX_TEST_WINDOW points a side.
        let wide = jump_test(&p, 5000, 0, 10_000);
        assert_eq!(
            (wide.n_left, wide.n_right),
            (MAX_TEST_WINDOW, MAX_TEST_WINDOW)
        );
    }

    #[test]
    fn no_jump_is_rarely_significant_and_p_values_spread_out() {
        let mut significant = 0;
        let mut below_half = 0;
        for seed in 0..40 {
            let (steps, loss) = curve(false, seed);
            let p = prepare(&steps, &loss);
            let t = jump_test(&p, 5000, 4700, 5300);
            significant += t.significant_drop as usize;
            below_half += (t.p_value < 0.5) as usize;
        }
        assert!(significant <= 2, "{significant}");
        // Uniform p-values put about half below 0.5.
        assert!((10..=30).contains(&below_half), "{below_half}");
    }

    #[test]
    fn events_are_tested_between_their_neighbours() {
        let (steps, loss) = curve(true, 5);
        let p = prepare(&steps, &loss);
        let tests = test_events(&p, &[5000, 4000, 6000, 5000, 99_999], 0.01);
        assert_eq!(tests.len(), 3);
        let t = &tests[1];
        assert_eq!((t.step, t.n_left, t.n_right), (5000, 1000, 1000));
        assert!(t.significant_drop, "{t:?}");
        assert!(!tests[0].significant_drop && !tests[2].significant_drop);
    }

    #[test]
    fn untestable_positions_say_so() {
        let p = prepare(&[0, 1, 2], &[1.0, 1.0, 1.0]);
        let t = jump_test(&p, 0, 0, 3);
        assert_eq!((t.se, t.p_value, t.significant_drop), (0.0, 1.0, false));
        let t = jump_test(&p, 7, 0, 9);
        assert_eq!(t.p_value, 1.0);
    }
}
