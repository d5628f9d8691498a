//! The SSRF guard: an endpoint may only be reached at publicly routable addresses (or in the
//! networks configuration allows). The host is resolved by the guard and the connection goes
//! to an address it checked, so a DNS answer that changes between check and connect (DNS
//! rebinding) reaches nothing it refused. Literal addresses are checked too; redirects are
//! never followed (the dispatcher's client has none).

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

use crate::GuardSettings;

/// Resolves a host name; the system's resolver in production, a table in tests.
pub trait Resolver: Send + Sync + 'static {
    fn resolve(&self, host: String, port: u16) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;
}

pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: String, port: u16) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the URL must be absolute, http or https, with a host and no credentials")]
    Malformed,
    #[error("the URL must use https")]
    NotHttps,
    #[error("{0} is not a publicly routable address")]
    NotPublic(IpAddr),
    #[error("the host did not resolve: {0}")]
    Unresolvable(String),
}

pub struct Guard {
    allowed: Vec<IpNet>,
    require_https: bool,
    resolver: Arc<dyn Resolver>,
}

impl Guard {
    pub fn new(settings: &GuardSettings, resolver: Arc<dyn Resolver>) -> Self {
        Self {
            allowed: settings.allowed_networks.clone(),
            require_https: settings.require_https,
            resolver,
        }
    }

    fn allow_listed(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// May a request go to `ip`? Plain http goes only to allow-listed networks when https is
    /// required.
    pub fn admits(&self, ip: IpAddr, https: bool) -> bool {
        let ip = canonical(ip);
        if self.require_https && !https {
            return self.allow_listed(ip);
        }
        self.allow_listed(ip) || is_public(ip)
    }

    /// What can be told from the URL alone: its shape, and a literal address.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(Refusal::Malformed),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Malformed);
        }
        let literal = match url.host() {
            None => return Err(Refusal::Malformed),
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => None,
        };
        match literal {
            Some(ip) if !self.admits(ip, https) => Err(Refusal::NotPublic(ip)),
            Some(_) => Ok(()),
            None if self.require_https && !https && self.allowed.is_empty() => Err(Refusal::NotHttps),
            None => Ok(()),
        }
    }

    /// The addresses a request to `url` may connect to: every one the host resolves to must
    /// be admitted, or none is (a name that resolves partly inside the network is refused).
    pub async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, Refusal> {
        self.check_url(url)?;
        let https = url.scheme() == "https";
        let port = url.port_or_known_default().ok_or(Refusal::Malformed)?;
        let host = match url.host() {
            Some(Host::Domain(name)) => name.to_owned(),
            Some(Host::Ipv4(ip)) => return Ok(vec![SocketAddr::new(IpAddr::V4(ip), port)]),
            Some(Host::Ipv6(ip)) => return Ok(vec![SocketAddr::new(IpAddr::V6(ip), port)]),
            None => return Err(Refusal::Malformed),
        };
        let addrs = self
            .resolver
            .resolve(host, port)
            .await
            .map_err(|e| Refusal::Unresolvable(e.to_string()))?;
        if addrs.is_empty() {
            return Err(Refusal::Unresolvable("no address".into()));
        }
        match addrs.iter().find(|a| !self.admits(a.ip(), https)) {
            Some(refused) => Err(Refusal::NotPublic(refused.ip())),
            None => Ok(addrs),
        }
    }
}

/// An IPv4 address written in an IPv6 form (mapped, compatible, NAT64, 6to4) is judged as the
/// IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| IpAddr::V4(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8));
    match s {
        // IPv4-compatible (deprecated) ::a.b.c.d, but not :: and ::1 themselves.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => embedded(hi, lo),
        // NAT64 64:ff9b::a.b.c.d
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
        // 6to4 2002:aabb:ccdd::
        [0x2002, hi, lo, ..] => embedded(hi, lo),
        _ => ip,
    }
}

fn in_any(ip: IpAddr, nets: &[&str]) -> bool {
    nets.iter()
        .filter_map(|n| n.parse::<IpNet>().ok())
        .any(|net| net.contains(&ip))
}

/// Only globally routable unicast addresses (IANA special-purpose registries).
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    const SPECIAL: [&str; 16] = [
        "0.0.0.0/8",       // this network, unspecified
        "10.0.0.0/8",      // private
        "100.64.0.0/10",   // carrier-grade NAT
        "127.0.0.0/8",     // loopback
        "169.254.0.0/16",  // link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",   // private
        "192.0.0.0/24",    // IETF protocol assignments
        "192.0.2.0/24",    // documentation
        "192.88.99.0/24",  // 6to4 relay anycast
        "192.168.0.0/16",  // private
        "198.18.0.0/15",   // benchmarking
        "198.51.100.0/24", // documentation
        "203.0.113.0/24",  // documentation
        "224.0.0.0/4",     // multicast
        "240.0.0.0/4",     // reserved
        "255.255.255.255/32",
    ];
    !in_any(IpAddr::V4(ip), &SPECIAL)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // Global unicast is 2000::/3; inside it, these are not reachable or not ours to reach.
    const SPECIAL: [&str; 5] = [
        "2001::/23",     // IETF protocol assignments (Teredo, benchmarking, ORCHID…)
        "2001:db8::/32", // documentation
        "2002::/16",     // 6to4 whose IPv4 part was not public (public ones were judged as IPv4)
        "3fff::/20",     // documentation
        "5f00::/16",     // segment routing
    ];
    let ip = IpAddr::V6(ip);
    in_any(ip, &["2000::/3"]) && !in_any(ip, &SPECIAL)
}

