//! The storage that needs no server: profiles in memory, every accepted operation in a
//! group-committed log on disk (`log.rs`), and snapshots (`snapshot.rs`) that let the log be
//! cut short, at start and whenever it grows past a threshold while running.
//!
//! Threads: the log writer makes submissions durable in batches and answers them; the worker
//! applies them in log order; the compactor writes a snapshot when the writer asks, then
//! tells the writer which records it may drop.
//!
//! Why a log of our own rather than an embedded database: the one durable structure needed is
//! "the accepted operations in acceptance order", and a replayable log is that structure
//! itself. Appending is one sequential write per batch, recovery is "read until the first torn
//! record", and group commit falls out of having one writer.

mod ahead;
mod log;
mod record;
mod snapshot;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, RwLock, mpsc};

use axum::body::Bytes;
use profile_traits::{ProfileId, Stamp, StoreId, StoreSchema, StoredProfile};
use serde::Serialize;

use self::log::{Gathering, LogFile, Submission, ToWriter};
use crate::identity::{Identity, Key, Located};
use crate::store::{
    Op, OpKind, Pending, Storage, StoreError, Write, fresh_profile_id, now_rfc3339,
};
use crate::worker::State;

/// What the acceptance path shares: the identity state (which profiles exist, their
/// identifiers, where joined ids went) once every accepted operation is applied, the clock
/// and sequence numbers, and the log writer's queue. One lock over all, so that checks,
/// stamps and the queue order agree (a patch is never queued after a delete it was checked
/// before, and sequence numbers are queued in order).
struct Accepting {
    identity: Identity,
    /// The last instant the clock gave, in microseconds since the epoch.
    clock: i64,
    next_seq: u64,
    writer: mpsc::Sender<ToWriter>,
}

impl Accepting {
    /// The next sequence number and the stamp of its writes: `event_time` if given, else
    /// the clock, which never goes backwards (the greater of now and its last instant plus
    /// 1 µs); the sequence number is the tiebreaker.
    fn next(&mut self, event_time: Option<Stamp>) -> (u64, Stamp, bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (micros, from_event) = match event_time {
            Some(time) => (time.micros_since_epoch(), true),
            None => {
                let now = jiff::Timestamp::now().as_microsecond();
                self.clock = now.max(self.clock + 1);
                (self.clock, false)
            }
        };
        let stamp = Stamp::new(micros, seq).expect("the clock and parsed times are stamps");
        (seq, stamp, from_event)
    }
}

/// What recovery found at start, as the service reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecoveryReport {
    /// The last sequence number the loaded snapshot holds (0 without one).
    pub(crate) snapshot_seq: u64,
    /// How many log records were applied on top of the snapshot.
    pub(crate) replayed: usize,
    /// How many profiles exist after recovery.
    pub(crate) profiles: usize,
    /// How many bytes of a torn last log record were cut off.
    pub(crate) torn_bytes: u64,
}

/// Where the embedded storage keeps its data.
#[derive(Debug, Clone)]
pub(crate) struct Durability {
    /// The data directory.
    pub(crate) dir: PathBuf,
    /// Past this many bytes, the log is snapshotted and cut short while running.
    pub(crate) compact_log_bytes: u64,
}

/// The embedded storage.
pub(crate) struct Embedded {
    accepting: Mutex<Accepting>,
    applied: Arc<RwLock<State>>,
    schema: Arc<StoreSchema>,
}

