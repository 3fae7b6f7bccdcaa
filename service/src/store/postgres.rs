//! The storage in PostgreSQL (`--postgres URL`): every accepted operation, the stored
//! profiles, the identity index and the redirects live in one database, so that any number
//! of service instances serve one store.
//!
//! Tables (created at start if missing, under an advisory lock):
//!
//! - `ops`: the accepted operations, one row per commit (a group of plain patches, one
//!   request's operations): per operation (arrays, in order) its sequence number (`op_seq`,
//!   a database sequence, so unique across instances: the stamps' tiebreaker), its stamp's
//!   instant and whether that is an `Event-Time`, the profile, the kind, the request body and
//!   the joined ids; per row `applied` and `applications` (how many times a worker applied
//!   it: 1). A write is answered 202 once the row holding it has committed. One row per
//!   commit rather than per operation keeps the database's work per operation small (one
//!   row locked and marked applied for up to 512 operations).
//! - `profiles`: the stored form (text, as the crate serializes it) of each profile, as the
//!   workers have applied it; `created` once its create is applied. The row is inserted when
//!   the create is accepted, so that a patch applied before its create has a row to go to.
//! - `accepted`, `id_index`, `redirects`: the identity state at acceptance: the live
//!   profiles with their identifier traits (stamped), the index of identifier values, and
//!   where joined-away ids went.
//!
//! Accepting: patches that touch no identifier trait are group-committed: every one waiting
//! at that moment goes into one statement (each kept if its profile is live, all into one
//! `ops` row), several such statements in flight; they take no lock. Creates, bulk upserts, deletes and patches of identifiers take one transaction-level
//! advisory lock (identity decisions are serialized across instances), load the identity
//! state of the profiles concerned, decide with [`Identity`] as the embedded storage does,
//! and write back the rows they changed.
//!
//! Applying: every instance runs workers that claim unapplied rows of ops with `SELECT ... FOR
//! UPDATE SKIP LOCKED`, lock the profile rows they touch (in id order, in one statement), apply
//! them with `StoredProfile::apply_owned` at their stamps, and mark them applied, in one
//! transaction. The stamped merge makes the order free; an op whose profile was joined away
//! meanwhile follows the redirect (joining and applying commute per trait, by stamp).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use profile_traits::{ProfileId, Stamp, StoreId, StoreSchema, StoredProfile};
use tokio_postgres::{GenericClient, NoTls};

use crate::identity::{self, Identity, Key, Located, MAX_LOOKUP_PROFILES};
use crate::store::{
    Op, OpKind, Pending, Storage, StoreError, Write, fresh_profile_id, now_rfc3339,
};

/// The tables, created if missing.
const SCHEMA_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS profile_service_store (store_id text NOT NULL);
CREATE SEQUENCE IF NOT EXISTS op_seq;
CREATE TABLE IF NOT EXISTS ops (
    seq bigint PRIMARY KEY,
    seqs bigint[] NOT NULL,
    micros bigint[] NOT NULL,
    event_times boolean[] NOT NULL,
    profiles text[] NOT NULL,
    kinds text[] NOT NULL,
    created_ats text[] NOT NULL,
    bodies bytea[] NOT NULL,
    joined text[] NOT NULL,
    applied boolean NOT NULL DEFAULT false,
    applications integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ops_unapplied ON ops (seq) WHERE NOT applied;
CREATE TABLE IF NOT EXISTS profiles (
    id text COLLATE "C" PRIMARY KEY,
    created boolean NOT NULL DEFAULT false,
    stored text NOT NULL
);
CREATE TABLE IF NOT EXISTS accepted (
    id text COLLATE "C" PRIMARY KEY,
    ident text NOT NULL
);
CREATE TABLE IF NOT EXISTS id_index (
    id_type text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    profile text COLLATE "C" NOT NULL,
    PRIMARY KEY (id_type, value, profile)
);
CREATE INDEX IF NOT EXISTS id_index_profile ON id_index (profile);
CREATE TABLE IF NOT EXISTS redirects (
    id text COLLATE "C" PRIMARY KEY,
    target text COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS redirects_target ON redirects (target);
"#;

/// The advisory lock that serializes identity decisions (creates, deletes, identifier
/// patches) across instances; also taken while creating the tables.
const IDENTITY_LOCK: i64 = 0x7072_6f66_696c_6501;

/// Patches of no identifier trait, several at once (group commit): each accepted if its
/// profile is live in the statement's snapshot; answers the live profiles. No lock is
/// needed: a delete or join committed after that snapshot is ordered after the patch, and
/// the result is the same whichever order the workers apply them in (a patch applied after
/// its profile's delete changes nothing, one applied after its profile's join goes to the
/// profile it was joined into).
const PLAIN_PATCHES: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::int8[], $3::bool[], $4::bytea[], $5::int4[])
        AS i(id, micros, event_time, body, n)
), kept AS (
    SELECT i.*, nextval('op_seq') AS seq FROM input i
    WHERE i.id IN (SELECT id FROM accepted WHERE id = ANY($1))
), inserted AS (
    INSERT INTO ops (seq, seqs, micros, event_times, profiles, kinds, created_ats, bodies, joined)
    SELECT min(seq), array_agg(seq), array_agg(micros), array_agg(event_time), array_agg(id),
        array_agg('patch'::text), array_agg(NULL::text), array_agg(body), array_agg(''::text)
    FROM kept HAVING count(*) > 0
    RETURNING profiles
)
SELECT DISTINCT unnest(profiles) FROM inserted";

/// How many requests one batched statement takes at most. (The arrays of one `ops` row are
/// aggregated in one pass over the same rows, so their elements correspond; their order is
/// free, as the workers sort the operations they claim by sequence number.)
const MAX_BATCH: usize = 512;

