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
    let folder = folder(args.output.as_deref());
    let host = HostView {
        gpus: inventory
            .as_ref()
            .map(|i| i.gpus.as_slice())
            .map_err(|e| e.to_string()),
        dev_root: &roots.dev_root,
        folder: &folder,
    };
    let (results, from): (Vec<std::result::Result<Imported, LineError>>, String) =
        match (&args.script, &args.container, args.line.is_empty()) {
            (Some(script), None, true) => {
                let (text, unreadable) = read_script(script)?;
                let mut results = import::import_script(&text, &host);
                results.extend(unreadable.into_iter().map(Err));
                results.sort_by_key(|r| match r {
                    Ok(i) => i.line,
                    Err(e) => e.line,
                });
                (results, shown(script))
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

/// The script's text, and its lines that are not UTF-8 (each an error at
/// its line, left out: the others are imported).
fn read_script(path: &Path) -> Result<(String, Vec<LineError>)> {
    let mut bytes = Vec::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes))
    };
    read.map_err(|e| {
        Error::Io(format!(
            "{}: {}",
            path.display(),
            launch::profile::io_reason(&e)
        ))
    })?;
    let mut text = String::with_capacity(bytes.len());
    let mut unreadable = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if i > 0 {
            text.push('\n');
        }
        match std::str::from_utf8(line) {
            Ok(l) => text.push_str(l),
            Err(e) => unreadable.push(LineError {
                line: i + 1,
                message: format!(
                    "byte {} of this line is not UTF-8 (the line is left out; save the script as UTF-8)",
                    e.valid_up_to() + 1
                ),
            }),
        }
    }
    Ok((text, unreadable))
}

/// Where the profiles go, absolute: `-o`'s folder (or the file's), else here.
fn folder(output: Option<&Path>) -> PathBuf {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let folder = match output {
        Some(o) if o.is_dir() => o.to_path_buf(),
        Some(o) => o
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| here.clone(), Path::to_path_buf),
        None => here.clone(),
    };
    let folder = if folder.is_absolute() {
        folder
    } else {
        here.join(folder)
    };
    std::fs::canonicalize(&folder).unwrap_or(folder)
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
            .map(|(name, text)| (output.join(format!("{}.toml", file_stem(name))), text))
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

/// A container name as a file name in the output folder: a name the script
/// builds (`pqn-${gpu//,/-}`) must not reach another folder.
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.starts_with('.') || stem.is_empty() {
        format!("_{stem}")
    } else {
        stem
    }
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
