//! JSON Lines logs: one flat object per line, keys in the usual spellings.
//!
//! Lines with a training loss become steps; lines with only an evaluation loss
//! (`val_loss`, `eval_loss`, ...) become validation points; others are skipped.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value};

use super::csv::{clip, listed};
use super::detect::Probe;
use super::fields::{self, Role};
use super::lines::numbered;
use super::num::{floor_f64, integral_f64, parse_epoch, parse_u64};
use super::pyjson::{as_f64, quote_non_finite};
use super::registry::{Confidence, LogFormat};
use super::rows::{Row, TraceBuilder};
use super::sampling::Sampling;
use super::{Format, ImportOptions, Imported, trace_name};
use crate::error::InputError;

/// Any JSON Lines log of flat objects: the reader for JSON lines that no
/// specific writer's keys claim.
pub struct JsonLines;

impl LogFormat for JsonLines {
    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn summary(&self) -> &'static str {
        "any JSON Lines log of flat objects (step, loss, epoch, lr, val_loss in the usual spellings)"
    }

    fn recognize(&self, probe: &Probe<'_>) -> Confidence {
        // A one-line trainer_state.json is a whole object too: it is not a log of lines.
        let state = probe
            .lines
            .first()
            .is_some_and(|l| l.contains("\"log_history\""));
        // Most lines decide, so a cut or garbled first line is this reader's error to report.
        match (probe.first_line_is_object || probe.mostly_json) && !state {
            true => Confidence::Shape,
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

/// Parses a training log in JSON Lines.
pub fn parse(name: &Path, bytes: &[u8], opts: &ImportOptions) -> Result<Imported, InputError> {
    let text = utf8(name, bytes)?;
    let mut builder = TraceBuilder::new(trace_name(name));
    builder.reserve_lines(bytes);
    let mut keys_seen = BTreeSet::new();
    let mut summaries = 0u64;
    let mut seen_override = Overrides::default();
    for item in numbered(name, text) {
        let (line_no, line) = item?;
        let object = parse_object(name, line_no, line)?;
        // Bounded, since it only feeds an error message.
        if keys_seen.len() < 64 {
            keys_seen.extend(object.keys().cloned());
        }
        if has_key(&object, "train_runtime") {
            // A Hugging Face-style end-of-training summary, not a step.
            summaries += 1;
            continue;
        }
        let line = Line {
            name,
            line: line_no,
            object: &object,
            keys: object.keys().map(String::as_str).collect(),
        };
        seen_override.note(&line, opts);
        builder.push(line.row(opts)?);
    }
    seen_override.check(name, opts)?;
    if builder.steps_len() == 0 {
        let keys: Vec<_> = keys_seen.into_iter().collect();
        return Err(InputError::new(
            name,
            format!(
                "no line has a training loss; keys seen: {} (name it with --loss-col)",
                listed(&keys)
            ),
        )
        .field("loss"));
    }
    let mut warnings = Vec::new();
    if summaries > 0 {
        warnings.push(format!("{summaries} end-of-training summary lines skipped"));
    }
    let trace = builder.finish(&mut warnings);
    Ok(Imported {
        sampling: Sampling::unknown(&trace.steps),
        trace,
        format: Format::Jsonl,
        warnings,
    })
}

pub(crate) fn utf8<'a>(name: &Path, bytes: &'a [u8]) -> Result<&'a str, InputError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let line = valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        InputError::new(name, "not valid UTF-8").at_line(line)
    })
}

pub(crate) fn parse_object(
    name: &Path,
    line: u64,
    text: &str,
) -> Result<Map<String, Value>, InputError> {
    match serde_json::from_str::<Value>(&quote_non_finite(text)) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(InputError::new(name, "expected a JSON object on each line").at_line(line)),
        Err(e) => Err(InputError::new(name, json_message(&e)).at_line(line)),
    }
}

/// serde_json's message without its own "at line 1 column N", which would
/// contradict the file line in front of it.
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let bare = full.strip_suffix(&suffix).unwrap_or(&full);
    format!("bad JSON at column {}: {bare}", e.column())
}

