//! The lab's board (docs/architecture.md, the board): `launch report`
//! writes a page, its JSON and its text from the state store, and a real
//! browser (headless Chromium) shows the page: the tests read the DOM it
//! built, its console and the pixels of its screenshot.

use std::path::{Path, PathBuf};

use crate::support::browser::Seen;
use crate::support::cli::{Launch, Output, Profiles};
use crate::support::docker::{Scratch, docker, inspect};
use crate::support::fake_gpu::FakeGpuHost;
use serde_json::Value;

/// 2026-12-01T00:00:00Z.
const T0: i64 = 1_796_083_200;

fn rfc3339(seconds: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn show(o: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        o.code, o.stdout, o.stderr
    )
}

/// `launch report -o DIR` at `now`, with these extra arguments.
fn report(state: &Path, now: i64, out: &Path, extra: &[String]) -> Output {
    Launch::new()
        .env("LAUNCH_STATE_DIR", state)
        .env("LAUNCH_NOW", rfc3339(now))
        .args(["report", "-o"])
        .arg(out)
        .args(extra)
        .run()
}

/// The page, its JSON and its text as `report -o` wrote them, and what
/// the browser saw of the page (its screenshot kept at `png`).
struct Written {
    json: Value,
    text: String,
    html: String,
    seen: Seen,
}

fn read(browser: &crate::support::browser::Browser, out: &Path, png: &Path) -> Written {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("usage.json")).expect("usage.json"))
            .expect("usage.json is JSON");
    let text = std::fs::read_to_string(out.join("report.txt")).expect("report.txt");
    let html = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    let seen = browser.see(&out.join("index.html"), png);
    Written {
        json,
        text,
        html,
        seen,
    }
}

/// What every page must be: loaded without a console message (the page's
/// policy forbids fetching anything, so a fetch would be one), and nothing
/// in it pointing off the machine.
fn assert_clean(w: &Written) {
    assert!(w.seen.console.is_empty(), "console: {:#?}", w.seen.console);
    for off in ["src=", "href=", "@import", "url("] {
        assert!(
            !w.html.contains(off),
            "the page fetches nothing: found {off}"
        );
    }
    assert!(!w.html.contains("<script"), "no script");
}

/// The page, the JSON and the text say the same of every owner and GPU.
fn assert_agree(w: &Written) {
    for host in w.json["hosts"].as_array().expect("hosts") {
        for o in host["owners"].as_array().expect("owners") {
            let owner = o["owner"].as_str().expect("owner");
            let held = format!("{:.1}", o["held_hours"].as_f64().expect("held"));
            let busy = format!("{:.1}", o["busy_hours"].as_f64().expect("busy"));
            let reclaims = o["reclaims"].as_u64().expect("reclaims");
            assert!(
                w.seen.dom.contains(&format!(
                    "class=\"bar held\" data-owner=\"{owner}\" data-hours=\"{held}\""
                )) && w.seen.dom.contains(&format!(
                    "class=\"bar busy\" data-owner=\"{owner}\" data-hours=\"{busy}\""
                )),
                "the page's bars for {owner}: {held} held, {busy} busy"
            );
            assert!(
                w.seen.dom.contains(&format!(
                    "<tr data-owner=\"{owner}\"><td>{owner}</td><td class=\"num held\">{held}</td><td class=\"num busy\">{busy}</td>"
                )),
                "the page's table row for {owner}"
            );
            let line = format!("  {owner:<16} held {held}  busy {busy}  reclaims {reclaims}");
            assert!(
                w.text.contains(&line),
                "the text's line `{line}`:\n{}",
                w.text
            );
        }
        for g in host["gpus"].as_array().expect("gpus") {
            let index = g["index"].as_u64().expect("index");
            assert!(
                w.seen
                    .dom
                    .contains(&format!("<tr class=\"gpu\" data-index=\"{index}\">")),
                "the page's row for GPU {index}"
            );
            assert!(w.text.contains(&format!("  GPU {index} ")), "{}", w.text);
            for h in g["holders"].as_array().expect("holders") {
                let name = h["name"].as_str().expect("holder");
                assert!(w.seen.dom.contains(name), "the page names {name}");
                assert!(w.text.contains(name), "the text names {name}");
            }
        }
    }
}

#[test]
fn the_board_of_a_fresh_host_says_there_is_nothing_yet() {
    let browser = needs_browser!();
    let state = tempfile::tempdir().expect("a temp dir");
    let out = tempfile::tempdir().expect("a temp dir");
    // No NVML, no samples: the store is as a fresh host has it.
    let run = Launch::new()
        .env("LAUNCH_STATE_DIR", state.path())
        .args([
            "report",
            "--nvml-lib",
            "/nonexistent/libnvidia-ml.so.1",
            "-o",
        ])
        .arg(out.path())
        .run()
        .code(0);
    assert!(run.stdout.contains("index.html"), "{}", show(&run));
    let w = read(&browser, out.path(), &out.path().join("board.png"));
    assert_clean(&w);
    assert!(w.seen.dom.contains("class=\"empty\""), "{}", w.seen.dom);
    assert!(w.text.contains("no samples yet"), "{}", w.text);
    assert_eq!(w.json["hosts"][0]["gpus"], serde_json::json!([]));
    // The page is drawn: its heading's dark pixels.
    assert!(w.seen.pixels_of("#222222") > 100);
}

