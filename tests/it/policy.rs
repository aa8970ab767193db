//! The policy of a shared host (README: Shared hosts): each rule refuses a
//! profile that breaks it at the offending key, passes one within it, and
//! does not bind admins; an untrusted policy file stops every command.
//!
//! Tests run as root: "someone else" is a profile chowned to a uid no one
//! has (4242); root, an admin of the test policies, owns the same file next.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, inspect};

/// A uid with no passwd entry: the profile's owner when it is not an admin.
const OTHER: u32 = 4242;

/// Writes a policy file as an admin would: root's, mode 0644.
fn write_policy(dir: &Profiles, text: &str) -> PathBuf {
    let path = dir.write("policy.toml", text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    path
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
}

fn check(policy: &Path, profile: &Path) -> Output {
    Launch::new()
        .arg("--policy")
        .arg(policy)
        .arg("check")
        .arg(profile)
        .run()
}

/// One rule: `broken` (a line of a profile) is refused at `at` (line:column)
/// naming `rule`; `within` passes; `broken` owned by an admin passes.
fn rule(allow: &str, broken: &str, at: &str, rule: &str, within: &str) {
    let dir = Profiles::new();
    let policy = write_policy(&dir, &format!("admins = [\"root\"]\n[allow]\n{allow}\n"));
    // The image is busybox unless the lines name one.
    let profile = |lines: &str| match lines.starts_with("image") {
        true => format!("{lines}\n"),
        false => format!("image = \"busybox\"\n{lines}\n"),
    };
    let bad = dir.write("bad.toml", &profile(broken));
    chown(&bad, OTHER);
    let out = check(&policy, &bad).code(3);
    assert!(
        out.stderr.contains(&format!("policy rule `allow.{rule}`")),
        "the rule is named:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("bad.toml:{at}")),
        "at the offending key ({at}):\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("4242"),
        "names the owner:\n{}",
        out.stderr
    );
    let good = dir.write("good.toml", &profile(within));
    chown(&good, OTHER);
    check(&policy, &good).code(0);
    chown(&bad, 0);
    check(&policy, &bad).code(0);
}

#[test]
fn images_are_globs_on_the_reference() {
    rule(
        "images = [\"registry.lab.example/*\", \"local/*\"]",
        "image = \"busybox\"",
        "1:9",
        "images",
        "image = \"local/train:1\"",
    );
    // `*` spans `/`, and the pattern is anchored at both ends.
    let dir = Profiles::new();
    let policy = write_policy(
        &dir,
        "[allow]\nimages = [\"local/*\"]\nrun_as_root = true\n",
    );
    for (image, code) in [("local/a/b:1", 0), ("evil/local/a", 3), ("local", 3)] {
        let p = dir.write("p1.toml", &format!("image = \"{image}\"\n"));
        chown(&p, OTHER);
        check(&policy, &p).code(code);
    }
}

#[test]
fn bind_sources_are_whole_path_prefixes() {
    rule(
        "bind_sources = [\"/data\", \"{home}\"]",
        "volumes = [\"/data/x:/x\", \"/data-evil:/y\"]",
        "2:26",
        "bind_sources",
        "volumes = [\"/data/x:/x\", \"/data:/d\", \"scratch:/s\", { type = \"tmpfs\", target = \"/t\" }]",
    );
}

#[test]
fn privileged_is_refused_unless_allowed() {
    rule(
        "",
        "privileged = true",
        "2:14",
        "privileged",
        "privileged = false",
    );
}

#[test]
fn host_namespaces_are_refused_unless_allowed() {
    rule(
        "host_namespaces = false",
        "ipc = \"host\"",
        "2:7",
        "host_namespaces",
        "ipc = \"shareable\"",
    );
}

#[test]
fn cap_add_names_the_capability_not_allowed() {
    rule(
        "cap_add = [\"SYS_PTRACE\"]",
        "cap_add = [\"CAP_SYS_PTRACE\", \"NET_ADMIN\"]",
        "2:30",
        "cap_add",
        "cap_add = [\"sys_ptrace\"]",
    );
}

#[test]
fn devices_are_host_paths() {
    rule(
        "devices = [\"/dev/fuse\"]",
        "devices = [\"/dev/fuse\", \"/dev/sda\"]",
        "2:25",
        "devices",
        "devices = [\"/dev/fuse:/dev/fuse:rw\"]",
    );
}

#[test]
fn run_as_root_needs_a_non_zero_uid_or_the_owner() {
    rule(
        "",
        "user = \"0:0\"",
        "2:8",
        "run_as_root",
        "user = \"owner\"",
    );
    rule(
        "",
        "user = \"root\"",
        "2:8",
        "run_as_root",
        "user = \"4242:4242\"",
    );
}

#[test]
fn max_gpus_counts_a_profile_s_gpus() {
    rule(
        "max_gpus = 2",
        "gpus = [0, 1, 2]",
        "2:8",
        "max_gpus",
        "gpus = { count = 2 }",
    );
}

#[test]
fn max_gpus_per_owner_counts_this_profile_too() {
    rule(
        "max_gpus_per_owner = 1",
        "gpus = { count = 2 }",
        "2:8",
        "max_gpus_per_owner",
        "gpus = [0]",
    );
}

#[test]
fn a_key_from_a_parent_is_refused_in_the_parent_for_the_child_s_owner() {
    let dir = Profiles::new();
    let policy = write_policy(&dir, "admins = [\"@root\"]\n[allow]\n");
    let base = dir.write("base.toml", "image = \"busybox\"\nprivileged = true\n");
    let child = dir.write("child.toml", "extends = \"base.toml\"\n");
    chown(&child, OTHER);
    let out = check(&policy, &child).code(3);
    assert!(out.stderr.contains("base.toml:2:14"), "{}", out.stderr);
    assert!(out.stderr.contains("for 4242"), "{}", out.stderr);
    // The parent, applied itself, is root's: root is in @root.
    check(&policy, &base).code(0);
}

#[test]
fn check_json_says_refused_with_each_place() {
    let dir = Profiles::new();
    let policy = write_policy(&dir, "[allow]\n");
    let p = dir.write("js.toml", "image = \"busybox\"\nprivileged = true\n");
    chown(&p, OTHER);
    let out = Launch::new()
        .arg("--policy")
        .arg(&policy)
        .args(["check", "--json"])
        .arg(&p)
        .run()
        .code(3);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["owner"], "4242");
    assert_eq!(v["errors"][0]["line"], 2);
}

