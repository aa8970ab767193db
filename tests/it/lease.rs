//! Leases (docs/architecture.md, leases): a GPU container that does no work
//! for `idle_after`, or outlives `until`, is warned, then reclaimed, and the
//! next cron `up` leaves it down until its profile changes or `launch renew`.
//!
//! Every test runs the real binary against real containers on a fake GPU
//! host, with a clock it sets (`LAUNCH_NOW`) and a state store of its own:
//! the fake NVML reports the containers' real host pids as GPU processes,
//! with the SM use the test chooses.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, docker, inspect, try_docker};
use crate::support::fake_gpu::FakeGpuHost;
use serde_json::Value;

/// 2026-12-01T00:00:00Z: minute 0 of every test's clock.
const T0: i64 = 1_796_083_200;

struct Lab {
    scratch: Scratch,
    profiles: Profiles,
    host: FakeGpuHost,
    state: tempfile::TempDir,
    image: String,
    /// Minutes since T0.
    clock: Cell<i64>,
    policy: std::cell::RefCell<Option<PathBuf>>,
}

impl Lab {
    fn new(test: &str) -> Lab {
        Lab::on(test, FakeGpuHost::builder().gpus(2).build())
    }

    fn on(test: &str, host: FakeGpuHost) -> Lab {
        let scratch = Scratch::new(test);
        let image = scratch.busybox_image("img", &[]);
        Lab {
            scratch,
            profiles: Profiles::new(),
            host,
            state: tempfile::tempdir().expect("a temp dir"),
            image,
            clock: Cell::new(0),
            policy: Default::default(),
        }
    }

    /// Writes profile `what` (its container's name is returned) on GPU
    /// `gpu` in devices mode, with `body` after the defaults.
    fn profile(&self, what: &str, gpu: u32, body: &str) -> (String, PathBuf) {
        let name = self.scratch.name(what);
        let text = format!(
            "image = {:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"1000\"]\nstop_timeout = 0\n\
             [gpus]\ndevices = [{gpu}]\nmode = \"devices\"\n{body}\n",
            self.image
        );
        (name, self.profiles.write(&format!("{what}.toml"), &text))
    }

    /// The host's policy: `text`, and root may run the test image's root
    /// user (the tests' profiles are root's files).
    fn set_policy(&self, text: &str) {
        let text = format!("{text}\n[allow]\nrun_as_root = true\n");
        *self.policy.borrow_mut() = Some(self.profiles.write("policy/policy.toml", &text));
    }

    /// Sets the clock to `minutes` after T0.
    fn at(&self, minutes: i64) -> &Lab {
        self.clock.set(minutes);
        self
    }

    fn now(&self) -> String {
        rfc3339(T0 + self.clock.get() * 60)
    }

    /// `launch`, at the lab's time, with its store, locks and GPU host.
    fn launch(&self) -> Launch {
        let mut l = Launch::new()
            .env("LAUNCH_STATE_DIR", self.state.path())
            .env("LAUNCH_NOW", self.now())
            .env("LAUNCH_LOCK_DIR", self.state.path().join("locks"));
        if let Some(p) = self.policy.borrow().as_ref() {
            l = l.env("LAUNCH_POLICY", p);
        }
        l
    }

    /// `launch COMMAND [GPU host flags] ARGS…`
    fn run(&self, command: &str, args: &[&str]) -> Output {
        self.launch()
            .arg(command)
            .args(self.host.args())
            .args(args)
            .run()
    }

    fn up(&self, profile: &Path) -> Output {
        self.run("up", &[&profile.display().to_string()])
    }

    /// Each container's PID 1 on GPU `gpu` at `sm` % SM use (0: a process
    /// that did no work), and each GPU's own utilization, from now on.
    fn gpu_use(&self, procs: &[(u32, &str, u32)], util: &[(u32, u32)]) {
        let procs: Vec<(u32, u32, u32)> = procs
            .iter()
            .map(|(gpu, name, sm)| (*gpu, pid(name), *sm))
            .collect();
        self.host.set_usage(&procs, util);
    }

    fn usage(&self, by: &str) -> Vec<Value> {
        let out = self
            .launch()
            .args(["usage", "--json", "--since", "30d", "--by", by])
            .run()
            .code(0);
        let v: Value = serde_json::from_str(&out.stdout).expect("usage --json is JSON");
        v["rows"].as_array().cloned().unwrap_or_default()
    }
}

