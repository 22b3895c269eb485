//! The connection bounds of the one server, checked on the plain and on the TLS listener
//! alike with the same assertions: the header deadline, the cap on a request's headers, the
//! connection cap per client address, the body's minimum pace and the write idle timeout;
//! on https also the handshake deadline. The https bridge gets a certificate of a test CA,
//! made here (`server.tls_cert`, `server.tls_key`).

use crate::common;

use common::*;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A connection to the bridge, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How the tests reach a bridge: its address, and the TLS client config when it serves https.
struct Listener {
    bridge: Bridge,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// The second client address of the tests (the bridge listens on 127.0.0.1; all of 127/8
/// is loopback on Linux).
const OTHER_CLIENT: &str = "127.0.0.2";

impl Listener {
    /// A bridge with `server` lines added to its `[server]` table, https when `tls`.
    async fn start(tls: bool, server: &str) -> Listener {
        let (ca, cert, key) = common::services::ca_and_server_certificate("127.0.0.1");
        let mut server = server.to_string();
        if tls {
            server.push_str("tls_cert = \"tls.crt\"\ntls_key = \"tls.key\"\n");
        }
        let bridge = Bridge::start_edited(
            |dir| {
                std::fs::write(dir.join("tls.crt"), cert.to_pem().expect("pem")).expect("write");
                std::fs::write(dir.join("tls.key"), key.private_key_to_pem_pkcs8().expect("pem")).expect("write");
            },
            |config| config.replacen("[server]\n", &format!("[server]\n{server}"), 1),
        )
        .await;
        let addr: SocketAddr = bridge.base.trim_start_matches("http://").parse().expect("addr");
        let tls = tls.then(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.to_der().expect("der").into()).expect("root");
            let config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .expect("versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            Arc::new(config)
        });
        Listener { bridge, addr, tls }
    }

    /// A TCP connection from `from` (no TLS handshake yet).
    async fn tcp_from(&self, from: &str) -> tokio::net::TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(from.parse::<IpAddr>().expect("ip"), 0))
            .expect("bind");
        socket.connect(self.addr).await.expect("connect")
    }

    /// A connection from `from`, with the TLS handshake done when the bridge speaks https.
    async fn connect_from(&self, from: &str) -> std::io::Result<Box<dyn Stream>> {
        let tcp = self.tcp_from(from).await;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
                let stream = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp),
                )
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake"))??;
                Ok(Box::new(stream))
            }
        }
    }

    /// GET `path` from `from` on a fresh connection: the status line, or why there is none.
    async fn get_from(&self, from: &str, path: &str) -> Result<String, String> {
        let mut stream = self.connect_from(from).await.map_err(|e| format!("connect: {e}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        match tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await {
            Err(_) => return Err("no answer within 5 s".into()),
            Ok(Err(e)) if answer.is_empty() => return Err(format!("read: {e}")),
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&answer).to_string();
        text.lines()
            .next()
            .filter(|l| l.starts_with("HTTP/"))
            .map(str::to_string)
            .ok_or_else(|| format!("no HTTP answer: {text:?}"))
    }

    async fn metric(&self, line_prefix: &str) -> u64 {
        let mut stream = self.connect_from(OTHER_CLIENT).await.expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer)
            .lines()
            .find_map(|l| l.strip_prefix(line_prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Reads until the server closes the connection (or `within` passes): what came, and when.
async fn until_closed(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < within {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some((String::from_utf8_lossy(&answer).to_string(), started.elapsed())),
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    None
}

/// Sends `request` on a fresh connection from 127.0.0.1 and returns what came back before the
/// server closed it or `wait` passed.
async fn exchange(l: &Listener, request: &[u8], wait: Duration) -> String {
    let mut stream = l.connect_from("127.0.0.1").await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).to_string()
}

/// Headers beyond the cap get a 431 at once, and the server goes on serving.
async fn oversized_headers_get_431_quickly_and_the_server_stays_up(tls: bool) {
    let l = Listener::start(tls, "").await;
    let started = Instant::now();
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(entree_bridge::http::MAX_HEADER_BYTES + 36 * 1024)
    );
    let answer = exchange(&l, request.as_bytes(), Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        answer.lines().next().unwrap_or("")
    );
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(l.get_from(OTHER_CLIENT, "/healthz").await, Ok("HTTP/1.1 200 OK".into()));
}

#[tokio::test]
async fn oversized_headers_get_431_quickly_and_the_server_stays_up_on_http() {
    oversized_headers_get_431_quickly_and_the_server_stays_up(false).await;
}

#[tokio::test]
async fn oversized_headers_get_431_quickly_and_the_server_stays_up_on_https() {
    oversized_headers_get_431_quickly_and_the_server_stays_up(true).await;
}

/// A client that dribbles its headers (one line a second, never the blank line that ends
/// them: slowloris) is closed at the header deadline.
async fn a_client_dribbling_its_headers_is_cut_off(tls: bool) {
    let l = Listener::start(tls, "").await;
    let mut dribbler = l.connect_from("127.0.0.1").await.expect("connect");
    dribbler
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let limit = entree_bridge::http::HEADER_READ_TIMEOUT;
    let closed_after = loop {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_secs(1), dribbler.read(&mut buf)).await {
            Ok(_) => break started.elapsed(),
            Err(_) => assert!(started.elapsed() < limit + Duration::from_secs(10), "still open"),
        }
        if dribbler.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break started.elapsed();
        }
    };
    assert!(
        closed_after >= limit - Duration::from_secs(1) && closed_after < limit + Duration::from_secs(5),
        "closed after {closed_after:?}"
    );
    assert_eq!(l.get_from(OTHER_CLIENT, "/healthz").await, Ok("HTTP/1.1 200 OK".into()));
}

