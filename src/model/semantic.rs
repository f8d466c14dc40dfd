//! Stage 3 of validation: what the file means. Names, references between sections,
//! conflicts (two services on one port), ranges the schema cannot express, and warnings
//! for valid-but-risky settings (mDNS `.local` addresses). Pure.

use std::collections::BTreeMap;

use super::catalog::{bundled_names, catalog};
use super::desired::{Cluster, Desired, Mode, UpdatePolicy};
use super::diag::Severity::{Error, Warning};
use super::limits::clip;
use super::validate::{suggest, Sink};
use super::yamlpos::escape_segment;

/// Names of hosts, models and services: `[a-z0-9][a-z0-9._-]*`, at most 63 characters.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.as_bytes()[0].is_ascii_lowercase() | s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// A Hugging Face repo id: `org/name`, each part `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 96
/// characters in all.
pub fn valid_repo(s: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty()
            && p.as_bytes()[0].is_ascii_alphanumeric()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && !p.contains("..")
    };
    s.len() <= 96 && matches!(s.split_once('/'), Some((o, n)) if part(o) && part(n))
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn valid_container(s: &str) -> bool {
    !s.is_empty()
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn p(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|s| format!("/{}", escape_segment(s)))
        .collect()
}

const NAME_RULE: &str =
    "names use lowercase letters, digits, `.`, `_` and `-`, start with a letter or digit";

/// Runs every meaning check.
pub(crate) fn check(d: &Desired, s: &mut Sink<'_>) {
    if d.version != 1 {
        s.at_value(
            Error,
            "/version",
            format!(
                "unsupported version {}; this spark-control reads `version: 1`",
                d.version
            ),
        );
    }
    let host_names: Vec<String> = d.hosts.keys().cloned().collect();
    super::sizes::check(d, s);
    hosts(d, s);
    cluster(d, s, &host_names);
    models(d, s);
    super::semantic_deploy::names(d, s);
    super::semantic_deploy::policies(d, s);
    services(d, s, &host_names);
    updates(d, s);
    timeouts(d, s);
    git(d, s);
}

fn hosts(d: &Desired, s: &mut Sink<'_>) {
    for (name, h) in &d.hosts {
        if !valid_name(name) {
            s.at_key(
                Error,
                &p(&["hosts", name]),
                format!("host name `{}` is not allowed: {NAME_RULE}", clip(name)),
            );
        }
        let a = h.address.trim();
        if a.is_empty() || a.contains(char::is_whitespace) || a.starts_with('-') {
            s.at_value(
                Error,
                &p(&["hosts", name, "address"]),
                format!(
                    "`{}` is not a host address; write an IPv4 address such as 192.168.1.101",
                    clip(&h.address)
                ),
            );
        } else if a.ends_with(".local") || a.ends_with(".local.") {
            s.at_value(Warning, &p(&["hosts", name, "address"]), format!("`{}` is an mDNS name: it often resolves to IPv6 first while vLLM binds IPv4 only; use the host's IPv4 address", clip(a)));
        }
        if let Some(i) = &h.interconnect {
            if i.parse::<std::net::Ipv4Addr>().is_err() {
                s.at_value(
                    Error,
                    &p(&["hosts", name, "interconnect"]),
                    format!(
                        "`{}` is not an IPv4 address; `interconnect` is the host's ConnectX-7 address (`ip -4 addr show` on the Spark; often 192.168.100.x or 169.254.x.x), which the launcher is given in `-n`; `address` stays the LAN address for SSH and HTTP",
                        clip(i)
                    ),
                );
            }
        }
        let u = h.user.as_str();
        if u.is_empty()
            || u.starts_with('-')
            || !u
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            s.at_value(
                Error,
                &p(&["hosts", name, "user"]),
                format!("`{}` is not a valid user name", clip(u)),
            );
        }
        if h.port == 0 {
            s.at_value(
                Error,
                &p(&["hosts", name, "port"]),
                "port 0 is not a valid SSH port",
            );
        }
        if let Some(k) = &h.host_key {
            let k = k.trim();
            if k.starts_with("ssh-rsa") {
                s.at_value(Error, &p(&["hosts", name, "host_key"]), "RSA host keys are not supported (the rsa feature is off, RUSTSEC-2023-0071); pin the host's ed25519 key: `ssh-keyscan -t ed25519 <address>`");
            } else if !(k.starts_with("ssh-ed25519 ")
                || k.starts_with("ecdsa-sha2-")
                || k.starts_with("SHA256:"))
            {
                s.at_value(Error, &p(&["hosts", name, "host_key"]), "expected a public key line (`ssh-ed25519 AAAA…`) or a fingerprint (`SHA256:…`)");
            }
        }
    }
}

