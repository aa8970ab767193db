//! `Engine` on the Docker Engine API through bollard. The API version is
//! negotiated, so Debian's docker.io 20.10 (API 1.41) works as well as current
//! Docker and Podman's Docker-compatible socket.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, ContainerSummaryStateEnum, DeviceMapping,
    DeviceRequest, HealthConfig, HostConfig, HostConfigLogConfig, Mount, MountType, PortBinding,
    ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CommitContainerOptionsBuilder, CreateContainerOptionsBuilder,
    CreateImageOptionsBuilder, InspectContainerOptions, InspectNetworkOptions,
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, RenameContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use futures_util::StreamExt;

use super::{
    Engine, EngineError, ExecOutput, ExecRequest, ExecSession, Facts, LogOptions, Observed,
    Removal, Result, SnapshotImage, State, auth, progress, short,
};
use crate::image_ref::ImageRef;
use crate::spec::{self, ContainerSpec, label};

mod inspect;

pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// DeviceRequests (how GPUs reach a container) came with API 1.40, Docker 19.03.
const MIN_API: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 40,
};

/// How long each kind of engine call may take before launch calls the
/// engine hung. bollard's own request timeout is one number for every call,
/// which would cut a long stop or commit short; these bounds fit each call.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Inspecting, listing, creating, starting, renaming, unpausing.
    pub call: Duration,
    /// Disk work that grows with the container: removing it or a volume,
    /// listing its changed files.
    pub disk: Duration,
    /// Added to the container's stop timeout, after which the engine kills it.
    pub stop_margin: Duration,
    /// Committing a container's writable layer to an image.
    pub commit: Duration,
    /// A pull may take hours on a slow link, but not this long without a word.
    pub pull_idle: Duration,
    /// A build step may compile for long without a word, but not this long.
    pub build_idle: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            call: Duration::from_secs(120),
            disk: Duration::from_secs(600),
            stop_margin: Duration::from_secs(60),
            commit: Duration::from_secs(3600),
            pull_idle: Duration::from_secs(600),
            build_idle: Duration::from_secs(6 * 3600),
        }
    }
}

impl Bounds {
    /// A stop may take the container's stop timeout, then the kill.
    pub fn stop(&self, stop_timeout: u64) -> Duration {
        Duration::from_secs(stop_timeout).saturating_add(self.stop_margin)
    }
}

pub struct DockerEngine {
    docker: Docker,
    address: String,
    bounds: Bounds,
    identity: tokio::sync::OnceCell<super::Identity>,
}

impl DockerEngine {
    /// Connects to `host`, else `DOCKER_HOST`, else the local socket, and
    /// agrees on an API version with it. An engine that does not answer
    /// within `timeout` is unreachable: a socket that accepts and then stays
    /// silent must not stall a cron run.
    pub async fn connect(host: Option<&str>, timeout: Duration) -> Result<DockerEngine> {
        let address = host
            .map(str::to_string)
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        check_address(&address).map_err(|why| EngineError::Address {
            address: address.clone(),
            why,
        })?;
        let unreachable = |e: BollardError| EngineError::Unreachable {
            address: address.clone(),
            reason: describe(&e),
            source: Some(e),
        };
        // Agree on an API version with a cheap /_ping at the newest version
        // bollard speaks; an older daemon answers with its maximum, and we
        // reconnect at that. (bollard's negotiate_version asks /version,
        // which takes a daemon several milliseconds: most of a no-op run.)
        let silent = || EngineError::Unreachable {
            address: address.clone(),
            reason: format!("no answer within {}s (--timeout)", timeout.as_secs_f64()),
            source: None,
        };
        let ping = |docker: Docker| async move {
            tokio::time::timeout(timeout, async { docker.ping().await.map(|_| docker) }).await
        };
        let docker = open(&address, API_DEFAULT_VERSION).map_err(unreachable)?;
        let docker = match ping(docker).await.map_err(|_| silent())? {
            Ok(docker) => docker,
            Err(BollardError::DockerResponseServerError {
                status_code: 400,
                message,
            }) => {
                let Some(version) = max_api_version(&message) else {
                    return Err(unreachable(BollardError::DockerResponseServerError {
                        status_code: 400,
                        message,
                    }));
                };
                if (version.major_version, version.minor_version)
                    < (MIN_API.major_version, MIN_API.minor_version)
                {
                    return Err(EngineError::ApiTooOld {
                        address,
                        version: version.to_string(),
                        minimum: MIN_API.to_string(),
                    });
                }
                let docker = open(&address, &version).map_err(unreachable)?;
                ping(docker)
                    .await
                    .map_err(|_| silent())?
                    .map_err(unreachable)?
            }
            Err(e) => return Err(unreachable(e)),
        };
        tracing::debug!("connected to {address} (API {})", docker.client_version());
        Ok(DockerEngine {
            docker,
            address,
            bounds: Bounds::default(),
            identity: tokio::sync::OnceCell::new(),
        })
    }

    /// The same engine with other bounds on its calls.
    pub fn with_bounds(self, bounds: Bounds) -> DockerEngine {
        DockerEngine { bounds, ..self }
    }

    /// The engine's inspection of an image; `None` when it has no such image.
    async fn inspect_image(&self, image: &str) -> Result<Option<bollard::models::ImageInspect>> {
        asked_again(|| {
            self.unless_missing(
                format!("inspecting image {image}"),
                self.bounds.call,
                self.docker.inspect_image(image),
            )
        })
        .await
    }

