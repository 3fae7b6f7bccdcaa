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

mod log;
mod record;
mod snapshot;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, mpsc};

use profile_traits::{Profile, ProfileId, StoreId, StoreSchema};
use serde::Serialize;

use self::log::{LogFile, Submission, ToWriter};
use crate::store::{Op, OpKind, Pending, Storage, StoreError};
use crate::worker;

/// The profiles as applied, by id; shared so that a snapshot or a `GET` copies pointers only.
type Profiles = HashMap<ProfileId, Arc<Profile>>;

/// The applied state: the profiles and the last operation applied to them.
struct Applied {
    profiles: Profiles,
    last_seq: u64,
}

/// What the acceptance path shares: which profiles exist once every accepted operation is
/// applied, and the log writer's queue. One lock over both, so that the existence check and
/// the queue order agree (a patch is never queued after a delete it was checked before).
struct Accepting {
    known: HashSet<ProfileId>,
    writer: mpsc::Sender<ToWriter>,
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
    applied: Arc<RwLock<Applied>>,
}

impl Embedded {
    /// Recovers the data in `durability` (or starts empty and keeps nothing on disk with
    /// `None`), and starts the writer, worker and compactor threads.
    ///
    /// # Errors
    ///
    /// When recovery fails (see `snapshot::recover`) or a thread cannot be started.
    pub(crate) fn start(
        durability: Option<&Durability>,
        store: StoreId,
        schema: Arc<StoreSchema>,
    ) -> io::Result<(Embedded, Option<RecoveryReport>)> {
        let (writer_tx, writer_rx) = mpsc::channel();
        let (worker_tx, worker_rx) = mpsc::channel();
        let mut applied = Applied {
            profiles: Profiles::new(),
            last_seq: 0,
        };
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
                profiles: recovery.profiles.len(),
                torn_bytes: recovery.torn_bytes,
            });
            applied = Applied {
                profiles: recovery.profiles,
                last_seq: recovery.last_seq,
            };
            let (ask_tx, ask_rx) = mpsc::sync_channel(1);
            log = Some(LogFile {
                dir: dir.clone(),
                file: recovery.file,
                compact_above: *compact_log_bytes,
                compactor: ask_tx,
            });
            compactor = Some((dir.clone(), ask_rx));
        }
        let known = applied.profiles.keys().cloned().collect();
        let next_seq = applied.last_seq + 1;
        let applied = Arc::new(RwLock::new(applied));
        {
            let store = store.clone();
            spawn("log-writer", move || {
                log::run_writer(writer_rx, log, store, next_seq, worker_tx);
            })?;
        }
        {
            let applied = Arc::clone(&applied);
            spawn("worker", move || run_worker(worker_rx, &applied, &schema))?;
        }
        if let Some((dir, asked)) = compactor {
            let applied = Arc::clone(&applied);
            let writer = writer_tx.clone();
            spawn("compactor", move || {
                run_compactor(&asked, &dir, &store, &applied, &writer);
            })?;
        }
        let embedded = Embedded {
            accepting: Mutex::new(Accepting {
                known,
                writer: writer_tx,
            }),
            applied,
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

/// Applies batches as the log writer hands them over, draining what queued up meanwhile so
/// that patches waiting for the same profile are coalesced. Profiles are read under the read
/// lock (a `GET` is not held up while a batch is applied) and saved under the write lock.
fn run_worker(batches: mpsc::Receiver<Vec<Op>>, applied: &RwLock<Applied>, schema: &StoreSchema) {
    while let Ok(mut batch) = batches.recv() {
        while let Ok(more) = batches.try_recv() {
            batch.extend(more);
        }
        let Some(last_seq) = batch.last().map(|op| op.seq) else {
            continue;
        };
        let (states, _) = {
            let state = applied
                .read()
                .expect("the worker never panics holding the lock");
            worker::apply_batch(batch, schema, |id| {
                state.profiles.get(id).map(|p| Profile::clone(p))
            })
        };
        let mut state = applied
            .write()
            .expect("the worker never panics holding the lock");
        for (id, profile) in states {
            match profile {
                Some(profile) => state.profiles.insert(id, Arc::new(profile)),
                None => state.profiles.remove(&id),
            };
        }
        state.last_seq = last_seq;
    }
}

/// Writes a snapshot of the applied profiles whenever the log writer asks, then tells it
/// which records the snapshot holds. The profiles are copied (pointers only) under the read
/// lock; the snapshot is serialized and synced with no lock held.
fn run_compactor(
    asked: &mpsc::Receiver<()>,
    dir: &Path,
    store: &StoreId,
    applied: &RwLock<Applied>,
    writer: &mpsc::Sender<ToWriter>,
) {
    while asked.recv().is_ok() {
        let (last_seq, profiles) = {
            let state = applied
                .read()
                .expect("the worker never panics holding the lock");
            let profiles: Vec<Arc<Profile>> = state.profiles.values().cloned().collect();
            (state.last_seq, profiles)
        };
        let done = match snapshot::write(dir, store, last_seq, profiles.iter().map(Arc::as_ref)) {
            Ok(()) => Some(last_seq),
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
    fn exists<'a>(&'a self, id: &'a ProfileId) -> Pending<'a, Result<bool, StoreError>> {
        let accepting = self.accepting.lock().expect("no panic holds this lock");
        let exists = accepting.known.contains(id);
        Box::pin(std::future::ready(Ok(exists)))
    }

    fn accept(&self, op: Op, body: Vec<u8>) -> Pending<'_, Result<u64, StoreError>> {
        let (durable_tx, durable_rx) = tokio::sync::oneshot::channel();
        let queued = {
            let mut accepting = self.accepting.lock().expect("no panic holds this lock");
            let refusal = match op.kind {
                OpKind::Create { .. } => {
                    (!accepting.known.insert(op.profile.clone())).then_some(StoreError::Conflict)
                }
                OpKind::Patch(_) => {
                    (!accepting.known.contains(&op.profile)).then_some(StoreError::NotFound)
                }
                OpKind::Delete => {
                    (!accepting.known.remove(&op.profile)).then_some(StoreError::NotFound)
                }
            };
            match refusal {
                Some(refusal) => Err(refusal),
                None => {
                    let submission = Submission {
                        op,
                        body,
                        durable: durable_tx,
                    };
                    accepting
                        .writer
                        .send(ToWriter::Submit(submission))
                        .map_err(|_| stopped())
                }
            }
        };
        Box::pin(async move {
            queued?;
            durable_rx.await.map_err(|_| stopped())
        })
    }

    fn profile<'a>(
        &'a self,
        id: &'a ProfileId,
    ) -> Pending<'a, Result<Option<Arc<Profile>>, StoreError>> {
        let state = self
            .applied
            .read()
            .expect("the worker never panics holding the lock");
        let profile = state.profiles.get(id).cloned();
        Box::pin(std::future::ready(Ok(profile)))
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
