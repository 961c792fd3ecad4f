//! Across arms and seeds: which varied factor explains the drops.
//!
//! A factor explains a cause only when the cause is named under one of its
//! levels in every seed and under its control level in none: a comparison the
//! seeds must agree on, not a single lucky run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::{Interval, bootstrap_diff, mean};
use super::{AnalyzeOptions, Cause, TraceAnalysis, analyze_trace};
use crate::events::EventKind;
use crate::manifest::{CellStatus, Manifest};
use crate::trace::Trace;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellAnalysis {
    pub seed: u64,
    pub status: CellStatus,
    pub analysis: TraceAnalysis,
}

/// How often a cause was named across an arm's seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmCause {
    pub cause: Cause,
    pub seeds_named: usize,
    pub seeds: usize,
    pub mean_confidence: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmAnalysis {
    pub name: String,
    pub factors: BTreeMap<String, serde_json::Value>,
    pub is_control: bool,
    pub cells: Vec<CellAnalysis>,
    /// Causes named in at least one seed, most consistent first.
    pub causes: Vec<ArmCause>,
}

impl ArmAnalysis {
    /// This arm's cells whose loss turned NaN or infinite for good.
    pub fn diverged_cells(&self) -> Vec<DivergedCell> {
        self.cells
            .iter()
            .filter_map(|c| {
                c.analysis.diverged_at.map(|step| DivergedCell {
                    arm: self.name.clone(),
                    seed: c.seed,
                    step,
                })
            })
            .collect()
    }

