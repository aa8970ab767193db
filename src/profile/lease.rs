//! `[lease]`: how long a container may hold its GPUs (docs/architecture.md,
//! leases). Checked here as written; the sampling and the reclaim are the
//! `lease` module's.

use std::time::{Duration, SystemTime};

use super::raw::{self, OnReclaim, Sp};
use super::source::Span;
use super::validate::Checker;

/// The profile's lease, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub until: Option<Until>,
    pub idle_after: Option<Duration>,
    pub grace: Duration,
    pub on_reclaim: OnReclaim,
    pub warn_before: Duration,
    /// A sample is busy above this SM use (percent).
    pub idle_below: u32,
    /// Where `[lease]` is written.
    pub span: Span,
    /// Where `until` and `idle_after` are written, for the policy's caps.
    pub until_span: Option<Span>,
    pub idle_after_span: Option<Span>,
}

/// When a lease ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    At(SystemTime),
    /// This long after launch first made (or saw) the container.
    After(Duration),
}

/// The SM use a sample counts as busy above, unless the lease says.
pub const IDLE_BELOW: u32 = 5;

impl Lease {
    /// A stable text of what the lease says: an edit of it, like an edit of
    /// the spec, brings a reclaimed container back.
    pub fn fingerprint(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{}",
            self.until,
            self.idle_after,
            self.grace,
            self.on_reclaim,
            self.warn_before,
            self.idle_below
        )
    }
}

/// A duration as people write them: `"30m"`, `"2h"`, `"1h30m"`, `"7d"`.
pub fn duration(text: &str, key: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|_| {
        format!("lease {key} `{text}` is not a duration such as \"30m\", \"2h\" or \"7d\"")
    })
}

fn until(text: &str) -> Result<Until, String> {
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return Ok(Until::At(at));
    }
    humantime::parse_duration(text)
        .map(Until::After)
        .map_err(|_| {
            format!(
                "lease until `{text}` is neither an RFC 3339 time (\"2026-12-20T18:00:00Z\") nor a duration (\"72h\")"
            )
        })
}

fn percent(p: &u32) -> Result<u32, String> {
    if *p <= 100 {
        Ok(*p)
    } else {
        Err(format!("lease idle_below {p} is not a percentage"))
    }
}

/// A lease written where no profile is (the policy's `default`): each key
/// checked as in a profile, the first fault returned.
pub fn from_raw(l: &raw::Lease) -> Result<Lease, String> {
    let time =
        |v: &Option<Sp<String>>, key: &str| v.as_ref().map(|v| duration(v.get(), key)).transpose();
    if l.until.is_none() && l.idle_after.is_none() {
        return Err("a lease needs `until`, `idle_after` or both: otherwise it never ends".into());
    }
    let until = l.until.as_ref().map(|u| until(u.get())).transpose()?;
    let idle_after = time(&l.idle_after, "idle_after")?;
    if matches!(until, Some(Until::After(d)) if d.is_zero())
        || idle_after.is_some_and(|d| d.is_zero())
    {
        return Err("a lease of no time at all would reclaim at once".into());
    }
    Ok(Lease {
        until,
        idle_after,
        grace: time(&l.grace, "grace")?.unwrap_or_default(),
        on_reclaim: l.on_reclaim.as_ref().map(|o| *o.get()).unwrap_or_default(),
        warn_before: time(&l.warn_before, "warn_before")?.unwrap_or_default(),
        idle_below: l
            .idle_below
            .as_ref()
            .map(|p| percent(p.get()))
            .transpose()?
            .unwrap_or(IDLE_BELOW),
        span: Span::default(),
        until_span: None,
        idle_after_span: None,
    })
}

pub fn lease(c: &mut Checker, lease: &Sp<raw::Lease>, gpus: bool) -> Option<Lease> {
    let span = lease.span();
    let l = lease.get();
    let until = c.map(&l.until, |u| until(u));
    let idle_after = c.map(&l.idle_after, |d| duration(d, "idle_after"));
    let grace = c
        .map(&l.grace, |d| duration(d, "grace"))
        .unwrap_or_default();
    let warn_before = c
        .map(&l.warn_before, |d| duration(d, "warn_before"))
        .unwrap_or_default();
    let idle_below = c.map(&l.idle_below, percent).unwrap_or(IDLE_BELOW);
    if l.until.is_none() && l.idle_after.is_none() {
        c.error(
            span.clone(),
            "a [lease] needs `until`, `idle_after` or both: otherwise it never ends",
        );
        return None;
    }
    if let (Some(written), false) = (&l.idle_after, gpus) {
        c.error(
            written.span(),
            "lease idle_after needs `gpus`: idleness is measured on the container's GPUs",
        );
        return None;
    }
    if matches!(until, Some(Until::After(d)) if d.is_zero())
        || idle_after.is_some_and(|d| d.is_zero())
    {
        c.error(
            span.clone(),
            "a lease of no time at all would reclaim at once",
        );
        return None;
    }
    Some(Lease {
        until: if l.until.is_some() {
            Some(until?)
        } else {
            None
        },
        idle_after: if l.idle_after.is_some() {
            Some(idle_after?)
        } else {
            None
        },
        grace,
        on_reclaim: l.on_reclaim.as_ref().map(|o| *o.get()).unwrap_or_default(),
        warn_before,
        idle_below,
        span,
        until_span: l.until.as_ref().map(Sp::span),
        idle_after_span: l.idle_after.as_ref().map(Sp::span),
    })
}
