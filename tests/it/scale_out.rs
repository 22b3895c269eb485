//! Several bridge processes sharing Redis and PostgreSQL, as behind a load balancer, and the
//! faults that come with them: Redis gone at start, Redis lost under load, PostgreSQL gone.
//!
//! Both instances serve one public address, `http://bridge.test:{port}`: instance A listens on
//! 127.0.0.1:{port}, B on 127.0.0.2:{port}, and each simulated browser has one cookie jar and
//! a client per instance (the name resolved to A or to B), so a test decides which instance
//! answers each request, as a load balancer would.

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::routing::any;
use base64::Engine;
use common::oidc::{authorize_url_at, query_param, redeem_at, start_authorization, ClientAuth, Pkce};
use common::process::BridgeProcess;
use common::services::*;
use common::*;
use entree_bridge::demo::idp::{DevIdp, ResponseSpec};

const HOST: &str = "bridge.test";
/// The fleet's oidc app `rp`: a confidential client.
const RP_CLIENT_ID: &str = "rp-web";
const RP_SECRET: &str = "rp-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
const RP_REDIRECT_URI: &str = "http://127.0.0.1/rp/cb";
const INSTANCE_IPS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)];

/// The upstream app in headers mode: answers with the person code it was handed.
async fn upstream() -> SocketAddr {
    async fn who(headers: HeaderMap) -> String {
        headers
            .get("x-bridge-person-code")
            .and_then(|v| v.to_str().ok())
            .map(|v| format!("person={v}"))
            .unwrap_or_else(|| "anonymous".into())
    }
    let app = axum::Router::new().route("/portal/{*rest}", any(who));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A port free on both instance addresses.
fn port_for_both() -> u16 {
    for _ in 0..50 {
        let a = std::net::TcpListener::bind((INSTANCE_IPS[0], 0)).expect("bind");
        let port = a.local_addr().expect("addr").port();
        if std::net::TcpListener::bind((INSTANCE_IPS[1], port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both loopback addresses");
}

/// Two bridge processes on one config, sharing a Redis and a PostgreSQL database.
struct Fleet {
    dir: tempfile::TempDir,
    idp: DevIdp,
    port: u16,
    config: PathBuf,
    instances: Vec<Option<BridgeProcess>>,
    _database: TestDatabase,
}

impl Fleet {
    async fn start(redis_url: &str, prefix: &str) -> Fleet {
        let (dir, idp, _) = prepare_dir();
        common::oidc::write_rsa_key(dir.path());
        let database = TestDatabase::create().await;
        let port = port_for_both();
        let up = upstream().await;
        let config = dir.path().join("bridge.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
listen = "127.0.0.1:{port}"
public_base_url = "http://{HOST}:{port}"

{sessions}

[links]
store = "postgres"
postgres_url = "{db}"

[keys]
jwt_signing_key = ["jwt.pem", "jwt-rsa.pem"]

[federations.kennisnet]
metadata = "idp-metadata.xml"

[apps.numo]
federation = "kennisnet"
base_url = "http://{HOST}:{port}/numo"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["99XX"]
[apps.numo.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.numo.handoff]
callback_url = "http://{HOST}:{port}/callback"

[apps.open]
federation = "kennisnet"
base_url = "http://{HOST}:{port}/open"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
allow_unsolicited = true
[apps.open.handoff]
callback_url = "https://open.example.nl/sso/callback"

[apps.portal]
federation = "kennisnet"
base_url = "http://{HOST}:{port}/portal"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.portal.handoff]
mode = "headers"
upstream = "http://{up}"

[apps.rp]
federation = "kennisnet"
base_url = "http://{HOST}:{port}/rp"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.rp.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.rp.handoff]
mode = "oidc"
client_id = "{RP_CLIENT_ID}"
client_secret = "{RP_SECRET}"
redirect_uris = ["{RP_REDIRECT_URI}"]
"#,
                sessions = redis_sessions_config(redis_url, prefix, "timeout = \"1s\""),
                db = database.url,
            ),
        )
        .expect("write config");
        let mut fleet = Fleet {
            dir,
            idp,
            port,
            config,
            instances: vec![None, None],
            _database: database,
        };
        fleet.start_instance(0).await;
        fleet.start_instance(1).await;
        fleet
    }

    fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(INSTANCE_IPS[i]), self.port)
    }

    fn base(&self) -> String {
        format!("http://{HOST}:{}", self.port)
    }

    fn acs(&self, app: &str) -> String {
        format!("{}/{app}/saml2/kennisnet/acs", self.base())
    }

    /// Starts instance `i` and waits until it answers /healthz.
    async fn start_instance(&mut self, i: usize) {
        let log = self.dir.path().join(format!("instance-{i}.log"));
        self.instances[i] = Some(BridgeProcess::start(&self.config, self.addr(i), log).await);
    }

    fn stop_instance(&mut self, i: usize) {
        self.instances[i] = None;
    }

    fn log_of(&self, i: usize) -> String {
        self.instances[i]
            .as_ref()
            .map(BridgeProcess::log_text)
            .unwrap_or_default()
    }

    /// Both processes still answer (no panic, no exit).
    async fn assert_alive(&self) {
        for i in 0..self.instances.len() {
            let alive = reqwest::get(format!("http://{}/healthz", self.addr(i)))
                .await
                .is_ok_and(|r| r.status() == 200);
            assert!(alive, "instance {i} is gone:\n{}", self.log_of(i));
        }
    }

    fn browser(&self) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let via = (0..2)
            .map(|i| {
                reqwest::Client::builder()
                    .cookie_provider(jar.clone())
                    .redirect(reqwest::redirect::Policy::none())
                    .resolve(HOST, self.addr(i))
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("client")
            })
            .collect();
        Browser { via }
    }

    fn spec(&self, app: &str, request_id: Option<&str>, real_id: &str) -> ResponseSpec {
        ResponseSpec::new(
            &format!("{}/{app}/saml2/kennisnet/metadata", self.base()),
            &self.acs(app),
            request_id,
        )
        .attribute("nlEduPersonRealId", &[real_id])
        .attribute("nlEduPersonHomeOrganizationId", &["99XX"])
        .attribute("eduPersonAffiliation", &["student"])
    }

    /// Starts a login for `app` on instance `on` and answers it through instance `answer_on`.
    async fn log_in(&self, b: &Browser, app: &str, on: usize, answer_on: usize, real_id: &str) -> reqwest::Response {
        let login = start_login_at(&b.via[on], &self.base(), app, None).await;
        let xml = self
            .idp
            .response(&self.spec(app, Some(&login.request_id), real_id))
            .expect("sign");
        post_acs_at(&b.via[answer_on], &self.acs(app), &xml, Some(&login.relay_state)).await
    }

    /// An authorization of the oidc app `rp`, started on instance `on` and answered at the
    /// ACS of `answer_on`; returns its code and the PKCE pair it was asked with.
    async fn authorize(&self, b: &Browser, on: usize, answer_on: usize, real_id: &str) -> (String, Pkce) {
        let pkce = Pkce::new();
        let url = authorize_url_at(&self.base(), RP_CLIENT_ID, RP_REDIRECT_URI, &pkce, "");
        let login = start_authorization(&b.via[on], &url).await;
        let xml = self
            .idp
            .response(&self.spec("rp", Some(&login.request_id), real_id))
            .expect("sign");
        let resp = post_acs_at(&b.via[answer_on], &self.acs("rp"), &xml, Some(&login.relay_state)).await;
        assert_eq!(resp.status(), 302, "the ACS of {answer_on} redirects to the client");
        let location = resp.headers()["location"].to_str().expect("location").to_string();
        assert!(location.starts_with(RP_REDIRECT_URI), "{location}");
        (query_param(&location, "code").expect("code"), pkce)
    }

    /// The client's back end redeems `code` at instance `via` (no browser cookies).
    async fn redeem(&self, via: usize, code: &str, pkce: &Pkce) -> (u16, serde_json::Value) {
        let rp = self.browser();
        let resp = redeem_at(
            &rp.via[via],
            &self.base(),
            ClientAuth::Basic(RP_CLIENT_ID, RP_SECRET),
            code,
            RP_REDIRECT_URI,
            &pkce.verifier,
        )
        .await;
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("a JSON answer"))
    }

    /// userinfo at instance `via` for `access_token`.
    async fn userinfo(&self, via: usize, access_token: &str) -> (u16, serde_json::Value) {
        let resp = self.browser().via[via]
            .get(format!("{}/oidc/userinfo", self.base()))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("userinfo");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("a JSON answer"))
    }

    async fn portal_page(&self, b: &Browser, via: usize) -> (u16, String) {
        let r = b.via[via]
            .get(format!("{}/portal/page", self.base()))
            .send()
            .await
            .expect("portal");
        (r.status().as_u16(), r.text().await.expect("body"))
    }
}

