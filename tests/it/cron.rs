//! What cron sees (README: What a cron run does when things go wrong):
//! recreates that happen, runs that end, logs that say why, and `check`
//! that refuses what the engine would refuse an hour later.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, docker, inspect};
use crate::support::fake_gpu::FakeGpuHost;
use serde_json::Value;

fn show(o: &Output) -> String {
    format!("--- stdout\n{}\n--- stderr\n{}", o.stdout, o.stderr)
}

fn run(dir: &Profiles, args: &[&str]) -> Output {
    Launch::new()
        .env("LAUNCH_LOCK_DIR", dir.path().join("locks"))
        .args(args)
        .run()
}

fn container(image: &str, name: &str, extra: &str) -> String {
    format!(
        "image = {image:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n{extra}\n"
    )
}

// ---- recreates that happen ----------------------------------------------------------

#[test]
fn an_init_container_is_recreated_under_refuse() {
    needs_docker!();
    let scratch = Scratch::new("cron_init");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("init");
    let dir = Profiles::new();
    let p = dir.write(
        "p.toml",
        &container(&image, &name, "init = true\nenv = { V = \"1\" }"),
    );
    let p = p.display().to_string();
    run(&dir, &["up", &p]).code(0);
    let id = inspect(&name, "{{.Id}}");
    // Docker lists the init it mounts as a change of the writable layer
    // (Podman mounts its own under /run).
    if !crate::support::docker::podman() {
        let diff = docker(&["diff", &name]);
        assert!(diff.contains("/sbin/docker-init"), "{diff}");
    }
    dir.write(
        "p.toml",
        &container(&image, &name, "init = true\nenv = { V = \"2\" }"),
    );
    let out = run(&dir, &["up", &p]).code(0);
    assert!(out.stdout.contains("recreated"), "{}", show(&out));
    assert_ne!(inspect(&name, "{{.Id}}"), id);
}

#[test]
fn an_ignored_nested_folder_is_not_defeated_by_its_parent() {
    needs_docker!();
    let scratch = Scratch::new("cron_ignore");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("ignore");
    let dir = Profiles::new();
    let write = |v: &str| {
        dir.write(
            "p.toml",
            &container(
                &image,
                &name,
                &format!("env = {{ V = \"{v}\" }}\n[recreate]\nignore = [\"/root/.cache\"]"),
            ),
        )
        .display()
        .to_string()
    };
    let p = write("1");
    run(&dir, &["up", &p]).code(0);
    docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        "mkdir -p /root/.cache/pip && echo x > /root/.cache/pip/w",
    ]);
    write("2");
    let out = run(&dir, &["up", &p]).code(0);
    assert!(out.stdout.contains("recreated"), "{}", show(&out));
    // A real change beside it is still refused, and named.
    docker(&["exec", &name, "sh", "-c", "echo work > /root/results"]);
    write("3");
    let out = run(&dir, &["up", &p]).code(3);
    assert!(
        out.stderr.contains("/root/results") && !out.stderr.contains("  /root\n"),
        "{}",
        show(&out)
    );
}

// ---- logs that say why --------------------------------------------------------------

#[test]
fn a_json_failure_carries_its_located_reasons() {
    needs_docker!();
    let host = FakeGpuHost::builder().gpus(2).build();
    let dir = Profiles::new();
    let p = dir.write(
        "gone.toml",
        "image = \"busybox\"\npull = \"never\"\ngpus = [3]\n",
    );
    let out = Launch::new()
        .args(["--json", "up"])
        .args(host.args())
        .arg(&p)
        .run()
        .code(2);
    let line: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON line");
    let errors = line["errors"].as_array().expect("errors, not null");
    assert!(
        errors.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("GPU index 3 does not exist"))
            && e["line"] == 3),
        "{}",
        show(&out)
    );
}

