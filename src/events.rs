//! Candidate causes' event times, read off a trace.
//!
//! Every known cause of a sudden drop happens at a time the log itself can
//! tell: an epoch boundary, an LR change, the last batch of an epoch. This
//! module finds those times; `attribute` tests the loss there.

use serde::{Deserialize, Serialize};

use crate::trace::Trace;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The first step of an epoch (epoch 0 excluded).
    EpochStart,
    /// The last step of an epoch, whose batch may be short.
    LastBatch,
    /// A step at which the LR falls discontinuously (a schedule milestone).
    LrDecrease,
    /// A step at which the LR jumps up and then anneals (SGDR).
    WarmRestart,
    /// A step at which the LR jumps up and stays (not annealed).
    LrIncrease,
    /// The first step after a validation pass.
    Validation,
    /// The first step after the optimizer state was thrown away.
    OptimizerReset,
}

impl EventKind {
    pub fn label(self) -> &'static str {
        match self {
            EventKind::EpochStart => "epoch start",
            EventKind::LastBatch => "last batch",
            EventKind::LrDecrease => "LR decrease",
            EventKind::WarmRestart => "warm restart",
            EventKind::LrIncrease => "LR increase",
            EventKind::Validation => "validation",
            EventKind::OptimizerReset => "optimizer reset",
        }
    }

    pub fn all() -> [EventKind; 7] {
        [
            EventKind::EpochStart,
            EventKind::LastBatch,
            EventKind::LrDecrease,
            EventKind::WarmRestart,
            EventKind::LrIncrease,
            EventKind::Validation,
            EventKind::OptimizerReset,
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub step: u64,
    /// LR events: new LR / old LR. Last batch: its batch size.
    pub value: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Events {
    pub events: Vec<Event>,
    /// Median optimizer steps per epoch, when epochs are known.
    pub steps_per_epoch: Option<f64>,
    /// The usual batch size (the most common), when logged.
    pub typical_batch_size: Option<u64>,
}

impl Events {
    pub fn steps_of(&self, kind: EventKind) -> Vec<u64> {
        self.events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.step)
            .collect()
    }

    pub fn of(&self, kind: EventKind) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |e| e.kind == kind)
    }

    pub fn count(&self, kind: EventKind) -> usize {
        self.of(kind).count()
    }

    pub fn all_steps(&self) -> Vec<u64> {
        let mut s: Vec<u64> = self.events.iter().map(|e| e.step).collect();
        s.sort_unstable();
        s.dedup();
        s
    }
}

/// Finds the events of a trace. `reset_every_epochs` adds optimizer resets that a
/// scenario planted (they leave no mark in the log itself).
pub fn extract(trace: &Trace, reset_every_epochs: Option<u64>) -> Events {
    let mut out = Events::default();
    let steps = &trace.steps;
    if steps.is_empty() {
        return out;
    }
    if trace.has_epochs() {
        let mut lengths = Vec::new();
        let mut run = 1u64;
        for w in steps.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if b.epoch != a.epoch {
                out.events.push(Event {
                    kind: EventKind::LastBatch,
                    step: a.step,
                    value: a.batch_size.map(|v| v as f64),
                });
                out.events.push(Event {
                    kind: EventKind::EpochStart,
                    step: b.step,
                    value: None,
                });
                lengths.push(run);
                run = 1;
                if let (Some(every), Some(e)) = (reset_every_epochs, b.epoch)
                    && every > 0
                    && e % every == 0
                {
                    out.events.push(Event {
                        kind: EventKind::OptimizerReset,
                        step: b.step,
                        value: None,
                    });
                }
            } else {
                run += 1;
            }
        }
        if !lengths.is_empty() {
            lengths.sort_unstable();
            out.steps_per_epoch = Some(lengths[lengths.len() / 2] as f64);
        }
    }
    let sizes: Vec<u64> = steps.iter().filter_map(|s| s.batch_size).collect();
    if !sizes.is_empty() {
        let mut counts = std::collections::BTreeMap::new();
        for s in sizes {
            *counts.entry(s).or_insert(0usize) += 1;
        }
        out.typical_batch_size = counts.into_iter().max_by_key(|&(_, c)| c).map(|(s, _)| s);
    }
    if trace.has_lr() {
        lr_events(trace, &mut out.events);
    }
    let first = steps[0].step;
    let last = steps[steps.len() - 1].step;
    for v in &trace.val {
        // Validation after the last epoch has no training step after it.
        if v.step > first && v.step <= last {
            out.events.push(Event {
                kind: EventKind::Validation,
                step: v.step,
                value: None,
            });
        }
    }
    out.events.sort_by_key(|e| (e.step, e.kind));
    out
}

