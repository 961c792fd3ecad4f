//! Following a log while it is written: each poll returns only what is new.
//!
//! - Line formats (CSV, JSON Lines, text logs): a byte offset; only complete new lines are
//!   parsed, with the header line put back in front for CSV-shaped formats.
//! - TensorBoard: a byte offset per event file; only complete records are parsed, and a
//!   new event file in the folder is read from its start.
//! - Documents rewritten whole (`trainer_state.json`, folders of other formats, a
//!   TensorBoard folder with event files in several subfolders): re-read when their size
//!   or time changes; steps already returned are left out.
//!
//! A file that shrinks, is replaced by another (a new inode: rotation) or whose bytes
//! before the offset change is read again from its start, with a [`Update::Restart`]
//! saying why. Every importer's rules apply to what is read: the format is detected once,
//! from the file's first bytes, or forced by [`ImportOptions::format`].

use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::InputError;
use crate::import::{self, Format, ImportOptions, Imported};
use crate::trace::{StepRecord, Trace, ValRecord};

/// Most bytes read per file per step of a poll: memory stays bounded however far behind
/// the watcher starts. A line longer than this is no log line (the importers cap lines at
/// 1 MiB).
pub const CHUNK_BYTES: usize = 8 << 20;
/// Bytes before the offset compared at each poll: a file rewritten in place (truncated
/// and refilled past the offset between two polls) shows there.
const FINGERPRINT_BYTES: u64 = 64;
/// Polls a rewritten document may fail to parse, unchanged, before it is bad input: a
/// writer caught mid-write (`json.dump` into the file) is retried.
const DOCUMENT_RETRIES: usize = 3;
/// Folder depth searched for event files and for a document folder's signature.
const MAX_DEPTH: usize = 8;

/// What a poll found.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// The log was truncated, replaced or rewritten: everything after this is the new log
    /// from its start, and the caller starts over (a fresh watcher).
    Restart { reason: String },
    /// New training and validation points, in the log's order.
    Data(Trace),
}

pub use crate::import::Transform;

/// A log being followed. `poll` it at an interval.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    opts: ImportOptions,
    transform: Transform,
    mode: Option<Mode>,
    /// The last training step returned, and validation points returned from documents.
    last_step: Option<u64>,
    last_val_step: Option<u64>,
}

#[derive(Debug)]
enum Mode {
    Lines(LineFile),
    Records(Records),
    Document(Document),
}

impl Follower {
    pub fn new(path: &Path, opts: ImportOptions, transform: Transform) -> Self {
        Follower {
            path: path.to_path_buf(),
            opts,
            transform,
            mode: None,
            last_step: None,
            last_val_step: None,
        }
    }

    /// Whether the log exists yet and has told its kind.
    pub fn started(&self) -> bool {
        self.mode.is_some()
    }

    /// How the log is followed, once started: for a notice.
    pub fn describe(&self) -> Option<String> {
        let how = match self.mode.as_ref()? {
            Mode::Lines(f) => format!("{} lines, by byte offset", f.format),
            Mode::Records(_) => "TensorBoard event files, by byte offset".to_string(),
            Mode::Document(_) => "a document, re-read when it changes".to_string(),
        };
        Some(format!("following {} as {how}", self.path.display()))
    }

