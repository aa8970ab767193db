//! An in-memory `Engine` for what a real daemon cannot be made to do on
//! cue: a rename, create, start or remove that fails, a volume in use, a run
//! killed between any two steps. It models containers (name, id, state,
//! labels, changed files), images and volumes, records every call, and fails
//! on command. Real-daemon tests stay; this adds the failure paths.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use super::{
    Engine, EngineError, ExecRequest, ExecSession, Facts, LogOptions, Observed, Removal, Result,
    SnapshotImage, State,
};
use crate::spec::{ContainerSpec, MountType};

/// The engine call a step was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Facts,
    Find,
    Managed,
    Leftovers,
    ImageId,
    Pull,
    Build,
    Create,
    Start,
    Stop,
    Unpause,
    Rename,
    Remove,
    Changes,
    Commit,
    RemoveVolume,
    Logs,
    LabeledImages,
    RemoveImage,
    Exec,
}

/// One recorded call: what, on what, and whether it failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub op: Op,
    pub target: String,
    pub failed: bool,
}

/// A container as the fake engine holds it.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub state: State,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub image_id: String,
    /// Paths changed in its writable layer (`docker diff`).
    pub changes: Vec<String>,
    /// Named volumes it mounts.
    pub volumes: Vec<String>,
    pub started_at: String,
    pub created: String,
}

impl Container {
    pub fn spec(&self) -> Option<ContainerSpec> {
        self.observed().spec()
    }

    fn observed(&self) -> Observed {
        Observed {
            id: self.id.clone(),
            name: self.name.clone(),
            state: self.state,
            labels: self.labels.clone(),
            image_id: self.image_id.clone(),
            image: self.image.clone(),
            started_at: self.started_at.clone(),
            created: self.created.clone(),
            health: None,
        }
    }
}

/// An image: pulled or imported (`changes` empty), or committed from a
/// container (`changes`: the writable layer it kept).
#[derive(Debug, Clone)]
pub struct Image {
    pub reference: String,
    pub id: String,
    pub changes: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// A failure on command: the next `times` calls of `op` (every call when
/// `None`) answer with `status` and `message`, as the daemon would.
struct Fault {
    op: Op,
    /// Calls of `op` to let through first.
    skip: usize,
    status: u16,
    message: String,
    times: Option<usize>,
}

#[derive(Default)]
struct World {
    containers: Vec<Container>,
    images: Vec<Image>,
    volumes: BTreeSet<String>,
    calls: Vec<Call>,
    faults: Vec<Fault>,
    /// Calls still allowed before the process "dies".
    crash_in: Option<usize>,
    /// `remove_begun` leaves containers marked, as a daemon does with a
    /// big writable layer, until `finish_removals`.
    slow_removals: bool,
    /// Calls that never answer, as a hung daemon's.
    hangs: Vec<Op>,
    clock: u64,
    serial: u64,
}

impl World {
    fn tick(&mut self) -> String {
        self.clock += 1;
        humantime::format_rfc3339_nanos(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000 + self.clock),
        )
        .to_string()
    }

    /// A 64-hex-digit id whose first 12 digits differ from every other's.
    fn new_id(&mut self) -> String {
        self.serial += 1;
        let n = self.serial.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        format!("{n:016x}{:048x}", self.serial)
    }

    fn index(&self, key: &str) -> Option<usize> {
        self.containers
            .iter()
            .position(|c| c.name == key || c.id == key)
            .or_else(|| {
                let matches: Vec<usize> = (0..self.containers.len())
                    .filter(|&i| key.len() >= 4 && self.containers[i].id.starts_with(key))
                    .collect();
                (matches.len() == 1).then(|| matches[0])
            })
    }

    fn no_such_container(call: &str, key: &str) -> EngineError {
        EngineError::answered(call, 404, format!("No such container: {key}"))
    }

