//! OpenMMLab JSON logs: MMEngine's `vis_data/scalars.json` (and its twin
//! `vis_data/<timestamp>.json`), and mmcv 1.x's `<timestamp>.log.json`
//! (mmdetection 2.x and the other OpenMMLab 1.x toolboxes).
//!
//! - MMEngine's `LoggerHook` writes, every `interval` iterations, `lr`,
//!   `loss` (and its terms), `time`, `data_time`, `epoch` (from 1, by-epoch
//!   loops only), `iter` and `step` (both the global iteration, from 1).
//!   `LogProcessor` logs losses as the mean over its `window_size` (10)
//!   iterations. After validation it writes the metrics with `step` set to
//!   the epoch (by-epoch loops) or the iteration, without `lr` or `iter`.
//! - mmcv's `TextLoggerHook` writes `mode` (`train`/`val`), `epoch` (from 1),
//!   `iter` (within the epoch in by-epoch runners), `lr` (a number, or one per
//!   parameter group), `loss` averaged over the interval. The first line may
//!   be the run's meta (`env_info`, `config`, `seed`). A `val` workflow logs
//!   `mode: val` lines with the validation loss and `iter` counting
//!   validation batches.
//!
//! Validation lines that carry a loss become validation points, placed after
//! the last training line before them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::detect::Probe;
use super::lines::{Obj, json_objects};
use super::pyjson::as_f64;
use super::registry::{Confidence, LogFormat};
use super::relog;
use super::sampling::{Aggregation, Sampling, median_gap};
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;
use crate::trace::{StepRecord, Trace, ValRecord};

pub struct MmEngine;

impl LogFormat for MmEngine {
    fn name(&self) -> &'static str {
        "mmengine"
    }

    fn summary(&self) -> &'static str {
        "MMEngine's scalars.json or mmcv's *.log.json (iter/step, loss, lr, epoch, mode)"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        let mmcv = probe.objects.iter().any(|o| {
            o.contains_key("iter")
                && matches!(o.get("mode").and_then(Value::as_str), Some("train" | "val"))
        });
        // MMEngine's training lines always carry both `iter` and `step`.
        let mmengine = probe.some_object_has(&["step", "iter", "data_time", "time"])
            && !probe.some_object_has_any(&["iteration", "current_steps"]);
        match mmcv || mmengine {
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

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Train,
    Val,
}

/// One line that carries a loss or places the ones that do.
#[derive(Debug, Clone, Copy)]
struct Line {
    mode: Mode,
    epoch: Option<u64>,
    iter: Option<u64>,
    step: Option<u64>,
    loss: Option<f64>,
    lr: Option<f64>,
}

/// Parses a `scalars.json` or `*.log.json`.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let (lines, skipped) = read_lines(name, bytes, opts)?;
    let mmcv_counting = counts_within_epochs(&lines);
    let offsets = if mmcv_counting {
        epoch_offsets(&lines)
    } else {
        BTreeMap::new()
    };
    let mut trace = Trace::new(trace_name(name));
    place(&lines, &offsets, &mut trace);
    if trace.steps.is_empty() {
        return Err(InputError::new(name, "no training line has a 'loss'").field("loss"));
    }
    let mut warnings = Vec::new();
    let (steps, relogged) = relog::keep_last(std::mem::take(&mut trace.steps));
    trace.steps = steps;
    warnings.extend(relog::warning(&relogged));
    if mmcv_counting {
        warnings.push(
            "iter counts within each epoch: global steps assume each epoch ends at its last logged iteration"
                .into(),
        );
    }
    if skipped > 0 {
        warnings.push(format!(
            "{skipped} lines without a loss (run meta, metrics) skipped"
        ));
    }
    let interval = median_gap(&trace.steps);
    // mmcv averages over the logging interval; MMEngine over its own window_size.
    let window = lines
        .iter()
        .any(|l| l.step.is_none())
        .then_some(interval)
        .flatten();
    let sampling = Sampling {
        interval_steps: interval,
        aggregation: Aggregation::WindowMean { window },
    };
    Ok(Imported {
        trace,
        format: Format::MmEngine,
        warnings,
        sampling,
    })
}

/// Puts the lines with a loss on the step axis: training lines as steps,
/// validation lines after the last training line before them.
fn place(lines: &[Line], offsets: &BTreeMap<u64, u64>, trace: &mut Trace) {
    let mut last_train: Option<StepRecord> = None;
    for line in lines {
        let Some(loss) = line.loss else { continue };
        let step = match (line.step, line.iter) {
            (Some(step), _) => step,
            (None, Some(iter)) => {
                let offset = line.epoch.and_then(|e| offsets.get(&e)).copied();
                iter.saturating_add(offset.unwrap_or(0))
            }
            (None, None) => continue,
        };
        match line.mode {
            Mode::Train => {
                let record = StepRecord {
                    step,
                    epoch: line.epoch,
                    batch: None,
                    loss,
                    lr: line.lr,
                    batch_size: None,
                };
                trace.steps.push(record);
                last_train = Some(record);
            }
            Mode::Val => trace.val.push(ValRecord {
                epoch: line
                    .epoch
                    .or(last_train.and_then(|t| t.epoch))
                    .unwrap_or(trace.val.len() as u64),
                step: last_train.map_or(0, |t| t.step),
                val_loss: loss,
                val_accuracy: None,
                train_loss_eval: None,
            }),
        }
    }
}

