//! Docker run settings real scripts use beyond the core keys
//! (docs/architecture.md, translation): init, group_add, sysctls,
//! extra_hosts, dns, device_cgroup_rules, runtime, read_only, memory_swap,
//! platform and `[log]`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::raw::{self, RawProfile};
use super::resources;
use super::validate::Checker;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    pub init: bool,
    pub group_add: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub device_cgroup_rules: Vec<String>,
    pub runtime: Option<String>,
    pub read_only: bool,
    /// Bytes; -1 is unlimited swap.
    pub memory_swap: Option<i64>,
    pub platform: Option<String>,
    pub log: Option<LogConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    pub driver: Option<String>,
    pub options: BTreeMap<String, String>,
}

/// What every log driver takes (the engine's own buffering).
const GLOBAL_LOG_OPTIONS: &[&str] = &["mode", "max-buffer-size"];

/// The options Docker's own log drivers take (each driver's
/// `ValidateLogOpt`); `None` for a driver launch does not know (a plugin).
fn log_options(driver: &str) -> Option<&'static [&'static str]> {
    Some(match driver {
        "json-file" => &[
            "max-file",
            "max-size",
            "compress",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
            "tag",
        ],
        "local" => &["max-file", "max-size", "compress"],
        "journald" => &["labels", "labels-regex", "env", "env-regex", "tag"],
        "none" => &[],
        "syslog" => &[
            "env",
            "env-regex",
            "labels",
            "labels-regex",
            "syslog-address",
            "syslog-facility",
            "syslog-tls-ca-cert",
            "syslog-tls-cert",
            "syslog-tls-key",
            "syslog-tls-skip-verify",
            "tag",
            "syslog-format",
        ],
        "gelf" => &[
            "gelf-address",
            "gelf-compression-type",
            "gelf-compression-level",
            "gelf-tcp-max-reconnect",
            "gelf-tcp-reconnect-delay",
            "tag",
            "labels",
            "labels-regex",
            "env",
            "env-regex",
        ],
        "fluentd" => &[
            "env",
            "env-regex",
            "labels",
            "labels-regex",
            "tag",
            "fluentd-address",
            "fluentd-async",
            "fluentd-async-connect",
            "fluentd-buffer-limit",
            "fluentd-retry-wait",
            "fluentd-max-retries",
            "fluentd-sub-second-precision",
            "fluentd-request-ack",
            "fluentd-write-timeout",
        ],
        _ => return None,
    })
}

/// The values the engine parses at create.
fn log_value(name: &str, value: &str) -> Result<(), String> {
    let ok = match name {
        "max-size" | "max-buffer-size" => parse_size::parse_size(value).is_ok(),
        "max-file" => value.parse::<u32>().is_ok_and(|n| n >= 1),
        "compress" => value.parse::<bool>().is_ok(),
        "mode" => matches!(value, "blocking" | "non-blocking"),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "log option {name} = \"{value}\" is not a value the engine takes"
        ))
    }
}

fn non_empty(v: &str, key: &str) -> Result<String, String> {
    if v.trim().is_empty() {
        Err(format!("`{key}` has an empty entry"))
    } else {
        Ok(v.to_string())
    }
}

/// `host:ip` (or `host=ip`), as `--add-host` reads it.
fn extra_host(v: &String) -> Result<String, String> {
    let (host, ip) = v
        .split_once('=')
        .or_else(|| v.split_once(':'))
        .ok_or_else(|| format!("extra_hosts `{v}`: expected \"host:ip\""))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || (ip != "host-gateway" && ip.parse::<IpAddr>().is_err()) {
        return Err(format!(
            "extra_hosts `{v}`: expected \"host:ip\" with an IP address or host-gateway"
        ));
    }
    Ok(v.clone())
}

