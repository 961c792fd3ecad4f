//! One model for a whole series: a smooth spline trend plus a change at each given
//! position (a step, optionally with an exponential recovery or decay), all fitted
//! together. A sharp step is far narrower than the spline's knot spacing, so the spline
//! cannot absorb it; and the trend under a change is then pinned down by the whole
//! series rather than by the two sides of one boundary, which is what makes local
//! jump estimates several times noisier than a difference of means.
//!
//! The changes are few, the spline coefficients many: the change coefficients are
//! solved first against the spline-projected-out columns (Frisch-Waugh-Lovell), which
//! needs only banded solves.

// The small dense solvers read best in the index form of the textbook algorithms.
#![allow(clippy::needless_range_loop)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::bspline::Spline;
use super::spd::Spd;

/// A change at `at`: a step, plus an exponential term of time constant `tau` when set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Term {
    pub at: usize,
    pub tau: Option<f64>,
}

/// Points per block of the residual noise estimate.
pub(crate) const RESIDUAL_BLOCK: usize = 256;
/// Blocks either side averaged into a change's noise scale.
const NOISE_REACH: usize = 4;
/// Time constants beyond which an exponential term is cut off.
const EXP_CUTOFF: f64 = 30.0;

/// One model column: a step (`tau` `None`) or an exponential starting at `at`.
#[derive(Debug, Clone)]
struct Col {
    at: usize,
    tau: Option<f64>,
    /// `Phi^T x`.
    c: Vec<f64>,
    /// `B^-1 Phi^T x`.
    w: Vec<f64>,
    xty: f64,
}

/// The series, its spline, and what every fit shares.
pub(crate) struct Model<'a> {
    y: &'a [f64],
    spline: Spline,
    /// `Phi^T y`, and the spline-only coefficients `B^-1 Phi^T y`.
    g: Vec<f64>,
    alpha0: Vec<f64>,
    /// Suffix sums of `y`: `suffix[t]` is the sum from `t` to the end.
    suffix: Vec<f64>,
    /// Long-run variance factor of means.
    lambda: f64,
    /// Columns already built, by position and time constant: the search refits with
    /// mostly the same changes many times.
    cache: RefCell<HashMap<(usize, u64), Rc<Col>>>,
}

/// A fitted model.
#[derive(Debug, Clone)]
pub(crate) struct Fitted {
    pub terms: Vec<Term>,
    /// Per term: the step coefficient and the exponential one (0 without).
    pub coef: Vec<(f64, f64)>,
    /// Per term: the jump at the change (step plus exponential) and its z.
    pub jump: Vec<f64>,
    pub z: Vec<f64>,
    pub resid: Vec<f64>,
    /// Residual noise variance per `RESIDUAL_BLOCK` points, long-run factor included.
    pub block_var: Vec<f64>,
}

impl Fitted {
    /// Noise variance around index `t`.
    pub fn var_at(&self, t: usize) -> f64 {
        let b = t / RESIDUAL_BLOCK;
        let lo = b.saturating_sub(NOISE_REACH);
        let hi = (b + NOISE_REACH + 1).min(self.block_var.len());
        self.block_var[lo..hi].iter().sum::<f64>() / (hi - lo).max(1) as f64
    }

    /// The model's contribution of term `k` at index `t`.
    pub fn term_value(&self, k: usize, t: usize) -> f64 {
        let term = self.terms[k];
        if t < term.at {
            return 0.0;
        }
        let (s, e) = self.coef[k];
        s + term
            .tau
            .map_or(0.0, |tau| e * (-((t - term.at) as f64) / tau).exp())
    }
}

/// `sum_{j=0}^{count-1} r^j`.
fn geo(r: f64, count: usize) -> f64 {
    if (1.0 - r).abs() < 1e-12 {
        return count as f64;
    }
    (1.0 - r.powi(count.min(i32::MAX as usize) as i32)) / (1.0 - r)
}

