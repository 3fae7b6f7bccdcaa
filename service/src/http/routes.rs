//! The handlers: each checks its request (with the crate, synchronously), hands an accepted
//! write to the storage (which resolves identities, stamps it and makes it durable), and
//! answers 202 once it is durable; `GET`s read the applied state. A profile id joined into
//! another redirects (301 for reads, 308 for writes).

use std::collections::{HashMap, HashSet};
use std::future::Future;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use profile_traits::{
    GroupDefinition, Patch, PatchError, Profile, ProfileId, SortOrder, Stamp, TraitQuery,
    list_traits,
};
use serde_json::json;

use super::App;
use super::error::{ApiError, ErrorCode};
use super::extract::{ProfilePath, StorePath, json_body};
use crate::identity::{self, Located};
use crate::store::{StoreError, Write};

/// The header naming a profile's canonical id.
const CANONICAL_PROFILE_ID: &str = "canonical-profile-id";

/// The optional request header carrying a write's event time.
const EVENT_TIME: &str = "event-time";

/// The most profiles one bulk upsert holds.
const MAX_BULK_PROFILES: usize = 1000;

/// Parses and validates a patch-shaped body with the crate, in one pass: the patch comes
/// back resolved in the store's schema, so applying it checks nothing again.
fn validated_patch(app: &App, body: &[u8]) -> Result<Patch, PatchError> {
    app.schema.parse_patch(body)
}

/// The `Event-Time` header as a stamp (its tiebreaker is given at acceptance): 400 (520046)
/// if it is not an RFC 3339 date-time.
fn event_time(headers: &HeaderMap) -> Result<Option<Stamp>, ApiError> {
    let Some(value) = headers.get(EVENT_TIME) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid("header `Event-Time` is not ASCII text"))?;
    text.parse::<Stamp>()
        .map(Some)
        .map_err(|e| ApiError::invalid(format!("header `Event-Time`: {e}")))
}

/// The message of a create that carries no identifier trait.
fn no_identifier(app: &App) -> String {
    let identifiers: Vec<String> = app
        .schema
        .groups()
        .flat_map(|group| {
            group.traits().filter_map(move |(name, definition)| {
                definition
                    .id_type_promotion()
                    .map(|_| format!("`{}.{name}`", group.name()))
            })
        })
        .collect();
    format!(
        "a profile must carry at least one identifier trait (a trait with `idTypePromotion`: {})",
        identifiers.join(", ")
    )
}

/// The request's `Host`, which makes a redirect's URI absolute.
fn host(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::HOST).and_then(|h| h.to_str().ok())
}

/// A redirect of a joined-away profile to its canonical id: 301 for reads, 308 for writes,
/// `{"message", "uri"}`, with `Location` and `Canonical-Profile-Id`.
pub(super) struct Moved {
    status: StatusCode,
    uri: String,
    to: ProfileId,
}

/// The redirect to canonical profile `to`; `suffix` is what follows the profile id in the
/// path (`/Traits`, and the query). The URI is absolute when the request named its `Host`.
fn moved(app: &App, host: Option<&str>, status: StatusCode, to: &ProfileId, suffix: &str) -> Moved {
    let path = format!("/v1/Stores/{}/Profiles/{to}{suffix}", app.store_id);
    let uri = match host {
        Some(host) => format!("http://{host}{path}"),
        None => path,
    };
    Moved {
        status,
        uri,
        to: to.clone(),
    }
}

impl IntoResponse for Moved {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({"message": "This resource has moved.", "uri": self.uri})),
        )
            .into_response();
        let headers = response.headers_mut();
        if let Ok(location) = HeaderValue::from_str(&self.uri) {
            headers.insert(header::LOCATION, location);
        }
        headers.insert(CANONICAL_PROFILE_ID, canonical(&self.to));
        response
    }
}

/// Why a request on a profile is not answered 2xx: an error, or a redirect.
pub(super) enum Refusal {
    Error(ApiError),
    Moved(Moved),
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal::Error(error)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Error(error) => error.into_response(),
            Refusal::Moved(moved) => moved.into_response(),
        }
    }
}

fn canonical(id: &ProfileId) -> HeaderValue {
    HeaderValue::from_str(id.as_str()).expect("a profile id is a header value")
}

/// A 200 answer for profile `id`, with `Canonical-Profile-Id`.
fn ok_for(id: &ProfileId, body: impl serde::Serialize) -> Response {
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(CANONICAL_PROFILE_ID, canonical(id));
    response
}

