//! The whole path a student walks, against a running bridge: elo link -> login -> IdP ->
//! ACS -> JWT, verified the way an app verifies it (an independent JWT library + JWKS).

use crate::common;

use base64::Engine;
use common::*;
use entree_bridge::demo::idp::SignMode;
use entree_bridge::saml::decrypt::{AES128_GCM, AES256_CBC};
use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;

async fn verify_token(bridge: &Bridge, token: &str, audience: &str) -> serde_json::Value {
    let jwks: JwkSet = reqwest::get(format!("{}/.well-known/jwks.json", bridge.base))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    let header = decode_header(token).expect("header");
    let kid = header.kid.expect("the token names its key");
    let jwk = jwks.find(&kid).expect("the kid is published in the JWKS");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[bridge.base.as_str()]);
    decode::<serde_json::Value>(token, &DecodingKey::from_jwk(jwk).expect("key"), &validation)
        .expect("the token verifies against the JWKS")
        .claims
}

#[tokio::test]
async fn a_student_walks_from_the_elo_link_to_the_app_with_a_verified_jwt() {
    let bridge = Bridge::start().await;
    let client = client();
    let login = start_login(&client, &bridge, "numo", Some("/numo/toets/42")).await;
    assert!(login.location.starts_with("https://idp.test.invalid/sso?SAMLRequest="));
    assert!(
        login.request_id.len() >= 33,
        "request IDs carry at least 128 random bits"
    );
    assert!(login.signed, "the IdP metadata wants signed requests");

    let xml = bridge
        .idp
        .response(&bridge.spec("numo", Some(&login.request_id)))
        .expect("sign");
    let outcome = post_acs(&client, &bridge, "numo", &xml, Some(&login.relay_state)).await;
    assert_eq!(outcome.status, 200, "{}", outcome.body);
    assert!(outcome.body.contains(&format!(
        r#"<form id="handoff" method="post" action="{}/callback">"#,
        bridge.base
    )));
    assert!(outcome
        .body
        .contains(&format!(r#"name="target" value="{}/numo/toets/42""#, bridge.base)));
    assert!(
        outcome.body.contains("<button type=\"submit\">"),
        "works without JavaScript"
    );

    let token = outcome.token().expect("token");
    let claims = verify_token(&bridge, &token, "numo").await;
    assert_eq!(claims["sub"], "100231", "the pattern's `code` group is the person code");
    assert_eq!(claims["aud"], "numo");
    assert_eq!(claims["school"], "99XX");
    assert_eq!(claims["tenant"], "ingang-a");
    assert_eq!(claims["given_name"], "Sanne");
    assert_eq!(claims["affiliation"], serde_json::json!(["student", "member"]));
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(claims["exp"].as_i64().expect("exp"), iat + 60);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 22));
}

#[tokio::test]
async fn the_authn_request_signature_verifies_with_the_sp_certificate() {
    let bridge = Bridge::start().await;
    let login = start_login(&client(), &bridge, "numo", None).await;
    let query = login.location.split_once('?').expect("query").1;
    let (signed_part, signature) = query.split_once("&Signature=").expect("signature");
    let signature: String = url::form_urlencoded::parse(format!("s={signature}").as_bytes())
        .next()
        .expect("s")
        .1
        .into_owned();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .expect("base64");
    let key = bridge.sp_cert.public_key().expect("public key");
    let mut verifier = Verifier::new(MessageDigest::sha256(), &key).expect("verifier");
    verifier.update(signed_part.as_bytes()).expect("update");
    assert!(verifier.verify(&signature).expect("verify"));
    assert!(signed_part.contains("SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256"));
}

#[tokio::test]
async fn the_login_cookie_is_http_only_and_scoped_to_the_app() {
    let bridge = Bridge::start().await;
    let resp = client()
        .get(format!("{}/numo/saml2/kennisnet/login", bridge.base))
        .send()
        .await
        .expect("login");
    let cookie = resp.headers()["set-cookie"].to_str().expect("cookie");
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("Path=/numo/saml2/kennisnet/"));
    // Plain http (loopback): Lax; under https the bridge sends SameSite=None; Secure.
    assert!(cookie.contains("SameSite=Lax"));
}