fn rfc3339(seconds: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn pid(name: &str) -> u32 {
    inspect(name, "{{.State.Pid}}")
        .parse()
        .expect("a running container's pid")
}

fn state(name: &str) -> String {
    inspect(name, "{{.State.Status}}")
}

fn show(o: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        o.code, o.stdout, o.stderr
    )
}

fn row<'a>(rows: &'a [Value], key: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no usage row {key}: {rows:?}"))
}

// ---------------------------------------------------------------------------
// Idle reclaim, the warning before it, the tombstone after it.

#[test]
fn an_idle_container_is_warned_then_reclaimed_and_stays_down_until_its_profile_changes() {
    needs_docker!();
    let lab = Lab::new("idle");
    let told = lab.profiles.path().join("told.txt");
    lab.set_policy(&format!(
        "[lease]\nnotify = \"sh -c 'echo \\\"$NAME|$OWNER|$REASON|$WHEN\\\" >> {}'\"\n",
        told.display()
    ));
    let (name, profile) = lab.profile(
        "nb",
        0,
        "[lease]\nidle_after = \"2h\"\ngrace = \"30m\"\nwarn_before = \"15m\"",
    );
    lab.at(0).up(&profile).code(0);
    // Its process is on the GPU and does nothing.
    lab.gpu_use(&[(0, &name, 0)], &[]);
    let out = lab.at(60).up(&profile).code(0);
    assert!(out.stdout.contains("up to date"), "{}", show(&out));

    // Idle since the grace ended (00:30): reclaimed at 02:30, warned at 02:15.
    let warned = lab.at(140).up(&profile).code(0);
    assert!(
        warned.stderr.contains(&format!(
            "warning: {name} will be reclaimed at 2026-12-01T02:30:00Z (idle 2h)"
        )),
        "{}",
        show(&warned)
    );
    assert_eq!(state(&name), "running", "a warning touches nothing");
    let notified = std::fs::read_to_string(&told).expect("the policy's notify command ran");
    assert!(
        notified.starts_with(&format!("{name}|root|idle 2h|2026-12-01T02:30:00Z")),
        "{notified}"
    );
    let again = lab.at(142).up(&profile).code(0);
    assert!(
        !again.stderr.contains("warning"),
        "warned once: {}",
        show(&again)
    );

    let reclaimed = lab.at(151).up(&profile).code(0);
    assert_eq!(
        reclaimed.stdout,
        format!(
            "{name}: reclaimed (idle 2h) at 2026-12-01T02:31:00Z; edit the profile or `launch renew {name}`\n"
        ),
        "{}",
        show(&reclaimed)
    );
    assert_eq!(state(&name), "exited");

    // The tombstone: the next cron runs leave it down, and say so.
    for minute in [152, 200] {
        let out = lab.at(minute).up(&profile).code(0);
        assert!(
            out.stdout.contains(&format!(
                "{name}: reclaimed (idle 2h) at 2026-12-01T02:31:00Z"
            )),
            "{}",
            show(&out)
        );
        assert_eq!(state(&name), "exited");
    }
    let plan = lab
        .at(201)
        .run("plan", &[&profile.display().to_string()])
        .code(0);
    assert!(
        plan.stdout.contains("stays down: reclaimed"),
        "{}",
        show(&plan)
    );
    // It holds no GPU: `gpus` lists none for it (its process is gone).
    lab.host.set_usage(&[], &[]);
    let gpus = lab.run("gpus", &["--json"]);
    let gpus: Value = serde_json::from_str(&gpus.stdout).expect("gpus --json");
    let holders = gpus["gpus"][0]["holders"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        gpus["gpus"][0]["holders_complete"] == true && !holders.iter().any(|h| h["name"] == name),
        "{gpus}"
    );
    let status = lab.run("status", &[]).code(0);
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{}", status.stdout));
    assert!(
        line.contains("reclaimed (idle 2h) at 2026-12-01T02:31:00Z"),
        "{line}"
    );

    // An edit of the profile brings it back.
    std::fs::write(
        &profile,
        std::fs::read_to_string(&profile).expect("the profile") + "# back to work\n",
    )
    .expect("edit the profile");
    let back = lab.at(210).up(&profile).code(0);
    assert!(back.stdout.contains("started"), "{}", show(&back));
    assert_eq!(state(&name), "running");
}

