//! `ContainerSpec`: exactly what is sent to the engine, engine-neutral, and
//! its canonical JSON and hash (docs/architecture.md, the spec and its hash).
//!
//! The hash is a contract with every container already running: an unchanged
//! profile must keep its hash across versions of launch. So these are
//! dedicated types (not the profile's), the JSON has sorted keys and drops
//! empty values (a field added later with an empty default hashes as before),
//! and `SCHEMA` changes only when the meaning of a field does.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// 2: GPU containers get `CUDA_DEVICE_ORDER=PCI_BUS_ID`, and in `toolkit`
/// and `cdi` modes their device nodes in `devices` too
/// (docs/architecture.md, GPU health).
/// 3: containers without GPUs get `NVIDIA_VISIBLE_DEVICES=void`, and a bare
/// uid gets a group (docs/architecture.md, the owner boundary).
/// See [`ContainerSpec::projected`].
pub const SCHEMA: u32 = 3;

/// What a container without `gpus` is given since schema 3: no GPU, whatever
/// the image's environment or the host's default runtime says.
pub const NO_GPUS: (&str, &str) = ("NVIDIA_VISIBLE_DEVICES", "void");

/// The default `CUDA_DEVICE_ORDER` of GPU containers since schema 2.
pub const CUDA_DEVICE_ORDER: (&str, &str) = ("CUDA_DEVICE_ORDER", "PCI_BUS_ID");

/// Labels written on every container launch makes.
/// Every label launch writes, on containers and images: one place, so that
/// what launch reads back and what it keeps out of renders and imports agree.
pub mod label {
    /// What every label of launch's starts with; a profile may not set one.
    pub const PREFIX: &str = "launch.";
    pub const MANAGED: &str = "launch.managed";
    pub const PROFILE: &str = "launch.profile";
    pub const SPEC_HASH: &str = "launch.spec-hash";
    pub const SPEC: &str = "launch.spec";
    pub const GPUS: &str = "launch.gpus";
    pub const DRIVER: &str = "launch.driver";
    /// Who owns the profile (docs/architecture.md, shared hosts): a user
    /// name, or a uid without a passwd entry. Not in the spec or its hash.
    pub const OWNER: &str = "launch.owner";
    /// The same owner's uid, which a no-op compares without asking the
    /// user database.
    pub const OWNER_UID: &str = "launch.owner-uid";
    /// On a built image: the hash of the context it was built from, so
    /// `up` rebuilds only when it moved.
    pub const CONTEXT_HASH: &str = "launch.context-hash";
    /// On every image launch commits, valued with the container's name: how
    /// `prune` tells launch's snapshots from images that only share the
    /// repository name (or the container labels a commit copies).
    pub const SNAPSHOT: &str = "launch.snapshot";
    /// On a snapshot whose tag the user chose (`launch snapshot --tag`).
    pub const SNAPSHOT_TAG_GIVEN: &str = "launch.snapshot-tag";

    /// Whether `key` is one of launch's labels (or looks like one).
    pub fn is_launchs(key: &str) -> bool {
        key.starts_with(PREFIX)
    }
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
    // Added later: left out of the JSON when unset, so older hashes stay.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// Supplementary groups: the profile's `group_add`, and with
    /// `user = "owner"` the owner's, as numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Bytes of memory plus swap; -1 is unlimited swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogConfig>,
}

/// The container's log driver (`None`: the daemon's default) and options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Device {
    pub host: String,
    pub container: String,
    pub permissions: String,
}

/// A mount's type, as the Docker API names it. The serde names are the
/// strings earlier versions hashed, so the hash does not move.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    #[default]
    Bind,
    Tmpfs,
    Volume,
}

/// A port's protocol. Variants in the order of their names, so sorting
/// ports orders them as sorting the strings did.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Sctp,
    #[default]
    Tcp,
    Udp,
}

/// Docker's restart policy names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartName {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure,
}

/// How GPUs reach the container (`auto` is decided before a spec exists).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InjectionMode {
    #[default]
    Toolkit,
    Cdi,
    Devices,
}

macro_rules! serde_name {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match serde_json::to_value(self) {
                    Ok(Value::String(s)) => f.write_str(&s),
                    _ => Err(std::fmt::Error),
                }
            }
        }
    )*};
}
serde_name!(MountType, Protocol, RestartName, InjectionMode);

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: MountType,
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    pub container_port: u16,
    pub protocol: Protocol,
    pub host_ip: Option<String>,
    /// `None`: the engine picks one.
    pub host_port: Option<u16>,
}

