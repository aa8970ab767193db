//! `[build]` against a real Docker daemon, through the real binary
//! (docs/architecture.md, build): images built from a Dockerfile whose
//! `FROM` is the test's offline busybox image, rebuilt only when the
//! context's content changes, and a failed build that leaves the running
//! container alone.

use std::path::PathBuf;

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, inspect, try_docker};

/// One test's world: a base image, a context folder, a profile whose
/// `[build]` builds `image` from it. All removed on drop.
struct World {
    scratch: Scratch,
    profiles: Profiles,
    base: String,
    image: String,
    name: String,
    path: PathBuf,
}

impl World {
    fn new(test: &str) -> World {
        let scratch = Scratch::new(test);
        let base = scratch.busybox_image("base", &[]);
        let image = scratch.image_name("built");
        let name = scratch.name("app");
        let profiles = Profiles::new();
        let path = profiles.write(
            "app.toml",
            &format!(
                "image = {image:?}\nname = {name:?}\nstop_timeout = 0\ncommand = [\"sleep\", \"1000\"]\n\n[build]\ncontext = \"ctx\"\n"
            ),
        );
        let w = World {
            scratch,
            profiles,
            base,
            image,
            name,
            path,
        };
        w.file(
            "Dockerfile",
            &format!("FROM {}\nCOPY hello.txt /hello.txt\n", w.base),
        );
        w.file("hello.txt", "hello 1\n");
        w.file(".dockerignore", "notes.txt\n");
        w.file("notes.txt", "not sent\n");
        w
    }

    /// Writes a file of the context.
    fn file(&self, name: &str, text: &str) {
        self.profiles.write(&format!("ctx/{name}"), text);
    }

    fn run(&self, args: &[&str]) -> Output {
        Launch::new()
            .env("LAUNCH_LOCK_DIR", self.profiles.path().join("locks"))
            .args(args)
            .arg(&self.path)
            .run()
    }

    /// The built image's id, registered for removal: an image a rebuild
    /// replaced loses its tag and would stay behind.
    fn image_id(&self) -> String {
        let id = inspect(&self.image, "{{.Id}}");
        self.scratch.track_image(&id);
        id
    }

    fn container_id(&self) -> String {
        inspect(&self.name, "{{.Id}}")
    }

    fn in_container(&self, path: &str) -> String {
        crate::support::docker::docker(&["exec", &self.name, "cat", path])
    }
}

#[test]
fn up_builds_once_and_again_only_when_the_context_changes() {
    needs_docker!();
    let w = World::new("build-up");
    let plan = w.run(&["plan"]).code(4);
    assert!(
        plan.stdout.contains(&format!(
            "build {} (the image is missing), then create",
            w.image
        )),
        "{}",
        plan.stdout
    );

    // First up: the image is missing, so it is built, labelled, and run.
    let out = w.run(&["up"]).code(0);
    assert!(out.stdout.contains("created and started"), "{out:?}");
    let image = w.image_id();
    let container = w.container_id();
    assert_eq!(w.in_container("/hello.txt"), "hello 1");
    let hash = inspect(&w.image, "{{index .Config.Labels \"launch.context-hash\"}}");
    assert_eq!(hash.len(), 64, "the context hash label: {hash:?}");
    assert_eq!(inspect(&w.name, "{{.Image}}"), image);

    // Second up: nothing changed, nothing built, nothing recreated.
    let out = w.run(&["up"]).code(0);
    assert!(out.stdout.contains("up to date"), "{out:?}");
    assert_eq!(w.image_id(), image, "no build: the same image");
    assert_eq!(w.container_id(), container, "the same container");
    w.run(&["plan"]).code(0);

    // A file listed in .dockerignore is not sent: no build.
    w.file("notes.txt", "changed, still not sent\n");
    let out = w.run(&["up"]).code(0);
    assert!(out.stdout.contains("up to date"), "{out:?}");
    assert_eq!(w.image_id(), image, "an ignored file does not rebuild");
    assert_eq!(w.container_id(), container);

    // A file of the context changes: rebuilt, and the container recreated.
    w.file("hello.txt", "hello 2\n");
    let plan = w.run(&["plan"]).code(4);
    assert!(
        plan.stdout.contains("its build context changed") && plan.stdout.contains("recreate"),
        "{}",
        plan.stdout
    );
    let out = w.run(&["up"]).code(0);
    assert!(
        out.stdout.contains("recreated") && out.stdout.contains("(built)"),
        "{out:?}"
    );
    let rebuilt = w.image_id();
    assert_ne!(rebuilt, image, "a new image");
    assert_ne!(w.container_id(), container, "a new container");
    assert_eq!(inspect(&w.name, "{{.Image}}"), rebuilt);
    assert_eq!(w.in_container("/hello.txt"), "hello 2");
}

