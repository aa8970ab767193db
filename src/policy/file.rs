//! The policy file: where it is, whether it can be trusted (owned by root,
//! not writable by group or others, as sshd judges its keys), and its
//! format, checked like a profile's (unknown keys with "did you mean",
//! file:line:column).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::{Allow, Policy};
use crate::error::{Error, Result};
use crate::profile::diagnostic::{self, Diagnostic, Diagnostics};
use crate::profile::raw::Sp;
use crate::profile::{SourceMap, files};

/// Where the policy is when neither `--policy` nor `LAUNCH_POLICY` names one.
pub const DEFAULT_PATH: &str = "/etc/launch/policy.toml";

/// Which policy file a run reads: one named by the user must exist; the
/// default one only when it is there.
#[derive(Debug, Clone)]
pub enum Source {
    Named(PathBuf),
    Default,
}

/// The policy of this run, or `None` when there is none. An unsafe or
/// invalid file is an error (exit 2).
pub fn load(source: &Source) -> Result<Option<Policy>> {
    let path = match source {
        Source::Named(path) => path.clone(),
        Source::Default => {
            let path = PathBuf::from(DEFAULT_PATH);
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                _ => path,
            }
        }
    };
    let meta = std::fs::metadata(&path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the policy {}: {}",
            path.display(),
            crate::profile::io_reason(&e)
        ))
    })?;
    trusted(&path, &meta)?;
    let text = files::read_text(&path).map_err(|e| {
        Error::Usage(format!(
            "cannot read the policy {}: {}",
            path.display(),
            e.reason
        ))
    })?;
    parse(&path, text).map(Some)
}

