//! Errors that point the user at what to fix: the file, the line and the field.

use std::fmt;
use std::path::{Path, PathBuf};

/// Bad input: a malformed scenario, a broken log, a missing file.
///
/// Displayed as one line, `FILE:LINE: FIELD: MESSAGE`, with the parts that are
/// unknown left out, so editors and terminals can jump to the place.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub field: Option<String>,
    pub message: String,
}

impl InputError {
    pub fn new(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        InputError {
            file: file.as_ref().to_path_buf(),
            line: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn at_line(mut self, line: u64) -> Self {
        self.line = Some(line);
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// An I/O failure on `file`, e.g. a missing file or a directory that cannot be created.
    pub fn io(file: impl AsRef<Path>, err: &std::io::Error) -> Self {
        InputError::new(file, err.to_string())
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        // The message must stay on one line so a CI log shows it whole, and short: a
        // message that quotes the input (a 200 KB JSON line) is cut.
        write!(f, ": {}", excerpt(&self.message, MAX_MESSAGE_CHARS))
    }
}

impl std::error::Error for InputError {}

/// The longest message an error prints: two lines of a wide terminal.
pub const MAX_MESSAGE_CHARS: usize = 400;

/// A piece of user input fit to quote in a message: on one line, control characters
/// shown as `?`, at most `max_chars` characters (cut with `…`). Input can be anything (a
/// binary file, a secret): quote as little of it as helps.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_reads_file_line_field_message_on_one_line() {
        let e = InputError::new("a.toml", "bad\nvalue")
            .at_line(3)
            .field("train.epochs");
        assert_eq!(e.to_string(), "a.toml:3: train.epochs: bad value");
    }

    #[test]
    fn a_huge_message_is_cut_and_control_characters_hidden() {
        let e = InputError::new("x.jsonl", "[".repeat(200_000));
        assert!(e.to_string().chars().count() < MAX_MESSAGE_CHARS + 20);
        assert_eq!(excerpt("root:x:0\u{1b}[2J", 40), "root:x:0?[2J");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