/// How many plain-patch statements an instance keeps in flight at once.
const PLAIN_BATCHERS: usize = 2;

/// Where several profiles stand, at once.
const LOCATE: &str = "\
SELECT i.id, EXISTS (SELECT 1 FROM accepted a WHERE a.id = i.id),
    (SELECT r.target FROM redirects r WHERE r.id = i.id)
FROM unnest($1::text[]) AS i(id)";

/// How many locate statements an instance keeps in flight at once.
const LOCATE_BATCHERS: usize = 1;

/// A `locate` waiting for its batch.
struct Locating {
    id: ProfileId,
    answer: tokio::sync::oneshot::Sender<Result<Located, StoreError>>,
}

/// A patch of no identifier trait, waiting for its batch.
struct PlainPatch {
    id: ProfileId,
    micros: i64,
    event_time: bool,
    body: Bytes,
    /// Whether it was accepted (its profile live), once committed.
    answer: tokio::sync::oneshot::Sender<Result<bool, StoreError>>,
}

/// Claims unapplied rows of operations no other worker holds.
const CLAIM: &str = "\
SELECT seq, seqs, micros, profiles, kinds, created_ats, bodies, joined FROM ops
WHERE NOT applied ORDER BY seq LIMIT 64 FOR UPDATE SKIP LOCKED";

/// How many workers each instance runs (instances' workers share the work through
/// `SKIP LOCKED`; within one instance, a second would mostly wait for the first's row locks).
const WORKERS_PER_INSTANCE: usize = 1;

/// The PostgreSQL storage.
pub(crate) struct Postgres {
    pool: Pool,
    schema: Arc<StoreSchema>,
    /// This instance's acceptance clock: the last instant given, in microseconds.
    clock: AtomicI64,
    /// Wakes this instance's workers after an accepted write.
    wake: Arc<tokio::sync::Notify>,
    /// Plain patches, to the batchers.
    plain: tokio::sync::mpsc::UnboundedSender<PlainPatch>,
    /// Locates, to their batchers.
    locating: tokio::sync::mpsc::UnboundedSender<Locating>,
}

/// What the service reports at start on PostgreSQL.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostgresReport {
    /// Live profiles in the database.
    pub(crate) profiles: i64,
    /// Accepted operations not yet applied (any instance's workers apply them).
    pub(crate) unapplied: i64,
}

fn unavailable(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {error}"))
}

fn parse_id(text: &str) -> Result<ProfileId, StoreError> {
    text.parse()
        .map_err(|e| unavailable(format!("a stored profile id `{text}` does not parse: {e}")))
}

fn stamp(micros: i64, seq: u64) -> Result<Stamp, StoreError> {
    Stamp::new(micros, seq).map_err(|e| unavailable(format!("stamp ({micros}, {seq}): {e:?}")))
}

