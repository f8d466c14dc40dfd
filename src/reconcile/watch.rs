//! Watching the desired file: the *directory* is watched, so editors' and `git checkout`'s
//! rename-over saves are seen, and bursts of events are merged into one trigger.
//!
//! Owns the notify watcher and its thread bridge; sends `()` on a channel when the file may
//! have changed. Does not read the file.

use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps the watcher alive; dropping it stops watching.
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Starts watching `file`'s directory; `tx` gets a message when an event concerns the file.
pub fn watch(file: &Path, tx: mpsc::Sender<()>) -> notify::Result<FileWatch> {
    let dir: PathBuf = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file.file_name().map(|n| n.to_os_string());
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let relevant = match &res {
            Ok(ev) => {
                ev.paths.is_empty()
                    || ev
                        .paths
                        .iter()
                        .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
            }
            Err(_) => true,
        };
        if relevant {
            // A full channel already holds a pending trigger: merging is the point.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(FileWatch { _watcher: watcher })
}