/// LR jumps: changes much larger than the schedule's own step-to-step changes, so a
/// cosine's smooth decay is not an event but a milestone or a restart is.
fn lr_events(trace: &Trace, out: &mut Vec<Event>) {
    // A missing or NaN/inf LR (a logger that failed to read it) is no schedule change:
    // carry the last finite value over it, so it makes no event on either side.
    let mut last = f64::NAN;
    let lr: Vec<f64> = trace
        .steps
        .iter()
        .map(|s| {
            if let Some(v) = s.lr.filter(|v| v.is_finite()) {
                last = v;
            }
            last
        })
        .collect();
    let first_finite = lr.iter().position(|v| v.is_finite()).unwrap_or(lr.len());
    let lr: Vec<f64> = lr
        .iter()
        .map(|&v| {
            if v.is_finite() {
                v
            } else {
                lr.get(first_finite).copied().unwrap_or(0.0)
            }
        })
        .collect();
    let n = lr.len();
    let d: Vec<f64> = (1..n).map(|i| lr[i] - lr[i - 1]).collect();
    const WINDOW: usize = 10;
    for i in 1..n {
        let delta = d[i - 1];
        let scale = lr[i].abs().max(lr[i - 1].abs());
        if scale <= 0.0 || delta.abs() < 0.2 * scale {
            continue;
        }
        let lo = i.saturating_sub(WINDOW).max(1);
        let hi = (i + WINDOW).min(n - 1);
        let mut neigh: Vec<f64> = (lo..=hi)
            .filter(|&j| j != i)
            .map(|j| d[j - 1].abs())
            .collect();
        neigh.sort_by(|a, b| a.total_cmp(b));
        let typical = neigh.get(neigh.len() / 2).copied().unwrap_or(0.0);
        if delta.abs() <= 5.0 * typical {
            continue;
        }
        let ratio = if lr[i - 1] > 0.0 {
            Some(lr[i] / lr[i - 1])
        } else {
            None
        };
        let kind = if delta < 0.0 {
            EventKind::LrDecrease
        } else {
            // A restart anneals: the LR keeps falling after the jump.
            let ahead = (i + WINDOW).min(n - 1);
            if ahead > i && lr[ahead] < lr[i] {
                EventKind::WarmRestart
            } else {
                EventKind::LrIncrease
            }
        };
        out.push(Event {
            kind,
            step: trace.steps[i].step,
            value: ratio,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::{StepRecord, ValRecord};

    fn trace(n: u64, spe: u64, lr: impl Fn(u64) -> f64) -> Trace {
        let mut t = Trace::new("t");
        for s in 0..n {
            t.steps.push(StepRecord {
                step: s,
                epoch: Some(s / spe),
                batch: Some(s % spe),
                loss: 1.0,
                lr: Some(lr(s)),
                batch_size: Some(if s % spe == spe - 1 { 2 } else { 32 }),
            });
        }
        t
    }

    #[test]
    fn epoch_boundaries_and_last_batches_come_from_the_epoch_column() {
        let e = extract(&trace(30, 10, |_| 0.1), None);
        assert_eq!(e.steps_of(EventKind::EpochStart), [10, 20]);
        assert_eq!(e.steps_of(EventKind::LastBatch), [9, 19]);
        assert_eq!(e.steps_per_epoch, Some(10.0));
        assert_eq!(e.typical_batch_size, Some(32));
        assert_eq!(e.of(EventKind::LastBatch).next().unwrap().value, Some(2.0));
        assert!(e.steps_of(EventKind::LrDecrease).is_empty());
    }

    #[test]
    fn nan_learning_rates_make_no_events() {
        let t = trace(600, 100, |s| match s {
            s if s % 4 == 1 => f64::NAN,
            s if s < 300 => 0.1,
            _ => 0.01,
        });
        let e = extract(&t, None);
        assert_eq!(e.steps_of(EventKind::LrDecrease), [300]);
        assert!(e.steps_of(EventKind::LrIncrease).is_empty());
        assert!(e.steps_of(EventKind::WarmRestart).is_empty());
    }

    #[test]
    fn a_step_schedule_gives_lr_decreases_at_its_milestones() {
        let e = extract(
            &trace(100, 10, |s| {
                if s < 40 {
                    0.1
                } else if s < 70 {
                    0.01
                } else {
                    0.001
                }
            }),
            None,
        );
        assert_eq!(e.steps_of(EventKind::LrDecrease), [40, 70]);
    }

    #[test]
    fn smooth_cosine_is_no_event_but_its_restarts_are() {
        let cos = |s: u64| {
            let p = (s % 50) as f64 / 50.0;
            0.1 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        };
        let e = extract(&trace(200, 20, cos), None);
        assert_eq!(e.steps_of(EventKind::WarmRestart), [50, 100, 150]);
        assert!(
            e.steps_of(EventKind::LrDecrease).is_empty(),
            "{:?}",
            e.events
        );
    }

    #[test]
    fn validation_points_and_planted_resets_are_events() {
        let mut t = trace(30, 10, |_| 0.1);
        t.val.push(ValRecord {
            epoch: 0,
            step: 10,
            val_loss: 1.0,
            val_accuracy: None,
            train_loss_eval: None,
        });
        let e = extract(&t, Some(2));
        assert_eq!(e.steps_of(EventKind::Validation), [10]);
        assert_eq!(e.steps_of(EventKind::OptimizerReset), [20]);
    }
}