    fn name_taken(&self, call: &str, name: &str) -> Option<EngineError> {
        let holder = self.containers.iter().find(|c| c.name == name)?;
        Some(EngineError::answered(
            call,
            409,
            format!(
                "Conflict. The container name \"/{name}\" is already in use by container \"{}\". \
                 You have to remove (or rename) that container to be able to reuse that name.",
                holder.id
            ),
        ))
    }
}

/// The fake engine. Every method records its call first; a pending crash or
/// fault then decides whether it fails before it changes anything.
#[derive(Default)]
pub struct Recording {
    world: Mutex<World>,
}

impl Recording {
    pub fn new() -> Recording {
        Recording::default()
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        // A test that panicked holding the lock has failed already.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a local image; returns its id.
    pub fn add_image(&self, reference: &str) -> String {
        let mut w = self.world();
        let id = format!("sha256:{}", w.new_id());
        w.images.push(Image {
            reference: reference.into(),
            id: id.clone(),
            changes: Vec::new(),
            labels: BTreeMap::new(),
        });
        id
    }

    /// Adds a container as launch would have made it from `spec` (labels
    /// and all), in `state`, with `changes` in its writable layer; its id.
    pub fn add_container(
        &self,
        spec: &ContainerSpec,
        profile: &std::path::Path,
        state: State,
        changes: &[&str],
    ) -> String {
        let labels = spec.all_labels(profile);
        let mut w = self.world();
        let id = w.new_id();
        let created = w.tick();
        let started_at = if state == State::Created {
            "0001-01-01T00:00:00Z".to_string()
        } else {
            w.tick()
        };
        let image_id = w
            .images
            .iter()
            .find(|i| i.reference == spec.image)
            .map(|i| i.id.clone())
            .unwrap_or_default();
        let volumes = named_volumes(spec);
        w.volumes.extend(volumes.iter().cloned());
        w.containers.push(Container {
            id: id.clone(),
            name: spec.name.clone(),
            state,
            labels,
            image: spec.image.clone(),
            image_id,
            changes: changes.iter().map(|c| c.to_string()).collect(),
            volumes,
            started_at,
            created,
        });
        id
    }

    /// Sets a label on container `id` (who launch made it for, say).
    pub fn set_label(&self, id: &str, key: &str, value: &str) {
        if let Some(c) = self.world().containers.iter_mut().find(|c| c.id == id) {
            c.labels.insert(key.into(), value.into());
        }
    }

    /// The next `times` calls of `op` fail with HTTP `status` and `message`.
    pub fn fail(&self, op: Op, times: usize, status: u16, message: &str) {
        self.world().faults.push(Fault {
            op,
            skip: 0,
            status,
            message: message.into(),
            times: Some(times),
        });
    }

    /// The `nth` call of `op` from now (1 = the next) fails, once.
    pub fn fail_nth(&self, op: Op, nth: usize, status: u16, message: &str) {
        self.world().faults.push(Fault {
            op,
            skip: nth.saturating_sub(1),
            status,
            message: message.into(),
            times: Some(1),
        });
    }

    /// Every call of `op` fails with HTTP `status` and `message`.
    pub fn fail_always(&self, op: Op, status: u16, message: &str) {
        self.world().faults.push(Fault {
            op,
            skip: 0,
            status,
            message: message.into(),
            times: None,
        });
    }

    /// After `steps` more calls, every call fails without effect: the run
    /// was killed there.
    pub fn crash_after(&self, steps: usize) {
        self.world().crash_in = Some(steps);
    }

    /// From now on `remove_begun` returns with the container still being
    /// removed (state `removing`), as after a `pip install` in it.
    pub fn remove_slowly(&self) {
        self.world().slow_removals = true;
    }

    /// The engine ends the removals it had begun; `dead`: they fail half
    /// way, as when the daemon restarts, and the containers stay `dead`.
    pub fn finish_removals(&self, dead: bool) {
        let mut w = self.world();
        if dead {
            for c in w
                .containers
                .iter_mut()
                .filter(|c| c.state == State::Removing)
            {
                c.state = State::Dead;
            }
        } else {
            w.containers.retain(|c| c.state != State::Removing);
        }
    }

    /// From now on every call of `op` is accepted and never answered, as a
    /// hung daemon's.
    pub fn hang(&self, op: Op) {
        self.world().hangs.push(op);
    }

    async fn hangs(&self, op: Op) {
        let hung = self.world().hangs.contains(&op);
        if hung {
            std::future::pending::<()>().await;
        }
    }

    /// A fresh run on the same state: no crash, no faults or hangs pending.
    pub fn revive(&self) {
        let mut w = self.world();
        w.crash_in = None;
        w.faults.clear();
        w.hangs.clear();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.world().calls.clone()
    }

    /// The calls of one kind, in order, by target.
    pub fn calls_of(&self, op: Op) -> Vec<String> {
        self.world()
            .calls
            .iter()
            .filter(|c| c.op == op)
            .map(|c| c.target.clone())
            .collect()
    }

    pub fn clear_calls(&self) {
        self.world().calls.clear();
    }

    pub fn containers(&self) -> Vec<Container> {
        self.world().containers.clone()
    }

    /// The container of that name or id.
    pub fn container(&self, key: &str) -> Option<Container> {
        let w = self.world();
        w.index(key).map(|i| w.containers[i].clone())
    }

    pub fn images(&self) -> Vec<Image> {
        self.world().images.clone()
    }

    pub fn volumes(&self) -> BTreeSet<String> {
        self.world().volumes.clone()
    }

    /// Records a call and decides whether it fails (a crash, a fault).
    fn enter(&self, op: Op, target: &str, call: &str) -> Result<std::sync::MutexGuard<'_, World>> {
        let mut w = self.world();
        let crashed = match w.crash_in.as_mut() {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        };
        let fault = if crashed {
            None
        } else {
            let mut hit = None;
            for f in w
                .faults
                .iter_mut()
                .filter(|f| f.op == op && f.times != Some(0))
            {
                if f.skip > 0 {
                    f.skip -= 1;
                } else if hit.is_none() {
                    if let Some(t) = f.times.as_mut() {
                        *t -= 1;
                    }
                    hit = Some((f.status, f.message.clone()));
                }
            }
            hit
        };
        w.calls.push(Call {
            op,
            target: target.into(),
            failed: crashed || fault.is_some(),
        });
        if crashed {
            return Err(EngineError::Unreachable {
                address: "recording".into(),
                reason: format!("{call}: the run was killed"),
                source: None,
            });
        }
        if let Some((status, message)) = fault {
            return Err(EngineError::answered(call, status, message));
        }
        Ok(w)
    }
}

