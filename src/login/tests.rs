//! The login use case without a server: real responses signed by the development IdP, the
//! memory state store, a SQLite link store in a temp dir, the validation threads.
//! (These need `demo::idp`; once the `demo` feature exists they belong under
//! `#[cfg(all(test, feature = "demo"))]`.)

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use serde_json::json;

use super::*;
use crate::config::{self, App, Settings};
use crate::cpu_pool::CpuPool;
use crate::demo::idp::{DevIdp, ResponseSpec};
use crate::demo::tokens::sign_hs256;
use crate::keys::{self, KeyKind};
use crate::saml::metadata_registry::{MetadataInForce, MetadataRegistry};
use crate::store::links::LinkStore;
use crate::store::memory::MemoryStore;

const IDP: &str = "https://idp.test.invalid/metadata";
const BASE: &str = "http://127.0.0.1:8080";
const LINK_SECRET: &str = "a-link-secret-shared-with-the-app-0123456789";
const LINK_URL: &str = "https://app.example.nl/entree/link";

fn config_text() -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:8080"
public_base_url = "{BASE}"

[keys]
jwt_signing_key = "jwt.pem"

[federations.kennisnet]
metadata = "idp-metadata.xml"

[links]
store = "sqlite"
sqlite_path = "links.sqlite3"

[apps.numo]
federation = "kennisnet"
base_url = "{BASE}/numo"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["99XX"]
[apps.numo.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.numo.handoff]
callback_url = "{BASE}/callback"

[apps.open]
federation = "kennisnet"
base_url = "{BASE}/open"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
allow_unsolicited = true
[apps.open.person]
attribute = "eckId"
[apps.open.handoff]
callback_url = "https://open.example.nl/sso/callback"

[apps.link]
federation = "kennisnet"
base_url = "{BASE}/link"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.link.person]
attribute = "nlEduPersonRealId"
linking = true
link_url = "{LINK_URL}"
link_secret = "{LINK_SECRET}"
[apps.link.handoff]
callback_url = "https://app.example.nl/sso/callback"
"#
    )
}

/// Everything a login needs, as the server would hold it.
struct World {
    _dir: tempfile::TempDir,
    idp: DevIdp,
    settings: Settings,
    store: MemoryStore,
    links: LinkStore,
    validation: CpuPool,
    metadata: MetadataInForce,
    activations: crate::store::schools::ActivationCache,
}

impl World {
    async fn new() -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let idp = DevIdp::generate(IDP).expect("idp");
        write_keys(dir.path(), &idp);
        let path = dir.path().join("bridge.toml");
        std::fs::write(&path, config_text()).expect("write config");
        let settings = config::load(&path).unwrap_or_else(|e| panic!("config: {e}"));
        let links = LinkStore::open_target(&settings.links, settings.links_timeout)
            .await
            .expect("link store");
        let metadata =
            MetadataRegistry::default().put_in_force(settings.federations.values().map(|f| f.loaded_metadata()));
        World {
            metadata,
            _dir: dir,
            idp,
            settings,
            store: MemoryStore::default(),
            links,
            validation: CpuPool::new("validate-test", 1, 8).expect("threads"),
            activations: Default::default(),
        }
    }

    fn services(&self) -> Services<'_> {
        Services {
            store: &self.store,
            links: &self.links,
            validation: &self.validation,
            public_base_url: self.settings.public_base_url.as_str(),
            jwt_keys: &self.settings.jwt_keys,
            pseudonyms: &self.settings.pseudonyms,
            metadata: &self.metadata,
            activations: &self.activations,
        }
    }

    fn app(&self, name: &str) -> Arc<App> {
        self.settings
            .apps
            .iter()
            .find(|a| a.name == name)
            .cloned()
            .expect("app")
    }

    /// A valid response for `app` answering `request_id`, for a student of 99XX.
    fn response(&self, app: &App, request_id: Option<&str>, real_id: &str) -> String {
        let spec = ResponseSpec::new(&app.sp.entity_id, &app.sp.acs_url, request_id)
            .attribute("nlEduPersonRealId", &[real_id])
            .attribute("eckId", &["https://ketenid.nl/201703/aabbccdd"])
            .attribute("nlEduPersonHomeOrganizationId", &["99XX"]);
        let xml = self.idp.response(&spec).expect("sign");
        base64::engine::general_purpose::STANDARD.encode(xml)
    }

    /// Starts a login of `app`: its RelayState, the browser's nonce, the AuthnRequest's ID.
    async fn start(&self, app: &App) -> (String, String, String) {
        let started = start(self.services(), app, None).await.expect("started");
        let CookieChange::SetLogin { relay_state, nonce } = started.cookie else {
            panic!("a login sets its login cookie: {:?}", started.cookie);
        };
        // The AuthnRequest's ID, read where the ACS will read it (and put back).
        let pending = self
            .store
            .take_pending(&relay_state)
            .await
            .expect("store")
            .expect("pending");
        let request_id = pending.request_id.clone();
        self.store.put_pending(&relay_state, pending).await.expect("store");
        (relay_state, nonce, request_id)
    }
}

