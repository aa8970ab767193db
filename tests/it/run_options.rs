//! The keys real `docker run` scripts need beyond the core ones
//! (docs/architecture.md, translation): init, group_add, sysctls,
//! extra_hosts, dns, device_cgroup_rules, runtime, read_only, memory_swap,
//! platform and [log] reach the real daemon, come back through
//! `import --container`, and are imported from their flags.

use crate::support::cli::{Launch, Profiles};
use crate::support::docker::{self, Scratch};
use serde_json::{Value, json};

const KEYS: &str = r#"init = true
group_add = ["44", "100"]
extra_hosts = ["db.internal:10.0.0.2"]
dns = ["10.0.0.53"]
device_cgroup_rules = ["c 10:200 rwm"]
runtime = "runc"
read_only = true
memory = "64m"
memory_swap = "192m"
platform = "linux/amd64"
healthcheck = { cmd = "test -d /", interval = "90s", timeout = "1500ms", retries = 3 }
[sysctls]
"net.core.somaxconn" = 1024
[log]
driver = "json-file"
options = { max-size = "10m", max-file = "2" }
"#;

fn spec_of(profile: &std::path::Path) -> Value {
    let out = Launch::new()
        .arg("render")
        .arg(profile)
        .args(["--format", "json"])
        .run()
        .code(0);
    serde_json::from_str::<Value>(&out.stdout).expect("JSON")["spec"].clone()
}

#[test]
fn the_new_keys_reach_the_engine_and_come_back_through_import() {
    needs_docker!();
    not_on_podman!(
        "Podman 4.3's inspect leaves HostConfig.Sysctls empty, so the sysctls cannot come back through import"
    );
    let scratch = Scratch::new("run-options");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("ctr");
    let dir = Profiles::new();
    let profile = dir.write(
        "keys.toml",
        &format!("image = \"{image}\"\nname = \"{name}\"\ncommand = \"sleep 1000\"\npull = \"never\"\n{KEYS}"),
    );
    Launch::new().arg("up").arg(&profile).run().code(0);
    let hc: Value =
        serde_json::from_str(&docker::inspect(&name, "{{json .HostConfig}}")).expect("JSON");
    assert_eq!(hc["Init"], json!(true));
    assert_eq!(hc["GroupAdd"], json!(["44", "100"]));
    assert_eq!(hc["Sysctls"], json!({ "net.core.somaxconn": "1024" }));
    assert_eq!(hc["ExtraHosts"], json!(["db.internal:10.0.0.2"]));
    assert_eq!(hc["Dns"], json!(["10.0.0.53"]));
    assert_eq!(hc["DeviceCgroupRules"], json!(["c 10:200 rwm"]));
    assert_eq!(hc["Runtime"], json!("runc"));
    assert_eq!(hc["ReadonlyRootfs"], json!(true));
    assert_eq!(hc["MemorySwap"], json!(192 << 20));
    assert_eq!(
        hc["LogConfig"],
        json!({ "Type": "json-file", "Config": { "max-size": "10m", "max-file": "2" } })
    );
    assert_eq!(docker::inspect(&name, "{{.State.Running}}"), "true");
    let hosts = docker::docker(&["exec", &name, "cat", "/etc/hosts"]);
    assert!(hosts.contains("10.0.0.2\tdb.internal"), "{hosts}");

    // Back from the container, the same spec (the healthcheck included).
    let out = Launch::new()
        .args(["import", "--container", &name])
        .run()
        .code(0);
    let again = dir.write("again.toml", &out.stdout);
    let mut want = spec_of(&profile);
    // The engine reports the default runtime and no platform for a container,
    // so neither can be told from Docker's own choice: import leaves them out.
    let fields = want.as_object_mut().expect("an object");
    fields.remove("runtime");
    fields.remove("platform");
    assert_eq!(spec_of(&again), want, "{}", out.stdout);
}