/// A policy anyone but root can change grants what its writer wants: refused.
fn trusted(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    let fix = format!(
        "run `chown root:root {0} && chmod go-w {0}`",
        path.display()
    );
    if meta.uid() != 0 {
        let owner = crate::owner::user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string());
        return Err(Error::Usage(format!(
            "the policy {} is owned by {owner}, not root, so launch does not trust it; {fix}",
            path.display()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        let who = match meta.mode() & 0o022 {
            0o020 => "its group",
            0o002 => "everyone",
            _ => "its group and everyone",
        };
        return Err(Error::Usage(format!(
            "the policy {} is writable by {who} (mode {:o}), so launch does not trust it; {fix}",
            path.display(),
            meta.mode() & 0o7777
        )));
    }
    // Whoever can write its folder can swap the file or remove it (and a
    // missing default policy means none); a sticky folder keeps root's file.
    let dir = std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    if let Some(dir) = dir
        && let Ok(d) = std::fs::metadata(&dir)
        && (d.uid() != 0 || (d.mode() & 0o022 != 0 && d.mode() & 0o1000 == 0))
    {
        return Err(Error::Usage(format!(
            "the folder {} of the policy can be written by others than root, who could replace the policy, so launch does not trust it; run `chown root {0} && chmod go-w {0}`",
            dir.display()
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    admins: Option<Vec<Sp<String>>>,
    allow: Option<RawAllow>,
    lease: Option<RawLeasePolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLeasePolicy {
    default: Option<Sp<crate::profile::raw::Lease>>,
    max_until: Option<Sp<String>>,
    max_idle_after: Option<Sp<String>>,
    exempt: Option<Vec<Sp<String>>>,
    notify: Option<Sp<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    images: Option<Vec<Sp<String>>>,
    bind_sources: Option<Vec<Sp<String>>>,
    privileged: Option<bool>,
    host_namespaces: Option<bool>,
    cap_add: Option<Vec<Sp<String>>>,
    devices: Option<Vec<Sp<String>>>,
    run_as_root: Option<bool>,
    run_as_others: Option<bool>,
    security_opt: Option<Vec<Sp<String>>>,
    device_cgroup_rules: Option<Vec<Sp<String>>>,
    group_add: Option<Vec<Sp<String>>>,
    max_gpus: Option<u32>,
    max_gpus_per_owner: Option<u32>,
}

/// The policy in `text`, read from `path`; every problem at its place.
pub fn parse(path: &Path, text: String) -> Result<Policy> {
    let mut sources = SourceMap::default();
    let base = sources.add(path, text);
    let text = sources.file_at(base).map_or("", |f| f.text);
    let at = |span: std::ops::Range<usize>| span.start + base..span.end + base;
    let mut items = Vec::new();
    let raw = match toml::from_str::<RawPolicy>(text) {
        Ok(raw) => Some(raw),
        Err(e) => {
            let span = at(e.span().unwrap_or(0..0));
            let mut d = diagnostic::from_serde(e.message(), span);
            if !d.message.starts_with("unknown") {
                d.message = format!("invalid policy: {}", d.message);
            }
            items.push(d);
            None
        }
    };
    let mut policy = Policy {
        path: path.to_path_buf(),
        admins: Vec::new(),
        allow: Allow::default(),
        lease: super::LeasePolicy::default(),
    };
    if let Some(raw) = raw {
        policy.admins = raw
            .admins
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| match a.get().as_str() {
                "" | "@" => {
                    items.push(Diagnostic::new(
                        at(a.span()),
                        "an admin is a user name or @group",
                    ));
                    None
                }
                name => Some(name.to_string()),
            })
            .collect();
        if let Some(a) = raw.allow {
            policy.allow = allow(a, &mut items, &at);
        }
        if let Some(l) = raw.lease {
            policy.lease = lease(l, &mut items, &at);
        }
    }
    if items.is_empty() {
        Ok(policy)
    } else {
        Err(Error::Profile(Diagnostics {
            sources: Arc::new(sources),
            items,
        }))
    }
}

fn lease(
    l: RawLeasePolicy,
    items: &mut Vec<Diagnostic>,
    at: &dyn Fn(std::ops::Range<usize>) -> std::ops::Range<usize>,
) -> super::LeasePolicy {
    use crate::profile::lease::duration;
    let mut time = |v: &Option<Sp<String>>, key: &str| {
        let v = v.as_ref()?;
        match duration(v.get(), key) {
            Ok(d) => Some(d),
            Err(message) => {
                items.push(Diagnostic::new(at(v.span()), message));
                None
            }
        }
    };
    let max_until = time(&l.max_until, "max_until");
    let max_idle_after = time(&l.max_idle_after, "max_idle_after");
    let default = l.default.and_then(|d| {
        let span = at(d.span());
        match crate::profile::lease::from_raw(d.get()) {
            Ok(mut lease) => {
                lease.span = span;
                Some(lease)
            }
            Err(message) => {
                items.push(Diagnostic::new(span, format!("lease.default: {message}")));
                None
            }
        }
    });
    super::LeasePolicy {
        default,
        max_until,
        max_idle_after,
        exempt: l
            .exempt
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.into_inner())
            .collect(),
        notify: l.notify.map(Sp::into_inner),
    }
}

fn allow(
    a: RawAllow,
    items: &mut Vec<Diagnostic>,
    at: &dyn Fn(std::ops::Range<usize>) -> std::ops::Range<usize>,
) -> Allow {
    let mut check = |list: Option<Vec<Sp<String>>>,
                     each: &dyn Fn(&str) -> Result<String, String>| {
        list.map(|list| {
            list.into_iter()
                .filter_map(|v| match each(v.get()) {
                    Ok(v) => Some(v),
                    Err(message) => {
                        items.push(Diagnostic::new(at(v.span()), message));
                        None
                    }
                })
                .collect::<Vec<String>>()
        })
    };
    let images = check(a.images, &|glob| {
        super::image_glob(glob)
            .map(|_| glob.to_string())
            .map_err(|e| format!("image pattern `{glob}` is not a glob: {e}"))
    });
    let bind_sources = check(a.bind_sources, &|prefix| {
        let rest = prefix.strip_prefix(super::HOME).unwrap_or(prefix);
        let ok = if prefix.starts_with(super::HOME) {
            rest.is_empty() || rest.starts_with('/')
        } else {
            prefix.starts_with('/')
        };
        if ok {
            Ok(prefix.to_string())
        } else {
            Err(format!(
                "bind source prefix `{prefix}` must be an absolute path, or start with {}",
                super::HOME
            ))
        }
    });
    let cap_add = check(a.cap_add, &|cap| {
        crate::profile::capability(&cap.to_string())
    });
    let devices = check(a.devices, &|dev| {
        if dev.starts_with('/') {
            Ok(crate::profile::normalize(dev))
        } else {
            Err(format!(
                "device `{dev}` must be an absolute host path, e.g. /dev/fuse"
            ))
        }
    });
    let security_opt = check(a.security_opt, &|opt| {
        let kind = opt.split(['=', ':']).next().unwrap_or_default();
        if crate::profile::SECURITY_OPTS.contains(&kind) {
            Ok(opt.to_string())
        } else {
            Err(format!(
                "security option `{opt}` is not one of {}",
                crate::profile::SECURITY_OPTS.join(", ")
            ))
        }
    });
    let device_cgroup_rules = check(a.device_cgroup_rules, &|rule| {
        // As the profile's rules are kept: one space between the parts.
        Ok(rule.split_whitespace().collect::<Vec<_>>().join(" "))
    });
    let group_add = check(a.group_add, &|group| {
        if group.trim().is_empty() {
            Err("a group is a name or a number".into())
        } else {
            Ok(group.to_string())
        }
    });
    Allow {
        images,
        bind_sources,
        privileged: a.privileged.unwrap_or(false),
        host_namespaces: a.host_namespaces.unwrap_or(false),
        cap_add: cap_add.unwrap_or_default(),
        devices: devices.unwrap_or_default(),
        run_as_root: a.run_as_root.unwrap_or(false),
        run_as_others: a.run_as_others.unwrap_or(false),
        security_opt: security_opt.unwrap_or_default(),
        device_cgroup_rules: device_cgroup_rules.unwrap_or_default(),
        group_add: group_add.unwrap_or_default(),
        max_gpus: a.max_gpus,
        max_gpus_per_owner: a.max_gpus_per_owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Policy> {
        parse(Path::new("/etc/launch/policy.toml"), text.to_string())
    }

    #[test]
    fn unknown_keys_are_named_with_a_suggestion() {
        let Err(Error::Profile(d)) = parsed("[allow]\nimgaes = [\"x/*\"]\n") else {
            panic!("an unknown key is an error");
        };
        let text = d.render(false);
        assert!(text.contains("unknown key `imgaes`"), "{text}");
        assert!(text.contains("did you mean `images`?"), "{text}");
        assert!(text.contains("policy.toml:2:1"), "{text}");
    }

    #[test]
    fn absent_keys_allow_nothing_but_images() {
        let p = parsed("admins = [\"root\", \"@ops\"]\n[allow]\n").unwrap();
        assert_eq!(p.admins, ["root", "@ops"]);
        assert!(p.allow.images.is_none() && p.allow.bind_sources.is_none());
        assert!(!p.allow.privileged && !p.allow.run_as_root && p.allow.max_gpus.is_none());
    }

    #[test]
    fn bad_values_are_located() {
        let Err(Error::Profile(d)) = parsed(
            "[allow]\nbind_sources = [\"data\"]\ndevices = [\"fuse\"]\ncap_add = [\"SYS_PTRCE\"]\n",
        ) else {
            panic!("bad values are errors");
        };
        assert_eq!(d.items.len(), 3, "{}", d.render(false));
        assert!(d.render(false).contains("did you mean `SYS_PTRACE`"));
    }
}
