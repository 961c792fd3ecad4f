//! Prefix sums that give the least-squares statistics of any window in O(1).
//!
//! Steps can reach 1e7 and more, so a plain f64 prefix of `x * y` or `x * x` loses
//! the few digits a short window needs. The `x` moments are kept exactly in i128
//! (steps are integers) or not at all (evenly logged runs: closed forms), and the
//! `x * y` moment in double-double. The `y` and `y^2` moments are small (log-loss is
//! centred first), so plain f64 keeps them to far below the noise. A window reads one
//! record at each end, so the prefix values of a point share a cache line.

/// An unevaluated sum `hi + lo`, accurate to about 2^-106 of its size.
#[derive(Debug, Clone, Copy, Default)]
struct Dd {
    hi: f64,
    lo: f64,
}

impl Dd {
    fn add(self, v: f64) -> Dd {
        // Knuth's two-sum: `e` is exactly what the rounded `s` lost.
        let s = self.hi + v;
        let bb = s - self.hi;
        let e = (self.hi - (s - bb)) + (v - bb);
        let lo = self.lo + e;
        let hi = s + lo;
        Dd {
            hi,
            lo: lo - (hi - s),
        }
    }

    fn minus(self, other: Dd) -> f64 {
        (self.hi - other.hi) + (self.lo - other.lo)
    }
}

/// Sums over a window, with `u = x - origin`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Win {
    pub n: f64,
    pub su: f64,
    pub suu: f64,
    pub suuu: f64,
    pub sy: f64,
    pub suy: f64,
    pub syy: f64,
    /// Sum of the local noise variance, for a scale floor that ignores the fit.
    pub s2: f64,
    /// Factor by which variances of means exceed what independent noise would give.
    pub lambda: f64,
}

/// Centred moments of a window: what a straight-line fit needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moments {
    pub n: f64,
    pub ubar: f64,
    pub ybar: f64,
    pub sxx: f64,
    pub sxy: f64,
    pub syy: f64,
    pub s2: f64,
    pub lambda: f64,
    /// Mean of `u^2`, and the centred cross moment of `u` with `u^2`: what a known
    /// curvature changes in a line fit.
    pub u2bar: f64,
    pub sxu2: f64,
}

impl Win {
    pub fn moments(&self) -> Moments {
        let n = self.n.max(1.0);
        let ubar = self.su / n;
        let ybar = self.sy / n;
        Moments {
            n: self.n,
            ubar,
            ybar,
            sxx: (self.suu - self.su * ubar).max(0.0),
            sxy: self.suy - self.su * ybar,
            syy: (self.syy - self.sy * ybar).max(0.0),
            s2: self.s2,
            lambda: self.lambda,
            u2bar: self.suu / n,
            sxu2: self.suuu - ubar * self.suu,
        }
    }
}

/// Exact prefix sums of `x`, `x^2`, `x^3`, for series whose steps are unevenly spaced.
#[derive(Debug, Clone, Copy, Default)]
struct XPrefix {
    x: i128,
    xx: i128,
    xxx: i128,
}

impl XPrefix {
    fn add(&mut self, x: u64) {
        let v = x as i128;
        self.x += v;
        self.xx += v * v;
        self.xxx += v * v * v;
    }
}

/// `sum_{j=u0}^{u1-1} j^k` for k = 1, 2, 3, from the polynomial closed forms (valid for
/// negative bounds too).
fn power_sums(u0: f64, u1: f64) -> (f64, f64, f64) {
    let f1 = |m: f64| m * (m - 1.0) / 2.0;
    let f2 = |m: f64| (m - 1.0) * m * (2.0 * m - 1.0) / 6.0;
    let f3 = |m: f64| f1(m) * f1(m);
    (f1(u1) - f1(u0), f2(u1) - f2(u0), f3(u1) - f3(u0))
}

/// Prefix sums up to one index.
#[derive(Debug, Clone, Copy, Default)]
struct Prefix {
    y: f64,
    yy: f64,
    xy: Dd,
}

