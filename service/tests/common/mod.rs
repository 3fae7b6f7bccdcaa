//! Helpers shared by the service's integration tests: start the real binary on a free port,
//! and a small blocking HTTP/1.1 client over `TcpStream`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

pub const SID: &str = "ACtest00000000000000000000000000";
pub const TOKEN: &str = "test-token";
pub const STORE: &str = "mem_store_00000000000000000000000000";

/// `Authorization` value for SID:TOKEN ("ACtest00000000000000000000000000:test-token").
pub fn basic(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let mut buf = [0u8; 3];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// A fresh, empty directory under the system's temporary directory.
pub fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "profile-service-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running service process.
pub struct Server {
    pub child: Child,
    pub port: u16,
    /// The recovery line the service printed on stderr at start.
    pub recovery: String,
    _stdout: BufReader<ChildStdout>,
    _stderr: BufReader<ChildStderr>,
}

impl Server {
    /// Starts the service with its durable log in `data_dir` and waits until it listens.
    pub fn start(data_dir: &Path) -> Server {
        Server::start_with(&["--data-dir", data_dir.to_str().unwrap()])
    }

    /// Starts the service with `args` (and the test credentials, on a free port).
    pub fn start_with(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_profile-service"))
            .args(["--port", "0", "--account-sid", SID, "--auth-token", TOKEN])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the service binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line
            .trim()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let mut err = String::new();
                let _ = stderr.read_to_string(&mut err);
                panic!("no listening line, got {line:?}; stderr: {err}")
            });
        let mut recovery = String::new();
        stderr.read_line(&mut recovery).unwrap();
        Server {
            child,
            port,
            recovery,
            _stdout: stdout,
            _stderr: stderr,
        }
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn client(&self) -> Client {
        Client {
            port: self.port,
            authorization: Some(basic(SID, TOKEN)),
        }
    }

    /// How many operations the recovery line says were replayed.
    pub fn replayed(&self) -> usize {
        self.recovery_number("operations replayed")
    }

    /// The sequence number of the snapshot the recovery line says was loaded.
    pub fn snapshot_seq(&self) -> usize {
        let after = self
            .recovery
            .split("snapshot at seq ")
            .nth(1)
            .unwrap_or_else(|| panic!("no snapshot in {:?}", self.recovery));
        after.split(',').next().unwrap().parse().unwrap()
    }

    /// How many torn bytes the recovery line says were cut.
    pub fn torn_bytes(&self) -> usize {
        self.recovery_number("torn bytes cut")
    }

    fn recovery_number(&self, label: &str) -> usize {
        let before = self
            .recovery
            .split(label)
            .next()
            .filter(|_| self.recovery.contains(label))
            .unwrap_or_else(|| panic!("no `{label}` in {:?}", self.recovery));
        let number = before.trim_end().rsplit([' ', ':']).next().unwrap();
        number.parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// A blocking HTTP/1.1 client, one connection per request.
#[derive(Clone)]
pub struct Client {
    pub port: u16,
    pub authorization: Option<String>,
}

impl Client {
    pub fn get(&self, path: &str) -> std::io::Result<Response> {
        self.request("GET", path, &[], None)
    }

    pub fn patch(&self, path: &str, body: &str) -> std::io::Result<Response> {
        self.request(
            "PATCH",
            path,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    pub fn post(&self, path: &str, body: &str) -> std::io::Result<Response> {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Some(body.as_bytes()),
        )
    }

    pub fn delete(&self, path: &str) -> std::io::Result<Response> {
        self.request("DELETE", path, &[], None)
    }

    /// Sends one request and reads the response until the server closes the connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::io::Result<Response> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
            self.port
        );
        if let Some(auth) = &self.authorization {
            head.push_str(&format!("Authorization: {auth}\r\n"));
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = body.unwrap_or_default();
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        parse_response(&raw).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("incomplete response: {:?}", String::from_utf8_lossy(&raw)),
            )
        })
    }
}

/// Parses a whole `Connection: close` response (Content-Length or chunked body).
fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut rest = &raw[split + 4..];
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).ok()?.trim(), 16)
                    .ok()?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break body;
            }
            body.extend_from_slice(rest.get(..size)?);
            rest = rest.get(size + 2..)?;
        }
    } else {
        let len: usize = header("content-length")?.parse().ok()?;
        rest.get(..len)?.to_vec()
    };
    Some(Response {
        status,
        body: String::from_utf8(body).ok()?,
    })
}

/// Calls `f` until it returns `Some`, for at most `limit`; panics with `what` after that.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn profile_path(id: &str) -> String {
    format!("/v1/Stores/{STORE}/Profiles/{id}")
}
