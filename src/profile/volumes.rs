//! Mounts: `src:dst[:ro|rw]` or `{ source, target, read_only, type, create }`.

use std::path::{Component, Path, PathBuf};

use super::raw::{Volume, VolumeType};
use super::source::Span;
use crate::owner::Owner;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountKind,
    /// Absolute host path (bind) or volume name; `None` for tmpfs.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// Create a missing bind source instead of failing.
    pub create: bool,
    /// Where the entry is written, for host checks at resolve time.
    pub span: Span,
}

/// Parses one `volumes` entry; relative bind sources are taken from `dir`.
pub fn parse(
    entry: &Volume,
    dir: &Path,
    owner: Option<&Owner>,
    span: Span,
) -> Result<Mount, String> {
    let (kind, source, target, read_only, create) = match entry {
        Volume::Short(spec) => {
            let parts: Vec<&str> = spec.split(':').collect();
            let (source, target, mode) = match parts[..] {
                [source, target] => (source, target, "rw"),
                [source, target, mode] => (source, target, mode),
                _ => return Err(format!("`{spec}`: expected source:target[:ro|rw]")),
            };
            let read_only = match mode {
                "ro" => true,
                "rw" => false,
                _ => return Err(format!("mount mode `{mode}` is not `ro` or `rw`")),
            };
            (
                None,
                Some(source.to_string()),
                target.to_string(),
                read_only,
                false,
            )
        }
        Volume::Long(t) => (
            t.kind.as_ref().map(|k| *k.get()),
            t.source.as_ref().map(|s| s.get().clone()),
            t.target
                .as_ref()
                .map(|t| t.get().clone())
                .ok_or("a volume table needs `target`")?,
            t.read_only.as_ref().is_some_and(|r| *r.get()),
            t.create.as_ref().is_some_and(|c| *c.get()),
        ),
    };
    if !target.starts_with('/') {
        return Err(format!(
            "mount target `{target}` must be an absolute path in the container"
        ));
    }
    let target = normalize(&target);
    if target == "/" {
        return Err(match entry_target(entry) {
            Some(written) if written != "/" => format!(
                "mount target `{written}` is `/`, which would hide the image's root filesystem"
            ),
            _ => "mount target `/` would hide the image's root filesystem".into(),
        });
    }
    let is_path = |s: &str| s.starts_with(['/', '.', '~']);
    let kind = match (kind, source.as_deref()) {
        (Some(VolumeType::Tmpfs), Some(s)) => {
            return Err(format!("a tmpfs mount takes no source, found `{s}`"));
        }
        (Some(VolumeType::Tmpfs), None) => MountKind::Tmpfs,
        (_, None) => return Err("a bind mount or volume needs `source`".into()),
        (Some(VolumeType::Bind), Some(_)) => MountKind::Bind,
        (Some(VolumeType::Volume), Some(s)) if is_path(s) => {
            return Err(format!(
                "volume name `{s}` looks like a path; use type = \"bind\""
            ));
        }
        (Some(VolumeType::Volume), Some(_)) => MountKind::Volume,
        (None, Some(s)) if is_path(s) => MountKind::Bind,
        (None, Some(_)) => MountKind::Volume,
    };
    let source = match (kind, source) {
        (MountKind::Bind, Some(s)) => Some(bind_source(&s, dir, owner)?),
        (MountKind::Volume, Some(s)) => {
            if !super::names::is_docker_name(&s) {
                return Err(format!(
                    "volume name `{s}` is not valid: use letters, digits, `_`, `.`, `-`; or start a host path with / or ./"
                ));
            }
            Some(s)
        }
        _ => None,
    };
    if create && kind != MountKind::Bind {
        return Err("`create` applies to bind mounts only".into());
    }
    Ok(Mount {
        kind,
        source,
        target,
        read_only,
        create,
        span,
    })
}

/// A container path as the kernel resolves it: `.`, `..`, repeated and
/// trailing `/` removed, so `/data/.` and `/data` are one mount target.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The target as written in the entry.
fn entry_target(entry: &Volume) -> Option<&str> {
    match entry {
        Volume::Short(spec) => spec.split(':').nth(1),
        Volume::Long(t) => t.target.as_ref().map(|t| t.get().as_str()),
    }
}

/// An absolute, normalised host path: `~` expanded, relative to `dir`.
fn bind_source(source: &str, dir: &Path, owner: Option<&Owner>) -> Result<String, String> {
    host_path(source, dir, owner)?
        .to_str()
        .map(|s| s.to_string())
        .ok_or_else(|| format!("bind source `{source}` is not valid UTF-8"))
}

/// A host path as written in a profile: `~` expanded, relative to `dir`
/// (the folder of the file that wrote it), `.` and `..` resolved by name.
pub(super) fn host_path(
    written: &str,
    dir: &Path,
    owner: Option<&Owner>,
) -> Result<PathBuf, String> {
    let path = super::expand_home(written, owner)?;
    let path = if path.is_relative() {
        dir.join(path)
    } else {
        path
    };
    let mut clean = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short(spec: &str) -> Result<Mount, String> {
        parse(
            &Volume::Short(spec.into()),
            Path::new("/srv/profiles"),
            None,
            0..0,
        )
    }

    #[test]
    fn short_forms() {
        let m = short("/data/aidata:/data").unwrap();
        assert_eq!(
            (m.kind, m.source.as_deref(), m.read_only),
            (MountKind::Bind, Some("/data/aidata"), false)
        );
        assert!(short("/etc/localtime:/etc/localtime:ro").unwrap().read_only);
        assert_eq!(
            short("./cache:/root/.cache").unwrap().source.as_deref(),
            Some("/srv/profiles/cache")
        );
        assert_eq!(short("../x:/x").unwrap().source.as_deref(), Some("/srv/x"));
        assert_eq!(short("models:/models").unwrap().kind, MountKind::Volume);
    }

    #[test]
    fn errors_name_the_token() {
        assert!(short("/a:/b:rx").unwrap_err().contains("`rx`"));
        assert!(short("/a:data").unwrap_err().contains("`data`"));
        assert!(short("/a").unwrap_err().contains("`/a`"));
        assert!(short("bad name!:/x").unwrap_err().contains("`bad name!`"));
    }
}
