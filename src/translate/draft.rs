//! A profile being written by `import`: its keys in the order the README
//! lists them, and the comments that say what was not imported.

use std::collections::BTreeMap;

use toml::Value;

/// Top-level keys in the order a profile is printed.
const ORDER: &[&str] = &[
    "image",
    "name",
    "pull",
    "entrypoint",
    "command",
    "interactive",
    "workdir",
    "user",
    "hostname",
    "env_file",
    "gpus",
    "ports",
    "volumes",
    "devices",
    "shm_size",
    "network",
    "ipc",
    "pid",
    "privileged",
    "cap_add",
    "cap_drop",
    "security_opt",
    "memory",
    "cpus",
    "cpuset",
    "restart",
    "stop_timeout",
    "init",
    "read_only",
    "runtime",
    "platform",
    "memory_swap",
    "group_add",
    "extra_hosts",
    "dns",
    "device_cgroup_rules",
];

/// Tables printed after the top-level keys, each as a `[section]`.
const TABLES: &[&str] = &["env", "labels", "ulimits", "sysctls", "healthcheck", "log"];

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Draft {
    keys: BTreeMap<&'static str, Value>,
    tables: BTreeMap<&'static str, BTreeMap<String, Value>>,
    /// `# not imported: …` lines.
    pub not_imported: Vec<String>,
    /// Other comments: what a flag became, and why.
    pub notes: Vec<String>,
}

impl Draft {
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        self.keys.insert(key, value.into());
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.keys.get(key)
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.keys.remove(key)
    }

    /// Appends to an array key.
    pub fn push(&mut self, key: &'static str, value: impl Into<Value>) {
        let entry = self
            .keys
            .entry(key)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = entry {
            let value = value.into();
            if !items.contains(&value) {
                items.push(value);
            }
        }
    }

    /// Sets `key` of the `[table]` section.
    pub fn insert(&mut self, table: &'static str, key: impl Into<String>, value: impl Into<Value>) {
        self.tables
            .entry(table)
            .or_default()
            .insert(key.into(), value.into());
    }

    pub fn table(&self, table: &str) -> Option<&BTreeMap<String, Value>> {
        self.tables.get(table)
    }

    pub fn table_mut(&mut self, table: &'static str) -> &mut BTreeMap<String, Value> {
        self.tables.entry(table).or_default()
    }

    pub fn not_imported(&mut self, what: impl Into<String>) {
        self.not_imported.push(what.into());
    }

    pub fn note(&mut self, what: impl Into<String>) {
        self.notes.push(what.into());
    }

    /// The profile's TOML: `header` lines (already comments), the notes, the
    /// keys, the tables, and the `# not imported:` comments last, next to
    /// nothing they could be mistaken for.
    pub fn to_toml(&self, header: &[String]) -> String {
        let mut out = String::new();
        for line in header {
            out.push_str(line);
            out.push('\n');
        }
        for note in &self.notes {
            for line in note.lines() {
                out.push_str(&format!("# {}\n", one_line(line)));
            }
        }
        for key in ORDER {
            if let Some(value) = self.keys.get(key) {
                out.push_str(&format!("{key} = {}\n", multiline(value)));
            }
        }
        for table in TABLES {
            let Some(entries) = self.tables.get(table).filter(|t| !t.is_empty()) else {
                continue;
            };
            out.push_str(&format!("\n[{table}]\n"));
            for (k, v) in entries {
                out.push_str(&format!("{} = {}\n", key(k), inline(v)));
            }
        }
        if !self.not_imported.is_empty() {
            out.push('\n');
            for what in &self.not_imported {
                out.push_str(&format!("# not imported: {}\n", one_line(what)));
            }
        }
        out
    }
}

/// A TOML key, quoted unless it is a bare key.
pub fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        inline(&Value::String(k.to_string()))
    }
}

/// A value on one line, as the toml crate writes it.
pub fn inline(value: &Value) -> String {
    match value {
        Value::Table(t) => {
            let items: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// Arrays of strings with more than one item, one item a line.
fn multiline(value: &Value) -> String {
    match value {
        Value::Array(items) if items.len() > 1 && items.iter().all(Value::is_str) => {
            let mut out = String::from("[\n");
            for item in items {
                out.push_str(&format!("  {},\n", inline(item)));
            }
            out.push(']');
            out
        }
        other => inline(other),
    }
}

/// A comment stays one comment: line breaks become `\n`.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            // TOML comments take no other control character.
            c if c.is_control() && c != '\t' => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_in_the_readme_order_with_tables_and_comments_last() {
        let mut d = Draft::default();
        d.set("name", "x");
        d.set("image", "busybox");
        d.push("volumes", "/a:/a");
        d.push("volumes", "/b:/b");
        d.insert("env", "A B", "1=2");
        d.not_imported("--rm (launch keeps the container)");
        let text = d.to_toml(&["#:schema launch.schema.json".into()]);
        assert_eq!(
            text,
            "#:schema launch.schema.json\nimage = \"busybox\"\nname = \"x\"\nvolumes = [\n  \"/a:/a\",\n  \"/b:/b\",\n]\n\n[env]\n\"A B\" = \"1=2\"\n\n# not imported: --rm (launch keeps the container)\n"
        );
    }
}
