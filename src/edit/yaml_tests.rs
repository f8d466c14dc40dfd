//! Unit tests of the edit engine: exact expected text for each case.

use super::*;

fn s(v: &str) -> EditValue {
    EditValue::Str(v.into())
}

fn check_set(input: &str, path: &[&str], v: EditValue, expected: &str) {
    let out = set(input, path, &v).unwrap_or_else(|e| panic!("set {path:?} on {input:?}: {e}"));
    assert_eq!(out, expected, "set {path:?} = {v:?} on\n{input}");
}

fn check_remove(input: &str, path: &[&str], expected: &str) {
    let out = remove(input, path).unwrap_or_else(|e| panic!("remove {path:?} on {input:?}: {e}"));
    assert_eq!(out, expected, "remove {path:?} on\n{input}");
}

#[test]
fn set_replaces_scalars_in_place() {
    check_set(
        "port: 8888  # vLLM\n",
        &["port"],
        EditValue::Int(9000),
        "port: 9000  # vLLM\n",
    );
    check_set("a: 'x'   # c\nb: 1\n", &["a"], s("u"), "a: u   # c\nb: 1\n");
    check_set(
        "a: |\n  lit\n  more\nb: 1\n",
        &["a"],
        s("z"),
        "a: z\nb: 1\n",
    );
    check_set(
        "h: { a: 1, b: 2 }\n",
        &["h", "b"],
        s("yes"),
        "h: { a: 1, b: \"yes\" }\n",
    );
    check_set("a:\nb: 1\n", &["a"], EditValue::Int(3), "a: 3\nb: 1\n");
    check_set("a: ~\n", &["a"], EditValue::Null, "a: ~\n");
    check_set("a: 1\n", &["a"], EditValue::Null, "a: null\n");
    check_set(
        "# héllo\nk: ünï  # ü\nz: 1\n",
        &["k"],
        s("ß"),
        "# héllo\nk: ß  # ü\nz: 1\n",
    );
    check_set("l: [a, b]\n", &["l", "1"], s("c"), "l: [a, c]\n");
    check_set(
        "l:\n  - a\n  - b  # x\n",
        &["l", "1"],
        s("c"),
        "l:\n  - a\n  - c  # x\n",
    );
    check_set(
        "a: 1\r\nb: 2\r\n",
        &["b"],
        EditValue::Int(3),
        "a: 1\r\nb: 3\r\n",
    );
}

#[test]
fn set_replaces_collections_in_their_own_style() {
    let list = EditValue::List(vec![s("x"), s("u")]);
    check_set("w: [a]  # c\n", &["w"], list.clone(), "w: [x, u]  # c\n");
    check_set(
        "w:   # c\n  - a\n  - b\nz: 1\n",
        &["w"],
        list.clone(),
        "w:   # c\n  - x\n  - u\nz: 1\n",
    );
    check_set(
        "w:\n- a\nz: 1\n",
        &["w"],
        list.clone(),
        "w:\n- x\n- u\nz: 1\n",
    );
    check_set(
        "w: a  # c\nz: 1\n",
        &["w"],
        list.clone(),
        "w:  # c\n  - x\n  - u\nz: 1\n",
    );
    check_set(
        "w:  # c\n  - a\nz: 1\n",
        &["w"],
        s("q"),
        "w: q  # c\nz: 1\n",
    );
    check_set("w:\n  k: 1\n", &["w"], EditValue::Map(vec![]), "w: {}\n");
    check_set(
        "u: { l: notify }\n",
        &["u", "l"],
        EditValue::Map(vec![("pin".into(), s("abc"))]),
        "u: { l: { pin: abc } }\n",
    );
}

#[test]
fn set_creates_missing_parents() {
    check_set(
        "a: 1\n",
        &["b", "c"],
        EditValue::Int(2),
        "a: 1\nb:\n  c: 2\n",
    );
    check_set(
        "a:\n    x: 1\n",
        &["a", "w", "z"],
        EditValue::Bool(true),
        "a:\n    x: 1\n    w:\n        z: true\n",
    );
    check_set(
        "a: 1 # c\n# trailer\n",
        &["b"],
        EditValue::Int(2),
        "a: 1 # c\nb: 2\n# trailer\n",
    );
    check_set("h: {}\n", &["h", "k"], s("v"), "h:\n  k: v\n");
    check_set(
        "h: {}  # c\n",
        &["h", "k", "j"],
        s("v"),
        "h:  # c\n  k:\n    j: v\n",
    );
    check_set(
        "f: { h: {} }\n",
        &["f", "h", "k"],
        s("v"),
        "f: { h: { k: v } }\n",
    );
    check_set(
        "w: []  # c\n",
        &["w"],
        EditValue::List(vec![s("a")]),
        "w:  # c\n  - a\n",
    );
    check_set(
        "h: { a: 1 }\n",
        &["h", "k", "j"],
        s("v"),
        "h: { a: 1, k: { j: v } }\n",
    );
    check_set(
        "o:\n",
        &["o", "m", "x"],
        EditValue::Int(1),
        "o:\n  m:\n    x: 1\n",
    );
    check_set(
        "o: null # none\n",
        &["o", "m"],
        EditValue::Int(1),
        "o: # none\n  m: 1\n",
    );
    check_set("", &["a", "b"], EditValue::Int(1), "a:\n  b: 1\n");
    check_set(
        "# only a comment",
        &["a"],
        EditValue::Int(1),
        "# only a comment\na: 1\n",
    );
    check_set(
        "m:\n  x: { r: a }\n",
        &["m", "v"],
        EditValue::Map(vec![("r".into(), s("b"))]),
        "m:\n  x: { r: a }\n  v: { r: b }\n",
    );
    check_set(
        "m:\n  x:\n    r: a\n",
        &["m", "v"],
        EditValue::Map(vec![
            ("r".into(), s("b")),
            ("l".into(), EditValue::List(vec![s("p")])),
        ]),
        "m:\n  x:\n    r: a\n  v:\n    r: b\n    l:\n      - p\n",
    );
    check_set(
        "s:\n  - a: 1\n    b: 2\n",
        &["s", "0", "c"],
        EditValue::Int(3),
        "s:\n  - a: 1\n    b: 2\n    c: 3\n",
    );
}