/// Where a write to `id` stands: 308 if it moved, 404 if missing.
async fn writable(app: &App, host: Option<&str>, id: &ProfileId) -> Result<(), Refusal> {
    let located = app
        .storage
        .locate(id)
        .await
        .map_err(|e| ApiError::from_store(e, id))?;
    match located {
        Located::Live => Ok(()),
        Located::Moved(to) => Err(Refusal::Moved(moved(
            app,
            host,
            StatusCode::PERMANENT_REDIRECT,
            &to,
            "",
        ))),
        Located::Missing => Err(ApiError::profile_not_found(id).into()),
    }
}

/// The answer to a storage refusal of a write to `id`.
fn refused(app: &App, host: Option<&str>, error: StoreError, id: &ProfileId) -> Refusal {
    match error {
        StoreError::Moved(to) => {
            Refusal::Moved(moved(app, host, StatusCode::PERMANENT_REDIRECT, &to, ""))
        }
        other => ApiError::from_store(other, id).into(),
    }
}

/// `PATCH /v1/Stores/{storeId}/Profiles/{profileId}`: validate, make durable, answer 202;
/// the worker applies it later. Setting an identifier another profile holds joins them.
///
/// Not an `async fn`: the future of one keeps its arguments whole (the request, 240 bytes)
/// beside what it takes from them, and over 1 KiB a future is beyond glibc's per-thread cache
/// of freed blocks, so every patch allocated it from the shared heap. The headers and the body
/// are taken from the request first (the headers rather than extracted as a `HeaderMap`,
/// which would be a copy of them); the future holds only those.
pub(super) fn patch_profile(
    State(app): State<App>,
    ProfilePath(id): ProfilePath,
    request: Request,
) -> impl Future<Output = Result<Response, Refusal>> {
    let (Parts { headers, .. }, body) = request.into_parts();
    async move {
        // Whether the profile is live is checked once, as the storage accepts the write (on
        // PostgreSQL a separate look-up first would be one more statement per patch); a request
        // refused before that is answered as one to a moved or missing profile if it is one.
        let checked = async {
            let stamp = event_time(&headers)?;
            let body = json_body(&app, &headers, body).await?;
            let patch = validated_patch(&app, &body).map_err(|e| ApiError::rejected(&e))?;
            Ok::<_, ApiError>((stamp, body, patch))
        };
        let (stamp, body, patch) = match checked.await {
            Ok(checked) => checked,
            Err(error) => {
                writable(&app, host(&headers), &id).await?;
                return Err(error.into());
            }
        };
        // The body is logged as it came: a slice of hyper's read buffer, not a copy. Holding it
        // and the headers (slices of that buffer too) until the write is durable costs nothing, as
        // hyper does not read the connection again before the answer is written (see `serve.rs`),
        // and the log writer drops the body before it answers.
        let write = Write::Patch {
            id: id.clone(),
            patch,
            body,
        };
        let _slot = app.write_slot().await?;
        app.storage
            .accept(write, stamp)
            .await
            .map_err(|e| refused(&app, host(&headers), e, &id))?;
        Ok(accepted_message(PATCH_ACCEPTED))
    }
}

/// `POST /v1/Stores/{storeId}/Profiles`: resolve `{"traits"}` by its identifiers to an
/// existing profile (joining several) or a new one, whose id answers.
pub(super) async fn create_profile(
    State(app): State<App>,
    _: StorePath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let stamp = event_time(&headers)?;
    let body = json_body(&app, &headers, body).await?;
    let traits = validated_patch(&app, &body).map_err(|e| ApiError::rejected(&e))?;
    if !identity::sets_identifier(&app.schema, &traits) {
        return Err(ApiError::invalid(no_identifier(&app)));
    }
    let _slot = app.write_slot().await?;
    let ids = app
        .storage
        .accept(Write::Create(vec![(traits, body)]), stamp)
        .await
        .map_err(|e| ApiError::from_store(e, &"new"))?;
    Ok(accepted(json!({
        "id": ids[0],
        "message": "Profile resolved and accepted for processing.",
    })))
}

/// The body of `PUT .../Profiles/Bulk`: each profile kept as its text, so that each is
/// parsed (duplicate keys included) and validated by the crate on its own.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    profiles: Vec<Box<serde_json::value::RawValue>>,
}

