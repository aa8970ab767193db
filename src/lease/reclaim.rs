//! Acting on a lease's decision for `up` (docs/architecture.md, leases):
//! warn ahead (an event in the store, a line in `up`'s output and `status`,
//! the owner's terminals, the policy's `notify` command), then snapshot if
//! asked, then stop or remove, through the profile's gate. A reclaimed
//! container keeps a tombstone: the next `up` leaves it down until its spec
//! or its lease changes, or `launch renew` brings it back.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use super::record::{self, Event, Record};
use super::{Decision, decide, sample, shown};
use crate::engine::{Engine, Gate, Whose};
use crate::error::{Error, Result};
use crate::profile::{Lease, OnReclaim, Profile};
use crate::state::Store;

/// What the lease says `up` should do with the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// Bring it up as usual; with a warning when its lease ends soon (once
    /// per end: the run that first sees it near).
    Proceed { warning: Option<Warning> },
    /// It stays down: reclaimed now or earlier (when, and why).
    Reclaimed {
        at: i64,
        reason: String,
        /// The snapshot taken of it now, if any.
        snapshot: Option<String>,
        /// Reclaimed by this run.
        now: bool,
    },
}

/// A lease that ends soon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// When it will be reclaimed.
    pub at: i64,
    pub reason: String,
    /// The line the owner reads.
    pub line: String,
}

/// Who is told, and how, besides the store and `up`'s output.
#[derive(Debug, Clone, Default)]
pub struct Tell {
    /// The policy's `notify` command (run with NAME, OWNER, REASON, WHEN).
    pub notify: Option<String>,
}

