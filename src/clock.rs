//! Time as launch reads and shows it: Unix seconds, `LAUNCH_NOW` for tests,
//! RFC 3339 and spans such as `1h30m` for people. Leases, the policy's
//! caps, `usage` and the board all keep time this way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds: `LAUNCH_NOW` (RFC 3339) when set, as tests set it,
/// else the system's clock.
pub fn now() -> i64 {
    let at = std::env::var("LAUNCH_NOW")
        .ok()
        .and_then(|t| humantime::parse_rfc3339_weak(&t).ok())
        .unwrap_or_else(SystemTime::now);
    seconds(at)
}

pub fn seconds(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `--since` as people write it: a duration back from `now` (`7d`) or an
/// RFC 3339 time; Unix seconds.
pub fn since(text: &str, now: i64) -> Result<i64, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(seconds(t));
    }
    humantime::parse_duration(text)
        .map(|d| now.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)))
        .map_err(|_| {
            format!("--since `{text}` is neither a duration (7d, 12h) nor an RFC 3339 time")
        })
}

/// A time for people: RFC 3339, to the second, UTC.
pub fn shown(at: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(at).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A duration for people, as leases are written: `2h`, `1h30m`, `3d`.
pub fn span(seconds: i64) -> String {
    let mut left = seconds.max(0);
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        // Seconds only for a span under a minute.
        if unit == "s" && !out.is_empty() {
            break;
        }
        if left >= size {
            out += &format!("{}{unit}", left / size);
            left %= size;
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}
