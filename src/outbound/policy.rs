//! What the registry may fetch. A service names its own health and manifest
//! URLs, so a hostile one could point Roster anywhere; this policy keeps
//! Roster from becoming a port scanner or a proxy into the network:
//! - only `http` and `https`, and no user name or password in a URL;
//! - never an address in the forbidden ranges ([`never_allowed`]: unspecified,
//!   link-local, which covers cloud metadata at 169.254.169.254, the other
//!   known metadata addresses, multicast, reserved, and the IPv6 transition
//!   ranges that cannot be judged), nor one an operator denies with
//!   `--fetch-deny`; `--fetch-allow` widens;
//! - an IPv6 address that carries an IPv4 address (IPv4-mapped and
//!   -compatible, SIIT, NAT64 under `64:ff9b::/96` or a prefix declared with
//!   `--fetch-nat64`, 6to4) is judged as that IPv4 address too
//!   ([`embedded_v4`]), since that is where the packets end up;
//! - checked on the literal address of a URL at registration, and on every
//!   resolved address when Roster connects, so DNS cannot rebind a name to a
//!   forbidden address later.
//!
//! Loopback and private ranges stay allowed by default: that is where a
//! system's services live (Docker networks are 172.16.0.0/12).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use ipnet::{IpNet, Ipv6Net};
use url::{Host, Url};

/// Ranges no fetch may reach unless `--fetch-allow` names them.
pub fn never_allowed() -> &'static [IpNet] {
    static NETS: std::sync::OnceLock<Vec<IpNet>> = std::sync::OnceLock::new();
    NETS.get_or_init(|| {
        [
            "0.0.0.0/8",          // "this network", including 0.0.0.0 (RFC 791)
            "169.254.0.0/16",     // link-local, cloud metadata (RFC 3927)
            "100.100.100.200/32", // Alibaba Cloud metadata, inside shared 100.64.0.0/10
            "168.63.129.16/32",   // Azure platform endpoint (WireServer)
            "192.0.0.192/32",     // Oracle Cloud metadata
            "192.88.99.0/24",     // 6to4 relay anycast (RFC 3068, deprecated by RFC 7526)
            "224.0.0.0/4",        // multicast
            "240.0.0.0/4",        // reserved (RFC 1112 §4), including 255.255.255.255
            "::/128",             // unspecified
            "100::/64",           // discard-only (RFC 6666)
            "2001::/32",          // Teredo (RFC 4380): its IPv4 target is obfuscated
            "64:ff9b:1::/48",     // local-use NAT64 (RFC 8215): the mapping is the network's own
            "fd00:ec2::254/128",  // AWS instance metadata over IPv6, inside fc00::/7
            "fec0::/10",          // site-local, deprecated (RFC 3879)
            "fe80::/10",          // link-local
            "ff00::/8",           // multicast
        ]
        .iter()
        .filter_map(|c| IpNet::from_str(c).ok())
        .collect()
    })
}

/// The well-known NAT64 prefix (RFC 6052 §2.1).
fn well_known_nat64() -> Ipv6Net {
    Ipv6Net::new(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96).unwrap_or_default()
}

/// The IPv4 address an IPv6 address carries in the forms that deliver to it:
/// - IPv4-mapped `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2);
/// - IPv4-compatible `::a.b.c.d` (RFC 4291 §2.5.5.1, deprecated but still
///   routed by some stacks), except `::` and `::1`;
/// - SIIT IPv4-translated `::ffff:0:a.b.c.d` (RFC 6145 §2.1);
/// - NAT64 `64:ff9b::/96` or one of `nat64` (RFC 6052 §2.2, every prefix
///   length it defines);
/// - 6to4 `2002:aabb:ccdd::/48` (RFC 3056 §2).
pub fn embedded_v4(v6: Ipv6Addr, nat64: &[Ipv6Net]) -> Option<Ipv4Addr> {
    let b = v6.octets();
    let v4 = |o: [u8; 4]| Some(Ipv4Addr::from(o));
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(mapped);
    }
    let seg = v6.segments();
    if seg[..6] == [0; 6] && v6 != Ipv6Addr::UNSPECIFIED && v6 != Ipv6Addr::LOCALHOST {
        return v4([b[12], b[13], b[14], b[15]]);
    }
    if seg[..4] == [0; 4] && seg[4] == 0xffff && seg[5] == 0 {
        return v4([b[12], b[13], b[14], b[15]]);
    }
    if seg[0] == 0x2002 {
        return v4([b[2], b[3], b[4], b[5]]);
    }
    let prefixes = std::iter::once(well_known_nat64()).chain(nat64.iter().copied());
    for prefix in prefixes {
        if !prefix.contains(&v6) {
            continue;
        }
        // RFC 6052 §2.2: bits 64..72 (octet 8) are the reserved "u" octet.
        return match prefix.prefix_len() {
            32 => v4([b[4], b[5], b[6], b[7]]),
            40 => v4([b[5], b[6], b[7], b[9]]),
            48 => v4([b[6], b[7], b[9], b[10]]),
            56 => v4([b[7], b[9], b[10], b[11]]),
            64 => v4([b[9], b[10], b[11], b[12]]),
            _ => v4([b[12], b[13], b[14], b[15]]),
        };
    }
    None
}

