//! spark-control: the control plane for a small vLLM cluster of DGX Spark boxes.
//!
//! The library holds all the logic; `main.rs` is a thin CLI over it. See
//! `ARCHITECTURE.md` for the bird's-eye view, the code map and the invariants.

pub mod app;
pub mod base64;
pub mod demo;
pub mod downloads;
pub mod edit;
pub mod events;
pub mod execute;
pub mod gitops;
pub mod hosts;
pub mod http;
pub mod hub;
pub mod launcher;
pub mod logging;
pub mod logs;
pub mod model;
pub mod observe;
pub mod plan;
pub mod prom;
pub mod proxy;
pub mod reconcile;
pub mod remote;
pub mod routes;
pub mod sdnotify;
pub mod serving;
pub mod sim;
pub mod status;
pub mod telemetry;
pub mod yaml;
