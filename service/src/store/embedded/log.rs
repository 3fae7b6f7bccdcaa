//! The durable operation log: an append-only file of records (see `record.rs`), written by one
//! thread that batches concurrent requests into one `write` and one `fdatasync` (group
//! commit), over zeros written ahead (`ahead.rs`), and cut short while running once a
//! snapshot holds its beginning.
//!
//! A record's payload is a JSON header line (`seq`, `op`, `store`, `profile`, `createdAt`,
//! `time`: the stamp's instant, whose tiebreaker is `seq`; `eventTime` when that instant is the
//! request's `Event-Time`; `join`: the profiles joined into `profile` first; `more` when the
//! next record belongs to the same request), a `\n`, and the request body (or bulk item)
//! exactly as it was validated (empty for a delete).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use profile_traits::{Patch, ProfileId, Stamp, StoreId};
use serde::{Deserialize, Serialize};

use super::ahead::Ahead;
use super::record;
use crate::store::{Op, OpKind};

/// The log file's name inside the data directory.
const LOG_FILE: &str = "operations.log";

/// The most requests one group commit writes and syncs together.
const MAX_BATCH: usize = 4096;

/// When the last batch held at least [`COMMIT_SIBLINGS`] requests (writers are concurrent),
/// the writer waits up to this long for more before it writes the next batch, as
/// PostgreSQL's `commit_delay` does: a sync costs about 100 µs of CPU whatever the batch
/// size, so under load fewer and larger batches leave more CPU to the requests (batches of
/// about 17 grew to about 33 under 64 connections), for a latency of that much more; alone,
/// a writer does not wait. The wait ends early once every open connection has a write queued
/// (see [`more_may_come`]).
pub(super) const COMMIT_DELAY: Duration = Duration::from_micros(300);

/// See [`COMMIT_DELAY`].
const COMMIT_SIBLINGS: usize = 8;

/// The kind of an operation, as written in a record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OpName {
    Create,
    Patch,
    Delete,
}

/// The JSON header line of a record: read with owned strings (`S`, `T`: `String`), written
/// from borrowed ones (`&str`) and the stamp's text ([`StampText`]), with no allocation.
#[derive(Debug, Serialize, Deserialize)]
struct Header<S, T> {
    seq: u64,
    op: OpName,
    store: S,
    profile: S,
    #[serde(rename = "createdAt", default, skip_serializing_if = "Option::is_none")]
    created_at: Option<S>,
    /// The stamp's instant (absent in logs of older versions: then the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    time: Option<T>,
    #[serde(rename = "eventTime", default, skip_serializing_if = "is_false")]
    event_time: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    join: Vec<S>,
    #[serde(default, skip_serializing_if = "is_false")]
    more: bool,
}

/// A stamp's instant, written as its RFC 3339 text straight from `Display`.
struct StampText<'a>(&'a Stamp);

impl Serialize for StampText<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's `skip_serializing_if` passes a reference"
)]
fn is_false(value: &bool) -> bool {
    !*value
}

/// An accepted, validated request waiting to be made durable: its operations, each with the
/// wire form of its create or patch (logged verbatim), all written in one batch.
pub(super) struct Submission {
    /// The operations, stamped and in sequence.
    pub(super) ops: Vec<(Op, Bytes)>,
    /// Told once the records are on disk.
    pub(super) durable: tokio::sync::oneshot::Sender<()>,
}

/// What the log writer is sent.
pub(super) enum ToWriter {
    /// Make this durable.
    Submit(Submission),
    /// A snapshot now holds every operation up to this sequence number: drop them (`None`:
    /// the snapshot failed, keep everything and ask again later).
    Snapshotted(Option<u64>),
}

/// What [`open`] found on disk.
pub(super) struct Recovered {
    /// The operations of every complete record, in log order.
    pub(super) ops: Vec<Op>,
    /// The log, holding its whole requests' records only (what followed them was cut).
    pub(super) file: File,
    /// How many bytes of a torn last record were cut off (zeros written ahead not counted).
    pub(super) truncated_bytes: u64,
}