impl Postgres {
    /// Connects to `url`, creates the tables if missing (refusing a database of another
    /// store), and starts this instance's workers on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// A message when the URL is malformed, the database unreachable or of another store.
    pub(crate) async fn start(
        url: &str,
        store: &StoreId,
        schema: Arc<StoreSchema>,
        pool_size: usize,
    ) -> Result<(Postgres, PostgresReport), String> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| format!("--postgres: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(2));
        }
        config.keepalives_idle(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("profile-service");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(3)))
            .recycle_timeout(Some(Duration::from_secs(3)))
            .build()
            .map_err(|e| e.to_string())?;
        let mut client = pool.get().await.map_err(|e| format!("PostgreSQL: {e}"))?;
        let sql = |e: tokio_postgres::Error| format!("PostgreSQL: {e}");
        let tx = client.transaction().await.map_err(sql)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&IDENTITY_LOCK])
            .await
            .map_err(sql)?;
        tx.batch_execute(SCHEMA_SQL).await.map_err(sql)?;
        let held = tx
            .query_opt("SELECT store_id FROM profile_service_store", &[])
            .await
            .map_err(sql)?;
        match held {
            Some(row) => {
                let held: String = row.get(0);
                if held != store.as_str() {
                    return Err(format!(
                        "the database holds store `{held}`, not `{store}`: start with `--store-id {held}`, or use another database"
                    ));
                }
            }
            None => {
                tx.execute(
                    "INSERT INTO profile_service_store (store_id) VALUES ($1)",
                    &[&store.as_str()],
                )
                .await
                .map_err(sql)?;
            }
        }
        let row = tx
            .query_one(
                "SELECT coalesce(max(m), 0)::bigint, \
                 (SELECT count(*) FROM accepted), \
                 (SELECT coalesce(sum(cardinality(seqs)), 0)::bigint FROM ops WHERE NOT applied) \
                 FROM ops, unnest(micros, event_times) AS u(m, e) WHERE NOT e",
                &[],
            )
            .await
            .map_err(sql)?;
        tx.commit().await.map_err(sql)?;
        drop(client);
        let report = PostgresReport {
            profiles: row.get(1),
            unapplied: row.get(2),
        };
        let wake = Arc::new(tokio::sync::Notify::new());
        for _ in 0..WORKERS_PER_INSTANCE {
            tokio::spawn(run_worker(
                pool.clone(),
                Arc::clone(&schema),
                Arc::clone(&wake),
            ));
        }
        let (plain, plain_rx) = tokio::sync::mpsc::unbounded_channel();
        let plain_rx = Arc::new(tokio::sync::Mutex::new(plain_rx));
        for _ in 0..PLAIN_BATCHERS {
            tokio::spawn(run_batcher(
                pool.clone(),
                Arc::clone(&plain_rx),
                commit_plain,
            ));
        }
        let (locating, locating_rx) = tokio::sync::mpsc::unbounded_channel();
        let locating_rx = Arc::new(tokio::sync::Mutex::new(locating_rx));
        for _ in 0..LOCATE_BATCHERS {
            tokio::spawn(run_batcher(
                pool.clone(),
                Arc::clone(&locating_rx),
                locate_batch,
            ));
        }
        let storage = Postgres {
            locating,
            pool,
            schema,
            clock: AtomicI64::new(row.get(0)),
            wake,
            plain,
        };
        Ok((storage, report))
    }

    /// The instant of a write's stamp: `event_time` if given, else this instance's clock,
    /// which never goes backwards (the greater of now and its last instant plus 1 µs).
    fn instant(&self, event_time: Option<Stamp>) -> (i64, bool) {
        if let Some(time) = event_time {
            return (time.micros_since_epoch(), true);
        }
        let now = jiff::Timestamp::now().as_microsecond();
        let last = self
            .clock
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .expect("the update always gives a value");
        (now.max(last + 1), false)
    }

    /// A patch of no identifier trait: committed with the others waiting at that moment.
    async fn plain_patch(
        &self,
        id: ProfileId,
        body: Bytes,
        event_time: Option<Stamp>,
    ) -> Result<Vec<ProfileId>, StoreError> {
        let (micros, from_event) = self.instant(event_time);
        let (answer, answered) = tokio::sync::oneshot::channel();
        let patch = PlainPatch {
            id: id.clone(),
            micros,
            event_time: from_event,
            body,
            answer,
        };
        self.plain
            .send(patch)
            .map_err(|_| unavailable("the batchers stopped"))?;
        let live = answered
            .await
            .map_err(|_| unavailable("the batchers stopped"))??;
        if !live {
            let client = self.pool.get().await.map_err(unavailable)?;
            return Err(not_live(&**client, &id).await);
        }
        Ok(vec![id])
    }

    /// A create, bulk upsert, delete or identifier patch: under the identity lock.
    async fn resolving(
        &self,
        write: Write,
        event_time: Option<Stamp>,
    ) -> Result<Vec<ProfileId>, StoreError> {
        let schema = &*self.schema;
        let mut client = self.pool.get().await.map_err(unavailable)?;
        let tx = client.transaction().await.map_err(unavailable)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&IDENTITY_LOCK])
            .await
            .map_err(unavailable)?;
        let mut loader = Loader::default();
        let mut ops: Vec<(Op, Bytes)> = Vec::new();
        let mut created: Vec<ProfileId> = Vec::new();
        let mut push = |loader: &mut Loader, op: Op, body: Bytes| {
            loader.touched.insert(op.profile.clone());
            loader.identity.record(schema, &op);
            ops.push((op, body));
        };
        match write {
            Write::Create(items) => {
                let keys = items
                    .iter()
                    .flat_map(|(patch, _)| identity::keys_set(schema, patch))
                    .collect();
                loader.load_keys(&*tx, schema, keys).await?;
                let seqs = next_seqs(&*tx, items.len()).await?;
                for ((patch, body), seq) in items.into_iter().zip(seqs) {
                    let (micros, from_event) = self.instant(event_time);
                    let (profile, kind) = match loader.identity.resolve_create(schema, &patch) {
                        None => {
                            let id = fresh_profile_id();
                            created.push(id.clone());
                            let kind = OpKind::Create {
                                created_at: now_rfc3339(),
                                traits: patch,
                            };
                            (id, kind)
                        }
                        Some((target, join)) => (target, OpKind::Patch { patch, join }),
                    };
                    let op = Op {
                        seq,
                        stamp: stamp(micros, seq)?,
                        event_time: from_event,
                        more: false,
                        profile,
                        kind,
                    };
                    push(&mut loader, op, body);
                }
            }
            Write::Patch { id, patch, body } => {
                loader.load_ids(&*tx, schema, vec![id.clone()]).await?;
                if loader.identity.part(&id).is_none() {
                    return Err(not_live(&*tx, &id).await);
                }
                let seq = next_seqs(&*tx, 1).await?[0];
                let (micros, from_event) = self.instant(event_time);
                let stamp = stamp(micros, seq)?;
                let keys = loader.identity.keys_after_patch(schema, &id, &patch, stamp);
                loader.load_keys(&*tx, schema, keys).await?;
                let (target, join) = loader.identity.resolve_patch(schema, &id, &patch, stamp);
                let op = Op {
                    seq,
                    stamp,
                    event_time: from_event,
                    more: false,
                    profile: target,
                    kind: OpKind::Patch { patch, join },
                };
                push(&mut loader, op, body);
            }
            Write::Delete(id) => {
                loader.load_ids(&*tx, schema, vec![id.clone()]).await?;
                if loader.identity.part(&id).is_none() {
                    return Err(not_live(&*tx, &id).await);
                }
                let seq = next_seqs(&*tx, 1).await?[0];
                let (micros, from_event) = self.instant(event_time);
                let op = Op {
                    seq,
                    stamp: stamp(micros, seq)?,
                    event_time: from_event,
                    more: false,
                    profile: id,
                    kind: OpKind::Delete,
                };
                push(&mut loader, op, Bytes::new());
            }
        }
        let answer = ops.iter().map(|(op, _)| op.profile.clone()).collect();
        write_accepted(&*tx, schema, &loader, &ops, &created).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(answer)
    }
}

/// The identity state of the profiles an acceptance concerns, loaded piecemeal under the
/// identity lock: every holder of every key asked about, and every profile asked about.
#[derive(Default)]
struct Loader {
    identity: Identity,
    /// Every profile loaded (or created) here: their rows are written back.
    touched: BTreeSet<ProfileId>,
    keys: HashSet<Key>,
}

