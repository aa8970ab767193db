//! apply: carrying out a plan through the engine, including the safe
//! recreate (docs/architecture.md, reconcile): nothing the user has is lost,
//! and a failed recreate leaves the old container as it was.

use std::collections::BTreeMap;
use std::path::Path;

use crate::engine::{Engine, Observed, Removal, State};
use crate::error::{Error, Result};
use crate::profile::{ChangedFiles, MountKind, Profile};
use crate::spec::{ContainerSpec, label};

use super::plan::{Action, short};

/// Paths whose changes never block a recreate: scratch space by convention.
const SCRATCH: &[&str] = &["/tmp", "/var/tmp", "/run", "/var/log"];

/// What engines put in a container themselves, which its writable layer
/// then lists: Docker's init (`init = true`) and Podman's network and
/// identity files. Never a change of the user's.
const ENGINE_INJECTED: &[&str] = &[
    "/sbin/docker-init",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/run/.containerenv",
    "/run/secrets",
];

/// What apply did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub id: Option<String>,
    /// The image a `snapshot` recreate committed the old container to.
    pub snapshot: Option<String>,
    /// A `discard` recreate threw the old writable layer away, changed
    /// files and all, unlisted.
    pub discarded: bool,
    /// The old container of a recreate that could not be removed: it stays
    /// aside, and the next run settles it.
    pub left_aside: Option<super::recover::Leftover>,
    /// The old container of a recreate, by its name aside, whose files the
    /// engine was still deleting when `up` was done; it goes on its own.
    pub removing: Option<String>,
}

pub async fn apply<E: Engine>(
    engine: &E,
    profile: &Profile,
    spec: &ContainerSpec,
    observed: Option<&Observed>,
    action: &Action,
) -> Result<Applied> {
    // Labels (with the spec's JSON and hash) only for a container to be made.
    let labels = || {
        let mut labels = spec.all_labels(&profile.path);
        labels.insert(label::OWNER.into(), profile.owner.display());
        labels
    };
    let id = || observed.map(|o| o.id.clone());
    match action {
        Action::Nothing => Ok(Applied {
            id: id(),
            ..Default::default()
        }),
        Action::Refuse(reason) => Err(Error::Refused(reason.clone())),
        Action::Restart { .. } => {
            let o = existing(observed)?;
            engine.stop(&o.id, spec.stop_timeout).await?;
            engine.start(&o.id).await?;
            stop_unless_it_reaches_its_gpus(engine, spec, &o.id).await?;
            Ok(Applied {
                id: id(),
                ..Default::default()
            })
        }
        Action::Start => {
            let o = existing(observed)?;
            engine.start(&o.id).await?;
            stop_unless_it_reaches_its_gpus(engine, spec, &o.id).await?;
            Ok(Applied {
                id: id(),
                ..Default::default()
            })
        }
        Action::Unpause => {
            let o = existing(observed)?;
            engine.unpause(&o.id).await?;
            Ok(Applied {
                id: id(),
                ..Default::default()
            })
        }
        Action::Create => {
            create_bind_sources(profile)?;
            let id = create_and_start(engine, spec, &labels()).await?;
            Ok(Applied {
                id: Some(id),
                ..Default::default()
            })
        }
        Action::Recreate { .. } => {
            recreate(engine, profile, spec, &labels(), existing(observed)?).await
        }
    }
}

fn existing(observed: Option<&Observed>) -> Result<&Observed> {
    observed
        .ok_or_else(|| Error::Io("internal: the plan needs a container that does not exist".into()))
}

/// Creates and starts; a container that was created but failed to start is
/// removed again, so a failure leaves nothing behind.
async fn create_and_start<E: Engine>(
    engine: &E,
    spec: &ContainerSpec,
    labels: &BTreeMap<String, String>,
) -> Result<String> {
    let id = engine.create(&spec.name, spec, labels).await?;
    let started = match engine.start(&id).await {
        Ok(()) => reaches_its_gpus(engine, spec, &id).await,
        Err(e) => Err(e.into()),
    };
    if let Err(e) = started {
        if let Err(cleanup) = engine.remove(&id, false).await {
            tracing::warn!(
                "could not remove the container that failed to start ({}): {cleanup}",
                short(&id)
            );
        }
        return Err(e);
    }
    Ok(id)
}