#[test]
fn thirty_days_of_eight_gpus_are_drawn_and_the_three_formats_agree() {
    let browser = needs_browser!();
    let state = tempfile::tempdir().expect("a temp dir");
    let out = tempfile::tempdir().expect("a temp dir");
    let now = T0 + 30 * 86_400;
    history(state.path(), now, 30, 8);
    let run = report(
        state.path(),
        now,
        out.path(),
        &[
            "--db".into(),
            state.path().join("state.db").display().to_string(),
        ],
    )
    .code(0);
    assert!(run.stderr.is_empty(), "{}", show(&run));
    let w = read(&browser, out.path(), &out.path().join("board.png"));
    assert_clean(&w);
    assert_agree(&w);
    let host = &w.json["hosts"][0];
    assert_eq!(host["gpus"].as_array().map(Vec::len), Some(8));
    // 7 days × 24 h of each GPU, held by one owner: 168 GPU-hours each
    // of the 4 owners holding 2 GPUs is 336.
    let owners = host["owners"].as_array().expect("owners");
    assert_eq!(owners.len(), 4);
    for o in owners {
        assert_eq!(o["held_hours"], 336.0, "{o}");
        assert_eq!(o["busy_hours"], 168.0, "{o}");
    }
    // Both time lines have a lane per GPU, drawn.
    for range in ["day", "week"] {
        let at = w
            .seen
            .dom
            .find(&format!("data-range=\"{range}\""))
            .unwrap_or_else(|| panic!("the {range} time line"));
        let end = w.seen.dom[at..]
            .find("</svg>")
            .map_or(w.seen.dom.len(), |e| at + e);
        let svg = &w.seen.dom[at..end];
        assert_eq!(
            svg.matches(">GPU ").count(),
            8,
            "a label per lane in {range}"
        );
        assert!(svg.matches("class=\"held\"").count() >= 8 * 24, "{range}");
        assert!(svg.matches("class=\"busy\"").count() >= 8 * 12, "{range}");
        assert!(
            svg.contains("time (UTC)"),
            "the {range} time axis is labelled"
        );
    }
    // What a person sees: each owner's colour fills a good part of the
    // screen (busy bars are solid in it).
    for (owner, color) in host["colors"].as_object().expect("colors") {
        let color = color.as_str().expect("a colour");
        assert!(
            w.seen.pixels_of(color) > 2_000,
            "{owner}'s {color}: {} pixels of {}x{}",
            w.seen.pixels_of(color),
            w.seen.width,
            w.seen.height
        );
    }
}

/// `days` of `gpus` GPUs sampled every minute up to `now`: the history the
/// benchmarks write (examples/lease_history.rs), through the tick's own write.
fn history(state: &Path, now: i64, days: i64, gpus: u32) {
    lease_history::history(&launch::state::Store::at(state), now, days, gpus)
        .expect("the history is written");
}

/// The example's `main` is not called here.
#[allow(dead_code)]
#[path = "../../examples/lease_history.rs"]
mod lease_history;

// ---------------------------------------------------------------------------
// A live host: the demo's fake 4-GPU host, containers of three owners, a
// container launch did not make and a host process, leases and a reclaim.

struct Live {
    scratch: Scratch,
    profiles: Profiles,
    host: FakeGpuHost,
    state: tempfile::TempDir,
    image: String,
}

impl Live {
    fn launch(&self, now: i64) -> Launch {
        Launch::new()
            .env("LAUNCH_STATE_DIR", self.state.path())
            .env("LAUNCH_NOW", rfc3339(now))
            .env("LAUNCH_LOCK_DIR", self.state.path().join("locks"))
    }

    /// A profile of `owner` (uid) on GPU `gpu`, leased by `lease`.
    fn profile(&self, what: &str, uid: u32, gpu: u32, lease: &str) -> (String, PathBuf) {
        let name = self.scratch.name(what);
        let text = format!(
            "image = {:?}\nname = {name:?}\npull = \"never\"\ncommand = [\"sleep\", \"100000\"]\nstop_timeout = 0\n\
             [gpus]\ndevices = [{gpu}]\nmode = \"devices\"\n[lease]\n{lease}\n",
            self.image
        );
        let path = self.profiles.write(&format!("team/{what}.toml"), &text);
        std::os::unix::fs::chown(&path, Some(uid), Some(uid)).expect("chown the profile");
        (name, path)
    }
}

fn pid(name: &str) -> u32 {
    inspect(name, "{{.State.Pid}}")
        .parse()
        .expect("a running container's pid")
}