/// The lease's part of `up` for `profile`, before anything else is done
/// for it. `profile_hash`: [`super::profile_hash`] of the profile now.
pub async fn before<E: Engine>(
    gate: &Gate<'_, E>,
    store: &Store,
    profile: &Profile,
    lease: &Lease,
    profile_hash: &str,
    tell: &Tell,
    now: i64,
) -> Result<Before> {
    let state = |e: crate::state::StoreError| Error::Io(e.to_string());
    let found = gate.find(&profile.name).await?;
    // Another owner's container is the normal path's to refuse.
    if let Some(c) = &found
        && gate.whose(c)? != Whose::Mine
    {
        return Ok(Before::Proceed { warning: None });
    }
    let owner = profile.owner.display();
    let mut r = match record::get(store, &profile.name).map_err(state)? {
        Some(r) if r.owner_uid == profile.owner.uid => r,
        // Another owner's lease of a container that is gone (the name is
        // free, or this owner's now): theirs ended with it.
        Some(_) => {
            let r = Record::new(&profile.name, profile.owner.uid, &owner, now);
            record::save(store, &r).map_err(state)?;
            r
        }
        None => {
            record::begin(store, &profile.name, profile.owner.uid, &owner, now).map_err(state)?
        }
    };
    if let Some(at) = r.reclaimed {
        let same = r.profile_hash.as_deref() == Some(profile_hash)
            && r.lease.as_deref() == Some(&lease.fingerprint());
        if same {
            return Ok(Before::Reclaimed {
                at,
                reason: r.reason.clone().unwrap_or_default(),
                snapshot: None,
                now: false,
            });
        }
        // The owner changed the profile: the GitOps way to renew.
        restart_lease(&mut r, now);
        record::save(store, &r).map_err(state)?;
        record::event(
            store,
            &Event {
                ts: now,
                name: r.name.clone(),
                owner: owner.clone(),
                kind: "renew".into(),
                detail: "the profile changed".into(),
            },
        )
        .map_err(state)?;
        return Ok(Before::Proceed { warning: None });
    }
    // Written back only when it changed: a no-op writes nothing.
    let stored = r.clone();
    let save = |r: &Record| {
        if *r == stored {
            Ok(())
        } else {
            record::save(store, r).map_err(state)
        }
    };
    let sampled = sample::last_busy(store, &profile.name, lease.idle_below).map_err(state)?;
    r.last_busy = r.last_busy.max(sampled);
    // Idle only as the samples saw it: sampled lately, while it ran.
    let watched = sample::latest(store, &profile.name)
        .map_err(state)?
        .is_some_and(|(ts, _, _)| now - ts <= sample::LONGEST && ts >= r.started);
    let ends = super::end(lease, &r, watched);
    r.ends = ends.as_ref().map(|(at, _)| *at);
    r.ends_why = ends.map(|(_, why)| why);
    match decide(lease, &r, now, watched) {
        Decision::Keep => {
            save(&r)?;
            Ok(Before::Proceed { warning: None })
        }
        Decision::Warn { reason, at } => {
            let window = at - i64::try_from(lease.warn_before.as_secs()).unwrap_or(0);
            let told = r.warned.is_some_and(|w| w >= window);
            let line = format!(
                "{} will be reclaimed at {} ({reason}); use its GPUs, edit the profile, or `launch renew {}`",
                r.name,
                shown(at),
                r.name
            );
            if !told {
                r.warned = Some(now);
                record::event(
                    store,
                    &Event {
                        ts: now,
                        name: r.name.clone(),
                        owner: owner.clone(),
                        kind: "warn".into(),
                        detail: format!("reclaimed at {} ({reason})", shown(at)),
                    },
                )
                .map_err(state)?;
                announce(profile, tell, &reason, at, &line);
            }
            save(&r)?;
            Ok(Before::Proceed {
                warning: (!told).then_some(Warning { at, reason, line }),
            })
        }
        Decision::Reclaim { reason } => {
            let snapshot = match &found {
                Some(c) => take_back(gate, c, lease).await?,
                None => None,
            };
            r.reclaimed = Some(now);
            r.reason = Some(reason.clone());
            r.profile_hash = Some(profile_hash.to_string());
            r.lease = Some(lease.fingerprint());
            record::save(store, &r).map_err(state)?;
            let detail = match &snapshot {
                Some(s) => format!("{reason}; its changed files were committed to {s}"),
                None => reason.clone(),
            };
            record::event(
                store,
                &Event {
                    ts: now,
                    name: r.name.clone(),
                    owner,
                    kind: "reclaim".into(),
                    detail,
                },
            )
            .map_err(state)?;
            announce(
                profile,
                tell,
                &reason,
                now,
                &format!(
                    "{} was reclaimed ({reason}); edit the profile or `launch renew {}`",
                    r.name, r.name
                ),
            );
            Ok(Before::Reclaimed {
                at: now,
                reason,
                snapshot,
                now: true,
            })
        }
    }
}

/// Whether `profile`'s container is reclaimed and stays down (when, why):
/// its tombstone stands while the profile and lease are as they were.
/// Reads only; `None` when there is no store yet.
pub fn tombstone(store: &Store, profile: &Profile, lease: &Lease) -> Result<Option<(i64, String)>> {
    if !store.exists() {
        return Ok(None);
    }
    let r = record::get(store, &profile.name).map_err(|e| Error::Io(e.to_string()))?;
    Ok(r.and_then(|r| {
        let same = r.profile_hash.as_deref() == Some(&super::profile_hash(profile))
            && r.lease.as_deref() == Some(&lease.fingerprint());
        r.reclaimed
            .filter(|_| same)
            .map(|at| (at, r.reason.unwrap_or_default()))
    }))
}

/// A lease that begins again (a renewal, an edited profile): counted from
/// now, not reclaimed, not warned.
pub fn restart_lease(r: &mut Record, now: i64) {
    r.reclaimed = None;
    r.reason = None;
    r.warned = None;
    r.since = now;
    r.started = now;
    r.last_busy = Some(now);
}

/// After `up` (re)started the container: `grace` counts from now; and
/// when it `made` a new one, a lease `until` a duration counts from now too.
pub fn started(store: &Store, name: &str, now: i64, made: bool) -> Result<()> {
    let state = |e: crate::state::StoreError| Error::Io(e.to_string());
    if let Some(mut r) = record::get(store, name).map_err(state)? {
        r.started = now;
        if made {
            r.since = now;
        }
        record::save(store, &r).map_err(state)?;
    }
    Ok(())
}

