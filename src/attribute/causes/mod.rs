//! The known causes, one file each behind [`CauseRule`]: what it tests, when it is named,
//! which detected drops it explains, and its advice.
//!
//! Attribution runs in two passes over [`RULES`], in their order:
//! 1. **Naming.** Each rule reads the shared [`Facts`] (event tests, within-epoch
//!    signatures, units, thresholds) and the causes named before it, and names its cause
//!    with evidence as data ([`Evidence`]), or not.
//! 2. **Explaining drops.** Each detected drop is claimed by the named rules at a
//!    [`Tier`]; the first tier with a claim wins, and within a tier the rule listed first.
//!    A drop no rule claims is `none` when too small to ask for a cause, else
//!    `unexplained`. Rules that name themselves from the drops they claim (a spike's
//!    recovery) are asked too, and named afterwards from those drops.
//!
//! Adding a cause is one file here and one line in [`RULES`] (plus its name in
//! [`Cause`]).

mod data_order;
mod epoch_boundary;
mod event_type;
mod last_batch;
mod loss_spike;
mod lr_change;
mod running_mean;
mod warm_restart;

pub use data_order::DataOrderConfig;
pub use last_batch::LastBatchConfig;
pub use running_mean::RunningMeanConfig;

use super::evidence::{EventTest, Evidence, LogUnits};
use super::signatures::{DataOrderTest, EpochTable, LastBatchTest, RunningMeanTest};
use super::{AttributionConfig, Cause, CauseFinding, EventStat};
use crate::detect::{DropShape, LossDrop, Prepared};
use crate::events::{EventKind, Events};
use crate::trace::Trace;

/// Every cause rule, in the order they are named and claim drops within a tier. A rule
/// may read the causes named before it (the running mean first: its artifact explains
/// every wiggle; the last batch before epoch starts: its recovery is no epoch-start drop).
pub static RULES: &[&(dyn CauseRule + Sync)] = &[
    &running_mean::RunningMean,
    &last_batch::LastBatch,
    &lr_change::LrChange,
    &warm_restart::WarmRestart,
    &epoch_boundary::EpochBoundary,
    &data_order::DataOrder,
    &loss_spike::LossSpike,
];

/// The rule of a cause, for its advice and its test's name (`unexplained` and `none` are
/// outcomes, not rules).
pub fn rule(cause: Cause) -> Option<&'static (dyn CauseRule + Sync)> {
    RULES.iter().copied().find(|r| r.cause() == cause)
}

/// How strongly a rule claims a drop; earlier tiers win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// The logged value itself is the cause of every wiggle (a running mean).
    Logger,
    /// The drop lies inside an episode that explains it (a spike and its fall back).
    Episode,
    /// A recovery-shaped drop (down after a brief rise) that the cause's rise explains.
    Recovery,
    /// A step-shaped drop at (or settling after) an event of the cause.
    AtEvent,
    /// Anywhere, for a cause that shapes the whole curve (data order, annealing cycles).
    Background,
}

/// One known cause.
pub trait CauseRule {
    fn cause(&self) -> Cause;
    /// What its own test is called in reports ("the test at epoch starts").
    fn test_name(&self) -> &'static str;
    /// What the cause means and what would confirm it.
    fn advice(&self) -> &'static str;
    /// Names the cause from the facts and the causes named before it (`None`: not named).
    fn name(&self, facts: &Facts, named: &Named) -> Option<Finding>;
    /// The tier at which this cause explains drop `d`, if it does. Asked only when the
    /// cause is named, or when [`CauseRule::named_by_drops`].
    fn claim(&self, d: &DropFacts, facts: &Facts, named: &Named) -> Option<Tier>;
    /// Event kinds that tie a drop to this cause (for the drop table's event column).
    fn ties(&self) -> &'static [EventKind] {
        &[]
    }
    /// How far from its event a drop it explains may lie, given the drop's tolerance.
    fn reach(&self, tolerance: u64, _facts: &Facts) -> u64 {
        tolerance
    }
    /// Named from the drops it claims rather than by a test of its own.
    fn named_by_drops(&self) -> bool {
        false
    }
    /// The finding for a cause named by its drops (at these steps).
    #[allow(clippy::wrong_self_convention)]
    fn from_drops(&self, _steps: &[u64]) -> Option<CauseFinding> {
        None
    }
}

/// A named cause, and for event causes the events it stands on: all of its type when the
/// type-level test named it, only those that acted on their own when single events did.
#[derive(Debug, Clone)]
pub struct Finding {
    pub finding: CauseFinding,
    pub acting: Option<(EventKind, Vec<u64>)>,
}

/// The causes named so far.
#[derive(Debug, Clone, Default)]
pub struct Named(pub Vec<Finding>);

impl Named {
    pub fn has(&self, c: Cause) -> bool {
        self.0.iter().any(|f| f.finding.cause == c)
    }

    /// The events of `kind` a named cause stands on.
    pub fn acting(&self, kind: EventKind) -> &[u64] {
        self.0
            .iter()
            .filter_map(|f| f.acting.as_ref())
            .find(|(k, _)| *k == kind)
            .map_or(&[], |(_, v)| v.as_slice())
    }
}

