//! The day-to-day commands against a real Docker daemon, through the real
//! binary (docs/architecture.md, day to day): `logs`, and what the
//! team's notes did with the docker CLI by hand.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, docker, try_docker};

/// One test's world: an offline busybox image, a container name, and a
/// profile for it. All removed on drop.
struct World {
    scratch: Scratch,
    profiles: Profiles,
    image: String,
    name: String,
    path: PathBuf,
}

impl World {
    fn new(test: &str) -> World {
        let scratch = Scratch::new(test);
        let image = scratch.busybox_image("img", &[]);
        let name = scratch.name("app");
        let profiles = Profiles::new();
        let path = profiles.path().join("app.toml");
        World {
            scratch,
            profiles,
            image,
            name,
            path,
        }
    }

    /// Writes the profile with this command (a shell script) and brings it up.
    fn up(&self, script: &str, extra: &str) {
        let text = format!(
            "image = {:?}\nname = {:?}\npull = \"never\"\nstop_timeout = 0\ncommand = [\"sh\", \"-c\", {:?}]\n{extra}\n",
            self.image, self.name, script
        );
        std::fs::write(&self.path, text).expect("write the profile");
        self.launch(&["up"]).arg(&self.path).run().code(0);
    }

    fn launch(&self, args: &[&str]) -> Launch {
        Launch::new()
            .env("LAUNCH_LOCK_DIR", self.profiles.path().join("locks"))
            .args(args)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.launch(args).run()
    }

