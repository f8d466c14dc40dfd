//! Who may send a request and whether it is let in: the inference key (checked in
//! constant time, and the catalog models a key may use), the model's `max_concurrent`
//! (in flight counted per deployment for the drain before a swap), and who asked, for the
//! record of a request-triggered swap. Called by `forward.rs` once the model is known.

use axum::extract::Request;
use axum::http::{header, HeaderMap};
use subtle::{Choice, ConditionallySelectable as _, ConstantTimeEq as _};

use super::demand::InFlight;
use super::error::{ProxyError, Service};
use super::forward::{deployment_of, unnamed, Shared};

/// Counts a vLLM request in flight on its deployment (for the drain before a swap), and
/// refuses it past its model's `proxy.max_concurrent` (429).
pub(super) fn admit(shared: &Shared, model: Option<&str>) -> Result<InFlight, ProxyError> {
    let name = catalog_name(shared, model);
    let (deployment, limit) = {
        let routes = shared.routes.borrow();
        let deployment = match model.filter(|m| !m.is_empty()) {
            Some(m) => deployment_of(&routes, Service::Vllm, m),
            None => unnamed(&routes, Service::Vllm).0,
        };
        (deployment, routes.policy.max_concurrent.get(&name).copied())
    };
    shared.demand.admit(&deployment, &name, limit)
}

/// The catalog name a request's `model` (or, without one, the first deployment's model)
/// stands for; the name itself when the catalog does not know it.
fn catalog_name(shared: &Shared, model: Option<&str>) -> String {
    let routes = shared.routes.borrow();
    let table = &routes.models;
    let raw = match model.filter(|m| !m.is_empty()) {
        Some(m) => m.to_string(),
        None => match table
            .entries
            .iter()
            .find(|e| e.deployment.is_some() && e.deployment == table.first)
        {
            Some(e) => return e.name.clone(),
            None => unnamed(&routes, Service::Vllm).1,
        },
    };
    table
        .by_name
        .get(&raw)
        .and_then(|&i| table.entries.get(i))
        .map_or(raw, |e| e.name.clone())
}

/// Whether the request's key may use its model (checked before anything is routed or
/// swapped for it).
pub(super) fn key_allows(shared: &Shared, scope: Option<&[String]>, model: Option<&str>) -> bool {
    match scope {
        None => true,
        Some(allowed) => allowed.contains(&catalog_name(shared, model)),
    }
}

pub(super) fn not_allowed(
    shared: &Shared,
    scope: Option<&[String]>,
    model: Option<&str>,
) -> ProxyError {
    ProxyError::KeyNotForModel {
        model: catalog_name(shared, model),
        allowed: scope.map(<[String]>::to_vec).unwrap_or_default(),
    }
}

/// The peer address of a request (its `ConnectInfo`), else its `User-Agent`.
pub(super) fn client_of(req: &Request) -> String {
    if let Some(axum::extract::ConnectInfo(peer)) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return peer.ip().to_string();
    }
    req.headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map_or_else(
            || "a client".to_string(),
            |ua| crate::model::limits::clip(ua).to_string(),
        )
}

/// Checks `Authorization: Bearer <key>` against every key in constant time per key; the
/// index of the key it is.
pub(super) fn authorize(headers: &HeaderMap, keys: &[String]) -> Result<usize, ProxyError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .ok_or(ProxyError::Unauthorized)?;
    let mut matched = Choice::from(0);
    let mut index = 0u64;
    for (i, key) in keys.iter().enumerate() {
        let this = presented.as_bytes().ct_eq(key.as_bytes());
        index = u64::conditional_select(&index, &(i as u64), this);
        matched |= this;
    }
    if bool::from(matched) {
        Ok(usize::try_from(index).unwrap_or(0))
    } else {
        Err(ProxyError::Unauthorized)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn check_auth(header_value: Option<&str>, keys: &[&str], ok: bool) {
        let mut headers = HeaderMap::new();
        if let Some(v) = header_value {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        assert_eq!(authorize(&headers, &keys).is_ok(), ok, "{header_value:?}");
    }

    #[test]
    fn bearer_keys_are_checked() {
        check_auth(Some("Bearer k1"), &["k1", "k2"], true);
        check_auth(Some("bearer k2"), &["k1", "k2"], true);
        check_auth(Some("Bearer k3"), &["k1", "k2"], false);
        check_auth(Some("Bearer k1x"), &["k1"], false);
        check_auth(Some("Basic k1"), &["k1"], false);
        check_auth(Some("k1"), &["k1"], false);
        check_auth(None, &["k1"], false);
    }
}
