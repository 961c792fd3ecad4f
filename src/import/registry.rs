//! What every log format provides, and the macro that turns the one list in
//! `mod.rs` into the [`Format`](super::Format) enum, its names and its dispatch.
//!
//! A format is a unit struct implementing [`LogFormat`] in its own file.
//! Registering it is one line in the `formats!` call of `mod.rs`: detection,
//! `--input-format` parsing, the help text and the fuzz-target check all read
//! that list.

use std::path::Path;

use super::detect::Probe;
use super::{ImportOptions, Imported};
use crate::error::InputError;

/// How sure a format is that a file (or folder) is one of its own.
///
/// Detection asks every format and takes the highest answer; a tie goes to the
/// format registered first, so generic readers are listed before specific ones
/// only where they never answer above [`Confidence::Shape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    /// Not this format.
    No,
    /// The shape fits (text with a header, one JSON object per line): what the
    /// generic readers answer, so any specific match wins over them.
    Shape,
    /// The keys or columns that only this writer uses are there.
    Keys,
    /// Magic bytes or a file name no other writer uses.
    Certain,
}

/// A log format: its name, how to recognize it and how to read it.
pub trait LogFormat: Sync {
    /// The name on the command line (`--input-format NAME`), lower case.
    fn name(&self) -> &'static str;

    /// One line for the help text and docs/formats.md: which writer, which file.
    fn summary(&self) -> &'static str;

    /// How sure this format is that the file is its own, from its name and first lines.
    fn recognize(&self, probe: &Probe<'_>) -> Confidence;

    /// Reads a one-file log. `name` is used in messages and as the trace name.
    fn parse(
        &self,
        name: &Path,
        bytes: &[u8],
        opts: &ImportOptions,
    ) -> Result<Imported, InputError>;

    /// Whether the format is made of lines (CSV, JSON Lines, text). Such a file may not
    /// have a line over the cap (a longer one ends the read early, e.g. `/dev/zero`),
    /// and a last line cut mid-write (no final newline) is dropped with a warning when
    /// it does not parse. Binary files and JSON documents say no.
    fn line_oriented(&self) -> bool {
        true
    }

    /// How sure this format is that a folder holds its log.
    fn recognize_dir(&self, _dir: &Path) -> Confidence {
        Confidence::No
    }

    /// Reads a log that is a folder. Only formats whose logs can be folders override it.
    fn read_dir(&self, dir: &Path, _opts: &ImportOptions) -> Result<Imported, InputError> {
        Err(InputError::new(
            dir,
            format!("is a folder; --input-format {} needs a file", self.name()),
        ))
    }
}

/// Declares the format modules and builds [`Format`](super::Format) from one list of
/// `Variant => module::Struct` lines.
///
/// rustfmt does not follow modules declared inside a macro call, so `cargo fmt`
/// leaves the format files alone: format them with
/// `rustfmt --edition 2024 src/import/*.rs`.
macro_rules! formats {
    ($($variant:ident => $module:ident :: $spec:ident,)+) => {
        $(pub mod $module;)+

        /// The log formats dropscope reads, in registration order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Format {
            $($variant,)+
        }

        impl Format {
            /// Every format, in registration order (the order of the help text).
            pub const ALL: &'static [Format] = &[$(Format::$variant,)+];

            /// The format's reader and recognizer.
            pub(crate) fn spec(self) -> &'static dyn $crate::import::registry::LogFormat {
                match self {
                    $(Format::$variant => &$module::$spec,)+
                }
            }
        }
    };
}

pub(crate) use formats;