    /// Reads what was written since the last poll.
    pub fn poll(&mut self) -> Result<Vec<Update>, InputError> {
        if self.mode.is_none() {
            self.mode = decide(&self.path, &self.opts)?;
        }
        let raw = match &mut self.mode {
            None => return Ok(Vec::new()),
            Some(Mode::Lines(f)) => f.poll(&self.path, &self.opts)?,
            Some(Mode::Records(r)) => r.poll(&self.path, &self.opts)?,
            Some(Mode::Document(d)) => d.poll(&self.path, &self.opts)?,
        };
        let mut out = Vec::new();
        for u in raw {
            match u {
                Raw::Restart(reason) => {
                    self.last_step = None;
                    self.last_val_step = None;
                    out.push(Update::Restart { reason });
                }
                Raw::Data(mut t) => {
                    self.transform.apply(&mut t);
                    let fresh = self.fresh(t);
                    if !(fresh.steps.is_empty() && fresh.val.is_empty()) {
                        out.push(Update::Data(fresh));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The points after those already returned (a rewritten document repeats them).
    fn fresh(&mut self, mut t: Trace) -> Trace {
        let last = self.last_step;
        t.steps.retain(|s| last.is_none_or(|l| s.step > l));
        let last_val = self.last_val_step;
        t.val.retain(|v| last_val.is_none_or(|l| v.step > l));
        // The largest, not the last: a log that interleaves ranks goes back and forth.
        if let Some(s) = t.steps.iter().map(|s| s.step).max() {
            self.last_step = Some(s);
        }
        if let Some(v) = t.val.iter().map(|v| v.step).max() {
            self.last_val_step = Some(v.max(self.last_val_step.unwrap_or(0)));
        }
        t
    }
}

/// What a mode's poll found, before the transform and the de-duplication.
enum Raw {
    Restart(String),
    Data(Trace),
}

/// How to follow the log, once it exists and its kind can be told.
fn decide(path: &Path, opts: &ImportOptions) -> Result<Option<Mode>, InputError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if meta.is_dir() {
        let files = event_files(path);
        let folders: std::collections::BTreeSet<_> =
            files.iter().filter_map(|f| f.parent()).collect();
        let tensorboard = opts.format.is_none_or(|f| f == Format::TensorBoard);
        return Ok(Some(match folders.len() {
            1 if tensorboard => Mode::Records(Records::default()),
            0 if !has_files(path) => return Ok(None),
            _ => Mode::Document(Document::default()),
        }));
    }
    let head = read_at(path, 0, 64 << 10)?;
    let format = opts
        .format
        .unwrap_or_else(|| import::detect_format(path, &head));
    if format == Format::TensorBoard {
        return Ok((head.len() >= 12).then(|| Mode::Records(Records::default())));
    }
    if !format.spec().line_oriented() {
        return Ok(Some(Mode::Document(Document::default())));
    }
    // Before one whole line, the format was told from a fragment: wait for more.
    Ok(head
        .contains(&b'\n')
        .then(|| Mode::Lines(LineFile::new(format))))
}

fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// Up to `max` bytes of `path` from `offset`.
fn read_at(path: &Path, offset: u64, max: usize) -> Result<Vec<u8>, InputError> {
    let io = |e: std::io::Error| InputError::io(path, &e);
    let mut f = File::open(path).map_err(io)?;
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut buf = Vec::new();
    f.take(max as u64).read_to_end(&mut buf).map_err(io)?;
    Ok(buf)
}

/// A file's identity: a rotated log is a new file at the same path.
#[cfg(unix)]
fn file_id(m: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &Metadata) -> Option<(u64, u64)> {
    None
}

/// Where reading a growing file stands: its identity, the offset, and the bytes before it.
#[derive(Debug, Default, Clone)]
struct Cursor {
    id: Option<(u64, u64)>,
    offset: u64,
    fingerprint: Vec<u8>,
}

impl Cursor {
    /// Why the file must be read again from its start, if it must.
    fn changed(&self, path: &Path, meta: &Metadata) -> Result<Option<String>, InputError> {
        if self.offset == 0 {
            return Ok(None);
        }
        if self.id.is_some() && file_id(meta) != self.id {
            return Ok(Some(format!(
                "{} was replaced by a new file",
                path.display()
            )));
        }
        if meta.len() < self.offset {
            return Ok(Some(format!("{} was truncated", path.display())));
        }
        let from = self.offset - self.fingerprint.len() as u64;
        if read_at(path, from, self.fingerprint.len())? != self.fingerprint {
            return Ok(Some(format!("{} was rewritten", path.display())));
        }
        Ok(None)
    }

    /// Moves the offset past `consumed` bytes of `bytes` (read at the old offset).
    fn advance(&mut self, meta: &Metadata, bytes: &[u8], consumed: usize) {
        self.id = file_id(meta);
        let tail = &bytes[..consumed];
        let keep = FINGERPRINT_BYTES.min(self.offset + consumed as u64) as usize;
        let mut fp = if keep > tail.len() {
            let old = keep - tail.len();
            self.fingerprint[self.fingerprint.len().saturating_sub(old)..].to_vec()
        } else {
            Vec::new()
        };
        fp.extend_from_slice(&tail[tail.len().saturating_sub(keep)..]);
        self.fingerprint = fp;
        self.offset += consumed as u64;
    }
}

/// A line-oriented log followed by byte offset.
#[derive(Debug)]
struct LineFile {
    format: Format,
    cursor: Cursor,
    /// CSV-shaped formats: the header line, put in front of every chunk.
    header: Option<Vec<u8>>,
    /// Lines before the offset, for error messages.
    lines_before: u64,
    /// Training rows read so far, for logs whose steps are row numbers.
    rows: u64,
}

impl LineFile {
    fn new(format: Format) -> Self {
        LineFile {
            format,
            cursor: Cursor::default(),
            header: None,
            lines_before: 0,
            rows: 0,
        }
    }

    /// Formats whose first line names the columns of every other.
    fn has_header(&self) -> bool {
        matches!(
            self.format,
            Format::Csv | Format::Lightning | Format::Keras | Format::Wandb
        )
    }

    fn poll(&mut self, path: &Path, opts: &ImportOptions) -> Result<Vec<Raw>, InputError> {
        let mut out = Vec::new();
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(out);
        };
        if let Some(reason) = self.cursor.changed(path, &meta)? {
            *self = LineFile::new(self.format);
            out.push(Raw::Restart(reason));
        }
        while self.cursor.offset < meta.len() {
            let bytes = read_at(path, self.cursor.offset, CHUNK_BYTES)?;
            let Some(end) = bytes.iter().rposition(|&b| b == b'\n').map(|i| i + 1) else {
                if bytes.len() == CHUNK_BYTES {
                    let line = self.lines_before + 1;
                    return Err(InputError::new(path, "line longer than 8 MiB").at_line(line));
                }
                break;
            };
            let t = self.parse(path, &bytes[..end], opts)?;
            self.lines_before += bytes[..end].iter().filter(|&&b| b == b'\n').count() as u64;
            self.cursor.advance(&meta, &bytes, end);
            out.extend(t.map(Raw::Data));
        }
        Ok(out)
    }

    /// Parses complete lines read at the offset; None when they hold no training or
    /// validation row (a header alone, blank lines, rows the importer skips).
    fn parse(
        &mut self,
        path: &Path,
        lines: &[u8],
        opts: &ImportOptions,
    ) -> Result<Option<Trace>, InputError> {
        let mut lines = lines;
        if self.has_header() && self.header.is_none() {
            let first = lines
                .iter()
                .position(|&b| b == b'\n')
                .map_or(lines.len(), |i| i + 1);
            self.header = Some(lines[..first].to_vec());
            lines = &lines[first..];
        }
        if lines.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let header = self.header.as_deref().filter(|_| self.has_header());
        let buf = [header.unwrap_or_default(), lines].concat();
        match import::parse_bytes(self.format, path, &buf, opts) {
            Ok(imported) => Ok(Some(self.renumber(imported))),
            Err(e) => self.chunk_error(e, header.is_some()),
        }
    }

    /// An error with a line is the line's (renumbered to the file's); one without says
    /// the chunk holds no rows (only validation or skipped lines), which is no error.
    fn chunk_error(&self, mut e: InputError, header: bool) -> Result<Option<Trace>, InputError> {
        let Some(line) = e.line else {
            return Ok(None);
        };
        e.line = Some(match (header, line) {
            (true, 1) => 1,
            (true, l) => self.lines_before + l - 1,
            (false, l) => self.lines_before + l,
        });
        Err(e)
    }

    /// Steps that are row numbers count on from the rows read before this chunk.
    fn renumber(&mut self, imported: Imported) -> Trace {
        let mut t = imported.trace;
        let numbered = imported.warnings.iter().any(|w| w.contains("have no step"));
        if numbered {
            for s in &mut t.steps {
                s.step += self.rows;
            }
            for v in &mut t.val {
                v.step += self.rows;
            }
        }
        self.rows += t.steps.len() as u64;
        t
    }
}

/// TensorBoard event files followed by byte offset, each from its start when it appears.
#[derive(Debug, Default)]
struct Records {
    files: BTreeMap<PathBuf, Cursor>,
}

impl Records {
    fn poll(&mut self, path: &Path, opts: &ImportOptions) -> Result<Vec<Raw>, InputError> {
        let mut files = if path.is_dir() {
            event_files(path)
        } else {
            vec![path.to_path_buf()]
        };
        // Names start with a timestamp: a resumed run's new file sorts after the old one.
        files.sort();
        let mut out = Vec::new();
        for file in files {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let cursor = self.files.entry(file.clone()).or_default();
            if let Some(reason) = cursor.changed(&file, &meta)? {
                self.files.clear();
                out.push(Raw::Restart(reason));
                out.extend(self.poll(path, opts)?);
                return Ok(out);
            }
            let cursor = self.files.entry(file.clone()).or_default();
            while cursor.offset < meta.len() {
                let bytes = read_at(&file, cursor.offset, CHUNK_BYTES)?;
                let end = complete_records(&bytes);
                if end == 0 {
                    break;
                }
                out.extend(parse_records(&file, &bytes[..end], cursor.offset, opts)?);
                cursor.advance(&meta, &bytes, end);
            }
        }
        Ok(out)
    }
}

/// Bytes up to the end of the last complete TFRecord (length, its checksum, data, its
/// checksum); the checksums are the importer's to check.
fn complete_records(bytes: &[u8]) -> usize {
    let mut pos = 0usize;
    while let Some(len) = bytes.get(pos..pos + 8) {
        let mut b = [0u8; 8];
        b.copy_from_slice(len);
        let end = (pos as u64)
            .saturating_add(16)
            .saturating_add(u64::from_le_bytes(b));
        if end > bytes.len() as u64 {
            break;
        }
        pos = end as usize;
    }
    pos
}

/// Parses complete records read at `offset`. An error at a byte (a bad checksum) is bad
/// input, placed in the file; any other (no loss tag among these records) means they
/// hold no training point yet.
fn parse_records(
    file: &Path,
    bytes: &[u8],
    offset: u64,
    opts: &ImportOptions,
) -> Result<Option<Raw>, InputError> {
    match import::parse_bytes(Format::TensorBoard, file, bytes, opts) {
        Ok(imported) => Ok(Some(Raw::Data(imported.trace))),
        Err(e) if e.field.as_deref().is_some_and(|f| f.starts_with("byte ")) => {
            let at = e.field.as_deref().and_then(|f| f[5..].parse::<u64>().ok());
            Err(e.field(format!("byte {}", offset + at.unwrap_or(0))))
        }
        Err(_) => Ok(None),
    }
}

/// Event files under `dir`, at most `MAX_DEPTH` folders down.
fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, 0, &mut |p, _| {
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().contains("tfevents"))
        {
            out.push(p.to_path_buf());
        }
    });
    out
}

