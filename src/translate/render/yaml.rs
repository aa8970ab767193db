//! YAML that every reader takes as the data it is (docs/architecture.md,
//! the owner boundary: renders are data). YAML 1.1 readers (docker-compose,
//! Kubernetes' go-yaml) turn `yes`, `off`, `1_000`, `12:30:00` and
//! `2024-01-01` into booleans, numbers and times, so a string is written
//! plain only when it cannot be anything but a string in any YAML version:
//! a letter or `/` first, then letters, digits and `_./-`, and not one of
//! the words YAML 1.1 reads as a boolean or null. Every other string is
//! double-quoted, with JSON's escapes (which YAML's double quotes share).

use serde_json::Value;

/// A YAML document of `value`, in block style.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => sequence(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn mapping(out: &mut String, map: &serde_json::Map<String, Value>, at: usize) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a sequence item follows its `- `.
        if i > 0 {
            indent(out, at);
        }
        out.push_str(&string(key));
        out.push(':');
        nested(out, value, at);
    }
}

fn sequence(out: &mut String, items: &[Value], at: usize) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            indent(out, at);
        }
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => mapping(out, map, at + 2),
            Value::Array(inner) if !inner.is_empty() => sequence(out, inner, at + 2),
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

/// What follows `key:` at indentation `at`.
fn nested(out: &mut String, value: &Value, at: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            indent(out, at + 2);
            mapping(out, map, at + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            indent(out, at + 2);
            sequence(out, items, at + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        // null, booleans and numbers read back as themselves.
        other => other.to_string(),
    }
}

/// `s`, plain when no YAML reader can take it for anything else.
fn string(s: &str) -> String {
    if is_plain(s) {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

/// Words YAML 1.1 reads as booleans or null, whatever their case.
const WORDS: &[&str] = &["y", "n", "yes", "no", "true", "false", "on", "off", "null"];

fn is_plain(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/');
    first_ok
        && chars.all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
        && !WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_yaml_1_1_would_misread_are_quoted() {
        let doc = json!({
            "plain": ["busybox", "/data/x", "nvidia.com/gpu", "a-b_c.d"],
            "quoted": ["yes", "Off", "y", "NULL", "1_000", "12:30:00", "2024-01-01", "=", "", "0x1F",
                       ".inf", "a b", "-x", "~", "*a", "x: y", "#c", "line\nbreak"],
            "numbers": [8, 1.5, true, null],
        });
        let text = to_string(&doc);
        for s in ["busybox", "/data/x", "nvidia.com/gpu", "a-b_c.d"] {
            assert!(text.contains(&format!("- {s}\n")), "{s} plain:\n{text}");
        }
        for s in doc["quoted"].as_array().unwrap() {
            let quoted = Value::String(s.as_str().unwrap().into()).to_string();
            assert!(
                text.contains(&format!("- {quoted}\n")),
                "{s} quoted:\n{text}"
            );
        }
        assert!(
            text.contains("  - 8\n  - 1.5\n  - true\n  - null\n"),
            "{text}"
        );
    }

    #[test]
    fn nesting_reads_back_as_the_same_data() {
        let doc = json!({
            "services": { "train": {
                "image": "busybox",
                "environment": { "A": "yes", "EMPTY": "" },
                "ports": ["127.0.0.1:8080:80/tcp"],
                "deploy": { "resources": { "reservations": { "devices": [
                    { "driver": "nvidia", "count": 2, "capabilities": [["gpu"]] }
                ] } } },
                "volumes": [],
                "labels": {},
            } }
        });
        let text = to_string(&doc);
        let back: Value = serde_norway::from_str(&text).expect("YAML");
        assert_eq!(back, doc, "{text}");
    }
}
