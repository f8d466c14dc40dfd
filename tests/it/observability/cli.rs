//! The command line as shells, `man` and scripts use it: completions that real bash, fish
//! and zsh load and answer with, man pages groff renders without a warning, exit codes
//! (usage 2, failure 1), every environment variable the program reads named in `--help`,
//! and `serve` on a busy port failing before it writes anything.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spark-control"));
    c.stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("spark-control")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn completions(shell: &str, dir: &Path) -> std::path::PathBuf {
    let out = run(&["completions", shell]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = dir.join(format!("spark-control.{shell}"));
    std::fs::write(&file, &out.stdout).expect("write");
    file
}

/// What bash's completion function offers for the words of `line` (the last one is the
/// word being completed).
fn bash_complete(script: &Path, line: &[&str]) -> Vec<String> {
    let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let cur = line.last().copied().unwrap_or("");
    let prev = line.get(line.len().wrapping_sub(2)).copied().unwrap_or("");
    let prog = format!(
        "source '{}'; fn=$(complete -p spark-control | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p'); \
         COMP_WORDS=({}); COMP_CWORD={}; \"$fn\" spark-control '{cur}' '{prev}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.join(" "),
        line.len() - 1
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &prog])
        .output()
        .expect("bash");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn completions_load_and_answer_in_bash_fish_and_zsh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bash = completions("bash", dir.path());
    assert_eq!(bash_complete(&bash, &["spark-control", "ser"]), ["serve"]);
    // A subcommand's own flags (broken in stock clap_complete for hyphenated names).
    assert_eq!(
        bash_complete(&bash, &["spark-control", "serve", "--li"]),
        ["--listen"]
    );
    let shells = bash_complete(&bash, &["spark-control", "completions", ""]);
    for s in ["bash", "fish", "zsh"] {
        assert!(shells.iter().any(|x| x == s), "{shells:?}");
    }

    let fish = completions("fish", dir.path());
    let out = Command::new("fish")
        .args(["--no-config", "-c"])
        .arg(format!(
            "source '{}'; complete -C 'spark-control ser'; complete -C 'spark-control serve --li'",
            fish.display()
        ))
        .output()
        .expect("fish");
    let offered = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        offered.lines().any(|l| l.starts_with("serve\t")),
        "{offered}"
    );
    assert!(
        offered.lines().any(|l| l.starts_with("--listen\t")),
        "{offered}"
    );

    let zsh = completions("zsh", dir.path());
    let out = Command::new("zsh")
        .args(["-f", "-c"])
        .arg(format!(
            "autoload -U compinit; compinit -u -D; source '{}'; print -r -- $_comps[spark-control]",
            zsh.display()
        ))
        .output()
        .expect("zsh");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "_spark-control",
        "zsh registered the function"
    );

    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_pages_render_without_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(&["man", "--out-dir", &dir.path().display().to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "spark-control.1",
        "spark-control-serve.1",
        "spark-control-demo.1",
        "spark-control-completions.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} in {pages:?}");
    }
    assert!(
        !pages.iter().any(|p| p.contains("sim")),
        "hidden commands get no page: {pages:?}"
    );
    for page in &pages {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
            .arg(dir.path().join(page))
            .output()
            .expect("groff");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{page}: {}",
            text(&out.stderr)
        );
        let rendered = text(&out.stdout);
        if page == "spark-control-serve.1" {
            assert!(rendered.contains("SPARK_CONTROL_LISTEN"), "{rendered}");
            assert!(rendered.contains("Exit status"), "{rendered}");
        }
    }
    let main = run(&["man"]);
    assert!(main.status.success());
    assert!(text(&main.stdout).starts_with(".ie"), "roff on stdout");
}

#[test]
fn usage_errors_exit_2_failures_exit_1() {
    assert_eq!(run(&["--help"]).status.code(), Some(0));
    assert_eq!(run(&["--version"]).status.code(), Some(0));
    assert_eq!(run(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(run(&["serve", "--no-such-flag"]).status.code(), Some(2));
    assert_eq!(
        run(&["serve", "--listen", "not-an-address"]).status.code(),
        Some(2)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "version: 1\nactive_model: [\n").expect("write");
    assert_eq!(
        run(&["validate", &bad.display().to_string()]).status.code(),
        Some(1)
    );
    let missing = dir.path().join("missing-token");
    // The file wins over the variable (both set is no usage error), and a missing one fails.
    let out = bin()
        .args([
            "serve",
            "--admin-token-file",
            &missing.display().to_string(),
            "--data-dir",
            &dir.path().join("state").display().to_string(),
        ])
        .env(
            "SPARK_CONTROL_ADMIN_TOKEN",
            "a-long-enough-admin-token-0123",
        )
        .output()
        .expect("serve");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("missing-token"),
        "{}",
        text(&out.stderr)
    );
}

/// Every environment variable the source reads (`env::var("…")`, `var_os("…")` and
/// clap's `env = "…"`) is named in `--help` or in `serve --help`.
#[test]
fn every_environment_variable_is_in_help() {
    let mut names = std::collections::BTreeSet::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                // The simulator's processes read their own variables; they are not the CLI's.
                if !path.ends_with("sim") && !path.ends_with("bin") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let src = std::fs::read_to_string(&path).expect("read");
                // A file's unit tests (its `#[cfg(test)]` module, last by house rule) read
                // variables for developers (`UPDATE_WIRE_TYPES`), not for the CLI's users.
                let src = src.split("#[cfg(test)]").next().unwrap_or_default();
                for marker in ["env::var(\"", "var_os(\"", "env = \""] {
                    for piece in src.split(marker).skip(1) {
                        if let Some(name) = piece.split('"').next() {
                            names.insert(name.to_string());
                        }
                    }
                }
            }
        }
    }
    // The host name comes from the system, not from the user.
    names.remove("HOSTNAME");
    assert!(names.contains("SPARK_CONTROL_ADMIN_TOKEN"), "{names:?}");
    let help = text(&run(&["--help"]).stdout) + &text(&run(&["serve", "--help"]).stdout);
    for name in &names {
        assert!(help.contains(name.as_str()), "{name} is not in --help");
    }
    // A token in the environment is named, never shown.
    let out = bin()
        .args(["serve", "--help"])
        .env("SPARK_CONTROL_ADMIN_TOKEN", "very-secret-token-value-123")
        .output()
        .expect("help");
    assert!(
        !text(&out.stdout).contains("very-secret"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn serve_on_a_busy_port_fails_before_writing_anything() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    for cmd in ["serve", "demo"] {
        let root = dir.path().join(cmd);
        std::fs::create_dir(&root).expect("mkdir");
        let mut args = vec![cmd.to_string(), "--listen".into(), addr.clone()];
        match cmd {
            "serve" => args.extend([
                "--desired".into(),
                root.join("desired.yaml").display().to_string(),
                "--data-dir".into(),
                root.join("state").display().to_string(),
            ]),
            _ => args.extend(["--dir".into(), root.join("demo").display().to_string()]),
        }
        let out = bin().args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("cannot listen on"),
            "{}",
            text(&out.stderr)
        );
        let left: Vec<_> = std::fs::read_dir(&root).expect("dir").collect();
        assert!(left.is_empty(), "{cmd} wrote {left:?} before failing");
    }
    drop(busy);
}
