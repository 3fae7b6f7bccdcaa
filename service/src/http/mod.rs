//! The HTTP surface: the routes (`routes.rs`), what handlers extract from a request
//! (`extract.rs`), and the error answers (`error.rs`).

mod error;
mod extract;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use profile_traits::{StoreId, StoreSchema};

use self::error::{ApiError, ErrorCode};
use self::extract::Authenticated;
pub(crate) use self::extract::Credentials;
use crate::store::Storage;

/// The state every handler sees.
#[derive(Clone)]
pub(crate) struct App {
    /// The store's schema.
    pub(crate) schema: Arc<StoreSchema>,
    /// The one store served.
    pub(crate) store_id: StoreId,
    /// Where operations are accepted and profiles read.
    pub(crate) storage: Arc<dyn Storage>,
    /// The credentials every request must carry.
    pub(crate) credentials: Arc<Credentials>,
    /// The largest request body accepted.
    pub(crate) max_body_bytes: usize,
}

/// The service's routes, all behind HTTP Basic authentication.
pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route(
            "/v1/Stores/{store_id}/Profiles/{profile_id}",
            get(routes::fetch_profile)
                .patch(routes::patch_profile)
                .delete(routes::delete_profile),
        )
        .route(
            "/v1/Stores/{store_id}/Profiles/{profile_id}/Traits",
            get(routes::list_profile_traits),
        )
        .route(
            "/v1/Stores/{store_id}/Profiles",
            post(routes::create_profile),
        )
        .route(
            "/v1/Stores/{store_id}/Profiles/Lookup",
            post(routes::lookup_profiles),
        )
        .route(
            "/v1/Stores/{store_id}/Profiles/Bulk",
            put(routes::bulk_upsert),
        )
        .route(
            "/v1/ControlPlane/Stores/{store_id}/TraitGroups",
            get(routes::list_trait_groups),
        )
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such resource") })
        .layer(middleware::from_fn_with_state(app.clone(), authenticate))
        .with_state(app)
}

/// Refuses every request without valid HTTP Basic credentials (401, code 20003).
async fn authenticate(_: Authenticated, request: Request, next: Next) -> Response {
    next.run(request).await
}
