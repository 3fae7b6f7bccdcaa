//! What protects the service and its clients, around the handlers: the per-key checks (401,
//! 429 over the key's rate, 403 for a store the key may not use), the write queue bound (503),
//! the drain on shutdown (503 for new requests while accepted ones finish), the answer to a
//! panicking handler (500) and to a method a route does not have (405), and the test-only
//! faults that let the tests provoke them (`--test-faults`).

use std::any::Any;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use pin_project_lite::pin_project;
use profile_traits::StoreId;
use tower_layer::Layer;
use tower_service::Service;

use super::App;
use super::credentials::{Credentials, KeyIndex};
use super::error::{ApiError, ErrorCode};
use super::extract::Authenticated;
use crate::store::StoreError;

/// Seconds a client is told to wait when the write queue is full.
const RETRY_QUEUE_FULL_SECS: u64 = 1;

/// Seconds a client is told to wait when the service is shutting down (a restart).
const RETRY_SHUTDOWN_SECS: u64 = 5;

/// The protections' shared state.
pub(crate) struct Protect {
    /// The request rate per key, if limited.
    pub(crate) rate: Option<RateLimiter>,
    /// The bound on writes waiting to be made durable.
    pub(crate) writes: WriteGate,
    /// Running or draining.
    pub(crate) lifecycle: Lifecycle,
    /// The test-only faults, with `--test-faults`.
    pub(crate) faults: Option<Faults>,
}

impl Protect {
    /// The protections for `keys` keys, `rate` requests a second per key (if limited), at
    /// most `max_queued_writes` writes waiting to be made durable, test faults if asked.
    pub(crate) fn new(
        keys: usize,
        rate: Option<u32>,
        max_queued_writes: usize,
        test_faults: bool,
    ) -> Self {
        Protect {
            rate: rate.map(|per_second| RateLimiter::new(per_second, keys)),
            writes: WriteGate {
                max: max_queued_writes,
                queued: AtomicUsize::new(0),
            },
            lifecycle: Lifecycle::default(),
            faults: test_faults.then(Faults::default),
        }
    }
}

// ---- 429: a token bucket per key ----

/// A token bucket per key: `per_second` requests a second, bursts of up to `per_second`.
pub(crate) struct RateLimiter {
    per_second: f64,
    buckets: Vec<Mutex<Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    fn new(per_second: u32, keys: usize) -> Self {
        let per_second = f64::from(per_second.max(1));
        let now = Instant::now();
        RateLimiter {
            per_second,
            buckets: (0..keys)
                .map(|_| {
                    Mutex::new(Bucket {
                        tokens: per_second,
                        last: now,
                    })
                })
                .collect(),
        }
    }

    /// Takes a token from `key`'s bucket at `now`, or answers how many whole seconds until
    /// one is there (at least 1).
    fn take(&self, key: KeyIndex, now: Instant) -> Result<(), u64> {
        let mut bucket = self.buckets[key.0]
            .lock()
            .expect("no panic holds this lock");
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.per_second);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            // A whole number of seconds, rounded up: a client that waits that long finds a
            // token.
            Err((wait.ceil() as u64).max(1))
        }
    }
}

// ---- 503: the write queue bound ----

/// Counts the writes handed to the storage and not yet durable, and refuses one more past
/// the bound; remembers the last sequence number made durable (for the drain).
pub(crate) struct WriteGate {
    max: usize,
    queued: AtomicUsize,
}

/// A place in the write queue, held until the write is durable (or refused).
pub(crate) struct WriteSlot<'a> {
    gate: &'a WriteGate,
}

impl Drop for WriteSlot<'_> {
    fn drop(&mut self) {
        self.gate.queued.fetch_sub(1, Ordering::SeqCst);
    }
}

impl App {
    /// A place in the write queue for one write: 503 (20503, `Retry-After`) if the queue is
    /// full, or if the test faults make storage unreachable.
    pub(crate) async fn write_slot(&self) -> Result<WriteSlot<'_>, ApiError> {
        let gate = &self.protect.writes;
        let max = gate.max;
        if gate
            .queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            return Err(ApiError::unavailable(
                format!("the write queue is full ({max} writes waiting to be made durable)"),
                RETRY_QUEUE_FULL_SECS,
            ));
        }
        let slot = WriteSlot { gate };
        if let Some(faults) = &self.protect.faults {
            // Boxed: only with `--test-faults`, and its timer would otherwise make the future
            // of every write's handler larger.
            Box::pin(faults.before_write()).await?;
        }
        Ok(slot)
    }
}

// ---- 503: draining on shutdown ----

/// Whether the service is draining, and how many requests are being answered.
#[derive(Default)]
pub(crate) struct Lifecycle {
    draining: AtomicBool,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One request being answered.
pub(super) struct InFlight(Arc<Protect>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let lifecycle = &self.0.lifecycle;
        if lifecycle.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            lifecycle.idle.notify_waiters();
        }
    }
}

