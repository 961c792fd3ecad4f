//! `loss_spike`: a fall that only recovers from a spike. Named by the drops it explains,
//! not by a test of its own.

use super::super::evidence::Evidence;
use super::super::{Cause, CauseFinding, ConfidenceLevel};
use super::{CauseRule, DropFacts, Facts, Finding, Named, Tier};
use crate::detect::DropShape;

pub struct LossSpike;

/// Confidence of a cause named by spike recoveries: the shape is unambiguous, but no test
/// against chance stands behind it.
const SPIKE_CONFIDENCE: f64 = 0.9;

impl CauseRule for LossSpike {
    fn cause(&self) -> Cause {
        Cause::LossSpike
    }

    fn test_name(&self) -> &'static str {
        "no test"
    }

    fn advice(&self) -> &'static str {
        "a fall that only recovers from a spike; look at the spike's cause (a bad batch, a too-high LR) instead"
    }

    fn name(&self, _: &Facts, _: &Named) -> Option<Finding> {
        None
    }

    /// The fall back inside a spike episode; any other recovery-shaped drop that no named
    /// cause's rise explains, when it is large enough to ask for a cause.
    fn claim(&self, d: &DropFacts, _: &Facts, _: &Named) -> Option<Tier> {
        if d.in_episode {
            Some(Tier::Episode)
        } else if d.shape == DropShape::Recovery && !d.minor {
            Some(Tier::Recovery)
        } else {
            None
        }
    }

    fn named_by_drops(&self) -> bool {
        true
    }

    fn finding_from_drops(&self, steps: &[u64]) -> Option<CauseFinding> {
        Some(CauseFinding {
            cause: Cause::LossSpike,
            confidence: SPIKE_CONFIDENCE,
            level: ConfidenceLevel::Medium,
            effect_log: None,
            named_by_test: false,
            drops_explained: 0,
            evidence: vec![Evidence::SpikeRecoveries {
                steps: steps.to_vec(),
            }],
        })
    }
}
