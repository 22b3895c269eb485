//! Interop with SimpleSAMLphp 1.19 as the IdP (Debian bookworm's `simplesamlphp` package, PHP's
//! own XML signing stack: xmlseclibs and simplesamlphp/saml2, not libxmlsec1). A real
//! SimpleSAMLphp runs under `php -S` on a free port with a config dir of the test's own, reads
//! the bridge's real SP metadata with its own parser, and a cookie-keeping client walks its
//! login form: every login below is the path a student's browser takes.
//!
//! What SimpleSAMLphp 1.19 does that a reader of these tests should know (found here):
//! - It signs both the Response and the Assertion by default (`saml20.sign.response` and
//!   `saml20.sign.assertion` default to true), RSA-SHA256 with SHA-256 digests, exclusive C14N.
//! - With an RSA key it always encrypts the assertion with AES-128-CBC (the symmetric algorithm
//!   is fixed in saml2's `EncryptedAssertion::setAssertion`; `sharedkey_algorithm` only applies
//!   to a shared secret) and RSA-OAEP-MGF1P key transport: accepted because the Response is
//!   signed, refused (`encryption_algorithm_forbidden`) when it is not.
//! - It publishes `WantAuthnRequestsSigned="true"` only when the hosted IdP sets
//!   `validate.authnrequest`; the bridge signs exactly when the metadata asks. The check itself
//!   reads the sp-remote entry first, then the hosted IdP.
//! - It signs logout messages only with `sign.logout` (the default `redirect.sign` is false);
//!   the bridge refuses unsigned ones.
//! - Its stock `name2oid` / `name2urn` maps know uid, givenName, mail, eduPerson*, but no
//!   nlEduPerson* attribute: those stay plain names (the bridge, too, knows no OID for them).
//! - Debian keeps the attribute maps in /etc/simplesamlphp/attributemap, not under the install
//!   dir where 1.19 looks: config.php sets `attributenamemapdir`.
//! - `initSLO.php` (IdP-initiated logout) checks its RelayState against `trusted.url.domains`,
//!   ports included; the test config allows every URL.
//! - It ignores the EncryptionMethod hints in the bridge's SP metadata (AES-GCM): see above.
//! - The bridge's SP metadata asks for NameIDFormat `unspecified`; 1.19 then hashes the
//!   `UserID`, which exampleauth:UserPass does not set, and falls back to a transient NameID
//!   (with SPNameQualifier = the SP's entity ID). Its LogoutRequest carries that NameID and the
//!   SessionIndex of the login.
//! - The login form posts to `loginuserpass.php?` with the AuthState as a hidden field; after a
//!   login the IdP answers with an auto-submitting form (`<form method="post" action=ACS>`).
//! - Its logout passes through `module.php/core/idp/resumelogout.php` before the browser goes
//!   on; its error pages answer 200 (the message is on the page and in its log).
//! - Debian's package depends on `apache2 | httpd`: installing it brings Apache, which the
//!   tests do not use (`php -S` serves it).

use crate::common;

use common::simplesamlphp::{hop, PostForm, SimpleSamlPhp};
use common::*;
use entree_bridge::keys::{self, KeyKind};
use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};
use serde_json::{json, Value};

const NAMEFORMAT_BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
const NAMEFORMAT_URI: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";

/// The apps under test, next to the harness's `numo` (jwt, person code from the pattern).
/// `{port}` is the bridge's port; `{upstream}` the headers-mode app's.
const APPS: &str = r#"
[apps.names]
federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/names"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["99XX"]
[apps.names.person]
attribute = "uid"
[apps.names.handoff]
callback_url = "http://127.0.0.1:{port}/callback"
[apps.names.claims]
given_name = "givenName"
mail = "mail"
real_id = "nlEduPersonRealId"

[apps.oid]
federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/oid"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["99XX"]
[apps.oid.person]
attribute = "uid"
[apps.oid.handoff]
callback_url = "http://127.0.0.1:{port}/callback"
[apps.oid.claims]
given_name = "givenName"
mail = "mail"
real_id = "nlEduPersonRealId"

[apps.mace]
federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/mace"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["99XX"]
[apps.mace.person]
attribute = "uid"
[apps.mace.handoff]
callback_url = "http://127.0.0.1:{port}/callback"
[apps.mace.claims]
given_name = "givenName"
mail = "mail"
real_id = "nlEduPersonRealId"