/// After a GPU container starts: from the host, executing nothing in it,
/// whether it reaches its GPUs (docs/architecture.md, engines as they are).
/// An engine on another host cannot be looked at: a warning says so.
pub(crate) async fn reaches_its_gpus<E: Engine>(
    engine: &E,
    spec: &ContainerSpec,
    id: &str,
) -> Result<()> {
    let Some(gpu) = &spec.gpu else {
        return Ok(());
    };
    let identity = engine.identity().await?;
    if !identity.local {
        tracing::warn!(
            "{}: {identity} is not on this host, so whether the container reaches its GPUs could not be checked",
            spec.name
        );
        return Ok(());
    }
    // A container that exited at once has nothing to look at (`--wait` says so).
    let Some(pid) = engine.process(id).await? else {
        return Ok(());
    };
    let missing = crate::host::reach::missing(Path::new("/proc"), pid, spec);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::GpusLost {
        name: spec.name.clone(),
        mode: gpu.mode.to_string(),
        engine: identity.to_string(),
        missing,
    })
}

/// `reaches_its_gpus` for a container that existed: it is stopped when not.
async fn stop_unless_it_reaches_its_gpus<E: Engine>(
    engine: &E,
    spec: &ContainerSpec,
    id: &str,
) -> Result<()> {
    let reached = reaches_its_gpus(engine, spec, id).await;
    if reached.is_err()
        && let Err(e) = engine.stop(id, Some(0)).await
    {
        tracing::warn!("{}: could not stop it: {e}", spec.name);
    }
    reached
}

/// `create = true` bind sources are made before Docker sees them. Launch,
/// acting for a profile's owner (run by root or another user), makes them
/// only where the owner could (docs/architecture.md, shared hosts), and
/// gives them to the owner when it may (as root).
fn create_bind_sources(profile: &Profile) -> Result<()> {
    let owner = &profile.owner;
    let for_owner = owner.acted_for();
    for m in profile
        .volumes
        .iter()
        .filter(|m| m.kind == MountKind::Bind && m.create)
    {
        let Some(source) = &m.source else { continue };
        let failed = |e: String| Error::Io(format!("cannot create bind source {source}: {e}"));
        if !for_owner {
            std::fs::create_dir_all(source).map_err(|e| failed(e.to_string()))?;
            continue;
        }
        // The folders to make, outermost first, below the deepest that exists.
        let missing: Vec<&Path> = Path::new(source)
            .ancestors()
            .take_while(|p| std::fs::symlink_metadata(p).is_err())
            .collect();
        let Some(parent) = missing.last().and_then(|p| p.parent()) else {
            continue;
        };
        if !owner.may_create_in(parent) {
            return Err(failed(format!(
                "{} (the profile's owner) cannot create folders in {}, and launch creates for a profile only what its owner could",
                owner.display(),
                parent.display()
            )));
        }
        for dir in missing.iter().rev() {
            std::fs::create_dir(dir)
                .and_then(|()| {
                    match std::os::unix::fs::chown(dir, Some(owner.uid), Some(owner.gid())) {
                        // Only root may give a folder away; it stays the runner's.
                        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
                        other => other,
                    }
                })
                .map_err(|e| failed(format!("{}: {e}", dir.display())))?;
        }
    }
    Ok(())
}

