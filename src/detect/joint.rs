//! Joint local regression: a smooth polynomial trend over a long window plus every known
//! change in it (a step, optionally with an exponential recovery), fitted together. The
//! trend's slope and curvature then come from the whole window, not from the two sides
//! of one boundary, which is what limits the precision of a local two-line test.

// The small dense solvers below read best in the index form of the textbook algorithms.
#![allow(clippy::needless_range_loop)]

use super::prepare::Prepared;
use super::spd::Spd;

/// Most parameters of one joint fit.
const MAX_P: usize = 24;

#[derive(Debug, Clone, Copy)]
pub(crate) struct JointFit {
    pub jump: f64,
    pub se: f64,
    pub z: f64,
    pub rss: f64,
    /// The robust noise variance floor of the window, per point (long-run factor included).
    pub s2: f64,
}

/// A change in the joint model: a step at `at`, with a recovery term when `recovers`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Term {
    pub at: usize,
    pub recovers: bool,
}

type Cols = Vec<(usize, bool, usize)>;

fn solve(
    p: &Prepared,
    span: (usize, usize),
    terms: &[Term],
    deg: usize,
    tr: f64,
) -> Option<([f64; MAX_P], Cols)> {
    let mut out = None;
    fit_inner(p, span, terms, usize::MAX, deg, tr, &mut out);
    out
}

/// Fits `trend (degree deg) + terms` on `[lo, hi)` and returns the jump of `terms[target]`.
pub(crate) fn joint_fit(
    p: &Prepared,
    span: (usize, usize),
    terms: &[Term],
    target: usize,
    deg: usize,
    tr: f64,
) -> Option<JointFit> {
    fit_inner(p, span, terms, target, deg, tr, &mut None)
}

fn fit_inner(
    p: &Prepared,
    (lo, hi): (usize, usize),
    terms: &[Term],
    target: usize,
    deg: usize,
    tr: f64,
    keep: &mut Option<([f64; MAX_P], Cols)>,
) -> Option<JointFit> {
    let n = hi.saturating_sub(lo);
    let np = deg + 1;
    let mut cols: Vec<(usize, bool, usize)> = Vec::new(); // (at, is_exp, term idx)
    for (k, t) in terms.iter().enumerate() {
        if t.at <= lo || t.at >= hi {
            if k == target {
                return None;
            }
            continue;
        }
        cols.push((t.at, false, k));
        if t.recovers {
            cols.push((t.at, true, k));
        }
    }
    let kp = np + cols.len();
    if kp > MAX_P || n < kp + 8 {
        return None;
    }
    let mid = (lo + hi) as f64 / 2.0;
    let half = (n as f64 / 2.0).max(1.0);
    let decay = (-1.0 / tr).exp();
    let mut a = [[0.0; MAX_P]; MAX_P];
    let mut b = [0.0; MAX_P];
    let mut yy = 0.0;
    let mut x = [0.0; MAX_P];
    let mut ex = vec![0.0f64; cols.len()];
    for i in lo..hi {
        let y = p.sums().value(i)?;
        let u = (i as f64 - mid) / half;
        let mut pw = 1.0;
        for d in 0..np {
            x[d] = pw;
            pw *= u;
        }
        for (c, &(at, is_exp, _)) in cols.iter().enumerate() {
            let v = if i < at {
                0.0
            } else if is_exp {
                let e = if i == at { 1.0 } else { ex[c] * decay };
                ex[c] = e;
                e
            } else {
                1.0
            };
            x[np + c] = v;
        }
        for r in 0..kp {
            let xr = x[r];
            if xr == 0.0 {
                continue;
            }
            for c in 0..=r {
                a[r][c] += xr * x[c];
            }
            b[r] += xr * y;
        }
        yy += y * y;
    }
    for r in 0..kp {
        for c in r + 1..kp {
            a[r][c] = a[c][r];
        }
    }
    let l = Spd::factor(kp, 1e-10, |r, c| a[r][c])?;
    let mut beta = [0.0; MAX_P];
    beta[..kp].copy_from_slice(&l.solve(&b[..kp]));
    *keep = Some((beta, cols.clone()));
    let mut rss = yy;
    for r in 0..kp {
        rss -= beta[r] * b[r];
    }
    let rss = rss.max(0.0);
    let mut cvec = [0.0; MAX_P];
    let mut jump = 0.0;
    for (c, &(_, _, k)) in cols.iter().enumerate() {
        if k == target {
            cvec[np + c] = 1.0;
            jump += beta[np + c];
        }
    }
    let w = l.solve(&cvec[..kp]);
    let v: f64 = (0..kp).map(|r| cvec[r] * w[r]).sum();
    let local = p.window(lo, hi, 0).moments();
    let floor = local.s2 / n as f64;
    let fitted = rss / (n - kp) as f64;
    let sigma = (fitted.max(floor) * local.lambda.max(1.0)).sqrt();
    let se = sigma * v.max(0.0).sqrt();
    Some(JointFit {
        jump,
        se,
        z: if se > 0.0 { jump / se } else { 0.0 },
        rss,
        s2: floor * local.lambda.max(1.0),
    })
}

/// The stronger (more negative for a drop) of the fits with and without a recovery term
/// on the target.
pub(crate) fn drop_fit(
    p: &Prepared,
    span: (usize, usize),
    terms: &mut [Term],
    target: usize,
    deg: usize,
    tr: f64,
) -> Option<JointFit> {
    terms[target].recovers = false;
    let a = joint_fit(p, span, terms, target, deg, tr);
    terms[target].recovers = true;
    let b = joint_fit(p, span, terms, target, deg, tr);
    match (a, b) {
        (Some(a), Some(b)) => Some(if a.z <= b.z { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Residuals after the trend and every term but `target` (its own step stays in them), on
/// `[a, b)`, from the joint fit on `span`.
pub(crate) fn target_residuals(
    p: &Prepared,
    (lo, hi): (usize, usize),
    terms: &[Term],
    target: usize,
    deg: usize,
    tr: f64,
    (a, b): (usize, usize),
) -> Option<Vec<f64>> {
    let (beta, cols) = solve(p, (lo, hi), terms, deg, tr)?;
    let np = deg + 1;
    let n = hi - lo;
    let mid = (lo + hi) as f64 / 2.0;
    let half = (n as f64 / 2.0).max(1.0);
    let mut out = Vec::with_capacity(b.saturating_sub(a));
    for i in a..b {
        let y = p.sums().value(i)?;
        let u = (i as f64 - mid) / half;
        let mut pw = 1.0;
        let mut f = 0.0;
        for d in 0..np {
            f += beta[d] * pw;
            pw *= u;
        }
        for (c, &(at, is_exp, k)) in cols.iter().enumerate() {
            if k == target || i < at {
                continue;
            }
            let v = if is_exp {
                (-((i - at) as f64) / tr).exp()
            } else {
                1.0
            };
            f += beta[np + c] * v;
        }
        out.push(y - f);
    }
    Some(out)
}