#[test]
fn a_live_hosts_board_shows_who_holds_what_now_and_over_the_day() {
    needs_docker!();
    let browser = needs_browser!();
    let scratch = Scratch::new("board");
    let image = scratch.busybox_image("img", &[]);
    let live = Live {
        scratch,
        profiles: Profiles::new(),
        host: FakeGpuHost::builder().gpus(4).build(),
        state: tempfile::tempdir().expect("a temp dir"),
        image,
    };
    let (train, _) = live.profile("train", 65534, 0, "idle_after = \"2h\"\ngrace = \"30m\"");
    let (nb, _) = live.profile("nb", 1, 1, "idle_after = \"1h\"\nwarn_before = \"15m\"");
    let (eval, _) = live.profile("eval", 0, 2, "until = \"3d\"");
    let team = live.profiles.path().join("team");
    let up = |minute: i64| {
        live.launch(T0 + minute * 60)
            .arg("up")
            .args(live.host.args())
            .arg(&team)
            .run()
    };
    let out = up(0).code(0);
    assert!(out.stdout.contains("created"), "{}", show(&out));
    // GPU 3: a container launch did not make (uid 4321) and a host process.
    let foreign = live.scratch.name("foreign");
    docker(&[
        "run",
        "-d",
        "--name",
        &foreign,
        "-u",
        "4321",
        &live.image,
        "sleep",
        "100000",
    ]);
    let mut process = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sleep",
            "1000",
        ])
        .spawn()
        .expect("setpriv runs");
    // A day, sampled every 10 minutes by cron's `up`: train busy all along,
    // nb idle (reclaimed after an hour), eval busy in the afternoon.
    for step in 1..=144 {
        let minute = step * 10;
        let eval_sm = if (720..1080).contains(&minute) { 80 } else { 2 };
        let mut procs = vec![
            (0, pid(&train), 70),
            (2, pid(&eval), eval_sm),
            (3, pid(&foreign), 40),
            (3, process.id(), 0),
        ];
        if inspect(&nb, "{{.State.Status}}") == "running" {
            procs.push((1, pid(&nb), 0));
        }
        live.host.set_usage(&procs, &[]);
        up(minute).code(0);
    }
    assert_eq!(inspect(&nb, "{{.State.Status}}"), "exited", "reclaimed");
    let out = tempfile::tempdir().expect("a temp dir");
    let now = T0 + 1445 * 60;
    let run = live
        .launch(now)
        .args(["report", "-o"])
        .arg(out.path())
        .args(live.host.args())
        .run()
        .code(0);
    let _ = process.kill();
    let _ = process.wait();
    assert!(run.stdout.contains("index.html"), "{}", show(&run));
    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("board.png");
    let w = read(&browser, out.path(), &png);
    assert_clean(&w);
    assert_agree(&w);
    let host = &w.json["hosts"][0];
    let gpus = host["gpus"].as_array().expect("gpus");
    assert_eq!(gpus.len(), 4);
    let holder = |gpu: usize, name: &str| {
        gpus[gpu]["holders"]
            .as_array()
            .and_then(|hs| hs.iter().find(|h| h["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} on GPU {gpu}: {}", gpus[gpu]))
    };
    let t = holder(0, &train);
    assert_eq!(
        (t["kind"].as_str(), t["owner"].as_str()),
        (Some("launch"), Some("nobody"))
    );
    assert_eq!(t["lease"]["state"], "held");
    assert!(
        gpus[1]["holders"].as_array().is_some_and(Vec::is_empty),
        "nb's GPU is free"
    );
    assert_eq!(holder(2, &eval)["owner"], "root");
    assert_eq!(holder(3, &foreign)["kind"], "container");
    assert_eq!(holder(3, &foreign)["owner"], "4321");
    assert_eq!(holder(3, "sleep")["owner"], "nobody");
    assert!(gpus[0]["memory_total"].as_u64().is_some_and(|m| m > 0));
    let owners: Vec<&str> = host["owners"]
        .as_array()
        .expect("owners")
        .iter()
        .filter_map(|o| o["owner"].as_str())
        .collect();
    for who in ["nobody", "daemon", "root", "4321"] {
        assert!(owners.contains(&who), "{who} in {owners:?}");
    }
    let daemon = host["owners"]
        .as_array()
        .and_then(|os| os.iter().find(|o| o["owner"] == "daemon"))
        .expect("daemon's row");
    assert_eq!(daemon["reclaims"], 1);
    assert!(
        w.seen.dom.contains("data-kind=\"reclaim\"")
            && w.text.contains(&format!("reclaim {nb} (daemon)")),
        "the reclaim is listed:\n{}",
        w.text
    );
    // The day's time line has a lane for each GPU; the owners' colours are
    // on the screen.
    assert_eq!(host["day"]["lanes"].as_array().map(Vec::len), Some(4));
    for owner in ["nobody", "root"] {
        let color = host["colors"][owner].as_str().expect("a colour");
        assert!(w.seen.pixels_of(color) > 1_000, "{owner}'s {color}");
    }
    // The README's picture is this test's (LAUNCH_UPDATE_DOCS=1 writes it).
    if std::env::var("LAUNCH_UPDATE_DOCS").as_deref() == Ok("1") {
        std::fs::copy(
            &png,
            crate::support::cli::repo_root().join("docs/board.png"),
        )
        .expect("write docs/board.png");
    }
    let _ = docker(&["rm", "-f", &foreign]);
}
