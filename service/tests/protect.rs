//! The protective answers over HTTP/1.1, each with status, code, headers and body: 403 for a
//! key limited to other stores, 429 with `Retry-After` over a key's rate, 503 with
//! `Retry-After` for a full write queue, unreachable storage and a shutdown in progress,
//! SIGTERM draining and exiting 0 with every 202 kept, 500 from a panicking handler on an
//! answered connection, and 405 with `Allow`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{SID, STORE, Server, TOKEN, basic, profile_path, wait_for};
use serde_json::json;

/// A second store id (well formed, not served).
const OTHER_STORE: &str = "mem_store_00000000000000000000000001";

/// A response with its headers.
struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: String,
}

impl Answer {
    #[track_caller]
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the error body's `code` and `status`, and its `more_info`; returns `message`.
    #[track_caller]
    fn error(&self, status: u16, code: u32) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}",
            self.body
        );
        let body = self.json();
        assert_eq!(body["code"], json!(code), "{body}");
        assert_eq!(body["status"], json!(status), "{body}");
        assert_eq!(
            body["more_info"],
            json!(format!("https://www.twilio.com/docs/api/errors/{code}"))
        );
        let object = body.as_object().unwrap();
        assert_eq!(object.len(), 4, "{body}");
        body["message"].as_str().unwrap().to_owned()
    }
}

/// A client that keeps its connections (one `ureq` agent) and reads headers.
#[derive(Clone)]
struct Http {
    base: String,
    authorization: String,
    agent: ureq::Agent,
}

impl Http {
    fn new(server: &Server, user: &str, password: &str) -> Http {
        Http {
            base: format!("http://127.0.0.1:{}", server.port),
            authorization: basic(user, password),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .new_agent(),
        }
    }

