//! The owner boundary (README: Shared hosts; docs/architecture.md, the
//! owner boundary): what launch *does* for a profile, tried by a second,
//! hostile owner on a real daemon. Each test is one invariant.
//!
//! Tests run as root; the owners are uids no one has: alice (4242) and bob
//! (4343), the owners of the profile files chowned to them. Root is the
//! admin of the test policies.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, docker, inspect, try_docker};
use crate::support::fake_gpu::FakeGpuHost;

const ALICE: u32 = 4242;
const BOB: u32 = 4343;

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn show(o: &Output) -> String {
    format!("--- stdout\n{}\n--- stderr\n{}", o.stdout, o.stderr)
}

/// A profile file of `owner`'s.
fn owned(dir: &Profiles, name: &str, owner: u32, text: &str) -> PathBuf {
    let path = dir.write(name, text);
    chown(&path, owner);
    path
}

/// `launch ARGS` with locks and (unless set) the tests' state store.
fn launch(dir: &Profiles, args: &[&str]) -> Output {
    Launch::new()
        .env("LAUNCH_LOCK_DIR", dir.path().join("locks"))
        .args(args)
        .run()
}

fn launch_with(dir: &Profiles, state: &Path, args: &[&str]) -> Output {
    Launch::new()
        .env("LAUNCH_LOCK_DIR", dir.path().join("locks"))
        .env("LAUNCH_STATE_DIR", state)
        .args(args)
        .run()
}

/// A policy root writes: admins root, as narrow as a lab's.
fn policy(dir: &Profiles, allow: &str) -> PathBuf {
    let path = dir.write(
        "policy.toml",
        &format!("admins = [\"root\"]\n[allow]\nrun_as_root = false\n{allow}\n"),
    );
    chmod(&path, 0o644);
    path
}

// ---- 1. the acting owner, 3. what an owner may touch ------------------------------

#[test]
fn another_owner_s_container_is_refused_never_recreated_or_removed() {
    needs_docker!();
    let scratch = Scratch::new("owner_takeover");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("shared");
    let dir = Profiles::new();
    let profile = |owner: u32, file: &str, extra: &str| {
        owned(
            &dir,
            file,
            owner,
            &format!(
                "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n{extra}\n"
            ),
        )
    };
    let alice = profile(ALICE, "alice.toml", "");
    launch(&dir, &["up", &alice.display().to_string()]).code(0);
    let id = inspect(&name, "{{.Id}}");
    docker(&["exec", &name, "sh", "-c", "echo work > /root/results"]);

    // bob names alice's container, with another spec and `discard`.
    let bob = profile(
        BOB,
        "bob.toml",
        "env = { MINE = \"bob\" }\n[recreate]\nchanged_files = \"discard\"\n",
    );
    let bob = bob.display().to_string();
    for args in [&["up", &bob][..], &["plan", &bob], &["down", &bob]] {
        let out = launch(&dir, args).code(3);
        assert!(
            show(&out).contains(&format!("belongs to {ALICE}")),
            "{args:?} names the holder:\n{}",
            show(&out)
        );
    }
    assert_eq!(inspect(&name, "{{.Id}}"), id, "never recreated");
    assert_eq!(
        docker(&["exec", &name, "cat", "/root/results"]),
        "work",
        "nothing lost"
    );

    // A store lost since is no opening: the labels name alice, and only alice.
    let fresh = tempfile::tempdir().expect("temp dir");
    let state = fresh.path().join("state");
    let out = launch_with(&dir, &state, &["up", &bob]).code(3);
    assert!(
        out.stderr.contains(&format!("belongs to {ALICE}")),
        "{}",
        show(&out)
    );
    let out = launch_with(&dir, &state, &["up", &alice.display().to_string()]).code(0);
    assert!(out.stdout.contains("up to date"), "{}", show(&out));
    assert_eq!(inspect(&name, "{{.Id}}"), id);
}