impl Loader {
    /// Loads every live profile holding one of `keys`.
    async fn load_keys(
        &mut self,
        tx: &impl GenericClient,
        schema: &StoreSchema,
        keys: BTreeSet<Key>,
    ) -> Result<(), StoreError> {
        let (types, values): (Vec<String>, Vec<String>) = keys
            .into_iter()
            .filter(|key| self.keys.insert(key.clone()))
            .unzip();
        if types.is_empty() {
            return Ok(());
        }
        let rows = tx
            .query(
                "SELECT DISTINCT profile FROM id_index WHERE (id_type, value) IN \
                 (SELECT * FROM unnest($1::text[], $2::text[]))",
                &[&types, &values],
            )
            .await
            .map_err(unavailable)?;
        let ids = rows
            .iter()
            .map(|row| parse_id(row.get(0)))
            .collect::<Result<Vec<_>, _>>()?;
        self.load_ids(tx, schema, ids).await
    }

    /// Loads the identity state of `ids` (those not loaded yet; missing ones stay missing).
    async fn load_ids(
        &mut self,
        tx: &impl GenericClient,
        schema: &StoreSchema,
        ids: Vec<ProfileId>,
    ) -> Result<(), StoreError> {
        let fresh: Vec<String> = ids
            .into_iter()
            .filter(|id| self.touched.insert(id.clone()))
            .map(|id| id.as_str().to_owned())
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        let rows = tx
            .query(
                "SELECT id, ident FROM accepted WHERE id = ANY($1)",
                &[&fresh],
            )
            .await
            .map_err(unavailable)?;
        for row in rows {
            let id = parse_id(row.get(0))?;
            let part: StoredProfile = serde_json::from_str(row.get(1))
                .map_err(|e| unavailable(format!("identity of {id}: {e}")))?;
            self.identity.add(schema, id, part);
        }
        Ok(())
    }
}

/// Sequence numbers for `count` operations, increasing.
async fn next_seqs(tx: &impl GenericClient, count: usize) -> Result<Vec<u64>, StoreError> {
    let count = i32::try_from(count).expect("at most 1000 items");
    let rows = tx
        .query(
            "SELECT nextval('op_seq') FROM generate_series(1, $1)",
            &[&count],
        )
        .await
        .map_err(unavailable)?;
    let mut seqs: Vec<u64> = rows
        .iter()
        .map(|row| row.get::<_, i64>(0).cast_unsigned())
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// Why `id` is not live: moved (with its canonical id), missing, or the database failing.
async fn not_live(client: &impl GenericClient, id: &ProfileId) -> StoreError {
    let row = client
        .query_opt(
            "SELECT target FROM redirects WHERE id = $1",
            &[&id.as_str()],
        )
        .await;
    match row {
        Ok(Some(row)) => match parse_id(row.get(0)) {
            Ok(to) => StoreError::Moved(to),
            Err(error) => error,
        },
        Ok(None) => StoreError::NotFound,
        Err(error) => unavailable(error),
    }
}

/// Writes what an acceptance decided: its operations, the rows of the profiles it created,
/// the identity state of every profile it loaded, and the redirects of its joins and deletes.
async fn write_accepted(
    tx: &impl GenericClient,
    schema: &StoreSchema,
    loader: &Loader,
    ops: &[(Op, Bytes)],
    created: &[ProfileId],
) -> Result<(), StoreError> {
    let mut seqs = Vec::new();
    let mut micros = Vec::new();
    let mut event_times = Vec::new();
    let mut profiles = Vec::new();
    let mut kinds = Vec::new();
    let mut created_ats: Vec<Option<String>> = Vec::new();
    let mut bodies = Vec::new();
    let mut joined_texts = Vec::new();
    let mut new_rows = Vec::new();
    let mut new_ids = Vec::new();
    for (op, body) in ops {
        seqs.push(op.seq.cast_signed());
        micros.push(op.stamp.micros_since_epoch());
        event_times.push(op.event_time);
        profiles.push(op.profile.as_str().to_owned());
        bodies.push(&body[..]);
        let (kind, created_at, joined) = match &op.kind {
            OpKind::Create { created_at, .. } => {
                ("create", Some(created_at.clone()), String::new())
            }
            OpKind::Patch { join, .. } => {
                let ids: Vec<&str> = join.iter().map(ProfileId::as_str).collect();
                ("patch", None, ids.join(" "))
            }
            OpKind::Delete => ("delete", None, String::new()),
        };
        if let (OpKind::Create { created_at, .. }, true) = (&op.kind, created.contains(&op.profile))
        {
            let mut row = StoredProfile::new();
            row.set_id(Some(op.profile.clone()));
            row.set_created_at(Some(created_at.clone()));
            new_ids.push(op.profile.as_str().to_owned());
            new_rows.push(serde_json::to_string(&row).expect("a profile serializes"));
        }
        kinds.push(kind.to_owned());
        created_ats.push(created_at);
        joined_texts.push(joined);
    }
    tx.execute(
        "INSERT INTO ops (seq, seqs, micros, event_times, profiles, kinds, created_ats, bodies, \
         joined) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &seqs.iter().min().copied().unwrap_or_default(),
            &seqs,
            &micros,
            &event_times,
            &profiles,
            &kinds,
            &created_ats,
            &bodies,
            &joined_texts,
        ],
    )
    .await
    .map_err(unavailable)?;
    if !new_ids.is_empty() {
        tx.execute(
            "INSERT INTO profiles (id, stored) SELECT * FROM unnest($1::text[], $2::text[])",
            &[&new_ids, &new_rows],
        )
        .await
        .map_err(unavailable)?;
    }
    // The identity state of every profile loaded or created.
    let touched: Vec<String> = loader
        .touched
        .iter()
        .map(|id| id.as_str().to_owned())
        .collect();
    let (mut live_ids, mut idents, mut gone) = (Vec::new(), Vec::new(), Vec::new());
    let (mut key_types, mut key_values, mut key_ids) = (Vec::new(), Vec::new(), Vec::new());
    for id in &loader.touched {
        match loader.identity.part(id) {
            Some(part) => {
                live_ids.push(id.as_str().to_owned());
                idents.push(serde_json::to_string(part).expect("a profile serializes"));
                for (id_type, value) in identity::live_keys(schema, part) {
                    key_types.push(id_type);
                    key_values.push(value);
                    key_ids.push(id.as_str().to_owned());
                }
            }
            None => gone.push(id.as_str().to_owned()),
        }
    }
    tx.execute("DELETE FROM id_index WHERE profile = ANY($1)", &[&touched])
        .await
        .map_err(unavailable)?;
    tx.execute(
        "INSERT INTO id_index (id_type, value, profile) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING",
        &[&key_types, &key_values, &key_ids],
    )
    .await
    .map_err(unavailable)?;
    tx.execute(
        "INSERT INTO accepted (id, ident) SELECT * FROM unnest($1::text[], $2::text[]) \
         ON CONFLICT (id) DO UPDATE SET ident = excluded.ident",
        &[&live_ids, &idents],
    )
    .await
    .map_err(unavailable)?;
    tx.execute("DELETE FROM accepted WHERE id = ANY($1)", &[&gone])
        .await
        .map_err(unavailable)?;
    // Redirects, in acceptance order: joined ids to their target (and whatever redirected
    // to them too), none to a deleted profile.
    for (op, _) in ops {
        let target = op.profile.as_str();
        match &op.kind {
            OpKind::Patch { join, .. } => {
                for other in join {
                    tx.execute(
                        "UPDATE redirects SET target = $2 WHERE target = $1",
                        &[&other.as_str(), &target],
                    )
                    .await
                    .map_err(unavailable)?;
                    tx.execute(
                        "INSERT INTO redirects (id, target) VALUES ($1, $2) \
                         ON CONFLICT (id) DO UPDATE SET target = excluded.target",
                        &[&other.as_str(), &target],
                    )
                    .await
                    .map_err(unavailable)?;
                }
            }
            OpKind::Delete => {
                tx.execute("DELETE FROM redirects WHERE target = $1", &[&target])
                    .await
                    .map_err(unavailable)?;
            }
            OpKind::Create { .. } => {}
        }
    }
    Ok(())
}

