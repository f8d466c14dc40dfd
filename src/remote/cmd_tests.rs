//! Unit tests for `cmd`: quoting cases as data, and real `sh -c` round trips.

use super::*;

const HOSTILE: &[&str] = &[
    "x; rm -rf ~",
    "$(id)",
    "`id`",
    "'\"",
    "it's",
    "a\nb",
    "",
    " leading and trailing ",
    "ünï©ødé ✓",
    "$HOME",
    "~/not-expanded-as-literal",
    "*",
    "a\\b",
    "--flag=value with spaces",
    "!event",
    "#comment",
    "\t",
];

fn check_quote(input: &str, expected: &str) {
    assert_eq!(quote(input), expected, "quote({input:?})");
}

#[test]
fn quote_cases() {
    check_quote("", "''");
    check_quote("abc", "'abc'");
    check_quote("x; rm -rf ~", "'x; rm -rf ~'");
    check_quote("$(id)", "'$(id)'");
    check_quote("`id`", "'`id`'");
    check_quote("it's", "'it'\\''s'");
    check_quote("'\"", "''\\''\"'");
    check_quote("a\nb", "'a\nb'");
    check_quote("ünï", "'ünï'");
}

fn check_render(script: Script, expected: &str) {
    assert_eq!(render(&script).expect("renders"), expected);
}

#[test]
fn render_cases() {
    check_render(
        Cmd::new("printf").arg("%s\n").arg("x; y").into(),
        "'printf' '%s\n' 'x; y' </dev/null",
    );
    check_render(
        Cmd::new("./launch-cluster.sh")
            .arg("stop")
            .cwd("~/spark-vllm-docker")
            .into(),
        "( cd \"$HOME\"/'spark-vllm-docker' && './launch-cluster.sh' 'stop' ) </dev/null",
    );
    check_render(
        Cmd::new("hf")
            .arg("download")
            .env("HF_HOME", "~/x y")
            .into(),
        "HF_HOME='~/x y' 'hf' 'download' </dev/null",
    );
    check_render(
        Cmd::new("ls")
            .path_arg("~")
            .path_arg("~/a b")
            .path_arg("/abs")
            .path_arg("~user/x")
            .into(),
        "'ls' \"$HOME\" \"$HOME\"/'a b' '/abs' '~user/x' </dev/null",
    );
    check_render(
        Script::And(vec![
            Cmd::new("true").into(),
            Script::Seq(vec![Cmd::new("a").into(), Cmd::new("b").into()]),
        ]),
        "'true' </dev/null && { 'a' </dev/null; 'b' </dev/null\n}",
    );
    check_render(
        Script::Pipe(vec![
            Cmd::new("docker").arg("ps"),
            Cmd::new("tail").arg("-n1"),
        ]),
        "'docker' 'ps' </dev/null | 'tail' '-n1'",
    );
    check_render(
        Script::Detached {
            cmd: Cmd::new("./run").arg("a'b").env("K", "v").cwd("~/d"),
            log: "~/run.log".into(),
        },
        "{ ( cd \"$HOME\"/'d' && K='v' setsid nohup './run' 'a'\\''b' ) </dev/null >>\"$HOME\"/'run.log' 2>&1 & }",
    );
    check_render(Script::Raw("echo hi"), "echo hi");
    check_render(Script::And(vec![]), "true");
}

#[test]
fn render_errors() {
    let bad = |s: Script, e: CmdError| assert_eq!(render(&s), Err(e));
    bad(
        Cmd::new("x").env("1A", "v").into(),
        CmdError::BadEnvName("1A".into()),
    );
    bad(
        Cmd::new("x").env("A-B", "v").into(),
        CmdError::BadEnvName("A-B".into()),
    );
    bad(
        Cmd::new("x").env("", "v").into(),
        CmdError::BadEnvName("".into()),
    );
    bad(
        Cmd::new("x").arg("a\0b").into(),
        CmdError::NulByte("a\\0b".into()),
    );
    bad(Script::Pipe(vec![]), CmdError::Empty);
}

