//! Importers: training logs written by other pipelines, read into a [`Trace`].
//!
//! dropscope explains curves it did not train, so it has to meet logs where
//! they are. Each format lives in its own file as a unit struct implementing
//! [`LogFormat`] (its name, how it recognizes a file, how it reads one), and is
//! registered by one line in the `formats!` list below. Detection
//! ([`detect_format`]), the [`Format`] enum with its `--input-format` names and
//! help text, and the list of fuzz targets all come from that list.
//!
//! Every importer has a bytes-level entry point ([`parse_bytes`],
//! [`burn_train::from_logs`]) so the fuzz targets can drive them without files.
//! docs/formats.md describes each format: detection, fields, sampling, caveats.

mod bounded;
mod detect;
mod fields;
mod lines;
mod num;
mod pyjson;
mod registry;
mod relog;
mod rows;
pub mod sampling;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub use bounded::MAX_LOG_BYTES;
pub use detect::{CsvHead, Probe};
pub use registry::{Confidence, LogFormat};
pub use sampling::{Aggregation, Sampling};

use crate::error::InputError;
use crate::trace::{Trace, ValRecord};

// The registry: one line per format, `Variant => module::Struct`. The module is
// declared by this list too, so adding a format is its file plus one line here.
// Order matters on a detection tie (the first listed wins) and in the help text.
registry::formats! {
    Csv => csv::CsvLog,
    Jsonl => jsonl::JsonLines,
    TensorBoard => tensorboard::TensorBoard,
    BurnTrain => burn_train::BurnTrain,
    HfTrainer => hf_trainer::HfTrainer,
    Detectron2 => detectron2::Detectron2,
    LlamaFactory => llama_factory::LlamaFactory,
    Lightning => lightning::Lightning,
    Wandb => wandb::Wandb,
    Text => text::KeyValueText,
    MmEngine => mmengine::MmEngine,
    Keras => keras::Keras,
}

impl Format {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        self.spec().name()
    }

    /// One line on the writer and the file this format reads.
    pub fn summary(self) -> &'static str {
        self.spec().summary()
    }

    /// Every name, comma-separated, in registration order.
    pub fn names() -> String {
        let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
        names.join(", ")
    }

    /// One line per format, `name: summary`, for the command line's help.
    pub fn help() -> String {
        let lines: Vec<_> = Format::ALL
            .iter()
            .map(|f| format!("{}: {}", f.name(), f.summary()))
            .collect();
        lines.join("\n")
    }

    /// The fuzz target that drives this format (fuzz/fuzz_targets/<name>.rs).
    pub fn fuzz_target(self) -> String {
        format!("import_{}", self.name().replace('-', "_"))
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
            .iter()
            .copied()
            .find(|f| f.name() == wanted)
            .ok_or_else(|| format!("unknown format '{s}': expected one of {}", Format::names()))
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
    /// How often the loss was logged and what each value summarizes.
    pub sampling: Sampling,
}

/// Reads a training log, detecting its format by content unless `opts.format` forces one.
///
/// A directory is a burn-train metric folder, a TensorBoard run directory, a
/// Hugging Face checkpoint folder or a dropscope cell folder. Anything else (a file,
/// a device, a FIFO) is read up to [`MAX_LOG_BYTES`]; in a line-oriented format a
/// line over the cap ends the read there.
pub fn read_trace(path: &Path, opts: &ImportOptions) -> Result<Imported, InputError> {
    let meta = std::fs::metadata(path).map_err(|e| InputError::io(path, &e))?;
    if meta.is_dir() {
        return read_dir(path, opts);
    }
    let format_of = |head: &[u8]| opts.format.unwrap_or_else(|| detect_format(path, head));
    // Detection reads only the head, which is all there by the time a line is too long.
    let bytes = bounded::read_log(path, &mut |head| format_of(head).spec().line_oriented())?;
    parse_bytes(format_of(&bytes), path, &bytes, opts)
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
    let spec = format.spec();
    let imported = match spec.parse(name, bytes, opts) {
        Ok(imported) => imported,
        Err(err) => {
            // A writer killed mid-line leaves a last line without its newline: when that
            // line is what fails, read what came before it, as for a cut TensorBoard file.
            let cut = incomplete_last_line(bytes).filter(|(line, _)| err.line == Some(*line));
            let Some((line, complete)) = cut.filter(|_| spec.line_oriented()) else {
                return Err(err);
            };
            // If the rest fails too, the first error (at the cut line) says more.
            let mut imported = spec.parse(name, complete, opts).map_err(|_| err)?;
            imported.warnings.insert(
                0,
                format!("line {line} is incomplete (the file ends mid-line): ignored"),
            );
            imported
        }
    };
    Ok(checked(imported))
}

/// The number of the last line and the bytes before it, when the file ends without a
/// newline after a non-blank last line (a writer killed mid-line), and lines precede it.
fn incomplete_last_line(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let end = bytes.iter().rposition(|&b| b == b'\n')?;
    let (complete, tail) = bytes.split_at(end + 1);
    if tail.trim_ascii().is_empty() {
        return None;
    }
    let line = complete.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    Some((line, complete))
}