#[test]
fn never_within_grace_and_never_while_its_processes_use_the_sms() {
    needs_docker!();
    let lab = Lab::new("grace");
    let (name, profile) = lab.profile("train", 0, "[lease]\nidle_after = \"1h\"\ngrace = \"2h\"");
    lab.at(0).up(&profile).code(0);
    lab.gpu_use(&[(0, &name, 0)], &[]);
    // Idle from the start, but within grace: idle counts from 02:00.
    for minute in [61, 120, 179] {
        lab.at(minute).up(&profile).code(0);
        assert_eq!(state(&name), "running", "minute {minute}");
    }
    // Busy above 5 %: kept, however long.
    lab.gpu_use(&[(0, &name, 40)], &[]);
    for minute in [180, 240, 300, 360] {
        lab.at(minute).up(&profile).code(0);
        assert_eq!(state(&name), "running", "busy at minute {minute}");
    }
    // At 3 % it is idle: reclaimed an hour after its last busy minute.
    lab.gpu_use(&[(0, &name, 3)], &[]);
    lab.at(400).up(&profile).code(0);
    assert_eq!(state(&name), "running");
    let out = lab.at(421).up(&profile).code(0);
    assert!(out.stdout.contains("reclaimed (idle 1h)"), "{}", show(&out));
    assert_eq!(state(&name), "exited");
    let rows = lab.usage("container");
    let r = row(&rows, &name);
    assert_eq!(r["reclaims"], 1, "{r}");
    assert!(r["busy_hours"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
}

#[test]
fn snapshot_on_reclaim_keeps_the_files_changed_in_the_container() {
    needs_docker!();
    let lab = Lab::new("snap");
    let (name, profile) = lab.profile(
        "work",
        0,
        "[lease]\nuntil = \"1h\"\non_reclaim = \"snapshot\"",
    );
    lab.at(0).up(&profile).code(0);
    docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        "echo epoch 40 > /root/checkpoint.txt",
    ]);
    let out = lab.at(61).up(&profile).code(0);
    assert!(
        out.stdout.contains(&format!(
            "{name}: reclaimed (its 1h lease ended) at 2026-12-01T01:01:00Z"
        )),
        "{}",
        show(&out)
    );
    let snapshot = out
        .stdout
        .lines()
        .find_map(|l| l.split("committed to ").nth(1))
        .unwrap_or_else(|| panic!("the snapshot is named: {}", show(&out)))
        .to_string();
    lab.scratch.track_image(&snapshot);
    assert_eq!(state(&name), "exited");
    let kept = docker(&["run", "--rm", &snapshot, "cat", "/root/checkpoint.txt"]);
    assert_eq!(kept, "epoch 40");
}

// ---------------------------------------------------------------------------
// `until`, renew, the policy.

#[test]
fn until_ends_the_lease_at_its_time_and_renew_brings_it_back_for_longer() {
    needs_docker!();
    let lab = Lab::new("until");
    let (name, profile) = lab.profile("exp", 1, "[lease]\nuntil = \"2026-12-01T01:00:00Z\"");
    lab.at(0).up(&profile).code(0);
    lab.at(59).up(&profile).code(0);
    assert_eq!(state(&name), "running");
    let out = lab.at(61).up(&profile).code(0);
    assert!(
        out.stdout
            .contains("reclaimed (its lease ended at 2026-12-01T01:00:00Z)"),
        "{}",
        show(&out)
    );
    assert_eq!(state(&name), "exited");

    // Its end was a time: renewing needs a new one.
    let bare = lab.launch().args(["renew", &name]).run().code(2);
    assert!(bare.stderr.contains("--for"), "{}", show(&bare));
    let renewed = lab
        .launch()
        .args(["renew", &name, "--for", "2h"])
        .run()
        .code(0);
    assert!(
        renewed
            .stdout
            .contains("renewed, until 2026-12-01T03:01:00Z"),
        "{}",
        show(&renewed)
    );
    let back = lab.at(63).up(&profile).code(0);
    assert!(back.stdout.contains("started"), "{}", show(&back));
    lab.at(180).up(&profile).code(0);
    assert_eq!(state(&name), "running", "renewed until 03:01");
    let out = lab.at(183).up(&profile).code(0);
    assert!(out.stdout.contains("reclaimed"), "{}", show(&out));
}