/// Opens (creating if needed) the log in `dir`, reads every complete record, and truncates a
/// torn tail left by a crash in the middle of a write.
///
/// # Errors
///
/// When the directory or file cannot be created, read or truncated; when a record whose
/// checksum is right cannot be decoded (a log from an incompatible version: refusing to start
/// is safer than dropping accepted operations); when a record was written for another store
/// than `store`.
pub(super) fn open(dir: &Path, store: &StoreId) -> io::Result<Recovered> {
    fs::create_dir_all(dir)?;
    let path: PathBuf = dir.join(LOG_FILE);
    // Not `append`: the writer writes over zeros written ahead, at offsets (`ahead.rs`).
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    // The file's directory entry must be durable too, or a fresh log could vanish on a crash.
    File::open(dir)?.sync_all()?;

    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let mut ops = Vec::new();
    let mut records = record::records(&bytes);
    let mut offset = 0;
    // Where the last whole request ends: a request's records are kept only all together.
    let mut whole = (0, 0);
    while let Some(payload) = records.next() {
        let op = decode(payload, store).map_err(|reason| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: record at byte {offset}: {reason}", path.display()),
            )
        })?;
        let more = op.more;
        ops.push(op);
        offset = records.end();
        if !more {
            whole = (offset, ops.len());
        }
    }
    let (offset, kept) = whole;
    ops.truncate(kept);
    // What follows the last whole request: a torn record, zeros written ahead, or both; the
    // zeros are not torn bytes. Both are cut: the writer starts from a file of records only.
    let after = &bytes[offset..];
    let truncated_bytes = after
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1) as u64;
    if !after.is_empty() {
        file.set_len(offset as u64)?;
        file.sync_all()?;
    }
    Ok(Recovered {
        ops,
        file,
        truncated_bytes,
    })
}

/// Appends the record of operation `op` (of store `store`, request body `body`) to `out`.
pub(super) fn encode(out: &mut Vec<u8>, store: &StoreId, op: &Op, body: &[u8]) {
    let (name, created_at, join, body) = match &op.kind {
        OpKind::Create { created_at, .. } => {
            (OpName::Create, Some(created_at.as_str()), Vec::new(), body)
        }
        OpKind::Patch { join, .. } => (
            OpName::Patch,
            None,
            join.iter().map(ProfileId::as_str).collect(),
            body,
        ),
        OpKind::Delete => (OpName::Delete, None, Vec::new(), &[][..]),
    };
    let header = Header {
        seq: op.seq,
        op: name,
        store: store.as_str(),
        profile: op.profile.as_str(),
        created_at,
        time: Some(StampText(&op.stamp)),
        event_time: op.event_time,
        join,
        more: op.more,
    };
    record::frame_with(out, |payload| {
        serde_json::to_writer(&mut *payload, &header).expect("a header always serializes");
        payload.push(b'\n');
        payload.extend_from_slice(body);
    });
}

/// The operation a record's payload holds, which must be one of store `store`.
fn decode(payload: &[u8], store: &StoreId) -> Result<Op, String> {
    let newline = payload
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let header: Header<String, String> =
        serde_json::from_slice(&payload[..newline]).map_err(|e| format!("header: {e}"))?;
    if header.store != store.as_str() {
        return Err(format!(
            "written for store `{}`, not `{store}`",
            header.store
        ));
    }
    let profile: ProfileId = header.profile.parse().map_err(|e| format!("{e}"))?;
    let body = &payload[newline + 1..];
    let patch = || Patch::from_slice(body).map_err(|e| format!("body: {e}"));
    let kind = match header.op {
        OpName::Create => OpKind::Create {
            created_at: header.created_at.ok_or("create without `createdAt`")?,
            traits: patch()?,
        },
        OpName::Patch => OpKind::Patch {
            patch: patch()?,
            join: header
                .join
                .iter()
                .map(|id| id.parse().map_err(|e| format!("join: {e}")))
                .collect::<Result<_, String>>()?,
        },
        OpName::Delete => OpKind::Delete,
    };
    let instant = match &header.time {
        Some(time) => time.parse::<Stamp>().map_err(|e| format!("time: {e}"))?,
        None => Stamp::new(0, 0).expect("the epoch is a stamp"),
    };
    let stamp = Stamp::new(instant.micros_since_epoch(), header.seq).map_err(|e| e.to_string())?;
    Ok(Op {
        seq: header.seq,
        stamp,
        event_time: header.event_time,
        more: header.more,
        profile,
        kind,
    })
}

