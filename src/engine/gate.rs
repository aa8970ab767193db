//! The one gate (docs/architecture.md, the owner boundary): every engine
//! call launch makes for a profile goes through a [`Gate`], which knows the
//! acting owner and asks the state store what launch made for whom.
//!
//! `Gate` implements [`Engine`] by passing each call on after its rule, so
//! a new engine method cannot compile until it has one here. What an owner
//! may touch: containers launch made for them and free names; images launch
//! built for them; snapshots of their own containers. Nothing launch runs
//! inside a container runs as anyone but the container's own user.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;

use super::{
    ASIDE, Engine, EngineError, ExecRequest, ExecSession, Facts, LogOptions, Observed, Removal,
    Result, SnapshotImage,
};
use crate::spec::{ContainerSpec, MountType, label};
use crate::state::{ContainerRecord, ImageKind, ImageRecord, Owned, Store};

/// The repository launch commits snapshots to: no build may tag under it.
pub const SNAPSHOTS: &str = "launch-snapshots/";

/// The repository of the snapshots of container `name`.
pub fn snapshot_repo(name: &str) -> String {
    format!("{SNAPSHOTS}{}", name.to_ascii_lowercase())
}

/// Whom launch acts for, and how far.
#[derive(Debug, Clone)]
pub struct Acting {
    pub uid: u32,
    /// The owner, whose name (`launch.owner`) is looked up only when a
    /// message or a label needs it: a no-op asks no user database.
    owner: crate::owner::Owner,
    /// The profile launch acts on, if any: a container an older launch made
    /// from this very file, before owners were recorded, is this owner's.
    pub profile: Option<PathBuf>,
    pub scope: Scope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// For a profile: only what launch made for its owner.
    Owner,
    /// For the user running launch, on what they named on the command
    /// line (`down NAME`, `logs NAME`, `prune`): anything launch made.
    Runner,
}

impl Acting {
    /// For a profile's acting owner.
    pub fn owner(owner: &crate::owner::Owner, profile: &std::path::Path) -> Acting {
        Acting {
            uid: owner.uid,
            owner: owner.clone(),
            profile: Some(profile.to_path_buf()),
            scope: Scope::Owner,
        }
    }

    /// For the user running launch, on containers named on the command line.
    pub fn runner() -> Acting {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        Acting {
            uid,
            owner: crate::owner::Owner::of_uid(uid, gid),
            profile: None,
            scope: Scope::Runner,
        }
    }

    /// The owner's name as shown and labelled: the login name, or the uid.
    pub fn name(&self) -> String {
        self.owner.display()
    }

    fn owned(&self) -> Owned {
        Owned {
            uid: self.uid,
            name: self.name(),
        }
    }
}

/// Whose a container is, as the gate judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whose {
    /// The acting owner's (or, for the runner, launch's).
    Mine,
    /// Launch made it for another owner (their name, or `unknown`).
    Other(String),
    /// Launch did not make it.
    Foreign,
}

/// An engine, seen as one acting owner may use it.
pub struct Gate<'a, E> {
    inner: &'a E,
    store: &'a Store,
    acting: Acting,
    /// Containers judged in this run, by id.
    known: Mutex<HashMap<String, Known>>,
    /// Execs this gate started: only their sizes and codes are asked.
    execs: Mutex<HashSet<String>>,
}

#[derive(Debug, Clone)]
struct Known {
    name: String,
    whose: Whose,
    /// Named volumes it mounts (its spec), which `down --volumes` may remove.
    volumes: Vec<String>,
}

fn forbidden(message: String) -> EngineError {
    EngineError::Forbidden(message)
}

