//! TensorBoard event files (`events.out.tfevents.*`) and run directories.
//!
//! A run killed mid-write leaves a truncated last record; what was read before
//! it is kept, with a warning naming the byte where reading stopped.

mod proto;
mod record;
mod tags;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use prost::Message;

pub use record::frame;

use super::bounded::read_log;
use super::csv::listed;
use super::detect::Probe;
use super::num::floor_f64;
use super::registry::{Confidence, LogFormat};
use super::sampling::Sampling;
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;
use crate::trace::{StepRecord, Trace, ValRecord};
use record::{Records, Stop};

/// TensorBoard event files and run folders.
pub struct TensorBoard;

impl LogFormat for TensorBoard {
    fn name(&self) -> &'static str {
        "tensorboard"
    }

    fn summary(&self) -> &'static str {
        "TensorBoard events.out.tfevents.* files, or a run folder holding them"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        match is_event_file(probe.path) || looks_like(probe.bytes) {
            true => Confidence::Certain,
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

    fn line_oriented(&self) -> bool {
        false
    }

    fn recognize_dir(&self, dir: &Path) -> Confidence {
        // Below the formats whose folders hold event files beside their own logs.
        match has_event_files(dir) {
            true => Confidence::Shape,
            false => Confidence::No,
        }
    }

    fn read_dir(&self, dir: &Path, opts: &ImportOptions) -> Result<Imported, InputError> {
        read_dir(dir, opts)
    }
}

/// Parses one event file's bytes.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let mut scalars = Scalars::default();
    let mut warnings = Vec::new();
    scalars.read_file(name, bytes, "", &mut warnings)?;
    build(name, &scalars, opts, warnings)
}

/// Reads every event file under `dir` (recursively) as one run.
pub(crate) fn read_dir(dir: &Path, opts: &ImportOptions) -> Result<Imported, InputError> {
    let mut files = Vec::new();
    find_event_files(dir, &mut files, 0)?;
    if files.is_empty() {
        return Err(InputError::new(
            dir,
            "no events.out.tfevents.* files in this folder",
        ));
    }
    // Sorted by path: file names start with a timestamp, so a resumed run reads in order.
    files.sort();
    let folders: std::collections::BTreeSet<_> = files.iter().filter_map(|f| f.parent()).collect();
    let several = folders.len() > 1;
    let mut scalars = Scalars::default();
    let mut warnings = Vec::new();
    for file in &files {
        // Event files are binary: no line cap, only the size bound.
        let bytes = read_log(file, &mut |_| false)?;
        // Keras and `add_scalars` put train and validation in sibling folders with
        // the same tag names: the folder keeps them apart.
        let prefix = match file.parent().and_then(|p| p.strip_prefix(dir).ok()) {
            Some(rel) if several && !rel.as_os_str().is_empty() => {
                format!("{}/", rel.to_string_lossy())
            }
            _ => String::new(),
        };
        if let Err(e) = scalars.read_file(file, &bytes, &prefix, &mut warnings) {
            warnings.push(format!("skipped {}: {}", file.display(), e.message));
        }
    }
    let mut imported = build(dir, &scalars, opts, warnings)?;
    imported.trace.name = trace_name(dir);
    Ok(imported)
}

