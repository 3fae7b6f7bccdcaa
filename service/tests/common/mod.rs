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
    ///
    /// With `PROFILE_SERVICE_TEST_STORAGE=postgres` (see [`on_postgres`]), `--data-dir DIR`
    /// (without `--in-memory`) becomes `--postgres URL` of a database of DIR's own (created
    /// on first use, so a restart with the same DIR finds its data), and the start waits
    /// until the workers have applied every operation the database holds, as the embedded
    /// storage's recovery does before it listens.
    pub(crate) fn try_start_with(args: &[&str]) -> Result<Server, String> {
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let mut database = None;
        if on_postgres()
            && !args.iter().any(|a| a == "--in-memory" || a == "--postgres")
            && let Some(at) = args.iter().position(|a| a == "--data-dir")
        {
            let url = database_for(Path::new(&args[at + 1]));
            args.splice(at..at + 2, ["--postgres".to_owned(), url.clone()]);
            database = Some(url);
        }
        let server = Server::spawn(&args)?;
        if let Some(url) = database {
            wait_for("every operation applied", Duration::from_secs(60), || {
                (pg_count(&url, "SELECT count(*) FROM ops WHERE NOT applied") == 0).then_some(())
            });
        }
        Ok(server)
    }

    fn spawn(args: &[String]) -> Result<Server, String> {
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
        // A fresh connection per request: the server may close one after an early answer
        // (401, 413) to a body it did not read, and a pooled connection reused after that
        // failed a request now and then ("Peer disconnected").
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_idle_connections(0)
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
/// it holds every accepted operation), by id; on PostgreSQL, of DIR's database.
pub(crate) fn snapshot_profiles(
    dir: &Path,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    if on_postgres() {
        return pg_rows(
            &database_for(dir),
            "SELECT stored FROM profiles WHERE created",
        )
        .iter()
        .map(|row| {
            let profile: serde_json::Value = serde_json::from_str(&row[0]).unwrap();
            (profile["id"].as_str().unwrap().to_owned(), profile)
        })
        .collect();
    }
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

// ---- PostgreSQL ----

/// The PostgreSQL server the tests may use: `PROFILE_SERVICE_POSTGRES_URL`, the URL of a
/// database a superuser (or a role that may create databases) connects to, such as
/// `postgresql://postgres@127.0.0.1:5432/postgres`. `service/run-tests.sh` starts one.
pub(crate) fn postgres_url() -> Option<String> {
    std::env::var("PROFILE_SERVICE_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// Whether the helpers start the service on PostgreSQL (`PROFILE_SERVICE_TEST_STORAGE` is
/// `postgres`); then `PROFILE_SERVICE_POSTGRES_URL` must be set.
pub(crate) fn on_postgres() -> bool {
    let on = std::env::var("PROFILE_SERVICE_TEST_STORAGE").is_ok_and(|s| s == "postgres");
    assert!(
        !on || postgres_url().is_some(),
        "PROFILE_SERVICE_TEST_STORAGE=postgres needs PROFILE_SERVICE_POSTGRES_URL"
    );
    on
}

/// `url` with its database replaced by `database`.
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |at| at + 3);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `sql` (one or more statements) on `url`.
pub(crate) fn pg_execute(url: &str, sql: &str) {
    runtime().block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        tokio::spawn(connection);
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

/// The rows of `sql` on `url`, every column cast to text by the query (`::text`).
pub(crate) fn pg_rows(url: &str, sql: &str) -> Vec<Vec<String>> {
    runtime().block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        tokio::spawn(connection);
        let rows = client
            .simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter()
            .filter_map(|message| match message {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).unwrap_or("").to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    })
}

/// The one number `sql` answers on `url`.
pub(crate) fn pg_count(url: &str, sql: &str) -> i64 {
    pg_rows(url, sql)[0][0].parse().unwrap()
}

/// A new, empty database on the tests' PostgreSQL server, named after `hint`; its URL.
pub(crate) fn fresh_database(hint: &str) -> String {
    let admin = postgres_url().expect("PROFILE_SERVICE_POSTGRES_URL");
    let name = format!(
        "ps_{}_{}_{}",
        hint.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect::<String>()
            .to_lowercase(),
        std::process::id(),
        uuid_like()
    );
    pg_execute(&admin, &format!("CREATE DATABASE {name}"));
    with_database(&admin, &name)
}

/// The database of data directory `dir` on PostgreSQL (created on first use); its URL.
pub(crate) fn database_for(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let admin = postgres_url().expect("PROFILE_SERVICE_POSTGRES_URL");
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut hasher);
    let name = format!("ps_dir_{:016x}", hasher.finish());
    let exists = pg_count(
        &admin,
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    );
    if exists == 0 {
        pg_execute(&admin, &format!("CREATE DATABASE {name}"));
    }
    with_database(&admin, &name)
}

/// A short, probably unique suffix.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos:x}{}", NEXT.fetch_add(1, Ordering::SeqCst))
}
