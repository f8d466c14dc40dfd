//! `spark-control configure`'s edits as a value: its `--host`, `--head`, `--workers` and
//! `--service` arguments in, the edited desired-file text out. Pure: parsing the argument
//! specs and applying them through `ops`/`yaml`; the CLI reads, validates and writes.

use super::ops::{apply, DesiredEdit};
use super::yaml::{self, EditError, EditValue};

/// What `configure` was asked to set.
#[derive(Debug, Clone, Default)]
pub struct Configure {
    /// `NAME=ADDRESS[,user=USER][,port=PORT]`, each.
    pub hosts: Vec<String>,
    /// The cluster head.
    pub head: Option<String>,
    /// The cluster workers.
    pub workers: Option<Vec<String>>,
    /// `SERVICE=HOST`, each.
    pub services: Vec<String>,
}

/// A spec that does not parse, or an edit that cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    /// A `--host` spec.
    #[error("--host {spec}: {why}")]
    Host {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// A `--service` spec.
    #[error("--service {spec}: {why}")]
    Service {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        why: String,
    },
    /// The edit itself.
    #[error(transparent)]
    Edit(#[from] EditError),
}

/// parakeet and magpie get their usual kind, port and model when configure adds them.
fn service_defaults(name: &str) -> Option<(&'static str, i64, Option<&'static str>)> {
    match name {
        "parakeet" => Some(("stt", 8000, Some("nvidia/parakeet-tdt-0.6b-v3"))),
        "magpie" => Some(("tts", 9000, None)),
        _ => None,
    }
}

fn host_edit(spec: &str) -> Result<DesiredEdit, ConfigureError> {
    let bad = |why: String| ConfigureError::Host {
        spec: spec.to_string(),
        why,
    };
    let (name, rest) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=ADDRESS[,user=USER][,port=PORT]".into()))?;
    let mut parts = rest.split(',');
    let address = parts.next().unwrap_or_default().to_string();
    let (mut user, mut port) = (None, None);
    for p in parts {
        match p.split_once('=') {
            Some(("user", u)) => user = Some(u.to_string()),
            Some(("port", n)) => port = Some(n.parse().map_err(|_| bad(format!("bad port {n}")))?),
            _ => {
                return Err(bad(format!(
                    "unknown part `{p}` (expected user=... or port=...)"
                )))
            }
        }
    }
    Ok(DesiredEdit::SetHost {
        name: name.into(),
        address,
        user,
        port,
    })
}

fn place_service(text: &str, spec: &str) -> Result<String, ConfigureError> {
    let bad = |why: String| ConfigureError::Service {
        spec: spec.to_string(),
        why,
    };
    let (name, host) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected SERVICE=HOST".into()))?;
    if yaml::get(text, &["services", name])?.is_some() {
        let edit = DesiredEdit::PlaceService {
            service: name.into(),
            host: Some(host.into()),
            port: None,
            running: None,
        };
        return Ok(apply(text, &edit)?);
    }
    let Some((kind, port, model)) = service_defaults(name) else {
        return Err(bad(format!(
            "`{name}` is not in the file yet and has no defaults; add it under `services:` first (kind, host, port)"
        )));
    };
    let mut fields = vec![
        ("kind".to_string(), EditValue::Str(kind.into())),
        ("host".to_string(), EditValue::Str(host.into())),
        ("port".to_string(), EditValue::Int(port)),
        ("running".to_string(), EditValue::Bool(true)),
    ];
    if let Some(m) = model {
        fields.push(("model".to_string(), EditValue::Str(m.into())));
    }
    Ok(yaml::set(
        text,
        &["services", name],
        &EditValue::Map(fields),
    )?)
}

/// `text` with every setting of `c` applied (comments kept). Not validated.
pub fn configured(text: &str, c: &Configure) -> Result<String, ConfigureError> {
    let mut text = text.to_string();
    for spec in &c.hosts {
        text = apply(&text, &host_edit(spec)?)?;
    }
    if c.head.is_some() || c.workers.is_some() {
        let edit = DesiredEdit::SetCluster {
            head: c.head.clone(),
            workers: c.workers.clone(),
        };
        text = apply(&text, &edit)?;
    }
    for spec in &c.services {
        text = place_service(&text, spec)?;
    }
    Ok(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check_error(c: Configure, expected: &str) {
        let err = configured("version: 1\n", &c).unwrap_err().to_string();
        assert_eq!(err, expected);
    }

    #[test]
    fn bad_specs_say_which_and_why() {
        let hosts = |h: &str| Configure {
            hosts: vec![h.into()],
            ..Configure::default()
        };
        check_error(
            hosts("spark1"),
            "--host spark1: expected NAME=ADDRESS[,user=USER][,port=PORT]",
        );
        check_error(
            hosts("s=1.2.3.4,port=x"),
            "--host s=1.2.3.4,port=x: bad port x",
        );
        check_error(
            hosts("s=1.2.3.4,usr=a"),
            "--host s=1.2.3.4,usr=a: unknown part `usr=a` (expected user=... or port=...)",
        );
        let services = |s: &str| Configure {
            services: vec![s.into()],
            ..Configure::default()
        };
        check_error(
            services("parakeet"),
            "--service parakeet: expected SERVICE=HOST",
        );
        check_error(
            services("whisper=spark2"),
            "--service whisper=spark2: `whisper` is not in the file yet and has no defaults; add it under `services:` first (kind, host, port)",
        );
    }

    #[test]
    fn hosts_cluster_and_known_services_are_set() {
        let c = Configure {
            hosts: vec!["spark1=10.0.0.1,user=nvidia,port=2222".into()],
            head: Some("spark1".into()),
            workers: Some(vec![]),
            services: vec!["parakeet=spark1".into()],
        };
        let text = configured("# keep me\nversion: 1\n", &c).unwrap();
        assert!(text.starts_with("# keep me\n"), "{text}");
        let v: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(v["hosts"]["spark1"]["address"], "10.0.0.1");
        assert_eq!(v["hosts"]["spark1"]["user"], "nvidia");
        assert_eq!(v["hosts"]["spark1"]["port"], 2222);
        assert_eq!(v["cluster"]["head"], "spark1");
        assert_eq!(v["services"]["parakeet"]["kind"], "stt");
        assert_eq!(v["services"]["parakeet"]["port"], 8000);
    }
}
