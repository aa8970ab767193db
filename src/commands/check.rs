//! `launch check`: validate profiles without an engine or a driver, judge
//! them against the policy as written, and lint them.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;

use super::{shown, targets};
use crate::cli::Global;
use launch::error::Result;
use launch::exit::Exit;
use launch::profile::Diagnostics;

pub fn run(args: &[PathBuf], deny_warnings: bool, global: &Global) -> Result<Exit> {
    let policy = global.policy()?;
    let mut code = Exit::Ok;
    let color = std::io::stderr().is_terminal();
    // A warning in a base many members extend is shown once.
    let mut warned = std::collections::HashSet::new();
    for target in targets(args, global)? {
        let display = target.path.display();
        let judged = match (&target.loaded, &policy) {
            (Ok(p), Some(policy)) => policy.judge(p, None),
            _ => Vec::new(),
        };
        match &target.loaded {
            Ok(p) if !judged.is_empty() => {
                code = code.worst(Exit::Refused);
                let diags = Diagnostics {
                    sources: Arc::clone(&p.sources),
                    items: judged,
                };
                if global.json {
                    println!(
                        "{}",
                        json!({ "profile": shown(&target.path), "valid": true, "allowed": false, "owner": p.owner.display(), "errors": diags.to_json() })
                    );
                } else {
                    eprint!("{}", diags.render(color));
                    eprintln!(
                        "refused: {display} (owner {}: {} policy violation{})",
                        p.owner.display(),
                        diags.items.len(),
                        if diags.items.len() == 1 { "" } else { "s" }
                    );
                }
            }
            Ok(p) => {
                let mut items = launch::profile::lint::lints(p);
                items.retain(|d| {
                    let at = d.span.as_ref().and_then(|s| p.sources.locate(s.start));
                    at.is_none_or(|l| warned.insert((l.file.path.clone(), l.line, l.column)))
                });
                let warnings = Diagnostics {
                    sources: Arc::clone(&p.sources),
                    items,
                };
                let denied = deny_warnings && !warnings.items.is_empty();
                if denied {
                    code = code.worst(Exit::Invalid);
                }
                let n = warnings.items.len();
                if global.json {
                    println!(
                        "{}",
                        json!({ "profile": shown(&target.path), "valid": !denied, "name": p.name, "image": p.image, "owner": p.owner.display(), "warnings": warnings.to_json() })
                    );
                } else if denied {
                    eprint!("{}", warnings.render(color));
                    eprintln!(
                        "invalid: {display} ({n} warning{} denied by --deny-warnings)",
                        if n == 1 { "" } else { "s" }
                    );
                } else {
                    eprint!("{}", warnings.render_warnings(color));
                    if !global.quiet {
                        println!("ok: {display} (container `{}`, image {})", p.name, p.image)
                    }
                }
            }
            Err(diags) => {
                code = code.worst(Exit::Invalid);
                if global.json {
                    println!(
                        "{}",
                        json!({ "profile": shown(&target.path), "valid": false, "errors": diags.to_json() })
                    );
                } else {
                    eprint!("{}", diags.render(color));
                    eprintln!(
                        "invalid: {display} ({} error{})",
                        diags.items.len(),
                        if diags.items.len() == 1 { "" } else { "s" }
                    );
                }
            }
        }
    }
    Ok(code)
}
