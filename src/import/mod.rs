//! Importers: training logs written by other pipelines, read into a [`Trace`].
//!
//! dropscope explains curves it did not train, so it has to meet logs where
//! they are: CSV and JSONL files, TensorBoard event files, burn-train metric
//! folders and Hugging Face `trainer_state.json`. Each format has its own
//! module; this one detects the format and dispatches.
//!
//! Every importer also has a bytes-level entry point ([`parse_bytes`],
//! [`burn_train::from_logs`]) so the fuzz targets can drive them without files.

pub mod burn_train;
pub mod csv;
mod detect;
mod fields;
pub mod hf_trainer;
pub mod jsonl;
mod num;
mod pyjson;
mod rows;
pub mod tensorboard;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::InputError;
use crate::trace::{Trace, ValRecord};

/// The log formats dropscope reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Csv,
    Jsonl,
    TensorBoard,
    BurnTrain,
    HfTrainer,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Csv,
        Format::Jsonl,
        Format::TensorBoard,
        Format::BurnTrain,
        Format::HfTrainer,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::TensorBoard => "tensorboard",
            Format::BurnTrain => "burn-train",
            Format::HfTrainer => "hf-trainer",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format '{s}': expected one of {}", names.join(", "))
            })
    }
}

/// How to read a log: which format, and which columns or tags hold what.
///
/// Everything left `None` is found by the usual spellings.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub format: Option<Format>,
    pub step_col: Option<String>,
    pub loss_col: Option<String>,
    pub epoch_col: Option<String>,
    pub lr_col: Option<String>,
    /// TensorBoard scalar tag holding the training loss.
    pub tag: Option<String>,
}

/// A trace read from a log, with what the reader had to guess or skip.
#[derive(Debug, Clone)]
pub struct Imported {
    pub trace: Trace,
    pub format: Format,
    /// Things the user should know, e.g. "partial read: truncated record at byte 1234".
    pub warnings: Vec<String>,
}

/// Reads a training log, detecting its format by content unless `opts.format` forces one.
///
/// A directory is a burn-train metric folder, a TensorBoard run directory, a
/// Hugging Face checkpoint folder or a dropscope cell folder.
pub fn read_trace(path: &Path, opts: &ImportOptions) -> Result<Imported, InputError> {
    let meta = std::fs::metadata(path).map_err(|e| InputError::io(path, &e))?;
    if meta.is_dir() {
        return read_dir(path, opts);
    }
    let bytes = std::fs::read(path).map_err(|e| InputError::io(path, &e))?;
    let format = match opts.format {
        Some(f) => f,
        None => detect_format(path, &bytes),
    };
    parse_bytes(format, path, &bytes, opts)
}

/// The format of a one-file log, told from its name and content.
pub fn detect_format(path: &Path, bytes: &[u8]) -> Format {
    detect::file_format(path, bytes)
}

/// Parses the bytes of a one-file log. `name` is only used in messages and as the trace name.
///
/// burn-train logs are folders of files: see [`burn_train::from_logs`].
pub fn parse_bytes(
    format: Format,
    name: &Path,
    bytes: &[u8],
    opts: &ImportOptions,
) -> Result<Imported, InputError> {
    match format {
        Format::Csv => csv::parse(name, bytes, opts),
        Format::Jsonl => jsonl::parse(name, bytes, opts),
        Format::TensorBoard => tensorboard::parse(name, bytes, opts),
        Format::HfTrainer => hf_trainer::parse(name, bytes, opts),
        Format::BurnTrain => Err(InputError::new(
            name,
            "burn-train logs are a folder (the learner's artifact directory), not a file",
        )),
    }
}

fn read_dir(dir: &Path, opts: &ImportOptions) -> Result<Imported, InputError> {
    let format = match opts.format {
        Some(f) => f,
        None => match detect::dir_format(dir)? {
            detect::DirKind::Format(f) => f,
            detect::DirKind::Cell => {
                return Ok(Imported {
                    trace: read_trace_dir(dir)?,
                    format: Format::Csv,
                    warnings: Vec::new(),
                });
            }
        },
    };
    match format {
        Format::BurnTrain => burn_train::read_dir(dir, opts),
        Format::TensorBoard => tensorboard::read_dir(dir, opts),
        Format::HfTrainer => {
            let file = dir.join("trainer_state.json");
            let bytes = std::fs::read(&file).map_err(|e| InputError::io(&file, &e))?;
            let mut imported = hf_trainer::parse(&file, &bytes, opts)?;
            imported.trace.name = trace_name(dir);
            Ok(imported)
        }
        Format::Csv | Format::Jsonl => Err(InputError::new(
            dir,
            format!("is a folder; --format {format} needs a file"),
        )),
    }
}

/// Reads a validation CSV: `epoch,step,val_loss[,val_accuracy,train_loss_eval]`,
/// in the usual spellings (`eval_loss`, `valid_loss`, `val_acc`, ...).
pub fn read_val_csv(path: &Path) -> Result<Vec<ValRecord>, InputError> {
    let bytes = std::fs::read(path).map_err(|e| InputError::io(path, &e))?;
    csv::parse_val(path, &bytes)
}

/// Reads dropscope's own cell folder: `trace.csv` plus an optional `val.csv`.
pub fn read_trace_dir(dir: &Path) -> Result<Trace, InputError> {
    let trace_path = dir.join("trace.csv");
    let bytes = std::fs::read(&trace_path).map_err(|e| InputError::io(&trace_path, &e))?;
    let mut trace = csv::parse(&trace_path, &bytes, &ImportOptions::default())?.trace;
    let val_path = dir.join("val.csv");
    if val_path.is_file() {
        trace.val = read_val_csv(&val_path)?;
    }
    trace.name = trace_name(dir);
    Ok(trace)
}

/// A label for reports: the file's stem or the folder's name.
fn trace_name(path: &Path) -> String {
    path.file_stem()
        .or_else(|| path.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
