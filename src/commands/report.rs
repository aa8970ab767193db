//! `launch report`: the lab's board, as a page, JSON or text.

use std::path::{Path, PathBuf};

use super::{connect, runtime, store};
use crate::cli::{Global, ReportFormat};
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::lease;
use launch::report::{self, html, text};
use launch::state::Store;

pub fn run(
    output: Option<&Path>,
    format: ReportFormat,
    since: &str,
    dbs: &[PathBuf],
    global: &Global,
) -> Result<Exit> {
    let now = lease::now();
    let from = lease::since(since, now).map_err(Error::Usage)?;
    let stores: Vec<(String, Store)> = if dbs.is_empty() {
        let store = store(global);
        sample_here(&store, now, global);
        vec![(hostname(), store)]
    } else {
        for db in dbs {
            if !db.is_file() {
                return Err(Error::Usage(format!(
                    "--db {}: no such store file",
                    db.display()
                )));
            }
        }
        dbs.iter()
            .map(|db| (db.display().to_string(), Store::read_only(db)))
            .collect()
    };
    let named: Vec<(String, &Store)> = stores.iter().map(|(n, s)| (n.clone(), s)).collect();
    let board = report::gather(&named, from, now).map_err(|e| Error::Io(e.to_string()))?;
    let json = serde_json::to_string_pretty(&board).map_err(|e| Error::Io(e.to_string()))? + "\n";
    match output {
        Some(dir) => {
            let write = |name: &str, text: &str| {
                let path = dir.join(name);
                // Written aside, then renamed: a web server never serves half a page.
                let aside = dir.join(format!(".{name}.tmp"));
                std::fs::write(&aside, text)
                    .and_then(|()| std::fs::rename(&aside, &path))
                    .map_err(|e| Error::Io(format!("writing {}: {e}", path.display())))
            };
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Io(format!("making {}: {e}", dir.display())))?;
            write("index.html", &html::render(&board))?;
            write("usage.json", &json)?;
            write("report.txt", &text::render(&board))?;
            if !global.quiet {
                println!(
                    "wrote {}/index.html, usage.json and report.txt",
                    dir.display()
                );
            }
        }
        None => match format {
            ReportFormat::Text => print!("{}", text::render(&board)),
            ReportFormat::Json => print!("{json}"),
            ReportFormat::Html => print!("{}", html::render(&board)),
        },
    }
    Ok(Exit::Ok)
}

/// This minute's sample of this host, if no run took it: the board's "now"
/// is then fresh even where no leased profile is applied. Best effort: a
/// host without NVML or an engine is shown as its store last saw it.
fn sample_here(store: &Store, now: i64, global: &Global) {
    let proc_root =
        std::env::var_os("LAUNCH_PROC_ROOT").map_or_else(|| PathBuf::from("/proc"), Into::into);
    let nvml = global.settings().roots.nvml_lib;
    let sampled = runtime().and_then(|rt| {
        rt.block_on(async {
            let engine = connect(global).await?;
            lease::sample::tick(store, &engine, &nvml, &proc_root, now).await
        })
    });
    if let Err(e) = sampled {
        tracing::warn!("this host was not sampled ({e}): the board shows what its store holds");
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this host".into())
}
