//! launch as cron runs it: as root, unattended, over folders of profiles
//! many people write. Whatever one profile or the engine does, the run ends,
//! says why, and exits with the most severe code of what it saw.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, docker, try_docker};
use crate::support::fake_gpu::{FakeGpu, FakeGpuHost};
use serde_json::Value;

/// An engine address where nothing listens.
const NO_ENGINE: &str = "unix:///nonexistent/launch-test/docker.sock";

/// A profile file name that is not UTF-8 (Latin-1 "café").
fn non_utf8_name() -> &'static OsStr {
    OsStr::from_bytes(b"caf\xe9.toml")
}

/// `launch` with its lock files in `dir` (removed with the test's temp folder).
fn launch(locks: &Path) -> Launch {
    Launch::new().env("LAUNCH_LOCK_DIR", locks)
}

fn json_lines(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{}", out.stdout))
        })
        .collect()
}

/// A private lock folder inside the profiles' temp folder.
fn lock_dir(profiles: &Profiles) -> PathBuf {
    let dir = profiles.path().join(".locks");
    std::fs::create_dir_all(&dir).expect("mkdir locks");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    dir
}

fn busybox_profile(image: &str, name: &str) -> String {
    format!(
        "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n"
    )
}

// ---- paths that are not UTF-8 -------------------------------------------------

#[test]
fn check_and_render_json_show_a_path_that_is_not_utf8_lossily() {
    let profiles = Profiles::new();
    let path = profiles.path().join(non_utf8_name());
    std::fs::write(&path, "image = \"busybox\"\nname = \"cafe\"\n").expect("write");

    // The cron form over a folder, and the file itself.
    for target in [profiles.path(), path.as_path()] {
        let out = Launch::new()
            .args(["--json", "check"])
            .arg(target)
            .run()
            .code(0);
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 1, "{}", out.stdout);
        assert!(
            lines[0]["profile"]
                .as_str()
                .is_some_and(|p| p.ends_with("caf\u{FFFD}.toml")),
            "{}",
            out.stdout
        );
        assert_eq!(lines[0]["valid"], true);
    }

    let out = Launch::new()
        .args(["render", "--format", "json"])
        .arg(&path)
        .run()
        .code(0);
    let rendered: Value = serde_json::from_str(&out.stdout).expect("render prints JSON");
    assert!(
        rendered["profile"]
            .as_str()
            .is_some_and(|p| p.ends_with("caf\u{FFFD}.toml")),
        "{}",
        out.stdout
    );
    assert_eq!(rendered["spec"]["name"], "cafe");
}

#[test]
fn up_and_plan_json_over_a_folder_with_a_path_that_is_not_utf8_do_not_crash() {
    needs_docker!();
    let scratch = Scratch::new("non-utf8");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("cafe");
    let profiles = Profiles::new();
    let locks = lock_dir(&profiles);
    std::fs::write(
        profiles.path().join(non_utf8_name()),
        busybox_profile(&image, &name),
    )
    .expect("write");

    let plan = launch(&locks)
        .args(["plan", "--json"])
        .arg(profiles.path())
        .run()
        .code(4);
    assert_eq!(json_lines(&plan)[0]["action"], "create", "{}", plan.stdout);

    let up = launch(&locks)
        .args(["up", "--json"])
        .arg(profiles.path())
        .run()
        .code(0);
    let line = &json_lines(&up)[0];
    assert_eq!(line["action"], "create", "{}", up.stdout);
    assert!(
        line["profile"]
            .as_str()
            .is_some_and(|p| p.ends_with("caf\u{FFFD}.toml")),
        "{}",
        up.stdout
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Status}}", &name]),
        "running"
    );
}

// ---- exit codes by severity ---------------------------------------------------

/// A folder with one invalid profile and one that `plan` would create.
fn invalid_and_new(profiles: &Profiles, image: &str, name: &str) {
    profiles.write("bad.toml", "image = \"busybox\"\nshm_size = \"lots\"\n");
    profiles.write("good.toml", &busybox_profile(image, name));
}

