//! The russh client handler: decides whether to trust the server's host key, using
//! the host's [`HostKeyPolicy`]. It must not do anything else.

use russh::client;
use russh::keys::PublicKeyOrCertificate;

use crate::remote::keys::{self, HostKeyPolicy, HostKeyVerdict};
use crate::remote::RemoteError;

/// The russh event handler: checks the host key.
pub(super) struct Client {
    pub(super) host: String,
    pub(super) address: String,
    pub(super) port: u16,
    pub(super) policy: HostKeyPolicy,
}

#[derive(Debug)]
pub(super) enum ClientError {
    Ssh(russh::Error),
    HostKey(RemoteError),
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Ssh(e)
    }
}

impl client::Handler for Client {
    type Error = ClientError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Err(ClientError::HostKey(RemoteError::Protocol {
                host: self.host.clone(),
                detail:
                    "the server presented a host certificate; only plain host keys are supported"
                        .into(),
            }));
        };
        match self.policy.check(&self.address, self.port, key) {
            Ok(HostKeyVerdict::Trusted) => Ok(true),
            Ok(HostKeyVerdict::Learned) => {
                tracing::info!(host = %self.host, fingerprint = %keys::fingerprint(key), "new host key recorded");
                Ok(true)
            }
            Ok(HostKeyVerdict::Changed {
                expected_fp,
                got_fp,
                fix,
            }) => {
                let key = format!("{}:{}", self.address, self.port);
                if MISMATCH_LOG.should_log(&key, std::time::Instant::now()) {
                    tracing::error!(
                        host = %self.host,
                        address = %key,
                        expected = %expected_fp,
                        got = %got_fp,
                        "HOST KEY MISMATCH: the server's host key is not the one pinned or \
                         remembered; refusing to connect (possible man-in-the-middle, or the \
                         host was reinstalled). {fix} (logged at most once a minute per host)"
                    );
                }
                Err(ClientError::HostKey(RemoteError::HostKeyChanged {
                    host: self.host.clone(),
                    expected_fp,
                    got_fp,
                    fix,
                }))
            }
            Err(e) => Err(ClientError::HostKey(RemoteError::Key(e))),
        }
    }
}

/// Host-key mismatches already logged, per address: a refused host is retried every few
/// seconds, the log says so once a minute.
static MISMATCH_LOG: RateLog = RateLog::new(std::time::Duration::from_secs(60));

/// "Log this key at most once per window."
pub(super) struct RateLog {
    window: std::time::Duration,
    last: std::sync::Mutex<Option<std::collections::HashMap<String, std::time::Instant>>>,
}

impl RateLog {
    pub(super) const fn new(window: std::time::Duration) -> RateLog {
        RateLog {
            window,
            last: std::sync::Mutex::new(None),
        }
    }

    /// Whether `key` may be logged at `now` (and, if so, records it).
    pub(super) fn should_log(&self, key: &str, now: std::time::Instant) -> bool {
        let Ok(mut guard) = self.last.lock() else {
            return true;
        };
        let map = guard.get_or_insert_with(Default::default);
        match map.get(key) {
            Some(at) if now.duration_since(*at) < self.window => false,
            _ => {
                map.insert(key.to_string(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RateLog;
    use std::time::{Duration, Instant};

    #[test]
    fn once_per_window_per_key() {
        let log = RateLog::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(log.should_log("a:22", t0));
        assert!(!log.should_log("a:22", t0 + Duration::from_secs(59)));
        assert!(log.should_log("b:22", t0 + Duration::from_secs(1)));
        assert!(log.should_log("a:22", t0 + Duration::from_secs(61)));
    }
}
