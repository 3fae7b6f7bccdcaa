//! The durable operation log: an append-only file of checksummed records, written by one
//! thread that batches concurrent requests into one `write` and one `fdatasync`.
//!
//! Why a log of our own rather than an embedded database: the service needs exactly one
//! durable structure, "the accepted operations in acceptance order", and a replayable log is
//! that structure itself. Appending is one sequential write per batch, recovery is "read
//! until the first torn record", and it costs no dependency. At each start the recovered state
//! is snapshotted and the log emptied (see `snapshot.rs`), so the log holds what was accepted
//! since the last start.
//!
//! Record layout: `len: u32 LE | crc32(payload): u32 LE | payload`, where the payload is a
//! JSON header line (`seq`, `op`, `store`, `profile`, `createdAt`), a `\n`, and the request
//! body exactly as it was validated (empty for a delete).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use profile_traits::{Patch, ProfileId};
use serde::{Deserialize, Serialize};

use crate::state::{Op, OpKind};

/// The log file's name inside the data directory.
const LOG_FILE: &str = "operations.log";

/// The most requests one group commit writes and syncs together.
const MAX_BATCH: usize = 4096;

/// The kind of an operation, as written in a record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OpName {
    Create,
    Patch,
    Delete,
}

/// The JSON header line of a record.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    seq: u64,
    op: OpName,
    store: String,
    profile: String,
    #[serde(rename = "createdAt", default, skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
}

/// An accepted, validated request waiting to be made durable.
pub struct Submission {
    /// The store the request was addressed to.
    pub store: String,
    /// The operation, already parsed and validated.
    pub op: Op,
    /// The request body as received (the wire form of the create or patch), logged verbatim.
    pub body: Vec<u8>,
    /// Told the sequence number once the record is on disk.
    pub durable: tokio::sync::oneshot::Sender<u64>,
}

/// What [`open`] found on disk.
pub struct Recovered {
    /// The operations of every complete record, in log order.
    pub ops: Vec<Op>,
    /// The log, positioned at its end.
    pub file: File,
    /// How many bytes of a torn last record were cut off.
    pub truncated_bytes: u64,
}

/// Opens (creating if needed) the log in `dir`, reads every complete record, and truncates a
/// torn tail left by a crash in the middle of a write.
///
/// # Errors
///
/// When the directory or file cannot be created, read or truncated, or when a record whose
/// checksum is right cannot be decoded (a log from an incompatible version: refusing to start
/// is safer than dropping accepted operations).
pub fn open(dir: &Path) -> io::Result<Recovered> {
    fs::create_dir_all(dir)?;
    let path: PathBuf = dir.join(LOG_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)?;
    // The file's directory entry must be durable too, or a fresh log could vanish on a crash.
    File::open(dir)?.sync_all()?;

    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let mut ops = Vec::new();
    let mut offset = 0;
    while let Some((payload, end)) = next_record(&bytes, offset) {
        let op = decode(payload).map_err(|reason| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: record at byte {offset}: {reason}", path.display()),
            )
        })?;
        ops.push(op);
        offset = end;
    }
    let truncated_bytes = (bytes.len() - offset) as u64;
    if truncated_bytes > 0 {
        file.set_len(offset as u64)?;
        file.sync_all()?;
    }
    file.seek(SeekFrom::End(0))?;
    Ok(Recovered {
        ops,
        file,
        truncated_bytes,
    })
}

/// The payload of the record at `offset` and the offset after it, if a whole record with the
/// right checksum is there.
fn next_record(bytes: &[u8], offset: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(offset..offset + 8)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    let start = offset + 8;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (crc32(payload) == crc).then_some((payload, start + len))
}

/// The complete, intact records at the start of `bytes`, in order.
pub fn records(bytes: &[u8]) -> Records<'_> {
    Records { bytes, offset: 0 }
}

/// An iterator over the payloads of the intact records of a byte string.
pub struct Records<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Records<'_> {
    /// The offset just after the last record returned.
    pub fn end(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (payload, end) = next_record(self.bytes, self.offset)?;
        self.offset = end;
        Some(payload)
    }
}

