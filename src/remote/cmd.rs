//! Commands as argv, and **the one place** that quotes for the remote shell.
//!
//! A [`Cmd`] is a program, its arguments, extra environment and an optional working
//! directory: never a string. A [`Script`] combines commands (`a && b`, `a; b`, pipes,
//! a detached launch). [`render`] turns a script into POSIX `sh` text in which every
//! piece of user text is single-quoted exactly once, so a model name like `x; rm -rf ~`
//! arrives at the remote program as one literal argv element.
//!
//! Rules the rendering keeps:
//! - stdin of every command is `/dev/null`, so a `[Y/n]` prompt reads EOF instead of
//!   blocking the session;
//! - `~` or `~/rest` at the start of a program, cwd, path argument ([`Cmd::path_arg`]) or
//!   detached log path expands to `"$HOME"/'rest'` (launcher dirs are written
//!   `~/spark-vllm-docker`); everywhere else `~` is literal;
//! - env names must match `[A-Za-z_][A-Za-z0-9_]*`; NUL bytes cannot be passed in argv:
//!   both are errors from [`render`];
//! - [`Script::Raw`] takes only `&'static str`: fixed text written in this program,
//!   never user text.
//!
//! This module does no IO; it must not run anything.

use std::fmt::Write as _;

/// One program invocation: argv plus extra environment and working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    argv: Vec<Word>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
}

/// An argv element; `Path` elements get `~/` expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Literal(String),
    Path(String),
}

/// A shell script built from commands. Rendered by [`render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// One command.
    One(Cmd),
    /// `a && b && c`: stop at the first failure.
    And(Vec<Script>),
    /// `a; b; c`: run all, the status is the last one's.
    Seq(Vec<Script>),
    /// `a | b | c`: the status is the last one's.
    Pipe(Vec<Cmd>),
    /// Start `cmd` so that it outlives the session: `setsid nohup`, all fds redirected
    /// (`</dev/null >>log 2>&1`), backgrounded. `log` is a path (relative paths are
    /// relative to the login directory, `~/` expands); it is appended to.
    Detached { cmd: Cmd, log: String },
    /// Fixed shell text written by us. Never user text: the type only admits literals.
    Raw(&'static str),
}

/// Why a script cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdError {
    #[error("environment variable name {0:?} is invalid: use letters, digits and '_', not starting with a digit")]
    BadEnvName(String),
    #[error("argument {0:?} contains a NUL byte, which cannot be passed to a program")]
    NulByte(String),
    #[error("a command needs a program name")]
    Empty,
}

impl Cmd {
    /// A command running `prog` (a `~/` prefix expands to the home directory).
    pub fn new(prog: impl Into<String>) -> Self {
        Cmd {
            argv: vec![Word::Path(prog.into())],
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Append one literal argument (quoted; never expanded).
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.argv.push(Word::Literal(a.into()));
        self
    }

    /// Append literal arguments.
    pub fn args<I, S>(mut self, items: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.argv
            .extend(items.into_iter().map(|a| Word::Literal(a.into())));
        self
    }

    /// Append a path argument: a leading `~` or `~/` expands to the home directory.
    pub fn path_arg(mut self, p: impl Into<String>) -> Self {
        self.argv.push(Word::Path(p.into()));
        self
    }

    /// Set an environment variable for this command only.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Run in this directory (`~/` expands). A missing directory fails the command.
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// The argv as plain strings (for logs and tests; not shell text).
    pub fn argv(&self) -> Vec<&str> {
        self.argv
            .iter()
            .map(|w| match w {
                Word::Literal(s) | Word::Path(s) => s.as_str(),
            })
            .collect()
    }
}

impl From<Cmd> for Script {
    fn from(c: Cmd) -> Self {
        Script::One(c)
    }
}

/// Render a script as POSIX `sh` text. Every user string is single-quoted once.
pub fn render(script: &Script) -> Result<String, CmdError> {
    let mut out = String::new();
    render_into(script, &mut out)?;
    Ok(out)
}

fn render_into(script: &Script, out: &mut String) -> Result<(), CmdError> {
    match script {
        Script::One(c) => render_cmd(c, out, true),
        Script::And(parts) => render_list(parts, " && ", out),
        Script::Seq(parts) => render_list(parts, "; ", out),
        Script::Pipe(cmds) => {
            if cmds.is_empty() {
                return Err(CmdError::Empty);
            }
            for (i, c) in cmds.iter().enumerate() {
                if i > 0 {
                    out.push_str(" | ");
                }
                // Only the first command of a pipe reads stdin.
                render_cmd(c, out, i == 0)?;
            }
            Ok(())
        }
        Script::Detached { cmd, log } => {
            // The whole group is redirected and backgrounded, so no process keeps the
            // session's fds open; setsid leaves the session's process group.
            out.push_str("{ ( ");
            if let Some(dir) = &cmd.cwd {
                out.push_str("cd ");
                push_path(dir, out)?;
                out.push_str(" && ");
            }
            push_env(&cmd.env, out)?;
            out.push_str("setsid nohup ");
            push_argv(&cmd.argv, out)?;
            out.push_str(" ) </dev/null >>");
            push_path(log, out)?;
            out.push_str(" 2>&1 & }");
            Ok(())
        }
        Script::Raw(text) => {
            out.push_str(text);
            Ok(())
        }
    }
}

fn render_list(parts: &[Script], sep: &str, out: &mut String) -> Result<(), CmdError> {
    if parts.is_empty() {
        out.push_str("true");
        return Ok(());
    }
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        match p {
            Script::One(_) | Script::Detached { .. } => render_into(p, out)?,
            _ => {
                // Group so precedence of the inner list cannot leak out.
                out.push_str("{ ");
                render_into(p, out)?;
                out.push_str("\n}");
            }
        }
    }
    Ok(())
}

