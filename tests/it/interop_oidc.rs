//! The bridge as an OpenID Connect provider against two independent relying-party libraries,
//! Authlib (Python) and openid-client (Node), run as subprocesses (tests/interop/oidc/): the
//! library makes the authorization request (its PKCE, state and nonce), the test plays the
//! browser through the bridge and pysaml2's IdP, and the library redeems the code, validates
//! the id_token (JWKS signature, iss, aud, nonce, exp) and calls userinfo. Back-channel
//! logout: a logout token the bridge POSTs to a test RP endpoint is accepted by both.

use crate::common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::oidc::*;
use common::pysaml2::*;
use common::*;
use entree_bridge::saml::logout;
use entree_bridge::saml::redirect::{self, Kind};
use serde_json::Value;

#[derive(Debug, Clone, Copy)]
enum Driver {
    Authlib,
    OpenidClient,
}

/// Runs a setup script; its last stdout line (if any) is returned.
fn setup(script: &str) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join(script))
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed (the OIDC interop tests need it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string()
}

impl Driver {
    /// The interpreter and the driver script, set up (venv / npm ci) when needed.
    fn program(self) -> (PathBuf, PathBuf) {
        match self {
            Driver::Authlib => (
                PathBuf::from(setup("tests/interop/oidc/setup-venv.sh")),
                repo_root().join("tests/interop/oidc/authlib_rp.py"),
            ),
            Driver::OpenidClient => {
                setup("tests/interop/oidc/node-rp/setup.sh");
                (
                    PathBuf::from("node"),
                    repo_root().join("tests/interop/oidc/node-rp/rp.mjs"),
                )
            }
        }
    }

    /// Runs the driver with `args`: its JSON (last stdout line), or its stderr when it
    /// refuses. Off the runtime's thread: the driver talks to the in-process bridge.
    async fn run(self, args: &[&str]) -> Result<Value, String> {
        let (interpreter, script) = self.program();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(interpreter)
                .arg(script)
                .args(args)
                .output()
                .expect("run the driver")
        })
        .await
        .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            return Err(stderr);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or("");
        Ok(serde_json::from_str(last).unwrap_or_else(|e| panic!("{self:?} printed {stdout:?}: {e}; {stderr}")))
    }
}

/// The versions of what runs in these tests, from the installed packages' metadata.
fn library_versions() -> String {
    let py_versions = |python: &str, names: &str| {
        let code = format!(
            "import importlib.metadata as m; print(' '.join(n + ' ' + m.version(n) for n in '{names}'.split()))"
        );
        let out = Command::new(python).args(["-c", &code]).output().expect("python");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let authlib = py_versions(&setup("tests/interop/oidc/setup-venv.sh"), "Authlib joserfc");
    let saml = py_versions(venv_python().to_str().expect("path"), "pysaml2");
    setup("tests/interop/oidc/node-rp/setup.sh");
    let node_module = |name: &str| {
        let path = repo_root().join(format!("tests/interop/oidc/node-rp/node_modules/{name}/package.json"));
        let json: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("package.json")).expect("json");
        format!("{name} {}", json["version"].as_str().expect("version"))
    };
    let node = Command::new("node").arg("--version").output().expect("node");
    format!(
        "{authlib} {saml} {} {} {} node {}",
        node_module("openid-client"),
        node_module("oauth4webapi"),
        node_module("jose"),
        String::from_utf8_lossy(&node.stdout).trim()
    )
}

/// A registered client of [`OIDC_APPS`] and how it authenticates at the token endpoint.
struct Rp {
    app: &'static str,
    client_id: &'static str,
    secret: Option<&'static str>,
    method: &'static str,
    redirect_uri: &'static str,
    /// The person code 100231@school-a.nl maps to in this app.
    sub: &'static str,
}

const BASIC: Rp = Rp {
    app: "portal",
    client_id: CLIENT_ID,
    secret: Some(CLIENT_SECRET),
    method: "client_secret_basic",
    redirect_uri: REDIRECT_URI,
    sub: "100231",
};
const POST: Rp = Rp {
    method: "client_secret_post",
    ..BASIC
};
const PUBLIC: Rp = Rp {
    app: "spa",
    client_id: PUBLIC_CLIENT_ID,
    secret: None,
    method: "none",
    redirect_uri: PUBLIC_REDIRECT_URI,
    // spa maps the whole nlEduPersonRealId (no pattern).
    sub: "100231@school-a.nl",
};