#[tokio::test]
async fn targets_outside_the_app_are_refused_and_nothing_is_started() {
    let bridge = Bridge::start().await;
    let client = client();
    for target in [
        "//evil.example/x",
        "/\\evil.example/x",
        "https://evil.example/",
        "https://127.0.0.1.evil.example/",
        "javascript:alert(1)",
        "data:text/html,hi",
        " //evil.example",
        "https://user@evil.example/",
        "http:evil.example",
    ] {
        let url = format!(
            "{}/numo/saml2/kennisnet/login?target={}",
            bridge.base,
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
        );
        let resp = client.get(url).send().await.expect("login");
        assert_eq!(resp.status(), 400, "target {target:?}");
        assert!(
            resp.headers().get("set-cookie").is_none(),
            "no login state for {target:?}"
        );
        assert!(resp
            .text()
            .await
            .expect("body")
            .contains("<code>target_not_allowed</code>"));
    }
    // Same origin and allowlisted origins are fine.
    start_login(&client, &bridge, "numo", Some("/numo/anything?x=1")).await;
    start_login(&client, &bridge, "open", Some("https://portal.example.nl/les/3")).await;
}

#[tokio::test]
async fn a_school_that_has_not_activated_the_app_gets_403_with_its_brin() {
    let bridge = Bridge::start().await;
    let (outcome, spec) = complete_login(&client(), &bridge, "numo", |s| {
        with_attribute(s, "nlEduPersonHomeOrganizationId", &["55QQ"])
    })
    .await;
    outcome.assert_rejected(403, "school_not_activated");
    assert!(outcome.body.contains("55QQ") && outcome.body.contains("Mijn Entree Federatie"));
    assert!(
        bridge.assertion_unseen(&spec.assertion_id).await,
        "nothing is stored for a refused school"
    );
}

#[tokio::test]
async fn a_branch_brin_on_the_list_is_enough() {
    let bridge = Bridge::start().await;
    let (outcome, _) = complete_login(&client(), &bridge, "numo", |s| {
        with_attribute(s, "nlEduPersonHomeOrganizationId", &["12AB"])
            .attribute("nlEduPersonHomeOrganizationBranchId", &["12AB03"])
    })
    .await;
    assert_eq!(outcome.status, 200, "{}", outcome.body);
    let claims = verify_token(&bridge, &outcome.token().expect("token"), "numo").await;
    assert_eq!(claims["school"], "12AB");
}

#[tokio::test]
async fn a_missing_person_attribute_or_a_pattern_miss_is_an_error_not_a_guess() {
    let bridge = Bridge::start().await;
    let client = client();
    for (values, code) in [
        (&[][..], "person_attribute_missing"),
        (&["no-at-sign"][..], "person_pattern_no_match"),
    ] {
        let (outcome, _) = complete_login(&client, &bridge, "numo", |s| {
            with_attribute(s, "nlEduPersonRealId", values)
        })
        .await;
        outcome.assert_rejected(403, code);
        assert!(outcome.body.contains("Nog geen account"));
    }
}

#[tokio::test]
async fn encrypted_assertions_are_decrypted_with_the_sp_key() {
    let bridge = Bridge::start().await;
    let client = client();
    for (alg, sign) in [
        (AES128_GCM, SignMode::Assertion),
        (AES256_CBC, SignMode::Both),
        (AES256_CBC, SignMode::Response),
    ] {
        let login = start_login(&client, &bridge, "numo", None).await;
        let mut spec = bridge.spec("numo", Some(&login.request_id));
        spec.sign = sign;
        let xml = bridge
            .idp
            .encrypted_response(&spec, &bridge.sp_cert, alg)
            .expect("encrypt");
        assert!(xml.contains("EncryptedAssertion") && !xml.contains("100231@school-a.nl"));
        let outcome = post_acs(&client, &bridge, "numo", &xml, Some(&login.relay_state)).await;
        assert_eq!(outcome.status, 200, "{alg} {sign:?}: {}", outcome.body);
        let claims = verify_token(&bridge, &outcome.token().expect("token"), "numo").await;
        assert_eq!(claims["sub"], "100231");
    }
    // AES-CBC from an unsigned Response: refused before decrypting (no padding oracle).
    let login = start_login(&client, &bridge, "numo", None).await;
    let spec = bridge.spec("numo", Some(&login.request_id));
    let xml = bridge
        .idp
        .encrypted_response(&spec, &bridge.sp_cert, AES256_CBC)
        .expect("encrypt");
    post_acs(&client, &bridge, "numo", &xml, Some(&login.relay_state))
        .await
        .assert_rejected(400, "encryption_algorithm_forbidden");
    // An encrypted assertion that nobody signed, in a response nobody signed: refused.
    let login = start_login(&client, &bridge, "numo", None).await;
    let mut spec = bridge.spec("numo", Some(&login.request_id));
    spec.sign = SignMode::Nothing;
    let xml = bridge
        .idp
        .encrypted_response(&spec, &bridge.sp_cert, AES128_GCM)
        .expect("encrypt");
    post_acs(&client, &bridge, "numo", &xml, Some(&login.relay_state))
        .await
        .assert_rejected(400, "signature_missing");
}