fn walk(dir: &Path, depth: usize, f: &mut dyn FnMut(&Path, &Metadata)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                walk(&e.path(), depth + 1, f);
            }
        } else {
            f(&e.path(), &meta);
        }
    }
}

/// A log re-read whole when it changes.
#[derive(Debug, Default)]
struct Document {
    seen: Option<Signature>,
    /// Polls that failed to parse it, and the signature they saw.
    failures: (usize, Option<Signature>),
    /// The last step of the last good read: a rewrite that ends earlier is a new run.
    last_step: Option<u64>,
}

/// Size and modification time of a file, or of every file in a folder.
#[derive(Debug, Clone, PartialEq)]
struct Signature {
    files: usize,
    bytes: u64,
    modified: Option<SystemTime>,
}

fn signature(path: &Path) -> Option<Signature> {
    let meta = std::fs::metadata(path).ok()?;
    let mut sig = Signature {
        files: 1,
        bytes: meta.len(),
        modified: meta.modified().ok(),
    };
    if meta.is_dir() {
        sig = Signature {
            files: 0,
            bytes: 0,
            modified: None,
        };
        walk(path, 0, &mut |_, m| {
            sig.files += 1;
            sig.bytes += m.len();
            sig.modified = sig.modified.max(m.modified().ok());
        });
    }
    Some(sig)
}

