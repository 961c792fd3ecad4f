//! Evidence as data: the log's own units, and the test at each single event.
//!
//! Attribution measures in log points (a log written every k steps has one point per k
//! steps), while events and drops carry optimizer steps. [`LogUnits`] converts between
//! the two once, from the importer's [`Sampling`] (or the step column), so every window and
//! tolerance is expressed in the log's own units. [`EventTest`] is one event's jump against
//! the same statistic at random times; the report turns it into sentences.

use serde::{Deserialize, Serialize};

use crate::events::EventKind;
use crate::import::sampling::{Aggregation, Sampling, median_gap};
use crate::trace::Trace;

/// How many optimizer steps one log point stands for, and whether each point summarizes
/// a window of steps (so the point whose window straddles an event carries half its drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogUnits {
    /// Optimizer steps per log point (1 for a per-step log).
    pub interval_steps: u64,
    /// Each point is a mean or median over the steps since the previous one.
    pub aggregated: bool,
}

impl LogUnits {
    pub const PER_STEP: LogUnits = LogUnits {
        interval_steps: 1,
        aggregated: false,
    };

    /// From the importer's sampling when the trace has it, else from the step column (an
    /// interval > 1 without a stated aggregation is taken as sampled, not aggregated).
    pub fn of(trace: &Trace) -> LogUnits {
        match trace.sampling {
            Some(s) => LogUnits::from_sampling(&s, trace),
            None => LogUnits {
                interval_steps: median_gap(&trace.steps).unwrap_or(1).max(1),
                aggregated: false,
            },
        }
    }

    fn from_sampling(s: &Sampling, trace: &Trace) -> LogUnits {
        let k = s
            .interval_steps
            .or_else(|| median_gap(&trace.steps))
            .unwrap_or(1)
            .max(1);
        let aggregated = k > 1
            && matches!(
                s.aggregation,
                Aggregation::WindowMean { .. } | Aggregation::WindowMedian { .. }
            );
        LogUnits {
            interval_steps: k,
            aggregated,
        }
    }

    /// Log points that cover `steps` optimizer steps (at least one for any positive span).
    pub fn points(&self, steps: u64) -> usize {
        steps.div_ceil(self.interval_steps) as usize
    }

    /// Optimizer steps spanned by `points` log points.
    pub fn steps(&self, points: usize) -> u64 {
        points as u64 * self.interval_steps
    }

    /// Points to skip after an event before a line starts: the point whose window straddles
    /// the event holds a mixture of before and after in an aggregated log.
    pub fn straddle(&self) -> usize {
        self.aggregated as usize
    }
}

/// Which way an event type's effect goes: drops at epoch starts and LR cuts, rises at warm
/// restarts and LR increases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Drop,
    Rise,
}

/// One event tested on its own: its jump against the same jump, measured with the same
/// windows, at random times (or against the other epoch starts, for events on epoch
/// boundaries), Holm-corrected over the events of its type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTest {
    pub kind: EventKind,
    pub step: u64,
    /// Its place among the tested events of its kind, from 1.
    pub ordinal: usize,
    /// The jump in log-loss (negative = drop).
    pub jump_log: f64,
    pub z: f64,
    /// The direction tested (the type's expected effect).
    pub direction: Direction,
    /// One-sided p-value in `direction`.
    pub p: f64,
    /// Holm-adjusted over the tested events of its kind.
    pub p_adjusted: f64,
    /// The event acted on its own: adjusted p below the per-event level, the jump in the
    /// expected direction and at least the minimum effect.
    pub acted: bool,
}

impl Default for LogUnits {
    fn default() -> Self {
        LogUnits::PER_STEP
    }
}

/// One fact a cause was named on, as numbers: the report turns each into a sentence
/// (`report::content::evidence_text`), so attribution builds no prose and every renderer
/// says the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// Step-to-step changes shrink with the position k in the epoch as k^`slope` (a
    /// running mean gives k^-1, raw losses k^0).
    ChangesShrink { slope: f64, r_squared: f64 },
    /// The logged value resets at every epoch start by this median jump.
    ResetsAtEpochStart { median_jump_log: f64 },
    /// The run said it logged in running-mean mode.
    LoggedRunningMean,
    /// The type-level test at one event type.
    EventType {
        event: EventKind,
        direction: Direction,
        significant: usize,
        tested: usize,
        median_jump_log: super::Interval,
        /// How the null was built ("random times", "other epoch starts").
        null: String,
        p: f64,
        p_adjusted: f64,
    },
    /// The position within the epoch explains a share of the within-epoch variation, and
    /// the pattern repeats across epochs.
    PositionInEpoch {
        eta_squared: f64,
        f: f64,
        p_value: f64,
        split_half_r: f64,
    },
    /// The last step of each epoch sits off the line through the steps before it.
    LastStepOffset {
        median_z: f64,
        median_jump_log: f64,
        epochs: usize,
        p_value: f64,
    },
    /// The last step of each epoch scatters more than the other positions do.
    LastStepSpread {
        /// Median |residual| of the last steps over that of the other positions.
        ratio: f64,
        /// sqrt(typical batch / last batch): the ratio a mean over fewer examples gives.
        expected_ratio: Option<f64>,
        /// Share of the other positions that scatter at least as much (with one added).
        p_value: f64,
        positions: usize,
    },
    /// The last batch is shorter than the others.
    LastBatchSize { last: u64, typical: u64 },
    /// The loss cycles within the epoch with this period, so the epoch-start test compared
    /// means of whole periods.
    WholePeriods { period_steps: u64 },
    /// Drops that only fall back after a spike.
    SpikeRecoveries { steps: Vec<u64> },
    /// Significant drops at no known event.
    DropsAtNoEvent { steps: Vec<u64> },
    /// Nothing to explain.
    NoDrop,
}
