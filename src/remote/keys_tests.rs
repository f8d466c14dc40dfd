//! Unit tests for `keys`, checked against the real `ssh-keygen`.

use super::*;

fn keygen(args: &[&str]) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen runs (apt-get install openssh-client)");
    assert!(out.status.success(), "ssh-keygen {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn identity_is_created_once_0600_and_matches_ssh_keygen() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let k1 = load_or_create_identity(&data).expect("create");
    let k2 = load_or_create_identity(&data).expect("reload");
    assert_eq!(k1.public_key().key_data(), k2.public_key().key_data());
    let priv_path = data.join("id_ed25519");
    let mode = std::fs::metadata(&priv_path)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let line = public_line(&k1);
    assert!(line.starts_with("ssh-ed25519 AAAA"), "{line}");
    assert!(line.contains(" spark-control@"), "{line}");
    // ssh-keygen reads our private key and agrees on the public key and fingerprint.
    let derived = keygen(&["-y", "-f", &priv_path.to_string_lossy()]);
    assert_eq!(
        derived.split_whitespace().nth(1),
        line.split_whitespace().nth(1)
    );
    let l = keygen(&[
        "-l",
        "-E",
        "sha256",
        "-f",
        &data.join("id_ed25519.pub").to_string_lossy(),
    ]);
    assert_eq!(
        l.split_whitespace().nth(1),
        Some(fingerprint(k1.public_key()).as_str())
    );
}

#[test]
fn rsa_identity_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("id_ed25519");
    for format in [None, Some("PEM")] {
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("pub"));
        let p = path.to_string_lossy().to_string();
        let mut args = vec!["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", &p];
        if let Some(f) = format {
            args.extend(["-m", f]);
        }
        keygen(&args);
        let err = load_or_create_identity(dir.path()).expect_err("rsa refused");
        let msg = err.to_string();
        assert!(matches!(err, KeyError::RsaUnsupported { .. }), "{msg}");
        assert!(msg.contains("RUSTSEC-2023-0071"), "{msg}");
        assert!(
            msg.contains(&format!("ssh-keygen -t ed25519 -f {p} -N ''")),
            "{msg}"
        );
    }
}

fn key(seed: u8) -> PublicKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
        .public_key()
        .clone()
}

#[test]
fn accept_new_learns_then_trusts_then_refuses_a_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kh = dir.path().join("sub/known_hosts");
    let policy = HostKeyPolicy::AcceptNew {
        known_hosts: kh.clone(),
    };
    let (a, b) = (key(1), key(2));
    let check = |host: &str, port: u16, k: &PublicKey, expected: HostKeyVerdict| {
        assert_eq!(
            policy.check(host, port, k).expect("check"),
            expected,
            "{host}:{port}"
        );
    };
    check("127.0.0.2", 2222, &a, HostKeyVerdict::Learned);
    check("127.0.0.2", 2222, &a, HostKeyVerdict::Trusted);
    check("127.0.0.2", 22, &b, HostKeyVerdict::Learned);
    check("127.0.0.2", 22, &b, HostKeyVerdict::Trusted);
    check(
        "127.0.0.2",
        2222,
        &b,
        HostKeyVerdict::Changed {
            expected_fp: fingerprint(&a),
            got_fp: fingerprint(&b),
            fix: format!(
                "remove the line for [127.0.0.2]:2222 from {} (ssh-keygen -R '[127.0.0.2]:2222' -f {}) and retry",
                kh.display(),
                kh.display()
            ),
        },
    );
    let text = std::fs::read_to_string(&kh).expect("written");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("[127.0.0.2]:2222 ssh-ed25519 AAAA"),
        "{text}"
    );
    assert!(lines[1].starts_with("127.0.0.2 ssh-ed25519 AAAA"), "{text}");
    // ssh-keygen can find the entry we wrote.
    let found = keygen(&["-F", "[127.0.0.2]:2222", "-f", &kh.to_string_lossy()]);
    assert!(found.contains("ssh-ed25519"), "{found}");
}

#[test]
fn pinned_by_line_or_fingerprint() {
    let (a, b) = (key(3), key(4));
    for pin in [a.to_openssh().expect("line"), fingerprint(&a)] {
        let p = HostKeyPolicy::Pinned(pin.clone());
        assert_eq!(
            p.check("h", 22, &a).expect("ok"),
            HostKeyVerdict::Trusted,
            "{pin}"
        );
        assert!(
            matches!(p.check("h", 22, &b).expect("ok"), HostKeyVerdict::Changed { ref got_fp, .. } if *got_fp == fingerprint(&b)),
            "{pin}"
        );
    }
    assert!(matches!(
        HostKeyPolicy::Pinned("nonsense".into()).check("h", 22, &a),
        Err(KeyError::BadPin(_))
    ));
}

#[test]
fn a_private_key_readable_by_others_is_refused_with_the_chmod_to_run() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = load_or_create_identity(dir.path()).expect("create");
    let path = dir.path().join("id_ed25519");
    let text = std::fs::read_to_string(&path).expect("read");
    let set = |mode: u32| {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    for mode in [0o644, 0o640, 0o604, 0o660, 0o601] {
        set(mode);
        let err = load_or_create_identity(dir.path()).expect_err("unprotected key refused");
        assert_eq!(
            err.to_string(),
            format!(
                "{p}: the private key is readable by others (mode {mode:03o}); ssh refuses such keys and so does spark-control. Run: chmod 600 {p}",
                p = path.display()
            )
        );
        // Refused, not repaired or replaced behind the user's back.
        let now = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(now, mode);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
    }
    for mode in [0o600, 0o400] {
        set(mode);
        let again = load_or_create_identity(dir.path()).expect("a 0600/0400 key is used");
        assert_eq!(again.public_key().key_data(), key.public_key().key_data());
    }
}
