//! `GET /api/setup`: what a person needs to connect the Sparks — the controller's public
//! key (to paste into `authorized_keys`), the host-key fingerprint of each host (pinned or
//! learned on first contact), and the Open WebUI link when one is configured. Reads files
//! in the data dir; changes nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::remote::keys;

/// Where the Setup page's facts come from.
#[derive(Clone, Debug, Default)]
pub struct SetupInfo {
    /// The data dir (`id_ed25519.pub`, `known_hosts`).
    pub data_dir: Option<PathBuf>,
    /// Open WebUI's URL, shown as a link when set.
    pub open_webui_url: Option<String>,
}

pub(super) async fn setup(State(st): State<AppState>) -> Json<Value> {
    let desired = st.handle.status.borrow().desired.clone();
    let dir = st.setup.data_dir.clone();
    let public_key = dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("id_ed25519.pub")).ok())
        .map(|s| s.trim().to_string());
    let mut host_keys: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(d) = &desired {
        for (name, h) in &d.hosts {
            let fp = match (&h.host_key, &dir) {
                (Some(pin), _) => {
                    json!({"fingerprint": keys::pin_fingerprint(pin), "source": "pinned"})
                }
                (None, Some(dir)) => {
                    match keys::known_fingerprints(&dir.join("known_hosts"), &h.address, h.port)
                        .first()
                    {
                        Some(fp) => json!({"fingerprint": fp, "source": "known_hosts"}),
                        None => json!({"fingerprint": null, "source": "not contacted yet"}),
                    }
                }
                (None, None) => json!({"fingerprint": null, "source": "unknown"}),
            };
            host_keys.insert(name.clone(), fp);
        }
    }
    Json(json!({
        "public_key": public_key,
        "host_keys": host_keys,
        "open_webui_url": st.setup.open_webui_url,
    }))
}
