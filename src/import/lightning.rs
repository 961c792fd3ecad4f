//! PyTorch Lightning's `CSVLogger` `metrics.csv`.
//!
//! The writer (`lightning.fabric.loggers.csv_logs._ExperimentWriter`) keeps one
//! row per `log_metrics` call, the union of all keys as columns (sorted since
//! Lightning 2.2), cells of keys a row did not log left empty. So one file
//! holds several kinds of row:
//! - training rows every `log_every_n_steps` steps: `train_loss` (or
//!   `train_loss_step` when logged with `on_epoch=True` too), at the step's
//!   0-based index, the loss of that step alone;
//! - epoch-end rows: `train_loss_epoch` (the epoch's mean), and the
//!   validation metrics (`val_loss`, `val_acc`, ...), at the index of the
//!   epoch's last step;
//! - `LearningRateMonitor` rows: `lr-<Optimizer>` alone, without an epoch.

use std::collections::BTreeMap;
use std::path::Path;

use super::csv::{Cell, Table, missing_column};
use super::detect::{CsvHead, Probe};
use super::fields::{self, Role};
use super::keras::PER_EPOCH_WARNING;
use super::num::{parse_epoch, parse_u64};
use super::registry::{Confidence, LogFormat};
use super::sampling::{Aggregation, Sampling};
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;
use crate::trace::{LogMode, StepRecord, Trace, ValRecord};

const FILE_NAME: &str = "metrics.csv";
/// Per-step training-loss columns, in order of preference.
const STEP_LOSS: &[&str] = &[
    "train_loss_step",
    "train_loss",
    "train/loss_step",
    "train/loss",
    "loss_step",
    "loss",
    "training_loss",
];
/// The epoch means Lightning adds when a loss is logged with `on_epoch=True`.
const EPOCH_LOSS: &[&str] = &["train_loss_epoch", "train/loss_epoch", "loss_epoch"];
const VAL_LOSS: &[&str] = &[
    "val_loss",
    "val_loss_epoch",
    "val/loss",
    "valid_loss",
    "validation_loss",
];
/// `LearningRateMonitor` names its column `lr-<optimizer class>`.
const LR_MONITOR_PREFIX: &str = "lr-";

pub struct Lightning;

impl LogFormat for Lightning {
    fn name(&self) -> &'static str {
        "lightning"
    }

    fn summary(&self) -> &'static str {
        "PyTorch Lightning CSVLogger's metrics.csv (epoch, step, train_loss[_step], val_loss)"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        let Some(table) = &probe.table else {
            return Confidence::No;
        };
        if !(table.has("epoch") && table.has("step")) {
            return Confidence::No;
        }
        let named = probe.file_name == FILE_NAME && has_sparse_rows(table);
        match has_step_epoch_pair(table) || has_lr_monitor(&table.header) || named {
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

/// `X_step` beside `X_epoch`: a metric logged with both `on_step` and `on_epoch`.
fn has_step_epoch_pair(table: &CsvHead) -> bool {
    table.header.iter().any(|h| {
        h.strip_suffix("_step")
            .is_some_and(|stem| table.has(&format!("{stem}_epoch")))
    })
}

fn has_lr_monitor(header: &[String]) -> bool {
    header.iter().any(|h| h.starts_with(LR_MONITOR_PREFIX))
}

/// Rows that leave some cells empty: each `log_metrics` call fills only its keys.
fn has_sparse_rows(table: &CsvHead) -> bool {
    table.rows.iter().any(|r| r.iter().any(String::is_empty))
}

/// The first of `names` among the columns, case-insensitive.
pub(crate) fn column(header: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| header.iter().position(|h| h.eq_ignore_ascii_case(n)))
}

/// Which column holds what.
struct Columns {
    step: usize,
    epoch: Option<usize>,
    loss: Option<usize>,
    epoch_loss: Option<usize>,
    lr: Option<usize>,
    val_loss: Option<usize>,
    val_accuracy: Option<usize>,
}

impl Columns {
    fn resolve(
        name: &Path,
        header: &[String],
        opts: &ImportOptions,
    ) -> Result<Columns, InputError> {
        let find = |names: &[&str]| column(header, names);
        let given = |col: &Option<String>, flag: &str, role: Role| match col {
            Some(c) => fields::find(header, role, Some(c))
                .map(Some)
                .ok_or_else(|| missing_column(name, header, role, Some(flag)).field(c.clone())),
            None => Ok(None),
        };
        let step = match given(&opts.step_col, "--step-col", Role::Step)? {
            Some(col) => col,
            None => fields::find(header, Role::Step, Some("step"))
                .ok_or_else(|| missing_column(name, header, Role::Step, None))?,
        };
        let lr = given(&opts.lr_col, "--lr-col", Role::Lr)?
            .or_else(|| fields::find(header, Role::Lr, None))
            .or_else(|| header.iter().position(|h| h.starts_with(LR_MONITOR_PREFIX)));
        let cols = Columns {
            step,
            epoch: given(&opts.epoch_col, "--epoch-col", Role::Epoch)?
                .or_else(|| fields::find(header, Role::Epoch, Some("epoch"))),
            loss: given(&opts.loss_col, "--loss-col", Role::Loss)?.or_else(|| find(STEP_LOSS)),
            epoch_loss: find(EPOCH_LOSS),
            lr,
            val_loss: find(VAL_LOSS),
            val_accuracy: fields::find(header, Role::ValAccuracy, None)
                .or_else(|| fields::find(header, Role::ValAccuracy, Some("val_acc_epoch"))),
        };
        if cols.loss.is_none() && cols.epoch_loss.is_none() {
            return Err(missing_column(name, header, Role::Loss, None));
        }
        Ok(cols)
    }
}

