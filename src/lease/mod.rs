//! GPUs that flow back (docs/architecture.md, leases): a container with a
//! `[lease]` holds its GPUs until a time, and while they do work. `up`
//! samples what the GPUs did (at most once a minute per host), decides for
//! each leased container whether to keep it, warn, or reclaim it, and a
//! reclaimed container stays down, its GPUs free, until its profile changes
//! or `launch renew` brings it back.
//!
//! - [`decide`] is the rule, pure;
//! - `record` keeps leases, events and samples in the state store;
//! - `sample` takes a tick's samples from NVML;
//! - `reclaim` acts on a decision through the profile's gate;
//! - `usage` sums GPU-hours for `launch usage` and the board.

pub mod reclaim;
pub mod record;
pub mod renew;
pub mod sample;
pub mod usage;

use std::time::Duration;

use crate::policy::Policy;
use crate::profile::{Lease, Profile, Until};

pub use crate::clock::{now, seconds, shown, since, span};
pub use record::Record;

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// The lease `profile` runs under: its own, else the policy's default when
/// it asks for GPUs; where the lease is silent on `until` or `idle_after`
/// and the policy caps it, the cap. `None` for an owner the policy's leases
/// do not bind (an admin, an exempt owner) unless the profile writes one.
pub fn effective(profile: &Profile, policy: Option<&Policy>) -> Option<Lease> {
    let bound = policy.filter(|p| p.leases_bind(&profile.owner));
    let mut lease = match (&profile.lease, bound) {
        (Some(own), _) => own.clone(),
        (None, Some(p)) if profile.gpus.is_some() => match &p.lease.default {
            Some(default) => default.clone(),
            None if p.lease.max_until.is_some() || p.lease.max_idle_after.is_some() => Lease {
                until: None,
                idle_after: None,
                grace: Duration::ZERO,
                on_reclaim: Default::default(),
                warn_before: Duration::ZERO,
                idle_below: crate::profile::lease::IDLE_BELOW,
                span: 0..0,
                until_span: None,
                idle_after_span: None,
            },
            None => return None,
        },
        (None, _) => return None,
    };
    if let Some(p) = bound {
        if lease.until.is_none() {
            lease.until = p.lease.max_until.map(Until::After);
        }
        if lease.idle_after.is_none() && profile.gpus.is_some() {
            lease.idle_after = p.lease.max_idle_after;
        }
    }
    Some(lease)
}

/// The launch containers reclaimed and not brought back: stopped (or gone),
/// they hold no GPU, for count selection, `gpus` and the per-owner limit
/// alike. Empty when there is no store yet.
pub fn released(store: &crate::state::Store) -> std::collections::BTreeSet<String> {
    if !store.exists() {
        return Default::default();
    }
    record::reclaimed(store).unwrap_or_else(|e| {
        tracing::warn!("which containers were reclaimed is unknown: {e}");
        Default::default()
    })
}

/// Whether `c` holds its GPUs: not a reclaimed container that is down.
pub fn holds_gpus(
    c: &crate::engine::Observed,
    released: &std::collections::BTreeSet<String>,
) -> bool {
    c.state == crate::engine::State::Running || !released.contains(&c.name)
}

/// What the tombstone of a reclaimed container is kept against: the text
/// of every file its profile was read from. An edit of the profile (the
/// GitOps way to renew) is a new hash; a GPU chosen anew by count is not.
pub fn profile_hash(profile: &Profile) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in profile.sources.files() {
        h.update(f.path.as_os_str().as_encoded_bytes());
        h.update([0]);
        h.update(f.text.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a container's lease stands, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Standing {
    /// `held`, `warned` or `reclaimed`.
    pub state: &'static str,
    /// When it ends (or ended).
    pub at: Option<String>,
    pub reason: Option<String>,
    /// What its idleness is read from, once sampled.
    pub signal: Option<&'static str>,
}

impl Standing {
    pub fn of(
        lease: Option<&Lease>,
        r: &Record,
        latest: Option<(i64, sample::Signal)>,
        now: i64,
    ) -> Standing {
        let signal = latest.map(|(_, s)| s.describe());
        if let Some(at) = r.reclaimed {
            return Standing {
                state: "reclaimed",
                at: Some(shown(at)),
                reason: r.reason.clone(),
                signal,
            };
        }
        let watched = latest.is_some_and(|(ts, _)| now - ts <= sample::LONGEST);
        let end = lease.and_then(|l| end(l, r, watched));
        Standing {
            state: if r.warned.is_some() { "warned" } else { "held" },
            at: end.as_ref().map(|(at, _)| shown(*at)),
            reason: end.map(|(_, why)| why),
            signal,
        }
    }

    /// One cell of `status`'s LEASE column.
    pub fn cell(&self) -> String {
        let at = self.at.as_deref().unwrap_or("?");
        let why = self.reason.as_deref().unwrap_or("?");
        let signal = self.signal.map(|s| format!("; by {s}")).unwrap_or_default();
        match (self.state, &self.at) {
            ("reclaimed", _) => format!("reclaimed ({why}) at {at}"),
            (_, None) => format!("held, no end yet{signal}"),
            (state, Some(_)) => format!("{state}, ends {at} ({}){signal}", ahead(why)),
        }
    }
}

/// A reason an end will have, said ahead of it: `idle 2h` → `if idle
/// 2h`, `its 3d lease ended` → `its 3d lease`.
pub fn ahead(reason: &str) -> String {
    if reason.starts_with("idle ") {
        return format!("if {reason}");
    }
    if let Some(at) = reason.strip_prefix(ENDED_AT) {
        return format!("its lease ends at{at}");
    }
    reason
        .strip_suffix(" ended")
        .map_or_else(|| reason.to_string(), str::to_string)
}

/// How the reason of a lease that ended at a fixed time begins: renewing
/// it needs a new end (`renew --for/--until`).
pub const ENDED_AT: &str = "its lease ended at";

/// What to do with a leased container now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep,
    /// Within `warn_before` of `at`, when it will be reclaimed.
    Warn {
        reason: String,
        at: i64,
    },
    Reclaim {
        reason: String,
    },
}

