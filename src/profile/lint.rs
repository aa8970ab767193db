//! `launch check`'s lints (docs/architecture.md, shared hosts): things that
//! are allowed but almost always a mistake on a GPU host. Warnings, each at
//! its place with its fix; `check --deny-warnings` makes them errors. Pure.

use super::diagnostic::Diagnostic;
use super::{Profile, Span};

/// Every lint `profile` trips, in file order.
pub fn lints(profile: &Profile) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let at = |key: &str| {
        profile
            .places
            .key(key)
            .unwrap_or(profile.places.start.clone())
    };
    if let Some(gpus) = &profile.gpus {
        if profile.shm_size.is_none() && profile.ipc != Some(super::Ipc::Host) {
            out.push(
                Diagnostic::new(
                    gpus.span.clone(),
                    "a GPU profile with Docker's default 64 MiB /dev/shm: data loaders and NCCL run out of it",
                )
                .help("add shm_size = \"8G\" (or ipc = \"host\")"),
            );
        }
        if profile.privileged {
            out.push(
                Diagnostic::new(
                    at("privileged"),
                    "privileged with gpus: a privileged container sees every GPU of the host, whatever `gpus` says",
                )
                .help("remove privileged = true; add the capabilities it needs with cap_add"),
            );
        }
        let memlock_raised = profile
            .ulimits
            .iter()
            .any(|u| u.name == "memlock" && (u.soft < 0 || u.soft >= 1 << 30));
        if !memlock_raised {
            out.push(
                Diagnostic::new(
                    profile.places.key("ulimits").unwrap_or(gpus.span.clone()),
                    "memlock is not raised for a GPU profile: pinned memory (CUDA, NCCL, RDMA) is limited to a few MiB",
                )
                .help("add `[ulimits]` with `memlock = -1`"),
            );
        }
    }
    out.extend(team_variables(profile));
    out.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
    out
}

/// `${HOME}` and `${USER}` in a team profile (one that extends another, and
/// what it extends): under root's cron they are root's, not the member's.
fn team_variables(profile: &Profile) -> Vec<Diagnostic> {
    if profile.extends.is_empty() {
        return Vec::new();
    }
    let canonical =
        |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mine = canonical(&profile.path);
    let mut out = Vec::new();
    for file in profile.sources.files() {
        let path = canonical(&file.path);
        if path != mine && !profile.extends.contains(&path) {
            continue;
        }
        for (offset, _) in file.text.match_indices("${") {
            let rest = &file.text[offset + 2..];
            let name_end = rest.find(['}', ':']).unwrap_or(rest.len());
            let name = &rest[..name_end];
            if !matches!(name, "HOME" | "USER") {
                continue;
            }
            // Not in a comment.
            let line_start = file.text[..offset].rfind('\n').map_or(0, |i| i + 1);
            if file.text[line_start..offset].trim_start().starts_with('#') {
                continue;
            }
            let len = rest.find('}').map_or(2 + name_end, |i| i + 3);
            let span: Span = file.base + offset..file.base + offset + len;
            let fix = if name == "HOME" {
                "write `~` for the home of the profile's owner"
            } else {
                "write the owner's name, or use user = \"owner\" to run as them"
            };
            out.push(
                Diagnostic::new(
                    span,
                    format!("${{{name}}} in a team profile is the {name} of whoever runs launch (root, from cron), not of the profile's owner"),
                )
                .help(fix),
            );
        }
    }
    out
}
