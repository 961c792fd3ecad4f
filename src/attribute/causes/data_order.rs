//! `data_order`: unshuffled or sorted data, a within-epoch pattern that repeats every epoch.

use super::super::evidence::Evidence;
use super::super::signatures::{self, DataOrderTest};
use super::super::{Cause, ConfidenceLevel};
use super::{CauseRule, DropFacts, Facts, Finding, Named, Tier, tested};
use crate::detect::DropShape;

pub struct DataOrder;

/// p-value of the position-in-epoch F test below which the pattern is real: strict, since
/// a smooth curve folded by epochs always leaves some structure.
const MAX_P: f64 = 1e-3;
/// Share of within-epoch variation the position must explain to matter.
const MIN_ETA_SQUARED: f64 = 0.05;
/// Correlation of the pattern between even and odd epochs: it must repeat.
const MIN_SPLIT_HALF_R: f64 = 0.5;
/// Beyond these the pattern is strong and stable (high confidence).
const HIGH_ETA_SQUARED: f64 = 0.2;
const HIGH_SPLIT_HALF_R: f64 = 0.8;

/// Whether a data-order test shows a real, repeating within-epoch pattern.
pub(crate) fn is_ordered(d: &DataOrderTest) -> bool {
    d.p_value < MAX_P && d.eta_squared >= MIN_ETA_SQUARED && d.split_half_r >= MIN_SPLIT_HALF_R
}

impl CauseRule for DataOrder {
    fn cause(&self) -> Cause {
        Cause::DataOrder
    }

    fn test_name(&self) -> &'static str {
        "the data-order test"
    }

    fn advice(&self) -> &'static str {
        "batches are not shuffled (or are sorted by class): the loss repeats a within-epoch pattern; shuffle every epoch"
    }

    /// Not for a running mean (its shape repeats every epoch by construction), and not when
    /// the pattern is only the damped recovery after a bad last batch: the steps after a
    /// bad last-batch update recover the same way every epoch, so data order must show in
    /// the second half of the epoch as well.
    fn name(&self, facts: &Facts, named: &Named) -> Option<Finding> {
        let d = facts.data_order.filter(|d| is_ordered(d))?;
        if named.has(Cause::RunningMeanArtifact) {
            return None;
        }
        let aftermath_only = named.has(Cause::LastBatch)
            && facts.short_last() == Some(true)
            && !facts
                .table
                .and_then(|t| signatures::data_order_from(t, t.len / 2))
                .is_some_and(|d| is_ordered(&d));
        if aftermath_only {
            return None;
        }
        let level = if d.eta_squared >= HIGH_ETA_SQUARED && d.split_half_r >= HIGH_SPLIT_HALF_R {
            ConfidenceLevel::High
        } else {
            ConfidenceLevel::Medium
        };
        let evidence = vec![Evidence::PositionInEpoch {
            eta_squared: d.eta_squared,
            f: d.f,
            p_value: d.p_value,
            split_half_r: d.split_half_r,
        }];
        Some(Finding {
            finding: tested(self.cause(), 1.0 - d.p_value, level, None, evidence),
            acting: None,
        })
    }

    /// Any step-shaped drop inside epochs: the pattern shapes the whole curve.
    fn claim(&self, d: &DropFacts, facts: &Facts, _: &Named) -> Option<Tier> {
        (d.shape != DropShape::Recovery && facts.spe > 0).then_some(Tier::Background)
    }
}
