//! Turns rows of a tabular log (CSV lines, JSONL objects) into a trace.
//!
//! Both formats mix training and evaluation rows and leave fields out, so the
//! filling-in rules live here, once.

use crate::trace::{StepRecord, Trace, ValRecord};

/// One row, its cells already parsed. `None` means absent or empty.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Row {
    pub step: Option<u64>,
    pub epoch: Option<u64>,
    pub batch: Option<u64>,
    pub loss: Option<f64>,
    pub lr: Option<f64>,
    pub batch_size: Option<u64>,
    pub val_loss: Option<f64>,
    pub val_accuracy: Option<f64>,
    pub train_loss_eval: Option<f64>,
}

#[derive(Debug)]
pub(crate) struct TraceBuilder {
    trace: Trace,
    /// Rows that carried neither a training loss nor a validation loss.
    skipped: u64,
    steps_from_index: u64,
    val_epochs_guessed: u64,
    last_epoch: Option<u64>,
}

impl TraceBuilder {
    pub(crate) fn new(name: String) -> Self {
        TraceBuilder {
            trace: Trace::new(name),
            skipped: 0,
            steps_from_index: 0,
            val_epochs_guessed: 0,
            last_epoch: None,
        }
    }

    /// Room for `rows` more training rows at once: a log of a million rows then costs one
    /// allocation instead of twenty doublings, each copying the whole trace.
    pub(crate) fn reserve(&mut self, rows: usize) {
        self.trace.steps.reserve(rows);
    }

    /// Room for one training row per line of `bytes` (an upper bound for line-based logs).
    pub(crate) fn reserve_lines(&mut self, bytes: &[u8]) {
        self.reserve(bytes.iter().filter(|&&b| b == b'\n').count() + 1);
    }

    pub(crate) fn push(&mut self, row: Row) {
        if row.epoch.is_some() {
            self.last_epoch = row.epoch;
        }
        let mut used = false;
        if let Some(loss) = row.loss {
            let step = row.step.unwrap_or_else(|| {
                self.steps_from_index += 1;
                self.trace.steps.len() as u64
            });
            self.trace.steps.push(StepRecord {
                step,
                epoch: row.epoch,
                batch: row.batch,
                loss,
                lr: row.lr,
                batch_size: row.batch_size,
            });
            used = true;
        }
        if let Some(val_loss) = row.val_loss {
            let epoch = row.epoch.or(self.last_epoch).unwrap_or_else(|| {
                self.val_epochs_guessed += 1;
                self.trace.val.len() as u64
            });
            // The number of steps done so far, when the row does not say.
            let step = row.step.unwrap_or_else(|| {
                self.trace
                    .steps
                    .last()
                    .map_or(0, |s| s.step.saturating_add(1))
            });
            self.trace.val.push(ValRecord {
                epoch,
                step,
                val_loss,
                val_accuracy: row.val_accuracy,
                train_loss_eval: row.train_loss_eval,
            });
            used = true;
        }
        if !used {
            self.skipped += 1;
        }
    }

    pub(crate) fn steps_len(&self) -> usize {
        self.trace.steps.len()
    }

    pub(crate) fn finish(self, warnings: &mut Vec<String>) -> Trace {
        if self.steps_from_index > 0 {
            warnings.push(format!(
                "{} training rows have no step: their steps are row numbers from 0",
                self.steps_from_index
            ));
        }
        if self.skipped > 0 {
            warnings.push(format!(
                "{} rows without a training or validation loss were skipped",
                self.skipped
            ));
        }
        if self.val_epochs_guessed > 0 {
            warnings.push(format!(
                "{} validation rows have no epoch: numbered in order from 0",
                self.val_epochs_guessed
            ));
        }
        self.trace
    }
}