#[test]
fn a_profile_joins_only_its_owner_s_containers_namespaces() {
    needs_docker!();
    let scratch = Scratch::new("owner_join");
    let image = scratch.busybox_image("img", &[]);
    let (target, joiner) = (scratch.name("target"), scratch.name("joiner"));
    let dir = Profiles::new();
    let body = |name: &str, extra: &str| {
        format!(
            "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n{extra}\n"
        )
    };
    let alice = owned(&dir, "alice.toml", ALICE, &body(&target, ""));
    launch(&dir, &["up", &alice.display().to_string()]).code(0);
    let pid = format!("pid = \"container:{target}\"");
    let bob = owned(&dir, "bob.toml", BOB, &body(&joiner, &pid));
    let out = launch(&dir, &["up", &bob.display().to_string()]).code(3);
    assert!(
        out.stderr.contains(&format!("{target} belongs to {ALICE}")),
        "{}",
        show(&out)
    );
    assert!(try_docker(&["inspect", &joiner]).is_none(), "not made");
    // alice may join her own.
    let mine = owned(&dir, "mine.toml", ALICE, &body(&joiner, &pid));
    launch(&dir, &["up", &mine.display().to_string()]).code(0);
}

#[test]
fn a_build_never_moves_a_tag_launch_did_not_build_for_the_same_owner() {
    needs_docker!();
    let scratch = Scratch::new("owner_build");
    // The image an admin's profile runs.
    let admins = scratch.busybox_image("admins", &[]);
    let before = inspect(&admins, "{{.Id}}");
    let dir = Profiles::new();
    // bob may read his context: its folders are searchable.
    chmod(dir.path(), 0o755);
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).expect("mkdir");
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {admins}\nRUN echo bob > /bob\n"),
    )
    .expect("write");
    for p in [&ctx, &ctx.join("Dockerfile")] {
        chown(p, BOB);
    }
    let build = |image: &str, file: &str| {
        owned(
            &dir,
            file,
            BOB,
            &format!(
                "image = {image:?}\nname = {:?}\ncommand = [\"sleep\", \"1000\"]\n[build]\ncontext = \"ctx\"\n",
                scratch.name("b")
            ),
        )
        .display()
        .to_string()
    };
    let retag = build(&admins, "retag.toml");
    for command in ["build", "up"] {
        let out = launch(&dir, &[command, &retag]).code(3);
        assert!(
            out.stderr
                .contains(&format!("launch did not build it for {BOB}")),
            "{command}:\n{}",
            show(&out)
        );
    }
    assert_eq!(inspect(&admins, "{{.Id}}"), before, "the tag did not move");

    // A build under launch-snapshots/ is refused at its key.
    let snap = build("launch-snapshots/someone:20990101T000000Z", "snap.toml");
    let out = launch(&dir, &["check", &snap]).code(2);
    assert!(out.stderr.contains("launch-snapshots/"), "{}", show(&out));

    // bob's own tag builds; root's profile may not run what launch built for bob.
    let own = scratch.image_name("bobs");
    launch(&dir, &["build", &build(&own, "own.toml")]).code(0);
    scratch.track_image(&own);
    let root = dir.write(
        "root.toml",
        &format!(
            "image = {own:?}\nname = {:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\n",
            scratch.name("root")
        ),
    );
    let out = launch(&dir, &["up", &root.display().to_string()]).code(3);
    assert!(
        out.stderr.contains(&format!("built by launch for {BOB}")),
        "{}",
        show(&out)
    );
}