fn find_event_files(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), InputError> {
    // Deep enough for any run layout, shallow enough to survive a symlink loop.
    if depth > 8 {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| InputError::io(dir, &e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            find_event_files(&path, out, depth + 1)?;
        } else if is_event_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

pub(crate) fn has_event_files(dir: &Path) -> bool {
    let mut files = Vec::new();
    find_event_files(dir, &mut files, 0).is_ok() && !files.is_empty()
}

/// True when the bytes start with a TFRecord header whose length checksum holds.
pub(crate) fn looks_like(bytes: &[u8]) -> bool {
    matches!(
        Records::new(bytes).next(),
        Some(Ok(_)) | Some(Err(Stop::Truncated { .. }))
    ) && bytes.len() >= 12
}

pub(crate) fn is_event_file(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().contains("tfevents"))
}

#[derive(Debug, Clone, Copy)]
struct Point {
    step: i64,
    value: f64,
}

/// Every scalar series read so far, by tag, tags in order of first appearance.
#[derive(Default)]
struct Scalars {
    series: HashMap<String, Vec<Point>>,
    order: Vec<String>,
}

impl Scalars {
    fn read_file(
        &mut self,
        name: &Path,
        bytes: &[u8],
        prefix: &str,
        warnings: &mut Vec<String>,
    ) -> Result<(), InputError> {
        let (mut records, mut undecodable) = (0u64, 0u64);
        for item in Records::new(bytes) {
            match item {
                Ok((_, data)) => {
                    records += 1;
                    match proto::Event::decode(data) {
                        Ok(event) => self.add(&event, prefix),
                        Err(_) => undecodable += 1,
                    }
                }
                Err(stop) => {
                    if records == 0 {
                        return Err(nothing_read(name, stop));
                    }
                    warnings.push(format!(
                        "partial read: {} in {}; kept the {records} records before it",
                        stop.describe(),
                        name.display()
                    ));
                }
            }
        }
        if undecodable > 0 {
            warnings.push(format!(
                "{undecodable} records in {} are not Event protobufs: skipped",
                name.display()
            ));
        }
        Ok(())
    }

    fn add(&mut self, event: &proto::Event, prefix: &str) {
        let Some(summary) = &event.summary else {
            return;
        };
        for value in &summary.value {
            // Only the first value of a tag carries its plugin; others are scalars or not by shape.
            if value.plugin_name().is_some_and(|p| p != "scalars") {
                continue;
            }
            let Some(scalar) = value.scalar() else {
                continue;
            };
            let tag = format!("{prefix}{}", value.tag);
            let series = self.series.entry(tag.clone()).or_insert_with(|| {
                self.order.push(tag);
                Vec::new()
            });
            series.push(Point {
                step: event.step,
                value: scalar,
            });
        }
    }

    /// A tag's points by step: sorted, negative steps dropped, and for a step
    /// logged twice (a resumed run) the last value kept.
    fn by_step(&self, tag: &str, warnings: &mut Vec<String>) -> BTreeMap<u64, f64> {
        let mut out = BTreeMap::new();
        let (mut negative, mut repeated) = (0u64, 0u64);
        for p in self.series.get(tag).into_iter().flatten() {
            match u64::try_from(p.step) {
                Ok(step) => {
                    if out.insert(step, p.value).is_some() {
                        repeated += 1;
                    }
                }
                Err(_) => negative += 1,
            }
        }
        if negative > 0 {
            warnings.push(format!(
                "{tag}: {negative} points with a negative step dropped"
            ));
        }
        if repeated > 0 {
            warnings.push(format!(
                "{tag}: {repeated} steps logged more than once (a resumed run?): kept the last"
            ));
        }
        out
    }
}

fn nothing_read(name: &Path, stop: Stop) -> InputError {
    let why = match stop {
        Stop::BadLengthCrc { offset: 0 } => "not a TensorBoard event file".to_string(),
        other => format!("nothing could be read: {}", other.describe()),
    };
    InputError::new(name, why).field(format!("byte {}", stop.offset()))
}

fn build(
    name: &Path,
    scalars: &Scalars,
    opts: &ImportOptions,
    mut warnings: Vec<String>,
) -> Result<Imported, InputError> {
    let tags = &scalars.order;
    let tag_list = || {
        if tags.is_empty() {
            "none".to_string()
        } else {
            listed(tags)
        }
    };
    let loss_tag = match &opts.tag {
        Some(wanted) => tags.iter().find(|t| *t == wanted).ok_or_else(|| {
            InputError::new(
                name,
                format!("no such scalar tag; the tags are: {}", tag_list()),
            )
            .field(wanted.clone())
        })?,
        None => tags::loss(tags).ok_or_else(|| {
            InputError::new(
                name,
                format!(
                    "no loss tag; the scalar tags are: {} (name one with --tag)",
                    tag_list()
                ),
            )
            .field("tag")
        })?,
    };
    let loss = scalars.by_step(loss_tag, &mut warnings);
    let lr_tag = match &opts.lr_col {
        Some(t) => tags.iter().find(|x| *x == t),
        None => tags::lr(tags),
    };
    let lr = lr_tag
        .map(|t| scalars.by_step(t, &mut warnings))
        .unwrap_or_default();
    let epochs = tags::epoch(tags).map(|t| scalars.by_step(t, &mut warnings));
    let epoch_at = |step: u64| -> Option<u64> {
        let (_, &e) = epochs.as_ref()?.range(..=step).next_back()?;
        floor_f64(e)
    };

    let mut trace = Trace::new(trace_name(name));
    trace.steps = loss
        .iter()
        .map(|(&step, &loss)| StepRecord {
            step,
            epoch: epoch_at(step),
            batch: None,
            loss,
            lr: lr.get(&step).copied(),
            batch_size: None,
        })
        .collect();
    if trace.steps.is_empty() {
        return Err(InputError::new(name, "the loss tag has no points").field(loss_tag.clone()));
    }
    if let Some(val_tag) = tags::val_loss(tags).filter(|t| *t != loss_tag) {
        let acc = tags::val_accuracy(tags).map(|t| scalars.by_step(t, &mut warnings));
        let mut guessed = false;
        for (i, (&step, &val_loss)) in scalars.by_step(val_tag, &mut warnings).iter().enumerate() {
            // `step` counts the steps done: the epoch is that of the last one.
            let epoch = epoch_at(step.saturating_sub(1)).unwrap_or_else(|| {
                guessed = true;
                i as u64
            });
            trace.val.push(ValRecord {
                epoch,
                step,
                val_loss,
                val_accuracy: acc.as_ref().and_then(|a| a.get(&step).copied()),
                train_loss_eval: None,
            });
        }
        if guessed {
            warnings.push(format!(
                "no epoch tag: the points of {val_tag} are numbered as epochs 0, 1, ..."
            ));
        }
    }
    warnings.push(format!(
        "loss from tag {loss_tag}{}",
        lr_tag
            .map(|t| format!(", learning rate from {t}"))
            .unwrap_or_default()
    ));
    Ok(Imported {
        sampling: Sampling::unknown(&trace.steps),
        trace,
        format: Format::TensorBoard,
        warnings,
    })
}