/// `PUT /v1/Stores/{storeId}/Profiles/Bulk`: 1-1000 profiles, each resolved as a create.
/// All or nothing: if any item is invalid, 400 naming every failing item by its pointer
/// (`/profiles/3/traits/...`), and nothing is accepted; else all are made durable as one
/// unit.
pub(super) async fn bulk_upsert(
    State(app): State<App>,
    _: StorePath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let stamp = event_time(&headers)?;
    let body = json_body(&app, &headers, body).await?;
    let bulk: BulkBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!(
            "the body must be `{{\"profiles\": [{{\"traits\": ...}}, ...]}}`: {e}"
        ))
    })?;
    let count = bulk.profiles.len();
    if !(1..=MAX_BULK_PROFILES).contains(&count) {
        return Err(ApiError::invalid(format!(
            "`/profiles` holds {count} profiles, not 1 to {MAX_BULK_PROFILES}"
        )));
    }
    let mut items = Vec::with_capacity(count);
    let mut failures: Vec<(usize, Result<PatchError, String>)> = Vec::new();
    for (index, raw) in bulk.profiles.iter().enumerate() {
        let text = raw.get().as_bytes();
        match validated_patch(&app, text) {
            Ok(patch) if identity::sets_identifier(&app.schema, &patch) => {
                items.push((patch, Bytes::copy_from_slice(text)));
            }
            Ok(_) => failures.push((index, Err(no_identifier(&app)))),
            Err(error) => failures.push((index, Ok(error))),
        }
    }
    if !failures.is_empty() {
        return Err(ApiError::bulk_rejected(count, &failures));
    }
    let _slot = app.write_slot().await?;
    app.storage
        .accept(Write::Create(items), stamp)
        .await
        .map_err(|e| ApiError::from_store(e, &"new"))?;
    Ok(accepted_message(BULK_ACCEPTED))
}

/// `DELETE /v1/Stores/{storeId}/Profiles/{profileId}`.
pub(super) async fn delete_profile(
    State(app): State<App>,
    ProfilePath(id): ProfilePath,
    headers: HeaderMap,
) -> Result<Response, Refusal> {
    writable(&app, host(&headers), &id).await?;
    let _slot = app.write_slot().await?;
    app.storage
        .accept(Write::Delete(id.clone()), None)
        .await
        .map_err(|e| refused(&app, host(&headers), e, &id))?;
    Ok(accepted_message(DELETE_ACCEPTED))
}

/// The query string of a request, with its `?`, or nothing.
fn query_suffix(query: &HashMap<String, String>) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    pairs.sort();
    format!("?{}", pairs.join("&"))
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b',' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The 301 a read of `id` answers when `id` was joined into another profile; `suffix`
/// follows the canonical id in the `Location`.
async fn read_redirect(
    app: &App,
    headers: &HeaderMap,
    id: &ProfileId,
    suffix: &str,
) -> Result<Option<Response>, ApiError> {
    let located = app
        .storage
        .locate(id)
        .await
        .map_err(|e| ApiError::from_store(e, id))?;
    Ok(match located {
        Located::Moved(to) => Some(
            moved(
                app,
                host(headers),
                StatusCode::MOVED_PERMANENTLY,
                &to,
                suffix,
            )
            .into_response(),
        ),
        Located::Live | Located::Missing => None,
    })
}

/// `GET /v1/Stores/{storeId}/Profiles/{profileId}`: the profile as applied so far;
/// `?traitGroups=A,B` keeps only those groups.
pub(super) async fn fetch_profile(
    State(app): State<App>,
    ProfilePath(id): ProfilePath,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let suffix = query_suffix(&query);
    if let Some(redirect) = read_redirect(&app, &headers, &id, &suffix).await? {
        return Ok(redirect);
    }
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
        .storage
        .profile(&id)
        .await
        .map_err(|e| ApiError::from_store(e, &id))?
        .ok_or_else(|| ApiError::profile_not_found(&id))?
        .view();
    Ok(match wanted {
        Some(wanted) => ok_for(&id, only_groups(&profile, &wanted)),
        None => ok_for(&id, &profile),
    })
}

