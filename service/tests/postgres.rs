//! On PostgreSQL (`PROFILE_SERVICE_POSTGRES_URL`; skipped with a message without it): two
//! service instances on one database, concurrent writers through both, one instance killed
//! with SIGKILL mid-stream and a third started in its place; and the database restarted
//! under load (`PROFILE_SERVICE_POSTGRES_RESTART`, a shell command): 503 meanwhile, then
//! recovery without help. Every write answered 202 is applied exactly once, and each profile
//! ends at the last write accepted for it.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Client, STORE, Server, pg_count, pg_rows, postgres_url, profile_path, wait_for};

const WRITERS: usize = 8;
const ATTEMPTS_PER_WRITER: usize = 150;
const KILL_AFTER_ACCEPTED: usize = 300;

/// The tests here run one at a time: one restarts the database the other uses.
static SERIAL: Mutex<()> = Mutex::new(());

/// The `i`-th patch of writer `w`: its `lastName` and `visitCount` name the write.
pub(crate) fn patch_body(w: usize, i: usize) -> String {
    format!(
        r#"{{"traits": {{"Contact": {{"lastName": "w{w}-{i}", "city": "c{}"}}, "Activity": {{"visitCount": {i}}}}}}}"#,
        i % 3
    )
}

/// One attempt: its body and status (`None`: no answer, the connection broke).
pub(crate) struct Attempt {
    pub(crate) i: usize,
    pub(crate) body: String,
    pub(crate) status: Option<u16>,
    pub(crate) instance: usize,
}

/// Says why a test did nothing (on stderr: shown with `--nocapture`).
fn skipped(why: &str) {
    eprintln!("skipped: {why}");
}

fn start_on(url: &str) -> Server {
    Server::start_with(&["--postgres", url])
}

