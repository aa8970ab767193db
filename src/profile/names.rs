//! Names Docker checks: containers, volumes, hostnames, networks and the
//! namespaces a container may join.

use super::diagnostic::unknown;

/// Docker's container and volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn is_docker_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

pub fn container_name(name: &str) -> Result<(), String> {
    if is_docker_name(name) {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid container name: use at least two letters, digits, `_`, `.` or `-`, starting with a letter or digit"
        ))
    }
}

pub fn hostname(name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "hostname `{name}` is not valid: labels of letters, digits and `-`, joined by `.`"
        ))
    }
}

pub fn network(value: &str) -> Result<(), String> {
    let target = value.strip_prefix("container:").unwrap_or(value);
    if matches!(value, "bridge" | "host" | "none" | "default")
        || target
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        Ok(())
    } else {
        Err(format!(
            "network `{value}` is not `bridge`, `host`, `none` or a network name"
        ))
    }
}

/// `ipc` and `pid`: one of `modes`, or `container:NAME`.
pub fn namespace(value: &str, key: &str, modes: &[&str]) -> Result<String, String> {
    match value.strip_prefix("container:") {
        Some(name) if is_docker_name(name) => Ok(value.to_string()),
        _ if modes.contains(&value) => Ok(value.to_string()),
        _ => {
            let mut allowed: Vec<&str> = modes.to_vec();
            allowed.push("container:NAME");
            Err(unknown(&format!("{key} mode"), value, &allowed))
        }
    }
}