#[test]
fn the_policy_caps_leases_at_their_place_gives_gpu_profiles_its_default_and_exempts_whom_it_names()
{
    needs_docker!();
    let lab = Lab::new("caps");
    let policy =
        "[lease]\ndefault = { idle_after = \"1h\" }\nmax_until = \"1d\"\nmax_idle_after = \"4h\"\n";
    lab.set_policy(policy);
    let (_, long) = lab.profile("long", 0, "[lease]\nuntil = \"3d\"");
    let out = lab.at(0).up(&long).code(3);
    assert!(
        out.stderr.contains("long.toml:10:9")
            && out.stderr.contains(
                "a lease of 3days is longer than root may hold GPUs (policy allows 1day)"
            )
            && out.stderr.contains("lease.max_until"),
        "{}",
        show(&out)
    );
    let (_, lazy) = lab.profile("lazy", 0, "[lease]\nidle_after = \"8h\"");
    let out = lab.at(0).up(&lazy).code(3);
    assert!(
        out.stderr.contains("lazy.toml:10:14") && out.stderr.contains("lease.max_idle_after"),
        "{}",
        show(&out)
    );

    // No [lease]: the policy's default, idle after 1h.
    let (name, plain) = lab.profile("plain", 1, "");
    lab.at(0).up(&plain).code(0);
    lab.gpu_use(&[(1, &name, 0)], &[]);
    lab.at(30).up(&plain).code(0);
    let out = lab.at(61).up(&plain).code(0);
    assert!(out.stdout.contains("reclaimed (idle 1h)"), "{}", show(&out));
    // Renewing past the cap is refused like the profile.
    let out = lab
        .launch()
        .args(["renew", &name, "--for", "3d"])
        .run()
        .code(3);
    assert!(out.stderr.contains("lease.max_until"), "{}", show(&out));
    lab.launch()
        .args(["renew", &name, "--for", "12h"])
        .run()
        .code(0);
    lab.at(62).up(&plain).code(0);
    assert_eq!(state(&name), "running");

    // Exempt: no default lease, no caps.
    lab.set_policy(&format!("{policy}exempt = [\"root\"]\n"));
    lab.at(62 + 24 * 60).up(&plain).code(0);
    assert_eq!(state(&name), "running");
    lab.at(62 + 24 * 60).up(&long).code(0);
}

// ---------------------------------------------------------------------------
// Whose work is whose: shared GPUs, wedged GPUs, GPUs without samples.

#[test]
fn on_a_gpu_with_two_holders_each_is_judged_by_its_own_processes() {
    needs_docker!();
    let lab = Lab::new("two");
    let lease = "[lease]\nidle_after = \"1h\"";
    let (a, pa) = lab.profile("a", 0, lease);
    let (b, pb) = lab.profile("b", 0, lease);
    lab.at(0).up(&pa).code(0);
    lab.at(0).up(&pb).code(0);
    lab.gpu_use(&[(0, &a, 60), (0, &b, 0)], &[(0, 60)]);
    for minute in [30, 61] {
        lab.at(minute).up(&pa).code(0);
        lab.at(minute).up(&pb).code(0);
    }
    assert_eq!(state(&a), "running", "busy");
    assert_eq!(state(&b), "exited", "idle beside a busy one");
}

#[test]
fn without_per_process_samples_a_shared_busy_gpu_counts_as_busy_for_all_its_holders() {
    needs_docker!();
    let host = FakeGpuHost::builder()
        .gpus(1)
        .omit_symbol("nvmlDeviceGetProcessUtilization")
        .build();
    let lab = Lab::on("noproc", host);
    let lease = "[lease]\nidle_after = \"1h\"";
    let (a, pa) = lab.profile("a", 0, lease);
    let (b, pb) = lab.profile("b", 0, lease);
    lab.at(0).up(&pa).code(0);
    lab.at(0).up(&pb).code(0);
    // Busy, and no way to tell whose work it is: never reclaim on a guess.
    lab.gpu_use(&[(0, &a, 0), (0, &b, 0)], &[(0, 90)]);
    for minute in [30, 61, 120] {
        lab.at(minute).up(&pa).code(0);
        lab.at(minute).up(&pb).code(0);
    }
    assert_eq!((state(&a), state(&b)), ("running".into(), "running".into()));
    let status = lab.run("status", &["--json"]);
    assert!(
        status
            .stdout
            .contains("the shared GPU's utilization, busy for every holder"),
        "status says which signal: {}",
        status.stdout
    );
    // Idle: both go.
    lab.gpu_use(&[(0, &a, 0), (0, &b, 0)], &[(0, 0)]);
    for minute in [150, 181] {
        lab.at(minute).up(&pa).code(0);
        lab.at(minute).up(&pb).code(0);
    }
    assert_eq!((state(&a), state(&b)), ("exited".into(), "exited".into()));
}