impl Document {
    fn poll(&mut self, path: &Path, opts: &ImportOptions) -> Result<Vec<Raw>, InputError> {
        let Some(sig) = signature(path) else {
            return Ok(Vec::new());
        };
        if self.seen.as_ref() == Some(&sig) {
            return Ok(Vec::new());
        }
        let imported = match import::read_trace(path, opts) {
            Ok(i) => i,
            Err(e) => {
                let same = self.failures.1.as_ref() == Some(&sig);
                self.failures = (if same { self.failures.0 + 1 } else { 1 }, Some(sig));
                return if self.failures.0 >= DOCUMENT_RETRIES {
                    Err(e)
                } else {
                    Ok(Vec::new())
                };
            }
        };
        self.failures = (0, None);
        self.seen = Some(sig);
        let mut out = Vec::new();
        let end = imported.trace.steps.last().map(|s| s.step);
        if let (Some(prev), Some(end)) = (self.last_step, end)
            && end < prev
        {
            out.push(Raw::Restart(format!(
                "{} was rewritten with earlier steps (a new run)",
                path.display()
            )));
        }
        self.last_step = end.or(self.last_step);
        out.push(Raw::Data(imported.trace));
        Ok(out)
    }
}

/// Training and validation points of `t` merged in step order: a validation point goes
/// after the training points up to its step. What the caller feeds a watcher.
pub fn in_order(t: &Trace) -> Vec<Point<'_>> {
    let mut out = Vec::with_capacity(t.steps.len() + t.val.len());
    let mut val = t.val.iter().peekable();
    for s in &t.steps {
        while let Some(v) = val.next_if(|v| v.step <= s.step) {
            out.push(Point::Val(v));
        }
        out.push(Point::Train(s));
    }
    out.extend(val.map(Point::Val));
    out
}