    fn send(&self, method: &str, path: &str, body: Option<&str>) -> Result<Answer, ureq::Error> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Authorization", &self.authorization);
        if body.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        let request = request.body(body.unwrap_or_default().as_bytes().to_vec())?;
        let mut response = self.agent.run(request)?;
        Ok(Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.body_mut().read_to_string()?,
        })
    }

    #[track_caller]
    fn must(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        self.send(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Creates a profile; its id.
    #[track_caller]
    /// Creates a profile from [`new_profile`]`(name)`; returns its id.
    fn create(&self, name: &str) -> String {
        let answer = self.must(
            "POST",
            &format!("/v1/Stores/{STORE}/Profiles"),
            Some(&new_profile(name)),
        );
        assert_eq!(answer.status, 202, "{}", answer.body);
        answer.json()["id"].as_str().unwrap().to_owned()
    }

    /// Sets the test faults (the service runs with `--test-faults`).
    #[track_caller]
    fn faults(&self, settings: serde_json::Value) {
        let answer = self.must("PUT", "/__test/faults", Some(&settings.to_string()));
        assert_eq!(answer.status, 204, "{}", answer.body);
    }
}

/// A create body: `lastName` `name` and an email made of it (a create must carry an
/// identifier trait).
fn new_profile(name: &str) -> String {
    format!(
        r#"{{"traits": {{"Contact": {{"email": "{name}@example.com", "lastName": "{name}"}}}}}}"#
    )
}

fn last_name(name: &str) -> String {
    format!(r#"{{"traits": {{"Contact": {{"lastName": "{name}"}}}}}}"#)
}

fn trait_groups() -> String {
    format!("/v1/ControlPlane/Stores/{STORE}/TraitGroups")
}

/// Sends SIGTERM to the service.
fn terminate(server: &Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (at most 30 s) for the service to exit; its exit code.
fn exit_code(server: &mut Server) -> Option<i32> {
    let status = wait_for("the service to exit", Duration::from_secs(30), || {
        server.child.try_wait().unwrap()
    });
    status.code()
}

#[test]
fn keys_from_a_file_may_use_only_their_stores() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(
        &keys,
        json!([
            {"sid": "SKserved", "secret": "served-secret", "stores": [STORE]},
            {"sid": "SKother", "secret": "other-secret", "stores": [OTHER_STORE]},
        ])
        .to_string(),
    )
    .unwrap();
    let server = Server::start_with(&["--in-memory", "--credentials", keys.to_str().unwrap()]);
    let pair = Http::new(&server, SID, TOKEN);
    let served = Http::new(&server, "SKserved", "served-secret");
    let other = Http::new(&server, "SKother", "other-secret");

    // The pair and the key of the store served may use it.
    let id = pair.create("pair");
    let mine = served.create("served");
    assert_eq!(served.must("GET", &trait_groups(), None).status, 200);

    // Valid credentials for another store: 403 on every route of the store served.
    let routes = [
        ("GET", profile_path(&id), None),
        ("PATCH", profile_path(&mine), Some(last_name("x"))),
        ("DELETE", profile_path(&mine), None),
        (
            "POST",
            format!("/v1/Stores/{STORE}/Profiles"),
            Some(last_name("x")),
        ),
        ("GET", trait_groups(), None),
    ];
    for (method, path, body) in &routes {
        let answer = other.must(method, path, body.as_deref());
        let message = answer.error(403, 403);
        assert_eq!(
            message,
            format!(
                "Permission to access resource denied: key `SKother` may not use store `{STORE}`"
            ),
            "{method} {path}"
        );
        assert_eq!(answer.header("retry-after"), None);
    }
    // Nothing it sent was applied.
    let profile = served.must("GET", &profile_path(&mine), None);
    assert_eq!(profile.status, 200);
    assert_eq!(
        profile.json()["traits"]["Contact"]["lastName"],
        json!("served")
    );

    // Its own store is not served here: 404, as for anyone.
    let answer = other.must(
        "GET",
        &format!("/v1/ControlPlane/Stores/{OTHER_STORE}/TraitGroups"),
        None,
    );
    answer.error(404, 20404);
    // A wrong secret is still 401, with a key that exists or not.
    for (user, password) in [("SKother", "served-secret"), ("SKnobody", "x")] {
        let answer = Http::new(&server, user, password).must("GET", &trait_groups(), None);
        answer.error(401, 20003);
    }
}

#[test]
fn over_the_rate_a_key_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(
        &keys,
        json!([{"sid": "SKsecond", "secret": "second", "stores": [STORE]}]).to_string(),
    )
    .unwrap();
    let server = Server::start_with(&[
        "--in-memory",
        "--rate-limit",
        "3/s",
        "--credentials",
        keys.to_str().unwrap(),
    ]);
    let pair = Http::new(&server, SID, TOKEN);
    let second = Http::new(&server, "SKsecond", "second");
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(pair.must("GET", &trait_groups(), None).status, 200);
    }
    let answer = pair.must("GET", &trait_groups(), None);
    // The burst of 3 took well under a second: the bucket is empty.
    assert!(start.elapsed() < Duration::from_millis(300));
    let message = answer.error(429, 20429);
    assert_eq!(
        message,
        "Too many requests. Please retry according to the Retry-After response header."
    );
    assert_eq!(answer.header("retry-after"), Some("1"));
    // Writes count too, and are not applied.
    let answer = pair.must(
        "POST",
        &format!("/v1/Stores/{STORE}/Profiles"),
        Some(&last_name("x")),
    );
    answer.error(429, 20429);
    // Another key has its own bucket.
    assert_eq!(second.must("GET", &trait_groups(), None).status, 200);
    // Unauthenticated requests are 401, not counted against a key.
    Http::new(&server, SID, "wrong")
        .must("GET", &trait_groups(), None)
        .error(401, 20003);
    // After Retry-After, the key may send again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(pair.must("GET", &trait_groups(), None).status, 200);
}