/// What the rows held, before the trace is put together.
#[derive(Default)]
struct Rows {
    steps: Vec<StepRecord>,
    epoch_means: Vec<StepRecord>,
    val: Vec<ValRecord>,
    lr_by_step: BTreeMap<u64, f64>,
    /// Rows with no loss, validation loss or learning rate (other metrics).
    other: u64,
}

/// Parses a `metrics.csv`.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let table = Table::read(name, bytes)?;
    let cols = Columns::resolve(name, &table.header, opts)?;
    let mut rows = Rows::default();
    for row in table.rows() {
        let (line, record) = row?;
        let cell = Cell {
            name,
            header: &table.header,
            line,
            record: &record,
        };
        read_row(&cols, &cell, &mut rows)?;
    }
    let mut warnings = Vec::new();
    let per_epoch = rows.steps.is_empty();
    let epoch_rows = rows.epoch_means.len();
    let mut trace = Trace::new(trace_name(name));
    trace.steps = if per_epoch {
        rows.epoch_means
    } else {
        rows.steps
    };
    if trace.steps.is_empty() {
        return Err(InputError::new(name, "no row has a training loss"));
    }
    for s in trace.steps.iter_mut().filter(|s| s.lr.is_none()) {
        // The monitor logs the rate in force before the step: the latest at or before it.
        s.lr = rows
            .lr_by_step
            .range(..=s.step)
            .next_back()
            .map(|(_, &lr)| lr);
    }
    trace.val = rows.val;
    let sampling = if per_epoch {
        warnings.push(PER_EPOCH_WARNING.into());
        Sampling {
            interval_steps: None,
            aggregation: Aggregation::EpochMean,
        }
    } else {
        trace.log_mode = Some(LogMode::PerStep);
        Sampling::per_step(&trace.steps)
    };
    if !per_epoch && epoch_rows > 0 {
        warnings.push(format!(
            "{epoch_rows} epoch-mean rows skipped: the per-step loss is read"
        ));
    }
    if rows.other > 0 {
        warnings.push(format!("{} rows without a loss skipped", rows.other));
    }
    Ok(Imported {
        trace,
        format: Format::Lightning,
        warnings,
        sampling,
    })
}

