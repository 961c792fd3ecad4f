//! Checks for logs another pipeline wrote: expectations from a small TOML file, and golden
//! logs (one or several logs of the same pipeline, e.g. seeds) saved as a baseline.
//!
//! A golden-log baseline is a baseline folder like a run's: `baseline.json` (the logs'
//! summaries as arm `log`, seeds 0, 1, ... in the order given, and `logs`, their sources)
//! and `log-<i>/trace.csv` (each log as dropscope read it, so the comparison does not
//! depend on the original file or its format staying readable).

use std::collections::BTreeMap;
use std::path::Path;

use super::baseline::{
    ArmSummary, BASELINE_SCHEMA_VERSION, Baseline, CompareOptions, Steps, check_destination, load,
    midpoint_level, statistical, summarize, tolerance,
};
use super::{BaselineMode, CheckReport};
use crate::error::InputError;
use crate::fsio;
use crate::scenario::ExpectRules;
use crate::trace::Trace;

/// The arm name a golden-log baseline keeps its logs under.
pub const LOG_ARM: &str = "log";

/// A log as the checks see it: where it came from, and its trace.
pub struct NamedLog {
    pub source: String,
    pub trace: Trace,
}

/// Reads an expectations file: the keys of a scenario's `[expect.all]` at the top level
/// (`causes`, `not_causes`, `max_unexplained_drops`, `drops_only_at`, ...). Unknown keys
/// and misspelled causes are errors at their line.
pub fn load_expect(path: &Path) -> Result<ExpectRules, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError::io(path, &e))?;
    let rules: ExpectRules = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() as u64 + 1);
        let err = InputError::new(path, e.message().trim().to_string());
        match line {
            Some(l) => err.at_line(l),
            None => err,
        }
    })?;
    super::validate_rules(&rules).map_err(|m| {
        let key = if m.contains("event type") {
            "drops_only_at"
        } else if text.contains("not_causes") && !text.contains("\ncauses") {
            "not_causes"
        } else {
            "causes"
        };
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with(key))
            .map(|i| i as u64 + 1);
        let err = InputError::new(path, m).field(key);
        match line {
            Some(l) => err.at_line(l),
            None => err,
        }
    })?;
    Ok(rules)
}

/// `dropscope baseline save LOG... BASE`.
pub fn save_logs(logs: &[NamedLog], base_dir: &Path, force: bool) -> Result<Baseline, InputError> {
    let sources: Vec<&Path> = logs.iter().map(|l| Path::new(&l.source)).collect();
    fsio::refuse_overlap(base_dir, "BASE_DIR", &sources)?;
    check_destination(base_dir, force)?;
    let mut mids: Vec<f64> = logs
        .iter()
        .map(|l| midpoint_level(&l.trace))
        .filter(|v| v.is_finite())
        .collect();
    mids.sort_by(|a, b| a.total_cmp(b));
    let threshold = mids.get(mids.len() / 2).copied();
    let seeds = logs
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u64, summarize(&l.trace, threshold)))
        .collect();
    let b = Baseline {
        schema_version: BASELINE_SCHEMA_VERSION,
        scenario: "logs".into(),
        device: "log".into(),
        dropscope_version: env!("CARGO_PKG_VERSION").into(),
        arms: BTreeMap::from([(LOG_ARM.to_string(), ArmSummary { threshold, seeds })]),
        logs: logs.iter().map(|l| l.source.clone()).collect(),
    };
    let staged = fsio::StagedDir::new(base_dir)?;
    for (i, l) in logs.iter().enumerate() {
        crate::trace::write_dir(&l.trace, &staged.staging.join(format!("log-{i}")))?;
    }
    let p = staged.staging.join("baseline.json");
    let text = serde_json::to_string_pretty(&b).map_err(|e| InputError::new(&p, e.to_string()))?;
    fsio::write_atomic(&p, (text + "\n").as_bytes())?;
    staged.commit()?;
    Ok(b)
}

/// The median step gap of a log: how often it was written.
fn interval(t: &Trace) -> u64 {
    let mut gaps: Vec<u64> = t.steps.windows(2).map(|w| w[1].step - w[0].step).collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied().unwrap_or(1)
}