/// Appends `payload` to `out` as one record: length, checksum, payload.
pub fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends the record of operation `op` (store `store`, request body `body`) to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, store: &str, op: &Op, body: &[u8]) {
    let (name, created_at, body) = match &op.kind {
        OpKind::Create { created_at, .. } => (OpName::Create, Some(created_at.clone()), body),
        OpKind::Patch(_) => (OpName::Patch, None, body),
        OpKind::Delete => (OpName::Delete, None, &[][..]),
    };
    let header = Header {
        seq: op.seq,
        op: name,
        store: store.to_owned(),
        profile: op.profile.to_string(),
        created_at,
    };
    let mut payload = serde_json::to_vec(&header).expect("a header always serializes");
    payload.push(b'\n');
    payload.extend_from_slice(body);
    frame(out, &payload);
}

/// The operation a record's payload holds.
fn decode(payload: &[u8]) -> Result<Op, String> {
    let newline = payload
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header: Header =
        serde_json::from_slice(&payload[..newline]).map_err(|e| format!("header: {e}"))?;
    let profile: ProfileId = header.profile.parse().map_err(|e| format!("{e}"))?;
    let body = &payload[newline + 1..];
    let patch = || Patch::from_slice(body).map_err(|e| format!("body: {e}"));
    let kind = match header.op {
        OpName::Create => OpKind::Create {
            created_at: header.created_at.ok_or("create without `createdAt`")?,
            traits: patch()?,
        },
        OpName::Patch => OpKind::Patch(patch()?),
        OpName::Delete => OpKind::Delete,
    };
    Ok(Op {
        seq: header.seq,
        profile,
        kind,
    })
}

/// Makes submissions durable in arrival order, then hands them to the applier and answers
/// them: one `write` and one `fdatasync` per batch of whatever arrived meanwhile (group
/// commit). With `file` `None` (memory mode) nothing is written.
///
/// A failed write or sync aborts the process: after a failed `fsync` the kernel may have
/// dropped the dirty pages, so the only safe state is the one a restart reads back.
pub fn run_writer(
    submissions: mpsc::Receiver<Submission>,
    mut file: Option<File>,
    mut next_seq: u64,
    applier: mpsc::Sender<Vec<Op>>,
) {
    let mut buffer = Vec::new();
    while let Ok(first) = submissions.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match submissions.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        buffer.clear();
        for submission in &mut batch {
            submission.op.seq = next_seq;
            next_seq += 1;
            encode(
                &mut buffer,
                &submission.store,
                &submission.op,
                &submission.body,
            );
        }
        if let Some(file) = &mut file
            && let Err(error) = file.write_all(&buffer).and_then(|()| file.sync_data())
        {
            eprintln!("profile-service: cannot make the log durable: {error}; aborting");
            std::process::abort();
        }
        let mut ops = Vec::with_capacity(batch.len());
        let mut answers = Vec::with_capacity(batch.len());
        for submission in batch {
            answers.push((submission.durable, submission.op.seq));
            ops.push(submission.op);
        }
        if applier.send(ops).is_err() {
            return;
        }
        for (durable, seq) in answers {
            // The client may have gone away; the operation is accepted all the same.
            let _ = durable.send(seq);
        }
    }
}

/// The CRC-32 (IEEE 802.3) of `bytes`.
fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    !bytes.iter().fold(!0u32, |crc, &b| {
        TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_dropped() {
        let profile = ProfileId::from_bits(7);
        let body = br#"{"traits":{"Contact":{"email":"a@b.c"}}}"#;
        let op = Op {
            seq: 3,
            profile: profile.clone(),
            kind: OpKind::Patch(Patch::from_slice(body).unwrap()),
        };
        let mut bytes = Vec::new();
        encode(
            &mut bytes,
            "mem_store_00000000000000000000000000",
            &op,
            body,
        );
        let whole = bytes.len();
        let (payload, end) = next_record(&bytes, 0).unwrap();
        assert_eq!(end, whole);
        let decoded = decode(payload).unwrap();
        assert_eq!(decoded.seq, 3);
        assert_eq!(decoded.profile, profile);
        assert!(matches!(decoded.kind, OpKind::Patch(p) if p == Patch::from_slice(body).unwrap()));
        for cut in 0..whole {
            assert!(next_record(&bytes[..cut], 0).is_none(), "cut at {cut}");
        }
        bytes[whole - 1] ^= 1;
        assert!(next_record(&bytes, 0).is_none());
    }
}
