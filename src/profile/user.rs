//! `user`: who the container's processes run as. Typed here so that the
//! policy and resolve decide by `match`, not by re-reading the string.

use std::fmt;

/// A user or group as written: a number, or a name the image's own
/// passwd and group files map (to any number, 0 included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    Num(u32),
    Name(String),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Num(n) => write!(f, "{n}"),
            Id::Name(s) => f.write_str(s),
        }
    }
}

impl Id {
    fn parse(text: &str) -> Id {
        match text.parse::<u32>() {
            Ok(n) => Id::Num(n),
            Err(_) => Id::Name(text.to_string()),
        }
    }

    /// Whether this is root's number or name (uid 0, `root`).
    pub fn is_root(&self) -> bool {
        matches!(self, Id::Num(0)) || matches!(self, Id::Name(n) if n == "root")
    }
}

/// The profile's `user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum User {
    /// `user = "owner"`: the profile owner's uid and gid, with their groups.
    Owner,
    /// `user = "UID[:GID]"` or names, as Docker's `--user` takes them.
    Given { user: Id, group: Option<Id> },
}

impl User {
    /// Reads `user` as Docker's `--user` does: `user[:group]`, each a number
    /// or a name; `owner` is launch's own word.
    pub fn parse(text: &str) -> Result<User, String> {
        if text == "owner" {
            return Ok(User::Owner);
        }
        let (user, group) = match text.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (text, None),
        };
        let bad = |part: &str| {
            part.is_empty() || part.contains(|c: char| c.is_whitespace() || c == ':' || c == '\0')
        };
        if bad(user) || group.is_some_and(bad) {
            return Err(format!(
                "user `{text}` is not `owner`, `UID[:GID]` or `NAME[:GROUP]`"
            ));
        }
        Ok(User::Given {
            user: Id::parse(user),
            group: group.map(Id::parse),
        })
    }

    /// A bare uid: a number without a group, which Docker runs as gid 0
    /// when the image's passwd has no entry for it.
    pub fn bare_uid(&self) -> Option<u32> {
        match self {
            User::Given {
                user: Id::Num(uid),
                group: None,
            } => Some(*uid),
            _ => None,
        }
    }
}

impl fmt::Display for User {
    /// As written in the profile.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            User::Owner => f.write_str("owner"),
            User::Given { user, group: None } => write!(f, "{user}"),
            User::Given {
                user,
                group: Some(g),
            } => write!(f, "{user}:{g}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_read_as_docker_reads_them_and_print_as_written() {
        for text in [
            "owner",
            "1001",
            "1001:100",
            "alice",
            "alice:staff",
            "0:0",
            "1001:wheel",
        ] {
            assert_eq!(User::parse(text).map(|u| u.to_string()), Ok(text.into()));
        }
        assert_eq!(
            User::parse("1001").ok().and_then(|u| u.bare_uid()),
            Some(1001)
        );
        assert_eq!(User::parse("1001:5").ok().and_then(|u| u.bare_uid()), None);
        assert_eq!(User::parse("alice").ok().and_then(|u| u.bare_uid()), None);
        for bad in ["", ":1", "1:", "a b", "1:2:3"] {
            assert!(User::parse(bad).is_err(), "{bad:?}");
        }
    }
}
