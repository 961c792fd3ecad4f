//! LLaMA-Factory's `trainer_log.jsonl`, as its `LogCallback.on_log` writes it.
//!
//! One JSON object per Trainer log: `current_steps`, `total_steps`, `loss`,
//! `eval_loss`, `lr`, `epoch` (fractional), `percentage`, `elapsed_time`,
//! `remaining_time` (keys with no value left out). `loss` is the Trainer's
//! mean over the steps since the previous log.
//!
//! Two things make real files messy (see the real log in
//! tests/fixtures/import/llama_factory/README.md):
//! - every process that `should_save` writes its own line, so with several
//!   ranks a step appears once per rank, interleaved and a few steps apart.
//!   The copies differ in the fourth decimal: they are averaged.
//! - a resumed run appends to the same file and logs the steps since its
//!   checkpoint again. Its clock restarts, so `elapsed_time` drops: each such
//!   drop starts a new segment, and a step keeps only its copies from the last
//!   segment that logged it.

use std::collections::BTreeMap;
use std::path::Path;

use super::csv::clip;
use super::detect::Probe;
use super::lines::{Obj, json_objects};
use super::num::floor_f64;
use super::registry::{Confidence, LogFormat};
use super::sampling::{Sampling, median_gap};
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;
use crate::trace::{StepRecord, Trace, ValRecord};

/// The name LLaMA-Factory gives the file (`TRAINER_LOG`).
const FILE_NAME: &str = "trainer_log.jsonl";
const STEP: &str = "current_steps";
const TOTAL: &str = "total_steps";

/// Ranks start their clocks within seconds of each other, so `elapsed_time`
/// in file order never goes back by more than that within one run; a restart
/// goes back to zero.
const CLOCK_RESET_SECONDS: u64 = 300;

/// Without `elapsed_time`, a step that goes back this many logging intervals
/// behind the furthest step is a restart: ranks lag each other by a few
/// intervals at most (3 in the real two-rank log).
const RESTART_BACKTRACK_INTERVALS: u64 = 10;

pub struct LlamaFactory;

impl LogFormat for LlamaFactory {
    fn name(&self) -> &'static str {
        "llama-factory"
    }

    fn summary(&self) -> &'static str {
        "LLaMA-Factory's trainer_log.jsonl (current_steps, total_steps, loss, lr, epoch)"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        let keys = probe.some_object_has(&[STEP, TOTAL]);
        match keys || (probe.file_name == FILE_NAME && probe.first_line_is_object) {
            true => Confidence::Keys,
            false => Confidence::No,
        }
    }

    fn parse(
        &self,
        name: &Path,
        bytes: &[u8],
        opts: &ImportOptions,
    ) -> Result<Imported, InputError> {
        parse(name, bytes, opts)
    }
}

/// One line that carries a loss or an evaluation loss.
#[derive(Debug, Clone, Copy)]
struct Entry {
    step: u64,
    loss: Option<f64>,
    eval_loss: Option<f64>,
    lr: Option<f64>,
    epoch: Option<f64>,
    elapsed: Option<u64>,
    /// Which run (first, resumed once, ...) wrote it.
    segment: usize,
}

/// Parses a `trainer_log.jsonl`.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let (mut entries, skipped) = read_entries(name, opts, bytes)?;
    let interval = median_gap(&steps_of(&entries)).unwrap_or(1);
    let restarts = mark_segments(&mut entries, interval);
    let mut trace = Trace::new(trace_name(name));
    let (steps, merged) = merge_training(&entries);
    trace.steps = steps;
    trace.val = merge_eval(&entries);
    if trace.steps.is_empty() {
        return Err(InputError::new(name, "no line has a 'loss'").field("loss"));
    }
    let mut warnings = Vec::new();
    warnings.extend(restart_warning(&entries, &restarts));
    if merged.lines > merged.steps {
        warnings.push(format!(
            "{} lines for {} steps (one line per process, up to {} per step): their losses are averaged",
            merged.lines, merged.steps, merged.most
        ));
    }
    if skipped > 0 {
        warnings.push(format!(
            "{skipped} lines without a loss (progress or summary lines) skipped"
        ));
    }
    Ok(Imported {
        sampling: Sampling::window_mean(median_gap(&trace.steps)),
        trace,
        format: Format::LlamaFactory,
        warnings,
    })
}

