//! `launch render` for other engines (docs/architecture.md, translation):
//! each output is checked by the target's own validator, and a key the
//! target cannot express fails at its line unless `--lossy`.

use std::path::Path;

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::fake_gpu::FakeGpuHost;
use crate::support::validators::validate;

/// A Kubernetes version with `resource.k8s.io/v1` (DRA, GA in 1.34).
const KUBERNETES: &str = "1.34.0";

fn render(profile: &Path, format: &str, extra: &[&str]) -> Output {
    Launch::new()
        .args(["--nvml-lib", "/nonexistent/libnvidia-ml.so.1", "render"])
        .arg(profile)
        .args(["--format", format])
        .args(extra)
        .run()
}

/// A profile using most keys, with a bind source that exists.
fn rich(dir: &Profiles, extra: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.path().join("data")).expect("test setup");
    let text = format!(
        r#"image = "nvcr.io/nvidia/pytorch:24.01-py3"
command = "python train.py --note '$$(not run)'"
interactive = true
gpus = {{ count = 2 }}
ports = ["8080:80", "9000/udp"]
volumes = ["./data:/data:ro", "cache:/cache", {{ type = "tmpfs", target = "/scratch" }}]
shm_size = "8G"
memory = "16G"
cpus = 2.5
cap_add = ["SYS_PTRACE"]
workdir = "/w"
stop_timeout = 20
healthcheck = {{ cmd = "curl -f localhost", interval = "30s", retries = 3 }}
{extra}
[env]
A = "1"
B = "x y"
[labels]
team = "cv"
"#
    );
    // An `extra` with its own ports replaces these.
    let text = if extra.contains("ports =") {
        text.replace("ports = [\"8080:80\", \"9000/udp\"]\n", "")
    } else {
        text
    };
    dir.write("acct_x.toml", &text)
}

fn write_out(dir: &Profiles, name: &str, out: &Output) -> std::path::PathBuf {
    dir.write(name, &out.stdout)
}

