//! `launch doctor` on the fake GPU host (docs/architecture.md, GPU health):
//! each check passes on a healthy host and fails (or warns) on a host
//! broken in that one way, with the fix in its message.

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::Scratch;
use crate::support::fake_gpu::{CdiSpec, FakeGpu, FakeGpuHost, FakeGpuHostBuilder, GONE_UUID};
use serde_json::Value;

/// `launch doctor` on the fake host. Without profiles in `extra`, a profile
/// of no container: other tests' containers on the shared daemon are not
/// judged.
fn doctor_on(host: &FakeGpuHost, extra: &[&str]) -> Output {
    let none = Profiles::new();
    let profile = none.write(
        "none.toml",
        "image = \"busybox\"\nname = \"lt-doctor-no-such-container\"\n",
    );
    let mut launch = Launch::new().arg("doctor").args(host.args()).args(extra);
    if !extra.iter().any(|a| a.ends_with(".toml")) {
        launch = launch.arg(&profile);
    }
    launch.run()
}

/// `doctor --json` on this host: its exit code and its document.
fn doctor_json(host: &FakeGpuHost, extra: &[&str]) -> (i32, Value) {
    let out = doctor_on(host, &[&["--json"], extra].concat());
    let doc = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", out.stdout, out.stderr));
    (out.code, doc)
}

/// The check named `name`.
fn check<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {doc}"))
}

fn healthy() -> FakeGpuHostBuilder {
    FakeGpuHost::builder().gpus(2)
}

/// On the healthy host the check is ok; on `broken` it has `status`, and
/// its message contains `says` and its fix `fix`. Exit 1 only for a fail.
fn assert_check(name: &str, broken: FakeGpuHostBuilder, status: &str, says: &str, fix: &str) {
    let (code, doc) = doctor_json(&healthy().build(), &[]);
    assert_eq!(check(&doc, name)["status"], "ok", "{doc}");
    assert_eq!(code, 0, "{doc}");

    let (code, doc) = doctor_json(&broken.build(), &[]);
    let c = check(&doc, name);
    assert_eq!(c["status"], status, "{c}");
    let message = c["message"].as_str().expect("message");
    assert!(message.contains(says), "{message}");
    let fixed = c["fix"].as_str().expect("a fix");
    assert!(fixed.contains(fix), "{fixed}");
    assert_eq!(doc["status"], status);
    assert_eq!(code, if status == "fail" { 1 } else { 0 }, "{doc}");
    // Every other check is still ok: the host is broken in one way.
    for other in doc["checks"].as_array().expect("checks") {
        if other["name"] != name {
            assert_eq!(other["status"], "ok", "{other}");
        }
    }
}

#[test]
fn a_healthy_fake_host_passes_every_check_in_text_and_json() {
    needs_docker!();
    let host = healthy().build();
    let out = doctor_on(&host, &[]).code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    for name in [
        "nvml",
        "kernel-module",
        "kernel-view",
        "device-nodes",
        "persistence-mode",
        "toolkit",
        "cdi-specs",
        "cgroup-driver",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("ok ") && l.contains(&format!(" {name}: "))),
            "{name}:\n{}",
            out.stdout
        );
    }
    let (_, doc) = doctor_json(&host, &[]);
    assert_eq!(doc["status"], "ok");
    let c = check(&doc, "device-nodes");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("nvidia-uvm major 510"),
        "{c}"
    );
    assert_eq!(
        check(&doc, "toolkit")["message"],
        "no NVIDIA Container Toolkit: devices mode will be used"
    );
    // The real daemon: its cgroup driver, from `docker info`.
    let driver = crate::support::docker::docker(&["info", "--format", "{{.CgroupDriver}}"]);
    assert_eq!(
        check(&doc, "cgroup-driver")["message"],
        format!("the engine's cgroup driver is {driver}")
    );
}