#[test]
fn prune_removes_only_snapshots_launch_took_and_never_a_tag_the_user_chose() {
    needs_docker!();
    let scratch = Scratch::new("owner_prune");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("train");
    let dir = Profiles::new();
    let alice = owned(
        &dir,
        "alice.toml",
        ALICE,
        &format!(
            "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n"
        ),
    );
    let alice = alice.display().to_string();
    launch(&dir, &["up", &alice]).code(0);
    let repo = format!("launch-snapshots/{name}");
    let snapshot = |extra: &[&str]| {
        let mut args = vec!["--json", "snapshot", &alice];
        args.extend_from_slice(extra);
        let out = launch(&dir, &args).code(0);
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
        v["image"].as_str().expect("a reference").to_string()
    };
    let given = snapshot(&["--tag", "20000101T000000Z"]);
    let older = snapshot(&[]);
    let newest = snapshot(&[]);
    // Look-alikes bob made: launch's label, alice's repository, tags that
    // sort after hers.
    let look_alike =
        scratch.busybox_image_with("forged", &[], &[&format!("LABEL launch.snapshot={name}")]);
    for tag in ["29990101T000000Z", "29990101T000001Z", "29990101T000002Z"] {
        let forged = format!("{repo}:{tag}");
        docker(&["tag", &look_alike, &forged]);
        scratch.track_image(&forged);
    }
    let out = launch(&dir, &["prune", "--keep", "1"]).code(0);
    assert!(
        out.stdout.contains(&format!("removed snapshot {older}")),
        "{}",
        show(&out)
    );
    for kept in [&given, &newest] {
        assert!(
            try_docker(&["image", "inspect", kept]).is_some(),
            "{kept} stays:\n{}",
            show(&out)
        );
    }
    assert!(try_docker(&["image", "inspect", &older]).is_none());
    for tag in ["29990101T000000Z", "29990101T000001Z", "29990101T000002Z"] {
        assert!(
            try_docker(&["image", "inspect", &format!("{repo}:{tag}")]).is_some(),
            "not launch's, never pruned:\n{}",
            show(&out)
        );
        assert!(!out.stdout.contains(tag), "{}", show(&out));
    }
}

// ---- 5. owner code never runs with more than the owner's rights -------------------

#[test]
fn the_probe_never_runs_what_the_owner_put_on_the_path() {
    needs_docker!();
    let scratch = Scratch::new("owner_probe");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("gpu");
    let host = FakeGpuHost::builder().gpus(1).build();
    let dir = Profiles::new();
    chmod(dir.path(), 0o755);
    // bob's home: a bind he may use, holding a `nvidia-smi` of his own. His
    // GPUs come without the `utility` tools, so the driver's nvidia-smi is
    // not mounted and a lookup through PATH would find his.
    let home = dir.path().join("bob");
    std::fs::create_dir_all(home.join("bin")).expect("mkdir");
    let trap = home.join("bin/nvidia-smi");
    std::fs::write(&trap, "#!/bin/sh\nid -u > /home/bob/ran-as\nexit 0\n").expect("write");
    chmod(&trap, 0o755);
    for p in [&home, &home.join("bin"), &trap] {
        chown(p, BOB);
    }
    let policy = policy(&dir, &format!("bind_sources = [{:?}]\n", home.display()));
    let profile = owned(
        &dir,
        "bob.toml",
        BOB,
        &format!(
            "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n\
             user = \"owner\"\nvolumes = [\"{}:/home/bob\"]\nenv = {{ PATH = \"/home/bob/bin:/usr/local/nvidia/bin:/bin\" }}\n\
             [gpus]\ndevices = [0]\nmode = \"devices\"\ncapabilities = [\"compute\"]\nprobe = true\n",
            home.display()
        ),
    );
    let up = || {
        Launch::new()
            .env("LAUNCH_LOCK_DIR", dir.path().join("locks"))
            .arg("--policy")
            .arg(&policy)
            .arg("up")
            .args(host.args())
            .arg(&profile)
            .run()
    };
    up().code(0);
    // Running now: this run probes it.
    let out = up().code(0);
    assert!(out.stdout.contains("up to date"), "{}", show(&out));
    assert!(
        !home.join("ran-as").exists(),
        "launch ran the owner's nvidia-smi, as uid {}",
        std::fs::read_to_string(home.join("ran-as")).unwrap_or_default()
    );
}

// ---- 6. what the image says counts ----------------------------------------------

