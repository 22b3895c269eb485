//! Headers mode against a real upstream server: an app that knows nothing of SAML sits behind
//! the bridge and sees only the bridge's identity headers.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use base64::Engine;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};

/// The upstream app: echoes what it received, counts uploads, streams downloads, echoes
/// WebSocket messages, and can be slow.
async fn upstream() -> SocketAddr {
    async fn echo(headers: HeaderMap, uri: axum::http::Uri) -> Response {
        let mut all = serde_json::Map::new();
        for (name, value) in &headers {
            let entry = all.entry(name.as_str().to_string()).or_insert_with(|| json!([]));
            entry
                .as_array_mut()
                .expect("array")
                .push(json!(value.to_str().unwrap_or("<bytes>")));
        }
        json_response(json!({"headers": all, "uri": uri.to_string()}))
    }
    async fn upload(body: Body) -> Response {
        let mut stream = body.into_data_stream();
        let (mut size, mut hasher) = (0usize, openssl::sha::Sha256::new());
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("chunk");
            size += chunk.len();
            hasher.update(&chunk);
        }
        json_response(json!({"size": size, "sha256": hex(&hasher.finish())}))
    }
    async fn download(Query(q): Query<std::collections::HashMap<String, usize>>) -> Response {
        let size = q.get("size").copied().unwrap_or(0);
        let chunks = futures_util::stream::iter((0..size).step_by(65536).map(move |start| {
            let len = (size - start).min(65536);
            Ok::<_, std::io::Error>(axum::body::Bytes::from(pattern(start, len)))
        }));
        Body::from_stream(chunks).into_response()
    }
    async fn ws(upgrade: WebSocketUpgrade) -> Response {
        upgrade.on_upgrade(|mut socket| async move {
            while let Some(Ok(msg)) = socket.recv().await {
                if let WsMessage::Text(t) = msg {
                    let _ = socket.send(WsMessage::Text(format!("echo: {t}").into())).await;
                }
            }
        })
    }
    async fn set_cookie() -> Response {
        let mut r = "ok".into_response();
        r.headers_mut()
            .append("set-cookie", "eb_session_other=planted; Path=/".parse().expect("v"));
        r.headers_mut()
            .append("set-cookie", "app_pref=1; Path=/".parse().expect("v"));
        r
    }
    async fn slow() -> &'static str {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        "late"
    }
    let app = Router::new()
        .route("/proxied/echo", any(echo))
        .route("/other/echo", any(echo))
        .route("/proxied/upload", post(upload))
        .route("/proxied/download", get(download))
        .route("/proxied/ws", get(ws))
        .route("/proxied/slow", get(slow))
        .route("/proxied/setcookie", get(set_cookie));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn json_response(value: Value) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn pattern(start: usize, len: usize) -> Vec<u8> {
    (start..start + len).map(|i| (i % 251) as u8).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn proxied_app(upstream: SocketAddr) -> String {
    format!(
        r#"
[apps.proxied]
federation = "kennisnet"
base_url = "http://127.0.0.1:{{port}}/proxied"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.proxied.tenants]
"99XX" = "ingang-a"
[apps.proxied.handoff]
mode = "headers"
upstream = "http://{upstream}"
upstream_timeout = "1s"

[apps.other]
federation = "kennisnet"
base_url = "http://127.0.0.1:{{port}}/other"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.other.handoff]
mode = "headers"
upstream = "http://{upstream}"
token_reuse = false
"#
    )
}

async fn setup() -> (Bridge, SocketAddr) {
    let up = upstream().await;
    (Bridge::start_with(&proxied_app(up)).await, up)
}

/// Logs `client` in to `app` (target given) and returns the ACS's answer.
async fn log_in(client: &reqwest::Client, b: &Bridge, app: &str, target: Option<&str>) -> reqwest::Response {
    let login = start_login(client, b, app, target).await;
    let spec = b.spec(app, Some(&login.request_id));
    let xml = b.idp.response(&spec).expect("sign");
    post_acs_response(client, b, app, &xml, Some(&login.relay_state)).await
}

