//! Snapshots: every profile as of one sequence number, written whole (temporary file, sync,
//! atomic rename, directory sync), so that the log can be cut short; and recovery at start,
//! the last snapshot and the log records after it, then compaction (a new snapshot and an
//! emptied log), so a restart replays only what was accepted since the last snapshot.
//!
//! Crash safety: the log is only ever cut after the snapshot that holds its beginning is
//! durable. A crash in between leaves log records the snapshot already holds; they carry
//! sequence numbers up to the snapshot's `lastSeq` and are skipped, so each operation is
//! still applied exactly once.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use profile_traits::{Profile, StoreId, StoreSchema};
use serde::{Deserialize, Serialize};

use super::{Profiles, log, record};
use crate::worker;

/// The snapshot file's name inside the data directory.
const SNAPSHOT_FILE: &str = "snapshot.bin";

/// The first record of a snapshot.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    /// The store the data directory belongs to (absent in snapshots of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store: Option<String>,
    /// The sequence number of the last operation the snapshot includes.
    last_seq: u64,
    /// How many profile records follow.
    profiles: usize,
}

/// What recovery found and did.
pub(super) struct Recovery {
    /// The profiles with every durable operation applied.
    pub(super) profiles: Profiles,
    /// The sequence number of the last operation applied.
    pub(super) last_seq: u64,
    /// The (now empty) log, positioned for appending.
    pub(super) file: File,
    /// The snapshot's last sequence number (0 without a snapshot).
    pub(super) snapshot_seq: u64,
    /// How many log records were applied on top of the snapshot.
    pub(super) replayed: usize,
    /// How many bytes of a torn last log record were cut off.
    pub(super) torn_bytes: u64,
}

/// Loads the snapshot and the log in `dir`, applies the log records after the snapshot, and
/// compacts (new snapshot, empty log) if the log held anything. A directory without a
/// snapshot gets an empty one, so that it records which store it belongs to.
///
/// # Errors
///
/// As [`log::open`]; when the snapshot cannot be read or written, or is damaged (it is only
/// ever replaced whole, so damage is not a crash's doing and is not silently ignored); when
/// the directory belongs to another store than `store`.
pub(super) fn recover(dir: &Path, store: &StoreId, schema: &StoreSchema) -> io::Result<Recovery> {
    let loaded = load(dir, store)?;
    let had_snapshot = loaded.is_some();
    let (snapshot_seq, mut profiles) = loaded.unwrap_or_default();
    let recovered = log::open(dir, store)?;
    let file = recovered.file;
    let had_records = !recovered.ops.is_empty();
    let tail: Vec<_> = recovered
        .ops
        .into_iter()
        .filter(|op| op.seq > snapshot_seq)
        .collect();
    let replayed = tail.len();
    let last_seq = tail.last().map_or(snapshot_seq, |op| op.seq);
    let (states, _) = worker::apply_batch(tail, schema, |id| {
        profiles.get(id).map(|profile| Profile::clone(profile))
    });
    for (id, state) in states {
        match state {
            Some(profile) => profiles.insert(id, Arc::new(profile)),
            None => profiles.remove(&id),
        };
    }
    if had_records || !had_snapshot {
        write(dir, store, last_seq, profiles.values().map(Arc::as_ref))?;
        file.set_len(0)?;
        file.sync_all()?;
    }
    Ok(Recovery {
        profiles,
        last_seq,
        file,
        snapshot_seq,
        replayed,
        torn_bytes: recovered.truncated_bytes,
    })
}

/// The snapshot in `dir` (its last sequence number and profiles), if there is one.
fn load(dir: &Path, store: &StoreId) -> io::Result<Option<(u64, Profiles)>> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let damaged = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    let mut records = record::records(&bytes);
    let header: Header = records
        .next()
        .ok_or_else(|| damaged("no header record".into()))
        .and_then(|payload| {
            serde_json::from_slice(payload).map_err(|e| damaged(format!("header: {e}")))
        })?;
    if let Some(written_for) = header.store.as_deref()
        && written_for != store.as_str()
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} holds store `{written_for}`, not `{store}`: start with `--store-id {written_for}`, or use another `--data-dir`",
                dir.display()
            ),
        ));
    }
    let mut profiles = Profiles::with_capacity(header.profiles);
    for payload in records.by_ref().take(header.profiles) {
        let profile: Profile =
            serde_json::from_slice(payload).map_err(|e| damaged(format!("profile: {e}")))?;
        let id = profile
            .id()
            .cloned()
            .ok_or_else(|| damaged("a profile without an id".into()))?;
        profiles.insert(id, Arc::new(profile));
    }
    if profiles.len() != header.profiles || records.end() != bytes.len() {
        return Err(damaged(format!(
            "{} of {} profiles readable, {} bytes after them",
            profiles.len(),
            header.profiles,
            bytes.len() - records.end()
        )));
    }
    Ok(Some((header.last_seq, profiles)))
}

