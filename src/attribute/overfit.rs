//! Overfitting, as the forum's expert answer defines it: validation loss rising
//! systematically. A gap between training and validation loss is not overfitting.

use serde::{Deserialize, Serialize};

use super::stats::{mann_kendall, mann_kendall_ar1, theil_sen};
use crate::trace::ValRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverfitVerdict {
    /// Validation loss rises systematically after its best epoch.
    Overfitting,
    /// Validation loss is still falling.
    NotOverfitting,
    /// Validation loss has flattened: neither falling nor rising systematically.
    Plateau,
    /// Too few validation points to say.
    Unknown,
}

impl OverfitVerdict {
    pub fn label(self) -> &'static str {
        match self {
            OverfitVerdict::Overfitting => "overfitting",
            OverfitVerdict::NotOverfitting => "not overfitting",
            OverfitVerdict::Plateau => "plateau",
            OverfitVerdict::Unknown => "unknown",
        }
    }
}

/// Which question a verdict's trend test answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrendTest {
    /// Does validation loss rise over the epochs after its best one? (decides `overfitting`)
    RiseAfterBest,
    /// Does validation loss still fall over the last part of training? (decides
    /// `not_overfitting` against `plateau`)
    RecentFall,
}

/// The one window of validation points a verdict was decided on, and its statistics:
/// what a report shows is exactly what was tested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendWindow {
    pub test: TrendTest,
    pub from_epoch: u64,
    pub to_epoch: u64,
    pub points: usize,
    /// Theil-Sen slope of validation loss per epoch over the window.
    pub slope_per_epoch: f64,
    /// Mann-Kendall two-sided p-value of the window's trend (the rise test's corrected for
    /// serial correlation: see `serial_correlation`).
    pub p_value: f64,
    /// The rise test only: the AR(1) coefficient of the window's noise that the p-value was
    /// corrected for (0: none found). Absent for the fall test, which is not corrected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_correlation: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overfitting {
    pub verdict: OverfitVerdict,
    /// The first epoch after the best one, when overfitting.
    pub started_epoch: Option<u64>,
    /// The checkpoint to keep: the epoch of lowest validation loss.
    pub best_epoch: Option<u64>,
    pub best_val_loss: Option<f64>,
    pub final_val_loss: Option<f64>,
    /// The window and statistic the verdict rests on (None when there were too few points).
    pub window: Option<TrendWindow>,
    /// Final validation loss minus final training loss (evaluated in eval mode when logged).
    pub gap: Option<f64>,
    pub message: String,
}

/// Validation points after the best one needed before a rise can be called systematic:
/// with fewer, a steady rise cannot reach p < 0.05 in a two-sided Mann-Kendall test (5
/// rising points give p = 0.03, 4 give p = 0.09).
pub const MIN_EPOCHS_AFTER_BEST: usize = 5;
/// Fewest points in the "still falling?" window: a rank test on fewer cannot be significant.
const MIN_RECENT_POINTS: usize = 6;
const ALPHA: f64 = 0.05;

/// The window's statistics and its Mann-Kendall S (positive for a rise). The rise test's
/// p-value allows for serially correlated points ([`mann_kendall_ar1`]): successive epochs'
/// models share most of their weights, so a flat validation curve wanders slowly, and the
/// plain test, which assumes independent points, reads that wander as a rise (measured by
/// `dropscope bench overfit` on runs that cannot overfit; see docs/benchmarks.md).
fn window(pts: &[&ValRecord], test: TrendTest) -> (TrendWindow, f64) {
    let y: Vec<f64> = pts.iter().map(|v| v.val_loss).collect();
    let (s, p, serial_correlation) = match test {
        TrendTest::RiseAfterBest => {
            let (s, p, phi) = mann_kendall_ar1(&y);
            (s, p, Some(phi))
        }
        TrendTest::RecentFall => {
            let (s, p) = mann_kendall(&y);
            (s, p, None)
        }
    };
    let w = TrendWindow {
        test,
        from_epoch: pts.first().map_or(0, |v| v.epoch),
        to_epoch: pts.last().map_or(0, |v| v.epoch),
        points: pts.len(),
        slope_per_epoch: theil_sen(&y),
        p_value: p,
        serial_correlation,
    };
    (w, s)
}

