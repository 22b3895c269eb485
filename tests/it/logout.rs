//! Logout and Single Logout both ways, with signed Redirect-binding messages.

use crate::common;

use common::*;
use entree_bridge::saml::logout;
use entree_bridge::saml::redirect::{self, Kind};

const SLO: &str = "https://idp.test.invalid/slo";

fn app_config() -> String {
    r#"
[apps.portal]
federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/portal"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
post_logout_url = "http://127.0.0.1:{port}/portal/bye"
[apps.portal.handoff]
mode = "headers"
upstream = "http://127.0.0.1:9"

[apps.desk]
display_name = "Desk"
federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/desk"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.desk.handoff]
mode = "headers"
upstream = "http://127.0.0.1:9"
[[apps.desk.contacts]]
type = "support"
email = "help@desk.example.nl"
"#
    .to_string()
}

async fn bridge() -> Bridge {
    Bridge::start_custom(&app_config(), |dir| {
        // The IdP metadata with a SingleLogoutService.
        let metadata = std::fs::read_to_string(dir.join("idp-metadata.xml")).expect("read");
        let with_slo = metadata.replacen(
            "<md:NameIDFormat>",
            &format!(r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{SLO}"/><md:NameIDFormat>"#),
            1,
        );
        std::fs::write(dir.join("idp-metadata.xml"), with_slo).expect("write");
    })
    .await
}

/// Logs `client` in to `portal` as `name_id` and returns the session cookie pair.
async fn log_in(client: &reqwest::Client, b: &Bridge, name_id: &str) -> String {
    log_in_to(client, b, "portal", name_id).await
}

async fn log_in_to(client: &reqwest::Client, b: &Bridge, app: &str, name_id: &str) -> String {
    let login = start_login(client, b, app, None).await;
    let mut spec = b.spec(app, Some(&login.request_id));
    spec.name_id = name_id.to_string();
    let xml = b.idp.response(&spec).expect("sign");
    let resp = post_acs_response(client, b, app, &xml, Some(&login.relay_state)).await;
    assert_eq!(resp.status(), 302);
    first_cookie(&resp)
}

/// Whether the session cookie still opens the app (401 = no session; the dead upstream
/// answers 502 when there is one).
async fn session_alive(b: &Bridge, cookie: &str) -> bool {
    let resp = reqwest::Client::new()
        .get(format!("{}/portal/page", b.base))
        .header("cookie", cookie)
        .send()
        .await
        .expect("get");
    resp.status() != 401
}

/// The LogoutRequest the bridge sent to the IdP at `location` (its signature checked with
/// the SP certificate), and its ID.
fn sent_logout_request(b: &Bridge, location: &str) -> (redirect::Received, String) {
    let sp_cert = [samael::crypto::CertificateDer::from(b.sp_cert.to_der().expect("der"))];
    let request = redirect::receive(query_of(location), &sp_cert, false).expect("signed by the SP");
    let request_id = roxmltree::Document::parse(&request.xml)
        .expect("xml")
        .root_element()
        .attribute("ID")
        .expect("id")
        .to_string();
    (request, request_id)
}

fn query_of(url: &str) -> &str {
    url.split_once('?').expect("query").1
}

#[tokio::test]
async fn sp_initiated_logout_ends_the_session_and_completes_with_the_idp() {
    let b = bridge().await;
    let c = client();
    let cookie = log_in(&c, &b, "subject-1").await;
    assert!(session_alive(&b, &cookie).await);

    let resp = c
        .get(format!("{}/portal/saml2/kennisnet/logout", b.base))
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().expect("location").to_string();
    assert!(location.starts_with(&format!("{SLO}?SAMLRequest=")), "{location}");
    assert!(!session_alive(&b, &cookie).await, "the bridge session ended at once");

    // The LogoutRequest is signed with the SP key and names the subject.
    let (request, request_id) = sent_logout_request(&b, &location);
    assert!(request.xml.contains("subject-1") && request.xml.contains("SessionIndex"));

    // The IdP answers; a forged answer is refused, the real one leads to post_logout_url.
    let sls = format!("{}/portal/saml2/kennisnet/sls", b.base);
    let answer = logout::response_xml("_r1", &sls, &b.idp.entity_id, &request_id, true);
    let relay = request.relay_state.as_deref().expect("relay");
    let attacker = entree_bridge::keys::generate_key(entree_bridge::keys::KeyKind::Rsa2048).expect("key");
    let forged = redirect::build_url(&sls, Kind::Response, &answer, relay, Some(&attacker)).expect("url");
    let resp = c.get(&forged).send().await.expect("sls");
    assert_eq!(resp.status(), 400);
    assert!(resp
        .text()
        .await
        .expect("body")
        .contains("<code>redirect_signature_invalid</code>"));
    let unsigned = redirect::build_url(&sls, Kind::Response, &answer, relay, None).expect("url");
    assert_eq!(c.get(&unsigned).send().await.expect("sls").status(), 400);
    let genuine = redirect::build_url(&sls, Kind::Response, &answer, relay, Some(&b.idp.key)).expect("url");
    let resp = c.get(&genuine).send().await.expect("sls");
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], format!("{}/portal/bye", b.base));
    // Replaying the answer finds no pending logout.
    let again = c.get(&genuine).send().await.expect("sls");
    assert_eq!(again.status(), 400);
    assert!(again
        .text()
        .await
        .expect("body")
        .contains("<code>logout_state_missing</code>"));
}

