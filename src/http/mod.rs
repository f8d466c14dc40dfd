//! The HTTP API and the embedded UI: one route table over the control loop's `Handle`.
//!
//! Owns: routes, wire shapes, errors → responses (`error`), auth for mutating routes
//! (`auth`), SSE log and state streams, `/metrics`, the OpenAPI document, graceful shutdown of the
//! server. The web side reads the status snapshot, sends `Command`s and writes the desired
//! file through `DesiredStore`; it never calls `remote`/`execute` and never changes hosts.
//! The OpenAI proxy (`/v1/*`, `/api/audio/diarize-chunk`) is another module's router,
//! merged in through [`AppState::with_extra_router`]; its metrics are appended through
//! [`AppState::with_metrics_hook`].

mod auth;
mod commands;
mod desired;
pub use desired::DesiredSwapper;
mod downloads;
pub mod error;
mod events;
mod extract;
mod history;
mod metrics;
pub mod openapi;
mod read;
mod server;
mod session;
mod setup;
mod state_stream;
mod stream;
mod telemetry;
mod ui;
pub mod wire;

pub mod hosts;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::reconcile::Handle;
pub use error::ApiError;
pub use hosts::AllowedHosts;
pub use read::endpoints_of;
pub use server::{serve, ServeLimits};

/// Appends Prometheus text to `/metrics` (the proxy's counters).
pub type MetricsHook = Arc<dyn Fn(&mut String) + Send + Sync>;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The control loop: status, commands, logs, events, the desired file, counters.
    pub handle: Handle,
    /// Bearer token required by mutating routes; `None`: no auth (warned at start).
    pub admin_token: Option<String>,
    /// Routes merged into the app as they are (the `/v1` proxy); not behind admin auth.
    pub extra_router: Option<Router>,
    /// Extra Prometheus text appended to `/metrics`.
    pub metrics_hook: Option<MetricsHook>,
    /// Cancelled at shutdown: SSE streams end when it is.
    pub shutdown: CancellationToken,
    pub(crate) limiter: Arc<events::RateLimiter>,
    /// What the Setup page shows: where the identity lives, the Open WebUI link.
    pub setup: setup::SetupInfo,
    /// The Host allowlist, the session cookie's value, connection limits.
    pub security: Security,
    /// Git-ops (commits of edits, history, rollback, pull mode); `None`: not running.
    pub gitops: Option<crate::gitops::GitOps>,
    /// This server's epoch: random, chosen at start-up, in every event of
    /// `/api/state/stream`. A page that sees it change knows the server restarted
    /// (operation ids and log sequence numbers began again) and resyncs.
    pub epoch: Arc<str>,
}

/// What the guard (`auth.rs`) and the server loop (`server.rs`) enforce.
#[derive(Clone)]
pub struct Security {
    /// The names the server answers to (IP literals always).
    pub allowed: Arc<AllowedHosts>,
    /// Inference keys guard `/v1`: then the proxy skips the Host check.
    pub proxy_keys: bool,
    /// The session cookie's value (derived from the admin token; empty without one).
    pub(crate) session_value: String,
    pub(crate) failures: Arc<auth::FailureLog>,
    /// Header-read timeout and connections per client.
    pub limits: ServeLimits,
}

impl AppState {
    /// The state over a running control loop. An empty token counts as none.
    pub fn new(handle: Handle, admin_token: Option<String>) -> AppState {
        let admin_token = admin_token.filter(|t| !t.trim().is_empty());
        AppState {
            handle,
            security: Security {
                allowed: Arc::new(AllowedHosts::default()),
                proxy_keys: false,
                session_value: admin_token
                    .as_deref()
                    .map(session::session_value)
                    .unwrap_or_default(),
                failures: Arc::default(),
                limits: ServeLimits::default(),
            },
            admin_token,
            extra_router: None,
            metrics_hook: None,
            shutdown: CancellationToken::new(),
            limiter: Arc::new(events::RateLimiter::new(20.0, 20.0)),
            setup: setup::SetupInfo::default(),
            gitops: None,
            epoch: format!("{:016x}", rand::random::<u64>()).into(),
        }
    }

    /// Edits through the API become commits; the History routes answer (see `gitops`).
    pub fn with_gitops(mut self, gitops: crate::gitops::GitOps) -> AppState {
        self.gitops = Some(gitops);
        self
    }

    /// The data dir (for the public key and known host keys) and the Open WebUI URL.
    pub fn with_setup(
        mut self,
        data_dir: Option<std::path::PathBuf>,
        open_webui_url: Option<String>,
    ) -> AppState {
        self.setup = setup::SetupInfo {
            data_dir,
            open_webui_url,
        };
        self
    }

    /// Merges `router` (the `/v1/*` proxy) into the app.
    pub fn with_extra_router(mut self, router: Router) -> AppState {
        self.extra_router = Some(router);
        self
    }

    /// Appends `hook`'s output to `/metrics`.
    pub fn with_metrics_hook(mut self, hook: impl Fn(&mut String) + Send + Sync + 'static) -> Self {
        self.metrics_hook = Some(Arc::new(hook));
        self
    }

    /// The names the server answers to (see `hosts.rs`).
    pub fn with_allowed_hosts(mut self, allowed: AllowedHosts) -> AppState {
        self.security.allowed = Arc::new(allowed);
        self
    }

