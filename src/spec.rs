//! `ContainerSpec`: exactly what is sent to the engine, engine-neutral, and
//! its canonical JSON and hash (DESIGN.md §4).
//!
//! The hash is a contract with every container already running: an unchanged
//! profile must keep its hash across versions of launch. So these are
//! dedicated types (not the profile's), the JSON has sorted keys and drops
//! empty values (a field added later with an empty default hashes as before),
//! and `SCHEMA` changes only when the meaning of a field does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const SCHEMA: u32 = 1;

/// Labels written on every container launch makes.
pub mod label {
    pub const MANAGED: &str = "launch.managed";
    pub const PROFILE: &str = "launch.profile";
    pub const SPEC_HASH: &str = "launch.spec-hash";
    pub const SPEC: &str = "launch.spec";
    pub const GPUS: &str = "launch.gpus";
    pub const DRIVER: &str = "launch.driver";
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpec {
    pub schema: u32,
    pub name: String,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    /// `-t` and `-i`: an interactive shell that stays up under `-d`.
    pub tty: bool,
    pub open_stdin: bool,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub env: BTreeMap<String, String>,
    /// The user's labels; launch's own are added when creating.
    pub labels: BTreeMap<String, String>,
    /// Sorted by container path.
    pub devices: Vec<Device>,
    /// Sorted by target.
    pub mounts: Vec<Mount>,
    /// Sorted.
    pub ports: Vec<Port>,
    pub shm_size: Option<u64>,
    pub network_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub pid_mode: Option<String>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub ulimits: Vec<Ulimit>,
    pub memory: Option<u64>,
    pub nano_cpus: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub restart: Option<Restart>,
    pub stop_timeout: Option<u64>,
    pub healthcheck: Option<Healthcheck>,
    pub device_requests: Vec<DeviceRequest>,
    pub gpu: Option<GpuAssignment>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Device {
    pub host: String,
    pub container: String,
    pub permissions: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Mount {
    /// `bind`, `volume` or `tmpfs`, as the Docker API names them.
    #[serde(rename = "type")]
    pub kind: String,
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub host_ip: Option<String>,
    /// `None`: the engine picks one.
    pub host_port: Option<u16>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Restart {
    pub name: String,
    pub max_retries: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval_ns: Option<i64>,
    pub timeout_ns: Option<i64>,
    pub retries: Option<u64>,
    pub start_period_ns: Option<i64>,
}

/// Docker's `HostConfig.DeviceRequests` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceRequest {
    pub driver: String,
    pub device_ids: Vec<String>,
    pub capabilities: Vec<Vec<String>>,
}

/// The GPUs the container got, and from which driver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuAssignment {
    /// `toolkit`, `cdi` or `devices`.
    pub mode: String,
    pub uuids: Vec<String>,
    pub capabilities: Vec<String>,
    /// A driver upgrade changes the spec, so the container is recreated.
    pub driver_version: String,
}

impl ContainerSpec {
    /// Sorted keys, no whitespace, empty values left out.
    pub fn canonical_json(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        canonical(&value).to_string()
    }

    /// SHA-256 of the canonical JSON, in hex.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.canonical_json().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a spec back from its `launch.spec` label.
    pub fn from_label(json: &str) -> Option<ContainerSpec> {
        serde_json::from_str(json).ok()
    }

    /// launch's labels (§4) on top of the user's.
    pub fn all_labels(&self, profile: &std::path::Path) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        labels.insert(label::MANAGED.into(), "true".into());
        labels.insert(label::PROFILE.into(), profile.display().to_string());
        labels.insert(label::SPEC_HASH.into(), self.hash());
        labels.insert(label::SPEC.into(), self.canonical_json());
        if let Some(gpu) = &self.gpu {
            labels.insert(label::GPUS.into(), gpu.uuids.join(","));
            labels.insert(label::DRIVER.into(), gpu.driver_version.clone());
        }
        labels
    }
}

/// Sorts object keys and drops `null`, `false`, `[]` and `{}` members.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, Value)> = map
                .iter()
                .map(|(k, v)| (k, canonical(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            schema: SCHEMA,
            name: "train".into(),
            image: "busybox".into(),
            env: BTreeMap::from([("A".into(), "1".into())]),
            ..Default::default()
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_empty_values() {
        assert_eq!(
            spec().canonical_json(),
            r#"{"env":{"A":"1"},"image":"busybox","name":"train","schema":1}"#
        );
    }

    /// The hash of this spec is part of every container already running:
    /// if this test fails, an upgrade of launch would recreate them all.
    #[test]
    fn hash_is_stable_across_versions() {
        assert_eq!(spec().hash(), {
            let digest =
                Sha256::digest(br#"{"env":{"A":"1"},"image":"busybox","name":"train","schema":1}"#);
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
    }

    #[test]
    fn spec_reads_back_from_its_label() {
        let s = spec();
        assert_eq!(ContainerSpec::from_label(&s.canonical_json()), Some(s));
    }
}
