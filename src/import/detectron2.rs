//! Detectron2's `metrics.json`, as `detectron2.utils.events.JSONWriter` writes it.
//!
//! One JSON object per line (keys sorted), every `PeriodicWriter` period (20
//! iterations by default): `iteration` (0-based), `total_loss` and each
//! `loss_*` term, `lr`, `time`, `data_time`, `eta_seconds`, ... Losses are put
//! with `smoothing_hint=True`, so the writer logs the median of the last
//! `window_size` (20) values, not the iteration's own loss; `lr` is logged as
//! is. Evaluation results (`bbox/AP`, ...) come on lines without a loss and
//! are skipped, unless a hook logged a validation loss (`validation_loss`,
//! the common `LossEvalHook`). The writer opens the file in append mode, so a
//! resumed run logs the iterations since its checkpoint again.

use std::path::Path;

use super::detect::Probe;
use super::lines::{Obj, json_objects};
use super::registry::{Confidence, LogFormat};
use super::relog;
use super::sampling::{Aggregation, Sampling, median_gap};
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;
use crate::trace::{StepRecord, Trace, ValRecord};

/// `JSONWriter`'s default `window_size`: each loss is the median of this many iterations.
const MEDIAN_WINDOW: u64 = 20;

const STEP: &str = "iteration";
const LOSS: &str = "total_loss";
const LR: &str = "lr";
/// Validation-loss keys of the hooks people add (Detectron2 itself logs none).
const VAL_LOSS: &[&str] = &[
    "validation_loss",
    "val_loss",
    "total_val_loss",
    "val_total_loss",
];

pub struct Detectron2;

impl LogFormat for Detectron2 {
    fn name(&self) -> &'static str {
        "detectron2"
    }

    fn summary(&self) -> &'static str {
        "Detectron2's metrics.json (iteration, total_loss, lr; JSON lines)"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        match probe.some_object_has(&[STEP, LOSS]) {
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

/// Parses a `metrics.json`.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let keys = Keys {
        step: opts.step_col.as_deref().unwrap_or(STEP),
        loss: opts.loss_col.as_deref().unwrap_or(LOSS),
        lr: opts.lr_col.as_deref().unwrap_or(LR),
    };
    let loss_key = keys.loss;
    let mut trace = Trace::new(trace_name(name));
    let mut skipped = 0u64;
    for (line, map) in &json_objects(name, bytes)? {
        let obj = Obj {
            name,
            line: *line,
            map,
        };
        if !read_line(&obj, &keys, &mut trace)? {
            skipped += 1;
        }
    }
    if trace.steps.is_empty() {
        return Err(InputError::new(name, format!("no line has a '{loss_key}'"))
            .field(loss_key.to_string()));
    }
    let mut warnings = Vec::new();
    let (steps, relogged) = relog::keep_last(std::mem::take(&mut trace.steps));
    trace.steps = steps;
    trace.val = relog::keep_last_val(std::mem::take(&mut trace.val));
    warnings.extend(relog::warning(&relogged));
    if skipped > 0 {
        warnings.push(format!(
            "{skipped} lines without a loss (evaluation results) skipped"
        ));
    }
    if !trace.val.is_empty() {
        warnings.push("validation losses have no epoch: numbered in order from 0".into());
    }
    let sampling = Sampling {
        interval_steps: median_gap(&trace.steps),
        aggregation: Aggregation::WindowMedian {
            window: MEDIAN_WINDOW,
        },
    };
    Ok(Imported {
        trace,
        format: Format::Detectron2,
        warnings,
        sampling,
    })
}

/// The keys holding the step, the loss and the rate, with the user's overrides.
struct Keys<'a> {
    step: &'a str,
    loss: &'a str,
    lr: &'a str,
}

