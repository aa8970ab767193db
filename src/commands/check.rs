//! `launch check`: validate profiles without an engine or a driver.

use std::io::IsTerminal;
use std::path::PathBuf;

use serde_json::json;

use super::{shown, targets};
use crate::cli::Global;
use launch::error::Result;
use launch::exit::Exit;

pub fn run(args: &[PathBuf], global: &Global) -> Result<Exit> {
    let mut code = Exit::Ok;
    let color = std::io::stderr().is_terminal();
    for target in targets(args)? {
        let display = target.path.display();
        match &target.loaded {
            Ok(p) if global.json => println!(
                "{}",
                json!({ "profile": shown(&target.path), "valid": true, "name": p.name, "image": p.image })
            ),
            Ok(p) if !global.quiet => {
                println!("ok: {display} (container `{}`, image {})", p.name, p.image)
            }
            Ok(_) => {}
            Err(diags) => {
                code = Exit::Invalid;
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