async fn recreate<E: Engine>(
    engine: &E,
    profile: &Profile,
    spec: &ContainerSpec,
    labels: &BTreeMap<String, String>,
    old: &Observed,
) -> Result<Applied> {
    let mut applied = Applied::default();
    // 1. What would be lost with the old container's writable layer. Under
    // `discard` the answer would change nothing, and asking costs the daemon
    // a walk of the whole layer, as long as the recreate itself after one
    // `pip install` (docs/benchmarks.md): it is not asked.
    let policy = profile.recreate.changed_files;
    applied.discarded = policy == ChangedFiles::Discard;
    let changed = if applied.discarded {
        Vec::new()
    } else {
        at_risk(engine, profile, spec, old).await?
    };
    if !changed.is_empty() {
        match policy {
            ChangedFiles::Refuse => {
                return Err(Error::Refused(format!(
                    "container {} must be recreated, but files changed inside it would be lost:\n{}\n\
                     Keep them in a mounted volume, or set [recreate] changed_files = \"snapshot\" (commit them to an \
                     image first) or \"discard\"; paths that do not matter can go in [recreate] ignore.",
                    old.name,
                    list(&changed)
                )));
            }
            ChangedFiles::Snapshot => {
                applied.snapshot = Some(snapshot(engine, &old.id, &old.name).await?);
            }
            ChangedFiles::Discard => {}
        }
    }
    create_bind_sources(profile)?;
    // 2. Stop the old one and move it aside; the name is then free.
    let was_up = matches!(
        old.state,
        State::Running | State::Paused | State::Restarting
    );
    if old.state == State::Paused {
        engine.unpause(&old.id).await?;
    }
    engine.stop(&old.id, None).await?;
    let aside = super::recover::aside_name(&old.name, &old.id);
    if let Err(e) = engine.rename(&old.id, &aside).await {
        // Nothing new exists yet: the old container only needs to run again.
        let restarted = if was_up {
            engine.start(&old.id).await
        } else {
            Ok(())
        };
        return Err(Error::RecreateFailed {
            name: old.name.clone(),
            cause: e.to_string(),
            rollback: match restarted {
                Ok(()) => "the old container is back under its name, as it was".into(),
                Err(r) => format!("starting the old container again failed too ({r})"),
            },
        });
    }
    match create_and_start(engine, spec, labels).await {
        Ok(id) => {
            // 3. Only now is the old container removed (its volumes stay).
            // The new one is up: a failure here is a leftover, not a failed
            // recreate. The engine's deletion of a big writable layer is not
            // waited for: nothing depends on it, and it would cost the
            // recreate more than all its other steps (docs/benchmarks.md).
            match engine.remove_begun(&old.id).await {
                Ok(Removal::Done) => {}
                Ok(Removal::Begun) => applied.removing = Some(aside),
                Err(e) => {
                    applied.left_aside = Some(super::recover::Leftover::Kept {
                        name: aside,
                        why: format!("{e}; the next launch up removes it"),
                    });
                }
            }
            applied.id = Some(id);
            Ok(applied)
        }
        Err(e) => {
            // Roll back: the old container gets its name back, running as before.
            let restored = async {
                engine.rename(&old.id, &old.name).await?;
                if was_up {
                    engine.start(&old.id).await?;
                }
                Ok::<(), crate::engine::EngineError>(())
            }
            .await;
            Err(Error::RecreateFailed {
                name: old.name.clone(),
                cause: e.to_string(),
                rollback: match restored {
                    Ok(()) => "the old container is back under its name, as it was".into(),
                    Err(r) => {
                        format!("rolling back failed too ({r}): the old container is {aside}")
                    }
                },
            })
        }
    }
}

/// The changed files of `old` that would be lost if it were replaced by a
/// container of `spec`, judged by the profile's `[recreate] ignore`.
pub(crate) async fn at_risk<E: Engine>(
    engine: &E,
    profile: &Profile,
    spec: &ContainerSpec,
    old: &Observed,
) -> Result<Vec<String>> {
    // Docker lists a mount point it had to create as a change of the writable
    // layer (`A /data`, and `A`/`C` for its parent folders): those are the
    // mounts of the old container (its spec label) and of the new one.
    let mount_targets: Vec<String> = old
        .spec()
        .iter()
        .chain([spec])
        .flat_map(|s| s.mounts.iter().map(|m| m.target.clone()))
        .collect();
    let mut ignore = profile.recreate.ignore.clone();
    // Podman writes the container's user into /etc/passwd and /etc/group
    // when the image has no entry for it: the engine's, not the user's.
    let user_set = old.spec().is_some_and(|s| s.user.is_some());
    if user_set && engine.identity().await.is_ok_and(|i| i.is_podman()) {
        ignore.extend(PODMAN_USER_FILES.iter().map(|p| p.to_string()));
    }
    Ok(significant_changes(
        engine.changes(&old.id).await?,
        &ignore,
        &mount_targets,
    ))
}

/// What Podman writes into a container that runs as a user the image does
/// not name.
const PODMAN_USER_FILES: &[&str] = &["/etc/passwd", "/etc/group"];

