//! The container engine, seen through the few operations reconcile needs.
//! `docker` implements them on the Docker Engine API (bollard); Podman's
//! Docker-compatible socket goes through the same code.

pub mod auth;
pub mod docker;
mod progress;

use std::collections::BTreeMap;

pub use docker::DockerEngine;

use crate::spec::{ContainerSpec, label};

/// A container as the engine reports it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub id: String,
    pub name: String,
    pub state: State,
    pub labels: BTreeMap<String, String>,
    /// The image id the container was created from.
    pub image_id: String,
    /// The image reference it was created with.
    pub image: String,
    pub started_at: String,
    /// `starting`, `healthy` or `unhealthy` when the container has a healthcheck.
    pub health: Option<String>,
}

impl Observed {
    /// Made by launch (label `launch.managed=true`).
    pub fn is_managed(&self) -> bool {
        self.labels.get(label::MANAGED).map(String::as_str) == Some("true")
    }

    /// The spec it was made from (label `launch.spec`); `None` when the
    /// label is missing or unreadable (made by an older or newer launch).
    pub fn spec(&self) -> Option<ContainerSpec> {
        self.labels
            .get(label::SPEC)
            .and_then(|s| ContainerSpec::from_label(s))
    }

    /// The GPU UUIDs it holds (label `launch.gpus`).
    pub fn gpus(&self) -> Vec<String> {
        let list = self.labels.get(label::GPUS).map_or("", String::as_str);
        list.split(',')
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
    Removing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Exited => "exited",
            State::Dead => "dead",
            State::Removing => "removing",
        }
    }
}

/// Engine facts that decide the GPU mode.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub runtimes: Vec<String>,
    /// Docker 25+ with CDI enabled lists its spec folders.
    pub cdi_spec_dirs: Vec<String>,
}

/// Why an engine call failed, in words for the user.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the container engine at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("{0}")]
    Call(String),
    #[error("pulling {image} failed: {reason}")]
    Pull { image: String, reason: String },
    #[error("image {0} is not present and the profile says pull = \"never\"")]
    ImageMissing(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// What reconcile asks of an engine.
#[allow(async_fn_in_trait)] // used with concrete engines only, never boxed
pub trait Engine {
    async fn facts(&self) -> Result<Facts>;
    /// The container of that name, if any.
    async fn find(&self, name: &str) -> Result<Option<Observed>>;
    /// Every container launch made (label `launch.managed=true`).
    async fn managed(&self) -> Result<Vec<Observed>>;
    /// The local image's id, if the image is present.
    async fn image_id(&self, image: &str) -> Result<Option<String>>;
    async fn pull(&self, image: &str) -> Result<()>;
    /// Creates the container `name` from `spec` with `labels`; returns its id.
    async fn create(
        &self,
        name: &str,
        spec: &ContainerSpec,
        labels: &BTreeMap<String, String>,
    ) -> Result<String>;
    async fn start(&self, id: &str) -> Result<()>;
    async fn stop(&self, id: &str, timeout: Option<u64>) -> Result<()>;
    async fn unpause(&self, id: &str) -> Result<()>;
    async fn rename(&self, id: &str, name: &str) -> Result<()>;
    async fn remove(&self, id: &str, volumes: bool) -> Result<()>;
    /// Paths changed in the container's writable layer (`docker diff`).
    async fn changes(&self, id: &str) -> Result<Vec<String>>;
    /// Commits the container to `repo:tag`; returns the image id.
    async fn commit(&self, id: &str, repo: &str, tag: &str) -> Result<String>;
    async fn remove_volume(&self, name: &str) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(labels: BTreeMap<String, String>) -> Observed {
        Observed {
            id: "0123456789abcdef".into(),
            name: "train".into(),
            state: State::Running,
            labels,
            image_id: String::new(),
            image: "busybox".into(),
            started_at: String::new(),
            health: None,
        }
    }

    #[test]
    fn the_spec_label_is_read_in_one_place() {
        let spec = ContainerSpec {
            schema: 1,
            name: "train".into(),
            image: "busybox".into(),
            ..Default::default()
        };
        let made = observed(spec.all_labels(std::path::Path::new("/p.toml")));
        assert_eq!(made.spec(), Some(spec));
        assert_eq!(observed(BTreeMap::new()).spec(), None, "no label");
        let garbled = BTreeMap::from([(label::SPEC.to_string(), "{not json".to_string())]);
        assert_eq!(observed(garbled).spec(), None, "an unreadable label");
    }
}
