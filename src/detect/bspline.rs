//! A smooth trend for a whole series: a uniform cubic B-spline in the index, with a light
//! second-difference penalty so a knot span with little data cannot bend freely. Every
//! point touches four basis functions, so the normal equations are banded and one fit
//! costs O(n); with uniform knots every full knot span adds the same 4x4 block to them,
//! so building them costs O(number of knots).

// The banded solvers read best in the index form of the textbook algorithms.
#![allow(clippy::needless_range_loop)]

/// Cubic B-spline values of the four basis functions live at fraction `f` of a span.
fn cubic(f: f64) -> [f64; 4] {
    let g = 1.0 - f;
    let f2 = f * f;
    let f3 = f2 * f;
    [
        g * g * g / 6.0,
        (3.0 * f3 - 6.0 * f2 + 4.0) / 6.0,
        (-3.0 * f3 + 3.0 * f2 + 3.0 * f + 1.0) / 6.0,
        f3 / 6.0,
    ]
}

/// Penalized normal equations of the spline, factored.
#[derive(Debug, Clone)]
pub(crate) struct Spline {
    n: usize,
    spacing: usize,
    /// Basis functions: knot spans plus three.
    m: usize,
    /// Banded Cholesky factor: `l[i][d]` is `L[i][i - d]`.
    l: Vec<[f64; 4]>,
    /// Sum of each basis function over all points.
    mass: Vec<f64>,
    /// The four basis values at each offset within a span: every span shares them.
    table: Vec<[f64; 4]>,
}

impl Spline {
    /// A spline over `n` points with knots every `spacing` points; `penalty` weighs squared
    /// second differences of neighbouring coefficients against the squared residuals.
    pub fn new(n: usize, spacing: usize, penalty: f64) -> Spline {
        let spacing = spacing.max(4);
        let spans = n.div_ceil(spacing).max(1);
        let m = spans + 3;
        // One full span's contribution; the last span may be short.
        let block = |len: usize| {
            let mut g = [[0.0; 4]; 4];
            let mut s = [0.0; 4];
            for j in 0..len {
                let b = cubic(j as f64 / spacing as f64);
                for r in 0..4 {
                    s[r] += b[r];
                    for c in 0..4 {
                        g[r][c] += b[r] * b[c];
                    }
                }
            }
            (g, s)
        };
        let full = block(spacing);
        let last_len = n - (spans - 1) * spacing;
        let last = if last_len == spacing {
            full
        } else {
            block(last_len)
        };
        // Band storage of the symmetric matrix: a[i][d] = A[i][i - d].
        let mut a = vec![[0.0; 4]; m];
        let mut mass = vec![0.0; m];
        for s in 0..spans {
            let (g, sum) = if s + 1 == spans { &last } else { &full };
            for r in 0..4 {
                mass[s + r] += sum[r];
                for c in 0..=r {
                    a[s + r][r - c] += g[r][c];
                }
            }
        }
        // Second differences (1, -2, 1) of coefficients i, i+1, i+2.
        for i in 0..m.saturating_sub(2) {
            let d = [1.0, -2.0, 1.0];
            for r in 0..3 {
                for c in 0..=r {
                    a[i + r][r - c] += penalty * d[r] * d[c];
                }
            }
        }
        // A tiny ridge keeps basis functions with almost no points solvable.
        for row in a.iter_mut() {
            row[0] += 1e-9 * (1.0 + row[0]);
        }
        let l = band_cholesky(a);
        let table = (0..spacing)
            .map(|j| cubic(j as f64 / spacing as f64))
            .collect();
        Spline {
            n,
            spacing,
            m,
            l,
            mass,
            table,
        }
    }

    pub fn len(&self) -> usize {
        self.m
    }

    pub fn spacing(&self) -> usize {
        self.spacing
    }

    pub fn mass(&self, a: usize) -> f64 {
        self.mass[a]
    }

    /// The first basis function touching point `t`, and the four values there.
    #[inline]
    pub fn basis(&self, t: usize) -> (usize, [f64; 4]) {
        let s = t / self.spacing;
        (s, self.table[t - s * self.spacing])
    }

    /// `Phi^T v`: the inner product of every basis function with `v`.
    pub fn project(&self, v: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.m];
        for (s, chunk) in v.chunks(self.spacing).enumerate() {
            let mut acc = [0.0; 4];
            for (b, &y) in self.table.iter().zip(chunk) {
                for q in 0..4 {
                    acc[q] += b[q] * y;
                }
            }
            for q in 0..4 {
                out[s + q] += acc[q];
            }
        }
        out
    }

    /// Solves the penalized normal equations in place.
    pub fn solve(&self, b: &mut [f64]) {
        let m = self.m;
        for i in 0..m {
            let mut s = b[i];
            for d in 1..4.min(i + 1) {
                s -= self.l[i][d] * b[i - d];
            }
            b[i] = s / self.l[i][0];
        }
        for i in (0..m).rev() {
            let mut s = b[i];
            for d in 1..4.min(m - i) {
                s -= self.l[i + d][d] * b[i + d];
            }
            b[i] = s / self.l[i][0];
        }
    }

    /// The spline with coefficients `coef` at every point.
    pub fn evaluate(&self, coef: &[f64]) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.n);
        for s in 0..self.n.div_ceil(self.spacing) {
            let len = self.spacing.min(self.n - s * self.spacing);
            let c = [coef[s], coef[s + 1], coef[s + 2], coef[s + 3]];
            for b in &self.table[..len] {
                out.push(b[0] * c[0] + b[1] * c[1] + b[2] * c[2] + b[3] * c[3]);
            }
        }
        out
    }
}

/// Cholesky factor of a symmetric positive definite matrix of bandwidth 3, in band storage.
fn band_cholesky(a: Vec<[f64; 4]>) -> Vec<[f64; 4]> {
    let m = a.len();
    let mut l = vec![[0.0; 4]; m];
    for i in 0..m {
        for d in (0..4.min(i + 1)).rev() {
            let j = i - d;
            // L[i][j] = (A[i][j] - sum_k L[i][k] L[j][k]) / L[j][j], k over the shared band.
            let mut s = a[i][d];
            for k in j.saturating_sub(3).max(i.saturating_sub(3))..j {
                s -= l[i][i - k] * l[j][j - k];
            }
            if d == 0 {
                l[i][0] = s.max(1e-300).sqrt();
            } else {
                l[i][d] = s / l[j][0];
            }
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_smooth_curve_and_reproduces_constants() {
        let n = 1000;
        let y: Vec<f64> = (0..n).map(|t| (t as f64 / 300.0).sin() + 2.0).collect();
        let sp = Spline::new(n, 100, 1e-6);
        let mut c = sp.project(&y);
        sp.solve(&mut c);
        let f = sp.evaluate(&c);
        let worst = y
            .iter()
            .zip(&f)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-3, "{worst}");
        let total: f64 = (0..sp.len()).map(|a| sp.mass(a)).sum();
        assert!((total - n as f64).abs() < 1e-6);
    }
}
