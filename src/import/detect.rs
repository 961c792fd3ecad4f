//! Tells the format of a log from its content, so `--format` is rarely needed.

use std::path::Path;

use super::{Format, burn_train, tensorboard};
use crate::error::InputError;

pub(crate) enum DirKind {
    Format(Format),
    /// dropscope's own cell folder (`trace.csv` + `val.csv`).
    Cell,
}

pub(crate) fn dir_format(dir: &Path) -> Result<DirKind, InputError> {
    if dir.join("trace.csv").is_file() {
        Ok(DirKind::Cell)
    } else if burn_train::looks_like(dir) {
        Ok(DirKind::Format(Format::BurnTrain))
    } else if dir.join("trainer_state.json").is_file() {
        Ok(DirKind::Format(Format::HfTrainer))
    } else if tensorboard::has_event_files(dir) {
        Ok(DirKind::Format(Format::TensorBoard))
    } else {
        Err(InputError::new(
            dir,
            "cannot tell what log this folder holds: expected train/epoch-N folders (burn-train), \
             events.out.tfevents.* files (TensorBoard), trainer_state.json or trace.csv",
        ))
    }
}

pub(crate) fn file_format(path: &Path, bytes: &[u8]) -> Format {
    if tensorboard::is_event_file(path) || tensorboard::looks_like(bytes) {
        return Format::TensorBoard;
    }
    if path.file_name().is_some_and(|n| n == "trainer_state.json") {
        return Format::HfTrainer;
    }
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first_line = text
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if !first_line.starts_with(b"{") {
        return Format::Csv;
    }
    // A JSONL file's first line is a whole object; a pretty-printed JSON
    // document's first line is a lone `{`.
    let whole_object = std::str::from_utf8(first_line).is_ok_and(|l| {
        serde_json::from_str::<serde_json::Value>(&super::pyjson::quote_non_finite(l))
            .is_ok_and(|v| v.is_object())
    });
    let one_line_state =
        std::str::from_utf8(first_line).is_ok_and(|l| l.contains("\"log_history\""));
    if whole_object && !one_line_state {
        Format::Jsonl
    } else {
        Format::HfTrainer
    }
}
