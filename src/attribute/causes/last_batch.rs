//! `last_batch`: the last batch of each epoch is short, and its step is an outlier (with
//! batch norm in train mode, mostly higher; always more scattered, a mean over fewer
//! examples). The drop right after it is its recovery, not an epoch-start drop.

use super::super::evidence::Evidence;
use super::super::signatures::LastBatchTest;
use super::super::{Cause, ConfidenceLevel};
use super::data_order::is_ordered;
use super::{CauseRule, DropFacts, Facts, Finding, Named, Tier, tested};
use crate::detect::DropShape;
use crate::events::EventKind;

pub struct LastBatch;

/// The last-batch tests' thresholds (a field of [`AttributionConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LastBatchConfig {
    /// With a short last batch on record (evidence before any test), the sign test names
    /// it at this level when the median last step sits `short_min_z` noise sigmas high.
    /// Defaults 0.05 and 1.5.
    pub short_sign_p: f64,
    pub short_min_z: f64,
    /// ... and the dispersion test at this level when the last step scatters at least
    /// `short_min_spread` times as widely as the typical position (a batch of a quarter the
    /// size scatters twice as widely; half the size, 1.4 times). Defaults 0.05 and 1.5.
    pub short_spread_p: f64,
    pub short_min_spread: f64,
    /// Without batch sizes in the log, only a strong outlier on unordered data counts: a
    /// stricter level and twice the effect, since nothing else points at the last batch.
    /// Defaults 0.01 and 2.0 for both tests.
    pub blind_sign_p: f64,
    pub blind_min_z: f64,
    pub blind_spread_p: f64,
    pub blind_min_spread: f64,
    /// Sign-test p below which the offset is certain (high confidence). Default 1e-4.
    pub high_sign_p: f64,
    /// Spread ratio which, at the blind level, is certain (high confidence). Default 2.0.
    pub high_spread: f64,
}

impl Default for LastBatchConfig {
    fn default() -> Self {
        LastBatchConfig {
            short_sign_p: 0.05,
            short_min_z: 1.5,
            short_spread_p: 0.05,
            short_min_spread: 1.5,
            blind_sign_p: 0.01,
            blind_min_z: 2.0,
            blind_spread_p: 0.01,
            blind_min_spread: 2.0,
            high_sign_p: 1e-4,
            high_spread: 2.0,
        }
    }
}

/// Which of the two tests hold, at the bar the log's batch sizes set.
fn holds(
    lb: &LastBatchTest,
    short_last: Option<bool>,
    ordered: bool,
    c: &LastBatchConfig,
) -> (bool, bool) {
    match short_last {
        Some(true) => (
            lb.p_value < c.short_sign_p && lb.median_z >= c.short_min_z,
            lb.spread_p < c.short_spread_p && lb.spread_ratio >= c.short_min_spread,
        ),
        None if !ordered => (
            lb.p_value < c.blind_sign_p && lb.median_z.abs() >= c.blind_min_z,
            lb.spread_p < c.blind_spread_p && lb.spread_ratio >= c.blind_min_spread,
        ),
        // A last batch as large as the others cannot be the cause; on ordered data the
        // last step is one more position of the pattern.
        _ => (false, false),
    }
}

impl CauseRule for LastBatch {
    fn cause(&self) -> Cause {
        Cause::LastBatch
    }

    fn test_name(&self) -> &'static str {
        "the last-batch test"
    }

    fn advice(&self) -> &'static str {
        "the last batch of each epoch is short; with batch norm its statistics are poor; set drop_last = true"
    }

    fn name(&self, facts: &Facts, _: &Named) -> Option<Finding> {
        let lb = facts.last_batch?;
        let c = &facts.cfg.last_batch;
        let ordered = facts
            .data_order
            .is_some_and(|d| is_ordered(d, &facts.cfg.data_order));
        let short = facts.short_last();
        let (offset, spread) = holds(lb, short, ordered, c);
        if !offset && !spread {
            return None;
        }
        let sizes = facts.batch_sizes().filter(|_| short == Some(true));
        let mut evidence = Vec::new();
        if offset {
            evidence.push(Evidence::LastStepOffset {
                median_z: lb.median_z,
                median_jump_log: lb.median_effect_log,
                epochs: lb.epochs,
                p_value: lb.p_value,
            });
        }
        if spread {
            evidence.push(Evidence::LastStepSpread {
                ratio: lb.spread_ratio,
                expected_ratio: sizes
                    .filter(|&(last, _)| last > 0)
                    .map(|(last, typical)| (typical as f64 / last as f64).sqrt()),
                p_value: lb.spread_p,
                positions: lb.spread_positions,
            });
        }
        if let Some((last, typical)) = sizes {
            evidence.push(Evidence::LastBatchSize { last, typical });
        }
        let p = match (offset, spread) {
            (true, true) => lb.p_value.min(lb.spread_p),
            (true, false) => lb.p_value,
            _ => lb.spread_p,
        };
        let certain = (offset && lb.p_value < c.high_sign_p)
            || (spread && lb.spread_p <= c.blind_spread_p && lb.spread_ratio >= c.high_spread);
        let level = if certain {
            ConfidenceLevel::High
        } else {
            ConfidenceLevel::Medium
        };
        Some(Finding {
            finding: tested(self.cause(), 1.0 - p, level, None, evidence),
            acting: None,
        })
    }

    /// The drop at the epoch start right after the last step is that step's recovery.
    fn claim(&self, d: &DropFacts, _: &Facts, _: &Named) -> Option<Tier> {
        if !(d.at(EventKind::EpochStart) || d.at(EventKind::LastBatch)) {
            return None;
        }
        Some(if d.shape == DropShape::Recovery {
            Tier::Recovery
        } else {
            Tier::AtEvent
        })
    }

    fn ties(&self) -> &'static [EventKind] {
        &[EventKind::LastBatch, EventKind::EpochStart]
    }
}