#[test]
fn a_full_write_queue_answers_503_with_retry_after() {
    let server = Server::start_with(&["--in-memory", "--test-faults", "--max-queued-writes", "2"]);
    let http = Http::new(&server, SID, TOKEN);
    let id = http.create("start");
    // Writes are held (keeping their place in the queue) for 1.5 s: two fill it.
    http.faults(json!({"holdWritesMs": 1500}));
    let held: Vec<_> = ["held-1", "held-2"]
        .map(|name| {
            let http = http.clone();
            let path = profile_path(&id);
            std::thread::spawn(move || http.must("PATCH", &path, Some(&last_name(name))))
        })
        .into_iter()
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    for (method, path, body) in [
        ("PATCH", profile_path(&id), last_name("refused")),
        (
            "POST",
            format!("/v1/Stores/{STORE}/Profiles"),
            new_profile("refused"),
        ),
    ] {
        let answer = http.must(method, &path, Some(&body));
        let message = answer.error(503, 20503);
        assert_eq!(
            message,
            "Service Unavailable: the write queue is full (2 writes waiting to be made durable)"
        );
        assert_eq!(answer.header("retry-after"), Some("1"));
    }
    let answer = http.must("DELETE", &profile_path(&id), None);
    answer.error(503, 20503);
    // Reads are not writes.
    assert_eq!(http.must("GET", &profile_path(&id), None).status, 200);
    for thread in held {
        let answer = thread.join().unwrap();
        assert_eq!(answer.status, 202, "{}", answer.body);
    }
    // Once the queue empties, writes are taken again; the refused ones were never applied.
    let answer = http.must("PATCH", &profile_path(&id), Some(&last_name("after")));
    assert_eq!(answer.status, 202, "{}", answer.body);
    wait_for("the last patch", Duration::from_secs(10), || {
        let profile = http.must("GET", &profile_path(&id), None).json();
        (profile["traits"]["Contact"]["lastName"] == json!("after")).then_some(())
    });
}

#[test]
fn unreachable_storage_answers_503_with_retry_after() {
    let server = Server::start_with(&["--in-memory", "--test-faults"]);
    let http = Http::new(&server, SID, TOKEN);
    let id = http.create("start");
    http.faults(json!({"storageUnavailable": true}));
    let answer = http.must("PATCH", &profile_path(&id), Some(&last_name("refused")));
    let message = answer.error(503, 20503);
    assert_eq!(
        message,
        "Service Unavailable: storage unreachable (test fault)"
    );
    assert_eq!(answer.header("retry-after"), Some("5"));
    http.faults(json!({"storageUnavailable": false}));
    let answer = http.must("PATCH", &profile_path(&id), Some(&last_name("again")));
    assert_eq!(answer.status, 202, "{}", answer.body);
    let profile = wait_for("the patch", Duration::from_secs(10), || {
        let profile = http.must("GET", &profile_path(&id), None).json();
        (profile["traits"]["Contact"]["lastName"] == json!("again")).then_some(profile)
    });
    assert_eq!(
        profile["traits"]["Contact"],
        json!({"email": "start@example.com", "lastName": "again"})
    );
}

#[test]
fn sigterm_drains_answers_503_exits_0_and_keeps_every_202() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let mut server = Server::start_with(&["--data-dir", &data, "--test-faults"]);
    let http = Http::new(&server, SID, TOKEN);

    // A write held in flight across the signal, so the drain is observable.
    let held_id = http.create("before");
    http.faults(json!({"holdWritesMs": 1500}));
    let held = {
        let http = http.clone();
        let path = profile_path(&held_id);
        std::thread::spawn(move || http.must("PATCH", &path, Some(&last_name("held"))))
    };
    std::thread::sleep(Duration::from_millis(300));
    terminate(&server);
    std::thread::sleep(Duration::from_millis(300));

    // New requests (new connections) get 503 while the held write finishes.
    let fresh = Http::new(&server, SID, TOKEN);
    for (method, path, body) in [
        ("GET", trait_groups(), None),
        ("PATCH", profile_path(&held_id), Some(last_name("late"))),
    ] {
        let answer = fresh.must(method, &path, body.as_deref());
        let message = answer.error(503, 20503);
        assert_eq!(
            message,
            "Service Unavailable: the service is shutting down; retry once it is back"
        );
        assert_eq!(answer.header("retry-after"), Some("5"));
        assert_eq!(answer.header("connection"), Some("close"));
    }
    let answer = held.join().unwrap();
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(exit_code(&mut server), Some(0));
    let stderr = server.stderr.lock().unwrap().clone();
    assert!(stderr.contains("SIGTERM: draining"), "{stderr}");
    assert!(stderr.contains("drained, exiting"), "{stderr}");
    drop(server);

    // The write answered 202 during the drain is there after a restart; the refused one is not.
    let server = Server::start_with(&["--data-dir", &data]);
    let http = Http::new(&server, SID, TOKEN);
    let profile = wait_for("the held patch", Duration::from_secs(10), || {
        let profile = http.must("GET", &profile_path(&held_id), None).json();
        (profile["traits"]["Contact"]["lastName"] == json!("held")).then_some(profile)
    });
    assert_eq!(profile["traits"]["Contact"]["lastName"], json!("held"));
}

