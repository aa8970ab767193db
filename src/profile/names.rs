//! Names Docker checks: containers, volumes and hostnames.

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
