//! GPU health against a real Docker daemon and the fake GPU host
//! (docs/architecture.md, GPU health): containers made by an older launch
//! are kept, a pending reboot blocks recreates, an image that needs a newer
//! CUDA is refused, and a probe that fails restarts the container once.

use std::path::PathBuf;

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, docker, inspect};
use crate::support::fake_gpu::{
    FakeGpuHost, FakeGpuHostBuilder, NVIDIA_SMI_FAILS, NVIDIA_SMI_HANGS,
};
use serde_json::Value;

/// One test's world: an offline busybox image, a fake GPU host, one
/// profile the test rewrites. All removed on drop.
struct World {
    scratch: Scratch,
    profiles: Profiles,
    host: FakeGpuHost,
    image: String,
    name: String,
    path: PathBuf,
}

impl World {
    /// `files` and `changes` as in `Scratch::busybox_image_with`.
    fn new(
        test: &str,
        host: FakeGpuHostBuilder,
        files: &[(&str, &str)],
        changes: &[&str],
    ) -> World {
        let scratch = Scratch::new(test);
        let image = scratch.busybox_image_with("img", files, changes);
        let name = scratch.name("gpu");
        let profiles = Profiles::new();
        let path = profiles.path().join("gpu.toml");
        World {
            scratch,
            profiles,
            host: host.build(),
            image,
            name,
            path,
        }
    }

    /// A `devices`-mode profile for GPU 0 (what runs without a toolkit),
    /// plus `extra` lines.
    fn write(&self, extra: &str) {
        let text = format!(
            "image = {:?}\nname = {:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n{extra}\n[gpus]\ndevices = [0]\nmode = \"devices\"\n",
            self.image, self.name
        );
        std::fs::write(&self.path, text).expect("write the profile");
    }

    fn launch(&self, command: &[&str]) -> Output {
        self.launch_on(&self.host, command)
    }

    /// `launch` on another fake host (a driver upgraded since).
    fn launch_on(&self, host: &FakeGpuHost, command: &[&str]) -> Output {
        Launch::new()
            .env("LAUNCH_LOCK_DIR", self.profiles.path().join("locks"))
            .args(command)
            .args(host.args())
            .arg(&self.path)
            .run()
    }

    fn id(&self) -> String {
        inspect(&self.name, "{{.Id}}")
    }

    fn started_at(&self) -> String {
        inspect(&self.name, "{{.State.StartedAt}}")
    }

    fn label(&self, key: &str) -> String {
        inspect(
            &self.name,
            &format!("{{{{index .Config.Labels \"{key}\"}}}}"),
        )
    }
}

fn show(o: &Output) -> String {
    format!("--- stdout\n{}\n--- stderr\n{}", o.stdout, o.stderr)
}

// ---- the spec's schema ---------------------------------------------------------

/// The container an older launch (schema 1) made from this profile: the
/// rendered `docker run` line without schema 2's defaults, with schema 1's
/// spec and hash in its labels.
fn run_as_schema_1(w: &World) {
    let rendered: Value =
        serde_json::from_str(&w.launch(&["render", "--format", "json"]).code(0).stdout)
            .expect("JSON");
    let now = launch::spec::ContainerSpec::from_label(
        rendered["labels"]["launch.spec"]
            .as_str()
            .expect("the spec label"),
    )
    .expect("a spec");
    assert_eq!(now.schema, launch::spec::SCHEMA);
    let mut old = now.clone();
    old.schema = 1;
    old.env.remove("CUDA_DEVICE_ORDER");

    let line = w
        .launch(&["render", "--format", "docker-run"])
        .code(0)
        .stdout;
    let line = line
        .replace("  -e 'CUDA_DEVICE_ORDER=PCI_BUS_ID' \\\n", "")
        .replace(&now.canonical_json(), &old.canonical_json())
        .replace(&now.hash(), &old.hash());
    w.scratch.track_container(&w.name);
    crate::support::docker::sh(&line);
    assert_eq!(w.label("launch.spec-hash"), old.hash());
}

#[test]
fn a_container_made_by_an_older_launch_keeps_running_until_a_real_change() {
    needs_docker!();
    not_on_podman!(crate::support::docker::CLI_DEVICES_ON_PODMAN);
    let w = World::new("schema", FakeGpuHost::builder().gpus(1), &[], &[]);
    w.write("");
    run_as_schema_1(&w);
    let id = w.id();

    let plan = w.launch(&["plan"]).code(0);
    assert!(
        plan.stdout.contains("nothing to do")
            && plan
                .stdout
                .contains("made by an older launch; new defaults apply at the next recreate"),
        "{}",
        show(&plan)
    );
    let up = w.launch(&["up"]).code(0);
    assert_eq!(w.id(), id, "not recreated for new defaults: {}", show(&up));
    let status = w.launch(&["status"]).code(0);
    assert!(
        status.stdout.contains("made by an older launch"),
        "{}",
        show(&status)
    );
    let env = inspect(&w.name, "{{json .Config.Env}}");
    assert!(!env.contains("CUDA_DEVICE_ORDER"), "{env}");

    // --force-recreate brings it to the current schema.
    let up = w.launch(&["up", "--force-recreate"]).code(0);
    assert_ne!(w.id(), id, "{}", show(&up));
    let spec = launch::spec::ContainerSpec::from_label(&w.label("launch.spec")).expect("a spec");
    assert_eq!(spec.schema, launch::spec::SCHEMA);
    assert_eq!(
        docker(&["exec", &w.name, "sh", "-c", "echo $CUDA_DEVICE_ORDER"]),
        "PCI_BUS_ID"
    );
}

// ---- pending reboot -------------------------------------------------------------

