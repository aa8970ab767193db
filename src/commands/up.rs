//! `launch up` (and plain `launch PROFILE`): apply profiles, concurrently.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde_json::json;

use super::{Target, allowed, open_session, runtime, shown, split_valid};
use crate::cli::{Global, PullArg, UpArgs};
use std::time::{Duration, Instant};

use launch::engine::{Engine, State};
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::lease::{self, reclaim};
use launch::profile::{Profile, PullPolicy};
use launch::reconcile::recover::Leftover;
use launch::reconcile::{self, Action, Options, Outcome, plan::short};

pub fn run(args: &UpArgs, global: &Global) -> Result<Exit> {
    let policy = global.policy()?;
    let options = Options {
        no_recreate: args.no_recreate,
        force_recreate: args.force_recreate,
        pull: args.pull.map(|p| match p {
            PullArg::Missing => PullPolicy::Missing,
            PullArg::Always => PullPolicy::Always,
            PullArg::Never => PullPolicy::Never,
        }),
    };
    let locks = global.locks();
    let rt = runtime()?;
    rt.block_on(async {
        let settings = global.settings();
        let (targets, facts, needs, early) =
            launch::session::load_and_ask(&args.profiles, &settings).await?;
        let (valid, exit) = split_valid(&targets, global);
        if valid.is_empty() {
            early.abort();
            return Ok(exit);
        }
        let session = match open_session(global, &valid, facts, needs, early).await {
            Ok(session) => session,
            Err(failed) => return Ok(exit.worst(failed)),
        };
        let (valid, refused) = allowed(
            policy.as_ref(),
            valid,
            &session.facts,
            Some(&session.engine),
            options.pull != Some(PullPolicy::Never),
            global,
        )
        .await;
        let exit = exit.worst(refused);
        let profiles: Vec<&Profile> = valid.iter().map(|(_, p)| *p).collect();
        // Leases (docs/architecture.md, leases): one sample of the GPUs for
        // the host when a leased profile has GPUs, before any is judged.
        let now = lease::now();
        let leases: Vec<Option<launch::profile::Lease>> = profiles
            .iter()
            .map(|p| lease::effective(p, policy.as_ref()))
            .collect();
        let sampling = profiles
            .iter()
            .zip(&leases)
            .any(|(p, l)| l.is_some() && p.gpus.is_some());
        if sampling {
            let proc_root = std::env::var_os("LAUNCH_PROC_ROOT")
                .map_or_else(|| std::path::PathBuf::from("/proc"), Into::into);
            let nvml = &global.settings().roots.nvml_lib;
            if let Err(e) =
                lease::sample::tick(&session.store, &session.engine, nvml, &proc_root, now).await
            {
                tracing::warn!(
                    "the GPUs were not sampled ({e}): no container is reclaimed as idle until they are"
                );
            }
        }
        let tell = reclaim::Tell {
            notify: policy.as_ref().and_then(|p| p.lease.notify.clone()),
        };
        let tell = &tell;
        // Which containers the listing already shows in sync: pure work,
        // split over two threads; the rest go to the engine.
        let in_sync = in_sync_all(session.listing.as_ref(), &session.facts, &profiles, options);
        let (session, locks) = (&session, &locks);
        let deadline = global.deadline();
        let runs = valid
            .iter()
            .zip(in_sync)
            .zip(leases)
            .map(|(((target, profile), in_sync), lease)| async move {
                // Every engine call for this profile goes through its gate.
                let gate = session.gate(profile);
                let cx = session.context(&gate, locks);
                let work = async {
                    let mut warning = None;
                    if let Some(lease) = &lease {
                        let hash = lease::profile_hash(profile);
                        match reclaim::before(&gate, &session.store, profile, lease, &hash, tell, now)
                            .await?
                        {
                            reclaim::Before::Proceed { warning: w } => warning = w,
                            reclaim::Before::Reclaimed { at, reason, snapshot, now } => {
                                return Ok(Done::Reclaimed { name: profile.name.clone(), at, reason, snapshot, now });
                            }
                        }
                    }
                    let outcome = match in_sync {
                        Some(outcome) => Ok(outcome),
                        None => reconcile::up(&cx, profile, options).await,
                    };
                    let outcome = match outcome {
                        Ok(o) => reconcile::probe::after_up(&gate, profile, o).await,
                        failed => failed,
                    };
                    let outcome = match outcome {
                        Ok(o) if args.wait => wait_until_ready(&gate, &o.name, args.wait_timeout)
                            .await
                            .map(|()| o),
                        other => other,
                    }?;
                    if lease.is_some() {
                        let made = matches!(&outcome.action, Action::Create | Action::Recreate { .. });
                        let ran = made
                            || matches!(&outcome.action, Action::Start | Action::Restart { .. } | Action::Unpause);
                        if ran {
                            reclaim::started(&session.store, &outcome.name, now, made)?;
                        }
                    }
                    Ok(Done::Up(Box::new(outcome), warning))
                };
                let doing = || format!("{} was being brought up", profile.name);
                (
                    *target,
                    launch::session::within(deadline, doing, work).await,
                )
            });
        // Each profile's line as soon as it is done: a run killed later
        // still leaves word of what it did.
        let mut runs: FuturesUnordered<_> = runs.collect();
        let mut exit = exit;
        while let Some((target, result)) = runs.next().await {
            let this = match result {
                Ok(Done::Up(outcome, warning)) => {
                    if let Some(w) = warning {
                        report_warning(target, &outcome.name, &w, global);
                    }
                    report(target, &outcome, global);
                    Exit::Ok
                }
                Ok(reclaimed) => {
                    report_reclaimed(target, &reclaimed, global);
                    Exit::Ok
                }
                Err(e) => report_error(target, &e, global),
            };
            exit = exit.worst(this);
        }
        Ok(exit)
    })
}