#[tokio::test]
async fn idp_initiated_logout_ends_every_session_of_that_subject_and_answers_signed() {
    let b = bridge().await;
    let (first, second, other) = (client(), client(), client());
    let s1 = log_in(&first, &b, "subject-2").await;
    let s2 = log_in(&second, &b, "subject-2").await;
    let s3 = log_in(&other, &b, "someone-else").await;
    let sls = format!("{}/portal/saml2/kennisnet/sls", b.base);
    let request = logout::request_xml("_idp_req_1", &sls, &b.idp.entity_id, "subject-2", None, None);

    // A LogoutRequest signed by someone else changes nothing.
    let attacker = entree_bridge::keys::generate_key(entree_bridge::keys::KeyKind::Rsa2048).expect("key");
    let forged = redirect::build_url(&sls, Kind::Request, &request, "rs", Some(&attacker)).expect("url");
    assert_eq!(client().get(&forged).send().await.expect("sls").status(), 400);
    assert!(session_alive(&b, &s1).await && session_alive(&b, &s2).await);

    let signed = redirect::build_url(&sls, Kind::Request, &request, "rs", Some(&b.idp.key)).expect("url");
    let resp = client().get(&signed).send().await.expect("sls");
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().expect("location").to_string();
    assert!(location.starts_with(&format!("{SLO}?SAMLResponse=")), "{location}");
    let sp_cert = [samael::crypto::CertificateDer::from(b.sp_cert.to_der().expect("der"))];
    let answer = redirect::receive(query_of(&location), &sp_cert, false).expect("signed by the SP");
    assert!(answer.xml.contains(r#"InResponseTo="_idp_req_1""#) && answer.xml.contains("status:Success"));
    assert_eq!(answer.relay_state.as_deref(), Some("rs"));

    assert!(
        !session_alive(&b, &s1).await && !session_alive(&b, &s2).await,
        "both sessions of subject-2 ended"
    );
    assert!(session_alive(&b, &s3).await, "another student's session stays");

    // The same signed LogoutRequest works once.
    let replay = client().get(&signed).send().await.expect("sls");
    assert_eq!(replay.status(), 400);
    assert!(replay
        .text()
        .await
        .expect("body")
        .contains("<code>logout_replayed</code>"));
    // A signed LogoutRequest without Destination (it could be meant for another service).
    let no_dest = logout::request_xml("_idp_req_2", &sls, &b.idp.entity_id, "someone-else", None, None)
        .replace(&format!(r#" Destination="{sls}""#), "");
    let url = redirect::build_url(&sls, Kind::Request, &no_dest, "", Some(&b.idp.key)).expect("url");
    let resp = client().get(&url).send().await.expect("sls");
    assert_eq!(resp.status(), 400);
    assert!(resp
        .text()
        .await
        .expect("body")
        .contains("<code>logout_incomplete</code>"));
    assert!(session_alive(&b, &s3).await);
}

#[tokio::test]
async fn post_logout_urls_outside_the_app_are_refused_by_config() {
    let (dir, _idp, _) = prepare_dir();
    let path = dir.path().join("bridge.toml");
    let config = config_text(8080, "").replace(
        "schools = [\"99XX\", \"12AB03\"]",
        "schools = [\"99XX\", \"12AB03\"]\npost_logout_url = \"https://evil.example/\"",
    );
    std::fs::write(&path, config).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("apps.numo.post_logout_url"));
}

/// The logged-out page a student on a shared computer reads says which sessions ended and
/// which did not: Entree's after Single Logout (or its refusal), a jwt app's own login
/// (which the bridge never held), with the ways on in both languages.
#[tokio::test]
async fn the_logged_out_page_says_what_ended_and_what_is_still_open() {
    let b = bridge().await;
    let sls = format!("{}/desk/saml2/kennisnet/sls", b.base);
    for (success, lang) in [(true, "nl"), (false, "en")] {
        let c = client();
        log_in_to(&c, &b, "desk", "subject-page").await;
        let resp = c
            .get(format!("{}/desk/saml2/kennisnet/logout", b.base))
            .send()
            .await
            .expect("logout");
        assert_eq!(resp.status(), 302);
        let location = resp.headers()["location"].to_str().expect("location").to_string();
        let (request, request_id) = sent_logout_request(&b, &location);
        let answer = logout::response_xml("_r2", &sls, &b.idp.entity_id, &request_id, success);
        let relay = request.relay_state.as_deref().expect("relay");
        let url = redirect::build_url(&sls, Kind::Response, &answer, relay, Some(&b.idp.key)).expect("url");
        let resp = c.get(&url).header("accept-language", lang).send().await.expect("sls");
        assert_eq!(resp.status(), 200);
        let page = resp.text().await.expect("page");
        let login_link = format!("href=\"{}/desk/saml2/kennisnet/login\"", b.base);
        assert!(page.contains(&login_link), "a way to log in again: {page}");
        if success {
            assert!(page.contains("Je sessie bij Desk is beëindigd"), "{page}");
            assert!(page.contains("ook uitgelogd bij Entree"), "{page}");
            assert!(!page.contains("sluit alle vensters"), "nothing left open: {page}");
        } else {
            assert!(page.contains("Your session with Desk has ended"), "{page}");
            assert!(page.contains("Entree did not confirm the logout"), "{page}");
            assert!(page.contains("close every window of the browser"), "{page}");
        }
    }

    // A jwt app: the bridge holds no session, the app's own login and Entree's stay open.
    let c = client();
    for (lang, own_login, entree_open, again) in [
        (
            "nl",
            "houdt zijn eigen inlog bij",
            "staat nog open",
            "Opnieuw inloggen bij",
        ),
        ("en", "keeps its own login", "is still open", "Log in to"),
    ] {
        let resp = c
            .get(format!("{}/numo/saml2/kennisnet/logout", b.base))
            .header("accept-language", lang)
            .send()
            .await
            .expect("logout");
        assert_eq!(resp.status(), 200);
        let page = resp.text().await.expect("page");
        assert!(
            !page.contains("Je bent uitgelogd") && !page.contains("You are logged out"),
            "{page}"
        );
        for expected in [own_login, entree_open, again] {
            assert!(page.contains(expected), "{expected:?} in {page}");
        }
        // The way to the app is its own site (the callback's origin), not the bridge.
        assert!(page.contains(&format!("href=\"{}/\"", b.base)), "{page}");
    }
}
