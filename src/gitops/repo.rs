//! The repository the desired file lives in, and the git operations on that one file.
//!
//! Owns: finding the work tree, committing exactly the bytes that were written (through a
//! private index: other files, staged or not, are never part of our commits, and the
//! branch moves by compare-and-swap), the file's log with diffs, the file at any commit,
//! the uncommitted diff, fetch/fast-forward/push/merge against the remote-tracking ref
//! `refs/remotes/spark-control/<branch>`. Must not: rewrite history (nothing here resets a
//! branch or force-pushes), touch files other than the desired file, decide when to run.

use std::path::{Path, PathBuf};

use super::git::{Access, Git, GitError, Who};

/// Where remote-tracking refs of the followed branch live.
pub const TRACKING_PREFIX: &str = "refs/remotes/spark-control/";

/// The repository and the desired file's place in it.
#[derive(Debug, Clone)]
pub struct Repo {
    /// The work tree's top directory.
    pub top: PathBuf,
    /// The git directory (absolute).
    pub git_dir: PathBuf,
    /// The file's path inside the repository (`/`-separated).
    pub path: String,
}

/// One commit that changed the file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommitInfo {
    /// Full hash.
    pub id: String,
    /// Abbreviated hash.
    pub short: String,
    /// Author name and e-mail.
    pub author: String,
    /// Committer name.
    pub committer: String,
    /// Author time, RFC 3339.
    pub time: String,
    /// First line of the message.
    pub subject: String,
    /// The rest of the message.
    pub body: String,
    /// Who made the change (`Changed-by:` trailer; `git` for commits made elsewhere).
    pub by: String,
    /// The diff of the file against the first parent.
    pub diff: String,
    /// Whether it is a merge.
    pub merge: bool,
}

/// What a fetch found.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The branch exists on the remote; the tracking ref points at this commit.
    Branch(String),
    /// The remote has no such branch (an empty repository): a push creates it.
    NoBranch,
}

/// Which side wins where both changed the same lines (a merge keeps every other change
/// of both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Prefer {
    /// This controller's commits.
    Mine,
    /// The remote's commits.
    Theirs,
}

