//! `Engine` on the Docker Engine API through bollard. The API version is
//! negotiated, so Debian's docker.io 20.10 (API 1.41) works as well as current
//! Docker and Podman's Docker-compatible socket.

use std::collections::{BTreeMap, HashMap};

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, DeviceMapping, DeviceRequest, HealthConfig,
    HostConfig, Mount, MountType, PortBinding, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    InspectContainerOptions, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use futures_util::StreamExt;

use super::{Engine, EngineError, Facts, Observed, Result, State, auth, progress};
use crate::spec::{self, ContainerSpec, label};

pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

pub struct DockerEngine {
    docker: Docker,
}

impl DockerEngine {
    /// Connects to `host`, else `DOCKER_HOST`, else the local socket, and
    /// agrees on an API version with it. An engine that does not answer
    /// within `timeout` is unreachable: a socket that accepts and then stays
    /// silent must not stall a cron run.
    pub async fn connect(host: Option<&str>, timeout: std::time::Duration) -> Result<DockerEngine> {
        let address = host
            .map(str::to_string)
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let unreachable = |reason: String| EngineError::Unreachable {
            address: address.clone(),
            reason,
        };
        // Agree on an API version with a cheap /_ping at the newest version
        // bollard speaks; an older daemon answers with its maximum, and we
        // reconnect at that. (bollard's negotiate_version asks /version,
        // which takes a daemon several milliseconds: most of a no-op run.)
        let silent = || {
            unreachable(format!(
                "no answer within {}s (--timeout)",
                timeout.as_secs_f64()
            ))
        };
        let ping = |docker: Docker| async move {
            tokio::time::timeout(timeout, async { docker.ping().await.map(|_| docker) }).await
        };
        let docker = open(&address, API_DEFAULT_VERSION).map_err(|e| unreachable(describe(&e)))?;
        let docker = match ping(docker).await.map_err(|_| silent())? {
            Ok(docker) => docker,
            Err(BollardError::DockerResponseServerError {
                status_code: 400,
                message,
            }) => {
                let version =
                    max_api_version(&message).ok_or_else(|| unreachable(message.clone()))?;
                let docker = open(&address, &version).map_err(|e| unreachable(describe(&e)))?;
                ping(docker)
                    .await
                    .map_err(|_| silent())?
                    .map_err(|e| unreachable(describe(&e)))?
            }
            Err(e) => return Err(unreachable(describe(&e))),
        };
        tracing::debug!("connected to {address} (API {})", docker.client_version());
        Ok(DockerEngine { docker })
    }
}

/// A client for `address` speaking API `version`.
fn open(address: &str, version: &ClientVersion) -> std::result::Result<Docker, BollardError> {
    const TIMEOUT: u64 = 120;
    if address.starts_with("unix://") {
        Docker::connect_with_unix(address, TIMEOUT, version)
    } else if address.starts_with("tcp://") || address.starts_with("http://") {
        Docker::connect_with_http(address, TIMEOUT, version)
    } else if address.starts_with("ssh://") {
        Docker::connect_with_ssh(address, TIMEOUT, version, None)
    } else {
        // Let bollard name what it does not support.
        Docker::connect_with_host(address)
    }
}

/// "client version 1.53 is too new. Maximum supported API version is 1.41" → 1.41.
fn max_api_version(message: &str) -> Option<ClientVersion> {
    let (_, version) = message.rsplit_once("Maximum supported API version is ")?;
    let (major, minor) = version.trim().trim_end_matches('.').split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// A bollard error in words; the daemon's own message when it sent one.
fn describe(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::HyperResponseError { err } => {
            let mut reason = err.to_string();
            let mut source = std::error::Error::source(err);
            while let Some(s) = source {
                reason = s.to_string();
                source = s.source();
            }
            reason
        }
        other => other.to_string(),
    }
}