#[test]
fn a_profile_without_gpus_gets_none_whatever_the_image_says() {
    needs_docker!();
    let scratch = Scratch::new("owner_void");
    // What every nvidia/cuda image sets.
    let image = scratch.busybox_image_with("cuda", &[], &["ENV NVIDIA_VISIBLE_DEVICES=all"]);
    let name = scratch.name("nogpu");
    let dir = Profiles::new();
    let p = owned(
        &dir,
        "p.toml",
        BOB,
        &format!(
            "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\nuser = \"owner\"\n"
        ),
    );
    launch(&dir, &["up", &p.display().to_string()]).code(0);
    assert_eq!(
        docker(&["exec", &name, "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"]),
        "void",
        "an nvidia runtime gives such a container no GPU"
    );
}

#[test]
fn a_bare_uid_runs_with_the_owner_s_group_never_gid_0() {
    needs_docker!();
    let scratch = Scratch::new("owner_gid");
    let image = scratch.busybox_image("img", &[]);
    let dir = Profiles::new();
    let name = scratch.name("uid");
    let p = owned(
        &dir,
        "p.toml",
        BOB,
        &format!(
            "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\nuser = \"{BOB}\"\n"
        ),
    );
    launch(&dir, &["up", &p.display().to_string()]).code(0);
    assert_eq!(
        docker(&["exec", &name, "sh", "-c", "id -u; id -g"]),
        format!("{BOB}\n{BOB}")
    );

    // An image whose USER is a bare uid, and a profile that sets none.
    let bare = scratch.busybox_image_with("bare", &[], &[&format!("USER {BOB}")]);
    let other = scratch.name("image-user");
    let q = owned(
        &dir,
        "q.toml",
        BOB,
        &format!(
            "image = {bare:?}\nname = {other:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\n"
        ),
    );
    let out = launch(&dir, &["up", &q.display().to_string()]).code(3);
    assert!(
        out.stderr.contains("gid 0") && out.stderr.contains(&format!("user = \"{BOB}:GID\"")),
        "{}",
        show(&out)
    );
    assert!(try_docker(&["inspect", &other]).is_none(), "not made");
}

#[test]
fn a_container_an_older_launch_made_is_left_running_after_the_new_defaults() {
    needs_docker!();
    let scratch = Scratch::new("owner_schema");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("old");
    let dir = Profiles::new();
    let p = owned(
        &dir,
        "p.toml",
        BOB,
        &format!(
            "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\nuser = \"{BOB}\"\n"
        ),
    );
    let p = p.display().to_string();
    // What launch made before schema 3: no NVIDIA_VISIBLE_DEVICES=void, the bare uid.
    let rendered: serde_json::Value = serde_json::from_str(
        &launch(&dir, &["render", "--format", "json", &p])
            .code(0)
            .stdout,
    )
    .expect("JSON");
    let now = launch::spec::ContainerSpec::from_label(
        rendered["labels"]["launch.spec"]
            .as_str()
            .expect("the spec"),
    )
    .expect("a spec");
    let mut old = now.clone();
    old.schema = 1;
    old.env.remove("NVIDIA_VISIBLE_DEVICES");
    old.user = Some(BOB.to_string());
    let line = launch(&dir, &["render", "--format", "docker-run", &p])
        .code(0)
        .stdout
        .replace("  -e 'NVIDIA_VISIBLE_DEVICES=void' \\\n", "")
        .replace(&format!("--user '{BOB}:{BOB}'"), &format!("--user '{BOB}'"))
        .replace(&now.canonical_json(), &old.canonical_json())
        .replace(&now.hash(), &old.hash());
    crate::support::docker::sh(&line);
    let id = inspect(&name, "{{.Id}}");
    let plan = launch(&dir, &["plan", &p]).code(0);
    assert!(
        plan.stdout.contains("made by an older launch"),
        "{}",
        show(&plan)
    );
    let up = launch(&dir, &["up", &p]).code(0);
    assert_eq!(
        inspect(&name, "{{.Id}}"),
        id,
        "not recreated: {}",
        show(&up)
    );
    // A real change brings the new defaults.
    launch(&dir, &["up", "--force-recreate", &p]).code(0);
    assert_eq!(
        docker(&[
            "exec",
            &name,
            "sh",
            "-c",
            "echo $NVIDIA_VISIBLE_DEVICES; id -g"
        ]),
        format!("void\n{BOB}")
    );
}

