//! Watching the desired file: the *directory* is watched, so editors' and `git checkout`'s
//! rename-over saves are seen, and bursts of events are merged into one trigger.
//!
//! Owns the notify watcher and its thread bridge; sends `()` on a channel when the file may
//! have changed, and tells whether every change since the last look was a rename over the
//! file (an atomic save: the new file was whole before it got the name). Does not read
//! the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Keeps the watcher alive; dropping it stops watching.
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
    /// A change other than a rename over the file was seen since the last `take_whole`.
    partial: Arc<AtomicBool>,
}

impl FileWatch {
    /// Whether every change since the last call was a rename over the file; resets.
    /// Read the file after this call, then ask [`FileWatch::still_whole`]: a write that
    /// began meanwhile makes the bytes read suspect.
    pub fn take_whole(&self) -> bool {
        !self.partial.swap(false, Ordering::SeqCst)
    }

    /// Whether no change but renames over the file was seen since `take_whole`.
    pub fn still_whole(&self) -> bool {
        !self.partial.load(Ordering::SeqCst)
    }
}

/// Starts watching `file`'s directory; `tx` gets a message when an event concerns the file.
pub fn watch(file: &Path, tx: mpsc::Sender<()>) -> notify::Result<FileWatch> {
    let dir: PathBuf = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file.file_name().map(|n| n.to_os_string());
    // No change seen yet (the loop's first read loads at once anyway).
    let partial = Arc::new(AtomicBool::new(false));
    let seen = partial.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let relevant = match &res {
            // Reading the file is not changing it: the loop's own read after an event
            // would otherwise trigger the next (inotify reports opens and closes), a
            // busy loop of re-reads. A close after writing is a change.
            Ok(ev) if is_read(&ev.kind) => false,
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
            let renamed_over = matches!(&res, Ok(ev) if is_rename_to(ev, name.as_deref()));
            // Any other change (a write in place, a creation, the file renamed away, an
            // error) may leave it partial.
            if !renamed_over {
                seen.store(true, Ordering::SeqCst);
            }
            // A full channel already holds a pending trigger: merging is the point.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(FileWatch {
        _watcher: watcher,
        partial,
    })
}

/// A rename whose destination is the watched file (`To`, or `Both` with it last).
fn is_rename_to(ev: &notify::Event, name: Option<&std::ffi::OsStr>) -> bool {
    use notify::event::{ModifyKind, RenameMode};
    let to = match ev.kind {
        notify::EventKind::Modify(ModifyKind::Name(RenameMode::To)) => ev.paths.first(),
        notify::EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => ev.paths.get(1),
        _ => None,
    };
    to.is_some_and(|p| p.file_name() == name)
}

/// Events that only say the file was opened, read or closed without writing.
fn is_read(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    matches!(
        kind,
        notify::EventKind::Access(a) if *a != AccessKind::Close(AccessMode::Write)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading the watched file triggers nothing (the loop re-reads after each trigger:
    /// counting its own reads as changes spun a core at rest); writing it does.
    #[tokio::test]
    async fn reads_do_not_trigger_writes_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("desired.yaml");
        std::fs::write(&file, "a: 1\n").expect("write");
        let (tx, mut rx) = mpsc::channel(1);
        let _w = watch(&file, tx).expect("watch");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        while rx.try_recv().is_ok() {}
        for _ in 0..20 {
            let _ = std::fs::read(&file).expect("read");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(rx.try_recv().is_err(), "a read triggered the loop");
        std::fs::write(&file, "a: 2\n").expect("write");
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await;
        assert!(matches!(got, Ok(Some(()))), "a write did not trigger");
    }

    /// Waits for the next trigger (bounded) and lets the burst's other events arrive.
    async fn triggered(rx: &mut mpsc::Receiver<()>) {
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await;
        assert!(matches!(got, Ok(Some(()))), "no trigger");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        while rx.try_recv().is_ok() {}
    }

    /// A file renamed over the desired file (an atomic save: temp file + rename) is whole;
    /// a write in place is not, nor a rename followed by a write in place.
    #[tokio::test]
    async fn a_rename_over_the_file_is_whole_a_write_in_place_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("desired.yaml");
        std::fs::write(&file, "a: 1\n").expect("write");
        let (tx, mut rx) = mpsc::channel(1);
        let w = watch(&file, tx).expect("watch");
        let save = |text: &str| {
            let tmp = dir.path().join(".desired.yaml.swp");
            std::fs::write(&tmp, text).expect("write temp");
            std::fs::rename(&tmp, &file).expect("rename");
        };
        save("a: 2\n");
        triggered(&mut rx).await;
        assert!(w.take_whole(), "a rename over the file is whole");
        std::fs::write(&file, "a: 3\n").expect("write in place");
        triggered(&mut rx).await;
        assert!(!w.take_whole(), "a write in place may be partial");
        save("a: 4\n");
        std::fs::write(&file, "a: 5\n").expect("write in place");
        triggered(&mut rx).await;
        assert!(!w.take_whole(), "a write after the rename may be partial");
        save("a: 6\n");
        triggered(&mut rx).await;
        assert!(w.take_whole() && w.still_whole());
    }
}