#[test]
fn sigterm_under_load_loses_no_write_answered_202() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let mut server = Server::start_with(&["--data-dir", &data]);
    let http = Http::new(&server, SID, TOKEN);
    // Four clients, each patching its own profile in sequence until refused.
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let http = Http::new(&server, SID, TOKEN);
            let id = http.create(&format!("c{c}-start"));
            std::thread::spawn(move || {
                let mut last_accepted = format!("c{c}-start");
                let mut unknown = None;
                for i in 0.. {
                    let name = format!("c{c}-{i}");
                    match http.send("PATCH", &profile_path(&id), Some(&last_name(&name))) {
                        Ok(answer) if answer.status == 202 => last_accepted = name,
                        Ok(answer) => {
                            answer.error(503, 20503);
                            break;
                        }
                        // The connection closed under the request: it may or may not be in.
                        Err(_) => {
                            unknown = Some(name);
                            break;
                        }
                    }
                }
                (id, last_accepted, unknown)
            })
        })
        .collect();
    drop(http);
    std::thread::sleep(Duration::from_millis(500));
    terminate(&server);
    let outcomes: Vec<_> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(exit_code(&mut server), Some(0));
    drop(server);

    let server = Server::start_with(&["--data-dir", &data]);
    let http = Http::new(&server, SID, TOKEN);
    let mut accepted_any = 0;
    for (id, last_accepted, unknown) in outcomes {
        accepted_any += usize::from(!last_accepted.ends_with("-start"));
        let profile = http.must("GET", &profile_path(&id), None).json();
        let now = profile["traits"]["Contact"]["lastName"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            now == last_accepted || Some(&now) == unknown.as_ref(),
            "{id}: {now}, last answered 202: {last_accepted}, unknown: {unknown:?}"
        );
    }
    assert!(accepted_any > 0, "no patch was accepted before SIGTERM");
}

#[test]
fn a_panicking_handler_answers_500_and_the_service_goes_on() {
    let server = Server::start_with(&["--in-memory", "--test-faults"]);
    let http = Http::new(&server, SID, TOKEN);
    for _ in 0..3 {
        // The same agent (a kept connection, if the server keeps it) gets an answer each time.
        let answer = http.must("GET", "/__test/panic", None);
        let message = answer.error(500, 20500);
        assert_eq!(message, "Internal Server Error");
        assert_eq!(http.must("GET", &trait_groups(), None).status, 200);
    }
    let stderr = server.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("test fault: a panicking handler"),
        "{stderr}"
    );
    // Without --test-faults, the fault routes do not exist.
    let plain = Server::start_with(&["--in-memory"]);
    Http::new(&plain, SID, TOKEN)
        .must("GET", "/__test/panic", None)
        .error(404, 20404);
    Http::new(&plain, SID, TOKEN)
        .must(
            "PUT",
            "/__test/faults",
            Some(r#"{"storageUnavailable": true}"#),
        )
        .error(404, 20404);
}

#[test]
fn a_method_a_route_does_not_have_is_405_with_allow() {
    let server = Server::start_with(&["--in-memory"]);
    let http = Http::new(&server, SID, TOKEN);
    let id = http.create("x");
    for (method, path, allowed) in [
        (
            "PUT",
            profile_path(&id),
            &["GET", "HEAD", "PATCH", "DELETE"][..],
        ),
        ("POST", profile_path(&id), &["GET", "PATCH", "DELETE"]),
        ("DELETE", format!("/v1/Stores/{STORE}/Profiles"), &["POST"]),
        ("DELETE", trait_groups(), &["GET", "HEAD"]),
    ] {
        let answer = http.must(method, &path, Some("{}"));
        let message = answer.error(405, 20004);
        assert_eq!(
            message,
            format!("Method Not Allowed: `{method}` is not allowed on this resource")
        );
        let allow: Vec<&str> = answer.header("allow").unwrap().split(',').collect();
        for expected in allowed {
            assert!(allow.contains(expected), "{method} {path}: Allow {allow:?}");
        }
        assert!(!allow.contains(&method), "{method} {path}: Allow {allow:?}");
    }
    // Credentials come first.
    Http::new(&server, SID, "wrong")
        .must("PUT", &profile_path(&id), Some("{}"))
        .error(401, 20003);
}