#[test]
fn each_profile_s_line_is_written_when_it_is_done() {
    needs_docker!();
    let scratch = Scratch::new("cron_lines");
    let image = scratch.busybox_image("img", &[]);
    let (fast, slow) = (scratch.name("fast"), scratch.name("slow"));
    let dir = Profiles::new();
    let folder = dir.path().join("team");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::write(folder.join("fast.toml"), container(&image, &fast, "")).expect("write");
    // Never healthy: `--wait` holds it until its timeout.
    std::fs::write(
        folder.join("slow.toml"),
        container(
            &image,
            &slow,
            "[healthcheck]\ncmd = [\"false\"]\ninterval = \"1s\"\nretries = 100",
        ),
    )
    .expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_launch"))
        .env("LAUNCH_STATE_DIR", crate::support::cli::state_dir())
        .env("LAUNCH_LOCK_DIR", dir.path().join("locks"))
        .args(["--json", "up", "--wait", "--wait-timeout", "60"])
        .arg(&folder)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("launch runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let still_running = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    let first = first.expect("the fast profile's line, before the run ends");
    assert!(first.contains(&fast), "{first}");
    assert!(still_running, "the slow profile was still waiting");
}

#[test]
fn status_of_a_folder_names_an_invalid_profile_and_still_shows_its_container() {
    needs_docker!();
    let scratch = Scratch::new("cron_status");
    let image = scratch.busybox_image("img", &[]);
    let name = scratch.name("broken");
    let dir = Profiles::new();
    let folder = dir.path().join("team");
    std::fs::create_dir(&folder).expect("mkdir");
    let p = folder.join("broken.toml");
    std::fs::write(&p, container(&image, &name, "")).expect("write");
    run(&dir, &["up", &p.display().to_string()]).code(0);
    std::fs::write(&p, container(&image, &name, "shm_szie = \"1G\"")).expect("write");
    let out = run(&dir, &["status", &folder.display().to_string()]).code(2);
    assert!(
        out.stderr.contains("broken.toml") && out.stdout.contains(&name),
        "{}",
        show(&out)
    );
    assert!(out.stdout.contains("profile invalid"), "{}", show(&out));
}

// ---- folder runs ----------------------------------------------------------------------

#[test]
fn a_count_choice_leaves_the_gpus_a_pinned_profile_of_the_folder_takes() {
    needs_docker!();
    let scratch = Scratch::new("cron_count");
    let image = scratch.busybox_image("img", &[]);
    let host = FakeGpuHost::builder().gpus(2).build();
    let dir = Profiles::new();
    let folder = dir.path().join("team");
    std::fs::create_dir(&folder).expect("mkdir");
    let (pinned, counted) = (scratch.name("pinned"), scratch.name("counted"));
    let gpus = |g: &str| format!("[gpus]\n{g}\nmode = \"devices\"");
    std::fs::write(
        folder.join("a-counted.toml"),
        container(&image, &counted, &gpus("count = 1")),
    )
    .expect("write");
    std::fs::write(
        folder.join("b-pinned.toml"),
        container(&image, &pinned, &gpus("devices = [0]")),
    )
    .expect("write");
    let out = Launch::new()
        .env("LAUNCH_LOCK_DIR", dir.path().join("locks"))
        .arg("up")
        .args(host.args())
        .arg(&folder)
        .run()
        .code(0);
    let visible = |name: &str| docker(&["exec", name, "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES"]);
    assert_eq!(visible(&pinned), host.gpus[0].uuid, "{}", show(&out));
    assert_eq!(visible(&counted), host.gpus[1].uuid, "{}", show(&out));
}

// ---- check tells the truth ---------------------------------------------------------

/// Each line, in a profile of its own, is refused by `check` at `at`
/// (line:column) saying `says`.
fn refused(cases: &[(&str, &str, &str)]) {
    let dir = Profiles::new();
    let mut failures = Vec::new();
    for (line, at, says) in cases {
        let p = dir.write("pp.toml", &format!("image = \"busybox\"\n{line}\n"));
        let out = Launch::new().arg("check").arg(&p).run();
        let errors = out.stderr.matches("error:").count();
        if out.code != 2
            || errors != 1
            || !out.stderr.contains(&format!("pp.toml:{at}"))
            || !out.stderr.contains(says)
        {
            failures.push(format!("{line}\n{}", show(&out)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn check_refuses_image_references_docker_refuses() {
    let digest = "sha256:0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";
    let dir = Profiles::new();
    for image in [
        "busy-",
        "busy..box",
        "busy___box",
        &format!("busybox@{digest}"),
    ] {
        let p = dir.write("pp.toml", &format!("image = {image:?}\n"));
        let out = Launch::new().arg("check").arg(&p).run().code(2);
        assert!(
            out.stderr.contains("pp.toml:1:9") && out.stderr.contains(image),
            "{image}: {}",
            show(&out)
        );
    }
}

#[test]
fn check_refuses_what_the_engine_would_refuse_at_create() {
    refused(&[
        (
            "[healthcheck]\ncmd = \"true\"\ninterval = \"1ns\"",
            "4:12",
            "shorter than 1ms",
        ),
        (
            "[healthcheck]\ncmd = \"true\"\ntimeout = \"500us\"",
            "4:11",
            "shorter than 1ms",
        ),
        ("devices = [\"/\"]", "2:12", "root folder"),
        ("devices = [\"/dev/fuse:rrrr\"]", "2:12", "each once"),
        ("env = { \"A\\u0000B\" = \"x\" }", "2:9", "NUL"),
        ("env = { A = \"x\\u0000y\" }", "2:13", "NUL"),
        ("command = [\"echo\", \"a\\u0000b\"]", "2:11", "NUL"),
        ("security_opt = [\"label\"]", "2:17", "needs a value"),
        (
            "network = \"container:db\"\nports = [\"8080:80\"]",
            "2:11",
            "cannot set `ports`",
        ),
        (
            "network = \"container:db\"\nhostname = \"x\"",
            "2:11",
            "cannot set `hostname`",
        ),
    ]);
}

#[test]
fn what_cannot_be_read_is_located_by_line() {
    let dir = Profiles::new();
    let p = dir.path().join("bytes.toml");
    std::fs::write(&p, b"image = \"busybox\"\nname = \"a\xffb\"\n").expect("write");
    let out = Launch::new().arg("check").arg(&p).run().code(2);
    assert!(out.stderr.contains("bytes.toml:2:10"), "{}", show(&out));
    let deep = format!("image = \"busybox\"\n{} = 1\n", vec!["a"; 300].join("."));
    let q = dir.write("deep.toml", &deep);
    let out = Launch::new().arg("check").arg(&q).run().code(2);
    assert!(
        out.stderr.contains("deep.toml:2:1") && out.stderr.contains("recursion"),
        "{}",
        show(&out)
    );
}

// ---- and --------------------------------------------------------------------------

#[test]
fn an_engine_address_that_cannot_be_one_is_a_usage_error() {
    let dir = Profiles::new();
    let p = dir.write("pp.toml", "image = \"busybox\"\n");
    for host in [
        "foo://",
        "tcp://127.0.0.1:99999",
        "ssh://-oProxyCommand=id",
        "ssh://-x@host",
        "unix://relative",
    ] {
        let out = Launch::new()
            .args(["--host", host, "up"])
            .arg(&p)
            .run()
            .code(2);
        assert!(
            out.stderr.contains("is not an engine address"),
            "{host}: {}",
            show(&out)
        );
        assert!(
            !out.stderr.contains("cannot reach"),
            "{host}: {}",
            show(&out)
        );
    }
}

#[test]
fn a_crafted_ld_so_cache_costs_nothing() {
    let host = FakeGpuHost::builder().gpus(1).build();
    // A header that claims four billion entries, and nothing after it.
    let mut cache = b"glibc-ld.so.cache1.1".to_vec();
    cache.extend_from_slice(&[0xff; 28]);
    std::fs::write(host.driver_root.join("etc/ld.so.cache"), &cache).expect("write");
    let dir = Profiles::new();
    let p = dir.write(
        "crafted.toml",
        "image = \"busybox\"\ngpus = { devices = [0], mode = \"devices\" }\n",
    );
    let started = std::time::Instant::now();
    let out = Launch::new()
        .args(["render", "--format", "json"])
        .args(host.args())
        .arg(&p)
        .run()
        .code(0);
    // It took seven seconds of CPU before; the bound is loose for slow CI.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}: {}",
        started.elapsed(),
        show(&out)
    );
}

#[test]
fn without_an_engine_a_profile_s_own_errors_come_first_and_decide_the_exit() {
    let dir = Profiles::new();
    let p = dir.write(
        "pp.toml",
        "image = \"busybox\"\nvolumes = [\"/nonexistent/launch-test:/data\"]\n",
    );
    let socket: PathBuf = dir.path().join("no-engine.sock");
    let out = Launch::new()
        .args(["--host", &format!("unix://{}", socket.display()), "up"])
        .arg(&p)
        .run()
        .code(2);
    let own = out.stderr.find("/nonexistent/launch-test");
    let engine = out.stderr.find("cannot reach the container engine");
    assert!(
        own.is_some() && engine.is_some() && own < engine,
        "{}",
        show(&out)
    );
}
