//! `lr_change`: a drop at an LR decrease (and while the loss settles after it).

use super::super::Cause;
use super::super::evidence::Direction;
use super::{CauseRule, DropFacts, Facts, Finding, Named, Tier, event_type};
use crate::detect::DropShape;
use crate::events::EventKind;

pub struct LrChange;

/// Steps after a cut within which the loss is still reaching its new level
/// (`lr_aftermath_steps`, at least `min_aftermath_points` log points).
fn aftermath(facts: &Facts) -> u64 {
    let cfg = facts.cfg;
    cfg.lr_aftermath_steps
        .max(facts.units.steps(cfg.min_aftermath_points))
}

impl CauseRule for LrChange {
    fn cause(&self) -> Cause {
        Cause::LrChange
    }

    fn test_name(&self) -> &'static str {
        "the test at LR decreases"
    }

    fn advice(&self) -> &'static str {
        "the learning rate was cut; confirm by moving the milestone (the drop moves with it) or using a constant LR"
    }

    fn name(&self, facts: &Facts, _: &Named) -> Option<Finding> {
        event_type::name(facts, EventKind::LrDecrease, self.cause(), Direction::Drop)
    }

    /// From the cut that acted to the end of its aftermath: the loss takes a while to reach
    /// its new level, and a cut bends the decay as well as moving the level.
    fn claim(&self, d: &DropFacts, facts: &Facts, named: &Named) -> Option<Tier> {
        if d.shape == DropShape::Recovery {
            return None;
        }
        let (step, tol, after) = (d.drop.step, d.tolerance, aftermath(facts));
        named
            .acting(EventKind::LrDecrease)
            .iter()
            .any(|&e| step + tol >= e && step <= e + after + tol)
            .then_some(Tier::AtEvent)
    }

    fn ties(&self) -> &'static [EventKind] {
        &[EventKind::LrDecrease]
    }

    fn reach(&self, tolerance: u64, facts: &Facts) -> u64 {
        tolerance + aftermath(facts)
    }
}
