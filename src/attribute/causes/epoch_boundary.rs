//! `epoch_boundary`: drops at epoch starts, as memorized examples come round again.

use super::super::Cause;
use super::super::evidence::{Direction, Evidence};
use super::{CauseRule, DropFacts, Facts, Finding, Named, Tier, event_type};
use crate::events::EventKind;

pub struct EpochBoundary;

impl CauseRule for EpochBoundary {
    fn cause(&self) -> Cause {
        Cause::EpochBoundary
    }

    fn test_name(&self) -> &'static str {
        "the test at epoch starts"
    }

    fn advice(&self) -> &'static str {
        "the model re-sees examples it has memorized at each epoch start; confirm by training on fresh data each epoch (the drops vanish) or by removing label noise / capacity (they shrink)"
    }

    /// Not when the logged value is a running mean: its reset at every epoch start is the
    /// logger's, not the model's.
    fn name(&self, facts: &Facts, named: &Named) -> Option<Finding> {
        if named.has(Cause::RunningMeanArtifact) {
            return None;
        }
        let mut f = event_type::name(facts, EventKind::EpochStart, self.cause(), Direction::Drop)?;
        if let Some(k) = facts.period {
            f.finding.evidence.push(Evidence::WholePeriods {
                period_steps: facts.units.steps(k),
            });
        }
        Some(f)
    }

    fn claim(&self, d: &DropFacts, _: &Facts, named: &Named) -> Option<Tier> {
        (d.shape != crate::detect::DropShape::Recovery
            && d.near(named.acting(EventKind::EpochStart)))
        .then_some(Tier::AtEvent)
    }

    fn ties(&self) -> &'static [EventKind] {
        &[EventKind::EpochStart]
    }
}