/// How one profile's run ended.
enum Done {
    /// Brought up (or found up), with its lease's warning if one is due.
    Up(Box<Outcome>, Option<reclaim::Warning>),
    /// Left down: its lease reclaimed it (`now`: this run did).
    Reclaimed {
        name: String,
        at: i64,
        reason: String,
        snapshot: Option<String>,
        now: bool,
    },
}

/// A lease that ends soon: a line on stderr even under `--quiet` (it
/// needs a person), a JSON-lines event under `--json`.
fn report_warning(target: &Target, name: &str, w: &reclaim::Warning, global: &Global) {
    if global.json {
        println!(
            "{}",
            json!({
                "profile": shown(&target.path), "name": name, "event": "lease-warning",
                "reclaim_at": lease::shown(w.at), "reason": w.reason, "message": w.line,
            })
        );
    } else {
        eprintln!("warning: {}", w.line);
    }
}

/// A container its lease keeps down: one line, exit 0.
fn report_reclaimed(target: &Target, done: &Done, global: &Global) {
    let Done::Reclaimed {
        name,
        at,
        reason,
        snapshot,
        now,
    } = done
    else {
        return;
    };
    if global.json {
        println!(
            "{}",
            json!({
                "profile": shown(&target.path), "name": name, "action": "reclaimed",
                "reason": reason, "reclaimed_at": lease::shown(*at), "now": now,
                "snapshot": snapshot, "exit_code": 0,
            })
        );
        return;
    }
    if global.quiet && !now {
        return;
    }
    println!(
        "{name}: reclaimed ({reason}) at {}; edit the profile or `launch renew {name}`",
        lease::shown(*at)
    );
    if let Some(s) = snapshot {
        println!("{name}: its changed files were committed to {s}");
    }
}

/// `reconcile::in_sync` for each profile, on two threads when there are
/// several (the no-op of a folder run from cron is mostly this).
fn in_sync_all(
    listing: Option<&reconcile::Listing>,
    host: &launch::host::HostFacts,
    profiles: &[&launch::profile::Profile],
    options: Options,
) -> Vec<Option<Outcome>> {
    let Some(listing) = listing else {
        return vec![None; profiles.len()];
    };
    let (first, second) = profiles.split_at(profiles.len() / 2);
    let check = |part: &[&launch::profile::Profile]| -> Vec<Option<Outcome>> {
        part.iter()
            .map(|p| reconcile::in_sync(listing, host, p, options))
            .collect()
    };
    std::thread::scope(|s| {
        let other = s.spawn(|| check(first));
        let mut rest = check(second);
        // A panic on the other thread is a bug; its profiles then take the
        // full path rather than failing the run.
        let mut out = other.join().unwrap_or_else(|_| vec![None; first.len()]);
        out.append(&mut rest);
        out
    })
}