fn read_entries(
    name: &Path,
    opts: &ImportOptions,
    bytes: &[u8],
) -> Result<(Vec<Entry>, u64), InputError> {
    let step_key = opts.step_col.as_deref().unwrap_or(STEP);
    let loss_key = opts.loss_col.as_deref().unwrap_or("loss");
    let lr_key = opts.lr_col.as_deref().unwrap_or("lr");
    let (mut entries, mut skipped) = (Vec::new(), 0u64);
    for (line, map) in &json_objects(name, bytes)? {
        let obj = Obj {
            name,
            line: *line,
            map,
        };
        let (loss, eval_loss) = (obj.float(loss_key)?, obj.float("eval_loss")?);
        if loss.is_none() && eval_loss.is_none() {
            skipped += 1;
            continue;
        }
        let elapsed = match obj.text("elapsed_time") {
            Some(text) => Some(parse_elapsed(text).ok_or_else(|| {
                obj.error(
                    "elapsed_time",
                    format!("not a duration such as 1 day, 2:03:04: '{}'", clip(text)),
                )
            })?),
            None => None,
        };
        entries.push(Entry {
            step: obj
                .count(step_key)?
                .ok_or_else(|| obj.error(step_key, "missing: a step number is needed".into()))?,
            loss,
            eval_loss,
            lr: obj.float(lr_key)?,
            epoch: obj.float("epoch")?,
            elapsed,
            segment: 0,
        });
    }
    Ok((entries, skipped))
}

/// Python's `str(timedelta)`: `H:MM:SS`, or `N day(s), H:MM:SS`, in seconds.
fn parse_elapsed(text: &str) -> Option<u64> {
    let (days, clock) = match text.split_once(',') {
        Some((days, clock)) => {
            let count = days.split_whitespace().next()?.parse::<u64>().ok()?;
            (count, clock.trim())
        }
        None => (0, text.trim()),
    };
    let mut parts = clock.split(':').map(|p| p.trim().parse::<f64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    let seconds = floor_f64(h * 3600.0 + m * 60.0 + s)?;
    days.checked_mul(86_400)?.checked_add(seconds)
}

fn steps_of(entries: &[Entry]) -> Vec<StepRecord> {
    entries
        .iter()
        .filter_map(|e| {
            Some(StepRecord {
                step: e.step,
                epoch: None,
                batch: None,
                loss: e.loss?,
                lr: None,
                batch_size: None,
            })
        })
        .collect()
}

/// Numbers the runs that wrote the file; returns the indices where each restart begins.
fn mark_segments(entries: &mut [Entry], interval: u64) -> Vec<usize> {
    let mut restarts = Vec::new();
    let (mut segment, mut clock, mut furthest) = (0usize, None::<u64>, None::<u64>);
    for (i, e) in entries.iter_mut().enumerate() {
        let restarted = match (e.elapsed, clock) {
            (Some(now), Some(before)) => now.saturating_add(CLOCK_RESET_SECONDS) < before,
            _ => furthest.is_some_and(|f| {
                e.step
                    .saturating_add(RESTART_BACKTRACK_INTERVALS.saturating_mul(interval))
                    < f
            }),
        };
        if restarted {
            segment += 1;
            restarts.push(i);
            (clock, furthest) = (None, None);
        }
        e.segment = segment;
        clock = clock.max(e.elapsed);
        furthest = furthest.max(Some(e.step));
    }
    restarts
}

/// How many lines went into how many steps, for the rank-duplicate warning.
struct Merged {
    lines: usize,
    steps: usize,
    most: usize,
}

/// One record per step: the mean of the lines of the last segment that logged it.
fn merge_training(entries: &[Entry]) -> (Vec<StepRecord>, Merged) {
    let mut last_segment: BTreeMap<u64, usize> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.loss.is_some()) {
        last_segment.insert(e.step, e.segment);
    }
    let mut groups: BTreeMap<u64, Vec<&Entry>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.loss.is_some()) {
        if last_segment.get(&e.step) == Some(&e.segment) {
            groups.entry(e.step).or_default().push(e);
        }
    }
    let merged = Merged {
        lines: groups.values().map(Vec::len).sum(),
        steps: groups.len(),
        most: groups.values().map(Vec::len).max().unwrap_or(0),
    };
    let steps = groups
        .into_iter()
        .map(|(step, group)| StepRecord {
            step,
            epoch: group.iter().find_map(|e| e.epoch).and_then(floor_f64),
            batch: None,
            loss: mean(group.iter().filter_map(|e| e.loss)).unwrap_or(f64::NAN),
            lr: mean(group.iter().filter_map(|e| e.lr)),
            batch_size: None,
        })
        .collect();
    (steps, merged)
}

