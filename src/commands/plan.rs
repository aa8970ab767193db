//! `launch plan`: what `up` would do, with a field-by-field diff.

use futures_util::future::join_all;
use serde_json::json;

use super::up::report_error;
use super::{allowed, open_session, runtime, shown, split_valid};
use crate::cli::Global;
use launch::error::Result;
use launch::exit::Exit;
use launch::reconcile::{self, Action, Options, Preview};

pub fn run(args: &[std::path::PathBuf], global: &Global) -> Result<Exit> {
    let policy = global.policy()?;
    let locks = global.locks();
    runtime()?.block_on(async {
        let (targets, facts, needs, early) =
            launch::session::load_and_ask(args, &global.settings()).await?;
        // A folder's exit code is its most severe (2 beats 4).
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
            false,
            global,
        )
        .await;
        let exit = exit.worst(refused);
        let (session, locks) = (&session, &locks);
        let deadline = global.deadline();
        let policy = policy.as_ref();
        let previews = join_all(valid.iter().map(|(_, p)| async move {
            // A reclaimed container stays down: `up` would do nothing.
            if let Some(lease) = launch::lease::effective(p, policy)
                && let Some(down) = launch::lease::reclaim::tombstone(&session.store, p, &lease)?
            {
                return Ok(Planned::Reclaimed(down));
            }
            let gate = session.gate(p);
            let cx = session.context(&gate, locks);
            let doing = || format!("{} was being planned", p.name);
            let work = reconcile::preview(&cx, p, Options::default());
            launch::session::within(deadline, doing, work)
                .await
                .map(|p| Planned::Preview(Box::new(p)))
        }))
        .await;
        let mut exit = exit;
        for ((target, _), preview) in valid.iter().zip(previews) {
            let this = match preview {
                Err(e) => report_error(target, &e, global),
                Ok(Planned::Preview(p)) => report(target, &p, global),
                Ok(Planned::Reclaimed((at, reason))) => {
                    let name = &target.loaded.as_ref().map(|p| p.name.clone()).unwrap_or_default();
                    let at = launch::lease::shown(at);
                    if global.json {
                        println!(
                            "{}",
                            json!({
                                "profile": shown(&target.path), "name": name, "action": "reclaimed",
                                "reason": reason, "reclaimed_at": at, "changes": [],
                            })
                        );
                    } else {
                        println!(
                            "{name}: stays down: reclaimed ({reason}) at {at}; edit the profile or `launch renew {name}`"
                        );
                    }
                    Exit::Ok
                }
            };
            exit = exit.worst(this);
        }
        Ok(exit)
    })
}

enum Planned {
    Preview(Box<Preview>),
    /// Its lease reclaimed it: when, and why.
    Reclaimed((i64, String)),
}

fn report(target: &super::Target, p: &Preview, global: &Global) -> Exit {
    let name = &p.resolved.spec.name;
    let changes: Vec<String> = p.plan.changes.iter().map(|c| c.to_string()).collect();
    if global.json {
        println!(
            "{}",
            json!({
                "profile": shown(&target.path),
                "name": name,
                "action": p.plan.action.name(),
                "pull": p.pull,
                "build": p.build.as_ref().map(|b| b.why.clone()),
                "changes": changes,
                "note": p.plan.older_schema.then_some(reconcile::plan::OLDER_SCHEMA),
            })
        );
    } else {
        let what = match &p.plan.action {
            Action::Create => "create and start".to_string(),
            Action::Start => "start".into(),
            Action::Unpause => "unpause".into(),
            Action::Nothing => "nothing to do".into(),
            Action::Recreate { why } => format!("recreate ({why})"),
            Action::Restart { why } => format!("restart ({why})"),
            Action::Refuse(r) => format!("refuse: {r}"),
        };
        let pull = match &p.build {
            Some(b) => format!("build {} ({}), then ", p.resolved.spec.image, b.why),
            None if p.pull => format!("pull {}, then ", p.resolved.spec.image),
            None => String::new(),
        };
        let note = if p.plan.older_schema {
            format!(" ({})", reconcile::plan::OLDER_SCHEMA)
        } else {
            String::new()
        };
        println!("{name}: {pull}{what}{note}");
        if matches!(p.plan.action, Action::Recreate { .. }) {
            for c in &changes {
                println!("  {c}");
            }
        }
    }
    match &p.plan.action {
        Action::Refuse(_) => Exit::Refused,
        a if a.changes_something() || p.pull || p.build.is_some() => Exit::PlanChanges,
        _ => Exit::Ok,
    }
}
