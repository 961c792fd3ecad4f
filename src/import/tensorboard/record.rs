//! TFRecord framing: `u64 length`, `masked crc32c(length)`, `data`, `masked crc32c(data)`.
//!
//! Records are borrowed from the file's bytes, never allocated from a length
//! the file states, so a corrupt length (2^60) stops the read instead of the process.

/// Why reading stopped before the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The file ends inside a record: still being written, or cut short.
    Truncated { offset: usize },
    /// The length's checksum does not match: corrupt, or not an event file.
    BadLengthCrc { offset: usize },
    /// The data's checksum does not match.
    BadDataCrc { offset: usize },
}

impl Stop {
    pub(crate) fn offset(self) -> usize {
        match self {
            Stop::Truncated { offset }
            | Stop::BadLengthCrc { offset }
            | Stop::BadDataCrc { offset } => offset,
        }
    }

    pub(crate) fn describe(self) -> String {
        match self {
            Stop::Truncated { offset } => format!("truncated record at byte {offset}"),
            Stop::BadLengthCrc { offset } => {
                format!("bad length checksum in the record at byte {offset}")
            }
            Stop::BadDataCrc { offset } => {
                format!("bad data checksum in the record at byte {offset}")
            }
        }
    }
}

/// The records of a file, in order: `Ok((offset, data))`, then at most one `Err(Stop)`.
pub(crate) struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    stopped: bool,
}

impl<'a> Records<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Records {
            bytes,
            pos: 0,
            stopped: false,
        }
    }

    fn next_record(&mut self) -> Result<Option<(usize, &'a [u8])>, Stop> {
        let offset = self.pos;
        let rest = self.bytes.get(offset..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(None);
        }
        let truncated = Stop::Truncated { offset };
        let (len_bytes, rest) = rest.split_first_chunk::<8>().ok_or(truncated)?;
        let (len_crc, rest) = rest.split_first_chunk::<4>().ok_or(truncated)?;
        if masked_crc32c(len_bytes) != u32::from_le_bytes(*len_crc) {
            return Err(Stop::BadLengthCrc { offset });
        }
        let len = u64::from_le_bytes(*len_bytes);
        // Compared as u64 so a huge length cannot wrap on any platform.
        if len.saturating_add(4) > rest.len() as u64 {
            return Err(truncated);
        }
        let len = len as usize;
        let (data, rest) = rest.split_at(len);
        let (data_crc, _) = rest.split_first_chunk::<4>().ok_or(truncated)?;
        if masked_crc32c(data) != u32::from_le_bytes(*data_crc) {
            return Err(Stop::BadDataCrc { offset });
        }
        self.pos = offset + 8 + 4 + len + 4;
        Ok(Some((offset, data)))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(usize, &'a [u8]), Stop>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.stopped {
            return None;
        }
        match self.next_record() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => None,
            Err(stop) => {
                self.stopped = true;
                Some(Err(stop))
            }
        }
    }
}

/// TensorFlow's masked CRC: stored checksums are rotated and offset so that a
/// checksum of data that itself holds checksums stays well distributed.
pub(crate) fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// Frames `data` as one record; for tests and fuzz seeds.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_framed_records() {
        let mut file = frame(b"first");
        file.extend(frame(b""));
        file.extend(frame(b"third"));
        let got: Vec<_> = Records::new(&file).collect();
        assert_eq!(
            got,
            vec![
                Ok((0, &b"first"[..])),
                Ok((21, &b""[..])),
                Ok((37, &b"third"[..]))
            ]
        );
    }

    #[test]
    fn huge_length_is_a_truncation_not_an_allocation() {
        let len = (1u64 << 60).to_le_bytes();
        let mut file = len.to_vec();
        file.extend(masked_crc32c(&len).to_le_bytes());
        file.extend(b"tiny");
        let got: Vec<_> = Records::new(&file).collect();
        assert_eq!(got, vec![Err(Stop::Truncated { offset: 0 })]);
    }

    #[test]
    fn corrupt_data_stops_at_its_record() {
        let mut file = frame(b"good");
        let mut bad = frame(b"flipped");
        bad[14] ^= 1;
        file.extend(bad);
        let got: Vec<_> = Records::new(&file).collect();
        assert_eq!(
            got,
            vec![Ok((0, &b"good"[..])), Err(Stop::BadDataCrc { offset: 20 })]
        );
    }
}
