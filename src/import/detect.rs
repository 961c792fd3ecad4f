//! Tells the format of a log from its name and content, so `--input-format` is rarely needed.
//!
//! Every registered format looks at one [`Probe`] of the file and answers a
//! [`Confidence`]; the highest wins, ties going to the format registered first.

use std::borrow::Cow;
use std::path::Path;

use serde_json::{Map, Value};

use super::Format;
use super::registry::Confidence;
use crate::error::InputError;

/// How many non-empty lines of the head the JSON and CSV checks look at:
/// enough to get past a config line or an evaluation line at the top.
const PROBE_LINES: usize = 64;

/// How many non-empty lines of the head decide whether a file is JSON Lines: a cut
/// or garbled line among them (the first one, say) does not make it something else.
const JSON_VOTE_LINES: usize = 20;

/// How much of the file any check looks at: enough for the plain-text check
/// to get past the long banners and argument dumps Megatron and nanoGPT print
/// before the first step, and a bound on what detection costs on any input.
const HEAD_BYTES: usize = 1 << 20;

pub(crate) enum DirKind {
    Format(Format),
    /// dropscope's own cell folder (`trace.csv` + `val.csv`).
    Cell,
}

pub(crate) fn dir_format(dir: &Path) -> Result<DirKind, InputError> {
    if dir.join("trace.csv").is_file() {
        return Ok(DirKind::Cell);
    }
    best(
        Format::ALL
            .iter()
            .map(|&f| (f, f.spec().recognize_dir(dir))),
    )
    .map(DirKind::Format)
    .ok_or_else(|| {
        InputError::new(
            dir,
            "cannot tell what log this folder holds: expected train/epoch-N folders \
                 (burn-train), events.out.tfevents.* files (TensorBoard), trainer_state.json \
                 or trace.csv",
        )
    })
}

pub(crate) fn file_format(path: &Path, bytes: &[u8]) -> Format {
    let probe = Probe::new(path, bytes);
    best(Format::ALL.iter().map(|&f| (f, f.spec().recognize(&probe))))
        // Nothing fits (an empty file, say): the CSV reader says what is wrong.
        .unwrap_or(Format::Csv)
}

/// The format with the highest confidence above `No`, the first registered on a tie.
fn best(answers: impl Iterator<Item = (Format, Confidence)>) -> Option<Format> {
    let mut winner: Option<(Format, Confidence)> = None;
    for (format, confidence) in answers {
        if confidence > winner.map_or(Confidence::No, |(_, c)| c) {
            winner = Some((format, confidence));
        }
    }
    winner.map(|(f, _)| f)
}

/// The head of a file, cut up the ways the formats need to look at it.
pub struct Probe<'a> {
    pub path: &'a Path,
    pub bytes: &'a [u8],
    /// The file name in lower case, for writers that always use the same one.
    pub file_name: String,
    /// The first non-empty lines, trimmed (BOM removed, invalid UTF-8 replaced).
    pub lines: Vec<Cow<'a, str>>,
    /// Those of the first lines that are JSON objects, in order.
    pub objects: Vec<Map<String, Value>>,
    /// Whether the first non-empty line is one whole JSON object (a JSON Lines file).
    pub first_line_is_object: bool,
    /// Whether most of the first 20 non-empty lines are JSON objects or arrays: a
    /// JSON Lines file, even when its first line is cut or garbled.
    pub mostly_json: bool,
    /// The CSV header and first rows, when the file does not start with `{`.
    pub table: Option<CsvHead>,
}

/// A CSV file's header and first data rows, cells trimmed.
pub struct CsvHead {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl CsvHead {
    /// The position of a column, case-insensitive.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
    }

    pub fn has(&self, name: &str) -> bool {
        self.column(name).is_some()
    }
}

impl<'a> Probe<'a> {
    pub fn new(path: &'a Path, bytes: &'a [u8]) -> Probe<'a> {
        let head = bytes.get(..HEAD_BYTES).unwrap_or(bytes);
        let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
        let lines: Vec<Cow<'a, str>> = text
            .split(|&b| b == b'\n')
            .map(<[u8]>::trim_ascii)
            .filter(|l| !l.is_empty())
            .take(PROBE_LINES)
            .map(String::from_utf8_lossy)
            .collect();
        let values: Vec<Option<Value>> = lines.iter().map(|l| json_line(l)).collect();
        let first_line_is_object = matches!(values.first(), Some(Some(Value::Object(_))));
        let voters = values.len().min(JSON_VOTE_LINES);
        let json = values.iter().take(voters).filter(|v| v.is_some()).count();
        let mostly_json = json * 2 > voters;
        let objects: Vec<_> = values
            .into_iter()
            .filter_map(|v| match v {
                Some(Value::Object(map)) => Some(map),
                _ => None,
            })
            .collect();
        let starts_with_brace = lines.first().is_some_and(|l| l.starts_with('{'));
        let table = (!starts_with_brace && !mostly_json)
            .then(|| csv_head(text))
            .flatten();
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        Probe {
            path,
            bytes,
            file_name,
            lines,
            objects,
            first_line_is_object,
            mostly_json,
            table,
        }
    }

    /// Whether the first non-empty line starts a JSON value.
    pub fn starts_with_brace(&self) -> bool {
        self.lines.first().is_some_and(|l| l.starts_with('{'))
    }

    /// Whether the first line is a JSON object that has every key in `keys`.
    pub fn first_object_has(&self, keys: &[&str]) -> bool {
        self.first_line_is_object
            && self
                .objects
                .first()
                .is_some_and(|o| keys.iter().all(|k| o.contains_key(*k)))
    }

    /// Whether some JSON line of the head has every key in `keys`.
    pub fn some_object_has(&self, keys: &[&str]) -> bool {
        self.objects
            .iter()
            .any(|o| keys.iter().all(|k| o.contains_key(*k)))
    }

    /// Whether some JSON line of the head has any key in `keys`.
    pub fn some_object_has_any(&self, keys: &[&str]) -> bool {
        self.objects
            .iter()
            .any(|o| keys.iter().any(|k| o.contains_key(*k)))
    }

    /// The first [`HEAD_BYTES`] of the file as text, for line-oriented checks.
    pub fn text_head(&self) -> Cow<'a, str> {
        let head = self.bytes.get(..HEAD_BYTES).unwrap_or(self.bytes);
        String::from_utf8_lossy(head)
    }

    /// Whether the file name ends with `suffix` (lower case).
    pub fn name_ends_with(&self, suffix: &str) -> bool {
        self.file_name.ends_with(suffix)
    }
}

/// A line that is one JSON object or array (the shapes of JSON Lines logs).
fn json_line(line: &str) -> Option<Value> {
    if !line.starts_with('{') && !line.starts_with('[') {
        return None;
    }
    match serde_json::from_str(&super::pyjson::quote_non_finite(line)) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
        _ => None,
    }
}

/// The header and first rows of a CSV head, or `None` when it does not read as CSV.
fn csv_head(text: &[u8]) -> Option<CsvHead> {
    // Only the head: cut after PROBE_LINES newlines so a huge file costs nothing.
    let end = text
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'\n')
        .nth(PROBE_LINES)
        .map_or(text.len(), |(i, _)| i);
    let head = text.get(..end).unwrap_or(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(super::csv::delimiter(head))
        .from_reader(head);
    let mut records = reader.records().map_while(Result::ok);
    let trimmed = |r: ::csv::StringRecord| r.iter().map(|c| c.trim().to_string()).collect();
    let header: Vec<String> = trimmed(records.next()?);
    let rows = records.map(trimmed).collect();
    Some(CsvHead { header, rows })
}