fn render_cmd(c: &Cmd, out: &mut String, stdin_null: bool) -> Result<(), CmdError> {
    let sub = c.cwd.is_some();
    if let Some(dir) = &c.cwd {
        // A subshell, so the cd does not leak into the next command of a list.
        out.push_str("( cd ");
        push_path(dir, out)?;
        out.push_str(" && ");
    }
    push_env(&c.env, out)?;
    push_argv(&c.argv, out)?;
    if sub {
        out.push_str(" )");
    }
    if stdin_null {
        out.push_str(" </dev/null");
    }
    Ok(())
}

fn push_env(env: &[(String, String)], out: &mut String) -> Result<(), CmdError> {
    for (k, v) in env {
        if !valid_env_name(k) {
            return Err(CmdError::BadEnvName(k.clone()));
        }
        check_nul(v)?;
        let _ = write!(out, "{k}=");
        out.push_str(&quote(v));
        out.push(' ');
    }
    Ok(())
}

fn push_argv(argv: &[Word], out: &mut String) -> Result<(), CmdError> {
    if argv.is_empty() {
        return Err(CmdError::Empty);
    }
    for (i, w) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match w {
            Word::Literal(s) => {
                check_nul(s)?;
                out.push_str(&quote(s));
            }
            Word::Path(p) => push_path(p, out)?,
        }
    }
    Ok(())
}

/// A path: `~` / `~/rest` expand to `"$HOME"` / `"$HOME"/'rest'`, the rest is quoted.
fn push_path(p: &str, out: &mut String) -> Result<(), CmdError> {
    check_nul(p)?;
    if p == "~" {
        out.push_str("\"$HOME\"");
    } else if let Some(rest) = p.strip_prefix("~/") {
        out.push_str("\"$HOME\"/");
        if !rest.is_empty() {
            out.push_str(&quote(rest));
        }
    } else {
        out.push_str(&quote(p));
    }
    Ok(())
}

fn check_nul(s: &str) -> Result<(), CmdError> {
    if s.contains('\0') {
        Err(CmdError::NulByte(s.replace('\0', "\\0")))
    } else {
        Ok(())
    }
}

/// Single-quote `s` for POSIX sh: `'` becomes `'\''`. The empty string becomes `''`.
pub fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('\'');
    for ch in s.chars() {
        if ch == '\'' {
            q.push_str("'\\''");
        } else {
            q.push(ch);
        }
    }
    q.push('\'');
    q
}

/// `[A-Za-z_][A-Za-z0-9_]*`
pub fn valid_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
#[path = "cmd_tests.rs"]
mod tests;
