//! Regression checks for training pipelines: expectations from a scenario's
//! `[expect]` table, and comparisons with a saved baseline.
//!
//! Both produce a [`CheckReport`]: one case per check and cell, written as a
//! summary or as JUnit XML for CI systems.

pub mod baseline;
pub mod junit;
pub mod logs;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::attribute::{Cause, OverfitVerdict, RunAnalysis, TraceAnalysis};
use crate::manifest::Completeness;
use crate::scenario::{ExpectRules, ExpectSpec};

/// One check on one cell (or one arm).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckCase {
    /// What was checked, e.g. `causes include lr_change`.
    pub name: String,
    /// Where: `arm/seed-N`, or the trace's name.
    pub subject: String,
    pub passed: bool,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub suite: String,
    pub cases: Vec<CheckCase>,
}

impl CheckReport {
    pub fn new(suite: impl Into<String>) -> Self {
        CheckReport {
            suite: suite.into(),
            cases: Vec::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.passed)
    }

    pub fn failures(&self) -> impl Iterator<Item = &CheckCase> {
        self.cases.iter().filter(|c| !c.passed)
    }

    fn push(&mut self, subject: &str, name: String, passed: bool, message: String) {
        self.cases.push(CheckCase {
            name,
            subject: subject.to_string(),
            passed,
            message,
        });
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.cases {
            writeln!(
                f,
                "{} {}: {}: {}",
                if c.passed { "ok  " } else { "FAIL" },
                c.subject,
                c.name,
                c.message
            )?;
        }
        let failed = self.failures().count();
        write!(
            f,
            "{}: {} checks, {} passed, {} failed",
            self.suite,
            self.cases.len(),
            self.cases.len() - failed,
            failed
        )
    }
}

/// An event type named in `drops_only_at`: an event kind, or `none` for drops at no event.
fn event_name_ok(name: &str) -> bool {
    crate::events::EventKind::all()
        .iter()
        .any(|k| format!("{k:?}").to_lowercase() == name.replace('_', ""))
}

/// Checks one trace's analysis against one set of rules.
pub fn check_trace(
    rules: &ExpectRules,
    a: &TraceAnalysis,
    subject: &str,
    report: &mut CheckReport,
) {
    for c in &rules.causes {
        let named = Cause::from_str(c).map(|c| a.names(c)).unwrap_or(false);
        let got: Vec<&str> = a.causes.iter().map(|f| f.cause.as_str()).collect();
        report.push(
            subject,
            format!("cause {c} is named"),
            named,
            format!("named: {}", got.join(", ")),
        );
    }
    for c in &rules.not_causes {
        let named = Cause::from_str(c).map(|c| a.names(c)).unwrap_or(false);
        let msg = a
            .causes
            .iter()
            .find(|f| f.cause.as_str() == c)
            .map(|f| {
                f.evidence
                    .iter()
                    .map(crate::report::content::evidence_text)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_else(|| "not named".into());
        report.push(subject, format!("cause {c} is not named"), !named, msg);
    }
    if let Some(max) = rules.max_unexplained_drops {
        let n = a.unexplained_drops.len();
        report.push(
            subject,
            format!("at most {max} unexplained drops"),
            n <= max,
            format!("{n} unexplained drop(s) at steps {:?}", a.unexplained_drops),
        );
    }
    if let Some(allowed) = &rules.drops_only_at {
        let bad: Vec<String> = a
            .drops
            .iter()
            .filter(|d| d.shape != crate::detect::DropShape::Recovery)
            .filter(|d| {
                let kind = d
                    .event
                    .map(|k| format!("{k:?}").to_lowercase())
                    .unwrap_or_else(|| "none".into());
                !allowed.iter().any(|x| x.replace('_', "") == kind)
            })
            .map(|d| {
                format!(
                    "step {} ({})",
                    d.step,
                    d.event.map(|k| k.label()).unwrap_or("no event")
                )
            })
            .collect();
        report.push(
            subject,
            format!("drops only at {}", allowed.join(", ")),
            bad.is_empty(),
            if bad.is_empty() {
                format!("{} drop(s), all at allowed events", a.drops.len())
            } else {
                format!("drops elsewhere: {}", bad.join(", "))
            },
        );
    }
    let o = &a.overfitting;
    if let Some(max) = rules.max_final_val_loss {
        let v = o.final_val_loss;
        report.push(
            subject,
            format!("final validation loss <= {max}"),
            v.is_some_and(|v| v <= max),
            format!("final validation loss {}", fmt_opt(v)),
        );
    }
    if let Some(max) = rules.max_best_val_loss {
        let v = o.best_val_loss;
        report.push(
            subject,
            format!("best validation loss <= {max}"),
            v.is_some_and(|v| v <= max),
            format!(
                "best validation loss {} at epoch {}",
                fmt_opt(v),
                o.best_epoch.map(|e| e.to_string()).unwrap_or("-".into())
            ),
        );
    }
    if let Some(epoch) = rules.no_overfitting_before_epoch {
        let early =
            o.verdict == OverfitVerdict::Overfitting && o.started_epoch.is_some_and(|s| s < epoch);
        report.push(
            subject,
            format!("no overfitting before epoch {epoch}"),
            !early,
            o.message.clone(),
        );
    }
    if rules.no_divergence {
        report.push(
            subject,
            "does not diverge".into(),
            !a.diverged,
            if a.diverged {
                format!(
                    "{} NaN and {} infinite losses",
                    a.detection.cleaning.n_nan, a.detection.cleaning.n_inf
                )
            } else {
                "all losses finite".into()
            },
        );
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.4}"))
        .unwrap_or_else(|| "unknown (no validation data)".into())
}

/// The first case of every run check: each expected cell is present and ran to the end
/// (a killed run, a missing shard or a failed cell must not pass by having fewer cells).
pub fn push_completeness(report: &mut CheckReport, done: &Completeness) {
    report.push(
        "run",
        "every expected cell present and complete".into(),
        done.is_complete(),
        match done.headline() {
            Some(h) => h,
            None => format!("{} of {} cells complete", done.complete, done.expected),
        },
    );
}

/// Checks every cell of a run against a scenario's `[expect]` table; `done` says which
/// cells are missing or partial (those fail the run).
pub fn check_run(spec: &ExpectSpec, run: &RunAnalysis, done: &Completeness) -> CheckReport {
    let mut report = CheckReport::new(format!("dropscope check {}", run.scenario));
    push_completeness(&mut report, done);
    for arm in &run.arms {
        for rules in spec.rules_for(&arm.name) {
            for cell in &arm.cells {
                let subject = format!("{}/seed-{}", arm.name, cell.seed);
                check_trace(rules, &cell.analysis, &subject, &mut report);
            }
        }
    }
    report
}

/// Rejects expectation names that would silently never match.
pub fn validate_rules(rules: &ExpectRules) -> Result<(), String> {
    for c in rules.causes.iter().chain(&rules.not_causes) {
        Cause::from_str(c)?;
    }
    for e in rules.drops_only_at.iter().flatten() {
        if !event_name_ok(e) && e != "none" {
            return Err(format!(
                "unknown event type '{e}' (known: epoch_start, last_batch, lr_decrease, warm_restart, lr_increase, validation, optimizer_reset, none)"
            ));
        }
    }
    Ok(())
}

/// How a run is compared with its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineMode {
    /// Byte-identical traces (deterministic CPU runs).
    Exact,
    /// Per-step relative tolerance, a few failing steps allowed.
    Tolerance,
    /// Across seeds: distributions of final loss, steps to threshold, drop effects.
    Statistical,
}

impl FromStr for BaselineMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exact" => Ok(BaselineMode::Exact),
            "tolerance" => Ok(BaselineMode::Tolerance),
            "statistical" => Ok(BaselineMode::Statistical),
            o => Err(format!(
                "unknown mode '{o}' (expected exact, tolerance or statistical)"
            )),
        }
    }
}

