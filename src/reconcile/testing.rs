//! A world for reconcile's unit tests: profiles in a temp folder, the
//! recording engine, no GPUs, locks in the temp folder.

use std::path::PathBuf;

use crate::engine::recording::Recording;
use crate::engine::{Acting, Gate, State};
use crate::error::Result;
use crate::host::HostFacts;
use crate::profile::{self, Profile};
use crate::spec::ContainerSpec;

use super::{Context, Locks, Options, Outcome};

pub const IMAGE: &str = "busybox:test";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub engine: Recording,
    /// The state store, in the temp folder.
    pub store: crate::state::Store,
    reserved: crate::host::gpu::select::Held,
    host: HostFacts,
    locks: Locks,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Recording::new();
        engine.add_image(IMAGE);
        let locks = Locks {
            dir: dir.path().join("locks"),
            timeout: std::time::Duration::from_secs(5),
        };
        Fixture {
            store: crate::state::Store::at(dir.path().join("state")),
            reserved: Default::default(),
            dir,
            engine,
            host: HostFacts::default(),
            locks,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("train.toml")
    }

    /// The profile `train`: busybox running `command`, then `body`.
    pub fn profile(&self, command: &str, body: &str) -> Profile {
        let text = format!(
            "name = \"train\"\nimage = \"{IMAGE}\"\npull = \"never\"\ncommand = \"{command}\"\n{body}\n"
        );
        std::fs::write(self.path(), text).expect("write the profile");
        profile::load(&self.path()).unwrap_or_else(|d| panic!("a valid profile: {d:?}"))
    }

    pub fn spec(&self, profile: &Profile) -> ContainerSpec {
        crate::resolve::resolve_profile(profile, &self.host, &[])
            .expect("resolves")
            .spec
    }

    /// A container launch made from `profile` earlier, with `changes` in
    /// its writable layer; its id.
    pub fn existing(&self, profile: &Profile, state: State, changes: &[&str]) -> String {
        self.engine
            .add_container(&self.spec(profile), &self.path(), state, changes)
    }

    /// The engine as `profile`'s owner may use it.
    pub fn gate(&self, profile: &Profile) -> Gate<'_, Recording> {
        self.gate_for(Acting::owner(&profile.owner, &profile.path))
    }

    pub fn gate_for(&self, acting: Acting) -> Gate<'_, Recording> {
        Gate::new(&self.engine, &self.store, acting)
    }

    pub async fn up(&self, profile: &Profile) -> Result<Outcome> {
        let gate = self.gate(profile);
        let cx = Context {
            engine: &gate,
            host: &self.host,
            locks: &self.locks,
            listing: None,
            reserved: &self.reserved,
        };
        super::up(&cx, profile, Options::default()).await
    }

    /// `up` in a run over a folder: with the run's one look for leftovers.
    pub async fn up_in_folder(&self, profile: &Profile) -> Result<Outcome> {
        let listing = super::Listing::take(&self.engine, &[profile.name.as_str()]).await?;
        self.up_with_listing(profile, &listing).await
    }

    /// `up` with a given listing (which may be stale).
    pub async fn up_with_listing(
        &self,
        profile: &Profile,
        listing: &super::Listing,
    ) -> Result<Outcome> {
        let gate = self.gate(profile);
        let cx = Context {
            engine: &gate,
            host: &self.host,
            locks: &self.locks,
            listing: Some(listing),
            reserved: &self.reserved,
        };
        super::up(&cx, profile, Options::default()).await
    }

    pub async fn preview(&self, profile: &Profile) -> Result<super::Preview> {
        let gate = self.gate(profile);
        let cx = Context {
            engine: &gate,
            host: &self.host,
            locks: &self.locks,
            listing: None,
            reserved: &self.reserved,
        };
        super::preview(&cx, profile, Options::default()).await
    }

    /// The names of all containers, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .engine
            .containers()
            .into_iter()
            .map(|c| c.name)
            .collect();
        names.sort();
        names
    }
}
