//! Validation loss turning up: `investigate`'s overfitting rule
//! ([`overfit::assess`](crate::attribute::overfit::assess)) on the points so far.

use super::alert::AlertKind;
use super::spike::Found;
use crate::attribute::overfit::{self, OverfitVerdict};
use crate::trace::ValRecord;

#[derive(Debug, Clone, Default)]
pub(crate) struct Validation {
    points: Vec<ValRecord>,
    /// The onset epoch last reported: a new best and a new rise after it is a new onset.
    reported: Option<u64>,
}

impl Validation {
    pub(crate) fn push(
        &mut self,
        epoch: u64,
        step: u64,
        val_loss: f64,
        max: usize,
    ) -> Option<Found> {
        self.points.push(ValRecord {
            epoch,
            step,
            val_loss,
            val_accuracy: None,
            train_loss_eval: None,
        });
        self.bound(max.max(overfit::MIN_EPOCHS_AFTER_BEST + 2));
        let o = overfit::assess(&self.points, None);
        if o.verdict != OverfitVerdict::Overfitting || o.started_epoch == self.reported {
            return None;
        }
        self.reported = o.started_epoch;
        let epoch = o.started_epoch?;
        let onset = self
            .points
            .iter()
            .find(|v| v.epoch == epoch)
            .map_or(step, |v| v.step);
        let kind = AlertKind::Overfitting {
            epoch,
            best_epoch: o.best_epoch?,
            best_val_loss: o.best_val_loss?,
            val_loss,
            p_value: o.window.map_or(f64::NAN, |w| w.p_value),
        };
        Some((onset, kind))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    /// Keeps at most `max` points: the oldest before the best go first (the rise test
    /// reads only the best and what follows it), then the oldest after it.
    fn bound(&mut self, max: usize) {
        while self.points.len() > max {
            let best = self
                .points
                .iter()
                .enumerate()
                .filter(|(_, v)| v.val_loss.is_finite())
                .min_by(|a, b| a.1.val_loss.total_cmp(&b.1.val_loss))
                .map_or(0, |(i, _)| i);
            let drop = if best > 0 { 0 } else { 1 };
            self.points.remove(drop);
        }
    }
}
