//! Edits of the desired-state file: comment-preserving YAML splices and the safe file store.
//!
//! Owns: `yaml` (generic `set`/`remove` on YAML text, pure), `ops` (the targeted edits the
//! UI and CLI make, pure), `store` (reading with an ETag, conflict-checked atomic writes).
//! Must not: validate the desired state's meaning (the caller passes `model::validate`),
//! re-serialize documents, or act on hosts.

pub mod deployments;
pub mod ops;
mod path;
mod render;
mod scan;
mod semantic;
mod sizes;
pub mod store;
mod tree;
pub mod yaml;

pub use ops::{apply, DesiredEdit, OverridesPatch};
pub use store::{DesiredStore, Etag, StoreError};
pub use yaml::{EditError, EditValue, PathSeg};
