//! The demo's own pages: start page, development IdP (login page and response), sample app.

use std::sync::Arc;

use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine;
use serde::Deserialize;

use super::idp::ResponseSpec;
use super::{DemoState, STUDENTS};
use crate::config::App;
use crate::http::pages::{form_post_csp, html_page, html_response, page_csp, render_post, Lang};
use crate::saml::logout;
use crate::saml::redirect::{self, Kind};
use crate::saml::xml::{self, escape, XmlLimits};

pub fn router(state: Arc<DemoState>) -> Router {
    Router::new()
        .route("/", get(start_page))
        .route("/demo/idp/sso", get(idp_login_page))
        .route("/demo/idp/login", post(idp_respond))
        .route(super::IDP_SLO_PATH, get(idp_single_logout))
        .route("/demo/app/callback", post(super::sample_app::callback))
        .route("/demo/app/link", get(link_page).post(link_submit))
        .route(super::oidc_app::HOME, get(super::oidc_app::home))
        .route(super::oidc_app::LOGIN, get(super::oidc_app::login))
        .route(super::oidc_app::CALLBACK, get(super::oidc_app::callback))
        .with_state(state)
}

async fn start_page(State(state): State<Arc<DemoState>>) -> Response {
    let mut apps = String::new();
    for app in &state.settings.apps {
        // The OpenID Connect app's elo link lands in its sample app, which then signs in
        // with its OIDC client (the bridge's session answers at once).
        let login = match &app.handoff.oidc {
            Some(_) => format!(
                "{}?target={}",
                app.route_url("login"),
                url::form_urlencoded::byte_serialize(
                    format!(
                        "{}{}",
                        state.settings.public_base_url.as_str().trim_end_matches('/'),
                        super::oidc_app::LOGIN
                    )
                    .as_bytes()
                )
                .collect::<String>()
            ),
            None => app.route_url("login"),
        };
        apps.push_str(&format!(
            "<li><a href=\"{login}\">{name}</a>: scholen <code>{schools}</code>, persoonscode uit <code>{attr}</code>. SP metadata: <a href=\"{meta}\">{meta}</a></li>",
            login = escape(&login),
            name = escape(&app.display_name),
            schools = escape(&app.identity.schools.join(", ")),
            attr = escape(&app.identity.person_attribute),
            meta = escape(&app.route_url("metadata")),
        ));
    }
    let students: String = STUDENTS
        .iter()
        .map(|s| {
            format!(
                "<li><b>{} {}</b> ({}, {}): {} <i lang=\"en\">({})</i></li>",
                escape(s.given_name),
                escape(s.sn),
                escape(s.school),
                escape(s.affiliation),
                escape(s.note_nl),
                escape(s.note_en)
            )
        })
        .collect();
    let body = format!(
        concat!(
            "<h1>entree-bridge demo</h1>",
            "<p>Dit is de hele route die een leerling loopt: een link in de elo wijst naar de login-URL van een app, ",
            "de bridge stuurt een ondertekend AuthnRequest naar Entree (hier: een ontwikkel-IdP in hetzelfde proces), ",
            "Entree stuurt een ondertekende SAML Response terug naar de bridge, de bridge controleert die, bepaalt de persoonscode ",
            "en geeft de leerling door aan de app met een ondertekende JWT.</p>",
            "<p><i>This is the whole path a student walks: elo link, bridge, Entree (a development IdP here), bridge, app.</i></p>",
            "<h2>Apps (elo-links)</h2><ul>{apps}</ul>",
            "<h2>Wat je kunt proberen / What to try</h2><ul>",
            "<li><b>Numo</b> met Sanne: de JWT met haar persoonscode. Met Mila: de persoonscode uit het Magister-bestand. ",
            "Met Lotte: de 403-pagina voor een school die nog niet heeft geactiveerd. ",
            "<i lang=\"en\">JWT hand-off; a person code from an imported Magister file; the page for a school that has not activated the app.</i></li>",
            "<li><b>Rooster</b>: de app achter de bridge (headers mode) laat zien welke headers hij kreeg. ",
            "<i lang=\"en\">Headers mode: the app behind the proxy shows the headers it received.</i></li>",
            "<li><b>Klas</b>: de app kent je nog niet; koppel één keer je bestaande account (<code>sanne.klas</code> of <code>mila.klas</code>, wachtwoord <code>demo</code>). ",
            "<i lang=\"en\">First-time linking: link your existing account once, then you are straight in.</i></li>",
            "<li><b>Portaal</b>: een app met alleen OpenID Connect; zijn sample app logt in met een gewone OIDC-client en toont de id_token en userinfo (<a href=\"/demo/oidc/\">direct starten</a>). ",
            "<i lang=\"en\">An app with nothing but OpenID Connect: its sample app signs in with a plain OIDC client library and shows the id_token and userinfo.</i></li></ul>",
            "<h2>Testgebruikers van de ontwikkel-IdP (leerlingen en een docent)</h2><ul>{students}</ul>",
            "<p>Public keys of the bridge: <a href=\"/.well-known/jwks.json\">/.well-known/jwks.json</a></p>"
        ),
        apps = apps,
        students = students
    );
    html_response(
        StatusCode::OK,
        html_page(Lang::Nl, "entree-bridge demo", &body),
        &page_csp(),
    )
}