impl fmt::Display for BaselineMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BaselineMode::Exact => "exact",
            BaselineMode::Tolerance => "tolerance",
            BaselineMode::Statistical => "statistical",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::{AnalyzeOptions, analyze_trace};
    use crate::trace::{StepRecord, Trace};

    fn flat_trace() -> Trace {
        let mut t = Trace::new("flat");
        for s in 0..400u64 {
            let noise = ((s * 7919) % 97) as f64 / 970.0;
            t.steps.push(StepRecord {
                step: s,
                epoch: Some(s / 40),
                batch: Some(s % 40),
                loss: (2.0 - s as f64 / 400.0) * (1.0 + noise),
                lr: Some(0.1),
                batch_size: Some(32),
            });
        }
        t
    }

    #[test]
    fn expectations_pass_and_fail_with_a_message() {
        let a = analyze_trace(&flat_trace(), &AnalyzeOptions::default());
        let rules = ExpectRules {
            not_causes: vec!["lr_change".into()],
            causes: vec!["warm_restart".into()],
            no_divergence: true,
            max_unexplained_drops: Some(0),
            ..ExpectRules::default()
        };
        let mut r = CheckReport::new("t");
        check_trace(&rules, &a, "flat", &mut r);
        let by_name = |n: &str| r.cases.iter().find(|c| c.name == n).unwrap();
        assert!(by_name("cause lr_change is not named").passed);
        assert!(!by_name("cause warm_restart is named").passed);
        assert!(by_name("does not diverge").passed);
        assert!(!r.passed());
        assert!(
            r.to_string().ends_with("4 checks, 3 passed, 1 failed"),
            "{r}"
        );
    }

    #[test]
    fn unknown_cause_names_are_rejected() {
        let rules = ExpectRules {
            causes: vec!["lr-change".into()],
            ..ExpectRules::default()
        };
        assert!(validate_rules(&rules).unwrap_err().contains("lr-change"));
        let rules = ExpectRules {
            drops_only_at: Some(vec!["epoch_start".into(), "warm_restart".into()]),
            ..ExpectRules::default()
        };
        assert!(validate_rules(&rules).is_ok());
    }
}