/// Points per stored prefix in the full-resolution view: sums at other points add up the
/// few values since the last stored one. A prefix per point would cost 32 bytes a point,
/// and for long runs the page faults of that much fresh memory cost more than the sums.
/// (Coarse views need a spacing that is a multiple of it to skip the partial sums.)
const FINE_BLOCK: usize = 8;

/// The values themselves, for sums between stored prefixes.
#[derive(Debug, Clone, Default)]
struct Fine {
    y: Vec<f64>,
    x: Option<Vec<u64>>,
}

/// Prefix sums on a grid of spacing `g`. The full-resolution view (`g` = 1) stores every
/// `FINE_BLOCK`-th prefix and the values; a coarse view stores only its grid points, which
/// is what a scan over that grid reads: all its window ends lie on the grid, and the copy
/// is small enough to stay in cache.
#[derive(Debug, Clone, Default)]
pub(crate) struct WindowSums {
    /// Grid spacing, in points.
    g: usize,
    /// Points in the series.
    n: usize,
    /// Stored prefixes: at every `FINE_BLOCK`-th point with `fine`, else at every grid point.
    pre: Vec<Prefix>,
    /// Exact `x` moments at the same places; `None` when `x` is the index itself (evenly
    /// logged runs, the common case: closed forms).
    xs: Option<Vec<XPrefix>>,
    fine: Option<Fine>,
    /// Local noise variance is constant per block of `2^block_shift` points: its sums come
    /// from per-block totals.
    block_shift: u32,
    block_var: Vec<f64>,
    block_prefix: Vec<f64>,
    lambda: f64,
}

impl WindowSums {
    /// `x` are integer coordinates (small enough that `n * x^3` fits an i128 with room),
    /// or `None` for `x = index`; `y` the values; `block_var` the local noise variance of
    /// each run of `2^block_shift` points.
    pub fn new(x: Option<Vec<u64>>, y: Vec<f64>, block_shift: u32, block_var: &[f64]) -> Self {
        let n = y.len();
        let mut pre = Vec::with_capacity(n / FINE_BLOCK + 2);
        let mut acc = Prefix::default();
        pre.push(acc);
        // Per block: plain sums of a few terms, then one exact add, as `prefix` does.
        for (k, block) in y.chunks(FINE_BLOCK).enumerate() {
            let (mut sy, mut syy, mut sxy) = (0.0, 0.0, 0.0);
            for (j, &v) in block.iter().enumerate() {
                let i = k * FINE_BLOCK + j;
                let xi = x.as_ref().map_or(i as f64, |x| x[i] as f64);
                sy += v;
                syy += v * v;
                sxy += xi * v;
            }
            acc.y += sy;
            acc.yy += syy;
            acc.xy = acc.xy.add(sxy);
            if block.len() == FINE_BLOCK {
                pre.push(acc);
            }
        }
        let xs = x.as_ref().map(|x| {
            let mut out = Vec::with_capacity(n / FINE_BLOCK + 2);
            let mut a = XPrefix::default();
            for (i, &xi) in x.iter().enumerate().take(n) {
                if i % FINE_BLOCK == 0 {
                    out.push(a);
                }
                a.add(xi);
            }
            if n.is_multiple_of(FINE_BLOCK) {
                out.push(a);
            }
            out
        });
        let mut block_prefix = Vec::with_capacity(block_var.len() + 1);
        let mut total = 0.0;
        block_prefix.push(0.0);
        for (k, v) in block_var.iter().enumerate() {
            let len = (n.min((k + 1) << block_shift)).saturating_sub(k << block_shift);
            total += v * len as f64;
            block_prefix.push(total);
        }
        WindowSums {
            g: 1,
            n,
            pre,
            xs,
            fine: Some(Fine { y, x }),
            block_shift,
            block_var: block_var.to_vec(),
            block_prefix,
            lambda: 1.0,
        }
    }