/// A bridge with the oidc apps whose federation's IdP is pysaml2's.
struct Setup {
    idp: PyIdp,
    bridge: Bridge,
    state_dir: tempfile::TempDir,
}

async fn setup_with_pysaml2() -> Setup {
    let idp = PyIdp::new();
    let bridge = Bridge::start_oidc_edited("", |dir| idp.install(dir), |c| c).await;
    assert_eq!(
        bridge.settings.federations["kennisnet"]
            .metadata_at_load()
            .expect("metadata")
            .entity_id,
        PY_IDP
    );
    Setup {
        idp,
        bridge,
        state_dir: tempfile::tempdir().expect("dir"),
    }
}

/// `driver begin` for `rp`: the library's authorization URL (checked to carry its PKCE
/// S256 challenge, state and nonce). The state file is `name` in the setup's dir.
async fn begin(s: &Setup, driver: Driver, rp: &Rp, name: &str) -> String {
    let state_file = s.state_dir.path().join(name).display().to_string();
    let mut args = vec![
        "begin",
        "--issuer",
        &s.bridge.base,
        "--client-id",
        rp.client_id,
        "--auth-method",
        rp.method,
        "--redirect-uri",
        rp.redirect_uri,
        "--state-file",
        &state_file,
    ];
    if let Some(secret) = rp.secret {
        args.extend(["--client-secret", secret]);
    }
    let begun = driver
        .run(&args)
        .await
        .unwrap_or_else(|e| panic!("{driver:?} begin: {e}"));
    let url = begun["authorization_url"]
        .as_str()
        .expect("authorization_url")
        .to_string();
    assert!(url.starts_with(&format!("{}/oidc/authorize?", s.bridge.base)), "{url}");
    assert_eq!(query_param(&url, "client_id").as_deref(), Some(rp.client_id));
    assert_eq!(query_param(&url, "redirect_uri").as_deref(), Some(rp.redirect_uri));
    assert_eq!(query_param(&url, "response_type").as_deref(), Some("code"));
    assert_eq!(query_param(&url, "code_challenge_method").as_deref(), Some("S256"));
    for made_by_the_library in ["code_challenge", "state", "nonce"] {
        assert!(
            query_param(&url, made_by_the_library).is_some_and(|v| v.len() >= 16),
            "{driver:?} sent {made_by_the_library}: {url}"
        );
    }
    url
}

/// The browser: the authorization URL -> the pysaml2 IdP (which answers the AuthnRequest)
/// -> the bridge's ACS -> the redirect to the client. Returns that callback URL.
async fn browse(s: &Setup, rp: &Rp, authorization_url: &str) -> String {
    let browser = client();
    let resp = browser.get(authorization_url).send().await.expect("authorize");
    assert_eq!(resp.status(), 302, "authorize starts a login: {:?}", resp.headers());
    let location = resp.headers()["location"].to_str().expect("location").to_string();
    assert!(
        location.starts_with(&format!("{PY_SSO}?")),
        "to pysaml2's SSO: {location}"
    );
    let login = started_login_from(location);
    let saml_response = s.idp.respond(&s.bridge, rp.app, &login.request_id, &[]).await;
    let form = [
        ("SAMLResponse", saml_response.as_str()),
        ("RelayState", login.relay_state.as_str()),
    ];
    let resp = browser
        .post(s.bridge.acs(rp.app))
        .form(&form)
        .send()
        .await
        .expect("acs");
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("location").to_string());
    let Some(callback) = location.filter(|_| status == 302) else {
        panic!(
            "the ACS refused pysaml2's response: {status} {}",
            resp.text().await.unwrap_or_default()
        );
    };
    assert!(callback.starts_with(&format!("{}?", rp.redirect_uri)), "{callback}");
    assert!(query_param(&callback, "code").is_some(), "{callback}");
    assert_eq!(query_param(&callback, "state"), query_param(authorization_url, "state"));
    assert_eq!(query_param(&callback, "iss").as_deref(), Some(s.bridge.base.as_str()));
    callback
}

