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

/// The owner of a profile file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    pub uid: u32,
    /// The passwd entry's primary group, else the file's group.
    pub gid: u32,
    /// The login name; `None` when the uid has no passwd entry.
    pub name: Option<String>,
    pub home: Option<PathBuf>,
    /// Every group the owner is in (primary first), as numbers.
    pub groups: Vec<u32>,
}

impl Owner {
    /// The owner of the file at `path` (through symlinks, as it is read).
    pub fn of_file(path: &Path) -> std::io::Result<Owner> {
        let meta = std::fs::metadata(path)?;
        Ok(Owner::of_uid(meta.uid(), meta.gid()))
    }

    /// The user `uid`; `gid` is the group used when it has no passwd entry.
    pub fn of_uid(uid: u32, gid: u32) -> Owner {
        match passwd_by_uid(uid) {
            Some(pw) => {
                let groups = group_list(&pw.name, pw.gid);
                Owner {
                    uid,
                    gid: pw.gid,
                    name: Some(pw.name),
                    home: Some(pw.home),
                    groups,
                }
            }
            None => Owner {
                uid,
                gid,
                name: None,
                home: None,
                groups: vec![gid],
            },
        }
    }

    /// The name for messages and the `launch.owner` label: the login name,
    /// or the uid as a number.
    pub fn display(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.uid.to_string())
    }

    /// Whether `who` (a user name, or `@group`) names this owner: a group
    /// matches primary and supplementary groups.
    pub fn is(&self, who: &str) -> bool {
        match who.strip_prefix('@') {
            Some(group) => group_gid(group).is_some_and(|g| self.groups.contains(&g)),
            None => {
                self.name.as_deref() == Some(who) || who.parse::<u32>().is_ok_and(|u| u == self.uid)
            }
        }
    }

    /// Supplementary groups: every group but the primary one, sorted.
    pub fn supplementary(&self) -> Vec<u32> {
        let mut groups: Vec<u32> = self
            .groups
            .iter()
            .copied()
            .filter(|g| *g != self.gid)
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
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
    let mut size = START_BUFFER;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: a zeroed passwd is a valid out-parameter.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; `buf` outlives the
        // use of the strings it holds, which are copied before it is dropped.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), size, &mut result) };
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
        assert_eq!(root.name.as_deref(), Some("root"));
        assert!(root.home.is_some());
        assert!(root.is("root") && root.is("0") && !root.is("alice"));
        assert!(root.is("@root"), "root's primary group matches @root");
    }

    #[test]
    fn a_uid_without_a_passwd_entry_is_known_by_number() {
        let nobody = Owner::of_uid(424_242, 4242);
        assert_eq!(nobody.display(), "424242");
        assert_eq!((nobody.home.as_deref(), nobody.gid), (None, 4242));
        assert!(nobody.supplementary().is_empty());
    }
}
