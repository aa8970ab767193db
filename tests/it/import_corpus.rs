//! `launch import` on the scripts people really have: every entry of
//! tests/corpus/gpu-docker-run.txt (real GPU `docker run` lines and
//! scripts from public repositories, each with its source) is imported on
//! an 8-GPU host, and each profile written is checked as cron would check
//! it (nothing in the environment but PATH).
//!
//! An entry passes when it imports and every profile passes `check`. One
//! whose only faults are what the script leaves to its caller (a variable
//! it does not set: `$IMAGE`, `$DISPLAY`; a positional `$1`; an env file
//! beside it) is counted apart. At least 95 % of the others pass; none
//! crashes or hangs; the failures are listed by kind.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fake_gpu::FakeGpuHost;

const CORPUS: &str = include_str!("../corpus/gpu-docker-run.txt");

/// Runs `cmd` for at most `limit`: (exit code, stderr), or `None` when it
/// had to be killed.
fn run(mut cmd: Command, limit: Duration) -> Option<(i32, String)> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("launch runs");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            return Some((status.code().unwrap_or(-1), stderr));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn launch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_launch"));
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LAUNCH_STATE_DIR", crate::support::cli::state_dir());
    cmd
}

/// Whether an error is the script leaving something to its caller.
fn left_to_caller(error: &str) -> bool {
    let variable = error.contains("is not set") && error.contains("environment variable `");
    // A value that still holds the script's `$X`, `${X}` or `$1`.
    let parameter = error.split('`').skip(1).step_by(2).any(|quoted| {
        quoted.contains('$')
            && quoted.split('$').skip(1).any(|after| {
                after.starts_with(|c: char| {
                    c.is_ascii_alphanumeric() || matches!(c, '_' | '{' | '@')
                })
            })
    });
    let beside = error.contains("env_file") && error.contains("no such file");
    variable || parameter || beside
}

/// A failure's kind, for the list: its first error, without paths.
fn kind(errors: &[String]) -> String {
    let first = errors
        .iter()
        .find(|e| !left_to_caller(e))
        .or(errors.first())
        .map_or("no error line", String::as_str);
    let first = first.trim_start_matches("error: ");
    match first.split_once(": ") {
        Some((place, why)) if place.contains('/') => why.to_string(),
        _ => first.to_string(),
    }
}

#[test]
fn real_gpu_docker_run_lines_import_into_profiles_that_pass_check() {
    let host = FakeGpuHost::builder().gpus_with_minor_as_index(8).build();
    let entries: Vec<(&str, &str)> = CORPUS
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let (source, command) = b.split_once('\n').expect("a source line, then the command");
            (source.trim_start_matches("# source: "), command)
        })
        .collect();
    assert!(entries.len() >= 100, "{} entries", entries.len());
    let repositories: std::collections::BTreeSet<(&str, &str)> = entries
        .iter()
        .map(|(s, _)| {
            let mut parts = s.splitn(4, '/');
            let (_, owner, repo) = (parts.next(), parts.next(), parts.next());
            (owner.unwrap_or(""), repo.unwrap_or(""))
        })
        .collect();
    let limit = Duration::from_secs(30);
    let (mut passed, mut apart) = (0, 0);
    let mut failed: Vec<(String, &str)> = Vec::new();
    let mut broken: Vec<String> = Vec::new();
    for (source, command) in &entries {
        let dir = tempfile::tempdir().expect("a temp dir");
        let script = dir.path().join("run.sh");
        std::fs::write(&script, format!("{command}\n")).expect("script");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("out");
        let mut import = launch();
        import
            .args(host.args())
            .arg("import")
            .arg(&script)
            .arg("-o")
            .arg(&out);
        let Some((code, import_err)) = run(import, limit) else {
            broken.push(format!("{source}: import hangs"));
            continue;
        };
        if !matches!(code, 0 | 2) || import_err.contains("panicked") {
            broken.push(format!("{source}: import exits {code}: {import_err}"));
            continue;
        }
        let files: Vec<_> = std::fs::read_dir(&out)
            .expect("out")
            .map(|e| e.expect("entry").path())
            .collect();
        let mut errors: Vec<String> = import_err
            .lines()
            .filter(|l| l.starts_with("error"))
            .map(str::to_string)
            .collect();
        if !files.is_empty() {
            let mut check = launch();
            check.arg("check").args(&files);
            let Some((code, check_err)) = run(check, limit) else {
                broken.push(format!("{source}: check hangs"));
                continue;
            };
            if !matches!(code, 0 | 2 | 3) || check_err.contains("panicked") {
                broken.push(format!("{source}: check exits {code}: {check_err}"));
                continue;
            }
            errors.extend(
                check_err
                    .lines()
                    .filter(|l| l.starts_with("error"))
                    .map(str::to_string),
            );
        } else if errors.is_empty() {
            errors.push("nothing was imported".into());
        }
        if errors.is_empty() {
            passed += 1;
        } else if errors.iter().all(|e| left_to_caller(e)) {
            apart += 1;
        } else {
            failed.push((kind(&errors), source));
        }
    }
    let judged = passed + failed.len();
    let share = passed as f64 / judged as f64;
    eprintln!(
        "corpus: {} entries from {} repositories: {passed} pass, {apart} leave a parameter to their caller (apart), {} fail: {:.1} % of {judged} pass",
        entries.len(),
        repositories.len(),
        failed.len(),
        share * 100.0
    );
    failed.sort();
    for (kind, source) in &failed {
        eprintln!("  fails: {kind}  ({source})");
    }
    assert!(broken.is_empty(), "crashed or hung: {broken:#?}");
    assert!(share >= 0.95, "{:.1} % pass: {failed:#?}", share * 100.0);
}