fn write_keys(dir: &Path, idp: &DevIdp) {
    let sp_key = keys::generate_key(KeyKind::Rsa2048).expect("key");
    let sp_cert = keys::self_signed_certificate(&sp_key, "sp", 30).expect("cert");
    keys::write_private_key(&dir.join("sp.key"), &sp_key).expect("write");
    keys::write_certificate(&dir.join("sp.crt"), &sp_cert).expect("write");
    let jwt = keys::generate_key(KeyKind::EcP256).expect("key");
    keys::write_private_key(&dir.join("jwt.pem"), &jwt).expect("write");
    std::fs::write(
        dir.join("idp-metadata.xml"),
        idp.metadata("https://idp.test.invalid/sso"),
    )
    .expect("write");
}

fn cookie(id: &str, value: &str) -> BrowserCookies {
    let mut cookies = BrowserCookies::default();
    cookies.add(id, value);
    cookies
}

fn post(saml_response: String, relay_state: Option<&str>) -> AcsPost {
    AcsPost {
        saml_response,
        relay_state: relay_state.map(str::to_string),
    }
}

fn logged_in(answer: Answer<Outcome>) -> LoggedIn {
    match answer.result {
        Ok(Outcome::LoggedIn(logged_in)) => *logged_in,
        other => panic!("not logged in: {other:?}"),
    }
}

#[tokio::test]
async fn a_good_response_logs_the_student_in_and_clears_the_login_cookie() {
    let w = World::new().await;
    let numo = w.app("numo");
    let (rs, nonce, request_id) = w.start(&numo).await;
    let xml = w.response(&numo, Some(&request_id), "100231@school-a.nl");
    let answer = complete(w.services(), &numo, post(xml, Some(&rs)), &cookie(&rs, &nonce)).await;
    assert_eq!(
        answer.cookies,
        vec![CookieChange::ClearLogin {
            relay_state: rs.clone()
        }]
    );
    let done = logged_in(answer);
    assert_eq!(done.identity.person_code, "100231", "the rule's code");
    assert_eq!(done.identity.facts.school.as_deref(), Some("99XX"));
    assert_eq!(done.target, None);
    assert!(!done.subject.name_id.is_empty());
    assert!(
        w.store.take_pending(&rs).await.expect("store").is_none(),
        "a pending login answers once"
    );
}

#[tokio::test]
async fn a_replayed_response_is_refused() {
    let w = World::new().await;
    let open = w.app("open");
    let xml = w.response(&open, None, "100231@school-a.nl");
    let first = complete(w.services(), &open, post(xml.clone(), None), &BrowserCookies::default()).await;
    assert!(first.cookies.is_empty(), "no RelayState, no login cookie to clear");
    assert_eq!(
        logged_in(first).identity.person_code,
        "https://ketenid.nl/201703/aabbccdd"
    );
    let again = complete(w.services(), &open, post(xml, None), &BrowserCookies::default()).await;
    let err = again.result.expect_err("a replay");
    assert_eq!(err.code(), "assertion_replayed");
    assert_eq!(err.status(), 400);
}

#[tokio::test]
async fn a_response_posted_by_another_browser_is_refused_and_the_login_kept_for_its_own() {
    let w = World::new().await;
    let numo = w.app("numo");
    let (rs, nonce, request_id) = w.start(&numo).await;
    let xml = w.response(&numo, Some(&request_id), "100231@school-a.nl");
    // No cookie, another login's cookie of the same name, and a tossed one: not this browser.
    for stranger in [
        BrowserCookies::default(),
        cookie(&rs, "tossed"),
        cookie("other-rs", &nonce),
    ] {
        let answer = complete(w.services(), &numo, post(xml.clone(), Some(&rs)), &stranger).await;
        let err = answer.result.expect_err("another browser");
        assert_eq!((err.code(), err.status()), ("login_browser_mismatch", 400));
    }
    // The stranger neither burnt the pending login nor the response: the student finishes.
    let mut own = cookie(&rs, "tossed-first");
    own.add(&rs, &nonce);
    let answer = complete(w.services(), &numo, post(xml, Some(&rs)), &own).await;
    assert_eq!(logged_in(answer).identity.person_code, "100231");
}

#[tokio::test]
async fn a_pending_login_of_another_app_is_refused_and_kept() {
    let w = World::new().await;
    let (numo, open) = (w.app("numo"), w.app("open"));
    let (rs, nonce, request_id) = w.start(&numo).await;
    let xml = w.response(&open, Some(&request_id), "100231@school-a.nl");
    let answer = complete(w.services(), &open, post(xml, Some(&rs)), &cookie(&rs, &nonce)).await;
    assert_eq!(answer.result.expect_err("another app").code(), "login_browser_mismatch");
    assert!(
        w.store.take_pending(&rs).await.expect("store").is_some(),
        "kept for numo"
    );
}

