//! What the registry may fetch. A service names its own health and manifest
//! URLs, so a hostile one could point Roster anywhere; this policy keeps
//! Roster from becoming a port scanner or a proxy into the network:
//! - only `http` and `https`, and no user name or password in a URL;
//! - never an address in the forbidden ranges (unspecified, link-local, which
//!   covers cloud metadata at 169.254.169.254, multicast, broadcast), nor one
//!   an operator denies with `--fetch-deny`; `--fetch-allow` widens;
//! - checked on the literal address of a URL at registration, and on every
//!   resolved address when Roster connects, so DNS cannot rebind a name to a
//!   forbidden address later.
//!
//! Loopback and private ranges stay allowed by default: that is where a
//! system's services live (Docker networks are 172.16.0.0/12).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

/// Ranges no fetch may reach unless `--fetch-allow` names them.
pub fn never_allowed() -> Vec<IpNet> {
    [
        "0.0.0.0/8",          // "this network", including 0.0.0.0
        "169.254.0.0/16",     // link-local, cloud metadata
        "224.0.0.0/4",        // multicast
        "255.255.255.255/32", // limited broadcast
        "::/128",             // unspecified
        "fe80::/10",          // link-local
        "ff00::/8",           // multicast
    ]
    .iter()
    .filter_map(|c| IpNet::from_str(c).ok())
    .collect()
}

/// The addresses fetches may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Always allowed, even inside a forbidden or denied range.
    pub allow: Vec<IpNet>,
    /// Denied on top of the never-allowed ranges.
    pub deny: Vec<IpNet>,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self::new(Vec::new(), Vec::new())
    }
}

/// A URL or address the policy refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are judged as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

impl FetchPolicy {
    pub fn new(allow: Vec<IpNet>, deny: Vec<IpNet>) -> Self {
        Self { allow, deny }
    }

    /// May a fetch connect to `ip`?
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        !never_allowed().iter().chain(self.deny.iter()).any(|n| n.contains(&ip))
    }

    /// Check a URL as written: scheme, credentials, and a literal address.
    /// (A host name is checked when it is resolved, at connect time.)
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal("must be an http(s) URL".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal("must not carry a user name or password".into()));
        }
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(Refusal("must name a host".into())),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(Refusal(format!("the address {ip} is not allowed")))
        }
    }

    /// The resolver reqwest connects through: names resolve as usual, and
    /// addresses the policy refuses are dropped; none left is an error.
    pub fn resolver(self: &Arc<Self>) -> Arc<PolicyResolver> {
        Arc::new(PolicyResolver { policy: self.clone() })
    }
}

/// A DNS resolver that applies the [`FetchPolicy`] to every answer.
#[derive(Debug)]
pub struct PolicyResolver {
    policy: Arc<FetchPolicy>,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| policy.permits(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Refusal(format!("{host} resolves to no allowed address")))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Parse `--fetch-allow` / `--fetch-deny` values: a CIDR, or one address.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    IpNet::from_str(s.trim())
        .or_else(|_| IpAddr::from_str(s.trim()).map(IpNet::from))
        .map_err(|_| format!("'{s}' is not a CIDR range such as 10.0.0.0/8 or an address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn url_refused(p: &FetchPolicy, u: &str) -> bool {
        p.check_url(&Url::parse(u).unwrap()).is_err()
    }

    #[test]
    fn forbidden_ranges_are_refused_and_private_ones_allowed() {
        let p = FetchPolicy::default();
        for bad in [
            "0.0.0.0",
            "0.1.2.3",
            "169.254.169.254",
            "169.254.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "::",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
        ] {
            assert!(!p.permits(ip(bad)), "{bad} must be refused");
        }
        for good in [
            "127.0.0.1",
            "10.1.2.3",
            "172.17.0.2",
            "192.168.1.10",
            "8.8.8.8",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(p.permits(ip(good)), "{good} must be allowed");
        }
        assert!(p.permits(IpAddr::V4(Ipv4Addr::new(169, 253, 255, 255))));
        assert!(!p.permits(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))));
        assert!(!p.permits(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
    }

    #[test]
    fn every_spelling_of_an_ipv4_address_is_judged_by_its_value() {
        let p = FetchPolicy::default();
        // Decimal, hex and octal spellings of 169.254.169.254, as URL parsers read them.
        for u in [
            "http://2852039166/",
            "http://0xa9fea9fe/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://0251.0376.0251.0376/",
            "http://169.254.43518/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[fe80::1]/",
            "http://0/",
            "http://[::]/",
        ] {
            assert!(url_refused(&p, u), "{u} must be refused");
        }
        // The same spellings of loopback are loopback, which is allowed.
        for u in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
        ] {
            assert!(!url_refused(&p, u), "{u} is loopback");
            assert_eq!(Url::parse(u).unwrap().host(), Some(Host::Ipv4(Ipv4Addr::LOCALHOST)));
        }
    }

    #[test]
    fn schemes_and_credentials() {
        let p = FetchPolicy::default();
        assert!(url_refused(&p, "ftp://svc.internal/"));
        assert!(url_refused(&p, "file:///etc/passwd"));
        assert!(url_refused(&p, "http://user:pw@svc.internal/"));
        assert!(url_refused(&p, "http://user@svc.internal/"));
        assert!(!url_refused(&p, "https://svc.internal:8443/health"));
    }

    #[test]
    fn operators_narrow_and_widen() {
        let p = FetchPolicy::new(
            vec![parse_net("169.254.10.0/24").unwrap()],
            vec![parse_net("10.0.0.0/8").unwrap(), parse_net("192.168.1.7").unwrap()],
        );
        assert!(!p.permits(ip("10.2.3.4")));
        assert!(!p.permits(ip("::ffff:10.2.3.4")));
        assert!(!p.permits(ip("192.168.1.7")));
        assert!(p.permits(ip("192.168.1.8")));
        assert!(p.permits(ip("169.254.10.5")), "allowed explicitly");
        assert!(!p.permits(ip("169.254.169.254")));
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("nonsense").is_err());
    }
}