impl Storage for Postgres {
    fn locate<'a>(&'a self, id: &'a ProfileId) -> Pending<'a, Result<Located, StoreError>> {
        Box::pin(async move {
            let (answer, answered) = tokio::sync::oneshot::channel();
            let locating = Locating {
                id: id.clone(),
                answer,
            };
            self.locating
                .send(locating)
                .map_err(|_| unavailable("the batchers stopped"))?;
            answered
                .await
                .map_err(|_| unavailable("the batchers stopped"))?
        })
    }

    fn lookup<'a>(&'a self, key: &'a Key) -> Pending<'a, Result<Vec<ProfileId>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            let limit = MAX_LOOKUP_PROFILES as i64;
            let rows = client
                .query(
                    "SELECT profile FROM id_index WHERE id_type = $1 AND value = $2 \
                     ORDER BY profile LIMIT $3",
                    &[&key.0, &key.1, &limit],
                )
                .await
                .map_err(unavailable)?;
            rows.iter().map(|row| parse_id(row.get(0))).collect()
        })
    }

    fn accept(
        &self,
        write: Write,
        event_time: Option<Stamp>,
    ) -> Pending<'_, Result<Vec<ProfileId>, StoreError>> {
        Box::pin(async move {
            let result = match write {
                Write::Patch { id, patch, body }
                    if !identity::touches_identifier(&self.schema, &patch) =>
                {
                    self.plain_patch(id, body, event_time).await
                }
                write => self.resolving(write, event_time).await,
            };
            if result.is_ok() {
                self.wake.notify_one();
            }
            result
        })
    }

    fn profile<'a>(
        &'a self,
        id: &'a ProfileId,
    ) -> Pending<'a, Result<Option<Arc<StoredProfile>>, StoreError>> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(unavailable)?;
            let statement = client
                .prepare_cached("SELECT stored FROM profiles WHERE id = $1 AND created")
                .await
                .map_err(unavailable)?;
            let row = client
                .query_opt(&statement, &[&id.as_str()])
                .await
                .map_err(unavailable)?;
            row.map(|row| {
                serde_json::from_str::<StoredProfile>(row.get(0))
                    .map(Arc::new)
                    .map_err(|e| unavailable(format!("stored profile {id}: {e}")))
            })
            .transpose()
        })
    }
}

// ---- the plain-patch batchers ----

/// A request that waits in a batch for one statement, and the answer it gets.
trait Batched: Send + 'static {
    type Answer: Send;
    fn answer(self, answer: Result<Self::Answer, StoreError>);
}

impl Batched for PlainPatch {
    type Answer = bool;
    fn answer(self, answer: Result<bool, StoreError>) {
        let _ = self.answer.send(answer);
    }
}

impl Batched for Locating {
    type Answer = Located;
    fn answer(self, answer: Result<Located, StoreError>) {
        let _ = self.answer.send(answer);
    }
}