/// The verdict, from one test on one window:
/// - `overfitting` when at least [`MIN_EPOCHS_AFTER_BEST`] validation points follow the best
///   one and they rise (Mann-Kendall over those points, the best left out, S > 0 and
///   p < 0.05, its variance widened for the points' serial correlation) to end above the
///   best;
/// - otherwise `not_overfitting` when validation loss falls over the last half of training
///   (at least 6 points; same test, S < 0), else `plateau`.
///
/// The best point is left out of the rise test: it is the minimum by construction, and
/// would make any flat, noisy curve after it look like a rise.
pub fn assess(val: &[ValRecord], final_train_loss: Option<f64>) -> Overfitting {
    let pts: Vec<&ValRecord> = val.iter().filter(|v| v.val_loss.is_finite()).collect();
    let mut out = Overfitting {
        verdict: OverfitVerdict::Unknown,
        started_epoch: None,
        best_epoch: None,
        best_val_loss: None,
        final_val_loss: None,
        window: None,
        gap: None,
        message: String::new(),
    };
    if pts.len() < 3 {
        out.message = if val.is_empty() {
            "no validation data: overfitting cannot be judged (pass --val)".into()
        } else {
            "too few validation points to judge overfitting (need at least 3 epochs)".into()
        };
        return out;
    }
    let (bi, best) = pts
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.val_loss.total_cmp(&b.1.val_loss))
        .map(|(i, v)| (i, *v))
        .unwrap_or((0, pts[0]));
    let last = pts[pts.len() - 1];
    out.best_epoch = Some(best.epoch);
    out.best_val_loss = Some(best.val_loss);
    out.final_val_loss = Some(last.val_loss);
    let train_final = last.train_loss_eval.or(final_train_loss);
    out.gap = train_final.map(|t| last.val_loss - t);

    let after = &pts[bi + 1..];
    if after.len() >= MIN_EPOCHS_AFTER_BEST {
        let (w, s) = window(after, TrendTest::RiseAfterBest);
        if s > 0.0 && w.p_value < ALPHA && last.val_loss > best.val_loss {
            out.verdict = OverfitVerdict::Overfitting;
            out.started_epoch = Some(after[0].epoch);
            out.message = format!(
                "overfitting: validation loss has risen over the {} epochs after its best (epochs {}-{}: {:+.4} per epoch, Mann-Kendall p = {}); best {:.4} at epoch {}, now {:.4}; keep the epoch-{} checkpoint",
                w.points,
                w.from_epoch,
                w.to_epoch,
                w.slope_per_epoch,
                p_text(w.p_value),
                best.val_loss,
                best.epoch,
                last.val_loss,
                best.epoch
            );
            out.window = Some(w);
            return out;
        }
    }
    let n = (pts.len() / 2).max(MIN_RECENT_POINTS).min(pts.len());
    let (w, s) = window(&pts[pts.len() - n..], TrendTest::RecentFall);
    let gap_note = match out.gap {
        Some(g) if g > 0.0 => {
            format!(
                "; the train/validation gap ({g:.3}) alone is not overfitting: a gap is typical"
            )
        }
        _ => String::new(),
    };
    let falling = s < 0.0 && w.p_value < ALPHA;
    out.verdict = if falling {
        OverfitVerdict::NotOverfitting
    } else {
        OverfitVerdict::Plateau
    };
    out.message = format!(
        "{}: validation loss {} over epochs {}-{} ({:+.4} per epoch, Mann-Kendall p = {}){}{gap_note}",
        if falling {
            "not overfitting"
        } else {
            "not overfitting (plateau)"
        },
        if falling {
            "is still falling"
        } else {
            "neither falls nor rises systematically"
        },
        w.from_epoch,
        w.to_epoch,
        w.slope_per_epoch,
        p_text(w.p_value),
        if falling {
            "; keep training if you care"
        } else {
            ""
        },
    );
    out.window = Some(w);
    out
}

