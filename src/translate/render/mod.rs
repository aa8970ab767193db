//! `launch render` for engines that schedule across machines, and for
//! compose and systemd (docs/architecture.md, translation). One file per
//! format; each works from the spec (what launch would send to Docker) and
//! reports every field the target cannot express instead of dropping it.

pub mod compose;
pub mod docker_run;
pub mod kubernetes;
pub mod slurm;
pub mod systemd;
pub mod yaml;

use std::path::PathBuf;

use crate::profile::Profile;
use crate::spec::ContainerSpec;

/// What a renderer works from.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub profile: &'a Profile,
    /// The spec without the GPU injection (device nodes, driver mounts and
    /// env are the target engine's business).
    pub spec: &'a ContainerSpec,
    pub gpus: Option<Gpus>,
    /// This host's name: explicit GPUs exist on this node only.
    pub node: String,
    /// The running `launch` binary, for systemd units.
    pub launch_bin: PathBuf,
}

/// The GPUs a profile asks for, as other engines can name them.
#[derive(Debug, Clone, PartialEq)]
pub enum Gpus {
    /// Any N GPUs.
    Count(u32),
    /// These GPUs of this host (an index or `all` resolved to UUIDs).
    Uuids(Vec<String>),
}

/// A profile key the target cannot express.
#[derive(Debug, Clone, PartialEq)]
pub struct Dropped {
    /// The profile key, e.g. `ulimits`.
    pub key: &'static str,
    pub why: String,
}

/// The files of a rendering and what it could not express.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// File name and text; the dropped keys are comments in the text.
    pub files: Vec<(String, String)>,
    pub dropped: Vec<Dropped>,
    /// Values the target's syntax cannot hold at all (a newline on a unit
    /// line): nothing is written, whatever `--lossy` says.
    pub invalid: Vec<String>,
}

/// Collects dropped keys while a renderer walks the spec.
#[derive(Debug, Default)]
pub struct Drops(pub Vec<Dropped>);

impl Drops {
    pub fn drop(&mut self, key: &'static str, why: impl Into<String>) {
        self.0.push(Dropped {
            key,
            why: why.into(),
        });
    }

    /// `# dropped: …` lines, one per key (`prefix` is the comment mark).
    pub fn comments(&self, prefix: &str) -> String {
        self.0
            .iter()
            .map(|d| format!("{prefix} dropped: `{}`: {}\n", d.key, d.why))
            .collect()
    }
}

/// A profile's `[lease]` where the target has a time limit that means what
/// `until = "<duration>"` means (Kubernetes' `activeDeadlineSeconds`,
/// Slurm's `--time`): the seconds, when `limit` can carry them; every other
/// part of the lease is dropped, saying why. `limit`: why the target cannot
/// carry a duration here, or `None` when it can.
pub fn lease_limit(
    profile: &Profile,
    drops: &mut Drops,
    limit: Option<&str>,
    target: &str,
) -> Option<u64> {
    let lease = profile.lease.as_ref()?;
    let mut seconds = None;
    match (lease.until, limit) {
        (Some(crate::profile::Until::After(d)), None) => seconds = Some(d.as_secs().max(1)),
        (Some(crate::profile::Until::After(_)), Some(why)) => drops.drop("lease.until", why),
        (Some(crate::profile::Until::At(_)), _) => drops.drop(
            "lease.until",
            format!("{target} ends work after a duration, not at a time of day"),
        ),
        (None, _) => {}
    }
    if lease.idle_after.is_some() {
        drops.drop(
            "lease.idle_after",
            format!("{target} does not reclaim idle GPUs (`launch up` does, or an idle culler)"),
        );
    }
    seconds
}

/// A name as a DNS-1123 label (Kubernetes object names): lower case,
/// letters, digits and `-`, at most 63 characters. `acct_x` → `acct-x`.
pub fn dns_label(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .collect();
    out.truncate(63);
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "launch".into()
    } else {
        trimmed.to_string()
    }
}

/// A duration in nanoseconds as Go and compose write it: `30s`, `1500ms`.
pub fn duration(ns: i64) -> String {
    for (unit, size) in [
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if ns != 0 && ns % size == 0 {
            return format!("{}{unit}", ns / size);
        }
    }
    format!("{ns}ns")
}

/// A YAML document of `value`, every string read back as a string
/// (see [`yaml`]).
pub fn yaml(value: &serde_json::Value) -> String {
    yaml::to_string(value)
}

/// The user's labels: launch's own (`launch.*`) belong to containers launch makes.
pub fn user_labels(spec: &ContainerSpec) -> impl Iterator<Item = (&String, &String)> {
    spec.labels
        .iter()
        .filter(|(k, _)| !crate::spec::label::is_launchs(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("acct_x"), "acct-x");
        assert_eq!(dns_label("Test.Paddle_1"), "test-paddle-1");
        assert_eq!(dns_label("__"), "launch");
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(duration(30_000_000_000), "30s");
        assert_eq!(duration(90_000_000_000), "90s");
        assert_eq!(duration(120_000_000_000), "2m");
        assert_eq!(duration(1_500_000_000), "1500ms");
        assert_eq!(duration(7), "7ns");
    }
}
