//! `launch import` (docs/architecture.md, translation): `docker run` lines and
//! scripts become profiles through the real binary; each value is the
//! right key or a `# not imported:` comment, never a wrong value.

use std::path::Path;

use crate::support::cli::{Launch, Output, Profiles, repo_root};
use crate::support::fake_gpu::FakeGpuHost;

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

// ---------------------------------------------------------------------------
// The kinds of real `docker run` lines import once failed on, each from a
// line of tests/corpus/gpu-docker-run.txt (its source named) where the
// corpus has one.

/// `launch import SCRIPT -o DIR` on an 8-GPU host: exit code, stderr, and
/// each written profile (file name, text), which must pass `check` with
/// nothing in the environment but PATH (as under cron).
fn import_script(script: &str) -> (i32, String, Vec<(String, String)>) {
    import_script_with(script, &[])
}

/// `import_script`, checking with the script's own variables set.
fn import_script_with(script: &str, vars: &[(&str, &str)]) -> (i32, String, Vec<(String, String)>) {
    let host = seed_host();
    let dir = Profiles::new();
    let path = dir.write("run.sh", script);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).expect("out");
    let out = Launch::new()
        .args(host.args())
        .arg("import")
        .arg(&path)
        .arg("-o")
        .arg(&out_dir)
        .run();
    let mut written = Vec::new();
    for entry in std::fs::read_dir(&out_dir).expect("out") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("profile");
        let mut check = Launch::new().env_clear();
        for (k, v) in vars {
            check = check.env(k, v);
        }
        let check = check.arg("check").arg(&path).run();
        assert_eq!(check.code, 0, "{text}\n--- check\n{}", check.stderr);
        written.push((
            path.file_name()
                .expect("a file")
                .to_string_lossy()
                .into_owned(),
            text,
        ));
    }
    written.sort();
    (out.code, out.stderr, written)
}

#[test]
fn a_quote_that_spans_lines_is_one_word_as_in_the_shell() {
    // The shape of tests/corpus entries that run `bash -c '…'` over lines.
    let (code, _, written) = import_script(
        "docker run --gpus all --name train pytorch/pytorch bash -c 'cd /workspace &&\n  python train.py --epochs 10'\necho done\n",
    );
    assert_eq!(code, 0);
    assert_eq!(written.len(), 1);
    let profile: toml::Value = toml::from_str(&written[0].1).expect("TOML");
    assert_eq!(
        profile["command"][2].as_str(),
        Some("cd /workspace &&\n  python train.py --epochs 10"),
        "{}",
        written[0].1
    );
}

#[test]
fn every_docker_run_of_a_command_list_is_imported() {
    // github.com/NoviScl/AdvRACE/blob/HEAD/Attacks/DG/docker_unilm.sh, and a
    // second run after `&&`.
    let (code, _, written) = import_script_with(
        "alias=`whoami | cut -d'.' -f2`; docker run -it --rm --runtime=nvidia --ipc=host --privileged -v /home/${alias}:/home/${alias} pytorch/pytorch:1.1.0-cuda10.0-cudnn7.5-devel bash && docker run --name second --gpus 1 busybox\n",
        &[("alias", "alice")],
    );
    assert_eq!(code, 0);
    let names: Vec<&str> = written.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["imported-1.toml", "second.toml"]);
}

