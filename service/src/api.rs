//! The HTTP API: routes, authentication, request checks, and errors in the API's
//! `{"code", "message", "more_info", "status"}` shape.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, mpsc};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use profile_traits::{
    GroupDefinition, Patch, PatchError, Profile, ProfileId, StoreId, StoreSchema, ViolationKind,
};
use serde_json::json;

use crate::log::Submission;
use crate::state::{Op, OpKind, Profiles};
use crate::util;

/// The longest `message` of an error body, as the API documents.
const MAX_MESSAGE_CHARS: usize = 1024;

/// What the acceptance path shares: which profiles exist once every accepted operation is
/// applied, and the log's queue. One lock over both, so that the existence check and the
/// queue order agree (a patch is never queued after a delete it was checked before).
pub struct Accepting {
    /// The profiles that exist after every accepted operation.
    pub known: HashSet<ProfileId>,
    /// The log writer's queue.
    pub log: mpsc::Sender<Submission>,
}

/// The state every handler sees.
#[derive(Clone)]
pub struct App {
    /// The store's schema.
    pub schema: Arc<StoreSchema>,
    /// The one store served.
    pub store_id: StoreId,
    /// The profiles as applied so far (what `GET` answers).
    pub profiles: Arc<RwLock<Profiles>>,
    /// See [`Accepting`].
    pub accepting: Arc<Mutex<Accepting>>,
    /// `account_sid:auth_token`, what an `Authorization: Basic` header must decode to.
    pub expected_authorization: Arc<[u8]>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
}

/// `sid:token`, the decoded form of a valid `Authorization: Basic` value.
pub fn basic_credentials(account_sid: &str, auth_token: &str) -> Vec<u8> {
    format!("{account_sid}:{auth_token}").into_bytes()
}

/// The service's routes, all behind HTTP Basic authentication.
pub fn router(app: App) -> Router {
    Router::new()
        .route(
            "/v1/Stores/{store_id}/Profiles/{profile_id}",
            get(fetch_profile)
                .patch(patch_profile)
                .delete(delete_profile),
        )
        .route(
            "/v1/Stores/{store_id}/Profiles",
            axum::routing::post(create_profile),
        )
        .route(
            "/v1/ControlPlane/Stores/{store_id}/TraitGroups",
            get(list_trait_groups),
        )
        .fallback(|| async { ApiError::not_found("no such resource") })
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .with_state(app)
}

/// An error answer in the API's `TwilioError` shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, 20404, what)
    }

    fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, 520046, message)
    }

    fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 20500, message)
    }

    /// The 400 for a patch the crate rejects: 520047 if a group is unknown, else 520063 if a
    /// trait is unknown, else 520046; the message lists the violations with their pointers.
    fn rejected(error: &PatchError) -> Self {
        let kinds = || error.violations().iter().map(|v| v.kind());
        let code = if kinds().any(|k| k == ViolationKind::UnknownGroup) {
            520047
        } else if kinds().any(|k| k == ViolationKind::UnknownTrait) {
            520063
        } else {
            520046
        };
        let messages: Vec<&str> = error.violations().iter().map(|v| v.message()).collect();
        let more = if error.is_truncated() { " or more" } else { "" };
        let count = messages.len();
        let noun = if count == 1 {
            "violation"
        } else {
            "violations"
        };
        let message = format!(
            "patch rejected, {count}{more} {noun}: {}",
            messages.join("; ")
        );
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }
}

/// `message` cut to at most [`MAX_MESSAGE_CHARS`] characters, ending in `...` if cut.
fn clip(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        return message.to_owned();
    }
    let mut clipped: String = message.chars().take(MAX_MESSAGE_CHARS - 3).collect();
    clipped.push_str("...");
    clipped
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "code": self.code,
            "message": clip(&self.message),
            "more_info": format!("https://www.twilio.com/docs/api/errors/{}", self.code),
            "status": self.status.as_u16(),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"profile-service\""),
            );
        }
        response
    }
}

/// Refuses every request without valid HTTP Basic credentials (401, code 20003).
async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Response {
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, encoded) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(encoded)
        })
        .and_then(|encoded| util::base64_decode(encoded.trim()))
        .is_some_and(|decoded| util::constant_time_eq(&decoded, &app.expected_authorization));
    if authorized {
        next.run(request).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            20003,
            "Failed to complete request due to lack of authentication credentials",
        )
        .into_response()
    }
}

