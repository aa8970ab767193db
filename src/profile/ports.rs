//! Published ports in docker's syntax: `[ip:]host:container[/tcp|udp|sctp]`.

use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// One container port published on the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortBinding {
    pub host_ip: Option<IpAddr>,
    /// `None`: the engine picks a free port.
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: Protocol,
}

/// Parses one `ports` entry; a range gives one binding per port.
pub fn parse(spec: &str) -> Result<Vec<PortBinding>, String> {
    let (addr, protocol) = match spec.rsplit_once('/') {
        Some((addr, proto)) => (
            addr,
            match proto {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                _ => {
                    return Err(format!(
                        "unknown protocol `{proto}`: expected tcp, udp or sctp"
                    ));
                }
            },
        ),
        None => (spec, Protocol::Tcp),
    };
    // An IPv6 address is written in brackets: `[::1]:8080:80`.
    let (ip, rest) = match addr.strip_prefix('[') {
        Some(bracketed) => {
            let (ip, rest) = bracketed.split_once("]:").ok_or_else(|| {
                format!("`{addr}`: an IPv6 address is written `[addr]:host:container`")
            })?;
            (Some(ip), rest)
        }
        None => match addr.matches(':').count() {
            0 | 1 => (None, addr),
            2 => addr
                .split_once(':')
                .map(|(ip, rest)| (Some(ip), rest))
                .unwrap_or((None, addr)),
            _ => {
                return Err(format!(
                    "`{addr}` has too many `:`; expected [ip:]host:container"
                ));
            }
        },
    };
    let host_ip = match ip {
        Some(ip) => Some(
            ip.parse::<IpAddr>()
                .map_err(|_| format!("`{ip}` is not an IP address"))?,
        ),
        None => None,
    };
    let (host, container) = match rest.split_once(':') {
        Some((host, container)) => (Some(host), container),
        None => (None, rest),
    };
    let container = range(container)?;
    let host = match host {
        Some("") | None => None,
        Some(h) => Some(range(h)?),
    };
    if let Some(host) = &host
        && host.clone().count() != container.clone().count()
    {
        return Err(format!(
            "host range `{}` and container range `{}` differ in length",
            show(host),
            show(&container)
        ));
    }
    Ok(container
        .enumerate()
        .map(|(i, container_port)| PortBinding {
            host_ip,
            host_port: host.as_ref().map(|h| h.start() + i as u16),
            container_port,
            protocol,
        })
        .collect())
}

fn show(r: &RangeInclusive<u16>) -> String {
    if r.start() == r.end() {
        r.start().to_string()
    } else {
        format!("{}-{}", r.start(), r.end())
    }
}

fn range(text: &str) -> Result<RangeInclusive<u16>, String> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let (a, b) = (number(a)?, number(b)?);
    if a > b {
        return Err(format!("port range `{text}` runs backwards"));
    }
    Ok(a..=b)
}

fn number(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{text}` is not a port number"));
    }
    match text.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err(format!("port `{text}` is out of range (1–65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortBinding {
        let mut all = parse(spec).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn docker_forms() {
        let p = one("18307:9096");
        assert_eq!(
            (p.host_port, p.container_port, p.protocol),
            (Some(18307), 9096, Protocol::Tcp)
        );
        let p = one("127.0.0.1:8080:80/udp");
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p.protocol, Protocol::Udp);
        assert_eq!(one("[::1]:8080:80").host_ip, Some("::1".parse().unwrap()));
        assert_eq!(one("80").host_port, None);
        assert_eq!(one("127.0.0.1::80").host_port, None);
        let r = parse("8000-8002:9000-9002").unwrap();
        assert_eq!(
            r.iter()
                .map(|p| (p.host_port.unwrap(), p.container_port))
                .collect::<Vec<_>>(),
            vec![(8000, 9000), (8001, 9001), (8002, 9002)]
        );
    }

    #[test]
    fn errors_name_the_token() {
        assert!(parse("70000:80").unwrap_err().contains("`70000`"));
        assert!(
            parse("8000-8002:9000")
                .unwrap_err()
                .contains("differ in length")
        );
        assert!(parse("80/icmp").unwrap_err().contains("`icmp`"));
        assert!(
            parse("300.1.1.1:80:80")
                .unwrap_err()
                .contains("`300.1.1.1`")
        );
        assert!(parse("abc:80").unwrap_err().contains("`abc`"));
    }
}