#[test]
fn a_pending_reboot_refuses_the_recreate_and_leaves_the_old_container_running() {
    needs_docker!();
    let w = World::new("reboot", FakeGpuHost::builder().gpus(1), &[], &[]);
    w.write("");
    w.launch(&["up"]).code(0);
    let (id, started) = (w.id(), w.started_at());

    // The driver's libraries were upgraded; the old kernel module still runs.
    let upgraded = FakeGpuHost::builder()
        .gpus(1)
        .driver_version("560.35.03")
        .kernel_module_version(&w.host.driver_version)
        .build();
    for command in [&["up"][..], &["plan"], &["render"]] {
        let out = w.launch_on(&upgraded, command).code(1);
        assert!(
            out.stderr.contains("a reboot is pending")
                && out.stderr.contains("kernel module is 550.54.15")
                && out.stderr.contains("560.35.03"),
            "{command:?}: {}",
            show(&out)
        );
    }
    assert_eq!((w.id(), w.started_at()), (id.clone(), started.clone()));
    assert_eq!(inspect(&w.name, "{{.State.Status}}"), "running");

    // A container that would not change is left alone, with a warning.
    w.host.set_kernel_module_version("560.35.03");
    let out = w.launch(&["up"]).code(0);
    assert!(out.stderr.contains("a reboot is pending"), "{}", show(&out));
    assert_eq!((w.id(), w.started_at()), (id, started));
}

// ---- CUDA requirement -----------------------------------------------------------

#[test]
fn an_image_that_needs_a_newer_cuda_is_refused_with_both_versions() {
    needs_docker!();
    let w = World::new(
        "cuda",
        FakeGpuHost::builder().gpus(1).cuda_version(12040),
        &[],
        &["ENV NVIDIA_REQUIRE_CUDA=cuda>=99.0 brand=tesla,driver>=470,driver<471"],
    );
    w.write("");
    let out = w.launch(&["up"]).code(3);
    assert!(
        out.stderr.contains("needs CUDA ≥ 99.0")
            && out.stderr.contains("driver 550.54.15 supports 12.4")
            && out.stderr.contains("require_cuda = false"),
        "{}",
        show(&out)
    );
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &format!("name=^{}$", w.name)]),
        "",
        "nothing was created"
    );

    // `require_cuda = false` starts it anyway.
    let text = std::fs::read_to_string(&w.path).expect("profile");
    std::fs::write(&w.path, format!("{text}require_cuda = false\n")).expect("write");
    w.launch(&["up"]).code(0);
    assert_eq!(inspect(&w.name, "{{.State.Status}}"), "running");
}

#[test]
fn an_image_whose_cuda_the_driver_supports_starts() {
    needs_docker!();
    let w = World::new(
        "cuda-ok",
        FakeGpuHost::builder().gpus(1).cuda_version(12040),
        &[],
        &["ENV NVIDIA_REQUIRE_CUDA=cuda>=12.4"],
    );
    w.write("");
    w.launch(&["up"]).code(0);
    assert_eq!(inspect(&w.name, "{{.State.Status}}"), "running");
}

// ---- probe ----------------------------------------------------------------------

#[test]
fn a_probe_that_fails_restarts_the_container_once_and_a_healthy_one_is_left_alone() {
    needs_docker!();
    let w = World::new("probe", FakeGpuHost::builder().gpus(1), &[], &[]);
    w.write("");
    let text = std::fs::read_to_string(&w.path).expect("profile");
    std::fs::write(&w.path, format!("{text}probe = true\n")).expect("write");
    w.launch(&["up"]).code(0);
    let (id, started) = (w.id(), w.started_at());
    // Healthy: nothing.
    let out = w.launch(&["up"]).code(0);
    assert!(out.stdout.contains("up to date"), "{}", show(&out));
    assert_eq!(w.started_at(), started);

    // NVML fails inside (what a daemon-reload does): one restart.
    docker(&["exec", &w.name, "touch", NVIDIA_SMI_FAILS]);
    let out = w.launch(&["--json", "up"]).code(0);
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(report["action"], "restart", "{}", show(&out));
    assert_eq!(w.id(), id, "the same container");
    let restarted = w.started_at();
    assert_ne!(restarted, started, "started again");
    assert_eq!(inspect(&w.name, "{{.State.Status}}"), "running");

    // Healthy again: the next run changes nothing.
    docker(&["exec", &w.name, "rm", NVIDIA_SMI_FAILS]);
    let out = w.launch(&["up"]).code(0);
    assert!(out.stdout.contains("up to date"), "{}", show(&out));
    assert_eq!((w.id(), w.started_at()), (id, restarted));
}

#[test]
fn a_probe_that_times_out_is_a_warning_not_a_restart() {
    needs_docker!();
    let w = World::new("probe-hang", FakeGpuHost::builder().gpus(1), &[], &[]);
    w.write("");
    let text = std::fs::read_to_string(&w.path).expect("profile");
    std::fs::write(&w.path, format!("{text}probe = true\n")).expect("write");
    w.launch(&["up"]).code(0);
    let (id, started) = (w.id(), w.started_at());
    docker(&["exec", &w.name, "touch", NVIDIA_SMI_HANGS]);
    let begun = std::time::Instant::now();
    let out = w.launch(&["up"]).code(0);
    assert!(
        out.stdout.contains("up to date") && out.stderr.contains("did not answer within 5 s"),
        "{}",
        show(&out)
    );
    assert!(
        begun.elapsed() < std::time::Duration::from_secs(20),
        "bounded by the timeout"
    );
    assert_eq!((w.id(), w.started_at()), (id, started), "not restarted");
}
