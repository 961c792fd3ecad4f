//! The event times a drop is explained by, remembered as the points stream in: epoch
//! starts (from the epoch the caller passes) and LR jumps (from the LR), the same events
//! `events::extract` reads off a whole trace, found with only the points before them.

use std::collections::VecDeque;

use crate::attribute::{AttributionConfig, Cause};
use crate::detect::DropShape;
use crate::events::EventKind;

/// Events remembered, per kind. Drops are confirmed within one ring of points, so older
/// events cannot explain anything new; this bounds memory on logs with tiny epochs.
const MAX_EVENTS: usize = 512;
/// Epoch lengths the typical one is the median of.
const EPOCH_LENGTHS: usize = 16;
/// An LR change is a jump when it is at least this share of the LR ...
const LR_JUMP_SHARE: f64 = 0.2;
/// ... and this many times the median of the recent step-to-step changes, so a cosine's
/// smooth decay is no event (the rule of `events::extract`).
const LR_JUMP_OVER_TYPICAL: f64 = 5.0;
/// Recent LR changes the typical one is the median of; after an upward jump, LR points
/// until it is told a warm restart (the LR anneals again) from a plain increase.
const LR_NEIGHBOURS: usize = 10;
#[derive(Debug, Clone, Copy, PartialEq)]
struct LrJump {
    kind: EventKind,
    step: u64,
}

/// An upward LR jump waiting to be told a restart or an increase.
#[derive(Debug, Clone, Copy)]
struct Pending {
    step: u64,
    lr: f64,
    left: usize,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    epoch: Option<(u64, u64)>,
    epoch_starts: VecDeque<u64>,
    epoch_lengths: VecDeque<u64>,
    lr: Option<f64>,
    lr_changes: VecDeque<f64>,
    lr_jumps: VecDeque<LrJump>,
    pending: Option<Pending>,
    /// The last warm restart: the cycle it opened lasts until the next.
    last_restart: Option<u64>,
}

/// What explains a drop, the event it is tied to, and its shape (the fall back inside a
/// spike episode is a recovery, whatever the detector's local look said).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Explanation {
    pub cause: Cause,
    pub event: Option<EventKind>,
    pub shape: DropShape,
}

/// The drop to explain: its step, size, shape, the noise it was measured in, the log's
/// interval (steps per point), and whether it falls inside a spike episode.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropFacts {
    pub step: u64,
    pub log: f64,
    pub shape: DropShape,
    pub noise_sigma: f64,
    pub interval: u64,
    pub in_spike: bool,
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, max: usize) {
    if q.len() == max {
        q.pop_front();
    }
    q.push_back(v);
}

impl Context {
    /// Takes in one point's epoch and LR.
    pub(crate) fn observe(&mut self, step: u64, lr: Option<f64>, epoch: Option<u64>) {
        if let Some(e) = epoch {
            match self.epoch {
                Some((prev, start)) if prev != e => {
                    push_bounded(&mut self.epoch_starts, step, MAX_EVENTS);
                    push_bounded(&mut self.epoch_lengths, step - start, EPOCH_LENGTHS);
                    self.epoch = Some((e, step));
                }
                Some(_) => {}
                None => self.epoch = Some((e, step)),
            }
        }
        if let Some(v) = lr.filter(|v| v.is_finite()) {
            self.observe_lr(step, v);
        }
    }

    fn observe_lr(&mut self, step: u64, v: f64) {
        if let Some(p) = &mut self.pending {
            p.left -= 1;
            if p.left == 0 {
                let restart = v < p.lr;
                self.resolve(restart);
            }
        }
        if let Some(prev) = self.lr {
            let delta = v - prev;
            let scale = v.abs().max(prev.abs());
            if scale > 0.0
                && delta.abs() >= LR_JUMP_SHARE * scale
                && delta.abs() > LR_JUMP_OVER_TYPICAL * self.typical_change()
            {
                if delta < 0.0 {
                    let jump = LrJump {
                        kind: EventKind::LrDecrease,
                        step,
                    };
                    push_bounded(&mut self.lr_jumps, jump, MAX_EVENTS);
                } else {
                    self.resolve(false);
                    self.pending = Some(Pending {
                        step,
                        lr: v,
                        left: LR_NEIGHBOURS,
                    });
                }
            }
            push_bounded(&mut self.lr_changes, delta.abs(), LR_NEIGHBOURS);
        }
        self.lr = Some(v);
    }

