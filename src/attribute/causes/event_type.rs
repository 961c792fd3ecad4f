//! Naming shared by the causes tested at one event type (epoch starts, LR decreases, warm
//! restarts): the type-level test, else the events that acted on their own.

use super::super::AttributionConfig;
use super::super::evidence::{Direction, Evidence};
use super::super::{Cause, ConfidenceLevel, Interval};
use super::{Facts, Finding, tested};

/// Adjusted p at or under which a named cause is at least medium: the usual 5%. (Above it a
/// cause can only be named by single events, whose own level holds it.)
const MEDIUM_P: f64 = 0.05;
use crate::events::EventKind;

/// Confidence level from an adjusted p-value and the share of events that showed it.
pub(crate) fn level_of(p_adj: f64, frac: f64, cfg: &AttributionConfig) -> ConfidenceLevel {
    if p_adj <= cfg.high_p && frac >= cfg.high_share {
        ConfidenceLevel::High
    } else if p_adj <= MEDIUM_P {
        ConfidenceLevel::Medium
    } else {
        ConfidenceLevel::Low
    }
}

/// Names `cause` at events of `kind` whose effect goes `direction`:
/// - by the type-level test when its adjusted p is below `alpha`, the median goes the right
///   way by at least `min_effect_log`, and at least `min_share_significant` of the events
///   show it on their own z (the median can be pushed past the null by many tiny,
///   individually invisible jumps); it then stands on every event of the type;
/// - else by the events that acted on their own test (the first of several LR cuts, before
///   the model has converged), at most at medium confidence (low when fewer than
///   `min_share_significant` of the events acted); it stands on those events.
pub(crate) fn name(
    facts: &Facts,
    kind: EventKind,
    cause: Cause,
    direction: Direction,
) -> Option<Finding> {
    let s = facts.stat(kind)?;
    let cfg = facts.cfg;
    let drop = direction == Direction::Drop;
    let (p, p_adj, sig) = if drop {
        (s.p_drop, s.p_drop_adjusted, s.n_significant_drops)
    } else {
        (s.p_rise, s.p_rise_adjusted, s.n_significant_rises)
    };
    let median = s.median_effect_log.estimate;
    let dir_ok = if drop {
        median <= -cfg.min_effect_log
    } else {
        median >= cfg.min_effect_log
    };
    let frac = sig as f64 / s.n_tested.max(1) as f64;
    if p_adj < facts.alpha && dir_ok && frac >= cfg.min_share_significant {
        let evidence = vec![Evidence::EventType {
            event: kind,
            direction,
            significant: sig,
            tested: s.n_tested,
            median_jump_log: s.median_effect_log,
            null: s.null.clone(),
            p,
            p_adjusted: p_adj,
        }];
        return Some(Finding {
            finding: tested(
                cause,
                1.0 - p_adj,
                level_of(p_adj, frac, cfg),
                Some(s.median_effect_log),
                evidence,
            ),
            acting: Some((kind, facts.ev.steps_of(kind))),
        });
    }
    let acted: Vec<_> = facts
        .event_tests
        .iter()
        .filter(|t| t.kind == kind && t.acted)
        .collect();
    let best = acted
        .iter()
        .min_by(|a, b| a.p_adjusted.total_cmp(&b.p_adjusted))?;
    let frac = acted.len() as f64 / s.n_tested.max(1) as f64;
    // At most medium: the type-level test did not hold. And low when the events that
    // acted are fewer than the share the type-level test asks for (one epoch start of
    // nine): a real effect of one event, but weak evidence for a cause of the type.
    let level = if frac >= cfg.min_share_significant {
        level_of(best.p_adjusted, frac, cfg).min(ConfidenceLevel::Medium)
    } else {
        ConfidenceLevel::Low
    };
    // The per-event tests are its evidence; the report renders them from `event_tests`.
    Some(Finding {
        finding: tested(
            cause,
            1.0 - best.p_adjusted,
            level,
            Some(Interval::point(best.jump_log)),
            Vec::new(),
        ),
        acting: Some((kind, acted.iter().map(|t| t.step).collect())),
    })
}
