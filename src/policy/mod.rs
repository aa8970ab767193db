//! The policy of a shared host (docs/architecture.md, shared hosts): what
//! the profiles of owners who are not admins may use. Pure: judging a
//! profile reads nothing but what it is given, apart from resolving bind
//! sources on the host when asked to.
//!
//! Each rule is one function of [`Policy::judge`]; a rule for a new key is
//! a field of [`Allow`], its line in `file.rs`, and a few lines here.

mod file;

use std::path::{Path, PathBuf};

pub use file::{DEFAULT_PATH, Source, load, parse};

use crate::owner::Owner;
use crate::profile::diagnostic::Diagnostic;
use crate::profile::{GpuSelection, MountKind, Profile, Span};

/// What `{home}` stands for in `bind_sources`: the owner's home.
pub const HOME: &str = "{home}";

#[derive(Debug, Clone)]
pub struct Policy {
    pub path: PathBuf,
    /// User names and `@group`s the rules do not bind.
    pub admins: Vec<String>,
    pub allow: Allow,
}

/// `[allow]`; an absent key allows nothing (for `images`: anything).
#[derive(Debug, Clone, Default)]
pub struct Allow {
    pub images: Option<Vec<String>>,
    pub bind_sources: Option<Vec<String>>,
    pub privileged: bool,
    pub host_namespaces: bool,
    pub cap_add: Vec<String>,
    pub devices: Vec<String>,
    pub run_as_root: bool,
    pub max_gpus: Option<u32>,
    pub max_gpus_per_owner: Option<u32>,
}

/// What `up`, `plan` and `render` know of the host when judging; `check`
/// judges without it (paths as written, no image, no other containers).
#[derive(Debug, Clone, Default)]
pub struct OnHost {
    /// GPUs on the host, for `gpus = "all"`.
    pub gpu_count: Option<usize>,
    /// The image's configured user, when the profile sets none.
    pub image_user: Option<ImageUser>,
    /// GPUs the owner's other launch containers hold (running or not),
    /// and those of the owner's profiles allowed earlier in this run that
    /// have no container yet.
    pub owner_gpus: Option<usize>,
}

/// What the engine says of an image's configured user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageUser {
    /// Its `User` (empty when it sets none: root).
    User(String),
    /// The image is not on the host.
    Missing,
    /// No engine answered.
    Unknown,
}

/// A glob on an image reference: anchored, `*` matches `/` too.
fn image_glob(glob: &str) -> Result<globset::GlobMatcher, globset::Error> {
    globset::GlobBuilder::new(glob)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher())
}

impl Policy {
    /// Whether the rules bind `owner`.
    pub fn binds(&self, owner: &Owner) -> bool {
        !self.admins.iter().any(|a| owner.is(a))
    }

    /// Every rule `profile` breaks, each at the key that breaks it.
    pub fn judge(&self, profile: &Profile, host: Option<&OnHost>) -> Vec<Diagnostic> {
        if !self.binds(&profile.owner) {
            return Vec::new();
        }
        let mut j = Judge {
            policy: self,
            profile,
            host,
            out: Vec::new(),
        };
        j.images();
        j.bind_sources();
        j.privileged();
        j.host_namespaces();
        j.cap_add();
        j.devices();
        j.run_as_root();
        j.gpus();
        j.out.sort_by_key(|d| d.span.as_ref().map(|s| s.start));
        j.out
    }

    /// Who the rules do not bind, for help texts.
    fn admins_text(&self) -> String {
        if self.admins.is_empty() {
            "no admins".into()
        } else {
            format!("admins: {}", self.admins.join(", "))
        }
    }
}

struct Judge<'a> {
    policy: &'a Policy,
    profile: &'a Profile,
    host: Option<&'a OnHost>,
    out: Vec<Diagnostic>,
}