fn unknown_host(s: &mut Sink<'_>, pointer: &str, got: &str, known: &[String]) {
    let hint = match suggest(got, known) {
        Some(k) => format!("; did you mean `{k}`?"),
        None if known.is_empty() => {
            "; no hosts are configured yet (add them under `hosts:`)".into()
        }
        None => format!("; configured hosts: {}", known.join(", ")),
    };
    s.at_value(
        Error,
        pointer,
        format!("unknown host `{}`{hint}", clip(got)),
    );
}

fn cluster(d: &Desired, s: &mut Sink<'_>, known: &[String]) {
    if d.cluster.is_none() && !d.uses_deployments() {
        if let Some(m) = &d.active_model {
            s.at_value(Error, "/active_model", format!("`{}` is active but no `cluster:` is configured (set cluster.head to the host that runs the launcher), or set `active_model: null`", clip(m)));
        }
        return;
    }
    super::semantic_deploy::shape(d, s);
    for dep in d.deployments() {
        one_cluster(d, s, known, &dep.cluster, &dep.pointer);
    }
    super::semantic_deploy::check(d, s);
}

/// The checks of one deployment's hosts, port and launcher settings; `base` is its
/// section's pointer (`/cluster`, `/deployments/N`).
fn one_cluster(d: &Desired, s: &mut Sink<'_>, known: &[String], c: &Cluster, base: &str) {
    if !d.hosts.contains_key(&c.head) {
        unknown_host(s, &format!("{base}/head"), &c.head, known);
    }
    let mut seen = BTreeMap::new();
    for (i, w) in c.workers.iter().enumerate() {
        let ptr = format!("{base}/workers/{i}");
        if !d.hosts.contains_key(w) {
            unknown_host(s, &ptr, w, known);
        }
        if *w == c.head {
            s.at_value(
                Error,
                &ptr,
                format!("`{}` is the head; a host cannot be its own worker", clip(w)),
            );
        }
        if seen.insert(w.clone(), i).is_some() {
            s.at_value(Error, &ptr, format!("worker `{}` is listed twice", clip(w)));
        }
    }
    if c.port == 0 {
        s.at_value(
            Error,
            &format!("{base}/port"),
            "port 0 is not a valid vLLM port",
        );
    }
    if c.launcher.trim().is_empty() {
        s.at_value(
            Error,
            &format!("{base}/launcher"),
            "the launcher directory is empty; the default is ~/spark-vllm-docker",
        );
    }
    if !valid_container(&c.container) {
        s.at_value(
            Error,
            &format!("{base}/container"),
            format!("`{}` is not a docker container name", clip(&c.container)),
        );
    }
    if let Some(t) = &c.launch_template {
        if !t.iter().any(|a| a.contains("{repo}")) {
            s.at_value(
                Error,
                &format!("{base}/launch_template"),
                "the launch template never mentions `{repo}`, so it cannot launch the chosen model (unset it: the launcher driver builds the command)",
            );
        }
        if !t.iter().any(|a| a == "exec") {
            s.at_value(
                Error,
                &format!("{base}/launch_template"),
                "the launch template has no `exec` element: the model runs as `launch-cluster.sh … exec vllm serve …` (unset it: the launcher driver builds the command)",
            );
        }
    }
    if let Some(t) = &c.stop_template {
        if !t.iter().any(|a| a.contains("{nodes}")) {
            s.at_value(
                Error,
                &format!("{base}/stop_template"),
                "the stop template does not pass `{nodes}`: without `-n` the launcher autodiscovers, finds no peers and stops the head only (unset it: the launcher driver builds the command)",
            );
        }
    }
    if c.detach.is_some() {
        s.at_value(
            super::diag::Severity::Warning,
            &format!("{base}/detach"),
            "`detach` is ignored: spark-control starts the launcher detached itself, on every launcher generation; delete the line",
        );
    }
}

