//! scripts/gpu-host-check.sh, which compares launch with nvidia-smi and
//! /dev/nvidia* on a real GPU host, run here against the fake GPU host with
//! a fake `nvidia-smi` on PATH.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::repo_root;
use crate::support::fake_gpu::{FakeGpu, FakeGpuHost};

/// The JSON tools the script can use that this machine has.
fn json_tools() -> Vec<&'static str> {
    let tools: Vec<&str> = ["python3", "jq"]
        .into_iter()
        .filter(|t| {
            Command::new(t)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if tools.is_empty() {
        crate::support::docker::missing(
            &crate::support::docker::current_test(),
            "scripts/gpu-host-check.sh needs python3 or jq, and neither is here",
        );
    }
    tools
}

/// A folder with an `nvidia-smi` that answers the script's queries the way
/// the real one would for these GPUs.
fn fake_nvidia_smi(dir: &Path, driver: &str, gpus: &[FakeGpu]) -> PathBuf {
    let rows: Vec<String> = gpus
        .iter()
        .enumerate()
        .map(|(i, g)| {
            // nvidia-smi's own forms: MiB with a unit; the bus id as NVML has it.
            format!(
                "{i}, {}, {}, {} MiB, {}",
                g.uuid,
                g.name,
                g.mem_total >> 20,
                g.bus_id
            )
        })
        .collect();
    let persistence: Vec<String> = gpus
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let mode = if g.persistence { "Enabled" } else { "Disabled" };
            format!("{i}, {mode}")
        })
        .collect();
    let buses: Vec<String> = gpus
        .iter()
        .enumerate()
        .map(|(i, g)| format!("{i}, {}", g.bus_id))
        .collect();
    let script = format!(
        "#!/bin/sh\ncase \"$*\" in\n*driver_version*) echo '{driver}' ;;\n*persistence_mode*) cat <<'EOF'\n{}\nEOF\n;;\n*index,pci.bus_id*) cat <<'EOF'\n{}\nEOF\n;;\n*) cat <<'EOF'\n{}\nEOF\n;;\nesac\n",
        persistence.join("\n"),
        buses.join("\n"),
        rows.join("\n")
    );
    let path = dir.join("nvidia-smi");
    std::fs::write(&path, script).expect("write nvidia-smi");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir.to_path_buf()
}

struct Run {
    code: i32,
    stdout: String,
}

fn run_check(host: &FakeGpuHost, smi_dir: &Path, tool: &str) -> Run {
    let path = format!(
        "{}:{}",
        smi_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/gpu-host-check.sh"))
        .arg(env!("CARGO_BIN_EXE_launch"))
        .env("PATH", path)
        .env("GPU_CHECK_JSON_TOOL", tool)
        .env("LAUNCH_NVML_LIB", &host.nvml_lib)
        .env("LAUNCH_DEV_ROOT", &host.dev_root)
        .env("LAUNCH_DRIVER_ROOT", &host.driver_root)
        .env("NO_COLOR", "1")
        .output()
        .expect("bash runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned()
            + "\n--- stderr\n"
            + &String::from_utf8_lossy(&out.stderr),
    }
}

fn failures(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("FAIL:")).collect()
}

#[test]
fn the_gpu_host_check_passes_where_launch_nvidia_smi_and_dev_agree() {
    let host = FakeGpuHost::builder().gpus(2).build();
    let bin = tempfile::tempdir().expect("temp dir");
    let smi = fake_nvidia_smi(bin.path(), &host.driver_version, &host.gpus);
    for tool in json_tools() {
        let run = run_check(&host, &smi, tool);
        let out = &run.stdout;
        for want in [
            format!("PASS: GPU 1 uuid: {}", host.gpus[1].uuid),
            "PASS: GPU 1 memory total: 81920 MiB".to_string(),
            "PASS: GPU 1 PCI bus id: 00000000:2A:00.0".to_string(),
            format!("PASS: driver version: {}", host.driver_version),
            "PASS: spec: /usr/local/nvidia/lib64/libcuda.so.1 <- ".to_string(),
            "PASS: spec: /usr/local/nvidia/lib64/libnvidia-ml.so.1 <- ".to_string(),
            "PASS: spec: GPU 0's node /dev/nvidia2 <- ".to_string(),
            format!(
                "PASS: doctor kernel-module: ok (module {0}, nvidia-smi {0})",
                host.driver_version
            ),
            "PASS: doctor persistence-mode: ok (nvidia-smi: off on 'none')".to_string(),
            "PASS: nvidia-smi numbers the GPUs in PCI bus order (0 1 )".to_string(),
            "PASS: doctor kernel-view: ok (/proc/driver/nvidia shows the GPUs as NVML does"
                .to_string(),
            "--- launch doctor\nok      nvml: NVML loads".to_string(),
        ] {
            assert!(out.contains(&want), "{tool}: no {want:?} in\n{out}");
        }
        if host.char_devices {
            assert!(out.contains("PASS: GPU 1: minor 3 is "), "{tool}:\n{out}");
            assert!(
                out.contains("PASS: doctor device-nodes: ok (nvidia-uvm major 510 in /proc/devices, 510 on the node)"),
                "{tool}:\n{out}"
            );
            assert_eq!(run.code, 0, "{tool}:\n{out}");
            assert!(failures(out).is_empty(), "{tool}:\n{out}");
        } else {
            // Not root: the fake nodes are links to /dev/null, rightly refused.
            assert_eq!(run.code, 1, "{tool}:\n{out}");
            assert!(
                failures(out).iter().all(|l| l.contains(": minor ")),
                "{tool}:\n{out}"
            );
        }
    }
}

#[test]
fn the_gpu_host_check_fails_when_nvidia_smi_disagrees() {
    let host = FakeGpuHost::builder().gpus(2).build();
    let mut seen_by_smi = host.gpus.clone();
    seen_by_smi[0].uuid = "GPU-00000000-0000-4000-8000-0000000000ff".into();
    seen_by_smi[1].mem_total = 40 << 30;
    seen_by_smi[1].persistence = false;
    let bin = tempfile::tempdir().expect("temp dir");
    let smi = fake_nvidia_smi(bin.path(), "535.104.05", &seen_by_smi);
    for tool in json_tools() {
        let run = run_check(&host, &smi, tool);
        let out = &run.stdout;
        assert_eq!(run.code, 1, "{tool}:\n{out}");
        let failed = failures(out);
        for want in [
            "FAIL: GPU 0 uuid: nvidia-smi GPU-00000000-0000-4000-8000-0000000000ff, launch ",
            "FAIL: GPU 1 memory total: nvidia-smi 40960 MiB, launch 81920 MiB",
            "FAIL: driver version: nvidia-smi 535.104.05, launch 550.54.15",
            "FAIL: doctor kernel-module: ok (",
            "FAIL: doctor persistence-mode: ok (persistence mode is on), but nvidia-smi has it off on '1'",
        ] {
            assert!(
                failed.iter().any(|l| l.starts_with(want)),
                "{tool}: no {want:?} in\n{out}"
            );
        }
    }
}