impl Lifecycle {
    /// Stops taking requests: from now on every new one is answered 503.
    pub(crate) fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Waits until no request taken before the drain is being answered.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Waits until the worker has applied every write made durable, for at most `limit`;
/// whether it did. Storage that cannot tell its applied position counts as drained.
pub(crate) async fn worker_drained(app: &App, limit: Duration) -> bool {
    // Called once no request is being answered: every accepted write is durable.
    let Some(target) = app.storage.accepted_seq() else {
        return true;
    };
    let deadline = Instant::now() + limit;
    loop {
        match app.storage.applied_seq() {
            None => return true,
            Some(applied) if applied >= target => return true,
            Some(_) if Instant::now() >= deadline => return false,
            Some(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// The outermost layer but the panic catcher: counts requests being answered, and answers
/// 503 (20503, `Retry-After`, `Connection: close`) to every request once draining.
#[derive(Clone)]
pub(super) struct DrainGate {
    protect: Arc<Protect>,
}

impl DrainGate {
    pub(super) fn new(app: &App) -> Self {
        DrainGate {
            protect: Arc::clone(&app.protect),
        }
    }
}

impl Gate for DrainGate {
    fn admit(&self, request: Request) -> Admission {
        let lifecycle = &self.protect.lifecycle;
        // Counted before the check, so the drain waits for every request that passed it.
        lifecycle.in_flight.fetch_add(1, Ordering::SeqCst);
        let in_flight = InFlight(Arc::clone(&self.protect));
        if lifecycle.draining.load(Ordering::SeqCst) {
            drop(in_flight);
            let mut response = ApiError::unavailable(
                "the service is shutting down; retry once it is back",
                RETRY_SHUTDOWN_SECS,
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Admission::Refused(response);
        }
        Admission::Passed(request, Some(in_flight))
    }
}

// ---- 401, 429, 403: per key ----

/// Every request: valid credentials (401, 20003), within the key's rate (429, 20429,
/// `Retry-After`), and a store in the path the key may use (403, code 403). A store id that is
/// not a TTID is left to the handler (400, 520049).
#[derive(Clone)]
pub(super) struct KeyGate {
    credentials: Arc<Credentials>,
    protect: Arc<Protect>,
}

impl KeyGate {
    pub(super) fn new(app: &App) -> Self {
        KeyGate {
            credentials: Arc::clone(&app.credentials),
            protect: Arc::clone(&app.protect),
        }
    }
}

impl Gate for KeyGate {
    fn admit(&self, request: Request) -> Admission {
        let (mut parts, body) = request.into_parts();
        match self.check(&mut parts) {
            Ok(()) => Admission::Passed(Request::from_parts(parts, body), None),
            Err(error) => Admission::Refused(error.into_response()),
        }
    }
}

impl KeyGate {
    /// The checks, in order.
    fn check(&self, parts: &mut Parts) -> Result<(), ApiError> {
        let Authenticated(key) = Authenticated::from_headers(&parts.headers, &self.credentials)?;
        if let Some(rate) = &self.protect.rate {
            rate.take(key, Instant::now()).map_err(|seconds| {
                ApiError::new(
                    ErrorCode::TooManyRequests,
                    "Too many requests. Please retry according to the Retry-After response header.",
                )
                .retry_after(seconds)
            })?;
        }
        if let Some(params) = path_params(parts)
            && let Some((_, store)) = params.iter().find(|(name, _)| *name == "store_id")
            && let Ok(store) = store.parse::<StoreId>()
            && !self.credentials.may_use(key, &store)
        {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "Permission to access resource denied: key `{}` may not use store `{store}`",
                    self.credentials.sid(key)
                ),
            ));
        }
        Ok(())
    }
}

/// The parameters of the route's path, if it has any: axum's `RawPathParams` extraction only
/// reads the request's extensions and never waits, so one poll gets it.
fn path_params(parts: &mut Parts) -> Option<RawPathParams> {
    let extraction = pin!(RawPathParams::from_request_parts(parts, &()));
    match extraction.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(params) => params.ok(),
        Poll::Pending => unreachable!("extracting the path parameters never waits"),
    }
}

// ---- the service both layers make, and its future ----

/// What a layer checks before the inner service answers.
pub(super) trait Gate {
    fn admit(&self, request: Request) -> Admission;
}

/// What a [`Gate`] makes of a request.
pub(super) enum Admission {
    /// Passed on, with the drain's count of it (held until the answer is there).
    Passed(Request, Option<InFlight>),
    /// Answered at once.
    Refused(Response),
}

/// The layer of a [`Gate`] ([`DrainGate`], [`KeyGate`]): puts it in front of the inner
/// service.
#[derive(Clone)]
pub(super) struct GateLayer<G>(pub(super) G);

impl<S, G: Clone> Layer<S> for GateLayer<G> {
    type Service = Gated<S, G>;

    fn layer(&self, inner: S) -> Self::Service {
        Gated {
            inner,
            gate: self.0.clone(),
        }
    }
}

/// The service of a [`GateLayer`]: the inner service behind a [`Gate`].
#[derive(Clone)]
pub(super) struct Gated<S, G> {
    inner: S,
    gate: G,
}

impl<S, G> Service<Request> for Gated<S, G>
where
    S: Service<Request, Response = Response>,
    G: Gate,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Answer<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.gate.admit(request) {
            Admission::Passed(request, in_flight) => Answer::Inner {
                future: self.inner.call(request),
                in_flight,
            },
            Admission::Refused(refusal) => Answer::Now {
                response: Some(refusal),
            },
        }
    }
}