#[test]
fn an_untrusted_policy_stops_every_command_that_reads_profiles_before_the_engine() {
    let dir = Profiles::new();
    let p = dir.write("pp.toml", "image = \"busybox\"\n");
    let policy = write_policy(&dir, "[allow]\n");
    let run = |args: &[&str], policy: &Path| {
        Launch::new()
            // An engine that cannot answer: the policy must stop the run first.
            .env("DOCKER_HOST", "unix:///nonexistent/launch-policy-test.sock")
            .env("LAUNCH_POLICY", policy)
            .args(args)
            .arg(&p)
            .run()
            .code(2)
    };
    let commands: [&[&str]; 5] = [&["check"], &["plan"], &["render"], &["up"], &["build"]];
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o664)).unwrap();
    for args in commands {
        let out = run(args, &policy);
        assert!(
            out.stderr.contains("writable by its group") && !out.stderr.contains("nonexistent"),
            "{args:?}:\n{}",
            out.stderr
        );
    }
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
    chown(&policy, OTHER);
    for args in commands {
        let out = run(args, &policy);
        assert!(
            out.stderr.contains("owned by 4242, not root"),
            "{args:?}:\n{}",
            out.stderr
        );
    }
    // A folder others can write: they could replace or remove the policy.
    chown(&policy, 0);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = run(&["up"], &policy);
    assert!(
        out.stderr.contains("can be written by others"),
        "{}",
        out.stderr
    );
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = run(&["check"], &dir.path().join("missing.toml"));
    assert!(
        out.stderr.contains("cannot read the policy"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_policy_file_is_checked_like_a_profile() {
    let dir = Profiles::new();
    let policy = write_policy(&dir, "admins = [\"root\"]\n[allow]\nmax_gpu = 2\n");
    let p = dir.write("pp.toml", "image = \"busybox\"\n");
    let out = check(&policy, &p).code(2);
    assert!(
        out.stderr.contains("unknown key `max_gpu`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `max_gpus`?"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("policy.toml:3:1"), "{}", out.stderr);
}

/// `nobody`: a user with a passwd entry (and so a home) who is no admin.
const NOBODY: u32 = 65534;

#[test]
fn the_team_profiles_pass_the_team_policy() {
    let repo = crate::support::cli::repo_root();
    // Copies: the policy root's and 0644 whatever the checkout's modes, the
    // profiles owned by someone the policy binds.
    let dir = Profiles::new();
    let policy = write_policy(
        &dir,
        &std::fs::read_to_string(repo.join("profiles/team-policy.toml")).unwrap(),
    );
    for entry in std::fs::read_dir(repo.join("profiles/team")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let copy = dir.write(
            &format!("team/{name}"),
            &std::fs::read_to_string(&path).unwrap(),
        );
        chown(&copy, NOBODY);
    }
    let out = Launch::new()
        .arg("--policy")
        .arg(&policy)
        .args(["check", "--json"])
        .arg(dir.path().join("team"))
        .run()
        .code(0);
    assert_eq!(
        out.stdout.lines().count(),
        2,
        "alice and bob:\n{}",
        out.stdout
    );
    // The same folder with a member who asks for more is refused.
    let greedy = dir.write(
        "team/carol.toml",
        "extends = \"base.toml\"\nname = \"carol\"\nprivileged = true\n",
    );
    chown(&greedy, NOBODY);
    let out = check(&policy, &dir.path().join("team")).code(3);
    assert!(out.stderr.contains("carol.toml:3:14"), "{}", out.stderr);
    // And one whose lease runs past the policy's 14 days, at its line.
    std::fs::remove_file(&greedy).unwrap();
    let long = dir.write(
        "team/dave.toml",
        "extends = \"base.toml\"\nname = \"dave\"\ngpus = { count = 1 }\n[lease]\nuntil = \"30d\"\n",
    );
    chown(&long, NOBODY);
    let out = check(&policy, &dir.path().join("team")).code(3);
    assert!(
        out.stderr.contains("dave.toml:5:9") && out.stderr.contains("lease.max_until"),
        "{}",
        out.stderr
    );
}

/// A gid no one has, for the owner's primary group.
const OTHER_GID: u32 = 4343;

#[test]
fn a_user_owner_container_writes_files_its_profile_s_owner_owns() {
    needs_docker!();
    let scratch = Scratch::new("policy_user_owner");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("own");
    let dir = Profiles::new();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::os::unix::fs::chown(&out_dir, Some(OTHER), Some(OTHER_GID)).unwrap();
    let body = |volume: &str| {
        format!(
            "image = {image:?}\nname = {name:?}\npull = \"never\"\nstop_timeout = 0\nuser = \"owner\"\n\
             command = [\"sh\", \"-c\", \"touch /out/made && sleep 1000\"]\nvolumes = [\"{volume}:/out\"]\n"
        )
    };
    let path = dir.write("own.toml", &body("./out"));
    std::os::unix::fs::chown(&path, Some(OTHER), Some(OTHER_GID)).unwrap();
    // Judged on the host too: root's images set no user, but the profile does.
    let policy_dir = Profiles::new();
    let policy = write_policy(
        &policy_dir,
        &format!(
            "[allow]\nbind_sources = [{:?}]\n",
            out_dir.display().to_string()
        ),
    );
    let up = |path: &Path| {
        Launch::new()
            .arg("--policy")
            .arg(&policy)
            .arg("up")
            .arg(path)
            .run()
    };
    up(&path).code(0);
    let made = out_dir.join("made");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !made.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let meta = std::fs::metadata(&made).expect("the container wrote /out/made");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (OTHER, OTHER_GID),
        "owned by the profile's owner"
    );
    assert_eq!(
        inspect(&name, "{{.Config.User}}"),
        format!("{OTHER}:{OTHER_GID}")
    );
    assert_eq!(
        inspect(&name, "{{index .Config.Labels \"launch.owner\"}}"),
        "4242"
    );
    let status = Launch::new()
        .args(["status", "--json"])
        .arg(&path)
        .run()
        .code(0);
    let row: serde_json::Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!(row["owner"], "4242");

    // A bind source that is a link out of what the policy allows is judged
    // where it leads: refused at up, the running container left alone.
    std::os::unix::fs::symlink("/etc", out_dir.join("etc")).unwrap();
    std::fs::write(&path, body("./out/etc")).unwrap();
    let id = inspect(&name, "{{.Id}}");
    let out = up(&path).code(3);
    assert!(
        out.stderr.contains("(which is /etc)") && out.stderr.contains("allow.bind_sources"),
        "{}",
        out.stderr
    );
    assert_eq!(inspect(&name, "{{.Id}}"), id, "not recreated");
}

#[test]
fn run_as_root_judges_the_image_s_user_when_the_profile_sets_none() {
    needs_docker!();
    let scratch = Scratch::new("policy_image_user");
    let image = scratch.busybox_image("img", &[]);
    let dir = Profiles::new();
    let path = dir.write(
        "img.toml",
        &format!(
            "image = {image:?}\nname = {:?}\npull = \"never\"\n",
            scratch.name("x")
        ),
    );
    chown(&path, OTHER);
    let policy = write_policy(&dir, "[allow]\n");
    // busybox imported with no user runs as root: plan and render refuse it.
    for command in ["plan", "render"] {
        let out = Launch::new()
            .arg("--policy")
            .arg(&policy)
            .arg(command)
            .arg(&path)
            .run()
            .code(3);
        assert!(
            out.stderr.contains("runs as root"),
            "{command}:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("img.toml:1:9"),
            "{command}:\n{}",
            out.stderr
        );
    }
    // Offline, the image is unknown: check passes.
    check(&policy, &path).code(0);
}

#[test]
fn check_warns_of_gpu_mistakes_at_their_place_and_deny_warnings_fails() {
    let dir = Profiles::new();
    let p = dir.write(
        "gpu.toml",
        "image = \"busybox\"\nprivileged = true\ngpus = [0]\n[ulimits]\nnofile = 1024\n",
    );
    let out = Launch::new().arg("check").arg(&p).run().code(0);
    for (warning, at) in [
        ("64 MiB /dev/shm", "gpu.toml:3:8"),
        ("privileged with gpus", "gpu.toml:2:14"),
        ("memlock is not raised", "gpu.toml:5:1"),
    ] {
        let shown = out
            .stderr
            .split("warning: ")
            .find(|w| w.contains(warning))
            .unwrap_or_else(|| panic!("warns of {warning}:\n{}", out.stderr));
        assert!(
            shown.contains(at) && shown.contains("help: "),
            "{warning} at {at} with a fix:\n{shown}"
        );
    }
    let out = Launch::new()
        .args(["check", "--deny-warnings"])
        .arg(&p)
        .run()
        .code(2);
    assert!(out.stderr.contains("3 warnings denied"), "{}", out.stderr);
    let fixed = dir.write(
        "fixed.toml",
        "image = \"busybox\"\nshm_size = \"8G\"\ngpus = [0]\n[ulimits]\nmemlock = -1\n",
    );
    let out = Launch::new()
        .args(["check", "--deny-warnings"])
        .arg(&fixed)
        .run()
        .code(0);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn check_warns_of_home_and_user_variables_in_team_profiles() {
    let dir = Profiles::new();
    dir.write(
        "base.toml",
        "image = \"busybox\"\n# ${HOME} in a comment is fine\nworkdir = \"/home/${USER}\"\n",
    );
    let member = dir.write(
        "member.toml",
        "extends = \"base.toml\"\nvolumes = [\"${HOME}/data:/data\"]\n",
    );
    let out = Launch::new()
        .env("HOME", "/root")
        .env("USER", "root")
        .arg("check")
        .arg(&member)
        .run()
        .code(0);
    assert!(
        out.stderr.contains("base.toml:3:18"),
        "${{USER}} in the parent:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("member.toml:2:13"),
        "${{HOME}} in the member:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("write `~`"), "{}", out.stderr);
    assert_eq!(out.stderr.matches("warning:").count(), 2, "{}", out.stderr);
    // A profile on its own is no team profile.
    let alone = dir.write(
        "alone.toml",
        "image = \"busybox\"\nworkdir = \"/home/${USER}\"\n",
    );
    let out = Launch::new()
        .env("USER", "root")
        .arg("check")
        .arg(&alone)
        .run()
        .code(0);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

// Attacks by a profile's writer on a policy that allows little (README:
// Shared hosts, "What a profile cannot get around").

#[test]
fn security_options_that_lift_confinement_are_refused_unless_allowed() {
    rule(
        "security_opt = [\"apparmor=unconfined\"]",
        "security_opt = [\"no-new-privileges\", \"seccomp=unconfined\"]",
        "2:38",
        "security_opt",
        "security_opt = [\"no-new-privileges:true\", \"apparmor=unconfined\"]",
    );
    let dir = Profiles::new();
    let policy = write_policy(&dir, "[allow]\nsecurity_opt = [\"label\"]\n");
    dir.write("open.json", "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}\n");
    for (opt, code) in [
        ("label=disable", 0),
        ("label:disable", 0),
        ("apparmor=unconfined", 3),
        ("systempaths=unconfined", 3),
        ("no-new-privileges:false", 3),
        ("seccomp=open.json", 3),
    ] {
        let p = dir.write(
            "pp.toml",
            &format!("image = \"busybox\"\nuser = \"owner\"\nsecurity_opt = [\"{opt}\"]\n"),
        );
        chown(&p, OTHER);
        let out = check(&policy, &p).code(code);
        if code == 3 {
            assert!(
                out.stderr.contains("policy rule `allow.security_opt`"),
                "{opt}:\n{}",
                out.stderr
            );
            assert!(
                !out.stderr.contains("SCMP_ACT_ALLOW"),
                "a seccomp file is named, not dumped:\n{}",
                out.stderr
            );
        }
    }
}

#[test]
fn joining_another_container_s_namespaces_is_refused_like_the_host_s() {
    for key in ["network", "ipc", "pid"] {
        rule(
            "",
            &format!("{key} = \"container:someone-else\""),
            &format!("2:{}", key.len() + 4),
            "host_namespaces",
            &format!("{key} = \"private\"").replace("network = \"private\"", "network = \"none\""),
        );
    }
}

#[test]
fn device_cgroup_rules_are_refused_unless_allowed() {
    rule(
        "device_cgroup_rules = [\"c 10:229 rwm\"]",
        "device_cgroup_rules = [\"c 10:229  rwm\", \"b 8:* rwm\"]",
        "2:41",
        "device_cgroup_rules",
        "device_cgroup_rules = [\"c 10:229 rwm\"]",
    );
}

#[test]
fn extra_groups_are_the_owner_s_own_by_number() {
    // The owner (4242, no passwd entry) is in its file's group, 4242.
    rule(
        "group_add = [\"video\"]",
        "group_add = [\"4242\", \"video\", \"0\"]",
        "2:31",
        "group_add",
        "group_add = [\"4242\", \"video\"]",
    );
    let dir = Profiles::new();
    let policy = write_policy(&dir, "[allow]\n");
    for group in ["disk", "docker", "root", "6"] {
        let p = dir.write(
            "pp.toml",
            &format!("image = \"busybox\"\nuser = \"owner\"\ngroup_add = [\"{group}\"]\n"),
        );
        chown(&p, OTHER);
        check(&policy, &p).code(3);
    }
}

#[test]
fn a_non_root_user_in_root_s_group_is_refused() {
    rule(
        "",
        "user = \"4242:0\"",
        "2:8",
        "run_as_root",
        "user = \"4242:4242\"",
    );
    let dir = Profiles::new();
    let policy = write_policy(&dir, "[allow]\n");
    for (user, code) in [
        ("4242:root", 3),
        ("4242:4242", 0),
        ("owner", 0),
        ("4242", 0),
    ] {
        let p = dir.write(
            "pp.toml",
            &format!("image = \"busybox\"\nuser = \"{user}\"\n"),
        );
        chown(&p, OTHER);
        check(&policy, &p).code(code);
    }
}

#[test]
fn capabilities_are_judged_by_name_whatever_their_spelling() {
    rule(
        "cap_add = [\"SYS_PTRACE\"]",
        "cap_add = [\"cap_sys_ptrace\", \"all\"]",
        "2:30",
        "cap_add",
        "cap_add = [\"sys_ptrace\", \"CAP_SYS_PTRACE\"]",
    );
}

#[test]
fn image_globs_are_not_fooled_by_registries_or_dots() {
    let dir = Profiles::new();
    let policy = write_policy(&dir, "[allow]\nimages = [\"local/*\"]\n");
    for (image, code) in [
        ("localhost:5000/local/x", 3),
        ("docker.io/local/x", 3),
        ("local/../x", 2),
        (
            "local/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            0,
        ),
    ] {
        let p = dir.write(
            "pp.toml",
            &format!("image = \"{image}\"\nuser = \"owner\"\n"),
        );
        chown(&p, OTHER);
        check(&policy, &p).code(code);
    }
}

#[test]
fn files_a_profile_names_are_read_only_when_its_owner_could_read_them() {
    let dir = Profiles::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let private = |name: &str, text: &str| {
        let path = dir.write(name, text);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    };
    private("secret.env", "TOKEN=s3cret-env\n");
    private(
        "secret.toml",
        "image = \"s3cret-base\"\nnot toml s3cret-line\n",
    );
    private("secret.json", "{\"s3cret\": true}\n");
    for (line, at) in [
        ("env_file = \"secret.env\"", "2:12"),
        ("extends = \"secret.toml\"", "2:11"),
        ("security_opt = [\"seccomp=secret.json\"]", "2:17"),
        ("env_file = \"/etc/shadow\"", "2:12"),
    ] {
        let p = dir.write("pp.toml", &format!("image = \"busybox\"\n{line}\n"));
        chown(&p, OTHER);
        let out = Launch::new().arg("check").arg(&p).run().code(2);
        assert!(
            out.stderr.contains(&format!("pp.toml:{at}"))
                && out
                    .stderr
                    .contains("4242 (who wrote the profile that names it)"),
            "{line} is refused at its place, naming the owner:\n{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("s3cret") && !out.stderr.contains("root:"),
            "nothing of the file is shown:\n{}",
            out.stderr
        );
        // The owner of the profile may read its own files; root reads all.
        chown(&p, 0);
        let out = Launch::new().arg("check").arg(&p).run();
        assert!(
            !out.stderr.contains("the profile's owner"),
            "{}",
            out.stderr
        );
    }
    // Readable by the owner (others may read it): read as before.
    for name in ["secret.env", "secret.json"] {
        std::fs::set_permissions(
            dir.path().join(name),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
    }
    let p = dir.write(
        "pp.toml",
        "image = \"busybox\"\nenv_file = \"secret.env\"\nsecurity_opt = [\"seccomp=secret.json\"]\n",
    );
    chown(&p, OTHER);
    Launch::new().arg("check").arg(&p).run().code(0);
}

#[test]
fn bind_sources_made_for_an_owner_are_made_where_the_owner_could_and_are_theirs() {
    needs_docker!();
    let scratch = Scratch::new("policy_create");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("mk");
    let dir = Profiles::new();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (mine, roots) = (dir.path().join("mine"), dir.path().join("roots"));
    std::fs::create_dir(&mine).expect("mkdir");
    std::fs::create_dir(&roots).expect("mkdir");
    std::os::unix::fs::chown(&mine, Some(OTHER), Some(OTHER_GID)).expect("chown");
    let profile = |source: &str| {
        let path = dir.write(
            "mk.toml",
            &format!(
                "image = {image:?}\nname = {name:?}\npull = \"never\"\nstop_timeout = 0\nuser = \"owner\"\n\
                 command = [\"sleep\", \"1000\"]\nvolumes = [{{ source = {source:?}, target = \"/x\", create = true }}]\n"
            ),
        );
        chown(&path, OTHER);
        path
    };
    let out = Launch::new()
        .arg("up")
        .arg(profile("./roots/new/deeper"))
        .run();
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("4242 (the profile's owner) cannot create folders in")
            && out.stderr.contains("roots"),
        "{}",
        out.stderr
    );
    assert!(
        !roots.join("new").exists(),
        "root made nothing for the owner"
    );
    assert!(crate::support::docker::try_docker(&["inspect", &name]).is_none());

    Launch::new()
        .arg("up")
        .arg(profile("./mine/new/deeper"))
        .run()
        .code(0);
    for made in [mine.join("new"), mine.join("new/deeper")] {
        let meta = std::fs::metadata(&made).expect("made");
        // The owner has no passwd entry: their group is the profile file's.
        assert_eq!(
            (meta.uid(), meta.gid()),
            (OTHER, OTHER),
            "{}",
            made.display()
        );
    }
}

#[test]
fn another_user_s_uid_or_group_is_refused_unless_allowed() {
    rule(
        "",
        "user = \"1001\"",
        "2:8",
        "run_as_others",
        "user = \"4242\"",
    );
    let dir = Profiles::new();
    let strict = write_policy(&dir, "[allow]\n");
    let lax = dir.write("lax.toml", "[allow]\nrun_as_others = true\n");
    std::fs::set_permissions(&lax, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    for (user, code) in [("4242:1001", 3), ("1001:4242", 3), ("4242:4242", 0)] {
        let p = dir.write(
            "pp.toml",
            &format!("image = \"busybox\"\nuser = \"{user}\"\n"),
        );
        chown(&p, OTHER);
        check(&strict, &p).code(code);
        check(&lax, &p).code(0);
    }
}

#[test]
fn an_image_s_user_is_judged_like_the_profile_s() {
    needs_docker!();
    let scratch = Scratch::new("policy_image_user_name");
    // A name the image's own passwd maps to uid 0, and another user's uid.
    let toor = scratch.busybox_image_with(
        "toor",
        &[("etc/passwd", "toor:x:0:0::/:/bin/sh\n")],
        &["USER toor"],
    );
    let bob = scratch.busybox_image_with("bob", &[], &["USER 1001"]);
    let mine = scratch.busybox_image_with("mine", &[], &[&format!("USER {OTHER}:{OTHER}")]);
    // The owner's uid without a group: Docker runs it as gid 0.
    let bare = scratch.busybox_image_with("bare", &[], &[&format!("USER {OTHER}")]);
    let dir = Profiles::new();
    let policy = write_policy(&dir, "[allow]\n");
    for (image, code, said) in [
        (&toor, 3, "is a name, which the image may map to uid 0"),
        (&bob, 3, "allow.run_as_others"),
        (
            &bare,
            3,
            "a uid without a group, which Docker runs as gid 0",
        ),
        (&mine, 0, ""),
    ] {
        let path = dir.write(
            "img.toml",
            &format!(
                "image = {image:?}\nname = {:?}\npull = \"never\"\n",
                scratch.name("x")
            ),
        );
        chown(&path, OTHER);
        let out = Launch::new()
            .arg("--policy")
            .arg(&policy)
            .arg("render")
            .arg(&path)
            .run()
            .code(code);
        assert!(out.stderr.contains(said), "{image}:\n{}", out.stderr);
    }
}

#[test]
fn all_gpus_of_a_host_whose_gpus_cannot_be_counted_are_refused_under_a_limit() {
    needs_docker!();
    let dir = Profiles::new();
    let policy = write_policy(&dir, "[allow]\nmax_gpus = 1\n");
    let p = dir.write(
        "pp.toml",
        "image = \"busybox\"\nuser = \"owner\"\npull = \"never\"\ngpus = \"all\"\n",
    );
    chown(&p, OTHER);
    // No NVML here: how many "all" is cannot be told.
    let out = Launch::new()
        .env("LAUNCH_NVML_LIB", "/nonexistent/libnvidia-ml.so.1")
        .arg("--policy")
        .arg(&policy)
        .arg("render")
        .arg(&p)
        .run()
        .code(3);
    assert!(
        out.stderr.contains("could not be counted") && out.stderr.contains("pp.toml:4:8"),
        "{}",
        out.stderr
    );
}

#[test]
fn tilde_name_is_that_user_s_home_and_judged_as_such() {
    let dir = Profiles::new();
    let policy = write_policy(&dir, "[allow]\nbind_sources = [\"{home}\"]\n");
    let p = dir.write(
        "pp.toml",
        "image = \"busybox\"\nuser = \"owner\"\nvolumes = [\"~root/.ssh:/k\", \"~nosuchuser/x:/y\"]\n",
    );
    chown(&p, OTHER);
    let out = check(&policy, &p).code(2);
    assert!(
        out.stderr
            .contains("`~nosuchuser` is the home of the user nosuchuser, who has no passwd entry")
            && out.stderr.contains("pp.toml:3:29"),
        "{}",
        out.stderr
    );
    let p = dir.write(
        "pp.toml",
        "image = \"busybox\"\nuser = \"owner\"\nvolumes = [\"~root/.ssh:/k\"]\n",
    );
    chown(&p, OTHER);
    let out = check(&policy, &p).code(3);
    assert!(
        out.stderr
            .contains("bind source /root/.ssh is not allowed for 4242")
            && out.stderr.contains("pp.toml:3:12"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_named_volume_that_binds_a_host_path_is_judged_as_that_bind() {
    needs_docker!();
    let scratch = Scratch::new("policy_volume_bind");
    let (etc, plain) = (scratch.name("etc"), scratch.name("plain"));
    crate::support::docker::docker(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        "device=/etc",
        &etc,
    ]);
    scratch.track_volume(&etc);
    crate::support::docker::docker(&["volume", "create", &plain]);
    scratch.track_volume(&plain);
    let dir = Profiles::new();
    let policy = write_policy(&dir, "[allow]\nbind_sources = [\"{home}\"]\n");
    let render = |volume: &str| {
        let p = dir.write(
            "pp.toml",
            &format!("image = \"busybox\"\nuser = \"owner\"\nvolumes = [\"{volume}:/v\"]\n"),
        );
        chown(&p, OTHER);
        Launch::new()
            .arg("--policy")
            .arg(&policy)
            .arg("render")
            .arg(&p)
            .run()
    };
    let out = render(&etc).code(3);
    assert!(
        out.stderr.contains(&format!(
            "bind source /etc (through volume {etc}) is not allowed for 4242"
        )) && out.stderr.contains("pp.toml:3:12"),
        "{}",
        out.stderr
    );
    render(&plain).code(0);
}