fn read_lines(
    name: &Path,
    bytes: &[u8],
    opts: &ImportOptions,
) -> Result<(Vec<Line>, u64), InputError> {
    let loss_key = opts.loss_col.as_deref().unwrap_or("loss");
    let lr_key = opts.lr_col.as_deref().unwrap_or("lr");
    let (mut lines, mut skipped) = (Vec::new(), 0u64);
    for (number, map) in &json_objects(name, bytes)? {
        let obj = Obj {
            name,
            line: *number,
            map,
        };
        let mode = match obj.text("mode") {
            Some("train") => Mode::Train,
            Some("val") => Mode::Val,
            Some(_) => {
                skipped += 1;
                continue;
            }
            // MMEngine writes no mode: only training lines have a learning rate.
            None if obj.has("lr") || obj.has("iter") => Mode::Train,
            None => Mode::Val,
        };
        let line = Line {
            mode,
            epoch: obj.epoch("epoch")?,
            iter: obj.count("iter")?,
            step: obj.count(opts.step_col.as_deref().unwrap_or("step"))?,
            loss: obj.float(loss_key)?,
            lr: obj.get(lr_key, first_number, "a number or one per parameter group")?,
        };
        if line.loss.is_none() {
            skipped += 1;
        }
        if line.step.is_none() && line.iter.is_none() && line.loss.is_some() {
            return Err(obj.error(
                "iter",
                "missing: a line with a loss needs iter or step".into(),
            ));
        }
        lines.push(line);
    }
    Ok((lines, skipped))
}

/// mmcv logs `lr` as a number, or as `{group: lr}` with several parameter groups.
fn first_number(v: &Value) -> Option<f64> {
    match v {
        Value::Object(groups) => groups.values().next().and_then(as_f64),
        Value::Array(values) => values.first().and_then(as_f64),
        other => as_f64(other),
    }
}

/// Whether `iter` restarts with each epoch (mmcv's by-epoch runners).
fn counts_within_epochs(lines: &[Line]) -> bool {
    let train: Vec<&Line> = lines
        .iter()
        .filter(|l| l.mode == Mode::Train && l.step.is_none())
        .collect();
    train
        .windows(2)
        .any(|w| match (w[0].epoch, w[1].epoch, w[0].iter, w[1].iter) {
            (Some(e0), Some(e1), Some(i0), Some(i1)) => e1 > e0 && i1 <= i0,
            _ => false,
        })
}