#[tokio::test]
async fn without_a_rule_linking_starts_and_complete_link_finishes_it() {
    let w = World::new().await;
    let app = w.app("link");
    let (rs, nonce, request_id) = w.start(&app).await;
    let xml = w.response(&app, Some(&request_id), "s-42@school-a.nl");
    let answer = complete(w.services(), &app, post(xml, Some(&rs)), &cookie(&rs, &nonce)).await;
    let location = match &answer.result {
        Ok(Outcome::Link { location }) => location.clone(),
        other => panic!("linking should start: {other:?}"),
    };
    assert!(location.starts_with(&format!("{LINK_URL}?link_request=")), "{location}");
    let (jti, link_nonce) = match answer.cookies.as_slice() {
        [CookieChange::SetLink { jti, nonce }, CookieChange::ClearLogin { relay_state }] if *relay_state == rs => {
            (jti.clone(), nonce.clone())
        }
        other => panic!("the link cookie is set, the login cookie cleared: {other:?}"),
    };
    assert!(w
        .links
        .person_code_for_login("link", "s-42@school-a.nl")
        .await
        .expect("links")
        .is_none());

    let link_response = sign_hs256(
        LINK_SECRET.as_bytes(),
        &json!({"aud": BASE, "jti": jti, "sub": "P-77", "exp": chrono::Utc::now().timestamp() + 120}),
    )
    .expect("sign");
    // Another browser with the genuine answer: refused, nothing stored, the link kept.
    let stranger = complete_link(w.services(), &app, &link_response, &cookie(&jti, "tossed")).await;
    assert!(stranger.cookies.is_empty());
    assert_eq!(
        stranger.result.expect_err("another browser").code(),
        "link_browser_mismatch"
    );
    assert!(w
        .links
        .person_code_for_login("link", "s-42@school-a.nl")
        .await
        .expect("links")
        .is_none());

    let own = complete_link(w.services(), &app, &link_response, &cookie(&jti, &link_nonce)).await;
    assert_eq!(own.cookies, vec![CookieChange::ClearLink { jti: jti.clone() }]);
    match own.result {
        Ok(LinkDone::LoggedIn(done, mixed)) => {
            assert!(!mixed);
            assert_eq!(done.identity.person_code, "P-77");
            assert_eq!(done.identity.facts.federated_id, "s-42@school-a.nl");
        }
        other => panic!("linked: {other:?}"),
    }
    assert_eq!(
        w.links
            .person_code_for_login("link", "s-42@school-a.nl")
            .await
            .expect("links"),
        Some("P-77".to_string())
    );
    let replay = complete_link(w.services(), &app, &link_response, &cookie(&jti, &link_nonce)).await;
    assert_eq!(replay.result.expect_err("used once").code(), "link_state_missing");

    // Next time the stored link resolves the student at once.
    let (rs, nonce, request_id) = w.start(&app).await;
    let xml = w.response(&app, Some(&request_id), "s-42@school-a.nl");
    let answer = complete(w.services(), &app, post(xml, Some(&rs)), &cookie(&rs, &nonce)).await;
    assert_eq!(logged_in(answer).identity.person_code, "P-77");
}

#[tokio::test]
async fn a_missing_login_state_and_a_bad_target_are_refused_with_their_codes() {
    let w = World::new().await;
    let numo = w.app("numo");
    let xml = w.response(&numo, None, "100231@school-a.nl");
    let answer = complete(
        w.services(),
        &numo,
        post(xml, Some("unknown")),
        &BrowserCookies::default(),
    )
    .await;
    assert_eq!(
        answer.cookies,
        vec![CookieChange::ClearLogin {
            relay_state: "unknown".into()
        }]
    );
    assert_eq!(answer.result.expect_err("no state").code(), "login_state_missing");
    let err = start(w.services(), &numo, Some("https://evil.example".into()))
        .await
        .expect_err("foreign target");
    assert_eq!((err.code(), err.status()), ("target_not_allowed", 400));
}

#[tokio::test]
async fn logout_ends_every_presented_session_and_clears_the_cookie() {
    let w = World::new().await;
    let numo = w.app("numo");
    let answer = logout(w.services(), &numo, None, &["a", "b"]).await;
    assert_eq!(answer.cookies, vec![CookieChange::ClearSession]);
    // No live session among them (jwt mode keeps none): nothing named an IdP session to end.
    assert_eq!(
        answer.result.expect("logged out"),
        AfterLogout::Finished {
            target: None,
            ended: crate::login::LoggedOut {
                bridge_session: false,
                idp: crate::login::IdpLogout::NotAsked
            }
        }
    );
}
