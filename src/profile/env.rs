//! The container's environment: `env_file`s overlaid by `env`.
//!
//! An env file is read as `docker run --env-file` reads it: `NAME=value` a
//! line, the value literal (no quotes removed, no `$VAR` replaced), blank
//! lines and `#` comments skipped, leading whitespace trimmed. Docker copies a
//! bare `NAME` from the caller's environment; launch runs unattended, so
//! nothing may come from its own environment and a bare name is an error.

use std::collections::BTreeMap;

use super::diagnostic::Diagnostic;
use super::load::resolve_relative;
use super::raw::{self, OneOrMany, Sp};
use super::source::Span;
use super::validate::Checker;

/// More env files than anyone writes by hand: past it, a profile is refused
/// rather than read (each file may be 1 MiB).
const MAX_ENV_FILES: usize = 32;

pub fn env(c: &mut Checker, raw: &raw::RawProfile) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let files: Vec<Sp<String>> = match raw.env_file.as_ref().map(|f| (f.get(), f.span())) {
        Some((OneOrMany::One(path), span)) => vec![Sp::new(span, path.clone())],
        Some((OneOrMany::Many(paths), _)) => paths.clone(),
        None => Vec::new(),
    };
    if files.len() > MAX_ENV_FILES {
        if let Some(f) = &raw.env_file {
            c.error(
                f.span(),
                format!(
                    "env_file names {} files; at most {MAX_ENV_FILES} are read",
                    files.len()
                ),
            );
        }
        return env;
    }
    let mut read = std::collections::HashSet::new();
    for file in files {
        let owner = c.loader.owner_at(&file.span());
        let path = match resolve_relative(
            &c.dir_of(&file.span()).join("profile.toml"),
            file.get(),
            owner.as_ref(),
        ) {
            Ok(path) => path,
            Err(message) => {
                c.error(file.span(), message);
                continue;
            }
        };
        // The same file again changes nothing: read it once.
        if !read.insert(path.clone()) {
            continue;
        }
        match c.loader.text_file(&path, owner.as_ref(), true) {
            Ok((base, text)) => {
                for line in parse(text) {
                    match line {
                        Ok((name, _)) if grants_gpus(name) => c.error(
                            file.span(),
                            format!(
                                "env_file {} sets {name}, which would hand GPUs to the container: {GPU_ENV}",
                                path.display()
                            ),
                        ),
                        Ok((name, value)) => {
                            env.insert(name.to_string(), value.to_string());
                        }
                        Err(d) => c.diags.push(d.shifted(base)),
                    }
                }
            }
            Err(e) => c.error(
                file.span(),
                format!("env_file {}: {}", path.display(), e.reason),
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
        // A process environment is NUL-terminated strings: the engine refuses one.
        if name.contains('\0') {
            c.error(key.span(), "environment variable name holds a NUL byte");
            continue;
        }
        if value.get().0.contains('\0') {
            c.error(
                value.span(),
                format!("the value of `{name}` holds a NUL byte"),
            );
            continue;
        }
        if grants_gpus(name) {
            c.error(
                key.span(),
                format!("`{name}` would hand GPUs to the container: {GPU_ENV}"),
            );
            continue;
        }
        env.insert(name.clone(), value.get().0.clone());
    }
    env
}

const GPU_ENV: &str = "GPU access comes from `gpus` alone, which sets it";

/// Variables the NVIDIA Container Toolkit reads to decide which devices a
/// container gets: set by launch from `gpus`, never by a profile (on a host
/// whose default runtime is `nvidia`, `NVIDIA_VISIBLE_DEVICES=all` alone
/// would give every GPU to a container launch records as holding none).
fn grants_gpus(name: &str) -> bool {
    matches!(
        name,
        "NVIDIA_VISIBLE_DEVICES"
            | "NVIDIA_DRIVER_CAPABILITIES"
            | "NVIDIA_MIG_CONFIG_DEVICES"
            | "NVIDIA_MIG_MONITOR_DEVICES"
            | "NVIDIA_IMEX_CHANNELS"
            | "NVIDIA_GDS"
            | "NVIDIA_GDRCOPY"
            | "NVIDIA_MOFED"
            | "NVIDIA_NVSWITCH"
    )
}

/// A problem in an env file, at offsets into that file.
#[derive(Debug, PartialEq, Eq)]
pub struct LineError {
    pub at: Span,
    pub message: String,
    pub help: &'static str,
}

impl LineError {
    fn shifted(self, base: usize) -> Diagnostic {
        Diagnostic::new(self.at.start + base..self.at.end + base, self.message).help(self.help)
    }
}

/// The entries of an env file, in order, and what is wrong with its lines.
pub fn parse(text: &str) -> Vec<Result<(&str, &str), LineError>> {
    let mut out = Vec::new();
    let mut start = 0;
    for raw_line in text.split_inclusive('\n') {
        let line_start = start;
        start += raw_line.len();
        let line = raw_line.strip_suffix('\n').unwrap_or(raw_line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut line = line.trim_start();
        if line_start == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line).trim_start();
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = line_start
            + (raw_line.len()
                - raw_line
                    .trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                    .len());
        let error = |len: usize, message: String, help: &'static str| LineError {
            at: at..at + len,
            message,
            help,
        };
        match line.split_once('=') {
            // The line is not quoted: an env file holds secrets, and its
            // errors go to cron mail and CI logs.
            None => out.push(Err(error(
                line.len(),
                "this line has no `=`".into(),
                "write NAME=value; launch takes nothing from its own environment, unlike docker run --env-file",
            ))),
            Some(("", _)) => out.push(Err(error(
                1,
                "no variable name before `=`".into(),
                "write NAME=value",
            ))),
            Some((name, _)) if name.contains(char::is_whitespace) => out.push(Err(error(
                name.len(),
                format!("variable name `{name}` contains whitespace"),
                "write NAME=value; the value is taken as written, quotes included",
            ))),
            Some((name, value)) if name.contains('\0') || value.contains('\0') => {
                out.push(Err(error(
                    line.len(),
                    "this line holds a NUL byte, which no process environment can".into(),
                    "remove the NUL byte",
                )))
            }
            Some((name, value)) => out.push(Ok((name, value))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(&str, &str)> {
        parse(text).into_iter().map(|e| e.unwrap()).collect()
    }

    #[test]
    fn values_are_literal_as_docker_reads_them() {
        assert_eq!(
            entries("\u{feff}A=1\n\n# comment\n  B=x \nC=\"q\"\nD=$HOME ${X:-y}\nE=\r\nF=a=b"),
            [
                ("A", "1"),
                ("B", "x "),
                ("C", "\"q\""),
                ("D", "$HOME ${X:-y}"),
                ("E", ""),
                ("F", "a=b"),
            ]
        );
    }

    #[test]
    fn errors_point_into_the_line() {
        let errors: Vec<LineError> = parse("A=1\n  NAME\n=x\nexport B=2\n")
            .into_iter()
            .filter_map(Result::err)
            .collect();
        assert_eq!(errors.len(), 3);
        assert_eq!(errors[0].at, 6..10);
        assert!(errors[0].message.contains("has no `=`"));
        assert!(
            !errors[0].message.contains("NAME"),
            "the line is not quoted"
        );
        assert_eq!(errors[1].at, 11..12);
        assert_eq!(errors[2].at, 14..22);
        assert!(errors[2].message.contains("whitespace"));
    }
}
