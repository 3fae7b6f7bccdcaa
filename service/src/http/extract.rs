//! What handlers take from a request, checked once here: the credentials, the store and
//! profile ids of the path, and a JSON body within the size limit.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;
use profile_traits::{IdError, ProfileId, StoreId};

use super::App;
use super::credentials::{Credentials, KeyIndex};
use super::error::{ApiError, ErrorCode};

/// Proof that a request carries valid credentials, and which key; without them, 401 (code
/// 20003).
pub(crate) struct Authenticated(pub(crate) KeyIndex);

impl Authenticated {
    /// The key of the request whose headers are `headers`, if `credentials` admit it.
    pub(crate) fn from_headers(
        headers: &HeaderMap,
        credentials: &Credentials,
    ) -> Result<Self, ApiError> {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| credentials.admit(value))
            .map(Authenticated)
            .ok_or_else(ApiError::unauthenticated)
    }
}

/// Checks a store id: 400 (520049) if it is not a TTID, 404 if it is not the store served.
fn served_store(app: &App, store_id: &str) -> Result<(), ApiError> {
    let store: StoreId = store_id
        .parse()
        .map_err(|e: IdError| ApiError::new(ErrorCode::InvalidStoreId, e.to_string()))?;
    if store != app.store_id {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("memory store `{store}` does not exist"),
        ));
    }
    Ok(())
}

/// A path `.../Stores/{storeId}/...` naming the store served.
pub(crate) struct StorePath;

impl FromRequestParts<App> for StorePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let Path(store_id) = Path::<String>::from_request_parts(parts, app)
            .await
            .map_err(|e| ApiError::invalid(e.body_text()))?;
        served_store(app, &store_id)?;
        Ok(StorePath)
    }
}

/// A path `.../Stores/{storeId}/Profiles/{profileId}` naming the store served and a valid
/// profile id (400 with 520046 if it is not a TTID); whether the profile exists is the
/// handler's question.
pub(crate) struct ProfilePath(pub(crate) ProfileId);

impl FromRequestParts<App> for ProfilePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let Path((store_id, profile_id)) = Path::<(String, String)>::from_request_parts(parts, app)
            .await
            .map_err(|e| ApiError::invalid(e.body_text()))?;
        served_store(app, &store_id)?;
        let id = profile_id
            .parse()
            .map_err(|e: IdError| ApiError::invalid(e.to_string()))?;
        Ok(ProfilePath(id))
    }
}

/// Reads a JSON request body: 400 if the content type is not JSON or the body is larger than
/// the configured limit.
///
/// A function, not an extractor, so that a handler can answer 404 for a missing profile
/// rather than a refused body.
pub(crate) async fn json_body(
    app: &App,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
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
        // cut off mid-write and can read the answer. (Boxed: a rare path, whose future would
        // otherwise make every request's larger.)
        let drain_limit = app.max_body_bytes.saturating_mul(16).max(1 << 20);
        let _ = Box::pin(axum::body::to_bytes(body, drain_limit)).await;
        return Err(too_large());
    }
    // Frame by frame rather than through `axum::body::to_bytes`, which gathers the frames in
    // a queue first: a body that comes in one frame, as most do, is that frame, with no
    // allocation and no copy. A body that fails to read counts as too large, as there.
    let mut body = body;
    let mut first = Bytes::new();
    let mut more = Vec::new();
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| too_large())?.into_data() else {
            continue;
        };
        len += data.len();
        if len > app.max_body_bytes {
            return Err(too_large());
        }
        if first.is_empty() {
            first = data;
        } else {
            if more.is_empty() {
                more.extend_from_slice(&first);
            }
            more.extend_from_slice(&data);
        }
    }
    Ok(if more.is_empty() {
        first
    } else {
        Bytes::from(more)
    })
}
