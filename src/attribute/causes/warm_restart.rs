//! `warm_restart`: the LR restarts, the loss rises, then falls as the LR anneals.

use super::super::Cause;
use super::super::evidence::Direction;
use super::{CauseRule, DropFacts, Facts, Finding, Named, Tier, event_type};
use crate::detect::DropShape;
use crate::events::EventKind;

pub struct WarmRestart;

impl CauseRule for WarmRestart {
    fn cause(&self) -> Cause {
        Cause::WarmRestart
    }

    fn test_name(&self) -> &'static str {
        "the test at warm restarts"
    }

    fn advice(&self) -> &'static str {
        "the LR schedule restarts: the loss rises at each restart and falls as the LR anneals; expected for SGDR"
    }

    /// Tested for a rise: the restart's own signature.
    fn name(&self, facts: &Facts, _: &Named) -> Option<Finding> {
        event_type::name(facts, EventKind::WarmRestart, self.cause(), Direction::Rise)
    }

    /// The fall back from a restart's rise, a drop at a restart that acted, and within a
    /// cycle any drop (the loss falls as the LR anneals).
    fn claim(&self, d: &DropFacts, _: &Facts, named: &Named) -> Option<Tier> {
        Some(if d.shape == DropShape::Recovery {
            Tier::Recovery
        } else if d.near(named.acting(EventKind::WarmRestart)) {
            Tier::AtEvent
        } else {
            Tier::Background
        })
    }

    fn ties(&self) -> &'static [EventKind] {
        &[EventKind::WarmRestart]
    }
}
