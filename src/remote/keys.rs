//! Our SSH identity and the trust we place in hosts' keys.
//!
//! - [`load_or_create_identity`]: `<data_dir>/id_ed25519` (+ `.pub`), created on first
//!   start (mode 0600, OpenSSH format); an existing key with any group/other permission
//!   bit is refused with the `chmod 600` to run. RSA is refused (RUSTSEC-2023-0071: the `rsa`
//!   crate's Marvin timing side channel), so russh is built without it.
//! - [`HostKeyPolicy`]: a pinned key/fingerprint, or OpenSSH-style "accept-new" with a
//!   known_hosts file we append to. A changed key is always refused.
//!
//! Only plain `host` / `[host]:port` known_hosts entries are understood; hashed entries
//! (`|1|...`) and markers (`@revoked`, `@cert-authority`) are skipped. This module does
//! file IO on the data dir only; it never talks to the network.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::{HashAlg, LineEnding};
use russh::keys::{Algorithm, PrivateKey, PublicKey};

/// Identity and host-key errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: RSA keys are not supported (RUSTSEC-2023-0071). Make an ed25519 key instead: ssh-keygen -t ed25519 -f {path} -N ''  (then add the new {path}.pub to the hosts' authorized_keys)")]
    RsaUnsupported { path: String },
    #[error("{path}: {algorithm} keys are not supported; use ed25519: ssh-keygen -t ed25519 -f {path} -N ''")]
    Unsupported { path: String, algorithm: String },
    #[error("{path}: cannot read the SSH key: {detail}. Is it an unencrypted OpenSSH private key? Make one with: ssh-keygen -t ed25519 -f {path} -N ''")]
    Parse { path: String, detail: String },
    #[error("{path}: {detail}")]
    Io { path: String, detail: String },
    #[error("{path}: the private key is readable by others (mode {mode:03o}); ssh refuses such keys and so does spark-control. Run: chmod 600 {path}")]
    Unprotected { path: String, mode: u32 },
    #[error("pinned host key {0:?} is neither an OpenSSH public key line (\"ssh-ed25519 AAAA...\") nor a fingerprint (\"SHA256:...\")")]
    BadPin(String),
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> KeyError {
    KeyError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Load `<data_dir>/id_ed25519`, creating it (and `.pub`) if missing.
pub fn load_or_create_identity(data_dir: &Path) -> Result<PrivateKey, KeyError> {
    let path = data_dir.join("id_ed25519");
    if path.exists() {
        return load_identity(&path);
    }
    std::fs::create_dir_all(data_dir).map_err(|e| io_err(data_dir, e))?;
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(comment());
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| io_err(&path, e))?;
    write_private(&path, pem.as_bytes())?;
    let pub_path = path.with_extension("pub");
    std::fs::write(&pub_path, format!("{}\n", public_line(&key)))
        .map_err(|e| io_err(&pub_path, e))?;
    tracing::info!(path = %path.display(), "created SSH identity");
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    f.write_all(bytes).map_err(|e| io_err(path, e))
}

/// Load an existing private key file; only ed25519 is accepted, and only when no group
/// or other permission bit is set (as OpenSSH's "UNPROTECTED PRIVATE KEY FILE" check).
pub fn load_identity(path: &Path) -> Result<PrivateKey, KeyError> {
    let p = path.display().to_string();
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(|e| io_err(path, e))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Unprotected { path: p, mode });
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    // The PEM header of an RSA key (split so no file here looks like a committed key).
    const RSA_PEM: &str = concat!("BEGIN RSA ", "PRIVATE KEY");
    if text.contains(RSA_PEM) {
        return Err(KeyError::RsaUnsupported { path: p });
    }
    let key = match PrivateKey::from_openssh(text.as_bytes()) {
        Ok(k) => k,
        Err(e) => {
            // Without russh's rsa feature an RSA key may not even parse; say why.
            let pub_text = std::fs::read_to_string(path.with_extension("pub")).unwrap_or_default();
            if pub_text.starts_with("ssh-rsa") {
                return Err(KeyError::RsaUnsupported { path: p });
            }
            return Err(KeyError::Parse {
                path: p,
                detail: e.to_string(),
            });
        }
    };
    match key.algorithm() {
        Algorithm::Ed25519 => {}
        Algorithm::Rsa { .. } => return Err(KeyError::RsaUnsupported { path: p }),
        other => {
            return Err(KeyError::Unsupported {
                path: p,
                algorithm: other.to_string(),
            })
        }
    }
    if key.is_encrypted() {
        return Err(KeyError::Parse {
            path: p,
            detail: "the key is passphrase-protected".into(),
        });
    }
    Ok(key)
}

fn comment() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("spark-control@{host}")
}