/// One point of a log, training or validation.
#[derive(Debug, Clone, Copy)]
pub enum Point<'a> {
    Train(&'a StepRecord),
    Val(&'a ValRecord),
}

/// A validation CSV (`--val`) followed beside the log: re-read when it changes, and only
/// the points after those already returned are returned.
#[derive(Debug)]
pub struct ValFollower {
    path: PathBuf,
    transform: Transform,
    seen: Option<Signature>,
    returned: usize,
}

impl ValFollower {
    pub fn new(path: &Path, transform: Transform) -> Self {
        ValFollower {
            path: path.to_path_buf(),
            transform,
            seen: None,
            returned: 0,
        }
    }

    /// New validation points (steps the file does not give are `import::UNKNOWN_STEP`).
    pub fn poll(&mut self) -> Result<Vec<ValRecord>, InputError> {
        let Some(sig) = signature(&self.path) else {
            return Ok(Vec::new());
        };
        if self.seen.as_ref() == Some(&sig) {
            return Ok(Vec::new());
        }
        let mut t = Trace::new("val");
        t.val = import::read_val_csv(&self.path)?;
        self.seen = Some(sig);
        let transform = Transform {
            steps_per_epoch: None,
            ..self.transform.clone()
        };
        transform.apply(&mut t);
        let fresh = t.val.split_off(self.returned.min(t.val.len()));
        self.returned += fresh.len();
        Ok(fresh)
    }
}
