//! The small symmetric positive definite solves of the joint fits, on nalgebra's Cholesky.

use nalgebra::{Cholesky, DMatrix, DVector, Dyn};

/// A factored k×k normal-equation matrix.
pub(crate) struct Spd(Cholesky<f64, Dyn>);

impl Spd {
    /// Factors the matrix with entries `a(i, j)`; `None` when a pivot falls below `tol`
    /// relative to its diagonal (or is NaN): a near-singular design gives coefficients too
    /// large to mean anything, and the caller treats it as no fit.
    pub fn factor(k: usize, tol: f64, a: impl Fn(usize, usize) -> f64) -> Option<Spd> {
        let m = DMatrix::from_fn(k, k, a);
        let chol = m.clone().cholesky()?;
        let l = chol.l_dirty();
        let sound = (0..k).all(|j| l[(j, j)] * l[(j, j)] > tol * (1.0 + m[(j, j)].abs()));
        sound.then_some(Spd(chol))
    }

    /// Solves `A x = b`.
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        self.0
            .solve(&DVector::from_column_slice(b))
            .as_slice()
            .to_vec()
    }
}
