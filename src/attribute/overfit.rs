//! Overfitting, as the forum's expert answer defines it: validation loss rising
//! systematically. A gap between training and validation loss is not overfitting.

use serde::{Deserialize, Serialize};

use super::stats::{mann_kendall, theil_sen};
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overfitting {
    pub verdict: OverfitVerdict,
    /// The first epoch after the best one, when overfitting.
    pub started_epoch: Option<u64>,
    /// The checkpoint to keep: the epoch of lowest validation loss.
    pub best_epoch: Option<u64>,
    pub best_val_loss: Option<f64>,
    pub final_val_loss: Option<f64>,
    /// Theil-Sen slope of validation loss per epoch over the tested window.
    pub recent_slope_per_epoch: Option<f64>,
    /// Mann-Kendall two-sided p-value of that window's trend.
    pub trend_p_value: Option<f64>,
    /// Final validation loss minus final training loss (evaluated in eval mode when logged).
    pub gap: Option<f64>,
    pub message: String,
}

/// Epochs after the best one needed before a rise can be called systematic.
const MIN_RISE_POINTS: usize = 4;
const ALPHA: f64 = 0.05;

pub fn assess(val: &[ValRecord], final_train_loss: Option<f64>) -> Overfitting {
    let pts: Vec<&ValRecord> = val.iter().filter(|v| v.val_loss.is_finite()).collect();
    let mut out = Overfitting {
        verdict: OverfitVerdict::Unknown,
        started_epoch: None,
        best_epoch: None,
        best_val_loss: None,
        final_val_loss: None,
        recent_slope_per_epoch: None,
        trend_p_value: None,
        gap: None,
        message: String::new(),
    };
    if pts.len() < 3 {
        out.message =
            "too few validation points to judge overfitting (need at least 3 epochs)".into();
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

    let after: Vec<f64> = pts[bi..].iter().map(|v| v.val_loss).collect();
    // The window for "still falling?": the last half of training, at least 6 epochs (fewer
    // points cannot reach significance with a rank test).
    let w = (pts.len() / 2).max(6).min(pts.len());
    let recent: Vec<f64> = pts[pts.len() - w..].iter().map(|v| v.val_loss).collect();
    let (s_recent, p_recent) = mann_kendall(&recent);
    out.recent_slope_per_epoch = Some(theil_sen(&recent));
    out.trend_p_value = Some(p_recent);

    let rising_after_best = after.len() > MIN_RISE_POINTS && {
        let (s, p) = mann_kendall(&after);
        s > 0.0 && p < ALPHA
    };
    let gap_note = match out.gap {
        Some(g) if g > 0.0 => format!(
            " The train/validation gap ({g:.3}) alone is not overfitting: a gap is typical."
        ),
        _ => String::new(),
    };
    if rising_after_best && last.val_loss > best.val_loss {
        out.verdict = OverfitVerdict::Overfitting;
        out.started_epoch = Some(pts[(bi + 1).min(pts.len() - 1)].epoch);
        out.message = format!(
            "overfitting: validation loss has risen systematically since epoch {} (best {:.4} at epoch {}, now {:.4}); keep the epoch-{} checkpoint.{}",
            out.started_epoch.unwrap_or(best.epoch),
            best.val_loss,
            best.epoch,
            last.val_loss,
            best.epoch,
            gap_note
        );
    } else if s_recent < 0.0 && p_recent < ALPHA {
        out.verdict = OverfitVerdict::NotOverfitting;
        out.message = format!(
            "not overfitting: validation loss is still falling ({:+.4} per epoch over the last {w} epochs); keep training if you care.{gap_note}",
            out.recent_slope_per_epoch.unwrap_or(0.0)
        );
    } else {
        out.verdict = OverfitVerdict::Plateau;
        out.message = format!(
            "not overfitting: validation loss has flattened (no systematic rise over the last {w} epochs); best {:.4} at epoch {}.{gap_note}",
            best.val_loss, best.epoch
        );
    }
    out
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
    }

    #[test]
    fn one_bad_epoch_is_not_a_systematic_rise() {
        let v = [1.0, 0.8, 0.7, 0.65, 0.62, 0.7, 0.61, 0.6, 0.6, 0.59];
        let o = assess(&val(&v), None);
        assert_ne!(o.verdict, OverfitVerdict::Overfitting, "{}", o.message);
    }
}