fn models(d: &Desired, s: &mut Sink<'_>) {
    let cat = catalog(d);
    let names: Vec<String> = cat.keys().cloned().collect();
    let deployments = d.deployments();
    let workers = deployments
        .iter()
        .map(|x| x.cluster.workers.len())
        .max()
        .unwrap_or(0);
    let active_anywhere = |name: &str| {
        deployments
            .iter()
            .any(|x| x.active_model.as_deref() == Some(name))
    };
    for (name, m) in &d.models {
        let base = p(&["models", name]);
        if !valid_name(name) {
            s.at_key(
                Error,
                &base,
                format!("model name `{}` is not allowed: {NAME_RULE}", clip(name)),
            );
        }
        if !valid_repo(&m.repo) {
            s.at_value(Error, &format!("{base}/repo"), format!("`{}` is not a Hugging Face repo; write `org/name`, e.g. RedHatAI/Qwen3.6-35B-A3B-NVFP4", clip(&m.repo)));
        }
        if m.start_timeout_secs == Some(0) {
            s.at_value(
                Error,
                &format!("{base}/start_timeout_secs"),
                "must be more than 0 seconds",
            );
        }
        if m.mode == Mode::Cluster && workers == 0 && !active_anywhere(name) {
            s.at_value(Warning, &format!("{base}/mode"), "a cluster model needs workers, and no deployment has any (`cluster.workers` is empty): it cannot be activated yet");
        }
    }
    for dep in &deployments {
        let Some(active) = &dep.active_model else {
            continue;
        };
        let ptr = dep.active_pointer.as_str();
        match cat.get(active) {
            None => {
                let hint = match suggest(active, &names) {
                    Some(k) => format!("did you mean `{k}`?"),
                    None => format!("the catalog has: {}", names.join(", ")),
                };
                s.at_value(Error, ptr, format!("`{}` is not in the model catalog; {hint} (add custom models under `models:`)", clip(active)));
            }
            Some(e) if e.spec.mode == Mode::Cluster && dep.cluster.workers.is_empty() => {
                let msg = if d.uses_deployments() {
                    format!("`{}` is a cluster model but deployment `{}` has one host (no `workers:`); activate it on a deployment with workers or pick a solo model", clip(active), clip(&dep.name))
                } else {
                    format!("`{}` is a cluster model but `cluster.workers` is empty; add a worker host or pick a solo model", clip(active))
                };
                s.at_value(Error, ptr, msg);
            }
            Some(_) => {}
        }
    }
    for (name, o) in &d.overrides {
        let base = p(&["overrides", name]);
        if !cat.contains_key(name) {
            let hint =
                suggest(name, &names).map_or(String::new(), |k| format!("; did you mean `{k}`?"));
            s.at_key(
                Error,
                &base,
                format!(
                    "overrides for `{}`, which is not in the model catalog{hint}",
                    clip(name)
                ),
            );
        }
        if let Some(g) = o.gpu_memory {
            if !(g > 0.0 && g <= 1.0) {
                s.at_value(
                    Error,
                    &format!("{base}/gpu_memory"),
                    format!("{g} is outside (0, 1]: it is a fraction of GPU memory, e.g. 0.80"),
                );
            }
        }
        if let Some(n) = o.max_context {
            if n == 0 || n > 16 * 1024 * 1024 {
                s.at_value(
                    Error,
                    &format!("{base}/max_context"),
                    format!("{n} tokens is not a usable context length (1 … 16777216)"),
                );
            }
        }
        for (i, a) in o.extra_args.iter().enumerate() {
            let ptr = format!("{base}/extra_args/{i}");
            if a.is_empty() {
                s.at_value(Error, &ptr, "empty argument");
            }
            if matches!(a.as_str(), "--port" | "--host")
                || a.starts_with("--port=")
                || a.starts_with("--host=")
            {
                s.at_value(Error, &ptr, format!("`{}` is managed by spark-control (cluster.port; vLLM listens on 0.0.0.0); remove it", clip(a)));
            }
            if a.contains('\n') || a.contains('\0') {
                s.at_value(Error, &ptr, "arguments cannot contain newlines or NUL");
            }
        }
        for k in o.env.keys() {
            if !valid_env_name(k) {
                s.at_key(
                    Error,
                    &format!("{base}/env/{}", escape_segment(k)),
                    format!(
                        "`{}` is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
                        clip(k)
                    ),
                );
            }
        }
    }
    let _ = bundled_names;
}