fn read_row(cols: &Columns, cell: &Cell<'_>, rows: &mut Rows) -> Result<(), InputError> {
    let step = cell.parsed(Some(cols.step), parse_u64, "a step number")?;
    let epoch = cell.parsed(cols.epoch, parse_epoch, "an epoch number")?;
    let lr = cell.float(cols.lr)?;
    let (loss, epoch_loss, val_loss) = (
        cell.float(cols.loss)?,
        cell.float(cols.epoch_loss)?,
        cell.float(cols.val_loss)?,
    );
    let Some(step) = step else {
        return match loss.or(epoch_loss).or(val_loss) {
            Some(_) => {
                Err(cell.error(cols.step, "empty cell where a step number is needed".into()))
            }
            None => Ok(()),
        };
    };
    if let (Some(lr), None) = (lr, loss) {
        rows.lr_by_step.insert(step, lr);
    }
    let record = |loss| StepRecord {
        step,
        epoch,
        batch: None,
        loss,
        lr,
        batch_size: None,
    };
    if let Some(loss) = loss {
        rows.steps.push(record(loss));
    }
    if let Some(mean) = epoch_loss {
        rows.epoch_means.push(record(mean));
    }
    if let Some(val_loss) = val_loss {
        rows.val.push(ValRecord {
            epoch: epoch
                .or(rows.steps.last().and_then(|s| s.epoch))
                .unwrap_or(rows.val.len() as u64),
            // Written at the index of the epoch's last step: the steps done are one more.
            step: step.saturating_add(1),
            val_loss,
            val_accuracy: cell.float(cols.val_accuracy)?,
            train_loss_eval: None,
        });
    }
    if loss.is_none() && epoch_loss.is_none() && val_loss.is_none() && lr.is_none() {
        rows.other += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::detect_format;

    /// Written by lightning 2.6.6 (see tests/fixtures/import/make_fixtures.py).
    const ON_STEP_AND_EPOCH: &str = "epoch,step,train_loss_epoch,train_loss_step,val_loss\n\
        0,2,,2.04,\n0,5,,2.68,\n0,8,,0.75,\n0,9,,,0.43\n0,9,2.04,,\n\
        1,11,,0.42,\n1,14,,0.19,\n1,17,,0.15,\n1,19,,,0.058\n1,19,0.21,,\n";

    /// With `LearningRateMonitor(logging_interval="step")` and plain `self.log("train_loss")`.
    const WITH_LR_MONITOR: &str = "epoch,lr-SGD,step,train_loss,val_acc,val_loss\n\
        ,0.05,0,,,\n0,,0,5.89,,\n,0.05,1,,,\n0,,1,4.95,,\n0,,1,,0.5,2.75\n\
        ,0.005,2,,,\n1,,2,2.66,,\n";

    fn read(text: &str) -> Result<Imported, InputError> {
        parse(
            Path::new("metrics.csv"),
            text.as_bytes(),
            &ImportOptions::default(),
        )
    }

    #[test]
    fn metrics_csv_is_detected_by_its_step_epoch_pairs_or_lr_monitor_or_name() {
        let elsewhere = Path::new("run.csv");
        assert_eq!(
            detect_format(elsewhere, ON_STEP_AND_EPOCH.as_bytes()),
            Format::Lightning
        );
        assert_eq!(
            detect_format(elsewhere, WITH_LR_MONITOR.as_bytes()),
            Format::Lightning
        );
        let plain = "epoch,step,train_loss,val_loss\n0,0,2.3,\n0,1,,2.1\n";
        assert_eq!(
            detect_format(Path::new("metrics.csv"), plain.as_bytes()),
            Format::Lightning
        );
        // The same columns, dense, under another name: a generic CSV.
        let dense = "epoch,step,train_loss,val_loss\n0,0,2.3,2.2\n";
        assert_eq!(detect_format(elsewhere, dense.as_bytes()), Format::Csv);
        assert_eq!(detect_format(elsewhere, b"step,loss\n0,1.5\n"), Format::Csv);
    }

    #[test]
    fn per_step_losses_are_read_and_epoch_mean_rows_skipped() {
        let got = read(ON_STEP_AND_EPOCH).unwrap();
        let t = &got.trace;
        assert_eq!(t.step_numbers(), [2, 5, 8, 11, 14, 17]);
        assert_eq!(t.losses(), [2.04, 2.68, 0.75, 0.42, 0.19, 0.15]);
        assert_eq!(t.steps[3].epoch, Some(1));
        assert_eq!(t.log_mode, Some(LogMode::PerStep));
        assert_eq!(
            got.sampling,
            Sampling {
                interval_steps: Some(3),
                aggregation: Aggregation::PerStep
            }
        );
        assert!(
            got.warnings
                .iter()
                .any(|w| w.starts_with("2 epoch-mean rows skipped"))
        );
    }

    #[test]
    fn validation_rows_become_validation_points_after_the_epochs_last_step() {
        let got = read(ON_STEP_AND_EPOCH).unwrap();
        let val: Vec<_> = got
            .trace
            .val
            .iter()
            .map(|v| (v.epoch, v.step, v.val_loss))
            .collect();
        assert_eq!(val, [(0, 10, 0.43), (1, 20, 0.058)]);
        let got = read(WITH_LR_MONITOR).unwrap();
        assert_eq!(got.trace.val[0].val_accuracy, Some(0.5));
    }

    #[test]
    fn learning_rate_monitor_rows_give_each_step_its_rate() {
        let got = read(WITH_LR_MONITOR).unwrap();
        let lrs: Vec<_> = got.trace.steps.iter().map(|s| s.lr).collect();
        assert_eq!(lrs, [Some(0.05), Some(0.05), Some(0.005)]);
        assert_eq!(got.trace.losses(), [5.89, 4.95, 2.66]);
    }

    #[test]
    fn epoch_means_alone_make_a_per_epoch_trace_with_a_warning() {
        let got =
            read("epoch,step,train_loss_epoch,val_loss\n0,9,2.0,\n0,9,,1.9\n1,19,1.0,\n").unwrap();
        assert_eq!(got.trace.losses(), [2.0, 1.0]);
        assert_eq!(got.sampling.aggregation, Aggregation::EpochMean);
        assert!(got.warnings.iter().any(|w| w.starts_with("per-epoch log")));
    }

    #[test]
    fn malformed_cells_name_file_line_and_column() {
        let err = read("epoch,step,train_loss\n0,0,2.3\n0,x,2.2\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("metrics.csv:3: step: not a step number: 'x'"),
            "{err}"
        );
        let err = read("epoch,step,train_loss\n0,,2.3\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("metrics.csv:2: step: empty cell"), "{err}");
        let err = read("epoch,step,val_loss\n0,1,2.3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no loss column"), "{err}");
    }
}
