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
use crate::profile::user::Id;
use crate::profile::{GpuSelection, MountKind, Profile, Shared, Span, User};

/// What `{home}` stands for in `bind_sources`: the owner's home.
pub const HOME: &str = "{home}";

#[derive(Debug, Clone)]
pub struct Policy {
    pub path: PathBuf,
    /// User names and `@group`s the rules do not bind.
    pub admins: Vec<String>,
    pub allow: Allow,
    pub lease: LeasePolicy,
}

/// `[lease]`: how long GPU containers of owners it binds may hold them.
#[derive(Debug, Clone, Default)]
pub struct LeasePolicy {
    /// The lease of a GPU profile that writes none.
    pub default: Option<crate::profile::Lease>,
    pub max_until: Option<std::time::Duration>,
    pub max_idle_after: Option<std::time::Duration>,
    /// Owners and `@group`s no lease binds.
    pub exempt: Vec<String>,
    /// A command run (by `sh -c`) when a lease warns or reclaims.
    pub notify: Option<String>,
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
    /// A `user` (or image user) other than the owner's uid and groups.
    pub run_as_others: bool,
    /// `security_opt` entries beyond `no-new-privileges`: an exact option,
    /// or a kind (`seccomp`) for any value of it.
    pub security_opt: Vec<String>,
    /// `device_cgroup_rules`, as written.
    pub device_cgroup_rules: Vec<String>,
    /// `group_add` entries beyond the owner's own groups (as numbers).
    pub group_add: Vec<String>,
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
    /// The profile's named volumes that exist: driver options by name.
    pub volume_options:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
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
    /// The image is built from `[build]`: its user is known only once built.
    Built,
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

    /// Whether the lease rules (a default lease, the caps) bind `owner`:
    /// not an admin, not `exempt`.
    pub fn leases_bind(&self, owner: &Owner) -> bool {
        self.binds(owner) && !self.lease.exempt.iter().any(|e| owner.is(e))
    }