fn services(d: &Desired, s: &mut Sink<'_>, known: &[String]) {
    let mut ports: BTreeMap<(String, u16), String> = BTreeMap::new();
    for dep in d.deployments() {
        let what = if d.uses_deployments() {
            format!("vLLM of deployment `{}`", dep.name)
        } else {
            "vLLM (cluster.port)".into()
        };
        ports
            .entry((dep.cluster.head.clone(), dep.cluster.port))
            .or_insert(what);
    }
    for (name, svc) in &d.services {
        let base = p(&["services", name]);
        if !valid_name(name) {
            s.at_key(
                Error,
                &base,
                format!("service name `{}` is not allowed: {NAME_RULE}", clip(name)),
            );
        }
        if !d.hosts.contains_key(&svc.host) {
            unknown_host(s, &format!("{base}/host"), &svc.host, known);
        }
        if svc.port == 0 {
            s.at_value(Error, &format!("{base}/port"), "port 0 is not a valid port");
        } else if let Some(other) =
            ports.insert((svc.host.clone(), svc.port), format!("service `{name}`"))
        {
            s.at_value(
                Error,
                &format!("{base}/port"),
                format!(
                    "port {} on `{}` is already used by {other}; pick another port or host",
                    svc.port,
                    clip(&svc.host)
                ),
            );
        }
        if !valid_container(svc.container_name(name)) {
            s.at_value(
                Error,
                &format!("{base}/container"),
                format!(
                    "`{}` is not a docker container name",
                    clip(svc.container_name(name))
                ),
            );
        }
        if !svc.health_path.starts_with('/') {
            s.at_value(
                Error,
                &format!("{base}/health_path"),
                "the health path starts with `/`, e.g. /health",
            );
        }
    }
}

fn updates(d: &Desired, s: &mut Sink<'_>) {
    if let UpdatePolicy::Pin(c) = &d.updates.launcher {
        if c.len() < 7 || c.len() > 40 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
            s.at_value(
                Error,
                "/updates/launcher/pin",
                format!("`{}` is not a commit hash (7 to 40 hex digits)", clip(c)),
            );
        }
    }
    if d.updates.auto_only_when_idle && !matches!(d.updates.launcher, UpdatePolicy::Auto) {
        s.at_value(
            Warning,
            "/updates/auto_only_when_idle",
            "has an effect only with `launcher: auto`",
        );
    }
    if d.updates.check_interval_secs < 60 {
        s.at_value(
            Error,
            "/updates/check_interval_secs",
            "check at most once a minute (60 or more)",
        );
    }
}

fn timeouts(d: &Desired, s: &mut Sink<'_>) {
    for (ptr, v) in [
        ("/ssh/connect_timeout_secs", d.ssh.connect_timeout_secs),
        ("/ssh/command_timeout_secs", d.ssh.command_timeout_secs),
        ("/ssh/poll_interval_secs", d.ssh.poll_interval_secs),
        ("/proxy/timeout_secs", d.proxy.timeout_secs),
        ("/proxy/connect_timeout_ms", d.proxy.connect_timeout_ms),
    ] {
        if v == 0 {
            s.at_value(Error, ptr, "must be more than 0");
        }
    }
    if let Some(c) = &d.cluster {
        if c.start_timeout_secs == 0 {
            s.at_value(Error, "/cluster/start_timeout_secs", "must be more than 0");
        }
    }
}

