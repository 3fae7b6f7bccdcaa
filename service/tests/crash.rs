//! "Accepted" means durable: patches from concurrent clients, the service killed with SIGKILL
//! mid-stream, restarted; every profile must equal the sequential merge of the patches that
//! got a 202 (per profile, in acceptance order), each applied exactly once.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{Client, STORE, Server, profile_path, wait_for};
use profile_traits::{Patch, Profile, Stamp, StoreSchema, StoredProfile, merge};

const CLIENTS: usize = 8;
const KILL_AFTER_ACCEPTED: usize = 240;
const MAX_PER_CLIENT: usize = 5_000;

fn schema() -> StoreSchema {
    serde_json::from_str(include_str!("../schema.json")).unwrap()
}

/// The `i`-th patch of client `c`: sets, replacements and removals over three groups, so
/// that order of application is visible in the result.
fn patch_body(c: usize, i: usize) -> String {
    let mut contact = vec![format!(r#""lastName": "c{c}-{i}""#)];
    match i % 4 {
        0 => contact.push(r#""city": null"#.to_owned()),
        1 => contact.push(format!(r#""city": "city-{i}""#)),
        _ => {}
    }
    let activity = if i.is_multiple_of(5) {
        r#""vip": null"#.to_owned()
    } else {
        format!(r#""visitCount": {i}, "vip": {}"#, i.is_multiple_of(2))
    };
    let preferences = format!(r#""channels": ["sms", "c{c}", "n{}"]"#, i % 7);
    format!(
        r#"{{"traits": {{"Contact": {{{}}}, "Activity": {{{activity}}}, "Preferences": {{{preferences}}}}}}}"#,
        contact.join(", ")
    )
}

/// What one client saw: the patches answered 202, in order, and the one in flight when the
/// connection broke (it may or may not have been made durable).
struct Outcome {
    profile: String,
    created_with: String,
    accepted: Vec<String>,
    in_flight: Option<String>,
}

/// Starts one client thread per profile: client `c` sends `patch_body(c, i)`, with
/// `Event-Time` `event_time(c, i)` when `with_event_time`, counting accepted patches in
/// `total`.
fn spawn_clients(
    client: &Client,
    profiles: Vec<(String, String)>,
    with_event_time: bool,
    total: &Arc<AtomicUsize>,
) -> Vec<JoinHandle<Outcome>> {
    profiles
        .into_iter()
        .enumerate()
        .map(|(c, (id, created_with))| {
            let client = client.clone();
            let total = Arc::clone(total);
            std::thread::spawn(move || {
                run_client(
                    client,
                    |i| patch_body(c, i),
                    |i| with_event_time.then(|| event_time(c, i)),
                    id,
                    created_with,
                    total,
                )
            })
        })
        .collect()
}

fn run_client(
    client: Client,
    patch_body: impl Fn(usize) -> String,
    event_time: impl Fn(usize) -> Option<String>,
    profile: String,
    created_with: String,
    total: Arc<AtomicUsize>,
) -> Outcome {
    let mut accepted = Vec::new();
    for i in 0..MAX_PER_CLIENT {
        let body = patch_body(i);
        let sent = match event_time(i) {
            Some(at) => client.patch_at(&profile_path(&profile), &at, &body),
            None => client.patch(&profile_path(&profile), &body),
        };
        match sent {
            Ok(response) => {
                assert_eq!(response.status, 202, "{}", response.body);
                assert_eq!(
                    response.json(),
                    serde_json::json!({"message": "Trait modifications accepted for processing."})
                );
                accepted.push(body);
                total.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                return Outcome {
                    profile,
                    created_with,
                    accepted,
                    in_flight: Some(body),
                };
            }
        }
    }
    Outcome {
        profile,
        created_with,
        accepted,
        in_flight: None,
    }
}

/// The traits of `profile` as the service answers them, in its order.
fn traits_of(client: &Client, id: &str) -> String {
    let response = client.get(&profile_path(id)).unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("Canonical-Profile-Id"), Some(id));
    let mut profile: Profile = serde_json::from_str(&response.body).unwrap();
    assert_eq!(profile.id().map(|i| i.as_str()), Some(id));
    assert!(profile.created_at().is_some());
    profile.set_id(None);
    profile.set_created_at(None);
    serde_json::to_string(&profile).unwrap()
}

/// The sequential merge of `patches` into an empty profile, in order, as JSON.
fn sequential(schema: &StoreSchema, patches: &[&str]) -> String {
    let mut profile = Profile::new();
    for body in patches {
        let patch = Patch::from_slice(body.as_bytes()).unwrap();
        profile = merge(&profile, &patch, schema).unwrap();
    }
    // The service keeps groups and traits in the schema's order (the merge, in the order
    // they were added): compared as maps (law 12).
    let mut ordered = StoredProfile::from_profile(profile, Stamp::MIN);
    ordered.sort_by_schema(schema);
    serde_json::to_string(&ordered.view()).unwrap()
}

fn create_profiles(client: &Client) -> Vec<(String, String)> {
    (0..CLIENTS)
        .map(|c| {
            let body = format!(
                r#"{{"traits": {{"Contact": {{"email": "client{c}@example.com", "firstName": "client{c}", "city": "start"}}, "Activity": {{"vip": true}}}}}}"#
            );
            let response = client
                .post(&format!("/v1/Stores/{STORE}/Profiles"), &body)
                .unwrap();
            assert_eq!(response.status, 202, "{}", response.body);
            let id = response.json()["id"].as_str().unwrap().to_owned();
            (id, body)
        })
        .collect()
}

/// Checks every profile against its outcome; an in-flight patch found applied is moved to
/// the accepted ones. Returns how many in-flight patches turned out to be durable.
fn check(client: &Client, schema: &StoreSchema, outcomes: &mut [Outcome]) -> usize {
    let mut durable_in_flight = 0;
    for outcome in outcomes {
        let mut patches: Vec<&str> = vec![&outcome.created_with];
        patches.extend(outcome.accepted.iter().map(String::as_str));
        let without = sequential(schema, &patches);
        let actual = traits_of(client, &outcome.profile);
        let in_flight = outcome.in_flight.take();
        if actual == without {
            continue;
        }
        let with = in_flight.as_deref().map(|p| {
            patches.push(p);
            sequential(schema, &patches)
        });
        assert_eq!(
            Some(&actual),
            with.as_ref(),
            "profile {} is neither the merge of its {} accepted patches ({without}) nor that plus the one in flight",
            outcome.profile,
            outcome.accepted.len(),
        );
        outcome.accepted.extend(in_flight);
        durable_in_flight += 1;
    }
    durable_in_flight
}

#[test]
fn sigkill_mid_stream_loses_no_accepted_patch_and_applies_each_once() {
    let schema = schema();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(dir);
    assert_eq!(server.replayed(), 0);
    let client = server.client();
    let profiles = create_profiles(&client);

    let total = Arc::new(AtomicUsize::new(0));
    let workers = spawn_clients(&client, profiles, false, &total);
    wait_for("enough accepted patches", Duration::from_secs(120), || {
        (total.load(Ordering::SeqCst) >= KILL_AFTER_ACCEPTED).then_some(())
    });
    server.kill();
    let outcomes: Vec<Outcome> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(
        outcomes.iter().all(|o| o.in_flight.is_some()),
        "every client was cut off mid-stream"
    );
    let accepted: usize = outcomes.iter().map(|o| o.accepted.len()).sum();

    let server = Server::start(dir);
    let client = server.client();
    // Replay is synchronous: once the service listens, GET shows every durable operation.
    let mut outcomes = outcomes;
    let durable_in_flight = check(&client, &schema, &mut outcomes);
    eprintln!(
        "accepted {accepted} patches before SIGKILL; {durable_in_flight} in-flight patches were durable"
    );
    // Exactly once: the log holds each create and each accepted patch one time, plus the
    // in-flight patches that reached the disk before the kill.
    assert_eq!(server.replayed(), CLIENTS + accepted + durable_in_flight);

    // The service goes on accepting after recovery, and a second SIGKILL loses nothing.
    for (c, outcome) in outcomes.iter_mut().enumerate() {
        let body = patch_body(c, 100_000);
        let response = client
            .patch(&profile_path(&outcome.profile), &body)
            .unwrap();
        assert_eq!(response.status, 202, "{}", response.body);
        outcome.accepted.push(body);
    }
    server.kill();
    let server = Server::start(dir);
    assert_eq!(check(&server.client(), &schema, &mut outcomes), 0);
    // The first restart compacted: a snapshot of everything before, and a log holding only
    // the patches accepted since.
    assert_eq!(
        server.snapshot_seq(),
        CLIENTS + accepted + durable_in_flight
    );
    assert_eq!(server.replayed(), CLIENTS);
}

#[test]
fn a_torn_last_record_is_cut_and_the_rest_kept() {
    let schema = schema();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(dir);
    let client = server.client();
    let profiles = create_profiles(&client);
    let (id, created_with) = &profiles[0];
    let body = patch_body(0, 1);
    assert_eq!(client.patch(&profile_path(id), &body).unwrap().status, 202);
    server.kill();

    // A crash in the middle of a write leaves a record's beginning: a length, a checksum,
    // part of the payload, written over the zeros the log writes ahead of its records (the
    // records end with a request body's last byte, never a zero).
    let log = dir.join("operations.log");
    let mut bytes = std::fs::read(&log).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    let torn = [200u8, 0, 0, 0, 1, 2, 3, 4, b'{', b'"'];
    bytes.truncate(end);
    bytes.extend_from_slice(&torn);
    bytes.resize(bytes.len().max(end + 4096), 0);
    std::fs::write(&log, &bytes).unwrap();

    let server = Server::start(dir);
    assert_eq!(server.torn_bytes(), torn.len());
    assert_eq!(server.replayed(), CLIENTS + 1);
    let client = server.client();
    assert_eq!(
        traits_of(&client, id),
        sequential(&schema, &[created_with, &body])
    );

    let later = patch_body(0, 2);
    assert_eq!(client.patch(&profile_path(id), &later).unwrap().status, 202);
    server.kill();
    let server = Server::start(dir);
    assert_eq!(server.torn_bytes(), 0);
    assert_eq!(
        traits_of(&server.client(), id),
        sequential(&schema, &[created_with, &body, &later])
    );
}

#[test]
fn deletes_and_creates_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(dir);
    let client = server.client();
    let profiles = create_profiles(&client);
    let gone = &profiles[1].0;
    assert_eq!(client.delete(&profile_path(gone)).unwrap().status, 202);
    // A patch after the delete was accepted finds no profile.
    let response = client
        .patch(&profile_path(gone), &patch_body(1, 0))
        .unwrap();
    assert_eq!(response.status, 404, "{}", response.body);
    server.kill();

    let server = Server::start(dir);
    let client = server.client();
    assert_eq!(client.get(&profile_path(gone)).unwrap().status, 404);
    assert_eq!(
        client.get(&profile_path(&profiles[0].0)).unwrap().status,
        200
    );
}

/// The `i`-th patch of the client that owns group `group` of a shared profile: sets,
/// replacements, and every fifth patch a removal of the whole group (dropping it).
fn group_patch(group: &str, i: usize) -> String {
    let traits = match (group, i % 5) {
        ("Contact", 4) => r#""lastName": null, "city": null, "firstName": null"#.to_owned(),
        ("Contact", _) => format!(r#""city": "x{i}", "lastName": "l{i}""#),
        ("Activity", 4) => r#""visitCount": null, "vip": null"#.to_owned(),
        ("Activity", _) => format!(r#""vip": {}, "visitCount": {i}"#, i.is_multiple_of(3)),
        (_, 4) => r#""channels": null, "language": null"#.to_owned(),
        (_, _) => format!(r#""language": "l{i}", "channels": ["c{i}"]"#),
    };
    format!(r#"{{"traits": {{"{group}": {{{traits}}}}}}}"#)
}

/// Each group of a profile as JSON (traits in order), by group name.
fn groups_of(profile_json: &str) -> BTreeMap<String, String> {
    let profile: Profile = serde_json::from_str(profile_json).unwrap();
    profile
        .groups()
        .map(|(name, group)| (name.to_owned(), serde_json::to_string(group).unwrap()))
        .collect()
}

/// Several clients patch the same profile at once, each its own trait group: their relative
/// order is not observable, but each group must be the sequential merge of its client's
/// accepted patches, in order (trait order included). Patches queued for one profile by
/// different clients are what the applier coalesces.
#[test]
fn concurrent_clients_on_shared_profiles_survive_sigkill() {
    const GROUPS: [&str; 3] = ["Contact", "Activity", "Preferences"];
    let schema = schema();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(dir);
    let client = server.client();
    let ids: Vec<(String, String)> = (0..4)
        .map(|k| {
            let created_with = format!(
                r#"{{"traits": {{"Contact": {{"email": "shared{k}@example.com", "firstName": "shared"}}, "Activity": {{"vip": true}}, "Preferences": {{"language": "en"}}}}}}"#
            );
            let response = client
                .post(&format!("/v1/Stores/{STORE}/Profiles"), &created_with)
                .unwrap();
            assert_eq!(response.status, 202, "{}", response.body);
            let id = response.json()["id"].as_str().unwrap().to_owned();
            (id, created_with)
        })
        .collect();
    let total = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for (id, created_with) in &ids {
        for group in GROUPS {
            let (client, total, id) = (client.clone(), Arc::clone(&total), id.clone());
            let created_with = created_with.clone();
            workers.push(std::thread::spawn(move || {
                let outcome = run_client(
                    client,
                    |i| group_patch(group, i),
                    |_| None,
                    id,
                    created_with,
                    total,
                );
                (group, outcome)
            }));
        }
    }
    wait_for("enough accepted patches", Duration::from_secs(120), || {
        (total.load(Ordering::SeqCst) >= KILL_AFTER_ACCEPTED).then_some(())
    });
    server.kill();
    let outcomes: Vec<(&str, Outcome)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let accepted: usize = outcomes.iter().map(|(_, o)| o.accepted.len()).sum();

    let server = Server::start(dir);
    let client = server.client();
    let mut durable_in_flight = 0;
    for (group, outcome) in &outcomes {
        let response = client.get(&profile_path(&outcome.profile)).unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        let actual = groups_of(&response.body).remove(*group);
        let mut patches: Vec<&str> = vec![&outcome.created_with];
        patches.extend(outcome.accepted.iter().map(String::as_str));
        let expected = |patches: &[&str]| groups_of(&sequential(&schema, patches)).remove(*group);
        if actual == expected(&patches) {
            continue;
        }
        patches.push(
            outcome
                .in_flight
                .as_deref()
                .expect("a client cut off mid-stream"),
        );
        assert_eq!(
            actual,
            expected(&patches),
            "group {group} of {} is neither the merge of its client's {} accepted patches nor that plus the one in flight",
            outcome.profile,
            outcome.accepted.len()
        );
        durable_in_flight += 1;
    }
    assert_eq!(server.replayed(), ids.len() + accepted + durable_in_flight);
}

/// With a small `--compact-log-bytes`, the log is snapshotted and cut short over and over
/// while patches stream in: its size stays bounded, and a SIGKILL at any point of a
/// compaction (before or after the snapshot's rename, before or after the log's) loses no
/// accepted patch and applies none twice.
#[test]
fn compaction_while_running_bounds_the_log_and_survives_sigkill() {
    const THRESHOLD: u64 = 16 * 1024;
    const PATCHES: usize = 4_000;
    let schema = schema();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let args = [
        "--data-dir",
        dir.to_str().unwrap(),
        "--compact-log-bytes",
        &THRESHOLD.to_string(),
    ];
    let server = Server::start_with(&args);
    let client = server.client();
    let profiles = create_profiles(&client);
    let total = Arc::new(AtomicUsize::new(0));
    let workers = spawn_clients(&client, profiles, false, &total);
    let log = dir.join("operations.log");
    let mut largest = 0;
    wait_for("enough accepted patches", Duration::from_secs(300), || {
        largest = largest.max(std::fs::metadata(&log).map_or(0, |m| m.len()));
        (total.load(Ordering::SeqCst) >= PATCHES).then_some(())
    });
    server.kill();
    let mut outcomes: Vec<Outcome> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let accepted: usize = outcomes.iter().map(|o| o.accepted.len()).sum();
    // Each record is about 300 bytes: the patches alone made over 1 MB of log.
    eprintln!("largest log seen: {largest} bytes, {accepted} patches accepted");
    assert!(
        largest < 8 * THRESHOLD,
        "the log reached {largest} bytes with a threshold of {THRESHOLD}"
    );

    let server = Server::start_with(&args);
    let durable_in_flight = check(&server.client(), &schema, &mut outcomes);
    // Exactly once: sequence numbers are contiguous, the snapshot holds those up to its own,
    // and recovery replays exactly the others.
    assert!(server.snapshot_seq() > 0, "{}", server.started);
    assert_eq!(
        server.snapshot_seq() + server.replayed(),
        CLIENTS + accepted + durable_in_flight
    );
}

/// The `Event-Time` of patch `i` of client `c`: in 2030, after the creates' clock stamps,
/// increasing per client and distinct between clients.
fn event_time(c: usize, i: usize) -> String {
    let base = 1_893_456_000_000_000; // 2030-01-01T00:00:00Z
    let micros = base + i as i64 * 1_000_000 + c as i64;
    Stamp::new(micros, 0).unwrap().to_string()
}

/// The traits `patch_body(c, i)` writes (sets or removes), as `group.name`.
fn written_by(i: usize) -> Vec<&'static str> {
    let mut traits = vec!["Contact.lastName", "Activity.vip", "Preferences.channels"];
    if i % 4 <= 1 {
        traits.push("Contact.city");
    }
    if !i.is_multiple_of(5) {
        traits.push("Activity.visitCount");
    }
    traits
}

/// Writes carrying `Event-Time`, SIGKILL mid-stream, restart: every accepted write is
/// applied once, and each trait keeps the stamp it was accepted with, as the stored form
/// shows: the event time of the last write naming it, with a tiebreaker (the log sequence
/// number) of its own; the listing shows the same times at second precision.
#[test]
fn sigkill_keeps_the_stamps_writes_were_accepted_with() {
    let schema = schema();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(dir);
    let client = server.client();
    let profiles = create_profiles(&client);
    let total = Arc::new(AtomicUsize::new(0));
    let workers = spawn_clients(&client, profiles, true, &total);
    wait_for("enough accepted patches", Duration::from_secs(120), || {
        (total.load(Ordering::SeqCst) >= KILL_AFTER_ACCEPTED).then_some(())
    });
    server.kill();
    let mut outcomes: Vec<Outcome> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let accepted: usize = outcomes.iter().map(|o| o.accepted.len()).sum();

    let server = Server::start(dir);
    let client = server.client();
    let durable_in_flight = check(&client, &schema, &mut outcomes);
    assert_eq!(server.replayed(), CLIENTS + accepted + durable_in_flight);

    // The restart compacted: the snapshot holds every profile's stored form.
    let stored = common::snapshot_profiles(dir);
    let mut stamps = Vec::new();
    for (c, outcome) in outcomes.iter().enumerate() {
        let profile = &stored[&outcome.profile];
        let mut last_write = BTreeMap::new();
        for i in 0..outcome.accepted.len() {
            for name in written_by(i) {
                last_write.insert(name, event_time(c, i));
            }
        }
        for (name, at) in &last_write {
            let (group, trait_name) = name.split_once('.').unwrap();
            let entry = &profile["traits"][group][trait_name];
            assert_eq!(
                entry["time"],
                serde_json::json!(at),
                "{name} of {}: {entry}",
                outcome.profile
            );
        }
        for group in profile["traits"].as_object().unwrap().values() {
            for entry in group.as_object().unwrap().values() {
                let time = entry["time"].as_str().unwrap().to_owned();
                stamps.push((time, entry["tiebreak"].as_u64().unwrap()));
            }
        }
        let listing = client
            .get(&format!(
                "{}?traitGroups=Contact",
                common::traits_path(&outcome.profile)
            ))
            .unwrap()
            .json();
        let last_name = listing["traits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "lastName")
            .unwrap()
            .clone();
        let stamp: Stamp = last_write["Contact.lastName"].parse().unwrap();
        assert_eq!(
            last_name["timestamp"],
            serde_json::json!(stamp.to_seconds_string())
        );
    }
    // Entries of one write share its stamp; different writes never share a tiebreaker.
    stamps.sort();
    stamps.dedup();
    let mut tiebreaks: Vec<u64> = stamps.iter().map(|(_, t)| *t).collect();
    tiebreaks.sort_unstable();
    tiebreaks.dedup();
    assert_eq!(tiebreaks.len(), stamps.len(), "{stamps:?}");
    assert!(tiebreaks.iter().all(|&t| t > 0));
}