/// `dropscope check LOG... --baseline BASE`: log i against the baseline's log i (exact,
/// tolerance: on the steps both have), or all logs against all (statistical).
pub fn compare_logs(
    logs: &[NamedLog],
    base_dir: &Path,
    opts: &CompareOptions,
) -> Result<CheckReport, InputError> {
    let base = load(base_dir)?;
    if base.logs.is_empty() {
        return Err(InputError::new(
            base_dir,
            "is a baseline of a dropscope run, not of logs: check a run folder against it",
        )
        .field("--baseline"));
    }
    let mut report = CheckReport::new(format!("dropscope baseline of logs ({})", opts.mode));
    match opts.mode {
        BaselineMode::Exact | BaselineMode::Tolerance => {
            report.push(
                "logs",
                "as many logs as the baseline".into(),
                logs.len() == base.logs.len(),
                format!("{} logs, baseline {}", logs.len(), base.logs.len()),
            );
            for (i, (log, src)) in logs.iter().zip(&base.logs).enumerate() {
                let b = crate::import::read_trace_dir(&base_dir.join(format!("log-{i}")))?;
                let strict = CompareOptions {
                    rtol: 0.0,
                    max_failing_steps: 0,
                    ..opts.clone()
                };
                let o = if opts.mode == BaselineMode::Exact {
                    &strict
                } else {
                    opts
                };
                let (pass, mut msg) = tolerance(&log.trace, &b, o, Steps::Common);
                let (ia, ib) = (interval(&log.trace), interval(&b));
                if ia != ib {
                    msg.push_str(&format!(
                        "; logged every {ia} steps, the baseline every {ib}"
                    ));
                }
                let what = match opts.mode {
                    BaselineMode::Exact => "loss equal at every common step".to_string(),
                    _ => format!("per-step loss within {}%", opts.rtol * 100.0),
                };
                report.push(&format!("{} vs {src}", log.source), what, pass, msg);
            }
        }
        BaselineMode::Statistical => {
            let Some(arm) = base.arms.get(LOG_ARM) else {
                return Err(InputError::new(base_dir, "has no log summaries").field("arms"));
            };
            let ours: Vec<_> = logs
                .iter()
                .map(|l| summarize(&l.trace, arm.threshold))
                .collect();
            statistical("logs", arm, &ours, opts.alpha, &mut report);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::StepRecord;

    fn log(every: u64, scale: f64, name: &str) -> NamedLog {
        let mut t = Trace::new(name);
        for k in 0..(2000 / every) {
            let s = k * every;
            let wobble = ((s * 7919) % 101) as f64 / 1000.0;
            t.steps.push(StepRecord {
                step: s,
                epoch: None,
                batch: None,
                loss: scale * (2.0 * (-(s as f64) / 600.0).exp() + 0.3) * (1.0 + wobble),
                lr: None,
                batch_size: None,
            });
        }
        NamedLog {
            source: format!("{name}.csv"),
            trace: t,
        }
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("dropscope-logs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn golden_logs_round_trip_and_pass_against_themselves_in_every_mode() {
        let base = dir("round");
        let logs = vec![log(1, 1.0, "a"), log(1, 1.01, "b")];
        save_logs(&logs, &base, false).unwrap();
        for mode in [
            BaselineMode::Exact,
            BaselineMode::Tolerance,
            BaselineMode::Statistical,
        ] {
            let opts = CompareOptions {
                mode,
                ..CompareOptions::default()
            };
            let r = compare_logs(&logs, &base, &opts).unwrap();
            assert!(r.passed(), "{mode}: {r}");
        }
        assert!(save_logs(&logs, &base, false).is_err(), "no silent replace");
        assert!(save_logs(&logs, &base, true).is_ok());
    }

    #[test]
    fn logs_written_at_other_intervals_are_compared_on_their_common_steps() {
        let base = dir("interval");
        save_logs(&[log(1, 1.0, "a")], &base, false).unwrap();
        let opts = CompareOptions {
            mode: BaselineMode::Tolerance,
            ..CompareOptions::default()
        };
        let r = compare_logs(&[log(10, 1.0, "every10")], &base, &opts).unwrap();
        assert!(r.passed(), "{r}");
        let text = r.to_string();
        assert!(
            text.contains("common steps") && text.contains("every 10 steps"),
            "{text}"
        );
        let r = compare_logs(&[log(10, 1.2, "worse")], &base, &opts).unwrap();
        assert!(!r.passed(), "{r}");
    }

    #[test]
    fn a_slower_pipeline_fails_the_statistical_check() {
        let base = dir("stat");
        let good: Vec<_> = (0..4).map(|i| log(1, 1.0 + 0.01 * i as f64, "g")).collect();
        save_logs(&good, &base, false).unwrap();
        let bad: Vec<_> = (0..4).map(|i| log(1, 1.5 + 0.01 * i as f64, "b")).collect();
        let r = compare_logs(&bad, &base, &CompareOptions::default()).unwrap();
        assert!(!r.passed(), "{r}");
    }

    #[test]
    fn an_expectations_file_names_a_misspelled_cause_at_its_line() {
        let d = dir("expect");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("e.toml");
        std::fs::write(&p, "max_unexplained_drops = 0\ncauses = [\"data-order\"]\n").unwrap();
        let e = load_expect(&p).unwrap_err();
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(2), Some("causes")),
            "{e}"
        );
        std::fs::write(&p, "max_unexplained_drop = 0\n").unwrap();
        assert_eq!(load_expect(&p).unwrap_err().line, Some(1));
        std::fs::write(&p, "not_causes = [\"unexplained\"]\n").unwrap();
        assert!(load_expect(&p).unwrap().no_divergence);
    }
}