#[tokio::test]
async fn a_client_dribbling_its_headers_is_cut_off_on_http() {
    a_client_dribbling_its_headers_is_cut_off(false).await;
}

#[tokio::test]
async fn a_client_dribbling_its_headers_is_cut_off_on_https() {
    a_client_dribbling_its_headers_is_cut_off(true).await;
}

/// On https: a client that never starts its handshake is closed at the handshake deadline
/// (plain http has no handshake; its header deadline is above).
#[tokio::test]
async fn a_silent_tls_client_is_closed_at_the_handshake_deadline() {
    let l = Listener::start(true, "").await;
    let mut silent = l.tcp_from("127.0.0.1").await;
    let handshake = entree_bridge::http::TLS_HANDSHAKE_TIMEOUT;
    let (_, took) = until_closed(&mut silent, handshake + Duration::from_secs(10))
        .await
        .expect("a silent TLS client is closed");
    assert!(
        took >= handshake - Duration::from_secs(1) && took < handshake + Duration::from_secs(5),
        "closed after {took:?}"
    );
    assert!(
        l.metric("entree_bridge_connection_timeouts_total{phase=\"tls_handshake\"} ")
            .await
            >= 1
    );
    assert_eq!(l.get_from(OTHER_CLIENT, "/healthz").await, Ok("HTTP/1.1 200 OK".into()));
}

/// A POST to the ACS whose body comes one byte a second (each byte buys the client 1 ms):
/// answered and closed once the body's grace is spent, not held open for the 20,000 bytes.
async fn a_slow_body_is_cut_off_at_its_deadline(tls: bool) {
    let l = Listener::start(tls, "").await;
    let mut stream = l.connect_from("127.0.0.1").await.expect("connect");
    // The Host with the port: the app is chosen by it.
    let head = format!(
        "POST /open/saml2/kennisnet/acs HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 20000\r\n\r\nSAMLResponse=",
        l.addr
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b"A").await.is_err() || writer.flush().await.is_err() {
                return;
            }
        }
    });
    let grace = entree_bridge::http::BODY_READ_GRACE;
    let (answer, _) = until_closed(&mut reader, grace + Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("still open {:?} after the body began", grace + Duration::from_secs(10)));
    let took = started.elapsed();
    trickle.abort();
    assert!(
        took >= grace - Duration::from_secs(1) && took < grace + Duration::from_secs(5),
        "closed after {took:?}: {answer:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(answer.contains("acs_bad_request"), "{answer:?}");
    assert!(
        l.metric("entree_bridge_connection_timeouts_total{phase=\"request_body\"} ")
            .await
            >= 1,
        "counted"
    );
    assert_eq!(l.get_from("127.0.0.1", "/healthz").await, Ok("HTTP/1.1 200 OK".into()));
}