impl Embedded {
    /// Recovers the data in `durability` (or starts empty and keeps nothing on disk with
    /// `None`), and starts the writer, worker and compactor threads. `connections` is the
    /// count of open HTTP connections the accept loop keeps: under load, the log writer
    /// gathers a batch until each has a write queued (see `log::Gathering`).
    ///
    /// # Errors
    ///
    /// When recovery fails (see `snapshot::recover`) or a thread cannot be started.
    pub(crate) fn start(
        durability: Option<&Durability>,
        store: StoreId,
        schema: Arc<StoreSchema>,
        connections: Arc<AtomicUsize>,
    ) -> io::Result<(Embedded, Option<RecoveryReport>)> {
        let (writer_tx, writer_rx) = mpsc::channel();
        let (worker_tx, worker_rx) = mpsc::channel();
        let mut applied = State::default();
        let mut log = None;
        let mut report = None;
        let mut compactor = None;
        if let Some(Durability {
            dir,
            compact_log_bytes,
        }) = durability
        {
            let recovery = snapshot::recover(dir, &store, &schema)?;
            report = Some(RecoveryReport {
                snapshot_seq: recovery.snapshot_seq,
                replayed: recovery.replayed,
                profiles: recovery.state.profiles.len(),
                torn_bytes: recovery.torn_bytes,
            });
            applied = recovery.state;
            let (ask_tx, ask_rx) = mpsc::sync_channel(1);
            log = Some(LogFile {
                dir: dir.clone(),
                file: ahead::Ahead::new(recovery.file, *compact_log_bytes)?,
                compact_above: *compact_log_bytes,
                compactor: ask_tx,
            });
            compactor = Some((dir.clone(), ask_rx));
        }
        let identity = Identity::recover(
            &schema,
            applied.profiles.iter().map(|(id, p)| (id, &**p)),
            &applied.moved,
        );
        let accepting = Accepting {
            identity,
            clock: applied.clock,
            next_seq: applied.last_seq + 1,
            writer: writer_tx.clone(),
        };
        let applied = Arc::new(RwLock::new(applied));
        {
            let store = store.clone();
            let gathering = Gathering {
                delay: log::COMMIT_DELAY,
                connections,
            };
            spawn("log-writer", move || {
                log::run_writer(writer_rx, log, store, worker_tx, &gathering);
            })?;
        }
        {
            let applied = Arc::clone(&applied);
            let schema = Arc::clone(&schema);
            spawn("worker", move || run_worker(worker_rx, &applied, &schema))?;
        }
        if let Some((dir, asked)) = compactor {
            let applied = Arc::clone(&applied);
            let writer = writer_tx;
            spawn("compactor", move || {
                run_compactor(&asked, &dir, &store, &applied, &writer);
            })?;
        }
        let embedded = Embedded {
            accepting: Mutex::new(accepting),
            applied,
            schema,
        };
        Ok((embedded, report))
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map(drop)
}

/// Applies batches as the log writer hands them over, under the write lock (profiles are
/// copied on write when a snapshot or a `GET` still holds them).
fn run_worker(batches: mpsc::Receiver<Vec<Op>>, applied: &RwLock<State>, schema: &StoreSchema) {
    while let Ok(batch) = batches.recv() {
        let mut state = applied
            .write()
            .expect("the worker never panics holding the lock");
        for op in batch {
            state.apply(op, schema);
        }
    }
}

/// Writes a snapshot of the applied state whenever the log writer asks, then tells it which
/// records the snapshot holds. The state is copied (profile pointers only) under the read
/// lock; the snapshot is serialized and synced with no lock held.
fn run_compactor(
    asked: &mpsc::Receiver<()>,
    dir: &Path,
    store: &StoreId,
    applied: &RwLock<State>,
    writer: &mpsc::Sender<ToWriter>,
) {
    while asked.recv().is_ok() {
        let state = applied
            .read()
            .expect("the worker never panics holding the lock")
            .clone();
        let done = match snapshot::write(dir, store, &state) {
            Ok(()) => Some(state.last_seq),
            Err(error) => {
                eprintln!("profile-service: cannot write a snapshot: {error}; the log is kept");
                None
            }
        };
        if writer.send(ToWriter::Snapshotted(done)).is_err() {
            return;
        }
    }
}

impl Storage for Embedded {
    fn locate<'a>(&'a self, id: &'a ProfileId) -> Pending<'a, Result<Located, StoreError>> {
        let accepting = self.accepting.lock().expect("no panic holds this lock");
        Box::pin(std::future::ready(Ok(accepting.identity.locate(id))))
    }

