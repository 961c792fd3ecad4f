//! Turns a raw loss log into a sorted, unique, finite, positive series, and says what it
//! dropped and why.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// What cleaning found and did. Counts refer to the input rows, and every row given is
/// either kept or dropped for exactly one reason:
/// `n_input = n_kept + n_nan + n_inf + n_nonpositive + n_duplicates`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleaningReport {
    /// Rows given (the shorter of the two input slices, if they differ).
    pub n_input: usize,
    /// Rows left after cleaning: unique steps with a positive finite loss.
    pub n_kept: usize,
    /// Rows whose steps and losses slices disagreed in length, beyond the shorter one; ignored
    /// (not part of `n_input`).
    pub n_length_mismatch: usize,
    /// NaN losses, dropped.
    pub n_nan: usize,
    /// Infinite losses (either sign), dropped: a diverged run has no level to compare.
    pub n_inf: usize,
    /// Zero or negative losses, dropped: the analysis works on log(loss), and any value put
    /// in their place (half the smallest loss, say) would be an invented outlier that can
    /// pose as a drop.
    pub n_nonpositive: usize,
    /// Rows repeating an earlier step; the last usable one is kept (a re-logged step
    /// replaces the first try).
    pub n_duplicates: usize,
    /// The step from which every loss, to the end of the log, is NaN or infinite: the run
    /// diverged there. None when the log ends on a finite loss (a NaN in the middle that
    /// training came back from is counted in `n_nan`, not a divergence).
    #[serde(default)]
    pub diverged_at: Option<u64>,
    /// Rows from `diverged_at` on (all of them NaN or infinite, counted there too).
    #[serde(default)]
    pub n_after_divergence: usize,
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

/// Share of the rows before any divergence whose loss was NaN, infinite or not positive,
/// beyond which a report warns: a few bad rows are common (a logging glitch, a skipped
/// fp16 step), but past a tenth the analysed series is no longer the log the user sees.
pub const WARN_DROPPED_SHARE: f64 = 0.10;

impl CleaningReport {
    /// Rows dropped for NaN, infinite or non-positive losses before the divergence (the
    /// divergence itself is reported on its own), as a share of the rows before it.
    pub fn unusable_share(&self) -> f64 {
        let before = self.n_input.saturating_sub(self.n_after_divergence);
        let bad =
            (self.n_nan + self.n_inf + self.n_nonpositive).saturating_sub(self.n_after_divergence);
        if before == 0 {
            0.0
        } else {
            bad as f64 / before as f64
        }
    }

    /// Whether so many rows were unusable that a report must say so (see
    /// [`WARN_DROPPED_SHARE`]).
    pub fn many_unusable(&self) -> bool {
        self.unusable_share() > WARN_DROPPED_SHARE
    }
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

    let (out_steps, out_loss): (Vec<u64>, Cow<'a, [f64]>) = if !report.unsorted
        && steps[..n].windows(2).all(|w| w[1] > w[0])
        && loss[..n].iter().all(|v| v.is_finite() && *v > 0.0)
    {
        // The usual log needs no reordering: skip the row copies.
        (steps[..n].to_vec(), Cow::Borrowed(&loss[..n]))
    } else {
        let (s, l) = dedup_usable(&steps[..n], &loss[..n], &mut report);
        (s, Cow::Owned(l))
    };

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

/// Drops non-finite and non-positive rows, sorts, keeps the last of each repeated step,
/// and finds where the log turns non-finite for good.
fn dedup_usable(steps: &[u64], loss: &[f64], report: &mut CleaningReport) -> (Vec<u64>, Vec<f64>) {
    let mut rows: Vec<(u64, f64)> = steps.iter().copied().zip(loss.iter().copied()).collect();
    if report.unsorted {
        // Stable, so among equal steps the input order survives and "last" means last logged.
        rows.sort_by_key(|r| r.0);
    }
    // In step order, the rows after the last finite loss: the divergence.
    let tail_from = rows
        .iter()
        .rposition(|r| r.1.is_finite())
        .map_or(0, |i| i + 1);
    if tail_from < rows.len() {
        report.diverged_at = Some(rows[tail_from].0);
        report.n_after_divergence = rows.len() - tail_from;
    }
    let mut out_steps = Vec::with_capacity(rows.len());
    let mut out_loss = Vec::with_capacity(rows.len());
    for (i, &(s, v)) in rows.iter().enumerate() {
        if v.is_nan() {
            report.n_nan += 1;
        } else if v.is_infinite() {
            report.n_inf += 1;
        } else if v <= 0.0 {
            report.n_nonpositive += 1;
        } else if rows[i + 1..]
            .iter()
            .take_while(|next| next.0 == s)
            .any(|next| next.1.is_finite() && next.1 > 0.0)
        {
            // A later usable row of the same step replaces this one.
            report.n_duplicates += 1;
        } else {
            out_steps.push(s);
            out_loss.push(v);
        }
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
        assert_eq!(c.steps, vec![1, 2, 3]);
        // The repeated step 2 keeps its last value; the negative loss is dropped.
        assert_eq!(c.loss.as_ref(), &[1.0, 2.5, 3.0]);
        let r = &c.report;
        assert!(r.unsorted);
        assert_eq!(r.n_out_of_order, 1);
        assert_eq!(
            (r.n_nan, r.n_inf, r.n_duplicates, r.n_nonpositive),
            (1, 1, 1, 1)
        );
        assert_eq!((r.n_input, r.n_kept), (7, 3));
        // The log ends on a finite (if unusable) loss: no divergence.
        assert_eq!(r.diverged_at, None);
        assert_eq!(r.typical_stride, 1);
    }

    #[test]
    fn kept_and_dropped_rows_add_up_to_the_input() {
        let steps: Vec<u64> = (0..100).chain([10, 20]).collect();
        let loss: Vec<f64> = (0..102)
            .map(|i| match i % 10 {
                1 => f64::NAN,
                2 => -0.5,
                3 => 0.0,
                4 => f64::NEG_INFINITY,
                _ => 1.0 + i as f64,
            })
            .collect();
        let r = clean(&steps, &loss).report;
        assert_eq!(
            r.n_kept + r.n_nan + r.n_inf + r.n_nonpositive + r.n_duplicates,
            r.n_input,
            "{r:?}"
        );
        assert_eq!(r.n_nonpositive, 20);
        // 40 of the 102 rows are unusable: a share worth a warning.
        assert!(r.many_unusable());
    }

    #[test]
    fn a_log_that_ends_in_nan_diverged_where_the_nan_began() {
        let steps: Vec<u64> = (0..100).collect();
        let mut loss: Vec<f64> = vec![1.0; 100];
        loss[30] = f64::NAN; // came back from it: not a divergence
        for v in &mut loss[70..] {
            *v = f64::NAN;
        }
        loss[90] = f64::INFINITY;
        let r = clean(&steps, &loss).report;
        assert_eq!(r.diverged_at, Some(70));
        assert_eq!(r.n_after_divergence, 30);
        assert_eq!((r.n_nan, r.n_inf, r.n_kept), (30, 1, 69));
        // Only the NaN at 30 counts against the finite part.
        assert!((r.unusable_share() - 1.0 / 70.0).abs() < 1e-12);
        let all_nan = clean(&[4, 5], &[f64::NAN, f64::NAN]).report;
        assert_eq!(all_nan.diverged_at, Some(4));
    }

    #[test]
    fn mismatched_lengths_use_the_common_prefix() {
        let c = clean(&[0, 1, 2], &[1.0, 1.0]);
        assert_eq!(c.report.n_length_mismatch, 1);
        assert_eq!(c.steps, vec![0, 1]);
    }
}