/// Checks the store id: 400 (520049) if it is not a TTID, 404 if it is not the store served.
fn check_store(app: &App, store_id: &str) -> Result<(), ApiError> {
    let store: StoreId = store_id.parse().map_err(|e: profile_traits::IdError| {
        ApiError::new(StatusCode::BAD_REQUEST, 520049, e.to_string())
    })?;
    if store != app.store_id {
        return Err(ApiError::not_found(format!(
            "memory store `{store}` does not exist"
        )));
    }
    Ok(())
}

/// Parses a profile id: 400 if it is not a TTID.
fn parse_profile_id(profile_id: &str) -> Result<ProfileId, ApiError> {
    profile_id
        .parse()
        .map_err(|e: profile_traits::IdError| ApiError::invalid(e.to_string()))
}

fn profile_not_found(id: &ProfileId) -> ApiError {
    ApiError::not_found(format!("profile `{id}` does not exist"))
}

/// Reads a JSON request body: 400 if the content type is not JSON or the body is larger than
/// the configured limit.
async fn read_json_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::invalid(format!(
            "expected content type `application/json`, found `{}`",
            content_type.escape_debug()
        )));
    }
    let too_large = || {
        ApiError::invalid(format!(
            "request body exceeds the limit of {} bytes",
            app.max_body_bytes
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body_bytes as u64) {
        // Read (and drop) a bounded amount of what the client is sending, so that it is not
        // cut off mid-write and can read the answer.
        let drain_limit = app.max_body_bytes.saturating_mul(16).max(1 << 20);
        let _ = axum::body::to_bytes(body, drain_limit).await;
        return Err(too_large());
    }
    axum::body::to_bytes(body, app.max_body_bytes)
        .await
        .map_err(|_| too_large())
}

/// Parses and validates a patch-shaped body with the crate.
fn validated_patch(app: &App, body: &[u8]) -> Result<Patch, ApiError> {
    let patch = Patch::from_slice(body).map_err(|e| ApiError::rejected(&e))?;
    app.schema
        .validate(&patch)
        .map_err(|e| ApiError::rejected(&e))?;
    Ok(patch)
}

/// Queues `op` for the log under the acceptance lock (after `check` passes on the known
/// profiles) and waits until it is durable.
async fn accept(
    app: &App,
    op: Op,
    body: Vec<u8>,
    check: impl FnOnce(&mut HashSet<ProfileId>) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let (durable_tx, durable_rx) = tokio::sync::oneshot::channel();
    {
        let mut accepting = app.accepting.lock().expect("no panic holds this lock");
        check(&mut accepting.known)?;
        let submission = Submission {
            store: app.store_id.to_string(),
            op,
            body,
            durable: durable_tx,
        };
        accepting
            .log
            .send(submission)
            .map_err(|_| ApiError::internal("the log writer has stopped"))?;
    }
    durable_rx
        .await
        .map(|_seq| ())
        .map_err(|_| ApiError::internal("the log writer has stopped"))
}

/// `PATCH /v1/Stores/{storeId}/Profiles/{profileId}`: validate, make durable, answer 202;
/// the applier merges it later.
async fn patch_profile(
    State(app): State<App>,
    Path((store_id, profile_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_store(&app, &store_id)?;
    let id = parse_profile_id(&profile_id)?;
    if !app
        .accepting
        .lock()
        .expect("no panic holds this lock")
        .known
        .contains(&id)
    {
        return Err(profile_not_found(&id));
    }
    let body = read_json_body(&app, &headers, body).await?;
    let patch = validated_patch(&app, &body)?;
    let op = Op {
        seq: 0,
        profile: id.clone(),
        kind: OpKind::Patch(patch),
    };
    accept(&app, op, body.to_vec(), |known| {
        if known.contains(&id) {
            Ok(())
        } else {
            Err(profile_not_found(&id))
        }
    })
    .await?;
    Ok(accepted(
        json!({"message": "Trait modifications accepted for processing."}),
    ))
}

/// `POST /v1/Stores/{storeId}/Profiles`: create a profile with a fresh id from `{"traits"}`.
async fn create_profile(
    State(app): State<App>,
    Path(store_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_store(&app, &store_id)?;
    let body = read_json_body(&app, &headers, body).await?;
    let traits = validated_patch(&app, &body)?;
    let mut id = util::fresh_profile_id();
    let op_for = |id: &ProfileId, traits: Patch| Op {
        seq: 0,
        profile: id.clone(),
        kind: OpKind::Create {
            created_at: util::now_rfc3339(),
            traits,
        },
    };
    // The id is drawn again in the (astronomically unlikely) case it is taken.
    while app
        .accepting
        .lock()
        .expect("no panic holds this lock")
        .known
        .contains(&id)
    {
        id = util::fresh_profile_id();
    }
    let op = op_for(&id, traits);
    accept(&app, op, body.to_vec(), |known| {
        if known.insert(id.clone()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::CONFLICT,
                20409,
                "profile id collision, retry",
            ))
        }
    })
    .await?;
    Ok(accepted(json!({
        "id": id,
        "message": "Profile resolved and accepted for processing.",
    })))
}

/// `DELETE /v1/Stores/{storeId}/Profiles/{profileId}`.
async fn delete_profile(
    State(app): State<App>,
    Path((store_id, profile_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_store(&app, &store_id)?;
    let id = parse_profile_id(&profile_id)?;
    let op = Op {
        seq: 0,
        profile: id.clone(),
        kind: OpKind::Delete,
    };
    accept(&app, op, Vec::new(), |known| {
        if known.remove(&id) {
            Ok(())
        } else {
            Err(profile_not_found(&id))
        }
    })
    .await?;
    Ok(accepted(
        json!({"message": "Profile accepted for deletion."}),
    ))
}

/// `GET /v1/Stores/{storeId}/Profiles/{profileId}`: the profile as applied so far;
/// `?traitGroups=A,B` keeps only those groups.
async fn fetch_profile(
    State(app): State<App>,
    Path((store_id, profile_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    check_store(&app, &store_id)?;
    let id = parse_profile_id(&profile_id)?;
    let wanted: Option<HashSet<&str>> = query
        .get("traitGroups")
        .map(|list| list.split(',').map(str::trim).collect());
    if let Some(list) = query.get("traitGroups")
        && (list.is_empty() || list.len() > 256)
    {
        return Err(ApiError::invalid(
            "`traitGroups` must be 1-256 characters: a comma-separated list of trait group names",
        ));
    }
    let profile = app
        .profiles
        .read()
        .expect("no panic holds this lock")
        .get(&id)
        .cloned()
        .ok_or_else(|| profile_not_found(&id))?;
    let profile = match wanted {
        Some(wanted) => only_groups(&profile, &wanted),
        None => profile,
    };
    Ok(axum::Json(profile).into_response())
}

/// `profile` with only the trait groups named in `wanted`, in their order.
fn only_groups(profile: &Profile, wanted: &HashSet<&str>) -> Profile {
    let mut kept = Profile::new();
    kept.set_id(profile.id().cloned());
    kept.set_created_at(profile.created_at().map(str::to_owned));
    for (name, group) in profile.groups().filter(|(name, _)| wanted.contains(name)) {
        for (trait_name, value) in group.iter() {
            kept.insert(name, trait_name, value.clone());
        }
    }
    kept
}

/// `GET /v1/ControlPlane/Stores/{storeId}/TraitGroups`: the schema as the list response;
/// trait definitions only with `includeTraits=true`, as the API's default is `false`.
async fn list_trait_groups(
    State(app): State<App>,
    Path(store_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    check_store(&app, &store_id)?;
    let include_traits = query
        .get("includeTraits")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    // Serialized straight from the schema (not through `serde_json::Value`, whose map would
    // sort the traits) so that groups and traits keep their declared order.
    let groups: Vec<GroupOut<'_>> = app
        .schema
        .groups()
        .map(|group| GroupOut {
            group,
            include_traits,
        })
        .collect();
    let count = groups.len();
    Ok(axum::Json(TraitGroupList {
        trait_groups: groups,
        meta: Meta {
            key: "traitGroups",
            page_size: count,
        },
    })
    .into_response())
}

/// The ListTraitGroups response.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct TraitGroupList<'a> {
    trait_groups: Vec<GroupOut<'a>>,
    meta: Meta,
}

/// The list's `meta`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    key: &'static str,
    page_size: usize,
}

/// A trait group of the list, with or without its trait definitions.
struct GroupOut<'a> {
    group: &'a GroupDefinition,
    include_traits: bool,
}

impl serde::Serialize for GroupOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if self.include_traits {
            return self.group.serialize(serializer);
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("displayName", self.group.name())?;
        if let Some(description) = self.group.description() {
            map.serialize_entry("description", description)?;
        }
        if let Some(version) = self.group.version() {
            map.serialize_entry("version", &version)?;
        }
        map.end()
    }
}

/// A 202 answer with a JSON body.
fn accepted(body: serde_json::Value) -> Response {
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}
