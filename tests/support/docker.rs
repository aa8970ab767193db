//! A real Docker daemon for tests, driven through the docker CLI (launch
//! itself talks to it through bollard). Everything a test creates is
//! registered with a `Scratch` and removed when it drops, also on failure.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether a daemon answers. When none does, the test fails, unless the run
/// allows skips (`LAUNCH_ALLOW_SKIPS=1`): then it is skipped and counted.
/// Tests say so with `needs_docker!()`; the daemon is asked once per run.
pub fn available(test: &str) -> bool {
    static ANSWERS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ANSWERS.get_or_init(|| {
        Command::new("docker")
            .args(["version", "--format", "{{.Server.APIVersion}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        missing(test, "no Docker daemon answers (.ci/run starts one)");
    }
    ok
}

/// A prerequisite of `test` is missing: a failure, unless the run allows
/// skips (`LAUNCH_ALLOW_SKIPS=1`); then a skip, counted and reported when
/// the run ends. A skipped test is never a passed one.
#[track_caller]
pub fn missing(test: &str, what: &str) {
    assert!(
        std::env::var("LAUNCH_ALLOW_SKIPS").as_deref() == Ok("1"),
        "{test}: {what}; set LAUNCH_ALLOW_SKIPS=1 to skip the tests that need it (they are counted)"
    );
    eprintln!("skipping {test}: {what}");
    note_skip(&format!("{test}: {what}"));
}

/// Whether the engine under test is Podman (`LAUNCH_TEST_ENGINE=podman`,
/// with `DOCKER_HOST` pointing at its socket): `.ci/run`'s second round.
pub fn podman() -> bool {
    std::env::var("LAUNCH_TEST_ENGINE").as_deref() == Ok("podman")
}

/// Why a test that pastes a rendered `docker run` line with devices cannot
/// run against Podman: the docker CLI, not launch, stops there.
pub const CLI_DEVICES_ON_PODMAN: &str = "the docker CLI parses --device for the server's OS, which Podman's API does not report (`docker: unknown server OS`)";

/// Skips `test`, saying why on stderr, and in `LAUNCH_SKIP_LOG` (one line
/// a skip) when set: `.ci/run` prints how many were skipped, and why.
pub fn skip(test: &str, why: &str) {
    eprintln!("skipping {test} on podman: {why}");
    note_skip(&format!("{test} on podman: {why}"));
}

/// Counts a skip: appended to `LAUNCH_SKIP_LOG` when the run keeps one,
/// and listed on stderr when the test binary exits.
pub fn note_skip(line: &str) {
    use std::io::Write;
    static SKIPPED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    extern "C" fn report() {
        let skipped = SKIPPED.lock().map(|s| s.clone()).unwrap_or_default();
        eprintln!("\n{} test(s) skipped, none of them passed:", skipped.len());
        for s in skipped {
            eprintln!("  {s}");
        }
    }
    if let Ok(mut s) = SKIPPED.lock() {
        if s.is_empty() {
            // SAFETY: `report` is a plain function that stays valid until
            // the process exits; atexit only records it.
            unsafe {
                libc::atexit(report);
            }
        }
        s.push(line.to_string());
    }
    if let Some(path) = std::env::var_os("LAUNCH_SKIP_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// The running test's name: libtest runs each test on a thread named after it.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string()
}

/// Runs `docker ARGS`, returning stdout; panics with stderr on failure.
/// A read that Podman 4 answers with "image not known" while another test
/// removes an image is asked again, as launch itself does (engine/docker.rs).
pub fn docker(args: &[&str]) -> String {
    let reads = matches!(args.first(), Some(&("images" | "inspect" | "ps" | "image")))
        && args.get(1) != Some(&"rm");
    let mut tries = 0;
    let out = loop {
        let out = Command::new("docker")
            .args(args)
            .output()
            .expect("docker runs");
        let passing = String::from_utf8_lossy(&out.stderr).contains("image not known");
        if out.status.success() || !(reads && passing && podman()) || tries == 40 {
            break out;
        }
        tries += 1;
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs a shell line as a user would paste it (a rendered `docker run`, a
/// script's line), returning stdout; panics with the line and stderr on
/// failure.
pub fn sh(line: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(line)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{line}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Like `docker`, but returns None on failure.
pub fn try_docker(args: &[&str]) -> Option<String> {
    let out = Command::new("docker").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `docker inspect -f FORMAT NAME`.
pub fn inspect(name: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, name])
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Names, containers and images of one test; all removed on drop.
pub struct Scratch {
    prefix: String,
    containers: std::cell::RefCell<Vec<String>>,
    images: std::cell::RefCell<Vec<String>>,
    volumes: std::cell::RefCell<Vec<String>>,
}

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        Scratch {
            prefix: format!("lt-{}-{}-{n}", test.replace('_', "-"), std::process::id()),
            containers: Default::default(),
            images: Default::default(),
            volumes: Default::default(),
        }
    }

    /// A unique container name, removed (with any `-launch-old-*` sibling) on drop.
    pub fn name(&self, what: &str) -> String {
        let name = format!("{}-{what}", self.prefix);
        self.containers.borrow_mut().push(name.clone());
        name
    }

    /// A unique lowercase image reference, removed on drop.
    pub fn image_name(&self, what: &str) -> String {
        let name = format!("launch-test/{}-{what}:1", self.prefix);
        self.images.borrow_mut().push(name.clone());
        name
    }

    /// Registers a container named some other way for removal.
    pub fn track_container(&self, name: &str) {
        self.containers.borrow_mut().push(name.to_string());
    }

    /// Registers an image made some other way (a snapshot, a pull) for removal.
    pub fn track_image(&self, reference: &str) {
        self.images.borrow_mut().push(reference.to_string());
    }

    pub fn track_volume(&self, name: &str) {
        self.volumes.borrow_mut().push(name.to_string());
    }

    /// A busybox image built offline: a rootfs tar with /bin/busybox and its
    /// applet links, imported through the engine's image-create endpoint
    /// (`docker import`, fromSrc=-). `extra` adds files: (path, contents);
    /// one starting with `#!` is executable.
    pub fn busybox_image(&self, what: &str, extra: &[(&str, &str)]) -> String {
        self.busybox_image_with(what, extra, &[])
    }

    /// `busybox_image` with `docker import --change` instructions, e.g.
    /// `CMD ["/bin/bash"]`, for an image with defaults of its own.
    pub fn busybox_image_with(
        &self,
        what: &str,
        extra: &[(&str, &str)],
        changes: &[&str],
    ) -> String {
        let image = self.image_name(what);
        let root = tempfile::tempdir().expect("temp dir");
        build_rootfs(root.path(), extra);
        let mut tar = Command::new("tar")
            .args(["-C", &root.path().display().to_string(), "-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar runs");
        let changes: Vec<String> = changes
            .iter()
            .flat_map(|c| ["--change".to_string(), c.to_string()])
            .collect();
        let status = Command::new("docker")
            .arg("import")
            .args(&changes)
            .args(["-", &image])
            .stdin(tar.stdout.take().expect("tar output"))
            .stdout(Stdio::null())
            .status()
            .expect("docker import runs");
        let tarred = tar.wait().expect("tar ends");
        assert!(tarred.success(), "tar of the rootfs for {image}");
        assert!(status.success(), "docker import {image}");
        image
    }
}

/// The static busybox of Debian's busybox-static.
pub fn busybox() -> &'static str {
    "/bin/busybox"
}

fn build_rootfs(root: &Path, extra: &[(&str, &str)]) {
    for dir in ["bin", "tmp", "etc", "root", "var/log", "run", "data"] {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    std::fs::copy(busybox(), root.join("bin/busybox"))
        .expect("copy busybox (Debian's busybox-static)");
    let applets = Command::new(busybox())
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    for (path, contents) in extra {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, contents).expect("write extra file");
        // A file under /bin is a program (e.g. a stand-in /bin/bash).
        if path.trim_start_matches('/').starts_with("bin/") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
}

/// Waits (a minute at most) until no container whose name contains `name`
/// is being removed: the old container of a recreate, whose big writable
/// layer the engine deletes after launch has returned.
pub fn wait_while_removing(name: &str) {
    let filter = format!("name={name}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < deadline
        && try_docker(&["ps", "-a", "--filter", &filter, "--format", "{{.State}}"])
            .is_some_and(|states| states.lines().any(|s| s == "removing"))
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Containers first (they hold images), including recreate leftovers
        // and those the engine is still removing.
        let leftovers = try_docker(&["ps", "-aq", "--filter", &format!("name={}", self.prefix)])
            .unwrap_or_default();
        for id in leftovers.lines().filter(|l| !l.is_empty()) {
            let _ = try_docker(&["rm", "-f", "-v", id]);
        }
        for name in self.containers.borrow().iter() {
            let _ = try_docker(&["rm", "-f", "-v", name]);
        }
        wait_while_removing(&self.prefix);
        let snapshots = try_docker(&[
            "images",
            "-q",
            "--filter",
            &format!("reference=launch-snapshots/{}*", self.prefix),
        ])
        .unwrap_or_default();
        for id in snapshots.lines().filter(|l| !l.is_empty()) {
            let _ = try_docker(&["rmi", "-f", id]);
        }
        for image in self.images.borrow().iter() {
            let _ = try_docker(&["rmi", "-f", image]);
        }
        for volume in self.volumes.borrow().iter() {
            let _ = try_docker(&["volume", "rm", "-f", volume]);
        }
    }
}