#[derive(Deserialize)]
struct SsoQuery {
    #[serde(rename = "SAMLRequest")]
    saml_request: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// What the IdP reads from an AuthnRequest.
struct RequestInfo {
    id: String,
    issuer: String,
}

fn decode_request(encoded: &str) -> Result<RequestInfo, String> {
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| "SAMLRequest is not base64")?;
    let raw = crate::saml::authn_request::inflate_bounded(&deflated, 64 * 1024)?;
    let text = String::from_utf8(raw).map_err(|_| "SAMLRequest is not UTF-8")?;
    let doc = xml::parse_bounded(&text, XmlLimits::default()).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if !xml::is(&root, xml::NS_SAMLP, "AuthnRequest") {
        return Err("not an AuthnRequest".into());
    }
    Ok(RequestInfo {
        id: root.attribute("ID").unwrap_or_default().to_string(),
        issuer: xml::child(root, xml::NS_SAML, "Issuer")
            .map(xml::full_text)
            .unwrap_or_default(),
    })
}

fn app_by_entity<'a>(state: &'a DemoState, entity_id: &str) -> Option<&'a Arc<App>> {
    state.settings.apps.iter().find(|a| a.sp.entity_id == entity_id)
}

async fn idp_login_page(State(state): State<Arc<DemoState>>, Query(q): Query<SsoQuery>) -> Response {
    let request = match decode_request(&q.saml_request) {
        Ok(r) => r,
        Err(e) => {
            return html_response(
                StatusCode::BAD_REQUEST,
                html_page(Lang::En, "Bad request", &escape(&e)),
                &page_csp(),
            )
        }
    };
    let Some(app) = app_by_entity(&state, &request.issuer) else {
        return html_response(
            StatusCode::BAD_REQUEST,
            html_page(Lang::En, "Unknown SP", "This SP is not part of the demo."),
            &page_csp(),
        );
    };
    let buttons: String = STUDENTS
        .iter()
        .map(|s| {
            format!(
                "<p><button type=\"submit\" name=\"student\" value=\"{}\">{} {}</button> <small>{} ({}), {} <i lang=\"en\">({})</i></small></p>",
                s.key,
                escape(s.given_name),
                escape(s.sn),
                escape(s.school_name),
                escape(s.school),
                escape(s.note_nl),
                escape(s.note_en)
            )
        })
        .collect();
    let body = format!(
        concat!(
            "<h1>Ontwikkel-IdP (speelt Entree)</h1><p>{app} vraagt je in te loggen. Kies een testleerling: ",
            "<i lang=\"en\">Development IdP standing in for Entree: {app} asks you to log in; pick a test student.</i></p>",
            "<form method=\"post\" action=\"/demo/idp/login\">",
            "<input type=\"hidden\" name=\"request_id\" value=\"{id}\"><input type=\"hidden\" name=\"sp\" value=\"{sp}\">",
            "<input type=\"hidden\" name=\"relay_state\" value=\"{rs}\">{buttons}</form>"
        ),
        app = escape(&app.display_name),
        id = escape(&request.id),
        sp = escape(&app.sp.entity_id),
        rs = escape(q.relay_state.as_deref().unwrap_or("")),
        buttons = buttons
    );
    html_response(StatusCode::OK, html_page(Lang::Nl, "Ontwikkel-IdP", &body), &page_csp())
}

