//! Image references (`[registry/]repository[:tag][@digest]`): the one parser
//! of Docker's reference grammar, used by profile validation, the policy's
//! image globs, import, pulls and registry credentials alike. The grammar
//! is distribution/reference's, through `container_image_dist_ref` (tested
//! against it); Docker's own further rules are added here: a repository in
//! lower case, a sha256 digest of 64 lower-case hex digits.

use std::fmt;

/// A parsed image reference, e.g. `registry.example.com:5000/team/cuda:12.4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    repository: String,
    /// Where the registry part of `repository` ends, when it has one.
    registry_end: Option<usize>,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses a reference as Docker does, so that what `check` accepts the
    /// engine accepts too; the common mistakes (spaces, capitals, a stray
    /// `:`) are named in words.
    pub fn parse(image: &str) -> Result<ImageRef, String> {
        if image.is_empty() {
            return Err("`image` is empty".into());
        }
        if let Some(bad) = image.chars().find(|c| c.is_whitespace()) {
            return Err(format!("image `{image}` contains whitespace ({bad:?})"));
        }
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (image, None),
        };
        if let Some(digest) = digest {
            // Docker's digest check: lower-case hex only.
            let valid = digest.strip_prefix("sha256:").is_some_and(|hex| {
                hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            });
            if !valid {
                return Err(format!(
                    "image digest `{digest}` is not sha256:<64 lower-case hex digits>"
                ));
            }
        }
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
            None => (name, None),
        };
        if let Some(tag) = tag {
            let ok = !tag.is_empty()
                && tag.len() <= 128
                && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !ok {
                return Err(format!(
                    "image tag `{tag}` is not valid: letters, digits, `_`, `.`, `-`"
                ));
            }
        }
        let mut components = repo.split('/');
        let first = components.next().unwrap_or_default();
        // The first component is a registry host when it looks like one.
        let has_registry =
            repo.contains('/') && (first.contains(['.', ':']) || first == "localhost");
        for (i, part) in repo.split('/').enumerate() {
            if i == 0 && has_registry {
                continue;
            }
            let ok = !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && part.starts_with(|c: char| c.is_ascii_alphanumeric());
            if !ok {
                return Err(format!(
                    "image name `{repo}` is not valid: `{part}` must be lowercase letters, digits and separators"
                ));
            }
        }
        // The whole grammar: separators between letters and digits only,
        // one `.` or `_`, `__`, or any number of `-`.
        if let Err(e) = container_image_dist_ref::ImgRef::new(image) {
            return Err(grammar_error(image, &e));
        }
        Ok(ImageRef {
            repository: repo.to_string(),
            registry_end: has_registry.then_some(first.len()),
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }
}

/// What distribution's grammar found wrong, in words, with where.
fn grammar_error(image: &str, e: &container_image_dist_ref::err::Error<u16>) -> String {
    use container_image_dist_ref::err::Kind;
    let at = usize::from(e.index());
    let what = match e.kind() {
        Kind::HostOrPathInvalidComponentEnd | Kind::PathComponentInvalidEnd => {
            "a name part must start and end with a letter or digit, with one `.` or `_`, `__`, or dashes between"
        }
        Kind::HostComponentInvalidEnd => {
            "a registry host part must start and end with a letter or digit"
        }
        Kind::NameTooLong | Kind::HostOrPathTooLong | Kind::PathTooLong | Kind::HostTooLong => {
            "the name is longer than 255 characters"
        }
        Kind::TagTooLong => "the tag is longer than 128 characters",
        Kind::EncodedNonLowerHex => "a digest is lower-case hex",
        Kind::Port | Kind::PortInvalidChar | Kind::PortMissing | Kind::PortTooLong => {
            "the registry's port is not a number"
        }
        _ => "it is not `[registry/]name[:tag][@digest]`",
    };
    format!(
        "image `{image}` is not a valid reference: {what} (at character {})",
        at + 1
    )
}

impl ImageRef {
    /// The name without tag or digest, registry included:
    /// `registry.example.com:5000/team/cuda`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The registry host, when the reference names one.
    pub fn registry(&self) -> Option<&str> {
        self.registry_end.map(|end| &self.repository[..end])
    }

    /// The tag; `latest` when none is written.
    pub fn tag(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// The tag as written, if any.
    pub fn explicit_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// `sha256:…`, when the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}

impl fmt::Display for ImageRef {
    /// The reference as written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parts() {
        let r = ImageRef::parse("registry.example.com:5000/team/cuda:12.4.1-runtime").unwrap();
        assert_eq!(r.repository(), "registry.example.com:5000/team/cuda");
        assert_eq!(r.registry(), Some("registry.example.com:5000"));
        assert_eq!(r.tag(), "12.4.1-runtime");
        assert_eq!(r.digest(), None);

        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(
            (r.repository(), r.tag(), r.explicit_tag()),
            ("busybox", "latest", None)
        );
        assert_eq!(r.registry(), None);

        let r = ImageRef::parse(&format!("localhost/app@{DIGEST}")).unwrap();
        assert_eq!(r.repository(), "localhost/app");
        assert_eq!(r.registry(), Some("localhost"));
        assert_eq!(r.digest(), Some(DIGEST));
        assert_eq!(r.to_string(), format!("localhost/app@{DIGEST}"));

        let r = ImageRef::parse(&format!("nvidia/cuda:12@{DIGEST}")).unwrap();
        assert_eq!((r.tag(), r.digest()), ("12", Some(DIGEST)));
    }

    #[test]
    fn mistakes_name_the_token() {
        assert!(ImageRef::parse("").unwrap_err().contains("empty"));
        assert!(
            ImageRef::parse("bus box")
                .unwrap_err()
                .contains("whitespace")
        );
        assert!(
            ImageRef::parse("Busybox")
                .unwrap_err()
                .contains("`Busybox`")
        );
        assert!(ImageRef::parse("busybox:").unwrap_err().contains("tag ``"));
        assert!(
            ImageRef::parse("busybox@sha256:12")
                .unwrap_err()
                .contains("digest")
        );
        assert!(ImageRef::parse("a//b").unwrap_err().contains("`a//b`"));
    }

    /// What Docker refuses, `check` refuses (each with the grammar's reason).
    #[test]
    fn references_docker_refuses_are_refused() {
        let upper = DIGEST.to_uppercase().replace("SHA256", "sha256");
        for bad in [
            "busy-".to_string(),
            "busy..box".into(),
            "busy___box".into(),
            "-busy".into(),
            "busy.".into(),
            "a/b-".into(),
            format!("busybox@{upper}"),
            "x".repeat(256),
            "registry:port/x".into(),
        ] {
            assert!(ImageRef::parse(&bad).is_err(), "{bad}");
        }
        for good in [
            "busy-box",
            "busy__box",
            "busy.box",
            "busy---box",
            "a.b_c__d-e/f",
            "localhost:5000/a/b:c_d.e-f",
            "[::1]:5000/a",
            "Registry.Example.com/team/x",
        ] {
            assert!(
                ImageRef::parse(good).is_ok(),
                "{good}: {:?}",
                ImageRef::parse(good)
            );
        }
        assert!(
            ImageRef::parse("busy..box")
                .unwrap_err()
                .contains("one `.` or `_`")
        );
    }
}