#[test]
fn ulimits_for_kubernetes_fail_at_their_line_and_lossy_drops_them_with_a_comment() {
    let kv = needs_validator!("kubernetes-validate");
    let dir = Profiles::new();
    let path = dir.write(
        "limits.toml",
        "image = \"busybox\"\ncommand = \"sleep 1d\"\n\n[ulimits]\nmemlock = -1\n",
    );
    let out = render(&path, "kubernetes", &[]).code(2);
    assert!(
        out.stderr
            .contains("`ulimits` cannot be expressed for kubernetes"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("limits.toml:4:2"),
        "file:line:col of the key: {}",
        out.stderr
    );
    assert_eq!(out.stdout, "", "nothing is printed when it fails");
    let lossy = render(&path, "kubernetes", &["--lossy"]).code(0);
    assert!(
        lossy.stdout.starts_with(
            "# dropped: `ulimits`: memlock: Kubernetes has no per-container ulimits\n"
        ),
        "{}",
        lossy.stdout
    );
    let file = write_out(&dir, "limits.yaml", &lossy);
    validate(&kv, &["--strict", "-k", KUBERNETES], &[&file]);
}

#[test]
fn kubernetes_output_passes_kubernetes_validate() {
    let kv = needs_validator!("kubernetes-validate");
    let dir = Profiles::new();
    // on-failure → a Job; always → a Deployment; none → a Pod.
    for (restart, kind) in [
        ("restart = \"on-failure:3\"", "kind: Job"),
        ("restart = \"always\"", "kind: Deployment"),
        ("", "kind: Pod"),
    ] {
        let path = rich(&dir, restart);
        let out = render(&path, "kubernetes", &[]).code(0);
        let text = &out.stdout;
        assert!(text.contains(kind), "{text}");
        assert!(text.contains("name: acct-x\n"), "DNS-1123 names: {text}");
        assert!(text.contains("nvidia.com/gpu: 2"), "{text}");
        assert!(text.contains("kind: Service"), "{text}");
        assert!(text.contains("kind: PersistentVolumeClaim"), "{text}");
        assert!(text.contains("mountPath: /dev/shm"), "{text}");
        assert!(text.contains("sizeLimit: \"8589934592\""), "{text}");
        assert!(
            text.contains("$$(not run)"),
            "Kubernetes would expand $(…): {text}"
        );
        let file = write_out(&dir, "out.yaml", &out);
        validate(&kv, &["--strict", "-k", KUBERNETES], &[&file]);
        std::fs::remove_file(file).expect("test setup");
        std::fs::remove_file(path).expect("test setup");
    }
}

#[test]
fn explicit_gpus_become_a_dra_claim_on_this_node() {
    let kv = needs_validator!("kubernetes-validate");
    let host = FakeGpuHost::builder().gpus(4).build();
    let dir = Profiles::new();
    let path = dir.write(
        "pinned.toml",
        "image = \"busybox\"\ncommand = \"sleep 1d\"\ngpus = [1, 3]\n",
    );
    let out = Launch::new()
        .args(host.args())
        .args(["render"])
        .arg(&path)
        .args(["--format", "kubernetes"])
        .run()
        .code(0);
    let text = &out.stdout;
    assert!(text.contains("kind: ResourceClaim"), "{text}");
    assert!(
        text.contains(&host.gpus[1].uuid) && text.contains(&host.gpus[3].uuid),
        "{text}"
    );
    assert!(!text.contains(&host.gpus[0].uuid), "{text}");
    assert!(text.contains("kubernetes.io/hostname:"), "{text}");
    let file = write_out(&dir, "pinned.yaml", &out);
    validate(&kv, &["--strict", "-k", KUBERNETES], &[&file]);
    // Compose names the same GPUs by UUID.
    let compose = Launch::new()
        .args(host.args())
        .args(["render"])
        .arg(&path)
        .args(["--format", "compose"])
        .run()
        .code(0);
    assert!(compose.stdout.contains("device_ids:"), "{}", compose.stdout);
    assert!(
        compose.stdout.contains(&host.gpus[3].uuid),
        "{}",
        compose.stdout
    );
}

#[test]
fn compose_output_passes_docker_compose_config() {
    let dc = needs_validator!("docker-compose");
    let dir = Profiles::new();
    let path = rich(
        &dir,
        "restart = \"unless-stopped\"\nulimits = { nofile = \"1024:2048\" }\nports = [\"127.0.0.1:8080:80\"]",
    );
    let out = render(&path, "compose", &[]).code(0);
    let text = &out.stdout;
    assert!(text.contains("count: 2"), "{text}");
    assert!(
        text.contains("127.0.0.1:8080:80/tcp"),
        "the host IP is kept: {text}"
    );
    let file = write_out(&dir, "compose.yaml", &out);
    validate(&dc, &["config", "-q", "-f"], &[&file]);
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let sa = needs_validator!("systemd-analyze");
    let dir = Profiles::new();
    let path = dir.write(
        "nightly job.toml",
        "image = \"busybox\"\nname = \"nightly\"\n",
    );
    let units = Profiles::new();
    let out = render(
        &path,
        "systemd",
        &["-o", units.path().to_str().expect("test setup")],
    )
    .code(0);
    assert!(
        out.stderr.contains("launch-nightly.timer"),
        "{}",
        out.stderr
    );
    let service = units.path().join("launch-nightly.service");
    let timer = units.path().join("launch-nightly.timer");
    let text = std::fs::read_to_string(&service).expect("test setup");
    assert!(
        text.contains(&format!(
            "ExecStart={} up \"{}\"",
            env!("CARGO_BIN_EXE_launch"),
            path.display()
        )),
        "{text}"
    );
    let timer_text = std::fs::read_to_string(&timer).expect("test setup");
    assert!(timer_text.contains("Persistent=true"), "{timer_text}");
    validate(&sa, &["verify"], &[&service, &timer]);
    // To stdout the files are separated by `# --- <file>` lines.
    let shown = render(&path, "systemd", &[]).code(0);
    assert!(
        shown.stdout.starts_with("# --- launch-nightly.service\n"),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("\n# --- launch-nightly.timer\n"),
        "{}",
        shown.stdout
    );
}

#[test]
fn slurm_scripts_pass_bash_n_and_sbatch_test_only_and_name_what_slurm_cannot_do() {
    let bash = needs_validator!("bash");
    // A one-node controller: 16 CPUs, 64 GiB, 8 GPUs (scripts/start-slurm.sh).
    let slurm = needs_slurm!();
    let dir = Profiles::new();
    let path = dir.write(
        "train.toml",
        "image = \"nvcr.io/nvidia/pytorch:24.01-py3\"\ncommand = [\"python\", \"train.py\", \"it's\"]\ngpus = { count = 4 }\nmemory = \"32G\"\ncpus = 8\nvolumes = [\"/tmp:/data:ro\"]\nworkdir = \"/w\"\n[env]\nMODE = \"fast run\"\n",
    );
    let out = render(&path, "slurm", &[]).code(0);
    let text = &out.stdout;
    for line in [
        "#SBATCH --gpus=4",
        "#SBATCH --mem=32768M",
        "#SBATCH --cpus-per-task=8",
        "--container-image=nvcr.io#nvidia/pytorch:24.01-py3",
        "--container-mounts=/tmp:/data:ro",
        "--container-env=MODE",
        "--container-workdir=/w",
        "export MODE='fast run'",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let file = write_out(&dir, "train.sbatch", &out);
    validate(&bash, &["-n"], &[&file]);
    let (ok, said) = slurm.test_only(&file);
    assert!(
        ok && said.contains("to start at"),
        "sbatch --test-only: {said}\n{text}"
    );
    // The check is real: more GPUs than the node has is refused.
    let big = dir.write(
        "big.toml",
        &std::fs::read_to_string(&path)
            .expect("test setup")
            .replace("count = 4", "count = 9"),
    );
    let out = render(&big, "slurm", &[]).code(0);
    assert!(out.stdout.contains("#SBATCH --gpus=9"), "{}", out.stdout);
    let file = write_out(&dir, "big.sbatch", &out);
    validate(&bash, &["-n"], &[&file]);
    let (ok, said) = slurm.test_only(&file);
    assert!(
        !ok && said.contains("Requested node configuration is not available"),
        "sbatch --test-only: {said}"
    );
    // Every key, with what Slurm cannot express dropped.
    let out = render(&rich(&dir, ""), "slurm", &["--lossy"]).code(0);
    let file = write_out(&dir, "rich.sbatch", &out);
    validate(&bash, &["-n"], &[&file]);
    let (ok, said) = slurm.test_only(&file);
    assert!(
        ok && said.contains("to start at"),
        "sbatch --test-only: {said}\n{}",
        out.stdout
    );
    let pinned = dir.write(
        "pinned.toml",
        "image = \"busybox\"\ncommand = \"true\"\nshm_size = \"1G\"\nports = [\"80\"]\n",
    );
    let out = render(&pinned, "slurm", &[]).code(2);
    assert!(
        out.stderr
            .contains("`shm_size` cannot be expressed for slurm")
            && out.stderr.contains("pinned.toml:3:1"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`ports` cannot be expressed for slurm")
            && out.stderr.contains("pinned.toml:4:1"),
        "{}",
        out.stderr
    );
    // Pinned GPUs: Slurm chooses them, so no host lookup is needed to say so.
    let gpus = dir.write(
        "gpus.toml",
        "image = \"busybox\"\ncommand = \"true\"\ngpus = [0]\n",
    );
    let out = render(&gpus, "slurm", &[]).code(2);
    assert!(
        out.stderr.contains("`gpus` cannot be expressed for slurm")
            && out.stderr.contains("gpus.toml:3:1"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_run_option_keys_render_for_kubernetes_and_compose() {
    let kv = needs_validator!("kubernetes-validate");
    let dc = needs_validator!("docker-compose");
    let dir = Profiles::new();
    let k8s = dir.write(
        "opts.toml",
        "image = \"busybox\"\ncommand = \"sleep 1d\"\nread_only = true\ngroup_add = [\"44\"]\nextra_hosts = [\"db:10.0.0.2\", \"cache:10.0.0.2\"]\ndns = [\"10.0.0.53\"]\nruntime = \"kata\"\nplatform = \"linux/arm64\"\n[sysctls]\n\"net.core.somaxconn\" = 1024\n",
    );
    let out = render(&k8s, "kubernetes", &[]).code(0);
    for want in [
        "readOnlyRootFilesystem: true",
        "supplementalGroups:",
        "hostAliases:",
        "- cache",
        "nameservers:",
        "runtimeClassName: kata",
        "kubernetes.io/arch: arm64",
        "net.core.somaxconn",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
    let file = write_out(&dir, "opts.yaml", &out);
    validate(&kv, &["--strict", "-k", KUBERNETES], &[&file]);

    let more = dir.write(
        "more.toml",
        "image = \"busybox\"\ncommand = \"sleep 1d\"\ninit = true\nmemory = \"1G\"\nmemory_swap = \"2G\"\ndevice_cgroup_rules = [\"c 10:200 rwm\"]\n[log]\ndriver = \"local\"\noptions = { max-size = \"5m\" }\n",
    );
    let out = render(&more, "kubernetes", &[]).code(2);
    for key in ["`init`", "`memory_swap`", "`device_cgroup_rules`", "`log`"] {
        assert!(
            out.stderr
                .contains(&format!("{key} cannot be expressed for kubernetes")),
            "{key}: {}",
            out.stderr
        );
    }
    let compose = render(&more, "compose", &[]).code(0);
    for want in [
        "init: true",
        "memswap_limit: 2147483648",
        "device_cgroup_rules:",
        "driver: local",
    ] {
        assert!(compose.stdout.contains(want), "{want}: {}", compose.stdout);
    }
    let file = write_out(&dir, "compose.yaml", &compose);
    validate(&dc, &["config", "-q", "-f"], &[&file]);
    let opts_compose = render(&k8s, "compose", &[]).code(0);
    let file = write_out(&dir, "compose2.yaml", &opts_compose);
    validate(&dc, &["config", "-q", "-f"], &[&file]);
}
