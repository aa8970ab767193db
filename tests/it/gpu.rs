//! GPU resolution (docs/architecture.md: resolve, the spec and its hash): what `launch gpus` and `launch render`
//! show for a fake GPU host (tests/support/fake_gpu.rs: a fake
//! libnvidia-ml.so.1, a dev root and a driver root), and that the rendered
//! `docker run` line makes the container the spec describes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{self, Scratch};
use crate::support::fake_gpu::{
    DEFAULT_DRIVER_VERSION, DRIVER_LIB_DIR, FakeGpu, FakeGpuHost, FakeGpuHostBuilder, SHARED_NODES,
    STALE_DRIVER_VERSION, ldconfig,
};
use serde_json::{Value, json};

const LIB64: &str = "/usr/local/nvidia/lib64";
const BIN: &str = "/usr/local/nvidia/bin";

// ---- helpers -----------------------------------------------------------------

/// GPUs with UUIDs no other test uses. The Docker daemon is shared, and a
/// container of another test may hold the default fake UUIDs (its
/// `launch.gpus` label), which would change what `{ count = N }` picks and
/// what `launch gpus` says holds them.
fn own_gpus(n: u32) -> Vec<FakeGpu> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let host = NEXT.fetch_add(1, Ordering::SeqCst);
    (0..n)
        .map(|i| FakeGpu {
            uuid: format!(
                "GPU-{:08x}-{host:04x}-4{i:03x}-8000-{:012x}",
                std::process::id(),
                u64::from(i) * 0x1111
            ),
            ..FakeGpu::new(i)
        })
        .collect()
}

fn host_of(gpus: Vec<FakeGpu>) -> FakeGpuHostBuilder {
    gpus.into_iter()
        .fold(FakeGpuHost::builder(), |builder, gpu| builder.gpu(gpu))
}

fn uuids(host: &FakeGpuHost, indices: &[usize]) -> Vec<String> {
    indices.iter().map(|&i| host.gpus[i].uuid.clone()).collect()
}

/// `launch render --format FORMAT PROFILE` against the fake host.
fn render(host: &FakeGpuHost, profile: &Path, format: &str) -> Output {
    Launch::new()
        .args(["render", "--format", format])
        .arg(profile)
        .args(host.args())
        .run()
}

fn parse(out: &Output) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", out.stdout))
}

/// `launch render --format json`, which must succeed.
fn render_json(host: &FakeGpuHost, profile: &Path) -> Value {
    parse(&render(host, profile, "json").code(0))
}

/// The rendered JSON of a profile with this text (its container is `gpu-test`).
fn rendered(host: &FakeGpuHost, text: &str) -> Value {
    let profiles = Profiles::new();
    let path = profiles.write("gpu-test.toml", text);
    render_json(host, &path)
}

fn spec(host: &FakeGpuHost, text: &str) -> Value {
    rendered(host, text)["spec"].clone()
}

fn hash(host: &FakeGpuHost, text: &str) -> String {
    rendered(host, text)["hash"]
        .as_str()
        .expect("render prints a hash")
        .to_string()
}

/// `launch gpus --json` against the fake host, which must succeed.
fn gpus_json(host: &FakeGpuHost) -> Value {
    parse(
        &Launch::new()
            .args(["gpus", "--json"])
            .args(host.args())
            .run()
            .code(0),
    )
}

fn gpus_table(host: &FakeGpuHost) -> String {
    Launch::new()
        .arg("gpus")
        .args(host.args())
        .run()
        .code(0)
        .stdout
}

/// The table row of the GPU with this UUID.
fn row<'a>(table: &'a str, uuid: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.contains(uuid))
        .unwrap_or_else(|| panic!("no row for {uuid} in\n{table}"))
}

/// The words of a rendered `docker run` line, as a POSIX shell splits them.
fn argv(line: &str) -> Vec<String> {
    shell_words::split(line).unwrap_or_else(|e| panic!("not a shell line ({e}):\n{line}"))
}

/// Whether `argv` has `flag value`.
fn has_option(argv: &[String], flag: &str, value: &str) -> bool {
    argv.windows(2).any(|w| w[0] == flag && w[1] == value)
}