async fn finish(s: &Setup, driver: Driver, name: &str, callback: &str) -> Result<Value, String> {
    let state_file = s.state_dir.path().join(name).display().to_string();
    driver
        .run(&["finish", "--state-file", &state_file, "--callback-url", callback])
        .await
}

async fn login_with(driver: Driver, rp: &Rp) {
    println!("{driver:?} {}: {}", rp.method, library_versions());
    let s = setup_with_pysaml2().await;
    let authorization_url = begin(&s, driver, rp, "state.json").await;
    let callback = browse(&s, rp, &authorization_url).await;
    let done = finish(&s, driver, "state.json", &callback)
        .await
        .unwrap_or_else(|e| panic!("{driver:?} refused the bridge's answer ({}): {e}", rp.method));

    let claims = &done["id_token_claims"];
    assert_eq!(claims["iss"], s.bridge.base.as_str());
    assert_eq!(claims["aud"], rp.client_id);
    assert_eq!(claims["sub"], rp.sub);
    assert_eq!(claims["school"], "99XX");
    assert_eq!(
        claims["nonce"].as_str(),
        query_param(&authorization_url, "nonce").as_deref(),
        "the library's nonce"
    );
    if rp.app == "portal" {
        assert_eq!(claims["given_name"], "Sanne");
        assert_eq!(claims["tenant"], "ingang-a");
    }
    let userinfo = &done["userinfo"];
    assert_eq!(userinfo["sub"], rp.sub);
    assert_eq!(userinfo["school"], "99XX");
    let keys: Vec<&str> = done["token_response_keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for key in ["access_token", "expires_in", "id_token", "token_type"] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
}

#[tokio::test]
async fn authlib_logs_in_with_client_secret_basic() {
    login_with(Driver::Authlib, &BASIC).await;
}

#[tokio::test]
async fn authlib_logs_in_with_client_secret_post() {
    login_with(Driver::Authlib, &POST).await;
}

#[tokio::test]
async fn authlib_logs_in_as_a_public_client() {
    login_with(Driver::Authlib, &PUBLIC).await;
}

#[tokio::test]
async fn openid_client_logs_in_with_client_secret_basic() {
    login_with(Driver::OpenidClient, &BASIC).await;
}

#[tokio::test]
async fn openid_client_logs_in_with_client_secret_post() {
    login_with(Driver::OpenidClient, &POST).await;
}

#[tokio::test]
async fn openid_client_logs_in_as_a_public_client() {
    login_with(Driver::OpenidClient, &PUBLIC).await;
}

/// A callback whose `state` is not the one the library sent (the bridge never does that) is
/// refused by the library before it redeems the code: the true callback still works after.
async fn a_foreign_state_is_refused_by(driver: Driver) {
    let s = setup_with_pysaml2().await;
    let authorization_url = begin(&s, driver, &BASIC, "state.json").await;
    let callback = browse(&s, &BASIC, &authorization_url).await;
    let state = query_param(&callback, "state").expect("state");
    let forged = callback.replace(&format!("state={state}"), "state=not-the-library-s-state");
    assert_ne!(forged, callback);
    let refusal = finish(&s, driver, "state.json", &forged)
        .await
        .expect_err("a foreign state must be refused");
    assert!(refusal.to_lowercase().contains("state"), "{driver:?}: {refusal}");
    let done = finish(&s, driver, "state.json", &callback)
        .await
        .unwrap_or_else(|e| panic!("{driver:?}, the true callback: {e}"));
    assert_eq!(done["id_token_claims"]["sub"], "100231");
}

#[tokio::test]
async fn authlib_refuses_a_callback_with_a_foreign_state() {
    a_foreign_state_is_refused_by(Driver::Authlib).await;
}

#[tokio::test]
async fn openid_client_refuses_a_callback_with_a_foreign_state() {
    a_foreign_state_is_refused_by(Driver::OpenidClient).await;
}

/// An RP endpoint for back-channel logout: what is POSTed to it arrives on the channel.
async fn logout_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let app = axum::Router::new().route(
        "/bcl",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://127.0.0.1:{}/bcl", listener.local_addr().expect("addr").port());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (url, rx)
}

#[tokio::test]
async fn an_idp_initiated_logout_reaches_the_rp_with_a_logout_token_both_libraries_accept() {
    let (endpoint, mut received) = logout_receiver().await;
    let bcl_app = format!(
        r#"
[apps.bcl]
federation = "kennisnet"
base_url = "http://127.0.0.1:{{port}}/bcl"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.bcl.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.bcl.handoff]
mode = "oidc"
client_id = "bcl-web"
client_secret = "{CLIENT_SECRET}"
redirect_uris = ["http://localhost/bcl/cb"]
backchannel_logout_uri = "{endpoint}"
"#
    );
    let bridge = Bridge::start_oidc(&bcl_app).await;
    let browser = client();
    let pkce = Pkce::new();
    let authorize = authorize_url(&bridge, "bcl-web", "http://localhost/bcl/cb", &pkce, "");
    let login = start_authorization(&browser, &authorize).await;
    let spec = bridge.spec("bcl", Some(&login.request_id));
    let name_id = spec.name_id.clone();
    let xml = bridge.idp.response(&spec).expect("sign");
    let resp = post_acs_response(&browser, &bridge, "bcl", &xml, Some(&login.relay_state)).await;
    assert_eq!(resp.status(), 302);
    let callback = resp.headers()["location"].to_str().expect("location").to_string();
    let code = query_param(&callback, "code").expect("code");
    let tokens: Value = redeem(
        &bridge,
        ClientAuth::Basic("bcl-web", CLIENT_SECRET),
        &code,
        "http://localhost/bcl/cb",
        &pkce.verifier,
    )
    .await
    .json()
    .await
    .expect("json");
    let id_token = tokens["id_token"].as_str().expect("id_token");
    let id_claims: Value = {
        use base64::Engine;
        let part = id_token.split('.').nth(1).expect("claims");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .expect("b64"),
        )
        .expect("json")
    };
    assert!(received.try_recv().is_err(), "nothing is sent before the logout");

    // The IdP ends the subject's sessions.
    let sls = format!("{}/bcl/saml2/kennisnet/sls", bridge.base);
    let request = logout::request_xml("_idp_bcl_1", &sls, &bridge.idp.entity_id, &name_id, None, None);
    let url = redirect::build_url(&sls, Kind::Request, &request, "", Some(&bridge.idp.key)).expect("url");
    let resp = client().get(&url).send().await.expect("sls");
    assert!(
        resp.status().is_success() || resp.status().is_redirection(),
        "{}",
        resp.status()
    );

    let body = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the logout token arrives within 10 s")
        .expect("a body");
    let logout_token = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("a logout_token in {body:?}"));

    for driver in [Driver::Authlib, Driver::OpenidClient] {
        let validated = driver
            .run(&[
                "validate-logout-token",
                "--issuer",
                &bridge.base,
                "--client-id",
                "bcl-web",
                "--token",
                &logout_token,
            ])
            .await
            .unwrap_or_else(|e| panic!("{driver:?} refused the logout token: {e}"));
        let claims = &validated["claims"];
        assert_eq!(claims["iss"], bridge.base.as_str(), "{driver:?}");
        assert_eq!(claims["aud"], "bcl-web", "{driver:?}");
        assert_eq!(claims["sub"], "100231", "{driver:?}");
        assert_eq!(
            claims["sid"], id_claims["sid"],
            "{driver:?}: the session of the id_token"
        );
        assert!(
            claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(),
            "{driver:?}"
        );
        // A token for another client is refused by the library (aud).
        let other = driver
            .run(&[
                "validate-logout-token",
                "--issuer",
                &bridge.base,
                "--client-id",
                CLIENT_ID,
                "--token",
                &logout_token,
            ])
            .await;
        assert!(
            other.is_err(),
            "{driver:?} took a logout token of bcl-web for portal-web"
        );
    }
}