    /// Waits until the container's log (both streams) holds `text`.
    fn wait_for_log(&self, text: &str) {
        let start = Instant::now();
        loop {
            let out = std::process::Command::new("docker")
                .args(["logs", &self.name])
                .output()
                .expect("docker logs");
            let all = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            if all.contains(text) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{text:?} never came: {all}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn logs_tail_shows_the_last_lines_and_keeps_stderr_on_stderr() {
    needs_docker!();
    let w = World::new("logs-tail");
    w.up(
        "echo one; echo two; echo three; echo err1 >&2; sleep 0.1; echo four; sleep 0.1; echo err2 >&2; exec sleep 1000",
        "",
    );
    w.wait_for_log("err2");
    // By profile (a path) and by name alike.
    let by_profile = w.path.display().to_string();
    for target in [by_profile.as_str(), w.name.as_str()] {
        let out = w.run(&["logs", target, "--tail", "2"]).code(0);
        assert_eq!(out.stdout, "four\n", "stdout: {out:?}");
        assert_eq!(out.stderr, "err2\n", "stderr: {out:?}");
    }
    let out = w.run(&["logs", &w.name]).code(0);
    assert_eq!(out.stdout, "one\ntwo\nthree\nfour\n");
    assert_eq!(out.stderr, "err1\nerr2\n");
    // Timestamps prefix each line; a --since in the future shows nothing.
    let out = w
        .run(&["logs", &w.name, "--timestamps", "--tail", "1"])
        .code(0);
    assert!(
        out.stderr.starts_with("20") && out.stderr.ends_with(" err2\n"),
        "{out:?}"
    );
    let out = w.run(&["logs", &w.name, "--since", "4000000000"]).code(0);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    let out = w.run(&["logs", &w.name, "--since", "10m"]).code(0);
    assert_eq!(out.stdout, "one\ntwo\nthree\nfour\n");
    let out = w
        .run(&["logs", &w.name, "--since", "yesterday-ish"])
        .code(2);
    assert!(out.stderr.contains("is not a time"), "{}", out.stderr);
}

#[test]
fn logs_of_a_missing_container_says_so() {
    needs_docker!();
    let w = World::new("logs-missing");
    let name = w.scratch.name("never-made");
    let out = w.run(&["logs", &name]).code(1);
    assert!(
        out.stderr.contains(&format!("no container named {name}"))
            && out.stderr.contains("launch up"),
        "{}",
        out.stderr
    );
}

/// The tags of the snapshots of `name` that exist, sorted.
fn snapshot_tags(name: &str) -> Vec<String> {
    let repo = format!("launch-snapshots/{name}");
    let out = docker(&["images", "--format", "{{.Repository}} {{.Tag}}", &repo]);
    // Podman lists every name of a matching image, and in full (docker.io/…).
    let mut tags: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(r, _)| r.trim_start_matches("docker.io/") == repo)
        .map(|(_, t)| t.to_string())
        .collect();
    tags.sort();
    tags
}

#[test]
fn snapshots_in_one_second_get_their_own_tags_and_hold_the_changed_file() {
    needs_docker!();
    let w = World::new("snapshot");
    let volume = format!("{}-data", w.name);
    w.scratch.track_volume(&volume);
    std::fs::create_dir(w.profiles.path().join("shared")).expect("bind source");
    w.up(
        "echo kept > /root/work.txt; exec sleep 1000",
        &format!("volumes = [\"./shared:/srv/shared:ro\", \"{volume}:/data\"]"),
    );
    // Two launch runs at once take turns on the name's lock: most often
    // within one second. Try until a pair shared a second.
    let mut same_second = false;
    for _ in 0..5 {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let cmd = w.launch(&["snapshot", "--json", &w.name]);
                std::thread::spawn(move || cmd.run())
            })
            .collect();
        let mut refs = Vec::new();
        for run in runs {
            let out = run.join().expect("a run").code(0);
            let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
            refs.push(v["image"].as_str().expect("image").to_string());
        }
        assert_ne!(refs[0], refs[1], "unique tags");
        let tag = |r: &str| r.rsplit_once(':').expect("a tag").1.to_string();
        let (a, b) = (tag(&refs[0]), tag(&refs[1]));
        if a.get(..16) == b.get(..16) {
            // One second, two tags: the second's own and `-N` ones (an
            // earlier pair may already have taken that second's first tag).
            for t in [&a, &b] {
                let suffix = t.get(16..).unwrap_or_default();
                assert!(
                    suffix.is_empty()
                        || suffix
                            .strip_prefix('-')
                            .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n >= 2)),
                    "{a} {b}"
                );
            }
            same_second = true;
            break;
        }
    }
    assert!(
        same_second,
        "no two snapshots fell in one second in 5 tries"
    );

    // The image holds the file the container wrote.
    let tags = snapshot_tags(&w.name);
    let image = format!("launch-snapshots/{}:{}", w.name, tags[0]);
    let inside = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "cat",
        &image,
        "/root/work.txt",
    ]);
    assert_eq!(inside, "kept");

    // Text output: what is not in it, and --tag.
    let out = w
        .run(&[
            "snapshot",
            &w.path.display().to_string(),
            "--tag",
            "before-upgrade",
        ])
        .code(0);
    assert!(
        out.stdout.contains(&format!(
            "committed to launch-snapshots/{}:before-upgrade",
            w.name
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("bind mount") && out.stdout.contains("-> /srv/shared"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("volume {volume} -> /data")),
        "{}",
        out.stdout
    );
    // The same --tag again is refused rather than moved off the first image.
    w.run(&["snapshot", &w.name, "--tag", "before-upgrade"])
        .code(3);
    w.run(&["snapshot", &w.name, "--tag", "-bad"]).code(2);
}

#[test]
fn snapshot_refuses_a_container_launch_did_not_make() {
    needs_docker!();
    let w = World::new("snapshot-foreign");
    docker(&["create", "--name", &w.name, &w.image, "true"]);
    let out = w.run(&["snapshot", &w.name]).code(3);
    assert!(out.stderr.contains("not made by launch"), "{}", out.stderr);
    assert!(snapshot_tags(&w.name).is_empty());
    w.run(&["snapshot", &w.scratch.name("never-made")]).code(1);
}

#[test]
fn prune_keep_1_leaves_the_newest_snapshot_and_never_a_foreign_image() {
    needs_docker!();
    let w = World::new("prune");
    w.up("exec sleep 1000", "");
    let repo = format!("launch-snapshots/{}", w.name);
    // Foreign: an image in launch's repository with a timestamp tag, made
    // by hand (no launch.snapshot label), and the test's own image.
    let foreign = format!("{repo}:20200101T000000Z");
    docker(&["tag", &w.image, &foreign]);
    w.scratch.track_image(&foreign);
    let mut made = Vec::new();
    for _ in 0..3 {
        let out = w.run(&["snapshot", "--json", &w.name]).code(0);
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
        made.push(v["image"].as_str().expect("image").to_string());
    }
    w.run(&["snapshot", &w.name, "--tag", "keep-me"]).code(0);
    let newest = made.last().expect("three").clone();

    let out = w
        .run(&["prune", "--keep", "1", "--dry-run", &w.name])
        .code(0);
    for old in &made[..2] {
        assert!(
            out.stdout.contains(&format!("would remove snapshot {old}")),
            "{}",
            out.stdout
        );
    }
    assert_eq!(snapshot_tags(&w.name).len(), 5, "a dry run removes nothing");

    let out = w.run(&["prune", "--keep", "1"]).code(0);
    for old in &made[..2] {
        assert!(
            out.stdout.contains(&format!("removed snapshot {old}")),
            "{}",
            out.stdout
        );
    }
    assert!(
        !out.stdout.contains(&newest) && !out.stdout.contains(&foreign),
        "{}",
        out.stdout
    );
    let tag = |r: &str| r.rsplit_once(':').expect("a tag").1.to_string();
    let mut expected = vec![tag(&foreign), tag(&newest), "keep-me".to_string()];
    expected.sort();
    assert_eq!(snapshot_tags(&w.name), expected);
    assert!(try_docker(&["image", "inspect", &w.image]).is_some());
}

#[test]
fn prune_removes_a_leftover_with_nothing_to_lose_once_its_name_is_taken_again() {
    needs_docker!();
    let w = World::new("prune-leftover");
    w.up("exec sleep 1000", "");
    // What a run killed mid-recreate leaves: the old container renamed aside.
    let id = docker(&["inspect", "-f", "{{.Id}}", &w.name]);
    let aside = format!("{}-launch-old-{}", w.name, &id[..12]);
    docker(&["stop", "-t", "0", &w.name]);
    docker(&["rename", &w.name, &aside]);

    // Its name is free: `up` will rename it back, so prune leaves it.
    let out = w.run(&["prune", &w.name]).code(0);
    assert!(
        out.stdout.contains(&format!("kept container {aside}")),
        "{}",
        out.stdout
    );
    assert!(try_docker(&["inspect", &aside]).is_some());

    // Once the name has a container again, nothing in it is lost: it goes.
    docker(&["create", "--name", &w.name, &w.image, "true"]);
    let out = w.run(&["prune", "--dry-run"]).code(0);
    assert!(
        out.stdout
            .contains(&format!("would remove container {aside}")),
        "{}",
        out.stdout
    );
    assert!(try_docker(&["inspect", &aside]).is_some());
    let out = w.run(&["prune", "--json", &w.name]).code(0);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert_eq!(v["removed"][0]["name"], aside.as_str(), "{v}");
    assert!(try_docker(&["inspect", &aside]).is_none());
    assert!(
        try_docker(&["inspect", &w.name]).is_some(),
        "the foreign container stays"
    );
}

/// Runs `launch ARGS` with `input` on stdin (pipes all round).
fn launch_with_input(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_launch"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("launch runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("launch ends");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn exec_on_pipes_returns_the_commands_output_apart_and_its_exit_code() {
    needs_docker!();
    let w = World::new("exec-pipes");
    w.up("exec sleep 1000", "");
    let out = w
        .run(&[
            "exec",
            &w.name,
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ])
        .code(7);
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
    // By profile, and stdin reaches the command, its end included.
    let profile = w.path.display().to_string();
    let out = launch_with_input(
        &["exec", &profile, "--", "sh", "-c", "cat; echo done"],
        "piped\n",
    )
    .code(0);
    assert_eq!(out.stdout, "piped\ndone\n");
    // No command: bash, and busybox has none, so sh (reading its script from stdin).
    let out = launch_with_input(&["exec", &w.name], "echo \"shell $0\"; exit 3\n").code(3);
    assert_eq!(out.stdout, "shell sh\n", "{out:?}");
    assert!(
        !out.stderr.contains("bash"),
        "the failed try is quiet: {}",
        out.stderr
    );
}

#[test]
fn exec_never_starts_a_stopped_container_and_points_at_up() {
    needs_docker!();
    let w = World::new("exec-stopped");
    w.up("exec sleep 1000", "");
    docker(&["stop", "-t", "0", &w.name]);
    let out = w.run(&["exec", &w.name, "--", "true"]).code(1);
    assert!(
        out.stderr.contains("is exited, not running") && out.stderr.contains("launch up"),
        "{}",
        out.stderr
    );
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Status}}", &w.name]),
        "exited"
    );
    let out = w.run(&["exec", &w.scratch.name("never-made")]).code(1);
    assert!(out.stderr.contains("no container named"), "{}", out.stderr);
}