/// The guard as reqwest's resolver: every connection the dispatcher opens goes to an address
/// the guard admitted, whatever the name resolves to by then.
pub struct Guarded {
    pub guard: Arc<Guard>,
    /// The plain-http client, which may reach only allow-listed networks when https is required.
    pub https: bool,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (guard, https) = (self.guard.clone(), self.https);
        Box::pin(async move {
            let addrs = guard.resolver.resolve(name.as_str().to_owned(), 0).await?;
            let admitted: Vec<SocketAddr> = addrs.into_iter().filter(|a| guard.admits(a.ip(), https)).collect();
            if admitted.is_empty() {
                return Err(Box::new(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "blocked by the SSRF guard",
                )) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(admitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Table(HashMap<&'static str, Vec<IpAddr>>);

    impl Resolver for Table {
        fn resolve(
            &self,
            host: String,
            port: u16,
        ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>> {
            let found = self.0.get(host.as_str()).cloned();
            Box::pin(async move {
                found
                    .map(|ips| ips.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"))
            })
        }
    }

    fn guard(allowed: &[&str], require_https: bool) -> Guard {
        let table = Table(HashMap::from([
            ("public.example", vec!["93.184.215.14".parse().unwrap()]),
            ("metadata.example", vec!["169.254.169.254".parse().unwrap()]),
            (
                "mixed.example",
                vec!["93.184.215.14".parse().unwrap(), "10.1.2.3".parse().unwrap()],
            ),
            ("mapped.example", vec!["::ffff:127.0.0.1".parse().unwrap()]),
            ("v6.example", vec!["2606:2800:21f:cb07::1".parse().unwrap()]),
            ("local.example", vec!["127.0.0.1".parse().unwrap()]),
        ]));
        let settings = GuardSettings {
            allowed_networks: allowed.iter().map(|n| n.parse().unwrap()).collect(),
            require_https,
        };
        Guard::new(&settings, Arc::new(table))
    }

    async fn verdict(guard: &Guard, url: &str) -> Result<(), Refusal> {
        guard.resolve(&Url::parse(url).unwrap()).await.map(drop)
    }

    #[test]
    fn special_purpose_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "::127.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} counted as public");
        }
        for ip in ["93.184.215.14", "8.8.8.8", "2606:2800:21f:cb07::1", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip} counted as not public");
        }
    }

    #[tokio::test]
    async fn hosts_are_judged_by_every_address_they_resolve_to() {
        let g = guard(&[], true);
        assert_eq!(verdict(&g, "https://public.example/hook").await, Ok(()));
        assert_eq!(verdict(&g, "https://v6.example/hook").await, Ok(()));
        for (url, ip) in [
            ("https://metadata.example/", "169.254.169.254"),
            ("https://mixed.example/", "10.1.2.3"),
            ("https://mapped.example/", "::ffff:127.0.0.1"),
            ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("https://[::ffff:7f00:1]/", "::ffff:127.0.0.1"),
            ("https://0x7f000001/", "127.0.0.1"),
        ] {
            assert_eq!(
                verdict(&g, url).await,
                Err(Refusal::NotPublic(ip.parse().unwrap())),
                "{url}"
            );
        }
        assert!(matches!(
            verdict(&g, "https://nowhere.example/").await,
            Err(Refusal::Unresolvable(_))
        ));
        assert_eq!(verdict(&g, "http://public.example/").await, Err(Refusal::NotHttps));
        assert_eq!(verdict(&g, "ftp://public.example/").await, Err(Refusal::Malformed));
        assert_eq!(
            verdict(&g, "https://user:pw@public.example/").await,
            Err(Refusal::Malformed)
        );
    }

    #[tokio::test]
    async fn allow_listed_networks_may_be_reached_even_over_http() {
        let g = guard(&["127.0.0.0/8"], true);
        assert_eq!(verdict(&g, "http://local.example:9000/").await, Ok(()));
        assert_eq!(verdict(&g, "http://127.0.0.1:9000/").await, Ok(()));
        assert_eq!(
            verdict(&g, "http://public.example/").await,
            Err(Refusal::NotPublic("93.184.215.14".parse().unwrap())),
            "plain http only inside the allow-list"
        );
        assert_eq!(
            verdict(&g, "https://metadata.example/").await,
            Err(Refusal::NotPublic("169.254.169.254".parse().unwrap()))
        );
        let open = guard(&[], false);
        assert_eq!(verdict(&open, "http://public.example/").await, Ok(()));
    }
}