#[test]
fn a_wedged_gpu_reading_busy_with_no_process_makes_no_one_busy() {
    needs_docker!();
    let lab = Lab::new("wedged");
    let (name, profile) = lab.profile("nb", 0, "[lease]\nidle_after = \"1h\"");
    lab.at(0).up(&profile).code(0);
    assert_eq!(state(&name), "running");
    // 100 % and no process on it: stuck, not working.
    lab.host.set_usage(&[], &[(0, 100)]);
    lab.at(30).up(&profile).code(0);
    let status = lab.run("status", &[&profile.display().to_string()]).code(0);
    assert!(
        status
            .stdout
            .contains("held, ends 2026-12-01T01:00:00Z (if idle 1h); by no process on its GPUs"),
        "status says which signal: {}",
        status.stdout
    );
    let out = lab.at(61).up(&profile).code(0);
    assert!(out.stdout.contains("reclaimed (idle 1h)"), "{}", show(&out));
}

#[test]
fn when_nvml_cannot_sample_no_container_is_reclaimed_as_idle() {
    needs_docker!();
    let lab = Lab::new("blind");
    let (name, profile) = lab.profile("nb", 0, "[lease]\nidle_after = \"1h\"");
    lab.at(0).up(&profile).code(0);
    // NVML now fails to start: no sample, so no idleness is known.
    let config = lab.host.nvml_config();
    std::fs::write(&config, "this is not a config\n").expect("break the fake NVML");
    for minute in [61, 180] {
        let out = lab.at(minute).up(&profile).code(0);
        assert!(
            out.stderr.contains("the GPUs were not sampled"),
            "{}",
            show(&out)
        );
    }
    assert_eq!(state(&name), "running");
}

// ---------------------------------------------------------------------------
// The store: one sample a minute for the host, whole under kill -9.

#[test]
fn two_cron_runs_at_once_sample_the_host_once() {
    needs_docker!();
    let lab = Lab::new("once");
    let (name, profile) = lab.profile("nb", 0, "[lease]\nidle_after = \"1d\"");
    lab.at(0).up(&profile).code(0);
    lab.gpu_use(&[(0, &name, 50)], &[]);
    lab.at(5);
    let runs: Vec<std::process::Child> = (0..2)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_launch"))
                .env("LAUNCH_STATE_DIR", lab.state.path())
                .env("LAUNCH_NOW", lab.now())
                .env("LAUNCH_LOCK_DIR", lab.state.path().join("locks"))
                .arg("up")
                .args(lab.host.args())
                .arg(&profile)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("launch runs")
        })
        .collect();
    for mut r in runs {
        assert!(r.wait().expect("launch ends").success());
    }
    // One tick of 5 minutes (300 s), not two.
    let rows = lab.usage("container");
    let held = row(&rows, &name)["held_hours"].as_f64().unwrap_or(0.0);
    assert!((held * 3600.0 - 300.0).abs() < 0.5, "{rows:?}");
}

