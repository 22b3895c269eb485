//! Headers mode against a real upstream server: an app that knows nothing of SAML sits behind
//! the bridge and sees only the bridge's identity headers.

use crate::common;

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
        // Nameless cookies: a browser sends them back as their bare value, so these
        // would arrive as `eb_session_proxied=planted` and `__Host-eb_session_x=planted`.
        r.headers_mut()
            .append("set-cookie", "=eb_session_proxied=planted; Path=/".parse().expect("v"));
        r.headers_mut().append(
            "set-cookie",
            "=__Host-eb_session_x=planted; Path=/; Secure".parse().expect("v"),
        );
        r.headers_mut()
            .append("set-cookie", "eb_session_proxied; Path=/".parse().expect("v"));
        r.headers_mut().append("set-cookie", " =x; Path=/".parse().expect("v"));
        r.headers_mut().append(
            "set-cookie",
            "__Secure-eb_login_y=1; Path=/; Secure".parse().expect("v"),
        );
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

pub(crate) fn proxied_app(upstream: SocketAddr) -> String {
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

/// What a raw-socket upstream answers: plain 200s, or a 101 to every request with the
/// given `Sec-WebSocket-Accept` line (`None`: none at all).
#[derive(Clone)]
enum Answer {
    Ok,
    SwitchWithAccept(Option<&'static str>),
}

/// An upstream on a bare TCP socket that records every request head exactly as the bytes
/// arrived (no HTTP library between the wire and the witness) and answers per `answer`.
struct Recorder {
    addr: SocketAddr,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start(answer: Answer) -> Recorder {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let (seen, answer) = (seen.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Ok(n) = tcp.read(&mut chunk).await else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end + 4]).to_string();
                            buf.drain(..end + 4);
                            seen.lock().expect("lock").push(head);
                            let reply = match &answer {
                                Answer::Ok => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_string(),
                                Answer::SwitchWithAccept(accept) => format!(
                                    "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n{}\r\n",
                                    accept.map(|a| format!("sec-websocket-accept: {a}\r\n")).unwrap_or_default()
                                ),
                            };
                            if tcp.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        Recorder { addr, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }

    /// The header names (lowercased as sent) and values of the last request received.
    fn last_headers(&self) -> Vec<(String, String)> {
        let heads = self.heads();
        let last = heads.last().expect("the upstream received a request");
        last.split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect()
    }
}

/// Sends `raw` (a whole request) to `addr` and returns the whole answer.
async fn raw_request(addr: &str, raw: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(raw.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).to_string()
}

/// A bridge with `proxied` (and `other`) in front of `up`, plus `extra` config, and a
/// logged-in session cookie (`eb_session_proxied=...`) for `proxied`.
async fn recorded_bridge(up: SocketAddr, extra: &str) -> (Bridge, String) {
    let b = Bridge::start_with(&format!("{}{extra}", proxied_app(up))).await;
    let c = client();
    let acs = log_in(&c, &b, "proxied", None).await;
    let cookie = first_cookie(&acs);
    assert!(cookie.starts_with("eb_session_proxied="), "{cookie}");
    (b, cookie)
}

#[tokio::test]
async fn dot_segments_with_path_parameters_never_reach_the_upstream() {
    let up = Recorder::start(Answer::Ok).await;
    let (b, cookie) = recorded_bridge(up.addr, "").await;
    let addr = b.base.trim_start_matches("http://").to_string();
    for (path, code) in [
        ("/proxied/..;/admin/x", "path_not_allowed"),
        ("/proxied/.;/x", "path_not_allowed"),
        ("/proxied/%2e%2e;/admin", "path_not_allowed"),
        ("/proxied/..%3b/admin", "path_not_allowed"),
        ("/proxied/..%3B/admin", "path_not_allowed"),
        ("/proxied/.%2E;x=1/admin", "path_not_allowed"),
        ("/proxied/echo;jsessionid=1", "path_parameters_not_allowed"),
        ("/proxied/a%3bb/echo", "path_parameters_not_allowed"),
    ] {
        let answer = raw_request(
            &addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains(&format!("<code>{code}</code>")), "{path}: {answer}");
    }
    assert_eq!(up.heads(), Vec::<String>::new(), "no refused path reached the upstream");
    // The same session on a plain path does reach it, with the identity.
    let answer = raw_request(
        &addr,
        &format!("GET /proxied/echo HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        up.heads()[0].starts_with("GET /proxied/echo HTTP/1.1\r\n"),
        "{:?}",
        up.heads()
    );
}

#[tokio::test]
async fn path_parameters_are_forwarded_only_when_the_app_allows_them() {
    let up = Recorder::start(Answer::Ok).await;
    let b = Bridge::start_with(&proxied_app(up.addr).replace(
        "upstream_timeout = \"1s\"",
        "upstream_timeout = \"1s\"\nallow_path_parameters = true",
    ))
    .await;
    let c = client();
    let cookie = first_cookie(&log_in(&c, &b, "proxied", None).await);
    let addr = b.base.trim_start_matches("http://").to_string();
    let answer = raw_request(
        &addr,
        &format!(
            "GET /proxied/echo;jsessionid=1 HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(up.heads()[0].starts_with("GET /proxied/echo;jsessionid=1 HTTP/1.1\r\n"));
    // Allowed parameters never make a dot segment acceptable.
    let answer = raw_request(
        &addr,
        &format!("GET /proxied/..;/admin HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(answer.contains("<code>path_not_allowed</code>"), "{answer}");
    assert_eq!(up.heads().len(), 1);
}

/// Every spelling of a forwarding header the issue names, as a client would send them.
const FORGED_FORWARDING: [(&str, &str); 19] = [
    ("x_forwarded_for", "6.6.6.6"),
    ("x.forwarded.host", "evil.example"),
    ("X_Forwarded_Proto", "https"),
    ("x_real_ip", "6.6.6.6"),
    ("x_original_url", "/admin"),
    ("true-client-ip", "6.6.6.6"),
    ("x-client-ip", "6.6.6.6"),
    ("cf-connecting-ip", "6.6.6.6"),
    ("client-ip", "6.6.6.6"),
    ("x-forwarded-ssl", "on"),
    ("x-forwarded-scheme", "https"),
    ("x-url-scheme", "https"),
    ("front-end-https", "on"),
    ("x-host", "evil.example"),
    ("Forwarded", "for=6.6.6.6;host=evil;proto=https"),
    ("X-Real-IP", "6.6.6.6"),
    ("X-Original-URL", "/admin"),
    ("X-Forwarded-Port", "443"),
    ("x-forwarded_prefix", "/admin"),
];

fn folded(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

#[tokio::test]
async fn forwarding_headers_in_any_spelling_are_stripped_from_untrusted_peers() {
    let up = Recorder::start(Answer::Ok).await;
    let (b, cookie) = recorded_bridge(up.addr, "").await;
    let mut req = reqwest::Client::new()
        .get(format!("{}/proxied/echo", b.base))
        .header("cookie", &cookie);
    for (k, v) in FORGED_FORWARDING {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.expect("get").status(), 200);
    let received = up.last_headers();
    let host = b.base.trim_start_matches("http://");
    for (name, value) in &received {
        let f = folded(name);
        let forwarding = FORGED_FORWARDING.iter().any(|(k, _)| folded(k) == f) || f.starts_with("x-forwarded-");
        if !forwarding {
            continue;
        }
        // Only the bridge's own three, in their canonical spelling, with its values.
        match name.as_str() {
            "x-forwarded-for" => assert_eq!(value, "127.0.0.1"),
            "x-forwarded-proto" => assert_eq!(value, "http"),
            "x-forwarded-host" => assert_eq!(value, host),
            other => panic!("{other}: {value} reached the upstream: {received:?}"),
        }
    }
    assert!(received.iter().any(|(k, _)| k == "x-forwarded-for"), "{received:?}");
}

#[tokio::test]
async fn a_trusted_proxy_passes_only_canonical_forwarding_headers() {
    let up = Recorder::start(Answer::Ok).await;
    let b = Bridge::start_edited(
        |_| {},
        |config| {
            let port = config
                .split("listen = \"127.0.0.1:")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .expect("port")
                .to_string();
            config.replace("[server]\n", "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n")
                + &proxied_app(up.addr).replace("{port}", &port)
        },
    )
    .await;
    let c = client();
    let cookie = first_cookie(&log_in(&c, &b, "proxied", None).await);
    let mut req = reqwest::Client::new()
        .get(format!("{}/proxied/echo", b.base))
        .header("cookie", &cookie);
    for (k, v) in FORGED_FORWARDING {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.expect("get").status(), 200);
    let received = up.last_headers();
    let names: Vec<&str> = received.iter().map(|(k, _)| k.as_str()).collect();
    for kept in [
        "x-real-ip",
        "forwarded",
        "true-client-ip",
        "x-forwarded-port",
        "x-original-url",
    ] {
        assert!(names.contains(&kept), "{kept} from a trusted proxy: {names:?}");
    }
    for dropped in [
        "x_forwarded_for",
        "x.forwarded.host",
        "x_forwarded_proto",
        "x_real_ip",
        "x_original_url",
        "x-forwarded_prefix",
    ] {
        assert!(!names.contains(&dropped), "{dropped} is a client's copy: {names:?}");
    }
}

#[tokio::test]
async fn two_host_headers_are_a_400_and_never_forwarded() {
    let up = Recorder::start(Answer::Ok).await;
    let (b, cookie) = recorded_bridge(up.addr, "").await;
    let addr = b.base.trim_start_matches("http://").to_string();
    for hosts in [
        format!("Host: {addr}\r\nHost: evil.example\r\n"),
        format!("Host: {addr}\r\nhost: {addr}\r\n"),
    ] {
        let answer = raw_request(
            &addr,
            &format!("GET /proxied/echo HTTP/1.1\r\n{hosts}Cookie: {cookie}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("<code>host_header_invalid</code>"), "{answer}");
    }
    assert_eq!(up.heads(), Vec::<String>::new());
}

#[tokio::test]
async fn a_websocket_tunnel_needs_the_upstreams_valid_accept() {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    for accept in [None, Some("wrong"), Some("dGhlIHNhbXBsZSBub25jZQ==")] {
        let up = Recorder::start(Answer::SwitchWithAccept(accept)).await;
        let (b, cookie) = recorded_bridge(up.addr, "").await;
        let addr = b.base.trim_start_matches("http://").to_string();
        let answer = raw_request(
            &addr,
            &format!(
                "GET /proxied/ws HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 502"), "{accept:?}: {answer}");
        assert!(
            answer.contains("<code>upstream_upgrade_invalid</code>"),
            "{accept:?}: {answer}"
        );
        assert_eq!(up.heads().len(), 1, "the upstream was asked");
    }
    // The control: the RFC 6455 example key and its accept open the tunnel.
    let up = Recorder::start(Answer::SwitchWithAccept(Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))).await;
    let (b, cookie) = recorded_bridge(up.addr, "").await;
    let addr = b.base.trim_start_matches("http://").to_string();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    tcp.write_all(
        format!(
            "GET /proxied/ws HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut head = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut head))
        .await
        .expect("answer in time")
        .expect("read");
    let head = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

/// Opens a WebSocket through the bridge with `cookie`, and checks it echoes.
async fn open_echo_socket(
    b: &Bridge,
    cookie: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("{}/proxied/ws", b.base.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).expect("request");
    request.headers_mut().insert("cookie", cookie.parse().expect("cookie"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket");
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text("hallo".into()))
        .await
        .expect("send");
    let reply = socket.next().await.expect("reply").expect("message");
    assert_eq!(reply.into_text().expect("text").as_str(), "echo: hallo");
    socket
}

/// Whether the socket ends (closed, reset or a close frame) within `within`.
async fn closes_within(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    within: std::time::Duration,
) -> bool {
    let _ = socket
        .send(tokio_tungstenite::tungstenite::Message::Text("still there?".into()))
        .await;
    let ended = tokio::time::timeout(within, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    ended.is_ok()
}

#[tokio::test]
async fn a_websocket_tunnel_closes_when_its_session_ends() {
    let up = upstream().await;
    let b = Bridge::start_with(&format!(
        "{}\n[sessions]\nidle_timeout = \"3s\"\nlifetime = \"1h\"\n",
        proxied_app(up)
    ))
    .await;
    let c = client();
    let cookie = first_cookie(&log_in(&c, &b, "proxied", None).await);
    let mut kept = open_echo_socket(&b, &cookie).await;
    // Open, in use, before the logout: the tunnel stays (checks every 300 ms).
    let mut socket = open_echo_socket(&b, &cookie).await;
    assert!(
        !closes_within(&mut kept, std::time::Duration::from_millis(800)).await,
        "a live session keeps its tunnel"
    );
    let logout = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/proxied/saml2/kennisnet/logout", b.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert!(logout.status().is_redirection() || logout.status().is_success());
    assert!(
        closes_within(&mut socket, std::time::Duration::from_secs(2)).await,
        "logout closes the tunnel"
    );
    assert!(closes_within(&mut kept, std::time::Duration::from_secs(2)).await);

    // Expiry: the absolute lifetime ends a tunnel that is in use all the time.
    let b = Bridge::start_with(&format!(
        "{}\n[sessions]\nidle_timeout = \"1h\"\nlifetime = \"2s\"\n",
        proxied_app(up)
    ))
    .await;
    let c = client();
    let cookie = first_cookie(&log_in(&c, &b, "proxied", None).await);
    let mut socket = open_echo_socket(&b, &cookie).await;
    assert!(
        closes_within(&mut socket, std::time::Duration::from_secs(4)).await,
        "expiry closes the tunnel"
    );
}

#[tokio::test]
async fn a_tossed_session_cookie_cannot_shadow_the_real_one() {
    let up = Recorder::start(Answer::Ok).await;
    let (b, cookie) = recorded_bridge(up.addr, "").await;
    let get = |cookies: String| {
        reqwest::Client::new()
            .get(format!("{}/proxied/echo", b.base))
            .header("accept", "application/json")
            .header("cookie", cookies)
            .send()
    };
    // A tossed cookie sent first (a more specific path, or a nameless one) is no session.
    for tossed in [
        "eb_session_proxied=tossed",
        "eb_session_proxied=",
        "=eb_session_proxied=x",
    ] {
        let resp = get(format!("{tossed}; {cookie}")).await.expect("get");
        assert_eq!(resp.status(), 200, "{tossed}");
        let person = up
            .last_headers()
            .into_iter()
            .find(|(k, _)| k == "x-bridge-person-code")
            .map(|(_, v)| v);
        assert_eq!(person.as_deref(), Some("100231@school-a.nl"), "{tossed}");
    }
    // Two valid sessions (one planted: the attacker's own) are refused, never guessed.
    let attacker = client();
    let planted = first_cookie(&log_in(&attacker, &b, "proxied", None).await);
    let before = up.heads().len();
    let resp = get(format!("{planted}; {cookie}")).await.expect("get");
    assert_eq!(resp.status(), 400);
    assert!(resp
        .text()
        .await
        .expect("body")
        .contains("<code>session_cookie_ambiguous</code>"));
    assert_eq!(
        up.heads().len(),
        before,
        "an ambiguous request never reaches the upstream"
    );
    // The bridge's cookies, any spelling, stay with the bridge.
    for (_, cookies) in up.heads().iter().flat_map(|h| {
        h.split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    }) {
        assert!(!cookies.contains("eb_session"), "{cookies}");
    }
}

#[tokio::test]
async fn a_websocket_tunnel_closes_at_idp_initiated_single_logout() {
    use entree_bridge::saml::logout;
    use entree_bridge::saml::redirect::{self, Kind};
    let up = upstream().await;
    let b = Bridge::start_custom(
        &format!("{}\n[sessions]\nidle_timeout = \"3s\"\n", proxied_app(up)),
        |dir| {
            // The IdP metadata with a SingleLogoutService, so that the IdP may send one.
            let metadata = std::fs::read_to_string(dir.join("idp-metadata.xml")).expect("read");
            let with_slo = metadata.replacen(
                "<md:NameIDFormat>",
                r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.test.invalid/slo"/><md:NameIDFormat>"#,
                1,
            );
            std::fs::write(dir.join("idp-metadata.xml"), with_slo).expect("write");
        },
    )
    .await;
    let c = client();
    let login = start_login(&c, &b, "proxied", None).await;
    let mut spec = b.spec("proxied", Some(&login.request_id));
    spec.name_id = "slo-subject".to_string();
    let xml = b.idp.response(&spec).expect("sign");
    let cookie = first_cookie(&post_acs_response(&c, &b, "proxied", &xml, Some(&login.relay_state)).await);
    let mut socket = open_echo_socket(&b, &cookie).await;
    let name_id = spec.name_id.clone();
    let sls = format!("{}/proxied/saml2/kennisnet/sls", b.base);
    let request = logout::request_xml("_slo_ws_1", &sls, &b.idp.entity_id, &name_id, None, None);
    let signed = redirect::build_url(&sls, Kind::Request, &request, "rs", Some(&b.idp.key)).expect("url");
    let resp = client().get(&signed).send().await.expect("sls");
    assert_eq!(resp.status(), 302, "the IdP's LogoutRequest was accepted");
    assert!(
        closes_within(&mut socket, std::time::Duration::from_secs(2)).await,
        "Single Logout closes the tunnel"
    );
}
