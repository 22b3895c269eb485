//! oidc mode's logout: RP-initiated logout at the end_session endpoint, its refusals, and
//! Back-Channel Logout when the IdP ends the student's session (SAML LogoutRequest at the
//! app's SLS): the logout_token checked with `jsonwebtoken` and with openid-client's JOSE
//! (the Node driver), and a back-channel endpoint that never answers.

use std::time::{Duration, Instant};

use crate::common;

use common::oidc::*;
use common::*;
use entree_bridge::saml::logout;
use entree_bridge::saml::redirect::{self, Kind};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const NAME_ID: &str = "subject-bc-1";
const BC_REDIRECT: &str = "http://localhost/bc/cb";

/// An oidc app `name` (public client) whose back-channel logout goes to `uri`.
fn backchannel_app(name: &str, uri: &str) -> String {
    format!(
        r#"
[apps.{name}]
federation = "kennisnet"
base_url = "http://127.0.0.1:{{port}}/{name}"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.{name}.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.{name}.handoff]
mode = "oidc"
redirect_uris = ["{BC_REDIRECT}"]
backchannel_logout_uri = "{uri}"
"#
    )
}

/// A test RP's back-channel endpoint: records every POSTed body.
async fn recording_rp() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let uri = format!("http://{}/backchannel", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (uri, rx)
}

/// A back-channel endpoint that accepts connections and never answers.
async fn silent_rp() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let uri = format!("http://{}/backchannel", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    uri
}

/// Logs `browser` in to `app` (public client) as NameID [`NAME_ID`]; the id_token's claims.
async fn log_in_as_subject(browser: &reqwest::Client, bridge: &Bridge, app: &str) -> Value {
    let pkce = Pkce::new();
    let login = start_authorization(browser, &authorize_url(bridge, app, BC_REDIRECT, &pkce, "")).await;
    let resp = answer_at_acs_with(browser, bridge, app, &login, |mut s| {
        s.name_id = NAME_ID.to_string();
        s
    })
    .await;
    let code = query_param(&location_of(&resp), "code").expect("code");
    let tokens = redeem(bridge, ClientAuth::Public(app), &code, BC_REDIRECT, &pkce.verifier).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.expect("json");
    claims_of(tokens["id_token"].as_str().expect("id_token"))
}

/// The IdP's signed LogoutRequest for [`NAME_ID`] at `app`'s SLS; the SLS's answer.
async fn idp_logout(bridge: &Bridge, app: &str) -> reqwest::Response {
    let sls = format!("{}/{app}/saml2/kennisnet/sls", bridge.base);
    let request = logout::request_xml("_idp_req_bc", &sls, &bridge.idp.entity_id, NAME_ID, None, None);
    let url = redirect::build_url(&sls, Kind::Request, &request, "rs", Some(&bridge.idp.key)).expect("url");
    client().get(&url).send().await.expect("sls")
}

/// Verifies `jwt` (RS256) against the bridge's JWKS for audience `client_id`.
async fn verify_with_jwks(bridge: &Bridge, jwt: &str, client_id: &str) -> Value {
    use jsonwebtoken::{decode, decode_header, jwk::JwkSet, Algorithm, DecodingKey, Validation};
    let jwks: JwkSet = reqwest::get(format!("{}/.well-known/jwks.json", bridge.base))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let header = decode_header(jwt).expect("header");
    assert_eq!(header.alg, Algorithm::RS256);
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("a published key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[client_id]);
    validation.set_issuer(&[&bridge.base]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "iat"]);
    decode::<Value>(jwt, &DecodingKey::from_jwk(jwk).expect("key"), &validation)
        .expect("a valid logout token")
        .claims
}

