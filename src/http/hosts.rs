//! The names this server answers to: the `Host` allowlist that defeats DNS rebinding.
//!
//! A page on `http://evil.example` whose name the attacker re-points at the controller's
//! LAN address reaches the controller *from the user's browser*, same-origin as far as the
//! browser knows; only the `Host` header (`evil.example:9999`) tells the request apart.
//! So every request's `Host` must be a name the server was told it is reachable at:
//! `localhost`, this machine's host name (and `<name>.local`), the listen address, and what
//! the operator adds (`--allowed-host`, `SPARK_CONTROL_ALLOWED_HOSTS`; the StartOS and
//! reverse-proxy names go there). An **IP literal** is always accepted: rebinding needs a
//! name the attacker controls, and a browser sends an IP as `Host` only to that IP, so an
//! address cannot be rebound (this keeps a container behind NAT reachable at its host's
//! address without configuration). The port is not part of the check; the `Origin` check
//! of writes compares ports (`auth.rs`).
//!
//! Must not: resolve names (the check is on the text the client sent) or do IO beyond
//! reading the machine's host name once at start.

use std::net::{IpAddr, SocketAddr};

/// The accepted names, lower-case, without port. Entries starting with `*.` match any
/// subdomain (`*.lan` accepts `spark-control.lan`).
#[derive(Debug, Clone, PartialEq)]
pub struct AllowedHosts {
    names: Vec<String>,
}

impl Default for AllowedHosts {
    /// `localhost` only (plus IP literals, always).
    fn default() -> Self {
        AllowedHosts {
            names: vec!["localhost".into()],
        }
    }
}

impl AllowedHosts {
    /// The defaults plus this machine's host name, the listen address and `extra`
    /// (operator-given names; empty entries are skipped, ports are ignored).
    pub fn for_server(listen: Option<SocketAddr>, extra: &[String]) -> AllowedHosts {
        let mut me = AllowedHosts::default();
        if let Some(name) = machine_hostname() {
            me.add(&format!("{name}.local"));
            me.add(&name);
        }
        if let Some(a) = listen.filter(|a| !a.ip().is_unspecified()) {
            me.add(&a.ip().to_string());
        }
        for e in extra {
            for part in e.split(',') {
                me.add(part);
            }
        }
        me
    }

    /// Adds one name (`host`, `host:port`, `*.domain`); blank text is ignored.
    pub fn add(&mut self, name: &str) {
        let host = host_part(name.trim()).to_ascii_lowercase();
        if !host.is_empty() && !self.names.contains(&host) {
            self.names.push(host);
        }
    }

    /// The names, for messages and `/api/state`.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `authority` (a `Host` header value or an `Origin`'s host[:port]) is ours.
    pub fn allows(&self, authority: &str) -> bool {
        let host = host_part(authority.trim());
        if host.is_empty() {
            return false;
        }
        if host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
        {
            return true;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.iter().any(|n| match n.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => *n == host,
        })
    }
}

/// `host` of `host:port`, `[v6]:port`, `[v6]` or `host`.
pub fn host_part(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => &authority[..end + 2],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address.
        Some((h, _)) if h.contains(':') => authority,
        Some((h, _)) => h,
        None => authority,
    }
}

/// The machine's host name (Linux: the kernel's), if it has a usable one.
fn machine_hostname() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let name = raw.trim().to_ascii_lowercase();
    let usable = !name.is_empty()
        && name != "localhost"
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    usable.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(list: &AllowedHosts, authority: &str, expected: bool) {
        assert_eq!(list.allows(authority), expected, "{authority} in {list:?}");
    }

    #[test]
    fn names_ports_and_literals() {
        let mut list = AllowedHosts::default();
        list.add("spark-control.lan:9999");
        list.add("*.ts.net");
        list.add(" ");
        for (authority, expected) in [
            ("localhost:9999", true),
            ("LOCALHOST", true),
            ("localhost.", true),
            ("spark-control.lan", true),
            ("spark-control.lan:1234", true),
            ("box.tail1234.ts.net:9999", true),
            ("ts.net", false),
            ("evil.example:9999", false),
            ("evil.example", false),
            ("localhost.evil.example", false),
            ("spark-control.lan.evil.example", false),
            ("192.168.1.5:9999", true),
            ("127.0.0.1", true),
            ("[::1]:9999", true),
            ("[fe80::1]", true),
            ("", false),
            (":9999", false),
        ] {
            check(&list, authority, expected);
        }
        assert_eq!(list.names(), ["localhost", "spark-control.lan", "*.ts.net"]);
    }

    #[test]
    fn host_part_cases() {
        for (a, h) in [
            ("a:1", "a"),
            ("a", "a"),
            ("[::1]:80", "[::1]"),
            ("[::1]", "[::1]"),
            ("::1", "::1"),
            ("1.2.3.4:5", "1.2.3.4"),
        ] {
            assert_eq!(host_part(a), h, "{a}");
        }
    }

    #[test]
    fn server_list_has_the_listen_address_and_extras() {
        let listen: SocketAddr = "127.0.0.7:9999".parse().expect("addr");
        let list = AllowedHosts::for_server(Some(listen), &["a.lan, b.lan".into()]);
        assert!(list.names().contains(&"127.0.0.7".to_string()));
        check(&list, "a.lan:9999", true);
        check(&list, "b.lan", true);
        check(&list, "c.lan", false);
    }
}
