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

/// With a short last batch on record (evidence before any test), the sign test names it at
/// the usual 5% when the median last step sits this many noise sigmas high.
const SHORT_SIGN_P: f64 = 0.05;
const SHORT_MIN_Z: f64 = 1.5;
/// ... and the dispersion test at the usual 5% when the last step scatters at least this
/// many times as widely as the typical position (a batch of a quarter the size scatters
/// twice as widely; half the size, 1.4 times).
const SHORT_SPREAD_P: f64 = 0.05;
const SHORT_MIN_SPREAD: f64 = 1.5;
/// Without batch sizes in the log, only a strong outlier on unordered data counts: a
/// stricter level and twice the effect, since nothing else points at the last batch.
const BLIND_SIGN_P: f64 = 0.01;
const BLIND_MIN_Z: f64 = 2.0;
const BLIND_SPREAD_P: f64 = 0.01;
const BLIND_MIN_SPREAD: f64 = 2.0;
/// Sign-test p below which the offset is certain (high confidence).
const HIGH_SIGN_P: f64 = 1e-4;
/// Spread ratio which, at the dispersion test's strict level, is certain (high confidence).
const HIGH_SPREAD: f64 = 2.0;

/// Which of the two tests hold, at the bar the log's batch sizes set.
fn holds(lb: &LastBatchTest, short_last: Option<bool>, ordered: bool) -> (bool, bool) {
    match short_last {
        Some(true) => (
            lb.p_value < SHORT_SIGN_P && lb.median_z >= SHORT_MIN_Z,
            lb.spread_p < SHORT_SPREAD_P && lb.spread_ratio >= SHORT_MIN_SPREAD,
        ),
        None if !ordered => (
            lb.p_value < BLIND_SIGN_P && lb.median_z.abs() >= BLIND_MIN_Z,
            lb.spread_p < BLIND_SPREAD_P && lb.spread_ratio >= BLIND_MIN_SPREAD,
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
        let ordered = facts.data_order.is_some_and(is_ordered);
        let short = facts.short_last();
        let (offset, spread) = holds(lb, short, ordered);
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
        let certain = (offset && lb.p_value < HIGH_SIGN_P)
            || (spread && lb.spread_p <= BLIND_SPREAD_P && lb.spread_ratio >= HIGH_SPREAD);
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