async fn metrics(bridge: &Bridge) -> String {
    reqwest::get(format!("{}/metrics", bridge.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body")
}

fn node_rp() -> std::path::PathBuf {
    let dir = repo_root().join("tests/interop/oidc/node-rp");
    let setup = std::process::Command::new(dir.join("setup.sh"))
        .status()
        .expect("setup.sh");
    assert!(setup.success(), "node-rp setup");
    dir.join("rp.mjs")
}

// ---------------------------------------------------------------------------------------
// RP-initiated logout
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn rp_initiated_logout_ends_the_session_and_returns_to_the_registered_uri_with_state() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let tokens = log_in_and_redeem(
        &browser,
        &bridge,
        "portal",
        ClientAuth::Basic(CLIENT_ID, CLIENT_SECRET),
        REDIRECT_URI,
    )
    .await;
    let hint = tokens["id_token"].as_str().expect("id_token");
    let logout = format!(
        "{}/oidc/logout?{}",
        bridge.base,
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", hint)
            .append_pair("post_logout_redirect_uri", POST_LOGOUT_URI)
            .append_pair("state", "s")
            .finish()
    );
    let resp = get(&browser, &logout).await;
    // The harness's IdP metadata has no SingleLogoutService: straight back to the client.
    assert_eq!(location_of(&resp), format!("{POST_LOGOUT_URI}?state=s"));
    let silent = get(
        &browser,
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &Pkce::new(), "&prompt=none"),
    )
    .await;
    let location = location_of(&silent);
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("login_required"),
        "the session ended"
    );
}

/// A logout that does not prove it comes from the session's own client (no id_token_hint,
/// or the hint of another session) could be any page's: the student confirms on the bridge's
/// page first, whose POST only counts with the SameSite=Strict cookie set with it.
#[tokio::test]
async fn a_logout_without_this_sessions_hint_asks_the_student_and_a_forged_post_ends_nothing() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let old = log_in_and_redeem(
        &browser,
        &bridge,
        "portal",
        ClientAuth::Basic(CLIENT_ID, CLIENT_SECRET),
        REDIRECT_URI,
    )
    .await;
    // A new login (prompt=login) is a new session: the first id_token is now another's.
    let pkce = Pkce::new();
    let login = start_authorization(
        &browser,
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &pkce, "&prompt=login"),
    )
    .await;
    answer_at_acs(&browser, &bridge, "portal", &login).await;
    let session_alive = |browser: reqwest::Client| {
        let url = authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &Pkce::new(), "&prompt=none");
        async move {
            let location = location_of(&get(&browser, &url).await);
            query_param(&location, "code").is_some()
        }
    };
    let old_hint = old["id_token"].as_str().expect("id_token");
    for pairs in [
        vec![("client_id", CLIENT_ID), ("post_logout_redirect_uri", POST_LOGOUT_URI)],
        vec![
            ("id_token_hint", old_hint),
            ("post_logout_redirect_uri", POST_LOGOUT_URI),
        ],
        vec![],
    ] {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        let resp = get(&browser, &format!("{}/oidc/logout?{}", bridge.base, q.finish())).await;
        assert_eq!(resp.status(), 200, "{pairs:?}: a confirmation page, no redirect");
        assert!(resp.headers().get("location").is_none());
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("eb_logout_confirm="))
            .expect("the confirmation cookie")
            .to_string();
        assert!(cookie.contains("SameSite=Strict"), "{cookie}");
        let page = resp.text().await.expect("page");
        assert!(
            page.contains("method=\"post\"") && page.contains("name=\"confirm\""),
            "{page}"
        );
        assert!(session_alive(browser.clone()).await, "{pairs:?}: nothing ended yet");
    }
    // Another site's form POST cannot know the page's value (nor send the Strict cookie).
    let form = [
        ("client_id", CLIENT_ID),
        ("post_logout_redirect_uri", POST_LOGOUT_URI),
        ("confirm", "guess"),
    ];
    let resp = browser
        .post(format!("{}/oidc/logout", bridge.base))
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200, "a wrong value only asks again");
    assert!(
        session_alive(browser.clone()).await,
        "a forged confirmation ends nothing"
    );
    // The student confirms: the page's own value, with its cookie (the browser's jar).
    let resp = get(
        &browser,
        &format!(
            "{}/oidc/logout?client_id={CLIENT_ID}&post_logout_redirect_uri={}&state=s",
            bridge.base,
            url::form_urlencoded::byte_serialize(POST_LOGOUT_URI.as_bytes()).collect::<String>()
        ),
    )
    .await;
    let page = resp.text().await.expect("page");
    let marker = "name=\"confirm\" value=\"";
    let start = page.find(marker).expect("confirm field") + marker.len();
    let value = &page[start..start + page[start..].find('"').expect("end")];
    let resp = browser
        .post(format!("{}/oidc/logout", bridge.base))
        .form(&[
            ("client_id", CLIENT_ID),
            ("post_logout_redirect_uri", POST_LOGOUT_URI),
            ("state", "s"),
            ("confirm", value),
        ])
        .send()
        .await
        .expect("confirm");
    assert_eq!(location_of(&resp), format!("{POST_LOGOUT_URI}?state=s"));
    assert!(!session_alive(browser.clone()).await, "confirmed: the session ended");
}

