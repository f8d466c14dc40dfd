//! The one integration test binary: every area is a module.

mod edit;
mod validate;