    /// Causes named in every analysed seed.
    pub fn consistent_causes(&self) -> Vec<Cause> {
        self.causes
            .iter()
            .filter(|c| c.seeds > 0 && c.seeds_named == c.seeds)
            .map(|c| c.cause)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelEffect {
    pub level: serde_json::Value,
    pub is_control: bool,
    /// The cause's statistic in each cell at this level (see `FactorEffect::statistic`).
    pub per_seed: Vec<f64>,
    pub mean: f64,
    pub seeds_named: usize,
    pub seeds: usize,
}

/// One factor against one cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FactorEffect {
    pub factor: String,
    pub cause: Cause,
    /// What `per_seed` measures, e.g. "median jump at epoch starts (log-loss)".
    pub statistic: String,
    pub levels: Vec<LevelEffect>,
    /// Mean of the most affected level minus mean of the control level, with a 95%
    /// bootstrap interval over seeds.
    pub difference: Interval,
    pub explains: bool,
    /// The most affected level (compared with `control`).
    pub top: usize,
    /// Index of the control level in `levels`.
    pub control: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunAnalysis {
    pub schema_version: u32,
    pub scenario: String,
    pub description: String,
    pub arms: Vec<ArmAnalysis>,
    pub factors: Vec<FactorEffect>,
    /// Lines a caller puts at the top of the summary, after any divergence (for example,
    /// that the run is incomplete); the analysis itself leaves it empty.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// A cell whose loss turned NaN or infinite for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DivergedCell {
    pub arm: String,
    pub seed: u64,
    /// The step from which every loss is NaN or infinite.
    pub step: u64,
}

impl RunAnalysis {
    /// Every analysed cell that diverged, in arm and seed order.
    pub fn diverged_cells(&self) -> Vec<DivergedCell> {
        self.arms.iter().flat_map(|a| a.diverged_cells()).collect()
    }
}

/// The number a factor comparison uses for a cause, per cell.
fn statistic(a: &TraceAnalysis, cause: Cause) -> (f64, &'static str) {
    let jump = |k: EventKind| {
        a.stat(k)
            .map(|s| s.median_effect_log.estimate)
            .unwrap_or(0.0)
    };
    match cause {
        Cause::EpochBoundary => (
            jump(EventKind::EpochStart),
            "median jump at epoch starts (log-loss)",
        ),
        Cause::LrChange => (
            jump(EventKind::LrDecrease),
            "median jump at LR decreases (log-loss; 0 without any)",
        ),
        Cause::WarmRestart => (
            jump(EventKind::WarmRestart),
            "median jump at warm restarts (log-loss; 0 without any)",
        ),
        Cause::RunningMeanArtifact => (
            a.running_mean.as_ref().map(|r| r.slope).unwrap_or(0.0),
            "how fast step-to-step changes shrink within an epoch (-1 for a running mean, 0 for per-step losses)",
        ),
        Cause::DataOrder => (
            a.data_order.as_ref().map(|d| d.eta_squared).unwrap_or(0.0),
            "share of within-epoch variation explained by position",
        ),
        Cause::LastBatch => (
            a.last_batch.as_ref().map(|l| l.median_z).unwrap_or(0.0),
            "last step's offset from its epoch's line (noise sigmas)",
        ),
        Cause::LossSpike => (
            a.drops
                .iter()
                .filter(|d| d.explained_by == Cause::LossSpike)
                .count() as f64,
            "drops that only recover a spike (count)",
        ),
        Cause::Unexplained => (
            a.unexplained_drops.len() as f64,
            "unexplained drops (count)",
        ),
        Cause::None => (0.0, "none"),
    }
}

/// Analyses every finished cell of a run and compares arms.
///
/// `traces` holds each cell's trace, in any order, keyed by (arm, seed).
pub fn analyze_run(
    manifest: &Manifest,
    traces: &BTreeMap<(String, u64), Trace>,
    opts: &AnalyzeOptions,
) -> RunAnalysis {
    let reset = scenario_resets(manifest);
    let mut arms = Vec::new();
    for arm in &manifest.arms {
        let mut cells = Vec::new();
        for c in manifest.cells.iter().filter(|c| c.arm == arm.name) {
            if !matches!(c.status, CellStatus::Completed | CellStatus::Diverged) {
                continue;
            }
            let Some(t) = traces.get(&(c.arm.clone(), c.seed)) else {
                continue;
            };
            let o = AnalyzeOptions {
                reset_every_epochs: reset.get(&arm.name).copied().flatten(),
                ..opts.clone()
            };
            cells.push(CellAnalysis {
                seed: c.seed,
                status: c.status,
                analysis: analyze_trace(t, &o),
            });
        }
        let mut causes: Vec<ArmCause> = Cause::ALL
            .iter()
            .filter_map(|&cause| {
                let named: Vec<f64> = cells
                    .iter()
                    .filter_map(|c| c.analysis.finding(cause).map(|f| f.confidence))
                    .collect();
                (!named.is_empty()).then(|| ArmCause {
                    cause,
                    seeds_named: named.len(),
                    seeds: cells.len(),
                    mean_confidence: mean(&named),
                })
            })
            .collect();
        causes.sort_by_key(|c| std::cmp::Reverse(c.seeds_named));
        arms.push(ArmAnalysis {
            name: arm.name.clone(),
            factors: arm.factors.clone(),
            is_control: arm.is_control,
            cells,
            causes,
        });
    }
    let factors = compare_factors(manifest, &arms, opts.seed);
    RunAnalysis {
        schema_version: super::SCHEMA_VERSION,
        scenario: manifest.scenario.name.clone(),
        description: manifest.scenario.description.clone(),
        arms,
        factors,
        notes: Vec::new(),
    }
}

/// Planted optimizer resets per arm, read back from the scenario text in the manifest.
fn scenario_resets(manifest: &Manifest) -> BTreeMap<String, Option<u64>> {
    let parsed = crate::scenario::ScenarioFile::parse(
        std::path::Path::new(&manifest.scenario.path),
        &manifest.scenario.source,
    );
    match parsed {
        Ok(f) => f
            .arms
            .iter()
            .map(|a| (a.name.clone(), a.config.train.optimizer.reset_every_epochs))
            .collect(),
        Err(_) => BTreeMap::new(),
    }
}

fn compare_factors(manifest: &Manifest, arms: &[ArmAnalysis], seed: u64) -> Vec<FactorEffect> {
    let mut out = Vec::new();
    let named_anywhere: Vec<Cause> = Cause::ALL
        .iter()
        .copied()
        .filter(|&c| c != Cause::None)
        .filter(|&c| arms.iter().any(|a| a.causes.iter().any(|x| x.cause == c)))
        .collect();
    for factor in &manifest.factors {
        // Levels in the order arms list them; the control level is the control arm's.
        let mut levels: Vec<serde_json::Value> = Vec::new();
        for a in arms {
            if let Some(v) = a.factors.get(factor)
                && !levels.contains(v)
            {
                levels.push(v.clone());
            }
        }
        let control = arms
            .iter()
            .find(|a| a.is_control)
            .and_then(|a| a.factors.get(factor).cloned())
            .or_else(|| levels.first().cloned());
        for &cause in &named_anywhere {
            let mut stat_name = "";
            let lv: Vec<LevelEffect> = levels
                .iter()
                .map(|l| {
                    let cells: Vec<&CellAnalysis> = arms
                        .iter()
                        .filter(|a| a.factors.get(factor) == Some(l))
                        .flat_map(|a| a.cells.iter())
                        .collect();
                    let per_seed: Vec<f64> = cells
                        .iter()
                        .map(|c| {
                            let (v, name) = statistic(&c.analysis, cause);
                            stat_name = name;
                            v
                        })
                        .collect();
                    LevelEffect {
                        level: l.clone(),
                        is_control: Some(l) == control.as_ref(),
                        mean: mean(&per_seed),
                        seeds_named: cells.iter().filter(|c| c.analysis.names(cause)).count(),
                        seeds: cells.len(),
                        per_seed,
                    }
                })
                .collect();
            let Some(ci) = lv.iter().position(|l| l.is_control) else {
                continue;
            };
            let share = |l: &LevelEffect| l.seeds_named as f64 / l.seeds.max(1) as f64;
            let Some(ti) = (0..lv.len())
                .filter(|&i| i != ci)
                .max_by(|&a, &b| share(&lv[a]).total_cmp(&share(&lv[b])))
            else {
                continue;
            };
            let (ctrl, top) = (&lv[ci], &lv[ti]);
            let difference = bootstrap_diff(&ctrl.per_seed, &top.per_seed, seed ^ 0x5eed, 2000);
            let explains = top.seeds > 0
                && top.seeds_named == top.seeds
                && ctrl.seeds_named == 0
                && ctrl.seeds > 0;
            out.push(FactorEffect {
                factor: factor.clone(),
                cause,
                statistic: stat_name.to_string(),
                levels: lv,
                difference,
                explains,
                top: ti,
                control: ci,
            });
        }
    }
    out.sort_by_key(|f| !f.explains);
    out
}

pub fn level_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