#[test]
fn unchanged_value_leaves_text_byte_identical() {
    check_set(
        "g: 0.80  # eighty\n",
        &["g"],
        EditValue::Float(0.8),
        "g: 0.80  # eighty\n",
    );
    check_set(
        "w: [ a,b ]\n",
        &["w"],
        EditValue::List(vec![s("a"), s("b")]),
        "w: [ a,b ]\n",
    );
}

#[test]
fn remove_drops_the_entry_and_its_lines() {
    check_remove(
        "# head\na: 1  # c\nb:\n  x: 1\n  # inner\n  y: 2\nc: 3\n",
        &["b"],
        "# head\na: 1  # c\nc: 3\n",
    );
    check_remove("# about a\na: 1\nb: 2\n", &["a"], "# about a\nb: 2\n");
    check_remove("a: 1\nb: 2", &["b"], "a: 1\n");
    check_remove(
        "m:\n  only: 1  # c\nz: 1\n",
        &["m", "only"],
        "m: {}\nz: 1\n",
    );
    check_remove(
        "m:  # models\n  only:\n    r: 1\nz: 1\n",
        &["m", "only"],
        "m: {}  # models\nz: 1\n",
    );
    check_remove("only: 1\n", &["only"], "{}\n");
    check_remove(
        "h: { a: 1, b: 2, c: 3 }\n",
        &["h", "b"],
        "h: { a: 1, c: 3 }\n",
    );
    check_remove(
        "h: { a: 1, b: 2, c: 3 }\n",
        &["h", "a"],
        "h: { b: 2, c: 3 }\n",
    );
    check_remove(
        "h: { a: 1, b: 2, c: 3 }\n",
        &["h", "c"],
        "h: { a: 1, b: 2 }\n",
    );
    check_remove("h: { a: 1 }  # c\n", &["h", "a"], "h: {}  # c\n");
    check_remove(
        "h: { a: 1,\n     b: 2,\n     c: 3 }\n",
        &["h", "b"],
        "h: { a: 1,\n     c: 3 }\n",
    );
    check_remove(
        "h: { a: 1, b: 2,\n     c: 3 }\n",
        &["h", "b"],
        "h: { a: 1,\n     c: 3 }\n",
    );
    check_remove("l: [a, b]\n", &["l", "0"], "l: [b]\n");
    check_remove("l:\n  - a\n  - b\nz: 1\n", &["l", "1"], "l:\n  - a\nz: 1\n");
    check_remove("l:\n  - a\nz: 1\n", &["l", "0"], "l: []\nz: 1\n");
    check_remove(
        "s:\n  - a: 1\n    b: 2\n",
        &["s", "0", "a"],
        "s:\n  - b: 2\n",
    );
    check_remove("s:\n  - a: 1\n", &["s", "0", "a"], "s:\n  - {}\n");
}

#[test]
fn removing_something_absent_is_a_no_op() {
    check_remove("a: 1\n", &["b"], "a: 1\n");
    check_remove("a: 1\n", &["b", "c"], "a: 1\n");
    check_remove("a:\n", &["a", "c"], "a:\n");
    check_remove("", &["a"], "");
}

#[test]
fn errors_say_what_and_where() {
    let e = set("a: 1\nb: 2\n", &["b", "c"], &EditValue::Int(1)).expect_err("b is a scalar");
    assert_eq!(
        e,
        EditError::NotAContainer {
            path: "b.c".into(),
            at: "b".into(),
            line: 2,
            found: "scalar".into()
        }
    );
    assert!(matches!(
        set("a: [1\n", &["a"], &EditValue::Int(1)),
        Err(EditError::Parse { .. })
    ));
    assert!(matches!(
        set("a: 1\n", &["a"], &EditValue::Float(f64::NAN)),
        Err(EditError::InvalidValue { .. })
    ));
    let e = set("l: [a]\n", &["l", "3"], &EditValue::Int(1)).expect_err("out of range");
    assert!(
        matches!(
            e,
            EditError::IndexOutOfRange {
                index: 3,
                len: 1,
                line: 1,
                ..
            }
        ),
        "{e}"
    );
    let e = set("a: &x 1\nb: *x\n", &["a"], &EditValue::Int(2)).expect_err("anchored");
    assert!(matches!(e, EditError::Unsupported { line: 1, .. }), "{e}");
    assert!(matches!(
        set("a: 1\n---\nb: 2\n", &["a"], &EditValue::Int(2)),
        Err(EditError::Parse { .. })
    ));
}

#[test]
fn garbage_never_panics() {
    for input in [
        "{",
        "a: [",
        "- - -",
        ": :",
        "a: \"x",
        "\t\ta: 1",
        "a:\n\t- b",
        "? x\n: y\n",
        "[a, {b: c}]",
        "a: *nope",
    ] {
        let _ = set(input, &["a"], &EditValue::Int(1));
        let _ = remove(input, &["a"]);
    }
}
