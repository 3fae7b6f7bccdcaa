//! Recovery at start: the last snapshot, then the log records after it; then compaction, a new
//! snapshot of the recovered state and an emptied log, so a restart replays only what was
//! accepted since the previous start.
//!
//! Crash safety: the snapshot is written to a temporary file, synced, and renamed over the old
//! one (atomic), and the directory is synced, before the log is emptied. A crash between the
//! rename and the truncation leaves log records the snapshot already holds; they carry
//! sequence numbers up to the snapshot's `lastSeq` and are skipped, so each operation is still
//! applied exactly once.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use profile_traits::{Profile, StoreSchema};
use serde::{Deserialize, Serialize};

use crate::log;
use crate::state::{self, Profiles};

/// The snapshot file's name inside the data directory.
const SNAPSHOT_FILE: &str = "snapshot.bin";

/// The first record of a snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// The sequence number of the last operation the snapshot includes.
    #[serde(rename = "lastSeq")]
    last_seq: u64,
    /// How many profile records follow.
    profiles: usize,
}

/// What recovery found and did.
pub struct Recovery {
    /// The profiles with every durable operation applied.
    pub profiles: Profiles,
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// The (now empty) log, positioned for appending.
    pub file: File,
    /// The snapshot's last sequence number (0 without a snapshot).
    pub snapshot_seq: u64,
    /// How many log records were applied on top of the snapshot.
    pub replayed: usize,
    /// How many bytes of a torn last log record were cut off.
    pub torn_bytes: u64,
}

/// Loads the snapshot and the log in `dir`, applies the log records after the snapshot, and
/// compacts (new snapshot, empty log) if the log held anything.
///
/// # Errors
///
/// As [`log::open`], and when the snapshot cannot be read or written, or is damaged (it is
/// only ever replaced whole, so damage is not a crash's doing and is not silently ignored).
pub fn recover(dir: &Path, schema: &StoreSchema) -> io::Result<Recovery> {
    let (snapshot_seq, mut profiles) = load(dir)?.unwrap_or_default();
    let recovered = log::open(dir)?;
    let file = recovered.file;
    let had_records = !recovered.ops.is_empty();
    let tail: Vec<_> = recovered
        .ops
        .into_iter()
        .filter(|op| op.seq > snapshot_seq)
        .collect();
    let replayed = tail.len();
    let last_seq = tail.last().map_or(snapshot_seq, |op| op.seq);
    state::apply_batch(&mut profiles, tail, schema);
    if had_records {
        write(dir, last_seq, &profiles)?;
        file.set_len(0)?;
        file.sync_all()?;
    }
    Ok(Recovery {
        profiles,
        next_seq: last_seq + 1,
        file,
        snapshot_seq,
        replayed,
        torn_bytes: recovered.truncated_bytes,
    })
}

/// The snapshot in `dir` (its last sequence number and profiles), if there is one.
fn load(dir: &Path) -> io::Result<Option<(u64, Profiles)>> {
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
    let mut records = log::records(&bytes);
    let header: Header = records
        .next()
        .ok_or_else(|| damaged("no header record".into()))
        .and_then(|payload| {
            serde_json::from_slice(payload).map_err(|e| damaged(format!("header: {e}")))
        })?;
    let mut profiles = Profiles::with_capacity(header.profiles);
    for payload in records.by_ref().take(header.profiles) {
        let profile: Profile =
            serde_json::from_slice(payload).map_err(|e| damaged(format!("profile: {e}")))?;
        let id = profile
            .id()
            .cloned()
            .ok_or_else(|| damaged("a profile without an id".into()))?;
        profiles.insert(id, profile);
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

/// Replaces the snapshot in `dir` with `profiles` as of sequence number `last_seq`.
fn write(dir: &Path, last_seq: u64, profiles: &Profiles) -> io::Result<()> {
    let mut bytes = Vec::new();
    let header = Header {
        last_seq,
        profiles: profiles.len(),
    };
    log::frame(
        &mut bytes,
        &serde_json::to_vec(&header).expect("a header serializes"),
    );
    for profile in profiles.values() {
        log::frame(
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
    use crate::state::{Op, OpKind};
    use profile_traits::{Patch, ProfileId};

    fn schema() -> StoreSchema {
        serde_json::from_str(include_str!("../schema.json")).unwrap()
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "profile-service-unit-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Appends `ops` to the log in `dir` as the writer would.
    fn append(dir: &Path, ops: &[(Op, &str)]) {
        let mut bytes = Vec::new();
        for (op, body) in ops {
            log::encode(
                &mut bytes,
                "mem_store_00000000000000000000000000",
                op,
                body.as_bytes(),
            );
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
        let dir = temp_dir("compact");
        let id = ProfileId::from_bits(5);
        append(&dir, &ops(&id));

        let first = recover(&dir, &schema).unwrap();
        assert_eq!(
            (first.snapshot_seq, first.replayed, first.next_seq),
            (0, 2, 3)
        );
        let expected = serde_json::to_string(&first.profiles[&id]).unwrap();
        assert_eq!(
            expected,
            r#"{"id":"mem_profile_00000000000000000000000005","createdAt":"2026-01-01T00:00:00Z","traits":{"Contact":{"lastName":"Doe"},"Activity":{"vip":true}}}"#
        );
        assert_eq!(fs::metadata(dir.join("operations.log")).unwrap().len(), 0);
        drop(first);

        // A crash between the snapshot's rename and the log's truncation: the records are
        // still there, and must not be applied a second time.
        append(&dir, &ops(&id));
        let second = recover(&dir, &schema).unwrap();
        assert_eq!(
            (second.snapshot_seq, second.replayed, second.next_seq),
            (2, 0, 3)
        );
        assert_eq!(
            serde_json::to_string(&second.profiles[&id]).unwrap(),
            expected
        );
        drop(second);

        // Nothing new: no compaction needed, same state.
        let third = recover(&dir, &schema).unwrap();
        assert_eq!(
            (third.snapshot_seq, third.replayed, third.next_seq),
            (2, 0, 3)
        );
        assert_eq!(
            serde_json::to_string(&third.profiles[&id]).unwrap(),
            expected
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_snapshot_stops_the_start() {
        let schema = schema();
        let dir = temp_dir("damaged");
        append(&dir, &ops(&ProfileId::from_bits(6)));
        drop(recover(&dir, &schema).unwrap());
        let path = dir.join(SNAPSHOT_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
        let error = recover(&dir, &schema).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        fs::remove_dir_all(&dir).unwrap();
    }
}
