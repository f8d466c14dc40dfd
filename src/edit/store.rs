//! The desired-state file on disk: reads with a strong ETag, conflict-checked atomic writes.
//!
//! Owns: the only code that writes `desired.yaml`. A write names the ETag it was based on;
//! the file is re-read under an in-process writer lock and a changed hash (another writer, or
//! a hand edit between GET and PUT) is a `Conflict` carrying the current text. Writes go to a
//! temp file in the same directory, are fsynced, renamed over the file (keeping its
//! permissions; through a symlink to its target) and the directory is fsynced: readers see
//! the old or the new bytes, never a mix, and a failed write leaves no temp file behind.
//! Must not: judge what the text means (the caller's `validate` does), hold the lock across
//! an `.await` (the critical section runs on a blocking thread under a `std` mutex).
//!
//! Limit: processes other than this one (an editor) are not locked out; a save that lands
//! between our hash check and our rename is overwritten. The window is the few
//! microseconds between the check and the rename.

use sha2::{Digest, Sha256};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::ops::{self, DesiredEdit};
use super::yaml::EditError;

/// Strong entity tag of the exact file bytes: `"sha256-<first 16 hex digits>"`, quotes included.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Etag(String);

impl Etag {
    /// The ETag of these bytes.
    pub fn of(bytes: &[u8]) -> Etag {
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Etag(format!("\"sha256-{hex}\""))
    }
    /// Accept a header value such as `If-Match: "sha256-…"` (a `W/` prefix is refused).
    pub fn parse(header: &str) -> Option<Etag> {
        let h = header.trim();
        let ok = h.len() == 25 && h.starts_with("\"sha256-") && h.ends_with('"');
        ok.then(|| Etag(h.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a read or write of the desired-state file failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{path} is not UTF-8 text")]
    NotUtf8 { path: PathBuf },
    #[error(
        "the desired-state file changed since it was read (now {current_etag}); reload and retry"
    )]
    Conflict {
        current_text: String,
        current_etag: Etag,
    },
    #[error("the new desired state is invalid: {}", errors.join("; "))]
    Invalid { errors: Vec<String> },
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error("the writer task failed: {0}")]
    Task(String),
}

/// The desired-state file and its single in-process writer.
#[derive(Debug, Clone)]
pub struct DesiredStore {
    path: PathBuf,
    writer: Arc<Mutex<()>>,
    /// The ETag of the last text this store wrote (atomically, so it is never partial):
    /// the loop acts on such a file at once instead of waiting for it to settle.
    last_written: Arc<Mutex<Option<Etag>>>,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl DesiredStore {
    pub fn new(path: impl Into<PathBuf>) -> DesiredStore {
        DesiredStore {
            path: path.into(),
            writer: Arc::new(Mutex::new(())),
            last_written: Arc::default(),
        }
    }

    /// Whether `bytes` are what this store itself last wrote (a whole, atomic write).
    pub fn wrote(&self, bytes: &[u8]) -> bool {
        let last = self
            .last_written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        last.as_ref() == Some(&Etag::of(bytes))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current text and its ETag.
    pub async fn read(&self) -> Result<(String, Etag), StoreError> {
        let path = self.path.clone();
        blocking(move || read_file(&path)).await
    }

    /// Write `new_text` if the file still has the ETag `expected` and `validate` accepts it.
    pub async fn write_if(
        &self,
        expected: &Etag,
        new_text: &str,
        validate: impl Fn(&str) -> Result<(), Vec<String>>,
    ) -> Result<Etag, StoreError> {
        validate(new_text).map_err(|errors| StoreError::Invalid { errors })?;
        let (path, writer) = (self.path.clone(), Arc::clone(&self.writer));
        let (expected, new_text) = (expected.clone(), new_text.to_string());
        let last_written = Arc::clone(&self.last_written);
        blocking(move || {
            let _one_writer = writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let (current_text, current_etag) = read_file(&path)?;
            if current_etag != expected {
                return Err(StoreError::Conflict {
                    current_text,
                    current_etag,
                });
            }
            let etag = Etag::of(new_text.as_bytes());
            // Recorded before the rename, so the watcher's event finds it.
            *last_written
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(etag.clone());
            write_atomic(&path, new_text.as_bytes(), Replace::Always)?;
            Ok(etag)
        })
        .await
    }

    /// Read, apply `edit`, validate, write. With `expected`, a file that changed since that
    /// ETag is a `Conflict`. Returns the new text and ETag (unchanged text: no write).
    pub async fn edit(
        &self,
        expected: Option<&Etag>,
        edit: &DesiredEdit,
        validate: impl Fn(&str) -> Result<(), Vec<String>>,
    ) -> Result<(String, Etag), StoreError> {
        let (text, etag) = self.read().await?;
        if let Some(exp) = expected {
            if *exp != etag {
                return Err(StoreError::Conflict {
                    current_text: text,
                    current_etag: etag,
                });
            }
        }
        let new_text = ops::apply(&text, edit)?;
        if new_text == text {
            return Ok((text, etag));
        }
        let new_etag = self.write_if(&etag, &new_text, validate).await?;
        Ok((new_text, new_etag))
    }

    /// Create the file with `default_text` unless it exists; true if it was created.
    pub async fn create_if_missing(&self, default_text: &str) -> Result<bool, StoreError> {
        let (path, writer, text) = (
            self.path.clone(),
            Arc::clone(&self.writer),
            default_text.to_string(),
        );
        blocking(move || {
            let _one_writer = writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            write_atomic(&path, text.as_bytes(), Replace::Never)
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn read_file(path: &Path) -> Result<(String, Etag), StoreError> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    let etag = Etag::of(&bytes);
    let text = String::from_utf8(bytes).map_err(|_| StoreError::NotUtf8 { path: path.into() })?;
    Ok((text, etag))
}

#[derive(PartialEq)]
enum Replace {
    Always,
    Never,
}

/// Write `bytes` to `path` atomically. With `Replace::Never`, an existing file is kept and
/// `Ok(false)` returned. Returns whether the file was written.
fn write_atomic(path: &Path, bytes: &[u8], mode: Replace) -> Result<bool, StoreError> {
    // Write through a symlink to its target, so a linked desired.yaml stays linked.
    let target = match fs::canonicalize(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(io_err("resolve", path)(e)),
    };
    let exists = target.exists();
    if exists && mode == Replace::Never {
        return Ok(false);
    }
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let seq = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp-{}-{seq}", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        if exists {
            let perms = fs::metadata(&target)
                .map_err(io_err("stat", &target))?
                .permissions();
            f.set_permissions(perms).map_err(io_err("chmod", &tmp))?;
        }
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(f);
        if mode == Replace::Never {
            // Link fails if someone created the file meanwhile: never clobber.
            match fs::hard_link(&tmp, &target) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(io_err("link", &target)(e)),
            }
            fs::remove_file(&tmp).map_err(io_err("remove", &tmp))?;
        } else {
            fs::rename(&tmp, &target).map_err(io_err("rename", &target))?;
        }
        fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err("fsync", &dir))?;
        Ok(true)
    })();
    if !matches!(result, Ok(true)) || mode == Replace::Never {
        let _ = fs::remove_file(&tmp);
    }
    result
}
