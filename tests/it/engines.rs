//! The engines as they are (README: Podman; docs/architecture.md, engines
//! as they are): launch knows which engine answers and shows it, refuses
//! what that engine would silently drop, checks from the host that a GPU
//! container reaches its GPUs, and recreates on Podman as on Docker.
//!
//! `.ci/run` runs these, like every engine test, against Docker and then
//! against Podman (`LAUNCH_TEST_ENGINE=podman`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, docker, podman};
use crate::support::fake_gpu::FakeGpuHost;

fn show(o: &Output) -> String {
    format!("--- stdout\n{}\n--- stderr\n{}", o.stdout, o.stderr)
}

fn engine_name() -> &'static str {
    if podman() {
        "Podman Engine"
    } else {
        "Docker Engine"
    }
}

#[test]
fn status_and_doctor_name_the_engine() {
    needs_docker!();
    let scratch = Scratch::new("engine_name");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("named");
    let dir = Profiles::new();
    let p = dir.write(
        "named.toml",
        &format!(
            "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n"
        ),
    );
    Launch::new().arg("up").arg(&p).run().code(0);
    let out = Launch::new().arg("status").arg(&p).run().code(0);
    assert!(
        out.stdout.contains(&format!("engine: {}", engine_name())),
        "{}",
        show(&out)
    );
    let host = FakeGpuHost::builder().gpus(1).build();
    let out = Launch::new()
        .args(["--json", "doctor"])
        .args(host.args())
        .run();
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let engine = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "engine")
        .cloned()
        .unwrap_or_default();
    assert!(
        engine["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(engine_name())),
        "{}",
        show(&out)
    );
}

#[test]
fn podman_refuses_the_gpu_modes_it_would_drop_and_auto_takes_devices() {
    needs_docker!();
    if !podman() {
        crate::support::docker::note_skip(
            "podman_refuses_the_gpu_modes_it_would_drop_and_auto_takes_devices on docker: Docker keeps toolkit and CDI requests; it is Podman that drops them",
        );
        return;
    }
    let scratch = Scratch::new("engine_modes");
    let image = scratch.busybox_image("img", &[]);
    let host = FakeGpuHost::builder().gpus(1).build();
    let dir = Profiles::new();
    let profile = |mode: &str| {
        dir.write(
            "gpu-modes.toml",
            &format!(
                "image = {image:?}\nname = {:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n[gpus]\ndevices = [0]\nmode = \"{mode}\"\n",
                scratch.name("gpu")
            ),
        )
    };
    for (mode, says) in [
        ("toolkit", "mode = \"toolkit\" on Podman Engine"),
        (
            "cdi",
            "Podman keeps CDI device requests from its API only since 5.4",
        ),
    ] {
        let p = profile(mode);
        let out = Launch::new()
            .arg("up")
            .args(host.args())
            .arg(&p)
            .run()
            .code(2);
        assert!(
            out.stderr.contains(says)
                && out.stderr.contains("gpu-modes.toml:6:1")
                && out.stderr.contains("mode = \"devices\""),
            "{mode}: {}",
            show(&out)
        );
    }
    let p = profile("auto");
    let out = Launch::new()
        .args(["render", "--format", "json"])
        .args(host.args())
        .arg(&p)
        .run()
        .code(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["gpu_mode"], "devices", "{}", show(&out));
    Launch::new()
        .arg("up")
        .args(host.args())
        .arg(&p)
        .run()
        .code(0);
}

/// A recreate is refused only for real changes, whatever the image holds
/// under /etc and whoever the container runs as: what the engine put there
/// itself (Podman: /etc/hosts, /etc/hostname, /etc/resolv.conf, and the
/// user in /etc/passwd and /etc/group) never counts.
#[test]
fn a_recreate_counts_only_what_the_container_changed_whatever_the_image_has_in_etc() {
    needs_docker!();
    let scratch = Scratch::new("engine_etc");
    let plain = scratch.busybox_image("plain", &[]);
    let with_net = scratch.busybox_image(
        "net",
        &[
            ("etc/resolv.conf", "nameserver 127.0.0.1\n"),
            ("etc/hosts", "127.0.0.1 localhost\n"),
            ("etc/hostname", "image\n"),
        ],
    );
    let dir = Profiles::new();
    let cases = [
        (&plain, ""),
        (&with_net, ""),
        (&plain, "user = \"4343:4343\""),
    ];
    for (i, (image, user)) in cases.into_iter().enumerate() {
        let name = scratch.name(&format!("etc{i}"));
        let write = |v: &str| {
            dir.write(
                "etc.toml",
                &format!(
                    "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n{user}\nenv = {{ V = \"{v}\" }}\n"
                ),
            )
        };
        let p = write("1");
        Launch::new().arg("up").arg(&p).run().code(0);
        write("2");
        let out = Launch::new().arg("up").arg(&p).run().code(0);
        assert!(
            out.stdout.contains("recreated"),
            "{image} {user}: {}",
            show(&out)
        );
        // A file the container itself wrote under /etc is a change.
        docker(&["exec", "-u", "0", &name, "sh", "-c", "echo hi > /etc/motd"]);
        write("3");
        let out = Launch::new().arg("up").arg(&p).run().code(3);
        assert!(
            out.stderr.contains("/etc/motd")
                && !out.stderr.contains("/etc/hosts")
                && !out.stderr.contains("/etc/passwd"),
            "{image} {user}: {}",
            show(&out)
        );
    }
}

