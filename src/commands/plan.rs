//! `launch plan`: what `up` would do, with a field-by-field diff.

use futures_util::future::join_all;
use serde_json::json;

use super::up::report_error;
use super::{
    connect, listing, probe_host, report_invalid, runtime, shown, targets, with_engine_facts,
};
use crate::cli::Global;
use launch::error::Result;
use launch::exit::Exit;
use launch::reconcile::{self, Action, Context, Options, Preview};

pub fn run(args: &[std::path::PathBuf], global: &Global) -> Result<Exit> {
    let targets = targets(args)?;
    // Invalid profiles are reported first, whether or not an engine answers;
    // a folder's exit code is its most severe (2 beats 4).
    let mut exit = Exit::Ok;
    let mut valid = Vec::new();
    for t in &targets {
        match &t.loaded {
            Ok(p) => valid.push((t, p)),
            Err(_) => exit = exit.worst(report_invalid(t, global)),
        }
    }
    if valid.is_empty() {
        return Ok(exit);
    }
    let (facts, needs) = probe_host(global, valid.iter().map(|(_, p)| *p));
    let locks = global.locks();
    runtime()?.block_on(async {
        let engine = match connect(global).await {
            Ok(engine) => engine,
            Err(e) => {
                for (t, _) in &valid {
                    exit = exit.worst(report_error(t, &e, global));
                }
                return Ok(exit);
            }
        };
        let facts = with_engine_facts(facts, needs, Some(&engine)).await;
        let profiles: Vec<&launch::profile::Profile> = valid.iter().map(|(_, p)| *p).collect();
        let listing = listing(&engine, &profiles).await;
        let cx = Context {
            engine: &engine,
            host: &facts,
            locks: &locks,
            listing: listing.as_ref(),
        };
        let previews = join_all(
            valid
                .iter()
                .map(|(_, p)| reconcile::preview(&cx, p, Options::default())),
        )
        .await;
        for ((target, _), preview) in valid.iter().zip(previews) {
            let this = match preview {
                Err(e) => report_error(target, &e, global),
                Ok(p) => report(target, &p, global),
            };
            exit = exit.worst(this);
        }
        Ok(exit)
    })
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
            })
        );
    } else {
        let what = match &p.plan.action {
            Action::Create => "create and start".to_string(),
            Action::Start => "start".into(),
            Action::Unpause => "unpause".into(),
            Action::Nothing => "nothing to do".into(),
            Action::Recreate { why } => format!("recreate ({why})"),
            Action::Refuse(r) => format!("refuse: {r}"),
        };
        let pull = match &p.build {
            Some(b) => format!("build {} ({}), then ", p.resolved.spec.image, b.why),
            None if p.pull => format!("pull {}, then ", p.resolved.spec.image),
            None => String::new(),
        };
        println!("{name}: {pull}{what}");
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
