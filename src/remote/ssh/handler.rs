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
            }) => Err(ClientError::HostKey(RemoteError::HostKeyChanged {
                host: self.host.clone(),
                expected_fp,
                got_fp,
                fix,
            })),
            Err(e) => Err(ClientError::HostKey(RemoteError::Key(e))),
        }
    }
}
