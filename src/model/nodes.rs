//! The addresses the cluster's nodes are given to each other and to the launcher's
//! scripts (`build-and-copy.sh -c`, `launch-cluster.sh -n`). One place decides which
//! address of a host that is, so every command that names nodes names the same ones.
//!
//! Pure: reads the desired state, never resolves a name.

use super::desired::Desired;

/// The launcher addresses of `hosts` (the interconnect address, else `address`), in
/// their order. A name
/// without a host entry is left out (validation refuses such a file).
pub fn node_addresses(desired: &Desired, hosts: &[String]) -> Vec<String> {
    hosts
        .iter()
        .filter_map(|name| desired.hosts.get(name))
        .map(|h| h.launcher_address().to_string())
        .collect()
}

/// The addresses of the cluster's workers (empty without a cluster or workers).
pub fn worker_addresses(desired: &Desired) -> Vec<String> {
    desired
        .primary_cluster()
        .map_or_else(Vec::new, |c| node_addresses(desired, &c.workers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::validate_text;

    #[test]
    fn workers_in_order_by_their_address() {
        let text = "version: 1\nhosts:\n  a: { address: 10.0.0.1 }\n  c: { address: 10.0.0.3 }\n  b: { address: 10.0.0.2 }\ncluster: { head: a, workers: [c, b] }\nactive_model: null\n";
        let d = validate_text("t.yaml", text).desired.expect("valid");
        assert_eq!(worker_addresses(&d), ["10.0.0.3", "10.0.0.2"]);
        assert_eq!(
            node_addresses(&d, &["a".into(), "b".into()]),
            ["10.0.0.1", "10.0.0.2"]
        );
        let solo = validate_text("t.yaml", "version: 1\n")
            .desired
            .expect("valid");
        assert!(worker_addresses(&solo).is_empty());
    }
}
