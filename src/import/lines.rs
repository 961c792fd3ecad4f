//! Line-oriented logs (JSON Lines, plain text): lines with their numbers, a cap
//! on their length, and typed access to a JSON line's keys with errors that
//! name the file, the line and the key.

use std::path::Path;

use serde_json::{Map, Value};

use super::csv::clip;
use super::jsonl::{json_epoch, json_u64, parse_object, utf8};
use super::pyjson::as_f64;
use crate::error::InputError;

/// The longest line a log may have. Real log lines are under a few KiB (a
/// config dump on one line is the longest seen); a longer one means the file
/// is not a log, and reading on would only spend memory.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// The non-empty lines of `text`, trimmed, with their 1-based numbers; a line
/// longer than [`MAX_LINE_BYTES`] is an error at that line.
pub(crate) fn numbered<'a>(
    name: &'a Path,
    text: &'a str,
) -> impl Iterator<Item = Result<(u64, &'a str), InputError>> + 'a {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .enumerate()
        .map(|(i, line)| (i as u64 + 1, line))
        .filter(|(_, line)| !line.trim().is_empty())
        .map(move |(number, line)| {
            if line.len() > MAX_LINE_BYTES {
                Err(too_long(name, number, line.len()))
            } else {
                Ok((number, line.trim()))
            }
        })
}

pub(crate) fn too_long(name: &Path, line: u64, bytes: usize) -> InputError {
    InputError::new(
        name,
        format!(
            "line longer than {} MiB (at least {bytes} bytes), which no log writes: is this a log?",
            MAX_LINE_BYTES >> 20
        ),
    )
    .at_line(line)
}

/// A JSON line's object with its 1-based line number.
pub(crate) type NumberedObject = (u64, Map<String, Value>);

/// Every line of a JSON Lines file as an object, with its line number.
pub(crate) fn json_objects(name: &Path, bytes: &[u8]) -> Result<Vec<NumberedObject>, InputError> {
    let text = utf8(name, bytes)?;
    let mut out = Vec::new();
    for item in numbered(name, text) {
        let (line, text) = item?;
        out.push((line, parse_object(name, line, text)?));
    }
    Ok(out)
}

/// One JSON line, read key by key.
pub(crate) struct Obj<'a> {
    pub name: &'a Path,
    pub line: u64,
    pub map: &'a Map<String, Value>,
}

impl Obj<'_> {
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// The value of `key` converted, `None` when absent or null, an error when
    /// present but not `what`.
    pub(crate) fn get<T>(
        &self,
        key: &str,
        convert: fn(&Value) -> Option<T>,
        what: &str,
    ) -> Result<Option<T>, InputError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => convert(v)
                .map(Some)
                .ok_or_else(|| self.error(key, format!("not {what}: {}", clip(&v.to_string())))),
        }
    }

    pub(crate) fn float(&self, key: &str) -> Result<Option<f64>, InputError> {
        self.get(key, as_f64, "a number")
    }

    pub(crate) fn count(&self, key: &str) -> Result<Option<u64>, InputError> {
        self.get(key, json_u64, "a step number")
    }

    pub(crate) fn epoch(&self, key: &str) -> Result<Option<u64>, InputError> {
        self.get(key, json_epoch, "an epoch number")
    }

    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.map.get(key).and_then(Value::as_str)
    }

    /// The first of `keys` present, for writers whose key names changed over versions.
    pub(crate) fn first_of<'k>(&self, keys: &[&'k str]) -> Option<&'k str> {
        keys.iter().copied().find(|k| self.has(k))
    }

    pub(crate) fn error(&self, key: &str, message: String) -> InputError {
        InputError::new(self.name, message)
            .at_line(self.line)
            .field(key.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_over_the_cap_is_an_error_naming_its_line() {
        let long = format!("{{\"loss\": 1}}\n{}\n", "x".repeat(MAX_LINE_BYTES + 1));
        let err = json_objects(Path::new("big.jsonl"), long.as_bytes()).unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("1 MiB"), "{}", err.message);
    }

    #[test]
    fn blank_lines_are_skipped_and_numbers_kept() {
        let got: Vec<_> = numbered(Path::new("x"), "a\n\n  \nb\r\n")
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [(1, "a"), (4, "b")]);
    }
}