/// Takes every request waiting in `queue` (up to [`MAX_BATCH`]) into one statement (for
/// writes, one commit), and answers each; several run at once, so that a batch fills while
/// another is in the database.
async fn run_batcher<T, F>(
    pool: Pool,
    queue: Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<T>>>,
    run: impl Fn(Pool, Arc<Vec<T>>) -> F + Send + 'static,
) where
    T: Batched + Sync,
    F: Future<Output = Result<Vec<T::Answer>, StoreError>> + Send,
{
    loop {
        let mut batch = Vec::new();
        {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
        }
        let batch = Arc::new(batch);
        let result = run(pool.clone(), Arc::clone(&batch)).await;
        let batch = Arc::into_inner(batch).expect("the statement is done with the batch");
        match result {
            Ok(answers) => {
                for (request, answer) in batch.into_iter().zip(answers) {
                    request.answer(Ok(answer));
                }
            }
            Err(error) => {
                for request in batch {
                    request.answer(Err(error.clone()));
                }
            }
        }
    }
}

/// Where each of `batch` stands.
async fn locate_batch(pool: Pool, batch: Arc<Vec<Locating>>) -> Result<Vec<Located>, StoreError> {
    let client = pool.get().await.map_err(unavailable)?;
    let statement = client.prepare_cached(LOCATE).await.map_err(unavailable)?;
    let ids: Vec<&str> = batch.iter().map(|l| l.id.as_str()).collect();
    let rows = client
        .query(&statement, &[&ids])
        .await
        .map_err(unavailable)?;
    let mut found: HashMap<&str, Located> = HashMap::new();
    for row in &rows {
        let id: &str = row.get(0);
        let live: bool = row.get(1);
        let moved: Option<&str> = row.get(2);
        let located = match (live, moved) {
            (true, _) => Located::Live,
            (false, Some(to)) => Located::Moved(parse_id(to)?),
            (false, None) => Located::Missing,
        };
        found.insert(id, located);
    }
    Ok(ids
        .iter()
        .map(|id| found.get(id).cloned().unwrap_or(Located::Missing))
        .collect())
}

/// Commits `batch` in one statement; whether each was accepted (its profile live).
async fn commit_plain(pool: Pool, batch: Arc<Vec<PlainPatch>>) -> Result<Vec<bool>, StoreError> {
    let client = pool.get().await.map_err(unavailable)?;
    let statement = client
        .prepare_cached(PLAIN_PATCHES)
        .await
        .map_err(unavailable)?;
    let ids: Vec<&str> = batch.iter().map(|p| p.id.as_str()).collect();
    let micros: Vec<i64> = batch.iter().map(|p| p.micros).collect();
    let event_times: Vec<bool> = batch.iter().map(|p| p.event_time).collect();
    let bodies: Vec<&[u8]> = batch.iter().map(|p| &p.body[..]).collect();
    let order: Vec<i32> = (0..).take(batch.len()).collect();
    let rows = client
        .query(&statement, &[&ids, &micros, &event_times, &bodies, &order])
        .await
        .map_err(unavailable)?;
    let live: HashSet<&str> = rows.iter().map(|row| row.get(0)).collect();
    Ok(ids.iter().map(|id| live.contains(id)).collect())
}

// ---- the workers ----