/// `ssh-ed25519 AAAA... spark-control@<hostname>`: the line for authorized_keys.
pub fn public_line(key: &PrivateKey) -> String {
    let mut public = key.public_key().clone();
    if public.comment().is_empty() {
        public.set_comment(comment());
    }
    public
        .to_openssh()
        .unwrap_or_else(|_| format!("{} {}", public.algorithm(), fingerprint(&public)))
}

/// `SHA256:<base64, no padding>`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Which host keys we trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Exactly this key: an OpenSSH public key line (`ssh-ed25519 AAAA...`) or a
    /// `SHA256:...` fingerprint.
    Pinned(String),
    /// Like `StrictHostKeyChecking=accept-new`: unknown hosts are added to this file;
    /// a known host with a different key is refused.
    AcceptNew { known_hosts: PathBuf },
}

/// What a host key check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyVerdict {
    Trusted,
    /// Trusted and newly recorded in known_hosts.
    Learned,
    Changed {
        expected_fp: String,
        got_fp: String,
        /// What to do if the change is expected.
        fix: String,
    },
}

/// The known_hosts name of a host: `host`, or `[host]:port` when port is not 22.
pub fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

impl HostKeyPolicy {
    /// Check `key` presented by `host:port` (may append to known_hosts).
    pub fn check(
        &self,
        host: &str,
        port: u16,
        key: &PublicKey,
    ) -> Result<HostKeyVerdict, KeyError> {
        let got_fp = fingerprint(key);
        match self {
            HostKeyPolicy::Pinned(pin) => {
                let pin = pin.trim();
                let expected_fp = if pin.starts_with("SHA256:") {
                    pin.to_string()
                } else {
                    let k =
                        PublicKey::from_openssh(pin).map_err(|_| KeyError::BadPin(pin.into()))?;
                    fingerprint(&k)
                };
                let got_fp_for_fix = got_fp.clone();
                if expected_fp == got_fp {
                    Ok(HostKeyVerdict::Trusted)
                } else {
                    Ok(HostKeyVerdict::Changed {
                        expected_fp,
                        got_fp,
                        fix: format!("replace the pinned host key with {got_fp_for_fix}"),
                    })
                }
            }
            HostKeyPolicy::AcceptNew { known_hosts } => {
                let name = known_hosts_name(host, port);
                let text = match std::fs::read_to_string(known_hosts) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(e) => return Err(io_err(known_hosts, e)),
                };
                let known: Vec<PublicKey> = entries_for(&text, &name);
                if known.iter().any(|k| k.key_data() == key.key_data()) {
                    return Ok(HostKeyVerdict::Trusted);
                }
                if let Some(first) = known.first() {
                    return Ok(HostKeyVerdict::Changed {
                        expected_fp: fingerprint(first),
                        got_fp,
                        fix: format!(
                            "remove the line for {name} from {} (ssh-keygen -R '{name}' -f {}) and retry",
                            known_hosts.display(),
                            known_hosts.display()
                        ),
                    });
                }
                append_known_host(known_hosts, &name, key)?;
                Ok(HostKeyVerdict::Learned)
            }
        }
    }
}

/// Fingerprints of the keys a known_hosts file records for `host`:`port` (for showing).
pub fn known_fingerprints(known_hosts: &Path, host: &str, port: u16) -> Vec<String> {
    let text = std::fs::read_to_string(known_hosts).unwrap_or_default();
    entries_for(&text, &known_hosts_name(host, port))
        .iter()
        .map(fingerprint)
        .collect()
}

/// The fingerprint of a pinned host key: a key line's fingerprint, or the pin itself
/// when it is already a `SHA256:` fingerprint.
pub fn pin_fingerprint(pin: &str) -> String {
    let pin = pin.trim();
    if pin.starts_with("SHA256:") {
        return pin.to_string();
    }
    PublicKey::from_openssh(pin).map_or_else(|_| pin.to_string(), |k| fingerprint(&k))
}

/// Keys recorded for `name` in known_hosts text (plain entries only).
fn entries_for(text: &str, name: &str) -> Vec<PublicKey> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('@'))
        .filter_map(|l| {
            let (hosts, key) = l.split_once(char::is_whitespace)?;
            hosts
                .split(',')
                .any(|h| h == name)
                .then(|| PublicKey::from_openssh(key.trim()).ok())
                .flatten()
        })
        .collect()
}

fn append_known_host(path: &Path, name: &str, key: &PublicKey) -> Result<(), KeyError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    }
    let mut k = key.clone();
    k.set_comment("");
    let line = format!("{name} {}\n", k.to_openssh().map_err(|e| io_err(path, e))?);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    // One write of one line with O_APPEND: concurrent appenders do not interleave.
    f.write_all(line.as_bytes()).map_err(|e| io_err(path, e))
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