impl<'a, E: Engine> Gate<'a, E> {
    /// The state store the gate records in (leases keep theirs there too).
    pub fn store(&self) -> &'a Store {
        self.store
    }

    pub fn new(inner: &'a E, store: &'a Store, acting: Acting) -> Gate<'a, E> {
        Gate {
            inner,
            store,
            acting,
            known: Mutex::default(),
            execs: Mutex::default(),
        }
    }

    pub fn acting(&self) -> &Acting {
        &self.acting
    }

    /// The engine behind the gate, for what only reads (listings shared by
    /// a whole run).
    pub fn inner(&self) -> &'a E {
        self.inner
    }

    fn store_failed(e: crate::state::StoreError) -> EngineError {
        EngineError::State(e.to_string())
    }

    /// Whose `c` is: the store says; where it has no record (a store made
    /// since, or a container of an older launch), the labels say, and they
    /// never make a container the acting owner's unless they name that owner
    /// (or, without an owner label, this very profile file). Such a container
    /// is then recorded as theirs.
    pub fn whose(&self, c: &Observed) -> Result<Whose> {
        if let Some(k) = self.lock_known().get(&c.id) {
            return Ok(k.whose.clone());
        }
        let whose = self.judge(c)?;
        let volumes = c
            .spec()
            .map(|s| {
                s.mounts
                    .into_iter()
                    .filter(|m| m.kind == MountType::Volume)
                    .filter_map(|m| m.source)
                    .collect()
            })
            .unwrap_or_default();
        self.lock_known().insert(
            c.id.clone(),
            Known {
                name: c.name.clone(),
                whose: whose.clone(),
                volumes,
            },
        );
        Ok(whose)
    }

    fn judge(&self, c: &Observed) -> Result<Whose> {
        if !c.is_managed() {
            return Ok(Whose::Foreign);
        }
        if self.acting.scope == Scope::Runner {
            return Ok(Whose::Mine);
        }
        if let Some(r) = self.store.container(&c.id).map_err(Self::store_failed)? {
            return Ok(if r.owner.uid == self.acting.uid {
                Whose::Mine
            } else {
                Whose::Other(r.owner.name)
            });
        }
        let mine = match (c.labels.get(label::OWNER_UID), c.labels.get(label::OWNER)) {
            (Some(uid), _) => *uid == self.acting.uid.to_string(),
            (None, Some(owner)) => {
                *owner == self.acting.uid.to_string() || *owner == self.acting.name()
            }
            (None, None) => {
                let profile = self
                    .acting
                    .profile
                    .as_ref()
                    .map(|p| p.display().to_string());
                profile.is_some() && c.labels.get(label::PROFILE) == profile.as_ref()
            }
        };
        if !mine {
            return Ok(Whose::Other(
                c.labels
                    .get(label::OWNER)
                    .cloned()
                    .unwrap_or_else(|| "unknown".into()),
            ));
        }
        self.record(&c.id, base_name(&c.name))?;
        Ok(Whose::Mine)
    }

    fn record(&self, id: &str, name: &str) -> Result<()> {
        self.store
            .record_container(&ContainerRecord {
                id: id.into(),
                name: name.into(),
                owner: self.acting.owned(),
                profile: self
                    .acting
                    .profile
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            })
            .map_err(Self::store_failed)
    }

    fn lock_known(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The container `id`, which must be the acting owner's; its name.
    async fn mine(&self, id: &str, call: &str) -> Result<String> {
        let known = self.lock_known().get(id).cloned();
        let known = match known {
            Some(k) => k,
            None => {
                let Some(c) = self.inner.find(id).await? else {
                    // The engine says "no such container" in its own words.
                    return Ok(id.to_string());
                };
                self.whose(&c)?;
                // Under its full id, whatever `id` was.
                let k = self.lock_known().get(&c.id).cloned();
                match k {
                    Some(k) => {
                        self.lock_known().insert(id.to_string(), k.clone());
                        k
                    }
                    None => return Err(forbidden(format!("{call} {id}: not judged"))),
                }
            }
        };
        match known.whose {
            Whose::Mine => Ok(known.name),
            Whose::Other(owner) => Err(forbidden(format!(
                "{call} {}: the container belongs to {owner}, and launch acts here for {}; it never touches another owner's container",
                known.name,
                self.acting.name()
            ))),
            Whose::Foreign => Err(forbidden(format!(
                "{call} {}: launch did not make this container and never touches it",
                known.name
            ))),
        }
    }

    /// The store's record of `reference`, if it still names the image the
    /// engine has under that reference (one removed or replaced outside
    /// launch is forgotten).
    async fn made(&self, reference: &str) -> Result<Option<ImageRecord>> {
        let Some(r) = self.store.image(reference).map_err(Self::store_failed)? else {
            return Ok(None);
        };
        // Podman answers a commit with the id without its `sha256:`.
        let bare = |id: &str| id.trim_start_matches("sha256:").to_string();
        let now = self.inner.image_id(reference).await?.map(|id| bare(&id));
        if now == Some(bare(&r.image_id)) {
            return Ok(Some(r));
        }
        self.store
            .forget_image(reference)
            .map_err(Self::store_failed)?;
        Ok(None)
    }

    /// Whether `reference` names an image launch built for the acting
    /// owner, as it is now: what `up` may take a `[build]`'s image to be.
    pub async fn built_for_me(&self, reference: &str) -> Result<bool> {
        Ok(self
            .made(reference)
            .await?
            .is_some_and(|r| r.kind == ImageKind::Built && r.owner.uid == self.acting.uid))
    }

    /// An image the container is to run: never one launch built for
    /// another owner (their build could otherwise run as anyone).
    async fn may_run(&self, image: &str) -> Result<()> {
        match self.made(image).await? {
            Some(r) if r.kind == ImageKind::Built && r.owner.uid != self.acting.uid => {
                Err(forbidden(format!(
                    "image {image} was built by launch for {} from their [build]; {} may not run it \
                     (give the image another name, or build it from your own profile)",
                    r.owner.name,
                    self.acting.name()
                )))
            }
            _ => Ok(()),
        }
    }

    /// A `container:NAME` namespace joins that container: only one of the
    /// acting owner's own.
    async fn may_join(&self, spec: &ContainerSpec) -> Result<()> {
        let modes = [&spec.network_mode, &spec.ipc_mode, &spec.pid_mode];
        for name in modes
            .into_iter()
            .flatten()
            .filter_map(|m| m.strip_prefix("container:"))
        {
            if let Some(c) = self.inner.find(name).await? {
                match self.whose(&c)? {
                    Whose::Mine => {}
                    Whose::Other(owner) => {
                        return Err(forbidden(format!(
                            "container:{name}: {name} belongs to {owner}; a container joins only the namespaces of its owner's own containers"
                        )));
                    }
                    Whose::Foreign => {
                        return Err(forbidden(format!(
                            "container:{name}: launch did not make {name}; a container joins only the namespaces of its owner's own containers"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `NAME` of `NAME` or of `NAME-launch-old-ID`.
fn base_name(name: &str) -> &str {
    name.split_once(ASIDE).map_or(name, |(base, _)| base)
}

impl<E: Engine> Engine for Gate<'_, E> {
    // Looking is free: plan must see another owner's container to refuse it.
    async fn facts(&self) -> Result<Facts> {
        self.inner.facts().await
    }

    async fn find(&self, name: &str) -> Result<Option<Observed>> {
        self.inner.find(name).await
    }

    async fn identity(&self) -> Result<super::Identity> {
        self.inner.identity().await
    }

    async fn process(&self, id: &str) -> Result<Option<u32>> {
        self.inner.process(id).await
    }

    async fn managed(&self) -> Result<Vec<Observed>> {
        self.inner.managed().await
    }

    async fn container_names(&self) -> Result<Vec<(String, String)>> {
        self.inner.container_names().await
    }

    /// Only the acting owner's: what is restored or settled is theirs.
    async fn leftovers(&self, name: &str) -> Result<Vec<Observed>> {
        let mut mine = Vec::new();
        for c in self.inner.leftovers(name).await? {
            if self.whose(&c)? == Whose::Mine {
                mine.push(c);
            }
        }
        Ok(mine)
    }

    async fn listed(&self, names: &[&str]) -> Result<Vec<Observed>> {
        self.inner.listed(names).await
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        self.inner.image_id(image).await
    }

    /// A pull never replaces an image launch built (its tag is local).
    async fn pull(&self, image: &str) -> Result<()> {
        if let Some(r) = self.made(image).await?
            && r.kind == ImageKind::Built
        {
            return Err(forbidden(format!(
                "pulling {image} would replace the image launch built for {} under that name",
                r.owner.name
            )));
        }
        self.inner.pull(image).await
    }

    async fn image_labels(
        &self,
        image: &str,
    ) -> Result<Option<(String, BTreeMap<String, String>)>> {
        self.inner.image_labels(image).await
    }

    async fn image_env(&self, image: &str) -> Result<Option<BTreeMap<String, String>>> {
        self.inner.image_env(image).await
    }

    async fn image_user(&self, image: &str) -> Result<Option<String>> {
        self.inner.image_user(image).await
    }

    async fn image_platform(&self, image: &str) -> Result<Option<String>> {
        self.inner.image_platform(image).await
    }

    async fn volume_options(
        &self,
        name: &str,
    ) -> Result<Option<(String, BTreeMap<String, String>)>> {
        self.inner.volume_options(name).await
    }

    async fn network_exists(&self, name: &str) -> Result<bool> {
        self.inner.network_exists(name).await
    }

    /// A build moves a tag: only one launch built for the same owner, or a
    /// new one; never under `launch-snapshots/`.
    async fn build(
        &self,
        tag: &str,
        context: &crate::build::Context,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        if tag.starts_with(SNAPSHOTS) {
            return Err(forbidden(format!(
                "{tag} is under {SNAPSHOTS}, where launch keeps its snapshots; a build never tags there"
            )));
        }
        let mine = match self.made(tag).await? {
            Some(r) => r.kind == ImageKind::Built && r.owner.uid == self.acting.uid,
            // Not recorded: a new tag, or (a store made since) one whose
            // labels say launch built it for this owner.
            None => match self.inner.image_labels(tag).await? {
                None => true,
                Some((_, found)) => {
                    found.contains_key(label::CONTEXT_HASH)
                        && found.get(label::OWNER) == Some(&self.acting.name())
                }
            },
        };
        if !mine {
            return Err(forbidden(format!(
                "image {tag} exists and launch did not build it for {}: a build would move a tag that others may run; \
                 give the [build] image another name",
                self.acting.name()
            )));
        }
        let mut labels = labels.clone();
        labels.insert(label::OWNER.into(), self.acting.name());
        self.inner.build(tag, context, &labels).await?;
        let id = self.inner.image_id(tag).await?.unwrap_or_default();
        self.store
            .record_image(&ImageRecord {
                reference: tag.into(),
                image_id: id,
                kind: ImageKind::Built,
                owner: self.acting.owned(),
                of: None,
                tag_given: false,
                seq: 0,
            })
            .map_err(Self::store_failed)
    }

    async fn create(
        &self,
        name: &str,
        spec: &ContainerSpec,
        labels: &BTreeMap<String, String>,
    ) -> Result<String> {
        self.may_run(&spec.image).await?;
        self.may_join(spec).await?;
        let mut labels = labels.clone();
        labels.insert(label::OWNER.into(), self.acting.name());
        labels.insert(label::OWNER_UID.into(), self.acting.uid.to_string());
        let id = self.inner.create(name, spec, &labels).await?;
        if self.acting.scope == Scope::Owner {
            self.record(&id, name)?;
        }
        let volumes = spec
            .mounts
            .iter()
            .filter(|m| m.kind == MountType::Volume)
            .filter_map(|m| m.source.clone())
            .collect();
        self.lock_known().insert(
            id.clone(),
            Known {
                name: name.into(),
                whose: Whose::Mine,
                volumes,
            },
        );
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<()> {
        self.mine(id, "start").await?;
        self.inner.start(id).await
    }

    async fn stop(&self, id: &str, timeout: Option<u64>) -> Result<()> {
        self.mine(id, "stop").await?;
        self.inner.stop(id, timeout).await
    }

    async fn unpause(&self, id: &str) -> Result<()> {
        self.mine(id, "unpause").await?;
        self.inner.unpause(id).await
    }

    /// Only between a name and its aside name (`NAME-launch-old-ID`).
    async fn rename(&self, id: &str, name: &str) -> Result<()> {
        let now = self.mine(id, "rename").await?;
        let base = base_name(&now);
        if name != base && base_name(name) != base {
            return Err(forbidden(format!(
                "rename {now} to {name}: launch only moves a container aside and back"
            )));
        }
        self.inner.rename(id, name).await?;
        if let Some(k) = self.lock_known().get_mut(id) {
            k.name = name.to_string();
        }
        Ok(())
    }

    async fn remove(&self, id: &str, volumes: bool) -> Result<()> {
        self.mine(id, "remove").await?;
        self.inner.remove(id, volumes).await?;
        self.store.forget_container(id).map_err(Self::store_failed)
    }

    async fn remove_begun(&self, id: &str) -> Result<Removal> {
        self.mine(id, "remove").await?;
        let removal = self.inner.remove_begun(id).await?;
        self.store
            .forget_container(id)
            .map_err(Self::store_failed)?;
        Ok(removal)
    }

    /// The names of another owner's changed files are theirs too.
    async fn changes(&self, id: &str) -> Result<Vec<String>> {
        self.mine(id, "diff").await?;
        self.inner.changes(id).await
    }

    /// Into the container's own snapshot repository, never over an image
    /// that exists.
    async fn commit(
        &self,
        id: &str,
        repo: &str,
        tag: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<String> {
        let name = self.mine(id, "commit").await?;
        let base = base_name(&name);
        let reference = format!("{repo}:{tag}");
        if repo != snapshot_repo(base) {
            return Err(forbidden(format!(
                "commit {name} to {reference}: launch commits a container only to {}",
                snapshot_repo(base)
            )));
        }
        if self.inner.image_id(&reference).await?.is_some() {
            return Err(forbidden(format!(
                "commit {name} to {reference}: that image exists, and a commit never replaces one"
            )));
        }
        let image = self.inner.commit(id, repo, tag, labels).await?;
        self.store
            .record_image(&ImageRecord {
                reference,
                image_id: image.clone(),
                kind: ImageKind::Snapshot,
                owner: self.acting.owned(),
                of: Some(base.to_string()),
                tag_given: labels.contains_key(label::SNAPSHOT_TAG_GIVEN),
                seq: 0,
            })
            .map_err(Self::store_failed)?;
        Ok(image)
    }

    async fn labeled_images(&self, label: &str) -> Result<Vec<SnapshotImage>> {
        self.inner.labeled_images(label).await
    }

    /// Only a reference launch made: for a profile, one made for its owner.
    async fn remove_image(&self, reference: &str) -> Result<()> {
        let Some(r) = self.made(reference).await? else {
            return Err(forbidden(format!(
                "remove image {reference}: launch did not make it (or it changed since), and removes only what it made"
            )));
        };
        if self.acting.scope == Scope::Owner && r.owner.uid != self.acting.uid {
            return Err(forbidden(format!(
                "remove image {reference}: launch made it for {}, not for {}",
                r.owner.name,
                self.acting.name()
            )));
        }
        self.inner.remove_image(reference).await?;
        self.store
            .forget_image(reference)
            .map_err(Self::store_failed)
    }

    /// Only a volume one of the owner's containers mounts.
    async fn remove_volume(&self, name: &str) -> Result<()> {
        let mounted = self
            .lock_known()
            .values()
            .any(|k| k.whose == Whose::Mine && k.volumes.iter().any(|v| v == name));
        if !mounted {
            return Err(forbidden(format!(
                "remove volume {name}: no container of {} that launch made mounts it",
                self.acting.name()
            )));
        }
        self.inner.remove_volume(name).await
    }

    /// As the container's own user: launch never runs a command in a
    /// container with more rights than the container has.
    async fn exec(&self, id: &str, request: &ExecRequest) -> Result<ExecSession> {
        self.mine(id, "exec").await?;
        if let Some(user) = &request.user {
            return Err(forbidden(format!(
                "exec in {id} as {user}: launch runs commands in a container only as its own user"
            )));
        }
        let session = self.inner.exec(id, request).await?;
        self.execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session.id.clone());
        Ok(session)
    }

    async fn exec_resize(&self, exec: &str, width: u16, height: u16) -> Result<()> {
        self.started(exec)?;
        self.inner.exec_resize(exec, width, height).await
    }

    async fn exec_exit_code(&self, exec: &str) -> Result<Option<i64>> {
        self.started(exec)?;
        self.inner.exec_exit_code(exec).await
    }

    async fn logs(
        &self,
        id: &str,
        options: &LogOptions,
        stdout: &mut dyn std::io::Write,
        stderr: &mut dyn std::io::Write,
    ) -> Result<()> {
        self.mine(id, "logs").await?;
        self.inner.logs(id, options, stdout, stderr).await
    }
}

impl<E> Gate<'_, E> {
    fn started(&self, exec: &str) -> Result<()> {
        let started = self
            .execs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(exec);
        if started {
            Ok(())
        } else {
            Err(forbidden(format!("exec {exec}: not started by this run")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::State;
    use crate::engine::recording::{Op, Recording};

    const ALICE: u32 = 4242;
    const BOB: u32 = 4343;

    fn acting(uid: u32) -> Acting {
        Acting {
            uid,
            owner: crate::owner::Owner::known(uid, uid, None, None, vec![uid]),
            profile: Some(PathBuf::from(format!("/profiles/{uid}.toml"))),
            scope: Scope::Owner,
        }
    }

    fn spec(name: &str) -> ContainerSpec {
        ContainerSpec {
            schema: crate::spec::SCHEMA,
            name: name.into(),
            image: "busybox:test".into(),
            ..Default::default()
        }
    }

    struct World {
        engine: Recording,
        store: Store,
        _dir: tempfile::TempDir,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Recording::new();
        engine.add_image("busybox:test");
        World {
            engine,
            store: Store::at(dir.path().join("state")),
            _dir: dir,
        }
    }

    impl World {
        fn gate(&self, uid: u32) -> Gate<'_, Recording> {
            Gate::new(&self.engine, &self.store, acting(uid))
        }

        /// A container launch made for `uid`, as its labels say.
        fn container_of(&self, uid: u32, name: &str) -> String {
            let id = self.engine.add_container(
                &spec(name),
                std::path::Path::new("/profiles/x.toml"),
                State::Running,
                &[],
            );
            self.engine.set_label(&id, label::OWNER, &uid.to_string());
            id
        }
    }

    fn forbidden<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(EngineError::Forbidden(why)) => why,
            other => panic!("not refused by the gate: {other:?}"),
        }
    }

    #[tokio::test]
    async fn no_call_touches_another_owner_s_container() {
        let w = world();
        let id = w.container_of(ALICE, "train");
        w.engine.clear_calls();
        let bob = w.gate(BOB);
        let labels = BTreeMap::new();
        let exec = ExecRequest::default();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let why = forbidden(bob.stop(&id, None).await);
        assert!(why.contains(&format!("belongs to {ALICE}")), "{why}");
        forbidden(bob.start(&id).await);
        forbidden(bob.unpause(&id).await);
        forbidden(bob.rename(&id, "train-launch-old-1").await);
        forbidden(bob.remove(&id, false).await);
        forbidden(bob.remove_begun(&id).await);
        forbidden(bob.changes(&id).await);
        forbidden(
            bob.commit(&id, "launch-snapshots/train", "t", &labels)
                .await,
        );
        forbidden(bob.exec(&id, &exec).await.map(|_| ()));
        forbidden(
            bob.logs(&id, &LogOptions::default(), &mut out, &mut err)
                .await,
        );
        // Only looks reached the engine.
        for op in [
            Op::Start,
            Op::Stop,
            Op::Unpause,
            Op::Rename,
            Op::Remove,
            Op::Changes,
            Op::Commit,
            Op::Exec,
            Op::Logs,
        ] {
            assert!(
                w.engine.calls_of(op).is_empty(),
                "{op:?} reached the engine"
            );
        }
        // Its owner may, and the runner (an admin naming it) may.
        w.gate(ALICE)
            .stop(&id, None)
            .await
            .expect("alice stops hers");
        let runner = Gate::new(&w.engine, &w.store, Acting::runner());
        runner.start(&id).await.expect("the runner starts it");
    }

    #[tokio::test]
    async fn the_store_decides_and_labels_never_grant_more_than_their_owner() {
        let w = world();
        let id = w.container_of(ALICE, "train");
        let c = w.engine.find(&id).await.expect("find").expect("there");
        // No record yet: the label decides, for alice only.
        assert_eq!(
            w.gate(BOB).whose(&c).expect("judged"),
            Whose::Other(ALICE.to_string())
        );
        assert_eq!(w.gate(ALICE).whose(&c).expect("judged"), Whose::Mine);
        let r = w.store.container(&id).expect("read").expect("recorded");
        assert_eq!(r.owner.uid, ALICE);
        // The record outranks a label changed since.
        w.engine.set_label(&id, label::OWNER, &BOB.to_string());
        let c = w.engine.find(&id).await.expect("find").expect("there");
        assert_eq!(
            w.gate(BOB).whose(&c).expect("judged"),
            Whose::Other(ALICE.to_string())
        );
        // A container launch did not make is no one's to touch.
        let foreign = w.engine.add_container(
            &spec("other"),
            std::path::Path::new("/x.toml"),
            State::Running,
            &[],
        );
        w.engine.set_label(&foreign, label::MANAGED, "false");
        let c = w.engine.find(&foreign).await.expect("find").expect("there");
        assert_eq!(w.gate(ALICE).whose(&c).expect("judged"), Whose::Foreign);
    }

    #[tokio::test]
    async fn what_a_gate_creates_is_recorded_for_its_owner_and_labelled_so() {
        let w = world();
        let alice = w.gate(ALICE);
        let mut labels = BTreeMap::new();
        labels.insert(label::OWNER.to_string(), BOB.to_string());
        let id = alice
            .create("train", &spec("train"), &labels)
            .await
            .expect("create");
        assert_eq!(
            w.store.container(&id).expect("read").map(|r| r.owner.uid),
            Some(ALICE)
        );
        let c = w.engine.find(&id).await.expect("find").expect("there");
        assert_eq!(
            c.labels.get(label::OWNER),
            Some(&ALICE.to_string()),
            "the gate's, not the caller's"
        );
        alice.start(&id).await.expect("start");
        alice.remove(&id, false).await.expect("remove");
        assert_eq!(w.store.container(&id).expect("read"), None, "forgotten");
    }

    #[tokio::test]
    async fn exec_runs_only_as_the_container_s_own_user() {
        let w = world();
        let id = w.container_of(ALICE, "train");
        let alice = w.gate(ALICE);
        let root = ExecRequest {
            cmd: vec!["nvidia-smi".into()],
            user: Some("0".into()),
            ..Default::default()
        };
        let why = forbidden(alice.exec(&id, &root).await.map(|_| ()));
        assert!(why.contains("only as its own user"), "{why}");
        assert!(w.engine.calls_of(Op::Exec).is_empty());
        forbidden(alice.exec_exit_code("not-started-here").await);
    }

    #[tokio::test]
    async fn renames_only_move_a_container_aside_and_back() {
        let w = world();
        let id = w.container_of(ALICE, "train");
        let alice = w.gate(ALICE);
        forbidden(alice.rename(&id, "someone-else").await);
        let aside = crate::reconcile::recover::aside_name("train", &id);
        alice.rename(&id, &aside).await.expect("aside");
        alice.rename(&id, "train").await.expect("back");
    }

    #[tokio::test]
    async fn builds_move_only_tags_launch_built_for_the_same_owner() {
        let w = world();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").expect("write");
        let b = crate::profile::Build {
            context: dir.path().to_path_buf(),
            dockerfile: "Dockerfile".into(),
            args: Default::default(),
            target: None,
            context_span: 0..0,
            dockerfile_span: 0..0,
        };
        let context = crate::build::scan(&b, None).expect("scan");
        let labels = context.labels();
        let (alice, bob) = (w.gate(ALICE), w.gate(BOB));
        // A tag launch did not build (an admin's image).
        let why = forbidden(bob.build("busybox:test", &context, &labels).await);
        assert!(why.contains("did not build it for 4343"), "{why}");
        forbidden(
            bob.build("launch-snapshots/train:1", &context, &labels)
                .await,
        );
        assert!(w.engine.calls_of(Op::Build).is_empty());
        // A new tag is bob's; alice can neither move it, pull over it, nor run it.
        bob.build("bob/train:1", &context, &labels)
            .await
            .expect("build");
        assert!(bob.built_for_me("bob/train:1").await.expect("asked"));
        forbidden(alice.build("bob/train:1", &context, &labels).await);
        forbidden(alice.pull("bob/train:1").await);
        let mut theirs = spec("mine");
        theirs.image = "bob/train:1".into();
        let why = forbidden(alice.create("mine", &theirs, &BTreeMap::new()).await);
        assert!(why.contains("built by launch for 4343"), "{why}");
        // bob may rebuild his own.
        bob.build("bob/train:1", &context, &labels)
            .await
            .expect("rebuild");
    }

    #[tokio::test]
    async fn images_and_volumes_go_only_when_launch_made_them_for_this_owner() {
        let w = world();
        let id = w.container_of(ALICE, "train");
        let alice = w.gate(ALICE);
        let labels = BTreeMap::new();
        let why = forbidden(
            alice
                .commit(&id, "launch-snapshots/other", "t", &labels)
                .await,
        );
        assert!(why.contains("launch-snapshots/train"), "{why}");
        alice
            .commit(&id, "launch-snapshots/train", "t1", &labels)
            .await
            .expect("commit");
        forbidden(
            alice
                .commit(&id, "launch-snapshots/train", "t1", &labels)
                .await,
        );
        forbidden(w.gate(BOB).remove_image("launch-snapshots/train:t1").await);
        forbidden(alice.remove_image("busybox:test").await);
        alice
            .remove_image("launch-snapshots/train:t1")
            .await
            .expect("her snapshot");
        forbidden(alice.remove_volume("data").await);
        assert!(w.engine.calls_of(Op::RemoveVolume).is_empty());
    }
}