fn report(target: &Target, o: &Outcome, global: &Global) {
    if global.json {
        println!(
            "{}",
            json!({
                "profile": shown(&target.path),
                "name": o.name,
                "action": o.action.name(),
                "id": o.id,
                "gpus": o.gpus,
                "changes": o.changes.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                "snapshot": o.applied.snapshot,
                "discarded": o.applied.discarded,
                "removing": o.applied.removing,
                "leftovers": o.leftovers.iter().map(|l| json!({
                    "container": l.container(), "action": l.action(), "message": l.describe(),
                })).collect::<Vec<_>>(),
                "exit_code": 0,
            })
        );
        return;
    }
    // A kept leftover is a warning even under --quiet: it needs a person.
    for l in &o.leftovers {
        if let Leftover::Kept { .. } = l {
            eprintln!("warning: {}: {}", o.name, l.describe());
        }
    }
    if global.quiet {
        return;
    }
    for l in o
        .leftovers
        .iter()
        .filter(|l| !matches!(l, Leftover::Kept { .. }))
    {
        println!("{}: {}", o.name, l.describe());
    }
    let id = o.id.as_deref().map(short).unwrap_or_default();
    let line = match &o.action {
        Action::Create => format!("created and started ({id})"),
        Action::Start => format!("started ({id})"),
        Action::Unpause => format!("unpaused ({id})"),
        Action::Nothing => "up to date".to_string(),
        Action::Recreate { why } => format!("recreated ({id}): {why}"),
        Action::Restart { why } => format!("restarted ({id}): {why}"),
        Action::Refuse(r) => format!("refused: {r}"),
    };
    println!("{}: {line}", o.name);
    if let Some(snapshot) = &o.applied.snapshot {
        println!(
            "{}: the old container's changed files were committed to {snapshot}",
            o.name
        );
    }
    if o.applied.discarded {
        println!(
            "{}: the old container went with any files changed in it ([recreate] changed_files = \"discard\")",
            o.name
        );
    }
    if let Some(aside) = &o.applied.removing {
        println!(
            "{}: the engine is still deleting the old container's files; it goes on its own, as {aside}",
            o.name
        );
    }
}

/// Prints a failed run; returns how it exits.
pub fn report_error(target: &Target, e: &Error, global: &Global) -> Exit {
    let name = target
        .loaded
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_default();
    if global.json {
        println!(
            "{}",
            json!({
                "profile": shown(&target.path), "name": name, "action": "error", "error": e.to_string(),
                "errors": reasons(e),
                "exit_code": e.exit().code(),
            })
        );
    } else {
        match e {
            Error::Profile(_) | Error::Policy(_) => eprint!("{}", e.render(false)),
            _ => eprintln!("error: {name}: {e}"),
        }
    }
    e.exit()
}

/// Why a run failed, for `--json`: each located problem of a profile or a
/// policy (file, line, column, message, help), else the one message; a
/// cron log that keeps only the JSON line keeps the reasons.
pub fn reasons(e: &Error) -> serde_json::Value {
    match e {
        Error::Profile(d) | Error::Policy(d) => d.to_json(),
        other => json!([{ "message": other.to_string() }]),
    }
}

/// `--wait`: polls until the container runs (and is healthy, if it has a
/// healthcheck) and has stayed up for `SETTLE`, so that a command that exits
/// at once is caught; fails with its state when the time is up.
async fn wait_until_ready<E: Engine>(engine: &E, name: &str, seconds: u64) -> Result<()> {
    const SETTLE: Duration = Duration::from_secs(1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    // When it was first seen ready, and which start of it that was.
    let mut ready_since: Option<(Instant, String)> = None;
    loop {
        let Some(c) = engine.find(name).await? else {
            return Err(Error::NotReady(format!(
                "container {name} disappeared while waiting for it"
            )));
        };
        let ready = c.state == State::Running && c.health.as_deref().is_none_or(|h| h == "healthy");
        ready_since = match ready_since {
            Some((at, started)) if ready && started == c.started_at => {
                if at.elapsed() >= SETTLE {
                    return Ok(());
                }
                Some((at, started))
            }
            _ if ready => Some((Instant::now(), c.started_at.clone())),
            _ => None,
        };
        let gone = matches!(c.state, State::Exited | State::Dead) && c.health.is_none();
        if Instant::now() >= deadline || gone {
            let health = c
                .health
                .map(|h| format!(", health {h}"))
                .unwrap_or_default();
            return Err(Error::NotReady(format!(
                "container {name} is not ready after --wait: state {}{health}",
                c.state.as_str()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
