//! Privileges: Linux capabilities and `security_opt`.

use super::diagnostic::{did_you_mean, unknown};
use super::load::resolve_relative;
use super::raw::Sp;
use super::source::Span;
use super::validate::Checker;

/// Linux capabilities, as `docker run --cap-add` knows them (without `CAP_`).
pub const CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
];

pub const SECURITY_OPTS: &[&str] = &[
    "no-new-privileges",
    "label",
    "apparmor",
    "seccomp",
    "systempaths",
    "writable-cgroups",
];

pub fn capability(value: &String) -> Result<String, String> {
    let upper = value.to_ascii_uppercase();
    let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if CAPABILITIES.contains(&name) {
        Ok(name.to_string())
    } else {
        // Suggest from the name without `CAP_`, but show what was written.
        Err(match did_you_mean(name, CAPABILITIES.iter().copied()) {
            Some(near) => format!("unknown capability `{value}`: did you mean `{near}`?"),
            None => format!("unknown capability `{value}`"),
        })
    }
}

/// `security_opt` entries as the engine takes them: `seccomp=FILE` becomes
/// `seccomp=<the file's JSON>`, as the docker CLI sends it.
pub fn security_opts(c: &mut Checker, list: &Option<Vec<Sp<String>>>) -> Vec<String> {
    let mut out = Vec::new();
    let mut seccomps = 0;
    for item in list.iter().flatten() {
        let checked = security_opt(item.get()).and_then(|opt| {
            if opt.starts_with("seccomp") {
                seccomps += 1;
                // One applies; reading more would only cost (each up to 1 MiB).
                if seccomps > 1 {
                    return Err("a second seccomp profile: only one applies to a container".into());
                }
            }
            match seccomp_file(&opt) {
                Some(file) => seccomp(c, file, &item.span()),
                None => Ok(opt),
            }
        });
        match checked {
            Ok(opt) => out.push(opt),
            Err(message) => c.error(item.span(), message),
        }
    }
    out
}

fn security_opt(value: &str) -> Result<String, String> {
    let kind = value.split(['=', ':']).next().unwrap_or_default();
    if !SECURITY_OPTS.contains(&kind) {
        return Err(unknown("security option", kind, SECURITY_OPTS));
    }
    // Only no-new-privileges stands alone; the engine refuses the others bare.
    let bare = value.len() == kind.len() || value.len() == kind.len() + 1;
    if bare && kind != "no-new-privileges" {
        return Err(format!(
            "security option `{value}` needs a value, e.g. `{kind}=…`"
        ));
    }
    Ok(value.to_string())
}

/// The file of `seccomp=FILE` (or the older `seccomp:FILE`); not the
/// profiles Docker names itself.
fn seccomp_file(opt: &str) -> Option<&str> {
    let value = opt
        .strip_prefix("seccomp=")
        .or_else(|| opt.strip_prefix("seccomp:"))?;
    (!matches!(value, "unconfined" | "builtin")).then_some(value)
}

/// Reads a seccomp profile (relative to the profile that names it) into the
/// option the engine takes.
fn seccomp(c: &mut Checker, file: &str, span: &Span) -> Result<String, String> {
    let owner = c.loader.owner_at(span);
    let path = resolve_relative(&c.dir_of(span).join("profile.toml"), file, owner.as_ref())?;
    let (_, text) = c
        .loader
        .text_file(&path, owner.as_ref(), false)
        .map_err(|e| format!("seccomp profile {}: {}", path.display(), e.reason))?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| format!("seccomp profile {} is not JSON: {e}", path.display()))?;
    Ok(format!("seccomp={}", compact_json(text)))
}

/// JSON without the whitespace between tokens, as Go's `json.Compact`
/// writes it (and so as `docker run` sends a seccomp profile).
fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_keeps_strings_and_order() {
        assert_eq!(
            compact_json("{\n  \"b\": [1, 2],\r\n\t\"a\": \"x \\\" y\"\n}\n"),
            r#"{"b":[1,2],"a":"x \" y"}"#
        );
    }

    #[test]
    fn docker_own_seccomp_profiles_are_not_files() {
        assert_eq!(seccomp_file("seccomp=unconfined"), None);
        assert_eq!(seccomp_file("seccomp:builtin"), None);
        assert_eq!(seccomp_file("seccomp=./p.json"), Some("./p.json"));
        assert_eq!(seccomp_file("apparmor=unconfined"), None);
    }
}