#[test]
fn a_run_killed_at_any_point_of_a_sample_leaves_the_store_whole() {
    needs_docker!();
    let lab = Lab::on("kill9", FakeGpuHost::builder().gpus(8).build());
    let (name, profile) = lab.profile("nb", 0, "[lease]\nidle_after = \"1d\"");
    lab.at(0).up(&profile).code(0);
    // Every GPU has a holder: a tick is 8 samples.
    let procs: Vec<(u32, &str, u32)> = (0..8).map(|g| (g, name.as_str(), 30)).collect();
    lab.gpu_use(&procs, &[]);
    let started = std::time::Instant::now();
    lab.at(1).up(&profile).code(0);
    let whole_run = started.elapsed();
    for i in 0..24u32 {
        lab.at(2 + i64::from(i));
        let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_launch"))
            .env("LAUNCH_STATE_DIR", lab.state.path())
            .env("LAUNCH_NOW", lab.now())
            .env("LAUNCH_LOCK_DIR", lab.state.path().join("locks"))
            .arg("up")
            .args(lab.host.args())
            .arg(&profile)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("launch runs");
        // Killed at points spread over a whole run.
        std::thread::sleep(whole_run * i / 24);
        let _ = run.kill();
        let _ = run.wait();
    }
    let db =
        rusqlite::Connection::open(lab.state.path().join("state.db")).expect("the store opens");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    // A tick is whole or absent: 8 samples of this container, or none
    // (other tests' containers on the fake GPUs' UUIDs are sampled too).
    let mut q = db
        .prepare(
            "SELECT ts, count(*) FROM samples JOIN holders ON holders.id = samples.holder
             WHERE holders.name = ?1 GROUP BY ts",
        )
        .expect("query");
    let counts: Vec<(i64, i64)> = q
        .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(!counts.is_empty());
    assert!(counts.iter().all(|(_, n)| *n == 8), "{counts:?}");
    // And the next run samples on top of it.
    lab.at(60).up(&profile).code(0);
    let after: i64 = db
        .query_row(
            "SELECT count(*) FROM samples JOIN holders ON holders.id = samples.holder
             WHERE ts = ?1 AND holders.name = ?2",
            rusqlite::params![T0 + 3600, name],
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(after, 8);
}

// ---------------------------------------------------------------------------
// Accounting.

#[test]
fn usage_counts_every_holder_and_gpus_held_outside_launch_under_their_user() {
    needs_docker!();
    let lab = Lab::new("usage");
    let (name, profile) = lab.profile("nb", 0, "[lease]\nidle_after = \"1d\"");
    lab.at(0).up(&profile).code(0);
    // GPU 1: a container launch did not make, as uid 4321, and a host
    // process of `nobody`.
    let foreign = lab.scratch.name("foreign");
    docker(&[
        "run", "-d", "--name", &foreign, "-u", "4321", &lab.image, "sleep", "1000",
    ]);
    let mut host_process = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sleep",
            "1000",
        ])
        .spawn()
        .expect("setpriv runs");
    let host_pid = host_process.id();
    lab.host.set_usage(
        &[
            (0, pid(&name), 50),
            (1, pid(&foreign), 0),
            (1, host_pid, 70),
        ],
        &[],
    );
    lab.at(10).up(&profile).code(0);
    lab.at(70).up(&profile).code(0);
    let _ = host_process.kill();
    let _ = host_process.wait();

    let by_container = lab.usage("container");
    let mine = row(&by_container, &name);
    assert_eq!(mine["kind"], "launch");
    // 10 minutes, then 10 more (a tick counts at most 10 minutes).
    assert!(
        (mine["held_hours"].as_f64().unwrap_or(0.0) * 60.0 - 20.0).abs() < 0.01,
        "{mine}"
    );
    assert_eq!(mine["idle_share"], 0.0);
    assert_eq!(row(&by_container, &foreign)["kind"], "container");
    assert_eq!(row(&by_container, &foreign)["idle_share"], 1.0);
    assert_eq!(row(&by_container, "sleep")["kind"], "process");
    let by_owner = lab.usage("owner");
    for owner in ["root", "4321", "nobody"] {
        row(&by_owner, owner);
    }
    let by_gpu = lab.usage("gpu");
    assert_eq!(by_gpu.len(), 2, "{by_gpu:?}");
    let text = lab.launch().args(["usage", "--since", "30d"]).run().code(0);
    assert!(text.stdout.contains("GPU-HOURS HELD"), "{}", text.stdout);
    assert!(try_docker(&["rm", "-f", &foreign]).is_some());
}

// ---------------------------------------------------------------------------
// The profile key: checked at its place; NVML only when a lease needs it;
// other engines' time limits; import never invents one.

