//! A field-by-field diff of two specs, for `plan` and recreate messages.

use std::fmt;

use serde_json::Value;

use crate::spec::ContainerSpec;

/// One difference: `field` is a dotted path (`env.CUDA_HOME`, `mounts`).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub field: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.old, &self.new) {
            (None, Some(new)) => write!(f, "+ {}: {new}", self.field),
            (Some(old), None) => write!(f, "- {}: {old}", self.field),
            (Some(old), Some(new)) => write!(f, "~ {}: {old} → {new}", self.field),
            (None, None) => write!(f, "  {}", self.field),
        }
    }
}

pub fn diff(old: &ContainerSpec, new: &ContainerSpec) -> Vec<Change> {
    let as_value =
        |s: &ContainerSpec| serde_json::from_str::<Value>(&s.canonical_json()).unwrap_or_default();
    let mut out = Vec::new();
    compare("", &as_value(old), &as_value(new), &mut out);
    out
}

/// The distinct top-level fields of some changes, e.g. `["env", "image"]`.
pub fn fields(changes: &[Change]) -> Vec<String> {
    let mut fields: Vec<String> = changes
        .iter()
        .map(|c| c.field.split('.').next().unwrap_or("").to_string())
        .collect();
    fields.dedup();
    fields
}

fn compare(path: &str, old: &Value, new: &Value, out: &mut Vec<Change>) {
    let key = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => compare(&key(k), x, y, out),
                    (x, y) => out.push(Change {
                        field: key(k),
                        old: x.cloned(),
                        new: y.cloned(),
                    }),
                }
            }
        }
        // Lists (mounts, ports, devices): what left and what came.
        (Value::Array(a), Value::Array(b)) if a != b => {
            for x in a.iter().filter(|x| !b.contains(x)) {
                out.push(Change {
                    field: path.to_string(),
                    old: Some(x.clone()),
                    new: None,
                });
            }
            for y in b.iter().filter(|y| !a.contains(y)) {
                out.push(Change {
                    field: path.to_string(),
                    old: None,
                    new: Some(y.clone()),
                });
            }
        }
        (a, b) if a != b => out.push(Change {
            field: path.to_string(),
            old: Some(a.clone()),
            new: Some(b.clone()),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn names_changed_added_and_removed_fields() {
        let old = ContainerSpec {
            image: "a".into(),
            env: BTreeMap::from([("X".into(), "1".into()), ("GONE".into(), "y".into())]),
            ..Default::default()
        };
        let new = ContainerSpec {
            image: "b".into(),
            env: BTreeMap::from([("X".into(), "2".into())]),
            shm_size: Some(8),
            ..Default::default()
        };
        let shown: Vec<String> = diff(&old, &new).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            shown,
            [
                "- env.GONE: \"y\"",
                "~ env.X: \"1\" → \"2\"",
                "~ image: \"a\" → \"b\"",
                "+ shm_size: 8"
            ]
        );
    }
}