    /// Runs one call within `after`; a failure becomes the error for the user.
    async fn within<T>(
        &self,
        call: impl Into<String>,
        after: Duration,
        request: impl Future<Output = std::result::Result<T, BollardError>>,
    ) -> Result<std::result::Result<T, EngineError>> {
        let call = call.into();
        match tokio::time::timeout(after, request).await {
            Err(_) => Err(EngineError::Timeout {
                address: self.address.clone(),
                call,
                after,
            }),
            Ok(Ok(v)) => Ok(Ok(v)),
            Ok(Err(e)) => Ok(Err(self.failed(call, e))),
        }
    }

    /// `within`, for calls on what may not exist: the engine's "not found"
    /// is `None`, any other failure an error.
    async fn unless_missing<T>(
        &self,
        call: impl Into<String>,
        after: Duration,
        request: impl Future<Output = std::result::Result<T, BollardError>>,
    ) -> Result<Option<T>> {
        match self.within(call, after, request).await? {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The summaries of every container launch made, running or not.
    /// Filtered by label only: the engine's name filter is a regular
    /// expression per name, which costs more than listing them all.
    async fn list_managed(&self) -> Result<Vec<bollard::models::ContainerSummary>> {
        let filters = HashMap::from([("label", vec![format!("{}=true", label::MANAGED)])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        self.call(
            "listing containers",
            self.bounds.call,
            stopped_as_restarting(self.docker.list_containers(Some(options))),
        )
        .await
    }

    /// `within`, for calls whose every failure is an error.
    async fn call<T>(
        &self,
        call: impl Into<String>,
        after: Duration,
        request: impl Future<Output = std::result::Result<T, BollardError>>,
    ) -> Result<T> {
        self.within(call, after, request).await?
    }

    /// A bollard error as the user's error: by HTTP status when the engine
    /// answered, unreachable when the connection itself failed.
    fn failed(&self, call: String, e: BollardError) -> EngineError {
        match e {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => EngineError::answered(call, status_code, message),
            e @ (BollardError::HyperResponseError { .. }
            | BollardError::HyperLegacyError { .. }
            | BollardError::IOError { .. }
            | BollardError::SocketNotFoundError(_)) => EngineError::Unreachable {
                address: self.address.clone(),
                reason: format!("{call}: {}", describe(&e)),
                source: Some(e),
            },
            e => EngineError::Failed {
                call,
                message: describe(&e),
                source: e,
            },
        }
    }

    /// The stop timeout a container was made with (the engine's default, 10 s, when none).
    async fn stop_timeout_of(&self, id: &str) -> Result<u64> {
        let c = self
            .call(
                format!("inspecting container {}", short(id)),
                self.bounds.call,
                stopped_as_restarting(
                    self.docker
                        .inspect_container(id, None::<InspectContainerOptions>),
                ),
            )
            .await?;
        Ok(c.config
            .and_then(|c| c.stop_timeout)
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(10))
    }
}

/// A client for `address` speaking API `version`. bollard's timeout covers
/// every request alike, so it is set out of the way: `Bounds` bounds each
/// call instead.
fn open(address: &str, version: &ClientVersion) -> std::result::Result<Docker, BollardError> {
    const TIMEOUT: u64 = 24 * 3600;
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

/// Whether `address` is one launch can connect to, judged before any
/// connection: `unix:///path`, `tcp://host:port` (or `http://`), and
/// `ssh://[user@]host[:port]`, a port in 1–65535. A host or user beginning
/// with `-` would reach `ssh` as an option (`ssh://-oProxyCommand=…`).
pub fn check_address(address: &str) -> std::result::Result<(), String> {
    let Some((scheme, rest)) = address.split_once("://") else {
        return Err("expected unix:///path, tcp://host:port or ssh://[user@]host[:port]".into());
    };
    let port_ok = |port: &str| port.parse::<u16>().is_ok_and(|p| p != 0);
    // `host[:port]`, the host maybe an IPv6 address in brackets.
    let host_port = |hp: &str, need_port: bool| -> std::result::Result<(), String> {
        let (host, port) = match hp.strip_prefix('[') {
            Some(v6) => match v6.split_once(']') {
                Some((h, rest)) => (h, rest.strip_prefix(':')),
                None => return Err("an IPv6 address needs its closing `]`".into()),
            },
            None => match hp.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hp, None),
            },
        };
        if host.is_empty() {
            return Err("no host".into());
        }
        if host.starts_with('-') {
            return Err(format!("host `{host}` begins with `-`"));
        }
        match port {
            Some(p) if !port_ok(p) => Err(format!("port `{p}` is not a number from 1 to 65535")),
            None if need_port => Err("no port".into()),
            _ => Ok(()),
        }
    };
    match scheme {
        "unix" if rest.starts_with('/') => Ok(()),
        "unix" => Err("a unix socket is an absolute path: unix:///var/run/docker.sock".into()),
        "tcp" | "http" => host_port(rest.trim_end_matches('/'), false),
        "ssh" => {
            let rest = rest.trim_end_matches('/');
            let host = match rest.rsplit_once('@') {
                Some((user, host)) => {
                    if user.is_empty() || user.starts_with('-') {
                        return Err(format!("user `{user}` is empty or begins with `-`"));
                    }
                    host
                }
                None => rest,
            };
            host_port(host, false)
        }
        other => Err(format!(
            "`{other}://` is not an engine address launch knows: unix://, tcp:// or ssh://"
        )),
    }
}

/// How often an answer that Podman gives only for a moment is asked again.
const PASSING_TRIES: u32 = 40;

/// An answer Podman 4 gives only for a moment: an image inspected or
/// listed while another image goes cannot be read ("image not known" of an
/// image's parent). Asked again (50 ms apart), it answers as Docker would.
/// `ask`, asked again while its answer is `passing`.
async fn asked_again<T, F: Future<Output = Result<T>>>(mut ask: impl FnMut() -> F) -> Result<T> {
    let mut tries = 0;
    loop {
        match ask().await {
            Err(e) if tries < PASSING_TRIES && passing(&e) => tries += 1,
            other => return other,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn passing(e: &EngineError) -> bool {
    passing_text(&e.to_string())
}

fn passing_text(text: &str) -> bool {
    text.contains("image not known")
        && (text.contains("failed to convert ImageData")
            || text.contains("retrieving parent of image"))
}

/// A container list or inspection, with Podman 4's `stopped` read as
/// Docker's `restarting`. Podman 4 calls a container between its exit and
/// its cleanup `stopped`, a state Docker's API lacks; one that restarts
/// over and over is in it most of the time, so asking again is no cure.
/// The engine is not done with such a container (its cleanup may restart
/// it), as with Docker's `restarting`: launch leaves it be, where starting
/// it would race the engine ("container state improper"), and the next run
/// finds it settled. bollard keeps the body it could not read (its
/// `json_data_content` feature): it is read again with the state renamed.
async fn stopped_as_restarting<T: serde::de::DeserializeOwned>(
    request: impl Future<Output = std::result::Result<T, BollardError>>,
) -> std::result::Result<T, BollardError> {
    let answer = request.await;
    let Err(BollardError::JsonDataError {
        message, contents, ..
    }) = &answer
    else {
        return answer;
    };
    if !message.contains("unknown variant `stopped`") {
        return answer;
    }
    let Ok(mut body) = serde_json::from_str::<serde_json::Value>(contents) else {
        return answer;
    };
    // A list holds summaries (`State` is a word), an inspection holds
    // one container (`State.Status`).
    let states: Vec<&mut serde_json::Value> = match &mut body {
        serde_json::Value::Array(list) => {
            list.iter_mut().filter_map(|c| c.get_mut("State")).collect()
        }
        one => one
            .get_mut("State")
            .and_then(|s| s.get_mut("Status"))
            .into_iter()
            .collect(),
    };
    for state in states {
        if state == "stopped" {
            *state = "restarting".into();
        }
    }
    serde_json::from_value(body).map_err(BollardError::from)
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

impl DockerEngine {
    /// The next item of a streamed answer (a pull's progress, a build's
    /// output): a stream silent for `idle` is hung, and `call` names it.
    async fn next_within<S: futures_util::Stream + Unpin>(
        &self,
        stream: &mut S,
        idle: std::time::Duration,
        call: impl FnOnce() -> String,
    ) -> Result<Option<S::Item>> {
        tokio::time::timeout(idle, stream.next())
            .await
            .map_err(|_| EngineError::Timeout {
                address: self.address.clone(),
                call: call(),
                after: idle,
            })
    }
}

impl Engine for DockerEngine {
    async fn identity(&self) -> Result<super::Identity> {
        self.identity
            .get_or_try_init(|| async {
                let v = self
                    .call("docker version", self.bounds.call, self.docker.version())
                    .await?;
                // Podman names itself among the components; Docker's first
                // component is "Engine".
                let podman = v
                    .components
                    .iter()
                    .flatten()
                    .find(|c| c.name.contains("Podman"));
                let (product, version) = match podman {
                    Some(c) => (super::Product::Podman, c.version.clone()),
                    None => (
                        super::Product::Docker,
                        v.version.clone().unwrap_or_default(),
                    ),
                };
                Ok(super::Identity {
                    product,
                    version,
                    local: self.address.starts_with("unix://"),
                })
            })
            .await
            .cloned()
    }

    async fn process(&self, id: &str) -> Result<Option<u32>> {
        let found = self
            .unless_missing(
                format!("inspecting container {id}"),
                self.bounds.call,
                stopped_as_restarting(
                    self.docker
                        .inspect_container(id, None::<InspectContainerOptions>),
                ),
            )
            .await?;
        Ok(found
            .and_then(|c| c.state)
            .filter(|s| s.running == Some(true))
            .and_then(|s| s.pid)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|&p| p > 0))
    }

    async fn facts(&self) -> Result<Facts> {
        let identity = self.identity().await.ok();
        let info = self
            .call("docker info", self.bounds.call, self.docker.info())
            .await?;
        let mut runtimes: Vec<String> = info.runtimes.unwrap_or_default().into_keys().collect();
        runtimes.sort();
        Ok(Facts {
            runtimes,
            cdi_spec_dirs: info.cdi_spec_dirs.unwrap_or_default(),
            cgroup_driver: info
                .cgroup_driver
                .map(|d| d.to_string())
                .filter(|d| !d.is_empty()),
            identity,
            // Docker says so in its security options; rootless Podman keeps
            // its storage in the user's home.
            rootless: info
                .security_options
                .iter()
                .flatten()
                .any(|o| o.contains("rootless"))
                || info
                    .docker_root_dir
                    .as_deref()
                    .is_some_and(|d| d.contains("/.local/share/containers")),
        })
    }

    async fn find(&self, name: &str) -> Result<Option<Observed>> {
        let found = self
            .unless_missing(
                format!("inspecting container {name}"),
                self.bounds.call,
                stopped_as_restarting(
                    self.docker
                        .inspect_container(name, None::<InspectContainerOptions>),
                ),
            )
            .await?;
        let Some(c) = found else {
            return Ok(None);
        };
        // Docker also resolves an id prefix: a profile named like the start
        // of another container's id must not find (and replace) that one.
        let named = c.name.as_deref().map(|n| n.trim_start_matches('/')) == Some(name);
        if !named && c.id.as_deref() != Some(name) {
            return Ok(None);
        }
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
            created: c.created.clone().unwrap_or_default(),
            health: state
                .and_then(|s| s.health.as_ref())
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
        }))
    }

    async fn managed(&self) -> Result<Vec<Observed>> {
        let mut out = Vec::new();
        for summary in self.list_managed().await? {
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

    async fn container_names(&self) -> Result<Vec<(String, String)>> {
        let options = ListContainersOptionsBuilder::new().all(true).build();
        let list = self
            .call(
                "listing containers",
                self.bounds.call,
                stopped_as_restarting(self.docker.list_containers(Some(options))),
            )
            .await?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.first()?.trim_start_matches('/').to_string();
                Some((c.id?, name))
            })
            .collect())
    }

    async fn leftovers(&self, name: &str) -> Result<Vec<Observed>> {
        let prefix = format!("{name}{}", super::ASIDE);
        // The engine's name filter is a pattern, not a prefix: filter again.
        let filters = HashMap::from([
            ("label", vec![format!("{}=true", label::MANAGED)]),
            ("name", vec![prefix.clone()]),
        ]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .call(
                format!("listing leftovers of {name}"),
                self.bounds.call,
                stopped_as_restarting(self.docker.list_containers(Some(options))),
            )
            .await?;
        let mut out = Vec::new();
        for summary in list {
            let named = summary
                .names
                .iter()
                .flatten()
                .any(|n| n.trim_start_matches('/').starts_with(&prefix));
            if named
                && let Some(id) = summary.id.as_deref()
                && let Some(found) = self.find(id).await?
            {
                out.push(found);
            }
        }
        Ok(out)
    }

    async fn listed(&self, names: &[&str]) -> Result<Vec<Observed>> {
        let list = self.list_managed().await?;
        let wanted =
            |name: &str| names.is_empty() || names.iter().any(|n| super::is_name_or_aside(name, n));
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let name = c.names?.first()?.trim_start_matches('/').to_string();
                if !wanted(&name) {
                    return None;
                }
                Some(Observed {
                    id: c.id?,
                    name,
                    state: match c.state? {
                        ContainerSummaryStateEnum::RUNNING => State::Running,
                        ContainerSummaryStateEnum::PAUSED => State::Paused,
                        ContainerSummaryStateEnum::RESTARTING => State::Restarting,
                        ContainerSummaryStateEnum::EXITED => State::Exited,
                        ContainerSummaryStateEnum::DEAD => State::Dead,
                        ContainerSummaryStateEnum::REMOVING => State::Removing,
                        _ => State::Created,
                    },
                    labels: c.labels.unwrap_or_default().into_iter().collect(),
                    image_id: c.image_id.unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    started_at: String::new(),
                    created: String::new(),
                    health: None,
                })
            })
            .collect())
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        Ok(self.inspect_image(image).await?.and_then(|i| i.id))
    }

