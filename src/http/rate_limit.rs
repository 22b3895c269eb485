//! Rate limits per client address on the routes anyone can hit to make the bridge work: login
//! (an AuthnRequest signed and a pending login stored), the ACS (a signature checked), link
//! completion and logout/SLS. A token bucket per address: `burst` requests at once, refilled
//! at `per_minute`. IPv6 clients are counted per /64, which one subscriber typically holds.
//! Loopback clients are exempt unless `exempt_loopback = false` (the demo, health checks
//! and a terminating proxy on the same host would otherwise share one bucket).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;

use crate::config::{Cidr, RateLimit};

/// Buckets kept at once; an address unseen for `IDLE` is forgotten (it would be full again).
const MAX_ADDRESSES: u64 = 200_000;
const IDLE: Duration = Duration::from_secs(600);

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter {
    settings: RateLimit,
    buckets: moka::sync::Cache<IpAddr, Arc<Mutex<Bucket>>>,
}

impl RateLimiter {
    pub fn new(settings: RateLimit) -> Self {
        RateLimiter {
            settings,
            buckets: moka::sync::Cache::builder()
                .max_capacity(MAX_ADDRESSES)
                .time_to_idle(IDLE)
                .build(),
        }
    }

    /// `Ok` when `client` may go on; `Err(seconds)` until it may try again.
    pub fn check(&self, client: Client) -> Result<(), u64> {
        let limit = &self.settings;
        // Only a peer that is itself on loopback, with nothing forwarded, is exempt: a proxy
        // on the same host must not make every client behind it exempt.
        let exempt = limit.exempt_loopback && !client.via_proxy && client.ip.is_loopback();
        if limit.per_minute == 0 || exempt {
            return Ok(());
        }
        let client = client.ip;
        let burst = f64::from(limit.burst);
        let per_second = f64::from(limit.per_minute) / 60.0;
        let bucket = self.buckets.get_with(counted_as(client), || {
            Arc::new(Mutex::new(Bucket {
                tokens: burst,
                updated: Instant::now(),
            }))
        });
        // A poisoned lock only means another request panicked mid-update: the numbers in it
        // are still numbers.
        let mut b = bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.updated).as_secs_f64() * per_second).min(burst);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }
}

/// Who a request is counted as: an address, and whether a trusted proxy said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    pub via_proxy: bool,
}

/// IPv6 addresses count per /64; IPv4 (and IPv4-mapped IPv6) per address. The connection
/// cap per client counts the same way.
pub(crate) fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// The address a request comes from: the peer, or, when the peer is a trusted proxy, the
/// nearest address in X-Forwarded-For that is not one. Proxies append, so the list is read
/// from the right and everything left of the first untrusted hop is the client's own say. A
/// hop that is no address (the client wrote it, or a proxy wrote `unknown`) ends the walk:
/// the request then counts against the last trusted hop, and is never exempt.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> Client {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|c| c.contains(*ip));
    if !is_trusted(&peer) {
        return Client {
            ip: peer,
            via_proxy: false,
        };
    }
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    let mut nearest = peer;
    for hop in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        match parse_hop(hop) {
            Some(ip) if is_trusted(&ip) => nearest = ip,
            Some(ip) => return Client { ip, via_proxy: true },
            None => break,
        }
    }
    Client {
        ip: nearest,
        via_proxy: !values.is_empty(),
    }
}

/// One X-Forwarded-For entry: an address, possibly with a port or in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimit {
            per_minute,
            burst,
            exempt_loopback: true,
        })
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let l = limiter(60, 3);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.check(direct(ip)), Ok(()));
        }
        assert_eq!(l.check(direct(ip)), Err(1), "one a second from here on");
        // Another address has its own bucket.
        assert_eq!(l.check(direct("192.0.2.8".parse().unwrap())), Ok(()));
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(l.check(direct(ip)), Ok(()));
        assert!(l.check(direct(ip)).is_err());
    }

    #[test]
    fn loopback_is_exempt_and_zero_means_off() {
        let l = limiter(1, 1);
        for _ in 0..10 {
            assert_eq!(l.check(direct("127.0.0.1".parse().unwrap())), Ok(()));
            assert_eq!(l.check(direct("::1".parse().unwrap())), Ok(()));
        }
        let off = limiter(0, 1);
        for _ in 0..10 {
            assert_eq!(off.check(direct("192.0.2.1".parse().unwrap())), Ok(()));
        }
    }

    #[test]
    fn an_ipv6_subscriber_shares_one_bucket_per_64() {
        let l = limiter(1, 1);
        assert_eq!(l.check(direct("2001:db8:1:2:aaaa::1".parse().unwrap())), Ok(()));
        assert!(l.check(direct("2001:db8:1:2:bbbb::2".parse().unwrap())).is_err());
        assert_eq!(l.check(direct("2001:db8:1:3::1".parse().unwrap())), Ok(()));
        // IPv4-mapped addresses count as the IPv4 address.
        assert_eq!(l.check(direct("198.51.100.1".parse().unwrap())), Ok(()));
        assert!(l.check(direct("::ffff:198.51.100.1".parse().unwrap())).is_err());
    }

    fn direct(ip: IpAddr) -> Client {
        Client { ip, via_proxy: false }
    }

    fn via(ip: &str) -> Client {
        Client {
            ip: ip.parse().unwrap(),
            via_proxy: true,
        }
    }

    #[test]
    fn the_client_behind_trusted_proxies_is_the_first_untrusted_hop() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        let with = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            h
        };
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let h = with(&["203.0.113.9, 198.51.100.4, 10.1.1.1"]);
        assert_eq!(client_address(proxy, &h, &trusted), via("198.51.100.4"));
        // From an untrusted peer the header is the client's own say.
        let outsider: IpAddr = "192.0.2.50".parse().unwrap();
        assert_eq!(client_address(outsider, &h, &trusted), direct(outsider));
        // Ports and brackets, as some proxies write them; several headers in order.
        assert_eq!(
            client_address(proxy, &with(&["198.51.100.4:5555"]), &trusted),
            via("198.51.100.4")
        );
        assert_eq!(
            client_address(proxy, &with(&["[2001:db8::7]:443"]), &trusted),
            via("2001:db8::7")
        );
        assert_eq!(
            client_address(proxy, &with(&["192.0.2.1", "198.51.100.4"]), &trusted),
            via("198.51.100.4")
        );
        // A junk hop a client wrote in front of what a local proxy appended: counted against
        // the nearest trusted hop and never exempt (it came through a proxy).
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let smuggled = with(&["x, 127.0.0.1"]);
        assert_eq!(client_address(local, &smuggled, &trusted), via("127.0.0.1"));
        let limiter = RateLimiter::new(RateLimit {
            per_minute: 1,
            burst: 1,
            exempt_loopback: true,
        });
        assert_eq!(limiter.check(client_address(local, &smuggled, &trusted)), Ok(()));
        assert!(limiter.check(client_address(local, &smuggled, &trusted)).is_err());
        // The same peer with nothing forwarded is the demo or a health check: exempt.
        for _ in 0..3 {
            assert_eq!(
                limiter.check(client_address(local, &HeaderMap::new(), &trusted)),
                Ok(())
            );
        }
        // An IPv4-mapped loopback peer is loopback.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(client_address(mapped, &HeaderMap::new(), &[]), direct(local));
    }
}