/// One browser: one cookie jar, reaching instance A through `via[0]` and B through `via[1]`.
struct Browser {
    via: Vec<reqwest::Client>,
}

fn jwt_sub(page: &str) -> String {
    let outcome = AcsOutcome {
        status: 200,
        body: page.to_string(),
    };
    let token = outcome.token().unwrap_or_else(|| panic!("a hand-off page: {page}"));
    claims_of(&token)["sub"].as_str().expect("sub").to_string()
}

/// The claims of a JWT (not verified: the oidc tests verify signatures with client libraries).
fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_serve_logins_sessions_and_replays_interchangeably() {
    let prefix = unique_prefix();
    let redis = shared_redis_url();
    let mut fleet = Fleet::start(&redis, &prefix).await;

    // A login started on A completes on B (the pending request is in Redis).
    let b = fleet.browser();
    let resp = fleet.log_in(&b, "numo", 0, 1, "100231@school-a.nl").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(jwt_sub(&resp.text().await.expect("body")), "100231");

    // A response accepted on B is a replay on A.
    let xml = fleet.idp.response(&fleet.spec("open", None, "x@y")).expect("sign");
    let b2 = fleet.browser();
    let first = post_acs_at(&b2.via[1], &fleet.acs("open"), &xml, None).await;
    assert_eq!(first.status(), 200);
    let again = post_acs_at(&b2.via[0], &fleet.acs("open"), &xml, None).await;
    AcsOutcome {
        status: again.status().as_u16(),
        body: again.text().await.expect("body"),
    }
    .assert_rejected(400, "assertion_replayed");

    // A session made on A is honoured by B.
    let b3 = fleet.browser();
    let resp = fleet.log_in(&b3, "portal", 0, 0, "anna@school-a.nl").await;
    assert_eq!(resp.status(), 302, "headers mode logs in with a redirect");
    assert_eq!(fleet.portal_page(&b3, 1).await, (200, "person=anna@school-a.nl".into()));

    // A restarted instance keeps every session: they are in Redis.
    fleet.stop_instance(0);
    fleet.start_instance(0).await;
    assert_eq!(fleet.portal_page(&b3, 0).await, (200, "person=anna@school-a.nl".into()));

    // Logged out on B: gone on A too.
    let out = b3.via[1]
        .get(format!("{}/portal/saml2/kennisnet/logout", fleet.base()))
        .send()
        .await
        .expect("logout");
    assert!(out.status().is_redirection() || out.status() == 200, "{}", out.status());
    let (status, _) = fleet.portal_page(&b3, 0).await;
    assert_eq!(status, 401, "no session after logout elsewhere");
    fleet.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_across_instances_are_neither_lost_nor_doubled() {
    let prefix = unique_prefix();
    let redis = shared_redis_url();
    let fleet = Arc::new(Fleet::start(&redis, &prefix).await);
    const LOGINS: usize = 120;

    let sem = Arc::new(tokio::sync::Semaphore::new(24));
    let tasks = (0..LOGINS).map(|n| {
        let (fleet, sem) = (fleet.clone(), sem.clone());
        tokio::spawn(async move {
            let _permit = sem.acquire().await.expect("permit");
            let b = fleet.browser();
            let (on, answer_on) = (n % 2, (n / 2) % 2);
            let resp = fleet
                .log_in(&b, "portal", on, answer_on, &format!("student-{n}@school-a.nl"))
                .await;
            assert_eq!(resp.status(), 302, "login {n}");
            (n, b, first_cookie(&resp))
        })
    });
    let mut browsers = Vec::new();
    for t in tasks {
        browsers.push(t.await.expect("login task"));
    }
    let cookies: std::collections::HashSet<&String> = browsers.iter().map(|(_, _, c)| c).collect();
    assert_eq!(cookies.len(), LOGINS, "every login has a session of its own");

    // Every session is there, on both instances, and is the right student's.
    for (n, b, _) in &browsers {
        for via in 0..2 {
            assert_eq!(
                fleet.portal_page(b, via).await,
                (200, format!("person=student-{n}@school-a.nl")),
                "login {n} via instance {via}"
            );
        }
    }
    let sessions = keys_under(&redis, &format!("{prefix}session:")).await;
    assert_eq!(sessions.len(), LOGINS, "one session key per login, no more");
    assert!(
        keys_under(&redis, &format!("{prefix}login:")).await.is_empty(),
        "no pending login left behind"
    );

    // One response raced to both instances ten times: accepted exactly once.
    let xml = Arc::new(fleet.idp.response(&fleet.spec("open", None, "race@x")).expect("sign"));
    let races = (0..10).map(|n| {
        let (fleet, xml) = (fleet.clone(), xml.clone());
        tokio::spawn(async move {
            let b = fleet.browser();
            post_acs_at(&b.via[n % 2], &fleet.acs("open"), &xml, None)
                .await
                .status()
                .as_u16()
        })
    });
    let mut statuses = Vec::new();
    for r in races {
        statuses.push(r.await.expect("race"));
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 400).count(), 9, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_code_issued_on_one_instance_is_redeemed_on_the_other_and_only_once() {
    let prefix = unique_prefix();
    let redis = shared_redis_url();
    let fleet = Fleet::start(&redis, &prefix).await;

    // Authorize and ACS on A; the client's back end reaches B.
    let b = fleet.browser();
    let (code, pkce) = fleet.authorize(&b, 0, 0, "100231@school-a.nl").await;
    let (status, tokens) = fleet.redeem(1, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims_of(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(id["iss"], fleet.base().as_str());
    assert_eq!(id["aud"], RP_CLIENT_ID);
    assert_eq!(id["sub"], "100231");
    assert_eq!(id["nonce"], "nonce-1");

    // The access token B issued answers on A.
    let access = tokens["access_token"].as_str().expect("access_token");
    let (status, info) = fleet.userinfo(0, access).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["sub"], "100231");

    // Redeemed on B: gone on A too.
    let (status, err) = fleet.redeem(0, &code, &pkce).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_grant")), "{err}");

    // The OP session made on A answers an authorization on B at once, with a code of its own.
    let pkce2 = Pkce::new();
    let url = authorize_url_at(&fleet.base(), RP_CLIENT_ID, RP_REDIRECT_URI, &pkce2, "&prompt=none");
    let resp = b.via[1].get(&url).send().await.expect("authorize");
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().expect("location").to_string();
    let code2 = query_param(&location, "code").unwrap_or_else(|| panic!("a code from the session: {location}"));
    assert_ne!(code2, code);
    let (status, tokens) = fleet.redeem(0, &code2, &pkce2).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        claims_of(tokens["id_token"].as_str().expect("id_token"))["sid"],
        id["sid"],
        "one OP session, one sid"
    );
    assert!(
        keys_under(&redis, &format!("{prefix}login:")).await.is_empty(),
        "no pending login left behind"
    );
    fleet.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_raced_to_both_instances_is_redeemed_exactly_once() {
    let prefix = unique_prefix();
    let redis = shared_redis_url();
    let fleet = Fleet::start(&redis, &prefix).await;
    const CODES: usize = 20;
    for n in 0..CODES {
        let b = fleet.browser();
        let (code, pkce) = fleet
            .authorize(&b, n % 2, (n / 2) % 2, &format!("racer-{n}@school-a.nl"))
            .await;
        let (a, b) = tokio::join!(fleet.redeem(0, &code, &pkce), fleet.redeem(1, &code, &pkce));
        let mut outcomes = [a, b];
        outcomes.sort_by_key(|(status, _)| *status);
        let [(won, tokens), (lost, err)] = outcomes;
        assert_eq!(won, 200, "code {n}: one redemption succeeds: {tokens} / {err}");
        assert_eq!(
            claims_of(tokens["id_token"].as_str().expect("id_token"))["sub"],
            format!("racer-{n}"),
            "code {n}"
        );
        assert_eq!(
            (lost, err["error"].as_str()),
            (400, Some("invalid_grant")),
            "code {n}: the other is refused: {err}"
        );
    }
    assert!(
        keys_under(&redis, &format!("{prefix}code:")).await.is_empty(),
        "no code is left to redeem"
    );
    fleet.assert_alive().await;
}

/// What one login attempt during a fault came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    LoggedIn,
    /// The 503 page with `store_unavailable`.
    Unavailable,
    /// Started before Redis went away and answered after: that Redis's state is gone.
    StateLost,
    Other(u16, String),
}

async fn attempt(fleet: &Fleet, n: usize) -> Outcome {
    let b = fleet.browser();
    let login = b.via[n % 2]
        .get(format!("{}/numo/saml2/kennisnet/login", fleet.base()))
        .send()
        .await
        .expect("no request hangs or fails at the HTTP level");
    if login.status() == 503 {
        let body = login.text().await.expect("body");
        return classify(503, &body);
    }
    let location = login.headers()["location"].to_str().expect("location").to_string();
    let query = location.split_once('?').expect("query").1;
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .expect("param")
    };
    let xml_req = entree_bridge::saml::authn_request::inflate_bounded(
        &base64::engine::general_purpose::STANDARD
            .decode(param("SAMLRequest"))
            .expect("b64"),
        1 << 16,
    )
    .expect("inflate");
    let doc_text = String::from_utf8(xml_req).expect("utf8");
    let doc = roxmltree::Document::parse(&doc_text).expect("xml");
    let request_id = doc.root_element().attribute("ID").expect("ID").to_string();
    let xml = fleet
        .idp
        .response(&fleet.spec("numo", Some(&request_id), "100231@school-a.nl"))
        .expect("sign");
    let resp = post_acs_at(
        &b.via[(n + 1) % 2],
        &fleet.acs("numo"),
        &xml,
        Some(&param("RelayState")),
    )
    .await;
    let status = resp.status().as_u16();
    classify(status, &resp.text().await.expect("body"))
}

fn classify(status: u16, body: &str) -> Outcome {
    match status {
        200 if body.contains("name=\"token\"") => Outcome::LoggedIn,
        503 if body.contains("<code>store_unavailable</code>") => Outcome::Unavailable,
        400 if body.contains("<code>login_state_missing</code>") => Outcome::StateLost,
        _ => Outcome::Other(status, body.chars().take(300).collect()),
    }
}

async fn wait_until_ready(fleet: &Fleet, i: usize, within: Duration) -> Duration {
    let started = Instant::now();
    let url = format!("http://{}/readyz", fleet.addr(i));
    while started.elapsed() < within {
        if reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("instance {i} not ready within {within:?}:\n{}", fleet.log_of(i));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_and_lost_under_load_gives_503_and_recovers_by_itself() {
    let mut redis = RedisServer::stopped();
    let prefix = unique_prefix();
    // Redis is not running: both instances start anyway.
    let fleet = Arc::new(Fleet::start(&redis.url(), &prefix).await);
    for i in 0..2 {
        let r = reqwest::get(format!("http://{}/readyz", fleet.addr(i)))
            .await
            .expect("readyz");
        assert_eq!(r.status(), 503, "not ready without Redis");
    }
    // Login and ACS answer the 503 page, in Dutch and in English, within the timeout.
    let b = fleet.browser();
    for (lang, words) in [("nl", "tijdelijke storing"), ("en", "temporary problem")] {
        let started = Instant::now();
        let r = b.via[0]
            .get(format!("{}/numo/saml2/kennisnet/login", fleet.base()))
            .header("accept-language", lang)
            .send()
            .await
            .expect("login");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(r.status(), 503);
        let body = r.text().await.expect("body").to_lowercase();
        assert!(body.contains("<code>store_unavailable</code>"), "{body}");
        assert!(body.contains(words), "{lang} page says {words}: {body}");
    }
    let xml = fleet.idp.response(&fleet.spec("open", None, "x@y")).expect("sign");
    let r = post_acs_at(&b.via[1], &fleet.acs("open"), &xml, None).await;
    assert_eq!(r.status(), 503);

    // Redis comes: both instances recover without a restart.
    redis.start();
    for i in 0..2 {
        wait_until_ready(&fleet, i, Duration::from_secs(10)).await;
    }
    assert_eq!(attempt(&fleet, 0).await, Outcome::LoggedIn);

    // Under load, Redis dies and comes back.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let (fleet, stop) = (fleet.clone(), stop.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut n = w;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let started = Instant::now();
                    let outcome = attempt(&fleet, n).await;
                    seen.push((Instant::now(), started.elapsed(), outcome));
                    n += 6;
                }
                seen
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.stop();
    let down_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.start();
    let up_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    let others: Vec<_> = all.iter().filter(|(_, _, o)| matches!(o, Outcome::Other(..))).collect();
    assert!(others.is_empty(), "only logins, 503 pages or lost state: {others:?}");
    let slowest = all.iter().map(|(_, d, _)| *d).max().expect("attempts");
    assert!(slowest < Duration::from_secs(5), "a login took {slowest:?}");
    assert!(
        all.iter()
            .any(|(at, _, o)| *o == Outcome::Unavailable && *at > down_at && *at < up_at),
        "the outage was seen"
    );
    let recovered = all
        .iter()
        .filter(|(at, _, o)| *o == Outcome::LoggedIn && *at > up_at)
        .map(|(at, _, _)| at.duration_since(up_at))
        .min()
        .expect("logins succeed again after Redis is back");
    assert!(recovered < Duration::from_secs(5), "recovered after {recovered:?}");
    let before = all
        .iter()
        .filter(|(at, _, o)| *o == Outcome::LoggedIn && *at < down_at)
        .count();
    let after = all
        .iter()
        .filter(|(at, _, o)| *o == Outcome::LoggedIn && *at > up_at)
        .count();
    assert!(
        before > 0 && after > 0,
        "logins before ({before}) and after ({after}) the outage"
    );
    let tail: Vec<_> = all
        .iter()
        .filter(|(at, _, _)| *at > up_at + Duration::from_secs(4))
        .map(|(_, _, o)| o.clone())
        .collect();
    assert!(
        !tail.is_empty() && tail.iter().all(|o| *o == Outcome::LoggedIn),
        "seconds after the outage every login works: {tail:?}"
    );
    eprintln!(
        "outage: {} attempts, {before} logins before, {after} after; first login {recovered:?} after Redis came back",
        all.len()
    );
    fleet.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lost_gives_503_at_the_oidc_endpoints_and_they_recover_by_themselves() {
    let mut redis = RedisServer::stopped();
    redis.start();
    let prefix = unique_prefix();
    let fleet = Fleet::start(&redis.url(), &prefix).await;
    // A code and an access token from before the outage, to be presented during it.
    let b = fleet.browser();
    let (code, pkce) = fleet.authorize(&b, 0, 1, "100231@school-a.nl").await;
    let (status, tokens) = fleet.redeem(0, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access_token").to_string();
    let (code, pkce) = fleet.authorize(&fleet.browser(), 1, 0, "100231@school-a.nl").await;

    redis.stop();
    for via in 0..2 {
        // A valid authorization request from a browser without a session.
        let started = Instant::now();
        let url = authorize_url_at(&fleet.base(), RP_CLIENT_ID, RP_REDIRECT_URI, &Pkce::new(), "");
        let r = fleet.browser().via[via].get(&url).send().await.expect("authorize");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(r.status(), 503, "authorize on {via}");
        let body = r.text().await.expect("body");
        assert!(body.contains("<code>store_unavailable</code>"), "{body}");

        let started = Instant::now();
        let (status, err) = fleet.redeem(via, &code, &pkce).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        assert_eq!(
            (status, err["error"].as_str()),
            (503, Some("temporarily_unavailable")),
            "token on {via}: {err}"
        );

        let (status, err) = fleet.userinfo(via, &access).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (503, Some("temporarily_unavailable")),
            "userinfo on {via}: {err}"
        );
    }

    // Redis back (empty: it keeps nothing on disk): a whole code flow works again, no restart.
    redis.start();
    for i in 0..2 {
        wait_until_ready(&fleet, i, Duration::from_secs(10)).await;
    }
    let b = fleet.browser();
    let (code, pkce) = fleet.authorize(&b, 1, 0, "anna@school-a.nl").await;
    let (status, tokens) = fleet.redeem(1, &code, &pkce).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims_of(tokens["id_token"].as_str().expect("id_token"))["sub"], "anna");
    let (status, info) = fleet
        .userinfo(0, tokens["access_token"].as_str().expect("access_token"))
        .await;
    assert_eq!((status, info["sub"].as_str()), (200, Some("anna")), "{info}");
    fleet.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gone_gives_503_for_logins_that_need_a_link_and_recovers_by_itself() {
    let database = TestDatabase::create().await;
    let target: SocketAddr = "127.0.0.1:5432".parse().expect("addr");
    let gate = TcpGate::start(target, false).await;
    let url = database.url.replace("127.0.0.1:5432", &gate.addr.to_string());
    assert_ne!(url, database.url, "the test database URL goes through the gate");
    let links = format!("[links]\nstore = \"postgres\"\npostgres_url = \"{url}\"\ntimeout = \"1s\"\n");
    let bridge = Bridge::start_links_section(&links).await;
    let readyz = |b: &Bridge| {
        let url = format!("{}/readyz", b.base);
        async move { reqwest::get(url).await.expect("readyz").status().as_u16() }
    };
    // PostgreSQL unreachable at start: the bridge runs, is not ready, and logins answer 503.
    assert_eq!(readyz(&bridge).await, 503);
    let client = client();
    let started = Instant::now();
    let (outcome, _) = complete_login(&client, &bridge, "numo", |s| s).await;
    outcome.assert_rejected(503, "link_store_unavailable");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

    // Back: the bridge connects and migrates by itself.
    gate.open();
    let deadline = Instant::now() + Duration::from_secs(10);
    while readyz(&bridge).await != 200 {
        assert!(Instant::now() < deadline, "ready again within 10s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (outcome, _) = complete_login(&client, &bridge, "numo", |s| s).await;
    assert_eq!(outcome.status, 200, "{}", outcome.body);

    // Gone again while connections are pooled: 503 within the timeout, then back.
    gate.close();
    let started = Instant::now();
    let (outcome, _) = complete_login(&client, &bridge, "numo", |s| s).await;
    outcome.assert_rejected(503, "link_store_unavailable");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    gate.open();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (outcome, _) = complete_login(&client, &bridge, "numo", |s| s).await;
        if outcome.status == 200 {
            break;
        }
        outcome.assert_rejected(503, "link_store_unavailable");
        assert!(Instant::now() < deadline, "logins work again within 10s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(database);
}