/// Snapshot (if the lease says so), then stop or remove; the snapshot's
/// reference when one was taken.
async fn take_back<E: Engine>(
    gate: &Gate<'_, E>,
    c: &crate::engine::Observed,
    lease: &Lease,
) -> Result<Option<String>> {
    let snapshot = match lease.on_reclaim {
        OnReclaim::Snapshot => Some(
            crate::reconcile::changes::snapshot_as(gate, &c.id, &c.name, None)
                .await?
                .0,
        ),
        OnReclaim::Stop | OnReclaim::Remove => None,
    };
    gate.stop(&c.id, None).await?;
    if lease.on_reclaim == OnReclaim::Remove {
        gate.remove(&c.id, false).await?;
    }
    Ok(snapshot)
}

/// Tells the owner: a line on their terminals, and the policy's command.
fn announce(profile: &Profile, tell: &Tell, reason: &str, when: i64, line: &str) {
    tell_terminals(profile.owner.uid, &format!("launch: {line}"));
    if let Some(command) = &tell.notify {
        notify(
            command,
            &profile.name,
            &profile.owner.display(),
            reason,
            when,
        );
    }
}

/// Runs the policy's `notify` command (split like a shell, not run by one)
/// with NAME, OWNER, REASON and WHEN in its environment; its failure is
/// logged, never fatal.
pub fn notify(command: &str, name: &str, owner: &str, reason: &str, when: i64) {
    let Ok(argv) = shell_words::split(command) else {
        tracing::warn!("the policy's notify command cannot be split: {command}");
        return;
    };
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let ran = std::process::Command::new(program)
        .args(args)
        .env("NAME", name)
        .env("OWNER", owner)
        .env("REASON", reason)
        .env("WHEN", shown(when))
        .stdin(std::process::Stdio::null())
        .status();
    match ran {
        Ok(s) if s.success() => {}
        Ok(s) => tracing::warn!("notify `{command}` for {name} exited with {s}"),
        Err(e) => tracing::warn!("notify `{command}` for {name} did not run: {e}"),
    }
}

