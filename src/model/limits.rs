//! Size limits of every user string in desired.yaml that reaches a remote command, a log
//! line or a message, and [`clip`], which every message that echoes user text uses.
//!
//! Why: an unbounded `extra_args` entry used to validate, the old model was stopped, and
//! then sshd dropped the connection on the launch ("Bad packet length": OpenSSH refuses
//! packets over 256 KiB); a megabyte model name became a megabyte error message and log
//! line. With these limits the raw launch command is at most [`LAUNCH_COMMAND_MAX`] bytes,
//! and even quoted in the worst case (every byte a `'`, 4 bytes each) it leaves more than
//! 64 KiB of one SSH packet free ([`SSH_PACKET_MAX`]); both are checked at compile time below.
//!
//! The same numbers appear in the JSON schema (`maxLength`, `maxItems`, `maxProperties`,
//! counted in characters, for editors) and in semantic validation (counted in bytes, what
//! the SSH packet carries), so the file is refused before any step runs. Pure: constants
//! and string helpers only.

use std::borrow::Cow;

/// Host, model and service names (also map keys). See `valid_name`.
pub const NAME: usize = 63;
/// A Hugging Face repo id, `org/name`. See `valid_repo`.
pub const REPO: usize = 96;
/// A host address: an IPv4 address or a DNS name (DNS names are at most 253 bytes).
pub const ADDRESS: usize = 253;
/// An SSH user name (Linux user names are at most 32 bytes).
pub const USER: usize = 32;
/// A pinned host key line or fingerprint (an ed25519 line is about 100 bytes).
pub const HOST_KEY: usize = 1024;
/// Workers of the cluster (each worker's address goes into the launch command).
pub const WORKERS: usize = 15;
/// Entries of `deployments:`.
pub const DEPLOYMENTS: usize = 16;
/// Aliases of one catalog entry (each one is a `--served-model-name` argument).
pub const ALIASES: usize = 8;
/// The launcher directory path.
pub const LAUNCHER: usize = 1024;
/// A docker container name.
pub const CONTAINER: usize = 128;
/// Elements of `launch_template` / `stop_template`.
pub const TEMPLATE_ITEMS: usize = 64;
/// One element of a template.
pub const TEMPLATE_ARG: usize = 1024;
/// All elements of one template together.
pub const TEMPLATE_TOTAL: usize = 4 * 1024;
/// One `extra_args` element.
pub const EXTRA_ARG: usize = 4 * 1024;
/// Elements of one model's `extra_args`.
pub const EXTRA_ARGS_ITEMS: usize = 64;
/// All `extra_args` elements of one model together.
pub const EXTRA_ARGS_TOTAL: usize = 16 * 1024;
/// Variables in one model's `env`.
pub const ENV_ITEMS: usize = 64;
/// One environment variable name.
pub const ENV_KEY: usize = 128;
/// One environment variable value.
pub const ENV_VALUE: usize = 4 * 1024;
/// All names and values of one model's `env` together.
pub const ENV_TOTAL: usize = 8 * 1024;
/// A model's `description` (shown in the UI).
pub const DESCRIPTION: usize = 512;
/// A service's `model` (shown in `/api/endpoints`).
pub const SERVICE_MODEL: usize = 256;
/// A git remote URL (`git.remote`).
pub const GIT_URL: usize = 1024;
/// A git branch name (`git.branch`).
pub const GIT_REF: usize = 255;
/// A service's `health_path`.
pub const HEALTH_PATH: usize = 1024;
/// A pinned launcher commit (a full SHA-1 hash).
pub const PIN: usize = 40;

/// The largest raw launch command these limits allow: both templates, the extra args, the
/// env, the head's and every worker's address, the launcher path and the repo, the served names (catalog name, repo, aliases), plus 1 KiB
/// for the flags spark-control adds itself.
pub const LAUNCH_COMMAND_MAX: usize = 2 * TEMPLATE_TOTAL
    + EXTRA_ARGS_TOTAL
    + ENV_TOTAL
    + (WORKERS + 1) * (ADDRESS + 1)
    + LAUNCHER
    + REPO
    + (ALIASES + 2) * (REPO + 1)
    + 1024;

/// The largest SSH packet OpenSSH accepts (`PACKET_MAX_SIZE`, 256 KiB).
pub const SSH_PACKET_MAX: usize = 256 * 1024;

// Worst-case quoting (`'` → `'\''`: 4 bytes) of the largest launch command, plus 4 KiB for
// the preamble and the channel request's framing, leaves more than 64 KiB of the packet free.
const _: () = assert!(4 * LAUNCH_COMMAND_MAX + 4 * 1024 + 64 * 1024 <= SSH_PACKET_MAX);
const _: () = assert!(LAUNCH_COMMAND_MAX <= 48 * 1024);

/// How many characters of user text a message shows.
pub const CLIP_CHARS: usize = 60;

/// User text as a message shows it: the text itself when short, else its first
/// [`CLIP_CHARS`] characters, `…` and its size (`abc…abc… (1048576 bytes)`).
pub fn clip(s: &str) -> Cow<'_, str> {
    clip_to(s, CLIP_CHARS)
}

/// [`clip`] with another length, for whole messages (which may quote a clipped value).
pub fn clip_to(s: &str, chars: usize) -> Cow<'_, str> {
    match s.char_indices().nth(chars) {
        None => Cow::Borrowed(s),
        Some((end, _)) => Cow::Owned(format!("{}… ({} bytes)", &s[..end], s.len())),
    }
}

/// `"<field> is N bytes; the limit is M bytes"` when `len` is over `max`.
pub fn over(what: &str, len: usize, max: usize) -> Option<String> {
    (len > max).then(|| format!("{what} is {len} bytes; the limit is {max} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(clip("qwen36"), "qwen36");
        let exact = "a".repeat(CLIP_CHARS);
        assert_eq!(clip(&exact), exact.as_str());
        let long = "é".repeat(1000);
        let c = clip(&long);
        assert_eq!(c, format!("{}… (2000 bytes)", "é".repeat(CLIP_CHARS)));
    }

    #[test]
    fn over_says_size_and_limit() {
        assert_eq!(over("x", 3, 3), None);
        assert_eq!(
            over("extra_args[0]", 5000, EXTRA_ARG).as_deref(),
            Some("extra_args[0] is 5000 bytes; the limit is 4096 bytes")
        );
    }
}