impl Port {
    /// The short syntax that `docker run -p` and compose both read:
    /// `[IP:][HOST:]CONTAINER/PROTO`, an IPv6 address in brackets.
    pub fn short_syntax(&self) -> String {
        let ip = match self.host_ip.as_deref() {
            Some(ip) if ip.contains(':') => format!("[{ip}]:"),
            Some(ip) => format!("{ip}:"),
            None => String::new(),
        };
        let host = self.host_port.map(|h| h.to_string()).unwrap_or_default();
        if ip.is_empty() && host.is_empty() {
            format!("{}/{}", self.container_port, self.protocol)
        } else {
            format!("{ip}{host}:{}/{}", self.container_port, self.protocol)
        }
    }
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
    pub name: RestartName,
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
    pub mode: InjectionMode,
    pub uuids: Vec<String>,
    pub capabilities: Vec<String>,
    /// A driver upgrade changes the spec, so the container is recreated.
    pub driver_version: String,
}

impl ContainerSpec {
    /// Sorted keys, no whitespace, empty values left out.
    pub fn canonical_json(&self) -> String {
        self.canonical_value().to_string()
    }

    fn canonical_value(&self) -> Value {
        canonical(serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// SHA-256 of the canonical JSON, in hex.
    pub fn hash(&self) -> String {
        // A no-op hashes every profile: the JSON goes to the digest in one
        // piece (serde_json writes it in many small ones).
        let mut json = Vec::with_capacity(4096);
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut json, &self.canonical_value());
        let mut hex = String::with_capacity(64);
        for b in Sha256::digest(&json) {
            let _ = write!(hex, "{b:02x}");
        }
        hex
    }

    /// This spec as an older launch, of `schema`, made it from the same
    /// profile and host: the defaults added since left out. More than one
    /// when that depends on what the profile said (a `CUDA_DEVICE_ORDER`
    /// the profile sets itself was there before). A container whose stored
    /// hash is one of these is up to date: upgrading launch never recreates
    /// it (docs/architecture.md, the spec and its hash).
    pub fn projected(&self, schema: u32) -> Vec<ContainerSpec> {
        if schema >= self.schema || schema == 0 {
            return Vec::new();
        }
        let mut older = self.clone();
        older.schema = schema;
        let mut out = vec![older];
        if schema < 3 {
            if self.gpu.is_none() {
                // Profiles cannot set NVIDIA_VISIBLE_DEVICES themselves (env.rs).
                let (key, value) = NO_GPUS;
                for s in &mut out {
                    if s.env.get(key).map(String::as_str) == Some(value) {
                        s.env.remove(key);
                    }
                }
            }
            // `UID:GID` was `UID` when the profile said a bare uid.
            if let Some((uid, gid)) = self.user.as_deref().and_then(|u| u.split_once(':'))
                && uid.parse::<u32>().is_ok_and(|u| u != 0)
                && gid.parse::<u32>().is_ok()
            {
                let bare: Vec<ContainerSpec> = out
                    .iter()
                    .map(|s| ContainerSpec {
                        user: Some(uid.to_string()),
                        ..s.clone()
                    })
                    .collect();
                out.extend(bare);
            }
        }
        if schema < 2
            && let Some(gpu) = &self.gpu
        {
            let (key, value) = CUDA_DEVICE_ORDER;
            let mut more = Vec::new();
            for older in &mut out {
                if gpu.mode != InjectionMode::Devices {
                    // Profiles cannot list NVIDIA devices themselves (check_devices).
                    older
                        .devices
                        .retain(|d| !d.container.starts_with("/dev/nvidia"));
                }
                if older.env.get(key).map(String::as_str) == Some(value) {
                    let mut without = older.clone();
                    without.env.remove(key);
                    more.push(without);
                }
            }
            // The one without first, as schema 1 made it unless the profile set it.
            more.append(&mut out);
            out = more;
        }
        out
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
/// (serde_json's map keeps its keys sorted: launch does not ask for its
/// `preserve_order` feature, and `the_hash_of_a_fixed_spec_is_pinned`
/// would catch a dependency that did.)
fn canonical(mut value: Value) -> Value {
    prune(&mut value);
    value
}

/// Drops empty values from objects, at every depth, in place.
fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => map.retain(|_, v| {
            prune(v);
            !is_empty(v)
        }),
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
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

    /// Schema 1, as launch made specs before schema 2: its pinned hash is
    /// that of containers running now.
    fn spec() -> ContainerSpec {
        ContainerSpec {
            schema: 1,
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

    /// A small spec with one of each kind of field a GPU profile sets.
    fn gpu_spec() -> ContainerSpec {
        ContainerSpec {
            schema: 1,
            name: "train".into(),
            image: "busybox".into(),
            command: Some(vec!["sleep".into(), "1000".into()]),
            env: BTreeMap::from([
                ("NVIDIA_VISIBLE_DEVICES".into(), "GPU-1".into()),
                ("A".into(), "1".into()),
            ]),
            devices: vec![Device {
                host: "/dev/nvidia2".into(),
                container: "/dev/nvidia2".into(),
                permissions: "rwm".into(),
            }],
            mounts: vec![Mount {
                kind: MountType::Bind,
                source: Some("/data".into()),
                target: "/data".into(),
                read_only: true,
            }],
            ports: vec![Port {
                container_port: 80,
                protocol: Protocol::Tcp,
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(8080),
            }],
            shm_size: Some(1 << 30),
            device_requests: vec![DeviceRequest {
                driver: String::new(),
                device_ids: vec!["GPU-1".into()],
                capabilities: vec![vec!["gpu".into(), "compute".into()]],
            }],
            gpu: Some(GpuAssignment {
                mode: InjectionMode::Toolkit,
                uuids: vec!["GPU-1".into()],
                capabilities: vec!["compute".into()],
                driver_version: "550.54.15".into(),
            }),
            ..Default::default()
        }
    }

    /// These hashes are part of every container already running: if this test
    /// fails, an upgrade of launch would recreate them all. Change the literals
    /// only together with `SCHEMA`, on purpose.
    #[test]
    fn the_hash_of_a_fixed_spec_is_pinned() {
        assert_eq!(
            spec().hash(),
            "d95b4897a48f3e128a05530a1ed0511f767022f5f6e2d5465c1cb6e8ebf449ee"
        );
        assert_eq!(
            gpu_spec().canonical_json(),
            concat!(
                r#"{"command":["sleep","1000"],"#,
                r#""device_requests":[{"capabilities":[["gpu","compute"]],"device_ids":["GPU-1"],"driver":""}],"#,
                r#""devices":[{"container":"/dev/nvidia2","host":"/dev/nvidia2","permissions":"rwm"}],"#,
                r#""env":{"A":"1","NVIDIA_VISIBLE_DEVICES":"GPU-1"},"#,
                r#""gpu":{"capabilities":["compute"],"driver_version":"550.54.15","mode":"toolkit","uuids":["GPU-1"]},"#,
                r#""image":"busybox","#,
                r#""mounts":[{"read_only":true,"source":"/data","target":"/data","type":"bind"}],"#,
                r#""name":"train","#,
                r#""ports":[{"container_port":80,"host_ip":"127.0.0.1","host_port":8080,"protocol":"tcp"}],"#,
                r#""schema":1,"shm_size":1073741824}"#
            )
        );
        assert_eq!(
            gpu_spec().hash(),
            "5e3401fd58fe6f6a57fe4e10eb1585fcd9560f25f68e1005e1baf1206b414ac2"
        );
    }

    /// `gpu_spec` as schema 2 makes it: the default `CUDA_DEVICE_ORDER`, and
    /// the GPU's and the shared nodes in `devices` in toolkit mode.
    fn gpu_spec_v2() -> ContainerSpec {
        let mut s = gpu_spec();
        s.schema = 2;
        s.env
            .insert(CUDA_DEVICE_ORDER.0.into(), CUDA_DEVICE_ORDER.1.into());
        s.devices.insert(
            0,
            Device {
                host: "/dev/nvidiactl".into(),
                container: "/dev/nvidiactl".into(),
                permissions: "rwm".into(),
            },
        );
        s
    }

    /// Like `the_hash_of_a_fixed_spec_is_pinned`, for schema 2.
    #[test]
    fn the_hash_of_a_fixed_schema_2_spec_is_pinned() {
        assert_eq!(SCHEMA, 3);
        assert_eq!(
            gpu_spec_v2().hash(),
            "bd80b805333835e7f8d737283c6b91c243ab14ed3db27e1752fa91280c12f600"
        );
    }

    #[test]
    fn a_schema_2_spec_projected_onto_schema_1_is_what_schema_1_made() {
        // Schema 1 listed no device nodes in toolkit mode.
        let mut v1 = gpu_spec();
        v1.devices.clear();
        let projected = gpu_spec_v2().projected(1);
        assert!(projected.contains(&v1), "{projected:#?}");
        // A profile that set CUDA_DEVICE_ORDER itself had it at schema 1 too.
        let mut own = v1.clone();
        own.env
            .insert(CUDA_DEVICE_ORDER.0.into(), CUDA_DEVICE_ORDER.1.into());
        assert!(gpu_spec_v2().projected(1).contains(&own));
        // Devices mode listed its nodes at schema 1 already.
        let mut devices = gpu_spec_v2();
        devices.gpu.as_mut().unwrap().mode = InjectionMode::Devices;
        assert!(
            devices
                .projected(1)
                .iter()
                .all(|p| p.devices == devices.devices)
        );
        // Nothing projects onto its own schema or a newer one.
        assert!(gpu_spec_v2().projected(2).is_empty());
        assert!(spec().projected(1).is_empty());
    }

    /// Schema 3 (the owner boundary): a spec without GPUs says
    /// `NVIDIA_VISIBLE_DEVICES=void`, and a bare uid got a group. A container
    /// an older launch made from the same profile is up to date.
    #[test]
    fn a_schema_3_spec_projected_onto_older_schemas_is_what_they_made() {
        let mut v3 = spec();
        v3.schema = 3;
        v3.env.insert(NO_GPUS.0.into(), NO_GPUS.1.into());
        v3.user = Some("1001:100".into());
        let mut v1 = spec();
        v1.user = Some("1001".into());
        assert!(v3.projected(1).contains(&v1), "{:#?}", v3.projected(1));
        // A profile that wrote `1001:100` itself had it before too.
        v1.user = Some("1001:100".into());
        assert!(v3.projected(1).contains(&v1));
        // Root's group was never added to uid 0.
        v3.user = Some("0:0".into());
        assert_eq!(v3.projected(1).len(), 1);
        // A GPU spec keeps its NVIDIA_VISIBLE_DEVICES: it is the GPUs'.
        let mut gpu = gpu_spec_v2();
        gpu.schema = 3;
        let v2 = gpu.projected(2);
        assert_eq!(v2, [gpu_spec_v2()]);
        assert_eq!(gpu.projected(1), gpu_spec_v2().projected(1));
    }

    /// The enums serialize to the strings the fields held when they were
    /// strings, so no running container's hash moves; ports sort as before.
    #[test]
    fn typed_fields_keep_their_canonical_json() {
        let s = ContainerSpec {
            schema: 1,
            name: "t".into(),
            image: "busybox".into(),
            mounts: vec![Mount {
                kind: MountType::Tmpfs,
                source: None,
                target: "/scratch".into(),
                read_only: false,
            }],
            ports: {
                let mut ports =
                    [Protocol::Udp, Protocol::Tcp, Protocol::Sctp].map(|protocol| Port {
                        container_port: 53,
                        protocol,
                        host_ip: None,
                        host_port: None,
                    });
                ports.sort();
                ports.to_vec()
            },
            restart: Some(Restart {
                name: RestartName::UnlessStopped,
                max_retries: None,
            }),
            gpu: Some(GpuAssignment {
                mode: InjectionMode::Devices,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            s.canonical_json(),
            concat!(
                r#"{"gpu":{"driver_version":"","mode":"devices"},"image":"busybox","#,
                r#""mounts":[{"target":"/scratch","type":"tmpfs"}],"name":"t","#,
                r#""ports":[{"container_port":53,"protocol":"sctp"},{"container_port":53,"protocol":"tcp"},"#,
                r#"{"container_port":53,"protocol":"udp"}],"#,
                r#""restart":{"name":"unless-stopped"},"schema":1}"#
            )
        );
        assert_eq!(ContainerSpec::from_label(&s.canonical_json()), Some(s));
    }

    #[test]
    fn the_hash_changes_with_the_driver_version_and_the_gpus() {
        let base = gpu_spec();
        let mut upgraded = base.clone();
        upgraded.gpu.as_mut().unwrap().driver_version = "550.90.07".into();
        let mut other_gpu = base.clone();
        other_gpu.gpu.as_mut().unwrap().uuids = vec!["GPU-2".into()];
        let hashes = [base.hash(), upgraded.hash(), other_gpu.hash()];
        assert_ne!(hashes[0], hashes[1]);
        assert_ne!(hashes[0], hashes[2]);
        assert_ne!(hashes[1], hashes[2]);
    }

    #[test]
    fn fields_left_at_their_empty_default_do_not_reach_the_hash() {
        // A field added later with an empty default must hash as before:
        // the canonical JSON leaves out null, false, [] and {}.
        let mut s = spec();
        s.tty = false;
        s.cap_add = Vec::new();
        s.labels = BTreeMap::new();
        s.healthcheck = None;
        assert_eq!(s.hash(), spec().hash());
    }

    #[test]
    fn spec_reads_back_from_its_label() {
        let s = spec();
        assert_eq!(ContainerSpec::from_label(&s.canonical_json()), Some(s));
    }
}