/// Writes `line` to every terminal the user `uid` owns (`/dev/pts/*`), as
/// `write` does; a terminal that does not take it at once is passed over.
pub fn tell_terminals(uid: u32, line: &str) {
    let Ok(entries) = std::fs::read_dir("/dev/pts") else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let theirs = std::fs::metadata(&path).is_ok_and(|m| m.uid() == uid && m.rdev() != 0);
        if !theirs || path.file_name().is_some_and(|n| n == "ptmx") {
            continue;
        }
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&path);
        if let Ok(mut tty) = opened {
            let _ = writeln!(tty, "\r\n{line}\r");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::recording::Op;
    use crate::engine::{Acting, State};
    use crate::reconcile::testing::Fixture;

    const T0: i64 = 1_800_000_000;
    const M: i64 = 60;

    fn lease_of(p: &Profile) -> Lease {
        p.lease.clone().expect("the profile has a lease")
    }

    async fn before_at(f: &Fixture, p: &Profile, now: i64) -> Before {
        let gate = f.gate(p);
        let hash = super::super::profile_hash(p);
        before(
            &gate,
            &f.store,
            p,
            &lease_of(p),
            &hash,
            &Tell::default(),
            now,
        )
        .await
        .expect("the lease's part of up")
    }

    #[tokio::test]
    async fn a_lease_past_its_end_stops_the_container_and_its_tombstone_holds() {
        let f = Fixture::new();
        let p = f.profile("sleep 1000", "[lease]\nuntil = \"1h\"");
        let id = f.existing(&p, State::Running, &[]);
        assert_eq!(
            before_at(&f, &p, T0).await,
            Before::Proceed { warning: None }
        );
        assert!(f.engine.calls_of(Op::Stop).is_empty());

        let Before::Reclaimed {
            reason,
            now,
            snapshot,
            ..
        } = before_at(&f, &p, T0 + 61 * M).await
        else {
            panic!("past its end")
        };
        assert!(now && snapshot.is_none());
        assert_eq!(reason, "its 1h lease ended");
        assert_eq!(f.engine.calls_of(Op::Stop), std::slice::from_ref(&id));
        assert!(
            f.engine.calls_of(Op::Remove).is_empty(),
            "stop is the default"
        );
        assert_eq!(
            f.engine.container(&id).map(|c| c.state),
            Some(State::Exited)
        );

        // The tombstone: the next run leaves it down and touches nothing.
        f.engine.clear_calls();
        let later = before_at(&f, &p, T0 + 90 * M).await;
        assert!(
            matches!(later, Before::Reclaimed { now: false, .. }),
            "{later:?}"
        );
        assert!(f.engine.calls_of(Op::Stop).is_empty());
        assert!(f.engine.calls_of(Op::Start).is_empty());
        assert_eq!(
            crate::lease::released(&f.store)
                .into_iter()
                .collect::<Vec<_>>(),
            ["train"]
        );
    }

    #[tokio::test]
    async fn remove_stops_then_removes_and_snapshot_commits_first() {
        let f = Fixture::new();
        let p = f.profile(
            "sleep 1000",
            "[lease]\nuntil = \"1h\"\non_reclaim = \"remove\"",
        );
        let id = f.existing(&p, State::Running, &[]);
        before_at(&f, &p, T0).await;
        before_at(&f, &p, T0 + 2 * 60 * M).await;
        assert_eq!(f.engine.calls_of(Op::Stop), std::slice::from_ref(&id));
        assert_eq!(f.engine.calls_of(Op::Remove), [id]);

        let f = Fixture::new();
        let p = f.profile(
            "sleep 1000",
            "[lease]\nuntil = \"1h\"\non_reclaim = \"snapshot\"",
        );
        let id = f.existing(&p, State::Running, &["/work/model.pt"]);
        before_at(&f, &p, T0).await;
        let Before::Reclaimed { snapshot, .. } = before_at(&f, &p, T0 + 2 * 60 * M).await else {
            panic!("reclaimed")
        };
        let snapshot = snapshot.expect("a snapshot was taken");
        assert!(
            snapshot.starts_with("launch-snapshots/train:"),
            "{snapshot}"
        );
        let ops: Vec<Op> = f
            .engine
            .calls()
            .into_iter()
            .filter(|c| matches!(c.op, Op::Commit | Op::Stop | Op::Remove))
            .map(|c| c.op)
            .collect();
        assert_eq!(
            ops,
            [Op::Commit, Op::Stop],
            "committed before it stopped, never removed"
        );
        assert_eq!(
            f.engine.container(&id).map(|c| c.state),
            Some(State::Exited)
        );
    }

    #[tokio::test]
    async fn it_warns_once_ahead_and_touches_nothing_until_the_end() {
        let f = Fixture::new();
        let p = f.profile(
            "sleep 1000",
            "[lease]\nuntil = \"1h\"\nwarn_before = \"15m\"",
        );
        f.existing(&p, State::Running, &[]);
        assert_eq!(
            before_at(&f, &p, T0).await,
            Before::Proceed { warning: None }
        );
        let Before::Proceed { warning: Some(w) } = before_at(&f, &p, T0 + 50 * M).await else {
            panic!("warned 10 minutes ahead")
        };
        assert_eq!(w.at, T0 + 60 * M);
        assert!(w.line.contains("launch renew train"), "{}", w.line);
        assert_eq!(
            before_at(&f, &p, T0 + 52 * M).await,
            Before::Proceed { warning: None },
            "once"
        );
        assert!(f.engine.calls_of(Op::Stop).is_empty());
        let events = record::events_since(&f.store, 0).expect("events");
        assert_eq!(
            events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["warn"]
        );
    }

    #[tokio::test]
    async fn a_changed_profile_lifts_the_tombstone_and_so_does_renew() {
        let f = Fixture::new();
        let p = f.profile("sleep 1000", "[lease]\nuntil = \"1h\"");
        f.existing(&p, State::Running, &[]);
        before_at(&f, &p, T0).await;
        assert!(matches!(
            before_at(&f, &p, T0 + 61 * M).await,
            Before::Reclaimed { .. }
        ));

        // An edit: a new profile hash.
        let edited = f.profile("sleep 2000", "[lease]\nuntil = \"1h\"");
        assert_eq!(
            before_at(&f, &edited, T0 + 70 * M).await,
            Before::Proceed { warning: None }
        );
        let r = record::get(&f.store, "train")
            .expect("store")
            .expect("record");
        assert_eq!(
            (r.reclaimed, r.since),
            (None, T0 + 70 * M),
            "the lease counts from now"
        );

        // Reclaimed again, then renewed by its owner.
        assert!(matches!(
            before_at(&f, &edited, T0 + 140 * M).await,
            Before::Reclaimed { .. }
        ));
        let owner = edited.owner.clone();
        super::super::renew::renew(&f.store, "train", &owner, None, None, T0 + 150 * M)
            .expect("its owner renews it");
        assert_eq!(
            before_at(&f, &edited, T0 + 151 * M).await,
            Before::Proceed { warning: None }
        );
        let kinds: Vec<String> = record::events_since(&f.store, 0)
            .expect("events")
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["reclaim", "renew", "reclaim", "renew"]);
    }

    #[tokio::test]
    async fn renew_is_the_owners_or_an_admins_and_is_judged_by_the_policy() {
        let f = Fixture::new();
        let p = f.profile("sleep 1000", "[lease]\nuntil = \"1h\"");
        f.existing(&p, State::Running, &[]);
        before_at(&f, &p, T0).await;
        before_at(&f, &p, T0 + 61 * M).await;
        let stranger = crate::owner::Owner::of_uid(4242, 4242);
        let e = super::super::renew::renew(&f.store, "train", &stranger, None, None, T0 + 62 * M)
            .expect_err("not theirs");
        assert_eq!(e.exit(), crate::exit::Exit::Refused);

        let path = f.dir.path().join("policy.toml");
        let policy =
            crate::policy::parse(&path, "[lease]\nmax_until = \"1d\"\n".into()).expect("policy");
        let owner = p.owner.clone();
        let asked = T0 + 62 * M + 3 * 86_400;
        let e = super::super::renew::renew(
            &f.store,
            "train",
            &owner,
            Some(&policy),
            Some(asked),
            T0 + 62 * M,
        )
        .expect_err("3 days is past the policy's 1 day");
        assert_eq!(e.exit(), crate::exit::Exit::Refused);
        assert!(e.to_string().contains("lease.max_until"), "{e}");
        super::super::renew::renew(
            &f.store,
            "train",
            &owner,
            Some(&policy),
            Some(T0 + 8 * 60 * M),
            T0 + 62 * M,
        )
        .expect("8h is within it");
        let r = record::get(&f.store, "train")
            .expect("store")
            .expect("record");
        assert_eq!(r.renewed_until, Some(T0 + 8 * 60 * M));
        assert_eq!(r.reclaimed, None);
    }

    #[tokio::test]
    async fn another_owners_container_is_left_to_the_gate() {
        let f = Fixture::new();
        let p = f.profile("sleep 1000", "[lease]\nuntil = \"1h\"");
        f.existing(&p, State::Running, &[]);
        // Bob's profile names Alice's container: the lease does nothing.
        let bob = Acting::owner(
            &crate::owner::Owner::of_uid(4242, 4242),
            &f.dir.path().join("bob.toml"),
        );
        let gate = f.gate_for(bob);
        let hash = super::super::profile_hash(&p);
        for now in [T0, T0 + 3 * 60 * M] {
            let b = before(
                &gate,
                &f.store,
                &p,
                &lease_of(&p),
                &hash,
                &Tell::default(),
                now,
            )
            .await
            .expect("before");
            assert_eq!(b, Before::Proceed { warning: None });
        }
        assert!(f.engine.calls_of(Op::Stop).is_empty());
    }
}
