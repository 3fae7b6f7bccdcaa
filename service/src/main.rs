//! A reference profile service on `profile-traits`: the Memory v1 profile endpoints over
//! HTTP, every accepted operation made durable in an append-only log before it is answered.
//!
//! Threads: the HTTP handlers validate a request with the crate and submit it; one log
//! writer makes submissions durable in batches (group commit) and answers them; one applier
//! merges them into the profiles in log order, coalescing patches queued for one profile.

mod api;
mod config;
mod log;
mod snapshot;
mod state;
mod util;

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock, mpsc};

use profile_traits::StoreSchema;

use crate::api::{Accepting, App};
use crate::config::{Config, USAGE};
use crate::state::Profiles;

/// The schema used without `--schema`.
const BUNDLED_SCHEMA: &str = include_str!("../schema.json");

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
    let store_id: profile_traits::StoreId = config
        .store_id
        .parse()
        .map_err(|e| format!("--store-id: {e}"))?;

    // Recovery: the snapshot and the log after it, synchronously, before serving anything.
    let mut profiles = Profiles::new();
    let mut file = None;
    let mut next_seq = 1;
    if let Some(dir) = &config.data_dir {
        let recovery = snapshot::recover(dir, &schema)
            .map_err(|e| format!("cannot recover from {}: {e}", dir.display()))?;
        eprintln!(
            "profile-service: durable log in {}: snapshot at seq {}, {} operations replayed, {} profiles, {} torn bytes cut",
            dir.display(),
            recovery.snapshot_seq,
            recovery.replayed,
            recovery.profiles.len(),
            recovery.torn_bytes
        );
        profiles = recovery.profiles;
        file = Some(recovery.file);
        next_seq = recovery.next_seq;
    } else {
        eprintln!("profile-service: --in-memory: NOT durable, everything is lost on exit");
    }
    let known: HashSet<_> = profiles.keys().cloned().collect();
    let profiles = Arc::new(RwLock::new(profiles));

    let (submit_tx, submit_rx) = mpsc::channel();
    let (apply_tx, apply_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || log::run_writer(submit_rx, file, next_seq, apply_tx))
        .map_err(|e| e.to_string())?;
    {
        let profiles = Arc::clone(&profiles);
        let schema = Arc::clone(&schema);
        std::thread::Builder::new()
            .name("applier".into())
            .spawn(move || state::run_applier(apply_rx, profiles, schema))
            .map_err(|e| e.to_string())?;
    }

    let app = App {
        schema,
        store_id,
        profiles,
        accepting: Arc::new(Mutex::new(Accepting {
            known,
            log: submit_tx,
        })),
        expected_authorization: Arc::from(api::basic_credentials(
            &config.account_sid,
            &config.auth_token,
        )),
        max_body_bytes: config.max_body_bytes,
    };

    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", config.port))?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        // The tests read this line to learn the port.
        println!("profile-service listening on http://{address}");
        axum::serve(listener, api::router(app))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| e.to_string())
    })
}