#[derive(Deserialize)]
struct LoginForm {
    student: String,
    request_id: String,
    sp: String,
    relay_state: String,
}

async fn idp_respond(State(state): State<Arc<DemoState>>, Form(f): Form<LoginForm>) -> Response {
    let (Some(student), Some(app)) = (
        STUDENTS.iter().find(|s| s.key == f.student),
        app_by_entity(&state, &f.sp),
    ) else {
        return html_response(
            StatusCode::BAD_REQUEST,
            html_page(Lang::En, "Bad request", "Unknown student or SP."),
            &page_csp(),
        );
    };
    let uid_hash = hex(&openssl::sha::sha256(student.real_id.as_bytes())[..10]);
    let spec = ResponseSpec::new(&app.sp.entity_id, &app.sp.acs_url, Some(&f.request_id))
        .attribute("uid", &[&format!("{uid_hash}@entree-demo")])
        .attribute("givenName", &[student.given_name])
        .attribute("sn", &[student.sn])
        .attribute("eduPersonAffiliation", &[student.affiliation])
        .attribute("nlEduPersonRealId", &[student.real_id])
        .attribute("nlEduPersonHomeOrganizationId", &[student.school])
        .attribute("nlEduPersonHomeOrganization", &[student.school_name]);
    let xml = match state.idp.response(&spec) {
        Ok(x) => x,
        Err(e) => {
            return html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                html_page(Lang::En, "IdP error", &escape(&e.to_string())),
                &page_csp(),
            )
        }
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
    let html = render_post(
        Lang::Nl,
        "Terug naar de app",
        "De ontwikkel-IdP stuurt je ondertekende gegevens naar de bridge.",
        &app.sp.acs_url,
        &[("SAMLResponse", &encoded), ("RelayState", &f.relay_state)],
    );
    let origin = app.base_url.origin().ascii_serialization();
    html_response(StatusCode::OK, html, &form_post_csp(&origin))
}