// ---- 4. who wrote it --------------------------------------------------------------

#[test]
fn a_file_others_could_have_written_is_refused_at_its_place() {
    let dir = Profiles::new();
    let p = dir.write("open.toml", "image = \"busybox\"\n");
    chmod(&p, 0o666);
    let out = Launch::new().arg("check").arg(&p).run().code(2);
    assert!(
        out.stderr.contains("open.toml") && out.stderr.contains("group or others can write it"),
        "{}",
        show(&out)
    );
    // An env file in a folder anyone may write (no sticky bit).
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::write(shared.join("team.env"), "A=1\n").expect("write");
    chmod(&shared, 0o777);
    let q = dir.write(
        "q.toml",
        "image = \"busybox\"\nenv_file = \"shared/team.env\"\n",
    );
    let out = Launch::new().arg("check").arg(&q).run().code(2);
    assert!(
        out.stderr.contains("q.toml:2:12") && out.stderr.contains("who could replace it"),
        "{}",
        show(&out)
    );
}

#[test]
fn keys_an_extended_file_wrote_are_judged_for_its_owner() {
    let dir = Profiles::new();
    let policy = policy(&dir, "bind_sources = [\"/data\"]\n");
    // bob's base, which root's profile extends.
    owned(
        &dir,
        "base.toml",
        BOB,
        "user = \"0\"\nvolumes = [\"/etc:/host-etc\"]\n",
    );
    let root = dir.write(
        "root.toml",
        "extends = \"base.toml\"\nimage = \"busybox\"\n",
    );
    let out = Launch::new()
        .arg("--policy")
        .arg(&policy)
        .arg("check")
        .arg(&root)
        .run()
        .code(3);
    for want in [
        "base.toml:1:8",
        "allow.run_as_root",
        "base.toml:2:12",
        "bind source /etc is not allowed for 4343",
    ] {
        assert!(out.stderr.contains(want), "{want}:\n{}", show(&out));
    }
    // The same keys in root's own file are root's to use.
    let own = dir.write(
        "own.toml",
        "image = \"busybox\"\nuser = \"0\"\nvolumes = [\"/etc:/host-etc\"]\n",
    );
    Launch::new()
        .arg("--policy")
        .arg(&policy)
        .arg("check")
        .arg(&own)
        .run()
        .code(0);
}

// ---- 7. renders are data ------------------------------------------------------------

#[test]
fn compose_and_kubernetes_read_every_string_as_the_profile_wrote_it() {
    let compose = needs_validator!("docker-compose");
    let dir = Profiles::new();
    let values = [
        "yes",
        "off",
        "1_000",
        "12:30:00",
        "2024-01-01",
        "=",
        "0x1F",
        "~",
    ];
    let env: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("V{i} = {v:?}"))
        .collect();
    let p = dir.write(
        "data.toml",
        &format!("image = \"busybox\"\n[env]\n{}\n", env.join("\n")),
    );
    let out = Launch::new()
        .args(["render", "--format", "compose"])
        .arg(&p)
        .run()
        .code(0);
    let file = dir.write("compose.yaml", &out.stdout);
    let config = std::process::Command::new(&compose)
        .args(["-f", &file.display().to_string(), "config"])
        .output()
        .expect("docker-compose runs");
    let said = String::from_utf8_lossy(&config.stdout);
    assert!(
        config.status.success(),
        "{}\n{}",
        out.stdout,
        String::from_utf8_lossy(&config.stderr)
    );
    for (i, v) in values.iter().enumerate() {
        assert!(
            said.contains(&format!("V{i}: {v}"))
                || said.contains(&format!("V{i}: '{v}'"))
                || said.contains(&format!("V{i}: \"{v}\"")),
            "V{i} = {v:?} read back as written:\n{said}"
        );
    }
}

