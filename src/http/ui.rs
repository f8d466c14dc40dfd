//! The embedded web UI: `index.html`, `app.js`, `app.css` and the ES modules `app.js`
//! imports (`/ui/<name>.js`, [`MODULES`]) from `src/http/ui/`, compiled in with
//! `include_str!` so the binary is the whole product. The UI talks only to `/api/*`.
//! Must not: hold state or logic beyond serving the files.

use axum::http::header;
use axum::response::{Html, IntoResponse};

use super::error::ApiError;
use super::extract::Path;

/// The modules under `/ui/`, by file name.
pub const MODULES: &[(&str, &str)] = &[
    ("format.js", include_str!("ui/format.js")),
    ("phone.js", include_str!("ui/phone.js")),
    ("state.js", include_str!("ui/state.js")),
    ("swap.js", include_str!("ui/swap.js")),
];

/// `GET /ui/{name}`: one of [`MODULES`].
pub async fn module(Path(name): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let Some((_, text)) = MODULES.iter().find(|(n, _)| *n == name) else {
        return Err(ApiError::NotFound(format!(
            "no UI module {}; the modules are {}",
            crate::model::limits::clip(&name),
            MODULES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *text,
    ))
}

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

/// `/ui/{name}`'s OpenAPI path item (merged into the document by `openapi.rs`).
pub fn openapi_paths() -> serde_json::Value {
    serde_json::json!({
        "/ui/{name}": { "get": {
            "summary": "One of the web UI's ES modules (imported by /app.js)", "tags": ["ui"],
            "parameters": [{ "name": "name", "in": "path", "required": true, "description": "The module's file name (`state.js`)",
                             "schema": { "type": "string", "minLength": 1 } }],
            "responses": {
                "200": { "description": "JavaScript", "content": { "text/javascript": { "schema": {} } } },
                "404": { "description": "No such module", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } } } }
    })
}
