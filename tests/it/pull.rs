//! Pull policies (`pull = "missing" | "always" | "never"`) and registry
//! credentials, against a local registry (Debian's docker-registry on
//! 127.0.0.1, which Docker treats as insecure-allowed) and a real daemon.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, docker, inspect, try_docker};
use base64::Engine as _;

const REGISTRY: &str = "/usr/bin/docker-registry";
const USER: &str = "launch-user";
const PASSWORD: &str = "s3cret-pass";

/// A registry on 127.0.0.1:<free port>, storing into a temp dir; killed (by
/// its pid) on drop. The docker CLI pushes to it with its own config folder,
/// logged in when the registry wants a password.
struct Registry {
    addr: String,
    child: Child,
    dir: tempfile::TempDir,
    /// `docker --config` for pushes: never the user's ~/.docker.
    cli_config: tempfile::TempDir,
}

impl Registry {
    /// With `htpasswd`, only USER:PASSWORD may push and pull. `None` when
    /// the registry (or htpasswd) is not installed and skips are allowed.
    #[track_caller]
    fn start(test: &str, htpasswd: bool) -> Option<Registry> {
        if !Path::new(REGISTRY).exists() {
            crate::support::docker::missing(
                test,
                "`docker-registry` is not installed (.ci/run installs Debian's docker-registry)",
            );
            return None;
        }
        if htpasswd && Command::new("htpasswd").arg("-h").output().is_err() {
            crate::support::docker::missing(
                test,
                "`htpasswd` is not installed (.ci/run installs Debian's apache2-utils)",
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("htpasswd (apache2-utils) runs");
            assert!(out.status.success(), "htpasswd failed");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("write htpasswd");
            config += &format!(
                "auth:\n  htpasswd:\n    realm: launch-test\n    path: {}\n",
                file.display()
            );
        }
        let config_file = dir.path().join("config.yml");
        std::fs::write(&config_file, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new(REGISTRY)
            .arg("serve")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("docker-registry starts (Debian's docker-registry package)");
        let mut registry = Registry {
            addr,
            child,
            dir,
            cli_config: tempfile::tempdir().expect("temp dir"),
        };
        registry.wait_until_up();
        if htpasswd {
            registry.login();
        }
        Some(registry)
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(&self.addr).is_err() {
            let exited = self.child.try_wait().expect("registry status");
            let log = || {
                std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
            };
            assert!(
                exited.is_none(),
                "the registry exited ({exited:?}): {}",
                log()
            );
            assert!(
                Instant::now() < deadline,
                "the registry does not listen on {}: {}",
                self.addr,
                log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `docker --config <cli_config> ARGS`.
    fn cli(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.arg("--config").arg(self.cli_config.path());
        cmd
    }

    fn login(&self) {
        let mut child = self
            .cli()
            .args(["login", "--username", USER, "--password-stdin", &self.addr])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker login runs");
        child
            .stdin
            .take()
            .expect("docker login's stdin")
            .write_all(PASSWORD.as_bytes())
            .expect("write the password");
        let out = child.wait_with_output().expect("docker login ends");
        assert!(
            out.status.success(),
            "docker login: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A reference in this registry for one of the test's names.
    fn reference(&self, scratch: &Scratch, what: &str) -> String {
        let reference = format!("{}/{}", self.addr, scratch.image_name(what));
        scratch.track_image(&reference);
        reference
    }

    /// Pushes the local `image` as `reference`; the local tag `reference`
    /// then points at `image` (the caller removes it if it wants).
    fn push(&self, image: &str, reference: &str) {
        docker(&["tag", image, reference]);
        let out = self
            .cli()
            .args(["push", reference])
            .output()
            .expect("docker push runs");
        assert!(
            out.status.success(),
            "docker push {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two distinct offline images, each knowing its name in /etc/flavour, and
/// their ids (tracked for removal, also once they are untagged).
fn two_images(s: &Scratch) -> [(String, String); 2] {
    ["one", "two"].map(|flavour| {
        let image = s.busybox_image(flavour, &[("/etc/flavour", flavour)]);
        let id = image_id(&image).expect("imported");
        s.track_image(&id);
        (image, id)
    })
}

fn image_id(reference: &str) -> Option<String> {
    try_docker(&["image", "inspect", "-f", "{{.Id}}", reference])
}

/// Removes the local tags, so that only the registry has the image.
fn remove_locally(references: &[&str]) {
    for r in references {
        docker(&["rmi", r]);
    }
}

fn write_profile(dir: &Profiles, name: &str, image: &str, pull: &str) -> PathBuf {
    dir.write(
        "app.toml",
        &format!(
            "image = {image:?}\nname = {name:?}\npull = {pull:?}\ncommand = \"sleep 1000\"\nstop_timeout = 0\n"
        ),
    )
}

/// `launch up PROFILE` with DOCKER_CONFIG at `docker_config` (an empty
/// folder means no credentials, whatever the user's ~/.docker holds), and
/// lock files beside the profile (removed with it).
fn up(profile: &Path, docker_config: &Path) -> Output {
    let locks = profile.parent().expect("a folder").join(".locks");
    Launch::new()
        .env("LAUNCH_LOCK_DIR", locks)
        .env("DOCKER_CONFIG", docker_config)
        .arg("up")
        .arg(profile)
        .run()
}

fn show(o: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        o.code, o.stdout, o.stderr
    )
}

#[test]
fn pull_missing_pulls_an_absent_image_once() {
    needs_docker!();
    not_on_podman!(
        "the tests' registry speaks plain HTTP on a random port, and Podman pulls and pushes over TLS unless registries.conf names each registry insecure"
    );
    let Some(registry) = Registry::start("pull_missing_pulls_an_absent_image_once", false) else {
        return;
    };
    let s = Scratch::new("pull-missing");
    let [(one, one_id), (two, two_id)] = two_images(&s);
    let remote = registry.reference(&s, "remote");
    registry.push(&one, &remote);
    remove_locally(&[&remote, &one]);
    assert_eq!(image_id(&remote), None, "only the registry has it");

    let name = s.name("app");
    let dir = Profiles::new();
    let profile = write_profile(&dir, &name, &remote, "missing");
    let no_credentials = tempfile::tempdir().unwrap();
    let out = up(&profile, no_credentials.path()).code(0);
    assert!(out.stdout.contains("created and started"), "{}", show(&out));
    assert_eq!(
        image_id(&remote).as_deref(),
        Some(one_id.as_str()),
        "pulled"
    );
    assert_eq!(inspect(&name, "{{.Image}}"), one_id);
    let id = inspect(&name, "{{.Id}}");

    // The tag moves in the registry; the local copy stays what was pulled.
    registry.push(&two, &remote);
    docker(&["tag", &one_id, &remote]);
    let again = up(&profile, no_credentials.path()).code(0);
    assert!(again.stdout.contains("up to date"), "{}", show(&again));
    assert_eq!(
        image_id(&remote).as_deref(),
        Some(one_id.as_str()),
        "not pulled again"
    );
    assert_ne!(one_id, two_id);
    assert_eq!(inspect(&name, "{{.Id}}"), id);
}

#[test]
fn pull_never_with_the_image_absent_fails_saying_so() {
    needs_docker!();
    not_on_podman!(
        "the tests' registry speaks plain HTTP on a random port, and Podman pulls and pushes over TLS unless registries.conf names each registry insecure"
    );
    let Some(registry) = Registry::start("pull_never_with_the_image_absent_fails_saying_so", false)
    else {
        return;
    };
    let s = Scratch::new("pull-never");
    let [(one, _), _] = two_images(&s);
    let remote = registry.reference(&s, "remote");
    registry.push(&one, &remote);
    remove_locally(&[&remote]);

    let name = s.name("app");
    let dir = Profiles::new();
    let profile = write_profile(&dir, &name, &remote, "never");
    let no_credentials = tempfile::tempdir().unwrap();
    let out = up(&profile, no_credentials.path()).code(1);
    assert!(
        out.stderr
            .contains(&format!("image {remote} is not present"))
            && out.stderr.contains("pull = \"never\""),
        "{}",
        show(&out)
    );
    assert_eq!(image_id(&remote), None, "nothing was pulled");
    assert_eq!(try_docker(&["inspect", &name]), None, "no container");
}

#[test]
fn pull_always_recreates_the_container_when_the_tag_moved() {
    needs_docker!();
    not_on_podman!(
        "the tests' registry speaks plain HTTP on a random port, and Podman pulls and pushes over TLS unless registries.conf names each registry insecure"
    );
    let Some(registry) = Registry::start(
        "pull_always_recreates_the_container_when_the_tag_moved",
        false,
    ) else {
        return;
    };
    let s = Scratch::new("pull-always");
    let [(one, one_id), (two, two_id)] = two_images(&s);
    let remote = registry.reference(&s, "remote");
    registry.push(&one, &remote);
    remove_locally(&[&remote]);

    let name = s.name("app");
    let dir = Profiles::new();
    let profile = write_profile(&dir, &name, &remote, "always");
    let no_credentials = tempfile::tempdir().unwrap();
    up(&profile, no_credentials.path()).code(0);
    assert_eq!(inspect(&name, "{{.Image}}"), one_id);
    let id = inspect(&name, "{{.Id}}");

    // Pulled again, but nothing moved: nothing to do.
    let same = up(&profile, no_credentials.path()).code(0);
    assert!(same.stdout.contains("up to date"), "{}", show(&same));
    assert_eq!(inspect(&name, "{{.Id}}"), id);

    // Someone pushes another image under the same tag.
    registry.push(&two, &remote);
    docker(&["tag", &one_id, &remote]);
    let moved = up(&profile, no_credentials.path()).code(0);
    assert!(
        moved.stdout.contains("recreated") && moved.stdout.contains("different id"),
        "{}",
        show(&moved)
    );
    assert_ne!(inspect(&name, "{{.Id}}"), id, "a new container");
    assert_eq!(inspect(&name, "{{.Image}}"), two_id, "from the new image");
    assert_eq!(docker(&["exec", &name, "cat", "/etc/flavour"]), "two");
    assert_eq!(inspect(&name, "{{.State.Status}}"), "running");
}

#[test]
fn registry_credentials_come_from_the_docker_config() {
    needs_docker!();
    not_on_podman!(
        "the tests' registry speaks plain HTTP on a random port, and Podman pulls and pushes over TLS unless registries.conf names each registry insecure"
    );
    let Some(registry) = Registry::start("registry_credentials_come_from_the_docker_config", true)
    else {
        return;
    };
    let s = Scratch::new("pull-auth");
    let [(one, one_id), _] = two_images(&s);
    let remote = registry.reference(&s, "private");
    registry.push(&one, &remote);
    remove_locally(&[&remote]);

    let name = s.name("app");
    let dir = Profiles::new();
    let profile = write_profile(&dir, &name, &remote, "missing");

    // No credentials: the registry says no, and launch says so.
    let none = tempfile::tempdir().unwrap();
    let out = up(&profile, none.path()).code(1);
    assert!(
        out.stderr.contains(&format!("pulling {remote} failed")) && out.stderr.contains("auth"),
        "{}",
        show(&out)
    );
    assert_eq!(try_docker(&["inspect", &name]), None, "no container");

    // config.json as `docker login` writes it.
    let config = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let out = up(&profile, config.path()).code(0);
    assert!(out.stdout.contains("created and started"), "{}", show(&out));
    assert_eq!(inspect(&name, "{{.Image}}"), one_id);
    assert_eq!(inspect(&name, "{{.State.Status}}"), "running");
}

#[test]
fn registry_credentials_come_from_a_credential_helper() {
    needs_docker!();
    not_on_podman!(
        "the tests' registry speaks plain HTTP on a random port, and Podman pulls and pushes over TLS unless registries.conf names each registry insecure"
    );
    let Some(registry) =
        Registry::start("registry_credentials_come_from_a_credential_helper", true)
    else {
        return;
    };
    let s = Scratch::new("pull-helper");
    let [(one, one_id), _] = two_images(&s);
    let remote = registry.reference(&s, "helped");
    registry.push(&one, &remote);
    remove_locally(&[&remote]);
    let name = s.name("app");
    let dir = Profiles::new();
    let profile = write_profile(&dir, &name, &remote, "missing");

    // A docker-credential-* program, as `docker login` with a credsStore or
    // credHelpers entry uses: it reads the registry on stdin and answers JSON.
    let bin = tempfile::tempdir().unwrap();
    let asked = bin.path().join("asked");
    let helper = bin.path().join("docker-credential-launchtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat > {asked}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$(cat {asked})\"\n",
            asked = asked.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        format!(
            r#"{{"credHelpers": {{"{}": "launchtest"}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Launch::new()
        .env("LAUNCH_LOCK_DIR", dir.path().join(".locks"))
        .env("DOCKER_CONFIG", config.path())
        .env("PATH", path)
        .arg("up")
        .arg(&profile)
        .run()
        .code(0);
    assert!(out.stdout.contains("created and started"), "{}", show(&out));
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        registry.addr,
        "the helper was asked for this registry"
    );
    assert_eq!(inspect(&name, "{{.Image}}"), one_id);
    // Output on a pipe: no progress bars, just the result.
    assert!(
        !out.stderr.contains("Downloading") && !out.stderr.contains("[="),
        "{}",
        show(&out)
    );
}
