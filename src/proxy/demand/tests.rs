//! The registry: limits, the drain, and request-triggered swaps against a fake world.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::proxy::models::ModelEntry;
use crate::proxy::{Routes, Upstream};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::watch;

#[tokio::test]
async fn a_model_past_its_limit_is_refused_until_one_ends() {
    let d = Demand::new();
    let a = d.admit("main", "qwen36", Some(2)).unwrap();
    let _b = d.admit("main", "qwen36", Some(2)).unwrap();
    assert!(matches!(
        d.admit("main", "qwen36", Some(2)),
        Err(ProxyError::TooMany { limit: 2, .. })
    ));
    // Other models are not limited by it.
    let _c = d.admit("main", "gemma4", None).unwrap();
    assert_eq!(d.in_flight("main"), 3);
    drop(a);
    assert!(d.admit("main", "qwen36", Some(2)).is_ok());
}

#[tokio::test]
async fn a_drain_waits_for_requests_then_cuts_the_rest() {
    let d = Demand::new();
    let quick = d.admit("main", "m", None).unwrap();
    let slow = d.admit("main", "m", None).unwrap();
    let slow_cut = slow.cut.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(quick);
    });
    let said = Arc::new(Mutex::new(Vec::new()));
    let s2 = said.clone();
    let holder = tokio::spawn(async move {
        slow_cut.cancelled().await;
        drop(slow);
    });
    let cut = d
        .drain("main", Duration::from_millis(300), move |l| {
            s2.lock().unwrap().push(l)
        })
        .await;
    holder.await.unwrap();
    assert_eq!(cut, 1);
    assert_eq!(d.in_flight("main"), 0);
    let said = said.lock().unwrap().clone();
    assert!(said[0].starts_with("draining 2 requests"), "{said:?}");
    // A new request after the cut is not cut by it.
    let next = d.admit("main", "m", None).unwrap();
    assert!(!next.cut.is_cancelled());
    assert_eq!(d.drain("other", Duration::from_secs(1), |_| {}).await, 0);
}

/// A world of three catalog models (`a`, `b`, `c`) on deployment `main`: a swap makes
/// the model loading there at once and ready `load` later (unless changed meanwhile).
struct World {
    tx: Arc<watch::Sender<Routes>>,
    asked: Arc<Mutex<Vec<String>>>,
}

fn routes(active: Option<&str>, ready: bool, policy: crate::proxy::Policy) -> Routes {
    let entries = ["a", "b", "c"]
        .iter()
        .map(|n| {
            let here = active == Some(*n);
            ModelEntry {
                name: n.to_string(),
                repo: format!("org/{n}"),
                aliases: vec![],
                status: String::new(),
                deployment: here.then(|| "main".to_string()),
                could_run: vec!["main".into()],
                max_model_len: None,
                leaving: false,
                upstream: match (here, ready) {
                    (true, true) => Upstream::Ready {
                        base: "http://127.0.0.1:1".into(),
                        model: Some(format!("org/{n}")),
                    },
                    (true, false) => Upstream::Loading {
                        model: n.to_string(),
                        base: None,
                    },
                    _ => Upstream::NotConfigured,
                },
            }
        })
        .collect();
    let mut policy = policy;
    policy.swap_on_request.insert("main".into());
    Routes {
        models: Arc::new(crate::proxy::ModelTable::new(entries, Some("main".into()))),
        policy: Arc::new(policy),
        ..Routes::default()
    }
}

struct FakeSwapper {
    world: Arc<watch::Sender<Routes>>,
    asked: Arc<Mutex<Vec<String>>>,
    load: Duration,
}

impl Swapper for FakeSwapper {
    fn set_model(
        &self,
        _deployment: String,
        model: Option<String>,
        _cause: SwapCause,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        let (world, load, asked) = (self.world.clone(), self.load, self.asked.clone());
        Box::pin(async move {
            let m = model.unwrap_or_default();
            asked.lock().unwrap().push(m.clone());
            let policy = (*world.borrow().policy).clone();
            world.send_replace(routes(Some(&m), false, policy.clone()));
            tokio::spawn(async move {
                tokio::time::sleep(load).await;
                let still = world
                    .borrow()
                    .models
                    .entries
                    .iter()
                    .any(|e| e.name == m && e.deployment.is_some());
                if still {
                    world.send_replace(routes(Some(&m), true, policy));
                }
            });
            Ok(())
        })
    }
}

