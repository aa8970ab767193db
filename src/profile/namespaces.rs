//! `network`, `ipc` and `pid`: which namespaces the container gets or
//! shares. Typed here so the policy (what is shared with whom) and resolve
//! (what Docker is sent) match on them exhaustively.

use std::fmt;

use super::diagnostic::unknown;
use super::names::is_docker_name;

/// What a namespace setting shares, whatever the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared<'a> {
    /// The container's own (or none at all).
    Nothing,
    /// The host's.
    Host,
    /// Another container's, by name.
    Container(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    Bridge,
    /// Docker's word for its default network (bridge).
    Default,
    Host,
    None,
    Container(String),
    /// A user-defined network.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ipc {
    Private,
    Shareable,
    Host,
    None,
    Container(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pid {
    /// The default: Docker is sent nothing.
    Private,
    Host,
    Container(String),
}

/// `container:NAME`, when `value` says that.
fn container(value: &str) -> Option<Result<String, String>> {
    let name = value.strip_prefix("container:")?;
    Some(if is_docker_name(name) {
        Ok(name.to_string())
    } else {
        Err(format!("`{name}` in `{value}` is not a container name"))
    })
}

impl Network {
    pub fn parse(value: &str) -> Result<Network, String> {
        if let Some(name) = container(value) {
            return name.map(Network::Container);
        }
        Ok(match value {
            "bridge" => Network::Bridge,
            "default" => Network::Default,
            "host" => Network::Host,
            "none" => Network::None,
            name if is_network_name(name) => Network::Named(name.to_string()),
            _ => {
                return Err(format!(
                    "network `{value}` is not `bridge`, `host`, `none`, `container:NAME` or a network name"
                ));
            }
        })
    }

    pub fn shared(&self) -> Shared<'_> {
        match self {
            Network::Host => Shared::Host,
            Network::Container(name) => Shared::Container(name),
            Network::Bridge | Network::Default | Network::None | Network::Named(_) => {
                Shared::Nothing
            }
        }
    }
}

impl Ipc {
    pub fn parse(value: &str) -> Result<Ipc, String> {
        if let Some(name) = container(value) {
            return name.map(Ipc::Container);
        }
        Ok(match value {
            "private" => Ipc::Private,
            "shareable" => Ipc::Shareable,
            "host" => Ipc::Host,
            "none" => Ipc::None,
            _ => {
                return Err(unknown(
                    "ipc mode",
                    value,
                    &["host", "private", "shareable", "none", "container:NAME"],
                ));
            }
        })
    }

    pub fn shared(&self) -> Shared<'_> {
        match self {
            Ipc::Host => Shared::Host,
            Ipc::Container(name) => Shared::Container(name),
            Ipc::Private | Ipc::Shareable | Ipc::None => Shared::Nothing,
        }
    }
}

impl Pid {
    pub fn parse(value: &str) -> Result<Pid, String> {
        if let Some(name) = container(value) {
            return name.map(Pid::Container);
        }
        Ok(match value {
            "private" => Pid::Private,
            "host" => Pid::Host,
            _ => {
                return Err(unknown(
                    "pid mode",
                    value,
                    &["host", "private", "container:NAME"],
                ));
            }
        })
    }

    pub fn shared(&self) -> Shared<'_> {
        match self {
            Pid::Host => Shared::Host,
            Pid::Container(name) => Shared::Container(name),
            Pid::Private => Shared::Nothing,
        }
    }

    /// What Docker is sent: nothing for the default.
    pub fn mode(&self) -> Option<String> {
        match self {
            Pid::Private => None,
            other => Some(other.to_string()),
        }
    }
}

/// Docker's network names: a letter or digit, then letters, digits, `_.-`.
fn is_network_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl fmt::Display for Network {
    /// As Docker's `NetworkMode` takes it (and the profile wrote it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Network::Bridge => f.write_str("bridge"),
            Network::Default => f.write_str("default"),
            Network::Host => f.write_str("host"),
            Network::None => f.write_str("none"),
            Network::Container(n) => write!(f, "container:{n}"),
            Network::Named(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for Ipc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ipc::Private => f.write_str("private"),
            Ipc::Shareable => f.write_str("shareable"),
            Ipc::Host => f.write_str("host"),
            Ipc::None => f.write_str("none"),
            Ipc::Container(n) => write!(f, "container:{n}"),
        }
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pid::Private => f.write_str("private"),
            Pid::Host => f.write_str("host"),
            Pid::Container(n) => write!(f, "container:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_reads_and_prints_as_written_and_says_what_it_shares() {
        for text in [
            "bridge",
            "default",
            "host",
            "none",
            "container:db",
            "lab-net",
        ] {
            let n = Network::parse(text).expect(text);
            assert_eq!(n.to_string(), text);
        }
        assert_eq!(
            Network::parse("container:db").map(|n| n.shared() == Shared::Container("db")),
            Ok(true)
        );
        assert!(Network::parse("-x").is_err() && Network::parse("container:-x").is_err());
        assert_eq!(
            Ipc::parse("host").map(|i| i.shared() == Shared::Host),
            Ok(true)
        );
        assert!(Ipc::parse("hots").unwrap_err().contains("did you mean"));
        assert_eq!(Pid::parse("private").map(|p| p.mode()), Ok(None));
        assert_eq!(
            Pid::parse("container:x1").map(|p| p.mode()),
            Ok(Some("container:x1".into()))
        );
        assert!(Pid::parse("shareable").is_err());
    }
}
