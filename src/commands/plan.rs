//! `launch plan`: what `up` would do, with a field-by-field diff.

use futures_util::future::join_all;
use serde_json::json;

use super::up::report_error;
use super::{connect, report_invalid, runtime, targets};
use crate::cli::Global;
use crate::error::{Result, exit};
use crate::reconcile::{self, Action, Options};

pub fn run(args: &[std::path::PathBuf], global: &Global) -> Result<i32> {
    let targets = targets(args)?;
    runtime()?.block_on(async {
        let engine = connect(global).await?;
        let previews = join_all(targets.iter().map(|t| async {
            match &t.loaded {
                Ok(p) => {
                    Some(reconcile::preview(&engine, p, global, Options::default(), None).await)
                }
                Err(_) => None,
            }
        }))
        .await;
        let mut code = exit::OK;
        for (target, preview) in targets.iter().zip(previews) {
            let this = match preview {
                None => report_invalid(target, global),
                Some(Err(e)) => report_error(target, &e, global),
                Some(Ok(p)) => {
                    let name = &p.resolved.spec.name;
                    let changes: Vec<String> =
                        p.plan.changes.iter().map(|c| c.to_string()).collect();
                    if global.json {
                        println!(
                            "{}",
                            json!({
                                "profile": target.path,
                                "name": name,
                                "action": p.plan.action.name(),
                                "pull": p.pull,
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
                        let pull = if p.pull {
                            format!("pull {}, then ", p.resolved.spec.image)
                        } else {
                            String::new()
                        };
                        println!("{name}: {pull}{what}");
                        if matches!(p.plan.action, Action::Recreate { .. }) {
                            for c in &changes {
                                println!("  {c}");
                            }
                        }
                    }
                    match &p.plan.action {
                        Action::Refuse(_) => exit::REFUSED,
                        a if a.changes_something() || p.pull => exit::PLAN_CHANGES,
                        _ => exit::OK,
                    }
                }
            };
            code = code.max(this);
        }
        Ok(code)
    })
}
