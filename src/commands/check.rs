//! `launch check`: validate profiles without an engine or a driver.

use std::io::IsTerminal;
use std::path::PathBuf;

use serde_json::json;

use super::targets;
use crate::cli::Global;
use crate::error::{Result, exit};

pub fn run(args: &[PathBuf], global: &Global) -> Result<i32> {
    let mut code = exit::OK;
    let color = std::io::stderr().is_terminal();
    for target in targets(args)? {
        let shown = target.path.display();
        match &target.loaded {
            Ok(p) if global.json => println!(
                "{}",
                json!({ "profile": target.path, "valid": true, "name": p.name, "image": p.image })
            ),
            Ok(p) if !global.quiet => {
                println!("ok: {shown} (container `{}`, image {})", p.name, p.image)
            }
            Ok(_) => {}
            Err(diags) => {
                code = exit::INVALID;
                if global.json {
                    println!(
                        "{}",
                        json!({ "profile": target.path, "valid": false, "errors": diags.to_json() })
                    );
                } else {
                    eprint!("{}", diags.render(color));
                    eprintln!(
                        "invalid: {shown} ({} error{})",
                        diags.items.len(),
                        if diags.items.len() == 1 { "" } else { "s" }
                    );
                }
            }
        }
    }
    Ok(code)
}