    /// Why a lease ending `seconds` from now (or after), or idle for
    /// `idle_after`, is longer than the policy allows `owner`; `None` when
    /// it is not.
    pub fn lease_too_long(
        &self,
        owner: &Owner,
        until: Option<std::time::Duration>,
        idle_after: Option<std::time::Duration>,
    ) -> Option<(&'static str, String)> {
        if !self.leases_bind(owner) {
            return None;
        }
        let show = |d: std::time::Duration| humantime::format_duration(d).to_string();
        let who = owner.display();
        if let (Some(max), Some(until)) = (self.lease.max_until, until)
            && until > max
        {
            return Some((
                "lease.max_until",
                format!(
                    "a lease of {} is longer than {who} may hold GPUs (policy allows {})",
                    show(until),
                    show(max)
                ),
            ));
        }
        if let (Some(max), Some(idle)) = (self.lease.max_idle_after, idle_after)
            && idle > max
        {
            return Some((
                "lease.max_idle_after",
                format!(
                    "idle_after {} is longer than {who}'s GPUs may sit idle (policy allows {})",
                    show(idle),
                    show(max)
                ),
            ));
        }
        None
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
        j.run_as_others();
        j.security_opt();
        j.device_cgroup_rules();
        j.group_add();
        j.gpus();
        j.lease();
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

    /// A violation of `allow.{rule}` at `span` (or the file's start).
    fn refuse(&mut self, span: Option<Span>, rule: &str, message: String) {
        self.refuse_rule(span, &format!("allow.{rule}"), message);
    }

    fn refuse_rule(&mut self, span: Option<Span>, rule: &str, message: String) {
        let span = span.unwrap_or_else(|| self.start());
        self.out.push(
            Diagnostic::new(span, format!("{message} (policy rule `{rule}`)")).help(format!(
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
        // One reading of references: an invalid one is `check`'s to report.
        let Ok(reference) = crate::image_ref::ImageRef::parse(&self.profile.image) else {
            return;
        };
        let image = &reference.to_string();
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
        let home = self.profile.owner.home();
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
            let (source, written) = match (m.kind, &m.source) {
                (MountKind::Bind, Some(source)) => (source.clone(), source.clone()),
                // A local volume made with `o=bind` and `device` is a bind
                // of its device; another device (a disk, NFS) is not a path.
                (MountKind::Volume, Some(name)) => {
                    let Some(opts) = self.host.and_then(|h| h.volume_options.get(name)) else {
                        continue;
                    };
                    let Some(device) = opts.get("device") else {
                        continue;
                    };
                    let bind = opts
                        .get("o")
                        .is_some_and(|o| o.split(',').any(|o| o == "bind" || o == "rbind"));
                    if !bind && opts.get("type").is_some_and(|t| t == "tmpfs") {
                        continue;
                    }
                    (device.clone(), format!("{device} (through volume {name})"))
                }
                _ => continue,
            };
            // On the host, what the path is after symlinks and `..`.
            let judged = match self.host {
                Some(_) => real_path(Path::new(&source)),
                None => PathBuf::from(&source),
            };
            if allowed.iter().any(|a| judged.starts_with(a)) {
                continue;
            }
            let what = if judged == Path::new(&source) {
                written
            } else {
                format!("{written} (which is {})", judged.display())
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
        let settings = [
            (
                "network",
                p.network.as_ref().map(|n| (n.shared(), n.to_string())),
            ),
            ("ipc", p.ipc.as_ref().map(|i| (i.shared(), i.to_string()))),
            ("pid", p.pid.as_ref().map(|m| (m.shared(), m.to_string()))),
        ];
        for (key, setting) in settings {
            let Some((shared, written)) = setting else {
                continue;
            };
            // Joining another container's namespace shares whatever that
            // container shares (maybe the host's), and sees into a container
            // that may be another owner's.
            let whose = match shared {
                Shared::Host => "the host's".to_string(),
                Shared::Container(name) => format!("container {name}'s"),
                Shared::Nothing => continue,
            };
            let message = format!(
                "{key} = \"{written}\" is not allowed for {}: it shares {whose} {key} namespace",
                self.owner()
            );
            self.refuse(p.places.key(key), "host_namespaces", message);
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
        match &self.profile.user {
            Some(User::Owner) => {}
            Some(user) => {
                let Some(why) = as_root(user) else { return };
                let message = format!(
                    "user = \"{user}\" is not allowed for {owner}: {why}, and the policy does not let containers run as root; {help}"
                );
                self.refuse(self.profile.places.key("user"), "run_as_root", message);
            }
            None => {
                let Some(host) = self.host else {
                    return;
                };
                let image = &self.profile.image;
                let message = match &host.image_user {
                    Some(ImageUser::User(u)) if u.is_empty() => format!(
                        "image {image} runs as root (its user is not set) and the profile of {owner} sets no `user`; {help}"
                    ),
                    Some(ImageUser::User(u)) => {
                        let why = match User::parse(u) {
                            Ok(user) if user.bare_uid().is_some() => Some(
                                "a uid without a group, which Docker runs as gid 0, root's group"
                                    .to_string(),
                            ),
                            Ok(user) => as_root(&user),
                            Err(e) => Some(e),
                        };
                        let Some(why) = why else { return };
                        format!(
                            "image {image} may run as root (its user is {u}: {why}) and the profile of {owner} sets no `user`; {help}"
                        )
                    }
                    Some(ImageUser::Missing) => format!(
                        "the profile of {owner} sets no `user` and image {image} is not on this host, so whether it runs as root is unknown; {help}"
                    ),
                    Some(ImageUser::Unknown) => format!(
                        "the profile of {owner} sets no `user` and no engine answered, so whether image {image} runs as root is unknown; {help}"
                    ),
                    Some(ImageUser::Built) => format!(
                        "the profile of {owner} sets no `user` and image {image} is built from its [build], whose user is known only once built; {help}"
                    ),
                    None => return,
                };
                self.refuse(self.profile.places.key("image"), "run_as_root", message);
            }
        }
    }

    /// Another user's uid (or group) reads and writes that user's files on
    /// the binds: the container runs as its owner, by number, unless allowed.
    /// What may be root is [`Judge::run_as_root`]'s to judge.
    fn run_as_others(&mut self) {
        if self.policy.allow.run_as_others {
            return;
        }
        let o = &self.profile.owner;
        let (user, span, whose) = match (&self.profile.user, self.host) {
            (Some(User::Owner), _) => return,
            (Some(user), _) => (user.clone(), self.profile.places.key("user"), "user"),
            (
                None,
                Some(OnHost {
                    image_user: Some(ImageUser::User(u)),
                    ..
                }),
            ) => match User::parse(u) {
                Ok(user) => (user, self.profile.places.key("image"), "the image's user"),
                // An unset user is root: run_as_root's to judge.
                Err(_) => return,
            },
            // Unless run_as_root already refused it.
            (
                None,
                Some(OnHost {
                    image_user: Some(ImageUser::Built),
                    ..
                }),
            ) if self.policy.allow.run_as_root => {
                let message = format!(
                    "the profile of {} sets no `user` and image {} is built from its [build], whose user is known only once built; set user = \"owner\"",
                    self.owner(),
                    self.profile.image
                );
                self.refuse(self.profile.places.key("image"), "run_as_others", message);
                return;
            }
            (None, _) => return,
        };
        let User::Given { user: uid, group } = &user else {
            return;
        };
        let other_uid = matches!(uid, Id::Num(n) if *n != 0 && *n != o.uid);
        let other_gid = matches!(group, Some(Id::Num(g)) if *g != 0 && !o.groups().contains(g));
        if other_uid || other_gid {
            let message = format!(
                "{whose} {user} is not {}'s uid or one of their groups ({}:{}), so the container could read and write another user's files; set user = \"owner\"",
                self.owner(),
                o.uid,
                o.gid()
            );
            self.refuse(span, "run_as_others", message);
        }
    }

    /// Options that only take privileges away pass; the rest (seccomp,
    /// apparmor or systempaths unconfined, label=disable, a seccomp file the
    /// owner wrote) must be allowed by option or by kind.
    fn security_opt(&mut self) {
        let allowed = &self.policy.allow.security_opt;
        for (i, opt) in self.profile.security_opt.iter().enumerate() {
            let kind = opt.split(['=', ':']).next().unwrap_or_default();
            let restricts = matches!(
                opt.as_str(),
                "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true"
            );
            if restricts || allowed.iter().any(|a| a == opt || a == kind) {
                continue;
            }
            // A seccomp file is sent as its JSON: name the kind, not the JSON.
            let shown = if kind == "seccomp" && !opt.starts_with("seccomp=unconfined") {
                "a seccomp profile file".to_string()
            } else {
                opt.clone()
            };
            let message = format!(
                "security option {shown} is not allowed for {} (policy allows {})",
                self.owner(),
                list_or_none(allowed)
            );
            self.refuse(
                self.profile.places.item("security_opt", i),
                "security_opt",
                message,
            );
        }
    }

    /// A cgroup rule lets the container use devices it can make (with the
    /// default MKNOD capability), `/dev/sda` included.
    fn device_cgroup_rules(&mut self) {
        let allowed = &self.policy.allow.device_cgroup_rules;
        for (i, rule) in self.profile.run.device_cgroup_rules.iter().enumerate() {
            if !allowed.contains(rule) {
                let message = format!(
                    "device cgroup rule `{rule}` is not allowed for {} (policy allows {})",
                    self.owner(),
                    list_or_none(allowed)
                );
                self.refuse(
                    self.profile.places.item("device_cgroup_rules", i),
                    "device_cgroup_rules",
                    message,
                );
            }
        }
    }

    /// Extra groups are the owner's own, by number; a name is resolved in
    /// the image, which may map it to any gid (0, disk, docker).
    fn group_add(&mut self) {
        let allowed = &self.policy.allow.group_add;
        let own = self.profile.owner.groups();
        for (i, group) in self.profile.run.group_add.iter().enumerate() {
            let owners = group.parse::<u32>().is_ok_and(|g| own.contains(&g));
            if owners || allowed.contains(group) {
                continue;
            }
            let own: Vec<String> = own.iter().map(u32::to_string).collect();
            let message = format!(
                "group {group} is not allowed for {}: extra groups must be the owner's own, as numbers ({}), or allowed by the policy ({})",
                self.owner(),
                list_or_none(&own),
                list_or_none(allowed)
            );
            self.refuse(
                self.profile.places.item("group_add", i),
                "group_add",
                message,
            );
        }
    }

    /// A lease longer than `[lease] max_until` / `max_idle_after` allows,
    /// at the key that says so. An absolute `until` is measured from now.
    fn lease(&mut self) {
        let Some(lease) = &self.profile.lease else {
            return;
        };
        let until = lease.until.map(|u| match u {
            crate::profile::Until::After(d) => d,
            crate::profile::Until::At(t) => t
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .and_then(|t| {
                    let now = u64::try_from(crate::clock::now()).unwrap_or(0);
                    t.checked_sub(std::time::Duration::from_secs(now))
                })
                .unwrap_or_default(),
        });
        for (until, idle_after, span) in [
            (until, None, lease.until_span.clone()),
            (None, lease.idle_after, lease.idle_after_span.clone()),
        ] {
            if let Some((rule, message)) =
                self.policy
                    .lease_too_long(&self.profile.owner, until, idle_after)
            {
                self.refuse_rule(span.or(Some(lease.span.clone())), rule, message);
            }
        }
    }

    fn gpus(&mut self) {
        let Some(gpus) = &self.profile.gpus else {
            return;
        };
        let span = Some(gpus.span.clone());
        let owner = self.owner();
        let limited =
            self.policy.allow.max_gpus.is_some() || self.policy.allow.max_gpus_per_owner.is_some();
        let Some(count) = gpus_asked(self.profile, self.host.and_then(|h| h.gpu_count)) else {
            // `"all"` on a host whose GPUs could not be counted.
            if limited && self.host.is_some() {
                let message = format!(
                    "gpus = \"all\" is not allowed for {owner} here: the GPUs of this host could not be counted, and the policy limits them; name the GPUs or a count"
                );
                self.refuse(span, "max_gpus", message);
            }
            return;
        };
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

/// Why `user` may be root: uid or gid 0, or a name, which the image's own
/// passwd or group file may map to 0. `None`: it is not.
fn as_root(user: &User) -> Option<String> {
    let User::Given { user, group } = user else {
        return None;
    };
    Some(match (user, group) {
        (Id::Num(0), _) => "uid 0 is root".to_string(),
        (Id::Name(n), _) if n == "root" => "it is root".to_string(),
        (Id::Name(n), _) => format!("`{n}` is a name, which the image may map to uid 0"),
        (Id::Num(_), Some(Id::Num(0))) => "gid 0 is root's group".to_string(),
        (Id::Num(_), Some(Id::Name(g))) => {
            format!("group `{g}` is a name, which the image may map to gid 0")
        }
        (Id::Num(_), Some(Id::Num(_)) | None) => return None,
    })
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
