//! The embedded web UI: `index.html`, `app.js`, `app.css` and the ES modules `app.js`
//! imports (`/ui/<name>.js`, [`MODULES`]) from `src/http/ui/`, compiled in with
//! `include_str!` so the binary is the whole product. The UI talks only to `/api/*`.
//! Each file goes gzip-compressed (once, on first use) to a browser that accepts it: the
//! first load is ~4x smaller (the budget of `ui::budget`).
//! Must not: hold state or logic beyond serving the files.

use std::io::Write;
use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::Path;

/// An embedded file, and its gzip form once made.
pub struct Asset {
    name: &'static str,
    text: &'static str,
    gz: OnceLock<Vec<u8>>,
}

impl Asset {
    const fn new(name: &'static str, text: &'static str) -> Asset {
        Asset {
            name,
            text,
            gz: OnceLock::new(),
        }
    }

    fn gzip(&self) -> &[u8] {
        self.gz.get_or_init(|| gzip(self.text.as_bytes()))
    }

    /// The file as `content_type`, gzip-encoded when `req` accepts gzip.
    fn respond(&self, req: &HeaderMap, content_type: &'static str) -> Response {
        let mut r = if accepts_gzip(req) {
            let mut r = self.gzip().to_vec().into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else {
            self.text.into_response()
        };
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        r
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    e.write_all(bytes).expect("gzip into memory");
    e.finish().expect("gzip into memory")
}

/// Whether `Accept-Encoding` names gzip (or `*`) with a non-zero quality.
fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let zero_q = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero_q
        })
}

static INDEX: Asset = Asset::new("index.html", include_str!("ui/index.html"));
static APP_CSS: Asset = Asset::new("app.css", include_str!("ui/app.css"));

/// The modules under `/ui/`, by file name: `app.js` (the entry, which `index.html`
/// loads as `ui/app.js`) and those it imports beside it (`./state.js`), so the imports
/// resolve the same in the browser and in `tsc` over the source directory.
pub static MODULES: [Asset; 9] = [
    Asset::new("app.js", include_str!("ui/app.js")),
    Asset::new("deployments.js", include_str!("ui/deployments.js")),
    Asset::new("dom.js", include_str!("ui/dom.js")),
    Asset::new("editor.js", include_str!("ui/editor.js")),
    Asset::new("format.js", include_str!("ui/format.js")),
    Asset::new("merge.js", include_str!("ui/merge.js")),
    Asset::new("phone.js", include_str!("ui/phone.js")),
    Asset::new("state.js", include_str!("ui/state.js")),
    Asset::new("swap.js", include_str!("ui/swap.js")),
];

/// `GET /ui/{name}`: one of [`MODULES`].
pub async fn module(
    Path(name): Path<String>,
    req: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let Some(asset) = MODULES.iter().find(|a| a.name == name) else {
        return Err(ApiError::NotFound(format!(
            "no UI module {}; the modules are {}",
            crate::model::limits::clip(&name),
            MODULES
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    Ok(asset.respond(&req, JS))
}

const JS: &str = "text/javascript; charset=utf-8";

/// `GET /`.
pub async fn index(req: HeaderMap) -> Response {
    INDEX.respond(&req, "text/html; charset=utf-8")
}

/// The same file as `/ui/app.js` (the path of older builds' pages).
pub async fn app_js(req: HeaderMap) -> Response {
    MODULES[0].respond(&req, JS)
}

/// `GET /app.css`.
pub async fn app_css(req: HeaderMap) -> Response {
    APP_CSS.respond(&req, "text/css; charset=utf-8")
}

/// `/ui/{name}`'s OpenAPI path item (merged into the document by `openapi.rs`).
pub fn openapi_paths() -> serde_json::Value {
    serde_json::json!({
        "/ui/{name}": { "get": {
            "summary": "One of the web UI's ES modules (imported by /ui/app.js)", "tags": ["ui"],
            "parameters": [{ "name": "name", "in": "path", "required": true, "description": "The module's file name (`state.js`)",
                             "schema": { "type": "string", "minLength": 1 } }],
            "responses": {
                "200": { "description": "JavaScript", "content": { "text/javascript": { "schema": {} } } },
                "404": { "description": "No such module", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } } } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for a in accept {
            h.append(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(a).expect("a header value"),
            );
        }
        h
    }

    #[test]
    fn gzip_is_sent_only_when_accepted() {
        assert!(accepts_gzip(&headers(&["gzip, deflate, br, zstd"])));
        assert!(accepts_gzip(&headers(&["br", "GZIP;q=0.5"])));
        assert!(accepts_gzip(&headers(&["*"])));
        assert!(!accepts_gzip(&headers(&[])));
        assert!(!accepts_gzip(&headers(&["br, deflate"])));
        assert!(!accepts_gzip(&headers(&["gzip;q=0, br"])));
        assert!(!accepts_gzip(&headers(&["x-gzip"])));
    }

    #[test]
    fn the_gzip_form_is_the_file() {
        use std::io::Read;
        let gz = MODULES[0].gzip();
        let mut back = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut back)
            .expect("valid gzip");
        assert_eq!(back, MODULES[0].text);
        assert!(gz.len() * 3 < MODULES[0].text.len(), "{} B", gz.len());
    }
}
