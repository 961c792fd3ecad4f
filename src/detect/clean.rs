//! Turns a raw loss log into a sorted, unique, finite, positive series, and says what it fixed.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// What cleaning found and did. Counts refer to the input rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleaningReport {
    /// Rows given (the shorter of the two input slices, if they differ).
    pub n_input: usize,
    /// Rows left after cleaning.
    pub n_kept: usize,
    /// Rows whose steps and losses slices disagreed in length, beyond the shorter one; ignored.
    pub n_length_mismatch: usize,
    /// NaN losses, dropped.
    pub n_nan: usize,
    /// Infinite losses (either sign), dropped: a diverged run has no level to compare.
    pub n_inf: usize,
    /// Zero or negative losses. Log-loss needs a positive value, so they are raised to
    /// half the smallest positive loss of the series (to 1 when there is none): they still
    /// read as "very low" without producing an infinite drop.
    pub n_nonpositive: usize,
    /// Rows repeating an earlier step; the last finite one is kept (a re-logged step
    /// replaces the first try).
    pub n_duplicates: usize,
    /// Whether steps came out of order (they are sorted).
    pub unsorted: bool,
    /// Places where a step is smaller than the one before it, in input order.
    pub n_out_of_order: usize,
    /// The most common distance between consecutive steps after cleaning.
    pub typical_stride: u64,
    /// Places where consecutive steps are further apart than twice the typical stride.
    pub n_gaps: usize,
    /// The largest distance between consecutive steps.
    pub largest_gap: u64,
}

/// A cleaned series: strictly increasing steps and positive finite losses. The losses
/// are borrowed when the input needed no change (the usual log), to spare a copy.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cleaned<'a> {
    pub steps: Vec<u64>,
    pub loss: Cow<'a, [f64]>,
    pub report: CleaningReport,
}

pub(crate) fn clean<'a>(steps: &[u64], loss: &'a [f64]) -> Cleaned<'a> {
    let n = steps.len().min(loss.len());
    let mut report = CleaningReport {
        n_input: n,
        n_length_mismatch: steps.len().max(loss.len()) - n,
        ..CleaningReport::default()
    };
    report.n_out_of_order = steps[..n].windows(2).filter(|w| w[1] < w[0]).count();
    report.unsorted = report.n_out_of_order > 0;

    let (out_steps, mut out_loss): (Vec<u64>, Cow<'a, [f64]>) = if !report.unsorted
        && steps[..n].windows(2).all(|w| w[1] > w[0])
        && loss[..n].iter().all(|v| v.is_finite())
    {
        // The usual log needs no reordering: skip the row copies.
        (steps[..n].to_vec(), Cow::Borrowed(&loss[..n]))
    } else {
        let (s, l) = dedup_finite(&steps[..n], &loss[..n], &mut report);
        (s, Cow::Owned(l))
    };
    report.n_nonpositive = out_loss.iter().filter(|v| **v <= 0.0).count();
    if report.n_nonpositive > 0 {
        let min_pos = out_loss
            .iter()
            .copied()
            .filter(|v| *v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let floor = if min_pos.is_finite() {
            min_pos / 2.0
        } else {
            1.0
        };
        for v in out_loss.to_mut().iter_mut().filter(|v| **v <= 0.0) {
            *v = floor;
        }
    }

    report.n_kept = out_steps.len();
    let first = out_steps.windows(2).next().map_or(0, |w| w[1] - w[0]);
    if out_steps.windows(2).all(|w| w[1] - w[0] == first) {
        // Evenly logged: nothing to count.
        report.typical_stride = first;
        report.largest_gap = first;
    } else {
        let strides: Vec<u64> = out_steps.windows(2).map(|w| w[1] - w[0]).collect();
        report.typical_stride = typical(&strides);
        report.largest_gap = strides.iter().copied().max().unwrap_or(0);
        let limit = report.typical_stride.saturating_mul(2);
        report.n_gaps = strides.iter().filter(|&&d| d > limit).count();
    }
    Cleaned {
        steps: out_steps,
        loss: out_loss,
        report,
    }
}

/// Drops non-finite rows, sorts, and keeps the last of each repeated step.
fn dedup_finite(steps: &[u64], loss: &[f64], report: &mut CleaningReport) -> (Vec<u64>, Vec<f64>) {
    let mut rows: Vec<(u64, f64)> = Vec::with_capacity(steps.len());
    for (&s, &v) in steps.iter().zip(loss) {
        if v.is_nan() {
            report.n_nan += 1;
        } else if v.is_infinite() {
            report.n_inf += 1;
        } else {
            rows.push((s, v));
        }
    }
    if report.unsorted {
        // Stable, so among equal steps the input order survives and "last" means last logged.
        rows.sort_by_key(|r| r.0);
    }
    let mut out_steps = Vec::with_capacity(rows.len());
    let mut out_loss = Vec::with_capacity(rows.len());
    for (i, &(s, v)) in rows.iter().enumerate() {
        if rows.get(i + 1).is_some_and(|next| next.0 == s) {
            report.n_duplicates += 1;
            continue;
        }
        out_steps.push(s);
        out_loss.push(v);
    }
    (out_steps, out_loss)
}

/// The median stride: robust to a few gaps, exact for evenly logged runs.
fn typical(strides: &[u64]) -> u64 {
    if strides.is_empty() {
        return 0;
    }
    let mut s = strides.to_vec();
    let mid = s.len() / 2;
    *s.select_nth_unstable(mid).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_dedups_and_drops_non_finite() {
        let steps = [3, 1, 2, 2, 5, 6, 7];
        let loss = [3.0, 1.0, 2.0, 2.5, f64::NAN, f64::INFINITY, -1.0];
        let c = clean(&steps, &loss);
        assert_eq!(c.steps, vec![1, 2, 3, 7]);
        // The repeated step 2 keeps its last value; the negative loss is raised to half of 1.0.
        assert_eq!(c.loss.as_ref(), &[1.0, 2.5, 3.0, 0.5]);
        let r = &c.report;
        assert!(r.unsorted);
        assert_eq!(r.n_out_of_order, 1);
        assert_eq!(
            (r.n_nan, r.n_inf, r.n_duplicates, r.n_nonpositive),
            (1, 1, 1, 1)
        );
        assert_eq!((r.n_input, r.n_kept), (7, 4));
        assert_eq!(r.typical_stride, 1);
        assert_eq!((r.n_gaps, r.largest_gap), (1, 4));
    }

    #[test]
    fn mismatched_lengths_use_the_common_prefix() {
        let c = clean(&[0, 1, 2], &[1.0, 1.0]);
        assert_eq!(c.report.n_length_mismatch, 1);
        assert_eq!(c.steps, vec![0, 1]);
    }
}