/// Claims, applies and marks applied batches of operations, for as long as the service
/// runs; waits for a wake-up or a short poll when there is nothing to do, and retries after
/// a pause while the database fails.
async fn run_worker(pool: Pool, schema: Arc<StoreSchema>, wake: Arc<tokio::sync::Notify>) {
    let mut idle = Duration::from_millis(1);
    let mut failing = false;
    loop {
        match apply_batch(&pool, &schema).await {
            Ok(0) => {
                tokio::select! {
                    () = wake.notified() => idle = Duration::from_millis(1),
                    () = tokio::time::sleep(idle) => idle = (idle * 2).min(Duration::from_millis(50)),
                }
                failing = false;
            }
            Ok(_) => {
                idle = Duration::from_millis(1);
                failing = false;
            }
            Err(error) => {
                if !failing {
                    eprintln!("profile-service: worker: {error:?}; retrying");
                    failing = true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// A claimed operation.
#[derive(Clone)]
struct Claimed {
    seq: i64,
    stamp: Stamp,
    profile: String,
    kind: String,
    created_at: Option<String>,
    body: Vec<u8>,
    joined: Vec<String>,
}

/// A locked profile row.
struct Row {
    profile: StoredProfile,
    created: bool,
}

/// One transaction: claims up to 1024 operations, applies them, marks them applied; how
/// many it applied.
async fn apply_batch(pool: &Pool, schema: &StoreSchema) -> Result<usize, StoreError> {
    let mut client = pool.get().await.map_err(unavailable)?;
    let mut extra: BTreeSet<String> = BTreeSet::new();
    for _attempt in 0..8 {
        let tx = client.transaction().await.map_err(unavailable)?;
        // Planned anew each time, not prepared once: a statement without parameters keeps
        // the plan made when it was prepared, and one prepared while `ops` was nearly empty
        // scans the whole table (every applied row) rather than the index of unapplied ones.
        let rows = tx.query(CLAIM, &[]).await.map_err(unavailable)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut ops = Vec::new();
        let mut claimed_rows: Vec<i64> = Vec::with_capacity(rows.len());
        for row in &rows {
            claimed_rows.push(row.get(0));
            let seqs: Vec<i64> = row.get(1);
            let micros: Vec<i64> = row.get(2);
            let profiles: Vec<String> = row.get(3);
            let kinds: Vec<String> = row.get(4);
            let created_ats: Vec<Option<String>> = row.get(5);
            let bodies: Vec<Vec<u8>> = row.get(6);
            let joined: Vec<String> = row.get(7);
            let parts = seqs
                .into_iter()
                .zip(micros)
                .zip(profiles)
                .zip(kinds)
                .zip(created_ats)
                .zip(bodies)
                .zip(joined);
            for ((((((seq, micros), profile), kind), created_at), body), joined) in parts {
                ops.push(Claimed {
                    seq,
                    stamp: stamp(micros, seq.cast_unsigned())?,
                    profile,
                    kind,
                    created_at,
                    body,
                    joined: joined.split_whitespace().map(str::to_owned).collect(),
                });
            }
        }
        ops.sort_by_key(|op| op.seq);
        // Every row the batch may touch: its profiles, the joined ones, where they redirect.
        let mut ids: BTreeSet<String> = extra.clone();
        for op in &ops {
            ids.insert(op.profile.clone());
            ids.extend(op.joined.iter().cloned());
        }
        let asked: Vec<String> = ids.iter().cloned().collect();
        let redirects: HashMap<String, String> = tx
            .query(
                "SELECT id, target FROM redirects WHERE id = ANY($1)",
                &[&asked],
            )
            .await
            .map_err(unavailable)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        ids.extend(redirects.values().cloned());
        let wanted: Vec<String> = ids.iter().cloned().collect();
        let locked = tx
            .query(
                "SELECT id, created, stored FROM profiles WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                &[&wanted],
            )
            .await
            .map_err(unavailable)?;
        let mut profiles: HashMap<String, Row> = HashMap::new();
        for row in &locked {
            let id: String = row.get(0);
            let profile: StoredProfile = serde_json::from_str(row.get(2))
                .map_err(|e| unavailable(format!("stored profile {id}: {e}")))?;
            profiles.insert(
                id,
                Row {
                    profile,
                    created: row.get(1),
                },
            );
        }
        // An op whose profile and redirect target are both gone: its redirect may have moved
        // on since it was read; if it now names a row not locked, lock it too (again).
        let lost: Vec<String> = ops
            .iter()
            .map(|op| &op.profile)
            .filter(|id| {
                !profiles.contains_key(*id)
                    && redirects
                        .get(*id)
                        .is_none_or(|to| !profiles.contains_key(to))
            })
            .cloned()
            .collect();
        if !lost.is_empty() {
            let now: Vec<String> = tx
                .query("SELECT target FROM redirects WHERE id = ANY($1)", &[&lost])
                .await
                .map_err(unavailable)?
                .iter()
                .map(|row| row.get(0))
                .filter(|to: &String| !ids.contains(to))
                .collect();
            if !now.is_empty() {
                extra.extend(now);
                tx.rollback().await.map_err(unavailable)?;
                continue;
            }
        }
        // The CPU part (merging, serializing) off the runtime's other tasks.
        let (ids, created, stored, deleted) = tokio::task::block_in_place(|| {
            let mut deleted: HashSet<String> = HashSet::new();
            let mut changed: HashSet<String> = HashSet::new();
            for op in &ops {
                apply(
                    op,
                    schema,
                    &mut profiles,
                    &redirects,
                    &mut deleted,
                    &mut changed,
                );
            }
            let (mut ids, mut created, mut stored) = (Vec::new(), Vec::new(), Vec::new());
            for id in &changed {
                if let Some(row) = profiles.get(id) {
                    ids.push(id.clone());
                    created.push(row.created);
                    stored.push(serde_json::to_string(&row.profile).expect("a profile serializes"));
                }
            }
            (ids, created, stored, deleted)
        });
        if !ids.is_empty() {
            tx.execute(
                "UPDATE profiles AS p SET created = u.created, stored = u.stored \
                 FROM unnest($1::text[], $2::bool[], $3::text[]) AS u(id, created, stored) \
                 WHERE p.id = u.id",
                &[&ids, &created, &stored],
            )
            .await
            .map_err(unavailable)?;
        }
        if !deleted.is_empty() {
            let deleted: Vec<String> = deleted.into_iter().collect();
            tx.execute("DELETE FROM profiles WHERE id = ANY($1)", &[&deleted])
                .await
                .map_err(unavailable)?;
        }
        tx.execute(
            "UPDATE ops SET applied = true, applications = applications + 1 WHERE seq = ANY($1)",
            &[&claimed_rows],
        )
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        return Ok(ops.len());
    }
    Err(unavailable("redirects kept moving under a batch; retrying"))
}

/// Applies `op` to the locked rows `profiles`: to its profile's row, or, if that was joined
/// away, to the row it redirects to; an op whose profile is deleted changes nothing.
fn apply(
    op: &Claimed,
    schema: &StoreSchema,
    profiles: &mut HashMap<String, Row>,
    redirects: &HashMap<String, String>,
    deleted: &mut HashSet<String>,
    changed: &mut HashSet<String>,
) {
    let target = if profiles.contains_key(&op.profile) {
        Some(op.profile.clone())
    } else {
        redirects
            .get(&op.profile)
            .filter(|to| profiles.contains_key(*to))
            .cloned()
    };
    // Checked when accepted; read again against the schema in one pass, resolved there.
    let patch = || match schema.parse_patch(&op.body) {
        Ok(patch) => Some(patch),
        Err(error) => {
            eprintln!(
                "profile-service: op {} to {} skipped: {error}",
                op.seq, op.profile
            );
            None
        }
    };
    match op.kind.as_str() {
        "delete" => {
            if profiles.remove(&op.profile).is_some() {
                deleted.insert(op.profile.clone());
                changed.remove(&op.profile);
            }
        }
        "create" => {
            let Some(target) = target else { return };
            let row = profiles.get_mut(&target).expect("resolved to a locked row");
            if target == op.profile {
                row.created = true;
                if let Some(created_at) = &op.created_at {
                    row.profile.set_created_at(Some(created_at.clone()));
                }
            }
            if let Some(traits) = patch()
                && let Err(error) = row.profile.apply_owned(traits, schema, op.stamp)
            {
                eprintln!("profile-service: traits of create {target} skipped: {error}");
            }
            changed.insert(target);
        }
        _ => {
            let Some(target) = target else {
                // The profile was deleted: those it joined went with it.
                for other in &op.joined {
                    if profiles.remove(other).is_some() {
                        deleted.insert(other.clone());
                        changed.remove(other);
                    }
                }
                return;
            };
            for other in &op.joined {
                if *other == target {
                    continue;
                }
                if let Some(theirs) = profiles.remove(other) {
                    deleted.insert(other.clone());
                    changed.remove(other);
                    let row = profiles.get_mut(&target).expect("resolved to a locked row");
                    let mut joined = row.profile.join(&theirs.profile);
                    joined.sort_by_schema(schema);
                    joined.set_id(row.profile.id().cloned());
                    joined.set_created_at(row.profile.created_at().map(str::to_owned));
                    row.profile = joined;
                }
            }
            let row = profiles.get_mut(&target).expect("resolved to a locked row");
            if let Some(patch) = patch()
                && let Err(error) = row.profile.apply_owned(patch, schema, op.stamp)
            {
                eprintln!("profile-service: patch to {target} skipped: {error}");
            }
            changed.insert(target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> StoreSchema {
        serde_json::from_str(include_str!("../../schema.json")).unwrap()
    }

    fn id(n: u128) -> String {
        ProfileId::from_bits(n).as_str().to_owned()
    }

    fn op(
        seq: i64,
        micros: i64,
        profile: &str,
        kind: &str,
        body: &str,
        joined: &[&str],
    ) -> Claimed {
        Claimed {
            seq,
            stamp: Stamp::new(micros, seq.cast_unsigned()).unwrap(),
            profile: profile.to_owned(),
            kind: kind.to_owned(),
            created_at: (kind == "create").then(|| "2026-01-01T00:00:00Z".to_owned()),
            body: body.as_bytes().to_vec(),
            joined: joined.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn row(n: u128) -> Row {
        let mut profile = StoredProfile::new();
        profile.set_id(Some(ProfileId::from_bits(n)));
        Row {
            profile,
            created: false,
        }
    }

    /// Applies `ops` in the order given to rows for `ids`; the profiles left, as JSON views.
    fn run(
        ids: &[u128],
        redirects: &[(u128, u128)],
        ops: &[Claimed],
    ) -> BTreeSet<(String, bool, String)> {
        let schema = schema();
        let mut profiles: HashMap<String, Row> = ids.iter().map(|&n| (id(n), row(n))).collect();
        let redirects = redirects.iter().map(|&(a, b)| (id(a), id(b))).collect();
        let (mut deleted, mut changed) = (HashSet::new(), HashSet::new());
        for op in ops {
            apply(
                op,
                &schema,
                &mut profiles,
                &redirects,
                &mut deleted,
                &mut changed,
            );
        }
        profiles
            .into_iter()
            .map(|(id, row)| {
                let view = serde_json::to_string(&row.profile.view()).unwrap();
                let at = view.find(r#""traits":"#).unwrap() + r#""traits":"#.len();
                let traits = view[at..view.len() - 1].to_owned();
                (id, row.created, traits)
            })
            .collect()
    }

    #[test]
    fn a_patch_applied_before_its_create_is_kept() {
        let (a, create, patch) = (
            id(1),
            r#"{"traits": {"Contact": {"email": "a@b.c", "city": "Paris"}}}"#,
            r#"{"traits": {"Contact": {"city": "Rome"}}}"#,
        );
        let ops = [
            op(1, 10, &a, "create", create, &[]),
            op(2, 20, &a, "patch", patch, &[]),
        ];
        let in_order = run(&[1], &[], &ops);
        let reversed = run(&[1], &[], &[ops[1].clone(), ops[0].clone()]);
        assert_eq!(in_order, reversed);
        let (_, created, traits) = in_order.first().unwrap();
        assert!(created);
        assert_eq!(traits, r#"{"Contact":{"email":"a@b.c","city":"Rome"}}"#);
    }

    #[test]
    fn an_op_to_a_joined_away_profile_follows_the_redirect() {
        let (a, b) = (id(1), id(2));
        let join = op(3, 30, &a, "patch", r#"{"traits": {}}"#, &[&b]);
        let late = op(
            2,
            20,
            &b,
            "patch",
            r#"{"traits": {"Contact": {"city": "Oslo"}}}"#,
            &[],
        );
        let before = run(&[1, 2], &[(2, 1)], &[late.clone(), join.clone()]);
        let after = run(&[1, 2], &[(2, 1)], &[join, late]);
        assert_eq!(before, after);
        assert_eq!(after.len(), 1);
        assert_eq!(after.first().unwrap().2, r#"{"Contact":{"city":"Oslo"}}"#);
    }

    #[test]
    fn ops_after_a_delete_change_nothing_and_its_joins_go_with_it() {
        let (a, b) = (id(1), id(2));
        let delete = op(2, 20, &a, "delete", "", &[]);
        let join = op(1, 10, &a, "patch", r#"{"traits": {}}"#, &[&b]);
        let patch = op(
            3,
            30,
            &a,
            "patch",
            r#"{"traits": {"Contact": {"city": "Oslo"}}}"#,
            &[],
        );
        assert!(
            run(
                &[1, 2],
                &[(2, 1)],
                &[delete.clone(), join.clone(), patch.clone()]
            )
            .is_empty()
        );
        assert!(run(&[1, 2], &[(2, 1)], &[join, patch, delete]).is_empty());
    }
}