/// A second Docker daemon, in its own network namespace, whose PATH holds an `nvidia-container-runtime-hook`
/// that does nothing: the daemon then takes toolkit requests and starts
/// such containers without their GPUs, as a toolkit that is broken or not
/// NVIDIA's would. Stopped and its files removed on drop.
struct HookedDaemon {
    dir: tempfile::TempDir,
    child: Child,
    host: String,
}

impl HookedDaemon {
    fn start() -> HookedDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        let hook = bin.join("nvidia-container-runtime-hook");
        std::fs::write(&hook, "#!/bin/sh\ncat >/dev/null\nexit 0\n").expect("write");
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let sock = dir.path().join("docker.sock");
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let at = |p: &str| dir.path().join(p).display().to_string();
        // In a network namespace of its own: a second daemon in the host's
        // would take the first one's docker0 bridge down with it.
        let child = Command::new("unshare")
            .args(["--net", "--", "dockerd"])
            .env("PATH", path)
            .args(["--data-root", &at("data"), "--exec-root", &at("exec")])
            .args(["--pidfile", &at("dockerd.pid"), "-H"])
            .arg(format!("unix://{}", sock.display()))
            .args(["--bridge=none", "--iptables=false", "--ip-masq=false"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("dockerd.log")).expect("log"))
            .spawn()
            .expect("dockerd starts");
        let host = format!("unix://{}", sock.display());
        let daemon = HookedDaemon { dir, child, host };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !daemon.answers() {
            assert!(
                Instant::now() < deadline,
                "the second dockerd did not come up: {}",
                std::fs::read_to_string(daemon.dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        daemon
    }

    fn answers(&self) -> bool {
        self.docker(&["version"]).status.success()
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(["-H", &self.host])
            .args(args)
            .output()
            .expect("docker runs")
    }

    /// Imports the tests' busybox rootfs as `image`.
    fn import(&self, image: &str, rootfs: &Path) {
        let mut tar = Command::new("tar")
            .args(["-C", &rootfs.display().to_string(), "-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar");
        let status = Command::new("docker")
            .args(["-H", &self.host, "import", "-", image])
            .stdin(tar.stdout.take().expect("tar's output"))
            .stdout(Stdio::null())
            .status()
            .expect("docker import");
        let _ = tar.wait();
        assert!(status.success(), "import into the second dockerd");
    }
}

impl Drop for HookedDaemon {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]);
        for id in String::from_utf8_lossy(&ids.stdout).lines() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        // Our own child, by its pid: it stops its containerd and unmounts.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn a_gpu_container_started_without_its_gpus_is_stopped_and_reported() {
    needs_docker!();
    not_on_podman!(
        "the toolkit's hook is Docker's device driver; on Podman toolkit mode is refused before create (podman_refuses_the_gpu_modes_it_would_drop_and_auto_takes_devices)"
    );
    let daemon = HookedDaemon::start();
    let host = FakeGpuHost::builder().gpus(1).build();
    let rootfs = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(rootfs.path().join("bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", rootfs.path().join("bin/busybox")).expect("busybox");
    for applet in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.path().join("bin").join(applet))
            .expect("link");
    }
    daemon.import("launch-test/hooked:1", rootfs.path());
    let dir = Profiles::new();
    let p = dir.write(
        "hooked.toml",
        "image = \"launch-test/hooked:1\"\nname = \"launch-test-hooked\"\npull = \"never\"\n\
         command = [\"sleep\", \"1000\"]\nnetwork = \"none\"\nstop_timeout = 0\n\
         [gpus]\ndevices = [0]\nmode = \"toolkit\"\n",
    );
    let out = Launch::new()
        .args(["--host", &daemon.host, "up"])
        .args(host.args())
        .arg(&p)
        .run()
        .code(1);
    assert!(
        out.stderr.contains(
            "the engine started launch-test-hooked without its GPUs (toolkit mode on Docker Engine"
        ) && out.stderr.contains("libcuda.so.1")
            && out.stderr.contains("mode = \"devices\""),
        "{}",
        show(&out)
    );
    let left = daemon.docker(&["ps", "-q", "--filter", "name=launch-test-hooked"]);
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "nothing runs without its GPUs"
    );

    // The same on the daemon's devices mode: launch's own mounts, judged whole.
    std::fs::write(
        &p,
        std::fs::read_to_string(&p)
            .expect("read")
            .replace("mode = \"toolkit\"", "mode = \"devices\""),
    )
    .expect("write");
    Launch::new()
        .args(["--host", &daemon.host, "up"])
        .args(host.args())
        .arg(&p)
        .run()
        .code(0);
}