#[test]
fn no_driver_is_one_failing_check_and_doctor_stops() {
    let host = FakeGpuHost::builder().gpus(1).without_nvml().build();
    let out = doctor_on(&host, &[]).code(1);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(
        out.stdout.starts_with("fail    nvml: no NVIDIA driver")
            && out.stdout.contains("fix: install the NVIDIA driver"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_kernel_module_older_than_the_libraries_means_a_reboot_is_pending() {
    needs_docker!();
    assert_check(
        "kernel-module",
        healthy()
            .driver_version("560.35.03")
            .kernel_module_version("550.54.15"),
        "fail",
        "a reboot is pending",
        "reboot the host",
    );
}

#[test]
fn a_gpu_without_its_uuid_under_proc_warns_that_no_ops_load_nvml() {
    needs_docker!();
    let host = healthy().build();
    host.uninitialise_in_procfs(&host.gpus[1].uuid);
    let (code, doc) = doctor_json(&host, &[]);
    let c = check(&doc, "kernel-view");
    assert_eq!(c["status"], "warn", "{c}");
    let message = c["message"].as_str().expect("message");
    assert!(
        message.contains("loads NVML") && message.contains("0000:2a:00.0"),
        "{message}"
    );
    assert!(
        c["fix"]
            .as_str()
            .expect("fix")
            .contains("nvidia-persistenced")
    );
    assert_eq!(code, 0, "only slower: not a failure");
}

#[test]
fn a_missing_gpu_node_fails_the_device_node_check() {
    needs_docker!();
    // GPU 1's minor is 3 (minor = index + 2 on the fake host).
    assert_check(
        "device-nodes",
        healthy().without_node("nvidia3"),
        "fail",
        "/dev/nvidia3 is missing",
        "nvidia-modprobe",
    );
}

#[test]
fn a_missing_uvm_node_is_only_a_warning() {
    needs_docker!();
    assert_check(
        "device-nodes",
        healthy().without_node("nvidia-uvm"),
        "warn",
        "/dev/nvidia-uvm is missing",
        "nvidia-modprobe -u",
    );
}

#[test]
fn persistence_mode_off_is_a_warning() {
    needs_docker!();
    assert_check(
        "persistence-mode",
        FakeGpuHost::builder().gpu(FakeGpu::new(0)).gpu(FakeGpu {
            persistence: false,
            ..FakeGpu::new(1)
        }),
        "warn",
        "persistence mode is off on GPU(s) 1",
        "nvidia-persistenced",
    );
}

#[test]
fn a_stale_cdi_spec_is_named_with_the_uuids_it_gets_wrong() {
    needs_docker!();
    let fresh = healthy().cdi_spec(CdiSpec::Fresh).build();
    let (_, doc) = doctor_json(&fresh, &[]);
    let c = check(&doc, "cdi-specs");
    assert_eq!(c["status"], "ok", "{c}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("names the GPUs NVML sees"),
        "{c}"
    );

    // Docker 20.10 reads no CDI specs: a warning, not a failure.
    let stale = healthy().cdi_spec(CdiSpec::Stale).build();
    let (code, doc) = doctor_json(&stale, &[]);
    let c = check(&doc, "cdi-specs");
    assert_eq!(c["status"], "warn", "{c}");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.contains(GONE_UUID) && message.contains(&format!("lacks {}", stale.gpus[1].uuid)),
        "{message}"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("nvidia-ctk cdi generate")
    );
    assert_eq!(code, 0);

    // LAUNCH_CDI_SPEC_DIRS works like the flag (colon-separated).
    let none = Profiles::new();
    let out = Launch::new()
        .args(["doctor", "--json"])
        .arg(none.write(
            "none.toml",
            "image = \"busybox\"\nname = \"lt-doctor-none\"\n",
        ))
        .args(&stale.args()[..6])
        .env(
            "LAUNCH_CDI_SPEC_DIRS",
            format!("/nonexistent:{}", stale.cdi_dir.display()),
        )
        .run();
    let doc: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(check(&doc, "cdi-specs")["status"], "warn", "{doc}");
}

#[test]
fn the_toolkit_hook_on_path_is_found() {
    needs_docker!();
    let host = healthy().build();
    let bin = tempfile::tempdir().expect("temp dir");
    let hook = bin.path().join("nvidia-container-runtime-hook");
    std::fs::write(&hook, "#!/bin/sh\n").expect("write");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let none = Profiles::new();
    let out = Launch::new()
        .args(["doctor", "--json"])
        .arg(none.write(
            "none.toml",
            "image = \"busybox\"\nname = \"lt-doctor-none\"\n",
        ))
        .args(host.args())
        .env("PATH", path)
        .run();
    let doc: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    let c = check(&doc, "toolkit");
    assert_eq!(c["status"], "ok");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains(&hook.display().to_string()),
        "{c}"
    );
}

#[test]
fn without_an_engine_its_checks_are_unknown_and_the_rest_still_run() {
    let host = healthy().build();
    let (code, doc) = doctor_json(&host, &["--host", "unix:///nonexistent/docker.sock"]);
    assert_eq!(code, 0, "{doc}");
    for name in ["cgroup-driver", "toolkit", "containers"] {
        assert_eq!(check(&doc, name)["status"], "unknown", "{doc}");
    }
    assert_eq!(check(&doc, "device-nodes")["status"], "ok");
}

/// A container `launch up` made on `host` from a devices-mode profile.
fn up_on(
    host: &FakeGpuHost,
    scratch: &Scratch,
    profiles: &Profiles,
    image: &str,
) -> std::path::PathBuf {
    let name = scratch.name("ctr");
    let path = profiles.write(
        "gpu.toml",
        &format!(
            "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\ngpus = {{ devices = [1], mode = \"devices\" }}\n"
        ),
    );
    Launch::new()
        .env("LAUNCH_LOCK_DIR", profiles.path().join("locks"))
        .arg("up")
        .args(host.args())
        .arg(&path)
        .run()
        .code(0);
    path
}

#[test]
fn a_container_whose_gpu_is_gone_fails_and_one_of_an_older_driver_warns() {
    needs_docker!();
    let scratch = Scratch::new("doctor-ctr");
    let image = scratch.busybox_image("img", &[]);
    let profiles = Profiles::new();
    let host = healthy().build();
    let profile = up_on(&host, &scratch, &profiles, &image);
    let name = format!("container {}", scratch.name("ctr"));
    let only = |host: &FakeGpuHost| doctor_json(host, &[profile.to_str().expect("UTF-8")]);

    let (_, doc) = only(&host);
    assert_eq!(check(&doc, &name)["status"], "ok", "{doc}");

    // Its GPU (index 1) is gone: a host with GPU 0 alone.
    let (code, doc) = only(&FakeGpuHost::builder().gpus(1).build());
    let c = check(&doc, &name);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["message"].as_str().unwrap().contains(&host.gpus[1].uuid),
        "{c}"
    );
    assert!(c["fix"].as_str().unwrap().contains("launch up"));
    assert_eq!(code, 1);

    // The driver was upgraded (and the host rebooted): recreate it.
    let upgraded = healthy().driver_version("560.35.03").build();
    let (_, doc) = only(&upgraded);
    let c = check(&doc, &name);
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("made for driver 550.54.15, but 560.35.03 runs now"),
        "{c}"
    );
    // Profiles given: only their containers are judged.
    let other = Profiles::new();
    let elsewhere = other.write("x.toml", "image = \"busybox\"\nname = \"lt-not-there\"\n");
    let (_, doc) = doctor_json(&host, &[elsewhere.to_str().unwrap()]);
    assert!(
        !doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == name.as_str()),
        "{doc}"
    );
}

#[test]
fn nvml_refusing_with_a_version_mismatch_says_a_reboot_is_pending() {
    // NVML_ERROR_LIB_RM_VERSION_MISMATCH: what real NVML answers before the reboot.
    let host = FakeGpuHost::builder().gpus(1).init_error(18).build();
    let out = doctor_on(&host, &[]).code(1);
    assert!(
        out.stdout
            .starts_with("fail    nvml: NVML says \"Driver/library version mismatch\"")
            && out.stdout.contains("a reboot is pending")
            && out.stdout.contains("fix: reboot the host"),
        "{}",
        out.stdout
    );
}