[apps.proxied]
federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/proxied"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
post_logout_url = "http://127.0.0.1:{port}/proxied/bye"
[apps.proxied.tenants]
"99XX" = "ingang-a"
[apps.proxied.handoff]
mode = "headers"
upstream = "http://{upstream}"
"#;

/// A bridge and a SimpleSAMLphp that know each other, and the headers-mode upstream.
struct Federation {
    ssp: SimpleSamlPhp,
    bridge: Bridge,
}

impl Federation {
    /// Starts SimpleSAMLphp, then the bridge on its metadata; then gives SimpleSAMLphp each
    /// app's SP metadata as the bridge serves it, with the sp-remote options of `sps`.
    async fn start(sps: &[(&str, Value)]) -> Federation {
        let ssp = SimpleSamlPhp::start().await;
        let idp_metadata = ssp.metadata().await;
        let upstream = echo_upstream().await;
        let apps = APPS.replace("{upstream}", &upstream.to_string());
        let bridge = Bridge::start_custom(&apps, |dir| {
            std::fs::write(dir.join("idp-metadata.xml"), &idp_metadata).expect("write")
        })
        .await;
        let federation = bridge.settings.federations["kennisnet"]
            .metadata_at_load()
            .expect("metadata");
        assert_eq!(federation.entity_id, ssp.entity_id());
        for (app, options) in sps {
            let xml = Self::sp_metadata(&bridge, app).await;
            ssp.add_sp(app, &xml, options);
        }
        Federation { ssp, bridge }
    }

    async fn sp_metadata(bridge: &Bridge, app: &str) -> String {
        reqwest::get(bridge.sp_entity_id(app))
            .await
            .expect("sp metadata")
            .text()
            .await
            .expect("body")
    }

    /// Walks a login for `app` as a browser: the bridge's login, SimpleSAMLphp's form (when
    /// it has no session yet), its auto-post form. Returns that form, not yet posted.
    async fn log_in(&self, c: &reqwest::Client, app: &str, user: &str) -> PostForm {
        let login = start_login(c, &self.bridge, app, None).await;
        assert!(login.signed, "SimpleSAMLphp's metadata wants signed AuthnRequests");
        let page = self.ssp.sign_in(c, &login.location, user).await;
        let form = PostForm::parse(&page.body)
            .filter(|f| f.field("SAMLResponse").is_some())
            .unwrap_or_else(|| {
                panic!(
                    "no SAMLResponse form ({}): {}\n{}",
                    page.status,
                    page.body,
                    self.ssp.logs()
                )
            });
        assert_eq!(
            form.action,
            self.bridge.acs(app),
            "SimpleSAMLphp posts to the ACS in the SP metadata"
        );
        assert_eq!(form.field("RelayState"), Some(login.relay_state.as_str()));
        form
    }
}

