//! The model layer: desired-state types, the catalog, validation, observed-state types.
//!
//! Owns what the desired file means and what the poller saw, as plain data. Never does
//! IO (beyond `validate::validate_file` reading one file), never touches tokio or the clock.

pub mod catalog;
pub mod deployment;
pub mod desired;
pub mod diag;
pub mod limits;
pub mod nodes;
pub mod observed;
pub mod schema;
mod semantic;
mod semantic_deploy;
mod sizes;
pub mod validate;
pub mod yamlpos;

pub use desired::Desired;
pub use diag::{Diagnostic, Severity};
pub use observed::{Fact, Observed};
pub use semantic::{valid_branch, valid_name, valid_repo};
pub use validate::{validate_bytes, validate_file, validate_text, Validated};
