//! Who owns a profile: the owner of its file, looked up in the host's user
//! database (docs/architecture.md, shared hosts). The owner decides what `~`
//! means, whom the policy judges, and who `user = "owner"` runs as.
//!
//! A uid with no passwd entry is still an owner, known by number: it has no
//! name (shown as the number), no home (a `~` in its profile is an error),
//! its primary group is the file's group and it has no supplementary groups.

use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The owner of a profile file.
///
/// Only the uid is known at once; the passwd and group entries are looked up
/// on first use, so a run that needs none of them (a no-op `up` without a
/// policy, `~` or `user = "owner"`) pays no user-database lookup (NSS may load
/// modules and ask daemons).
#[derive(Debug, Clone)]
pub struct Owner {
    pub uid: u32,
    /// The file's group: the primary group when the uid has no passwd entry.
    file_gid: u32,
    entry: Arc<OnceLock<Entry>>,
}

/// What the user database says of an owner.
#[derive(Debug, Clone)]
struct Entry {
    /// The passwd entry's primary group, else the file's group.
    gid: u32,
    /// The login name; `None` when the uid has no passwd entry.
    name: Option<String>,
    home: Option<PathBuf>,
    /// Every group the owner is in (primary first), as numbers.
    groups: Vec<u32>,
}

impl Default for Owner {
    /// Nobody in particular: uid 0 with no name, home or groups.
    fn default() -> Owner {
        Owner::known(0, 0, None, None, Vec::new())
    }
}

impl Owner {
    /// The owner of the file at `path` (through symlinks, as it is read).
    pub fn of_file(path: &Path) -> std::io::Result<Owner> {
        let meta = std::fs::metadata(path)?;
        Ok(Owner::of_uid(meta.uid(), meta.gid()))
    }

    /// The user `uid`; `gid` is the group used when it has no passwd entry.
    pub fn of_uid(uid: u32, gid: u32) -> Owner {
        Owner {
            uid,
            file_gid: gid,
            entry: Arc::default(),
        }
    }

    /// An owner whose entries are already known (tests, fixed identities).
    pub fn known(
        uid: u32,
        gid: u32,
        name: Option<String>,
        home: Option<PathBuf>,
        groups: Vec<u32>,
    ) -> Owner {
        let entry = Entry {
            gid,
            name,
            home,
            groups,
        };
        Owner {
            uid,
            file_gid: gid,
            entry: Arc::new(OnceLock::from(entry)),
        }
    }

    fn entry(&self) -> &Entry {
        self.entry.get_or_init(|| match passwd_by_uid(self.uid) {
            Some(pw) => Entry {
                gid: pw.gid,
                groups: group_list(&pw.name, pw.gid),
                name: Some(pw.name),
                home: Some(pw.home),
            },
            None => Entry {
                gid: self.file_gid,
                name: None,
                home: None,
                groups: vec![self.file_gid],
            },
        })
    }

    /// The primary group: the passwd entry's, else the file's.
    pub fn gid(&self) -> u32 {
        self.entry().gid
    }

    /// The login name; `None` when the uid has no passwd entry.
    pub fn name(&self) -> Option<&str> {
        self.entry().name.as_deref()
    }

    /// The home folder, which `~` in the owner's profile means.
    pub fn home(&self) -> Option<&Path> {
        self.entry().home.as_deref()
    }

    /// Every group the owner is in (primary first), as numbers.
    pub fn groups(&self) -> &[u32] {
        &self.entry().groups
    }

    /// The name for messages and the `launch.owner` label: the login name,
    /// or the uid as a number.
    pub fn display(&self) -> String {
        self.name()
            .map_or_else(|| self.uid.to_string(), str::to_string)
    }

    /// Whether `who` (a user name, or `@group`) names this owner: a group
    /// matches primary and supplementary groups.
    pub fn is(&self, who: &str) -> bool {
        match who.strip_prefix('@') {
            Some(group) => group_gid(group).is_some_and(|g| self.groups().contains(&g)),
            None => self.name() == Some(who) || who.parse::<u32>().is_ok_and(|u| u == self.uid),
        }
    }

