//! Privileges: Linux capabilities and `security_opt`.

use super::diagnostic::{did_you_mean, unknown};

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

pub fn security_opt(value: &str) -> Result<String, String> {
    let kind = value.split(['=', ':']).next().unwrap_or_default();
    if SECURITY_OPTS.contains(&kind) {
        Ok(value.to_string())
    } else {
        Err(unknown("security option", kind, SECURITY_OPTS))
    }
}
