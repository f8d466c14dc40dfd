//! Extractors that turn axum's rejections into [`ApiError`]s, so every error response
//! follows the policy in `error.rs`. Thin wrappers over `Json`, `Bytes`, `Query` and `Path`.
//! Must not: add meaning (validation of values lives in the handlers).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body (`Content-Type: application/json`) that must be a JSON object.
///
/// Not JSON → 400; JSON but not an object (`[…]`, a string, a number: serde would read a
/// list into a struct field by field) → 422 "the body must be a JSON object"; an object of
/// the wrong shape (a mistyped, missing or unknown field) → 422 naming the field; over the
/// route's `DefaultBodyLimit` → 413. Every one in the JSON error shape.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "request body: expected `Content-Type: application/json`".into(),
            ));
        }
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return Err(match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(v) => ApiError::Unprocessable {
                    code: "not_an_object",
                    message: format!(
                        "request body: the body must be a JSON object (`{{…}}`), not {}",
                        json_kind(&v)
                    ),
                },
                Err(e) => ApiError::bad_request(
                    "malformed",
                    format!("request body: the body is not JSON: {e}"),
                ),
            });
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(r) => Err(ApiError::from_rejection(
                r.status(),
                r.body_text(),
                "request body",
            )),
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "true or false",
        serde_json::Value::Null => "null",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The raw body bytes. Over the route's `DefaultBodyLimit` → 413 in the JSON error shape
/// (axum's own `Bytes` rejection is plain text).
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(r) => Err(ApiError::from_rejection(
                r.status(),
                r.body_text(),
                "request body",
            )),
        }
    }
}

/// Query parameters.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(r) => Err(ApiError::from_rejection(
                r.status(),
                r.body_text(),
                "query string",
            )),
        }
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(r) => Err(ApiError::from_rejection(r.status(), r.body_text(), "path")),
        }
    }
}