#[tokio::test]
async fn a_slow_body_is_cut_off_at_its_deadline_on_http() {
    a_slow_body_is_cut_off_at_its_deadline(false).await;
}

#[tokio::test]
async fn a_slow_body_is_cut_off_at_its_deadline_on_https() {
    a_slow_body_is_cut_off_at_its_deadline(true).await;
}

/// One address holds its cap of connections (idle, or mid-handshake on TLS: a slot is taken
/// at accept); its next connection is closed unanswered, while another address gets answers
/// and logs in; once one of the held connections closes, the address is served again.
async fn one_address_cannot_hold_more_than_its_connection_cap(tls: bool) {
    let cap = 4;
    let l = Listener::start(tls, &format!("max_connections_per_client = {cap}\n")).await;
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(l.tcp_from("127.0.0.1").await);
    }
    // Give the accept loop the time to take all four.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let refused = l.get_from("127.0.0.1", "/healthz").await;
        assert!(refused.is_err(), "a connection over the cap is answered: {refused:?}");
    }
    assert_eq!(l.get_from(OTHER_CLIENT, "/healthz").await, Ok("HTTP/1.1 200 OK".into()));
    if !tls {
        // A whole login from the other address (the harness's client speaks plain http only).
        let other = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(OTHER_CLIENT.parse::<IpAddr>().ok())
            .build()
            .expect("client");
        let (outcome, _) = complete_login(&other, &l.bridge, "numo", |s| s).await;
        assert_eq!(outcome.status, 200, "{}", outcome.body);
    }
    assert!(
        l.metric("entree_bridge_connections_refused_total{reason=\"per_client\"} ")
            .await
            >= 3,
        "counted"
    );
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match l.get_from("127.0.0.1", "/healthz").await {
            Ok(status) => {
                assert_eq!(status, "HTTP/1.1 200 OK");
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "not served again after a close: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_connection_cap_on_http() {
    one_address_cannot_hold_more_than_its_connection_cap(false).await;
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_connection_cap_on_https() {
    one_address_cannot_hold_more_than_its_connection_cap(true).await;
}

/// A client that asks for an answer and never reads it: once the socket buffers are full,
/// the write makes no progress and the connection is closed at the write idle timeout, not
/// held until the process stops. Large answers come from the metrics page, asked for many
/// times on one connection (pipelined) without reading.
async fn a_client_that_never_reads_its_answers_is_closed(tls: bool) {
    // Some 40 MB of answers: more than the socket buffers of both sides hold.
    const ASKED: usize = 10_000;
    let l = Listener::start(tls, "").await;
    let stream = l.connect_from("127.0.0.1").await.expect("connect");
    let (mut reader, mut writer) = tokio::io::split(stream);
    let requests = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(ASKED);
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(requests.as_bytes()).await;
        writer
    });
    let limit = entree_bridge::http::WRITE_IDLE_TIMEOUT;
    // Read nothing until the server should have given up, then see that it has.
    tokio::time::sleep(limit + Duration::from_secs(5)).await;
    let mut sink = Vec::new();
    let drained = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut sink)).await;
    assert!(drained.is_ok(), "the connection is still open");
    // Cut off: far from every answer was sent (had the server waited, all would come).
    let answered = String::from_utf8_lossy(&sink).matches("HTTP/1.1 200").count();
    assert!(
        answered < ASKED,
        "{answered} of {ASKED} answers: the connection was not cut"
    );
    assert!(
        l.metric("entree_bridge_connection_timeouts_total{phase=\"response_write\"} ")
            .await
            >= 1
    );
    drop(writing);
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_closed_on_http() {
    a_client_that_never_reads_its_answers_is_closed(false).await;
}

#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_closed_on_https() {
    a_client_that_never_reads_its_answers_is_closed(true).await;
}