/// Every body answered 202 is in `ops` exactly once, applied exactly once; no op was applied
/// twice; each profile's `lastName`/`visitCount` come from its last accepted write or a later
/// attempt that got no 202 (it may have been committed before its answer was lost).
pub(crate) fn check_exactly_once(
    url: &str,
    client: &Client,
    profiles: &[String],
    attempts: &[Vec<Attempt>],
) -> usize {
    wait_for("every operation applied", Duration::from_secs(60), || {
        (pg_count(url, "SELECT count(*) FROM ops WHERE NOT applied") == 0).then_some(())
    });
    assert_eq!(
        pg_count(url, "SELECT count(*) FROM ops WHERE applications <> 1"),
        0,
        "a row of operations was applied other than once"
    );
    let mut logged: HashMap<String, usize> = HashMap::new();
    for row in pg_rows(
        url,
        "SELECT convert_from(b, 'UTF8') FROM ops, unnest(bodies, kinds) AS u(b, k) \
         WHERE k = 'patch'",
    ) {
        *logged.entry(row[0].clone()).or_default() += 1;
    }
    let mut accepted = 0;
    for (w, attempts) in attempts.iter().enumerate() {
        for attempt in attempts.iter().filter(|a| a.status == Some(202)) {
            accepted += 1;
            assert_eq!(
                logged.get(&attempt.body),
                Some(&1),
                "writer {w}: accepted {} not logged exactly once",
                attempt.body
            );
        }
        let last_accepted = attempts
            .iter()
            .rposition(|a| a.status == Some(202))
            .expect("every writer got some 202");
        let allowed: Vec<usize> = attempts[last_accepted..]
            .iter()
            .filter(|a| a.status == Some(202) || a.status.is_none() || a.status == Some(503))
            .map(|a| a.i)
            .collect();
        let profile = client.get(&profile_path(&profiles[w])).unwrap();
        assert_eq!(profile.status, 200, "{}", profile.body);
        let traits = &profile.json()["traits"];
        let last_name = traits["Contact"]["lastName"].as_str().unwrap().to_owned();
        let i: usize = last_name
            .strip_prefix(&format!("w{w}-"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            allowed.contains(&i),
            "writer {w}: ends at write {i}, last accepted {}",
            attempts[last_accepted].i
        );
        assert_eq!(traits["Activity"]["visitCount"], i, "{}", profile.body);
    }
    accepted
}

/// Creates one profile per writer through `client`; their ids.
pub(crate) fn create_profiles(client: &Client, tag: &str) -> Vec<String> {
    (0..WRITERS)
        .map(|w| {
            let response = client
                .post(
                    &format!("/v1/Stores/{STORE}/Profiles"),
                    &format!(
                        r#"{{"traits": {{"Contact": {{"email": "{tag}-w{w}@example.com"}}}}}}"#
                    ),
                )
                .unwrap();
            assert_eq!(response.status, 202, "{}", response.body);
            response.json()["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn two_instances_one_killed_every_accepted_write_applied_exactly_once() {
    if postgres_url().is_none() {
        eprintln!(
            "skipped: PROFILE_SERVICE_POSTGRES_URL is not set (service/run-tests.sh sets it)"
        );
        return;
    }
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let url = common::fresh_database("twoinstances");
    let a = start_on(&url);
    let b = start_on(&url);
    assert_eq!(a.started["storage"], "postgres");

    // The same new email created through both instances at once resolves to one profile.
    let ids: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|n| {
                let client = if n % 2 == 0 { a.client() } else { b.client() };
                scope.spawn(move || {
                    let response = client
                        .post(
                            &format!("/v1/Stores/{STORE}/Profiles"),
                            r#"{"traits": {"Contact": {"email": "same@example.com"}}}"#,
                        )
                        .unwrap();
                    assert_eq!(response.status, 202, "{}", response.body);
                    response.json()["id"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert_eq!(pg_count(&url, "SELECT count(*) FROM accepted"), 1);

    let profiles = create_profiles(&a.client(), "two");
    // Writers alternate between the instances in `targets`; A is replaced by C once killed.
    let targets = Arc::new(Mutex::new(vec![(0, a.client()), (1, b.client())]));
    let accepted = Arc::new(AtomicUsize::new(0));
    let attempts: Vec<Vec<Attempt>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (targets, accepted, profile) = (
                    Arc::clone(&targets),
                    Arc::clone(&accepted),
                    profiles[w].clone(),
                );
                scope.spawn(move || {
                    let mut attempts = Vec::new();
                    for i in 0..ATTEMPTS_PER_WRITER {
                        let (instance, client) = {
                            let targets = targets.lock().unwrap();
                            targets[(w + i) % targets.len()].clone()
                        };
                        let body = patch_body(w, i);
                        let status = client.patch(&profile_path(&profile), &body).ok().map(|r| {
                            assert!(
                                r.status == 202 || r.status == 503,
                                "{} {}",
                                r.status,
                                r.body
                            );
                            r.status
                        });
                        if status == Some(202) {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        attempts.push(Attempt {
                            i,
                            body,
                            status,
                            instance,
                        });
                    }
                    attempts
                })
            })
            .collect();
        wait_for("writes accepted", Duration::from_secs(120), || {
            (accepted.load(Ordering::SeqCst) >= KILL_AFTER_ACCEPTED).then_some(())
        });
        a.kill();
        let c = start_on(&url);
        targets.lock().unwrap()[0] = (2, c.client());
        let attempts = handles.into_iter().map(|h| h.join().unwrap()).collect();
        drop(c);
        attempts
    });
    let per_instance = |n| {
        attempts
            .iter()
            .flatten()
            .filter(|a| a.instance == n && a.status == Some(202))
            .count()
    };
    assert!(
        per_instance(0) > 0 && per_instance(1) > 0 && per_instance(2) > 0,
        "202s through A, B, C: {}, {}, {}",
        per_instance(0),
        per_instance(1),
        per_instance(2)
    );
    let accepted = check_exactly_once(&url, &b.client(), &profiles, &attempts);
    assert!(accepted >= KILL_AFTER_ACCEPTED, "{accepted}");
    eprintln!(
        "two instances: {accepted} accepted ({} through A before its SIGKILL, {} through B, {} through C)",
        per_instance(0),
        per_instance(1),
        per_instance(2)
    );
}

#[test]
fn the_database_restarted_under_load_gives_503_then_recovers_losing_nothing() {
    if postgres_url().is_none() {
        eprintln!(
            "skipped: PROFILE_SERVICE_POSTGRES_URL is not set (service/run-tests.sh sets it)"
        );
        return;
    }
    let Some(restart) = std::env::var("PROFILE_SERVICE_POSTGRES_RESTART")
        .ok()
        .filter(|c| !c.is_empty())
    else {
        skipped("PROFILE_SERVICE_POSTGRES_RESTART (a command restarting the server) is not set");
        return;
    };
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let url = common::fresh_database("restart");
    let server = start_on(&url);
    let profiles = create_profiles(&server.client(), "restart");
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let (attempts, (restarted_at, recovered_in)) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (client, accepted, stop, unavailable, profile) = (
                    server.client(),
                    Arc::clone(&accepted),
                    Arc::clone(&stop),
                    Arc::clone(&unavailable),
                    profiles[w].clone(),
                );
                scope.spawn(move || {
                    let mut attempts = Vec::new();
                    let mut i = 0;
                    // Bounded: at most 20,000 attempts, or until told to stop.
                    while !stop.load(Ordering::SeqCst) && i < 20_000 {
                        let body = patch_body(w, i);
                        let response = client.patch(&profile_path(&profile), &body).unwrap();
                        match response.status {
                            202 => {
                                accepted.fetch_add(1, Ordering::SeqCst);
                            }
                            503 => {
                                assert_eq!(response.header("Retry-After"), Some("5"));
                                assert_eq!(response.json()["code"], 20503, "{}", response.body);
                                unavailable.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            other => panic!("{other}: {}", response.body),
                        }
                        attempts.push(Attempt {
                            i,
                            body,
                            status: Some(response.status),
                            instance: 0,
                        });
                        i += 1;
                    }
                    attempts
                })
            })
            .collect();
        wait_for(
            "writes accepted before the restart",
            Duration::from_secs(60),
            || (accepted.load(Ordering::SeqCst) >= 300).then_some(()),
        );
        let status = std::process::Command::new("sh")
            .args(["-c", &restart])
            .status()
            .expect("the restart command runs");
        assert!(status.success(), "{restart}: {status}");
        let restarted = std::time::Instant::now();
        let before = accepted.load(Ordering::SeqCst);
        wait_for(
            "a write accepted after the restart",
            Duration::from_secs(60),
            || (accepted.load(Ordering::SeqCst) > before).then_some(()),
        );
        let recovered_in = restarted.elapsed();
        // Recovers by itself: writes are accepted again without any help.
        wait_for(
            "writes accepted after the restart",
            Duration::from_secs(60),
            || (accepted.load(Ordering::SeqCst) >= before + 300).then_some(()),
        );
        stop.store(true, Ordering::SeqCst);
        let attempts: Vec<Vec<Attempt>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (attempts, (before, recovered_in))
    });
    let refused = unavailable.load(Ordering::SeqCst);
    assert!(refused > 0, "no 503 while the database restarted");
    // Reads come back too.
    let client = server.client();
    let accepted = check_exactly_once(&url, &client, &profiles, &attempts);
    eprintln!(
        "database restart: {accepted} accepted ({restarted_at} before the restart), {refused} answered 503 meanwhile, the first 202 {recovered_in:?} after pg_ctl returned"
    );
}
