//! The Hugging Face Hub API client: how big a repo is, and whether it exists.
//!
//! One call, `GET {endpoint}/api/models/{org}/{name}?blobs=true` (what `huggingface_hub`'s
//! `model_info(files_metadata=True)` sends): its `siblings` list every file with its
//! `size` (LFS files also carry `lfs.size`). The endpoint follows the `HF_ENDPOINT`
//! convention (default `https://huggingface.co`); tests and the demo point it at the fake
//! Hub in `sim::hub`. A token (`HF_TOKEN`) is sent when configured. The answer is only
//! used for progress: when it cannot be had the download still runs, with "size unknown".
//!
//! Must not: download files, run anything on a host, or retry forever (every call has a
//! timeout; the caller decides what to do with an error).

use std::time::Duration;

use serde::Deserialize;

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where the Hub is and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubConfig {
    /// Base URL, no trailing slash (`https://huggingface.co`, a mirror, the fake Hub).
    pub endpoint: String,
    /// Bearer token for private/gated repos.
    pub token: Option<String>,
}

impl HubConfig {
    /// `HF_ENDPOINT` (or the public Hub) and `HF_TOKEN` from the environment.
    pub fn from_env() -> Self {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let token = std::env::var("HF_TOKEN")
            .ok()
            .filter(|s| !s.trim().is_empty());
        HubConfig::at(&endpoint).with_token(token)
    }

    /// A Hub at `endpoint`, no token.
    pub fn at(endpoint: &str) -> Self {
        HubConfig {
            endpoint: endpoint.trim().trim_end_matches('/').to_string(),
            token: None,
        }
    }

    /// The same Hub with `token`.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }
}

/// What the Hub says about a repo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoInfo {
    /// Sum of the file sizes; None when the Hub listed files without sizes.
    pub total_bytes: Option<u64>,
    /// Number of files.
    pub files: usize,
    /// Gated: downloading needs an accepted licence and a token on the hosts.
    pub gated: bool,
}

/// Why the Hub could not answer. Messages say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// Not a repo id.
    #[error("`{0}` is not a Hugging Face repo id (expected `org/name`)")]
    BadRepo(String),
    /// The Hub says the repo does not exist (or is private and we have no access).
    #[error("{repo} was not found on the Hub ({endpoint}): check the spelling; a private repo needs a token (HF_TOKEN for spark-control, `hf auth login` on the hosts)")]
    NotFound {
        /// The repo.
        repo: String,
        /// The Hub asked.
        endpoint: String,
    },
    /// The repo exists but needs a token we do not have or that is refused.
    #[error("{repo} needs a Hugging Face token with access ({detail}): accept its licence on the Hub, then `hf auth login` on the hosts")]
    NeedsToken {
        /// The repo.
        repo: String,
        /// What the Hub said.
        detail: String,
    },
    /// The Hub did not answer usefully (network, timeout, 5xx, unexpected body).
    #[error("the Hub at {endpoint} did not answer for {repo}: {detail}")]
    Unavailable {
        /// The repo.
        repo: String,
        /// The Hub asked.
        endpoint: String,
        /// What went wrong.
        detail: String,
    },
}

/// The client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    cfg: HubConfig,
    http: reqwest::Client,
}

impl Hub {
    /// A client with a 5 s connect and 20 s overall timeout.
    pub fn new(cfg: HubConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_default();
        Hub { cfg, http }
    }

    /// The configuration.
    pub fn config(&self) -> &HubConfig {
        &self.cfg
    }

    /// Sizes and access of `repo`.
    pub async fn repo_info(&self, repo: &str) -> Result<RepoInfo, HubError> {
        if !crate::model::valid_repo(repo) {
            return Err(HubError::BadRepo(repo.to_string()));
        }
        // A valid repo id holds only [A-Za-z0-9._-/]: safe in a URL path as it is.
        let url = format!("{}/api/models/{repo}?blobs=true", self.cfg.endpoint);
        let mut req = self.http.get(&url);
        if let Some(t) = &self.cfg.token {
            req = req.bearer_auth(t);
        }
        let unavailable = |detail: String| HubError::Unavailable {
            repo: repo.to_string(),
            endpoint: self.cfg.endpoint.clone(),
            detail,
        };
        let resp = req.send().await.map_err(|e| unavailable(e.to_string()))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let code = header("x-error-code");
        let message = header("x-error-message");
        match classify(status, &code) {
            Answer::Ok => {}
            Answer::NotFound => {
                return Err(HubError::NotFound {
                    repo: repo.to_string(),
                    endpoint: self.cfg.endpoint.clone(),
                })
            }
            Answer::NeedsToken => {
                return Err(HubError::NeedsToken {
                    repo: repo.to_string(),
                    detail: if message.is_empty() {
                        format!("HTTP {status}")
                    } else {
                        message
                    },
                })
            }
            Answer::Other => return Err(unavailable(format!("HTTP {status} {message}"))),
        }
        let body = resp.text().await.map_err(|e| unavailable(e.to_string()))?;
        parse_model_info(&body).map_err(unavailable)
    }
}

