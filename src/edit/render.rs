//! Rendering of new values as YAML text, in block or flow style.
//!
//! Owns: the quoting policy. A string is emitted plain only when it is unambiguous in every
//! context we emit it in (block value, flow item, key); otherwise it is double-quoted with
//! escapes, so no user text can change the document's structure. Must not: parse or edit
//! documents, do IO.

use super::yaml::EditValue;

/// Words a YAML 1.1 or 1.2 reader may turn into something other than a string.
const RESERVED: &[&str] = &[
    "null", "~", "true", "false", "yes", "no", "on", "off", "y", "n", "<<", "=", ".inf", "+.inf",
    "-.inf", ".nan",
];

/// Render a string scalar: plain when safe, else double-quoted.
pub(crate) fn string(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        quoted(s)
    }
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.trim() != s
        || s.chars()
            .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}'))
    {
        return false;
    }
    // Characters that mean something somewhere in YAML: never plain.
    if s.contains([':', '#', ',', '[', ']', '{', '}', '"', '\'', '\\', '\t']) {
        return false;
    }
    let second = s.chars().nth(1);
    let lead_ok = match first {
        '-' => second.is_some_and(|c| c.is_alphanumeric() || c == '-') && !s.starts_with("---"),
        '?' | '&' | '*' | '!' | '|' | '>' | '%' | '@' | '`' => false,
        '.' => !s.starts_with("..."),
        _ => true,
    };
    if !lead_ok || RESERVED.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    !numeric_like(s)
}

/// Anything a YAML reader might read as a number or a date.
fn numeric_like(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let no_us: String = lower.chars().filter(|&c| c != '_').collect();
    no_us.parse::<f64>().is_ok()
        || ["0x", "0o", "0b"].iter().any(|p| unsigned.starts_with(p))
        || unsigned.starts_with(".inf")
        || unsigned.starts_with(".nan")
        || (s.len() >= 5
            && s.as_bytes()[..4].iter().all(u8::is_ascii_digit)
            && s.as_bytes()[4] == b'-')
        || (unsigned.starts_with(|c: char| c.is_ascii_digit())
            && unsigned
                .chars()
                .all(|c| c.is_ascii_digit() || "._:eE+-".contains(c))
            && unsigned.matches('.').count() <= 1)
}

/// Double-quoted string with every non-printable or structural character escaped.
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if c.is_control() || c == '\u{feff}' => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Render a scalar or an empty collection on one line; `None` for non-empty collections.
pub(crate) fn inline(v: &EditValue) -> Option<String> {
    Some(match v {
        EditValue::Null => "null".into(),
        EditValue::Bool(b) => b.to_string(),
        EditValue::Int(i) => i.to_string(),
        EditValue::Float(f) => float(*f),
        EditValue::Str(s) => string(s),
        EditValue::List(l) if l.is_empty() => "[]".into(),
        EditValue::Map(m) if m.is_empty() => "{}".into(),
        EditValue::List(_) | EditValue::Map(_) => return None,
    })
}

fn float(f: f64) -> String {
    // Non-finite floats are rejected before rendering (`yaml::check_value`).
    let s = format!("{f}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// Flow-style rendering: `{ a: 1, b: [x, y] }`.
pub(crate) fn flow(v: &EditValue) -> String {
    if let Some(s) = inline(v) {
        return s;
    }
    match v {
        EditValue::List(items) => {
            format!(
                "[{}]",
                items.iter().map(flow).collect::<Vec<_>>().join(", ")
            )
        }
        EditValue::Map(entries) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", string(k), flow(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        _ => String::new(),
    }
}

/// Block layout settings inferred from the file.
#[derive(Clone, Copy)]
pub(crate) struct Layout<'a> {
    pub step: usize,
    pub nl: &'a str,
}

/// A block mapping entry `key: value` at `indent`; the first line carries no indentation.
/// With `prefer_flow`, a collection value is written in flow style on the key's line.
pub(crate) fn block_entry(
    key: &str,
    v: &EditValue,
    indent: usize,
    l: Layout,
    prefer_flow: bool,
) -> String {
    let k = string(key);
    match inline(v) {
        Some(s) => format!("{k}: {s}"),
        None if prefer_flow => format!("{k}: {}", flow(v)),
        None => {
            let child = indent + l.step;
            format!(
                "{k}:{}{}{}",
                l.nl,
                " ".repeat(child),
                block_value(v, child, l)
            )
        }
    }
}

/// A value laid out in block style at `indent`; the first line carries no indentation
/// (the caller places it), later lines are indented.
pub(crate) fn block_value(v: &EditValue, indent: usize, l: Layout) -> String {
    if let Some(s) = inline(v) {
        return s;
    }
    let pad = " ".repeat(indent);
    let lines: Vec<String> = match v {
        EditValue::Map(entries) => entries
            .iter()
            .map(|(k, v)| block_entry(k, v, indent, l, false))
            .collect(),
        EditValue::List(items) => items
            .iter()
            .map(|item| match item {
                EditValue::List(_) => format!("- {}", flow(item)),
                _ => format!("- {}", block_value(item, indent + 2, l)),
            })
            .collect(),
        _ => Vec::new(),
    };
    lines.join(&format!("{}{pad}", l.nl))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(string(input), expected, "rendering {input:?}");
    }

    #[test]
    fn strings_are_plain_only_when_unambiguous() {
        for (i, e) in [
            ("qwen36", "qwen36"),
            ("org/Some-Model-FP8", "org/Some-Model-FP8"),
            ("192.168.1.101", "192.168.1.101"),
            ("~/spark-vllm-docker", "~/spark-vllm-docker"),
            ("--reasoning-parser", "--reasoning-parser"),
            ("héllo wörld", "héllo wörld"),
            ("", "\"\""),
            ("yes", "\"yes\""),
            ("No", "\"No\""),
            ("~", "\"~\""),
            ("null", "\"null\""),
            ("123", "\"123\""),
            ("0.80", "\"0.80\""),
            ("1e5", "\"1e5\""),
            ("0x1F", "\"0x1F\""),
            ("1_000", "\"1_000\""),
            ("2024-01-02", "\"2024-01-02\""),
            ("a: b", "\"a: b\""),
            ("# c", "\"# c\""),
            ("{}", "\"{}\""),
            ("- x", "\"- x\""),
            ("&anchor", "\"&anchor\""),
            ("*alias", "\"*alias\""),
            ("x\n  evil: 1", "\"x\\n  evil: 1\""),
            (" lead", "\" lead\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("bell\u{7}", "\"bell\\u0007\""),
            ("---", "\"---\""),
            (".inf", "\".inf\""),
        ] {
            check(i, e);
        }
    }

    #[test]
    fn floats_always_read_back_as_floats() {
        assert_eq!(float(0.8), "0.8");
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(-2.5), "-2.5");
    }
}