/// The log file as the writer keeps it.
pub(super) struct LogFile {
    /// The data directory.
    pub(super) dir: PathBuf,
    /// The log, written ahead.
    pub(super) file: Ahead,
    /// Past this size, the writer asks for a snapshot so the log can be cut short.
    pub(super) compact_above: u64,
    /// Told when the log has grown past `compact_above`.
    pub(super) compactor: mpsc::SyncSender<()>,
}

/// How the writer gathers a batch under load.
pub(super) struct Gathering {
    /// The longest wait for more writes ([`COMMIT_DELAY`] in the service).
    pub(super) delay: Duration,
    /// The open HTTP connections, counted by the accept loop.
    pub(super) connections: Arc<AtomicUsize>,
}

/// Whether more writes may still join a batch of `queued` submissions while `connections`
/// HTTP connections are open: an HTTP/1 connection has at most one request in flight (hyper
/// answers a connection's requests one after the other), and a request is at most one
/// submission, so once every connection has one queued, no more can come and waiting would
/// only add latency.
fn more_may_come(queued: usize, connections: usize) -> bool {
    queued < connections
}

/// Where each batch written since the log was last cut starts: its first sequence number and
/// its byte offset.
struct Batches {
    starts: Vec<(u64, u64)>,
    len: u64,
}

/// Makes submissions durable in arrival order, then hands them to the worker and answers
/// them: one `write` and one `fdatasync` per batch of whatever arrived meanwhile (group
/// commit). With `log` `None` (memory mode) nothing is written. Under load (the last batch
/// held [`COMMIT_SIBLINGS`] requests or more), the writer gathers more for up to
/// `gathering.delay`, and no longer once every open connection has a write queued.
///
/// A failed write or sync aborts the process: after a failed `fsync` the kernel may have
/// dropped the dirty pages, so the only safe state is the one a restart reads back.
pub(super) fn run_writer(
    messages: mpsc::Receiver<ToWriter>,
    mut log: Option<LogFile>,
    store: StoreId,
    worker: mpsc::Sender<Vec<Op>>,
    gathering: &Gathering,
) {
    let mut buffer = Vec::new();
    let mut batches = Batches {
        starts: Vec::new(),
        len: 0,
    };
    let mut compaction_asked = false;
    let mut last_batch = 0;
    while let Ok(first) = messages.recv() {
        let mut batch = Vec::new();
        let mut snapshotted = None;
        let mut message = Some(first);
        let wait_until = (last_batch >= COMMIT_SIBLINGS && log.is_some())
            .then(|| Instant::now() + gathering.delay);
        loop {
            while let Some(next) = message.take() {
                match next {
                    ToWriter::Submit(submission) => batch.push(submission),
                    ToWriter::Snapshotted(seq) => snapshotted = Some(seq),
                }
                if batch.len() < MAX_BATCH {
                    message = messages.try_recv().ok();
                }
            }
            let Some(until) = wait_until else { break };
            let connections = gathering.connections.load(Ordering::Relaxed);
            if batch.len() >= MAX_BATCH || !more_may_come(batch.len(), connections) {
                break;
            }
            // Woken by the next submission; a disconnected queue ends the wait too (and the
            // loop, at the next `recv`).
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                break;
            };
            match messages.recv_timeout(left) {
                Ok(next) => message = Some(next),
                Err(_) => break,
            }
        }
        if let Some(snapshot) = snapshotted {
            if let (Some(seq), Some(log)) = (snapshot, &mut log)
                && let Err(error) = cut(log, &mut batches, seq)
            {
                eprintln!("profile-service: cannot cut the log short: {error}; aborting");
                std::process::abort();
            }
            compaction_asked = false;
        }
        last_batch = batch.len();
        if batch.is_empty() {
            continue;
        }
        buffer.clear();
        let first_seq = batch
            .iter()
            .find_map(|submission| submission.ops.first())
            .map_or(0, |(op, _)| op.seq);
        for submission in &batch {
            for (op, body) in &submission.ops {
                encode(&mut buffer, &store, op, body);
            }
        }
        if let Some(log) = &mut log {
            if let Err(error) = log.file.append_durable(&buffer) {
                eprintln!("profile-service: cannot make the log durable: {error}; aborting");
                std::process::abort();
            }
            batches.starts.push((first_seq, batches.len));
            batches.len += buffer.len() as u64;
            if batches.len > log.compact_above && !compaction_asked {
                // A full queue means a request is already waiting.
                compaction_asked = log.compactor.try_send(()).is_ok();
            }
        }
        let mut ops = Vec::with_capacity(batch.len());
        let mut answers = Vec::with_capacity(batch.len());
        for submission in batch {
            answers.push(submission.durable);
            ops.extend(submission.ops.into_iter().map(|(op, _)| op));
        }
        if worker.send(ops).is_err() {
            return;
        }
        for durable in answers {
            // The client may have gone away; the operation is accepted all the same.
            let _ = durable.send(());
        }
    }
}