impl<'a> Model<'a> {
    pub fn new(y: &'a [f64], spline: Spline, lambda: f64) -> Model<'a> {
        let g = spline.project(y);
        let mut alpha0 = g.clone();
        spline.solve(&mut alpha0);
        let mut suffix = vec![0.0; y.len() + 1];
        for t in (0..y.len()).rev() {
            suffix[t] = suffix[t + 1] + y[t];
        }
        Model {
            y,
            spline,
            g,
            alpha0,
            suffix,
            lambda: lambda.max(1.0),
            cache: RefCell::new(HashMap::new()),
        }
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// The long-run variance factor the noise estimates carry.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// Sets the long-run variance factor (at least 1) the noise estimates carry.
    pub fn set_lambda(&mut self, lambda: f64) {
        self.lambda = lambda.max(1.0);
    }

    pub fn spline(&self) -> &Spline {
        &self.spline
    }

    fn exp_end(&self, at: usize, tau: f64) -> usize {
        (at + (EXP_CUTOFF * tau) as usize + 1).min(self.y.len())
    }

    fn col(&self, at: usize, tau: Option<f64>) -> Rc<Col> {
        let key = (at, tau.map_or(0, f64::to_bits));
        if let Some(c) = self.cache.borrow().get(&key) {
            return Rc::clone(c);
        }
        let c = Rc::new(self.build_col(at, tau));
        self.cache.borrow_mut().insert(key, Rc::clone(&c));
        c
    }

    fn build_col(&self, at: usize, tau: Option<f64>) -> Col {
        let sp = &self.spline;
        let n = self.y.len();
        let mut c = vec![0.0; sp.len()];
        let sp0 = at / sp.spacing();
        let xty = match tau {
            None => {
                // Basis functions starting after the span of `at` lie wholly after it.
                for (a, v) in c.iter_mut().enumerate().skip(sp0 + 4) {
                    *v = sp.mass(a);
                }
                for t in at..n.min((sp0 + 4) * sp.spacing()) {
                    let (s, b) = sp.basis(t);
                    for q in 0..4 {
                        if s + q <= sp0 + 3 {
                            c[s + q] += b[q];
                        }
                    }
                }
                self.suffix[at.min(n)]
            }
            Some(tau) => {
                let decay = (-1.0 / tau).exp();
                let mut e = 1.0;
                let mut xty = 0.0;
                for t in at..self.exp_end(at, tau) {
                    let (s, b) = sp.basis(t);
                    for q in 0..4 {
                        c[s + q] += e * b[q];
                    }
                    xty += e * self.y[t];
                    e *= decay;
                }
                xty
            }
        };
        let mut w = c.clone();
        sp.solve(&mut w);
        Col { at, tau, c, w, xty }
    }

    /// `x_i^T x_j` in closed form.
    fn cross(&self, a: &Col, b: &Col) -> f64 {
        let n = self.y.len();
        let start = a.at.max(b.at);
        if start >= n {
            return 0.0;
        }
        let count = n - start;
        let rate = |c: &Col| c.tau.map_or(0.0, |t| 1.0 / t);
        let (ra, rb) = (rate(a), rate(b));
        let lead = (-((start - a.at) as f64) * ra - (start - b.at) as f64 * rb).exp();
        lead * geo((-(ra + rb)).exp(), count)
    }

    /// Fits the trend and `terms` together; `None` when the changes are not identifiable.
    pub fn fit(&self, terms: &[Term]) -> Option<Fitted> {
        let n = self.y.len();
        let mut cols: Vec<Rc<Col>> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        for (k, t) in terms.iter().enumerate() {
            if t.at == 0 || t.at >= n {
                return None;
            }
            cols.push(self.col(t.at, None));
            owner.push(k);
            if let Some(tau) = t.tau {
                cols.push(self.col(t.at, Some(tau)));
                owner.push(k);
            }
        }
        let kc = cols.len();
        let mut s = vec![vec![0.0; kc]; kc];
        let mut rhs = vec![0.0; kc];
        for i in 0..kc {
            for j in 0..=i {
                let ctw: f64 = cols[i].c.iter().zip(&cols[j].w).map(|(a, b)| a * b).sum();
                let v = self.cross(&cols[i], &cols[j]) - ctw;
                s[i][j] = v;
                s[j][i] = v;
            }
            let wtg: f64 = cols[i].w.iter().zip(&self.g).map(|(a, b)| a * b).sum();
            rhs[i] = cols[i].xty - wtg;
        }
        let l = Spd::factor(kc, 1e-9, |i, j| s[i][j])?;
        let beta = l.solve(&rhs);
        let mut alpha = self.alpha0.clone();
        for (c, b) in cols.iter().zip(&beta) {
            for (a, w) in alpha.iter_mut().zip(&c.w) {
                *a -= b * w;
            }
        }
        let mut resid = self.spline.evaluate(&alpha);
        for (r, y) in resid.iter_mut().zip(self.y) {
            *r = y - *r;
        }
        let mut steps: Vec<(usize, f64)> = Vec::new();
        for (c, &b) in cols.iter().zip(&beta) {
            match c.tau {
                None => steps.push((c.at, b)),
                Some(tau) => {
                    let decay = (-1.0 / tau).exp();
                    let mut e = b;
                    for r in &mut resid[c.at..self.exp_end(c.at, tau)] {
                        *r -= e;
                        e *= decay;
                    }
                }
            }
        }
        steps.sort_by_key(|s| s.0);
        let mut level = 0.0;
        let mut next = 0;
        for (t, r) in resid.iter_mut().enumerate() {
            while next < steps.len() && steps[next].0 <= t {
                level += steps[next].1;
                next += 1;
            }
            *r -= level;
        }
        let block_var: Vec<f64> = resid
            .chunks(RESIDUAL_BLOCK)
            .map(|c| c.iter().map(|v| v * v).sum::<f64>() / c.len() as f64 * self.lambda)
            .collect();
        let mut fitted = Fitted {
            terms: terms.to_vec(),
            coef: vec![(0.0, 0.0); terms.len()],
            jump: vec![0.0; terms.len()],
            z: vec![0.0; terms.len()],
            resid,
            block_var,
        };
        for (i, c) in cols.iter().enumerate() {
            let k = owner[i];
            if c.tau.is_some() {
                fitted.coef[k].1 = beta[i];
            } else {
                fitted.coef[k].0 = beta[i];
            }
        }
        for k in 0..terms.len() {
            let unit: Vec<f64> = owner.iter().map(|&o| (o == k) as u8 as f64).collect();
            let jump: f64 = unit.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let cv = l.solve(&unit);
            let v: f64 = unit.iter().zip(&cv).map(|(a, b)| a * b).sum();
            let se = (v.max(0.0) * fitted.var_at(terms[k].at)).sqrt();
            fitted.jump[k] = jump;
            fitted.z[k] = if se > 0.0 { jump / se } else { 0.0 };
        }
        Some(fitted)
    }
}
