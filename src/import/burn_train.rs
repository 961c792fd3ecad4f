//! burn-train metric log folders, as `FileMetricLogger` of burn-train 0.22.1 writes them.
//!
//! Layout (from `burn-train/src/logger/metric.rs`):
//! `<artifact dir>/{train,valid}/epoch-<N>/<Metric_Name>.log`, epochs from 1,
//! spaces in the metric name replaced by `_` (`Loss.log`, `Learning_Rate.log`,
//! `Accuracy.log`). Each line is a `NumericEntry` (`metric/base.rs`): one per
//! iteration as `value,count` (the batch's value and its batch size), and at
//! the end of the epoch `value,final` (the epoch's mean). Older or custom
//! metrics may write a bare `value`. Accuracy is logged in percent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::bounded::read_opened;
use super::csv::clip;
use super::detect::Probe;
use super::jsonl::utf8;
use super::num::{parse_f64, parse_u64};
use super::registry::{Confidence, LogFormat};
use super::sampling::Sampling;
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;
use crate::trace::{LogMode, StepRecord, Trace, ValRecord};

const EPOCH_PREFIX: &str = "epoch-";

/// burn-train's metric folders; always a folder, never one file.
pub struct BurnTrain;

impl LogFormat for BurnTrain {
    fn name(&self) -> &'static str {
        "burn-train"
    }

    fn summary(&self) -> &'static str {
        "burn-train's artifact folder (train/epoch-N/Loss.log, valid/epoch-N/...)"
    }

    fn recognize(&self, _probe: &Probe<'_>) -> Confidence {
        Confidence::No
    }

    fn parse(
        &self,
        name: &Path,
        _bytes: &[u8],
        _opts: &ImportOptions,
    ) -> Result<Imported, InputError> {
        Err(InputError::new(
            name,
            "burn-train logs are a folder (the learner's artifact directory), not a file",
        ))
    }

    fn recognize_dir(&self, dir: &Path) -> Confidence {
        match looks_like(dir) {
            true => Confidence::Certain,
            false => Confidence::No,
        }
    }

    fn read_dir(&self, dir: &Path, opts: &ImportOptions) -> Result<Imported, InputError> {
        read_dir(dir, opts)
    }
}

/// The dataset split a log belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    Train,
    Valid,
}

impl Split {
    fn folder(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
        }
    }
}

/// One metric file: `<split>/epoch-<epoch>/<metric>.log`.
#[derive(Debug, Clone)]
pub struct MetricLog {
    pub split: Split,
    pub epoch: u64,
    /// The file stem, e.g. `Loss`, `Learning_Rate`.
    pub metric: String,
    /// For messages.
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Reads an artifact directory (or its `train` folder).
pub(crate) fn read_dir(dir: &Path, opts: &ImportOptions) -> Result<Imported, InputError> {
    let root = artifact_root(dir).ok_or_else(|| {
        InputError::new(
            dir,
            "not a burn-train metric folder: no train/epoch-N folders",
        )
    })?;
    let mut logs = Vec::new();
    let mut warnings = Vec::new();
    for split in [Split::Train, Split::Valid] {
        let split_dir = root.join(split.folder());
        let Ok(entries) = std::fs::read_dir(&split_dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let epoch_dir = entry.path();
            let Some(epoch) = epoch_number(&epoch_dir) else {
                continue;
            };
            let files =
                std::fs::read_dir(&epoch_dir).map_err(|e| InputError::io(&epoch_dir, &e))?;
            for file in files.flatten() {
                let path = file.path();
                let (Some(stem), Some("log")) = (
                    path.file_stem().and_then(|s| s.to_str()),
                    path.extension().and_then(|s| s.to_str()),
                ) else {
                    continue;
                };
                // One that cannot be opened is skipped; one too big is an error.
                match std::fs::File::open(&path) {
                    Ok(opened) => logs.push(MetricLog {
                        split,
                        epoch,
                        metric: stem.to_string(),
                        bytes: read_opened(&path, opened, &mut |_| true)?,
                        path: path.clone(),
                    }),
                    Err(e) => warnings.push(format!("skipped {}: {e}", path.display())),
                }
            }
        }
    }
    let mut imported = from_logs(&root, &logs, opts)?;
    imported.warnings.splice(0..0, warnings);
    Ok(imported)
}

/// The artifact directory for `dir`: itself when it holds `train/`, its parent
/// when `dir` is the `train` folder.
fn artifact_root(dir: &Path) -> Option<PathBuf> {
    if dir.join("train").is_dir() {
        return Some(dir.to_path_buf());
    }
    let is_split = dir
        .file_name()
        .is_some_and(|n| n == "train" || n == "valid");
    if is_split {
        return dir.parent().map(Path::to_path_buf);
    }
    None
}

fn epoch_number(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    parse_u64(name.strip_prefix(EPOCH_PREFIX)?).filter(|_| path.is_dir())
}

/// True when `dir` looks like a burn-train artifact directory.
pub(crate) fn looks_like(dir: &Path) -> bool {
    let has_epochs = |d: PathBuf| {
        std::fs::read_dir(d)
            .is_ok_and(|entries| entries.flatten().any(|e| epoch_number(&e.path()).is_some()))
    };
    has_epochs(dir.join("train")) || has_epochs(dir.to_path_buf())
}

/// One `NumericEntry` line.
#[derive(Debug, Clone, Copy)]
struct Entry {
    value: f64,
    count: Option<u64>,
    is_final: bool,
}

fn parse_entries(log: &MetricLog) -> Result<Vec<Entry>, InputError> {
    let text = utf8(&log.path, &log.bytes)?;
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let entry = parse_entry(line).ok_or_else(|| {
            InputError::new(
                &log.path,
                format!(
                    "not a burn-train metric entry ('value', 'value,count' or 'value,final'): '{}'",
                    clip(line)
                ),
            )
            .at_line(i as u64 + 1)
            .field(log.metric.clone())
        })?;
        out.push(entry);
    }
    Ok(out)
}