#[tokio::test]
async fn response_level_and_double_signatures_are_accepted() {
    let bridge = Bridge::start().await;
    let client = client();
    for sign in [SignMode::Response, SignMode::Both] {
        let (outcome, _) = complete_login(&client, &bridge, "numo", |mut s| {
            s.sign = sign;
            s
        })
        .await;
        assert_eq!(outcome.status, 200, "{sign:?}: {}", outcome.body);
    }
}

#[tokio::test]
async fn unsolicited_logins_work_where_allowed_and_keep_their_target_in_bounds() {
    let bridge = Bridge::start().await;
    let client = client();
    let spec = entree_bridge::demo::idp::ResponseSpec::new(&bridge.sp_entity_id("open"), &bridge.acs("open"), None)
        .attribute("eckId", &["https://ketenid.nl/201703/0123abcd"])
        .attribute("nlEduPersonHomeOrganizationId", &["11ZZ"]);
    let xml = bridge.idp.response(&spec).expect("sign");
    let outcome = post_acs(&client, &bridge, "open", &xml, Some("https://evil.example/")).await;
    assert_eq!(outcome.status, 200, "{}", outcome.body);
    assert!(
        !outcome.body.contains("evil.example"),
        "a RelayState outside the allowlist is dropped"
    );
    let claims = verify_token(&bridge, &outcome.token().expect("token"), "open").await;
    assert_eq!(
        claims["sub"], "https://ketenid.nl/201703/0123abcd",
        "eckId as the person code"
    );
    assert!(outcome.body.contains("action=\"https://open.example.nl/sso/callback\""));
}

#[tokio::test]
async fn sp_metadata_describes_the_app() {
    let bridge = Bridge::start().await;
    let resp = reqwest::get(format!("{}/numo/saml2/kennisnet/metadata", bridge.base))
        .await
        .expect("metadata");
    assert_eq!(resp.headers()["content-type"], "application/samlmetadata+xml");
    let xml = resp.text().await.expect("body");
    let doc = roxmltree::Document::parse(&xml).expect("well-formed metadata");
    let root = doc.root_element();
    assert_eq!(root.attribute("entityID"), Some(bridge.sp_entity_id("numo").as_str()));
    let acs = doc
        .descendants()
        .find(|n| n.has_tag_name("AssertionConsumerService"))
        .expect("ACS");
    assert_eq!(acs.attribute("Location"), Some(bridge.acs("numo").as_str()));
    assert_eq!(
        acs.attribute("Binding"),
        Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    );
    let uses: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("KeyDescriptor"))
        .filter_map(|n| n.attribute("use"))
        .collect();
    assert_eq!(uses, ["signing", "encryption"]);
    let cert_b64 = entree_bridge::keys::certificate_b64(&bridge.sp_cert).expect("cert");
    assert!(xml.contains(&cert_b64));
    assert!(xml.contains("urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"));
    let requested: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("RequestedAttribute"))
        .filter_map(|n| n.attribute("Name"))
        .collect();
    for name in [
        "nlEduPersonRealId",
        "nlEduPersonHomeOrganizationId",
        "eduPersonAffiliation",
        "givenName",
    ] {
        assert!(requested.contains(&name), "{name} requested: {requested:?}");
    }
}

#[tokio::test]
async fn error_pages_speak_english_when_asked_and_unknown_addresses_are_404() {
    let bridge = Bridge::start().await;
    let resp = client()
        .get(format!(
            "{}/numo/saml2/kennisnet/login?target=https://evil.example/",
            bridge.base
        ))
        .header("accept-language", "en-US,en;q=0.9")
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 400);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    let body = resp.text().await.expect("body");
    assert!(body.contains("Invalid redirect") && body.contains("Reference"));
    let resp = client()
        .get(format!("{}/nothing-here/saml2/kennisnet/login", bridge.base))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn health_and_jwks_are_served() {
    let bridge = Bridge::start().await;
    assert_eq!(
        reqwest::get(format!("{}/healthz", bridge.base))
            .await
            .expect("healthz")
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{}/readyz", bridge.base))
            .await
            .expect("readyz")
            .status(),
        200
    );
    let jwks: serde_json::Value = reqwest::get(format!("{}/.well-known/jwks.json", bridge.base))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["alg"], "ES256");
    assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
    assert!(key.get("d").is_none(), "no private part is ever published");
}