async fn echo(client: &reqwest::Client, b: &Bridge, extra: &[(&str, &str)]) -> Value {
    let mut req = client.get(format!("{}/proxied/echo?x=1", b.base));
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("echo");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

#[tokio::test]
async fn anonymous_browsers_go_to_the_login_and_api_calls_get_401() {
    let (b, _) = setup().await;
    let c = client();
    let html = c
        .get(format!("{}/proxied/echo?x=1", b.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(html.status(), 302);
    let location = html.headers()["location"].to_str().expect("location").to_string();
    assert!(
        location.starts_with(&format!("{}/proxied/saml2/kennisnet/login?target=", b.base)),
        "{location}"
    );
    assert!(location.contains("%2Fproxied%2Fecho%3Fx%3D1"));
    for req in [
        c.get(format!("{}/proxied/echo", b.base)),
        c.post(format!("{}/proxied/echo", b.base)),
    ] {
        let resp = req.header("accept", "application/json").send().await.expect("api");
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "login_required");
    }
}

#[tokio::test]
async fn after_login_the_app_sees_only_the_bridges_identity_headers() {
    let (b, _) = setup().await;
    let c = client();
    let acs = log_in(&c, &b, "proxied", Some("/proxied/echo?x=1")).await;
    assert_eq!(acs.status(), 302, "the ACS sends the student to the target");
    assert_eq!(acs.headers()["location"], format!("{}/proxied/echo?x=1", b.base));
    let cookie = acs.headers()["set-cookie"].to_str().expect("cookie").to_string();
    assert!(
        cookie.starts_with("eb_session_proxied=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let spoofs = [
        ("X-Bridge-Person-Code", "evil"),
        ("x_bridge_person_code", "evil"),
        ("X-BRIDGE-SCHOOL", "00EV"),
        ("X_Bridge_Affiliation", "staff"),
        ("x-bridge-tenant", "evil"),
        ("X_BRIDGE_TOKEN", "forged"),
        ("X.Bridge.Person.Code", "evil"),
    ];
    let seen = echo(&c, &b, &spoofs).await;
    let h = &seen["headers"];
    assert_eq!(h["x-bridge-person-code"], json!(["100231@school-a.nl"]));
    assert_eq!(h["x-bridge-school"], json!(["99XX"]));
    assert_eq!(h["x-bridge-affiliation"], json!(["student,member"]));
    assert_eq!(h["x-bridge-tenant"], json!(["ingang-a"]));
    for spelled in [
        "x_bridge_person_code",
        "x_bridge_affiliation",
        "x_bridge_token",
        "x.bridge.person.code",
    ] {
        assert!(h.get(spelled).is_none(), "{spelled} must never reach the app: {h}");
    }
    let token = h["x-bridge-token"][0].as_str().expect("token");
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("p"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(payload["sub"], "100231@school-a.nl");
    assert_eq!(payload["aud"], "proxied");
    assert_eq!(h["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_eq!(h["x-forwarded-proto"], json!(["http"]));
    let cookies = h.get("cookie").map(|c| c.to_string()).unwrap_or_default();
    assert!(
        !cookies.contains("eb_session_"),
        "the bridge's session cookie stays with the bridge: {cookies}"
    );
    assert_eq!(seen["uri"], "/proxied/echo?x=1");
}

#[tokio::test]
async fn forwarding_headers_cookies_and_upgrades_cannot_be_smuggled() {
    let (b, _) = setup().await;
    let c = client();
    let acs = log_in(&c, &b, "proxied", None).await;
    let session = first_cookie(&acs);
    let seen = echo(
        &c,
        &b,
        &[
            ("Connection", "host, x-forwarded-host, cookie"),
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "for=6.6.6.6;host=evil2;proto=https"),
            ("X-Real-IP", "6.6.6.6"),
            ("Upgrade", "h2c"),
        ],
    )
    .await;
    let h = &seen["headers"];
    let host = b.base.trim_start_matches("http://");
    assert_eq!(h["x-forwarded-host"], json!([host]), "{h}");
    for gone in ["forwarded", "x-real-ip", "upgrade"] {
        assert!(h.get(gone).is_none(), "{gone} must not reach the app: {h}");
    }
    // Another app's session cookie never reaches this app's upstream.
    let resp = reqwest::Client::new()
        .get(format!("{}/proxied/echo", b.base))
        .header(
            "cookie",
            format!("{session}; eb_session_other=sibling-id; __Host-eb_session_x=y; app_pref=1"),
        )
        .send()
        .await
        .expect("echo");
    let seen: Value = resp.json().await.expect("json");
    let cookies = seen["headers"]["cookie"].to_string();
    assert!(
        cookies.contains("app_pref=1") && !cookies.contains("eb_session"),
        "{cookies}"
    );
    // And the upstream cannot plant one.
    let resp = c
        .get(format!("{}/proxied/setcookie", b.base))
        .send()
        .await
        .expect("setcookie");
    let set: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("s").to_string())
        .collect();
    assert_eq!(set, ["app_pref=1; Path=/"]);
}

#[tokio::test]
async fn paths_with_dot_segments_or_encoded_slashes_are_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (b, _) = setup().await;
    let addr = b.base.trim_start_matches("http://").to_string();
    for path in [
        "/proxied/../other/echo",
        "/proxied/%2e%2e/x",
        "/proxied/a%2Fb",
        "/proxied/./echo",
        "/proxied/%2E%2e",
    ] {
        // Raw, because HTTP clients normalise dot segments away before sending.
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.expect("read");
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{path}: {}",
            answer.lines().next().unwrap_or("")
        );
        assert!(answer.contains("<code>path_not_allowed</code>"), "{path}");
    }
}

#[tokio::test]
async fn spoofed_headers_from_an_untrusted_peer_do_not_survive_even_in_forwarded_for() {
    let (b, _) = setup().await;
    let c = client();
    log_in(&c, &b, "proxied", None).await;
    let seen = echo(
        &c,
        &b,
        &[("X-Forwarded-For", "10.6.6.6"), ("X-Forwarded-Host", "evil.example")],
    )
    .await;
    assert_eq!(seen["headers"]["x-forwarded-for"], json!(["127.0.0.1"]));
    assert_ne!(seen["headers"]["x-forwarded-host"], json!(["evil.example"]));
}

#[tokio::test]
async fn a_ten_mib_upload_and_a_streamed_download_pass_intact() {
    let (b, _) = setup().await;
    let c = client();
    log_in(&c, &b, "proxied", None).await;
    let data = pattern(0, 10 * 1024 * 1024);
    let expected = hex(&openssl::sha::sha256(&data));
    let resp = c
        .post(format!("{}/proxied/upload", b.base))
        .body(data)
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.expect("json");
    assert_eq!(got["size"], 10 * 1024 * 1024);
    assert_eq!(got["sha256"], expected);
    let resp = c
        .get(format!("{}/proxied/download?size={}", b.base, 10 * 1024 * 1024))
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.expect("body");
    assert_eq!(hex(&openssl::sha::sha256(&body)), expected);
}

#[tokio::test]
async fn a_websocket_echo_works_through_the_bridge() {
    let (b, _) = setup().await;
    let c = client();
    let acs = log_in(&c, &b, "proxied", None).await;
    let cookie = first_cookie(&acs);
    let url = format!("{}/proxied/ws", b.base.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).expect("request");
    request.headers_mut().insert("cookie", cookie.parse().expect("cookie"));
    request
        .headers_mut()
        .insert("x-bridge-person-code", "evil".parse().expect("h"));
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket through the bridge");
    assert_eq!(response.status(), 101);
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text("hallo".into()))
        .await
        .expect("send");
    let reply = socket.next().await.expect("reply").expect("message");
    assert_eq!(reply.into_text().expect("text").as_str(), "echo: hallo");
}

/// An upgraded tunnel is no request body and no connection waiting for headers: left idle
/// past the body's grace and the header timeout, it still carries messages both ways.
#[tokio::test]
async fn an_idle_websocket_outlives_the_body_and_header_deadlines() {
    let (b, _) = setup().await;
    let c = client();
    let acs = log_in(&c, &b, "proxied", None).await;
    let cookie = first_cookie(&acs);
    let url = format!("{}/proxied/ws", b.base.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).expect("request");
    request.headers_mut().insert("cookie", cookie.parse().expect("cookie"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket through the bridge");
    let idle = entree_bridge::http::BODY_READ_GRACE.max(entree_bridge::http::HEADER_READ_TIMEOUT)
        + std::time::Duration::from_secs(2);
    tokio::time::sleep(idle).await;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text("nog daar".into()))
        .await
        .expect("send after idling");
    let reply = socket.next().await.expect("reply").expect("message");
    assert_eq!(reply.into_text().expect("text").as_str(), "echo: nog daar");
}

/// The `X-Bridge-Token` and its `jti` as the upstream received them at `path`.
async fn token_at(client: &reqwest::Client, b: &Bridge, path: &str) -> (String, String) {
    let resp = client.get(format!("{}{path}", b.base)).send().await.expect("get");
    assert_eq!(resp.status(), 200);
    let seen: Value = resp.json().await.expect("json");
    let token = seen["headers"]["x-bridge-token"][0]
        .as_str()
        .expect("token")
        .to_string();
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("json");
    let jti = payload["jti"].as_str().expect("jti").to_string();
    (token, jti)
}

#[tokio::test]
async fn the_token_header_is_reused_within_one_session_only_and_can_be_made_per_request() {
    let (b, _) = setup().await;
    let (first, second) = (client(), client());
    log_in(&first, &b, "proxied", None).await;
    log_in(&second, &b, "proxied", None).await;
    let (token, jti) = token_at(&first, &b, "/proxied/echo").await;
    assert_eq!(
        token_at(&first, &b, "/proxied/echo?again").await.0,
        token,
        "signed once per session"
    );
    let (_, other_jti) = token_at(&second, &b, "/proxied/echo").await;
    assert_ne!(other_jti, jti, "another session never gets this session's token");
    // A new login is a new session, so a new token.
    log_in(&first, &b, "proxied", None).await;
    assert_ne!(token_at(&first, &b, "/proxied/echo").await.1, jti);

    // `token_reuse = false`: a token, and a jti, of its own for every request.
    log_in(&first, &b, "other", None).await;
    let (a, a_jti) = token_at(&first, &b, "/other/echo").await;
    let (c, c_jti) = token_at(&first, &b, "/other/echo").await;
    assert_ne!(a, c);
    assert_ne!(a_jti, c_jti);
}

#[tokio::test]
async fn session_fixation_and_cross_app_cookies_fail() {
    let (b, _) = setup().await;
    let c = client();
    // A session id planted before login is not adopted: the login makes a new one.
    let planted = "eb_session_proxied=attacker-chosen-id";
    let acs = log_in(&c, &b, "proxied", None).await;
    let issued = acs.headers()["set-cookie"].to_str().expect("cookie").to_string();
    assert!(!issued.contains("attacker-chosen-id"));
    let fixed = reqwest::Client::new()
        .get(format!("{}/proxied/echo", b.base))
        .header("cookie", planted)
        .send()
        .await
        .expect("get");
    assert_eq!(fixed.status(), 401);
    // The session of `proxied` presented to `other` under other's cookie name opens nothing.
    let id = issued
        .split(';')
        .next()
        .expect("pair")
        .split_once('=')
        .expect("kv")
        .1
        .to_string();
    let cross = reqwest::Client::new()
        .get(format!("{}/other/echo", b.base))
        .header("cookie", format!("eb_session_other={id}"))
        .send()
        .await
        .expect("get");
    assert_eq!(cross.status(), 401, "a session of app A never opens app B");
    // Logging in again rotates the id; the old one no longer works.
    let again = log_in(&c, &b, "proxied", None).await;
    let second = again.headers()["set-cookie"].to_str().expect("cookie").to_string();
    assert_ne!(second.split(';').next(), issued.split(';').next());
    let old = reqwest::Client::new()
        .get(format!("{}/proxied/echo", b.base))
        .header("cookie", format!("eb_session_proxied={id}"))
        .send()
        .await
        .expect("get");
    assert_eq!(old.status(), 401, "the session from before the new login is gone");
}

#[tokio::test]
async fn upstream_failures_are_502_and_504_pages_not_hangs() {
    let (b, _) = setup().await;
    let c = client();
    log_in(&c, &b, "proxied", None).await;
    let slow = c
        .get(format!("{}/proxied/slow", b.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("slow");
    assert_eq!(slow.status(), 504);
    assert!(slow
        .text()
        .await
        .expect("body")
        .contains("<code>upstream_timeout</code>"));

    // An upstream nobody listens on.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let dead_addr = dead.local_addr().expect("addr");
    drop(dead);
    let b2 = Bridge::start_with(&proxied_app(dead_addr)).await;
    let c2 = client();
    log_in(&c2, &b2, "proxied", None).await;
    let resp = c2.get(format!("{}/proxied/echo", b2.base)).send().await.expect("get");
    assert_eq!(resp.status(), 502);
    assert!(resp
        .text()
        .await
        .expect("body")
        .contains("<code>upstream_unavailable</code>"));
}

/// A TLS upstream on 127.0.0.1 with a certificate for that IP, signed by its own CA (PEM
/// written to `ca_path`).
async fn tls_upstream(ca_path: &std::path::Path) -> SocketAddr {
    let (ca, cert, key) = common::services::ca_and_server_certificate("127.0.0.1");
    std::fs::write(ca_path, ca.to_pem().expect("pem")).expect("write ca");

    let certs = vec![rustls::pki_types::CertificateDer::from(cert.to_der().expect("der"))];
    let key = rustls::pki_types::PrivateKeyDer::try_from(key.private_key_to_pkcs8().expect("pkcs8")).expect("key");
    let config =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let service = hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                        let who = req
                            .headers()
                            .get("x-bridge-person-code")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_string();
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                            axum::body::Bytes::from(format!("tls hello {who}")),
                        )))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_https_upstream_is_reached_with_a_configured_ca_and_refused_without() {
    let ca_dir = tempfile::tempdir().expect("dir");
    let ca_path = ca_dir.path().join("internal-ca.pem");
    let up = tls_upstream(&ca_path).await;
    let config = |with_ca: bool| {
        format!(
            r#"
[apps.tls]
federation = "kennisnet"
base_url = "http://127.0.0.1:{{port}}/tls"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.tls.handoff]
mode = "headers"
upstream = "https://{up}"
{}
"#,
            if with_ca {
                format!("upstream_ca = \"{}\"", ca_path.display())
            } else {
                String::new()
            }
        )
    };
    let b = Bridge::start_with(&config(true)).await;
    let c = client();
    log_in(&c, &b, "tls", None).await;
    let resp = c.get(format!("{}/tls/hello", b.base)).send().await.expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.expect("body"), "tls hello 100231@school-a.nl");

    let untrusted = Bridge::start_with(&config(false)).await;
    let c = client();
    log_in(&c, &untrusted, "tls", None).await;
    let resp = c
        .get(format!("{}/tls/hello", untrusted.base))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 502, "a certificate no trusted CA signed is refused");
}

#[tokio::test]
async fn sessions_end_after_their_idle_time_and_their_absolute_lifetime() {
    let up = upstream().await;
    let idle = Bridge::start_with(&format!(
        "{}\n[sessions]\nidle_timeout = \"1s\"\nlifetime = \"1h\"\n",
        proxied_app(up)
    ))
    .await;
    let c = client();
    log_in(&c, &idle, "proxied", None).await;
    echo(&c, &idle, &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    echo(&c, &idle, &[]).await; // use within the idle time keeps it alive
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    echo(&c, &idle, &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let resp = c.get(format!("{}/proxied/echo", idle.base)).send().await.expect("get");
    assert_eq!(resp.status(), 401, "idle for longer than idle_timeout");

    let absolute = Bridge::start_with(&format!(
        "{}\n[sessions]\nidle_timeout = \"1h\"\nlifetime = \"2s\"\n",
        proxied_app(up)
    ))
    .await;
    let c = client();
    log_in(&c, &absolute, "proxied", None).await;
    for _ in 0..3 {
        echo(&c, &absolute, &[]).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let resp = c
        .get(format!("{}/proxied/echo", absolute.base))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 401, "used all the time, but past the absolute lifetime");
}
