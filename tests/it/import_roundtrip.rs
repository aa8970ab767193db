//! The seed's three `docker run` scripts against a real daemon
//! (docs/architecture.md, translation): the container each script makes and
//! the one `launch import` → `launch up` makes have the same devices,
//! mounts, ports, shm size, network, privileges, TTY and command; and
//! `import --container` gives back a profile with the same spec.
//!
//! The scripts are adapted only where this machine needs it: busybox for the
//! image (with a stand-in /bin/bash), the fake GPU host's device nodes, bind
//! sources under a temporary folder, ports on 127.0.0.1, unique names.
//! Privileged containers cannot start here, so the scripts' containers are
//! created (not started), and the privileged ones are compared with the
//! spec `launch render --format json` prints.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::cli::{Launch, Profiles, repo_root};
use crate::support::docker::{self, Scratch};
use crate::support::fake_gpu::FakeGpuHost;
use serde_json::Value;

/// The seed's host: 8 GPUs whose minors are their indices, with the two
/// shared nodes the scripts list (nvidiactl, nvidia-uvm) and no others.
fn seed_host() -> FakeGpuHost {
    FakeGpuHost::builder()
        .gpus_with_minor_as_index(8)
        .without_node("nvidia-uvm-tools")
        .without_node("nvidia-modeset")
        .build()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// One seed script, adapted to this machine.
struct Adapted {
    /// What `launch import` reads: the script's own wrappers kept.
    import: String,
    /// What the shell runs: plain `docker create`.
    create: String,
}

fn adapt(script: &str, image: &str, name: &str, host: &FakeGpuHost, tmp: &Path) -> Adapted {
    let dev = host.dev_root.display().to_string();
    let tmp_s = tmp.display().to_string();
    let mut text = script.to_string();
    // The image: the last word of the `docker run` before its command.
    for original in [
        "docker.paddlepaddlehub.com/paddle:0.11.0-gpu",
        "thub.autohome.com.cn/dm_ai/cs_images:ddm",
        "10.196.3.6:5000/registry.vivo.lan/library/centos:centos7.4.1708-v1.1-20200217-tf1.14-v1.052_ffmpeg-20200622-py3_torch_gcc5.2-20200813",
    ] {
        text = text.replace(original, image);
    }
    for original in ["test_paddle", "cs_ddm", "cs_torch"] {
        text = text.replace(&format!("--name={original}"), &format!("--name={name}"));
    }
    text = text.replace(
        "--device=/dev/nvidia",
        &format!("--device={dev}/dev/nvidia"),
    );
    text = text.replace("-v /", &format!("-v {tmp_s}/"));
    text = text.replace(&format!("-v {tmp_s}/dev:/dev"), "-v /dev:/dev");
    for port in ["18307", "18217"] {
        text = text.replace(
            &format!("-p {port}:"),
            &format!("-p 127.0.0.1:{}:", free_port()),
        );
    }
    // The bind sources exist, as on the seed's server.
    for line in text.lines() {
        if let Some(rest) = line.trim().strip_prefix(&format!("-v {tmp_s}/")) {
            let source = tmp.join(rest.split(':').next().expect("a source"));
            if source.ends_with("etc/localtime") {
                std::fs::create_dir_all(source.parent().expect("parent")).expect("mkdir");
                std::fs::write(&source, "UTC0\n").expect("localtime");
            } else {
                std::fs::create_dir_all(&source).expect("mkdir");
            }
        }
    }
    let create = text
        .replace("sudo ", "")
        .replace("nvidia-docker run", "docker run")
        .replace("docker run -it -d", "docker create -it");
    assert_ne!(
        create,
        text.replace("sudo ", "")
            .replace("nvidia-docker run", "docker run")
    );
    Adapted {
        import: text,
        create,
    }
}

fn inspect(name: &str) -> Value {
    let text = docker::docker(&["inspect", name]);
    let all: Value = serde_json::from_str(&text).expect("docker inspect prints JSON");
    all[0].clone()
}

fn devices_of(c: &Value) -> BTreeSet<(String, String, String)> {
    c["HostConfig"]["Devices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["PathOnHost"].as_str().unwrap_or_default().to_string(),
                d["PathInContainer"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                d["CgroupPermissions"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// Bind mounts as (source, target, read-only), the NVIDIA driver's left out
/// (the script mounted nvidia-docker 1.0's volume, launch the running
/// driver's files: the same thing, see `gpus` mode `devices`).
fn binds_of(c: &Value) -> BTreeSet<(String, String, bool)> {
    let mut out = BTreeSet::new();
    for b in c["HostConfig"]["Binds"].as_array().into_iter().flatten() {
        let parts: Vec<&str> = b.as_str().unwrap_or_default().split(':').collect();
        let ro = parts
            .get(2)
            .is_some_and(|m| m.split(',').any(|o| o == "ro"));
        out.insert((
            parts[0].trim_end_matches('/').to_string(),
            parts[1].to_string(),
            ro,
        ));
    }
    for m in c["HostConfig"]["Mounts"].as_array().into_iter().flatten() {
        out.insert((
            m["Source"].as_str().unwrap_or_default().to_string(),
            m["Target"].as_str().unwrap_or_default().to_string(),
            m["ReadOnly"] == Value::Bool(true),
        ));
    }
    out.retain(|(_, target, _)| !driver_file(target));
    out
}

/// What launch mounts of the running driver in `devices` mode.
fn driver_file(target: &str) -> bool {
    target.starts_with("/usr/local/nvidia") || target == "/run/nvidia-persistenced/socket"
}

fn spec_devices(spec: &Value) -> BTreeSet<(String, String, String)> {
    spec["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["host"].as_str().unwrap_or_default().to_string(),
                d["container"].as_str().unwrap_or_default().to_string(),
                d["permissions"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn spec_binds(spec: &Value) -> BTreeSet<(String, String, bool)> {
    spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            (
                m["source"].as_str().unwrap_or_default().to_string(),
                m["target"].as_str().unwrap_or_default().to_string(),
                m["read_only"] == Value::Bool(true),
            )
        })
        .filter(|(_, target, _)| !driver_file(target))
        .collect()
}

fn render_json(host: &FakeGpuHost, profile: &Path) -> Value {
    let out = Launch::new()
        .args(host.args())
        .arg("render")
        .arg(profile)
        .args(["--format", "json"])
        .run()
        .code(0);
    serde_json::from_str(&out.stdout).expect("render prints JSON")
}

/// Imports `args` (a script path or `--container NAME`) into `dir/file`.
fn import(host: &FakeGpuHost, args: &[&str], dir: &Profiles, file: &str) -> std::path::PathBuf {
    let out = Launch::new()
        .args(host.args())
        .arg("import")
        .args(args)
        .run()
        .code(0);
    dir.write(file, &out.stdout)
}

fn round_trip(seed: &str, privileged: bool) {
    let scratch = Scratch::new(&format!("roundtrip-{seed}"));
    // The seed's images had a shell as their CMD; this one too.
    let image = scratch.busybox_image_with(
        "img",
        &[("/bin/bash", "#!/bin/sh\nexec sleep 100000\n")],
        &["CMD [\"/bin/bash\"]"],
    );
    let name = scratch.name("ctr");
    let host = seed_host();
    let tmp = tempfile::tempdir().expect("temp dir");
    let script =
        std::fs::read_to_string(repo_root().join(format!("profiles/examples/seed/{seed}.sh")))
            .expect("seed script");
    let adapted = adapt(&script, &image, &name, &host, tmp.path());
    let dir = Profiles::new();
    let script_path = dir.write("start.sh", &adapted.import);
    let profile = import(
        &host,
        &[script_path.to_str().expect("utf-8")],
        &dir,
        "imported.toml",
    );
    let spec = render_json(&host, &profile)["spec"].clone();

    // The script's own container.
    let theirs_name = scratch.name("script");
    let create = adapted
        .create
        .replace(&format!("--name={name}"), &format!("--name={theirs_name}"));
    crate::support::docker::sh(&create);
    let theirs = inspect(&theirs_name);

    if privileged {
        // Spec level: launch would send exactly this.
        assert_eq!(spec["privileged"], Value::Bool(true));
        assert_eq!(theirs["HostConfig"]["Privileged"], Value::Bool(true));
        let mut their_binds = binds_of(&theirs);
        if their_binds.remove(&("/dev".into(), "/dev".into(), false)) {
            // `-v /dev:/dev` became `gpus = "all"`: every GPU node, nothing else of /dev.
            let nodes: BTreeSet<String> = spec_devices(&spec).into_iter().map(|d| d.1).collect();
            let want: BTreeSet<String> = (0..8)
                .map(|i| format!("/dev/nvidia{i}"))
                .chain(["/dev/nvidiactl".into(), "/dev/nvidia-uvm".into()])
                .collect();
            assert_eq!(nodes, want);
        } else {
            assert_eq!(spec_devices(&spec), devices_of(&theirs));
        }
        assert_eq!(spec_binds(&spec), their_binds);
        assert!(
            theirs["HostConfig"]["PortBindings"]
                .as_object()
                .is_none_or(|p| p.is_empty())
        );
        assert!(spec["ports"].as_array().is_none_or(|p| p.is_empty()));
        assert_eq!(spec["shm_size"], theirs["HostConfig"]["ShmSize"]);
        assert_eq!(spec["network_mode"], theirs["HostConfig"]["NetworkMode"]);
        assert_eq!(spec["tty"], theirs["Config"]["Tty"]);
        assert_eq!(spec["open_stdin"], theirs["Config"]["OpenStdin"]);
        match spec["command"].is_null() {
            // No command in the script: the image's CMD.
            true => assert_eq!(theirs["Config"]["Cmd"], serde_json::json!(["/bin/bash"])),
            false => assert_eq!(spec["command"], theirs["Config"]["Cmd"]),
        }
    } else {
        let up = Launch::new()
            .args(host.args())
            .arg("up")
            .arg(&profile)
            .run();
        assert_eq!(up.code, 0, "{}{}", up.stdout, up.stderr);
        let ours = inspect(&name);
        assert_eq!(ours["State"]["Running"], Value::Bool(true));
        assert_eq!(devices_of(&ours), devices_of(&theirs));
        assert_eq!(binds_of(&ours), binds_of(&theirs));
        assert!(!binds_of(&ours).is_empty());
        for field in [
            "PortBindings",
            "ShmSize",
            "NetworkMode",
            "Privileged",
            "CapAdd",
        ] {
            assert_eq!(
                ours["HostConfig"][field], theirs["HostConfig"][field],
                "{field}"
            );
        }
        for field in ["Tty", "OpenStdin", "Cmd", "Entrypoint"] {
            assert_eq!(ours["Config"][field], theirs["Config"][field], "{field}");
        }
    }

    // Back from the container: launch's own (or, privileged, the script's).
    let from = if privileged {
        theirs_name.as_str()
    } else {
        name.as_str()
    };
    let again = import(&host, &["--container", from], &dir, "again.toml");
    let mut spec_again = render_json(&host, &again)["spec"].clone();
    if privileged {
        // The script's container has the script's name.
        spec_again["name"] = spec["name"].clone();
    }
    assert_eq!(
        serde_json::to_string_pretty(&spec_again).expect("json"),
        serde_json::to_string_pretty(&spec).expect("json"),
        "imported from the container:\n{}",
        std::fs::read_to_string(&again).unwrap_or_default()
    );
}

#[test]
fn seed_script_v1_round_trips_through_import_and_up() {
    needs_docker!();
    not_on_podman!(crate::support::docker::CLI_DEVICES_ON_PODMAN);
    round_trip("paddle-8gpu", false);
}

#[test]
fn seed_script_v2_round_trips_at_spec_level() {
    needs_docker!();
    not_on_podman!(crate::support::docker::CLI_DEVICES_ON_PODMAN);
    round_trip("cs-ddm", true);
}

#[test]
fn seed_script_v3_round_trips_at_spec_level() {
    needs_docker!();
    not_on_podman!(crate::support::docker::CLI_DEVICES_ON_PODMAN);
    round_trip("cs-torch", true);
}
