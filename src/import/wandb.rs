//! Weights & Biases CSV exports, in their two shapes:
//! - a run's history (`run.history().to_csv()`, or the run page's export):
//!   `_step` (W&B's own counter, one per `wandb.log` call), `_runtime`,
//!   `_timestamp`, then each logged key. Hugging Face's `WandbCallback` logs
//!   `train/loss`, `train/learning_rate`, `train/epoch` and the real step as
//!   `train/global_step`; Lightning's `WandbLogger` logs `trainer/global_step`.
//!   Rows that logged other keys (evaluations, system metrics) leave the
//!   training cells empty (pandas writes NaN as an empty cell).
//! - a chart panel's "Export CSV": `Step`, then `<run> - <metric>` columns
//!   with `<run> - <metric>__MIN` / `__MAX` beside them (the min and max of
//!   W&B's sampling buckets, not values of their own).

use std::path::Path;

use super::csv::{Cell, Table, clip, missing_column};
use super::detect::Probe;
use super::fields::Role;
use super::lightning::column;
use super::num::{parse_epoch, parse_u64};
use super::registry::{Confidence, LogFormat};
use super::rows::{Row, TraceBuilder};
use super::sampling::{Sampling, median_gap};
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;

/// W&B's own step counter in a history export.
const WANDB_STEP: &str = "_step";
/// A chart panel export's first column.
const PANEL_STEP: &str = "Step";
/// Separates the run's name from the metric in a panel export's column.
const RUN_SEPARATOR: &str = " - ";
/// Bucket extremes beside each panel column.
const BUCKET_SUFFIXES: [&str; 2] = ["__MIN", "__MAX"];

/// The training step, in order of preference: the trainer's own step beats W&B's counter.
const STEP: &[&str] = &[
    "train/global_step",
    "trainer/global_step",
    "global_step",
    "_step",
    "step",
];
const LOSS: &[&str] = &[
    "train/loss",
    "train_loss",
    "train/loss_step",
    "train_loss_step",
    "loss",
    "training_loss",
];
const LR: &[&str] = &["train/learning_rate", "train/lr", "learning_rate", "lr"];
const EPOCH: &[&str] = &["train/epoch", "epoch"];
const VAL_LOSS: &[&str] = &[
    "eval/loss",
    "val/loss",
    "val_loss",
    "eval_loss",
    "validation/loss",
    "valid/loss",
    "val_loss_epoch",
];
const VAL_ACCURACY: &[&str] = &[
    "eval/accuracy",
    "val/accuracy",
    "val/acc",
    "val_acc",
    "val_accuracy",
    "eval_accuracy",
];

pub struct Wandb;