/// One validation point per step, from the last line that logged it (every
/// rank logs the same all-reduced value).
fn merge_eval(entries: &[Entry]) -> Vec<ValRecord> {
    let mut by_step = BTreeMap::new();
    for e in entries {
        if let Some(val_loss) = e.eval_loss {
            by_step.insert(e.step, (e.epoch, val_loss));
        }
    }
    let mut out = Vec::with_capacity(by_step.len());
    for (step, (epoch, val_loss)) in by_step {
        out.push(ValRecord {
            // `epoch` is the fraction done: an evaluation at 2.0 closes epoch 1.
            epoch: epoch
                .and_then(|e| floor_f64((e - 1e-9).max(0.0)))
                .unwrap_or(out.len() as u64),
            step,
            val_loss,
            val_accuracy: None,
            train_loss_eval: None,
        });
    }
    out
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// Which step range each restart logged again.
fn restart_warning(entries: &[Entry], restarts: &[usize]) -> Option<String> {
    let mut ranges = Vec::new();
    for &start in restarts {
        let Some(first) = entries.get(start) else {
            continue;
        };
        let before_max = entries[..start]
            .iter()
            .filter(|e| e.loss.is_some())
            .map(|e| e.step)
            .max();
        if let Some(last) = before_max.filter(|&m| m >= first.step) {
            ranges.push(format!("{}-{last}", first.step));
        }
    }
    (!ranges.is_empty()).then(|| {
        format!(
            "a resumed run logged steps {} again (elapsed_time restarts): kept the later copy",
            ranges.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{Aggregation, detect_format};

    fn line(step: u64, loss: f64, elapsed: &str) -> String {
        format!(
            r#"{{"current_steps": {step}, "total_steps": 100, "loss": {loss}, "lr": 1e-05, "epoch": {}, "percentage": 1.0, "elapsed_time": "{elapsed}", "remaining_time": "0:10:00"}}"#,
            step as f64 / 40.0
        )
    }

    fn read(lines: &[String]) -> Result<Imported, InputError> {
        let text = lines.join("\n") + "\n";
        parse(
            Path::new("trainer_log.jsonl"),
            text.as_bytes(),
            &ImportOptions::default(),
        )
    }

    #[test]
    fn trainer_log_is_detected_by_its_step_keys_whatever_its_name() {
        let text = line(10, 0.5, "0:01:00");
        assert_eq!(
            detect_format(Path::new("log.jsonl"), text.as_bytes()),
            Format::LlamaFactory
        );
        let plain = "{\"step\": 10, \"loss\": 0.5}\n";
        assert_eq!(
            detect_format(Path::new("log.jsonl"), plain.as_bytes()),
            Format::Jsonl
        );
    }

    #[test]
    fn steps_losses_learning_rates_and_epochs_are_read() {
        let got = read(&[
            line(10, 0.9, "0:01:00"),
            line(20, 0.8, "0:02:00"),
            line(40, 0.7, "0:04:00"),
        ])
        .unwrap();
        let t = &got.trace;
        assert_eq!(t.step_numbers(), [10, 20, 40]);
        assert_eq!(t.losses(), [0.9, 0.8, 0.7]);
        assert_eq!(t.steps[0].lr, Some(1e-5));
        assert_eq!(
            t.steps.iter().map(|s| s.epoch).collect::<Vec<_>>(),
            [Some(0), Some(0), Some(1)]
        );
        assert_eq!(got.sampling.interval_steps, Some(10));
        assert_eq!(
            got.sampling.aggregation,
            Aggregation::WindowMean { window: Some(10) }
        );
    }

    #[test]
    fn one_line_per_rank_for_the_same_step_is_averaged() {
        let got = read(&[
            line(10, 0.8548, "0:02:12"),
            line(10, 0.8546, "0:02:13"),
            line(20, 0.7463, "0:04:43"),
            line(30, 0.70, "0:07:00"),
            line(20, 0.7461, "0:04:44"),
            line(30, 0.72, "0:07:01"),
        ])
        .unwrap();
        let losses = got.trace.losses();
        assert_eq!(got.trace.step_numbers(), [10, 20, 30]);
        assert!((losses[0] - 0.8547).abs() < 1e-12 && (losses[1] - 0.7462).abs() < 1e-12);
        assert!((losses[2] - 0.71).abs() < 1e-12);
        assert!(
            got.warnings
                .iter()
                .any(|w| w.contains("6 lines for 3 steps")),
            "{:?}",
            got.warnings
        );
    }

    #[test]
    fn a_resumed_run_keeps_the_later_copy_and_names_the_relogged_range() {
        let got = read(&[
            line(10, 0.9, "1:00:00"),
            line(20, 0.8, "2:00:00"),
            line(30, 0.7, "3:00:00"),
            line(40, 0.6, "4:00:00"),
            // Resumed from the checkpoint at step 20: the clock restarts.
            line(30, 0.65, "0:01:05"),
            line(40, 0.55, "0:02:05"),
            line(50, 0.5, "0:03:05"),
        ])
        .unwrap();
        assert_eq!(got.trace.losses(), [0.9, 0.8, 0.65, 0.55, 0.5]);
        let warning = got.warnings.iter().find(|w| w.contains("resumed")).unwrap();
        assert!(warning.contains("steps 30-40"), "{warning}");
    }

    #[test]
    fn without_elapsed_time_a_long_step_backtrack_is_a_restart() {
        let lines: Vec<String> =
            (1..=30)
                .map(|s| format!(r#"{{"current_steps": {s}, "total_steps": 40, "loss": 1.0}}"#))
                .chain((5..=8).map(|s| {
                    format!(r#"{{"current_steps": {s}, "total_steps": 40, "loss": 0.5}}"#)
                }))
                .collect();
        let got = read(&lines).unwrap();
        assert_eq!(got.trace.steps[4].loss, 0.5);
        assert_eq!(got.trace.steps[9].loss, 1.0);
    }

    #[test]
    fn eval_lines_become_validation_points_and_progress_lines_are_skipped() {
        let got = read(&[
            line(40, 0.7, "0:04:00"),
            r#"{"current_steps": 40, "total_steps": 100, "eval_loss": 0.75, "epoch": 1.0, "elapsed_time": "0:04:10"}"#.into(),
            r#"{"current_steps": 100, "total_steps": 100, "epoch": 2.5, "elapsed_time": "0:10:00"}"#.into(),
        ])
        .unwrap();
        let val: Vec<_> = got
            .trace
            .val
            .iter()
            .map(|v| (v.epoch, v.step, v.val_loss))
            .collect();
        assert_eq!(val, [(0, 40, 0.75)]);
        assert!(
            got.warnings
                .iter()
                .any(|w| w.contains("1 lines without a loss"))
        );
    }

    #[test]
    fn python_timedeltas_read_as_seconds() {
        assert_eq!(parse_elapsed("0:02:12"), Some(132));
        assert_eq!(parse_elapsed("1 day, 0:08:23"), Some(86_400 + 503));
        assert_eq!(parse_elapsed("2 days, 1:00:00"), Some(2 * 86_400 + 3600));
        assert_eq!(parse_elapsed("soon"), None);
    }

    #[test]
    fn malformed_lines_name_file_line_and_key() {
        let err = read(&[
            line(10, 0.9, "0:01:00"),
            r#"{"current_steps": "ten", "loss": 0.8}"#.into(),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("trainer_log.jsonl:2: current_steps: not a step number"),
            "{err}"
        );
        let err = read(&[r#"{"current_steps": 1, "loss": 0.8, "elapsed_time": "later"}"#.into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("trainer_log.jsonl:1: elapsed_time: not a duration"),
            "{err}"
        );
    }
}
