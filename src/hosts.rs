//! The host pool: one transport per configured host, kept across desired-file reloads.
//!
//! A host's transport (and so its SSH connection) is rebuilt only when its connection
//! settings change. `Hosts` is a cheap snapshot handed to the observer and executor.
//! Owns which transport a host gets (SSH with the controller's key, local, or the demo's
//! simulated local hosts); knows nothing about models.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;

use crate::model::desired::{Desired, Host, TransportKind};
use crate::remote::keys::HostKeyPolicy;
use crate::remote::local::LocalHost;
use crate::remote::ssh::{SshConfig, SshHost};
use crate::remote::Transport;

/// How transports are made.
#[derive(Clone)]
pub enum Connector {
    /// Real hosts: SSH with this identity, host keys pinned or learned into `known_hosts`.
    Ssh {
        /// The controller's identity.
        key: Arc<PrivateKey>,
        /// `<data dir>/known_hosts`.
        known_hosts: PathBuf,
    },
    /// Simulated hosts (the demo): every host runs locally with its own environment.
    Sim {
        /// Per host name, the environment of its simulated login.
        env: BTreeMap<String, Vec<(String, String)>>,
    },
}

/// A snapshot of the transports, by host name.
#[derive(Clone, Default)]
pub struct Hosts {
    map: Arc<BTreeMap<String, Transport>>,
}

impl Hosts {
    /// The transport of a host.
    pub fn get(&self, name: &str) -> Option<Transport> {
        self.map.get(name).cloned()
    }
    /// SSH connections opened so far, per host.
    pub fn connections(&self) -> BTreeMap<String, u64> {
        self.map
            .iter()
            .map(|(k, t)| (k.clone(), t.connections_opened()))
            .collect()
    }
}

/// Owns the transports and rebuilds them when the desired hosts change.
pub struct HostPool {
    connector: Connector,
    built: BTreeMap<String, (Host, u64, Transport)>,
    snapshot: Hosts,
}

impl HostPool {
    /// An empty pool.
    pub fn new(connector: Connector) -> Self {
        HostPool {
            connector,
            built: BTreeMap::new(),
            snapshot: Hosts::default(),
        }
    }

    /// Brings the pool in line with `d.hosts`; returns the snapshot.
    pub fn sync(&mut self, d: &Desired) -> Hosts {
        let mut changed = false;
        self.built.retain(|name, _| {
            let keep = d.hosts.contains_key(name);
            changed |= !keep;
            keep
        });
        for (name, h) in &d.hosts {
            let same = self
                .built
                .get(name)
                .is_some_and(|(old, t, _)| old == h && *t == d.ssh.connect_timeout_secs);
            if !same {
                let t = self.make(name, h, d.ssh.connect_timeout_secs);
                self.built
                    .insert(name.clone(), (h.clone(), d.ssh.connect_timeout_secs, t));
                changed = true;
            }
        }
        if changed {
            self.snapshot = Hosts {
                map: Arc::new(
                    self.built
                        .iter()
                        .map(|(k, (_, _, t))| (k.clone(), t.clone()))
                        .collect(),
                ),
            };
        }
        self.snapshot.clone()
    }

    fn make(&self, name: &str, h: &Host, connect_secs: u64) -> Transport {
        match &self.connector {
            Connector::Sim { env } => Transport::Local(LocalHost::new(
                name,
                env.get(name).cloned().unwrap_or_default(),
            )),
            Connector::Ssh { key, known_hosts } => {
                if h.transport == TransportKind::Local {
                    return Transport::Local(LocalHost::new(name, Vec::new()));
                }
                let policy = match &h.host_key {
                    Some(k) => HostKeyPolicy::Pinned(k.clone()),
                    None => HostKeyPolicy::AcceptNew {
                        known_hosts: known_hosts.clone(),
                    },
                };
                let mut cfg = SshConfig::new(name, &h.address, &h.user, key.clone(), policy);
                cfg.port = h.port;
                cfg.connect_timeout = Duration::from_secs(connect_secs);
                Transport::Ssh(SshHost::new(cfg))
            }
        }
    }
}