fn call(what: &str) -> impl Fn(BollardError) -> EngineError + '_ {
    move |e| EngineError::Call(format!("{what}: {}", describe(&e)))
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Engine for DockerEngine {
    async fn facts(&self) -> Result<Facts> {
        let info = self.docker.info().await.map_err(call("docker info"))?;
        let mut runtimes: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
        runtimes.sort();
        Ok(Facts {
            runtimes,
            cdi_spec_dirs: info.cdi_spec_dirs.unwrap_or_default(),
        })
    }

    async fn find(&self, name: &str) -> Result<Option<Observed>> {
        match self
            .docker
            .inspect_container(name, None::<InspectContainerOptions>)
            .await
        {
            Ok(c) => {
                let state = c.state.as_ref();
                let config = c.config.as_ref();
                Ok(Some(Observed {
                    id: c.id.clone().unwrap_or_default(),
                    name: c
                        .name
                        .clone()
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    state: state
                        .and_then(|s| s.status)
                        .map_or(State::Created, state_of),
                    labels: config
                        .and_then(|c| c.labels.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .collect(),
                    image_id: c.image.clone().unwrap_or_default(),
                    image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
                    started_at: state.and_then(|s| s.started_at.clone()).unwrap_or_default(),
                    health: state
                        .and_then(|s| s.health.as_ref())
                        .and_then(|h| h.status)
                        .map(|s| s.to_string())
                        .filter(|s| !s.is_empty() && s != "none"),
                }))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(call("inspecting the container")(e)),
        }
    }

    async fn managed(&self) -> Result<Vec<Observed>> {
        let filters = HashMap::from([("label", vec![format!("{}=true", label::MANAGED)])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(call("listing containers"))?;
        let mut out = Vec::new();
        for summary in list {
            // The summary lacks the start time; inspect each (few per host).
            if let Some(id) = summary.id.as_deref()
                && let Some(found) = self.find(id).await?
            {
                out.push(found);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(i.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(call("inspecting the image")(e)),
        }
    }

    async fn pull(&self, image: &str) -> Result<()> {
        let (name, tag) = split_tag(image);
        let options = CreateImageOptionsBuilder::new()
            .from_image(name)
            .tag(tag)
            .build();
        let credentials = auth::credentials_for(image);
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        let bars = progress::Pull::new(image);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.as_ref().and_then(|d| d.message.clone())
                    {
                        return Err(EngineError::Pull {
                            image: image.into(),
                            reason: detail,
                        });
                    }
                    bars.update(&info);
                }
                Err(e) => {
                    return Err(EngineError::Pull {
                        image: image.into(),
                        reason: describe(&e),
                    });
                }
            }
        }
        bars.finish();
        Ok(())
    }

    async fn create(
        &self,
        name: &str,
        spec: &ContainerSpec,
        labels: &BTreeMap<String, String>,
    ) -> Result<String> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let body = create_body(spec, labels);
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(call("creating the container"))?;
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(call("starting the container"))
    }

    async fn stop(&self, id: &str, timeout: Option<u64>) -> Result<()> {
        let mut options = StopContainerOptionsBuilder::new();
        if let Some(t) = timeout {
            options = options.t(i32::try_from(t).unwrap_or(i32::MAX));
        }
        match self.docker.stop_container(id, Some(options.build())).await {
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            other => other.map_err(call("stopping the container")),
        }
    }

    async fn unpause(&self, id: &str) -> Result<()> {
        self.docker
            .unpause_container(id)
            .await
            .map_err(call("unpausing the container"))
    }

    async fn rename(&self, id: &str, name: &str) -> Result<()> {
        let options = RenameContainerOptionsBuilder::new().name(name).build();
        self.docker
            .rename_container(id, options)
            .await
            .map_err(call("renaming the container"))
    }

    async fn remove(&self, id: &str, volumes: bool) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(volumes)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(call("removing the container")),
        }
    }

    async fn changes(&self, id: &str) -> Result<Vec<String>> {
        let changes = self
            .docker
            .container_changes(id)
            .await
            .map_err(call("listing changed files"))?;
        Ok(changes
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.path)
            .collect())
    }

    async fn commit(&self, id: &str, repo: &str, tag: &str) -> Result<String> {
        let options = CommitContainerOptionsBuilder::new()
            .container(id)
            .repo(repo)
            .tag(tag)
            .pause(true)
            .build();
        let committed = self
            .docker
            .commit_container(options, bollard::models::ContainerConfig::default())
            .await
            .map_err(call("committing the container"))?;
        Ok(committed.id)
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        match self
            .docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Err(e) if is_not_found(&e) => Ok(()),
            other => other.map_err(call("removing the volume")),
        }
    }
}

