//! The russh client handler: decides whether to trust the server's host key, using
//! the host's [`HostKeyPolicy`], and logs a refused (changed) key in the server log, at
//! most once per host per [`MISMATCH_LOG_EVERY`] (a down-and-retrying host would
//! otherwise log it every few seconds). It must not do anything else.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// A host-key mismatch of one host is logged at most this often.
pub(super) const MISMATCH_LOG_EVERY: Duration = Duration::from_secs(60);

/// When each host's mismatch was last logged (`label address:port` → instant).
static MISMATCH_LOGGED: Mutex<BTreeMap<String, Instant>> = Mutex::new(BTreeMap::new());

/// Whether `key`'s mismatch is due to be logged at `now` (and, if so, notes it).
fn mismatch_due(logged: &mut BTreeMap<String, Instant>, key: &str, now: Instant) -> bool {
    match logged.get(key) {
        Some(at) if now.saturating_duration_since(*at) < MISMATCH_LOG_EVERY => false,
        _ => {
            logged.insert(key.to_string(), now);
            true
        }
    }
}

impl Client {
    /// Logs a refused host key: host, address, both fingerprints (public data, no secret)
    /// and what to do. Rate-limited per host.
    fn log_mismatch(&self, expected_fp: &str, got_fp: &str, fix: &str) {
        let key = format!("{} {}:{}", self.host, self.address, self.port);
        let due = {
            let mut logged = MISMATCH_LOGGED.lock().unwrap_or_else(|p| p.into_inner());
            mismatch_due(&mut logged, &key, Instant::now())
        };
        if due {
            tracing::error!(
                host = %self.host,
                address = %format!("{}:{}", self.address, self.port),
                expected = %expected_fp,
                presented = %got_fp,
                "SSH host key mismatch: {} ({}:{}) presented {got_fp}, expected {expected_fp}; \
                 refusing to connect (a reinstalled host, or someone in the middle). If the \
                 change is expected: {fix}. Logged at most once a minute per host.",
                self.host,
                self.address,
                self.port,
            );
        }
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
                self.log_mismatch(&expected_fp, &got_fp, &fix);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_is_logged_once_per_host_per_minute() {
        let mut logged = BTreeMap::new();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // (host, seconds after t0, logged?)
        let cases = [
            ("spark1", 0, true),
            ("spark1", 1, false),
            ("spark2", 1, true),
            ("spark1", 59, false),
            ("spark1", 60, true),
            ("spark1", 61, false),
            ("spark2", 61, true),
        ];
        for (host, at, expected) in cases {
            assert_eq!(
                mismatch_due(&mut logged, host, t0 + s(at)),
                expected,
                "{host} at {at} s"
            );
        }
    }
}