#[test]
fn plan_over_a_folder_with_an_invalid_profile_and_a_change_exits_2_not_4() {
    needs_docker!();
    let scratch = Scratch::new("severity");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("good");
    let profiles = Profiles::new();
    let locks = lock_dir(&profiles);
    invalid_and_new(&profiles, &image, &name);

    let out = launch(&locks)
        .arg("plan")
        .arg(profiles.path())
        .run()
        .code(2);
    assert!(
        out.stdout.contains(&format!("{name}: create and start")),
        "the good profile is still planned:\n{}",
        out.stdout
    );
    assert!(out.stderr.contains("bad.toml:2:"), "{}", out.stderr);
}

#[test]
fn up_and_plan_show_the_profile_errors_even_when_no_engine_answers() {
    let profiles = Profiles::new();
    let locks = lock_dir(&profiles);
    invalid_and_new(&profiles, "busybox", "good-one");
    for command in ["up", "plan"] {
        let out = launch(&locks)
            .args([command, "--host", NO_ENGINE])
            .arg(profiles.path())
            .run()
            .code(2);
        assert!(
            out.stderr.contains("bad.toml:2:") && out.stderr.contains("lots"),
            "{command}: the invalid profile's error is shown:\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("/nonexistent/launch-test/docker.sock"),
            "{command}: the good profile says the engine is unreachable:\n{}",
            out.stderr
        );
    }
    // Alone, the invalid profile is exit 2 too, with its error.
    let out = launch(&locks)
        .args(["up", "--host", NO_ENGINE])
        .arg(profiles.path().join("bad.toml"))
        .run()
        .code(2);
    assert!(out.stderr.contains("bad.toml:2:"), "{}", out.stderr);
}

