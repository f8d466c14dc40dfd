//! The embedded web UI: `index.html`, `app.js`, `app.css` from `src/http/ui/`, compiled in
//! with `include_str!` so the binary is the whole product. The UI talks only to `/api/*`.
//! Must not: hold state or logic beyond serving the files.

use axum::http::header;
use axum::response::{Html, IntoResponse};

/// `GET /`.
pub async fn index() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("ui/index.html")),
    )
}

/// `GET /app.js`.
pub async fn app_js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("ui/app.js"),
    )
}

/// `GET /app.css`.
pub async fn app_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("ui/app.css"),
    )
}
