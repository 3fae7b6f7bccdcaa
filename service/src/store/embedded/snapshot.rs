//! Snapshots: every profile as of one sequence number, written whole (temporary file, sync,
//! atomic rename, directory sync), so that the log can be cut short; and recovery at start,
//! the last snapshot and the log records after it, then compaction (a new snapshot and an
//! emptied log), so a restart replays only what was accepted since the last snapshot.
//!
//! Crash safety: the log is only ever cut after the snapshot that holds its beginning is
//! durable. A crash in between leaves log records the snapshot already holds; they carry
//! sequence numbers up to the snapshot's `lastSeq` and are skipped, so each operation is
//! still applied exactly once.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use profile_traits::{Profile, ProfileId, Stamp, StoreId, StoreSchema, StoredProfile};
use serde::{Deserialize, Serialize};

use super::{log, record};
use crate::worker::{Profiles, State};

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
    /// The acceptance clock's last instant, in microseconds since the epoch.
    #[serde(default)]
    clock: i64,
    /// Joined-away profile ids and the canonical id each redirects to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    moved: BTreeMap<String, String>,
}

/// What recovery found and did.
pub(super) struct Recovery {
    /// The state with every durable operation applied.
    pub(super) state: State,
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
    let mut state = loaded.unwrap_or_default();
    let snapshot_seq = state.last_seq;
    let recovered = log::open(dir, store)?;
    let file = recovered.file;
    let had_records = !recovered.ops.is_empty();
    let mut replayed = 0;
    for op in recovered.ops {
        if op.seq > snapshot_seq {
            state.apply(op, schema);
            replayed += 1;
        }
    }
    if had_records || !had_snapshot {
        write(dir, store, &state)?;
        file.set_len(0)?;
        file.sync_all()?;
    }
    Ok(Recovery {
        state,
        file,
        snapshot_seq,
        replayed,
        torn_bytes: recovered.truncated_bytes,
    })
}

/// The snapshot in `dir` (its last sequence number and profiles), if there is one.
fn load(dir: &Path, store: &StoreId) -> io::Result<Option<State>> {
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
        // Snapshots of older versions hold plain profiles: every trait at the epoch.
        let profile: StoredProfile = serde_json::from_slice(payload)
            .or_else(|stored_error| {
                serde_json::from_slice::<Profile>(payload)
                    .map(|plain| {
                        StoredProfile::from_profile(plain, Stamp::new(0, 0).expect("a stamp"))
                    })
                    .map_err(|_| stored_error)
            })
            .map_err(|e| damaged(format!("profile: {e}")))?;
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
    let mut moved = std::collections::HashMap::new();
    for (from, to) in &header.moved {
        let parse = |id: &str| {
            id.parse::<ProfileId>()
                .map_err(|e| damaged(format!("moved: {e}")))
        };
        moved.insert(parse(from)?, parse(to)?);
    }
    Ok(Some(State {
        profiles,
        moved,
        last_seq: header.last_seq,
        clock: header.clock,
    }))
}

/// Replaces the snapshot in `dir` with `state` of store `store`.
pub(super) fn write(dir: &Path, store: &StoreId, state: &State) -> io::Result<()> {
    let mut bytes = Vec::new();
    let header = Header {
        store: Some(store.to_string()),
        last_seq: state.last_seq,
        profiles: state.profiles.len(),
        clock: state.clock,
        moved: state
            .moved
            .iter()
            .map(|(from, to)| (from.to_string(), to.to_string()))
            .collect(),
    };
    record::frame(
        &mut bytes,
        &serde_json::to_vec(&header).expect("a header serializes"),
    );
    // In id order, so that the same state always gives the same snapshot bytes.
    let mut profiles: Vec<&Arc<StoredProfile>> = state.profiles.values().collect();
    profiles.sort_by(|a, b| a.id().cmp(&b.id()));
    for profile in profiles {
        record::frame(
            &mut bytes,
            &serde_json::to_vec(&**profile).expect("a profile serializes"),
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
    use profile_traits::Patch;

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
                    stamp: Stamp::new(1_000_000, 1).unwrap(),
                    event_time: false,
                    more: false,
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
                    stamp: Stamp::new(2_000_000, 2).unwrap(),
                    event_time: false,
                    more: false,
                    profile: id.clone(),
                    kind: OpKind::Patch {
                        patch: Patch::from_slice(patch.as_bytes()).unwrap(),
                        join: Vec::new(),
                    },
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
            (first.snapshot_seq, first.replayed, first.state.last_seq),
            (0, 2, 2)
        );
        let expected = serde_json::to_string(&*first.state.profiles[&id]).unwrap();
        assert_eq!(
            expected,
            r#"{"id":"mem_profile_00000000000000000000000005","createdAt":"2026-01-01T00:00:00Z","horizon":{"time":"0000-01-01T00:00:00Z","tiebreak":0},"traits":{"Contact":{"lastName":{"value":"Doe","time":"1970-01-01T00:00:01Z","tiebreak":1},"city":{"value":null,"time":"1970-01-01T00:00:02Z","tiebreak":2}},"Activity":{"vip":{"value":true,"time":"1970-01-01T00:00:02Z","tiebreak":2}}}}"#
        );
        assert_eq!(first.state.clock, 2_000_000);
        assert_eq!(fs::metadata(dir.join("operations.log")).unwrap().len(), 0);
        drop(first);

        // A crash between the snapshot's rename and the log's truncation: the records are
        // still there, and must not be applied a second time.
        append(dir, &ops(&id));
        let second = recover(dir, &store(), &schema).unwrap();
        assert_eq!(
            (second.snapshot_seq, second.replayed, second.state.last_seq),
            (2, 0, 2)
        );
        assert_eq!(
            serde_json::to_string(&*second.state.profiles[&id]).unwrap(),
            expected
        );
        drop(second);

        // Nothing new: no compaction needed, same state.
        let third = recover(dir, &store(), &schema).unwrap();
        assert_eq!(
            (third.snapshot_seq, third.replayed, third.state.last_seq),
            (2, 0, 2)
        );
        assert_eq!(
            serde_json::to_string(&*third.state.profiles[&id]).unwrap(),
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