/// How to read a Hub answer's status (and its `X-Error-Code` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Ok,
    /// 404, or 401 with `RepoNotFound` (what the Hub answers anonymous callers).
    NotFound,
    /// 401/403 otherwise (`GatedRepo`, a refused token).
    NeedsToken,
    /// Anything else.
    Other,
}

/// Pure: the meaning of a status and error code.
pub fn classify(status: u16, error_code: &str) -> Answer {
    match status {
        200..=299 => Answer::Ok,
        404 => Answer::NotFound,
        401 if error_code == "RepoNotFound" => Answer::NotFound,
        401 | 403 => Answer::NeedsToken,
        _ => Answer::Other,
    }
}

#[derive(Deserialize)]
struct ModelInfoWire {
    #[serde(default)]
    siblings: Vec<SiblingWire>,
    #[serde(default)]
    gated: serde_json::Value,
}

#[derive(Deserialize)]
struct SiblingWire {
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<LfsWire>,
}

#[derive(Deserialize)]
struct LfsWire {
    #[serde(default)]
    size: Option<u64>,
}

/// Pure: the body of `GET /api/models/{repo}?blobs=true` → total size and gating.
pub fn parse_model_info(body: &str) -> Result<RepoInfo, String> {
    let w: ModelInfoWire =
        serde_json::from_str(body).map_err(|e| format!("unexpected answer from the Hub: {e}"))?;
    let mut total = Some(0u64);
    for s in &w.siblings {
        let size = s.size.or_else(|| s.lfs.as_ref().and_then(|l| l.size));
        total = match (total, size) {
            (Some(t), Some(n)) => Some(t.saturating_add(n)),
            _ => None,
        };
    }
    if w.siblings.is_empty() {
        total = None;
    }
    let gated = match &w.gated {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => !s.is_empty() && s != "false",
        _ => false,
    };
    Ok(RepoInfo {
        total_bytes: total,
        files: w.siblings.len(),
        gated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, want: Result<(Option<u64>, usize, bool), ()>) {
        let got = parse_model_info(body)
            .map(|r| (r.total_bytes, r.files, r.gated))
            .map_err(|_| ());
        assert_eq!(got, want, "{body}");
    }

    #[test]
    fn model_info_bodies() {
        // Shape of `model_info(files_metadata=True)`: siblings with size, LFS with lfs.size.
        check(
            r#"{"_id":"x","id":"org/m","gated":false,"siblings":[{"rfilename":"config.json","size":1024,"blobId":"ab"},{"rfilename":"model.safetensors","size":2048,"blobId":"cd","lfs":{"size":2048,"sha256":"ee","pointerSize":130}}]}"#,
            Ok((Some(3072), 2, false)),
        );
        check(
            r#"{"siblings":[{"rfilename":"a","lfs":{"size":10}}],"gated":"manual"}"#,
            Ok((Some(10), 1, true)),
        );
        // Without blobs=true the Hub lists names only: size unknown.
        check(
            r#"{"siblings":[{"rfilename":"a"},{"rfilename":"b","size":3}]}"#,
            Ok((None, 2, false)),
        );
        check(r#"{"id":"org/m"}"#, Ok((None, 0, false)));
        check("<html>", Err(()));
    }

    #[test]
    fn statuses() {
        for (status, code, want) in [
            (200, "", Answer::Ok),
            (404, "", Answer::NotFound),
            (401, "RepoNotFound", Answer::NotFound),
            (401, "", Answer::NeedsToken),
            (403, "GatedRepo", Answer::NeedsToken),
            (500, "", Answer::Other),
            (429, "", Answer::Other),
        ] {
            assert_eq!(classify(status, code), want, "{status} {code}");
        }
    }

    #[test]
    fn endpoint_is_normalised() {
        assert_eq!(
            HubConfig::at(" http://127.0.0.1:9/ ").endpoint,
            "http://127.0.0.1:9"
        );
    }
}