async fn assert_logout_page(browser: &reqwest::Client, bridge: &Bridge, pairs: &[(&str, &str)], code: &str) {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let resp = get(browser, &format!("{}/oidc/logout?{}", bridge.base, q.finish())).await;
    assert_eq!(resp.status(), 400, "{code}");
    assert!(resp.headers().get("location").is_none(), "no redirect for {code}");
    assert!(
        resp.text()
            .await
            .expect("body")
            .contains(&format!("<code>{code}</code>")),
        "{code}"
    );
}

#[tokio::test]
async fn a_foreign_or_tampered_id_token_hint_and_an_unregistered_return_uri_are_refused_and_end_nothing() {
    let bridge = Bridge::start_oidc("").await;
    let browser = client();
    let tokens = log_in_and_redeem(
        &browser,
        &bridge,
        "portal",
        ClientAuth::Basic(CLIENT_ID, CLIENT_SECRET),
        REDIRECT_URI,
    )
    .await;
    let genuine = tokens["id_token"].as_str().expect("id_token").to_string();
    let mut claims = claims_of(&genuine);

    // Signed by another key.
    let other = openssl::rsa::Rsa::generate(2048)
        .expect("rsa")
        .private_key_to_pem()
        .expect("pem");
    let foreign = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(&other).expect("key"),
    )
    .expect("sign");
    // The genuine signature over other claims.
    use base64::Engine;
    let mut parts: Vec<String> = genuine.split('.').map(str::to_string).collect();
    claims["sub"] = json!("someone-else");
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = parts.join(".");
    // The bridge's own key, another issuer.
    claims["iss"] = json!("https://other-issuer.example");
    let other_issuer = bridge.settings.jwt_keys.sign_rs256(&claims, "JWT").expect("sign");

    for hint in [foreign.as_str(), tampered.as_str(), other_issuer.as_str(), "not-a-jwt"] {
        let pairs = [
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", POST_LOGOUT_URI),
            ("state", "s"),
        ];
        assert_logout_page(&browser, &bridge, &pairs, "oidc_id_token_hint_invalid").await;
    }
    for uri in [
        "https://evil.example/",
        "http://localhost/portal/logged-out/",
        REDIRECT_URI,
    ] {
        let pairs = [("id_token_hint", genuine.as_str()), ("post_logout_redirect_uri", uri)];
        assert_logout_page(
            &browser,
            &bridge,
            &pairs,
            "oidc_post_logout_redirect_uri_not_registered",
        )
        .await;
    }
    // Without a client named, no return URI is trusted.
    let pairs = [("post_logout_redirect_uri", POST_LOGOUT_URI)];
    assert_logout_page(
        &browser,
        &bridge,
        &pairs,
        "oidc_post_logout_redirect_uri_not_registered",
    )
    .await;
    // None of these ended the session.
    let silent = get(
        &browser,
        &authorize_url(&bridge, CLIENT_ID, REDIRECT_URI, &Pkce::new(), "&prompt=none"),
    )
    .await;
    assert!(
        query_param(&location_of(&silent), "code").is_some(),
        "the session is alive"
    );
}