    /// Files the pending upward jump as a warm restart or an increase.
    fn resolve(&mut self, restart: bool) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let kind = if restart {
            self.last_restart = Some(p.step);
            EventKind::WarmRestart
        } else {
            EventKind::LrIncrease
        };
        push_bounded(
            &mut self.lr_jumps,
            LrJump { kind, step: p.step },
            MAX_EVENTS,
        );
    }

    fn typical_change(&self) -> f64 {
        let mut v: Vec<f64> = self.lr_changes.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    }

    /// Events held in memory.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.epoch_starts.len() + self.lr_jumps.len()
    }

    /// Median epoch length in steps, when epochs were seen to change.
    pub(crate) fn steps_per_epoch(&self) -> Option<u64> {
        let mut v: Vec<u64> = self.epoch_lengths.iter().copied().collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }

    /// Steps within which a drop is at an event: attribution's share of an epoch, at least
    /// its fewest points.
    pub(crate) fn tolerance(&self, interval: u64, cfg: &AttributionConfig) -> u64 {
        let k = interval.max(1);
        let points_per_epoch = self.steps_per_epoch().unwrap_or(0) / k;
        let points = (points_per_epoch as f64 * cfg.tolerance_epoch_share).round() as u64;
        points.max(cfg.min_tolerance_points as u64) * k
    }

    /// Every remembered event: (kind, step).
    fn events(&self) -> impl Iterator<Item = (EventKind, u64)> + '_ {
        let starts = self
            .epoch_starts
            .iter()
            .map(|&s| (EventKind::EpochStart, s));
        starts.chain(self.lr_jumps.iter().map(|j| (j.kind, j.step)))
    }

    /// What explains a drop, in attribution's order: the fall back inside a spike episode,
    /// a recovery, the settling after an LR cut, a warm restart, an epoch start, a restart
    /// cycle; a drop too small to ask for a cause is explained by none.
    pub(crate) fn explain(&self, d: &DropFacts, cfg: &AttributionConfig) -> Explanation {
        let tol = self.drop_tolerance(d, cfg);
        let aftermath = cfg
            .lr_aftermath_steps
            .max(cfg.min_aftermath_points as u64 * d.interval.max(1));
        let near = |k: EventKind, reach_before: u64, reach_after: u64| {
            self.events()
                .filter(|&(kind, s)| kind == k && d.step + reach_before >= s)
                .any(|(_, s)| d.step <= s + reach_after)
        };
        let minor = d.log < cfg.min_effect_log || d.log < cfg.min_drop_noise_sigmas * d.noise_sigma;
        let restart_cycle = self.last_restart.is_some_and(|r| d.step + tol >= r);
        let (cause, tied) = if d.in_spike {
            (Cause::LossSpike, None)
        } else if d.shape == DropShape::Recovery {
            match (restart_cycle, minor) {
                (true, _) => (Cause::WarmRestart, Some(EventKind::WarmRestart)),
                (false, true) => (Cause::None, None),
                (false, false) => (Cause::LossSpike, None),
            }
        } else if near(EventKind::LrDecrease, tol, aftermath + tol) {
            (Cause::LrChange, Some(EventKind::LrDecrease))
        } else if near(EventKind::WarmRestart, tol, tol) {
            (Cause::WarmRestart, Some(EventKind::WarmRestart))
        } else if near(EventKind::EpochStart, tol, tol) {
            (Cause::EpochBoundary, Some(EventKind::EpochStart))
        } else if restart_cycle {
            // Within a restart cycle the loss falls as the LR anneals.
            (Cause::WarmRestart, None)
        } else if minor {
            (Cause::None, None)
        } else {
            (Cause::Unexplained, None)
        };
        let shape = if d.in_spike {
            DropShape::Recovery
        } else {
            d.shape
        };
        Explanation {
            cause,
            event: tied.or_else(|| self.nearest(d.step, tol)),
            shape,
        }
    }

    /// The nearest event of any kind within the tolerance, as the "at event" column shows
    /// it for a drop no event cause explains.
    fn nearest(&self, step: u64, tol: u64) -> Option<EventKind> {
        self.events()
            .filter(|&(_, s)| s.abs_diff(step) <= tol)
            .min_by_key(|&(_, s)| s.abs_diff(step))
            .map(|(k, _)| k)
    }

    /// Attribution's tolerance for one drop: a drop of size d in noise s is placed to
    /// within about (s / d)^2 points, capped at a quarter epoch.
    fn drop_tolerance(&self, d: &DropFacts, cfg: &AttributionConfig) -> u64 {
        let k = d.interval.max(1);
        let tol0 = self.tolerance(k, cfg);
        if d.log <= 0.0 || d.noise_sigma <= 0.0 {
            return tol0;
        }
        let spread = (d.noise_sigma / d.log).powi(2).round();
        let quarter = self.steps_per_epoch().unwrap_or(0) / k / 4;
        let cap = quarter.max(tol0 / k) as f64;
        tol0.max(spread.min(cap) as u64 * k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(step: u64) -> DropFacts {
        DropFacts {
            step,
            log: 0.3,
            shape: DropShape::Step,
            noise_sigma: 0.1,
            interval: 1,
            in_spike: false,
        }
    }

    #[test]
    fn an_lr_cut_is_an_event_and_a_cosine_decay_is_not() {
        let mut c = Context::default();
        for s in 0..400u64 {
            let cos = 0.1 * (1.0 + (std::f64::consts::PI * s as f64 / 800.0).cos());
            let lr = if s < 300 { cos } else { cos / 10.0 };
            c.observe(s, Some(lr), Some(s / 100));
        }
        let jumps: Vec<_> = c.lr_jumps.iter().map(|j| (j.kind, j.step)).collect();
        assert_eq!(jumps, [(EventKind::LrDecrease, 300)]);
        assert_eq!(c.steps_per_epoch(), Some(100));
        assert_eq!(c.tolerance(1, &AttributionConfig::default()), 5);
    }

    #[test]
    fn a_jump_up_that_anneals_is_a_warm_restart() {
        let mut c = Context::default();
        for s in 0..300u64 {
            let lr = 0.1 * (1.0 - (s % 100) as f64 / 100.0) + 1e-3;
            c.observe(s, Some(lr), None);
        }
        assert_eq!(c.last_restart, Some(200));
        let e = c.explain(&facts(250), &AttributionConfig::default());
        assert_eq!(e.cause, Cause::WarmRestart);
    }
}