/// When the lease ends, and why: the earlier of `until` and the end of the
/// idle allowance. `None`: it never ends (no `until`, no `idle_after`).
/// `watched`: the sampler saw the container lately; idleness is never
/// judged from samples that were not taken (NVML failing, no tick for a
/// while).
pub fn end(lease: &Lease, r: &Record, watched: bool) -> Option<(i64, String)> {
    let mut ends = Vec::new();
    if let Some(until) = lease.until {
        let at = match until {
            Until::At(t) => seconds(t),
            Until::After(d) => r.since.saturating_add(secs(d)),
        };
        let reason = match (until, r.renewed_until) {
            (_, Some(renewed)) if renewed >= at => format!("{ENDED_AT} {}", shown(renewed)),
            (Until::At(_), _) => format!("{ENDED_AT} {}", shown(at)),
            (Until::After(d), _) => format!("its {} lease ended", span(secs(d))),
        };
        let at = r.renewed_until.map_or(at, |renewed| at.max(renewed));
        ends.push((at, reason));
    }
    if let Some(idle) = lease.idle_after.filter(|_| watched) {
        // Idle is counted from the last busy sample, and never within
        // `grace` of a (re)start.
        let from = r
            .last_busy
            .unwrap_or(r.started)
            .max(r.started.saturating_add(secs(lease.grace)));
        ends.push((
            from.saturating_add(secs(idle)),
            format!("idle {}", span(secs(idle))),
        ));
    }
    ends.into_iter().min_by_key(|(at, _)| *at)
}

/// The rule (docs/architecture.md, leases): reclaim once the lease ends,
/// warn `warn_before` ahead.
pub fn decide(lease: &Lease, r: &Record, now: i64, watched: bool) -> Decision {
    let Some((at, reason)) = end(lease, r, watched) else {
        return Decision::Keep;
    };
    if now >= at {
        return Decision::Reclaim { reason };
    }
    let warn = secs(lease.warn_before);
    if warn > 0 && now >= at.saturating_sub(warn) {
        return Decision::Warn { reason, at };
    }
    Decision::Keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::raw::OnReclaim;

    fn lease(until: Option<Until>, idle_after: Option<u64>, grace: u64, warn: u64) -> Lease {
        Lease {
            until,
            idle_after: idle_after.map(Duration::from_secs),
            grace: Duration::from_secs(grace),
            on_reclaim: OnReclaim::Stop,
            warn_before: Duration::from_secs(warn),
            idle_below: 5,
            span: 0..0,
            until_span: None,
            idle_after_span: None,
        }
    }

    fn record(since: i64, started: i64, last_busy: Option<i64>) -> Record {
        Record {
            name: "train".into(),
            owner_uid: 1000,
            owner_name: "alice".into(),
            since,
            started,
            last_busy,
            warned: None,
            reclaimed: None,
            reason: None,
            profile_hash: None,
            lease: None,
            renewed_until: None,
            ends: None,
            ends_why: None,
        }
    }

    const H: i64 = 3600;

    #[test]
    fn idle_is_counted_from_the_last_busy_sample_never_within_grace() {
        let l = lease(None, Some(2 * 3600), 30 * 60, 15 * 60);
        // Started at 0, never busy: grace ends at 30m, idle ends at 2h30m.
        let r = record(0, 0, None);
        assert_eq!(decide(&l, &r, 2 * H, true), Decision::Keep);
        assert!(matches!(
            decide(&l, &r, 2 * H + 20 * 60, true),
            Decision::Warn { .. }
        ));
        assert_eq!(
            decide(&l, &r, 2 * H + 30 * 60, true),
            Decision::Reclaim {
                reason: "idle 2h".into()
            }
        );
        // Busy at 1h: idle from then.
        let busy = record(0, 0, Some(H));
        assert_eq!(decide(&l, &busy, 2 * H + 30 * 60, true), Decision::Keep);
        assert!(matches!(
            decide(&l, &busy, 3 * H, true),
            Decision::Reclaim { .. }
        ));
        // Busy just now: never reclaimed while busy.
        let now = record(0, 0, Some(10 * H));
        assert_eq!(decide(&l, &now, 10 * H, true), Decision::Keep);
        // Not watched (NVML failed, no tick lately): never reclaimed as idle.
        assert_eq!(decide(&l, &r, 100 * H, false), Decision::Keep);
    }

    #[test]
    fn until_ends_the_lease_and_renew_extends_it() {
        let l = lease(
            Some(Until::After(Duration::from_secs(72 * 3600))),
            None,
            0,
            0,
        );
        let mut r = record(100, 100, None);
        assert_eq!(decide(&l, &r, 100 + 72 * H - 1, true), Decision::Keep);
        let Decision::Reclaim { reason } = decide(&l, &r, 100 + 72 * H, true) else {
            panic!("expired")
        };
        assert_eq!(reason, "its 3d lease ended");
        r.renewed_until = Some(200 * H);
        assert_eq!(decide(&l, &r, 100 * H, true), Decision::Keep);
        // The earlier end wins, with its reason.
        let both = lease(
            Some(Until::After(Duration::from_secs(10 * 3600))),
            Some(3600),
            0,
            0,
        );
        let Decision::Reclaim { reason } = decide(&both, &record(0, 0, None), 2 * H, true) else {
            panic!("idle")
        };
        assert_eq!(reason, "idle 1h");
    }
}