    /// `/v1` is guarded by inference keys (the proxy then skips the Host check).
    pub fn with_proxy_keys(mut self, keys: bool) -> AppState {
        self.security.proxy_keys = keys;
        self
    }

    /// Header-read timeout and per-client connection cap of [`serve`].
    pub fn with_limits(mut self, limits: ServeLimits) -> AppState {
        self.security.limits = limits;
        self
    }

    /// SSE streams end when `token` is cancelled (`serve` sets its own token here).
    pub fn with_shutdown(mut self, token: CancellationToken) -> AppState {
        self.shutdown = token;
        self
    }
}

/// Every route, in one table; all of them (the merged proxy too) behind [`auth::guard`],
/// every response with the headers of [`security_headers`].
pub fn app(mut state: AppState) -> Router {
    let extra = state.extra_router.take();
    let api = Router::new()
        // UI
        .route("/", get(ui::index))
        .route("/app.js", get(ui::app_js))
        .route("/app.css", get(ui::app_css))
        .route("/ui/{name}", get(ui::module))
        // probes, metrics, docs
        .route("/healthz", get(read::healthz))
        .route("/readyz", get(read::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/openapi.json", get(openapi::serve))
        .route(
            crate::model::schema::SERVED_PATH,
            get(openapi::desired_schema),
        )
        // reads
        .route("/api/state", get(read::state))
        .route("/api/state/stream", get(state_stream::state_stream))
        .route("/api/setup", get(setup::setup))
        .route(
            "/api/session",
            get(session::get)
                .post(session::login)
                .delete(session::logout),
        )
        .route("/api/plan", get(read::plan))
        .route("/api/endpoints", get(read::endpoints))
        .route("/api/events", get(events::query))
        .route("/api/logs", get(stream::logs))
        .route("/api/operations/{id}/logs", get(stream::operation_logs))
        // the desired file
        .route(
            "/api/desired",
            get(desired::get)
                .put(desired::put)
                .layer(DefaultBodyLimit::max(2 * 1024 * 1024)),
        )
        .route("/api/desired/edit", post(desired::edit))
        .route("/api/desired/preview", post(desired::preview))
        .route("/api/models", post(desired::add_model))
        .route("/api/models/{name}", delete(desired::remove_model))
        .route("/api/models/{name}/activate", post(desired::activate))
        .route("/api/models/{name}/overrides", put(desired::overrides))
        .route("/api/services/{name}", put(desired::place_service))
        .route("/api/updates/policy", put(desired::update_policy))
        .route(
            "/api/hosts/{name}",
            put(desired::set_host).delete(desired::remove_host),
        )
        .route("/api/cluster", put(desired::set_cluster))
        // imperative one-shots
        .route("/api/services/{name}/restart", post(commands::restart))
        .route("/api/retry", post(commands::retry))
        .route("/api/updates/check", post(commands::check_updates))
        .route("/api/reconcile", post(commands::reconcile))
        .route(
            "/api/operations/{id}/cancel",
            post(commands::cancel_operation),
        )
        // downloads, launcher updates, telemetry
        .route(
            "/api/downloads",
            get(downloads::list).post(downloads::start),
        )
        .route("/api/downloads/{id}", delete(downloads::cancel))
        .route("/api/updates", get(downloads::updates))
        .route("/api/updates/apply", post(downloads::apply))
        .route("/api/telemetry", get(telemetry::get))
        // git-ops: history, commit, rollback, pull mode
        .route("/api/history", get(history::history))
        .route("/api/history/commit", post(history::commit))
        .route("/api/history/{id}/plan", get(history::preview))
        .route("/api/history/{id}/rollback", post(history::rollback))
        .route("/api/git/sync", post(history::sync))
        .route("/api/git/resolve", post(history::resolve))
        .route(
            "/api/git/webhook",
            post(history::webhook).layer(DefaultBodyLimit::max(history::WEBHOOK_MAX_BODY)),
        )
        // LAN apps push what they saw (no admin token: rate-limited per source instead)
        .route(
            "/api/health-event",
            post(events::health_event).layer(DefaultBodyLimit::max(events::MAX_BODY)),
        )
        .method_not_allowed_fallback(error_405)
        .with_state(state.clone());
    // The OpenAI proxy: `/v1/*` and `/api/audio/diarize-chunk` (`proxy::router(..)` passed
    // as `AppState::with_extra_router`). Behind the Host check only: inference keys
    // belong to the proxy.
    let app = match extra {
        Some(proxy) => api.merge(proxy),
        None => api,
    };
    app.fallback(error_404)
        .layer(axum::middleware::from_fn_with_state(state, auth::guard))
        .layer(axum::middleware::from_fn(security_headers))
}

/// The UI's Content-Security-Policy: only this server's own script, style and requests;
/// no inline script or style, never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; manifest-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// Security headers on every response (the proxy's too, except the CSP, which is about
/// pages): CSP, `X-Frame-Options`, `nosniff`, `Referrer-Policy`.
async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let page = !req.uri().path().starts_with("/v1");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if page {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    resp
}

async fn error_404(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no route {}; see /api/openapi.json for the API",
        uri.path()
    ))
}

async fn error_405(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{method} is not allowed on {}; see /api/openapi.json",
        uri.path()
    ))
}
