//! Validation loss turning up: `investigate`'s overfitting rule
//! ([`overfit::assess`](crate::attribute::overfit::assess)) on the points so far, with the
//! training loss seen so far: each point's evaluated training loss when given, else the
//! mean of the training points of its epoch.

use std::collections::VecDeque;

use super::alert::AlertKind;
use super::spike::Found;
use crate::attribute::overfit::{self, OverfitVerdict};
use crate::trace::ValRecord;

#[derive(Debug, Clone, Default)]
pub(crate) struct Validation {
    points: Vec<ValRecord>,
    /// The onset epoch last reported: a new best and a new rise after it is a new onset.
    reported: Option<u64>,
    /// The most recent epochs' training losses: (epoch, sum, count), as many as points kept.
    train: VecDeque<(u64, f64, u64)>,
}

impl Validation {
    /// Takes one training loss of `epoch` (finite ones only count).
    pub(crate) fn observe_train(&mut self, epoch: u64, loss: f64, max: usize) {
        if !loss.is_finite() {
            return;
        }
        match self.train.back_mut() {
            Some((e, sum, n)) if *e == epoch => {
                *sum += loss;
                *n += 1;
            }
            _ => {
                self.train.push_back((epoch, loss, 1));
                while self.train.len() > Self::cap(max) {
                    self.train.pop_front();
                }
            }
        }
    }

    fn cap(max: usize) -> usize {
        max.max(overfit::MIN_EPOCHS_AFTER_BEST + 2)
    }

    pub(crate) fn push(&mut self, v: ValRecord, max: usize) -> Option<Found> {
        let (step, val_loss) = (v.step, v.val_loss);
        self.points.push(v);
        self.bound(Self::cap(max));
        // The latest run of each epoch (a restarted run logs its epochs again).
        let mut train: Vec<(u64, f64)> = Vec::with_capacity(self.train.len());
        for &(e, sum, n) in self.train.iter().rev() {
            if !train.iter().any(|&(seen, _)| seen == e) {
                train.push((e, sum / n as f64));
            }
        }
        let o = overfit::assess(&self.points, &train, None);
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
