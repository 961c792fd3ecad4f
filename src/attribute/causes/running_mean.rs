//! `running_mean_artifact`: the logged value is an epoch-cumulative mean (as progress bars
//! print), so its "drops" are the logger's.

use super::super::evidence::Evidence;
use super::super::{Cause, ConfidenceLevel};
use super::{CauseRule, DropFacts, Facts, Finding, Named, Tier, tested};
use crate::events::EventKind;
use crate::trace::LogMode;

pub struct RunningMean;

/// The running-mean test's thresholds (a field of [`AttributionConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RunningMeanConfig {
    /// Slope of log |step-to-step change| against log position in the epoch below which
    /// the changes shrink like a running mean's. Default -0.5: halfway between a running
    /// mean's k^-1 and raw losses' k^0.
    pub max_slope: f64,
    /// R² of that fit above which the shrinking is the curve's shape, not a few points.
    /// Default 0.5.
    pub min_r_squared: f64,
    /// Slope and R² beyond which the fit is a running mean's for certain (high
    /// confidence). Defaults -0.8 and 0.8.
    pub high_slope: f64,
    pub high_r_squared: f64,
}

impl Default for RunningMeanConfig {
    fn default() -> Self {
        RunningMeanConfig {
            max_slope: -0.5,
            min_r_squared: 0.5,
            high_slope: -0.8,
            high_r_squared: 0.8,
        }
    }
}

impl CauseRule for RunningMean {
    fn cause(&self) -> Cause {
        Cause::RunningMeanArtifact
    }

    fn test_name(&self) -> &'static str {
        "the running-mean test"
    }

    fn advice(&self) -> &'static str {
        "the logged value is an epoch-cumulative mean (as progress bars print), not the loss of each step; log the per-step loss to see the real curve"
    }

    fn name(&self, facts: &Facts, _: &Named) -> Option<Finding> {
        let c = &facts.cfg.running_mean;
        let r = facts
            .running_mean
            .filter(|r| r.slope < c.max_slope && r.r_squared > c.min_r_squared)?;
        let mut evidence = vec![Evidence::ChangesShrink {
            slope: r.slope,
            r_squared: r.r_squared,
        }];
        let reset = facts.stat(EventKind::EpochStart);
        if let Some(s) = reset {
            evidence.push(Evidence::ResetsAtEpochStart {
                median_jump_log: s.median_effect_log.estimate,
            });
        }
        if facts.trace.log_mode == Some(LogMode::RunningMean) {
            evidence.push(Evidence::LoggedRunningMean);
        }
        let level = if r.slope < c.high_slope && r.r_squared > c.high_r_squared {
            ConfidenceLevel::High
        } else {
            ConfidenceLevel::Medium
        };
        Some(Finding {
            finding: tested(
                self.cause(),
                (-r.slope).min(1.0) * r.r_squared,
                level,
                reset.map(|s| s.median_effect_log),
                evidence,
            ),
            acting: None,
        })
    }

    /// Every wiggle of a running mean is the logger's, not the model's.
    fn claim(&self, _: &DropFacts, _: &Facts, _: &Named) -> Option<Tier> {
        Some(Tier::Logger)
    }
}