#[test]
fn pwd_in_the_container_is_the_profiles_folder_as_an_absolute_path() {
    // github.com/st24hour/dino_sm/blob/HEAD/docker1.sh
    let (code, _, written) = import_script(
        "docker run --gpus all --shm-size=256g --ulimit memlock=-1 --ulimit stack=67108864 -it --rm --pid=host -v $(pwd):$(pwd) -w $(pwd) \\\n\t-v /etc/localtime:/etc/localtime:ro -v /etc/passwd:/etc/passwd:ro -v /etc/group:/etc/group:ro --name js_9 \\\n\t-v /shared:/shared/ st24hour/pytorch:1.12.1_SM \\\n\tsh train1.sh\n",
    );
    assert_eq!(code, 0);
    let text = &written[0].1;
    let folder = text
        .lines()
        .find_map(|l| l.strip_prefix("workdir = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        folder.starts_with('/') && folder.ends_with("/out"),
        "{text}"
    );
    assert!(text.contains(&format!("\".:{folder}\"")), "{text}");
    assert!(
        text.contains("# `$PWD` (or `$(pwd)`) was the folder the script ran in"),
        "{text}"
    );
}

#[test]
fn an_env_name_without_a_value_is_passed_when_set_and_the_profile_loads_without_it() {
    // github.com/radarku/ros-2d-nav-docker-sim/blob/HEAD/testGlxGears.sh
    let (code, _, written) = import_script(
        "nvidia-docker run -it \\\n    --env=\"DISPLAY\" \\\n    --volume=\"/tmp/.X11-unix:/tmp/.X11-unix:rw\" \\\n    glx glxgears\n",
    );
    assert_eq!(code, 0);
    let text = &written[0].1;
    assert!(text.contains("DISPLAY = \"${DISPLAY:-}\""), "{text}");
    assert!(
        text.contains("passed the caller's DISPLAY when it was set"),
        "{text}"
    );
    // With DISPLAY set, the container gets it.
    let dir = Profiles::new();
    let path = dir.write(
        "glx.toml",
        "image = \"glx\"\ncommand = \"glxgears\"\n[env]\nDISPLAY = \"${DISPLAY:-}\"\n",
    );
    let out = Launch::new()
        .env("DISPLAY", ":1")
        .args([
            "--nvml-lib",
            "/nonexistent/libnvidia-ml.so.1",
            "render",
            "--format",
            "json",
        ])
        .arg(&path)
        .run();
    assert!(
        out.stdout.contains("\"DISPLAY\": \":1\""),
        "{}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn an_env_entry_that_is_only_a_variable_is_a_comment() {
    // github.com/dataschoolai/yolov5_train/blob/HEAD/run_training.sh
    let (code, stderr, written) = import_script(
        "docker run --rm --ipc=host --gpus all -it \\\n-p 8888:8888 \\\n--env=$app_path \\\n--env=$workspace \\\n-v /data:/data \\\ndamage bash -c 'bash $workspace/train.sh'\n",
    );
    assert_eq!(code, 0);
    let text = &written[0].1;
    assert!(
        text.contains(
            "# not imported: --env '${app_path}' (the variable's name is the script's to say"
        ),
        "{text}"
    );
    assert!(
        stderr.contains("not imported: --env '${app_path}'"),
        "{stderr}"
    );
}

#[test]
fn devices_that_gpus_gives_are_not_kept() {
    // github.com/mcx-lab/ros_pybullet_rl2/blob/HEAD/docker/run_nvidia.bash
    let (code, _, written) = import_script(
        "docker run -it \\\n    --device=/dev/dri \\\n    --volume=/tmp/.X11-unix:/tmp/.X11-unix \\\n    --gpus all \\\n    --env=\"NVIDIA_VISIBLE_DEVICES=all\" \\\n    --env=\"NVIDIA_DRIVER_CAPABILITIES=all\" \\\n    --runtime=nvidia \\\n    --network=host \\\n    --ipc=host \\\n    --name=pybulletrl2-gail \\\n    pybulletrl2-gail \\\n    bash\n",
    );
    assert_eq!(code, 0);
    let text = &written[0].1;
    assert!(!text.contains("\ndevices = "), "{text}");
    assert!(
        text.contains(
            "# not imported: --device /dev/dri (a GPU's device: GPU access comes from `gpus`)"
        ),
        "{text}"
    );
}

#[test]
fn the_nvidia_docker_plugin_form_means_the_gpus_in_devices_mode() {
    // github.com/graphistry/graphistry-cli/blob/HEAD/docs/nvidia-docker-in-docker.md
    let (code, _, written) = import_script(
        "docker run -ti --rm `curl -s http://localhost:3476/docker/cli` nvidia/cuda nvidia-smi\n",
    );
    assert_eq!(code, 0);
    let text = &written[0].1;
    assert!(text.contains("image = \"nvidia/cuda\""), "{text}");
    assert!(text.contains("devices = \"all\""), "{text}");
    assert!(text.contains("mode = \"devices\""), "{text}");
    assert!(text.contains("that is `gpus` in devices mode"), "{text}");
}

#[test]
fn a_label_key_with_a_line_break_is_valid_toml() {
    let (code, _, written) =
        import_script("docker run --gpus 1 --label $'team\\nname=alice' --name lab busybox\n");
    assert_eq!(code, 0);
    assert!(written[0].1.contains("[labels]"), "{}", written[0].1);
}

#[test]
fn a_line_that_is_not_utf8_is_an_error_at_its_line_and_the_others_are_imported() {
    let host = seed_host();
    let dir = Profiles::new();
    let path = dir.path().join("run.sh");
    // A comment saved in Latin-1 (é as one byte), then a real line.
    let mut bytes = b"#!/bin/sh\n# r\xe9sum\xe9 of the run\n".to_vec();
    bytes.extend_from_slice(b"docker run --gpus all --name ok busybox\n");
    std::fs::write(&path, bytes).expect("script");
    let out = Launch::new()
        .args(host.args())
        .arg("import")
        .arg(&path)
        .run()
        .code(2);
    assert!(
        out.stderr.contains(&format!(
            "{}:2: byte 4 of this line is not UTF-8",
            path.display()
        )),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("name = \"ok\""), "{}", out.stdout);
}

#[test]
fn a_mig_instance_is_a_comment_with_a_warning_until_launch_selects_them() {
    // github.com/HuaizhengZhang/MIGProfiler/blob/HEAD/multi_instance_experiment.sh
    let (code, stderr, written) = import_script(
        "docker run --rm --gpus 'device=0:0' --net mig_perf \\\n--name profiler1 --cap-add SYS_ADMIN --shm-size=\"15g\" \\\n-v /home/migtest/MIGProfiler/data/:/workspace/data/  \\\nmig-perf/profiler:1.0 \"model_name=vision_transformer\" \"workload=cv_infer\" \"gpu_i_id=1\" &\n",
    );
    assert_eq!(code, 0);
    let text = &written[0].1;
    assert!(!text.contains("gpus ="), "{text}");
    assert!(
        text.contains("# not imported: the MIG instance 0:0 (launch selects whole GPUs"),
        "{text}"
    );
    assert!(
        stderr.contains("WARN") && stderr.contains("MIG instance 0:0"),
        "{stderr}"
    );
}

#[test]
fn a_shm_size_beside_the_hosts_ipc_is_a_comment_not_a_key() {
    // NVIDIA's NGC examples write both; Docker ignores the size there.
    let text = imported(&[
        "--shm-size=1g",
        "--ipc=host",
        "nvcr.io/nvidia/tritonserver:22.07-py3",
    ]);
    assert!(text.contains("ipc = \"host\"\n"), "{text}");
    assert!(!text.contains("shm_size ="), "{text}");
    assert!(
        text.contains("# not imported: --shm-size 1g (with --ipc=host"),
        "{text}"
    );
    // Without the host's IPC the size is the profile's.
    let text = imported(&["--shm-size=1g", "busybox"]);
    assert!(text.contains("shm_size = \"1g\"\n"), "{text}");
}