/// The label on every image launch commits, valued with the container's
/// name: how `prune` tells launch's snapshots from images that only share
/// the repository name (or the container labels a commit copies).
pub const SNAPSHOT_LABEL: &str = "launch.snapshot";

/// The repository of the snapshots of container `name`.
pub fn snapshot_repo(name: &str) -> String {
    format!("launch-snapshots/{}", name.to_ascii_lowercase())
}

/// Commits container `id` to `launch-snapshots/<name>:<UTC timestamp>`;
/// returns that reference.
pub(crate) async fn snapshot<E: Engine>(engine: &E, id: &str, name: &str) -> Result<String> {
    Ok(snapshot_as(engine, id, name, None).await?.0)
}

/// Commits container `id` of `name` to its snapshot repository, as `tag`
/// or else a [`unique_tag`]; returns the reference and the image id. The
/// caller holds the name's lock, so no other launch run takes the same tag.
pub async fn snapshot_as<E: Engine>(
    engine: &E,
    id: &str,
    name: &str,
    tag: Option<&str>,
) -> Result<(String, String)> {
    let repo = snapshot_repo(name);
    let given = tag.is_some();
    let tag = match tag {
        Some(t) => t.to_string(),
        None => unique_tag(engine, &repo).await?,
    };
    let mut labels = BTreeMap::from([(SNAPSHOT_LABEL.to_string(), name.to_string())]);
    if given {
        // Recorded by the gate: a tag the user chose is never pruned.
        labels.insert(crate::engine::gate::TAG_GIVEN.to_string(), "true".into());
    }
    let image = engine.commit(id, &repo, &tag, &labels).await?;
    Ok((format!("{repo}:{tag}"), image))
}

/// This UTC second as a tag (`20261127T183224Z`), with `-2`, `-3`… when
/// `repo` has that tag already: tags are unique within a second.
pub async fn unique_tag<E: Engine>(engine: &E, repo: &str) -> Result<String> {
    let base = utc_timestamp();
    let mut tag = base.clone();
    let mut n = 1u32;
    while engine.image_id(&format!("{repo}:{tag}")).await?.is_some() {
        n += 1;
        tag = format!("{base}-{n}");
    }
    Ok(tag)
}

/// A tag [`unique_tag`] made, as a key that sorts by age (the second, then
/// the count within it); `None` for any other tag (one given with `--tag`).
pub fn timestamp_tag(tag: &str) -> Option<(&str, u32)> {
    let (second, n) = match tag.split_once('-') {
        Some((second, n)) if !n.starts_with('0') => (second, n.parse().ok().filter(|n| *n >= 2)?),
        Some(_) => return None,
        None => (tag, 1),
    };
    let b = second.as_bytes();
    let shape = b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    shape.then_some((second, n))
}

/// The changed paths of a writable layer (`docker diff`) that a recreate
/// would lose. Engines list the folders above a changed file too: a folder
/// counts only when nothing below it is listed (an added empty folder, a
/// deletion), so `[recreate] ignore = ["/root/.cache"]` is not defeated by
/// `/root`. Then scratch folders, ignored paths, mount points (and the
/// folders above them) and what the engine itself puts in a container
/// (`/sbin/docker-init`, Podman's `/etc/hosts`…, and their folders when
/// nothing else changed below them) are left out. O(n log n): a layer
/// where `pip install` changed 20 000 paths is judged at once.
pub fn significant_changes(
    paths: Vec<String>,
    ignore: &[String],
    mounts: &[String],
) -> Vec<String> {
    let trim = |d: &String| d.trim_end_matches('/').to_string();
    // Folders whose contents never count, reduced to those not inside
    // another: then the only candidate that can hold a path is the last
    // folder at or before it in tree order.
    let mut roots: Vec<String> = SCRATCH
        .iter()
        .chain(ENGINE_INJECTED)
        .map(|d| d.to_string())
        .chain(ignore.iter().map(trim))
        .chain(mounts.iter().map(trim))
        .collect();
    roots.sort_by(|a, b| tree_order(a, b));
    let mut outer: Vec<String> = Vec::with_capacity(roots.len());
    for r in roots {
        if !outer.last().is_some_and(|o| under(&r, o)) {
            outer.push(r);
        }
    }
    // Mount points and injected paths, whose folders do not count either.
    let mut placed: Vec<String> = mounts
        .iter()
        .map(trim)
        .chain(ENGINE_INJECTED.iter().map(|p| p.to_string()))
        .collect();
    placed.sort_by(|a, b| tree_order(a, b));

    let inside_root = |p: &str| {
        let i = outer.partition_point(|r| tree_order(r, p).is_le());
        i > 0 && under(p, &outer[i - 1])
    };
    // Only the folders on the way to a placed path: what lies inside a
    // folder comes right after it in tree order.
    let above_placed = |p: &str| {
        let i = placed.partition_point(|m| tree_order(m, p).is_lt());
        placed.get(i).is_some_and(|m| under(m, p))
    };
    let mut all = paths;
    all.sort_by(|a, b| tree_order(a, b));
    all.dedup();
    // A leaf: the next path in tree order is not inside it.
    let leaves = all
        .iter()
        .enumerate()
        .filter(|(i, p)| !all.get(i + 1).is_some_and(|next| under(next, p)))
        .map(|(_, p)| p);
    let mut out: Vec<String> = leaves
        .filter(|p| !inside_root(p) && !above_placed(p))
        .cloned()
        .collect();
    out.sort();
    out
}

