//! `launch renew NAME [--until T | --for D]`: a reclaimed (or soon to be)
//! container's lease begins again, as an edit of its profile would begin
//! it; the next `up` brings the container back. Judged by the policy as
//! the profile's lease is.

use super::record::{self, Event, Record};
use super::{ENDED_AT, reclaim::restart_lease, shown};
use crate::error::{Error, Result};
use crate::owner::Owner;
use crate::policy::Policy;
use crate::state::Store;

/// Renews `name`'s lease for `runner` (the user running launch): its owner,
/// root or a policy admin. `until`: the lease ends no sooner than this
/// (Unix seconds). The renewed record.
pub fn renew(
    store: &Store,
    name: &str,
    runner: &Owner,
    policy: Option<&Policy>,
    until: Option<i64>,
    now: i64,
) -> Result<Record> {
    let state = |e: crate::state::StoreError| Error::Io(e.to_string());
    let Some(mut r) = record::get(store, name).map_err(state)? else {
        return Err(Error::Io(format!(
            "{name} has no lease: launch renews only containers whose profile (or the policy) gives them one \
             (`launch status` shows each container's LEASE)"
        )));
    };
    let admin = runner.uid == 0 || policy.is_some_and(|p| !p.binds(runner));
    if runner.uid != r.owner_uid && !admin {
        return Err(Error::Refused(format!(
            "{name}'s lease is {}'s: only they or an admin renew it",
            r.owner_name
        )));
    }
    if let Some(until) = until {
        if until <= now {
            return Err(Error::Usage(format!(
                "--until {} is not in the future",
                shown(until)
            )));
        }
        let owner = Owner::of_uid(r.owner_uid, r.owner_uid);
        let asked = std::time::Duration::from_secs(u64::try_from(until - now).unwrap_or(0));
        if let Some((rule, message)) =
            policy.and_then(|p| p.lease_too_long(&owner, Some(asked), None))
        {
            return Err(Error::Refused(format!("{message} (policy rule `{rule}`)")));
        }
    } else if r
        .reason
        .as_deref()
        .is_some_and(|why| why.starts_with(ENDED_AT))
    {
        return Err(Error::Usage(format!(
            "{name}: {}; renew it with a new end: `launch renew {name} --for 1d` or `--until TIME`",
            r.reason.as_deref().unwrap_or_default()
        )));
    }
    restart_lease(&mut r, now);
    r.renewed_until = until;
    record::save(store, &r).map_err(state)?;
    let detail = match until {
        Some(t) => format!("renewed until {} by {}", shown(t), runner.display()),
        None => format!("renewed by {}", runner.display()),
    };
    record::event(
        store,
        &Event {
            ts: now,
            name: name.to_string(),
            owner: r.owner_name.clone(),
            kind: "renew".into(),
            detail,
        },
    )
    .map_err(state)?;
    Ok(r)
}
