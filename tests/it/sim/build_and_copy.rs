//! The fake `build-and-copy.sh` against the real script's contract: `-c` takes the
//! hosts after it (comma- or space-separated) and "copies" the built commit to each;
//! `-c` alone autodiscovers (and finds nobody unless told to); unknown options fail.

use super::World;

fn built(w: &World, host: &str) -> Option<String> {
    std::fs::read_to_string(w.root(host).join("built-rev"))
        .ok()
        .map(|s| s.trim().to_string())
}

#[test]
fn copy_to_named_hosts_autodiscovery_and_bad_options() {
    let w = World::new();
    w.knob("spark1", "build-seconds", "1");
    let rev = w
        .sh("spark1", "git rev-parse HEAD")
        .stdout
        .trim()
        .to_string();
    // Named worker (also in a comma list): the worker gets the image of the checkout.
    let out = w.sh("spark1", "./build-and-copy.sh -c 127.0.0.3, -u me");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(built(&w, "spark1").as_deref(), Some(rev.as_str()));
    assert_eq!(built(&w, "spark2").as_deref(), Some(rev.as_str()));
    let copied = std::fs::read_to_string(w.root("spark1").join("copied-to")).expect("list");
    assert_eq!(copied, "127.0.0.3\n");
    // No hosts after -c: autodiscovery, which finds nobody here; nothing is built.
    std::fs::remove_file(w.root("spark2").join("built-rev")).expect("rm");
    let out = w.sh("spark1", "./build-and-copy.sh -c");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("found no other nodes"), "{out:?}");
    assert_eq!(built(&w, "spark2"), None);
    // An address that is no simulated host: the copy fails.
    let out = w.sh("spark1", "./build-and-copy.sh -c 127.0.0.9");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("Copy to 127.0.0.9 failed."), "{out:?}");
    // Without -c: built on the head only.
    let out = w.sh("spark1", "./build-and-copy.sh");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(built(&w, "spark2"), None);
    let out = w.sh("spark1", "./build-and-copy.sh --solo");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout.contains("Unknown parameter passed: --solo"),
        "{out:?}"
    );
}