#[test]
fn a_failed_build_shows_the_failing_step_and_leaves_the_container_running() {
    needs_docker!();
    let w = World::new("build-fails");
    w.run(&["up"]).code(0);
    let image = w.image_id();
    let container = w.container_id();

    w.file(
        "Dockerfile",
        &format!(
            "FROM {}\nCOPY hello.txt /hello.txt\nRUN echo about to fail && false\n",
            w.base
        ),
    );
    let out = w.run(&["up"]).code(1);
    assert!(
        out.stderr.contains("RUN echo about to fail && false"),
        "the failing step: {}",
        out.stderr
    );
    // Docker's builder says "returned a non-zero code", Podman's "exit status".
    let failed = if crate::support::docker::podman() {
        "exit status 1"
    } else {
        "non-zero code"
    };
    assert!(
        out.stderr.contains("about to fail") && out.stderr.contains(failed),
        "the builder's own lines: {}",
        out.stderr
    );
    assert_eq!(w.container_id(), container, "the same container");
    assert_eq!(inspect(&w.name, "{{.State.Running}}"), "true");
    assert_eq!(w.image_id(), image, "the tag still names the old image");
}

#[test]
fn launch_build_builds_and_labels_without_making_a_container() {
    needs_docker!();
    let w = World::new("build-only");
    let out = w.run(&["build"]).code(0);
    assert!(
        out.stdout.contains(&format!("built {}", w.image)),
        "{out:?}"
    );
    let image = w.image_id();
    let hash = inspect(&w.image, "{{index .Config.Labels \"launch.context-hash\"}}");
    assert_eq!(hash.len(), 64, "{hash:?}");
    assert!(
        try_docker(&["inspect", &w.name]).is_none(),
        "build makes no container"
    );
    // The image it built is current: `up` creates from it without building.
    let out = w.run(&["up"]).code(0);
    assert!(out.stdout.contains("created and started"), "{out:?}");
    assert_eq!(w.image_id(), image);
}

