//! What a container changed, and keeping it: the changed-files judgement a
//! recreate (and a leftover's repair) asks before anything is replaced, and
//! snapshots, which commit the writable layer under `launch-snapshots/`.
//! `apply` and `recover` both ask here; neither asks the other.

use std::collections::BTreeMap;

use crate::engine::{Engine, Observed};
use crate::error::Result;
use crate::profile::Profile;
use crate::spec::ContainerSpec;

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
    let repo = crate::engine::gate::snapshot_repo(name);
    let given = tag.is_some();
    let tag = match tag {
        Some(t) => t.to_string(),
        None => unique_tag(engine, &repo).await?,
    };
    let mut labels = BTreeMap::from([(crate::spec::label::SNAPSHOT.to_string(), name.to_string())]);
    if given {
        // Recorded by the gate: a tag the user chose is never pruned.
        labels.insert(
            crate::spec::label::SNAPSHOT_TAG_GIVEN.to_string(),
            "true".into(),
        );
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
    use crate::engine::State;

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
            assert_eq!(i.labels.get(crate::spec::label::SNAPSHOT), Some(&p.name));
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
