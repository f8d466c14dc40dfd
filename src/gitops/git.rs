//! Running the `git` CLI: argv only (never a shell), a timeout on every call, no prompts,
//! and secrets kept out of every message.
//!
//! Owns: the environment every git process gets (`GIT_TERMINAL_PROMPT=0`, no askpass,
//! `LC_ALL=C`, only the ssh/https/http/git/file transports, `GIT_SSH_COMMAND` naming the
//! controller's key, a token as an `http.extraHeader` passed through `GIT_CONFIG_*`
//! variables so it is in no argv), and [`Secrets::redact`], which every output that
//! becomes a message goes through. Must not: decide what to run (`repo.rs` does), log a
//! token or the header derived from it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

/// Why a git command failed. Messages are already redacted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("cannot run git ({0}); install git (Debian: `apt-get install git`)")]
    Missing(String),
    /// It ran longer than its timeout and was killed.
    #[error("`git {what}` took longer than {secs} s and was stopped")]
    Timeout {
        /// The subcommand.
        what: String,
        /// The limit.
        secs: u64,
    },
    /// It exited non-zero.
    #[error("`git {what}` failed: {stderr}")]
    Failed {
        /// The subcommand.
        what: String,
        /// Its exit code.
        code: Option<i32>,
        /// Its standard error (redacted, clipped).
        stderr: String,
    },
    /// Something this module checks itself (not a git work tree, a detached HEAD, …).
    #[error("{0}")]
    Setup(String),
}

/// What must never appear in a message: the token, and the header built from it.
#[derive(Clone, Default)]
pub struct Secrets {
    words: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} hidden)", self.words.len())
    }
}

impl Secrets {
    /// Adds a secret (empty strings are ignored).
    pub fn add(&mut self, s: &str) {
        if !s.trim().is_empty() {
            self.words.push(s.trim().to_string());
        }
    }

