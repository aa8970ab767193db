//! `launch import`: profiles from `docker run` lines, scripts and containers.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::cli::{Global, ImportArgs};
use launch::error::{Error, Result};
use launch::exit::Exit;
use launch::host::gpu::{Query, nvml};
use launch::translate::import::{self, HostView, Imported, LineError};

pub fn run(args: &ImportArgs, global: &Global) -> Result<Exit> {
    let roots = global.roots();
    let inventory = nvml::inventory(&roots.nvml_lib, Query::default());
    let host = HostView {
        gpus: inventory
            .as_ref()
            .map(|i| i.gpus.as_slice())
            .map_err(|e| e.to_string()),
        dev_root: &roots.dev_root,
    };
    let (results, from): (Vec<std::result::Result<Imported, LineError>>, String) =
        match (&args.script, &args.container, args.line.is_empty()) {
            (Some(script), None, true) => {
                let text = read_script(script)?;
                (import::import_script(&text, &host), shown(script))
            }
            (None, None, false) => {
                let run = import::from_words(args.line.clone(), None, 1).ok_or_else(|| {
                    Error::Usage(format!(
                        "`{}` is not a `docker run` command line",
                        shell_words::join(&args.line)
                    ))
                })?;
                (
                    vec![import::import_run(&run, &host)],
                    "a `docker run` line".into(),
                )
            }
            (None, Some(name), true) => {
                let imported = super::runtime()?.block_on(async {
                    let engine = super::connect(global).await?;
                    import::container::import(&engine, name, &host).await
                })?;
                (vec![Ok(imported)], format!("the container {name}"))
            }
            _ => {
                return Err(Error::Usage(
                    "import one of: SCRIPT, --container NAME, or `-- docker run …`".into(),
                ));
            }
        };
    let mut exit = Exit::Ok;
    let mut profiles = Vec::new();
    for result in results {
        match result {
            Ok(imported) => {
                let at = if args.script.is_some() {
                    format!("{from}:{}", imported.line)
                } else {
                    from.clone()
                };
                for what in &imported.draft.not_imported {
                    tracing::warn!("{at}: not imported: {what}");
                }
                let text = imported.draft.to_toml(&import::header(&args.schema, &at));
                profiles.push((imported.name, text));
            }
            Err(e) => {
                eprintln!("error: {from}:{}: {}", e.line, e.message);
                exit = Exit::Invalid;
            }
        }
    }
    if profiles.is_empty() && exit == Exit::Ok {
        return Err(Error::Usage(format!("{from} has no `docker run` line")));
    }
    write(&profiles, args.output.as_deref())?;
    Ok(exit)
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn read_script(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::Io(format!("reading stdin: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| {
        Error::Io(format!(
            "{}: {}",
            path.display(),
            launch::profile::io_reason(&e)
        ))
    })
}

/// Prints the profiles (separated by `# --- <name>.toml` lines when there
/// are several), or writes them; an existing file is never overwritten.
fn write(profiles: &[(String, String)], output: Option<&Path>) -> Result<()> {
    let Some(output) = output else {
        for (name, text) in profiles {
            if profiles.len() > 1 {
                println!("# --- {name}.toml");
            }
            print!("{text}");
        }
        return Ok(());
    };
    let files: Vec<(PathBuf, &String)> = if output.is_dir() {
        profiles
            .iter()
            .map(|(name, text)| (output.join(format!("{name}.toml")), text))
            .collect()
    } else if profiles.len() == 1 {
        vec![(output.to_path_buf(), &profiles[0].1)]
    } else {
        return Err(Error::Usage(format!(
            "{} profiles were imported: -o needs a folder for them, and {} is not one",
            profiles.len(),
            output.display()
        )));
    };
    for (path, text) in files {
        create_new(&path, text)?;
    }
    Ok(())
}

/// Writes a new file; one that exists is never overwritten (exit 3).
pub(super) fn create_new(path: &Path, text: &str) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Refused(format!(
                "{} exists; launch never overwrites a file (move it away first)",
                path.display()
            )));
        }
        Err(e) => {
            return Err(Error::Io(format!(
                "{}: {}",
                path.display(),
                launch::profile::io_reason(&e)
            )));
        }
    };
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