fn has_key(object: &Map<String, Value>, key: &str) -> bool {
    object.keys().any(|k| k.eq_ignore_ascii_case(key))
}

/// Whether each `--*-col` override was found on some line, to catch typos.
#[derive(Default)]
struct Overrides {
    step: bool,
    loss: bool,
    epoch: bool,
    lr: bool,
}

impl Overrides {
    fn note(&mut self, line: &Line<'_>, opts: &ImportOptions) {
        let found = |role, given: &Option<String>| {
            given.is_some() && fields::find(&line.keys, role, given.as_deref()).is_some()
        };
        self.step |= found(Role::Step, &opts.step_col);
        self.loss |= found(Role::Loss, &opts.loss_col);
        self.epoch |= found(Role::Epoch, &opts.epoch_col);
        self.lr |= found(Role::Lr, &opts.lr_col);
    }

    fn check(&self, name: &Path, opts: &ImportOptions) -> Result<(), InputError> {
        let given = [
            (&opts.step_col, self.step, "--step-col"),
            (&opts.loss_col, self.loss, "--loss-col"),
            (&opts.epoch_col, self.epoch, "--epoch-col"),
            (&opts.lr_col, self.lr, "--lr-col"),
        ];
        for (col, seen, flag) in given {
            if let (Some(col), false) = (col, seen) {
                return Err(
                    InputError::new(name, format!("no line has this key (from {flag})"))
                        .field(col.clone()),
                );
            }
        }
        Ok(())
    }
}

/// One parsed line, with errors that name the line and key.
struct Line<'a> {
    name: &'a Path,
    line: u64,
    object: &'a Map<String, Value>,
    keys: Vec<&'a str>,
}

impl Line<'_> {
    fn row(&self, opts: &ImportOptions) -> Result<Row, InputError> {
        let step_key = self.key(Role::Step, &opts.step_col);
        let epoch_key = self.key(Role::Epoch, &opts.epoch_col);
        Ok(Row {
            step: self.value(step_key, json_u64, "a step number")?,
            epoch: self.value(epoch_key, json_epoch, "an epoch number")?,
            batch: self.value(self.key(Role::Batch, &None), json_u64, "a batch index")?,
            loss: self.float(self.key(Role::Loss, &opts.loss_col))?,
            lr: self.float(self.key(Role::Lr, &opts.lr_col))?,
            batch_size: self.value(self.key(Role::BatchSize, &None), json_u64, "a batch size")?,
            val_loss: self.float(self.key(Role::ValLoss, &None))?,
            val_accuracy: self.float(self.key(Role::ValAccuracy, &None))?,
            train_loss_eval: self.float(self.key(Role::TrainLossEval, &None))?,
        })
    }

    fn key(&self, role: Role, given: &Option<String>) -> Option<&str> {
        fields::find(&self.keys, role, given.as_deref()).and_then(|i| self.keys.get(i).copied())
    }

    fn value<T>(
        &self,
        key: Option<&str>,
        convert: fn(&Value) -> Option<T>,
        what: &str,
    ) -> Result<Option<T>, InputError> {
        let Some(key) = key else { return Ok(None) };
        let value = match self.object.get(key) {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v,
        };
        convert(value).map(Some).ok_or_else(|| {
            InputError::new(
                self.name,
                format!("not {what}: {}", clip(&value.to_string())),
            )
            .at_line(self.line)
            .field(key)
        })
    }

    fn float(&self, key: Option<&str>) -> Result<Option<f64>, InputError> {
        self.value(key, as_f64, "a number")
    }
}

pub(crate) fn json_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| integral_f64(n.as_f64()?)),
        Value::String(s) => parse_u64(s),
        _ => None,
    }
}

pub(crate) fn json_epoch(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| floor_f64(n.as_f64()?)),
        Value::String(s) => parse_epoch(s),
        _ => None,
    }
}
