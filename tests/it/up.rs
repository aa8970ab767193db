//! `launch up`, `plan`, `down` and `status` against a real Docker daemon
//! (docs/architecture.md, reconcile; a run): a profile becomes
//! a running container, and running again changes only what the profile
//! changed, safely.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, docker, inspect, try_docker};
use crate::support::fake_gpu::FakeGpuHost;
use serde_json::Value;

/// Served by busybox httpd in the tests that publish a port.
const PAGE: &str = "hello from a launch container\n";

/// One test's world: an offline busybox image, a container name, and one
/// profile file that the test rewrites between runs. All removed on drop.
struct World {
    scratch: Scratch,
    profiles: Profiles,
    image: String,
    name: String,
    path: PathBuf,
    /// Global options for every run (the fake GPU host's roots).
    args: RefCell<Vec<String>>,
}

impl World {
    fn new(test: &str) -> World {
        let scratch = Scratch::new(test);
        let image = scratch.busybox_image("img", &[("/www/index.html", PAGE)]);
        let name = scratch.name("app");
        let profiles = Profiles::new();
        let path = profiles.path().join("app.toml");
        World {
            scratch,
            profiles,
            image,
            name,
            path,
            args: RefCell::new(Vec::new()),
        }
    }

    /// Writes the profile: the defaults below, except the keys `body` sets,
    /// then `body` (which may end in `[tables]`).
    fn write(&self, body: &str) -> &Path {
        let defaults = [
            ("image", format!("{:?}", self.image)),
            ("name", format!("{:?}", self.name)),
            ("pull", "\"never\"".to_string()),
            ("command", r#"["sleep", "1000"]"#.to_string()),
            // busybox sleep as PID 1 ignores SIGTERM: don't wait 10 s for it.
            ("stop_timeout", "0".to_string()),
        ];
        let mut text = String::new();
        for (key, value) in defaults {
            let overridden = body.lines().any(|l| {
                l.trim_start().starts_with(&format!("{key} "))
                    || l.trim_start().starts_with(&format!("{key}="))
            });
            if !overridden {
                text += &format!("{key} = {value}\n");
            }
        }
        text += body;
        text.push('\n');
        std::fs::write(&self.path, text).expect("write the profile");
        &self.path
    }

    fn set_args(&self, args: Vec<String>) {
        *self.args.borrow_mut() = args;
    }

    fn launch(&self, command: &[&str]) -> Output {
        // Global options after the subcommand: before it, clap takes the
        // subcommand's name for a profile (`launch --json up` runs profile `up`).
        launch(&self.profiles)
            .args(command)
            .args(self.args.borrow().iter())
            .arg(&self.path)
            .run()
    }

    fn up(&self) -> Output {
        self.launch(&["up"])
    }

    fn plan(&self) -> Output {
        self.launch(&["plan"])
    }

    fn id(&self) -> String {
        inspect(&self.name, "{{.Id}}")
    }

    fn status(&self) -> String {
        inspect(&self.name, "{{.State.Status}}")
    }

    /// Runs a shell script in the container; its trimmed stdout.
    fn exec(&self, script: &str) -> String {
        docker(&["exec", &self.name, "sh", "-c", script])
    }

    /// Every container whose name contains this test's container name: the
    /// container itself, and any `-launch-old-` leftover of a recreate.
    fn containers(&self) -> Vec<String> {
        let names = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("name={}", self.name),
            "--format",
            "{{.Names}}",
        ]);
        let mut names: Vec<String> = names.lines().map(str::to_string).collect();
        names.sort();
        names
    }

    /// `launch down --volumes NAME`: the container and `volume` are gone.
    fn down_volumes(&self, volume: &str) {
        let out = launch(&self.profiles)
            .args(["down", "--volumes", &self.name])
            .run()
            .code(0);
        assert!(
            out.stdout.contains(&format!("volumes removed: {volume}")),
            "{}",
            show(&out)
        );
        assert!(self.containers().is_empty(), "{:?}", self.containers());
        assert!(
            try_docker(&["volume", "inspect", volume]).is_none(),
            "--volumes removes it"
        );
    }

    /// Exactly one container of this name exists, running: no leftovers,
    /// once the engine has deleted what a recreate left it to remove.
    fn assert_alone_and_running(&self) {
        crate::support::docker::wait_while_removing(&self.name);
        assert_eq!(
            self.containers(),
            std::slice::from_ref(&self.name),
            "one container, no recreate leftovers"
        );
        assert_eq!(self.status(), "running");
    }
}

/// `launch`, keeping its lock files in the profiles' temp folder (removed
/// with it) instead of the shared /tmp/launch-locks.
fn launch(profiles: &Profiles) -> Launch {
    Launch::new().env("LAUNCH_LOCK_DIR", lock_dir(profiles))
}

fn lock_dir(profiles: &Profiles) -> PathBuf {
    profiles.path().join(".locks")
}

fn show(o: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        o.code, o.stdout, o.stderr
    )
}

/// Applies `before`, then `after`: `plan` must announce a recreate naming
/// `field` (exit 4), and `up` must replace the container with a new one, alone
/// and running, which the caller then inspects.
fn assert_recreates(w: &World, before: &str, after: &str, field: &str) {
    w.write(before);
    w.up().code(0);
    let old = w.id();

    w.write(after);
    let plan = w.plan().code(4);
    assert!(
        plan.stdout.contains("recreate") && plan.stdout.contains(field),
        "plan should name {field}: {}",
        show(&plan)
    );
    assert_eq!(w.id(), old, "plan changes nothing");

    let up = w.up().code(0);
    assert!(up.stdout.contains("recreated"), "{}", show(&up));
    assert_ne!(w.id(), old, "a changed {field} gives a new container");
    w.assert_alone_and_running();
    assert_eq!(
        w.plan().code,
        0,
        "after the recreate, the container matches the profile"
    );
}