impl LogFormat for Wandb {
    fn name(&self) -> &'static str {
        "wandb"
    }

    fn summary(&self) -> &'static str {
        "Weights & Biases CSV export: run history (_step, train/loss, ...) or a chart panel"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        let Some(table) = &probe.table else {
            return Confidence::No;
        };
        let history = table.has(WANDB_STEP);
        let panel = table.header.first().is_some_and(|h| h == PANEL_STEP)
            && table
                .header
                .iter()
                .skip(1)
                .any(|h| h.contains(RUN_SEPARATOR));
        match history || panel {
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

/// Metric names without a panel export's run prefix; bucket extremes and
/// other runs' columns blanked so that nothing matches them.
fn metric_names(header: &[String], warnings: &mut Vec<String>) -> Vec<String> {
    let mut runs: Vec<&str> = Vec::new();
    let mut names = Vec::with_capacity(header.len());
    for h in header {
        let Some((run, metric)) = h.rsplit_once(RUN_SEPARATOR) else {
            names.push(h.clone());
            continue;
        };
        if !runs.contains(&run) {
            runs.push(run);
        }
        let bucket = BUCKET_SUFFIXES.iter().any(|s| metric.ends_with(s));
        let first_run = runs.first() == Some(&run);
        names.push(if bucket || !first_run {
            String::new()
        } else {
            metric.to_string()
        });
    }
    if let [first, rest @ ..] = runs.as_slice()
        && !rest.is_empty()
    {
        warnings.push(format!(
            "the export holds {} runs: read '{}' only",
            runs.len(),
            clip(first)
        ));
    }
    names
}

/// Parses a W&B CSV export.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let table = Table::read(name, bytes)?;
    let mut warnings = Vec::new();
    let names = metric_names(&table.header, &mut warnings);
    let pick = |given: &Option<String>, defaults: &[&str]| match given {
        Some(col) => column(&names, &[col.as_str()]),
        None => column(&names, defaults),
    };
    let loss = pick(&opts.loss_col, LOSS)
        .ok_or_else(|| missing_column(name, &table.header, Role::Loss, None))?;
    let step = pick(&opts.step_col, STEP)
        .or_else(|| column(&names, &[PANEL_STEP]))
        .ok_or_else(|| missing_column(name, &table.header, Role::Step, None))?;
    let (epoch, lr) = (pick(&opts.epoch_col, EPOCH), pick(&opts.lr_col, LR));
    let (val_loss, val_accuracy) = (column(&names, VAL_LOSS), column(&names, VAL_ACCURACY));
    let mut builder = TraceBuilder::new(trace_name(name));
    for row in table.rows() {
        let (line, record) = row?;
        let cell = Cell {
            name,
            header: &names,
            line,
            record: &record,
        };
        let loss = cell.float(Some(loss))?;
        let step = match loss {
            Some(_) => Some(cell.required(Some(step), parse_u64, "a step number")?),
            None => cell.parsed(Some(step), parse_u64, "a step number")?,
        };
        builder.push(Row {
            step,
            epoch: cell.parsed(epoch, parse_epoch, "an epoch number")?,
            loss,
            lr: cell.float(lr)?,
            val_loss: cell.float(val_loss)?,
            val_accuracy: cell.float(val_accuracy)?,
            ..Row::default()
        });
    }
    if builder.steps_len() == 0 {
        return Err(InputError::new(name, "no row has a training loss").field(names[loss].clone()));
    }
    let trace = builder.finish(&mut warnings);
    // Hugging Face's callback logs the mean loss since the previous log.
    let from_hf = names[step] == "train/global_step" && names[loss] == "train/loss";
    let sampling = match from_hf {
        true => Sampling::window_mean(median_gap(&trace.steps)),
        false => Sampling::unknown(&trace.steps),
    };
    Ok(Imported {
        trace,
        format: Format::Wandb,
        warnings,
        sampling,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{Aggregation, detect_format};

    /// Shaped as `run.history().to_csv()` writes a Hugging Face run: the index
    /// column, W&B's counter, training and evaluation rows.
    const HISTORY: &str = ",_step,_runtime,_timestamp,train/loss,train/learning_rate,train/epoch,train/global_step,eval/loss\n\
        0,0,10.5,1700000000.1,2.30,5e-05,0.25,10,\n\
        1,1,20.5,1700000010.1,2.10,4e-05,0.5,20,\n\
        2,2,25.0,1700000015.0,,,0.5,20,2.05\n\
        3,3,30.5,1700000020.1,0.90,3e-05,0.75,30,\n";

    const PANEL: &str = "\"Step\",\"run-a - train/loss\",\"run-a - train/loss__MIN\",\"run-a - train/loss__MAX\",\"run-b - train/loss\"\n\
        10,2.3,2.2,2.4,9.9\n20,2.1,2.0,2.2,9.8\n";

    fn read(text: &str) -> Result<Imported, InputError> {
        parse(
            Path::new("wandb_export.csv"),
            text.as_bytes(),
            &ImportOptions::default(),
        )
    }

    #[test]
    fn exports_are_detected_by_the_step_counter_or_the_panel_columns() {
        let name = Path::new("export.csv");
        assert_eq!(detect_format(name, HISTORY.as_bytes()), Format::Wandb);
        assert_eq!(detect_format(name, PANEL.as_bytes()), Format::Wandb);
        assert_eq!(
            detect_format(name, b"train/global_step,train/loss\n1,2.0\n"),
            Format::Csv
        );
    }

    #[test]
    fn the_trainers_global_step_is_the_step_not_the_wandb_counter() {
        let got = read(HISTORY).unwrap();
        let t = &got.trace;
        assert_eq!(t.step_numbers(), [10, 20, 30]);
        assert_eq!(t.losses(), [2.30, 2.10, 0.90]);
        assert_eq!(t.steps[1].lr, Some(4e-5));
        assert_eq!(
            t.steps.iter().map(|s| s.epoch).collect::<Vec<_>>(),
            [Some(0); 3]
        );
        assert_eq!(
            got.sampling.aggregation,
            Aggregation::WindowMean { window: Some(10) }
        );
    }

    #[test]
    fn evaluation_rows_become_validation_points() {
        let got = read(HISTORY).unwrap();
        let val: Vec<_> = got
            .trace
            .val
            .iter()
            .map(|v| (v.epoch, v.step, v.val_loss))
            .collect();
        assert_eq!(val, [(0, 20, 2.05)]);
    }

    #[test]
    fn a_panel_export_reads_the_first_run_without_bucket_extremes() {
        let got = read(PANEL).unwrap();
        assert_eq!(got.trace.losses(), [2.3, 2.1]);
        assert_eq!(got.trace.step_numbers(), [10, 20]);
        assert!(
            got.warnings.iter().any(|w| w.contains("holds 2 runs")),
            "{:?}",
            got.warnings
        );
    }

    #[test]
    fn malformed_cells_name_file_line_and_column() {
        let bad = "_step,train/loss\n0,2.3\n1,oops\n";
        let err = read(bad).unwrap_err().to_string();
        assert!(
            err.starts_with("wandb_export.csv:3: train/loss: not a number"),
            "{err}"
        );
        let err = read("_step,accuracy\n0,0.5\n").unwrap_err().to_string();
        assert!(err.contains("no loss column"), "{err}");
    }
}