/// `TYPE MAJOR:MINOR PERMS`, e.g. `c 195:* rwm`.
fn cgroup_rule(v: &String) -> Result<String, String> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let number = |n: &str| n == "*" || n.parse::<u32>().is_ok();
    let ok = match parts[..] {
        [kind, numbers, perms] => {
            matches!(kind, "a" | "b" | "c")
                && numbers
                    .split_once(':')
                    .is_some_and(|(ma, mi)| number(ma) && number(mi))
                && !perms.is_empty()
                && perms.chars().all(|c| "rwm".contains(c))
        }
        _ => false,
    };
    // A profile grants only what it says: GPU devices come from `gpus`.
    if ok && super::rule_reaches_gpus(v) {
        return Err(format!(
            "device_cgroup_rules `{v}` would allow the NVIDIA devices (major {}, or every device); GPUs come from `gpus` alone",
            super::GPU_MAJOR
        ));
    }
    if ok {
        Ok(parts.join(" "))
    } else {
        Err(format!(
            "device_cgroup_rules `{v}`: expected \"TYPE MAJOR:MINOR PERMS\", e.g. \"c 195:* rwm\""
        ))
    }
}

/// `memory`: `None` without the key, `Some(None)` when its value was invalid
/// (already reported).
pub fn run_options(c: &mut Checker, raw: &RawProfile, memory: Option<Option<u64>>) -> RunOptions {
    let group_add = c.each(&raw.group_add, |g| non_empty(g, "group_add"));
    let extra_hosts = c.each(&raw.extra_hosts, extra_host);
    let dns = c.each(&raw.dns, |d| {
        d.parse::<IpAddr>()
            .map(|_| d.clone())
            .map_err(|_| format!("dns `{d}` is not an IP address"))
    });
    let device_cgroup_rules = c.each(&raw.device_cgroup_rules, cgroup_rule);
    let runtime = c.map(&raw.runtime, |r| {
        if r.contains("nvidia") {
            // It hands out the GPUs the image's NVIDIA_VISIBLE_DEVICES names.
            return Err(format!(
                "runtime `{r}` would give the container the GPUs its image names; GPUs come from `gpus` alone"
            ));
        }
        non_empty(r, "runtime")
    });
    let platform = c.map(&raw.platform, |p| {
        let parts: Vec<&str> = p.split('/').collect();
        if (1..=3).contains(&parts.len()) && parts.iter().all(|s| !s.is_empty()) {
            Ok(p.clone())
        } else {
            Err(format!(
                "platform `{p}`: expected os[/arch[/variant]], e.g. \"linux/amd64\""
            ))
        }
    });
    let memory_swap = c.map(&raw.memory_swap, |s| match s {
        raw::Size::Bytes(-1) => Ok(-1),
        _ => {
            let bytes = resources::size(s, "memory_swap", 1)?;
            match memory {
                None => Err("memory_swap needs `memory` (Docker limits swap only with memory)".into()),
                Some(Some(m)) if bytes < m => Err(format!(
                    "memory_swap ({bytes} bytes) is memory plus swap, so it cannot be less than memory ({m} bytes)"
                )),
                Some(_) => Ok(i64::try_from(bytes).unwrap_or(i64::MAX)),
            }
        }
    });
    let mut sysctls = BTreeMap::new();
    for (k, v) in raw.sysctls.iter().flatten() {
        if k.get().is_empty() || k.get().contains(['=', ' ']) {
            c.error(k.span(), format!("sysctl name `{}` is not valid", k.get()));
        } else {
            sysctls.insert(k.get().clone(), v.get().0.clone());
        }
    }
    let log = raw.log.as_ref().map(|l| {
        let l = l.get();
        let driver = c.map(&l.driver, |d| non_empty(d, "log.driver"));
        let known = driver.as_deref().and_then(log_options);
        let mut options = BTreeMap::new();
        for (k, v) in l.options.iter().flatten() {
            let (name, value) = (k.get(), v.get());
            if let (Some(known), Some(driver)) = (known, driver.as_deref())
                && !known.contains(&name.as_str())
                && !GLOBAL_LOG_OPTIONS.contains(&name.as_str())
            {
                c.error(
                    k.span(),
                    format!(
                        "log option `{name}` is not one the {driver} driver takes ({})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                );
                continue;
            }
            if let Err(e) = log_value(name, value) {
                c.error(v.span(), e);
                continue;
            }
            options.insert(name.clone(), value.clone());
        }
        LogConfig { driver, options }
    });
    RunOptions {
        init: raw.init.as_ref().is_some_and(|i| *i.get()),
        group_add,
        sysctls,
        extra_hosts,
        dns,
        device_cgroup_rules,
        runtime,
        read_only: raw.read_only.as_ref().is_some_and(|r| *r.get()),
        memory_swap,
        platform,
        log,
    }
}