/// Everything the rules decide on, computed once per trace.
pub struct Facts<'a> {
    pub trace: &'a Trace,
    pub p: &'a Prepared,
    pub ev: &'a Events,
    pub stats: &'a [EventStat],
    pub event_tests: &'a [EventTest],
    pub table: Option<&'a EpochTable>,
    pub data_order: Option<&'a DataOrderTest>,
    pub running_mean: Option<&'a RunningMeanTest>,
    pub last_batch: Option<&'a LastBatchTest>,
    pub units: LogUnits,
    pub cfg: &'a AttributionConfig,
    /// Family-wise level of the type-level tests.
    pub alpha: f64,
    /// Steps per epoch, rounded (0 without epochs).
    pub spe: usize,
    /// The loss's cycle within the epoch, in log points.
    pub period: Option<usize>,
}

impl Facts<'_> {
    pub fn stat(&self, kind: EventKind) -> Option<&EventStat> {
        self.stats.iter().find(|s| s.kind == kind)
    }

    /// The last batch's size and the typical one, when the log records batch sizes.
    pub fn batch_sizes(&self) -> Option<(u64, u64)> {
        let last = self
            .ev
            .of(EventKind::LastBatch)
            .filter_map(|e| e.value)
            .next()?;
        Some((last.max(0.0) as u64, self.ev.typical_batch_size?))
    }

    /// Whether the last batch is shorter than the others (`None`: the log does not say).
    pub fn short_last(&self) -> Option<bool> {
        self.batch_sizes().map(|(last, typical)| last < typical)
    }
}

/// One detected drop, with what the rules ask of it.
pub struct DropFacts<'a> {
    pub drop: &'a LossDrop,
    /// Steps within which it is at an event.
    pub tolerance: u64,
    /// Its shape, `recovery` inside a spike episode.
    pub shape: DropShape,
    pub in_episode: bool,
    /// Too small to ask for a cause (`min_effect_log`, or within the noise of an
    /// interval log).
    pub minor: bool,
    pub ev: &'a Events,
}

impl DropFacts<'_> {
    /// At an event of `kind` (within the tolerance).
    pub fn at(&self, kind: EventKind) -> bool {
        self.ev
            .events
            .iter()
            .any(|e| e.kind == kind && e.step.abs_diff(self.drop.step) <= self.tolerance)
    }

    /// At one of `steps` (within the tolerance).
    pub fn near(&self, steps: &[u64]) -> bool {
        steps
            .iter()
            .any(|&e| e.abs_diff(self.drop.step) <= self.tolerance)
    }
}

/// Pass 1: every rule in order, each seeing the causes named before it.
pub fn name_all(facts: &Facts) -> Named {
    let mut named = Named::default();
    for r in RULES {
        if let Some(f) = r.name(facts, &named) {
            named.0.push(f);
        }
    }
    named
}

/// Pass 2 for one drop: the cause that explains it (`none` or `unexplained` when no rule
/// claims it).
pub fn explain(d: &DropFacts, facts: &Facts, named: &Named) -> Cause {
    let claims = RULES
        .iter()
        .enumerate()
        .filter(|(_, r)| r.named_by_drops() || named.has(r.cause()))
        .filter_map(|(i, r)| r.claim(d, facts, named).map(|t| (t, i, r.cause())));
    match claims.min_by_key(|&(t, i, _)| (t, i)) {
        Some((_, _, c)) => c,
        None if d.minor => Cause::None,
        None => Cause::Unexplained,
    }
}

/// The findings of rules named by the drops they explained, after pass 2.
pub fn from_drops(explained: &[(u64, Cause)]) -> Vec<CauseFinding> {
    RULES
        .iter()
        .filter(|r| r.named_by_drops())
        .filter_map(|r| {
            let steps: Vec<u64> = explained
                .iter()
                .filter(|(_, c)| *c == r.cause())
                .map(|(s, _)| *s)
                .collect();
            if steps.is_empty() {
                None
            } else {
                r.from_drops(&steps)
            }
        })
        .collect()
}

/// A finding named by its own test, with no drops counted yet.
pub(crate) fn tested(
    cause: Cause,
    confidence: f64,
    level: super::ConfidenceLevel,
    effect_log: Option<super::Interval>,
    evidence: Vec<Evidence>,
) -> CauseFinding {
    CauseFinding {
        cause,
        confidence: confidence.clamp(0.0, 0.999),
        level,
        effect_log,
        named_by_test: true,
        drops_explained: 0,
        evidence,
    }
}

#[cfg(test)]
mod behaviour;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_its_own_cause_and_words() {
        let mut seen = Vec::new();
        for r in RULES {
            assert!(!seen.contains(&r.cause()), "{} twice", r.cause());
            seen.push(r.cause());
            assert!(!r.advice().is_empty() && !r.test_name().is_empty());
        }
        for c in Cause::ALL {
            let outcome = matches!(c, Cause::Unexplained | Cause::None);
            assert_eq!(rule(c).is_some(), !outcome, "{c}");
        }
    }
}