fn named_volumes(spec: &ContainerSpec) -> Vec<String> {
    spec.mounts
        .iter()
        .filter(|m| m.kind == MountType::Volume)
        .filter_map(|m| m.source.clone())
        .collect()
}

impl Engine for Recording {
    async fn facts(&self) -> Result<Facts> {
        let _world = self.enter(Op::Facts, "", "docker info")?;
        Ok(Facts::default())
    }

    /// A Docker of the recording's own, not on this host: launch looks at
    /// no container's processes.
    async fn identity(&self) -> Result<super::Identity> {
        Ok(super::Identity {
            product: super::Product::Docker,
            version: "recording".into(),
            local: false,
        })
    }

    async fn process(&self, _id: &str) -> Result<Option<u32>> {
        Ok(None)
    }

    async fn find(&self, name: &str) -> Result<Option<Observed>> {
        let w = self.enter(Op::Find, name, &format!("inspecting container {name}"))?;
        Ok(w.index(name).map(|i| w.containers[i].observed()))
    }

    async fn managed(&self) -> Result<Vec<Observed>> {
        let w = self.enter(Op::Managed, "", "listing containers")?;
        let mut out: Vec<Observed> = w
            .containers
            .iter()
            .map(Container::observed)
            .filter(Observed::is_managed)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn container_names(&self) -> Result<Vec<(String, String)>> {
        let w = self.enter(Op::Managed, "", "listing containers")?;
        Ok(w.containers
            .iter()
            .map(|c| {
                let o = c.observed();
                (o.id, o.name)
            })
            .collect())
    }

    async fn leftovers(&self, name: &str) -> Result<Vec<Observed>> {
        let w = self.enter(Op::Leftovers, name, &format!("listing leftovers of {name}"))?;
        let prefix = format!("{name}{}", super::ASIDE);
        Ok(w.containers
            .iter()
            .filter(|c| c.name.starts_with(&prefix))
            .map(Container::observed)
            .filter(Observed::is_managed)
            .collect())
    }

    async fn listed(&self, names: &[&str]) -> Result<Vec<Observed>> {
        let w = self.enter(Op::Managed, "", "listing containers")?;
        let wanted = |c: &Container| {
            names.is_empty() || names.iter().any(|n| super::is_name_or_aside(&c.name, n))
        };
        Ok(w.containers
            .iter()
            .filter(|c| wanted(c))
            .map(Container::observed)
            .filter(Observed::is_managed)
            .collect())
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        let w = self.enter(Op::ImageId, image, &format!("inspecting image {image}"))?;
        Ok(w.images
            .iter()
            .find(|i| i.reference == image)
            .map(|i| i.id.clone()))
    }

    /// Recorded images carry no environment.
    async fn image_env(&self, image: &str) -> Result<Option<BTreeMap<String, String>>> {
        let w = self.enter(Op::ImageId, image, &format!("inspecting image {image}"))?;
        Ok(w.images
            .iter()
            .find(|i| i.reference == image)
            .map(|_| BTreeMap::new()))
    }

    async fn image_labels(
        &self,
        image: &str,
    ) -> Result<Option<(String, BTreeMap<String, String>)>> {
        let w = self.enter(Op::ImageId, image, &format!("inspecting image {image}"))?;
        Ok(w.images
            .iter()
            .find(|i| i.reference == image)
            .map(|i| (i.id.clone(), i.labels.clone())))
    }

    /// Recorded images set no user.
    async fn image_user(&self, image: &str) -> Result<Option<String>> {
        let w = self.enter(Op::ImageId, image, &format!("inspecting image {image}"))?;
        Ok(w.images
            .iter()
            .find(|i| i.reference == image)
            .map(|_| String::new()))
    }

    /// Every image of the recording is the host's own platform.
    async fn image_platform(&self, image: &str) -> Result<Option<String>> {
        let w = self.enter(Op::ImageId, image, &format!("inspecting image {image}"))?;
        Ok(w.images
            .iter()
            .find(|i| i.reference == image)
            .map(|_| "linux/amd64".to_string()))
    }

    /// The recording keeps volumes by name only: none has options.
    async fn volume_options(
        &self,
        name: &str,
    ) -> Result<Option<(String, BTreeMap<String, String>)>> {
        let _recorded = self.enter(Op::ImageId, name, &format!("inspecting volume {name}"))?;
        Ok(None)
    }

    /// The recording has every network a profile names.
    async fn network_exists(&self, name: &str) -> Result<bool> {
        let _recorded = self.enter(Op::ImageId, name, &format!("inspecting network {name}"))?;
        Ok(true)
    }

    /// A build always makes a new image id, as a real build with a changed
    /// context does; the old image loses the tag.
    async fn build(
        &self,
        tag: &str,
        _context: &crate::build::Context,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut w = self.enter(Op::Build, tag, &format!("building {tag}"))?;
        let id = format!("sha256:{}", w.new_id());
        w.images.retain(|i| i.reference != tag);
        w.images.push(Image {
            reference: tag.into(),
            id,
            changes: Vec::new(),
            labels: labels.clone(),
        });
        Ok(())
    }

    async fn pull(&self, image: &str) -> Result<()> {
        let mut w = self.enter(Op::Pull, image, &format!("pulling {image}"))?;
        if !w.images.iter().any(|i| i.reference == image) {
            let id = format!("sha256:{}", w.new_id());
            w.images.push(Image {
                reference: image.into(),
                id,
                changes: Vec::new(),
                labels: BTreeMap::new(),
            });
        }
        Ok(())
    }

    async fn create(
        &self,
        name: &str,
        spec: &ContainerSpec,
        labels: &BTreeMap<String, String>,
    ) -> Result<String> {
        let call = format!("creating container {name}");
        let mut w = self.enter(Op::Create, name, &call)?;
        if let Some(taken) = w.name_taken(&call, name) {
            return Err(taken);
        }
        let Some(image_id) = w
            .images
            .iter()
            .find(|i| i.reference == spec.image)
            .map(|i| i.id.clone())
        else {
            return Err(EngineError::answered(
                call,
                404,
                format!("No such image: {}", spec.image),
            ));
        };
        let id = w.new_id();
        let created = w.tick();
        let volumes = named_volumes(spec);
        w.volumes.extend(volumes.iter().cloned());
        w.containers.push(Container {
            id: id.clone(),
            name: name.into(),
            state: State::Created,
            labels: labels.clone(),
            image: spec.image.clone(),
            image_id,
            changes: Vec::new(),
            volumes,
            started_at: "0001-01-01T00:00:00Z".into(),
            created,
        });
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.hangs(Op::Start).await;
        let call = format!("starting container {id}");
        let mut w = self.enter(Op::Start, id, &call)?;
        let i = w
            .index(id)
            .ok_or_else(|| World::no_such_container(&call, id))?;
        if matches!(w.containers[i].state, State::Removing | State::Dead) {
            // The daemon's words.
            return Err(EngineError::answered(
                call,
                409,
                "container is marked for removal and cannot be started",
            ));
        }
        if w.containers[i].state != State::Running {
            let now = w.tick();
            let c = &mut w.containers[i];
            c.state = State::Running;
            c.started_at = now;
        }
        Ok(())
    }

    async fn stop(&self, id: &str, _timeout: Option<u64>) -> Result<()> {
        self.hangs(Op::Stop).await;
        let call = format!("stopping container {id}");
        let mut w = self.enter(Op::Stop, id, &call)?;
        let i = w
            .index(id)
            .ok_or_else(|| World::no_such_container(&call, id))?;
        let c = &mut w.containers[i];
        if matches!(c.state, State::Running | State::Restarting) {
            c.state = State::Exited;
        }
        Ok(())
    }

    async fn unpause(&self, id: &str) -> Result<()> {
        let call = format!("unpausing container {id}");
        let mut w = self.enter(Op::Unpause, id, &call)?;
        let i = w
            .index(id)
            .ok_or_else(|| World::no_such_container(&call, id))?;
        let c = &mut w.containers[i];
        if c.state != State::Paused {
            return Err(EngineError::answered(
                call,
                409,
                format!("Container {id} is not paused"),
            ));
        }
        c.state = State::Running;
        Ok(())
    }

    async fn rename(&self, id: &str, name: &str) -> Result<()> {
        let call = format!("renaming container {id} to {name}");
        let mut w = self.enter(Op::Rename, &format!("{id} -> {name}"), &call)?;
        let i = w
            .index(id)
            .ok_or_else(|| World::no_such_container(&call, id))?;
        if w.containers[i].name == name {
            return Ok(());
        }
        if let Some(taken) = w.name_taken(&call, name) {
            return Err(taken);
        }
        w.containers[i].name = name.into();
        Ok(())
    }

    async fn remove(&self, id: &str, _volumes: bool) -> Result<()> {
        self.hangs(Op::Remove).await;
        let mut w = self.enter(Op::Remove, id, &format!("removing container {id}"))?;
        if let Some(i) = w.index(id) {
            w.containers.remove(i);
        }
        Ok(())
    }

    async fn remove_begun(&self, id: &str) -> Result<Removal> {
        let mut w = self.enter(Op::Remove, id, &format!("removing container {id}"))?;
        let Some(i) = w.index(id) else {
            return Ok(Removal::Done);
        };
        if w.slow_removals {
            w.containers[i].state = State::Removing;
            return Ok(Removal::Begun);
        }
        w.containers.remove(i);
        Ok(Removal::Done)
    }

    async fn changes(&self, id: &str) -> Result<Vec<String>> {
        let call = format!("listing the changed files of container {id}");
        let w = self.enter(Op::Changes, id, &call)?;
        let i = w
            .index(id)
            .ok_or_else(|| World::no_such_container(&call, id))?;
        Ok(w.containers[i].changes.clone())
    }

    async fn commit(
        &self,
        id: &str,
        repo: &str,
        tag: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String> {
        let call = format!("committing container {id} to {repo}:{tag}");
        let mut w = self.enter(Op::Commit, id, &call)?;
        let i = w
            .index(id)
            .ok_or_else(|| World::no_such_container(&call, id))?;
        let changes = w.containers[i].changes.clone();
        let image = format!("sha256:{}", w.new_id());
        let reference = format!("{repo}:{tag}");
        w.images.retain(|i| i.reference != reference);
        let mut all = w.containers[i].labels.clone();
        all.extend(labels.clone());
        w.images.push(Image {
            reference,
            id: image.clone(),
            changes,
            labels: all,
        });
        Ok(image)
    }

    async fn labeled_images(&self, label: &str) -> Result<Vec<SnapshotImage>> {
        let w = self.enter(
            Op::LabeledImages,
            label,
            &format!("listing images labelled {label}"),
        )?;
        // One entry per reference: the fake keeps no image with two tags.
        Ok(w.images
            .iter()
            .filter_map(|i| {
                Some(SnapshotImage {
                    id: i.id.clone(),
                    references: vec![i.reference.clone()],
                    of: i.labels.get(label)?.clone(),
                })
            })
            .collect())
    }

    async fn remove_image(&self, reference: &str) -> Result<()> {
        let call = format!("removing image {reference}");
        let mut w = self.enter(Op::RemoveImage, reference, &call)?;
        w.images.retain(|i| i.reference != reference);
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        let call = format!("removing volume {name}");
        let mut w = self.enter(Op::RemoveVolume, name, &call)?;
        let users: Vec<String> = w
            .containers
            .iter()
            .filter(|c| c.volumes.iter().any(|v| v == name))
            .map(|c| c.id.clone())
            .collect();
        if !users.is_empty() {
            return Err(EngineError::answered(
                call,
                409,
                format!("remove {name}: volume is in use - [{}]", users.join(", ")),
            ));
        }
        w.volumes.remove(name);
        Ok(())
    }

    /// The fake containers run nothing: their logs are empty.
    async fn logs(
        &self,
        id: &str,
        _options: &LogOptions,
        _stdout: &mut dyn std::io::Write,
        _stderr: &mut dyn std::io::Write,
    ) -> Result<()> {
        let call = format!("reading the log of container {id}");
        let w = self.enter(Op::Logs, id, &call)?;
        w.index(id)
            .map(|_| ())
            .ok_or_else(|| World::no_such_container(&call, id))
    }

    /// The fake containers run nothing: an exec is refused, as by an
    /// engine that cannot run it.
    async fn exec(&self, id: &str, request: &ExecRequest) -> Result<ExecSession> {
        let call = format!("starting `{}` in container {id}", request.cmd.join(" "));
        let _w = self.enter(Op::Exec, id, &call)?;
        Err(EngineError::answered(
            call,
            501,
            "the recording engine runs no processes",
        ))
    }

    async fn exec_resize(&self, exec: &str, _width: u16, _height: u16) -> Result<()> {
        Err(EngineError::answered(
            "resizing the terminal",
            404,
            format!("No such exec instance: {exec}"),
        ))
    }

    async fn exec_exit_code(&self, exec: &str) -> Result<Option<i64>> {
        Err(EngineError::answered(
            "reading the exit code",
            404,
            format!("No such exec instance: {exec}"),
        ))
    }
}
