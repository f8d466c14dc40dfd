//! Download jobs on disk: one JSON file per job in `<data dir>/downloads/`, written
//! atomically (temp file + rename), so jobs survive a controller restart. Must not: hold
//! anything but job records in that directory.

use std::path::{Path, PathBuf};

use super::job::Job;
use super::DownloadError;

/// The job directory.
#[derive(Debug, Clone)]
pub struct JobStore {
    dir: PathBuf,
}

impl JobStore {
    /// `<data_dir>/downloads` (created when first written).
    pub fn new(data_dir: &Path) -> Self {
        JobStore {
            dir: data_dir.join("downloads"),
        }
    }

    /// Writes one job.
    pub fn save(&self, job: &Job) -> Result<(), DownloadError> {
        let io = |e: std::io::Error| DownloadError::Store {
            path: self.dir.clone(),
            detail: e.to_string(),
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let text = serde_json::to_vec_pretty(job).map_err(|e| DownloadError::Store {
            path: self.dir.clone(),
            detail: e.to_string(),
        })?;
        // A unique temp name: two hosts of one job may save at the same moment.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.dir.join(format!(".{}.{n}.tmp", job.id));
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, self.dir.join(format!("{}.json", job.id))).map_err(io)
    }

    /// Every readable job, oldest first. Unreadable files are skipped with a warning.
    pub fn load(&self) -> Vec<Job> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut jobs: Vec<Job> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .filter_map(|p| {
                let r = std::fs::read(&p)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice::<Job>(&b).map_err(|e| e.to_string()));
                match r {
                    Ok(j) => Some(j),
                    Err(e) => {
                        tracing::warn!("skipping unreadable download job {}: {e}", p.display());
                        None
                    }
                }
            })
            .collect();
        jobs.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downloads::job::{HostJob, JobState, Origin};
    use crate::model::desired::Mode;

    #[test]
    fn round_trip_and_skip_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = JobStore::new(dir.path());
        assert!(s.load().is_empty());
        let job = Job {
            id: "dl-1".into(),
            repo: "o/r".into(),
            mode: Mode::Solo,
            origin: Origin::Declared { op: 3 },
            hosts: vec![HostJob::new("spark1", Some(10))],
            state: JobState::Running,
            total: Some(10),
            note: None,
            started_at: chrono::Utc::now(),
            finished_at: None,
            suggestion: None,
        };
        s.save(&job).expect("save");
        std::fs::write(dir.path().join("downloads/bad.json"), "{").expect("write");
        assert_eq!(s.load(), vec![job]);
    }
}
