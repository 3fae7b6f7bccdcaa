//! A reference profile service on `profile-traits`: the Memory v1 profile endpoints over
//! HTTP, every accepted operation made durable before it is answered.
//!
//! A request flows one way: `http` extracts and checks it, the crate validates it, the
//! `store` makes it durable (then 202), and the `worker` applies it.

#![forbid(unsafe_code)]

mod config;
mod http;
mod identity;
mod store;
mod worker;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use profile_traits::{StoreId, StoreSchema};

use crate::config::{Config, USAGE};
use crate::http::{App, Credentials, Protect};
use crate::store::Storage;
use crate::store::embedded::{Durability, Embedded, RecoveryReport};
use crate::store::postgres::{Postgres, PostgresReport};

/// The schema used without `--schema`.
const BUNDLED_SCHEMA: &str = include_str!("../schema.json");

/// The line the service prints on stdout once it listens, after the `listening on` line: what
/// recovery found, for tools and tests to read.
#[derive(serde::Serialize)]
struct Started {
    /// Whether accepted operations survive the process (`false` with `--in-memory`).
    durable: bool,
    /// What recovery found (`null` with `--in-memory` and `--postgres`).
    recovery: Option<RecoveryReport>,
    /// `embedded`, `memory` or `postgres`.
    storage: &'static str,
    /// On PostgreSQL, what the database held at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    postgres: Option<PostgresReport>,
}

fn main() -> ExitCode {
    let config = match Config::parse(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(config) => config,
        Err(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Some(message)) => {
            eprintln!("profile-service: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("profile-service: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> Result<(), String> {
    let schema_text = match &config.schema {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read schema `{}`: {e}", path.display()))?,
        None => BUNDLED_SCHEMA.to_owned(),
    };
    let schema: StoreSchema =
        serde_json::from_str(&schema_text).map_err(|e| format!("bad schema: {e}"))?;
    let schema = Arc::new(schema);
    let store_id: StoreId = config
        .store_id
        .parse()
        .map_err(|e| format!("--store-id: {e}"))?;

    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    // The open HTTP connections, counted by the accept loop, for the embedded log writer.
    let connections = Arc::new(AtomicUsize::new(0));
    // Recovery (or the connection to PostgreSQL), before serving anything.
    let (storage, started): (Arc<dyn Storage>, Started) = match &config.postgres {
        Some(url) => {
            let (storage, report) = runtime.block_on(Postgres::start(
                url,
                &store_id,
                Arc::clone(&schema),
                config.postgres_pool,
            ))?;
            eprintln!(
                "profile-service: PostgreSQL storage: {} profiles, {} operations to apply",
                report.profiles, report.unapplied
            );
            let started = Started {
                durable: true,
                recovery: None,
                storage: "postgres",
                postgres: Some(report),
            };
            (Arc::new(storage), started)
        }
        None => {
            let durability = config.data_dir.as_ref().map(|dir| Durability {
                dir: dir.clone(),
                compact_log_bytes: config.compact_log_bytes,
            });
            let (storage, recovery) = Embedded::start(
                durability.as_ref(),
                store_id.clone(),
                Arc::clone(&schema),
                Arc::clone(&connections),
            )
            .map_err(|e| match &config.data_dir {
                Some(dir) => format!("cannot recover from {}: {e}", dir.display()),
                None => e.to_string(),
            })?;
            match (&config.data_dir, &recovery) {
                (Some(dir), Some(r)) => eprintln!(
                    "profile-service: durable log in {}: snapshot at seq {}, {} operations replayed, {} profiles, {} torn bytes cut",
                    dir.display(),
                    r.snapshot_seq,
                    r.replayed,
                    r.profiles,
                    r.torn_bytes
                ),
                _ => eprintln!(
                    "profile-service: --in-memory: NOT durable, everything is lost on exit"
                ),
            }
            let started = Started {
                durable: recovery.is_some(),
                storage: if recovery.is_some() {
                    "embedded"
                } else {
                    "memory"
                },
                recovery,
                postgres: None,
            };
            (Arc::new(storage), started)
        }
    };

    let pair = config
        .account_sid
        .as_deref()
        .zip(config.auth_token.as_deref());
    let credentials = match (&config.credentials, pair) {
        (Some(path), pair) => Credentials::load(path, pair)?,
        (None, Some((sid, token))) => Credentials::new(sid, token),
        (None, None) => return Err("no credentials".to_owned()),
    };
    let protect = Protect::new(
        credentials.len(),
        config.rate_limit,
        config.max_queued_writes,
        config.test_faults,
    );
    let app = App {
        schema,
        store_id,
        storage,
        credentials: Arc::new(credentials),
        max_body_bytes: config.max_body_bytes,
        protect: Arc::new(protect),
    };

    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", config.port))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        // Clients read the first line to learn the port, and the second for the recovery.
        println!("profile-service listening on http://{address}");
        println!(
            "{}",
            serde_json::to_string(&started).expect("the start line serializes")
        );
        let draining = app.clone();
        http::serve(
            listener,
            http::router(app.clone()),
            connections,
            async move {
                let signal = stop_signal().await;
                // New requests get 503 from now on; those taken before finish.
                draining.protect.lifecycle.begin_drain();
                eprintln!("profile-service: {signal}: draining (new requests get 503)");
                draining.protect.lifecycle.idle().await;
            },
        )
        .await;
        // Every write answered 202 is durable already; let the worker apply them too.
        if !http::worker_drained(&app, Duration::from_secs(30)).await {
            eprintln!("profile-service: the worker did not catch up in 30 s; the log has it all");
        }
        eprintln!("profile-service: drained, exiting");
        Ok(())
    })
}

/// Waits for SIGTERM or SIGINT (Ctrl-C); names the one received.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
