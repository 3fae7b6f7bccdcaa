//! The HTTP surface: the routes (`routes.rs`), what handlers extract from a request
//! (`extract.rs`), the keys accepted (`credentials.rs`), the protections around the handlers
//! (`protect.rs`), and the error answers (`error.rs`).

mod credentials;
mod error;
mod extract;
mod protect;
mod routes;
mod serve;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};
use profile_traits::{StoreId, StoreSchema};
use tower_http::catch_panic::CatchPanicLayer;

pub(crate) use self::credentials::Credentials;
use self::error::{ApiError, ErrorCode};
pub(crate) use self::protect::{Protect, worker_drained};
pub(crate) use self::serve::serve;
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
    /// Rate limits, the write queue bound, the drain, the test faults.
    pub(crate) protect: Arc<Protect>,
}

/// The service's routes, all behind HTTP Basic authentication and the protections of
/// `protect.rs`.
pub(crate) fn router(app: App) -> Router {
    let faults = if app.protect.faults.is_some() {
        protect::fault_routes()
    } else {
        Router::new()
    };
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
        .merge(faults)
        .method_not_allowed_fallback(protect::method_not_allowed)
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such resource") })
        .layer(protect::GateLayer(protect::KeyGate::new(&app)))
        .layer(protect::GateLayer(protect::DrainGate::new(&app)))
        .layer(CatchPanicLayer::custom(protect::panic_response))
        .with_state(app)
}