/// The addresses fetches may reach.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchPolicy {
    /// Always allowed, even inside a forbidden or denied range.
    pub allow: Vec<IpNet>,
    /// Denied on top of the never-allowed ranges.
    pub deny: Vec<IpNet>,
    /// NAT64 prefixes of this network besides `64:ff9b::/96` (`--fetch-nat64`):
    /// an address under one is judged as the IPv4 address it carries.
    pub nat64: Vec<Ipv6Net>,
    /// Names answered from this table instead of DNS, like `/etc/hosts`
    /// (tests use it to answer with addresses no real resolver would give).
    pub hosts: BTreeMap<String, Vec<IpAddr>>,
}

/// A URL or address the policy refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl FetchPolicy {
    pub fn new(allow: Vec<IpNet>, deny: Vec<IpNet>) -> Self {
        Self {
            allow,
            deny,
            ..Self::default()
        }
    }

    /// May a fetch connect to `ip`? An address `--fetch-allow` names is
    /// allowed as written; otherwise neither it nor the IPv4 address it
    /// carries may be in a refused range.
    pub fn permits(&self, ip: IpAddr) -> bool {
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        if never_allowed().iter().chain(self.deny.iter()).any(|n| n.contains(&ip)) {
            return false;
        }
        match ip {
            IpAddr::V6(v6) => match embedded_v4(v6, &self.nat64) {
                Some(v4) => self.permits(IpAddr::V4(v4)),
                None => true,
            },
            IpAddr::V4(_) => true,
        }
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
            let found: Vec<SocketAddr> = match policy.hosts.get(&host) {
                Some(table) => table.iter().map(|ip| SocketAddr::new(*ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
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

/// Parse a `--fetch-nat64` prefix: IPv6, of a length RFC 6052 §2.2 defines.
pub fn parse_nat64(s: &str) -> Result<Ipv6Net, String> {
    let net =
        Ipv6Net::from_str(s.trim()).map_err(|_| format!("'{s}' is not an IPv6 prefix such as 2001:db8:64::/96"))?;
    if [32, 40, 48, 56, 64, 96].contains(&net.prefix_len()) {
        Ok(net.trunc())
    } else {
        Err(format!(
            "'{s}': a NAT64 prefix is /32, /40, /48, /56, /64 or /96 (RFC 6052)"
        ))
    }
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

    /// The examples of RFC 6052 §2.4: 192.0.2.33 under each prefix length.
    #[test]
    fn nat64_addresses_carry_their_ipv4_address_at_every_rfc_6052_length() {
        let target = Ipv4Addr::new(192, 0, 2, 33);
        for (prefix, addr) in [
            ("2001:db8::/32", "2001:db8:c000:221::"),
            ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
            ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
            ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
            ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
            ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
        ] {
            let nat64 = [parse_nat64(prefix).unwrap()];
            let v6: Ipv6Addr = addr.parse().unwrap();
            assert_eq!(embedded_v4(v6, &nat64), Some(target), "{addr} under {prefix}");
            assert_eq!(embedded_v4(v6, &[]), None, "{addr} is not NAT64 unless declared");
        }
        assert_eq!(embedded_v4("64:ff9b::c000:221".parse().unwrap(), &[]), Some(target));
        assert_eq!(embedded_v4("::1".parse().unwrap(), &[]), None);
        assert_eq!(embedded_v4("::".parse().unwrap(), &[]), None);
        assert!(parse_nat64("2001:db8::/33").is_err());
        assert!(parse_nat64("10.0.0.0/8").is_err());
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
