//! Keras' `CSVLogger` file: one row per epoch.
//!
//! The writer (`keras.callbacks.CSVLogger.on_epoch_end`) writes `epoch` (from
//! 0) then every log key sorted by name: `loss`, the metrics, `val_loss` and
//! `val_<metric>` when there is validation data, `learning_rate` when a
//! scheduler callback logs it. `loss` is the mean over the epoch's batches.
//! With `append=True` a resumed run adds rows, repeating the epochs since its
//! checkpoint.
//!
//! One point per epoch cannot place a drop inside an epoch; the trace counts
//! epochs as its steps, and still carries the validation curve, so overfitting
//! is judged as usual.

use std::path::Path;

use super::csv::{Cell, Table, missing_column};
use super::detect::{CsvHead, Probe};
use super::fields::{self, Role};
use super::lightning::column;
use super::num::parse_u64;
use super::registry::{Confidence, LogFormat};
use super::relog;
use super::sampling::{Aggregation, Sampling};
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;
use crate::trace::{StepRecord, Trace, ValRecord};

/// Told to the user with every Keras log (and per-epoch Lightning logs).
pub(crate) const PER_EPOCH_WARNING: &str =
    "per-epoch log: drops inside an epoch cannot be localized; overfitting is still judged";

const EPOCH: &str = "epoch";
const LOSS: &str = "loss";
const LR: &[&str] = &["learning_rate", "lr"];
const VAL_LOSS: &str = "val_loss";
const VAL_ACCURACY: &[&str] = &[
    "val_accuracy",
    "val_acc",
    "val_sparse_categorical_accuracy",
    "val_binary_accuracy",
    "val_categorical_accuracy",
];

pub struct Keras;