    /// Supplementary groups: every group but the primary one, sorted.
    pub fn supplementary(&self) -> Vec<u32> {
        let mut groups: Vec<u32> = self
            .groups()
            .iter()
            .copied()
            .filter(|g| *g != self.gid())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }
}

impl Owner {
    /// Whether the owner could read `path`, judged by mode bits as the
    /// kernel would: search on every folder above it, read on the file (ACLs
    /// are not consulted, so a file only an ACL opens is refused). Launch,
    /// acting for the owner, reads a profile's other files only when this holds
    /// (docs/architecture.md, shared hosts). A missing path is judged by the
    /// folders above it, so "does not exist" tells only what the owner could
    /// have seen.
    pub fn may_read(&self, path: &Path) -> bool {
        self.may(path, 0o4)
    }

    /// Whether the owner could list the folder `path`.
    pub fn may_list(&self, path: &Path) -> bool {
        self.may(path, 0o5)
    }

    /// Whether the owner could make a file or folder in the folder `path`.
    pub fn may_create_in(&self, path: &Path) -> bool {
        self.may(path, 0o3)
    }

    fn may(&self, path: &Path, bits: u32) -> bool {
        if self.uid == 0 {
            return true;
        }
        let Ok(real) = std::fs::canonicalize(path) else {
            // The deepest folder that exists must be searchable.
            return path
                .ancestors()
                .skip(1)
                .find_map(|dir| std::fs::canonicalize(dir).ok())
                .is_none_or(|dir| self.may(&dir, 0o1));
        };
        let folders = real.ancestors().skip(1);
        folders
            .map(|dir| (dir, 0o1))
            .chain(std::iter::once((real.as_path(), bits)))
            .all(|(p, bits)| std::fs::metadata(p).is_ok_and(|m| self.granted(&m, bits)))
    }

    /// Whether `meta`'s mode grants the owner all of `bits` (r=4, w=2, x=1):
    /// the user bits when they own it, else the group bits when in its
    /// group, else the others' bits.
    pub fn granted(&self, meta: &std::fs::Metadata, bits: u32) -> bool {
        let shift = if meta.uid() == self.uid {
            6
        } else if self.groups().contains(&meta.gid()) {
            3
        } else {
            0
        };
        self.uid == 0 || (meta.mode() >> shift) & bits == bits
    }
}

impl Owner {
    /// Whether launch acts for this owner as someone else: run by root (from
    /// cron) or by a member of the docker group, it may read and make what
    /// the owner may not, so it does only what the owner could. Root's
    /// profiles, and one's own, are not judged.
    pub fn acted_for(&self) -> bool {
        let runner = rustix::process::geteuid().as_raw();
        self.uid != 0 && self.uid != runner
    }
}

/// Whose files launch trusts: root's, and the admins' of the host's policy.
/// The acting owner of a profile is the least trusted of its writers.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// User names and `@group`s (the policy's `admins`).
    admins: Vec<String>,
}

impl Trust {
    pub fn new(admins: Vec<String>) -> Trust {
        Trust { admins }
    }

    pub fn trusts(&self, owner: &Owner) -> bool {
        owner.uid == 0 || self.admins.iter().any(|a| owner.is(a))
    }
}

/// The login name of `uid`, when it has a passwd entry.
pub fn user_name(uid: u32) -> Option<String> {
    passwd_by_uid(uid).map(|pw| pw.name)
}

struct Passwd {
    name: String,
    gid: u32,
    home: PathBuf,
}

/// Buffer size for the reentrant lookups; grown on ERANGE up to a bound.
const START_BUFFER: usize = 1024;
const MAX_BUFFER: usize = 1 << 20;

fn passwd_by_uid(uid: u32) -> Option<Passwd> {
    // SAFETY: every pointer passed is valid for the call (see `passwd`).
    passwd(&|pwd, buf, size, result| unsafe { libc::getpwuid_r(uid, pwd, buf, size, result) })
}

fn passwd_by_name(name: &str) -> Option<Passwd> {
    let cname = CString::new(name).ok()?;
    // SAFETY: every pointer passed is valid for the call (see `passwd`).
    passwd(&|pwd, buf, size, result| unsafe {
        libc::getpwnam_r(cname.as_ptr(), pwd, buf, size, result)
    })
}