/// The development IdP's SingleLogoutService (Redirect binding), so the demo shows Single
/// Logout: a demo app's signed LogoutRequest is answered with a signed LogoutResponse to its
/// SLS. This IdP keeps no session of its own (each login picks a test student), so ending
/// it is answering; Entree ends the student's session there.
async fn idp_single_logout(State(state): State<Arc<DemoState>>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let signed_by_an_app = state.settings.apps.iter().find_map(|app| {
        let certs: Vec<samael::crypto::CertificateDer> = app
            .sp
            .certificates()
            .filter_map(|c| c.to_der().ok())
            .map(samael::crypto::CertificateDer::from)
            .collect();
        redirect::receive(&query, &certs, false).ok().map(|r| (app, r))
    });
    let bad = |text: &str| {
        html_response(
            StatusCode::BAD_REQUEST,
            html_page(
                Lang::En,
                "Bad request",
                &format!("<h1>Bad request</h1><p>{}</p>", escape(text)),
            ),
            &page_csp(),
        )
    };
    let Some((app, received)) = signed_by_an_app else {
        return bad("Not a LogoutRequest signed by one of the demo's apps.");
    };
    let request_id = xml::parse_bounded(&received.xml, XmlLimits::default())
        .ok()
        .filter(|doc| received.kind == Kind::Request && xml::is(&doc.root_element(), xml::NS_SAMLP, "LogoutRequest"))
        .and_then(|doc| doc.root_element().attribute("ID").map(str::to_string));
    let Some(request_id) = request_id else {
        return bad("Not a LogoutRequest.");
    };
    let answer = logout::response_xml(
        &crate::keys::random_saml_id(),
        &app.sp.sls_url,
        &state.idp.entity_id,
        &request_id,
        true,
    );
    let relay_state = received.relay_state.as_deref().unwrap_or("");
    match redirect::build_url(
        &app.sp.sls_url,
        Kind::Response,
        &answer,
        relay_state,
        Some(&state.idp.key),
    ) {
        Ok(url) => (StatusCode::FOUND, [(axum::http::header::LOCATION, url)]).into_response(),
        Err(e) => html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            html_page(Lang::En, "IdP error", &escape(&e.to_string())),
            &page_csp(),
        ),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The headers-mode sample app: lists the identity headers the bridge added. It trusts them
/// because only the bridge can reach it (it listens on loopback, on a port of its own).
pub async fn headers_app_page(headers: axum::http::HeaderMap) -> Response {
    let rows: String = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-bridge-") || name.as_str().starts_with("x-forwarded-"))
        .map(|(name, value)| {
            let shown = value.to_str().unwrap_or("(not text)");
            // The token is long; its start is enough to see it is there.
            let shown = if name == "x-bridge-token" && shown.len() > 40 {
                format!("{}…", &shown[..40])
            } else {
                shown.to_string()
            };
            format!(
                "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
                escape(name.as_str()),
                escape(&shown)
            )
        })
        .collect();
    let body = format!(
        concat!(
            "<h1>Rooster: de app achter de bridge</h1>",
            "<p>Deze app kent geen SAML. De bridge stuurt elk verzoek door en vertelt met headers wie er is ingelogd; ",
            "headers met deze namen uit de browser haalt de bridge altijd weg. ",
            "<i>This app knows nothing of SAML: the bridge proxies it and adds these headers.</i></p>",
            "<table><tr><th>header</th><th>waarde / value</th></tr>{rows}</table>",
            "<p><a href=\"/rooster/saml2/kennisnet/logout\">Uitloggen / log out</a> · <a href=\"/\">Terug naar de demo</a></p>"
        ),
        rows = rows
    );
    html_response(
        StatusCode::OK,
        html_page(Lang::Nl, "Rooster (demo)", &body),
        &page_csp(),
    )
}

/// The linking app's accounts: user name, password, person code.
const LINK_ACCOUNTS: &[(&str, &str, &str)] = &[("sanne.klas", "demo", "KL-1001"), ("mila.klas", "demo", "KL-1002")];
/// The demo app that links (its `link_url` is this sample app's page).
const LINKING_APP: &str = "klas";

#[derive(Deserialize)]
struct LinkQuery {
    link_request: String,
}

#[derive(Deserialize)]
struct LinkForm {
    link_request: String,
    username: String,
    password: String,
}

/// Verifies a `link_request` as an app must: the bridge's JWKS, the `link-request+jwt` type
/// (a hand-off token cannot pass for one), the audience, the expiry.
fn verify_link_request(state: &DemoState, token: &str) -> Result<serde_json::Value, String> {
    let header: serde_json::Value = token
        .split('.')
        .next()
        .and_then(|h| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice(&h).ok())
        .ok_or("not a JWT")?;
    if header["typ"] != crate::identity::linking::LINK_REQUEST_TYP {
        return Err("not a link_request (typ)".into());
    }
    let jwks: serde_json::Value = serde_json::from_str(state.settings.jwt_keys.jwks_json()).unwrap_or_default();
    let claims = super::tokens::verify_with_jwks(token, &jwks).map_err(|e| e.to_string())?;
    if claims["aud"] != LINKING_APP {
        return Err("not for this app".into());
    }
    if claims["exp"].as_i64().unwrap_or(0) <= chrono::Utc::now().timestamp() {
        return Err("expired".into());
    }
    Ok(claims)
}

/// The linking sample app's refusal, in both languages (the demo's pages are Dutch first),
/// with a new login as the way to try again.
fn link_error(message: &str) -> Response {
    link_refused(message, &format!("/{LINKING_APP}/saml2/kennisnet/login"))
}

/// [`link_error`] whose way to try again is `retry` (the same link page, for a mistyped
/// password: the request is still good).
fn link_refused(message: &str, retry: &str) -> Response {
    html_response(
        StatusCode::BAD_REQUEST,
        html_page(
            Lang::Nl,
            "Koppelen geweigerd",
            &format!(
                concat!(
                    "<h1>Koppelen geweigerd <small lang=\"en\">(link refused)</small></h1>",
                    "<p>De app kon dit koppelverzoek niet aannemen: <span lang=\"en\">{message}</span>. ",
                    "Probeer het nog eens met de knop hieronder (een koppelverzoek is 10 minuten geldig).</p>",
                    "<p lang=\"en\"><i>The app could not take this link request. Try again with the button below (a link request is valid for 10 minutes).</i></p>",
                    "<p><a class=\"button\" href=\"{retry}\">Opnieuw proberen / try again</a> <a href=\"/\">Terug naar de demo</a></p>"
                ),
                message = escape(message),
                retry = escape(retry),
            ),
        ),
        &page_csp(),
    )
}

/// The app's answer to the bridge: HS256 with the shared secret.
fn link_answer(state: &DemoState, request: &serde_json::Value, outcome: (&str, &str)) -> Response {
    let Some(secret) = state
        .settings
        .apps
        .iter()
        .find(|a| a.name == LINKING_APP)
        .and_then(|a| a.identity.linking.as_ref())
        .map(|l| l.secret.clone())
    else {
        return link_error("the demo config has no linking app");
    };
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({
        "aud": state.settings.public_base_url.as_str(),
        "jti": request["jti"],
        "iat": now,
        "exp": now + 300,
    });
    claims[outcome.0] = serde_json::json!(outcome.1);
    let Ok(token) = super::tokens::sign_hs256(&secret, &claims) else {
        return link_error("cannot sign the answer");
    };
    let mut url = match url::Url::parse(request["return_url"].as_str().unwrap_or("")) {
        Ok(u) => u,
        Err(_) => return link_error("the link_request has no usable return_url"),
    };
    url.query_pairs_mut().append_pair("link_response", &token);
    (StatusCode::FOUND, [(axum::http::header::LOCATION, url.to_string())]).into_response()
}

/// The linking app's link page: log in with the account you already have.
async fn link_page(State(state): State<Arc<DemoState>>, Query(q): Query<LinkQuery>) -> Response {
    let claims = match verify_link_request(&state, &q.link_request) {
        Ok(c) => c,
        Err(e) => return link_error(&e),
    };
    let body = format!(
        concat!(
            "<h1>Klas: koppel je account</h1>",
            "<p>Entree kent je als <b>{name}</b> van school <code>{school}</code>, maar Klas kent je nog niet. ",
            "Log één keer in met je Klas-account; daarna kom je vanuit de elo meteen binnen. ",
            "<i>Log in once with your existing Klas account to link it.</i></p>",
            "<form method=\"post\" action=\"/demo/app/link\">",
            "<input type=\"hidden\" name=\"link_request\" value=\"{token}\">",
            "<p><label for=\"username\">Gebruikersnaam / user name</label><br><input id=\"username\" name=\"username\" autocomplete=\"username\" required></p>",
            "<p><label for=\"password\">Wachtwoord / password</label><br><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>",
            "<p><button type=\"submit\">Koppelen / link</button></p></form>",
            "<p>Demo-accounts: <code>sanne.klas</code> en <code>mila.klas</code>, wachtwoord <code>demo</code>.</p>"
        ),
        name = escape(claims["given_name"].as_str().unwrap_or("?")),
        school = escape(claims["school"].as_str().unwrap_or("?")),
        token = escape(&q.link_request),
    );
    html_response(
        StatusCode::OK,
        html_page(Lang::Nl, "Klas: koppelen", &body),
        &page_csp(),
    )
}

async fn link_submit(State(state): State<Arc<DemoState>>, Form(f): Form<LinkForm>) -> Response {
    let claims = match verify_link_request(&state, &f.link_request) {
        Ok(c) => c,
        Err(e) => return link_error(&e),
    };
    match LINK_ACCOUNTS
        .iter()
        .find(|(user, password, _)| *user == f.username && *password == f.password)
    {
        Some((_, _, person_code)) => link_answer(&state, &claims, ("sub", person_code)),
        None => {
            let again: String = url::form_urlencoded::byte_serialize(f.link_request.as_bytes()).collect();
            link_refused(
                "unknown user name or wrong password (demo: sanne.klas / demo)",
                &format!("/demo/app/link?link_request={again}"),
            )
        }
    }
}
