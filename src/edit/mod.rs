//! Edits of the desired-state file: comment-preserving YAML splices and the safe file store.
//!
//! Owns: `yaml` (generic `set`/`remove` on YAML text, pure), `ops` (the targeted edits the
//! UI and CLI make, pure), `configure` (the `configure` command's arguments as edits, pure),
//! `store` (reading with an ETag, conflict-checked atomic writes).
//! Must not: validate the desired state's meaning (the caller passes `model::validate`),
//! re-serialize documents, or act on hosts.

pub mod configure;
pub mod deployments;
pub mod ops;
mod path;
mod render;
mod semantic;
mod sizes;
pub mod store;
pub mod yaml;

/// The shared positioned tree (see `crate::yaml::tree`).
pub(crate) use crate::yaml::tree;

pub use ops::{apply, DesiredEdit, OverridesPatch};
pub use store::{DesiredStore, Etag, StoreError};
pub use yaml::{EditError, EditValue, PathSeg};
