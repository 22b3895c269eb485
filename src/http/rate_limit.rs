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
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        let limit = &self.settings;
        if limit.per_minute == 0 || (limit.exempt_loopback && client.is_loopback()) {
            return Ok(());
        }
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

/// IPv6 addresses count per /64; IPv4 (and IPv4-mapped IPv6) per address.
fn counted_as(ip: IpAddr) -> IpAddr {
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
/// nearest address in X-Forwarded-For that is not one (the proxies append, so everything
/// left of the first untrusted hop is the client's own say and not believed).
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|c| c.contains(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|hop| hop.trim().parse::<IpAddr>())
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    hops.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer)
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
            assert_eq!(l.check(ip), Ok(()));
        }
        assert_eq!(l.check(ip), Err(1), "one a second from here on");
        // Another address has its own bucket.
        assert_eq!(l.check("192.0.2.8".parse().unwrap()), Ok(()));
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(l.check(ip), Ok(()));
        assert!(l.check(ip).is_err());
    }

    #[test]
    fn loopback_is_exempt_and_zero_means_off() {
        let l = limiter(1, 1);
        for _ in 0..10 {
            assert_eq!(l.check("127.0.0.1".parse().unwrap()), Ok(()));
            assert_eq!(l.check("::1".parse().unwrap()), Ok(()));
        }
        let off = limiter(0, 1);
        for _ in 0..10 {
            assert_eq!(off.check("192.0.2.1".parse().unwrap()), Ok(()));
        }
    }

    #[test]
    fn an_ipv6_subscriber_shares_one_bucket_per_64() {
        let l = limiter(1, 1);
        assert_eq!(l.check("2001:db8:1:2:aaaa::1".parse().unwrap()), Ok(()));
        assert!(l.check("2001:db8:1:2:bbbb::2".parse().unwrap()).is_err());
        assert_eq!(l.check("2001:db8:1:3::1".parse().unwrap()), Ok(()));
        // IPv4-mapped addresses count as the IPv4 address.
        assert_eq!(l.check("198.51.100.1".parse().unwrap()), Ok(()));
        assert!(l.check("::ffff:198.51.100.1".parse().unwrap()).is_err());
    }

    #[test]
    fn the_client_behind_trusted_proxies_is_the_first_untrusted_hop() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.4, 10.1.1.1".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            client_address(proxy, &h, &trusted),
            "198.51.100.4".parse::<IpAddr>().unwrap()
        );
        // From an untrusted peer the header is the client's own say.
        let direct: IpAddr = "192.0.2.50".parse().unwrap();
        assert_eq!(client_address(direct, &h, &trusted), direct);
        // Garbage in the header: the proxy itself is what we know.
        h.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_address(proxy, &h, &trusted), proxy);
    }
}