#[tokio::test]
async fn sp_metadata_carries_organization_and_contacts_when_configured() {
    let bridge = Bridge::start_with(
        r#"
[apps.numo.organization]
name = "Numo B.V."
display_name = "Numo"
url = "https://numo.example.nl"

[[apps.numo.contacts]]
type = "technical"
given_name = "Beheer"
email = "beheer@numo.example.nl"
"#,
    )
    .await;
    let xml = reqwest::get(format!("{}/numo/saml2/kennisnet/metadata", bridge.base))
        .await
        .expect("metadata")
        .text()
        .await
        .expect("body");
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let name = doc
        .descendants()
        .find(|n| n.has_tag_name("OrganizationName"))
        .expect("organization");
    assert_eq!(name.text(), Some("Numo B.V."));
    let contact = doc
        .descendants()
        .find(|n| n.has_tag_name("ContactPerson"))
        .expect("contact");
    assert_eq!(contact.attribute("contactType"), Some("technical"));
    assert!(xml.contains("mailto:beheer@numo.example.nl"));
}

#[tokio::test]
async fn requests_are_unsigned_when_the_idp_does_not_ask_for_signatures() {
    let bridge = Bridge::start_custom("", |dir| {
        let metadata = std::fs::read_to_string(dir.join("idp-metadata.xml")).expect("read");
        let unsigned = metadata.replace(
            r#"WantAuthnRequestsSigned="true""#,
            r#"WantAuthnRequestsSigned="false""#,
        );
        std::fs::write(dir.join("idp-metadata.xml"), unsigned).expect("write");
    })
    .await;
    let login = start_login(&client(), &bridge, "numo", None).await;
    assert!(!login.signed);
    assert!(!login.location.contains("SigAlg="));
}

#[tokio::test]
async fn under_https_the_login_cookie_is_a_host_only_secure_cross_site_cookie() {
    // An app whose base URL is https (reached here over loopback http: routing is by host
    // and path) gets `__Host-` cookies that survive the IdP's cross-site POST.
    let bridge = Bridge::start_with(
        r#"
[apps.secure]
federation = "kennisnet"
base_url = "https://127.0.0.1:{port}/secure"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.secure.handoff]
callback_url = "https://secure.example.nl/callback"
"#,
    )
    .await;
    let resp = client()
        .get(format!("{}/secure/saml2/kennisnet/login", bridge.base))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 302);
    let cookie = resp.headers()["set-cookie"].to_str().expect("cookie");
    assert!(cookie.starts_with("__Host-eb_login_"), "{cookie}");
    for part in ["Path=/;", "Secure", "SameSite=None", "HttpOnly"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
}

// Issue 17 at the ACS, with documents from the xmlsec1 CLI (signed and encrypted in place,
// as xmlsec-based IdPs do).

const XMLENC_AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";

/// The Response signed by xmlsec1 too (after its Assertion was signed and encrypted).
fn sign_response_with_xmlsec1(bridge: &Bridge, spec: &entree_bridge::demo::idp::ResponseSpec, xml: &str) -> String {
    let template = entree_bridge::demo::sign::template(
        &spec.response_id,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        entree_bridge::saml::signature::DIGEST_SHA256,
        &bridge.idp.cert_b64,
    );
    let at = xml.find("</saml:Issuer>").expect("Response Issuer") + "</saml:Issuer>".len();
    xmlsec1::sign(&format!("{}{template}{}", &xml[..at], &xml[at..]), &bridge.idp.key)
}

#[tokio::test]
async fn an_encrypted_assertion_relying_on_the_responses_namespaces_is_read_in_context() {
    // Before: xml_malformed ("unknown namespace prefix 'saml'"). After: logged in, with the
    // Response unsigned (AES-GCM, the Assertion's own signature) and signed (AES-CBC).
    let bridge = Bridge::start().await;
    let client = client();
    for (alg, sign_response) in [(AES128_GCM, false), (XMLENC_AES128_CBC, true)] {
        let login = start_login(&client, &bridge, "numo", None).await;
        let spec = bridge.spec("numo", Some(&login.request_id));
        let mut xml = xmlsec1::encrypted_response(
            &bridge.idp,
            &spec,
            &bridge.sp_cert,
            alg,
            xmlsec1::without_own_saml_namespace,
        );
        if sign_response {
            xml = sign_response_with_xmlsec1(&bridge, &spec, &xml);
        }
        assert!(xml.contains("EncryptedData") && !xml.contains("100231@school-a.nl"));
        let outcome = post_acs(&client, &bridge, "numo", &xml, Some(&login.relay_state)).await;
        assert_eq!(outcome.status, 200, "{alg} signed={sign_response}: {}", outcome.body);
        let claims = verify_token(&bridge, &outcome.token().expect("token"), "numo").await;
        assert_eq!(claims["sub"], "100231");
    }
}

