//! `launch import` (docs/architecture.md, translation): `docker run` lines and
//! scripts become profiles through the real binary; each value is the
//! right key or a `# not imported:` comment, never a wrong value.

#[macro_use]
mod support;

use std::path::Path;

use support::cli::{Launch, Output, Profiles, repo_root};
use support::fake_gpu::FakeGpuHost;

/// `launch import -- docker run ARGS…` on a host without NVML.
fn import_line(args: &[&str]) -> Output {
    Launch::new()
        .args([
            "--nvml-lib",
            "/nonexistent/libnvidia-ml.so.1",
            "import",
            "--",
            "docker",
            "run",
        ])
        .args(args)
        .run()
}

/// The imported profile passes `launch check` (written where it is checked).
fn checks(text: &str) {
    let dir = Profiles::new();
    let path = dir.write("imported.toml", text);
    let out = Launch::new().arg("check").arg(&path).run();
    assert_eq!(
        out.code, 0,
        "{text}\n--- check\n{}{}",
        out.stdout, out.stderr
    );
}

fn imported(args: &[&str]) -> String {
    let out = import_line(args).code(0);
    checks(&out.stdout);
    out.stdout
}

#[test]
fn an_env_value_with_equals_signs_is_kept_whole() {
    let text = imported(&[
        "-e",
        "JAVA_OPTS=-Da=b -Dc=d",
        "-e",
        "URL=http://h/?x=1",
        "busybox",
    ]);
    assert!(text.contains("JAVA_OPTS = \"-Da=b -Dc=d\"\n"), "{text}");
    assert!(text.contains("URL = \"http://h/?x=1\"\n"), "{text}");
}

#[test]
fn a_quoted_argument_with_spaces_stays_one_argument() {
    let script = Profiles::new();
    let path = script.write(
        "run.sh",
        "docker run --name quoted busybox sh -c 'echo \"a  b\"; sleep 1'\n",
    );
    let out = Launch::new()
        .args(["--nvml-lib", "/nonexistent/libnvidia-ml.so.1", "import"])
        .arg(&path)
        .run()
        .code(0);
    checks(&out.stdout);
    let profile: toml::Table = toml::from_str(&out.stdout).expect("TOML");
    let command = profile["command"].clone();
    let argv: Vec<String> = match command {
        toml::Value::String(s) => shell_words::split(&s).expect("a shell line"),
        toml::Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().expect("test setup").to_string())
            .collect(),
        other => panic!("command is {other}"),
    };
    assert_eq!(
        argv,
        ["sh", "-c", "echo \"a  b\"; sleep 1"],
        "{}",
        out.stdout
    );
}

#[test]
fn gpus_device_list_in_docker_quotes_becomes_indices() {
    let text = imported(&["--gpus", "\"device=0,2\"", "busybox"]);
    assert!(text.contains("\ngpus = [0, 2]\n"), "{text}");
}

#[test]
fn gpus_device_list_without_its_quotes_is_not_guessed() {
    // docker reads `device=0,2` as two CSV fields; composerize made `count: NaN` of it.
    let text = imported(&["--gpus", "device=0,2", "busybox"]);
    assert!(!text.contains("\ngpus"), "{text}");
    assert!(
        text.contains("# not imported: --gpus device=0,2 ("),
        "{text}"
    );
}

#[test]
fn gpus_by_number_becomes_a_count() {
    let text = imported(&["--gpus", "2", "busybox"]);
    assert!(text.contains("\ngpus = { count = 2 }\n"), "{text}");
}

#[test]
fn the_nvidia_runtime_with_visible_devices_becomes_gpus() {
    let text = imported(&[
        "--runtime=nvidia",
        "-e",
        "NVIDIA_VISIBLE_DEVICES=1",
        "busybox",
    ]);
    assert!(text.contains("\ngpus = [1]\n"), "{text}");
    assert!(
        !text.contains("NVIDIA_VISIBLE_DEVICES"),
        "launch sets it: {text}"
    );
    assert!(!text.contains("runtime"), "{text}");
}

#[test]
fn an_unknown_flag_is_a_comment_with_the_value_it_took() {
    let out = import_line(&["--frobnicate", "hard", "--gizmo", "-it", "busybox", "sh"]).code(0);
    checks(&out.stdout);
    let text = &out.stdout;
    assert!(
        text.contains("# not imported: --frobnicate hard (unknown flag)"),
        "{text}"
    );
    assert!(
        text.contains("# not imported: --gizmo (unknown flag)"),
        "{text}"
    );
    assert!(
        text.contains("image = \"busybox\"\ncommand = \"sh\"\ninteractive = true\n")
            || text.contains(
                "image = \"busybox\"\nname = \"imported-1\"\ncommand = \"sh\"\ninteractive = true\n"
            ),
        "{text}"
    );
    assert!(
        out.stderr.contains("not imported: --frobnicate hard"),
        "a warning: {}",
        out.stderr
    );
}

#[test]
fn rm_has_no_key_and_says_so() {
    let text = imported(&["--rm", "busybox"]);
    assert!(
        text.contains(
            "# not imported: --rm (launch keeps a managed container; `launch down` removes it)"
        ),
        "{text}"
    );
}

