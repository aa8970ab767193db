//! `[build]`: the image built from a Dockerfile. Whether the context exists
//! is a fact of the host, checked when the profile is resolved (`up`,
//! `plan`, `render`), as for bind sources; here only its form.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::raw::{self, Sp};
use super::source::Span;
use super::validate::Checker;

/// The Dockerfile when the profile names none.
pub const DEFAULT_DOCKERFILE: &str = "Dockerfile";

/// A checked `[build]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// Absolute and normalised: relative to the file `context` is written in.
    pub context: PathBuf,
    /// Relative to the context, `/`-separated, inside it.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// Where `context` is written, for host checks.
    pub context_span: Span,
    /// Where `dockerfile` is written; the context's span when it is not.
    pub dockerfile_span: Span,
}

pub fn build(c: &mut Checker, build: &Sp<raw::Build>) -> Option<Build> {
    let span = build.span();
    let b = build.get();
    let context = match &b.context {
        Some(context) => {
            let dir = c.dir_of(&context.span());
            let owner = c.loader.owner_at(&context.span());
            c.map(&b.context, |p| context_path(p, &dir, owner.as_ref()))
                .map(|path| (path, context.span()))
        }
        None => {
            c.diags.push(
                super::Diagnostic::new(span.clone(), "[build] needs `context`")
                    .help("add e.g. context = \".\" (a folder, relative to this profile)"),
            );
            None
        }
    };
    let dockerfile = match &b.dockerfile {
        Some(_) => c.map(&b.dockerfile, |d| dockerfile(d)),
        None => Some(DEFAULT_DOCKERFILE.to_string()),
    };
    let mut args = BTreeMap::new();
    for (key, value) in b.args.iter().flatten() {
        let name = key.get();
        if name.is_empty() || name.contains('=') || name.chars().any(char::is_whitespace) {
            c.error(
                key.span(),
                format!("build argument name `{name}` is not valid: no spaces, no `=`"),
            );
        } else {
            args.insert(name.clone(), value.get().0.clone());
        }
    }
    let target = c.map(&b.target, |t| {
        if t.is_empty() || t.chars().any(char::is_whitespace) {
            Err(format!("build target `{t}` is not a stage name"))
        } else {
            Ok(t.clone())
        }
    });
    let (context, context_span) = context?;
    Some(Build {
        context,
        dockerfile: dockerfile?,
        args,
        target,
        dockerfile_span: b
            .dockerfile
            .as_ref()
            .map_or(context_span.clone(), |d| d.span()),
        context_span,
    })
}

/// A folder path as written: the engine's other forms of context (a URL, a
/// git repository, `-` for stdin) are not what `launch` sends.
fn context_path(
    written: &str,
    dir: &Path,
    owner: Option<&crate::owner::Owner>,
) -> Result<PathBuf, String> {
    if written.is_empty() {
        return Err("build context is empty; `.` is the profile's folder".into());
    }
    if written == "-" || written.contains("://") || written.starts_with("git@") {
        return Err(format!(
            "build context `{written}` is not a folder: launch builds from a folder on this host"
        ));
    }
    super::volumes::host_path(written, dir, owner)
}

/// The Dockerfile's path inside the context; the engine reads it from the
/// context it is sent, so it cannot be outside.
fn dockerfile(written: &str) -> Result<String, String> {
    if written.is_empty() {
        return Err("`dockerfile` is empty".into());
    }
    if written.starts_with('/') {
        return Err(format!(
            "dockerfile `{written}` must be relative to the build context"
        ));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in written.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!(
                        "dockerfile `{written}` is outside the build context"
                    ));
                }
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(format!("dockerfile `{written}` names no file"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfiles_stay_inside_the_context() {
        assert_eq!(dockerfile("Dockerfile").unwrap(), "Dockerfile");
        assert_eq!(
            dockerfile("./docker/../gpu.Dockerfile").unwrap(),
            "gpu.Dockerfile"
        );
        assert!(dockerfile("../Dockerfile").unwrap_err().contains("outside"));
        assert!(
            dockerfile("/etc/Dockerfile")
                .unwrap_err()
                .contains("relative")
        );
        assert!(dockerfile("").is_err());
    }

    #[test]
    fn contexts_are_folders_relative_to_the_profile() {
        let dir = Path::new("/srv/profiles");
        assert_eq!(
            context_path(".", dir, None).unwrap(),
            Path::new("/srv/profiles")
        );
        assert_eq!(
            context_path("../images/train", dir, None).unwrap(),
            Path::new("/srv/images/train")
        );
        assert_eq!(context_path("/abs", dir, None).unwrap(), Path::new("/abs"));
        for bad in ["", "-", "https://github.com/x/y.git", "git@github.com:x/y"] {
            assert!(context_path(bad, dir, None).is_err(), "{bad}");
        }
    }
}