/// `GET /v1/Stores/{storeId}/Profiles/{profileId}/Traits`: one page of the profile's live
/// traits, through the crate's listing (order, page size, keyset page tokens).
pub(super) async fn list_profile_traits(
    State(app): State<App>,
    ProfilePath(id): ProfilePath,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let suffix = format!("/Traits{}", query_suffix(&query));
    if let Some(redirect) = read_redirect(&app, &headers, &id, &suffix).await? {
        return Ok(redirect);
    }
    let listing = |e: profile_traits::ListingError| ApiError::invalid(e.to_string());
    let mut wanted = TraitQuery::new();
    if let Some(list) = query.get("traitGroups") {
        if list.is_empty() || list.len() > 256 {
            return Err(ApiError::invalid(
                "`traitGroups` must be 1-256 characters: a comma-separated list of trait group names",
            ));
        }
        let groups: Vec<&str> = list.split(',').map(str::trim).collect();
        if let Some(unknown) = groups.iter().find(|g| app.schema.group(g).is_none()) {
            return Err(ApiError::new(
                ErrorCode::UnknownTraitGroup,
                format!(
                    "`traitGroups`: trait group `{}` is not declared in the schema",
                    unknown.escape_debug()
                ),
            ));
        }
        wanted = wanted.with_groups(groups);
    }
    if let Some(order) = query.get("orderBy") {
        wanted = wanted.with_order(order.parse::<SortOrder>().map_err(listing)?);
    }
    if let Some(size) = query.get("pageSize") {
        let size: usize = size.parse().map_err(|_| {
            ApiError::invalid(format!(
                "`pageSize` `{}` is not within 1 to 1000",
                size.escape_debug()
            ))
        })?;
        wanted = wanted.with_page_size(size).map_err(listing)?;
    }
    if let Some(token) = query.get("pageToken") {
        wanted = wanted.with_page_token(token.as_str());
    }
    let profile = app
        .storage
        .profile(&id)
        .await
        .map_err(|e| ApiError::from_store(e, &id))?
        .ok_or_else(|| ApiError::profile_not_found(&id))?;
    let page = list_traits(&profile, &wanted).map_err(listing)?;
    Ok(ok_for(&id, &page))
}

/// The body of `POST .../Profiles/Lookup`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LookupBody {
    id_type: String,
    value: String,
}

/// `POST /v1/Stores/{storeId}/Profiles/Lookup`: the canonical profiles holding an
/// identifier, after normalizing it as its type says.
pub(super) async fn lookup_profiles(
    State(app): State<App>,
    _: StorePath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = json_body(&app, &headers, body).await?;
    let LookupBody { id_type, value } = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid(format!(
            "the body must be `{{\"idType\": ..., \"value\": ...}}`: {e}"
        ))
    })?;
    if !(2..=30).contains(&id_type.chars().count()) || value.chars().count() > 255 {
        return Err(ApiError::invalid(
            "`idType` must be 2-30 characters and `value` at most 255",
        ));
    }
    if !identity::is_id_type(&app.schema, &id_type) {
        return Err(ApiError::invalid(format!(
            "`idType` `{}` is not the `idTypePromotion` of any trait of this store",
            id_type.escape_debug()
        )));
    }
    let normalized = identity::normalize(&id_type, &value).ok_or_else(|| {
        ApiError::invalid(format!(
            "`value` `{}` is not a valid `{id_type}` identifier",
            value.escape_debug()
        ))
    })?;
    let key = (id_type, normalized.clone());
    let profiles = app
        .storage
        .lookup(&key)
        .await
        .map_err(|e| ApiError::from_store(e, &"lookup"))?;
    Ok(axum::Json(json!({"normalizedValue": normalized, "profiles": profiles})).into_response())
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
pub(super) async fn list_trait_groups(
    State(app): State<App>,
    _: StorePath,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
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
fn accepted(body: impl serde::Serialize) -> Response {
    (StatusCode::ACCEPTED, axum::Json(body)).into_response()
}

/// The 202 body of a patch.
const PATCH_ACCEPTED: &str = r#"{"message":"Trait modifications accepted for processing."}"#;

/// The 202 body of a bulk upsert.
const BULK_ACCEPTED: &str = r#"{"message":"Profile batch accepted for processing."}"#;

/// The 202 body of a delete.
const DELETE_ACCEPTED: &str = r#"{"message":"Profile accepted for deletion."}"#;

/// A 202 answer with a JSON body of only a `message`, written out once (above) rather than
/// serialized into a fresh buffer for every request.
fn accepted_message(body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::ACCEPTED;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bodies written out are the JSON of a `{"message"}` object, as `axum::Json` would
    /// serialize it.
    #[test]
    fn the_accepted_bodies_are_message_objects() {
        for (body, message) in [
            (
                PATCH_ACCEPTED,
                "Trait modifications accepted for processing.",
            ),
            (BULK_ACCEPTED, "Profile batch accepted for processing."),
            (DELETE_ACCEPTED, "Profile accepted for deletion."),
        ] {
            assert_eq!(body, json!({ "message": message }).to_string());
        }
    }
}
