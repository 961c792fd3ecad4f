//! The one in-memory trace type every stage meets at, and its files.
//!
//! The harness writes traces, importers produce them, and everything
//! downstream (events, detect, attribute, report, check) only reads them.
//! On disk a trace is `trace.csv` (per step) plus an optional `val.csv`
//! (per epoch), the layout `dropscope run` writes per cell.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// What the logged training-loss value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogMode {
    /// The raw loss of each minibatch.
    #[default]
    PerStep,
    /// The mean of all minibatch losses since the epoch began (what progress bars print).
    RunningMean,
}

/// One optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Global optimizer step, from 0.
    pub step: u64,
    pub epoch: Option<u64>,
    /// Index of the minibatch within its epoch, from 0.
    pub batch: Option<u64>,
    pub loss: f64,
    pub lr: Option<f64>,
    pub batch_size: Option<u64>,
}

/// One evaluation, after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValRecord {
    pub epoch: u64,
    /// The global step at which the evaluation was made (the number of steps done).
    pub step: u64,
    pub val_loss: f64,
    pub val_accuracy: Option<f64>,
    /// The whole training set evaluated in eval mode: the honest train/val gap.
    pub train_loss_eval: Option<f64>,
}

/// A per-step training log with its validation points.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    /// A label for reports: the arm and seed, or the file it came from.
    pub name: String,
    pub steps: Vec<StepRecord>,
    pub val: Vec<ValRecord>,
    /// How the loss column was logged, when known.
    pub log_mode: Option<LogMode>,
    /// How often the loss was logged and what each value summarizes, when an importer
    /// told (attribution then works in log points); not written to trace files.
    #[serde(skip)]
    pub sampling: Option<crate::import::Sampling>,
}

impl Trace {
    pub fn new(name: impl Into<String>) -> Self {
        Trace {
            name: name.into(),
            ..Trace::default()
        }
    }

    pub fn step_numbers(&self) -> Vec<u64> {
        self.steps.iter().map(|s| s.step).collect()
    }

    pub fn losses(&self) -> Vec<f64> {
        self.steps.iter().map(|s| s.loss).collect()
    }

    pub fn has_epochs(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.epoch.is_some())
    }

    pub fn has_lr(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.lr.is_some())
    }

    /// Fills in `epoch` and `batch` from a fixed epoch length, for logs that lack them.
    pub fn assign_epochs(&mut self, steps_per_epoch: u64) {
        let spe = steps_per_epoch.max(1);
        for s in &mut self.steps {
            s.epoch = Some(s.step / spe);
            s.batch = Some(s.step % spe);
        }
    }

    /// True when some loss is NaN or infinite: the run diverged.
    pub fn diverged(&self) -> bool {
        self.steps.iter().any(|s| !s.loss.is_finite())
    }
}

pub const TRACE_HEADER: &str = "step,epoch,batch,loss,lr,batch_size";
pub const VAL_HEADER: &str = "epoch,step,val_loss,val_accuracy,train_loss_eval";

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Formats a float so it reads back bit-identically (Rust's shortest round-trip form),
/// spelling non-finite values the way pandas and numpy read them.
pub fn fmt_f64(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == f64::INFINITY {
        "inf".into()
    } else if x == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        x.to_string()
    }
}

/// Writes trace.csv rows as they come, so a run killed half-way leaves a readable file.
pub struct TraceWriter {
    out: BufWriter<File>,
}

impl TraceWriter {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        writeln!(out, "{TRACE_HEADER}")?;
        Ok(TraceWriter { out })
    }

    pub fn write(&mut self, r: &StepRecord) -> std::io::Result<()> {
        writeln!(
            self.out,
            "{},{},{},{},{},{}",
            r.step,
            opt(r.epoch),
            opt(r.batch),
            fmt_f64(r.loss),
            r.lr.map(fmt_f64).unwrap_or_default(),
            opt(r.batch_size)
        )
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// Writes val.csv rows as they come.
pub struct ValWriter {
    out: BufWriter<File>,
}

impl ValWriter {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut out = BufWriter::new(File::create(path)?);
        writeln!(out, "{VAL_HEADER}")?;
        Ok(ValWriter { out })
    }

    pub fn write(&mut self, r: &ValRecord) -> std::io::Result<()> {
        writeln!(
            self.out,
            "{},{},{},{},{}",
            r.epoch,
            r.step,
            fmt_f64(r.val_loss),
            r.val_accuracy.map(fmt_f64).unwrap_or_default(),
            r.train_loss_eval.map(fmt_f64).unwrap_or_default()
        )
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// Writes a whole trace as `dir/trace.csv` and, when it has validation points, `dir/val.csv`.
pub fn write_dir(trace: &Trace, dir: &Path) -> Result<(), InputError> {
    std::fs::create_dir_all(dir).map_err(|e| InputError::io(dir, &e))?;
    let tp = dir.join("trace.csv");
    let mut w = TraceWriter::create(&tp).map_err(|e| InputError::io(&tp, &e))?;
    for r in &trace.steps {
        w.write(r).map_err(|e| InputError::io(&tp, &e))?;
    }
    w.flush().map_err(|e| InputError::io(&tp, &e))?;
    if !trace.val.is_empty() {
        let vp = dir.join("val.csv");
        let mut w = ValWriter::create(&vp).map_err(|e| InputError::io(&vp, &e))?;
        for r in &trace.val {
            w.write(r).map_err(|e| InputError::io(&vp, &e))?;
        }
        w.flush().map_err(|e| InputError::io(&vp, &e))?;
    }
    Ok(())
}
