//! `data_order`: unshuffled or sorted data, a within-epoch pattern that repeats every epoch.

use super::super::evidence::Evidence;
use super::super::signatures::{self, DataOrderTest};
use super::super::{Cause, ConfidenceLevel};
use super::{CauseRule, DropFacts, Facts, Finding, Named, Tier, tested};
use crate::detect::DropShape;

pub struct DataOrder;

/// The data-order test's thresholds (a field of [`AttributionConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DataOrderConfig {
    /// p-value of the position-in-epoch F test below which the pattern is real. Default
    /// 1e-3: strict, since a smooth curve folded by epochs always leaves some structure.
    pub max_p: f64,
    /// Share of within-epoch variation the position must explain to matter. Default 0.05.
    pub min_eta_squared: f64,
    /// Correlation of the pattern between even and odd epochs: it must repeat. Default 0.5.
    pub min_split_half_r: f64,
    /// Beyond these the pattern is strong and stable (high confidence). Defaults 0.2, 0.8.
    pub high_eta_squared: f64,
    pub high_split_half_r: f64,
}

impl Default for DataOrderConfig {
    fn default() -> Self {
        DataOrderConfig {
            max_p: 1e-3,
            min_eta_squared: 0.05,
            min_split_half_r: 0.5,
            high_eta_squared: 0.2,
            high_split_half_r: 0.8,
        }
    }
}

/// Whether a data-order test shows a real, repeating within-epoch pattern.
pub(crate) fn is_ordered(d: &DataOrderTest, c: &DataOrderConfig) -> bool {
    d.p_value < c.max_p
        && d.eta_squared >= c.min_eta_squared
        && d.split_half_r >= c.min_split_half_r
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
        let c = &facts.cfg.data_order;
        let d = facts.data_order.filter(|d| is_ordered(d, c))?;
        if named.has(Cause::RunningMeanArtifact) {
            return None;
        }
        let aftermath_only = named.has(Cause::LastBatch)
            && facts.short_last() == Some(true)
            && !facts
                .table
                .and_then(|t| signatures::data_order_from(t, t.len / 2))
                .is_some_and(|d| is_ordered(&d, c));
        if aftermath_only {
            return None;
        }
        let level = if d.eta_squared >= c.high_eta_squared && d.split_half_r >= c.high_split_half_r
        {
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
