//! Helpers shared by the service's integration tests: start the real binary on a free port,
//! read what it reports at start, and talk to it over HTTP with `ureq`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

pub(crate) const SID: &str = "ACtest00000000000000000000000000";
pub(crate) const TOKEN: &str = "test-token";
pub(crate) const STORE: &str = "mem_store_00000000000000000000000000";

/// The `Authorization` value for `user:password`.
pub(crate) fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

/// A running service process.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    /// The JSON line the service printed on stdout once it listened: `durable`, `recovery`.
    pub(crate) started: serde_json::Value,
    /// What the service has written on stderr so far.
    pub(crate) stderr: Arc<Mutex<String>>,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts the service with its durable log in `data_dir` and waits until it listens.
    #[track_caller]
    pub(crate) fn start(data_dir: &Path) -> Server {
        Server::start_with(&["--data-dir", data_dir.to_str().unwrap()])
    }

    /// Starts the service with `args` (and the test credentials, on a free port).
    #[track_caller]
    pub(crate) fn start_with(args: &[&str]) -> Server {
        Server::try_start_with(args).unwrap_or_else(|stderr| panic!("no start: {stderr}"))
    }

    /// Starts the service with `args`; if it exits before listening, what it wrote on stderr.
    pub(crate) fn try_start_with(args: &[&str]) -> Result<Server, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_profile-service"))
            .args(["--port", "0", "--account-sid", SID, "--auth-token", TOKEN])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the service binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = Arc::new(Mutex::new(String::new()));
        let reader = {
            let mut pipe = BufReader::new(child.stderr.take().unwrap());
            let stderr = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut line = String::new();
                while pipe.read_line(&mut line).is_ok_and(|n| n > 0) {
                    stderr.lock().unwrap().push_str(&line);
                    line.clear();
                }
            })
        };
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let Some(port) = line
            .trim()
            .strip_prefix("profile-service listening on http://127.0.0.1:")
            .and_then(|p| p.parse().ok())
        else {
            child.wait().unwrap();
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
            reader.join().unwrap();
            return Err(stderr.lock().unwrap().clone());
        };
        let mut started = String::new();
        stdout.read_line(&mut started).unwrap();
        let started = serde_json::from_str(&started)
            .unwrap_or_else(|e| panic!("start line not JSON ({e}): {started:?}"));
        Ok(Server {
            child,
            port,
            started,
            stderr,
            _stdout: stdout,
        })
    }

    /// Kills the process with SIGKILL and waits for it.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub(crate) fn client(&self) -> Client {
        Client::new(self.port, Some(basic(SID, TOKEN)))
    }

    fn recovery(&self, field: &str) -> usize {
        let value = &self.started["recovery"][field];
        value
            .as_u64()
            .unwrap_or_else(|| panic!("no recovery `{field}` in {}", self.started)) as usize
    }

    /// How many operations recovery replayed from the log.
    pub(crate) fn replayed(&self) -> usize {
        self.recovery("replayed")
    }

    /// The sequence number of the snapshot recovery loaded.
    pub(crate) fn snapshot_seq(&self) -> usize {
        self.recovery("snapshotSeq")
    }

    /// How many torn bytes recovery cut off the log.
    pub(crate) fn torn_bytes(&self) -> usize {
        self.recovery("tornBytes")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, headers and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    /// The value of header `name` (case-insensitive), if present.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// A blocking HTTP/1.1 client of one service.
#[derive(Clone)]
pub(crate) struct Client {
    base: String,
    authorization: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the service on `port`, sending `authorization` (if any) with every request.
    pub(crate) fn new(port: u16, authorization: Option<String>) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        Client {
            base: format!("http://127.0.0.1:{port}"),
            authorization,
            agent,
        }
    }

    pub(crate) fn get(&self, path: &str) -> Result<Response, ureq::Error> {
        self.request("GET", path, &[], None)
    }

    pub(crate) fn patch(&self, path: &str, body: &str) -> Result<Response, ureq::Error> {
        self.request(
            "PATCH",
            path,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    pub(crate) fn post(&self, path: &str, body: &str) -> Result<Response, ureq::Error> {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    pub(crate) fn put(&self, path: &str, body: &str) -> Result<Response, ureq::Error> {
        self.request(
            "PUT",
            path,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    /// `PATCH` with an `Event-Time` header.
    pub(crate) fn patch_at(
        &self,
        path: &str,
        event_time: &str,
        body: &str,
    ) -> Result<Response, ureq::Error> {
        self.request(
            "PATCH",
            path,
            &[
                ("Content-Type", "application/json"),
                ("Event-Time", event_time),
            ],
            Some(body.as_bytes()),
        )
    }

    pub(crate) fn delete(&self, path: &str) -> Result<Response, ureq::Error> {
        self.request("DELETE", path, &[], None)
    }

    /// Sends one request and reads the whole response.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response, ureq::Error> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.unwrap_or_default().to_vec())?;
        let mut response = self.agent.run(request)?;
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        Ok(Response {
            status: response.status().as_u16(),
            headers,
            body: response.body_mut().read_to_string()?,
        })
    }
}

/// Calls `f` until it returns `Some`, for at most `limit`; panics with `what` after that.
#[track_caller]
pub(crate) fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn profile_path(id: &str) -> String {
    format!("/v1/Stores/{STORE}/Profiles/{id}")
}

pub(crate) fn traits_path(id: &str) -> String {
    format!("/v1/Stores/{STORE}/Profiles/{id}/Traits")
}

/// The stored form of every profile in the snapshot of `dir` (after a start, which compacts,
/// it holds every accepted operation), by id.
pub(crate) fn snapshot_profiles(
    dir: &Path,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let bytes = std::fs::read(dir.join("snapshot.bin")).unwrap();
    let mut records = Vec::new();
    let mut offset = 0;
    while offset + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        records.push(&bytes[offset + 8..offset + 8 + len]);
        offset += 8 + len;
    }
    records
        .iter()
        .skip(1)
        .map(|record| {
            let profile: serde_json::Value = serde_json::from_slice(record).unwrap();
            (profile["id"].as_str().unwrap().to_owned(), profile)
        })
        .collect()
}