    /// `text` with every secret and every URL password replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for w in &self.words {
            out = out.replace(w.as_str(), "***");
        }
        redact_url_passwords(&out)
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`, anywhere in `text`.
pub fn redact_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                        out.push_str(&authority[at..]);
                    }
                    None => out.push_str(authority),
                }
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

use crate::base64::base64;

/// Quotes `s` for the POSIX shell git runs `GIT_SSH_COMMAND` with.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// How git reaches a remote: the SSH key and known-hosts file, or a token.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Private key for ssh remotes.
    pub ssh_key: Option<PathBuf>,
    /// Where ssh remembers the remote's host key (accept-new, then pinned).
    pub known_hosts: Option<PathBuf>,
    /// `Authorization: Basic …` for https remotes (secret).
    pub http_header: Option<String>,
    /// What to keep out of messages.
    pub secrets: Secrets,
}

impl Access {
    /// Access with a token read from `token_file`; `user` is the URL's user, if any.
    pub fn with_token(mut self, token: &str, user: Option<&str>) -> Access {
        let token = token.trim();
        if token.is_empty() {
            return self;
        }
        let user = user.unwrap_or("x-access-token");
        let basic = base64(format!("{user}:{token}").as_bytes());
        self.secrets.add(token);
        self.secrets.add(&basic);
        self.http_header = Some(format!("Authorization: Basic {basic}"));
        self
    }
}

/// Who a commit is by (author and committer).
#[derive(Clone, Debug)]
pub struct Who {
    /// Author name and e-mail.
    pub author: (String, String),
    /// Committer name and e-mail.
    pub committer: (String, String),
}

/// One git invocation, built up and then run.
pub struct Git<'a> {
    dir: &'a Path,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    access: Option<&'a Access>,
}

/// Timeout of local commands.
pub const LOCAL: Duration = Duration::from_secs(20);
/// Timeout of commands that reach a remote.
pub const NETWORK: Duration = Duration::from_secs(60);

impl<'a> Git<'a> {
    /// `git <args>` in `dir`.
    pub fn new<S: AsRef<str>>(dir: &'a Path, args: &[S]) -> Git<'a> {
        Git {
            dir,
            args: args.iter().map(|a| a.as_ref().to_string()).collect(),
            env: Vec::new(),
            stdin: None,
            timeout: LOCAL,
            access: None,
        }
    }

    /// Sets an environment variable for this call.
    pub fn env(mut self, k: &str, v: impl Into<String>) -> Self {
        self.env.push((k.to_string(), v.into()));
        self
    }

    /// Feeds `bytes` on stdin (else stdin is /dev/null).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// A command that reaches the remote: longer timeout, the remote's credentials.
    pub fn remote(mut self, access: &'a Access) -> Self {
        self.timeout = NETWORK;
        self.access = Some(access);
        self
    }

    /// Author and committer of a commit this call makes.
    pub fn who(self, who: &Who) -> Self {
        self.env("GIT_AUTHOR_NAME", &who.author.0)
            .env("GIT_AUTHOR_EMAIL", &who.author.1)
            .env("GIT_COMMITTER_NAME", &who.committer.0)
            .env("GIT_COMMITTER_EMAIL", &who.committer.1)
    }

    fn what(&self) -> String {
        self.args
            .iter()
            .find(|a| !a.starts_with('-'))
            .cloned()
            .unwrap_or_default()
    }

    /// Runs it; stdout on exit 0, else the error with stderr.
    pub async fn run(self) -> Result<String, GitError> {
        let out = self.run_bytes().await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Runs it; stdout as bytes on exit 0.
    pub async fn run_bytes(self) -> Result<Vec<u8>, GitError> {
        let out = self.output_raw().await?;
        if out.0 == Some(0) {
            Ok(out.1)
        } else {
            Err(GitError::Failed {
                what: out.3,
                code: out.0,
                stderr: out.2,
            })
        }
    }

    /// Runs it; `(exit code, stdout, stderr, subcommand)` whatever the exit code.
    pub async fn output(self) -> Result<(Option<i32>, String, String, String), GitError> {
        let (code, out, err, what) = self.output_raw().await?;
        Ok((code, String::from_utf8_lossy(&out).into_owned(), err, what))
    }

    async fn output_raw(self) -> Result<(Option<i32>, Vec<u8>, String, String), GitError> {
        let what = self.what();
        let mut cmd = tokio::process::Command::new("git");
        cmd.args(&self.args)
            .current_dir(self.dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env("GIT_ALLOW_PROTOCOL", "ssh:https:http:git:file")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut secrets = Secrets::default();
        if let Some(a) = self.access {
            secrets = a.secrets.clone();
            let mut ssh = String::from("ssh -o BatchMode=yes -o ConnectTimeout=15");
            if let Some(k) = &a.ssh_key {
                ssh.push_str(&format!(
                    " -o IdentitiesOnly=yes -i {}",
                    sh_quote(&k.to_string_lossy())
                ));
            }
            if let Some(kh) = &a.known_hosts {
                ssh.push_str(&format!(
                    " -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
                    sh_quote(&kh.to_string_lossy())
                ));
            }
            cmd.env("GIT_SSH_COMMAND", ssh);
            if let Some(h) = &a.http_header {
                cmd.env("GIT_CONFIG_COUNT", "1")
                    .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                    .env("GIT_CONFIG_VALUE_0", h);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| GitError::Missing(e.to_string()))?;
        if let (Some(bytes), Some(mut sin)) = (self.stdin, child.stdin.take()) {
            // A small write; git reads all of its stdin before answering.
            let _ = sin.write_all(&bytes).await;
            drop(sin);
        }
        let secs = self.timeout.as_secs();
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(GitError::Missing(e.to_string())),
            Err(_) => return Err(GitError::Timeout { what, secs }),
        };
        let stdout = out.stdout;
        let stderr = secrets.redact(String::from_utf8_lossy(&out.stderr).trim());
        let stderr = crate::model::limits::clip_to(&stderr, 1500).into_owned();
        Ok((out.status.code(), stdout, stderr, what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_url_passwords_are_redacted() {
        let a = Access::default().with_token("s3cr3t-token\n", None);
        let header = a.http_header.clone().expect("header");
        let msg = format!(
            "fatal: auth failed for https://bob:hunter2@git.example/r.git with {header} and s3cr3t-token"
        );
        let r = a.secrets.redact(&msg);
        assert!(!r.contains("s3cr3t-token"), "{r}");
        assert!(!r.contains("hunter2"), "{r}");
        assert!(!r.contains(&base64(b"x-access-token:s3cr3t-token")), "{r}");
        assert!(r.contains("https://bob:***@git.example/r.git"), "{r}");
        assert_eq!(
            redact_url_passwords("ssh://git@host/x and file:///tmp/a"),
            "ssh://git@host/x and file:///tmp/a"
        );
        assert!(!format!("{:?}", a.secrets).contains("s3cr3t"));
    }

    #[test]
    fn ssh_command_quotes_paths() {
        assert_eq!(sh_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