impl Judge<'_> {
    fn owner(&self) -> String {
        self.profile.owner.display()
    }

    /// A violation of `rule` at `span` (or the file's start).
    fn refuse(&mut self, span: Option<Span>, rule: &str, message: String) {
        let span = span.unwrap_or_else(|| self.start());
        self.out.push(
            Diagnostic::new(span, format!("{message} (policy rule `allow.{rule}`)")).help(format!(
                "the policy {} decides what profiles of owners other than its admins may use ({}); \
                 the owner of a profile is the owner of its file",
                self.policy.path.display(),
                self.policy.admins_text()
            )),
        );
    }

    fn start(&self) -> Span {
        self.profile.places.start.clone()
    }

    fn images(&mut self) {
        let Some(globs) = &self.policy.allow.images else {
            return;
        };
        let image = &self.profile.image;
        if globs
            .iter()
            .any(|g| image_glob(g).is_ok_and(|m| m.is_match(image)))
        {
            return;
        }
        let message = format!(
            "image {image} is not allowed for {} (policy allows {})",
            self.owner(),
            list(globs)
        );
        self.refuse(self.profile.places.key("image"), "images", message);
    }

    fn bind_sources(&mut self) {
        let home = self.profile.owner.home.as_deref();
        let allowed: Vec<PathBuf> = self
            .policy
            .allow
            .bind_sources
            .iter()
            .flatten()
            .filter_map(|p| match p.strip_prefix(HOME) {
                Some(rest) => home.map(|h| h.join(rest.trim_start_matches('/'))),
                None => Some(PathBuf::from(p)),
            })
            .collect();
        let shown: Vec<String> = allowed.iter().map(|p| p.display().to_string()).collect();
        for m in &self.profile.volumes {
            let (MountKind::Bind, Some(source)) = (m.kind, &m.source) else {
                continue;
            };
            // On the host, what the path is after symlinks and `..`.
            let judged = match self.host {
                Some(_) => real_path(Path::new(source)),
                None => PathBuf::from(source),
            };
            if allowed.iter().any(|a| judged.starts_with(a)) {
                continue;
            }
            let what = if judged == Path::new(source) {
                source.clone()
            } else {
                format!("{source} (which is {})", judged.display())
            };
            let message = format!(
                "bind source {what} is not allowed for {} (policy allows {})",
                self.owner(),
                list_or_none(&shown)
            );
            self.refuse(Some(m.span.clone()), "bind_sources", message);
        }
    }

    fn privileged(&mut self) {
        if self.profile.privileged && !self.policy.allow.privileged {
            let message = format!("privileged is not allowed for {}", self.owner());
            self.refuse(self.profile.places.key("privileged"), "privileged", message);
        }
    }

    fn host_namespaces(&mut self) {
        if self.policy.allow.host_namespaces {
            return;
        }
        let p = self.profile;
        for (key, value) in [("network", &p.network), ("ipc", &p.ipc), ("pid", &p.pid)] {
            if value.as_deref() == Some("host") {
                let message = format!(
                    "{key} = \"host\" is not allowed for {}: it shares the host's {key} namespace",
                    self.owner()
                );
                self.refuse(p.places.key(key), "host_namespaces", message);
            }
        }
    }

    fn cap_add(&mut self) {
        let allowed = &self.policy.allow.cap_add;
        for (i, cap) in self.profile.cap_add.iter().enumerate() {
            if !allowed.contains(cap) {
                let message = format!(
                    "capability {cap} is not allowed for {} (policy allows {})",
                    self.owner(),
                    list_or_none(allowed)
                );
                self.refuse(self.profile.places.item("cap_add", i), "cap_add", message);
            }
        }
    }

    fn devices(&mut self) {
        let allowed = &self.policy.allow.devices;
        for d in &self.profile.devices {
            let host = crate::profile::normalize(&d.host);
            // On the host, the device a link points at.
            let judged = match self.host {
                Some(_) => real_path(Path::new(&host)).display().to_string(),
                None => host.clone(),
            };
            if !allowed.iter().any(|a| *a == host && *a == judged) {
                let message = format!(
                    "device {} is not allowed for {} (policy allows {})",
                    d.host,
                    self.owner(),
                    list_or_none(allowed)
                );
                self.refuse(Some(d.span.clone()), "devices", message);
            }
        }
    }

    fn run_as_root(&mut self) {
        if self.policy.allow.run_as_root {
            return;
        }
        let help = "set user = \"owner\" (the profile owner's uid:gid) or a non-zero uid";
        let owner = self.owner();
        match self.profile.user.as_deref() {
            Some("owner") => {}
            Some(user) => {
                let uid = user.split(':').next().unwrap_or_default();
                let why = match uid.parse::<u32>() {
                    Ok(0) => "uid 0 is root".to_string(),
                    Ok(_) => return,
                    Err(_) if uid == "root" => "it is root".to_string(),
                    Err(_) => format!("`{uid}` is a name, which the image may map to uid 0"),
                };
                let message = format!(
                    "user = \"{user}\" is not allowed for {owner}: {why}, and the policy does not let containers run as root; {help}"
                );
                self.refuse(self.profile.places.key("user"), "run_as_root", message);
            }
            None => {
                let Some(host) = self.host else {
                    return;
                };
                let message = match &host.image_user {
                    Some(ImageUser::User(u))
                        if !matches!(u.split(':').next(), Some("" | "0" | "root")) =>
                    {
                        return;
                    }
                    Some(ImageUser::User(u)) => format!(
                        "image {} runs as root (its user is {}) and the profile of {owner} sets no `user`; {help}",
                        self.profile.image,
                        if u.is_empty() { "not set" } else { u }
                    ),
                    Some(ImageUser::Missing) => format!(
                        "the profile of {owner} sets no `user` and image {} is not on this host, so whether it runs as root is unknown; {help}",
                        self.profile.image
                    ),
                    Some(ImageUser::Unknown) => format!(
                        "the profile of {owner} sets no `user` and no engine answered, so whether image {} runs as root is unknown; {help}",
                        self.profile.image
                    ),
                    None => return,
                };
                self.refuse(self.profile.places.key("image"), "run_as_root", message);
            }
        }
    }

    fn gpus(&mut self) {
        let Some(gpus) = &self.profile.gpus else {
            return;
        };
        let Some(count) = gpus_asked(self.profile, self.host.and_then(|h| h.gpu_count)) else {
            return;
        };
        let span = Some(gpus.span.clone());
        let owner = self.owner();
        if let Some(max) = self.policy.allow.max_gpus
            && count > max as usize
        {
            let message = format!(
                "{count} GPUs are more than {owner} may use in one profile (policy allows {max})"
            );
            self.refuse(span.clone(), "max_gpus", message);
        }
        if let Some(max) = self.policy.allow.max_gpus_per_owner {
            let others = self.host.and_then(|h| h.owner_gpus).unwrap_or(0);
            if count + others > max as usize {
                let message = format!(
                    "{count} GPUs{} are more than {owner} may hold on this host (policy allows {max})",
                    if others > 0 {
                        format!(" with the {others} of {owner}'s other containers")
                    } else {
                        String::new()
                    }
                );
                self.refuse(span, "max_gpus_per_owner", message);
            }
        }
    }
}

/// How many GPUs a profile asks for; `"all"` is the host's `gpu_count`.
pub fn gpus_asked(profile: &Profile, gpu_count: Option<usize>) -> Option<usize> {
    match &profile.gpus.as_ref()?.selection {
        GpuSelection::All => gpu_count,
        GpuSelection::List(list) => Some(list.len()),
        GpuSelection::Count(n) => usize::try_from(*n).ok(),
    }
}

/// A path with symlinks and `..` resolved; a missing tail (a source made
/// with `create = true`) is joined to its deepest existing folder, resolved.
fn real_path(path: &Path) -> PathBuf {
    let mut tail = Vec::new();
    let mut at = path;
    loop {
        if let Ok(real) = std::fs::canonicalize(at) {
            return tail.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn list(items: &[String]) -> String {
    items.join(", ")
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        list(items)
    }
}
