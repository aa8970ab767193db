//! The container's environment: `env_file`s overlaid by `env`.

use std::collections::BTreeMap;

use super::load::resolve_relative;
use super::raw::{self, OneOrMany, Sp};
use super::validate::Checker;

pub fn env(c: &mut Checker, raw: &raw::RawProfile) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let files: Vec<Sp<String>> = match raw.env_file.as_ref().map(|f| (f.get(), f.span())) {
        Some((OneOrMany::One(path), span)) => vec![Sp::new(span, path.clone())],
        Some((OneOrMany::Many(paths), _)) => paths.clone(),
        None => Vec::new(),
    };
    for file in files {
        let path = resolve_relative(&c.dir_of(&file.span()).join("profile.toml"), file.get());
        match dotenvy::from_path_iter(&path) {
            Ok(iter) => {
                for item in iter {
                    match item {
                        Ok((k, v)) => {
                            env.insert(k, v);
                        }
                        Err(e) => {
                            c.error(
                                file.span(),
                                format!("env_file {}: {}", path.display(), dotenv_reason(&e)),
                            );
                            break;
                        }
                    }
                }
            }
            Err(e) => c.error(
                file.span(),
                format!("env_file {}: {}", path.display(), dotenv_reason(&e)),
            ),
        }
    }
    for (key, value) in raw.env.iter().flatten() {
        let name = key.get();
        if name.is_empty() || name.contains('=') {
            c.error(
                key.span(),
                format!("environment variable name `{name}` may not be empty or contain `=`"),
            );
            continue;
        }
        env.insert(name.clone(), value.get().0.clone());
    }
    env
}

pub fn dotenv_reason(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::Io(io) => super::io_reason(io),
        dotenvy::Error::LineParse(line, at) => format!("cannot parse `{line}` at character {at}"),
        other => other.to_string(),
    }
}
