//! The one integration-test binary: each area adds a module here.

mod harness;
mod remote;
