//! Who the client really is. The gateway is the platform's edge, but in a cluster an ingress
//! controller or a load balancer stands in front of it, so its peer is that proxy. A peer in
//! `trusted_proxies` is believed about who it forwards for: `X-Forwarded-For` is read from the
//! right, and the first address that is not a trusted proxy is the client (what nginx's
//! `real_ip_recursive` and Envoy's trusted hops do). Anyone else's `X-Forwarded-For` is
//! ignored, so a partner cannot pass for another address.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;
use ipnet::IpNet;
use serde::Deserialize;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// `[client_address]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientAddressSettings {
    /// Networks of the proxies in front of the gateway (`10.0.0.0/8`, `192.0.2.7/32`).
    #[serde(default)]
    pub trusted_proxies: Vec<IpNet>,
}

impl ClientAddressSettings {
    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&address))
    }

    /// The client's address: the peer, or whom a trusted peer forwards for.
    pub fn of(&self, req: &HttpRequest) -> IpAddr {
        let peer = req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        if !self.trusts(peer) {
            return peer;
        }
        let chain: Vec<&str> = req
            .headers()
            .get_all(X_FORWARDED_FOR)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in chain.iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else {
                // A hop a trusted proxy could not have written: believe no further.
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn settings(nets: &[&str]) -> ClientAddressSettings {
        ClientAddressSettings {
            trusted_proxies: nets.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    fn client(settings: &ClientAddressSettings, peer: &str, forwarded: &[&str]) -> String {
        let mut req = TestRequest::default().peer_addr(format!("{peer}:4000").parse().unwrap());
        for value in forwarded {
            req = req.append_header(("x-forwarded-for", *value));
        }
        settings.of(&req.to_http_request()).to_string()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_up_to_the_first_stranger() {
        let none = settings(&[]);
        assert_eq!(client(&none, "198.51.100.4", &["203.0.113.9"]), "198.51.100.4");
        let ingress = settings(&["10.0.0.0/8"]);
        assert_eq!(
            client(&ingress, "198.51.100.4", &["203.0.113.9"]),
            "198.51.100.4",
            "not a proxy"
        );
        assert_eq!(client(&ingress, "10.1.0.5", &["203.0.113.9"]), "203.0.113.9");
        assert_eq!(
            client(&ingress, "10.1.0.5", &["6.6.6.6, 203.0.113.9, 10.2.0.1"]),
            "203.0.113.9",
            "what the client wrote itself (6.6.6.6) is not believed"
        );
        assert_eq!(
            client(&ingress, "10.1.0.5", &["6.6.6.6", "203.0.113.9"]),
            "203.0.113.9",
            "two fields"
        );
        assert_eq!(client(&ingress, "10.1.0.5", &["junk, 10.2.0.1"]), "10.2.0.1");
        assert_eq!(client(&ingress, "10.1.0.5", &[]), "10.1.0.5", "no header: the proxy");
        assert_eq!(
            client(&ingress, "10.1.0.5", &["10.3.0.1"]),
            "10.3.0.1",
            "all trusted: the farthest"
        );
        assert_eq!(client(&ingress, "10.1.0.5", &["2001:db8::1"]), "2001:db8::1");
    }
}