// ---------------------------------------------------------------------------------------
// Back-Channel Logout
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_logout_sends_a_valid_logout_token_to_the_backchannel_uri() {
    let (uri, mut posted) = recording_rp().await;
    let bridge = Bridge::start_oidc(&backchannel_app("bc", &uri)).await;
    let browser = client();
    let id_token = log_in_as_subject(&browser, &bridge, "bc").await;
    assert_eq!(id_token["sub"], "100231");

    let answer = idp_logout(&bridge, "bc").await;
    assert_eq!(answer.status(), 200, "the logged-out page (no SLO at this IdP)");
    let body = tokio::time::timeout(Duration::from_secs(5), posted.recv())
        .await
        .expect("a POST within 5 s")
        .expect("body");
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("logout_token");

    assert_eq!(header_of(&token)["typ"], "logout+jwt");
    let claims = verify_with_jwks(&bridge, &token, "bc").await;
    assert_eq!(claims["iss"], bridge.base.as_str());
    assert_eq!(claims["aud"], "bc");
    assert_eq!(claims["sub"], "100231");
    assert_eq!(claims["sid"], id_token["sid"]);
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(claims.get("nonce").is_none(), "a logout token has no nonce");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

    // The real library check (openid-client's JOSE against the discovered JWKS).
    let (issuer, script) = (bridge.base.clone(), node_rp());
    let token_arg = token.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .args([
                "validate-logout-token",
                "--issuer",
                &issuer,
                "--client-id",
                "bc",
                "--token",
                &token_arg,
            ])
            .output()
            .expect("node")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "validate-logout-token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.lines().last().expect("a line")).expect("json");
    assert_eq!(report["claims"]["sid"], id_token["sid"]);

    // The session ended: prompt=none is login_required.
    let silent = get(
        &browser,
        &authorize_url(&bridge, "bc", BC_REDIRECT, &Pkce::new(), "&prompt=none"),
    )
    .await;
    assert_eq!(
        query_param(&location_of(&silent), "error").as_deref(),
        Some("login_required")
    );
    let metrics = metrics(&bridge).await;
    assert!(
        metrics.contains(r#"entree_bridge_oidc_backchannel_logout_total{app="bc",result="ok"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_backchannel_uri_that_never_answers_is_counted_as_an_error_and_delays_nothing() {
    let uri = silent_rp().await;
    let bridge = Bridge::start_oidc(&backchannel_app("hang", &uri)).await;
    log_in_as_subject(&client(), &bridge, "hang").await;

    let started = Instant::now();
    let answer = idp_logout(&bridge, "hang").await;
    assert_eq!(answer.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the SLS answers at once: {:?}",
        started.elapsed()
    );

    let counted = r#"entree_bridge_oidc_backchannel_logout_total{app="hang",result="error"} 1"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics(&bridge).await;
        if text.contains(counted) {
            break;
        }
        assert!(Instant::now() < deadline, "no error counted: {text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "after the 5 s timeout, not before"
    );
}

/// A replayed LogoutRequest is refused, but the sessions it ends (one opened since) are
/// ended, and their app hears of it like of any other.
#[tokio::test]
async fn a_replayed_idp_logout_is_refused_and_still_tells_the_app_of_what_it_ended() {
    let (uri, mut posted) = recording_rp().await;
    let bridge = Bridge::start_oidc(&backchannel_app("bc", &uri)).await;
    let browser = client();
    log_in_as_subject(&browser, &bridge, "bc").await;
    assert_eq!(idp_logout(&bridge, "bc").await.status(), 200);
    tokio::time::timeout(Duration::from_secs(5), posted.recv())
        .await
        .expect("the first logout's token")
        .expect("body");

    let again = log_in_as_subject(&browser, &bridge, "bc").await;
    let replayed = idp_logout(&bridge, "bc").await;
    assert_eq!(replayed.status(), 400);
    assert!(replayed
        .text()
        .await
        .expect("page")
        .contains("<code>logout_replayed</code>"));
    let body = tokio::time::timeout(Duration::from_secs(5), posted.recv())
        .await
        .expect("a token for the session the replay ended")
        .expect("body");
    let token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("logout_token");
    assert_eq!(claims_of(&token)["sid"], again["sid"]);
}