fn p_text(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(losses: &[f64]) -> Vec<ValRecord> {
        losses
            .iter()
            .enumerate()
            .map(|(e, &l)| ValRecord {
                epoch: e as u64,
                step: (e as u64 + 1) * 10,
                val_loss: l,
                val_accuracy: None,
                train_loss_eval: Some(l * 0.5),
            })
            .collect()
    }

    #[test]
    fn a_slowly_falling_validation_loss_with_a_gap_is_not_overfitting() {
        let v: Vec<f64> = (0..12).map(|e| 1.0 - 0.02 * e as f64).collect();
        let o = assess(&val(&v), None);
        assert_eq!(o.verdict, OverfitVerdict::NotOverfitting, "{}", o.message);
        assert!(o.gap.unwrap() > 0.0);
        assert!(o.message.contains("gap"), "{}", o.message);
        assert_eq!(o.best_epoch, Some(11));
    }

    #[test]
    fn a_systematic_rise_after_the_best_epoch_is_overfitting() {
        let v = [1.0, 0.8, 0.7, 0.65, 0.66, 0.68, 0.71, 0.73, 0.76, 0.8];
        let o = assess(&val(&v), None);
        assert_eq!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        assert_eq!(o.best_epoch, Some(3));
        assert_eq!(o.started_epoch, Some(4));
        // The window shown is the one tested: the epochs after the best.
        let w = o.window.as_ref().unwrap();
        assert_eq!(w.test, TrendTest::RiseAfterBest);
        assert_eq!((w.from_epoch, w.to_epoch, w.points), (4, 9, 6));
        assert!(w.slope_per_epoch > 0.0 && w.p_value < 0.05);
        assert!(!o.message.contains("gap"), "{}", o.message);
    }

    #[test]
    fn a_flat_noisy_curve_after_its_minimum_is_not_overfitting() {
        // Fresh data every epoch: validation loss only wobbles. The minimum is at epoch 6,
        // and the points after it are all above it by construction; that alone is no rise.
        let v = [
            1.0, 0.8, 0.7, 0.66, 0.655, 0.662, 0.648, 0.657, 0.651, 0.66, 0.653, 0.656,
        ];
        let o = assess(&val(&v), None);
        assert_ne!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        let w = o.window.as_ref().unwrap();
        assert_eq!(w.test, TrendTest::RecentFall);
        // The message quotes the window's own numbers.
        assert!(
            o.message
                .contains(&format!("epochs {}-{}", w.from_epoch, w.to_epoch)),
            "{}",
            o.message
        );
    }

    #[test]
    fn a_dip_in_a_plateau_and_its_way_back_is_not_overfitting() {
        // A run on fresh data every epoch (`bench overfit`, seed 100, rounded): the model
        // wanders to a lucky low at epoch 15 and drifts back to where it had been. The
        // points after the dip rise for the independent-points test (p = 0.048), but they
        // are serially correlated, and the corrected test does not call it.
        let v = [
            1.338, 1.031, 1.022, 1.013, 1.012, 0.996, 0.986, 1.009, 1.025, 0.996, 1.021, 0.996,
            1.012, 1.022, 0.955, 0.949, 0.964, 0.949, 0.987, 0.998, 1.016, 1.01, 1.008, 1.007,
            1.013,
        ];
        let after = &v[16..];
        assert!(mann_kendall(after).1 < ALPHA);
        let (_, p, phi) = mann_kendall_ar1(after);
        assert!(phi > 0.3 && p > ALPHA, "phi {phi}, p {p}");
        let o = assess(&val(&v), None);
        assert_ne!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        assert_eq!(o.best_epoch, Some(15));
    }

    #[test]
    fn the_rise_window_records_the_serial_correlation_it_allowed_for() {
        let v = [1.0, 0.8, 0.7, 0.65, 0.66, 0.68, 0.71, 0.73, 0.76, 0.8];
        let w = assess(&val(&v), None).window.unwrap();
        assert!(
            w.serial_correlation
                .is_some_and(|r| (0.0..1.0).contains(&r))
        );
        let flat = [1.0, 0.9, 0.85, 0.84, 0.85, 0.84, 0.85, 0.84];
        let w = assess(&val(&flat), None).window.unwrap();
        assert_eq!(w.test, TrendTest::RecentFall);
        assert_eq!(w.serial_correlation, None);
    }

    #[test]
    fn four_rising_epochs_after_the_best_are_too_few_to_call() {
        let v = [1.0, 0.8, 0.7, 0.6, 0.5, 0.4, 0.45, 0.5, 0.55, 0.6];
        let o = assess(&val(&v), None);
        assert_ne!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
        let mut longer = v.to_vec();
        longer.push(0.65);
        let o = assess(&val(&longer), None);
        assert_eq!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
    }

    #[test]
    fn one_bad_epoch_is_not_a_systematic_rise() {
        let v = [1.0, 0.8, 0.7, 0.65, 0.62, 0.7, 0.61, 0.6, 0.6, 0.59];
        let o = assess(&val(&v), None);
        assert_ne!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
    }
}