#[test]
fn exec_on_a_terminal_gets_a_tty_that_follows_the_window_and_a_shell_prompt() {
    needs_docker!();
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let w = World::new("exec-tty");
    w.up("exec sleep 1000", "");
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("a pty");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let size = rustix::termios::Winsize {
        ws_row: 41,
        ws_col: 101,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&master, size).expect("window size");
    let slave_path = ptsname(&master, Vec::new()).expect("ptsname");
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(slave_path.to_str().expect("a path"))
        .expect("open the slave");
    // setsid -c: the pty becomes launch's controlling terminal, so a window
    // change reaches it as SIGWINCH, as in a terminal emulator.
    let mut child = std::process::Command::new("setsid")
        .args(["-c", env!("CARGO_BIN_EXE_launch"), "exec", &w.name])
        .env_remove("RUST_LOG")
        .stdin(slave.try_clone().expect("fd"))
        .stdout(slave.try_clone().expect("fd"))
        .stderr(slave)
        .spawn()
        .expect("launch runs");
    let mut master = std::fs::File::from(master);
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let seen = Arc::clone(&seen);
        let mut master = master.try_clone().expect("fd");
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once no one holds the slave side.
            while let Ok(n @ 1..) = master.read(&mut buf) {
                seen.lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let wait_for = |text: &str| {
        let start = Instant::now();
        while !seen.lock().expect("lock").contains(text) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{text:?} never came: {:?}",
                seen.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("# "); // busybox sh's prompt for root: `/ # `
    master
        .write_all(b"tty; stty size\r")
        .expect("type into the terminal");
    wait_for("41 101");
    // The window grows: the container's TTY follows.
    let bigger = rustix::termios::Winsize {
        ws_row: 52,
        ws_col: 133,
        ..size
    };
    rustix::termios::tcsetwinsize(&master, bigger).expect("window size");
    std::thread::sleep(Duration::from_millis(300));
    master
        .write_all(b"stty size; exit 5\r")
        .expect("type into the terminal");
    wait_for("52 133");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "launch exec never ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(5), "{:?}", seen.lock().expect("lock"));
    assert!(seen.lock().expect("lock").contains("/dev/pts/"));
    // Raw mode ended with launch: the terminal edits lines again.
    let modes = rustix::termios::tcgetattr(&master).expect("termios");
    assert!(
        modes
            .local_modes
            .contains(rustix::termios::LocalModes::ICANON | rustix::termios::LocalModes::ECHO),
        "the terminal is back in canonical mode"
    );
    drop(master);
    let _ = reader;
}