/// The steps done before each epoch: the sum of the earlier epochs' lengths,
/// each the furthest `iter` logged in it (a `val` line without a loss, from an
/// evaluation hook, carries the full length).
fn epoch_offsets(lines: &[Line]) -> BTreeMap<u64, u64> {
    let mut lengths: BTreeMap<u64, u64> = BTreeMap::new();
    for l in lines
        .iter()
        .filter(|l| l.mode == Mode::Train || l.loss.is_none())
    {
        if let (Some(e), Some(i)) = (l.epoch, l.iter) {
            let len = lengths.entry(e).or_default();
            *len = (*len).max(i);
        }
    }
    let mut offsets = BTreeMap::new();
    let mut done = 0u64;
    for (epoch, len) in lengths {
        offsets.insert(epoch, done);
        done = done.saturating_add(len);
    }
    offsets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::detect_format;

    /// Lines as MMEngine 0.10.7 writes them (see tests/fixtures/import/make_fixtures.py).
    const SCALARS: &str = concat!(
        r#"{"lr": 0.05, "data_time": 0.0002, "loss": 2.94, "time": 0.0015, "epoch": 1, "iter": 5, "step": 5}"#,
        "\n",
        r#"{"lr": 0.05, "data_time": 0.0003, "loss": 2.08, "time": 0.0011, "epoch": 1, "iter": 10, "step": 10}"#,
        "\n",
        r#"{"loss": 0.045, "data_time": 0.0001, "time": 0.0002, "step": 1}"#,
        "\n",
        r#"{"lr": 0.005, "data_time": 0.0001, "loss": 0.045, "time": 0.0008, "epoch": 2, "iter": 15, "step": 15}"#,
        "\n",
        r#"{"lr": 0.005, "data_time": 0.0001, "loss": 0.024, "time": 0.0003, "epoch": 2, "iter": 20, "step": 20}"#,
        "\n",
        r#"{"accuracy/top1": 0.9, "data_time": 0.0001, "time": 0.0002, "step": 2}"#,
        "\n",
    );

    /// Lines as mmcv 1.7.2's TextLoggerHook writes them.
    const LOG_JSON: &str = concat!(
        r#"{"env_info": "sys.platform: linux", "seed": 0, "exp_name": "run.py"}"#,
        "\n",
        r#"{"mode": "train", "epoch": 1, "iter": 5, "lr": 0.05, "data_time": 0.4, "loss": 2.94, "time": 0.4}"#,
        "\n",
        r#"{"mode": "train", "epoch": 1, "iter": 10, "lr": 0.05, "data_time": 0.0003, "loss": 1.23, "time": 0.0005}"#,
        "\n",
        r#"{"mode": "val", "epoch": 1, "iter": 4, "lr": 0.05, "data_time": 0.5, "loss": 0.045, "time": 0.5}"#,
        "\n",
        r#"{"mode": "train", "epoch": 2, "iter": 5, "lr": {"backbone": 0.005, "head": 0.05}, "data_time": 0.4, "loss": 0.033, "time": 0.4}"#,
        "\n",
        r#"{"mode": "train", "epoch": 2, "iter": 10, "lr": 0.005, "data_time": 0.0002, "loss": 0.015, "time": 0.0003}"#,
        "\n",
        r#"{"mode": "val", "epoch": 2, "iter": 10, "lr": 0.005, "bbox_mAP": 0.5}"#,
        "\n",
    );

    fn read(text: &str) -> Result<Imported, InputError> {
        parse(
            Path::new("scalars.json"),
            text.as_bytes(),
            &ImportOptions::default(),
        )
    }

    #[test]
    fn both_writers_are_detected_by_their_keys() {
        let name = Path::new("x.json");
        assert_eq!(detect_format(name, SCALARS.as_bytes()), Format::MmEngine);
        assert_eq!(detect_format(name, LOG_JSON.as_bytes()), Format::MmEngine);
        assert_eq!(
            detect_format(name, b"{\"step\": 1, \"loss\": 2.0, \"lr\": 0.1}\n"),
            Format::Jsonl
        );
        let timed = b"{\"step\": 1, \"loss\": 2.0, \"time\": 0.1, \"data_time\": 0.01}\n";
        assert_eq!(detect_format(name, timed), Format::Jsonl);
    }

    #[test]
    fn mmengine_training_lines_are_steps_and_validation_lines_follow_them() {
        let got = read(SCALARS).unwrap();
        let t = &got.trace;
        assert_eq!(t.step_numbers(), [5, 10, 15, 20]);
        assert_eq!(t.losses(), [2.94, 2.08, 0.045, 0.024]);
        assert_eq!(t.steps[2].lr, Some(0.005));
        assert_eq!(t.steps[2].epoch, Some(2));
        let val: Vec<_> = t
            .val
            .iter()
            .map(|v| (v.epoch, v.step, v.val_loss))
            .collect();
        assert_eq!(val, [(1, 10, 0.045)]);
        assert_eq!(
            got.sampling,
            Sampling {
                interval_steps: Some(5),
                aggregation: Aggregation::WindowMean { window: None }
            }
        );
    }

    #[test]
    fn mmcv_iterations_within_epochs_become_global_steps() {
        let got = read(LOG_JSON).unwrap();
        let t = &got.trace;
        assert_eq!(t.step_numbers(), [5, 10, 15, 20]);
        assert_eq!(
            t.steps[2].lr,
            Some(0.005),
            "the first parameter group's rate"
        );
        let val: Vec<_> = t
            .val
            .iter()
            .map(|v| (v.epoch, v.step, v.val_loss))
            .collect();
        assert_eq!(val, [(1, 10, 0.045)]);
        assert_eq!(
            got.sampling.aggregation,
            Aggregation::WindowMean { window: Some(5) }
        );
        assert!(
            got.warnings
                .iter()
                .any(|w| w.starts_with("iter counts within each epoch"))
        );
        assert!(
            got.warnings
                .iter()
                .any(|w| w.starts_with("2 lines without a loss"))
        );
    }

    #[test]
    fn malformed_lines_name_file_line_and_key() {
        let err = read("{\"mode\": \"train\", \"iter\": 1, \"loss\": \"high\"}\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("scalars.json:1: loss: not a number"),
            "{err}"
        );
        let err = read("{\"mode\": \"train\", \"loss\": 1.0}\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("scalars.json:1: iter: missing"), "{err}");
        let err = read("{\"mode\": \"val\", \"iter\": 1, \"loss\": 1.0}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no training line"), "{err}");
    }
}