/// Replaces the log with the records after sequence number `snapshot_seq`, which a snapshot
/// holds: they are copied to a new file, synced, renamed over the log, and the directory is
/// synced. A crash before the rename leaves the whole log, whose records up to
/// `snapshot_seq` recovery skips; after it, only the records the snapshot lacks.
fn cut(log: &mut LogFile, batches: &mut Batches, snapshot_seq: u64) -> io::Result<()> {
    // The batch holding `snapshot_seq + 1` and those after it; records up to `snapshot_seq`
    // that share its batch are kept and skipped at recovery.
    let keep_from = batches
        .starts
        .iter()
        .rposition(|&(first, _)| first <= snapshot_seq + 1)
        .unwrap_or(0);
    let offset = batches
        .starts
        .get(keep_from)
        .map_or(batches.len, |&(_, o)| o);
    let mut tail = vec![0; (batches.len - offset) as usize];
    log.file.read_exact_at(&mut tail, offset)?;
    let temporary = log.dir.join(format!("{LOG_FILE}.tmp"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)?;
    file.write_all(&tail)?;
    file.sync_all()?;
    fs::rename(&temporary, log.dir.join(LOG_FILE))?;
    File::open(&log.dir)?.sync_all()?;
    log.file = Ahead::new(file, log.compact_above)?;
    batches.starts = batches.starts[keep_from..]
        .iter()
        .map(|&(seq, start)| (seq, start - offset))
        .collect();
    batches.len -= offset;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StoreId {
        "mem_store_00000000000000000000000000".parse().unwrap()
    }

    /// The body the log tests write, and its operation number `seq` on profile 1.
    const BODY: &[u8] = br#"{"traits":{"Contact":{"email":"a@b.c"}}}"#;

    fn patch_op(seq: u64) -> Op {
        Op {
            seq,
            stamp: Stamp::new(0, seq).unwrap(),
            event_time: false,
            more: false,
            profile: ProfileId::from_bits(1),
            kind: OpKind::Patch {
                patch: Patch::from_slice(BODY).unwrap(),
                join: Vec::new(),
            },
        }
    }

    /// Starts a writer on a fresh log in `dir`, reading `messages`; what it hands the worker.
    fn start_writer(
        dir: &Path,
        gathering: Gathering,
        messages: mpsc::Receiver<ToWriter>,
    ) -> mpsc::Receiver<Vec<Op>> {
        let recovered = open(dir, &store()).unwrap();
        let (compactor, asked) = mpsc::sync_channel(1);
        let log = LogFile {
            dir: dir.to_owned(),
            file: Ahead::new(recovered.file, 1 << 20).unwrap(),
            compact_above: 1 << 20,
            compactor,
        };
        let (worker, applied) = mpsc::channel();
        std::thread::spawn(move || {
            let _asked = asked;
            run_writer(messages, Some(log), store(), worker, &gathering);
        });
        applied
    }

    /// Submits the patch of sequence number `seq`; told once it is durable.
    fn submit(writer: &mpsc::Sender<ToWriter>, seq: u64) -> tokio::sync::oneshot::Receiver<()> {
        let (durable, answered) = tokio::sync::oneshot::channel();
        let submission = Submission {
            ops: vec![(patch_op(seq), Bytes::from_static(BODY))],
            durable,
        };
        writer.send(ToWriter::Submit(submission)).unwrap();
        answered
    }

    #[test]
    fn more_may_come_until_every_connection_has_a_write_queued() {
        assert!(more_may_come(0, 1));
        assert!(more_may_come(31, 32));
        assert!(!more_may_come(32, 32));
        assert!(!more_may_come(33, 32));
        assert!(!more_may_come(1, 0));
    }

    /// Under load (the last batch held `COMMIT_SIBLINGS` requests or more), the writer stops
    /// waiting for more once every open connection has a write queued: with a wait of an
    /// hour, a second round of one write per connection is still made durable at once.
    #[test]
    fn the_commit_delay_ends_once_every_connection_has_a_write_queued() {
        let dir = tempfile::tempdir().unwrap();
        let connections = COMMIT_SIBLINGS + 2;
        let gathering = Gathering {
            delay: Duration::from_secs(3600),
            connections: Arc::new(AtomicUsize::new(connections)),
        };
        // One write per connection, all answered within a generous time (the point is the
        // hour not waited).
        let round = |writer: &mpsc::Sender<ToWriter>, first_seq: u64| {
            let answers: Vec<_> = (first_seq..first_seq + connections as u64)
                .map(|seq| submit(writer, seq))
                .collect();
            let (done_tx, done) = mpsc::channel();
            std::thread::spawn(move || {
                for answered in answers {
                    answered.blocking_recv().unwrap();
                }
                done_tx.send(()).unwrap();
            });
            done
        };
        let (writer, messages) = mpsc::channel();
        // The first round is queued whole before the writer starts: one batch, as large as
        // the connections are many.
        let first = round(&writer, 1);
        let applied = start_writer(dir.path(), gathering, messages);
        first.recv_timeout(Duration::from_secs(60)).unwrap();
        round(&writer, 1 + connections as u64)
            .recv_timeout(Duration::from_secs(60))
            .unwrap();
        let batches: Vec<usize> = applied.try_iter().map(|ops| ops.len()).collect();
        assert_eq!(batches, [connections, connections]);
    }

    #[test]
    fn an_op_round_trips_through_its_record() {
        let profile = ProfileId::from_bits(7);
        let body = br#"{"traits":{"Contact":{"email":"a@b.c"}}}"#;
        let op = Op {
            seq: 3,
            stamp: Stamp::new(1_700_000_000_123_456, 3).unwrap(),
            event_time: true,
            more: false,
            profile: profile.clone(),
            kind: OpKind::Patch {
                patch: Patch::from_slice(body).unwrap(),
                join: vec![ProfileId::from_bits(8)],
            },
        };
        let mut bytes = Vec::new();
        encode(&mut bytes, &store(), &op, body);
        let payload = record::records(&bytes).next().unwrap();
        let decoded = decode(payload, &store()).unwrap();
        assert_eq!(decoded.seq, 3);
        assert_eq!(decoded.profile, profile);
        assert_eq!((decoded.stamp, decoded.event_time), (op.stamp, true));
        assert!(matches!(decoded.kind, OpKind::Patch { patch, join }
            if patch == Patch::from_slice(body).unwrap() && join == [ProfileId::from_bits(8)]));
    }

    #[test]
    fn a_record_of_another_store_is_refused() {
        let op = Op {
            seq: 1,
            stamp: Stamp::new(0, 1).unwrap(),
            event_time: false,
            more: false,
            profile: ProfileId::from_bits(7),
            kind: OpKind::Delete,
        };
        let mut bytes = Vec::new();
        encode(&mut bytes, &store(), &op, b"");
        let payload = record::records(&bytes).next().unwrap();
        let other: StoreId = "mem_store_00000000000000000000000001".parse().unwrap();
        assert_eq!(
            decode(payload, &other).unwrap_err(),
            "written for store `mem_store_00000000000000000000000000`, not `mem_store_00000000000000000000000001`"
        );
    }

    /// A request's records are recovered all together or not at all: a bulk upsert whose
    /// last record is torn loses its earlier records too.
    #[test]
    fn a_request_whose_last_record_is_torn_is_dropped_whole() {
        let dir = tempfile::tempdir().unwrap();
        let body = br#"{"traits":{"Contact":{"email":"a@b.c"}}}"#;
        let op = |seq: u64, more: bool| Op {
            seq,
            stamp: Stamp::new(0, seq).unwrap(),
            event_time: false,
            more,
            profile: ProfileId::from_bits(u128::from(seq)),
            kind: OpKind::Create {
                created_at: "2026-01-01T00:00:00Z".into(),
                traits: Patch::from_slice(body).unwrap(),
            },
        };
        let mut bytes = Vec::new();
        encode(&mut bytes, &store(), &op(1, false), body);
        let whole = bytes.len();
        for (seq, more) in [(2, true), (3, true), (4, false)] {
            encode(&mut bytes, &store(), &op(seq, more), body);
        }
        bytes.truncate(bytes.len() - 3);
        fs::write(dir.path().join(LOG_FILE), &bytes).unwrap();
        let recovered = open(dir.path(), &store()).unwrap();
        assert_eq!(recovered.ops.len(), 1);
        assert_eq!(recovered.truncated_bytes, (bytes.len() - whole) as u64);
        assert_eq!(
            fs::metadata(dir.path().join(LOG_FILE)).unwrap().len(),
            whole as u64
        );
    }

    /// Each submission is answered once its records are written and synced: after every
    /// answer, the log holds every record and the worker got every operation, both in order,
    /// whatever batches the submissions fell into.
    #[test]
    fn answered_submissions_are_in_the_log_and_with_the_worker_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let gathering = Gathering {
            delay: COMMIT_DELAY,
            connections: Arc::new(AtomicUsize::new(300)),
        };
        let (writer, messages) = mpsc::channel();
        let applied = start_writer(dir.path(), gathering, messages);
        let seqs: Vec<u64> = (1..=300).collect();
        let answers: Vec<_> = seqs.iter().map(|&seq| submit(&writer, seq)).collect();
        for answered in answers {
            answered.blocking_recv().unwrap();
        }
        let handed: Vec<u64> = applied.try_iter().flatten().map(|op| op.seq).collect();
        assert_eq!(handed, seqs);
        let logged: Vec<u64> = open(dir.path(), &store())
            .unwrap()
            .ops
            .iter()
            .map(|op| op.seq)
            .collect();
        assert_eq!(logged, seqs);
    }

    /// The zeros written ahead read as the end of the log, and are not torn bytes; a torn
    /// record over them is.
    #[test]
    fn zeros_written_ahead_end_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        encode(&mut bytes, &store(), &patch_op(1), BODY);
        let whole = bytes.len();
        bytes.resize(8192, 0);
        fs::write(dir.path().join(LOG_FILE), &bytes).unwrap();
        let recovered = open(dir.path(), &store()).unwrap();
        assert_eq!((recovered.ops.len(), recovered.truncated_bytes), (1, 0));
        assert_eq!(recovered.file.metadata().unwrap().len(), whole as u64);

        let torn = [200u8, 0, 0, 0, 1, 2, 3, 4, b'{'];
        bytes[whole..whole + torn.len()].copy_from_slice(&torn);
        fs::write(dir.path().join(LOG_FILE), &bytes).unwrap();
        let recovered = open(dir.path(), &store()).unwrap();
        assert_eq!(recovered.ops.len(), 1);
        assert_eq!(recovered.truncated_bytes, torn.len() as u64);
    }
}