/// `path` is `dir` or inside it.
fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Byte order with `/` lowest: a folder is followed at once by everything
/// inside it (`/a`, `/a/x`, `/a b`), which plain byte order does not do
/// (`/a`, `/a b`, `/a/x`).
fn tree_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |c: u8| if c == b'/' { 0 } else { c };
    a.bytes().map(key).cmp(b.bytes().map(key))
}

/// Paths for the user, one a line, the first twenty.
pub fn list(paths: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut lines: Vec<String> = paths.iter().take(SHOWN).map(|p| format!("  {p}")).collect();
    if paths.len() > SHOWN {
        lines.push(format!("  … and {} more", paths.len() - SHOWN));
    }
    lines.join("\n")
}

/// `20261127T183224Z`: sortable, and valid as an image tag.
fn utc_timestamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_ignored_and_parent_folders_are_not_changes() {
        let paths = [
            "/root",
            "/root/model.pt",
            "/tmp/x",
            "/var/log/app.log",
            "/etc",
            "/etc/motd",
            "/cache/a",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            significant_changes(paths, &["/cache".into()], &[]),
            ["/etc/motd", "/root/model.pt"]
        );
    }

    #[test]
    fn mount_points_and_the_folders_above_them_are_not_changes() {
        let paths = [
            "/data",
            "/usr",
            "/usr/local",
            "/usr/local/nvidia",
            "/usr/local/nvidia/lib64",
            "/usr/local/nvidia/lib64/libcuda.so.1",
            "/usr/local/bin",
            "/usr/local/bin/tool",
            "/root",
        ]
        .map(String::from)
        .to_vec();
        let mounts = ["/data", "/usr/local/nvidia/lib64/libcuda.so.1"].map(String::from);
        assert_eq!(
            significant_changes(paths, &[], &mounts),
            ["/root", "/usr/local/bin/tool"]
        );
    }

    /// The rule as first written (quadratic), to check the fast one against.
    fn reference(paths: &[String], ignore: &[String], mounts: &[String]) -> Vec<String> {
        let under = |path: &str, dir: &str| {
            path == dir || path.starts_with(&format!("{}/", dir.trim_end_matches('/')))
        };
        let leaves: Vec<&String> = paths
            .iter()
            .filter(|p| !paths.iter().any(|q| q != *p && under(q, p)))
            .collect();
        let mut out: Vec<String> = leaves
            .into_iter()
            .filter(|p| {
                !SCRATCH.iter().any(|d| under(p, d))
                    && !ignore.iter().any(|d| under(p, d))
                    && !mounts.iter().any(|m| under(p, m) || under(m, p))
                    && !ENGINE_INJECTED.iter().any(|m| under(p, m) || under(m, p))
            })
            .map(|p| p.to_string())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn agrees_with_the_plain_rule_on_awkward_names() {
        // Names that sort between a folder and its contents in byte order
        // (`/a b`, `/a-b`, `/a.b` before `/a/x`), nested ignores and mounts,
        // a path listed twice.
        let paths = [
            "/a",
            "/a b",
            "/a/x",
            "/a-b",
            "/a.b/c",
            "/a.b",
            "/a/x/y",
            "/tmp",
            "/tmpfile",
            "/opt",
            "/opt/cache",
            "/opt/cache/k",
            "/opt/cached",
            "/srv",
            "/srv/data",
            "/srv/data/in",
            "/srv/database",
            "/m",
            "/m/n",
            "/z",
            "/z",
            "/var",
            "/var/logs",
            "/var/log/x",
        ]
        .map(String::from)
        .to_vec();
        let ignore = ["/opt/cache".to_string(), "/opt/cache/k".to_string()];
        let mounts = ["/srv/data".to_string(), "/m/n/o".to_string()];
        assert_eq!(
            significant_changes(paths.clone(), &ignore, &mounts),
            reference(&paths, &ignore, &mounts)
        );
        assert_eq!(
            significant_changes(paths.clone(), &[], &[]),
            reference(&paths, &[], &[])
        );
    }

    #[test]
    fn twenty_five_thousand_changed_paths_are_judged_at_once() {
        // What `pip install torch` leaves in a writable layer: the folders
        // on the way, thousands of files, caches in /tmp and an ignored
        // folder, and a mount point.
        let mut paths = vec!["/usr".to_string(), "/usr/lib".to_string()];
        let mut expected = Vec::new();
        for d in 0..500 {
            let dir = format!("/usr/lib/python3/site-packages/torch/m{d:03}");
            paths.push(dir.clone());
            for f in 0..50 {
                let file = format!("{dir}/f{f:02}.py");
                expected.push(file.clone());
                paths.push(file);
            }
            paths.push(format!("/tmp/pip-{d}/wheel"));
            paths.push(format!("/root/.cache/pip/{d}"));
        }
        paths.extend(["/data", "/root", "/root/.cache"].map(String::from));
        paths.reverse();
        assert!(paths.len() > 25_000);
        let start = std::time::Instant::now();
        let got = significant_changes(paths, &["/root/.cache".into()], &["/data".into()]);
        let took = start.elapsed();
        // /root is listed because something inside it changed, and that
        // is ignored: /root itself is no change.
        expected.sort();
        assert_eq!(got.len(), 25_000);
        assert_eq!(got, expected);
        // The quadratic rule took minutes here; sorting takes milliseconds.
        assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    }

    #[test]
    fn a_folder_counts_only_when_nothing_below_it_is_listed() {
        let paths = [
            "/root",
            "/root/.cache",
            "/root/.cache/pip/x.whl",
            "/sbin",
            "/sbin/docker-init",
            "/etc",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/opt/empty",
            "/srv",
        ]
        .map(String::from)
        .to_vec();
        // An ignored cache, the engine's own files and their folders go;
        // an added empty folder and a deleted one stay.
        assert_eq!(
            significant_changes(paths.clone(), &["/root/.cache".into()], &[]),
            ["/opt/empty", "/srv"]
        );
        // Podman lists only /etc for the files it put there.
        assert_eq!(
            significant_changes(vec!["/etc".into()], &[], &[]),
            Vec::<String>::new()
        );
        assert_eq!(
            significant_changes(vec!["/etc".into(), "/etc/motd".into()], &[], &[]),
            ["/etc/motd"]
        );
    }

    // ---- failure paths, on the recording engine ----------------------------

    use crate::engine::recording::Op;
    use crate::reconcile::testing::Fixture;

    /// A running container of `sleep 1000`, and the profile changed to
    /// `sleep 1001`: `up` must recreate. Returns the old id.
    fn changed(f: &Fixture) -> (String, Profile) {
        let old = f.profile("sleep 1000", "");
        let id = f.existing(&old, State::Running, &[]);
        (id, f.profile("sleep 1001", ""))
    }

    /// The old container is back under its name, running, and alone.
    fn assert_rolled_back(f: &Fixture, id: &str, e: &Error) {
        let shown = e.to_string();
        assert!(
            shown.starts_with("recreating train failed: ")
                && shown.ends_with("the old container is back under its name, as it was"),
            "{shown}"
        );
        let c = f
            .engine
            .container("train")
            .expect("a container named train");
        assert_eq!(c.id, id, "the old one");
        assert_eq!(c.state, State::Running, "running again");
        assert_eq!(f.names(), ["train"], "nothing else left");
    }

    /// A daemon that hangs after the old container was moved aside: the
    /// run's deadline ends it in time, and the next run repairs what it
    /// left, as after a killed run.
    #[tokio::test]
    async fn a_daemon_that_hangs_mid_recreate_ends_at_the_deadline_and_the_next_run_repairs() {
        use crate::session::{Deadline, within};
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine.hang(Op::Start);
        let begun = std::time::Instant::now();
        let deadline = Some(Deadline::after(std::time::Duration::from_millis(300)));
        let e = within(deadline, || "train was being brought up".into(), f.up(&new))
            .await
            .expect_err("stopped at the deadline");
        assert!(begun.elapsed() < std::time::Duration::from_secs(5));
        let shown = e.to_string();
        assert!(shown.contains("the run's deadline"), "{shown}");
        assert!(shown.contains("train was being brought up"), "{shown}");
        assert_eq!(e.exit(), crate::exit::Exit::Runtime);
        // Stopped where the daemon hung: the old container aside, a new one
        // made and never started.
        assert!(
            f.names().iter().any(|n| n.starts_with("train-launch-old-")),
            "{:?}",
            f.names()
        );
        f.engine.revive();
        let outcome = f.up(&new).await.expect("the next run");
        assert_eq!(
            f.engine.container("train").map(|c| c.state),
            Some(State::Running)
        );
        assert_eq!(f.names(), ["train"], "{outcome:?}");
        assert!(
            f.engine.container("train").is_some_and(|c| c.id != id),
            "the new spec runs"
        );
    }

    #[tokio::test]
    async fn a_rename_that_fails_leaves_the_old_container_running() {
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine
            .fail(Op::Rename, 1, 500, "rename refused by the engine");
        let e = f.up(&new).await.expect_err("fails");
        assert!(
            e.to_string().contains("rename refused by the engine"),
            "{e}"
        );
        assert_rolled_back(&f, &id, &e);
        assert!(f.engine.calls_of(Op::Create).is_empty(), "nothing new made");
    }

    #[tokio::test]
    async fn a_create_that_fails_after_the_stop_rolls_back() {
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine.fail(Op::Create, 1, 500, "no space left on device");
        let e = f.up(&new).await.expect_err("fails");
        assert!(e.to_string().contains("no space left on device"), "{e}");
        assert_rolled_back(&f, &id, &e);
        let ops: Vec<Op> = f.engine.calls().iter().map(|c| c.op).collect();
        let at = |op| ops.iter().position(|o| *o == op).expect("called");
        assert!(at(Op::Stop) < at(Op::Create), "{ops:?}");
    }

    #[tokio::test]
    async fn a_start_that_fails_removes_the_new_container_and_rolls_back() {
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine.fail(
            Op::Start,
            1,
            500,
            "exec: \"sleep\": executable file not found",
        );
        let e = f.up(&new).await.expect_err("fails");
        assert!(e.to_string().contains("executable file not found"), "{e}");
        assert_rolled_back(&f, &id, &e);
        assert_eq!(f.engine.calls_of(Op::Create), ["train"]);
        assert_eq!(f.engine.calls_of(Op::Remove).len(), 1, "the new one went");
    }

    #[tokio::test]
    async fn a_rollback_that_fails_says_where_the_old_container_is_and_the_next_run_restores_it() {
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine.fail(Op::Start, 1, 500, "cannot start");
        // The rename aside goes through; the rename back fails.
        f.engine
            .fail_nth(Op::Rename, 2, 500, "the engine is confused");
        let aside = format!("train-launch-old-{}", &id[..12]);
        let e = f.up(&new).await.expect_err("fails");
        let shown = e.to_string();
        assert!(
            shown.contains("rolling back failed too") && shown.contains(&aside),
            "names where the old container is: {shown}"
        );
        assert_eq!(
            f.names(),
            std::slice::from_ref(&aside),
            "only the old one, aside"
        );

        f.engine.revive();
        let o = f.up(&new).await.expect("the next run goes through");
        assert!(
            o.leftovers
                .contains(&super::super::recover::Leftover::Restored { from: aside }),
            "{:?}",
            o.leftovers
        );
        let c = f.engine.container("train").expect("train");
        assert_ne!(c.id, id, "recreated from the restored container");
        assert_eq!(c.state, State::Running);
        assert_eq!(f.names(), ["train"]);
    }

    #[tokio::test]
    async fn a_remove_that_fails_after_the_recreate_leaves_a_leftover_the_next_run_removes() {
        let f = Fixture::new();
        let (id, new) = changed(&f);
        f.engine.fail(Op::Remove, 1, 500, "device or resource busy");
        let o = f.up(&new).await.expect("the new container is up");
        let aside = format!("train-launch-old-{}", &id[..12]);
        assert!(
            matches!(&o.leftovers[..], [super::super::recover::Leftover::Kept { name, why }]
                if *name == aside && why.contains("device or resource busy")),
            "{:?}",
            o.leftovers
        );
        assert_eq!(f.names(), ["train".to_string(), aside.clone()]);
        assert_eq!(
            f.engine.container("train").map(|c| c.state),
            Some(State::Running)
        );

        let o = f.up(&new).await.expect("up to date");
        assert_eq!(
            o.leftovers,
            [super::super::recover::Leftover::Removed { name: aside }]
        );
        assert_eq!(f.names(), ["train"]);
    }

    #[tokio::test]
    async fn discard_recreates_without_asking_what_changed_and_refuse_asks() {
        let f = Fixture::new();
        let old = f.profile("sleep 1000", "");
        let id = f.existing(&old, State::Running, &["A /root/notes.txt"]);
        let new = f.profile("sleep 1001", "[recreate]\nchanged_files = \"discard\"");
        let o = f.up(&new).await.expect("recreated");
        assert!(o.applied.discarded, "says the old layer went");
        assert!(
            f.engine.calls_of(Op::Changes).is_empty(),
            "no `docker diff` under discard: {:?}",
            f.engine.calls()
        );
        assert!(f.engine.container(&id).is_none(), "the old one is gone");

        let refused = f.profile("sleep 1002", "");
        f.engine.clear_calls();
        f.up(&refused)
            .await
            .expect("nothing changed inside: recreated");
        assert_eq!(f.engine.calls_of(Op::Changes).len(), 1, "refuse asks");
    }

    #[test]
    fn only_the_tags_unique_tag_makes_are_timestamp_tags() {
        assert_eq!(
            timestamp_tag("20261127T183224Z"),
            Some(("20261127T183224Z", 1))
        );
        assert_eq!(
            timestamp_tag("20261127T183224Z-12"),
            Some(("20261127T183224Z", 12))
        );
        for other in [
            "latest",
            "20261127T183224Z-1",
            "20261127T183224Z-02",
            "20261127T183224Z-x",
            "20261127T1832Z",
            "2026112xT183224Z",
            "before-upgrade",
        ] {
            assert_eq!(timestamp_tag(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn snapshots_in_one_second_get_their_own_tags_and_the_snapshot_label() {
        let f = crate::reconcile::testing::Fixture::new();
        let p = f.profile("sleep", "");
        let id = f.existing(&p, State::Running, &["/root/x"]);
        let mut tags = Vec::new();
        for _ in 0..3 {
            let (reference, _) = snapshot_as(&f.engine, &id, &p.name, None)
                .await
                .expect("commit");
            tags.push(reference);
        }
        let base = &tags[0];
        if tags[2].starts_with(base.as_str()) {
            // All in one second (the fake engine is instant).
            assert_eq!(tags[1], format!("{base}-2"));
            assert_eq!(tags[2], format!("{base}-3"));
        }
        let images = f.engine.images();
        assert_eq!(images.len(), 3 + 1, "three snapshots and the image");
        for i in images
            .iter()
            .filter(|i| i.reference.starts_with("launch-snapshots/"))
        {
            assert_eq!(i.labels.get(SNAPSHOT_LABEL), Some(&p.name));
        }
    }

    #[test]
    fn timestamps_are_valid_tags() {
        let t = utc_timestamp();
        assert!(
            t.ends_with('Z') && t.contains('T') && t.chars().all(|c| c.is_ascii_alphanumeric()),
            "{t}"
        );
    }
}