pin_project! {
    /// The future of the drain and key services: small and unboxed (axum's `from_fn`
    /// middleware boxes a future of over 1 KiB for every request). Either an answer at once
    /// (a refusal), or the inner service's, with the drain's count of the request held until
    /// it is there.
    #[project = AnswerProjection]
    pub(super) enum Answer<F> {
        Now { response: Option<Response> },
        Inner {
            #[pin]
            future: F,
            in_flight: Option<InFlight>,
        },
    }
}

impl<F, E> Future for Answer<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AnswerProjection::Now { response } => {
                Poll::Ready(Ok(response.take().expect("not polled after its answer")))
            }
            AnswerProjection::Inner { future, in_flight } => {
                let answer = ready!(future.poll(cx));
                drop(in_flight.take());
                Poll::Ready(answer)
            }
        }
    }
}

// ---- 500 and 405 ----

/// The answer to a panicking handler: 500 with the error body (code 20500); the panic message
/// goes to stderr (the panic hook), not to the client.
pub(super) fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::new(ErrorCode::Internal, "Internal Server Error").into_response()
}

/// 405 (code 20004) for a method a route does not have; axum adds the `Allow` header.
pub(super) async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("Method Not Allowed: `{method}` is not allowed on this resource"),
    )
}

// ---- test faults ----

/// Faults the tests provoke through `PUT /__test/faults` (only with `--test-faults`).
#[derive(Default)]
pub(crate) struct Faults {
    /// Writes wait (holding their place in the write queue) until then.
    hold_writes_until: Mutex<Option<Instant>>,
    /// Writes are refused as the storage refuses them when it is unreachable.
    storage_unavailable: AtomicBool,
}

impl Faults {
    async fn before_write(&self) -> Result<(), ApiError> {
        if self.storage_unavailable.load(Ordering::SeqCst) {
            return Err(ApiError::from_store(
                StoreError::Unavailable("storage unreachable (test fault)".to_owned()),
                &"-",
            ));
        }
        let until = *self
            .hold_writes_until
            .lock()
            .expect("no panic holds this lock");
        if let Some(until) = until {
            tokio::time::sleep_until(until.into()).await;
        }
        Ok(())
    }
}

/// The body of `PUT /__test/faults`.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FaultSettings {
    /// Hold every write this many milliseconds from now (0: stop holding).
    #[serde(default)]
    hold_writes_ms: u64,
    /// Refuse writes as unreachable storage does.
    #[serde(default)]
    storage_unavailable: bool,
}

/// The test-only routes, behind the same credentials: `GET /__test/panic` panics in the
/// handler; `PUT /__test/faults` sets the faults.
pub(super) fn fault_routes() -> Router<App> {
    Router::new()
        .route(
            "/__test/panic",
            get(|| async {
                if true {
                    panic!("test fault: a panicking handler");
                }
            }),
        )
        .route("/__test/faults", put(set_faults))
}

async fn set_faults(
    State(app): State<App>,
    Json(settings): Json<FaultSettings>,
) -> Result<Response, ApiError> {
    let faults = app
        .protect
        .faults
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such resource"))?;
    *faults
        .hold_writes_until
        .lock()
        .expect("no panic holds this lock") = (settings.hold_writes_ms > 0)
        .then(|| Instant::now() + Duration::from_millis(settings.hold_writes_ms));
    faults
        .storage_unavailable
        .store(settings.storage_unavailable, Ordering::SeqCst);
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_refills_at_the_rate_and_says_when() {
        let limiter = RateLimiter::new(2, 2);
        let start = Instant::now();
        let key = KeyIndex(0);
        assert_eq!(limiter.take(key, start), Ok(()));
        assert_eq!(limiter.take(key, start), Ok(()));
        assert_eq!(limiter.take(key, start), Err(1));
        // The other key has its own bucket.
        assert_eq!(limiter.take(KeyIndex(1), start), Ok(()));
        // Half a second later, one token is back.
        let later = start + Duration::from_millis(500);
        assert_eq!(limiter.take(key, later), Ok(()));
        assert_eq!(limiter.take(key, later), Err(1));
        // A slow rate says more than a second.
        let slow = RateLimiter::new(1, 1);
        assert_eq!(slow.take(key, start), Ok(()));
        assert_eq!(slow.take(key, start + Duration::from_millis(10)), Err(1));
    }
}
