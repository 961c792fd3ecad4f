//! Hugging Face `trainer_state.json`, as `transformers.TrainerState.save_to_json` writes it.
//!
//! Its `log_history` mixes three kinds of entries: training logs (`loss`,
//! `learning_rate`, `grad_norm`, `epoch`, `step`), evaluations (`eval_loss`,
//! `eval_accuracy`, ...) and one end-of-training summary (`train_loss`,
//! `train_runtime`, ...), which is not a step.

use std::path::Path;

use serde_json::{Map, Value};

use super::bounded::read_log;
use super::csv::clip;
use super::detect::Probe;
use super::jsonl::{json_epoch, json_message, json_u64, utf8};
use super::pyjson::{as_f64, quote_non_finite};
use super::registry::{Confidence, LogFormat};
use super::sampling::{Sampling, median_gap};
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;
use crate::trace::{LogMode, StepRecord, Trace, ValRecord};

/// The file `Trainer` writes at every checkpoint and at the end of training.
const STATE_FILE: &str = "trainer_state.json";

/// Hugging Face `trainer_state.json`, or a checkpoint folder holding one.
pub struct HfTrainer;

impl LogFormat for HfTrainer {
    fn name(&self) -> &'static str {
        "hf-trainer"
    }

    fn summary(&self) -> &'static str {
        "Hugging Face Trainer's trainer_state.json (log_history), or a checkpoint folder"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        if probe.file_name == STATE_FILE {
            return Confidence::Certain;
        }
        // A JSON document rather than JSON lines: its first line is a lone `{`,
        // or the whole state on one line.
        let state_on_one_line = probe
            .lines
            .first()
            .is_some_and(|l| l.contains("\"log_history\""));
        if !probe.starts_with_brace() || (probe.first_line_is_object && !state_on_one_line) {
            return Confidence::No;
        }
        match probe.lines.iter().any(|l| l.contains("\"log_history\"")) {
            true => Confidence::Keys,
            false => Confidence::Shape,
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
        match dir.join(STATE_FILE).is_file() {
            true => Confidence::Keys,
            false => Confidence::No,
        }
    }

    fn read_dir(&self, dir: &Path, opts: &ImportOptions) -> Result<Imported, InputError> {
        let file = dir.join(STATE_FILE);
        // A JSON document, possibly on one line: no line cap, only the size bound.
        let bytes = read_log(&file, &mut |_| false)?;
        let mut imported = parse(&file, &bytes, opts)?;
        imported.trace.name = trace_name(dir);
        Ok(imported)
    }
}

/// Parses the text of a `trainer_state.json`.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let text = utf8(name, bytes)?;
    let root: Value = serde_json::from_str(&quote_non_finite(text))
        .map_err(|e| InputError::new(name, json_message(&e)).at_line(e.line() as u64))?;
    let Some(history) = root.get("log_history") else {
        return Err(
            InputError::new(name, "no log_history: not a trainer_state.json").field("log_history"),
        );
    };
    let Value::Array(history) = history else {
        return Err(InputError::new(name, "log_history is not a list").field("log_history"));
    };
    let loss_key = opts.loss_col.as_deref().unwrap_or("loss");
    let lr_key = opts.lr_col.as_deref().unwrap_or("learning_rate");
    let mut trace = Trace::new(trace_name(name));
    let mut last_epoch = None;
    for (i, entry) in history.iter().enumerate() {
        let Value::Object(entry) = entry else {
            return Err(InputError::new(name, "not an object").field(format!("log_history[{i}]")));
        };
        let e = Entry {
            name,
            text,
            index: i,
            entry,
        };
        let epoch = e.value("epoch", json_epoch, "an epoch number")?;
        last_epoch = epoch.or(last_epoch);
        if let Some(loss) = e.value(loss_key, as_f64, "a number")? {
            trace.steps.push(StepRecord {
                step: e.required("step", json_u64, "a step number")?,
                epoch,
                batch: None,
                loss,
                lr: e.value(lr_key, as_f64, "a number")?,
                batch_size: None,
            });
        } else if let Some(val_loss) = e.value("eval_loss", as_f64, "a number")? {
            trace.val.push(ValRecord {
                epoch: epoch.or(last_epoch).unwrap_or(trace.val.len() as u64),
                step: e.required("step", json_u64, "a step number")?,
                val_loss,
                val_accuracy: e.value("eval_accuracy", as_f64, "a number")?,
                train_loss_eval: None,
            });
        }
    }
    if trace.steps.is_empty() {
        return Err(InputError::new(
            name,
            format!("log_history has no entry with a '{loss_key}'"),
        )
        .field("log_history"));
    }
    let mut warnings = Vec::new();
    let logging_steps = root.get("logging_steps").and_then(json_u64);
    // Trainer logs the mean loss since the previous log: a window of logging_steps.
    let sampling = Sampling::window_mean(logging_steps.or_else(|| median_gap(&trace.steps)));
    match logging_steps {
        Some(1) => trace.log_mode = Some(LogMode::PerStep),
        Some(n) => warnings.push(format!(
            "each loss is the mean over the {n} steps since the previous log (logging_steps = {n})"
        )),
        None => {}
    }
    let global_step = root.get("global_step").and_then(json_u64);
    let last_step = trace.steps.last().map(|s| s.step);
    if let (Some(global), Some(last)) = (global_step, last_step)
        && last > global
    {
        warnings.push(format!(
            "log_history goes to step {last}, past global_step {global}"
        ));
    }
    Ok(Imported {
        trace,
        format: Format::HfTrainer,
        warnings,
        sampling,
    })
}

/// One `log_history` entry, with errors that name it.
struct Entry<'a> {
    name: &'a Path,
    text: &'a str,
    index: usize,
    entry: &'a Map<String, Value>,
}

impl Entry<'_> {
    fn value<T>(
        &self,
        key: &str,
        convert: fn(&Value) -> Option<T>,
        what: &str,
    ) -> Result<Option<T>, InputError> {
        match self.entry.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => convert(v)
                .map(Some)
                .ok_or_else(|| self.error(key, format!("not {what}: {}", clip(&v.to_string())))),
        }
    }

    fn required<T>(
        &self,
        key: &str,
        convert: fn(&Value) -> Option<T>,
        what: &str,
    ) -> Result<T, InputError> {
        self.value(key, convert, what)?
            .ok_or_else(|| self.error(key, format!("missing: {what} is needed")))
    }

    fn error(&self, key: &str, message: String) -> InputError {
        let e = InputError::new(self.name, message);
        let e = match entry_line(self.text, self.index) {
            Some(line) => e.at_line(line),
            None => e,
        };
        e.field(format!("log_history[{}].{key}", self.index))
    }
}

/// The line where `log_history[index]` begins, so an editor can jump to it.
/// Only for messages: a rough scan, not a second parser.
fn entry_line(text: &str, index: usize) -> Option<u64> {
    const KEY: &str = "\"log_history\"";
    let bytes = text.as_bytes();
    let from = text.find(KEY)? + KEY.len();
    let open = from + bytes.get(from..)?.iter().position(|&b| b == b'[')?;
    let (mut depth, mut count) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for (at, &c) in bytes.iter().enumerate().skip(open) {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth == 2 && c == b'{' {
                    if count == index {
                        let newlines = bytes.get(..at)?.iter().filter(|&&b| b == b'\n').count();
                        return Some(newlines as u64 + 1);
                    }
                    count += 1;
                }
            }
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return None;
                }
            }
            _ => {}
        }
    }
    None
}