#[test]
fn systemd_units_escape_dollars_and_refuse_line_breaks() {
    let analyze = needs_validator!("systemd-analyze");
    let dir = Profiles::new();
    let folder = dir.path().join("$HOME-50%");
    std::fs::create_dir(&folder).expect("mkdir");
    let p = folder.join("nightly.toml");
    std::fs::write(&p, "image = \"busybox\"\n").expect("write");
    let out = Launch::new()
        .args(["render", "--format", "systemd"])
        .arg(&p)
        .run()
        .code(0);
    assert!(
        out.stdout.contains("$$HOME-50%%/nightly.toml"),
        "systemd would expand $HOME: {}",
        out.stdout
    );
    let units = dir.path().join("units");
    std::fs::create_dir(&units).expect("mkdir");
    Launch::new()
        .args(["render", "--format", "systemd", "-o"])
        .arg(&units)
        .arg(&p)
        .run()
        .code(0);
    crate::support::validators::validate(
        &analyze,
        &["verify"],
        &[
            &units.join("launch-nightly.service"),
            &units.join("launch-nightly.timer"),
        ],
    );

    let broken = dir.path().join("a\nExecStartPost=id");
    std::fs::create_dir(&broken).expect("mkdir");
    let q = broken.join("evil.toml");
    std::fs::write(&q, "image = \"busybox\"\n").expect("write");
    let out = Launch::new()
        .args(["render", "--format", "systemd"])
        .arg(&q)
        .run()
        .code(2);
    assert!(out.stderr.contains("line break"), "{}", show(&out));
    assert!(!out.stdout.contains("ExecStartPost"), "{}", out.stdout);
}

// ---- 8. diagnostics show no one's secrets ------------------------------------------

#[test]
fn errors_in_files_of_secrets_name_the_line_never_its_text() {
    let dir = Profiles::new();
    dir.write("secret.env", "GOOD=1\nhunter2-s3cret-line\n");
    let p = dir.write("p.toml", "image = \"busybox\"\nenv_file = \"secret.env\"\n");
    let out = Launch::new().arg("check").arg(&p).run().code(2);
    assert!(out.stderr.contains("secret.env:2:1"), "{}", show(&out));
    assert!(!out.stderr.contains("hunter2"), "{}", show(&out));
    let out = Launch::new()
        .args(["--json", "check"])
        .arg(&p)
        .run()
        .code(2);
    assert!(!out.stdout.contains("hunter2"), "{}", out.stdout);

    // A file that is not a profile is never read as one.
    let q = dir.write("q.toml", "extends = \"/etc/shadow\"\nimage = \"busybox\"\n");
    let out = Launch::new().arg("check").arg(&q).run().code(2);
    assert!(
        out.stderr.contains("q.toml:1:11") && out.stderr.contains("not a profile"),
        "{}",
        show(&out)
    );
    assert!(!out.stderr.contains("root:"), "{}", show(&out));
}

#[test]
fn a_build_sends_only_files_its_owner_or_root_wrote() {
    let dir = Profiles::new();
    chmod(dir.path(), 0o755);
    let ctx = dir.path().join("ctx");
    std::fs::create_dir(&ctx).expect("mkdir");
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").expect("write");
    // bob's context, and alice's profile that builds it.
    chown(&ctx, BOB);
    let alice = owned(
        &dir,
        "alice.toml",
        ALICE,
        "image = \"alice/app:1\"\n[build]\ncontext = \"ctx\"\n",
    );
    let out = launch(&dir, &["build", &alice.display().to_string()]).code(2);
    assert!(
        out.stderr.contains("alice.toml:3:11")
            && out.stderr.contains(&format!("belongs to uid {BOB}")),
        "{}",
        show(&out)
    );
    // Hers, but a Dockerfile anyone may change.
    chown(&ctx, ALICE);
    chmod(&ctx.join("Dockerfile"), 0o666);
    let out = launch(&dir, &["build", &alice.display().to_string()]).code(2);
    assert!(
        out.stderr.contains("group or others can write it"),
        "{}",
        show(&out)
    );
}