#[tokio::test]
async fn a_saml_response_starting_with_a_byte_order_mark_is_accepted() {
    // Before: refused (the BOM before `<`). After: logged in.
    let bridge = Bridge::start().await;
    let client = client();
    let login = start_login(&client, &bridge, "numo", None).await;
    let spec = bridge.spec("numo", Some(&login.request_id));
    let xml = format!("\u{feff}{}", xmlsec1::response(&bridge.idp, &spec, |a| a));
    let outcome = post_acs(&client, &bridge, "numo", &xml, Some(&login.relay_state)).await;
    assert_eq!(outcome.status, 200, "{}", outcome.body);
}

#[tokio::test]
async fn cbc_in_an_unsigned_response_is_accepted_only_with_allow_cbc_and_the_refusal_names_the_key() {
    let xml_for = |bridge: &Bridge, request_id: &str| {
        let spec = bridge.spec("numo", Some(request_id));
        xmlsec1::encrypted_response(&bridge.idp, &spec, &bridge.sp_cert, XMLENC_AES128_CBC, |a| a)
    };
    let client = client();
    let strict = Bridge::start().await;
    let login = start_login(&client, &strict, "numo", None).await;
    let outcome = post_acs(
        &client,
        &strict,
        "numo",
        &xml_for(&strict, &login.request_id),
        Some(&login.relay_state),
    )
    .await;
    outcome.assert_rejected(400, "encryption_algorithm_forbidden");
    assert!(outcome.body.contains("allow_cbc"), "{}", outcome.body);

    let allowing = Bridge::start_edited(
        |_| {},
        |config| {
            config.replace(
                "[federations.kennisnet]\nmetadata = \"idp-metadata.xml\"",
                "[federations.kennisnet]\nmetadata = \"idp-metadata.xml\"\nallow_cbc = true",
            )
        },
    )
    .await;
    assert!(allowing.settings.federations["kennisnet"].trust.allow_cbc);
    let login = start_login(&client, &allowing, "numo", None).await;
    let outcome = post_acs(
        &client,
        &allowing,
        "numo",
        &xml_for(&allowing, &login.request_id),
        Some(&login.relay_state),
    )
    .await;
    assert_eq!(outcome.status, 200, "{}", outcome.body);
}

/// The back button or a bookmark lands a GET on the ACS: a styled page in the browser's
/// language (not a bare "method not allowed"), `Allow: POST`, a new login, and the app's
/// help desk from the config's support contact, as on every error page of the app.
#[tokio::test]
async fn a_get_on_the_acs_is_a_page_with_a_way_back_and_the_apps_contact() {
    let extra = "[[apps.numo.contacts]]\ntype = \"support\"\nemail = \"help@numo.example.nl\"\n";
    let bridge = Bridge::start_custom(extra, |_| {}).await;
    let acs = format!("{}/numo/saml2/kennisnet/acs", bridge.base);
    for (lang, title, again, help) in [
        (
            "nl",
            "Deze pagina kun je niet opnieuw openen",
            "Opnieuw inloggen bij",
            "Hulp nodig? De helpdesk van",
        ),
        ("en", "This page cannot be opened again", "Log in to", "Need help?"),
    ] {
        let resp = client()
            .get(&acs)
            .header("accept-language", lang)
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 405);
        assert_eq!(resp.headers()["allow"], "POST");
        assert!(resp.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/html"));
        let page = resp.text().await.expect("page");
        assert!(page.contains(&format!("<html lang=\"{lang}\"")), "{page}");
        for expected in [title, again, help, "<code>method_not_allowed</code>"] {
            assert!(page.contains(expected), "{expected:?} in {page}");
        }
        let login = format!("href=\"{}/numo/saml2/kennisnet/login\"", bridge.base);
        assert!(page.contains(&login), "{page}");
        assert!(page.contains("href=\"mailto:help@numo.example.nl\""), "{page}");
    }
    // Other refusals of the app carry the same ways on: a target outside the app.
    let refused = client()
        .get(format!(
            "{}/numo/saml2/kennisnet/login?target=https://evil.example",
            bridge.base
        ))
        .send()
        .await
        .expect("login");
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.expect("page");
    assert!(
        page.contains("<code>target_not_allowed</code>") && page.contains("mailto:help@numo.example.nl"),
        "{page}"
    );
}