#[test]
fn a_script_imports_every_run_line_and_reports_a_broken_one_at_its_line() {
    let dir = Profiles::new();
    let path = dir.write(
        "start.sh",
        "#!/bin/sh\nset -e\nNV_GPU=1 nohup nvidia-docker run -d --name aa -v $HOME/x:/x -v $(pwd)/d:/d busybox > a.log 2>&1 &\necho next\ndocker run --name bb -e 'BROKEN=1 busybox\nsudo docker run --name cc -p 127.0.0.1:8080:80 -e HOST=$(hostname) busybox\n",
    );
    let out = Launch::new()
        .args(["--nvml-lib", "/nonexistent/libnvidia-ml.so.1", "import"])
        .arg(&path)
        .run()
        .code(2);
    assert!(
        out.stderr
            .contains(&format!("{}:5: a quote is not closed", path.display())),
        "{}",
        out.stderr
    );
    let parts: Vec<&str> = out.stdout.split("# --- ").collect();
    assert_eq!(parts.len(), 3, "{}", out.stdout);
    let a = parts[1].strip_prefix("aa.toml\n").expect("a first");
    assert!(a.contains("gpus = [1]"), "{a}");
    assert!(a.contains("\"~/x:/x\""), "{a}");
    assert!(a.contains("\"./d:/d\""), "{a}");
    let c = parts[2].strip_prefix("cc.toml\n").expect("c next");
    assert!(c.contains("ports = [\"127.0.0.1:8080:80\"]"), "{c}");
    assert!(
        c.contains("# not imported: -e HOST=$(hostname) (a command substitution"),
        "{c}"
    );
    assert!(!c.contains("HOST ="), "{c}");
    // Written into a folder, one file each; an existing file is never overwritten.
    let out_dir = Profiles::new();
    let written = Launch::new()
        .args([
            "--nvml-lib",
            "/nonexistent/libnvidia-ml.so.1",
            "import",
            "-o",
        ])
        .arg(out_dir.path())
        .arg(&path)
        .run()
        .code(2);
    for name in ["aa.toml", "cc.toml"] {
        let text = std::fs::read_to_string(out_dir.path().join(name)).expect(name);
        let check = Launch::new()
            .arg("check")
            .arg(out_dir.path().join(name))
            .env("HOME", "/tmp")
            .run();
        assert_eq!(check.code, 0, "{text}\n{}{}", check.stdout, check.stderr);
    }
    assert!(written.stderr.contains("wrote"), "{}", written.stderr);
    let again = Launch::new()
        .args([
            "--nvml-lib",
            "/nonexistent/libnvidia-ml.so.1",
            "import",
            "-o",
        ])
        .arg(out_dir.path().join("aa.toml"))
        .args(["--", "docker", "run", "--name", "aa", "busybox"])
        .run()
        .code(3);
    assert!(
        again.stderr.contains("never overwrites"),
        "{}",
        again.stderr
    );
}

/// The seed's host: 8 GPUs whose minors are their indices.
fn seed_host() -> FakeGpuHost {
    FakeGpuHost::builder().gpus_with_minor_as_index(8).build()
}

#[test]
fn the_examples_are_what_import_prints_for_the_seed_scripts() {
    let host = seed_host();
    let examples = repo_root().join("profiles/examples");
    for name in ["paddle-8gpu", "cs-ddm", "cs-torch"] {
        let out = Launch::new()
            .args(host.args())
            .args(["import", "--schema", "../launch.schema.json"])
            .arg(format!("seed/{name}.sh"))
            .current_dir(&examples)
            .run()
            .code(0);
        let path = examples.join(format!("{name}.toml"));
        // After a deliberate change of import: LAUNCH_BLESS=1 rewrites them.
        if std::env::var_os("LAUNCH_BLESS").is_some() {
            std::fs::write(&path, &out.stdout).expect("write example");
        }
        let example = std::fs::read_to_string(&path).expect("example");
        assert_eq!(
            out.stdout, example,
            "profiles/examples/{name}.toml differs from `launch import seed/{name}.sh`"
        );
    }
}

#[test]
fn gpu_device_nodes_become_indices_through_nvml_not_their_minors() {
    // The fake host's minors are index + 2: /dev/nvidia3 is GPU 1.
    let host = FakeGpuHost::builder().gpus(4).build();
    let dev = |n: u32| format!("{}/dev/nvidia{n}:/dev/nvidia{n}", host.dev_root.display());
    let out = Launch::new()
        .args(host.args())
        .args(["import", "--", "docker", "run", "--device"])
        .arg(dev(3))
        .arg("--device")
        .arg(dev(9))
        .arg("--device")
        .arg(format!("{}/dev/nvidiactl", host.dev_root.display()))
        .arg("busybox")
        .run()
        .code(0);
    let text = &out.stdout;
    assert!(text.contains("\ngpus = [1]\n"), "{text}");
    assert!(
        text.contains("(no GPU of this host has minor number 9)"),
        "{text}"
    );
    assert!(
        !text.contains("devices = "),
        "the shared node comes with gpus: {text}"
    );
    let _ = Path::new("");
}

#[test]
fn cdi_names_become_gpus() {
    let text = imported(&[
        "--device",
        "nvidia.com/gpu=0",
        "--device=nvidia.com/gpu=GPU-8f6c",
        "busybox",
    ]);
    assert!(text.contains("\ngpus = [0, \"GPU-8f6c\"]\n"), "{text}");
    let all = imported(&["--device", "nvidia.com/gpu=all", "busybox"]);
    assert!(all.contains("\ngpus = \"all\"\n"), "{all}");
}