/// A headers-mode upstream that echoes the headers it got, as JSON.
async fn echo_upstream() -> std::net::SocketAddr {
    async fn echo(headers: axum::http::HeaderMap) -> ([(axum::http::HeaderName, &'static str); 1], String) {
        let mut all = serde_json::Map::new();
        for (name, value) in &headers {
            all.insert(name.as_str().to_string(), json!(value.to_str().unwrap_or("<bytes>")));
        }
        (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            Value::Object(all).to_string(),
        )
    }
    let app = axum::Router::new().route("/proxied/echo", axum::routing::get(echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The claims of a hand-off token, verified against the bridge's JWKS as an app does.
async fn verified_claims(bridge: &Bridge, acs_page: &str, audience: &str) -> Value {
    let outcome = AcsOutcome {
        status: 200,
        body: acs_page.to_string(),
    };
    let token = outcome
        .token()
        .unwrap_or_else(|| panic!("no hand-off token: {acs_page}"));
    let jwks: JwkSet = reqwest::get(format!("{}/.well-known/jwks.json", bridge.base))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    let header = decode_header(&token).expect("header");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("the kid is published");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[bridge.base.as_str()]);
    decode::<Value>(&token, &DecodingKey::from_jwk(jwk).expect("key"), &validation)
        .expect("the token verifies against the JWKS")
        .claims
}

/// Logs in to the jwt-mode `app` and returns the verified claims.
async fn jwt_login(f: &Federation, app: &str) -> (Value, String) {
    let c = client();
    let form = f.log_in(&c, app, "student").await;
    let xml = form.response_xml();
    let resp = form.submit(&c).await;
    let status = resp.status().as_u16();
    let body = resp.text().await.expect("body");
    assert_eq!(
        status, 200,
        "the ACS refused SimpleSAMLphp's response for {app}: {body}\n{xml}"
    );
    (verified_claims(&f.bridge, &body, app).await, xml)
}

/// What the signature that is a child of `parent` used: SignatureMethod, DigestMethod,
/// CanonicalizationMethod.
fn signature_algorithms(parent: roxmltree::Node) -> Option<[String; 3]> {
    let sig = parent.children().find(|n| n.has_tag_name((DS, "Signature")))?;
    let alg = |tag: &str| {
        sig.descendants()
            .find(|n| n.has_tag_name((DS, tag)))
            .and_then(|n| n.attribute("Algorithm"))
            .unwrap_or("")
            .to_string()
    };
    Some([
        alg("SignatureMethod"),
        alg("DigestMethod"),
        alg("CanonicalizationMethod"),
    ])
}

/// (Name, NameFormat) of every Attribute in a plaintext assertion.
fn attribute_names(xml: &str) -> Vec<(String, String)> {
    let doc = roxmltree::Document::parse(xml).expect("xml");
    doc.descendants()
        .filter(|n| n.tag_name().name() == "Attribute")
        .map(|n| {
            (
                n.attribute("Name").unwrap_or("").to_string(),
                n.attribute("NameFormat").unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn plain_sp() -> Value {
    json!({ "validate.authnrequest": true })
}

#[tokio::test]
async fn jwt_mode_login_through_simplesamlphp_gives_a_token_that_verifies() {
    let f = Federation::start(&[("numo", plain_sp())]).await;
    let (claims, xml) = jwt_login(&f, "numo").await;
    assert_eq!(claims["sub"], "100231", "the pattern's code from nlEduPersonRealId");
    assert_eq!(claims["aud"], "numo");
    assert_eq!(claims["school"], "99XX");
    assert_eq!(claims["tenant"], "ingang-a");
    assert_eq!(claims["given_name"], "Sanne");
    assert_eq!(claims["affiliation"], json!(["student", "member"]));

    // What SimpleSAMLphp sent: Response and Assertion both signed, RSA-SHA256, SHA-256, exc-c14n.
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let root = doc.root_element();
    let assertion = root
        .children()
        .find(|n| n.tag_name().name() == "Assertion")
        .expect("a plaintext assertion");
    let expected = [
        RSA_SHA256.to_string(),
        "http://www.w3.org/2001/04/xmlenc#sha256".to_string(),
        "http://www.w3.org/2001/10/xml-exc-c14n#".to_string(),
    ];
    assert_eq!(
        signature_algorithms(root),
        Some(expected.clone()),
        "the Response is signed"
    );
    assert_eq!(
        signature_algorithms(assertion),
        Some(expected),
        "the Assertion is signed"
    );
    assert!(attribute_names(&xml)
        .iter()
        .all(|(_, format)| format == NAMEFORMAT_BASIC));
}

#[tokio::test]
async fn headers_mode_login_through_simplesamlphp_reaches_the_upstream_with_the_identity() {
    let f = Federation::start(&[("proxied", plain_sp())]).await;
    let c = client();
    let form = f.log_in(&c, "proxied", "student").await;
    let acs = form.submit(&c).await;
    assert_eq!(acs.status(), 302, "the ACS opens a session and redirects");
    let seen: Value = c
        .get(format!("{}/proxied/echo", f.bridge.base))
        .send()
        .await
        .expect("echo")
        .json()
        .await
        .expect("json");
    assert_eq!(seen["x-bridge-person-code"], "100231@school-a.nl");
    assert_eq!(seen["x-bridge-school"], "99XX");
    assert_eq!(seen["x-bridge-affiliation"], "student,member");
    assert_eq!(seen["x-bridge-tenant"], "ingang-a");
    assert!(seen["x-bridge-token"]
        .as_str()
        .is_some_and(|t| t.split('.').count() == 3));
}

#[tokio::test]
async fn simplesamlphp_checks_the_authn_request_signature_and_refuses_a_wrong_one() {
    // `forged`: SimpleSAMLphp knows the `names` SP with another certificate than the bridge's.
    let other =
        keys::self_signed_certificate(&keys::generate_key(KeyKind::Rsa2048).expect("key"), "other", 30).expect("cert");
    let f = Federation::start(&[("numo", plain_sp())]).await;
    let names_xml = Federation::sp_metadata(&f.bridge, "names").await;
    let ours = keys::certificate_b64(&f.bridge.sp_cert).expect("b64");
    let theirs = keys::certificate_b64(&other).expect("b64");
    assert!(names_xml.contains(&ours));
    f.ssp.add_sp("names", &names_xml.replace(&ours, &theirs), &plain_sp());

    // The genuine request: signed with RSA-SHA256 in the Redirect binding, and accepted.
    let c = client();
    let login = start_login(&c, &f.bridge, "numo", None).await;
    let query = login.location.split_once('?').expect("query").1;
    let sig_alg = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "SigAlg")
        .map(|(_, v)| v.into_owned());
    assert_eq!(sig_alg.as_deref(), Some(RSA_SHA256));
    let (status, location) = hop(&c, &login.location).await;
    assert_eq!(
        status,
        302,
        "SimpleSAMLphp accepts the signed request: {location}\n{}",
        f.ssp.logs()
    );
    assert!(location.contains("/module.php/core/loginuserpass.php"), "{location}");

    // The same request without its signature: refused, validate.authnrequest is real.
    let unsigned: String = query
        .split('&')
        .filter(|p| !p.starts_with("Signature=") && !p.starts_with("SigAlg="))
        .collect::<Vec<_>>()
        .join("&");
    // (SimpleSAMLphp's error pages answer 200 under `php -S`: the page and the log say it.)
    let (status, page) = hop(
        &client(),
        &format!("{}/saml2/idp/SSOService.php?{unsigned}", f.ssp.base),
    )
    .await;
    assert_ne!(status, 302, "an unsigned AuthnRequest must not reach the login form");
    let why = "Validation of received messages enabled, but no signature found on message";
    assert!(page.contains(why), "the error page says why: {page}");
    assert!(f.ssp.log().contains(why), "{}", f.ssp.logs());

    // Signed by the bridge's key, checked against another certificate: refused.
    let c = client();
    let login = start_login(&c, &f.bridge, "names", None).await;
    let (status, page) = hop(&c, &login.location).await;
    assert_ne!(
        status, 302,
        "a signature that does not verify must not reach the login form: {page}"
    );
    let why = "Unable to validate signature on query string";
    assert!(page.contains(why), "the error page says why: {page}");
    assert!(f.ssp.log().contains(why), "{}", f.ssp.logs());
}

#[tokio::test]
async fn an_encrypted_assertion_in_a_signed_response_from_simplesamlphp_is_accepted() {
    let sealed = json!({
        "validate.authnrequest": true,
        "assertion.encryption": true,
        "saml20.sign.response": true,
    });
    let f = Federation::start(&[("names", sealed)]).await;
    let (claims, xml) = jwt_login(&f, "names").await;
    assert_eq!(claims["sub"], "100231");
    assert_eq!(claims["school"], "99XX");
    assert_eq!(claims["given_name"], "Sanne");

    // What SimpleSAMLphp sent: a signed Response around an EncryptedAssertion, AES-128-CBC
    // content, the key wrapped with RSA-OAEP-MGF1P (no DigestMethod: OAEP's default SHA-1).
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    let root = doc.root_element();
    assert!(signature_algorithms(root).is_some_and(|a| a[0] == RSA_SHA256), "{xml}");
    assert!(
        !root.children().any(|n| n.tag_name().name() == "Assertion"),
        "no plaintext assertion"
    );
    let encrypted = root
        .children()
        .find(|n| n.tag_name().name() == "EncryptedAssertion")
        .expect("an EncryptedAssertion");
    let methods: Vec<&str> = encrypted
        .descendants()
        .filter(|n| n.has_tag_name((XENC, "EncryptionMethod")))
        .filter_map(|n| n.attribute("Algorithm"))
        .collect();
    assert!(
        methods.contains(&"http://www.w3.org/2001/04/xmlenc#aes128-cbc"),
        "{methods:?}"
    );
    assert!(
        methods.contains(&"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"),
        "{methods:?}"
    );
}

#[tokio::test]
async fn an_encrypted_assertion_in_an_unsigned_response_from_simplesamlphp_is_refused_as_cbc() {
    // SimpleSAMLphp's CBC with only the assertion signed: the padding-oracle case, refused
    // unless the federation sets allow_cbc.
    let sealed = json!({
        "validate.authnrequest": true,
        "assertion.encryption": true,
        "saml20.sign.response": false,
    });
    let f = Federation::start(&[("names", sealed)]).await;
    let c = client();
    let form = f.log_in(&c, "names", "student").await;
    let resp = form.submit(&c).await;
    let outcome = AcsOutcome {
        status: resp.status().as_u16(),
        body: resp.text().await.expect("body"),
    };
    outcome.assert_rejected(400, "encryption_algorithm_forbidden");
    assert!(
        outcome.body.contains("allow_cbc"),
        "the page names the key: {}",
        outcome.body
    );
}

#[tokio::test]
async fn urn_oid_and_urn_mace_attribute_names_map_to_the_same_identity() {
    let oid = json!({
        "validate.authnrequest": true,
        "attributes.NameFormat": NAMEFORMAT_URI,
        "authproc": { "50": { "class": "core:AttributeMap", "0": "name2oid" } },
    });
    // name2urn knows no nlEdu attribute; the Entree ones are mapped to their mace URN inline.
    let mace = json!({
        "validate.authnrequest": true,
        "attributes.NameFormat": NAMEFORMAT_URI,
        "authproc": { "50": {
            "class": "core:AttributeMap",
            "0": "name2urn",
            "nlEduPersonRealId": "urn:mace:dir:attribute-def:nlEduPersonRealId",
            "nlEduPersonHomeOrganizationId": "urn:mace:dir:attribute-def:nlEduPersonHomeOrganizationId",
        } },
    });
    let f = Federation::start(&[("names", plain_sp()), ("oid", oid), ("mace", mace)]).await;
    let (names_claims, names_xml) = jwt_login(&f, "names").await;
    let (oid_claims, oid_xml) = jwt_login(&f, "oid").await;
    let (mace_claims, mace_xml) = jwt_login(&f, "mace").await;

    let sent = |xml: &str, name: &str| attribute_names(xml).into_iter().find(|(n, _)| n == name);
    assert_eq!(sent(&names_xml, "uid").map(|a| a.1), Some(NAMEFORMAT_BASIC.into()));
    assert_eq!(
        sent(&oid_xml, "urn:oid:0.9.2342.19200300.100.1.1").map(|a| a.1),
        Some(NAMEFORMAT_URI.into()),
        "{oid_xml}"
    );
    assert!(
        sent(&oid_xml, "urn:oid:1.3.6.1.4.1.5923.1.1.1.1").is_some(),
        "{oid_xml}"
    );
    assert!(sent(&oid_xml, "urn:oid:2.5.4.42").is_some(), "{oid_xml}");
    assert!(sent(&oid_xml, "uid").is_none(), "{oid_xml}");
    assert_eq!(
        sent(&mace_xml, "urn:mace:dir:attribute-def:uid").map(|a| a.1),
        Some(NAMEFORMAT_URI.into()),
        "{mace_xml}"
    );
    assert!(
        sent(&mace_xml, "urn:mace:dir:attribute-def:nlEduPersonRealId").is_some(),
        "{mace_xml}"
    );
    assert!(sent(&mace_xml, "urn:mace:dir:attribute-def:eduPersonAffiliation").is_some());

    for (name, claims) in [("oid", &oid_claims), ("mace", &mace_claims)] {
        for claim in ["sub", "school", "affiliation", "given_name", "mail", "real_id"] {
            assert_eq!(claims[claim], names_claims[claim], "{name}: claim {claim}");
        }
    }
    assert_eq!(names_claims["sub"], "100231");
    assert_eq!(names_claims["real_id"], "100231@school-a.nl");
    assert_eq!(names_claims["affiliation"], json!(["student", "member"]));
    assert_eq!(names_claims["mail"], "sanne@school-a.nl");
}

/// Logs in to `proxied` and checks the session opens the upstream.
async fn headers_session(f: &Federation, c: &reqwest::Client) {
    let form = f.log_in(c, "proxied", "student").await;
    assert_eq!(form.submit(c).await.status(), 302);
    assert!(session_alive(f, c).await, "logged in");
}

/// Whether `c`'s bridge session still opens the upstream (401 without one).
async fn session_alive(f: &Federation, c: &reqwest::Client) -> bool {
    let resp = c
        .get(format!("{}/proxied/echo", f.bridge.base))
        .header("accept", "application/json")
        .send()
        .await
        .expect("echo");
    match resp.status().as_u16() {
        200 => true,
        401 => false,
        other => panic!("unexpected {other} from the proxied app"),
    }
}

/// Whether SimpleSAMLphp still knows `c` (a new login skips its form).
async fn idp_session_alive(f: &Federation, c: &reqwest::Client) -> bool {
    let login = start_login(c, &f.bridge, "proxied", None).await;
    let page = common::simplesamlphp::follow(c, &login.location).await;
    !page.body.contains(r#"name="password""#)
}

#[tokio::test]
async fn logout_started_at_the_bridge_is_answered_by_simplesamlphp() {
    let f = Federation::start(&[("proxied", plain_sp())]).await;
    let c = client();
    headers_session(&f, &c).await;

    let (status, to_idp) = hop(&c, &format!("{}/proxied/saml2/kennisnet/logout", f.bridge.base)).await;
    assert_eq!(status, 302);
    let slo = format!("{}/saml2/idp/SingleLogoutService.php?SAMLRequest=", f.ssp.base);
    assert!(to_idp.starts_with(&slo), "{to_idp}");
    assert!(!session_alive(&f, &c).await, "the bridge session ends at once");

    // SimpleSAMLphp checks the LogoutRequest's signature (validate.logout), ends its session and
    // answers the SLS with a LogoutResponse signed in the Redirect binding (sign.logout).
    let (status, to_sls) = f.ssp.hop_through(&c, &to_idp).await;
    assert_eq!(status, 302, "{to_sls}\n{}", f.ssp.logs());
    let sls = format!("{}/proxied/saml2/kennisnet/sls?", f.bridge.base);
    assert!(to_sls.starts_with(&sls), "{to_sls}");
    let query = to_sls.split_once('?').expect("query").1;
    assert!(query.contains(&format!(
        "SigAlg={}",
        url::form_urlencoded::byte_serialize(RSA_SHA256.as_bytes()).collect::<String>()
    )));
    let answer = entree_bridge::saml::redirect::receive(query, &[f.ssp.certificate()], false)
        .expect("signed by SimpleSAMLphp's key");
    assert!(
        answer.xml.contains("urn:oasis:names:tc:SAML:2.0:status:Success"),
        "{}",
        answer.xml
    );

    let (status, done) = hop(&c, &to_sls).await;
    assert_eq!(status, 302, "the bridge accepts SimpleSAMLphp's LogoutResponse: {done}");
    assert_eq!(done, format!("{}/proxied/bye", f.bridge.base));
    assert!(!idp_session_alive(&f, &c).await, "SimpleSAMLphp's session ended too");
}

#[tokio::test]
async fn logout_started_at_simplesamlphp_ends_the_bridge_session() {
    let f = Federation::start(&[("proxied", plain_sp())]).await;
    let (c, other) = (client(), client());
    headers_session(&f, &c).await;
    headers_session(&f, &other).await;

    // IdP-initiated: initSLO.php sends the browser to each SP's SLS with a LogoutRequest.
    let back = format!("{}/logged-out", f.ssp.base);
    let init = format!(
        "{}/saml2/idp/initSLO.php?RelayState={}",
        f.ssp.base,
        url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    );
    let (status, to_sls) = f.ssp.hop_through(&c, &init).await;
    assert_eq!(status, 302, "{to_sls}\n{}", f.ssp.logs());
    let sls = format!("{}/proxied/saml2/kennisnet/sls?SAMLRequest=", f.bridge.base);
    assert!(to_sls.starts_with(&sls), "{to_sls}");
    let query = to_sls.split_once('?').expect("query").1;
    let request = entree_bridge::saml::redirect::receive(query, &[f.ssp.certificate()], false)
        .expect("signed by SimpleSAMLphp's key");
    assert!(request.xml.contains("SessionIndex"), "{}", request.xml);

    // The bridge ends the session and answers with its own signed LogoutResponse, which
    // SimpleSAMLphp checks before it sends the browser to the RelayState.
    let (status, to_idp) = hop(&c, &to_sls).await;
    assert_eq!(status, 302, "{to_idp}");
    assert!(
        to_idp.starts_with(&format!(
            "{}/saml2/idp/SingleLogoutService.php?SAMLResponse=",
            f.ssp.base
        )),
        "{to_idp}"
    );
    assert!(!session_alive(&f, &c).await, "the bridge session is gone");
    let (status, end) = f.ssp.hop_through(&c, &to_idp).await;
    assert_eq!(
        status,
        302,
        "SimpleSAMLphp accepts the bridge's LogoutResponse: {end}\n{}",
        f.ssp.logs()
    );
    assert_eq!(end, back);
    assert!(!idp_session_alive(&f, &c).await, "SimpleSAMLphp's session ended");
    assert!(
        session_alive(&f, &other).await,
        "another browser's session (another NameID) stays"
    );
}