fn parse_entry(line: &str) -> Option<Entry> {
    let mut parts = line.split(',');
    let value = parse_f64(parts.next()?)?;
    let (count, is_final) = match parts.next().map(str::trim) {
        None => (None, false),
        Some("final") => (None, true),
        Some(count) => (Some(parse_u64(count)?), false),
    };
    parts.next().is_none().then_some(Entry {
        value,
        count,
        is_final,
    })
}

fn same_metric(stem: &str, wanted: &str) -> bool {
    stem.eq_ignore_ascii_case(&wanted.trim().replace(' ', "_"))
}

/// The logs of one metric and split, by epoch.
fn series<'a>(logs: &'a [MetricLog], split: Split, metric: &str) -> BTreeMap<u64, &'a MetricLog> {
    logs.iter()
        .filter(|l| l.split == split && same_metric(&l.metric, metric))
        .map(|l| (l.epoch, l))
        .collect()
}

/// Builds a trace from metric files already read; the bytes-level entry point.
pub fn from_logs(
    root: &Path,
    logs: &[MetricLog],
    opts: &ImportOptions,
) -> Result<Imported, InputError> {
    let loss_name = opts.loss_col.as_deref().unwrap_or("Loss");
    let lr_name = opts.lr_col.as_deref().unwrap_or("Learning Rate");
    let mut warnings = Vec::new();
    let mut trace = Trace::new(trace_name(root));
    trace.log_mode = Some(LogMode::PerStep);

    let lr_logs = series(logs, Split::Train, lr_name);
    // Steps done by the end of each training epoch, to place validation points.
    let mut steps_done = BTreeMap::new();
    let mut step = 0u64;
    for (&epoch, log) in &series(logs, Split::Train, loss_name) {
        let lr: Vec<f64> = match lr_logs.get(&epoch) {
            Some(l) => iterations(&parse_entries(l)?).map(|e| e.value).collect(),
            None => Vec::new(),
        };
        let entries = parse_entries(log)?;
        let mut batches = 0usize;
        for (batch, e) in iterations(&entries).enumerate() {
            trace.steps.push(StepRecord {
                step,
                epoch: Some(epoch),
                batch: Some(batch as u64),
                loss: e.value,
                lr: lr.get(batch).copied(),
                batch_size: e.count.filter(|&c| c > 0),
            });
            step += 1;
            batches += 1;
        }
        if !lr.is_empty() && lr.len() != batches {
            warnings.push(format!(
                "epoch {epoch}: {} learning rates for {batches} losses",
                lr.len()
            ));
        }
        steps_done.insert(epoch, step);
    }
    if trace.steps.is_empty() {
        return Err(InputError::new(
            root,
            format!("no training {loss_name}.log with values under train/epoch-N"),
        )
        .field(loss_name.to_string()));
    }

    let accuracy = series(logs, Split::Valid, "Accuracy");
    for (&epoch, log) in &series(logs, Split::Valid, loss_name) {
        let Some(val_loss) = epoch_value(&parse_entries(log)?) else {
            continue;
        };
        let val_accuracy = match accuracy.get(&epoch) {
            // burn-train logs accuracy in percent; dropscope keeps fractions.
            Some(l) => epoch_value(&parse_entries(l)?).map(|pct| pct / 100.0),
            None => None,
        };
        let step = steps_done
            .range(..=epoch)
            .next_back()
            .map_or(0, |(_, &s)| s);
        trace.val.push(ValRecord {
            epoch,
            step,
            val_loss,
            val_accuracy,
            train_loss_eval: None,
        });
    }
    Ok(Imported {
        // One NumericEntry per iteration: the batch's own loss.
        sampling: Sampling::per_step(&trace.steps),
        trace,
        format: Format::BurnTrain,
        warnings,
    })
}

/// The per-iteration entries, without the epoch's closing `final` one.
fn iterations(entries: &[Entry]) -> impl Iterator<Item = &Entry> {
    entries.iter().filter(|e| !e.is_final)
}

/// The epoch's value: its `final` entry, else the batch-size-weighted mean of its iterations.
fn epoch_value(entries: &[Entry]) -> Option<f64> {
    if let Some(last_final) = entries.iter().rev().find(|e| e.is_final) {
        return Some(last_final.value);
    }
    let (mut sum, mut weight) = (0.0, 0.0);
    for e in entries {
        let w = e.count.map_or(1.0, |c| c as f64);
        sum += e.value * w;
        weight += w;
    }
    (weight > 0.0).then(|| sum / weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_in_all_three_spellings() {
        let e = parse_entry("0.25,32").unwrap();
        assert_eq!((e.value, e.count, e.is_final), (0.25, Some(32), false));
        let e = parse_entry("0.5,final").unwrap();
        assert!(e.is_final);
        let e = parse_entry("NaN").unwrap();
        assert!(e.value.is_nan());
        assert!(parse_entry("1,2,3").is_none());
        assert!(parse_entry("x,2").is_none());
    }
}