/// Adds the line's training loss and validation loss to the trace; false when it has neither.
fn read_line(obj: &Obj<'_>, keys: &Keys<'_>, trace: &mut Trace) -> Result<bool, InputError> {
    let val_loss = match obj.first_of(VAL_LOSS) {
        Some(key) => obj.float(key)?,
        None => None,
    };
    let loss = obj.float(keys.loss)?;
    if loss.is_none() && val_loss.is_none() {
        return Ok(false);
    }
    let step = obj
        .count(keys.step)?
        .ok_or_else(|| obj.error(keys.step, "missing: a step number is needed".into()))?;
    if let Some(loss) = loss {
        trace.steps.push(StepRecord {
            step,
            epoch: None,
            batch: None,
            loss,
            lr: obj.float(keys.lr)?,
            batch_size: None,
        });
    }
    if let Some(val_loss) = val_loss {
        trace.val.push(ValRecord {
            // Detectron2 counts iterations, not epochs: evaluations are numbered.
            epoch: trace.val.len() as u64,
            // `iteration` is the last one done, from 0: the steps done are one more.
            step: step.saturating_add(1),
            val_loss,
            val_accuracy: None,
            train_loss_eval: None,
        });
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::detect_format;

    fn read(text: &str) -> Result<Imported, InputError> {
        parse(
            Path::new("metrics.json"),
            text.as_bytes(),
            &ImportOptions::default(),
        )
    }

    const LOG: &str = concat!(
        r#"{"data_time": 0.02, "iteration": 19, "loss_cls": 1.89, "lr": 1.9e-06, "time": 2.2, "total_loss": 2.72}"#,
        "\n",
        r#"{"data_time": 0.02, "iteration": 39, "loss_cls": 1.84, "lr": 2.9e-06, "time": 2.3, "total_loss": 2.90}"#,
        "\n",
        r#"{"bbox/AP": 1.5, "iteration": 39}"#,
        "\n",
        r#"{"iteration": 39, "validation_loss": 2.95}"#,
        "\n",
        r#"{"data_time": 0.02, "iteration": 59, "lr": 3.9e-06, "time": 2.3, "total_loss": 2.74}"#,
        "\n",
    );

    #[test]
    fn metrics_json_is_detected_by_its_iteration_and_total_loss_keys() {
        assert_eq!(
            detect_format(Path::new("x.json"), LOG.as_bytes()),
            Format::Detectron2
        );
        // An iteration without total_loss is a generic JSON Lines log.
        let plain = "{\"iteration\": 1, \"loss\": 2.0}\n";
        assert_eq!(
            detect_format(Path::new("metrics.json"), plain.as_bytes()),
            Format::Jsonl
        );
    }

    #[test]
    fn total_loss_and_lr_are_read_per_iteration_and_other_losses_ignored() {
        let got = read(LOG).unwrap();
        let t = &got.trace;
        assert_eq!(t.step_numbers(), [19, 39, 59]);
        assert_eq!(t.losses(), [2.72, 2.90, 2.74]);
        assert_eq!(t.steps[1].lr, Some(2.9e-06));
        assert!(
            got.warnings
                .iter()
                .any(|w| w.contains("1 lines without a loss"))
        );
    }

    #[test]
    fn the_loss_is_a_twenty_iteration_median_logged_every_period() {
        let got = read(LOG).unwrap();
        assert_eq!(got.sampling.interval_steps, Some(20));
        assert_eq!(
            got.sampling.aggregation,
            Aggregation::WindowMedian { window: 20 }
        );
    }

    #[test]
    fn a_hook_validation_loss_becomes_a_validation_point_after_its_iteration() {
        let got = read(LOG).unwrap();
        let val: Vec<_> = got
            .trace
            .val
            .iter()
            .map(|v| (v.epoch, v.step, v.val_loss))
            .collect();
        assert_eq!(val, [(0, 40, 2.95)]);
    }

    #[test]
    fn a_resumed_run_keeps_the_later_copy_of_relogged_iterations() {
        let log = format!(
            "{LOG}{}",
            r#"{"iteration": 39, "total_loss": 2.5, "lr": 1e-6}"#
        );
        let got = read(&log).unwrap();
        assert_eq!(got.trace.losses(), [2.72, 2.5, 2.74]);
        assert!(
            got.warnings
                .iter()
                .any(|w| w.contains("steps 39 were logged again"))
        );
    }

    #[test]
    fn a_malformed_line_names_file_line_and_key() {
        let bad = "{\"iteration\": 19, \"total_loss\": 2.7}\n{\"iteration\": \"x\", \"total_loss\": 2.6}\n";
        let err = read(bad).unwrap_err().to_string();
        assert!(
            err.starts_with("metrics.json:2: iteration: not a step number"),
            "{err}"
        );
        let err =
            read("{\"iteration\": 19, \"total_loss\": 2.7}\n{\"total_loss\": \n").unwrap_err();
        assert_eq!(err.line, Some(2));
        let err = read("{\"iteration\": 19, \"bbox/AP\": 2.7}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no line has a 'total_loss'"), "{err}");
    }
}
