//! Watching a run while it trains: a [`Watcher`] takes one point at a time and returns
//! the events it has just confirmed, in O(1) amortized time and bounded memory.
//!
//! Per point it updates a few running statistics over a fixed ring of recent points: a
//! noise scale, a two-window shift of the log-loss (drop candidates), a running level
//! (spike episodes), a window mean against its best (sustained rises). Only when the
//! shift statistic raises a candidate does the batch detector run, on the ring alone, to
//! confirm and place the drop; its explanation comes from the epoch starts and LR jumps
//! seen so far, by attribution's rules. Validation points go through `investigate`'s
//! overfitting rule. Thresholds are in [`WatchConfig`].
//!
//! `dropscope watch` feeds it from a log being written ([`follow`]); `watch --once` and
//! `investigate` share one analysis ([`once`]). The CLI renders alerts ([`text`]).

mod alert;
pub mod bench;
mod config;
mod confirm;
mod context;
pub mod follow;
pub mod once;
mod ring;
mod shift;
mod spike;
pub mod text;
mod val;

pub use alert::{Alert, AlertKind, DivergenceReason, FailKind};
pub use config::WatchConfig;

use confirm::{Confirm, Known};
use context::Context;
use ring::Ring;
use shift::{Noise, Shift};
use spike::{Found, Rise, Spikes};
use val::Validation;

/// Streaming detection for one run. See the module docs.
#[derive(Debug, Clone)]
pub struct Watcher {
    cfg: WatchConfig,
    ring: Ring,
    noise: Noise,
    shifts: Vec<Shift>,
    confirm: Confirm,
    spikes: Spikes,
    rise: Rise,
    context: Context,
    val: Validation,
    last_step: Option<u64>,
    /// Non-finite losses in a row, and the step of the first.
    nonfinite: (usize, u64),
    skipped: u64,
}

impl Default for Watcher {
    fn default() -> Self {
        Watcher::new(WatchConfig::default())
    }
}

impl Watcher {
    pub fn new(cfg: WatchConfig) -> Self {
        Watcher {
            ring: Ring::new(cfg.ring_points() + 1),
            shifts: cfg
                .scales
                .iter()
                .map(|&h| Shift::new(h, cfg.long_ratio))
                .collect(),
            cfg,
            noise: Noise::default(),
            confirm: Confirm::default(),
            spikes: Spikes::default(),
            rise: Rise::default(),
            context: Context::default(),
            val: Validation::default(),
            last_step: None,
            nonfinite: (0, 0),
            skipped: 0,
        }
    }

    pub fn config(&self) -> &WatchConfig {
        &self.cfg
    }

    /// Takes one training point and returns what it confirmed (usually nothing).
    ///
    /// Steps must increase: a step at or before the last one (a resumed run logging
    /// again) is skipped, as is a zero or negative loss (its log is undefined). `lr` and
    /// `epoch` are what explain drops: pass them when known.
    pub fn push(
        &mut self,
        step: u64,
        loss: f64,
        lr: Option<f64>,
        epoch: Option<u64>,
    ) -> Vec<Alert> {
        if self.last_step.is_some_and(|last| step <= last) {
            self.skipped += 1;
            return Vec::new();
        }
        self.last_step = Some(step);
        self.context.observe(step, lr, epoch);
        if let Some(e) = epoch {
            self.val.observe_train(e, loss, self.cfg.max_val_points);
        }
        if !loss.is_finite() {
            return self.nonfinite(step).into_iter().collect();
        }
        self.nonfinite.0 = 0;
        if loss <= 0.0 {
            self.skipped += 1;
            return Vec::new();
        }
        let y = loss.ln();
        if self.ring.count() > 0 {
            self.noise.observe(y - self.ring.log_back(0));
        }
        self.ring.push(step, loss, y);
        let mut found: Vec<Found> = Vec::new();
        found.extend(self.rise.update(&self.ring, &self.cfg));
        let armed = self.ring.count() >= self.cfg.warmup_points as u64;
        let sigma = self.noise.sigma();
        found.extend(self.spikes.update(step, y, sigma, armed, &self.cfg));
        found.extend(self.drops(armed, sigma));
        alerts(found, step)
    }

    /// Takes one validation point (after the training points up to `step`) and returns an
    /// overfitting alert when validation loss has just turned up.
    ///
    /// Overfitting needs the train/validation gap to widen as validation loss rises: the
    /// training loss of each epoch is the mean of the training points pushed with that
    /// epoch ([`Watcher::push_val_record`] can give an evaluated one instead); without
    /// either, the rise alone decides.
    pub fn push_val(&mut self, epoch: u64, step: u64, val_loss: f64) -> Vec<Alert> {
        self.push_val_record(&crate::trace::ValRecord {
            epoch,
            step,
            val_loss,
            val_accuracy: None,
            train_loss_eval: None,
        })
    }

    /// [`Watcher::push_val`] with the whole record: its `train_loss_eval`, when present
    /// for every point that matters, is the training loss the gap is measured against.
    pub fn push_val_record(&mut self, v: &crate::trace::ValRecord) -> Vec<Alert> {
        let found = self.val.push(*v, self.cfg.max_val_points);
        alerts(found.into_iter().collect(), v.step)
    }

    /// Points taken in (usable ones), and points skipped.
    pub fn counts(&self) -> (u64, u64) {
        (self.ring.count(), self.skipped)
    }

    /// Batch-detector runs so far: the cost beyond the O(1) statistics.
    pub fn detector_runs(&self) -> u64 {
        self.confirm.runs
    }

    fn nonfinite(&mut self, step: u64) -> Option<Alert> {
        if self.nonfinite.0 == 0 {
            self.nonfinite.1 = step;
        }
        self.nonfinite.0 += 1;
        (self.nonfinite.0 == self.cfg.nonfinite_points.max(1)).then_some(Alert {
            step: self.nonfinite.1,
            at: step,
            kind: AlertKind::Divergence {
                reason: DivergenceReason::NonFinite,
            },
        })
    }

    /// Updates the shift statistics and confirms a drop candidate.
    fn drops(&mut self, armed: bool, sigma: Option<f64>) -> Vec<Found> {
        for s in &mut self.shifts {
            s.update(&self.ring);
        }
        // The longest scale that sees a drop (the drop lies within its right window),
        // leaving out scales whose windows still hold the last drop reported: they see it.
        let newest = self.ring.count().saturating_sub(1);
        let since_drop = self.confirm.last_reported().map(|i| newest - i);
        let candidate = match (armed, sigma) {
            (true, Some(sigma)) => self
                .shifts
                .iter()
                .filter(|s| since_drop.is_none_or(|k| k >= s.span() as u64))
                .filter(|s| s.z(sigma).is_some_and(|z| z <= -self.cfg.z_candidate))
                .map(Shift::right_points)
                .max(),
            _ => None,
        };
        let known = Known {
            context: &self.context,
            spikes: &self.spikes,
        };
        self.confirm.update(candidate, &self.ring, known, &self.cfg)
    }
}

/// Found events as alerts raised at step `at`.
fn alerts(found: Vec<spike::Found>, at: u64) -> Vec<Alert> {
    found
        .into_iter()
        .map(|(step, kind)| Alert { step, at, kind })
        .collect()
}

#[cfg(test)]
mod follow_tests;
#[cfg(test)]
mod tests;