    async fn image_env(&self, image: &str) -> Result<Option<BTreeMap<String, String>>> {
        Ok(self.inspect_image(image).await?.map(|i| {
            i.config
                .and_then(|c| c.env)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_string(), v.to_string()))
                })
                .collect()
        }))
    }

    async fn image_labels(
        &self,
        image: &str,
    ) -> Result<Option<(String, BTreeMap<String, String>)>> {
        Ok(self.inspect_image(image).await?.and_then(|i| {
            let labels = i
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .map(|l| l.into_iter().collect())
                .unwrap_or_default();
            i.id.map(|id| (id, labels))
        }))
    }

    async fn image_user(&self, image: &str) -> Result<Option<String>> {
        Ok(self
            .inspect_image(image)
            .await?
            .map(|i| i.config.and_then(|c| c.user).unwrap_or_default()))
    }

    async fn image_platform(&self, image: &str) -> Result<Option<String>> {
        Ok(self.inspect_image(image).await?.map(|i| {
            let mut platform = format!(
                "{}/{}",
                i.os.unwrap_or_default(),
                i.architecture.unwrap_or_default()
            );
            if let Some(v) = i.variant.filter(|v| !v.is_empty()) {
                platform = format!("{platform}/{v}");
            }
            platform
        }))
    }

    async fn volume_options(
        &self,
        name: &str,
    ) -> Result<Option<(String, BTreeMap<String, String>)>> {
        let found = self
            .unless_missing(
                format!("inspecting volume {name}"),
                self.bounds.call,
                self.docker.inspect_volume(name),
            )
            .await?;
        Ok(found.map(|v| (v.driver, v.options.into_iter().collect())))
    }

    async fn network_exists(&self, name: &str) -> Result<bool> {
        let found = self
            .unless_missing(
                format!("inspecting network {name}"),
                self.bounds.call,
                self.docker
                    .inspect_network(name, None::<InspectNetworkOptions>),
            )
            .await?;
        Ok(found.is_some())
    }

    async fn build(
        &self,
        tag: &str,
        context: &crate::build::Context,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        let labels: HashMap<String, String> = labels.clone().into_iter().collect();
        let args: HashMap<String, String> = context.args.clone().into_iter().collect();
        // The classic builder (the API's default): it needs no session, and
        // every engine launch supports has it.
        let mut options = BuildImageOptionsBuilder::new()
            .dockerfile(&context.dockerfile)
            .t(tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&args)
            .labels(&labels);
        if let Some(target) = &context.target {
            options = options.target(target);
        }
        // The context streams from a thread that reads the files, so a big
        // context is never held in memory; its own failure (a file that
        // cannot be read) is kept to be the error shown.
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
        let read_failure = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        {
            let context = context.clone();
            let read_failure = std::sync::Arc::clone(&read_failure);
            std::thread::spawn(move || {
                let out =
                    std::io::BufWriter::with_capacity(256 * 1024, ChannelWriter { tx: tx.clone() });
                if let Err(e) = context.write_tar(out) {
                    if let Ok(mut slot) = read_failure.lock() {
                        *slot = Some(e.to_string());
                    }
                    let _ = tx.blocking_send(Err(e));
                }
            });
        }
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            let chunk = rx.recv().await?;
            Some((chunk.map(bytes::Bytes::from), rx))
        });
        let mut stream =
            self.docker
                .build_image(options.build(), None, Some(bollard::body_try_stream(body)));
        let bars = progress::Build::new(tag);
        let mut log = BuildLog::default();
        let failed = |reason: String, source: Option<BollardError>| {
            let read = read_failure.lock().ok().and_then(|f| f.clone());
            EngineError::Build {
                image: tag.into(),
                reason: match read {
                    Some(read) => format!("reading the build context: {read}"),
                    None => reason,
                },
                source,
            }
        };
        while let Some(item) = self
            .next_within(&mut stream, self.bounds.build_idle, || {
                format!("building {tag} (no output)")
            })
            .await?
        {
            match item {
                Ok(info) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        bars.finish();
                        return Err(failed(log.failure(&message), None));
                    }
                    if let Some(text) = &info.stream {
                        for line in text.lines().filter(|l| !l.trim().is_empty()) {
                            log.push(line);
                            bars.line(line);
                        }
                    }
                }
                Err(e) => {
                    bars.finish();
                    // The builder's own message, without bollard's wrapping.
                    let message = match &e {
                        BollardError::DockerStreamError { error } => error.clone(),
                        other => describe(other),
                    };
                    return Err(failed(log.failure(&message), Some(e)));
                }
            }
        }
        bars.finish();
        Ok(())
    }

    async fn pull(&self, image: &str) -> Result<()> {
        let reference = ImageRef::parse(image).map_err(|reason| EngineError::Pull {
            image: image.into(),
            reason,
            source: None,
        })?;
        // A digest pins the image: it travels in fromImage, with no tag.
        let (from, tag) = match reference.digest() {
            Some(digest) => (format!("{}@{digest}", reference.repository()), ""),
            None => (reference.repository().to_string(), reference.tag()),
        };
        let options = CreateImageOptionsBuilder::new()
            .from_image(&from)
            .tag(tag)
            .build();
        let credentials = auth::credentials_for(image);
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        let bars = progress::Pull::new(image);
        let pull_failed = |reason: String, source: Option<BollardError>| EngineError::Pull {
            image: image.into(),
            reason,
            source,
        };
        // A pull has no end we can foresee; a pull that goes quiet is hung.
        while let Some(item) = self
            .next_within(&mut stream, self.bounds.pull_idle, || {
                format!("pulling {image} (no progress)")
            })
            .await?
        {
            match item {
                Ok(info) => {
                    if let Some(detail) = info.error_detail.as_ref().and_then(|d| d.message.clone())
                    {
                        return Err(pull_failed(detail, None));
                    }
                    bars.update(&info);
                }
                Err(e) => return Err(pull_failed(describe(&e), Some(e))),
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
        let mut options = CreateContainerOptionsBuilder::new().name(name);
        if let Some(platform) = &spec.platform {
            options = options.platform(platform);
        }
        let options = options.build();
        let body = create_body(spec, labels);
        let created = self
            .call(
                format!("creating container {name}"),
                self.bounds.call,
                self.docker.create_container(Some(options), body),
            )
            .await?;
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.call(
            format!("starting container {}", short(id)),
            self.bounds.call,
            self.docker.start_container(id, None),
        )
        .await
    }

    async fn stop(&self, id: &str, timeout: Option<u64>) -> Result<()> {
        let seconds = match timeout {
            Some(t) => t,
            None => self.stop_timeout_of(id).await?,
        };
        let mut options = StopContainerOptionsBuilder::new();
        if let Some(t) = timeout {
            options = options.t(i32::try_from(t).unwrap_or(i32::MAX));
        }
        let stopped = self
            .within(
                format!("stopping container {}", short(id)),
                self.bounds.stop(seconds),
                self.docker.stop_container(id, Some(options.build())),
            )
            .await?;
        match stopped {
            // 304: already stopped.
            Err(EngineError::Failed {
                source:
                    BollardError::DockerResponseServerError {
                        status_code: 304, ..
                    },
                ..
            }) => Ok(()),
            other => other,
        }
    }

    async fn unpause(&self, id: &str) -> Result<()> {
        self.call(
            format!("unpausing container {}", short(id)),
            self.bounds.call,
            self.docker.unpause_container(id),
        )
        .await
    }

    async fn rename(&self, id: &str, name: &str) -> Result<()> {
        let options = RenameContainerOptionsBuilder::new().name(name).build();
        self.call(
            format!("renaming container {} to {name}", short(id)),
            self.bounds.call,
            self.docker.rename_container(id, options),
        )
        .await
    }

    async fn remove(&self, id: &str, volumes: bool) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(volumes)
            .build();
        let call = format!("removing container {}", short(id));
        let began = tokio::time::Instant::now();
        loop {
            let request = self.docker.remove_container(id, Some(options.clone()));
            // One bound for the whole wait, however many times it asks.
            let left = self.bounds.disk.saturating_sub(began.elapsed());
            match self
                .within(&call, left.max(Duration::from_secs(1)), request)
                .await?
            {
                // Already gone is removed.
                Err(e) if e.is_not_found() => return Ok(()),
                // A removal `remove_begun` left to the engine: asked again
                // until it ends (and tried anew if it failed).
                Err(e)
                    if e.is_conflict()
                        && e.message().contains("already in progress")
                        && began.elapsed() < self.bounds.disk =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                done => return done,
            }
        }
    }

    async fn remove_begun(&self, id: &str) -> Result<Removal> {
        // A small writable layer goes in about 20 ms (docs/benchmarks.md),
        // and then nothing of the old container shows once `up` returns.
        const WHOLE: Duration = Duration::from_millis(50);
        let options = RemoveContainerOptionsBuilder::new().force(true).build();
        let call = format!("removing container {}", short(id));
        let removal = self.docker.remove_container(id, Some(options));
        tokio::pin!(removal);
        let began = tokio::time::Instant::now();
        let mut wait = WHOLE;
        loop {
            if let Ok(done) = tokio::time::timeout(wait, &mut removal).await {
                return match done.map_err(|e| self.failed(call, e)) {
                    Ok(()) => Ok(Removal::Done),
                    Err(e) if e.is_not_found() => Ok(Removal::Done),
                    Err(e) => Err(e),
                };
            }
            // Once marked, the removal is the daemon's: its handler goes on
            // when launch exits and the request is dropped (moby's
            // ContainerRm takes no context to cancel it with).
            // (`dead` is a removal that failed: its answer says why.)
            match self.find(id).await? {
                None => return Ok(Removal::Done),
                Some(c) if c.state == State::Removing => {
                    tracing::debug!("{call}: the engine deletes its files after launch returns");
                    return Ok(Removal::Begun);
                }
                Some(_) if began.elapsed() >= self.bounds.disk => {
                    return Err(EngineError::Timeout {
                        address: self.address.clone(),
                        call,
                        after: self.bounds.disk,
                    });
                }
                Some(_) => wait = Duration::from_millis(10),
            }
        }
    }

    async fn changes(&self, id: &str) -> Result<Vec<String>> {
        let changes = self
            .call(
                format!("listing the changed files of container {}", short(id)),
                self.bounds.disk,
                self.docker.container_changes(id),
            )
            .await?;
        Ok(changes
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.path)
            .collect())
    }

    async fn commit(
        &self,
        id: &str,
        repo: &str,
        tag: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String> {
        let options = CommitContainerOptionsBuilder::new()
            .container(id)
            .repo(repo)
            .tag(tag)
            .pause(true)
            .build();
        let committed = self
            .call(
                format!("committing container {} to {repo}:{tag}", short(id)),
                self.bounds.commit,
                // The engine merges these labels into the container's own.
                self.docker.commit_container(
                    options,
                    bollard::models::ContainerConfig {
                        labels: (!labels.is_empty())
                            .then(|| labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
                        ..Default::default()
                    },
                ),
            )
            .await?;
        Ok(committed.id)
    }

    async fn labeled_images(&self, label: &str) -> Result<Vec<SnapshotImage>> {
        let filters = HashMap::from([("label", vec![label.to_string()])]);
        let options = ListImagesOptionsBuilder::new().filters(&filters).build();
        let list = asked_again(|| {
            self.call(
                format!("listing images labelled {label}"),
                self.bounds.call,
                self.docker.list_images(Some(options.clone())),
            )
        })
        .await?;
        Ok(list
            .into_iter()
            .map(|i| SnapshotImage {
                of: i.labels.get(label).cloned().unwrap_or_default(),
                id: i.id,
                references: i
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect(),
            })
            .collect())
    }

    async fn remove_image(&self, reference: &str) -> Result<()> {
        let options = RemoveImageOptionsBuilder::new()
            .force(false)
            .noprune(false)
            .build();
        self.unless_missing(
            format!("removing image {reference}"),
            self.bounds.disk,
            self.docker.remove_image(reference, Some(options), None),
        )
        .await
        .map(drop)
    }

    async fn exec(&self, id: &str, request: &ExecRequest) -> Result<ExecSession> {
        let config = bollard::models::ExecConfig {
            attach_stdin: Some(request.stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(request.tty),
            cmd: Some(request.cmd.clone()),
            user: request.user.clone(),
            env: (!request.env.is_empty()).then(|| request.env.clone()),
            ..Default::default()
        };
        let what = shell_words::join(&request.cmd);
        let created = self
            .call(
                format!("starting `{what}` in container {}", short(id)),
                self.bounds.call,
                self.docker.create_exec(id, config),
            )
            .await?;
        let options = bollard::exec::StartExecOptions {
            detach: false,
            tty: request.tty,
            output_capacity: None,
        };
        let started = self
            .call(
                format!("starting `{what}` in container {}", short(id)),
                self.bounds.call,
                self.docker.start_exec(&created.id, Some(options)),
            )
            .await?;
        let bollard::exec::StartExecResults::Attached { output, input } = started else {
            return Err(EngineError::Failed {
                call: format!("starting `{what}` in container {}", short(id)),
                message: "the engine did not attach to the command".into(),
                source: BollardError::DockerResponseServerError {
                    status_code: 500,
                    message: "detached".into(),
                },
            });
        };
        let address = self.address.clone();
        let call = format!("reading the output of `{what}`");
        let output = output.filter_map(move |item| {
            let out = match item {
                Ok(bollard::container::LogOutput::StdErr { message }) => {
                    Some(Ok(ExecOutput::Stderr(message.to_vec())))
                }
                Ok(
                    bollard::container::LogOutput::StdOut { message }
                    | bollard::container::LogOutput::Console { message },
                ) => Some(Ok(ExecOutput::Stdout(message.to_vec()))),
                Ok(bollard::container::LogOutput::StdIn { .. }) => None,
                Err(e) => Some(Err(EngineError::Unreachable {
                    address: address.clone(),
                    reason: format!("{call}: {}", describe(&e)),
                    source: Some(e),
                })),
            };
            std::future::ready(out)
        });
        Ok(ExecSession {
            id: created.id,
            output: Box::pin(output),
            input,
        })
    }

    async fn exec_resize(&self, exec: &str, width: u16, height: u16) -> Result<()> {
        let options = bollard::exec::ResizeExecOptions { height, width };
        self.call(
            "resizing the terminal",
            self.bounds.call,
            self.docker.resize_exec(exec, options),
        )
        .await
    }

    async fn exec_exit_code(&self, exec: &str) -> Result<Option<i64>> {
        let inspected = self
            .call(
                "reading the exit code",
                self.bounds.call,
                self.docker.inspect_exec(exec),
            )
            .await?;
        Ok(match inspected.running {
            Some(true) => None,
            _ => inspected.exit_code,
        })
    }

    async fn logs(
        &self,
        id: &str,
        options: &LogOptions,
        stdout: &mut dyn std::io::Write,
        stderr: &mut dyn std::io::Write,
    ) -> Result<()> {
        let tail = options
            .tail
            .map_or_else(|| "all".to_string(), |n| n.to_string());
        let query = LogsOptionsBuilder::new()
            .follow(options.follow)
            .stdout(true)
            .stderr(true)
            .timestamps(options.timestamps)
            .since(
                options
                    .since
                    .map_or(0, |s| i32::try_from(s).unwrap_or(i32::MAX)),
            )
            .tail(&tail)
            .build();
        let call = format!("reading the log of container {}", short(id));
        let mut stream = self.docker.logs(id, Some(query));
        loop {
            // Following waits as long as the container is quiet; a plain read
            // must not hang on an engine that stopped answering.
            let next = if options.follow {
                stream.next().await
            } else {
                tokio::time::timeout(self.bounds.call, stream.next())
                    .await
                    .map_err(|_| EngineError::Timeout {
                        address: self.address.clone(),
                        call: call.clone(),
                        after: self.bounds.call,
                    })?
            };
            let Some(item) = next else { break };
            let written = match item.map_err(|e| self.failed(call.clone(), e))? {
                bollard::container::LogOutput::StdErr { message } => {
                    stderr.write_all(&message).and_then(|()| stderr.flush())
                }
                bollard::container::LogOutput::StdOut { message }
                | bollard::container::LogOutput::Console { message } => {
                    stdout.write_all(&message).and_then(|()| stdout.flush())
                }
                bollard::container::LogOutput::StdIn { .. } => Ok(()),
            };
            written.map_err(|e| write_failed(&call, e))?;
        }
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        self.unless_missing(
            format!("removing volume {name}"),
            self.bounds.disk,
            self.docker
                .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>),
        )
        .await
        .map(drop)
    }
}

/// A `Write` that hands what it is given to the request body, chunk by chunk.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx.blocking_send(Ok(buf.to_vec())).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the engine stopped reading")
        })?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The builder's output lines of the current step, to show when it fails.