/// A git branch name git itself would accept, kept to what never reads as an option or a
/// revision expression: `[A-Za-z0-9._/-]`, not starting with `-`, `.` or `/`, no `..`,
/// no `//`, not ending in `/`, `.` or `.lock`.
pub fn valid_branch(b: &str) -> bool {
    !b.is_empty()
        && b.len() <= super::limits::GIT_REF
        && !b.starts_with(['-', '.', '/'])
        && !b.ends_with(['/', '.'])
        && !b.ends_with(".lock")
        && !b.contains("..")
        && !b.contains("//")
        && !b.contains("/.")
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/'))
}

fn git(d: &Desired, s: &mut Sink<'_>) {
    let Some(g) = &d.git else { return };
    if let Some(r) = &g.remote {
        let r = r.as_str();
        if r.trim().is_empty()
            || r.starts_with('-')
            || r.chars().any(|c| c.is_control() || c.is_whitespace())
            || r.len() > super::limits::GIT_URL
        {
            s.at_value(
                Error,
                "/git/remote",
                format!(
                    "`{}` is not a git remote; write a URL (`git@host:me/repo.git`, `https://host/me/repo.git`) or a path",
                    clip(r)
                ),
            );
        } else if r.contains("::") {
            s.at_value(
                Error,
                "/git/remote",
                "remote helpers (`transport::address`) are not allowed; use an ssh, https, git or file URL",
            );
        } else if let Some((scheme, rest)) = r.split_once("://") {
            if !matches!(scheme, "ssh" | "https" | "http" | "git" | "file") {
                s.at_value(
                    Error,
                    "/git/remote",
                    format!(
                        "the `{}` transport is not allowed; use ssh, https, git or file",
                        clip(scheme)
                    ),
                );
            } else if let Some((userinfo, _)) =
                rest.split_once('@').filter(|(u, _)| !u.contains('/'))
            {
                if userinfo.contains(':') {
                    s.at_value(Error, "/git/remote", "the URL holds a password, and this file is committed: put the token in a file and name it in `git.token_file`");
                }
            }
        }
    }
    if !valid_branch(&g.branch) {
        s.at_value(
            Error,
            "/git/branch",
            format!(
                "`{}` is not a branch name this controller accepts: letters, digits, `.`, `_`, `-`, `/`; not starting with `-`, `.` or `/`",
                clip(&g.branch)
            ),
        );
    }
    if let Some(path) = &g.path {
        if path.is_empty()
            || path.starts_with('/')
            || path
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty())
            || path.chars().any(char::is_control)
        {
            s.at_value(
                Error,
                "/git/path",
                format!(
                    "`{}` is not a path inside the repository; write it relative to the repository's top, like `clusters/home/desired.yaml`",
                    clip(path)
                ),
            );
        }
    }
    if g.interval_secs < 5 {
        s.at_value(
            Error,
            "/git/interval_secs",
            "fetch at most every 5 seconds (5 or more); a webhook fetches at once",
        );
    }
    for (field, id) in [("author", &g.author), ("committer", &g.committer)] {
        let Some(id) = id else { continue };
        for (part, v) in [("name", &id.name), ("email", &id.email)] {
            if v.trim().is_empty() || v.contains(['<', '>', '\n', '\0']) {
                s.at_value(
                    Error,
                    &p(&["git", field, part]),
                    format!(
                        "`{}` is not a usable git {part} (not empty, no `<`, `>` or newline)",
                        clip(v)
                    ),
                );
            }
        }
    }
    if g.remote.is_none() {
        for field in ["token_file", "webhook_secret_file", "ssh_key"] {
            let set = match field {
                "token_file" => g.token_file.is_some(),
                "webhook_secret_file" => g.webhook_secret_file.is_some(),
                _ => g.ssh_key.is_some(),
            };
            if set {
                s.at_value(
                    Warning,
                    &p(&["git", field]),
                    "has an effect only with `git.remote`",
                );
            }
        }
    }
}