fn setup(msg: impl Into<String>) -> GitError {
    GitError::Setup(msg.into())
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

impl Repo {
    /// The repository containing `file`; `None` when it is in no work tree.
    pub async fn discover(file: &Path) -> Result<Option<Repo>, GitError> {
        let (dir, name) = split(file)?;
        let (code, out, err, _) = Git::new(
            &dir,
            &["rev-parse", "--show-toplevel", "--absolute-git-dir"],
        )
        .output()
        .await?;
        if code != Some(0) {
            if err.contains("not a git repository") {
                return Ok(None);
            }
            return Err(GitError::Failed {
                what: "rev-parse".into(),
                code,
                stderr: err,
            });
        }
        let mut lines = out.lines();
        let (Some(top), Some(git_dir)) = (lines.next(), lines.next()) else {
            return Err(setup("git rev-parse printed no work tree"));
        };
        let top = PathBuf::from(top);
        let rel = dir.join(&name);
        let rel = rel.strip_prefix(&top).map_err(|_| {
            setup(format!(
                "{} is not under the work tree {}",
                rel.display(),
                top.display()
            ))
        })?;
        let path = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        Ok(Some(Repo {
            top,
            git_dir: PathBuf::from(git_dir),
            path,
        }))
    }

    /// A new repository in `file`'s directory on `branch`, ignoring everything but the file
    /// (`.git/info/exclude`: the directory may hold keys).
    pub async fn init(file: &Path, branch: &str) -> Result<Repo, GitError> {
        let (dir, name) = split(file)?;
        Git::new(&dir, &["init", "-q", &format!("--initial-branch={branch}")])
            .run()
            .await?;
        let repo = Repo::discover(file)
            .await?
            .ok_or_else(|| setup("git init made no work tree"))?;
        let exclude = repo.git_dir.join("info").join("exclude");
        let _ = std::fs::create_dir_all(repo.git_dir.join("info"));
        let text = format!(
            "# spark-control: only the desired file is tracked here\n*\n!/{}\n",
            name.replace(['*', '?', '[', '\\', '!'], "?")
        );
        std::fs::write(&exclude, text)
            .map_err(|e| setup(format!("write {}: {e}", exclude.display())))?;
        Ok(repo)
    }

    fn git<S: AsRef<str>>(&self, args: &[S]) -> Git<'_> {
        Git::new(&self.top, args)
    }

    /// Whether git tracks the file (it is in the index).
    pub async fn tracked(&self) -> Result<bool, GitError> {
        let (code, _, _, _) = self
            .git(&["ls-files", "--error-unmatch", "--", &self.path])
            .output()
            .await?;
        Ok(code == Some(0))
    }

    /// The checked-out branch; an error when HEAD is detached.
    pub async fn branch(&self) -> Result<String, GitError> {
        let (code, out, _, _) = self
            .git(&["symbolic-ref", "-q", "--short", "HEAD"])
            .output()
            .await?;
        if code != Some(0) {
            return Err(setup(format!(
                "HEAD is detached in {}; check out a branch (`git -C {} switch <branch>`) so commits have somewhere to go",
                self.top.display(),
                self.top.display()
            )));
        }
        Ok(first_line(&out))
    }

    /// The commit a revision names, if it exists.
    pub async fn rev(&self, rev: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let (code, out, _, _) = self
            .git(&["rev-parse", "-q", "--verify", "--end-of-options", &spec])
            .output()
            .await?;
        Ok((code == Some(0)).then(|| first_line(&out)))
    }

    /// The file's text at `rev` (None: not in that commit).
    pub async fn show(&self, rev: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}:{}", self.path);
        let (code, out, _, _) = self.git(&["cat-file", "blob", &spec]).output().await?;
        Ok((code == Some(0)).then_some(out))
    }

    /// The file's text at each of `ids`, in one git process.
    pub async fn texts(&self, ids: &[String]) -> Result<Vec<Option<String>>, GitError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let input: String = ids.iter().map(|i| format!("{i}:{}\n", self.path)).collect();
        let out = self
            .git(&["cat-file", "--batch"])
            .stdin(input)
            .run_bytes()
            .await?;
        let mut res = Vec::with_capacity(ids.len());
        let mut rest = &out[..];
        for _ in ids {
            let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                res.push(None);
                continue;
            };
            let header = String::from_utf8_lossy(&rest[..nl]).into_owned();
            rest = &rest[nl + 1..];
            let parts: Vec<&str> = header.split(' ').collect();
            match (
                parts.get(1),
                parts.get(2).and_then(|n| n.parse::<usize>().ok()),
            ) {
                (Some(&"blob"), Some(size)) if rest.len() >= size => {
                    res.push(Some(String::from_utf8_lossy(&rest[..size]).into_owned()));
                    rest = rest.get(size + 1..).unwrap_or(&[]);
                }
                _ => res.push(None),
            }
        }
        Ok(res)
    }

    /// Commits `text` as the file's new content with `message`; `None` when the file at
    /// HEAD already has exactly these bytes. Only this file; the branch moves only if
    /// nobody else moved it meanwhile.
    pub async fn commit_text(
        &self,
        text: &str,
        message: &str,
        who: &Who,
    ) -> Result<Option<String>, GitError> {
        let blob = first_line(
            &self
                .git(&["hash-object", "-w", "--no-filters", "--stdin"])
                .stdin(text.as_bytes().to_vec())
                .run()
                .await?,
        );
        let head = self.rev("HEAD").await?;
        let index = self.git_dir.join("spark-control.index");
        let index_s = index.to_string_lossy().into_owned();
        let _ = std::fs::remove_file(&index);
        let read_tree = match &head {
            Some(h) => vec!["read-tree".to_string(), h.clone()],
            None => vec!["read-tree".to_string(), "--empty".to_string()],
        };
        self.git(&read_tree)
            .env("GIT_INDEX_FILE", &index_s)
            .run()
            .await?;
        let cacheinfo = format!("100644,{blob},{}", self.path);
        self.git(&["update-index", "--add", "--cacheinfo", &cacheinfo])
            .env("GIT_INDEX_FILE", &index_s)
            .run()
            .await?;
        let tree = first_line(
            &self
                .git(&["write-tree"])
                .env("GIT_INDEX_FILE", &index_s)
                .run()
                .await?,
        );
        let _ = std::fs::remove_file(&index);
        if let Some(h) = &head {
            let head_tree = first_line(
                &self
                    .git(&["rev-parse", &format!("{h}^{{tree}}")])
                    .run()
                    .await?,
            );
            if head_tree == tree {
                return Ok(None);
            }
        }
        let mut args = vec!["commit-tree".to_string(), "--no-gpg-sign".into(), tree];
        if let Some(h) = &head {
            args.push("-p".into());
            args.push(h.clone());
        }
        let commit = first_line(
            &self
                .git(&args)
                .who(who)
                .stdin(message.as_bytes().to_vec())
                .run()
                .await?,
        );
        let old = head.clone().unwrap_or_default();
        let reflog = format!("spark-control: {}", first_line(message));
        self.git(&["update-ref", "-m", &reflog, "HEAD", &commit, &old])
            .run()
            .await?;
        // The real index gets the committed blob, so `git status` shows the file clean.
        self.git(&["update-index", "--add", "--cacheinfo", &cacheinfo])
            .run()
            .await?;
        Ok(Some(commit))
    }

    /// `git diff HEAD -- file` (the whole file as added when there is no commit yet).
    pub async fn uncommitted_diff(&self) -> Result<String, GitError> {
        if self.rev("HEAD").await?.is_none() {
            let (_, out, _, _) = self
                .git(&[
                    "diff",
                    "--no-color",
                    "--no-ext-diff",
                    "--no-index",
                    "--",
                    "/dev/null",
                    &self.path,
                ])
                .output()
                .await?;
            return Ok(out);
        }
        self.git(&[
            "diff",
            "--no-color",
            "--no-ext-diff",
            "HEAD",
            "--",
            &self.path,
        ])
        .run()
        .await
    }

    /// The diff of the file between revisions (`["A", "B"]`, or `["A...B"]`: since their
    /// merge base).
    pub async fn diff(&self, revs: &[&str]) -> Result<String, GitError> {
        let mut args = vec!["diff", "--no-color", "--no-ext-diff"];
        args.extend_from_slice(revs);
        args.push("--");
        args.push(&self.path);
        self.git(&args).run().await
    }

    /// The newest `n` commits of the current branch's first-parent line that changed the
    /// file, newest first, each with its diff.
    pub async fn log(&self, n: usize, rev: &str) -> Result<Vec<CommitInfo>, GitError> {
        if self.rev(rev).await?.is_none() {
            return Ok(Vec::new());
        }
        let count = format!("-n{n}");
        let out = self
            .git(&[
                "log",
                &count,
                "--first-parent",
                "--diff-merges=first-parent",
                "--patch",
                "--no-color",
                "--no-ext-diff",
                "--format=%x1e%H%x1f%h%x1f%an <%ae>%x1f%cn%x1f%aI%x1f%P%x1f%s%x1f%b%x1f",
                rev,
                "--",
                &self.path,
            ])
            .run()
            .await?;
        Ok(out.split('\u{1e}').filter_map(parse_commit).collect())
    }

    /// Fetches `branch` of `url` into the tracking ref.
    pub async fn fetch(
        &self,
        url: &str,
        branch: &str,
        access: &Access,
    ) -> Result<Fetched, GitError> {
        let tracking = format!("{TRACKING_PREFIX}{branch}");
        let spec = format!("+refs/heads/{branch}:{tracking}");
        let (code, _, err, what) = self
            .git(&[
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
                url,
                &spec,
            ])
            .remote(access)
            .output()
            .await?;
        if code == Some(0) {
            return match self.rev(&tracking).await? {
                Some(c) => Ok(Fetched::Branch(c)),
                None => Ok(Fetched::NoBranch),
            };
        }
        if err.contains("couldn't find remote ref") {
            let _ = self.git(&["update-ref", "-d", &tracking]).output().await;
            return Ok(Fetched::NoBranch);
        }
        Err(GitError::Failed {
            what,
            code,
            stderr: err,
        })
    }

    /// (commits only here, commits only there) between HEAD and `other`.
    pub async fn ahead_behind(&self, other: &str) -> Result<(u32, u32), GitError> {
        let range = format!("HEAD...{other}");
        let out = self
            .git(&["rev-list", "--left-right", "--count", &range])
            .run()
            .await?;
        let mut it = out
            .split_whitespace()
            .map(|n| n.parse::<u32>().unwrap_or(0));
        Ok((it.next().unwrap_or(0), it.next().unwrap_or(0)))
    }

    /// One line per commit of `range` (`A..B`), newest first, at most 20.
    pub async fn oneline(&self, range: &str) -> Result<Vec<String>, GitError> {
        let out = self
            .git(&["log", "-n20", "--format=%h %s (%an)", range, "--"])
            .run()
            .await?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Fast-forwards the branch (and the work tree) to `other`; git refuses when an
    /// uncommitted change would be overwritten (then nothing changes).
    pub async fn fast_forward(&self, other: &str) -> Result<(), GitError> {
        self.git(&["merge", "--ff-only", "--quiet", other])
            .run()
            .await
            .map(|_| ())
    }

    /// Pushes HEAD to `branch` of `url` (never forced).
    pub async fn push(&self, url: &str, branch: &str, access: &Access) -> Result<(), GitError> {
        let spec = format!("HEAD:refs/heads/{branch}");
        self.git(&["push", "--quiet", "--porcelain", "--", url, &spec])
            .remote(access)
            .run()
            .await
            .map(|_| ())
    }

    /// Merges `other` into HEAD without committing, conflicting hunks resolved for
    /// `prefer`. The caller checks the result and calls [`Repo::commit_merge`] or
    /// [`Repo::abort_merge`].
    pub async fn merge_no_commit(
        &self,
        other: &str,
        prefer: Prefer,
        who: &Who,
    ) -> Result<(), GitError> {
        let strategy = match prefer {
            Prefer::Mine => "-Xours",
            Prefer::Theirs => "-Xtheirs",
        };
        self.git(&[
            "merge",
            "--no-ff",
            "--no-commit",
            "--no-verify",
            strategy,
            other,
        ])
        .who(who)
        .run()
        .await
        .map(|_| ())
    }

    /// Commits the merge in progress.
    pub async fn commit_merge(&self, message: &str, who: &Who) -> Result<String, GitError> {
        self.git(&[
            "commit",
            "--quiet",
            "--no-verify",
            "--no-gpg-sign",
            "-F",
            "-",
        ])
        .who(who)
        .stdin(message.as_bytes().to_vec())
        .run()
        .await?;
        self.rev("HEAD")
            .await?
            .ok_or_else(|| setup("no HEAD after the merge commit"))
    }

    /// Abandons the merge in progress: the branch and the work tree as before it.
    pub async fn abort_merge(&self) -> Result<(), GitError> {
        self.git(&["merge", "--abort"]).run().await.map(|_| ())
    }
}

/// `file`'s directory (canonical, so a symlinked file is found where it really is) and name.
fn split(file: &Path) -> Result<(PathBuf, String), GitError> {
    let real = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| setup(format!("{} names no file", file.display())))?;
    let dir = match real.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

fn parse_commit(rec: &str) -> Option<CommitInfo> {
    let f: Vec<&str> = rec.splitn(9, '\u{1f}').collect();
    if f.len() < 9 {
        return None;
    }
    let body = f[7].trim().to_string();
    let by = body
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Changed-by: "))
        .unwrap_or("git")
        .trim()
        .to_string();
    Some(CommitInfo {
        id: f[0].trim().to_string(),
        short: f[1].to_string(),
        author: f[2].to_string(),
        committer: f[3].to_string(),
        time: f[4].to_string(),
        merge: f[5].split_whitespace().count() > 1,
        subject: f[6].to_string(),
        body,
        by,
        diff: f[8].trim_start_matches('\n').to_string(),
    })
}