#[derive(Default)]
struct BuildLog {
    step: Option<String>,
    lines: std::collections::VecDeque<String>,
}

impl BuildLog {
    /// The most output lines of a failed step that an error shows.
    const KEEP: usize = 20;

    fn push(&mut self, line: &str) {
        if line.starts_with("Step ") {
            self.step = Some(line.to_string());
            self.lines.clear();
        } else if !line.starts_with(" ---> ") && !line.starts_with("Removing intermediate") {
            if self.lines.len() == Self::KEEP {
                self.lines.pop_front();
            }
            self.lines.push_back(line.to_string());
        }
    }

    /// The failing step, its last output lines and the builder's message.
    fn failure(&self, message: &str) -> String {
        self.step
            .iter()
            .chain(self.lines.iter())
            .map(String::as_str)
            .chain([message.trim_end()])
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn write_failed(call: &str, e: std::io::Error) -> EngineError {
    EngineError::Failed {
        call: call.to_string(),
        message: e.to_string(),
        source: BollardError::IOError { err: e },
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
        init: spec.init.then_some(true),
        group_add: non_empty(&spec.group_add),
        sysctls: (!spec.sysctls.is_empty()).then(|| {
            spec.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        extra_hosts: non_empty(&spec.extra_hosts),
        dns: non_empty(&spec.dns),
        device_cgroup_rules: non_empty(&spec.device_cgroup_rules),
        runtime: spec.runtime.clone(),
        readonly_rootfs: spec.read_only.then_some(true),
        memory_swap: spec.memory_swap,
        log_config: spec.log.as_ref().map(|l| HostConfigLogConfig {
            typ: l.driver.clone(),
            config: Some(
                l.options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
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
    use super::*;

    #[test]
    fn podman_s_passing_image_answers_are_asked_again_and_nothing_else() {
        // Podman 4.3's own words, from CI runs of the tests.
        assert!(passing_text(
            "listing images labelled launch.snapshot: retrieving parent of image \"af4b\": you may need to remove the image to resolve the error: reading image \"08a9\": locating image with ID \"08a9\": image not known"
        ));
        assert!(passing_text(
            "inspecting image x: failed to convert ImageData to ImageInspect: image not known"
        ));
        assert!(!passing_text("inspecting image x: no such image: x"));
        assert!(!passing_text("image not known"));
    }

    /// A fake engine on a unix socket: answers `/_ping` with `ping` (status
    /// line and body) and accepts every other request without ever answering.
    fn silent_engine(ping: &'static str) -> (tempfile::TempDir, String) {
        use std::io::{BufRead, BufReader, Write};
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("engine.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                    let mut writer = conn;
                    loop {
                        let mut request = String::new();
                        let mut line = String::new();
                        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                            let end = line == "\r\n";
                            request.push_str(&line);
                            line.clear();
                            if end {
                                break;
                            }
                        }
                        if request.is_empty() {
                            return;
                        }
                        if !request.contains("/_ping") {
                            // Accepted, never answered: hold the connection.
                            std::thread::sleep(Duration::from_secs(3600));
                            return;
                        }
                        let (status, body) = ping.split_once('\n').unwrap_or((ping, ""));
                        let _ = write!(
                            writer,
                            "HTTP/1.1 {status}\r\nApi-Version: 1.41\r\nContent-Type: text/plain\r\n\
                             Content-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    }
                });
            }
        });
        let address = format!("unix://{}", path.display());
        (dir, address)
    }

    fn quick() -> Bounds {
        Bounds {
            call: Duration::from_millis(200),
            disk: Duration::from_millis(200),
            stop_margin: Duration::from_millis(200),
            commit: Duration::from_millis(200),
            pull_idle: Duration::from_millis(200),
            build_idle: Duration::from_millis(200),
        }
    }

    #[tokio::test]
    async fn a_call_that_is_never_answered_times_out_naming_the_address_and_the_call() {
        let (_dir, address) = silent_engine("200 OK\nOK");
        let engine = DockerEngine::connect(Some(&address), Duration::from_secs(5))
            .await
            .expect("the ping is answered")
            .with_bounds(quick());
        let start = std::time::Instant::now();
        let e = engine.find("train").await.expect_err("no answer");
        assert!(matches!(e, EngineError::Timeout { .. }), "{e:?}");
        let shown = e.to_string();
        assert!(
            shown.contains(&address) && shown.contains("inspecting container train"),
            "{shown}"
        );
        let e = engine
            .rename("0123456789abcdef", "train-old")
            .await
            .expect_err("no answer");
        assert!(
            e.to_string()
                .starts_with("renaming container 0123456789ab to train-old: "),
            "{e}"
        );
        // A stop may take the stop timeout it was given, plus the margin.
        let e = engine
            .stop("0123456789abcdef", Some(1))
            .await
            .expect_err("no answer");
        assert!(e.to_string().contains("stopping container"), "{e}");
        assert!(
            start.elapsed() >= Duration::from_millis(1600),
            "{:?}",
            start.elapsed()
        );
        assert!(start.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn a_stop_is_bounded_by_its_own_timeout_not_the_call_bound() {
        let bounds = Bounds::default();
        assert_eq!(bounds.stop(600), Duration::from_secs(660));
        assert!(bounds.stop(600) > bounds.call);
        assert_eq!(bounds.stop(u64::MAX), Duration::MAX, "never overflows");
    }

    #[tokio::test]
    async fn an_engine_older_than_api_1_40_is_named_as_too_old() {
        let (_dir, address) = silent_engine(
            "400 Bad Request\n{\"message\":\"client version 1.52 is too new. Maximum supported API version is 1.39\"}",
        );
        let e = DockerEngine::connect(Some(&address), Duration::from_secs(5))
            .await
            .err()
            .expect("too old");
        assert!(matches!(e, EngineError::ApiTooOld { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!(
                "the container engine at {address} speaks API 1.39, older than the 1.40 launch needs \
                 (Docker 19.03 or newer): upgrade the engine"
            )
        );
    }

    #[tokio::test]
    async fn an_engine_that_is_not_there_is_unreachable_with_the_cause_kept() {
        let e = DockerEngine::connect(
            Some("unix:///nonexistent/engine.sock"),
            Duration::from_secs(5),
        )
        .await
        .err()
        .expect("nothing there");
        assert!(
            e.to_string().starts_with(
                "cannot reach the container engine at unix:///nonexistent/engine.sock: "
            ),
            "{e}"
        );
        assert!(
            std::error::Error::source(&e).is_some(),
            "bollard's error is the source"
        );
    }

    #[test]
    fn engine_answers_become_variants_by_status_with_the_message_kept() {
        let e = EngineError::answered("removing volume data", 409, "volume is in use - [3f2a]");
        assert!(e.is_conflict());
        assert_eq!(
            e.to_string(),
            "removing volume data: volume is in use - [3f2a]"
        );
        assert_eq!(e.message(), "volume is in use - [3f2a]");
        let source = std::error::Error::source(&e).expect("a source").to_string();
        assert!(source.contains("409"), "{source}");
        assert!(EngineError::answered("x", 404, "no such container").is_not_found());
        assert!(matches!(
            EngineError::answered("x", 500, "boom"),
            EngineError::Failed { .. }
        ));
    }

    #[test]
    fn engine_addresses_are_judged_before_any_connection() {
        for good in [
            "unix:///var/run/docker.sock",
            "tcp://127.0.0.1:2375",
            "tcp://[::1]:2375",
            "http://host",
            "ssh://alice@gpu-1",
            "ssh://gpu-1:2222",
        ] {
            assert_eq!(check_address(good), Ok(()), "{good}");
        }
        for bad in [
            "foo://",
            "tcp://127.0.0.1:99999",
            "tcp://127.0.0.1:0",
            "tcp://:2375",
            "ssh://-oProxyCommand=id",
            "ssh://-x@host",
            "ssh://alice@-host",
            "unix://relative",
            "/var/run/docker.sock",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_old_daemon_names_its_maximum_api_version() {
        let v = super::max_api_version(
            "client version 1.53 is too new. Maximum supported API version is 1.41",
        )
        .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(super::max_api_version("something else").is_none());
    }
}
