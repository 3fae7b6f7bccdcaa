//! Error answers in the API's `{"code", "message", "more_info", "status"}` shape, and the one
//! enum of the codes the service answers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use profile_traits::{PatchError, Violation, ViolationKind};
use serde_json::json;

use crate::store::StoreError;

/// The longest `message` of an error body, as the API documents.
const MAX_MESSAGE_CHARS: usize = 1024;

/// Every error code the service answers; each has one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// 401 20003: missing or wrong HTTP Basic credentials.
    Unauthenticated,
    /// 403 403: valid credentials that may not use the store named.
    Forbidden,
    /// 404 20404: unknown store, profile or route.
    NotFound,
    /// 405 20004: a method the route does not have.
    MethodNotAllowed,
    /// 429 20429: over the credential's request rate.
    TooManyRequests,
    /// 500 20500: an internal fault (a panicking handler).
    Internal,
    /// 503 20503: the service cannot accept now (write queue full, storage unreachable,
    /// shutting down).
    Unavailable,
    /// 400 520046: an invalid request (patch, profile id, body).
    InvalidRequest,
    /// 400 520047: a patch names a trait group the schema does not declare.
    UnknownTraitGroup,
    /// 400 520049: a store id that is not a TTID.
    InvalidStoreId,
    /// 400 520063: a patch names a trait its group does not declare.
    UnknownTrait,
}

impl ErrorCode {
    /// The code in the body.
    pub(crate) fn number(self) -> u32 {
        match self {
            ErrorCode::Unauthenticated => 20003,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 20404,
            ErrorCode::MethodNotAllowed => 20004,
            ErrorCode::TooManyRequests => 20429,
            ErrorCode::Internal => 20500,
            ErrorCode::Unavailable => 20503,
            ErrorCode::InvalidRequest => 520046,
            ErrorCode::UnknownTraitGroup => 520047,
            ErrorCode::InvalidStoreId => 520049,
            ErrorCode::UnknownTrait => 520063,
        }
    }

    /// The HTTP status it is answered with.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::InvalidRequest
            | ErrorCode::UnknownTraitGroup
            | ErrorCode::InvalidStoreId
            | ErrorCode::UnknownTrait => StatusCode::BAD_REQUEST,
        }
    }
}

/// Seconds a client is told to wait (`Retry-After`) when storage is unreachable.
pub(crate) const RETRY_STORAGE_SECS: u64 = 5;

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    code: ErrorCode,
    message: String,
    /// `Retry-After`, in whole seconds (429 and 503 always carry one: 1 if not set).
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` and `message`.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the client to retry after `seconds` (at least 1).
    pub(crate) fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// A 503 (code 20503) for `why`, with `Retry-After: seconds`.
    pub(crate) fn unavailable(why: impl std::fmt::Display, seconds: u64) -> Self {
        ApiError::new(
            ErrorCode::Unavailable,
            format!("Service Unavailable: {why}"),
        )
        .retry_after(seconds)
    }

    /// A 400 for an invalid request.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, message)
    }

    /// A 401, on every route without valid credentials.
    pub(crate) fn unauthenticated() -> Self {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "Failed to complete request due to lack of authentication credentials",
        )
    }

    /// The 404 of a profile that does not exist.
    pub(crate) fn profile_not_found(id: &impl std::fmt::Display) -> Self {
        ApiError::new(
            ErrorCode::NotFound,
            format!("profile `{id}` does not exist"),
        )
    }

    /// The answer to a storage refusal for profile `id`.
    pub(crate) fn from_store(error: StoreError, id: &impl std::fmt::Display) -> Self {
        match error {
            StoreError::NotFound => ApiError::profile_not_found(id),
            StoreError::Moved(to) => ApiError::new(
                ErrorCode::NotFound,
                format!("profile `{id}` was joined into `{to}`"),
            ),
            StoreError::Unavailable(why) => ApiError::unavailable(why, RETRY_STORAGE_SECS),
        }
    }

    /// The code of a rejection with these violations: 520047 if a group is unknown, else
    /// 520063 if a trait is unknown, else 520046.
    fn code_of<'a>(violations: impl Iterator<Item = &'a Violation> + Clone) -> ErrorCode {
        let has = |kind| violations.clone().any(|v| v.kind() == kind);
        if has(ViolationKind::UnknownGroup) {
            ErrorCode::UnknownTraitGroup
        } else if has(ViolationKind::UnknownTrait) {
            ErrorCode::UnknownTrait
        } else {
            ErrorCode::InvalidRequest
        }
    }

    /// The 400 for a patch the crate rejects: the code of its violations, and the crate's
    /// own one-line message (the count and the first violations with their pointers).
    pub(crate) fn rejected(error: &PatchError) -> Self {
        ApiError::new(Self::code_of(error.violations().iter()), error.to_string())
    }

    /// The 400 for a bulk upsert of `count` profiles with invalid items: each failing item
    /// named by the pointer of each violation inside the request body
    /// (`/profiles/3/traits/Contact/email`) with the crate's reason, or by `/profiles/3` and
    /// why it cannot be a create.
    pub(crate) fn bulk_rejected(
        count: usize,
        failures: &[(usize, Result<PatchError, String>)],
    ) -> Self {
        let code = Self::code_of(
            failures
                .iter()
                .filter_map(|(_, f)| f.as_ref().ok())
                .flat_map(|e| e.violations()),
        );
        let mut parts = Vec::new();
        for (index, failure) in failures {
            match failure {
                Ok(error) => {
                    for violation in error.violations() {
                        parts.push(format!(
                            "`/profiles/{index}{}`: {}",
                            violation.pointer(),
                            violation.reason()
                        ));
                    }
                    if error.is_truncated() {
                        parts.push(format!("`/profiles/{index}`: more violations"));
                    }
                }
                Err(why) => parts.push(format!("`/profiles/{index}`: {why}")),
            }
        }
        let noun = if failures.len() == 1 {
            "profile"
        } else {
            "profiles"
        };
        let message = format!(
            "bulk upsert rejected, nothing accepted: {} of {count} {noun} invalid: {}",
            failures.len(),
            parts.join("; ")
        );
        ApiError::new(code, message)
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
        let status = self.code.status();
        let code = self.code.number();
        let body = json!({
            "code": code,
            "message": clip(&self.message),
            "more_info": format!("https://www.twilio.com/docs/api/errors/{code}"),
            "status": status.as_u16(),
        });
        let mut response = (status, axum::Json(body)).into_response();
        if self.code == ErrorCode::Unauthenticated {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"profile-service\""),
            );
        }
        let retry_after = match self.code {
            ErrorCode::TooManyRequests | ErrorCode::Unavailable => {
                Some(self.retry_after.unwrap_or(1))
            }
            _ => self.retry_after,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