/// Rootless Podman (a user's own socket, set up by scripts/start-podman.sh
/// as the user `launch-rootless`): a profile without GPUs runs; doctor says
/// why a GPU profile cannot, where the user cannot open the GPU nodes.
#[test]
fn rootless_podman_runs_profiles_without_gpus_and_doctor_says_why_gpus_cannot() {
    needs_docker!();
    let Some(socket) = std::env::var_os("LAUNCH_ROOTLESS_HOST") else {
        // The Podman round must have it; elsewhere this test is Podman's.
        if podman() {
            crate::support::docker::missing(
                "rootless_podman_runs_profiles_without_gpus_and_doctor_says_why_gpus_cannot",
                "LAUNCH_ROOTLESS_HOST names no rootless Podman socket (scripts/start-podman.sh sets one up)",
            );
            return;
        }
        crate::support::docker::note_skip(
            "rootless_podman_runs_profiles_without_gpus_and_doctor_says_why_gpus_cannot: no rootless Podman socket (LAUNCH_ROOTLESS_HOST; the Podman round has one)",
        );
        return;
    };
    let socket = PathBuf::from(socket);
    let user = "launch-rootless";
    let dir = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::chown(dir.path(), Some(uid_of(user)), None).expect("chown");
    let p = dir.path().join("solo.toml");
    std::fs::write(
        &p,
        "image = \"localhost/launch-test/rootless:1\"\nname = \"launch-test-rootless\"\npull = \"never\"\n\
         command = [\"sleep\", \"1000\"]\nnetwork = \"none\"\nstop_timeout = 0\n",
    )
    .expect("write");
    std::os::unix::fs::chown(&p, Some(uid_of(user)), None).expect("chown");
    let as_user = |args: &[&str]| {
        let out = Command::new("runuser")
            .args(["-u", user, "--", env!("CARGO_BIN_EXE_launch")])
            .args(["--host", &socket.display().to_string()])
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("LAUNCH_STATE_DIR")
            .env_remove("LAUNCH_LOCK_DIR")
            .output()
            .expect("runuser");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    };
    let out = as_user(&["up", &p.display().to_string()]);
    assert_eq!(out.code, 0, "{}", show(&out));
    let out = as_user(&["down", &p.display().to_string()]);
    assert_eq!(out.code, 0, "{}", show(&out));

    // The GPU nodes are root's alone here: doctor says the rootless engine
    // cannot give them to a container. The user may read the fake host.
    let host = FakeGpuHost::builder().gpus(1).build();
    open_to_all(&host.root);
    for node in std::fs::read_dir(host.dev_root.join("dev"))
        .expect("dev")
        .flatten()
    {
        if node.file_name().to_string_lossy().starts_with("nvidia") {
            let _ = std::fs::set_permissions(
                node.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            );
        }
    }
    let mut args = vec!["--json", "doctor"];
    let host_args = host.args();
    args.extend(host_args.iter().map(String::as_str));
    let out = as_user(&args);
    assert!(
        out.stdout.contains("is rootless") && out.stdout.contains("cannot open"),
        "{}",
        show(&out)
    );
}

/// Folders searchable and files readable by everyone, below `root`.
fn open_to_all(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return;
    };
    if meta.is_dir() {
        let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755));
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            open_to_all(&entry.path());
        }
    } else if meta.is_file() {
        let mode = meta.permissions().mode() | 0o444;
        let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode));
    }
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().expect("id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a uid")
}

#[test]
fn a_container_that_keeps_exiting_does_not_break_a_run() {
    // Podman 4 lists and inspects a container between its exit and its
    // cleanup as `stopped`, a state Docker's API lacks; one that restarts
    // over and over is in it about a third of the time. `up` inspects it,
    // `status` lists every container launch made, `gpus` lists them too.
    needs_docker!();
    let scratch = Scratch::new("engine_flapping");
    let image = scratch.busybox_image("img", &[]);
    // Three of them, so that most runs meet one `stopped`.
    let dir = Profiles::new();
    for n in 0..3 {
        let name = scratch.name(&format!("flapping{n}"));
        dir.write(
            &format!("flapping{n}.toml"),
            &format!(
                "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"true\"]\nrestart = \"always\"\nstop_timeout = 0\n"
            ),
        );
    }
    let p = dir.path();
    let host = FakeGpuHost::builder().gpus(1).build();
    Launch::new().arg("up").arg(p).run().code(0);
    for _ in 0..4 {
        for args in [
            vec!["up", p.to_str().expect("a path")],
            vec!["status"],
            vec!["gpus"],
        ] {
            let out = Launch::new().args(host.args()).args(&args).run();
            assert_eq!(out.code, 0, "launch {args:?}\n{}", show(&out));
        }
    }
}
