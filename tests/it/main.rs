//! The one integration test binary: every area is a module; shared harness in `harness/`.

mod cancel;
mod control;
mod demo;
mod downloads;
mod edit;
mod gitops;
mod harness;
mod http;
mod observability;
mod proxy;
mod remote;
mod sim;
mod telemetry;
mod ui;
mod updates;
mod validate;
mod validate_deploy;