#[test]
fn one_bad_argument_does_not_stop_the_others() {
    let profiles = Profiles::new();
    let good = profiles.write("good/app.toml", "image = \"busybox\"\n");
    let empty = profiles.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    // A FIFO and a dangling link named like profiles are reported, not skipped.
    let odd = profiles.path().join("odd");
    std::fs::create_dir(&odd).expect("mkdir");
    let fifo = Command::new("mkfifo")
        .arg(odd.join("pipe.toml"))
        .status()
        .expect("mkfifo runs");
    assert!(fifo.success());
    std::os::unix::fs::symlink(odd.join("gone"), odd.join("dangling.toml")).expect("symlink");

    let out = Launch::new()
        .arg("check")
        .args([&empty, &good, &odd])
        .run()
        .code(2);
    assert!(
        out.stdout.contains("ok: ") && out.stdout.contains("app.toml"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("no *.toml profiles in"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("pipe.toml") && out.stderr.contains("dangling.toml"),
        "{}",
        out.stderr
    );
}

// ---- bounded waits ------------------------------------------------------------

/// A TCP server on 127.0.0.1 that accepts connections and never answers.
fn silent_engine() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = format!("tcp://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    address
}

#[test]
fn an_engine_that_accepts_but_never_answers_is_unreachable_after_the_timeout() {
    let engine = silent_engine();
    let profiles = Profiles::new();
    let locks = lock_dir(&profiles);
    let path = profiles.write("app.toml", "image = \"busybox\"\n");
    let started = Instant::now();
    let out = launch(&locks)
        .args(["up", "--timeout", "1", "--host", &engine])
        .arg(&path)
        .run()
        .code(1);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let address = engine.trim_start_matches("tcp://");
    assert!(
        out.stderr.contains(address) && out.stderr.contains("no answer within 1s"),
        "{}",
        out.stderr
    );
}

#[test]
fn invalid_profiles_do_not_wait_for_an_engine_that_never_answers() {
    // up and plan start asking the engine while the profiles load; when
    // none of them is valid, nothing waits for its answer.
    let engine = silent_engine();
    let profiles = Profiles::new();
    let locks = lock_dir(&profiles);
    profiles.write("a.toml", "image = \"busybox\"\nshm_size = \"lots\"\n");
    profiles.write("b.toml", "image = \"\"\n");
    for command in ["up", "plan"] {
        let started = Instant::now();
        let out = launch(&locks)
            .args([command, "--timeout", "20", "--host", &engine])
            .arg(profiles.path())
            .run()
            .code(2);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{command} waited {:?} for the engine",
            started.elapsed()
        );
        assert!(
            out.stderr.contains("a.toml") && out.stderr.contains("b.toml"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn render_goes_on_without_an_engine_that_never_answers_and_says_so() {
    let engine = silent_engine();
    let host = FakeGpuHost::builder()
        .gpu(FakeGpu {
            uuid: format!("GPU-{:08x}-0000-4000-8000-00000000a11e", std::process::id()),
            ..FakeGpu::new(0)
        })
        .build();
    let profiles = Profiles::new();
    let path = profiles.write("gpu.toml", "image = \"busybox\"\ngpus = [0]\n");
    let out = Launch::new()
        .args([
            "render",
            "--format",
            "json",
            "--timeout",
            "1",
            "--host",
            &engine,
        ])
        .args(host.args())
        .arg(&path)
        .run()
        .code(0);
    let rendered: Value = serde_json::from_str(&out.stdout).expect("render prints JSON");
    assert_eq!(rendered["gpu_mode"], "devices", "{}", out.stdout);
    assert!(
        rendered["gpu_mode_reason"]
            .as_str()
            .is_some_and(|r| r.contains("no engine answered")),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(engine.trim_start_matches("tcp://")),
        "the warning names the engine:\n{}",
        out.stderr
    );
}

/// `flock FILE sleep 60`: another process holding a lock file, as a
/// concurrent launch run would. Killed (by its pid) on drop.
struct Holder(Child);

impl Holder {
    fn hold(file: &Path) -> Holder {
        let child = Command::new("flock")
            .arg(file)
            .args(["sleep", "60"])
            .spawn()
            .expect("flock (util-linux) runs");
        // Until it holds the lock, a non-blocking flock succeeds.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new("flock")
            .args(["-n"])
            .arg(file)
            .arg("true")
            .status()
            .expect("flock runs")
            .success()
        {
            assert!(Instant::now() < deadline, "flock never took the lock");
            std::thread::sleep(Duration::from_millis(20));
        }
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_lock_held_past_the_lock_timeout_ends_the_run_naming_the_holder() {
    needs_docker!();
    let scratch = Scratch::new("lock-timeout");
    let name = scratch.name("held");
    let profiles = Profiles::new();
    let locks = lock_dir(&profiles);
    let path = profiles.write("p.toml", &busybox_profile("busybox", &name));
    let file = locks.join(format!("{name}.lock"));
    let holder = Holder::hold(&file);
    // A launch run writes its pid in the lock it holds.
    std::fs::write(&file, holder.0.id().to_string()).expect("write pid");

    let started = Instant::now();
    let out = launch(&locks)
        .args(["up", "--lock-timeout", "1"])
        .arg(&path)
        .run()
        .code(1);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        out.stderr.contains(&format!("pid {}", holder.0.id())) && out.stderr.contains(&name),
        "{}",
        out.stderr
    );
    assert_eq!(try_docker(&["inspect", &name]), None, "nothing was created");
}

#[test]
fn lock_files_others_could_plant_are_refused() {
    needs_docker!();
    let scratch = Scratch::new("lock-planted");
    let name = scratch.name("x");
    let profiles = Profiles::new();
    let path = profiles.write("p.toml", &busybox_profile("busybox", &name));

    // A folder every user can write, like the old /tmp/launch-locks.
    let shared = profiles.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let out = launch(&shared).arg("up").arg(&path).run().code(1);
    assert!(
        out.stderr.contains("only it can write") && out.stderr.contains("mode 1777"),
        "{}",
        out.stderr
    );

    // A lock file that is a symlink to somewhere else.
    let locks = lock_dir(&profiles);
    let target = profiles.path().join("elsewhere");
    std::fs::write(&target, "").expect("write");
    std::os::unix::fs::symlink(&target, locks.join(format!("{name}.lock"))).expect("symlink");
    let out = launch(&locks).arg("up").arg(&path).run().code(1);
    assert!(out.stderr.contains("symlink"), "{}", out.stderr);
    assert_eq!(try_docker(&["inspect", &name]), None, "nothing was created");
}

// ---- render's docker run line -------------------------------------------------

/// Runs the `docker run` line `render` prints for `profile`, as a user would
/// paste it into a shell; it must succeed.
fn run_rendered(profile: &Path) {
    let line = Launch::new()
        .args(["render", "--format", "docker-run"])
        .arg(profile)
        .run()
        .code(0)
        .stdout;
    crate::support::docker::sh(&line);
}

#[test]
fn a_rendered_mount_target_with_a_comma_cannot_bind_another_source() {
    needs_docker!();
    not_on_podman!("Podman 4.3's inspect leaves HostConfig.Mounts empty");
    let scratch = Scratch::new("render-csv");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("ctr");
    let profiles = Profiles::new();
    let data = profiles.path().join("data");
    std::fs::create_dir(&data).expect("mkdir data");
    let path = profiles.write(
        "p.toml",
        &format!(
            "{}volumes = [{{ type = \"bind\", source = \"./data\", target = \"/x,source=/etc\", read_only = true }}]\n",
            busybox_profile(&image, &name)
        ),
    );
    run_rendered(&path);
    let mounts: Value = serde_json::from_str(&docker(&[
        "inspect",
        "-f",
        "{{json .HostConfig.Mounts}}",
        &name,
    ]))
    .expect("JSON");
    assert_eq!(mounts.as_array().map(Vec::len), Some(1), "{mounts}");
    assert_eq!(mounts[0]["Source"], data.display().to_string(), "{mounts}");
    assert_eq!(mounts[0]["Target"], "/x,source=/etc", "{mounts}");
}

#[test]
fn a_rendered_seccomp_profile_reaches_the_engine_as_its_json() {
    needs_docker!();
    not_on_podman!(
        "Podman's API reads `seccomp=` as a file on its host, not as the JSON Docker's takes; launch refuses such a profile on Podman (tests/it/engines.rs)"
    );
    let scratch = Scratch::new("render-seccomp");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("ctr");
    let profiles = Profiles::new();
    profiles.write(
        "seccomp.json",
        "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n",
    );
    let path = profiles.write(
        "p.toml",
        &format!(
            "{}security_opt = [\"seccomp=seccomp.json\"]\n",
            busybox_profile(&image, &name)
        ),
    );
    run_rendered(&path);
    assert_eq!(
        docker(&["inspect", "-f", "{{json .HostConfig.SecurityOpt}}", &name]),
        r#"["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]"#
    );
}

// ---- devices ------------------------------------------------------------------

#[test]
fn a_device_that_is_a_folder_or_a_gpu_under_another_name_is_refused_on_the_host() {
    let profiles = Profiles::new();
    let dir = profiles.path().join("devs");
    std::fs::create_dir(&dir).expect("mkdir");
    // A GPU's node (char 195:3) under a harmless name, reached through a link.
    let node = dir.join("harmless");
    let made = Command::new("mknod")
        .arg(&node)
        .args(["c", "195", "3"])
        .status()
        .is_ok_and(|s| s.success());
    std::os::unix::fs::symlink(&node, dir.join("link")).expect("symlink");
    let path = profiles.write(
        "app.toml",
        &format!(
            "image = \"busybox\"\ndevices = [\n  \"/dev/null:/dev/quiet\",\n  \"{dir}:/hostdev\",\n  \"{dir}/link:/dev/x\",\n  \"{dir}/none:/dev/y\",\n]\n",
            dir = dir.display()
        ),
    );
    // `check` judges the profile as written; the host decides at render/up.
    Launch::new().arg("check").arg(&path).run().code(0);
    let out = Launch::new()
        .args(["render", "--format", "json"])
        .arg(&path)
        .run()
        .code(2);
    assert!(
        out.stderr.contains("is a folder") && out.stderr.contains("app.toml:4:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("does not exist on this host") && out.stderr.contains("app.toml:6:"),
        "{}",
        out.stderr
    );
    if made {
        assert!(
            out.stderr.contains("NVIDIA GPU device (major 195)")
                && out.stderr.contains("app.toml:5:"),
            "{}",
            out.stderr
        );
    }
    assert!(
        !out.stderr.contains("app.toml:3:"),
        "/dev/null is fine:\n{}",
        out.stderr
    );
}

#[test]
fn a_profile_cannot_hide_the_profile_it_extends_by_taking_its_name() {
    let profiles = Profiles::new();
    profiles.write(
        "team/alice.toml",
        "image = \"busybox\"\ncommand = \"train.sh\"\n",
    );
    profiles.write(
        "team/mallory.toml",
        "extends = \"alice.toml\"\nname = \"alice\"\ncommand = \"evil.sh\"\n[recreate]\nchanged_files = \"discard\"\n",
    );
    let out = Launch::new()
        .arg("check")
        .arg(profiles.path().join("team"))
        .run()
        .code(2);
    assert!(
        out.stderr.contains("mallory.toml:2:")
            && out
                .stderr
                .contains("container name `alice` is also the name of")
            && out.stderr.contains("alice.toml"),
        "{}",
        out.stderr
    );
    // A base that is no complete profile (no image) stays a plain base.
    let team = Profiles::new();
    team.write("t/base.toml", "shm_size = \"1G\"\n");
    team.write(
        "t/bob.toml",
        "extends = \"base.toml\"\nimage = \"busybox\"\n",
    );
    let out = Launch::new()
        .arg("check")
        .arg(team.path().join("t"))
        .run()
        .code(0);
    assert!(out.stdout.contains("bob.toml"), "{}", out.stdout);
}

#[test]
fn files_named_again_and_again_are_read_once_or_refused() {
    let profiles = Profiles::new();
    profiles.write("a.env", "A=1\n");
    profiles.write("a.toml", "shm_size = \"1G\"\n");
    profiles.write("b.toml", "shm_size = \"2G\"\n");
    profiles.write("seccomp.json", "{}\n");
    let many = |name: &str, n: usize| vec![format!("{name:?}"); n].join(", ");

    // Named twice: read once, and the last-named parent still wins.
    let twice = profiles.write(
        "twice.toml",
        &format!(
            "extends = [\"a.toml\", \"b.toml\", \"a.toml\"]\nimage = \"busybox\"\nenv_file = [{}]\n",
            many("a.env", 2)
        ),
    );
    let out = Launch::new()
        .args(["render", "--format", "json"])
        .arg(&twice)
        .run()
        .code(0);
    let rendered: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(rendered["spec"]["shm_size"], 1u64 << 30, "{}", out.stdout);
    assert_eq!(rendered["spec"]["env"]["A"], "1");

    // Past the limits: refused at the key, not read thousands of times.
    for (text, says) in [
        (
            format!(
                "image = \"busybox\"\nenv_file = [{}]\n",
                many("a.env", 2000)
            ),
            "at most 32",
        ),
        (
            format!(
                "extends = [{}]\nimage = \"busybox\"\n",
                many("a.toml", 2000)
            ),
            "at most 32",
        ),
        (
            format!(
                "image = \"busybox\"\nsecurity_opt = [{}]\n",
                many("seccomp=seccomp.json", 2)
            ),
            "only one applies",
        ),
    ] {
        let path = profiles.write("many.toml", &text);
        let out = Launch::new().arg("check").arg(&path).run().code(2);
        assert!(
            out.stderr.contains(says) && out.stderr.contains("many.toml:"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn a_profile_cannot_hand_itself_gpus_through_the_toolkits_variables() {
    let profiles = Profiles::new();
    profiles.write("gpu.env", "A=1\nNVIDIA_VISIBLE_DEVICES=all\n");
    let path = profiles.write(
        "app.toml",
        "image = \"busybox\"\nenv_file = \"gpu.env\"\n[env]\nNVIDIA_DRIVER_CAPABILITIES = \"all\"\nNVIDIA_DISABLE_REQUIRE = \"1\"\n",
    );
    let out = Launch::new().arg("check").arg(&path).run().code(2);
    assert!(
        out.stderr.contains("app.toml:2:") && out.stderr.contains("sets NVIDIA_VISIBLE_DEVICES"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("app.toml:4:") && out.stderr.contains("`NVIDIA_DRIVER_CAPABILITIES`"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("NVIDIA_DISABLE_REQUIRE"),
        "{}",
        out.stderr
    );
}

// ---- names ----------------------------------------------------------------------

#[test]
fn a_profile_named_like_the_start_of_another_containers_id_leaves_that_container_alone() {
    needs_docker!();
    let scratch = Scratch::new("id-prefix");
    let image = scratch.busybox_image("img", &[]);
    let victim = scratch.name("victim");
    let profiles = Profiles::new();
    let locks = lock_dir(&profiles);
    let own = profiles.write("victim.toml", &busybox_profile(&image, &victim));
    launch(&locks).arg("up").arg(&own).run().code(0);
    let id = docker(&["inspect", "-f", "{{.Id}}", &victim]);
    // Docker finds a container by a prefix of its id as well as by name.
    let prefix = id[..10].to_string();
    scratch.track_container(&prefix);
    let evil = profiles.write("evil/evil.toml", &busybox_profile(&image, &prefix));

    let plan = launch(&locks).arg("plan").arg(&evil).run().code(4);
    assert!(
        plan.stdout.contains(&format!("{prefix}: create and start")),
        "{}",
        plan.stdout
    );
    launch(&locks).arg("up").arg(&evil).run().code(0);
    for _ in 0..2 {
        launch(&locks).args(["down", &prefix]).run().code(0);
    }
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}} {{.State.Status}}", &victim]),
        format!("{id} running"),
        "the other container is untouched"
    );
}

// ---- host facts once per run --------------------------------------------------

#[test]
fn a_folder_of_gpu_profiles_initialises_nvml_once_and_a_no_op_not_at_all() {
    needs_docker!();
    let scratch = Scratch::new("nvml-once");
    let image = scratch.busybox_image("img", &[]);
    let host = FakeGpuHost::builder()
        .gpu(FakeGpu {
            uuid: format!("GPU-{:08x}-0000-4000-8000-0000000000a0", std::process::id()),
            ..FakeGpu::new(0)
        })
        .gpu(FakeGpu {
            uuid: format!("GPU-{:08x}-0000-4000-8000-0000000000a1", std::process::id()),
            ..FakeGpu::new(1)
        })
        .build();
    let profiles = Profiles::new();
    let locks = lock_dir(&profiles);
    for i in 0..4 {
        let name = scratch.name(&format!("gpu{i}"));
        profiles.write(
            &format!("p{i}.toml"),
            &format!(
                "{}gpus = {{ devices = [{}], mode = \"devices\" }}\n",
                busybox_profile(&image, &name),
                i % 2
            ),
        );
    }
    let log = profiles.path().join("nvml.log");
    let inits = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    // The first plan and up make containers: NVML decides, once. The last
    // up finds all in sync from /proc/driver/nvidia alone.
    for (command, code, nvml) in [("plan", 4, 1), ("up", 0, 1), ("up", 0, 0)] {
        let before = inits();
        let out = launch(&locks)
            .env("FAKE_NVML_LOG", &log)
            .arg(command)
            .args(host.args())
            .arg(profiles.path())
            .run()
            .code(code);
        assert_eq!(inits() - before, nvml, "`{command}` over 4 GPU profiles");
        if command == "up" && before > 1 {
            // The second up: the folder's one listing shows all in sync.
            assert_eq!(
                out.stdout.matches(": up to date").count(),
                4,
                "{}",
                out.stdout
            );
        }
    }
}

/// One GPU profile on `host`, and a way to count NVML's inits.
struct NvmlWatch {
    // Removes the container when the test ends.
    _scratch: Scratch,
    profiles: Profiles,
    locks: PathBuf,
    log: PathBuf,
    image: String,
    name: String,
}

impl NvmlWatch {
    fn new(tag: &str) -> NvmlWatch {
        let scratch = Scratch::new(tag);
        let image = scratch.busybox_image("img", &[]);
        let name = scratch.name("gpu");
        let profiles = Profiles::new();
        let locks = lock_dir(&profiles);
        let log = profiles.path().join("nvml.log");
        NvmlWatch {
            _scratch: scratch,
            profiles,
            locks,
            log,
            image,
            name,
        }
    }

    fn write(&self, devices: &str) {
        self.profiles.write(
            "gpu.toml",
            &format!(
                "{}gpus = {{ devices = [{devices}], mode = \"devices\" }}\n",
                busybox_profile(&self.image, &self.name)
            ),
        );
    }

    /// Runs `command` on the profile; its output and how many times it
    /// initialised NVML.
    fn run(&self, host: &FakeGpuHost, command: &str, code: i32) -> (Output, usize) {
        let inits = || {
            std::fs::read_to_string(&self.log)
                .unwrap_or_default()
                .lines()
                .count()
        };
        let before = inits();
        let out = launch(&self.locks)
            .env("FAKE_NVML_LOG", &self.log)
            .arg(command)
            .args(host.args())
            .arg(self.profiles.path().join("gpu.toml"))
            .run()
            .code(code);
        (out, inits() - before)
    }

    fn id(&self) -> String {
        docker(&["inspect", "-f", "{{.Id}}", &self.name])
    }
}

#[test]
fn a_gpu_no_op_reads_the_kernels_view_and_any_change_asks_nvml() {
    needs_docker!();
    let host = FakeGpuHost::builder().gpus(4).build();
    let w = NvmlWatch::new("nvml-noop");
    w.write("0, 1");
    let (_, nvml) = w.run(&host, "up", 0);
    assert_eq!(nvml, 1, "a container to make: NVML decides");
    let id = w.id();

    let (out, nvml) = w.run(&host, "up", 0);
    assert!(out.stdout.contains("up to date"), "{}", out.stdout);
    assert_eq!(nvml, 0, "in sync, seen from /proc/driver/nvidia");

    w.write("0, 2");
    let (out, nvml) = w.run(&host, "plan", 4);
    assert!(out.stdout.contains("recreate"), "{}", out.stdout);
    assert_eq!(nvml, 1, "a change is NVML's to plan");

    // A GPU not initialised since boot shows no UUID under /proc: NVML.
    w.write("0, 1");
    host.uninitialise_in_procfs(&host.gpus[3].uuid);
    let (out, nvml) = w.run(&host, "up", 0);
    assert!(out.stdout.contains("up to date"), "{}", out.stdout);
    assert_eq!(nvml, 1);
    assert_eq!(w.id(), id, "never recreated");
}

#[test]
fn a_kernel_view_that_numbers_gpus_unlike_nvml_never_recreates() {
    needs_docker!();
    // NVML's GPU 0 sits on a higher bus than its GPU 1, so /proc's bus order
    // calls it GPU 1: the kernel's view disagrees, and NVML decides.
    let host = FakeGpuHost::builder()
        .gpu(FakeGpu {
            bus_id: "00000000:DB:00.0".into(),
            ..FakeGpu::new(0)
        })
        .gpu(FakeGpu {
            bus_id: "00000000:18:00.0".into(),
            ..FakeGpu::new(1)
        })
        .build();
    let w = NvmlWatch::new("nvml-order");
    w.write("0");
    w.run(&host, "up", 0);
    let id = w.id();
    let (out, nvml) = w.run(&host, "up", 0);
    assert!(out.stdout.contains("up to date"), "{}", out.stdout);
    assert_eq!(nvml, 1, "the kernel's view did not match: NVML was asked");
    assert_eq!(w.id(), id);
    let visible = docker(&[
        "inspect",
        "-f",
        "{{range .Config.Env}}{{println .}}{{end}}",
        &w.name,
    ]);
    assert!(
        visible.contains(&format!("NVIDIA_VISIBLE_DEVICES={}", host.gpus[0].uuid)),
        "NVML's GPU 0: {visible}"
    );
}