/// What holds for every importer's result, made true once here rather than in each
/// reader: learning rates are finite or absent (a NaN or infinite rate is a logger
/// that failed to read it, not a rate the optimizer used).
fn checked(mut imported: Imported) -> Imported {
    // Attribution reads the sampling off the trace, in log points.
    imported.trace.sampling = Some(imported.sampling);
    let mut non_finite = 0u64;
    for s in &mut imported.trace.steps {
        if s.lr.is_some_and(|lr| !lr.is_finite()) {
            s.lr = None;
            non_finite += 1;
        }
    }
    match non_finite {
        0 => {}
        1 => imported
            .warnings
            .push("1 learning rate was NaN or infinite and is ignored".into()),
        n => imported.warnings.push(format!(
            "{n} learning rates were NaN or infinite and are ignored"
        )),
    }
    imported
}

/// What a fuzz target runs: detection, then the format's reader, on any bytes.
/// Neither may panic, whatever they decide.
pub fn fuzz(format: Format, data: &[u8]) {
    let name = Path::new("fuzz-input");
    let _ = detect_format(name, data);
    let _ = parse_bytes(format, name, data, &ImportOptions::default());
    if format == Format::Csv {
        let _ = csv::parse_val(name, data);
    }
}

fn read_dir(dir: &Path, opts: &ImportOptions) -> Result<Imported, InputError> {
    read_dir_unchecked(dir, opts).map(checked)
}

fn read_dir_unchecked(dir: &Path, opts: &ImportOptions) -> Result<Imported, InputError> {
    let format = match opts.format {
        Some(f) => f,
        None => match detect::dir_format(dir)? {
            detect::DirKind::Format(f) => f,
            detect::DirKind::Cell => {
                let trace = read_trace_dir(dir)?;
                return Ok(Imported {
                    sampling: Sampling::unknown(&trace.steps),
                    trace,
                    format: Format::Csv,
                    warnings: Vec::new(),
                });
            }
        },
    };
    format.spec().read_dir(dir, opts)
}

/// Reads a validation CSV: `epoch,step,val_loss[,val_accuracy,train_loss_eval]`,
/// in the usual spellings (`eval_loss`, `valid_loss`, `val_acc`, ...).
///
/// The step column is optional: without it every point's step is [`UNKNOWN_STEP`],
/// for [`place_val_steps`] to fill in from the training trace's epochs.
pub fn read_val_csv(path: &Path) -> Result<Vec<ValRecord>, InputError> {
    let bytes = bounded::read_log(path, &mut |_| true)?;
    csv::parse_val(path, &bytes)
}

/// The step of a validation point read from a file without a step column: not a step
/// any log reaches, so nothing places it on the step axis (no validation event, no
/// training window) until [`place_val_steps`] replaces it.
pub const UNKNOWN_STEP: u64 = u64::MAX;

/// Gives each validation point whose step is [`UNKNOWN_STEP`] the step at which its
/// epoch ended in `trace`: the number of steps done, one past the epoch's last step
/// (what validation CSVs with a step column hold). Needs the training steps' epochs
/// (from the log or `Trace::assign_epochs`). Returns how many points stay unknown.
pub fn place_val_steps(trace: &mut Trace) -> usize {
    let mut end_of_epoch = std::collections::BTreeMap::new();
    for s in &trace.steps {
        if let Some(epoch) = s.epoch {
            let end = end_of_epoch.entry(epoch).or_insert(0u64);
            *end = (*end).max(s.step.saturating_add(1));
        }
    }
    let mut unknown = 0;
    for v in trace.val.iter_mut().filter(|v| v.step == UNKNOWN_STEP) {
        match end_of_epoch.get(&v.epoch) {
            Some(&end) => v.step = end,
            None => unknown += 1,
        }
    }
    unknown
}

/// Reads dropscope's own cell folder: `trace.csv` plus an optional `val.csv`.
pub fn read_trace_dir(dir: &Path) -> Result<Trace, InputError> {
    let trace_path = dir.join("trace.csv");
    let bytes = bounded::read_log(&trace_path, &mut |_| true)?;
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

#[cfg(test)]
mod tests;

/// How a log's values are turned after reading: `investigate`'s `--steps-per-epoch`,
/// `--negate` and `--offset`, shared by every command that reads a log.
#[derive(Debug, Clone, Default)]
pub struct Transform {
    /// Epochs from a fixed epoch length, for logs without an epoch column.
    pub steps_per_epoch: Option<u64>,
    /// Minus the logged value (a log-likelihood or a reward), before `offset`.
    pub negate: bool,
    pub offset: f64,
}

impl Transform {
    pub fn apply(&self, trace: &mut Trace) {
        if let Some(spe) = self.steps_per_epoch {
            trace.assign_epochs(spe);
        }
        if !self.negate && self.offset == 0.0 {
            return;
        }
        let sign = if self.negate { -1.0 } else { 1.0 };
        let f = |v: f64| sign * v + self.offset;
        for s in &mut trace.steps {
            s.loss = f(s.loss);
        }
        for v in &mut trace.val {
            v.val_loss = f(v.val_loss);
            v.train_loss_eval = v.train_loss_eval.map(f);
        }
    }
}
