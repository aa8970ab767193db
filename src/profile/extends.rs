//! `extends`: how a profile is merged over the profiles it builds on (README, Profiles: the child wins; tables merge by key, `volumes` by target, `ports` by container port, `devices` by container path).
//!
//! Merging happens on the TOML trees, before typed deserialization, so each value
//! keeps the span of the file it came from.

use std::collections::HashMap;

use toml::Spanned;

use super::volumes::normalize;
use toml::de::{DeArray, DeTable, DeValue};

type Table = DeTable<'static>;
type Value = Spanned<DeValue<'static>>;

/// Merges `child` over `parent` by those rules.
pub fn merge(mut parent: Table, child: Table) -> Table {
    for (key, value) in child {
        let name = key.get_ref().to_string();
        let merged = match parent.remove(name.as_str()) {
            None => value,
            Some(old) => {
                let (old, value) = if name == "gpus" {
                    (gpus_table(old), gpus_table(value))
                } else {
                    (old, value)
                };
                let span = value.span();
                let value = match (old.into_inner(), value.into_inner()) {
                    (DeValue::Table(mut a), DeValue::Table(b)) => {
                        // A child's GPU choice replaces the parent's, whatever its form.
                        if name == "gpus" && (b.contains_key("devices") || b.contains_key("count"))
                        {
                            a.remove("devices");
                            a.remove("count");
                        }
                        DeValue::Table(merge(a, b))
                    }
                    (DeValue::Array(a), DeValue::Array(b)) => match merge_key(&name) {
                        Some(key_of) => DeValue::Array(merge_by_key(a, b, key_of)),
                        None => DeValue::Array(b),
                    },
                    (_, new) => new,
                };
                Spanned::new(span, value)
            }
        };
        parent.insert(key, merged);
    }
    parent
}

/// `gpus = [0, 1]` or `gpus = "all"` as the table it means, `{ devices = … }`,
/// so a parent's choice and a child's `[gpus]` merge key by key: a child's
/// `mode` alone keeps the parent's devices.
fn gpus_table(value: Value) -> Value {
    let span = value.span();
    match value.get_ref() {
        DeValue::String(_) | DeValue::Array(_) => {
            let mut table = Table::new();
            table.insert(Spanned::new(span.clone(), "devices".into()), value);
            Spanned::new(span, DeValue::Table(table))
        }
        _ => value,
    }
}

/// Array merge where entries with the same key replace each other in place.
fn merge_by_key(
    parent: DeArray<'static>,
    child: DeArray<'static>,
    key_of: fn(&DeValue<'_>) -> Option<String>,
) -> DeArray<'static> {
    let mut items: Vec<Value> = parent.iter().cloned().collect();
    // Where each key is, so a long list merges in one pass.
    let mut at: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(key) = key_of(item.get_ref()) {
            at.entry(key).or_insert(i);
        }
    }
    for new in child.iter() {
        match key_of(new.get_ref()) {
            Some(key) => match at.get(&key) {
                Some(&i) => items[i] = new.clone(),
                None => {
                    at.insert(key, items.len());
                    items.push(new.clone());
                }
            },
            None => items.push(new.clone()),
        }
    }
    let mut out = DeArray::new();
    for item in items {
        out.push(item);
    }
    out
}

/// Arrays merged entry by entry, and what identifies an entry.
fn merge_key(key: &str) -> Option<fn(&DeValue<'_>) -> Option<String>> {
    match key {
        "volumes" => Some(volume_target),
        "ports" => Some(container_port),
        "devices" => Some(device_path),
        _ => None,
    }
}

/// `src:dst[:mode]` or `{ target = … }` → the target path, normalised as
/// validation normalises it.
fn volume_target(v: &DeValue<'_>) -> Option<String> {
    let target = match v {
        DeValue::String(s) => {
            let mut parts = s.split(':');
            let first = parts.next()?;
            parts.next().unwrap_or(first)
        }
        DeValue::Table(t) => t.get("target")?.get_ref().as_str()?,
        _ => return None,
    };
    Some(normalize(target))
}

/// `[ip:]host:container[/proto]` → `container/proto`, tcp when unsaid.
fn container_port(v: &DeValue<'_>) -> Option<String> {
    let spec = v.as_str()?;
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    Some(format!("{}/{}", ports.rsplit(':').next()?, proto))
}

/// `host[:container[:perms]]` → the container path.
fn device_path(v: &DeValue<'_>) -> Option<String> {
    let mut parts = v.as_str()?.split(':');
    let host = parts.next()?;
    // `/dev/fuse:rw` gives permissions, not a path, as `devices::parse` reads it.
    let container = parts.next().filter(|c| c.starts_with('/')).unwrap_or(host);
    Some(normalize(container))
}
