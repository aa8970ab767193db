//! The profile exactly as written in TOML: serde types that reject unknown keys,
//! carry the span of every value, and generate the JSON Schema of `launch schema`.
//!
//! These types accept every *shape* the format allows ("a string or an array");
//! what the values mean (is this a valid port?) is checked in `validate`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de::value::MapAccessDeserializer, de::value::SeqAccessDeserializer};

use super::source::Span;

/// A value with the span it was written at. Compares by value alone.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(transparent)]
pub struct Sp<T>(toml::Spanned<T>);

impl<T> Sp<T> {
    pub fn new(span: Span, value: T) -> Self {
        Sp(toml::Spanned::new(span, value))
    }
    pub fn span(&self) -> Span {
        self.0.span()
    }
    pub fn get(&self) -> &T {
        self.0.get_ref()
    }
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// One profile file. Every key of the profile format (README, Profiles).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "launch profile",
    description = "One GPU container, as `launch` runs it."
)]
pub struct RawProfile {
    /// Image to run, e.g. `nvidia/cuda:12.4.1-runtime-ubuntu22.04`. Required.
    pub image: Option<Sp<String>>,
    /// Container name; default: the profile's file name without `.toml`.
    pub name: Option<Sp<String>>,
    /// Profiles this one builds on, relative to this file. Tables merge key by key.
    // Followed and removed while loading (see `load`); declared for the schema.
    #[allow(dead_code)]
    pub extends: Option<Sp<OneOrMany>>,
    /// When to pull the image: `missing` (default), `always` or `never`.
    pub pull: Option<Sp<PullPolicy>>,
    /// Command: a string split like a shell, or an array.
    pub command: Option<Sp<OneOrMany>>,
    /// Entrypoint: a string split like a shell, or an array.
    pub entrypoint: Option<Sp<OneOrMany>>,
    /// Allocate a TTY and keep stdin open (`-it`), so `bash` stays up in the background.
    pub interactive: Option<Sp<bool>>,
    pub workdir: Option<Sp<String>>,
    pub user: Option<Sp<String>>,
    pub hostname: Option<Sp<String>>,
    /// Environment variables; values may be strings, integers or booleans.
    pub env: Option<BTreeMap<Sp<String>, Sp<EnvValue>>>,
    /// dotenv files, relative to the profile; `env` wins over them.
    pub env_file: Option<Sp<OneOrMany>>,
    /// Container labels. The `launch.` prefix is reserved.
    pub labels: Option<BTreeMap<Sp<String>, Sp<String>>>,
    /// GPUs: `"all"`, `[0, 3]`, `["GPU-8f6c…", 1]`, `{ count = 2 }`, or the long table.
    pub gpus: Option<Sp<Gpus>>,
    /// Published ports, docker syntax: `[ip:]host:container[/tcp|udp]`, ranges allowed.
    pub ports: Option<Vec<Sp<String>>>,
    /// Mounts: `src:dst[:ro|rw]` or `{ source, target, read_only, type, create }`.
    pub volumes: Option<Vec<Sp<Volume>>>,
    /// Extra non-GPU devices: `host[:container[:rwm]]`.
    pub devices: Option<Vec<Sp<String>>>,
    /// Size of /dev/shm: `"8G"` (8 GiB, as Docker reads it) or bytes.
    pub shm_size: Option<Sp<Size>>,
    /// `bridge` (default), `host`, `none`, or a network name.
    pub network: Option<Sp<String>>,
    /// IPC namespace: `host`, `private`, `shareable`, `none` or `container:NAME`.
    pub ipc: Option<Sp<String>>,
    /// PID namespace: `host`, `private` or `container:NAME`.
    pub pid: Option<Sp<String>>,
    pub privileged: Option<Sp<bool>>,
    /// Capabilities to add, e.g. `SYS_PTRACE` (the `CAP_` prefix is optional).
    pub cap_add: Option<Vec<Sp<String>>>,
    pub cap_drop: Option<Vec<Sp<String>>>,
    pub security_opt: Option<Vec<Sp<String>>>,
    /// `memlock = -1`, `nofile = "65536:65536"`, `stack = { soft = 1, hard = 2 }`.
    pub ulimits: Option<BTreeMap<Sp<String>, Sp<Ulimit>>>,
    /// Memory limit: `"32G"` or bytes.
    pub memory: Option<Sp<Size>>,
    /// CPU limit, e.g. `4` or `"2.5"`.
    pub cpus: Option<Sp<Cpus>>,
    /// CPUs to run on, e.g. `"0-7,16"`.
    pub cpuset: Option<Sp<String>>,
    /// `"no"`, `"always"`, `"unless-stopped"` or `"on-failure[:N]"`.
    pub restart: Option<Sp<String>>,
    /// Seconds to wait after SIGTERM before SIGKILL when stopping or recreating.
    pub stop_timeout: Option<Sp<u64>>,
    pub healthcheck: Option<Sp<Healthcheck>>,
    /// What a recreate does with files changed inside the old container.
    pub recreate: Option<Sp<Recreate>>,
    /// Build `image` from a Dockerfile instead of pulling it.
    pub build: Option<Sp<Build>>,
    /// How long the container may hold its GPUs: until a time, and while
    /// they do work; then it is reclaimed (stopped, snapshotted or removed).
    pub lease: Option<Sp<Lease>>,
    /// Run an init process (tini) as PID 1 that reaps zombies (`--init`).
    pub init: Option<Sp<bool>>,
    /// Supplementary groups, names or ids (`--group-add`).
    pub group_add: Option<Vec<Sp<String>>>,
    /// Namespaced kernel parameters, e.g. `"net.core.somaxconn" = 1024` (`--sysctl`).
    pub sysctls: Option<BTreeMap<Sp<String>, Sp<EnvValue>>>,
    /// `/etc/hosts` entries: `"host:ip"` (`--add-host`).
    pub extra_hosts: Option<Vec<Sp<String>>>,
    /// DNS servers, IP addresses (`--dns`).
    pub dns: Option<Vec<Sp<String>>>,
    /// Device cgroup rules, e.g. `"c 195:* rwm"` (`--device-cgroup-rule`).
    pub device_cgroup_rules: Option<Vec<Sp<String>>>,
    /// The OCI runtime, e.g. `nvidia` or `runc` (`--runtime`).
    pub runtime: Option<Sp<String>>,
    /// Mount the root filesystem read-only (`--read-only`).
    pub read_only: Option<Sp<bool>>,
    /// Memory plus swap: `"16G"`, or `-1` for unlimited swap; needs `memory` (`--memory-swap`).
    pub memory_swap: Option<Sp<Size>>,
    /// The image's platform, e.g. `linux/amd64` (`--platform`).
    pub platform: Option<Sp<String>>,
    /// The container's log driver and its options (`--log-driver`, `--log-opt`).
    pub log: Option<Sp<Log>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Log {
    /// e.g. `json-file`, `local`, `journald`, `none`.
    pub driver: Option<Sp<String>>,
    /// The driver's options, e.g. `max-size = "100m"`.
    pub options: Option<BTreeMap<Sp<String>, Sp<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// The build context: a folder, relative to the profile. Required.
    pub context: Option<Sp<String>>,
    /// The Dockerfile, relative to the context; default `Dockerfile`.
    pub dockerfile: Option<Sp<String>>,
    /// Build arguments (`ARG`); values may be strings, integers or booleans.
    pub args: Option<BTreeMap<Sp<String>, Sp<EnvValue>>>,
    /// The stage to build in a multi-stage Dockerfile.
    pub target: Option<Sp<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PullPolicy {
    Missing,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangedFiles {
    #[default]
    Refuse,
    Snapshot,
    Discard,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recreate {
    /// `refuse` (default): stop and list what would be lost; `snapshot`: commit the
    /// old container to `launch-snapshots/<name>:<timestamp>` first; `discard`.
    pub changed_files: Option<Sp<ChangedFiles>>,
    /// Paths whose changes do not count (besides /tmp, /var/tmp, /run, /var/log).
    pub ignore: Option<Vec<Sp<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    /// An RFC 3339 time (`"2026-12-20T18:00:00Z"`), or a duration since the
    /// container was made (`"72h"`); past it the container is reclaimed.
    pub until: Option<Sp<String>>,
    /// Reclaim once its GPUs did no work for this long (`"2h"`).
    pub idle_after: Option<Sp<String>>,
    /// No idle counting this long after a (re)start; default none.
    pub grace: Option<Sp<String>>,
    /// `stop` (default), `snapshot` (commit the writable layer, then stop) or `remove`.
    pub on_reclaim: Option<Sp<OnReclaim>>,
    /// Warn this long before reclaiming; default none.
    pub warn_before: Option<Sp<String>>,
    /// A sample counts as busy above this SM use, in percent; default 5.
    pub idle_below: Option<Sp<u32>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnReclaim {
    #[default]
    Stop,
    Snapshot,
    Remove,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// A string (run by the shell) or an array (`["CMD", "curl", …]` or plain argv).
    pub cmd: Option<Sp<OneOrMany>>,
    /// Go-style durations: `"30s"`, `"1m30s"`.
    pub interval: Option<Sp<String>>,
    pub timeout: Option<Sp<String>>,
    pub retries: Option<Sp<u64>>,
    pub start_period: Option<Sp<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeTable {
    /// Host path (bind) or volume name; none for tmpfs.
    pub source: Option<Sp<String>>,
    /// Absolute path inside the container.
    pub target: Option<Sp<String>>,
    pub read_only: Option<Sp<bool>>,
    /// `bind`, `volume` or `tmpfs`; default: `bind` for paths, `volume` for names.
    #[serde(rename = "type")]
    pub kind: Option<Sp<VolumeType>>,
    /// Create a missing bind source folder instead of failing.
    pub create: Option<Sp<bool>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GpuMode {
    Auto,
    Toolkit,
    Cdi,
    Devices,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpusTable {
    /// `"all"` or a list of indices and UUIDs.
    pub devices: Option<Sp<GpuDevices>>,
    /// Any N free GPUs.
    pub count: Option<Sp<i64>>,
    /// `auto` (default), `toolkit`, `cdi` or `devices`.
    pub mode: Option<Sp<GpuMode>>,
    /// NVIDIA_DRIVER_CAPABILITIES; default `["compute", "utility"]`.
    pub capabilities: Option<Vec<Sp<String>>>,
    /// On each `up` of the running container, run `nvidia-smi -L` in it and
    /// restart it when NVML fails there (GPUs lost); default false.
    pub probe: Option<Sp<bool>>,
    /// Refuse to create the container when the image's NVIDIA_REQUIRE_CUDA
    /// asks for a newer CUDA than the driver supports; default true.
    pub require_cuda: Option<Sp<bool>>,
}

// ---------------------------------------------------------------------------
// Values that take more than one shape. Each has a hand-written visitor so
// that a wrong shape gets a clear "expected …" and the inner spans survive
// (serde's untagged enums lose both).

/// A string or an array of strings.
#[derive(Debug, Clone)]
pub enum OneOrMany {
    One(String),
    Many(Vec<Sp<String>>),
}

/// An `env` value; integers and booleans are written as Docker would.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvValue(pub String);

/// A size: `"8G"` or a number of bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Size {
    Text(String),
    Bytes(i64),
}

/// A CPU count: `4`, `2.5` or `"2.5"`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cpus {
    Number(f64),
    Text(String),
}

/// `-1`, `65536`, `"65536:65536"` or `{ soft, hard }`.
#[derive(Debug, Clone, PartialEq)]
pub enum Ulimit {
    Single(i64),
    Text(String),
    Pair { soft: i64, hard: i64 },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UlimitPair {
    soft: i64,
    hard: i64,
}

/// One GPU in a list: an NVML index or a UUID (prefix).
#[derive(Debug, Clone, PartialEq)]
pub enum GpuId {
    Index(i64),
    Uuid(String),
}

/// The `devices` of a `[gpus]` table.
#[derive(Debug)]
pub enum GpuDevices {
    Word(String),
    List(Vec<Sp<GpuId>>),
}

/// `gpus = …` in any of its forms.
#[derive(Debug)]
pub enum Gpus {
    Word(String),
    List(Vec<Sp<GpuId>>),
    Table(GpusTable),
}

/// A volume entry: the short string or the long table.
#[derive(Debug, Clone)]
pub enum Volume {
    Short(String),
    Long(VolumeTable),
}

/// Implements `Deserialize` with a visitor made of the given methods.
macro_rules! visit {
    ($ty:ty, $expecting:literal, { $($body:tt)* }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    $($body)*
                }
                d.deserialize_any(V)
            }
        }
    };
}

visit!(OneOrMany, "a string or an array of strings", {
    fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
        Ok(OneOrMany::One(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<OneOrMany, A::Error> {
        Vec::deserialize(SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
    }
});

visit!(EnvValue, "a string, an integer or a boolean", {
    fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
        Ok(EnvValue(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvValue, E> {
        Ok(EnvValue(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvValue, E> {
        Ok(EnvValue(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvValue, E> {
        Ok(EnvValue(v.to_string()))
    }
});

visit!(
    Size,
    "a size such as \"8G\" or \"512m\", or a number of bytes",
    {
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
            Ok(Size::Text(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
            Ok(Size::Bytes(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
            Ok(Size::Bytes(i64::try_from(v).unwrap_or(i64::MAX)))
        }
    }
);

visit!(Cpus, "a number of CPUs such as 4 or 2.5", {
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cpus, E> {
        Ok(Cpus::Text(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cpus, E> {
        Ok(Cpus::Number(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cpus, E> {
        Ok(Cpus::Number(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cpus, E> {
        Ok(Cpus::Number(v))
    }
});

visit!(Ulimit, "an integer, \"soft:hard\", or { soft, hard }", {
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ulimit, E> {
        Ok(Ulimit::Single(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ulimit, E> {
        Ok(Ulimit::Single(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Ulimit, E> {
        Ok(Ulimit::Text(v.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Ulimit, A::Error> {
        let p = UlimitPair::deserialize(MapAccessDeserializer::new(map))?;
        Ok(Ulimit::Pair {
            soft: p.soft,
            hard: p.hard,
        })
    }
});

visit!(
    GpuId,
    "a GPU index (0, 1, …) or a UUID such as \"GPU-8f6c…\"",
    {
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<GpuId, E> {
            Ok(GpuId::Index(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<GpuId, E> {
            Ok(GpuId::Index(i64::try_from(v).unwrap_or(i64::MAX)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<GpuId, E> {
            Ok(GpuId::Uuid(v.to_string()))
        }
    }
);

visit!(GpuDevices, "\"all\" or a list of GPU indices and UUIDs", {
    fn visit_str<E: de::Error>(self, v: &str) -> Result<GpuDevices, E> {
        Ok(GpuDevices::Word(v.to_string()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<GpuDevices, A::Error> {
        Vec::deserialize(SeqAccessDeserializer::new(seq)).map(GpuDevices::List)
    }
});

visit!(
    Gpus,
    "\"all\", a list of GPU indices and UUIDs, or a table such as { count = 2 }",
    {
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Gpus, E> {
            Ok(Gpus::Word(v.to_string()))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Gpus, A::Error> {
            Vec::deserialize(SeqAccessDeserializer::new(seq)).map(Gpus::List)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Gpus, A::Error> {
            GpusTable::deserialize(MapAccessDeserializer::new(map)).map(Gpus::Table)
        }
    }
);

visit!(
    Volume,
    "\"source:target[:ro|rw]\" or a table { source, target, … }",
    {
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Volume, E> {
            Ok(Volume::Short(v.to_string()))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Volume, A::Error> {
            VolumeTable::deserialize(MapAccessDeserializer::new(map)).map(Volume::Long)
        }
    }
);

// JSON Schemas of the many-shaped values, written to match the visitors above.

/// Implements `JsonSchema` from a literal schema.
macro_rules! schema {
    ($ty:ty, $name:literal, |$g:ident| $schema:expr) => {
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }
            fn json_schema($g: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

const GPU_ID: fn() -> serde_json::Value = || {
    serde_json::json!({ "anyOf": [
        { "type": "integer", "minimum": 0 },
        { "type": "string", "pattern": "^GPU-" }
    ]})
};

schema!(OneOrMany, "StringOrArray", |_g| json_schema!({
    "anyOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" } }]
}));
schema!(EnvValue, "EnvValue", |_g| json_schema!({
    "type": ["string", "integer", "boolean"]
}));
schema!(Size, "Size", |_g| json_schema!({
    "anyOf": [
        { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtTpP]([iI]?[bB])?|[bB])?$" },
        { "type": "integer", "minimum": 0 }
    ]
}));
schema!(Cpus, "Cpus", |_g| json_schema!({
    "anyOf": [{ "type": "number", "exclusiveMinimum": 0 }, { "type": "string" }]
}));
schema!(Ulimit, "Ulimit", |_g| json_schema!({
    "anyOf": [
        { "type": "integer" },
        { "type": "string", "pattern": "^-?[0-9]+(:-?[0-9]+)?$" },
        {
            "type": "object",
            "properties": { "soft": { "type": "integer" }, "hard": { "type": "integer" } },
            "required": ["soft", "hard"],
            "additionalProperties": false
        }
    ]
}));
schema!(GpuId, "GpuId", |_g| Schema::try_from(GPU_ID())
    .expect("a literal object schema"));
schema!(GpuDevices, "GpuDevices", |_g| json_schema!({
    "anyOf": [{ "const": "all" }, { "type": "array", "items": GPU_ID() }]
}));
schema!(Gpus, "Gpus", |g| {
    let table = g.subschema_for::<GpusTable>();
    json_schema!({
        "anyOf": [{ "const": "all" }, { "type": "array", "items": GPU_ID() }, table]
    })
});
schema!(Volume, "Volume", |g| {
    let table = g.subschema_for::<VolumeTable>();
    json_schema!({
        "anyOf": [{ "type": "string", "pattern": "^[^:]+:[^:]+(:(ro|rw))?$" }, table]
    })
});