fn world(d: &Demand, policy: crate::proxy::Policy, load: Duration) -> World {
    let (tx, _rx) = watch::channel(routes(Some("a"), true, policy));
    let tx = Arc::new(tx);
    let asked = Arc::new(Mutex::new(Vec::new()));
    d.set_swapper(Arc::new(FakeSwapper {
        world: tx.clone(),
        asked: asked.clone(),
        load,
    }));
    World { tx, asked }
}

fn cause() -> SwapCause {
    SwapCause::Request {
        client: "test".into(),
        route: "chat_completions".into(),
    }
}

#[tokio::test]
async fn waiting_requests_go_on_in_arrival_order_after_one_swap() {
    let d = Demand::new();
    let w = world(&d, Default::default(), Duration::from_millis(200));
    let done = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (d, rx, done) = (d.clone(), w.tx.subscribe(), done.clone());
        tasks.push(tokio::spawn(async move {
            let r = d.swap_and_wait(rx, "main", "b", cause()).await;
            done.lock().unwrap().push(i);
            r
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for t in tasks {
        assert!(matches!(t.await.unwrap(), Ok(Upstream::Ready { .. })));
    }
    assert_eq!(*done.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(*w.asked.lock().unwrap(), vec!["b"], "one swap for all six");
    assert_eq!(d.waiting("b"), 0);
}

#[tokio::test]
async fn a_third_model_waits_for_the_running_swap_and_the_interval() {
    let d = Demand::new();
    let policy = crate::proxy::Policy {
        min_interval: Duration::from_millis(300),
        ..Default::default()
    };
    let w = world(&d, policy, Duration::from_millis(300));
    let b = {
        let (d, rx) = (d.clone(), w.tx.subscribe());
        tokio::spawn(async move { d.swap_and_wait(rx, "main", "b", cause()).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = {
        let (d, rx) = (d.clone(), w.tx.subscribe());
        tokio::spawn(async move { d.swap_and_wait(rx, "main", "c", cause()).await })
    };
    // b is served (c did not cancel its swap), then c is swapped in after the interval.
    assert!(matches!(b.await.unwrap(), Ok(Upstream::Ready { .. })));
    assert!(matches!(c.await.unwrap(), Ok(Upstream::Ready { .. })));
    assert_eq!(*w.asked.lock().unwrap(), vec!["b", "c"]);
}

#[tokio::test]
async fn the_interval_past_the_wait_limit_is_a_503_and_a_full_queue_too() {
    let d = Demand::new();
    let policy = crate::proxy::Policy {
        min_interval: Duration::from_secs(600),
        queue_wait: Duration::from_secs(2),
        queue: 1,
        ..Default::default()
    };
    let w = world(&d, policy, Duration::from_millis(100));
    let b = d
        .swap_and_wait(w.tx.subscribe(), "main", "b", cause())
        .await;
    assert!(matches!(b, Ok(Upstream::Ready { .. })));
    let c = d
        .swap_and_wait(w.tx.subscribe(), "main", "c", cause())
        .await;
    match c {
        Err(ProxyError::SwapBusy { why, .. }) => {
            assert!(why.contains("swap_min_interval_secs"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    // A queue of one: a second waiter for `b` (while the first waits) is refused.
    let d = Demand::new();
    let policy = crate::proxy::Policy {
        queue: 1,
        ..Default::default()
    };
    let w = world(&d, policy, Duration::from_millis(500));
    let first = {
        let (d, rx) = (d.clone(), w.tx.subscribe());
        tokio::spawn(async move { d.swap_and_wait(rx, "main", "b", cause()).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = d
        .swap_and_wait(w.tx.subscribe(), "main", "b", cause())
        .await;
    match second {
        Err(ProxyError::SwapBusy { why, .. }) => assert!(why.contains("swap_queue"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(first.await.unwrap(), Ok(Upstream::Ready { .. })));
}

#[tokio::test]
async fn an_edit_meanwhile_wins_and_the_waiter_is_told() {
    let d = Demand::new();
    let w = world(&d, Default::default(), Duration::from_secs(5));
    let b = {
        let (d, rx) = (d.clone(), w.tx.subscribe());
        tokio::spawn(async move { d.swap_and_wait(rx, "main", "b", cause()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Someone else's edit: `c` on main.
    let policy = (*w.tx.borrow().policy).clone();
    w.tx.send_replace(routes(Some("c"), false, policy));
    match b.await.unwrap() {
        Err(ProxyError::SwapRefused(why)) => assert!(why.contains("no longer names it"), "{why}"),
        other => panic!("{other:?}"),
    }
}