/// The home of the user `name` (for `~name` in a profile).
pub fn home_of(name: &str) -> Option<PathBuf> {
    passwd_by_name(name).map(|pw| pw.home)
}

type PasswdCall<'a> =
    dyn Fn(*mut libc::passwd, *mut libc::c_char, usize, *mut *mut libc::passwd) -> libc::c_int + 'a;

/// One reentrant passwd lookup (`getpwuid_r`, `getpwnam_r`), its buffer
/// grown on ERANGE.
fn passwd(call: &PasswdCall<'_>) -> Option<Passwd> {
    let mut size = START_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: a zeroed passwd is a valid out-parameter.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // `buf` outlives the use of the strings it holds, which are copied
        // before it is dropped.
        let rc = call(&mut pwd, buf.as_mut_ptr(), size, &mut result);
        if rc == libc::ERANGE && size < MAX_BUFFER {
            size *= 2;
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        // SAFETY: on success the fields point into `buf`, NUL-terminated.
        let (name, home) = unsafe { (CStr::from_ptr(pwd.pw_name), CStr::from_ptr(pwd.pw_dir)) };
        return Some(Passwd {
            name: name.to_string_lossy().into_owned(),
            gid: pwd.pw_gid,
            home: PathBuf::from(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(home.to_bytes()),
            ),
        });
    }
}

/// The gid of the group `name`.
pub fn group_gid(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut size = START_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: a zeroed group is a valid out-parameter.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call.
        let rc = unsafe {
            libc::getgrnam_r(
                cname.as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                size,
                &mut result,
            )
        };
        if rc == libc::ERANGE && size < MAX_BUFFER {
            size *= 2;
            continue;
        }
        return (rc == 0 && !result.is_null()).then_some(grp.gr_gid);
    }
}

/// Every group of `user` (primary `gid` included), from the group database.
fn group_list(user: &str, gid: u32) -> Vec<u32> {
    let Ok(cname) = CString::new(user) else {
        return vec![gid];
    };
    let mut count: libc::c_int = 32;
    loop {
        let mut groups = vec![0 as libc::gid_t; usize::try_from(count).unwrap_or(32)];
        let mut n = count;
        // SAFETY: `groups` holds `n` entries; getgrouplist writes at most `n`
        // and sets `n` to the number it needs.
        let rc = unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(usize::try_from(n).unwrap_or(0));
            return groups;
        }
        if n <= count || n > 65_536 {
            return vec![gid];
        }
        count = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_known_by_name_with_a_home() {
        let root = Owner::of_uid(0, 0);
        assert_eq!(root.name(), Some("root"));
        assert!(root.home().is_some());
        assert!(root.is("root") && root.is("0") && !root.is("alice"));
        assert!(root.is("@root"), "root's primary group matches @root");
    }

    #[test]
    fn what_an_owner_may_read_follows_the_mode_bits_of_the_file_and_its_folders() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("a temp dir");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").expect("write");
        let set = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
        };
        let meta = std::fs::metadata(&file).expect("stat");
        let (me, stranger) = (
            Owner::of_uid(meta.uid(), meta.gid()),
            Owner::known(
                meta.uid() + 4242,
                meta.gid() + 4242,
                None,
                None,
                vec![meta.gid() + 4242],
            ),
        );
        set(dir.path(), 0o755);
        set(&file, 0o644);
        assert!(stranger.may_read(&file) && stranger.may_list(dir.path()));
        set(&file, 0o640);
        assert!(!stranger.may_read(&file), "not in the file's group");
        assert!(me.uid == 0 || me.may_read(&file));
        set(&file, 0o644);
        set(dir.path(), 0o700);
        assert!(!stranger.may_read(&file), "the folder cannot be searched");
        assert!(!stranger.may_list(dir.path()));
    }

    #[test]
    fn a_uid_without_a_passwd_entry_is_known_by_number() {
        let nobody = Owner::of_uid(424_242, 4242);
        assert_eq!(nobody.display(), "424242");
        assert_eq!((nobody.home(), nobody.gid()), (None, 4242));
        assert!(nobody.supplementary().is_empty());
    }
}
