//! Resource limits: memory and shm sizes, CPUs, cpusets and ulimits.

use std::collections::BTreeMap;

use super::Ulimit;
use super::diagnostic::unknown;
use super::raw::{self, Cpus, Size, Sp};
use super::validate::Checker;

/// `ulimit` names Docker accepts.
pub const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// Docker's smallest memory limit.
pub const MIN_MEMORY: u64 = 6 * 1024 * 1024;

/// A size as Docker reads it: `8G` is 8 GiB, `64m` 64 MiB, a bare number bytes.
pub fn size(value: &Size, key: &str, min: u64) -> Result<u64, String> {
    let bytes = match value {
        Size::Bytes(b) => u64::try_from(*b).map_err(|_| format!("{key} `{b}` is negative"))?,
        Size::Text(text) => parse_size::Config::new()
            .with_binary()
            .parse_size(text)
            .map_err(|_| {
                format!(
                    "{key} `{text}` is not a size: write e.g. \"8G\", \"512m\" or a number of bytes"
                )
            })?,
    };
    if bytes < min {
        let shown = match value {
            Size::Bytes(b) => b.to_string(),
            Size::Text(t) => t.clone(),
        };
        return Err(if min == 1 {
            format!("{key} `{shown}` must be more than zero")
        } else {
            format!(
                "{key} `{shown}` is below Docker's minimum of {} MiB",
                min >> 20
            )
        });
    }
    Ok(bytes)
}

/// The smallest `cpus` Docker takes.
const MIN_CPUS: f64 = 0.01;

pub fn cpus(value: &Cpus) -> Result<i64, String> {
    let (n, shown) = match value {
        Cpus::Number(n) => (*n, n.to_string()),
        Cpus::Text(t) => (
            t.trim()
                .parse::<f64>()
                .map_err(|_| format!("cpus `{t}` is not a number"))?,
            t.clone(),
        ),
    };
    if !(n > 0.0 && n.is_finite() && n <= 4096.0) {
        return Err(format!("cpus `{shown}` must be a number of CPUs above 0"));
    }
    // Below a hundredth Docker's nano-CPUs round to 0, which means no limit.
    if n < MIN_CPUS {
        return Err(format!(
            "cpus `{shown}` is below the smallest CPU limit, {MIN_CPUS}"
        ));
    }
    Ok((n * 1e9).round() as i64)
}

pub fn cpuset(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.split(',').all(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a <= b)
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "cpuset `{value}` is not a CPU list such as \"0-3,8\""
        ))
    }
}

pub fn ulimits(
    c: &mut Checker,
    list: &Option<BTreeMap<Sp<String>, Sp<raw::Ulimit>>>,
) -> Vec<Ulimit> {
    let mut out = Vec::new();
    for (key, value) in list.iter().flatten() {
        let name = key.get();
        if !ULIMITS.contains(&name.as_str()) {
            c.error(key.span(), unknown("ulimit", name, ULIMITS));
            continue;
        }
        match ulimit(value.get()) {
            Ok((soft, hard)) => out.push(Ulimit {
                name: name.clone(),
                soft,
                hard,
            }),
            Err(message) => c.error(value.span(), format!("ulimit `{name}`: {message}")),
        }
    }
    out
}

pub fn ulimit(value: &raw::Ulimit) -> Result<(i64, i64), String> {
    let number = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("`{s}` is not a number"))
    };
    let (soft, hard) = match value {
        raw::Ulimit::Single(v) => (*v, *v),
        raw::Ulimit::Pair { soft, hard } => (*soft, *hard),
        raw::Ulimit::Text(t) => match t.split_once(':') {
            Some((s, h)) => (number(s)?, number(h)?),
            None => (number(t)?, number(t)?),
        },
    };
    for v in [soft, hard] {
        if v < -1 {
            return Err(format!("`{v}` is negative (use -1 for unlimited)"));
        }
    }
    let unlimited = |v: i64| v == -1;
    if !unlimited(hard) && (unlimited(soft) || soft > hard) {
        return Err(format!("soft limit {soft} is above the hard limit {hard}"));
    }
    Ok((soft, hard))
}
