//! spark-control: the control plane for a small vLLM cluster of DGX Spark boxes.
//!
//! The library holds all the logic; `main.rs` is a thin CLI over it. See
//! `ARCHITECTURE.md` for the bird's-eye view, the code map and the invariants.

pub mod model;
pub mod plan;
pub mod proxy;
pub mod remote;
