//! Learning-rate schedules as plain functions of time.
//!
//! burn's optimizers take the LR as an argument of each step, so a schedule is
//! just a function; keeping it ours makes every schedule the scenario format
//! names (step at milestones, SGDR restarts with growing periods, warm-up
//! before any of them) one small, testable piece.

use crate::scenario::{LrSpec, ScheduleKind, ScheduleUnit};

/// The learning rate at a global `step` in `epoch`.
///
/// `total_steps` and `epochs` give the length of the run for the one-cycle cosine.
pub fn lr_at(spec: &LrSpec, step: u64, epoch: u64, total_steps: u64, epochs: u64) -> f64 {
    let (t, total) = match spec.per {
        ScheduleUnit::Step => (step, total_steps),
        ScheduleUnit::Epoch => (epoch, epochs),
    };
    if t < spec.warmup {
        return spec.base * (t + 1) as f64 / spec.warmup as f64;
    }
    let tw = t - spec.warmup;
    let span = total.saturating_sub(spec.warmup).max(1);
    let cosine = |pos: f64, len: f64| {
        spec.min_lr
            + (spec.base - spec.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * pos / len).cos())
    };
    match spec.schedule {
        ScheduleKind::Constant => spec.base,
        ScheduleKind::Step => {
            // Milestones are points in time, counted from the start as in PyTorch's MultiStepLR.
            let k = match spec.step_every {
                Some(every) => tw / every.max(1),
                None => spec.milestones.iter().filter(|&&m| m <= t).count() as u64,
            };
            spec.base * spec.gamma.powi(k as i32)
        }
        ScheduleKind::Cosine => cosine(tw as f64, span as f64),
        ScheduleKind::CosineRestarts => {
            let mut period = spec.period.unwrap_or(1).max(1) as f64;
            let mut pos = tw as f64;
            while pos >= period {
                pos -= period;
                period *= spec.period_mult;
            }
            cosine(pos, period)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(schedule: ScheduleKind) -> LrSpec {
        LrSpec {
            base: 1.0,
            schedule,
            ..LrSpec::default()
        }
    }

    #[test]
    fn step_schedule_multiplies_by_gamma_at_each_milestone() {
        let s = LrSpec {
            per: ScheduleUnit::Epoch,
            milestones: vec![2, 4],
            gamma: 0.5,
            ..spec(ScheduleKind::Step)
        };
        let lrs: Vec<f64> = (0..6).map(|e| lr_at(&s, e * 10, e, 60, 6)).collect();
        assert_eq!(lrs, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
    }

    #[test]
    fn cosine_restarts_jump_back_to_base_at_each_period() {
        let s = LrSpec {
            period: Some(10),
            ..spec(ScheduleKind::CosineRestarts)
        };
        assert_eq!(lr_at(&s, 0, 0, 100, 1), 1.0);
        assert!(lr_at(&s, 9, 0, 100, 1) < 0.05);
        assert_eq!(lr_at(&s, 10, 0, 100, 1), 1.0);
        assert!((lr_at(&s, 15, 0, 100, 1) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn growing_periods_restart_later_each_time() {
        let s = LrSpec {
            period: Some(10),
            period_mult: 2.0,
            ..spec(ScheduleKind::CosineRestarts)
        };
        assert_eq!(lr_at(&s, 10, 0, 100, 1), 1.0);
        assert!(lr_at(&s, 29, 0, 100, 1) < 0.05);
        assert_eq!(lr_at(&s, 30, 0, 100, 1), 1.0);
    }

    #[test]
    fn warmup_ramps_linearly_then_hands_over() {
        let s = LrSpec {
            warmup: 4,
            ..spec(ScheduleKind::Cosine)
        };
        assert_eq!(lr_at(&s, 0, 0, 104, 1), 0.25);
        assert_eq!(lr_at(&s, 3, 0, 104, 1), 1.0);
        assert_eq!(lr_at(&s, 4, 0, 104, 1), 1.0);
        assert!(lr_at(&s, 103, 0, 104, 1) < 0.01);
    }
}
