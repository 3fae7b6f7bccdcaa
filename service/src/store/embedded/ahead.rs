//! The log file as its writer fills it: space is written ahead as zeros, a chunk at a time,
//! and batches of records are written over those zeros in place.
//!
//! Why: on the development machine's ext4, an `fdatasync` after an append also writes the
//! inode (the file grew) and costs about twice the CPU of one after an overwrite of space
//! already written. Blocks reserved with `fallocate` would not do: they are "unwritten"
//! extents, and the first write to each changes the extent tree, metadata again. The zeros
//! after the last record read as the end of the log (a record's length is never 0, see
//! `record.rs`).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The most bytes written ahead at once; see [`Ahead::new`].
const MAX_CHUNK: u64 = 4 << 20;

/// The least bytes written ahead at once (a page).
const MIN_CHUNK: u64 = 4096;

/// The zeros written ahead, a piece at a time (so no chunk-sized buffer is allocated).
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// A log file whose records end at `end`, followed by zeros up to `written`.
pub(super) struct Ahead {
    file: File,
    end: u64,
    written: u64,
    chunk: u64,
}

impl Ahead {
    /// The log file `file`, holding records only (no zeros after them). Space is written
    /// ahead in chunks of an eighth of `compact_above` (between 4 KiB and 4 MiB), so that a
    /// log cut short at that size stays bounded by it.
    ///
    /// # Errors
    ///
    /// When the file's length cannot be read.
    pub(super) fn new(file: File, compact_above: u64) -> io::Result<Ahead> {
        let len = file.metadata()?.len();
        let chunk = (compact_above / 8)
            .clamp(MIN_CHUNK, MAX_CHUNK)
            .next_multiple_of(MIN_CHUNK);
        Ok(Ahead {
            file,
            end: len,
            written: len,
            chunk,
        })
    }

    /// Writes `bytes` after the last record and makes them durable (`fdatasync`), writing
    /// zeros ahead first when they do not fit in the space written ahead.
    ///
    /// # Errors
    ///
    /// When a write or the sync fails.
    pub(super) fn append_durable(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self.end + bytes.len() as u64;
        if end > self.written {
            let target = end.next_multiple_of(self.chunk);
            while self.written < target {
                let piece = usize::try_from(target - self.written)
                    .map_or(ZEROS.len(), |left| left.min(ZEROS.len()));
                self.file.write_all_at(&ZEROS[..piece], self.written)?;
                self.written += piece as u64;
            }
        }
        self.file.write_all_at(bytes, self.end)?;
        // The zeros written ahead, if any, are synced with the records: the next overwrite
        // finds them allocated.
        self.file.sync_data()?;
        self.end = end;
        Ok(())
    }

    /// Reads `out.len()` bytes of records at `offset`.
    ///
    /// # Errors
    ///
    /// When the read fails or the records end before.
    pub(super) fn read_exact_at(&self, out: &mut [u8], offset: u64) -> io::Result<()> {
        if offset + out.len() as u64 > self.end {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "past the log's last record",
            ));
        }
        self.file.read_exact_at(out, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_overwrite_zeros_written_ahead_a_chunk_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let mut ahead = Ahead::new(file, 64 * 1024).unwrap();
        ahead.append_durable(b"first").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
        ahead.append_durable(&[7; 8190]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16384);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..5], b"first");
        assert!(bytes[5..8195].iter().all(|&b| b == 7));
        assert!(bytes[8195..].iter().all(|&b| b == 0));
        let mut out = [0; 5];
        ahead.read_exact_at(&mut out, 0).unwrap();
        assert_eq!(&out, b"first");
        assert!(ahead.read_exact_at(&mut out, 8192).is_err());
    }
}