    /// Sets the long-run variance factor every window reports.
    pub fn with_long_run_factor(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }

    /// A coarse view on a grid of spacing `g * factor` (grid point `j` is point `j g factor`).
    pub fn coarsen(&self, factor: usize) -> WindowSums {
        let g = self.g * factor.max(1);
        let last = self.n / g;
        let step = g / self.g;
        WindowSums {
            g,
            n: self.n,
            pre: (0..=last).map(|j| self.prefix(j * step)).collect(),
            xs: self
                .xs
                .as_ref()
                .map(|_| (0..=last).map(|j| self.x_prefix(j * step)).collect()),
            fine: None,
            block_shift: self.block_shift,
            block_var: self.block_var.clone(),
            block_prefix: self.block_prefix.clone(),
            lambda: self.lambda,
        }
    }

    /// The summed value at point `i` (full-resolution view only).
    pub fn value(&self, i: usize) -> Option<f64> {
        self.fine.as_ref().and_then(|f| f.y.get(i).copied())
    }

    /// Every summed value (full-resolution view; empty for a coarse one).
    pub fn values(&self) -> &[f64] {
        self.fine.as_ref().map_or(&[], |f| f.y.as_slice())
    }

    /// The fit coordinate of point `i`.
    pub fn coord(&self, i: usize) -> u64 {
        match self.fine.as_ref().and_then(|f| f.x.as_ref()) {
            Some(x) => x.get(i).copied().unwrap_or(i as u64),
            None => i as u64,
        }
    }

    /// Grid spacing in points.
    pub fn spacing(&self) -> usize {
        self.g
    }

    /// Grid points: window ends run from 0 to `len() - 1`.
    pub fn len(&self) -> usize {
        self.n / self.g + 1
    }