/// A port on 127.0.0.1 that nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// GET / from 127.0.0.1:port, polling until the server answers (or 10 s).
fn http_get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        match attempt {
            Ok(body) if body.starts_with("HTTP/1.") && body.contains(" 200 ") => return body,
            other => assert!(
                Instant::now() < deadline,
                "nothing serves on 127.0.0.1:{port}: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether anything accepts connections on 127.0.0.1:port.
fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

// ---- reconcile: nothing, start, unpause ------------------------------------

#[test]
fn running_again_leaves_the_container_alone() {
    needs_docker!();
    let w = World::new("again");
    w.write("");
    let first = w.up().code(0);
    assert!(
        first.stdout.contains("created and started"),
        "{}",
        show(&first)
    );
    let before = inspect(&w.name, "{{.Id}} {{.State.StartedAt}}");

    let second = w.up().code(0);
    assert!(second.stdout.contains("up to date"), "{}", show(&second));
    assert_eq!(
        inspect(&w.name, "{{.Id}} {{.State.StartedAt}}"),
        before,
        "same container, never restarted"
    );
    w.assert_alone_and_running();
}

#[test]
fn a_stopped_container_is_started_again() {
    needs_docker!();
    let w = World::new("stopped");
    w.write("");
    w.up().code(0);
    let id = w.id();
    docker(&["stop", &w.name]);
    assert_eq!(w.status(), "exited");

    let out = w.up().code(0);
    assert!(out.stdout.contains("started"), "{}", show(&out));
    assert_eq!(w.id(), id, "started, not recreated");
    w.assert_alone_and_running();
}

#[test]
fn a_paused_container_is_unpaused() {
    needs_docker!();
    let w = World::new("paused");
    w.write("");
    w.up().code(0);
    let id = w.id();
    docker(&["pause", &w.name]);
    assert_eq!(w.status(), "paused");

    let out = w.up().code(0);
    assert!(out.stdout.contains("unpaused"), "{}", show(&out));
    assert_eq!(w.id(), id, "unpaused, not recreated");
    w.assert_alone_and_running();
}

// ---- each changed field recreates ------------------------------------------

#[test]
fn a_changed_image_recreates_the_container() {
    needs_docker!();
    let w = World::new("image");
    let other = w
        .scratch
        .busybox_image("other", &[("/etc/flavour", "other image")]);
    assert_recreates(&w, "", &format!("image = {other:?}"), "image");
    // Podman names it in full (docker.io/…).
    let shown = inspect(&w.name, "{{.Config.Image}}");
    assert_eq!(shown.trim_start_matches("docker.io/"), other);
    assert_eq!(w.exec("cat /etc/flavour"), "other image");
}

#[test]
fn a_changed_command_recreates_the_container() {
    needs_docker!();
    let w = World::new("command");
    assert_recreates(
        &w,
        r#"command = "sleep 1000""#,
        r#"command = "sleep 1001""#,
        "command",
    );
    assert_eq!(w.exec("tr '\\0' ' ' < /proc/1/cmdline"), "sleep 1001");
}

#[test]
fn an_added_env_variable_recreates_the_container() {
    needs_docker!();
    let w = World::new("env-added");
    assert_recreates(
        &w,
        r#"env = { A = "1" }"#,
        r#"env = { A = "1", B = 2 }"#,
        "env.B",
    );
    assert_eq!(w.exec("echo $A-$B"), "1-2");
}

#[test]
fn a_removed_env_variable_recreates_the_container() {
    needs_docker!();
    let w = World::new("env-removed");
    assert_recreates(
        &w,
        r#"env = { A = "1", B = "2" }"#,
        r#"env = { A = "1" }"#,
        "env.B",
    );
    assert_eq!(w.exec("echo $A-${B-unset}"), "1-unset");
}

#[test]
fn a_changed_volume_recreates_the_container() {
    needs_docker!();
    let w = World::new("volumes");
    let host = w.profiles.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("hello.txt"), "from the host").unwrap();
    assert_recreates(&w, "", r#"volumes = ["./shared:/srv/shared:ro"]"#, "mounts");
    assert_eq!(w.exec("cat /srv/shared/hello.txt"), "from the host");
    assert_eq!(
        inspect(&w.name, "{{range .Mounts}}{{.Source}} {{.RW}}{{end}}"),
        format!("{} false", host.display())
    );
}

#[test]
fn changed_ports_recreate_the_container() {
    needs_docker!();
    let w = World::new("ports");
    let (first, second) = (free_port(), free_port());
    let web = r#"command = ["httpd", "-f", "-p", "80", "-h", "/www"]"#;
    w.write(&format!("{web}\nports = [\"127.0.0.1:{first}:80\"]"));
    w.up().code(0);
    assert!(http_get(first).ends_with(PAGE));

    assert_recreates(
        &w,
        &format!("{web}\nports = [\"127.0.0.1:{first}:80\"]"),
        &format!("{web}\nports = [\"127.0.0.1:{second}:80\"]"),
        "ports",
    );
    assert!(http_get(second).ends_with(PAGE), "the new port serves");
    assert!(!listening(first), "the old port is closed");
}

#[test]
fn a_changed_device_recreates_the_container() {
    needs_docker!();
    let w = World::new("devices");
    assert_recreates(&w, "", r#"devices = ["/dev/null:/dev/xnull"]"#, "devices");
    assert_eq!(
        w.exec("test -c /dev/xnull && echo a character device"),
        "a character device"
    );
}

#[test]
fn a_changed_shm_size_recreates_the_container() {
    needs_docker!();
    let w = World::new("shm");
    assert_recreates(
        &w,
        r#"shm_size = "64M""#,
        r#"shm_size = "128M""#,
        "shm_size",
    );
    assert_eq!(
        inspect(&w.name, "{{.HostConfig.ShmSize}}"),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        w.exec("df -k /dev/shm | tail -n 1 | awk '{print $2}'"),
        "131072"
    );
}

#[test]
fn a_changed_network_recreates_the_container() {
    needs_docker!();
    let w = World::new("network");
    w.write("");
    w.up().code(0);
    assert!(
        w.exec("ls /sys/class/net").contains("eth0"),
        "bridge gives an eth0"
    );

    assert_recreates(&w, "", r#"network = "none""#, "network_mode");
    assert_eq!(inspect(&w.name, "{{.HostConfig.NetworkMode}}"), "none");
    assert_eq!(w.exec("ls /sys/class/net"), "lo", "no network but loopback");

    assert_recreates(
        &w,
        r#"network = "none""#,
        r#"network = "host""#,
        "network_mode",
    );
    assert_eq!(inspect(&w.name, "{{.HostConfig.NetworkMode}}"), "host");
    // The host's own interfaces (not the veths that other tests' containers
    // come and go with).
    let seen = w.exec("ls /sys/class/net");
    let seen: Vec<&str> = seen.split_whitespace().collect();
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("the host's interfaces")
        .map(|e| {
            e.expect("an interface")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| !n.starts_with("veth"))
        .collect();
    assert!(host.len() > 1, "the host has more than loopback: {host:?}");
    for interface in &host {
        assert!(
            seen.contains(&interface.as_str()),
            "{interface} in {seen:?}"
        );
    }
}

#[test]
fn a_named_network_that_does_not_exist_is_an_error_at_its_key_and_nothing_is_made() {
    needs_docker!();
    let w = World::new("named-network");
    let net = w.scratch.name("net");
    w.write(&format!("network = {net:?}"));
    let out = w.up();
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains(&format!("network `{net}` does not exist on this engine")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("app.toml:"), "located: {}", out.stderr);
    assert!(
        out.stderr.contains(&format!("docker network create {net}")),
        "{}",
        out.stderr
    );
    assert_eq!(try_docker(&["inspect", &w.name]), None, "no container made");

    // Once it exists, the container joins it.
    docker(&["network", "create", &net]);
    struct Network(String);
    impl Drop for Network {
        fn drop(&mut self) {
            let _ = try_docker(&["network", "rm", &self.0]);
        }
    }
    let _network = Network(net.clone());
    w.up().code(0);
    // (Podman 4's HostConfig.NetworkMode says `bridge`; its networks list says which.)
    assert_eq!(
        inspect(
            &w.name,
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}"
        ),
        net
    );
    let again = w.up().code(0);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    // Before the network goes, its container does.
    let _ = try_docker(&["rm", "-f", &w.name]);
}

/// `[gpus] devices = [..]` in `devices` mode on the fake host.
fn gpu_profile(index: u32) -> String {
    format!("[gpus]\ndevices = [{index}]\nmode = \"devices\"")
}

#[test]
fn other_gpus_recreate_the_container_with_the_new_gpu() {
    needs_docker!();
    let w = World::new("gpus");
    let host = FakeGpuHost::builder().gpus(2).build();
    w.set_args(host.args());
    let (gpu0, gpu1) = (&host.gpus[0], &host.gpus[1]);

    w.write(&gpu_profile(0));
    w.up().code(0);
    assert_eq!(w.exec("echo $NVIDIA_VISIBLE_DEVICES"), gpu0.uuid);

    assert_recreates(&w, &gpu_profile(0), &gpu_profile(1), &gpu1.uuid);
    assert_eq!(w.exec("echo $NVIDIA_VISIBLE_DEVICES"), gpu1.uuid);
    let node = |gpu: &crate::support::fake_gpu::FakeGpu| format!("/dev/nvidia{}", gpu.minor);
    assert_eq!(
        w.exec(&format!("test -c {} && echo present", node(gpu1))),
        "present",
        "the new GPU's device node"
    );
    assert_eq!(
        w.exec(&format!("test -e {} || echo absent", node(gpu0))),
        "absent",
        "not the old GPU's"
    );
    assert_eq!(
        inspect(&w.name, "{{index .Config.Labels \"launch.gpus\"}}"),
        gpu1.uuid
    );
}

#[test]
fn a_driver_upgrade_recreates_the_container_with_the_new_libraries() {
    needs_docker!();
    let w = World::new("driver");
    let old = FakeGpuHost::builder()
        .gpus(2)
        .driver_version("550.54.15")
        .build();
    let new = FakeGpuHost::builder()
        .gpus(2)
        .driver_version("560.35.03")
        .build();

    w.set_args(old.args());
    w.write(&gpu_profile(0));
    w.up().code(0);
    let id = w.id();
    assert!(
        w.exec("ls /usr/local/nvidia/lib64")
            .contains("libcuda.so.550.54.15")
    );

    w.set_args(new.args());
    let plan = w.plan().code(4);
    assert!(
        plan.stdout.contains("driver_version") && plan.stdout.contains("560.35.03"),
        "{}",
        show(&plan)
    );
    let up = w.up().code(0);
    assert!(up.stdout.contains("recreated"), "{}", show(&up));
    assert_ne!(w.id(), id, "a new driver means a new container");
    w.assert_alone_and_running();
    let libs = w.exec("ls /usr/local/nvidia/lib64");
    assert!(
        libs.contains("libcuda.so.560.35.03") && !libs.contains("550.54.15"),
        "{libs}"
    );
    assert_eq!(
        inspect(&w.name, "{{index .Config.Labels \"launch.driver\"}}"),
        "560.35.03"
    );
    assert_eq!(w.exec("echo $NVIDIA_VISIBLE_DEVICES"), new.gpus[0].uuid);
}

#[test]
fn a_bind_mount_point_alone_does_not_block_a_recreate() {
    needs_docker!();
    // Docker creates mount points missing from the image (/srv/cache/models
    // here) in the container's writable layer, so `docker diff` lists them
    // and their parent folders; they hold nothing of the user's. /data is in
    // the image already.
    let w = World::new("bind-point");
    let volumes = r#"volumes = [
  { source = "./data", target = "/data", create = true },
  { source = "./models", target = "/srv/cache/models", create = true },
]"#;
    w.write(volumes);
    w.up().code(0);
    w.exec("echo kept > /srv/cache/models/weights; echo scratch > /tmp/scratch");
    let diff = docker(&["diff", &w.name]);
    assert!(
        diff.contains("/srv/cache/models"),
        "docker lists the mount point: {diff}"
    );

    assert_recreates(
        &w,
        volumes,
        &format!("{volumes}\nenv = {{ RUN = \"2\" }}"),
        "env",
    );
    assert_eq!(
        w.exec("cat /srv/cache/models/weights"),
        "kept",
        "what was in the mount is still there"
    );
}

// ---- plan --------------------------------------------------------------------

#[test]
fn plan_exits_4_when_up_would_act_and_0_when_in_sync() {
    needs_docker!();
    let w = World::new("plan");
    w.write(r#"shm_size = "64M""#);
    let create = w.plan().code(4);
    assert!(
        create.stdout.contains("create and start"),
        "{}",
        show(&create)
    );
    assert!(w.containers().is_empty(), "plan creates nothing");

    w.up().code(0);
    let in_sync = w.plan().code(0);
    assert!(
        in_sync.stdout.contains("nothing to do"),
        "{}",
        show(&in_sync)
    );

    docker(&["stop", &w.name]);
    let start = w.plan().code(4);
    assert!(
        start.stdout.contains(&format!("{}: start", w.name)),
        "{}",
        show(&start)
    );
    w.up().code(0);

    let id = w.id();
    w.write(r#"shm_size = "1G""#);
    let change = w.plan().code(4);
    assert!(
        change.stdout.contains("recreate (changed: shm_size)")
            && change
                .stdout
                .contains(&format!("~ shm_size: {} → {}", 64u64 << 20, 1u64 << 30)),
        "{}",
        show(&change)
    );
    let json = w.launch(&["plan", "--json"]).code(4);
    let v: Value = serde_json::from_str(json.stdout.trim()).expect("one JSON object");
    assert_eq!(v["action"], "recreate");
    assert_eq!(v["name"], w.name.as_str());
    assert_eq!(w.id(), id, "plan touches nothing");
    assert_eq!(
        inspect(&w.name, "{{.HostConfig.ShmSize}}"),
        (64u64 << 20).to_string()
    );
}

// ---- a container launch did not make ----------------------------------------

#[test]
fn a_container_launch_did_not_make_is_never_touched() {
    needs_docker!();
    let w = World::new("foreign");
    docker(&["run", "-d", "--name", &w.name, &w.image, "sleep", "1000"]);
    let id = w.id();
    w.write("");

    let up = w.up().code(3);
    assert!(up.stderr.contains("launch did not create"), "{}", show(&up));
    assert_eq!(w.plan().code, 3, "plan refuses too");
    let down = launch(&w.profiles).args(["down", &w.name]).run().code(3);
    assert!(
        down.stderr.contains("not created by launch"),
        "{}",
        show(&down)
    );

    assert_eq!(w.id(), id, "the same container");
    w.assert_alone_and_running();
    assert_eq!(
        inspect(&w.name, "{{index .Config.Labels \"launch.managed\"}}"),
        ""
    );
}

// ---- concurrent runs ---------------------------------------------------------

#[test]
fn eight_concurrent_runs_make_one_container() {
    needs_docker!();
    let w = World::new("concurrent");
    w.write("");
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_launch"))
                .arg("up")
                .arg(&w.path)
                .env("NO_COLOR", "1")
                .env("LAUNCH_LOCK_DIR", lock_dir(&w.profiles))
                .env_remove("RUST_LOG")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("launch starts")
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("launch runs"))
        .collect();

    for out in &outputs {
        assert!(
            out.status.success(),
            "every run succeeds: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let created = outputs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stdout).contains("created and started"))
        .count();
    let unchanged = outputs
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stdout).contains("up to date"))
        .count();
    assert_eq!(
        (created, unchanged),
        (1, 7),
        "one run creates, the others find it"
    );
    w.assert_alone_and_running();
}

// ---- files changed inside the container -------------------------------------

/// Runs the container, changes a file that matters (and one in /tmp, which
/// does not), then changes the command so that `up` must recreate. Returns
/// the old container's id and the result of that `up`.
fn recreate_with_changed_files(w: &World, recreate: &str) -> (String, Output) {
    w.write(&format!("command = \"sleep 1000\"\n{recreate}"));
    w.up().code(0);
    w.exec("echo precious > /root/notes.txt; echo scratch > /tmp/scratch.txt");
    let id = w.id();
    w.write(&format!("command = \"sleep 1001\"\n{recreate}"));
    (id, w.up())
}

#[test]
fn changed_files_refuse_a_recreate_by_default() {
    needs_docker!();
    let w = World::new("refuse");
    let (id, out) = recreate_with_changed_files(&w, "");
    let out = out.code(3);
    assert!(
        out.stderr.contains("/root/notes.txt"),
        "names what would be lost: {}",
        show(&out)
    );
    assert!(
        !out.stderr.contains("/tmp"),
        "scratch space does not count: {}",
        show(&out)
    );
    assert!(
        out.stderr.contains("changed_files"),
        "says how to go on: {}",
        show(&out)
    );
    assert_eq!(w.id(), id, "the old container stays");
    w.assert_alone_and_running();
    assert_eq!(w.exec("cat /root/notes.txt"), "precious");
}

#[test]
fn changed_files_are_snapshotted_to_an_image_before_a_recreate() {
    needs_docker!();
    let w = World::new("snapshot");
    let (id, out) = recreate_with_changed_files(&w, "[recreate]\nchanged_files = \"snapshot\"");
    let out = out.code(0);
    let prefix = format!("launch-snapshots/{}:", w.name);
    let snapshot = out
        .stdout
        .split_whitespace()
        .find(|word| word.starts_with(&prefix))
        .unwrap_or_else(|| panic!("the output names the snapshot {prefix}…: {}", show(&out)))
        .to_string();
    w.scratch.track_image(&snapshot);
    assert_ne!(w.id(), id, "recreated");
    w.assert_alone_and_running();
    assert_eq!(
        w.exec("test -e /root/notes.txt || echo gone"),
        "gone",
        "the new container starts clean"
    );

    let peek = w.scratch.name("peek");
    let saved = docker(&[
        "run",
        "--rm",
        "--name",
        &peek,
        &snapshot,
        "cat",
        "/root/notes.txt",
    ]);
    assert_eq!(saved, "precious", "the snapshot holds the changed file");
}

#[test]
fn changed_files_are_discarded_when_the_profile_says_so() {
    needs_docker!();
    let w = World::new("discard");
    let (id, out) = recreate_with_changed_files(&w, "[recreate]\nchanged_files = \"discard\"");
    let out = out.code(0);
    assert!(
        out.stdout.contains("went with any files changed in it"),
        "{}",
        show(&out)
    );
    assert_ne!(w.id(), id, "recreated");
    w.assert_alone_and_running();
    assert_eq!(w.exec("test -e /root/notes.txt || echo gone"), "gone");
}

/// What `pip install torch` leaves in a writable layer: tens of thousands
/// of files, which the engine takes a while to delete.
const PIP_INSTALL: &str = "mkdir -p /root/site && cd /root/site && seq 1 40000 | xargs touch";

#[test]
fn a_recreate_returns_while_the_engine_deletes_a_big_old_layer_and_down_waits_for_it() {
    needs_docker!();
    let w = World::new("big-layer");
    let volume = format!("{}-data", w.name);
    w.scratch.track_volume(&volume);
    let body = |command: &str| {
        format!(
            "command = \"{command}\"\nvolumes = [\"{volume}:/data\"]\n[recreate]\nchanged_files = \"discard\""
        )
    };
    w.write(&body("sleep 1000"));
    w.up().code(0);
    let old = w.id();
    w.exec(PIP_INSTALL);

    w.write(&body("sleep 1001"));
    let out = w.up().code(0);
    let aside = format!("{}-launch-old-{}", w.name, &old[..12]);
    if crate::support::docker::podman() {
        // Podman takes the container out of its database at once, so `up`
        // sees it gone, and deletes its files after launch has returned:
        // nothing of it stays in Podman's storage either.
        assert!(!out.stdout.contains("still deleting"), "{}", show(&out));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let stored = || {
            std::process::Command::new("podman")
                .args([
                    "ps",
                    "-a",
                    "--external",
                    "--no-trunc",
                    "--format",
                    "{{.ID}}",
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains(&old))
                .unwrap_or(false)
        };
        while stored() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert!(!stored(), "Podman left the old container's storage behind");
    } else {
        assert!(
            out.stdout.contains(&format!(
                "the engine is still deleting the old container's files; it goes on its own, as {aside}"
            )),
            "{}",
            show(&out)
        );
    }
    // launch has exited; the engine goes on with the removal it began.
    let state = try_docker(&["inspect", "-f", "{{.State.Status}}", &aside]);
    assert!(
        matches!(state.as_deref(), None | Some("removing")),
        "marked for removal, or gone: {state:?}"
    );

    // It is no leftover: a run meanwhile leaves it be and says nothing of it.
    let again = w.up().code(0);
    assert!(
        again.stdout.contains("up to date") && !again.stdout.contains(&aside),
        "{}",
        show(&again)
    );
    assert!(!again.stderr.contains("warning"), "{}", show(&again));

    // It mounts the volume too: `down --volumes` waits for it to go.
    w.down_volumes(&volume);
}

// ---- a recreate that fails rolls back ---------------------------------------

/// After a failed recreate: exit 1 saying so, the old container under its
/// name with its id, running, its spec unchanged, and nothing else left.
fn assert_rolled_back(w: &World, out: &Output, id: &str, hash: &str) {
    assert_eq!(out.code, 1, "{}", show(out));
    assert!(
        out.stderr.contains("recreating") && out.stderr.contains("back under its name"),
        "says it failed and rolled back: {}",
        show(out)
    );
    assert_eq!(w.id(), id, "the old container keeps its name");
    w.assert_alone_and_running();
    assert_eq!(
        inspect(&w.name, "{{index .Config.Labels \"launch.spec-hash\"}}"),
        hash,
        "as it was"
    );
}

#[test]
fn a_recreate_whose_port_is_taken_rolls_back_to_the_old_container() {
    needs_docker!();
    let w = World::new("rollback-port");
    w.write("");
    w.up().code(0);
    let id = w.id();
    let hash = inspect(&w.name, "{{index .Config.Labels \"launch.spec-hash\"}}");

    // Another container holds the port the new spec wants.
    let port = free_port();
    let holder = w.scratch.name("holder");
    docker(&[
        "run",
        "-d",
        "--name",
        &holder,
        "-p",
        &format!("127.0.0.1:{port}:80"),
        &w.image,
        "sleep",
        "1000",
    ]);
    w.write(&format!("ports = [\"127.0.0.1:{port}:80\"]"));
    let out = w.up();
    assert!(
        out.stderr.contains(&port.to_string()),
        "the engine's reason: {}",
        show(&out)
    );
    assert_rolled_back(&w, &out, &id, &hash);

    // Once the port is free, the same profile goes through.
    docker(&["rm", "-f", &holder]);
    w.up().code(0);
    assert_ne!(w.id(), id);
    w.assert_alone_and_running();
}

#[test]
fn a_recreate_whose_command_cannot_run_rolls_back() {
    needs_docker!();
    // A command that does not exist in the image: the engine creates the
    // container and fails to start it, on every machine.
    let w = World::new("rollback-start");
    w.write("");
    w.up().code(0);
    let id = w.id();
    let hash = inspect(&w.name, "{{index .Config.Labels \"launch.spec-hash\"}}");

    w.write("command = [\"/no/such/program\"]");
    let plan = w.plan().code(4);
    assert!(
        plan.stdout.contains("recreate (changed: command)"),
        "{}",
        show(&plan)
    );
    let out = w.up();
    assert!(
        out.stderr.contains("starting container") && out.stderr.contains("/no/such/program"),
        "the engine's reason: {}",
        show(&out)
    );
    assert_rolled_back(&w, &out, &id, &hash);
    assert_eq!(
        inspect(&w.name, "{{json .Config.Cmd}}"),
        "[\"sleep\",\"1000\"]"
    );
}

#[test]
fn a_recreate_that_cannot_move_the_old_container_aside_leaves_it_running() {
    needs_docker!();
    let w = World::new("rollback-aside");
    w.write("");
    w.up().code(0);
    let id = w.id();
    let hash = inspect(&w.name, "{{index .Config.Labels \"launch.spec-hash\"}}");

    // The name the old container would be renamed to is taken.
    let aside = format!("{}-launch-old-{}", w.name, &id[..12]);
    docker(&["create", "--name", &aside, &w.image, "sleep", "1"]);
    w.write("env = { NEW = \"1\" }");
    let out = w.up();
    assert_eq!(out.code, 1, "{}", show(&out));
    assert!(
        out.stderr.contains("renaming") && out.stderr.contains("back under its name"),
        "{}",
        show(&out)
    );
    assert_eq!(w.id(), id);
    assert_eq!(w.status(), "running", "started again");
    let mut expected = vec![w.name.clone(), aside];
    expected.sort();
    assert_eq!(w.containers(), expected, "nothing new was left behind");
    assert_eq!(
        inspect(&w.name, "{{index .Config.Labels \"launch.spec-hash\"}}"),
        hash
    );
}

// ---- a run killed mid-recreate ------------------------------------------------

/// What a run killed right after moving the old container aside leaves,
/// made by hand: the container stopped and renamed `NAME-launch-old-<id>`.
/// Returns that name.
fn kill_mid_recreate(w: &World) -> String {
    let id = w.id();
    docker(&["stop", "-t", "0", &w.name]);
    let aside = format!("{}-launch-old-{}", w.name, &id[..12]);
    docker(&["rename", &w.name, &aside]);
    aside
}

#[test]
fn a_container_left_aside_by_a_killed_run_gets_its_name_back_with_its_files() {
    needs_docker!();
    let w = World::new("killed-aside");
    w.write("command = \"sleep 1000\"");
    w.up().code(0);
    w.exec("echo precious > /root/notes.txt");
    let id = w.id();
    let aside = kill_mid_recreate(&w);

    // The profile is unchanged: the old container is back, started.
    let out = w.up().code(0);
    assert!(
        out.stdout.contains(&aside) && out.stdout.contains("has its name back"),
        "says what it repaired: {}",
        show(&out)
    );
    assert_eq!(w.id(), id, "the same container, not a fresh one");
    w.assert_alone_and_running();
    assert_eq!(w.exec("cat /root/notes.txt"), "precious");

    // The profile changed: back under its name, and the recreate is
    // refused as for any container with changed files.
    let aside = kill_mid_recreate(&w);
    w.write("command = \"sleep 1001\"");
    let out = w.up().code(3);
    assert!(
        out.stderr.contains("/root/notes.txt") && out.stderr.contains("changed_files"),
        "{}",
        show(&out)
    );
    assert_eq!(w.id(), id);
    assert_eq!(
        w.containers(),
        std::slice::from_ref(&w.name),
        "no leftover of {aside}"
    );
    docker(&["start", &w.name]);
    assert_eq!(w.exec("cat /root/notes.txt"), "precious");
}

#[test]
fn a_leftover_with_changed_files_stays_and_shows_in_status_until_a_snapshot_keeps_them() {
    needs_docker!();
    let w = World::new("killed-new");
    w.write("command = \"sleep 1000\"");
    w.up().code(0);
    w.exec("echo precious > /root/notes.txt");
    let old = w.id();
    let labels = inspect(&w.name, "{{json .Config.Labels}}");
    let aside = kill_mid_recreate(&w);
    // Killed after making the new container, before starting it: a
    // container with the same launch labels, created, never started.
    let labels: serde_json::Map<String, Value> = serde_json::from_str(&labels).expect("labels");
    let mut create = vec!["create".to_string(), "--name".into(), w.name.clone()];
    for (k, v) in &labels {
        create.push("--label".into());
        create.push(format!("{k}={}", v.as_str().unwrap_or_default()));
    }
    create.extend([w.image.clone(), "sleep".into(), "1000".into()]);
    docker(&create.iter().map(String::as_str).collect::<Vec<_>>());

    let out = w.up().code(0);
    assert!(
        out.stdout.contains("started"),
        "the half-made container is started: {}",
        show(&out)
    );
    assert!(
        out.stderr
            .contains(&format!("warning: {}: kept {aside}", w.name))
            && out.stderr.contains("/root/notes.txt"),
        "the leftover stays, with why: {}",
        show(&out)
    );
    assert_eq!(w.status(), "running");
    assert_eq!(inspect(&aside, "{{.Id}}"), old, "the old container stays");

    // status marks it as a leftover of the name.
    let out = w.launch(&["status", "--json"]).code(0);
    let rows: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(
        rows.len(),
        2,
        "the container and its leftover: {}",
        show(&out)
    );
    let leftover = rows
        .iter()
        .find(|r| r["name"] == aside.as_str())
        .unwrap_or_else(|| panic!("a row for {aside}: {}", show(&out)));
    assert_eq!(leftover["leftover_of"], w.name.as_str());
    let table = w.launch(&["status"]).code(0);
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with(&aside) && l.contains(&format!("leftover of {}", w.name))),
        "{}",
        show(&table)
    );

    // Asked to snapshot changed files, up commits the leftover, then removes it.
    w.write("command = \"sleep 1000\"\n[recreate]\nchanged_files = \"snapshot\"");
    let out = w.up().code(0);
    let prefix = format!("launch-snapshots/{}:", w.name);
    let snapshot = out
        .stdout
        .split_whitespace()
        .find(|word| word.starts_with(&prefix))
        .unwrap_or_else(|| panic!("names the snapshot {prefix}…: {}", show(&out)))
        .to_string();
    w.scratch.track_image(&snapshot);
    w.assert_alone_and_running();
    let peek = w.scratch.name("peek");
    let saved = docker(&[
        "run",
        "--rm",
        "--name",
        &peek,
        &snapshot,
        "cat",
        "/root/notes.txt",
    ]);
    assert_eq!(saved, "precious", "the snapshot holds the changed file");
}

// ---- down ---------------------------------------------------------------------

#[test]
fn down_removes_the_container_and_keeps_named_volumes_unless_asked() {
    needs_docker!();
    let w = World::new("down");
    let volume = format!("{}-data", w.name);
    w.scratch.track_volume(&volume);
    w.write(&format!("volumes = [\"{volume}:/data\"]"));
    w.up().code(0);
    w.exec("echo kept > /data/file");

    let out = w.launch(&["down"]).code(0);
    assert!(out.stdout.contains("stopped and removed"), "{}", show(&out));
    assert!(w.containers().is_empty(), "the container is gone");
    assert!(
        try_docker(&["volume", "inspect", &volume]).is_some(),
        "the volume stays"
    );

    w.up().code(0);
    assert_eq!(
        w.exec("cat /data/file"),
        "kept",
        "a new container finds the data"
    );

    w.down_volumes(&volume);

    let again = w.launch(&["down"]).code(0);
    assert!(
        again.stdout.contains("no such container"),
        "{}",
        show(&again)
    );
}

#[test]
fn down_volumes_names_the_volume_it_kept_and_the_container_using_it() {
    needs_docker!();
    let w = World::new("down-inuse");
    let shared = format!("{}-shared", w.name);
    let own = format!("{}-own", w.name);
    w.scratch.track_volume(&shared);
    w.scratch.track_volume(&own);
    w.write(&format!("volumes = [\"{shared}:/shared\", \"{own}:/own\"]"));
    w.up().code(0);
    // Another container uses the shared volume.
    let holder = w.scratch.name("holder");
    docker(&[
        "create",
        "--name",
        &holder,
        "-v",
        &format!("{shared}:/x"),
        &w.image,
        "sleep",
        "1",
    ]);

    let out = launch(&w.profiles)
        .args(["down", "--volumes", &w.name])
        .run()
        .code(1);
    assert!(
        out.stdout.contains("stopped and removed")
            && out.stdout.contains(&format!("volumes removed: {own}"))
            && !out.stdout.contains(&shared),
        "removed the container and only the free volume: {}",
        show(&out)
    );
    assert!(
        out.stderr.contains(&format!(
            "volume {shared} kept: in use by container {holder}"
        )),
        "names the volume that stayed and who holds it: {}",
        show(&out)
    );
    assert!(w.containers().is_empty(), "the container is gone");
    assert!(try_docker(&["volume", "inspect", &own]).is_none());
    assert!(
        try_docker(&["volume", "inspect", &shared]).is_some(),
        "the volume in use stays"
    );

    // The same in JSON.
    docker(&["rm", "-f", &holder]);
    w.up().code(0);
    docker(&[
        "create",
        "--name",
        &holder,
        "-v",
        &format!("{shared}:/x"),
        &w.image,
        "sleep",
        "1",
    ]);
    let out = launch(&w.profiles)
        .args(["down", "--volumes", "--json", &w.name])
        .run()
        .code(1);
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(
        v["volumes_removed"],
        serde_json::json!([own]),
        "{}",
        show(&out)
    );
    assert_eq!(v["volumes_kept"][0]["name"], shared.as_str());
    assert!(
        v["volumes_kept"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&holder)),
        "{}",
        show(&out)
    );
    assert_eq!(v["exit_code"], 1);
}

// ---- engine, folders, output --------------------------------------------------

#[test]
fn an_unreachable_engine_is_a_runtime_error_naming_the_address() {
    // Needs no daemon: these addresses never answer.
    let profiles = Profiles::new();
    let path = profiles.write("app.toml", "image = \"busybox\"\npull = \"never\"\n");
    for host in ["unix:///nonexistent.sock", "tcp://127.0.0.1:1"] {
        for command in [&["up"][..], &["plan"], &["status"], &["down"]] {
            let out = Launch::new()
                .args(["--host", host])
                .args(command)
                .arg(&path)
                .run();
            assert_eq!(out.code, 1, "{command:?} with {host}: {}", show(&out));
            assert!(
                out.stderr
                    .contains(&format!("cannot reach the container engine at {host}")),
                "{command:?} names {host}: {}",
                show(&out)
            );
        }
    }
}

#[test]
fn a_folder_with_one_bad_profile_applies_the_good_ones_and_exits_2() {
    needs_docker!();
    let s = Scratch::new("folder");
    let image = s.busybox_image("img", &[]);
    let (a, b) = (s.name("a"), s.name("b"));
    let dir = Profiles::new();
    for name in [&a, &b] {
        dir.write(
            &format!("{name}.toml"),
            &format!(
                "image = {image:?}\npull = \"never\"\ncommand = \"sleep 1000\"\nstop_timeout = 0\n"
            ),
        );
    }
    dir.write(
        "broken.toml",
        &format!("image = {image:?}\nshm_sise = \"1G\"\n"),
    );

    let out = launch(&dir).arg("up").arg(dir.path()).run().code(2);
    assert!(
        out.stderr.contains("broken.toml") && out.stderr.contains("shm_sise"),
        "{}",
        show(&out)
    );
    for name in [&a, &b] {
        assert!(
            out.stdout.contains(&format!("{name}: created and started")),
            "{}",
            show(&out)
        );
        assert_eq!(inspect(name, "{{.State.Status}}"), "running");
    }
}

#[test]
fn up_json_prints_one_object_per_profile_with_the_action_taken() {
    needs_docker!();
    let s = Scratch::new("json");
    let image = s.busybox_image("img", &[]);
    let (a, b) = (s.name("a"), s.name("b"));
    let dir = Profiles::new();
    let write = |name: &str, command: &str| {
        dir.write(
            &format!("{name}.toml"),
            &format!(
                "image = {image:?}\npull = \"never\"\ncommand = {command:?}\nstop_timeout = 0\n"
            ),
        )
    };
    write(&a, "sleep 1000");
    write(&b, "sleep 1000");
    let actions = || -> Vec<(String, String)> {
        let out = launch(&dir)
            .args(["up", "--json"])
            .arg(dir.path())
            .run()
            .code(0);
        let mut seen: Vec<(String, String)> = out
            .stdout
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert_eq!(v["exit_code"], 0, "{line}");
                assert!(v["id"].as_str().is_some_and(|id| id.len() == 64), "{line}");
                (
                    v["name"].as_str().unwrap().to_string(),
                    v["action"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        seen.sort();
        seen
    };
    let pair = |x: &str, y: &str| vec![(a.clone(), x.to_string()), (b.clone(), y.to_string())];

    assert_eq!(actions(), pair("create", "create"));
    assert_eq!(actions(), pair("nothing", "nothing"));
    write(&b, "sleep 1001");
    docker(&["stop", &a]);
    assert_eq!(actions(), pair("start", "recreate"));
}

#[test]
fn status_json_shows_state_gpus_image_profile_and_drift() {
    needs_docker!();
    let w = World::new("status");
    let host = FakeGpuHost::builder().gpus(2).build();
    w.set_args(host.args());
    w.write(&format!("command = \"sleep 1000\"\n{}", gpu_profile(1)));
    w.up().code(0);

    let status = || -> Value {
        let out = w.launch(&["status", "--json"]).code(0);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "one object for the one profile: {}",
            show(&out)
        );
        serde_json::from_str(lines[0]).expect("JSON")
    };
    let v = status();
    assert_eq!(v["name"], w.name.as_str());
    assert_eq!(v["id"], w.id().as_str());
    assert_eq!(v["state"], "running");
    assert_eq!(v["image"], w.image.as_str());
    assert_eq!(v["gpus"], serde_json::json!([host.gpus[1].uuid]));
    assert_eq!(v["driver"], host.driver_version.as_str());
    assert_eq!(v["profile"], w.path.display().to_string().as_str());
    assert_eq!(v["drift"], "in sync");

    docker(&["pause", &w.name]);
    w.write(&format!("command = \"sleep 1001\"\n{}", gpu_profile(1)));
    let v = status();
    assert_eq!(v["state"], "paused");
    assert_eq!(v["drift"], "changed: command");

    // The table says the same.
    let table = w.launch(&["status"]).code(0);
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{} ", w.name)))
        .unwrap_or_else(|| panic!("a row for {}: {}", w.name, show(&table)));
    assert!(
        row.contains("paused") && row.contains("changed: command"),
        "{row}"
    );
}

#[test]
fn up_wait_returns_once_the_healthcheck_passes() {
    needs_docker!();
    not_on_podman!(
        "Podman runs healthchecks from systemd timers, and this machine's Podman service has no systemd: health stays `starting`"
    );
    let w = World::new("wait");
    w.write(
        r#"command = ["sh", "-c", "sleep 2; touch /tmp/ready; sleep 1000"]
[healthcheck]
cmd = "test -f /tmp/ready"
interval = "1s"
retries = 30"#,
    );
    let out = w.launch(&["up", "--wait", "--wait-timeout", "60"]).code(0);
    assert!(out.stdout.contains("created and started"), "{}", show(&out));
    // Returned only once Docker saw it healthy.
    assert_eq!(inspect(&w.name, "{{.State.Health.Status}}"), "healthy");
}

#[test]
fn up_wait_fails_for_a_container_that_does_not_stay_up() {
    needs_docker!();
    let w = World::new("waitfail");
    w.write(r#"command = ["sh", "-c", "exit 3"]"#);
    let out = w.launch(&["up", "--wait", "--wait-timeout", "20"]).code(1);
    assert!(
        out.stderr.contains("not ready after --wait: state exited"),
        "{}",
        show(&out)
    );
}