    fn lookup<'a>(&'a self, key: &'a Key) -> Pending<'a, Result<Vec<ProfileId>, StoreError>> {
        let accepting = self.accepting.lock().expect("no panic holds this lock");
        Box::pin(std::future::ready(Ok(accepting.identity.lookup(key))))
    }

    fn accept(
        &self,
        write: Write,
        event_time: Option<Stamp>,
    ) -> Pending<'_, Result<Vec<ProfileId>, StoreError>> {
        let (durable_tx, durable_rx) = tokio::sync::oneshot::channel();
        let mut answer = Vec::new();
        let queued = {
            let mut accepting = self.accepting.lock().expect("no panic holds this lock");
            let schema = &*self.schema;
            let live = |accepting: &Accepting, id: &ProfileId| match accepting.identity.locate(id) {
                Located::Live => Ok(()),
                Located::Moved(to) => Err(StoreError::Moved(to)),
                Located::Missing => Err(StoreError::NotFound),
            };
            let mut ops: Vec<(Op, Bytes)> = Vec::new();
            let mut push = |accepting: &mut Accepting,
                            (seq, stamp, event_time): (u64, Stamp, bool),
                            profile: ProfileId,
                            kind: OpKind,
                            body: Bytes| {
                let op = Op {
                    seq,
                    stamp,
                    event_time,
                    more: false,
                    profile,
                    kind,
                };
                accepting.identity.record(schema, &op);
                answer.push(op.profile.clone());
                ops.push((op, body));
            };
            let checked = match write {
                Write::Create(items) => {
                    for (patch, body) in items {
                        let next = accepting.next(event_time);
                        let (profile, kind) =
                            match accepting.identity.resolve_create(schema, &patch) {
                                None => (
                                    fresh_profile_id(),
                                    OpKind::Create {
                                        created_at: now_rfc3339(),
                                        traits: patch,
                                    },
                                ),
                                Some((target, join)) => (target, OpKind::Patch { patch, join }),
                            };
                        push(&mut accepting, next, profile, kind, body);
                    }
                    Ok(())
                }
                Write::Patch { id, patch, body } => live(&accepting, &id).map(|()| {
                    let next = accepting.next(event_time);
                    let (target, join) = accepting
                        .identity
                        .resolve_patch(schema, &id, &patch, next.1);
                    push(
                        &mut accepting,
                        next,
                        target,
                        OpKind::Patch { patch, join },
                        body,
                    );
                }),
                Write::Delete(id) => live(&accepting, &id).map(|()| {
                    let next = accepting.next(event_time);
                    push(&mut accepting, next, id, OpKind::Delete, Bytes::new());
                }),
            };
            let count = ops.len();
            for (op, _) in &mut ops[..count.saturating_sub(1)] {
                op.more = true;
            }
            checked.and_then(|()| {
                let submission = Submission {
                    ops,
                    durable: durable_tx,
                };
                accepting
                    .writer
                    .send(ToWriter::Submit(submission))
                    .map_err(|_| stopped())
            })
        };
        Box::pin(async move {
            queued?;
            durable_rx.await.map_err(|_| stopped())?;
            Ok(answer)
        })
    }

    fn profile<'a>(
        &'a self,
        id: &'a ProfileId,
    ) -> Pending<'a, Result<Option<Arc<StoredProfile>>, StoreError>> {
        let state = self
            .applied
            .read()
            .expect("the worker never panics holding the lock");
        let profile = state.profiles.get(id).cloned();
        Box::pin(std::future::ready(Ok(profile)))
    }

    fn accepted_seq(&self) -> Option<u64> {
        let accepting = self
            .accepting
            .lock()
            .expect("no thread panics holding the acceptance lock");
        Some(accepting.next_seq - 1)
    }

    fn applied_seq(&self) -> Option<u64> {
        let state = self
            .applied
            .read()
            .expect("the worker never panics holding the lock");
        Some(state.last_seq)
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the log writer has stopped".to_owned())
}