    /// The prefix up to grid point `j`.
    fn prefix(&self, j: usize) -> Prefix {
        let Some(f) = &self.fine else {
            return self.pre[j];
        };
        let k = j / FINE_BLOCK;
        let mut acc = self.pre[k];
        // A handful of terms: plain sums, then one exact add.
        let (mut sy, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for i in k * FINE_BLOCK..j {
            let v = f.y[i];
            let xi = f.x.as_ref().map_or(i as f64, |x| x[i] as f64);
            sy += v;
            syy += v * v;
            sxy += xi * v;
        }
        acc.y += sy;
        acc.yy += syy;
        acc.xy = acc.xy.add(sxy);
        acc
    }

    fn x_prefix(&self, j: usize) -> XPrefix {
        let Some(xs) = &self.xs else {
            return XPrefix::default();
        };
        let Some(f) = &self.fine else {
            return xs[j];
        };
        let k = j / FINE_BLOCK;
        let mut acc = xs[k];
        if let Some(x) = &f.x {
            for &xi in &x[k * FINE_BLOCK..j] {
                acc.add(xi);
            }
        }
        acc
    }

    fn var_prefix(&self, i: usize) -> f64 {
        let k = i >> self.block_shift;
        match (self.block_prefix.get(k), self.block_var.get(k)) {
            (Some(p), Some(v)) => p + (i - (k << self.block_shift)) as f64 * v,
            (Some(p), None) => *p,
            _ => self.block_prefix.last().copied().unwrap_or(0.0),
        }
    }

    /// Sums over grid points `[a, b)` (points `[a g, b g)`) with coordinates taken
    /// relative to `origin`.
    pub fn window(&self, a: usize, b: usize, origin: u64) -> Win {
        let b = b.min(self.len() - 1);
        if a >= b {
            return Win {
                lambda: self.lambda,
                ..Win::default()
            };
        }
        let (ia, ib) = (a * self.g, b * self.g);
        let (su, suu, suuu) = match &self.xs {
            None => power_sums(ia as f64 - origin as f64, ib as f64 - origin as f64),
            Some(_) => {
                let m = (ib - ia) as i128;
                let o = origin as i128;
                let (xa, xb) = (self.x_prefix(a), self.x_prefix(b));
                let sx = xb.x - xa.x;
                let sxx = xb.xx - xa.xx;
                let sxxx = xb.xxx - xa.xxx;
                let su = sx - m * o;
                let suu = sxx - 2 * o * sx + m * o * o;
                let suuu = sxxx - 3 * o * sxx + 3 * o * o * sx - m * o * o * o;
                (su as f64, suu as f64, suuu as f64)
            }
        };
        let (pa, pb) = (self.prefix(a), self.prefix(b));
        let sy = pb.y - pa.y;
        let sxy = pb.xy.minus(pa.xy);
        Win {
            n: (ib - ia) as f64,
            su,
            suu,
            suuu,
            sy,
            suy: sxy - origin as f64 * sy,
            syy: pb.yy - pa.yy,
            s2: self.var_prefix(ib) - self.var_prefix(ia),
            lambda: self.lambda,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sums_match_direct_sums_far_from_zero() {
        let x: Vec<u64> = (0..2000u64).map(|i| 9_000_000 + 3 * i).collect();
        let y: Vec<f64> = (0..2000).map(|i| ((i * 37 % 101) as f64).sin()).collect();
        let s = WindowSums::new(Some(x.clone()), y.clone(), 7, &[0.5; 16]);
        let (a, b, o) = (1500, 1516, x[1508]);
        let w = s.window(a, b, o);
        let (mut su, mut suu, mut suuu, mut suy, mut sy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for i in a..b {
            let u = x[i] as f64 - o as f64;
            su += u;
            suu += u * u;
            suuu += u * u * u;
            suy += u * y[i];
            sy += y[i];
        }
        assert_eq!(w.n, 16.0);
        assert!((w.su - su).abs() < 1e-9);
        assert!((w.suu - suu).abs() < 1e-9);
        assert!((w.suuu - suuu).abs() < 1e-6);
        assert!((w.sy - sy).abs() < 1e-9);
        assert!((w.suy - suy).abs() < 1e-6, "{} vs {}", w.suy, suy);
        assert!((w.s2 - 8.0).abs() < 1e-9);
    }
}

#[test]
fn evenly_spaced_sums_use_closed_forms() {
    let x: Vec<u64> = (0..300).collect();
    let y: Vec<f64> = (0..300).map(|i| (i as f64 * 0.37).cos()).collect();
    let stored = WindowSums::new(Some(x), y.clone(), 7, &[1.0, 2.0, 3.0]);
    let closed = WindowSums::new(None, y, 7, &[1.0, 2.0, 3.0]);
    for (a, b, o) in [(10, 50, 40), (0, 300, 7), (120, 140, 130)] {
        let (p, q) = (stored.window(a, b, o), closed.window(a, b, o));
        assert_eq!((p.su, p.suu, p.suuu), (q.su, q.suu, q.suuu));
        assert!((p.suy - q.suy).abs() < 1e-9);
    }
    // Blocks of 128 points with variance 1, 2, 3: [120, 140) spans the first two.
    assert_eq!(closed.window(120, 140, 0).s2, 8.0 + 2.0 * 12.0);
}

#[test]
fn a_coarse_grid_gives_the_same_sums_on_its_points() {
    let x: Vec<u64> = (0..1000u64).map(|i| 5 * i + i / 7).collect();
    let y: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.11).sin()).collect();
    let fine = WindowSums::new(Some(x.clone()), y, 7, &[1.0; 8]);
    let coarse = fine.coarsen(4).coarsen(2);
    assert_eq!(coarse.spacing(), 8);
    let (p, q) = (fine.window(80, 400, x[240]), coarse.window(10, 50, x[240]));
    assert_eq!((p.n, p.su, p.suu, p.suuu), (q.n, q.su, q.suu, q.suuu));
    assert_eq!((p.sy, p.suy, p.s2), (q.sy, q.suy, q.s2));
}
