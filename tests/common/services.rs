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
}

impl TcpGate {
    pub async fn start(target: SocketAddr, open: bool) -> TcpGate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let is_open = Arc::new(AtomicBool::new(open));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (flag, cuts) = (is_open.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut_rx = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        TcpGate {
            addr,
            open: is_open,
            cut,
        }
    }

    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Refuses new connections and cuts every open one.
    pub fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }
}