#[test]
fn a_missing_context_is_reported_at_its_line() {
    let p = Profiles::new();
    let path = p.write(
        "app.toml",
        "image = \"launch-test/never-built:1\"\n[build]\ncontext = \"nothere\"\n",
    );
    let out = Launch::new()
        .env("LAUNCH_LOCK_DIR", p.path().join("locks"))
        .args(["build"])
        .arg(&path)
        .run()
        .code(2);
    assert!(
        out.stderr.contains("app.toml:3:11") && out.stderr.contains("cannot be read"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_folder_run_rebuilds_when_the_context_changes() {
    needs_docker!();
    let w = World::new("build-folder");
    // A second profile makes `up DIR` a folder run, which lists launch's
    // containers once and skips in-sync ones: never one that builds.
    let other = w.scratch.name("other");
    w.profiles.write(
        "other.toml",
        &format!(
            "image = {:?}\nname = {other:?}\npull = \"never\"\nstop_timeout = 0\ncommand = [\"sleep\", \"1000\"]\n",
            w.base
        ),
    );
    let up = || {
        Launch::new()
            .env("LAUNCH_LOCK_DIR", w.profiles.path().join("locks"))
            .arg("up")
            .arg(w.profiles.path())
            .run()
            .code(0)
    };
    up();
    // Registered for removal: the rebuild takes its tag away.
    let image = w.image_id();
    let container = w.container_id();
    let out = up();
    assert_eq!(w.container_id(), container, "{out:?}");
    w.file("hello.txt", "hello 3\n");
    let out = up();
    assert!(out.stdout.contains("(built)"), "{out:?}");
    assert_ne!(w.container_id(), container, "recreated from the new image");
    assert_ne!(w.image_id(), image, "a new image");
    assert_eq!(w.in_container("/hello.txt"), "hello 3");
}

#[test]
fn a_context_file_the_profile_s_owner_cannot_read_is_not_sent() {
    use std::os::unix::fs::PermissionsExt;
    needs_docker!();
    let w = World::new("build-owner");
    let mode = |path: PathBuf, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    mode(w.profiles.path().to_path_buf(), 0o755);
    // Root's file in the context of a profile someone else (uid 4242) owns.
    w.file("secret.txt", "s3cret\n");
    mode(w.profiles.path().join("ctx/secret.txt"), 0o600);
    std::os::unix::fs::chown(&w.path, Some(4242), Some(4242)).expect("chown");
    for command in ["plan", "build", "up"] {
        let out = w.run(&[command]);
        assert!(out.code != 0 && out.code != 4, "{command} goes no further");
        assert!(
            out.stderr.contains("ctx/secret.txt")
                && out
                    .stderr
                    .contains("4242 (the profile's owner) cannot read it"),
            "{command} names the file and why:\n{}",
            out.stderr
        );
    }
    assert!(
        try_docker(&["image", "inspect", &w.image]).is_none(),
        "nothing was built"
    );
    // A context of what the owner may read is sent, as before.
    w.file(".dockerignore", "notes.txt\nsecret.txt\n");
    w.run(&["build"]).code(0);
    w.image_id();
    // Root reads all of its own profile's context.
    std::os::unix::fs::chown(&w.path, Some(0), Some(0)).expect("chown");
    w.file(".dockerignore", "notes.txt\n");
    w.run(&["plan"]).code(4);
}

#[test]
fn under_a_policy_a_built_image_needs_a_user_its_dockerfile_cannot_change() {
    use std::os::unix::fs::PermissionsExt;
    needs_docker!();
    let w = World::new("build-policy-user");
    std::fs::set_permissions(w.profiles.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let policy = w.profiles.write("policy.toml", "[allow]\n");
    let profile = std::fs::read_to_string(&w.path).expect("the profile");
    let plan = |text: &str| {
        std::fs::write(&w.path, text).expect("write");
        std::os::unix::fs::chown(&w.path, Some(4242), Some(4242)).expect("chown");
        Launch::new()
            .env("LAUNCH_LOCK_DIR", w.profiles.path().join("locks"))
            .arg("--policy")
            .arg(&policy)
            .arg("plan")
            .arg(&w.path)
            .run()
    };
    // An image built before with the owner's uid...
    w.file(
        "Dockerfile",
        &format!("FROM {}\nCOPY hello.txt /hello.txt\nUSER 4242\n", w.base),
    );
    w.run(&["build"]).code(0);
    w.image_id();
    // ...says nothing of the one `up` would build now, as root.
    w.file(
        "Dockerfile",
        &format!("FROM {}\nCOPY hello.txt /hello.txt\nUSER 0\n", w.base),
    );
    let out = plan(&profile).code(3);
    assert!(
        out.stderr.contains("known only once built") && out.stderr.contains("allow.run_as_root"),
        "{}",
        out.stderr
    );
    plan(&profile.replacen("\n", "\nuser = \"owner\"\n", 1)).code(4);
    // Where root is allowed, the USER could still be another user's uid.
    std::fs::write(&policy, "[allow]\nrun_as_root = true\n").expect("write");
    let out = plan(&profile).code(3);
    assert!(
        out.stderr.contains("known only once built") && out.stderr.contains("allow.run_as_others"),
        "{}",
        out.stderr
    );
}