/// Replaces the snapshot in `dir` with `profiles` of store `store` as of sequence number
/// `last_seq`.
pub(super) fn write<'a>(
    dir: &Path,
    store: &StoreId,
    last_seq: u64,
    profiles: impl ExactSizeIterator<Item = &'a Profile>,
) -> io::Result<()> {
    let mut bytes = Vec::new();
    let header = Header {
        store: Some(store.to_string()),
        last_seq,
        profiles: profiles.len(),
    };
    record::frame(
        &mut bytes,
        &serde_json::to_vec(&header).expect("a header serializes"),
    );
    for profile in profiles {
        record::frame(
            &mut bytes,
            &serde_json::to_vec(profile).expect("a profile serializes"),
        );
    }
    let temporary = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    let mut file = File::create(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, dir.join(SNAPSHOT_FILE))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Op, OpKind};
    use profile_traits::{Patch, ProfileId};

    fn store() -> StoreId {
        "mem_store_00000000000000000000000000".parse().unwrap()
    }

    fn schema() -> StoreSchema {
        serde_json::from_str(include_str!("../../../schema.json")).unwrap()
    }

    fn temp_dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    /// Appends `ops` to the log in `dir` as the writer would.
    fn append(dir: &Path, ops: &[(Op, &str)]) {
        let mut bytes = Vec::new();
        for (op, body) in ops {
            log::encode(&mut bytes, &store(), op, body.as_bytes());
        }
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(dir.join("operations.log"))
            .unwrap();
        file.write_all(&bytes).unwrap();
    }

    fn ops(id: &ProfileId) -> Vec<(Op, &'static str)> {
        let create = r#"{"traits": {"Contact": {"city": "Paris", "lastName": "Doe"}}}"#;
        let patch = r#"{"traits": {"Contact": {"city": null}, "Activity": {"vip": true}}}"#;
        vec![
            (
                Op {
                    seq: 1,
                    profile: id.clone(),
                    kind: OpKind::Create {
                        created_at: "2026-01-01T00:00:00Z".into(),
                        traits: Patch::from_slice(create.as_bytes()).unwrap(),
                    },
                },
                create,
            ),
            (
                Op {
                    seq: 2,
                    profile: id.clone(),
                    kind: OpKind::Patch(Patch::from_slice(patch.as_bytes()).unwrap()),
                },
                patch,
            ),
        ]
    }

    #[test]
    fn recovery_compacts_and_skips_records_the_snapshot_holds() {
        let schema = schema();
        let tmp = temp_dir();
        let dir = tmp.path();
        let id = ProfileId::from_bits(5);
        append(dir, &ops(&id));

        let first = recover(dir, &store(), &schema).unwrap();
        assert_eq!(
            (first.snapshot_seq, first.replayed, first.last_seq),
            (0, 2, 2)
        );
        let expected = serde_json::to_string(&*first.profiles[&id]).unwrap();
        assert_eq!(
            expected,
            r#"{"id":"mem_profile_00000000000000000000000005","createdAt":"2026-01-01T00:00:00Z","traits":{"Contact":{"lastName":"Doe"},"Activity":{"vip":true}}}"#
        );
        assert_eq!(fs::metadata(dir.join("operations.log")).unwrap().len(), 0);
        drop(first);

        // A crash between the snapshot's rename and the log's truncation: the records are
        // still there, and must not be applied a second time.
        append(dir, &ops(&id));
        let second = recover(dir, &store(), &schema).unwrap();
        assert_eq!(
            (second.snapshot_seq, second.replayed, second.last_seq),
            (2, 0, 2)
        );
        assert_eq!(
            serde_json::to_string(&*second.profiles[&id]).unwrap(),
            expected
        );
        drop(second);

        // Nothing new: no compaction needed, same state.
        let third = recover(dir, &store(), &schema).unwrap();
        assert_eq!(
            (third.snapshot_seq, third.replayed, third.last_seq),
            (2, 0, 2)
        );
        assert_eq!(
            serde_json::to_string(&*third.profiles[&id]).unwrap(),
            expected
        );
    }

    #[test]
    fn a_damaged_snapshot_stops_the_start() {
        let schema = schema();
        let tmp = temp_dir();
        let dir = tmp.path();
        append(dir, &ops(&ProfileId::from_bits(6)));
        drop(recover(dir, &store(), &schema).unwrap());
        let path = dir.join(SNAPSHOT_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
        let error = recover(dir, &store(), &schema).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_directory_of_another_store_is_refused() {
        let schema = schema();
        let tmp = temp_dir();
        let dir = tmp.path();
        drop(recover(dir, &store(), &schema).unwrap());
        let other: StoreId = "mem_store_00000000000000000000000001".parse().unwrap();
        let error = recover(dir, &other, &schema).err().unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "{} holds store `mem_store_00000000000000000000000000`, not `mem_store_00000000000000000000000001`: start with `--store-id mem_store_00000000000000000000000000`, or use another `--data-dir`",
                dir.display()
            )
        );
    }
}
