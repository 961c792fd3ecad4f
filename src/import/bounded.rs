//! Reading a log from disk without trusting its size.
//!
//! A wrong path (`/dev/zero`, a FIFO, a disk image, a model checkpoint) must cost a
//! bounded read and one line of error, not all the memory of the machine. Every
//! importer that opens a file (a log, a TensorBoard event file in a run folder,
//! `trainer_state.json` in a checkpoint, a burn-train metric log) reads it here.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use super::lines::{MAX_LINE_BYTES, too_long};
use crate::error::InputError;

/// The largest file dropscope reads. The largest real logs are per-step CSVs: a
/// 10M-step run logged as `step,epoch,loss,lr` is about 400 MB. 1 GiB leaves room
/// for wider rows (W&B exports, JSON lines) while bounding what a wrong path costs.
pub const MAX_LOG_BYTES: u64 = 1 << 30;

/// How much is read at a time.
const CHUNK: usize = 1 << 16;

/// Whether a line longer than [`MAX_LINE_BYTES`] ends the read with an error, told
/// from what was read so far (the head is enough to tell the format). Text formats
/// say yes; binary files and JSON documents (one-line `trainer_state.json`) say no.
pub(crate) type LongLine<'a> = &'a mut dyn FnMut(&[u8]) -> bool;

/// Reads `path` whole, at most [`MAX_LOG_BYTES`]; an error naming the file beyond it.
pub(crate) fn read_log(
    path: &Path,
    long_line_ends_read: LongLine<'_>,
) -> Result<Vec<u8>, InputError> {
    let file = File::open(path).map_err(|e| InputError::io(path, &e))?;
    read_opened(path, file, long_line_ends_read)
}

/// [`read_log`] for a file already open.
pub(crate) fn read_opened(
    path: &Path,
    file: File,
    long_line_ends_read: LongLine<'_>,
) -> Result<Vec<u8>, InputError> {
    // A regular file says its size: refuse a huge one before reading it. Devices
    // and FIFOs say 0, and are cut off by the bounded read instead.
    if let Ok(meta) = file.metadata()
        && meta.is_file()
        && meta.len() > MAX_LOG_BYTES
    {
        return Err(too_large(path, MAX_LOG_BYTES));
    }
    read_limited(
        path,
        file,
        MAX_LOG_BYTES,
        MAX_LINE_BYTES,
        long_line_ends_read,
    )
}

/// Reads `reader` to its end: an error beyond `max_bytes`, and at the first line
/// longer than `max_line` when `long_line_ends_read` says so (asked once).
pub(crate) fn read_limited(
    name: &Path,
    reader: impl Read,
    max_bytes: u64,
    max_line: usize,
    long_line_ends_read: LongLine<'_>,
) -> Result<Vec<u8>, InputError> {
    let mut reader = reader.take(max_bytes.saturating_add(1));
    let mut chunk = vec![0u8; CHUNK];
    let mut buf = Vec::new();
    // Where the current line starts, and its 1-based number.
    let (mut line_start, mut line) = (0usize, 1u64);
    let mut watching_lines = true;
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(InputError::io(name, &e)),
        };
        let start = buf.len();
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if buf.len() as u64 > max_bytes {
            return Err(too_large(name, max_bytes));
        }
        if !watching_lines {
            continue;
        }
        let mut long = None;
        for (i, &b) in buf.iter().enumerate().skip(start) {
            if b == b'\n' {
                if i - line_start > max_line {
                    long = Some((line, i - line_start));
                    break;
                }
                line_start = i + 1;
                line += 1;
            }
        }
        let open_line = buf.len() - line_start;
        if long.is_none() && open_line > max_line {
            long = Some((line, open_line));
        }
        if let Some((at, bytes)) = long {
            if long_line_ends_read(&buf) {
                return Err(too_long(name, at, bytes));
            }
            watching_lines = false;
        }
    }
    Ok(buf)
}

fn too_large(name: &Path, max_bytes: u64) -> InputError {
    InputError::new(
        name,
        format!(
            "larger than {max_bytes} bytes, the most dropscope reads (a 10M-step CSV is about \
             400 MB): is this a training log?"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn always(_: &[u8]) -> bool {
        true
    }

    fn never(_: &[u8]) -> bool {
        false
    }

    #[test]
    fn a_read_past_the_maximum_is_one_line_naming_the_file_and_the_size() {
        let endless = std::io::repeat(b'x').take(10_000);
        let err =
            read_limited(Path::new("big.csv"), endless, 1000, 1 << 20, &mut always).unwrap_err();
        assert_eq!(err.line, None);
        assert!(
            err.to_string()
                .starts_with("big.csv: larger than 1000 bytes"),
            "{err}"
        );
        let fits = read_limited(
            Path::new("ok.csv"),
            &b"step,loss\n"[..],
            10,
            100,
            &mut always,
        );
        assert_eq!(fits.unwrap(), b"step,loss\n");
    }

    #[test]
    fn an_endless_line_stops_the_read_at_the_line_cap_not_at_the_maximum() {
        let mut asked = 0;
        let mut text = |head: &[u8]| {
            asked += 1;
            assert!(
                head.len() < 3 * CHUNK,
                "asked early, after {} bytes",
                head.len()
            );
            true
        };
        // Endless: only the line cap can end this read.
        let endless = std::io::repeat(0);
        let err =
            read_limited(Path::new("zero"), endless, u64::MAX - 1, 1000, &mut text).unwrap_err();
        assert_eq!((err.line, asked), (Some(1), 1));
        assert!(err.message.contains("line longer than"), "{}", err.message);
    }

    #[test]
    fn a_long_line_after_short_ones_is_found_at_its_number() {
        let mut input = b"a\nb\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 5000));
        input.extend_from_slice(b"\nc\n");
        let err = read_limited(Path::new("x"), &input[..], 1 << 20, 1000, &mut always).unwrap_err();
        assert_eq!(err.line, Some(3));
        // A binary format reads on past long lines.
        let got = read_limited(Path::new("x"), &input[..], 1 << 20, 1000, &mut never).unwrap();
        assert_eq!(got.len(), input.len());
    }

    #[cfg(unix)]
    #[test]
    fn dev_zero_fails_after_one_line_cap_instead_of_filling_memory() {
        let path = Path::new("/dev/zero");
        if !path.exists() {
            return;
        }
        let err = super::super::read_trace(path, &super::super::ImportOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/dev/zero:1: line longer than 1 MiB"),
            "{err}"
        );
    }
}