fn state_of(s: ContainerStateStatusEnum) -> State {
    match s {
        ContainerStateStatusEnum::RUNNING => State::Running,
        ContainerStateStatusEnum::PAUSED => State::Paused,
        ContainerStateStatusEnum::RESTARTING => State::Restarting,
        ContainerStateStatusEnum::EXITED => State::Exited,
        ContainerStateStatusEnum::DEAD => State::Dead,
        ContainerStateStatusEnum::REMOVING => State::Removing,
        _ => State::Created,
    }
}

/// `repo:tag` → (repo, tag); `latest` when none is given. A digest stays whole.
pub fn split_tag(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (&image[..slash + i], &image[slash + i + 1..]),
        None => (image, "latest"),
    }
}

/// The Docker API's create body for a spec: the one place a spec becomes
/// Docker's vocabulary.
fn create_body(spec: &ContainerSpec, labels: &BTreeMap<String, String>) -> ContainerCreateBody {
    let non_empty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &spec.ports {
        port_bindings
            .entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.clone(),
                host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
            });
    }
    let exposed: Vec<String> = port_bindings.keys().cloned().collect();
    let host_config = HostConfig {
        mounts: Some(
            spec.mounts
                .iter()
                .map(|m| Mount {
                    target: Some(m.target.clone()),
                    source: m.source.clone(),
                    typ: Some(match m.kind {
                        spec::MountType::Volume => MountType::VOLUME,
                        spec::MountType::Tmpfs => MountType::TMPFS,
                        spec::MountType::Bind => MountType::BIND,
                    }),
                    read_only: Some(m.read_only),
                    ..Default::default()
                })
                .collect(),
        ),
        devices: Some(
            spec.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.host.clone()),
                    path_in_container: Some(d.container.clone()),
                    cgroup_permissions: Some(d.permissions.clone()),
                })
                .collect(),
        ),
        device_requests: (!spec.device_requests.is_empty()).then(|| {
            spec.device_requests
                .iter()
                .map(|r| DeviceRequest {
                    driver: Some(r.driver.clone()),
                    count: None,
                    device_ids: Some(r.device_ids.clone()),
                    capabilities: Some(r.capabilities.clone()),
                    options: None,
                })
                .collect()
        }),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        shm_size: spec.shm_size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        network_mode: spec.network_mode.clone(),
        ipc_mode: spec.ipc_mode.clone(),
        pid_mode: spec.pid_mode.clone(),
        privileged: Some(spec.privileged),
        cap_add: non_empty(&spec.cap_add),
        cap_drop: non_empty(&spec.cap_drop),
        security_opt: non_empty(&spec.security_opt),
        ulimits: (!spec.ulimits.is_empty()).then(|| {
            spec.ulimits
                .iter()
                .map(|u| ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        memory: spec.memory.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        nano_cpus: spec.nano_cpus,
        cpuset_cpus: spec.cpuset_cpus.clone(),
        restart_policy: spec.restart.as_ref().map(|r| RestartPolicy {
            name: Some(match r.name {
                spec::RestartName::Always => RestartPolicyNameEnum::ALWAYS,
                spec::RestartName::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
                spec::RestartName::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
                spec::RestartName::No => RestartPolicyNameEnum::NO,
            }),
            maximum_retry_count: r.max_retries.map(i64::from),
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        tty: Some(spec.tty),
        open_stdin: Some(spec.open_stdin),
        working_dir: spec.working_dir.clone(),
        user: spec.user.clone(),
        hostname: spec.hostname.clone(),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        stop_timeout: spec
            .stop_timeout
            .map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
        healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: h.interval_ns,
            timeout: h.timeout_ns,
            retries: h.retries.map(|r| i64::try_from(r).unwrap_or(i64::MAX)),
            start_period: h.start_period_ns,
            start_interval: None,
        }),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn an_old_daemon_names_its_maximum_api_version() {
        let v = super::max_api_version(
            "client version 1.53 is too new. Maximum supported API version is 1.41",
        )
        .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(super::max_api_version("something else").is_none());
    }

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(split_tag("busybox"), ("busybox", "latest"));
        assert_eq!(
            split_tag("localhost:5000/team/img:v2"),
            ("localhost:5000/team/img", "v2")
        );
        assert_eq!(
            split_tag("localhost:5000/img"),
            ("localhost:5000/img", "latest")
        );
    }
}