/// A table row's cells (columns are padded apart by two spaces or more).
fn cells(row: &str) -> Vec<&str> {
    row.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// The spec's devices: container path → host path.
fn devices(spec: &Value) -> BTreeMap<String, String> {
    spec["devices"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    assert_eq!(d["permissions"], "rwm", "{d}");
                    (str_of(&d["container"]), str_of(&d["host"]))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The spec's mounts: target → (source, read-only).
fn mounts(spec: &Value) -> BTreeMap<String, (String, bool)> {
    let list = spec["mounts"].as_array().cloned().unwrap_or_default();
    let targets: Vec<&str> = list.iter().filter_map(|m| m["target"].as_str()).collect();
    let twice: BTreeSet<&str> = targets
        .iter()
        .filter(|t| targets.iter().filter(|u| u == t).count() > 1)
        .copied()
        .collect();
    assert!(
        twice.is_empty(),
        "mounted twice (Docker: \"Duplicate mount point\"): {twice:?}"
    );
    let map: BTreeMap<_, _> = list
        .iter()
        .map(|m| {
            (
                str_of(&m["target"]),
                (str_of(&m["source"]), m["read_only"] == json!(true)),
            )
        })
        .collect();
    map
}

fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("{v} is not a string"))
        .to_string()
}

fn path(p: &Path) -> String {
    p.to_str().expect("UTF-8 path").to_string()
}

/// The driver library `lib<stem>.so.<version>` in the fake driver root.
fn driver_lib(host: &FakeGpuHost, stem: &str) -> String {
    path(
        &host
            .driver_root
            .join(DRIVER_LIB_DIR)
            .join(format!("lib{stem}.so.{}", host.driver_version)),
    )
}

fn driver_bin(host: &FakeGpuHost, name: &str) -> String {
    path(&host.driver_root.join("usr/bin").join(name))
}

/// `ldconfig -r` the driver root again after a test changed its files.
fn rebuild_ld_cache(root: &Path) {
    let as_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let mut cmd = if as_root {
        Command::new(ldconfig())
    } else {
        let mut c = Command::new("unshare");
        c.args(["--map-root-user", "--"]).arg(ldconfig());
        c
    };
    let status = cmd.arg("-r").arg(root).status().expect("ldconfig runs");
    assert!(status.success(), "ldconfig -r {}", root.display());
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for a test).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A `launch`-managed container of `owner` holding `uuid`.
fn holder_owned_by(scratch: &Scratch, image: &str, what: &str, uuid: &str, owner: &str) {
    holder_labelled(scratch, image, what, uuid, &format!("launch.owner={owner}"));
}

/// A `launch`-managed container holding `uuid`, as another profile's would.
fn holder(scratch: &Scratch, image: &str, what: &str, uuid: &str) -> String {
    holder_labelled(scratch, image, what, uuid, "launch.test=holder")
}

fn holder_labelled(scratch: &Scratch, image: &str, what: &str, uuid: &str, label: &str) -> String {
    let name = scratch.name(what);
    docker::docker(&[
        "run",
        "-d",
        "--label",
        "launch.managed=true",
        "--label",
        &format!("launch.gpus={uuid}"),
        "--label",
        label,
        "--name",
        &name,
        image,
        "sleep",
        "1000",
    ]);
    name
}

// ---- launch gpus -------------------------------------------------------------

#[test]
fn gpus_json_does_not_call_a_gpu_free_when_no_engine_answered() {
    let host = host_of(own_gpus(2)).build();
    let out = Launch::new()
        .args([
            "gpus",
            "--json",
            "--host",
            "unix:///nonexistent/docker.sock",
        ])
        .args(host.args())
        .run()
        .code(0);
    let json = parse(&out);
    for gpu in json["gpus"].as_array().expect("a list of GPUs") {
        assert_eq!(gpu["holders"], json!([]), "{gpu}");
        assert_eq!(gpu["holders_complete"], false, "{gpu}");
    }
    assert!(
        out.stderr.contains("unknown") && out.stderr.contains("/nonexistent/docker.sock"),
        "{}",
        out.stderr
    );
}

#[test]
fn gpus_json_reports_each_gpu_as_nvml_sees_it() {
    let mut gpus = own_gpus(2);
    gpus[1].mem_used = 10 << 30;
    gpus[1].util_gpu = 37;
    let host = host_of(gpus).process(1, 4242, 1 << 30).build();

    let json = gpus_json(&host);
    assert_eq!(json["driver_version"], DEFAULT_DRIVER_VERSION);
    assert_eq!(json["cuda_version"], "12.4");
    let listed = json["gpus"].as_array().expect("a list of GPUs");
    assert_eq!(listed.len(), 2);
    for (i, (got, want)) in listed.iter().zip(&host.gpus).enumerate() {
        assert_eq!(got["index"], i, "{got}");
        assert_eq!(got["uuid"], want.uuid, "{got}");
        assert_eq!(got["name"], "NVIDIA H100 80GB HBM3", "{got}");
        assert_eq!(got["pci_bus_id"], want.bus_id, "{got}");
        assert_eq!(
            got["minor"], want.minor,
            "the minor is not the index: {got}"
        );
        assert_eq!(got["memory_total"], 80u64 << 30, "{got}");
        assert_eq!(got["mig"], false, "{got}");
    }
    // NVML's process is a holder, named as far as /proc tells.
    assert_eq!(listed[0]["holders"], json!([]));
    assert_eq!(listed[1]["holders"][0]["pid"], 4242, "{}", listed[1]);
    assert_eq!(listed[0]["memory_used"], 1u64 << 20);
    assert_eq!(listed[0]["utilization"], 0);
    assert_eq!(listed[0]["processes"], json!([]));
    assert_eq!(listed[1]["memory_used"], 10u64 << 30);
    assert_eq!(listed[1]["utilization"], 37);
    assert_eq!(
        listed[1]["processes"],
        json!([{ "pid": 4242, "used_memory": 1u64 << 30 }])
    );
}

#[test]
fn gpus_prints_a_table_of_index_name_uuid_memory_utilisation_processes_and_holder() {
    let mut gpus = own_gpus(2);
    gpus[1].mem_used = 10 << 30;
    gpus[1].util_gpu = 37;
    let host = host_of(gpus).process(1, 4242, 1 << 30).build();

    let table = gpus_table(&host);
    assert!(
        table.starts_with(&format!(
            "driver {DEFAULT_DRIVER_VERSION}, CUDA 12.4, 2 GPUs\n"
        )),
        "{table}"
    );
    let header = table.lines().nth(1).expect("a header line");
    assert_eq!(
        cells(header),
        [
            "IDX",
            "NAME",
            "UUID",
            "MEMORY USED",
            "UTIL",
            "PROCESSES",
            "HELD BY"
        ],
        "{table}"
    );
    let first = cells(row(&table, &host.gpus[0].uuid));
    assert_eq!(
        first[..6],
        [
            "0",
            "NVIDIA H100 80GB HBM3",
            host.gpus[0].uuid.as_str(),
            "1 MiB / 80 GiB",
            "0%",
            "-"
        ],
        "{table}"
    );
    let second = cells(row(&table, &host.gpus[1].uuid));
    assert_eq!(
        second[..6],
        [
            "1",
            "NVIDIA H100 80GB HBM3",
            host.gpus[1].uuid.as_str(),
            "10 GiB / 80 GiB",
            "37%",
            "4242"
        ],
        "{table}"
    );
}

#[test]
fn gpus_names_the_launch_container_holding_a_gpu() {
    needs_docker!();
    let scratch = Scratch::new("gpus-holder");
    let image = scratch.busybox_image("img", &[]);
    let host = host_of(own_gpus(2)).build();
    let name = holder(&scratch, &image, "holder", &host.gpus[1].uuid);

    let json = gpus_json(&host);
    assert_eq!(json["gpus"][0]["holders"], json!([]));
    assert_eq!(json["gpus"][0]["holders_complete"], true);
    assert_eq!(
        json["gpus"][1]["holders"],
        // Made without `launch.owner` (as before launch wrote it).
        json!([{ "kind": "launch", "name": name, "owner": "unknown" }])
    );
    let table = gpus_table(&host);
    assert_eq!(
        cells(row(&table, &host.gpus[1].uuid))[6],
        format!("{name} (unknown)"),
        "{table}"
    );
    assert_eq!(cells(row(&table, &host.gpus[0].uuid))[6], "-", "{table}");
}

#[test]
fn the_launch_nvml_lib_dev_root_and_driver_root_variables_work_like_the_flags() {
    let host = host_of(own_gpus(2)).build();
    let by_env = |args: &[&str]| {
        Launch::new()
            .args(args)
            .env("LAUNCH_NVML_LIB", &host.nvml_lib)
            .env("LAUNCH_DEV_ROOT", &host.dev_root)
            .env("LAUNCH_DRIVER_ROOT", &host.driver_root)
            .run()
            .code(0)
    };
    assert_eq!(parse(&by_env(&["gpus", "--json"])), gpus_json(&host));

    let profiles = Profiles::new();
    let profile = profiles.write(
        "gpu-test.toml",
        "image = \"busybox\"\ngpus = { devices = [1], mode = \"devices\" }\n",
    );
    let mut args = vec!["render", "--format", "json"];
    args.push(profile.to_str().unwrap());
    let from_env = parse(&by_env(&args));
    assert_eq!(from_env, render_json(&host, &profile));
    assert_eq!(
        devices(&from_env["spec"])["/dev/nvidia3"],
        path(&host.dev_root.join("dev/nvidia3"))
    );
    assert_eq!(
        mounts(&from_env["spec"])[&format!("{LIB64}/libcuda.so.1")].0,
        driver_lib(&host, "cuda")
    );
}

// ---- NVML failures -----------------------------------------------------------

#[test]
fn a_missing_libnvidia_ml_exits_1_naming_it() {
    let host = FakeGpuHost::builder().gpus(1).without_nvml().build();
    let out = Launch::new().arg("gpus").args(host.args()).run().code(1);
    assert!(
        out.stderr.contains(&format!(
            "no NVIDIA driver: {} could not be loaded",
            host.nvml_lib.display()
        )),
        "{}",
        out.stderr
    );

    let profiles = Profiles::new();
    let gpu = profiles.write("gpu-test.toml", "image = \"busybox\"\ngpus = \"all\"\n");
    let out = render(&host, &gpu, "json").code(1);
    assert!(
        out.stderr.contains("libnvidia-ml.so.1 could not be loaded"),
        "{}",
        out.stderr
    );

    // A profile without GPUs never touches NVML.
    let cpu = profiles.write("cpu-only.toml", "image = \"busybox\"\n");
    render(&host, &cpu, "json").code(0);
}

#[test]
fn nvml_init_failing_with_driver_not_loaded_exits_1_saying_so() {
    let host = FakeGpuHost::builder().gpus(1).init_error(9).build();
    let out = Launch::new().arg("gpus").args(host.args()).run().code(1);
    assert!(
        out.stderr.to_lowercase().contains("driver not loaded"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_query_the_driver_lacks_makes_that_field_unknown_instead_of_failing() {
    for (omitted, unsupported) in [
        (
            "nvmlDeviceGetUtilizationRates",
            "nvmlDeviceGetComputeRunningProcesses_v3",
        ),
        (
            "nvmlDeviceGetComputeRunningProcesses_v3",
            "nvmlDeviceGetUtilizationRates",
        ),
    ] {
        let host = host_of(own_gpus(2))
            .omit_symbol(omitted)
            .not_supported(unsupported)
            .build();
        let json = gpus_json(&host);
        for gpu in json["gpus"].as_array().expect("GPUs") {
            assert_eq!(gpu["utilization"], Value::Null, "{omitted}: {gpu}");
            assert_eq!(gpu["processes"], Value::Null, "{omitted}: {gpu}");
            // Everything else is still known.
            assert_eq!(gpu["memory_total"], 80u64 << 30, "{omitted}: {gpu}");
        }
        let table = gpus_table(&host);
        let row = cells(row(&table, &host.gpus[0].uuid));
        // IDX NAME UUID MEMORY UTIL PROCESSES HELD-BY
        assert_eq!((row[4], row[5]), ("?", "?"), "{omitted}:\n{table}");
        assert_eq!(row[3], "1 MiB / 80 GiB", "{omitted}:\n{table}");

        let devices_spec = spec(
            &host,
            "image = \"busybox\"\ngpus = { devices = [0], mode = \"devices\" }\n",
        );
        assert!(devices(&devices_spec).contains_key("/dev/nvidia2"));
    }
}

#[test]
fn a_mig_gpu_is_shown_as_such() {
    let mut gpus = own_gpus(2);
    gpus[1].mig = true;
    let host = host_of(gpus).build();
    let json = gpus_json(&host);
    assert_eq!(json["gpus"][0]["mig"], false);
    assert_eq!(json["gpus"][1]["mig"], true);
    let table = gpus_table(&host);
    assert!(
        row(&table, &host.gpus[1].uuid).contains("NVIDIA H100 80GB HBM3 [MIG]"),
        "{table}"
    );
    assert!(!row(&table, &host.gpus[0].uuid).contains("MIG"), "{table}");
}

// ---- selection ---------------------------------------------------------------

#[test]
fn a_gpus_device_node_is_dev_nvidia_minor_not_its_index() {
    let mut gpus = own_gpus(3);
    (gpus[0].minor, gpus[1].minor, gpus[2].minor) = (7, 0, 4);
    let host = host_of(gpus).build();
    let node = |minor: u32| path(&host.dev_root.join(format!("dev/nvidia{minor}")));

    let got = devices(&spec(
        &host,
        "image = \"busybox\"\ngpus = { devices = [0, 1], mode = \"devices\" }\n",
    ));
    let gpu_nodes: BTreeMap<_, _> = got
        .iter()
        .filter(|(c, _)| c.trim_start_matches("/dev/nvidia").parse::<u32>().is_ok())
        .map(|(c, h)| (c.as_str(), h.clone()))
        .collect();
    assert_eq!(
        gpu_nodes,
        BTreeMap::from([("/dev/nvidia0", node(0)), ("/dev/nvidia7", node(7))])
    );

    let got = devices(&spec(
        &host,
        "image = \"busybox\"\ngpus = { devices = [2], mode = \"devices\" }\n",
    ));
    assert_eq!(got.get("/dev/nvidia4"), Some(&node(4)));
    assert!(!got.contains_key("/dev/nvidia2"), "{got:?}");
}

#[test]
fn an_index_out_of_range_exits_2_at_its_line_and_column() {
    let host = FakeGpuHost::builder().gpus(8).build();
    let profiles = Profiles::new();
    let profile = profiles.write("gpu-test.toml", "image = \"busybox\"\ngpus = [0, 9]\n");
    let out = render(&host, &profile, "json").code(2);
    assert!(
        out.stderr
            .contains("GPU index 9 does not exist: this host has 8 GPUs (0–7)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{}:2:12", profile.display())),
        "{}",
        out.stderr
    );
    // `check` does not know the host.
    Launch::new().arg("check").arg(&profile).run().code(0);
}

#[test]
fn a_uuid_prefix_must_name_exactly_one_gpu() {
    let gpu = |i: u32, uuid: &str| FakeGpu {
        uuid: uuid.to_string(),
        ..FakeGpu::new(i)
    };
    let host = FakeGpuHost::builder()
        .gpu(gpu(0, "GPU-aaaa1111-0000-4000-8000-000000000000"))
        .gpu(gpu(1, "GPU-aaaa2222-0000-4000-8000-000000000001"))
        .gpu(gpu(2, "GPU-bbbb3333-0000-4000-8000-000000000002"))
        .build();
    let profiles = Profiles::new();
    let profile = |prefix: &str| {
        profiles.write(
            "gpu-test.toml",
            &format!("image = \"busybox\"\ngpus = [\"{prefix}\"]\n"),
        )
    };

    let out = render(&host, &profile("GPU-aaaa"), "json").code(2);
    assert!(
        out.stderr.contains("GPU GPU-aaaa is ambiguous"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("GPU-aaaa1111-0000-4000-8000-000000000000 (index 0)")
            && out
                .stderr
                .contains("GPU-aaaa2222-0000-4000-8000-000000000001 (index 1)"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("(index 2)"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{}:2:9",
            profiles.path().join("gpu-test.toml").display()
        )),
        "{}",
        out.stderr
    );

    let chosen = render_json(&host, &profile("GPU-aaaa2"));
    assert_eq!(
        chosen["spec"]["gpu"]["uuids"],
        json!(["GPU-aaaa2222-0000-4000-8000-000000000001"])
    );

    let out = render(&host, &profile("GPU-cccc"), "json").code(2);
    assert!(
        out.stderr.contains("GPU GPU-cccc matches no device"),
        "{}",
        out.stderr
    );
}

#[test]
fn one_gpu_named_by_index_and_by_uuid_is_listed_twice() {
    let host = host_of(own_gpus(2)).build();
    let profiles = Profiles::new();
    let prefix = &host.gpus[1].uuid[..22];
    let profile = profiles.write(
        "gpu-test.toml",
        &format!("image = \"busybox\"\ngpus = [1, \"{prefix}\"]\n"),
    );
    let out = render(&host, &profile, "json").code(2);
    assert!(
        out.stderr.contains(&format!(
            "GPU {} (index 1) is listed twice",
            host.gpus[1].uuid
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("{}:2:12", profile.display())),
        "{}",
        out.stderr
    );
}

#[test]
fn count_skips_gpus_running_processes_and_prefers_the_least_memory_used() {
    let mut gpus = own_gpus(4);
    let gib = |n: u64| n << 30;
    (gpus[1].mem_used, gpus[2].mem_used, gpus[3].mem_used) = (gib(20), gib(5), gib(10));
    // GPU 0 uses the least memory, but runs a process.
    let host = host_of(gpus).process(0, 4242, gib(1) / 2).build();

    let got = spec(
        &host,
        "image = \"busybox\"\ngpus = { count = 2, mode = \"toolkit\" }\n",
    );
    assert_eq!(got["gpu"]["uuids"], json!(uuids(&host, &[2, 3])));
    assert_eq!(
        got["env"]["NVIDIA_VISIBLE_DEVICES"],
        uuids(&host, &[2, 3]).join(",")
    );
}

#[test]
fn count_skips_gpus_held_by_another_launch_container() {
    needs_docker!();
    let scratch = Scratch::new("count-held");
    let image = scratch.busybox_image("img", &[]);
    let mut gpus = own_gpus(3);
    (gpus[1].mem_used, gpus[2].mem_used) = (2 << 30, 3 << 30);
    let host = host_of(gpus).build();
    // GPU 0 uses the least memory, but another profile's container holds it.
    holder(&scratch, &image, "holder", &host.gpus[0].uuid);

    let got = spec(
        &host,
        "image = \"busybox\"\ngpus = { count = 1, mode = \"toolkit\" }\n",
    );
    assert_eq!(got["gpu"]["uuids"], json!(uuids(&host, &[1])));
}

#[test]
fn too_few_free_gpus_exits_3_saying_who_holds_what() {
    needs_docker!();
    let scratch = Scratch::new("count-short");
    let image = scratch.busybox_image("img", &[]);
    let host = host_of(own_gpus(3)).process(2, 4242, 1 << 30).build();
    let name = holder(&scratch, &image, "holder", &host.gpus[0].uuid);

    let profiles = Profiles::new();
    let profile = profiles.write(
        "gpu-test.toml",
        "image = \"busybox\"\ngpus = { count = 2 }\n",
    );
    let out = render(&host, &profile, "json").code(3);
    let err = &out.stderr;
    assert!(
        err.contains("not enough free GPUs: the profile asks for 2, 1 of 3 is free"),
        "{err}"
    );
    let line = |i: usize| {
        err.lines()
            .find(|l| l.contains(&host.gpus[i].uuid))
            .unwrap_or_else(|| panic!("GPU {i} is not listed:\n{err}"))
    };
    assert!(
        line(0).ends_with(&format!("held by container {name}")),
        "{err}"
    );
    assert!(line(1).ends_with("free"), "{err}");
    assert!(line(2).contains("pid 4242"), "{err}");
}

// ---- injection modes -----------------------------------------------------------

const TWO_GPUS: &str = "image = \"busybox\"\n[gpus]\ndevices = [0, 2]\n";

#[test]
fn toolkit_mode_sends_a_device_request_for_the_uuids() {
    let host = host_of(own_gpus(3)).build();
    let got = spec(&host, &format!("{TWO_GPUS}mode = \"toolkit\"\n"));
    assert_eq!(
        got["device_requests"],
        json!([{
            "driver": "",
            "device_ids": uuids(&host, &[0, 2]),
            "capabilities": [["gpu", "compute", "utility"]],
        }])
    );
    assert_gpu_and_shared_nodes(&host, &got, &[0, 2]);
    assert_eq!(got["mounts"], Value::Null, "no driver files: {got}");
    assert_eq!(got["env"]["CUDA_DEVICE_ORDER"], "PCI_BUS_ID", "{got}");
}

/// The chosen GPUs' nodes (by minor, not index) and the shared nodes, and
/// nothing else: what keeps the GPUs after a daemon-reload.
fn assert_gpu_and_shared_nodes(host: &FakeGpuHost, spec: &Value, indices: &[usize]) {
    let dev = host.dev_root.join("dev");
    let mut want: BTreeMap<String, String> = indices
        .iter()
        .map(|&i| {
            let node = format!("nvidia{}", host.gpus[i].minor);
            (format!("/dev/{node}"), path(&dev.join(&node)))
        })
        .collect();
    for (name, _, _) in SHARED_NODES {
        want.insert(format!("/dev/{name}"), path(&dev.join(name)));
    }
    assert_eq!(devices(spec), want, "{spec}");
}

#[test]
fn cdi_mode_requests_cdi_devices_by_uuid() {
    let host = host_of(own_gpus(3)).build();
    let got = spec(&host, &format!("{TWO_GPUS}mode = \"cdi\"\n"));
    let ids: Vec<String> = uuids(&host, &[0, 2])
        .iter()
        .map(|u| format!("nvidia.com/gpu={u}"))
        .collect();
    assert_eq!(
        got["device_requests"],
        json!([{ "driver": "cdi", "device_ids": ids }])
    );
    assert_gpu_and_shared_nodes(&host, &got, &[0, 2]);
    assert_eq!(got["mounts"], Value::Null, "{got}");

    let profiles = Profiles::new();
    let profile = profiles.write("gpu-test.toml", &format!("{TWO_GPUS}mode = \"cdi\"\n"));
    let argv = argv(&render(&host, &profile, "docker-run").code(0).stdout);
    for id in &ids {
        assert!(has_option(&argv, "--device", id), "{argv:?}");
    }
}

#[test]
fn devices_mode_passes_the_nodes_and_mounts_the_running_drivers_files_read_only() {
    let host = host_of(own_gpus(3)).build();
    let got = spec(&host, &format!("{TWO_GPUS}mode = \"devices\"\n"));
    assert_eq!(got["device_requests"], Value::Null, "no toolkit: {got}");

    let node = |name: &str| path(&host.dev_root.join("dev").join(name));
    let want_devices: BTreeMap<String, String> = [
        "nvidia2",
        "nvidia4",
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia-modeset",
    ]
    .iter()
    .map(|n| (format!("/dev/{n}"), node(n)))
    .collect();
    assert_eq!(devices(&got), want_devices);

    // compute and utility (the default), as libnvidia-container lists them.
    let mut want_mounts = BTreeMap::new();
    for (stem, soname) in [
        ("cuda", "libcuda.so.1"),
        ("nvidia-ptxjitcompiler", "libnvidia-ptxjitcompiler.so.1"),
        ("nvidia-nvvm", "libnvidia-nvvm.so.4"),
        ("nvidia-allocator", "libnvidia-allocator.so.1"),
        ("nvidia-ml", "libnvidia-ml.so.1"),
        ("nvidia-cfg", "libnvidia-cfg.so.1"),
    ] {
        let source = driver_lib(&host, stem);
        let name = format!("lib{stem}.so.{DEFAULT_DRIVER_VERSION}");
        want_mounts.insert(format!("{LIB64}/{name}"), (source.clone(), true));
        want_mounts.insert(format!("{LIB64}/{soname}"), (source, true));
    }
    for name in [
        "nvidia-smi",
        "nvidia-debugdump",
        "nvidia-persistenced",
        "nvidia-cuda-mps-control",
        "nvidia-cuda-mps-server",
    ] {
        want_mounts.insert(format!("{BIN}/{name}"), (driver_bin(&host, name), true));
    }
    want_mounts.insert(
        "/run/nvidia-persistenced/socket".into(),
        (
            path(&host.driver_root.join("run/nvidia-persistenced/socket")),
            true,
        ),
    );
    assert_eq!(mounts(&got), want_mounts);

    assert_eq!(got["env"]["LD_LIBRARY_PATH"], LIB64);
    let path_var = str_of(&got["env"]["PATH"]);
    assert!(path_var.starts_with(&format!("{BIN}:")), "{path_var}");
    assert!(
        path_var.contains(":/usr/bin:") && path_var.ends_with(":/bin"),
        "{path_var}"
    );
}

#[test]
fn devices_mode_mounts_the_libraries_of_the_capabilities_asked_for() {
    let host = host_of(own_gpus(1)).build();
    let targets = |caps: &str| -> BTreeSet<String> {
        mounts(&spec(
            &host,
            &format!(
                "image = \"busybox\"\n[gpus]\ndevices = [0]\nmode = \"devices\"\ncapabilities = {caps}\n"
            ),
        ))
        .into_keys()
        .collect()
    };

    let utility = targets(r#"["utility"]"#);
    assert!(
        utility.contains(&format!("{LIB64}/libnvidia-ml.so.1")),
        "{utility:?}"
    );
    assert!(
        utility.contains(&format!("{BIN}/nvidia-smi")),
        "{utility:?}"
    );
    assert!(
        !utility.contains(&format!("{LIB64}/libcuda.so.1")),
        "{utility:?}"
    );
    assert!(
        !utility.contains(&format!("{BIN}/nvidia-cuda-mps-control")),
        "{utility:?}"
    );

    let video = targets(r#"["compute", "utility", "video"]"#);
    for lib in [
        "libcuda.so.1",
        "libnvidia-encode.so.1",
        "libnvcuvid.so.1",
        "libnvidia-opticalflow.so.1",
    ] {
        assert!(
            video.contains(&format!("{LIB64}/{lib}")),
            "{lib}: {video:?}"
        );
    }
    assert!(
        !video.contains(&format!("{LIB64}/libGLX_nvidia.so.0")),
        "{video:?}"
    );

    let all = targets(r#"["all"]"#);
    assert!(
        all.contains(&format!("{LIB64}/libGLX_nvidia.so.0")),
        "{all:?}"
    );
}

#[test]
fn devices_mode_never_mounts_the_stale_libcuda_of_an_older_driver() {
    // The default driver sorts above the stale 470 library; 460 sorts below it.
    for version in [DEFAULT_DRIVER_VERSION, "460.91.03"] {
        let host = host_of(own_gpus(1)).driver_version(version).build();
        assert!(
            host.driver_root
                .join(DRIVER_LIB_DIR)
                .join(format!("libcuda.so.{STALE_DRIVER_VERSION}"))
                .is_file(),
            "the fake host has the stale library"
        );
        let got = spec(
            &host,
            "image = \"busybox\"\ngpus = { devices = [0], mode = \"devices\" }\n",
        );
        let all = mounts(&got);
        assert_eq!(
            all[&format!("{LIB64}/libcuda.so.1")].0,
            driver_lib(&host, "cuda")
        );
        assert_eq!(
            all[&format!("{LIB64}/libcuda.so.{version}")].0,
            driver_lib(&host, "cuda")
        );
        for (target, (source, _)) in &all {
            assert!(
                !target.contains(STALE_DRIVER_VERSION) && !source.contains(STALE_DRIVER_VERSION),
                "{version}: the stale library is mounted: {target} <- {source}"
            );
        }
        assert_eq!(got["gpu"]["driver_version"], version);
    }
}

#[test]
fn devices_mode_without_the_running_drivers_libcuda_exits_1_rather_than_take_the_stale_one() {
    let host = host_of(own_gpus(1)).build();
    let lib_dir = host.driver_root.join(DRIVER_LIB_DIR);
    std::fs::remove_file(lib_dir.join("libcuda.so.1")).expect("rm libcuda.so.1");
    std::fs::remove_file(lib_dir.join(format!("libcuda.so.{DEFAULT_DRIVER_VERSION}")))
        .expect("rm libcuda");
    rebuild_ld_cache(&host.driver_root);
    assert!(
        lib_dir
            .join(format!("libcuda.so.{STALE_DRIVER_VERSION}"))
            .is_file()
    );

    let profiles = Profiles::new();
    let profile = profiles.write(
        "gpu-test.toml",
        "image = \"busybox\"\ngpus = { devices = [0], mode = \"devices\" }\n",
    );
    let out = render(&host, &profile, "json").code(1);
    assert!(
        out.stderr
            .contains(&format!("no libcuda.so.{DEFAULT_DRIVER_VERSION} found")),
        "{}",
        out.stderr
    );
}

/// A devices-mode profile for GPU 0 mounts `libcuda.so.1` and
/// `libnvidia-ml.so.1` from the running driver's files (`mounts` fails on
/// two mounts at one target, as Docker does: "Duplicate mount point").
fn assert_libcuda_and_nvml_mounted_once(host: &FakeGpuHost) {
    let all = mounts(&spec(
        host,
        "image = \"busybox\"\ngpus = { devices = [0], mode = \"devices\" }\n",
    ));
    assert_eq!(
        all[&format!("{LIB64}/libcuda.so.1")].0,
        driver_lib(host, "cuda")
    );
    assert_eq!(
        all[&format!("{LIB64}/libnvidia-ml.so.1")].0,
        driver_lib(host, "nvidia-ml")
    );
}

#[test]
fn without_an_ld_cache_the_library_folders_are_read() {
    // The cache decides when it knows the driver; a host without one (or
    // with one from before the driver) still gets its libraries mounted.
    let host = host_of(own_gpus(1)).build();
    std::fs::remove_file(host.driver_root.join("etc/ld.so.cache")).expect("rm the cache");
    assert_libcuda_and_nvml_mounted_once(&host);
}

#[test]
fn linker_name_links_from_dev_packages_do_not_mount_a_library_twice() {
    // libcuda.so → libcuda.so.1, as libcuda's -dev package installs it; the
    // ld.so cache then lists the library under both names.
    let host = host_of(own_gpus(1)).build();
    let lib_dir = host.driver_root.join(DRIVER_LIB_DIR);
    for stem in ["cuda", "nvidia-ml"] {
        std::os::unix::fs::symlink(
            format!("lib{stem}.so.1"),
            lib_dir.join(format!("lib{stem}.so")),
        )
        .expect("symlink");
    }
    rebuild_ld_cache(&host.driver_root);
    assert_libcuda_and_nvml_mounted_once(&host);
}

#[test]
fn a_shared_node_the_host_lacks_is_left_out() {
    let host = host_of(own_gpus(1))
        .without_node("nvidia-uvm-tools")
        .build();
    let got = devices(&spec(
        &host,
        "image = \"busybox\"\ngpus = { devices = [0], mode = \"devices\" }\n",
    ));
    assert!(!got.contains_key("/dev/nvidia-uvm-tools"), "{got:?}");
    for present in [
        "/dev/nvidiactl",
        "/dev/nvidia-uvm",
        "/dev/nvidia-modeset",
        "/dev/nvidia2",
    ] {
        assert!(got.contains_key(present), "{present}: {got:?}");
    }
}

#[test]
fn a_missing_gpu_node_in_devices_mode_exits_1_naming_it() {
    let host = host_of(own_gpus(2)).without_node("nvidia3").build();
    let profiles = Profiles::new();
    let profile = profiles.write(
        "gpu-test.toml",
        "image = \"busybox\"\ngpus = { devices = [1], mode = \"devices\" }\n",
    );
    let out = render(&host, &profile, "json").code(1);
    assert!(out.stderr.contains("/dev/nvidia3"), "{}", out.stderr);
    assert!(out.stderr.contains(&host.gpus[1].uuid), "{}", out.stderr);
}

#[test]
fn every_mode_sets_nvidia_visible_devices_and_driver_capabilities() {
    let host = host_of(own_gpus(3)).build();
    for mode in ["toolkit", "cdi", "devices", "auto"] {
        let got = spec(
            &host,
            &format!(
                "{TWO_GPUS}mode = \"{mode}\"\ncapabilities = [\"compute\", \"utility\", \"video\"]\n"
            ),
        );
        assert_eq!(
            got["env"]["NVIDIA_VISIBLE_DEVICES"],
            uuids(&host, &[0, 2]).join(","),
            "{mode}"
        );
        assert_eq!(
            got["env"]["NVIDIA_DRIVER_CAPABILITIES"], "compute,utility,video",
            "{mode}"
        );
        assert_eq!(got["gpu"]["uuids"], json!(uuids(&host, &[0, 2])), "{mode}");
        assert_eq!(
            got["gpu"]["driver_version"], DEFAULT_DRIVER_VERSION,
            "{mode}"
        );
    }
}

#[test]
fn auto_mode_injects_devices_on_a_host_without_the_toolkit_and_says_why() {
    let host = host_of(own_gpus(1)).build();
    let profiles = Profiles::new();
    let profile = profiles.write(
        "gpu-test.toml",
        "image = \"busybox\"\ngpus = { devices = [0] }\n",
    );
    let got = render_json(&host, &profile);
    assert_eq!(got["gpu_mode"], "devices");
    assert_eq!(got["spec"]["gpu"]["mode"], "devices");
    let why = str_of(&got["gpu_mode_reason"]);
    // On Podman auto never sends toolkit requests, and says so.
    assert!(
        why.starts_with("auto:")
            && (why.contains("no NVIDIA Container Toolkit")
                || why.contains("drops toolkit requests")),
        "{why}"
    );
    assert!(devices(&got["spec"]).contains_key("/dev/nvidia2"));

    let line = render(&host, &profile, "docker-run").code(0).stdout;
    assert!(
        line.starts_with(&format!("# GPU mode: devices ({why})\n")),
        "{line}"
    );
}

// ---- the docker run line -------------------------------------------------------

/// `sh -c "$(launch render PROFILE)"`, as a user would run it.
fn run_rendered(host: &FakeGpuHost, profile: &Path) -> std::process::Output {
    let line = render(host, profile, "docker-run").code(0).stdout;
    Command::new("sh")
        .arg("-c")
        .arg(&line)
        .output()
        .expect("sh runs")
}

#[test]
fn the_rendered_docker_run_line_makes_the_container_the_spec_describes() {
    needs_docker!();
    not_on_podman!(crate::support::docker::CLI_DEVICES_ON_PODMAN);
    let scratch = Scratch::new("render-run");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("ctr");
    let host = host_of(own_gpus(2)).build();
    let profiles = Profiles::new();
    std::fs::create_dir(profiles.path().join("data")).expect("mkdir data");
    let port = free_port();
    let profile = profiles.write(
        "gpu-test.toml",
        &format!(
            r#"image = "{image}"
name = "{name}"
command = ["sleep", "1000"]
pull = "never"
ports = ["127.0.0.1:{port}:80"]
shm_size = "256m"
volumes = ["./data:/data:ro"]
env = {{ GREETING = "hello world" }}
gpus = {{ devices = [1], mode = "devices" }}
"#
        ),
    );
    let want = render_json(&host, &profile);
    let spec = &want["spec"];

    let ran = run_rendered(&host, &profile);
    assert!(
        ran.status.success(),
        "docker run failed:\n{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let inspect = |format: &str| -> Value {
        serde_json::from_str(&docker::inspect(&name, &format!("{{{{json {format}}}}}")))
            .expect("docker inspect prints JSON")
    };
    assert_eq!(inspect(".State.Running"), true);

    let got_devices: BTreeMap<String, String> = inspect(".HostConfig.Devices")
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            assert_eq!(d["CgroupPermissions"], "rwm", "{d}");
            (str_of(&d["PathInContainer"]), str_of(&d["PathOnHost"]))
        })
        .collect();
    assert_eq!(got_devices, devices(spec));
    assert!(got_devices.contains_key("/dev/nvidia3"), "{got_devices:?}");

    let got_mounts: BTreeMap<String, (String, bool)> = inspect(".HostConfig.Mounts")
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| {
            assert_eq!(m["Type"], "bind", "{m}");
            (
                str_of(&m["Target"]),
                (str_of(&m["Source"]), m["ReadOnly"] == json!(true)),
            )
        })
        .collect();
    assert_eq!(got_mounts, mounts(spec));
    assert_eq!(
        got_mounts["/data"],
        (path(&profiles.path().join("data")), true)
    );

    assert_eq!(
        inspect(".HostConfig.PortBindings"),
        json!({ "80/tcp": [{ "HostIp": "127.0.0.1", "HostPort": port.to_string() }] })
    );
    assert_eq!(inspect(".HostConfig.ShmSize"), json!(256u64 << 20));
    assert_eq!(spec["shm_size"], json!(256u64 << 20));

    let env: BTreeSet<String> = inspect(".Config.Env")
        .as_array()
        .expect("env")
        .iter()
        .map(str_of)
        .collect();
    for (k, v) in spec["env"].as_object().expect("env") {
        let entry = format!("{k}={}", v.as_str().expect("a string"));
        assert!(env.contains(&entry), "{entry} not in {env:?}");
    }
    assert_eq!(inspect(".Config.Cmd"), json!(["sleep", "1000"]));
    let labels = inspect(".Config.Labels");
    assert_eq!(labels["launch.spec-hash"], want["hash"]);
    assert_eq!(labels["launch.gpus"], host.gpus[1].uuid.as_str());

    // `launch up` sees its own container with the same hash: nothing to do.
    let up = Launch::new()
        .arg("up")
        .arg(&profile)
        .args(host.args())
        .run()
        .code(0);
    assert_eq!(
        up.stdout.trim(),
        format!("{name}: up to date"),
        "{}",
        up.stderr
    );
}

#[test]
fn the_rendered_toolkit_line_asks_docker_for_the_same_gpus() {
    needs_docker!();
    not_on_podman!(crate::support::docker::CLI_DEVICES_ON_PODMAN);
    let scratch = Scratch::new("render-toolkit");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("ctr");
    let host = host_of(own_gpus(3)).build();
    let profiles = Profiles::new();
    let profile = profiles.write(
        "gpu-test.toml",
        &format!(
            "image = \"{image}\"\nname = \"{name}\"\ncommand = \"true\"\npull = \"never\"\ngpus = {{ devices = [0, 2], mode = \"toolkit\" }}\n"
        ),
    );
    // No toolkit here, so the container cannot start: create it only.
    let line = render(&host, &profile, "docker-run").code(0).stdout;
    let create = line.replacen("docker run -d", "docker create", 1);
    assert_ne!(create, line);
    docker::sh(&create);

    let requests: Value = serde_json::from_str(&docker::inspect(
        &name,
        "{{json .HostConfig.DeviceRequests}}",
    ))
    .expect("JSON");
    let requests = requests.as_array().expect("device requests");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["Driver"], "");
    assert_eq!(requests[0]["DeviceIDs"], json!(uuids(&host, &[0, 2])));
    let caps: BTreeSet<&str> = requests[0]["Capabilities"][0]
        .as_array()
        .expect("capabilities")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(caps, BTreeSet::from(["gpu", "compute", "utility"]));

    // The device nodes are listed too, so a daemon-reload keeps them.
    let listed: Value =
        serde_json::from_str(&docker::inspect(&name, "{{json .HostConfig.Devices}}"))
            .expect("JSON");
    let listed: BTreeSet<String> = listed
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| str_of(&d["PathInContainer"]))
        .collect();
    let mut want: BTreeSet<String> = [0, 2]
        .iter()
        .map(|&i| format!("/dev/nvidia{}", host.gpus[i].minor))
        .collect();
    want.extend(SHARED_NODES.iter().map(|(n, _, _)| format!("/dev/{n}")));
    assert_eq!(listed, want);
    let env = docker::inspect(&name, "{{json .Config.Env}}");
    assert!(env.contains("\"CUDA_DEVICE_ORDER=PCI_BUS_ID\""), "{env}");
}

// ---- bind sources --------------------------------------------------------------

#[test]
fn a_missing_bind_source_fails_render_at_the_volume_but_not_check() {
    let host = host_of(own_gpus(1)).build();
    let profiles = Profiles::new();
    let missing = profiles.path().join("no-such-folder");
    let profile = profiles.write(
        "gpu-test.toml",
        &format!(
            "image = \"busybox\"\nvolumes = [\"/etc:/host-etc:ro\", \"{}:/data\"]\n",
            missing.display()
        ),
    );
    for format in ["json", "docker-run"] {
        let out = render(&host, &profile, format).code(2);
        assert!(
            out.stderr
                .contains(&format!("bind source {} does not exist", missing.display())),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("{}:2:33", profile.display())),
            "{}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{}", out.stdout);
    }
    // Whether it exists is a fact of the host; check stays host-independent.
    Launch::new().arg("check").arg(&profile).run().code(0);
}

#[test]
fn a_missing_bind_source_with_create_true_is_accepted() {
    let host = host_of(own_gpus(1)).build();
    let profiles = Profiles::new();
    let missing = path(&profiles.path().join("made-on-demand"));
    let got = spec(
        &host,
        &format!(
            "image = \"busybox\"\nvolumes = [{{ source = \"{missing}\", target = \"/data\", create = true }}]\n"
        ),
    );
    assert_eq!(mounts(&got)["/data"], (missing, false));
}

// ---- the hash ------------------------------------------------------------------

#[test]
fn the_hash_ignores_the_order_of_keys_env_entries_volumes_and_ports() {
    let host = host_of(own_gpus(2)).build();
    let profiles = Profiles::new();
    for d in ["a", "b"] {
        std::fs::create_dir(profiles.path().join(d)).expect("mkdir");
    }
    let one = profiles.write(
        "one.toml",
        r#"name = "same"
image = "busybox"
shm_size = "1G"
ports = ["127.0.0.1:8080:80", "9090:90/udp"]
volumes = ["./a:/a", "./b:/b:ro"]
env = { A = "1", B = "2", C = "3" }
gpus = { devices = [0, 1], mode = "toolkit" }
"#,
    );
    let two = profiles.write(
        "two.toml",
        r#"gpus = { mode = "toolkit", devices = [0, 1] }
volumes = ["./b:/b:ro", "./a:/a"]
ports = ["9090:90/udp", "127.0.0.1:8080:80"]
image = "busybox"
shm_size = "1G"
name = "same"

[env]
C = "3"
A = "1"
B = "2"
"#,
    );
    let (one, two) = (render_json(&host, &one), render_json(&host, &two));
    assert_eq!(one["spec"], two["spec"]);
    assert_eq!(one["hash"], two["hash"]);
}

#[test]
fn the_hash_changes_with_anything_that_reaches_the_engine() {
    let host = host_of(own_gpus(2)).build();
    let profiles = Profiles::new();
    std::fs::create_dir(profiles.path().join("a")).expect("mkdir");
    let base = r#"name = "same"
image = "busybox"
command = ["sleep", "1000"]
shm_size = "1G"
ports = ["127.0.0.1:8080:80"]
volumes = ["./a:/a"]
env = { A = "1" }
gpus = { devices = [0], mode = "toolkit" }
"#;
    let variants = [
        ("image", base.replace("\"busybox\"", "\"busybox:1.36\"")),
        ("command", base.replace("\"1000\"", "\"2000\"")),
        ("an env value", base.replace("A = \"1\"", "A = \"2\"")),
        (
            "an env entry",
            base.replace("A = \"1\"", "A = \"1\", B = \"1\""),
        ),
        ("a host port", base.replace(":8080:", ":8081:")),
        ("a port's address", base.replace("127.0.0.1:", "0.0.0.0:")),
        ("a volume's mode", base.replace("./a:/a", "./a:/a:ro")),
        ("a volume's target", base.replace("./a:/a", "./a:/b")),
        ("shm size", base.replace("\"1G\"", "\"2G\"")),
        ("the name", base.replace("\"same\"", "\"other\"")),
        ("a label", format!("{base}labels = {{ team = \"cv\" }}\n")),
        ("the network", format!("network = \"none\"\n{base}")),
        (
            "the entrypoint",
            format!("entrypoint = [\"/bin/sh\", \"-c\"]\n{base}"),
        ),
        ("interactive", format!("interactive = true\n{base}")),
        ("the user", format!("user = \"1000\"\n{base}")),
        ("the hostname", format!("hostname = \"box\"\n{base}")),
        ("the ipc mode", format!("ipc = \"shareable\"\n{base}")),
        ("privileged", format!("privileged = true\n{base}")),
        (
            "a capability",
            format!("cap_add = [\"SYS_PTRACE\"]\n{base}"),
        ),
        (
            "a security option",
            format!("security_opt = [\"seccomp=unconfined\"]\n{base}"),
        ),
        ("the memory limit", format!("memory = \"4g\"\n{base}")),
        ("the CPU limit", format!("cpus = 1.5\n{base}")),
        (
            "the restart policy",
            format!("restart = \"unless-stopped\"\n{base}"),
        ),
        ("the stop timeout", format!("stop_timeout = 30\n{base}")),
        (
            "an extra device",
            format!("devices = [\"/dev/null:/dev/extra\"]\n{base}"),
        ),
        ("a ulimit", format!("ulimits = {{ memlock = -1 }}\n{base}")),
        (
            "the healthcheck",
            format!("healthcheck = {{ cmd = [\"true\"], interval = \"5s\" }}\n{base}"),
        ),
        (
            "the working directory",
            format!("workdir = \"/srv\"\n{base}"),
        ),
        ("the GPU", base.replace("devices = [0]", "devices = [1]")),
        ("the GPU mode", base.replace("\"toolkit\"", "\"cdi\"")),
        (
            "the capabilities",
            base.replace(
                "mode = \"toolkit\"",
                "mode = \"toolkit\", capabilities = [\"compute\"]",
            ),
        ),
    ];
    let hash_of = |text: &str| {
        let p = profiles.write("same.toml", text);
        render_json(&host, &p)["hash"]
            .as_str()
            .expect("hash")
            .to_string()
    };
    let first = hash_of(base);
    assert_eq!(hash_of(base), first, "rendering twice gives one hash");
    let mut seen = BTreeMap::from([(first, "the base profile")]);
    for (what, text) in &variants {
        assert_ne!(text, base, "{what}: the variant is the base");
        if let Some(earlier) = seen.insert(hash_of(text), what) {
            panic!("changing {what} gives the same hash as {earlier}");
        }
    }
}

#[test]
fn the_hash_changes_with_the_driver_version_and_the_gpu_uuids() {
    let text =
        "name = \"same\"\nimage = \"busybox\"\ngpus = { devices = [0], mode = \"toolkit\" }\n";
    let gpus = own_gpus(1);
    let a = host_of(gpus.clone()).build();
    let upgraded = host_of(gpus).driver_version("550.90.07").build();
    let other_gpu = host_of(own_gpus(1)).build();

    // (The device nodes' host paths are in the spec, so another fake host,
    // in another temporary folder, hashes differently anyway.)
    assert_eq!(hash(&a, text), hash(&a, text));
    let upgraded_spec = rendered(&upgraded, text);
    assert_eq!(upgraded_spec["spec"]["gpu"]["driver_version"], "550.90.07");
    assert_eq!(upgraded_spec["labels"]["launch.driver"], "550.90.07");
    assert_ne!(
        hash(&a, text),
        str_of(&upgraded_spec["hash"]),
        "a driver upgrade"
    );
    assert_ne!(
        hash(&a, text),
        hash(&other_gpu, text),
        "another GPU at index 0"
    );
}

#[test]
fn render_labels_carry_the_hash_the_spec_and_the_gpus() {
    let host = host_of(own_gpus(2)).build();
    let profiles = Profiles::new();
    let profile = profiles.write(
        "gpu-test.toml",
        "image = \"busybox\"\ngpus = { devices = [0, 1], mode = \"toolkit\" }\n",
    );
    let got = render_json(&host, &profile);
    let labels = &got["labels"];
    assert_eq!(labels["launch.managed"], "true");
    assert_eq!(labels["launch.profile"], path(&profile));
    assert_eq!(labels["launch.spec-hash"], got["hash"]);
    let spec_label: Value = serde_json::from_str(&str_of(&labels["launch.spec"])).expect("JSON");
    assert_eq!(spec_label, got["spec"]);
    assert_eq!(labels["launch.gpus"], uuids(&host, &[0, 1]).join(","));
    assert_eq!(labels["launch.driver"], DEFAULT_DRIVER_VERSION);
    assert_eq!(got["hash"].as_str().map(str::len), Some(64));
}

// ---- extends -------------------------------------------------------------------

/// The spec of `child.toml` (container `gpu-test`), which extends `base.toml`.
fn merged_spec(host: &FakeGpuHost, base: &str, child: &str) -> Value {
    let profiles = Profiles::new();
    profiles.write("base.toml", base);
    let path = profiles.write(
        "child.toml",
        &format!("extends = \"base.toml\"\nname = \"gpu-test\"\n{child}"),
    );
    render_json(host, &path)["spec"].clone()
}

/// The GPU device nodes of a spec (`/dev/nvidiaN`).
fn gpu_nodes(spec: &Value) -> Vec<String> {
    devices(spec)
        .into_keys()
        .filter(|c| {
            c.strip_prefix("/dev/nvidia")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

#[test]
fn a_childs_gpu_mode_keeps_the_parents_gpus() {
    let host = host_of(own_gpus(4)).build();
    let spec = merged_spec(
        &host,
        "image = \"busybox\"\ngpus = [0, 1]\n",
        "[gpus]\nmode = \"devices\"\n",
    );
    assert_eq!(spec["gpu"]["uuids"], json!(uuids(&host, &[0, 1])), "{spec}");
    assert_eq!(spec["gpu"]["mode"], "devices", "{spec}");
    assert_eq!(gpu_nodes(&spec).len(), 2, "{spec}");

    // A child's table without a choice keeps the parent's; one with a
    // choice replaces it.
    let spec = merged_spec(
        &host,
        "image = \"busybox\"\ngpus = [2]\n",
        "gpus = { mode = \"devices\", capabilities = [\"compute\"] }\n",
    );
    assert_eq!(spec["gpu"]["uuids"], json!(uuids(&host, &[2])), "{spec}");
    let spec = merged_spec(
        &host,
        "image = \"busybox\"\ngpus = [0, 1]\n",
        "gpus = { count = 1, mode = \"devices\" }\n",
    );
    assert_eq!(
        spec["gpu"]["uuids"].as_array().map(Vec::len),
        Some(1),
        "{spec}"
    );
}

/// A child process killed when dropped, also when the test fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn gpus_traces_nvml_processes_to_their_container_or_user() {
    needs_docker!();
    let scratch = Scratch::new("gpus-traced");
    let image = scratch.busybox_image("img", &[]);
    // A container launch did not make, holding GPU 0.
    let other = scratch.name("other");
    docker::docker(&["run", "-d", "--name", &other, &image, "sleep", "1000"]);
    let pid: u32 = docker::inspect(&other, "{{.State.Pid}}")
        .trim()
        .parse()
        .unwrap();
    // A host process (this test's child), holding GPU 1.
    let sleep = Child(Command::new("sleep").arg("100").spawn().unwrap());
    let host = host_of(own_gpus(2))
        .process(0, pid, 1 << 30)
        .process(1, sleep.0.id(), 1 << 20)
        .build();

    let json = gpus_json(&host);
    assert_eq!(
        json["gpus"][0]["holders"],
        json!([{ "kind": "container", "name": other, "pid": pid }])
    );
    assert_eq!(
        json["gpus"][1]["holders"],
        json!([{ "kind": "process", "pid": sleep.0.id(), "user": "root", "name": "sleep 100" }])
    );
    assert_eq!(json["gpus"][1]["holders_complete"], true);
    let table = gpus_table(&host);
    assert_eq!(
        cells(row(&table, &host.gpus[0].uuid))[6],
        format!("container {other} (pid {pid})"),
        "{table}"
    );
    assert!(
        cells(row(&table, &host.gpus[1].uuid))[6].contains("root: sleep 100"),
        "{table}"
    );
}

#[test]
fn max_gpus_per_owner_counts_the_owner_s_other_launch_containers() {
    use std::os::unix::fs::PermissionsExt;
    needs_docker!();
    let scratch = Scratch::new("gpus-per-owner");
    let image = scratch.busybox_image("img", &[]);
    let host = host_of(own_gpus(2)).build();
    // uid 4242 (no passwd entry) already holds GPU 0 with another container,
    // and a GPU this host no longer has, which no one holds.
    holder_owned_by(&scratch, &image, "held", &host.gpus[0].uuid, "4242");
    holder_owned_by(
        &scratch,
        &image,
        "gone",
        "GPU-deadbeef-0000-4000-8000-00000000dead",
        "4242",
    );
    let profiles = Profiles::new();
    let profile = profiles.write(
        "per-owner.toml",
        &format!(
            "image = {image:?}\nname = {:?}\npull = \"never\"\nuser = \"owner\"\ngpus = {{ devices = [1], mode = \"devices\" }}\n",
            scratch.name("new")
        ),
    );
    std::os::unix::fs::chown(&profile, Some(4242), Some(4242)).unwrap();
    let render = |max: u32| {
        let policy = profiles.write(
            "policy.toml",
            &format!("[allow]\nmax_gpus_per_owner = {max}\n"),
        );
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
        Launch::new()
            .arg("--policy")
            .arg(&policy)
            .args(["render", "--format", "json"])
            .arg(&profile)
            .args(host.args())
            .run()
    };
    let out = render(1).code(3);
    assert!(
        out.stderr.contains("with the 1 of 4242's other containers")
            && out.stderr.contains("allow.max_gpus_per_owner")
            && out.stderr.contains("per-owner.toml:5:8"),
        "{}",
        out.stderr
    );
    render(2).code(0);
    // Owned by root, another owner: its containers do not count.
    std::os::unix::fs::chown(&profile, Some(0), Some(0)).unwrap();
    render(1).code(0);
}

#[test]
fn max_gpus_per_owner_counts_new_profiles_of_one_run_together() {
    use std::os::unix::fs::PermissionsExt;
    needs_docker!();
    let scratch = Scratch::new("gpus-per-owner-run");
    let host = host_of(own_gpus(2)).build();
    let team = Profiles::new();
    for (file, gpu) in [("a1.toml", 0), ("b2.toml", 1)] {
        let path = team.write(
            file,
            &format!(
                "image = \"busybox\"\nname = {:?}\npull = \"never\"\nuser = \"owner\"\ngpus = {{ devices = [{gpu}], mode = \"devices\" }}\n",
                scratch.name(file.trim_end_matches(".toml"))
            ),
        );
        std::os::unix::fs::chown(&path, Some(4242), Some(4242)).unwrap();
    }
    let dir = Profiles::new();
    let policy = dir.write("policy.toml", "[allow]\nmax_gpus_per_owner = 1\n");
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Launch::new()
        .arg("--policy")
        .arg(&policy)
        .args(["plan", "--json"])
        .arg(team.path())
        .args(host.args())
        .run()
        .code(3);
    let refused: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["action"] == "error")
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "one of the two is refused:\n{}",
        out.stdout
    );
    let message = refused[0]["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("allow.max_gpus_per_owner"),
        "{}",
        out.stdout
    );
    assert_eq!(refused[0]["errors"][0]["line"], 5, "{}", out.stdout);
}
