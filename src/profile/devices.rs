//! Extra (non-GPU) devices: `host[:container[:permissions]]`, as `docker run --device`.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMapping {
    pub host: String,
    pub container: String,
    /// A subset of `rwm`.
    pub permissions: String,
    /// Where the entry is written, for host checks at resolve time.
    pub span: super::Span,
}

pub fn parse(spec: &str) -> Result<DeviceMapping, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, permissions) = match parts[..] {
        [host] => (host, host, "rwm"),
        // `--device=/dev/fuse:rw` gives permissions, not a path.
        [host, perms] if !perms.starts_with('/') => (host, host, perms),
        [host, container] => (host, container, "rwm"),
        [host, container, perms] => (host, container, perms),
        _ => return Err(format!("`{spec}`: expected host[:container[:permissions]]")),
    };
    for path in [host, container] {
        if !path.starts_with('/') {
            return Err(format!(
                "device path `{path}` must be absolute, e.g. /dev/fuse"
            ));
        }
        if super::volumes::normalize(path) == "/" {
            return Err(format!(
                "device path `{path}` is the root folder, not a device"
            ));
        }
    }
    // Each of r, w, m at most once, as the engine's cgroup rule takes them.
    let once = |c: char| permissions.matches(c).count() <= 1;
    if permissions.is_empty()
        || !permissions.chars().all(|c| "rwm".contains(c))
        || !"rwm".chars().all(once)
    {
        return Err(format!(
            "device permissions `{permissions}` must be some of `r`, `w` and `m`, each once"
        ));
    }
    Ok(DeviceMapping {
        host: host.to_string(),
        container: super::volumes::normalize(container),
        permissions: permissions.to_string(),
        span: 0..0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("/dev/fuse").unwrap().container, "/dev/fuse");
        assert_eq!(parse("/dev/fuse:rw").unwrap().permissions, "rw");
        assert_eq!(
            parse("/dev/sda:/dev/xvda:r").unwrap().container,
            "/dev/xvda"
        );
        assert!(parse("dev/fuse").unwrap_err().contains("`dev/fuse`"));
        assert!(
            parse("/dev/fuse:/dev/fuse:rwx")
                .unwrap_err()
                .contains("`rwx`")
        );
        assert!(parse("/dev/fuse:rrrr").unwrap_err().contains("each once"));
        assert!(parse("/").unwrap_err().contains("root folder"));
        assert!(parse("/dev/fuse:/").is_err());
    }
}
