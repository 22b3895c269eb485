//! Real services for the scale-out and fault tests: the shared Redis (under a prefix of the
//! test's own), private Redis servers the test can stop and start, and a TCP gate that makes a
//! server (PostgreSQL) vanish and come back.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shared Redis the non-fault tests use (`ENTREE_BRIDGE_TEST_REDIS`).
pub fn shared_redis_url() -> String {
    std::env::var("ENTREE_BRIDGE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test (or run) uses.
pub fn unique_prefix() -> String {
    format!("eb-test:{}:", entree_bridge::keys::random_token())
}

/// The `[sessions]` section for Redis at `url` under `prefix`.
pub fn redis_sessions_config(url: &str, prefix: &str, extra: &str) -> String {
    format!("[sessions]\nstore = \"redis\"\nredis_url = \"{url}\"\nredis_prefix = \"{prefix}\"\n{extra}\n")
}

/// A plain connection for looking at what the bridge stored.
pub async fn redis_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis reachable")
}

/// Every key under `prefix` (SCAN, not KEYS).
pub async fn keys_under(url: &str, prefix: &str) -> Vec<String> {
    let mut conn = redis_connection(url).await;
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .expect("scan");
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A free port whose next port is free too (the demo puts its support desk at port + 1):
/// another test's ephemeral port next to a bare `free_port` left the desk without one.
pub fn free_port_pair() -> u16 {
    loop {
        let port = free_port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// A redis-server of the test's own, without persistence, that can be stopped and started on
/// the same port.
pub struct RedisServer {
    pub port: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// A server that is not running yet, on a free port.
    pub fn stopped() -> RedisServer {
        Self::stopped_with(free_port(), Vec::new())
    }

    pub fn stopped_with(port: u16, extra_args: Vec<String>) -> RedisServer {
        RedisServer {
            port,
            args: extra_args,
            child: None,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (or starts again) and waits until it answers PING.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut cmd = Command::new(redis_server_binary());
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        if self.args.is_empty() {
            cmd.args(["--port", &self.port.to_string()]);
        } else {
            cmd.args(&self.args);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/system-deps.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not listen on {} within 10s", self.port);
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn redis_server_binary() -> &'static str {
    if Path::new("/usr/bin/redis-server").exists() {
        "/usr/bin/redis-server"
    } else {
        "redis-server"
    }
}

/// A TCP forwarder in front of a server. Closed, it refuses new connections (closes them at
/// once) and cuts the ones it carries: to the bridge, the server is gone.
pub struct TcpGate {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    hold: tokio::sync::watch::Sender<u64>,
}

impl TcpGate {
    pub async fn start(target: SocketAddr, open: bool) -> TcpGate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let is_open = Arc::new(AtomicBool::new(open));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (hold, _) = tokio::sync::watch::channel(0u64);
        let (flag, cuts, holds) = (is_open.clone(), cut.clone(), hold.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut_rx = cuts.subscribe();
                let mut hold_rx = holds.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let held = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                        _ = cut_rx.changed() => false,
                        _ = hold_rx.changed() => true,
                    };
                    if held {
                        // Both sockets stay open and nothing moves: a peer that died silently.
                        std::future::pending::<()>().await;
                    }
                });
            }
        });
        TcpGate {
            addr,
            open: is_open,
            cut,
            hold,
        }
    }

    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Freezes every open connection without closing it (no FIN, no RST: as if the server's
    /// host vanished); new connections still pass.
    pub fn freeze_open_connections(&self) {
        self.hold.send_modify(|n| *n += 1);
    }

    /// Refuses new connections and cuts every open one.
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }
}

/// A test CA and a server certificate for the IP address `ip`, signed by it, with its key.
pub fn ca_and_server_certificate(
    ip: &str,
) -> (
    openssl::x509::X509,
    openssl::x509::X509,
    openssl::pkey::PKey<openssl::pkey::Private>,
) {
    use entree_bridge::keys::{generate_key, self_signed_certificate, KeyKind};
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509Builder, X509NameBuilder};
    let ca_key = generate_key(KeyKind::Rsa2048).expect("key");
    let ca = self_signed_certificate(&ca_key, "test CA", 2).expect("ca");
    let key = generate_key(KeyKind::Rsa2048).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", ip).expect("cn");
    let name = name.build();
    let mut b = X509Builder::new().expect("builder");
    b.set_version(2).expect("v");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(ca.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(2).expect("t"))
        .expect("na");
    let serial = openssl::bn::BigNum::from_u32(7)
        .expect("bn")
        .to_asn1_integer()
        .expect("serial");
    b.set_serial_number(&serial).expect("serial");
    b.append_extension(BasicConstraints::new().build().expect("bc"))
        .expect("ext");
    let san = SubjectAlternativeName::new()
        .ip(ip)
        .build(&b.x509v3_context(Some(&ca), None))
        .expect("san");
    b.append_extension(san).expect("ext");
    b.sign(&ca_key, openssl::hash::MessageDigest::sha256()).expect("sign");
    (ca, b.build(), key)
}
