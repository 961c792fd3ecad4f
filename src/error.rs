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
        // The message must stay on one line so a CI log shows it whole.
        write!(f, ": {}", self.message.replace('\n', " "))
    }
}

impl std::error::Error for InputError {}
