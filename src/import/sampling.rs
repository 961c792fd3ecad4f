//! How often a log recorded the training loss, and what each recorded value summarizes.
//!
//! A loss logged every 20 iterations as the median of the last 20 cannot show a
//! drop sharper than 20 iterations, and a per-epoch mean cannot place a drop
//! inside its epoch: whoever judges a drop needs to know. The importers fill
//! this in from what the format tells; nothing downstream reads it yet.

use serde::Serialize;

use crate::trace::StepRecord;

/// The logging interval and the aggregation of the logged training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sampling {
    /// Optimizer steps between two logged training points: the writer's setting
    /// where the log records it (`logging_steps`), else the median gap of the
    /// step column. `None` with fewer than two points.
    pub interval_steps: Option<u64>,
    pub aggregation: Aggregation,
}

/// What one logged training-loss value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Aggregation {
    /// The loss of one optimizer step (its micro-batches averaged).
    PerStep,
    /// The mean over the steps since the previous log (Hugging Face, mmcv, MMEngine).
    /// `window` in steps, when known.
    WindowMean { window: Option<u64> },
    /// The median of the last `window` iterations (Detectron2's `JSONWriter`).
    WindowMedian { window: u64 },
    /// The mean over one epoch (Keras `CSVLogger`, Lightning `*_epoch` columns).
    EpochMean,
    /// The log does not say.
    Unknown,
}

impl Sampling {
    /// A log whose values the format does not describe: the interval from the steps.
    pub fn unknown(steps: &[StepRecord]) -> Sampling {
        Sampling {
            interval_steps: median_gap(steps),
            aggregation: Aggregation::Unknown,
        }
    }

    /// One logged value per step (burn-train, llm.c).
    pub fn per_step(steps: &[StepRecord]) -> Sampling {
        Sampling {
            interval_steps: median_gap(steps),
            aggregation: Aggregation::PerStep,
        }
    }

    /// The mean since the previous log, over the logging interval: one step
    /// when the interval is one step.
    pub fn window_mean(interval: Option<u64>) -> Sampling {
        let aggregation = match interval {
            Some(1) => Aggregation::PerStep,
            window => Aggregation::WindowMean { window },
        };
        Sampling {
            interval_steps: interval,
            aggregation,
        }
    }
}

/// The median gap between consecutive distinct logged steps; `None` with fewer than two.
pub fn median_gap(steps: &[StepRecord]) -> Option<u64> {
    let mut sorted: Vec<u64> = steps.iter().map(|s| s.step).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut gaps: Vec<u64> = sorted.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        return None;
    }
    // The lower median: with two gaps, the regular one rather than a skipped log.
    let middle = (gaps.len() - 1) / 2;
    let (_, &mut median, _) = gaps.select_nth_unstable(middle);
    Some(median)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(steps: &[u64]) -> Vec<StepRecord> {
        steps
            .iter()
            .map(|&step| StepRecord {
                step,
                epoch: None,
                batch: None,
                loss: 1.0,
                lr: None,
                batch_size: None,
            })
            .collect()
    }

    #[test]
    fn the_interval_is_the_median_gap_between_distinct_steps() {
        assert_eq!(median_gap(&at(&[19, 39, 59, 79, 80])), Some(20));
        assert_eq!(median_gap(&at(&[10, 10, 20, 20, 30])), Some(10));
        assert_eq!(median_gap(&at(&[5])), None);
        assert_eq!(median_gap(&at(&[])), None);
    }

    #[test]
    fn a_window_mean_over_one_step_is_per_step() {
        assert_eq!(
            Sampling::window_mean(Some(1)).aggregation,
            Aggregation::PerStep
        );
        assert_eq!(
            Sampling::window_mean(Some(10)).aggregation,
            Aggregation::WindowMean { window: Some(10) }
        );
    }
}
