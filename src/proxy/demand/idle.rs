//! Idle unload: a deployment whose model has had no request for `idle_unload_after` is
//! set to no model by a recorded edit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Demand;
use crate::proxy::{Routes, Upstream};

/// Unloads each deployment with `idle_unload_after` once its model has served no request
/// for that long (the clock starts when the model is first seen ready), until `shutdown`.
/// Looks once a second.
pub fn spawn_idle_unload(
    demand: Arc<Demand>,
    routes: watch::Receiver<Routes>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Deployment → the model seen ready there (its idle clock started then).
        let mut ready: HashMap<String, String> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let r = routes.borrow().clone();
            for (deployment, after) in &r.policy.idle_unload {
                let serving = r.models.entries.iter().find(|e| {
                    e.deployment.as_deref() == Some(deployment.as_str())
                        && !e.leaving
                        && matches!(e.upstream, Upstream::Ready { .. })
                });
                let Some(e) = serving else {
                    ready.remove(deployment);
                    continue;
                };
                if ready.get(deployment) != Some(&e.name) {
                    ready.insert(deployment.clone(), e.name.clone());
                    demand.touch(deployment);
                    continue;
                }
                let idle = demand.idle_for(deployment).unwrap_or_default();
                if demand.in_flight(deployment) > 0 || idle < *after {
                    continue;
                }
                match demand.unload_idle(deployment, *after).await {
                    Ok(()) => {
                        ready.remove(deployment);
                    }
                    Err(e) => {
                        tracing::warn!("idle unload of deployment {deployment}: {e}");
                        // Not again before another idle period.
                        demand.touch(deployment);
                    }
                }
            }
        }
    })
}