#[test]
fn the_new_keys_are_imported_from_their_flags() {
    let out = Launch::new()
        .args([
            "--nvml-lib",
            "/nonexistent/libnvidia-ml.so.1",
            "import",
            "--",
            "docker",
            "run",
            "--name",
            "flags",
        ])
        .args([
            "--init",
            "--read-only",
            "--group-add",
            "video",
            "--sysctl",
            "net.ipv4.ip_forward=1",
        ])
        .args([
            "--add-host",
            "db:10.0.0.2",
            "--dns",
            "1.1.1.1",
            "--device-cgroup-rule",
            "c 10:200 rwm",
        ])
        .args([
            "--runtime",
            "runc",
            "-m",
            "1g",
            "--memory-swap",
            "2g",
            "--platform",
            "linux/arm64",
        ])
        .args([
            "--log-driver",
            "local",
            "--log-opt",
            "max-size=5m",
            "busybox",
        ])
        .run()
        .code(0);
    let text = &out.stdout;
    assert!(!text.contains("not imported"), "{text}");
    let dir = Profiles::new();
    let profile = dir.write("flags.toml", text);
    let spec = spec_of(&profile);
    assert_eq!(spec["init"], json!(true));
    assert_eq!(spec["read_only"], json!(true));
    assert_eq!(spec["group_add"], json!(["video"]));
    assert_eq!(spec["sysctls"], json!({ "net.ipv4.ip_forward": "1" }));
    assert_eq!(spec["extra_hosts"], json!(["db:10.0.0.2"]));
    assert_eq!(spec["dns"], json!(["1.1.1.1"]));
    assert_eq!(spec["device_cgroup_rules"], json!(["c 10:200 rwm"]));
    assert_eq!(spec["runtime"], json!("runc"));
    assert_eq!(spec["memory_swap"], json!(2i64 << 30));
    assert_eq!(spec["platform"], json!("linux/arm64"));
    assert_eq!(
        spec["log"],
        json!({ "driver": "local", "options": { "max-size": "5m" } })
    );
}

#[test]
fn bad_values_of_the_new_keys_are_errors_at_their_place() {
    let dir = Profiles::new();
    let profile = dir.write(
        "bad.toml",
        "image = \"busybox\"\ndns = [\"one.one\"]\nextra_hosts = [\"db\"]\ndevice_cgroup_rules = [\"x 1:2 rwm\", \"c 195:* rwm\"]\nmemory_swap = \"2G\"\nplatform = \"linux//\"\nruntime = \"nvidia\"\n",
    );
    let out = Launch::new().arg("check").arg(&profile).run().code(2);
    for (at, what) in [
        ("bad.toml:2:8", "dns `one.one` is not an IP address"),
        ("bad.toml:3:16", "extra_hosts `db`"),
        ("bad.toml:4:24", "device_cgroup_rules `x 1:2 rwm`"),
        ("bad.toml:5:15", "memory_swap needs `memory`"),
        ("bad.toml:6:12", "platform `linux//`"),
        // A profile grants only what it says: no GPU outside `gpus`.
        (
            "bad.toml:4:37",
            "device_cgroup_rules `c 195:* rwm` would allow the NVIDIA devices",
        ),
        (
            "bad.toml:7:11",
            "runtime `nvidia` would give the container the GPUs its image names",
        ),
    ] {
        assert!(
            out.stderr.contains(at) && out.stderr.contains(what),
            "{at} {what}:\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_device_cgroup_rule_reaches_the_gpus_in_any_spelling_only_through_gpus() {
    // Docker reads the major as a number: `0195` is the GPUs' 195.
    for rule in ["c 195:0 rwm", "c 0195:* rw", "c *:* rwm", "a *:* rwm", "a"] {
        let dir = Profiles::new();
        let profile = dir.write(
            "rule.toml",
            &format!("image = \"busybox\"\ndevice_cgroup_rules = [{rule:?}]\n"),
        );
        let out = Launch::new().arg("check").arg(&profile).run().code(2);
        assert!(
            out.stderr.contains("rule.toml:2:24"),
            "{rule}: {}",
            out.stderr
        );
    }
    let dir = Profiles::new();
    let profile = dir.write(
        "rule.toml",
        "image = \"busybox\"\ndevice_cgroup_rules = [\"c 10:200 rwm\", \"c 1195:* rwm\"]\n",
    );
    Launch::new().arg("check").arg(&profile).run().code(0);
}