impl LogFormat for Keras {
    fn name(&self) -> &'static str {
        "keras"
    }

    fn summary(&self) -> &'static str {
        "Keras CSVLogger (epoch, then sorted keys: loss, val_loss, ...; one row per epoch)"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        match probe.table.as_ref().is_some_and(looks_like) {
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

/// `epoch` first, `loss` among the rest, the rest sorted, no step column, and
/// epochs counting up by one: what `CSVLogger` writes and a hand-made per-step
/// log does not.
fn looks_like(table: &CsvHead) -> bool {
    let Some((first, rest)) = table.header.split_first() else {
        return false;
    };
    let sorted = rest.windows(2).all(|w| w[0] <= w[1]);
    let epochs: Vec<Option<u64>> = table
        .rows
        .iter()
        .map(|r| r.first().and_then(|c| parse_u64(c)))
        .collect();
    let counting = !epochs.is_empty()
        && epochs
            .windows(2)
            .all(|w| matches!(w, [Some(a), Some(b)] if b.checked_sub(*a) == Some(1)))
        && epochs.iter().all(Option::is_some);
    first == EPOCH
        && rest.iter().any(|h| h == LOSS)
        && sorted
        && fields::find(&table.header, Role::Step, None).is_none()
        && counting
}

/// Parses a `CSVLogger` file.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let table = Table::read(name, bytes)?;
    let h = &table.header;
    let given = |col: &Option<String>, default: &[&str]| match col {
        Some(c) => column(h, &[c.as_str()]),
        None => column(h, default),
    };
    let epoch = given(&opts.epoch_col, &[EPOCH])
        .ok_or_else(|| missing_column(name, h, Role::Epoch, None))?;
    let loss =
        given(&opts.loss_col, &[LOSS]).ok_or_else(|| missing_column(name, h, Role::Loss, None))?;
    let lr = given(&opts.lr_col, LR);
    let (val_loss, val_accuracy) = (column(h, &[VAL_LOSS]), column(h, VAL_ACCURACY));
    let mut trace = Trace::new(trace_name(name));
    for row in table.rows() {
        let (line, record) = row?;
        let cell = Cell {
            name,
            header: h,
            line,
            record: &record,
        };
        let epoch = cell.required(Some(epoch), parse_u64, "an epoch number")?;
        let Some(loss) = cell.float(Some(loss))? else {
            return Err(cell.error(loss, "empty cell where the epoch's loss is needed".into()));
        };
        // The epochs are the steps: one point each.
        trace.steps.push(StepRecord {
            step: epoch,
            epoch: Some(epoch),
            batch: None,
            loss,
            lr: cell.float(lr)?,
            batch_size: None,
        });
        if let Some(val_loss) = cell.float(val_loss)? {
            trace.val.push(ValRecord {
                epoch,
                // Evaluated once the epoch is done.
                step: epoch.saturating_add(1),
                val_loss,
                val_accuracy: cell.float(val_accuracy)?,
                train_loss_eval: None,
            });
        }
    }
    if trace.steps.is_empty() {
        return Err(InputError::new(name, "no epoch rows"));
    }
    let (steps, relogged) = relog::keep_last(std::mem::take(&mut trace.steps));
    trace.steps = steps;
    trace.val = relog::keep_last_val(std::mem::take(&mut trace.val));
    let mut warnings = vec![PER_EPOCH_WARNING.to_string()];
    warnings.extend(relog::warning(&relogged).map(|w| w.replacen("steps", "epochs", 1)));
    // The optimizer steps per epoch are not in the file.
    let sampling = Sampling {
        interval_steps: None,
        aggregation: Aggregation::EpochMean,
    };
    Ok(Imported {
        trace,
        format: Format::Keras,
        warnings,
        sampling,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::detect_format;

    /// Written by keras 3.15.1's CSVLogger (see tests/fixtures/import/make_fixtures.py).
    const LOG: &str = "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n\
        0,0.5,0.1,0.7297022938728333,0.5,0.7226630449295044\n\
        1,0.65625,0.1,0.6416247487068176,0.65625,0.6670063138008118\n\
        2,0.796875,0.01,0.5756247639656067,0.71875,0.6211977005004883\n";

    fn read(text: &str) -> Result<Imported, InputError> {
        parse(
            Path::new("training.log"),
            text.as_bytes(),
            &ImportOptions::default(),
        )
    }

    #[test]
    fn csvlogger_files_are_detected_by_their_epoch_first_sorted_header() {
        let name = Path::new("training.log");
        assert_eq!(detect_format(name, LOG.as_bytes()), Format::Keras);
        // Unsorted columns, a step column or repeated epochs: a generic CSV.
        assert_eq!(
            detect_format(name, b"epoch,val_loss,loss\n0,1,2\n1,1,2\n"),
            Format::Csv
        );
        assert_eq!(
            detect_format(name, b"epoch,loss,step\n0,1,0\n1,1,1\n"),
            Format::Csv
        );
        assert_eq!(
            detect_format(name, b"epoch,loss\n0,1\n0,0.9\n1,0.8\n"),
            Format::Csv
        );
    }

    #[test]
    fn each_epoch_is_one_point_with_its_validation_record_and_a_warning() {
        let got = read(LOG).unwrap();
        let t = &got.trace;
        assert_eq!(t.step_numbers(), [0, 1, 2]);
        assert_eq!(t.steps[2].lr, Some(0.01));
        assert_eq!(t.steps[2].epoch, Some(2));
        let val: Vec<_> = t
            .val
            .iter()
            .map(|v| (v.epoch, v.step, v.val_accuracy))
            .collect();
        assert_eq!(
            val,
            [
                (0, 1, Some(0.5)),
                (1, 2, Some(0.65625)),
                (2, 3, Some(0.71875))
            ]
        );
        assert_eq!(got.warnings[0], PER_EPOCH_WARNING);
        assert_eq!(
            got.sampling,
            Sampling {
                interval_steps: None,
                aggregation: Aggregation::EpochMean
            }
        );
    }

    #[test]
    fn an_appended_resume_keeps_the_later_copy_of_an_epoch() {
        let got = read(&format!("{LOG}2,0.8,0.01,0.55,0.7,0.6\n")).unwrap();
        assert_eq!(got.trace.steps[2].loss, 0.55);
        assert_eq!(got.trace.val[2].val_loss, 0.6);
        assert!(
            got.warnings
                .iter()
                .any(|w| w.starts_with("epochs 2 were logged again"))
        );
    }

    #[test]
    fn malformed_cells_name_file_line_and_column() {
        let err = read("epoch,loss\n0,0.5\n1,\n").unwrap_err().to_string();
        assert!(err.starts_with("training.log:3: loss: empty cell"), "{err}");
        let err = read("epoch,loss\n0,0.5\none,0.4\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("training.log:3: epoch: not an epoch number"),
            "{err}"
        );
    }
}