#[test]
fn env_names() {
    for ok in ["A", "_", "a1", "HF_HOME", "_x_9"] {
        assert!(valid_env_name(ok), "{ok}");
    }
    for bad in ["", "1", "a-b", "a b", "a=b", "é"] {
        assert!(!valid_env_name(bad), "{bad}");
    }
}

/// Runs the rendered text through the real `sh -c` and returns stdout.
fn sh(script: &Script, env: &[(&str, &str)]) -> Vec<u8> {
    let text = render(script).expect("renders");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&text)
        .envs(env.iter().copied())
        .output()
        .expect("sh runs");
    assert!(out.status.success(), "sh failed for {text:?}: {out:?}");
    out.stdout
}

#[test]
fn hostile_arguments_arrive_literally_through_sh() {
    let script = Cmd::new("printf")
        .arg("%s\\0")
        .args(HOSTILE.iter().copied())
        .into();
    let stdout = sh(&script, &[]);
    let got: Vec<&[u8]> = stdout.split(|b| *b == 0).collect();
    let expected: Vec<&[u8]> = HOSTILE
        .iter()
        .map(|s| s.as_bytes())
        .chain([&b""[..]])
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn hostile_env_values_and_cwd_arrive_literally() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weird = dir.path().join("d; $(id) 'q'");
    std::fs::create_dir(&weird).expect("mkdir");
    for v in HOSTILE {
        let script: Script = Cmd::new("sh")
            .arg("-c")
            .arg("printf '%s|%s' \"$V\" \"$(pwd)\"")
            .env("V", *v)
            .cwd(weird.to_string_lossy())
            .into();
        let out = String::from_utf8(sh(&script, &[])).expect("utf8");
        assert_eq!(out, format!("{v}|{}", weird.display()));
    }
}

#[test]
fn tilde_expands_to_home_for_paths_only() {
    let home = tempfile::tempdir().expect("tempdir");
    let home_s = home.path().to_string_lossy().to_string();
    std::fs::create_dir(home.path().join("sub dir")).expect("mkdir");
    let script: Script = Cmd::new("printf")
        .arg("%s\\n")
        .path_arg("~/sub dir")
        .arg("~/literal")
        .cwd("~/sub dir")
        .into();
    let out = String::from_utf8(sh(&script, &[("HOME", &home_s)])).expect("utf8");
    assert_eq!(out, format!("{home_s}/sub dir\n~/literal\n"));
}

#[test]
fn stdin_is_dev_null() {
    // `read` gets EOF at once and fails; without the redirect it would read our stdin.
    let script: Script = Cmd::new("sh")
        .arg("-c")
        .arg("read x; echo \"rc=$?\"")
        .into();
    let text = render(&script).expect("renders");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&text)
        .stdin(std::process::Stdio::piped())
        .output()
        .expect("sh runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "rc=1\n");
}

#[test]
fn and_stops_at_first_failure_and_detached_returns_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("log");
    let script = Script::And(vec![
        Cmd::new("true").into(),
        Script::Detached {
            cmd: Cmd::new("sh")
                .arg("-c")
                .arg("echo started; sleep 0.3; echo done"),
            log: log.to_string_lossy().into(),
        },
        Cmd::new("echo").arg("after").into(),
        Cmd::new("false").into(),
        Cmd::new("echo").arg("never").into(),
    ]);
    let text = render(&script).expect("renders");
    let t0 = std::time::Instant::now();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&text)
        .output()
        .expect("sh runs");
    assert!(
        t0.elapsed() < std::time::Duration::from_millis(250),
        "detached blocked"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "after\n");
    assert_eq!(out.status.code(), Some(1));
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(
        std::fs::read_to_string(&log).expect("log written"),
        "started\ndone\n"
    );
}