#[test]
fn lease_keys_are_checked_at_their_place() {
    let p = Profiles::new();
    for (body, at, message) in [
        (
            "[lease]\nidle_after = \"2 fortnights\"",
            "bad.toml:4:14",
            "lease idle_after `2 fortnights` is not a duration",
        ),
        (
            "[lease]\nuntil = \"next tuesday\"",
            "bad.toml:4:9",
            "neither an RFC 3339 time",
        ),
        (
            "[lease]\nidle_after = \"1h\"",
            "bad.toml:4:14",
            "lease idle_after needs `gpus`",
        ),
        (
            "[lease]\ngrace = \"1h\"",
            "bad.toml:3:1",
            "needs `until`, `idle_after` or both",
        ),
        (
            "[lease]\nuntil = \"1h\"\non_reclaim = \"delete\"",
            "bad.toml:5:14",
            "stop",
        ),
    ] {
        let path = p.write(
            "bad.toml",
            &format!("image = \"busybox\"\ncommand = \"sleep 1\"\n{body}\n"),
        );
        let out = Launch::new().arg("check").arg(&path).run().code(2);
        assert!(
            out.stderr.contains(at) && out.stderr.contains(message),
            "{body}: {}",
            show(&out)
        );
    }
}

#[test]
fn nvml_is_loaded_for_a_sample_only_when_a_lease_needs_one() {
    needs_docker!();
    let lab = Lab::new("nvml");
    let log = lab.profiles.path().join("nvml.log");
    let (_, plain) = lab.profile("plain", 0, "");
    let (_, leased) = lab.profile("leased", 1, "[lease]\nidle_after = \"1h\"");
    lab.at(0).up(&plain).code(0);
    lab.at(0).up(&leased).code(0);
    let inits = |p: &Path, minute: i64| {
        let _ = std::fs::remove_file(&log);
        lab.at(minute)
            .launch()
            .env("FAKE_NVML_LOG", &log)
            .arg("up")
            .args(lab.host.args())
            .arg(p)
            .run()
            .code(0);
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(inits(&plain, 5), 0, "a no-op without a lease loads no NVML");
    assert_eq!(inits(&leased, 6), 1, "a leased no-op samples once");
    assert_eq!(inits(&leased, 6), 0, "not twice in a minute");
}

#[test]
fn render_turns_an_until_duration_into_the_targets_time_limit_and_names_the_rest() {
    let p = Profiles::new();
    let path = p.write(
        "job.toml",
        "image = \"busybox\"\ncommand = \"sleep 1\"\n[gpus]\ncount = 1\n[lease]\nuntil = \"72h\"\nidle_after = \"2h\"\n",
    );
    let render = |format: &str, lossy: bool| {
        let mut l = Launch::new()
            .args(["--nvml-lib", "/nonexistent/libnvidia-ml.so.1", "render"])
            .arg(&path)
            .args(["--format", format]);
        if lossy {
            l = l.arg("--lossy");
        }
        l.run()
    };
    let strict = render("kubernetes", false).code(2);
    assert!(
        strict
            .stderr
            .contains("`lease.idle_after` cannot be expressed for kubernetes"),
        "{}",
        show(&strict)
    );
    let k8s = render("kubernetes", true).code(0);
    assert!(
        k8s.stdout.contains("activeDeadlineSeconds: 259200"),
        "{}",
        k8s.stdout
    );
    assert!(
        k8s.stdout.contains("# dropped: `lease.idle_after`"),
        "{}",
        k8s.stdout
    );
    let slurm = render("slurm", true).code(0);
    assert!(
        slurm.stdout.contains("#SBATCH --time=3-00:00:00\n"),
        "{}",
        slurm.stdout
    );
    let compose = render("compose", true).code(0);
    assert!(
        compose.stdout.contains("# dropped: `lease.until`"),
        "{}",
        compose.stdout
    );
}

#[test]
fn import_never_invents_a_lease() {
    let p = Profiles::new();
    let script = p.write(
        "run.sh",
        "docker run -d --gpus all --name nb --shm-size=8g -p 8888:8888 jupyter/base-notebook\n",
    );
    let out = Launch::new()
        .args(["import"])
        .arg(&script)
        .args(["--output", &p.path().join("nb.toml").display().to_string()])
        .run()
        .code(0);
    let written = std::fs::read_to_string(p.path().join("nb.toml"))
        .unwrap_or_else(|_| panic!("{}", show(&out)));
    assert!(!written.contains("lease"), "{written}");
}
