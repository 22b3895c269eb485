//! User-facing pages in Dutch and English, chosen by Accept-Language (Dutch by default: the
//! bridge serves Dutch schools). Error pages name the error code and a correlation id that
//! the admin finds in the log line; they never show internals.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::handoff::form::FormPost;
use crate::saml::xml::escape;

pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}h1{font-size:1.5rem}code{background:#f2f2f2;padding:.1rem .3rem;overflow-wrap:anywhere}button,.button{font-size:1rem;padding:.5rem 1rem}small{color:#555}header{padding-bottom:.5rem;margin-bottom:1rem}header img{display:block;max-height:3rem;max-width:12rem}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Nl,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    /// The best of nl/en for an Accept-Language header, honouring q-values.
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let Some(value) = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()) else {
            return Lang::Nl;
        };
        let mut best: Option<(f32, Lang)> = None;
        for part in value.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let lang = if primary.eq_ignore_ascii_case("nl") {
                Lang::Nl
            } else if primary.eq_ignore_ascii_case("en") {
                Lang::En
            } else {
                continue;
            };
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::Nl)
    }
}

/// Headers every page carries.
pub fn security_headers(headers: &mut HeaderMap, csp: &str) {
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(headers, header::CONTENT_SECURITY_POLICY, csp);
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
}

pub fn page_csp() -> String {
    page_csp_for(None, None)
}

/// The CSP of a page, with what `look`'s branding needs: its style sheet (`accent_style`,
/// the very text the page carries) by hash, its logo from the app's origin. Nothing else loads.
fn page_csp_for(look: Option<&AppLook>, accent_style: Option<&str>) -> String {
    let style_src = match accent_style {
        Some(style) => format!("{} {}", csp_hash(STYLE), csp_hash(style)),
        None => csp_hash(STYLE),
    };
    let img_src = look
        .and_then(|l| l.logo_url.as_deref())
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| format!(" img-src {};", u.origin().ascii_serialization()))
        .unwrap_or_default();
    format!("default-src 'none'; style-src {style_src};{img_src} form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
}

/// A complete HTML page around `body` (already escaped HTML).
pub fn html_page(lang: Lang, title: &str, body: &str) -> String {
    html_page_for(lang, title, body, None, None)
}

/// A page of `look`'s app: its logo above the body, its accent colour on links and buttons.
fn html_page_for(lang: Lang, title: &str, body: &str, look: Option<&AppLook>, accent_style: Option<&str>) -> String {
    let brand_style = accent_style.map(|s| format!("<style>{s}</style>")).unwrap_or_default();
    let header = look.map(AppLook::header).unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{}</style>{brand_style}</head><body>{header}<main>{}</main></body></html>\n",
        lang.code(),
        escape(title),
        STYLE,
        body
    )
}

/// A page about an app (`look`), or a plain one: its HTML and CSP together, so the branding
/// the page carries is always what its CSP allows.
pub fn app_page(status: StatusCode, lang: Lang, title: &str, body: &str, look: Option<&AppLook>) -> Response {
    let accent_style = look.and_then(AppLook::accent_style);
    let accent_style = accent_style.as_deref();
    html_response(
        status,
        html_page_for(lang, title, body, look, accent_style),
        &page_csp_for(look, accent_style),
    )
}

pub fn html_response(status: StatusCode, html: String, csp: &str) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    security_headers(response.headers_mut(), csp);
    response
}

/// What the user reads on an error page: title, explanation, what to do next (both languages).
pub struct ErrorText {
    pub title_nl: &'static str,
    pub title_en: &'static str,
    pub body_nl: String,
    pub body_en: String,
}

/// An error page; with the app's `look`, the ways on (log in again, to the app) and the
/// app's help desk contact below the text.
pub fn error_page(
    lang: Lang,
    status: StatusCode,
    code: &str,
    correlation_id: &str,
    text: &ErrorText,
    look: Option<&AppLook>,
) -> Response {
    let (title, body, code_label, id_label) = match lang {
        Lang::Nl => (
            text.title_nl,
            &text.body_nl,
            "Foutcode",
            "Referentie (noem deze bij de helpdesk)",
        ),
        Lang::En => (
            text.title_en,
            &text.body_en,
            "Error code",
            "Reference (give this to the help desk)",
        ),
    };
    let body = format!(
        "<h1>{}</h1><p>{}</p>{}<p><small>{}: <code>{}</code><br>{}: <code>{}</code></small></p>",
        escape(title),
        body,
        look.map(|l| l.ways_on(lang, true)).unwrap_or_default(),
        code_label,
        escape(code),
        id_label,
        escape(correlation_id)
    );
    app_page(status, lang, title, &body, look)
}

/// What a student's page shows of the app it is about: its name, how to try again, how to
/// get to the app, and whom to ask (the config's support contact).
#[derive(Debug, Clone)]
pub struct AppLook {
    pub display_name: String,
    /// The app's login route: a new login from the start (Entree, then the app).
    pub login_url: String,
    pub home_url: String,
    /// An email address (a mailto link) or an https URL.
    pub contact: Option<String>,
    /// `[apps.X.branding]`: the logo's address (the bridge serves it) and the accent colour
    /// (`#rrggbb`, its contrast checked at load).
    pub logo_url: Option<String>,
    pub accent: Option<String>,
}

impl AppLook {
    pub fn of(app: &crate::config::App) -> AppLook {
        AppLook {
            display_name: app.display_name.clone(),
            login_url: app.route_url("login"),
            home_url: app.home_url(),
            contact: app.help_contact().map(str::to_string),
            // The ETag in the query: a changed logo is a new address, not a day-old cache.
            logo_url: app.branding.logo.as_ref().map(|logo| {
                format!(
                    "{}?v={}",
                    super::routes::SamlRoute::Logo.url(app),
                    logo.etag.trim_matches('"')
                )
            }),
            accent: app.branding.accent.as_ref().map(|a| a.css().to_string()),
        }
    }

    /// The style sheet of the accent colour, after the page's own: links in it, buttons on
    /// it in white (the contrast check at load holds for both), the logo's rule below.
    fn accent_style(&self) -> Option<String> {
        let a = self.accent.as_deref()?;
        Some(format!(
            "a{{color:{a}}}button,.button{{background:{a};color:#fff;border:1px solid {a};border-radius:.25rem}}a.button{{display:inline-block;color:#fff;text-decoration:none}}header{{border-bottom:.25rem solid {a}}}"
        ))
    }

    /// The logo above the page, named by the app's name for a screen reader.
    fn header(&self) -> String {
        match &self.logo_url {
            Some(url) => format!(
                "<header><img src=\"{}\" alt=\"{}\"></header>",
                escape(url),
                escape(&self.display_name)
            ),
            None => String::new(),
        }
    }

    /// The ways on below a page: log in again, to the app, and (`with_contact`) whom to ask.
    pub fn ways_on(&self, lang: Lang, with_contact: bool) -> String {
        let app = escape(&self.display_name);
        let (again, to_app) = match lang {
            Lang::Nl => (format!("Opnieuw inloggen bij {app}"), format!("Naar {app}")),
            Lang::En => (format!("Log in to {app} again"), format!("Go to {app}")),
        };
        let mut html = format!(
            "<nav aria-label=\"{label}\"><p><a class=\"button\" href=\"{login}\">{again}</a> <a href=\"{home}\">{to_app}</a></p></nav>",
            label = match lang {
                Lang::Nl => "Verder",
                Lang::En => "Next steps",
            },
            login = escape(&self.login_url),
            home = escape(&self.home_url),
        );
        if let (true, Some(contact)) = (with_contact, &self.contact) {
            let ask = match lang {
                Lang::Nl => format!("Hulp nodig? De helpdesk van {app}:"),
                Lang::En => format!("Need help? {app}'s help desk:"),
            };
            html.push_str(&format!("<p>{ask} {}</p>", crate::login::contact_link(contact)));
        }
        html
    }
}

/// The script that submits an auto-post page's form, allowed by its hash in the page's CSP.
pub const AUTO_SUBMIT_SCRIPT: &str = "document.getElementById('handoff').submit();";

/// `'sha256-...'` of a constant inline script or style, for the CSP.
pub fn csp_hash(source: &str) -> String {
    let digest = openssl::sha::sha256(source.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
}

fn script_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| csp_hash(AUTO_SUBMIT_SCRIPT))
}

/// The CSP of an auto-post page: nothing loads, only its script runs, the form may only go
/// to `action_origin`.
pub fn form_post_csp(action_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; form-action {}; base-uri 'none'; frame-ancestors 'none'",
        script_hash(),
        csp_hash(STYLE),
        action_origin
    )
}

/// The jwt hand-off page: the form posts the token to the app's callback by itself (a
/// script allowed by hash in a strict CSP), with a button for browsers without JavaScript.
/// `callback_origin` is the origin of `form.action`, the only one the form may go to.
pub fn handoff_page(lang: Lang, app_name: &str, form: &FormPost, callback_origin: &str) -> Response {
    let (title, text) = match lang {
        Lang::Nl => (
            "Je wordt ingelogd",
            format!("Je gaat verder naar {}.", escape(app_name)),
        ),
        Lang::En => ("Signing you in", format!("Continuing to {}.", escape(app_name))),
    };
    let fields: Vec<(&str, &str)> = form.fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let html = render_post(lang, title, &text, &form.action, &fields);
    html_response(StatusCode::OK, html, &form_post_csp(callback_origin))
}

/// A page that POSTs `fields` to `action` by itself, with a visible button as fallback.
/// `text` is HTML (escape what comes from outside).
pub fn render_post(lang: Lang, title: &str, text: &str, action: &str, fields: &[(&str, &str)]) -> String {
    let button = match lang {
        Lang::Nl => "Doorgaan",
        Lang::En => "Continue",
    };
    let inputs: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(name),
                escape(value)
            )
        })
        .collect();
    format!(
        concat!(
            "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
            "<meta name=\"referrer\" content=\"no-referrer\"><title>{title}</title><style>{style}</style></head>",
            "<body><main><h1>{title}</h1><p>{text}</p>",
            "<form id=\"handoff\" method=\"post\" action=\"{action}\">{inputs}",
            "<button type=\"submit\">{button}</button></form></main>",
            "<script>{script}</script></body></html>\n"
        ),
        lang = lang.code(),
        title = escape(title),
        style = STYLE,
        text = text,
        action = escape(action),
        inputs = inputs,
        button = button,
        script = AUTO_SUBMIT_SCRIPT
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(value: &str) -> Lang {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(value).unwrap());
        Lang::from_headers(&h)
    }

    #[test]
    fn picks_language_by_quality() {
        assert_eq!(lang("en-GB,en;q=0.9,nl;q=0.8"), Lang::En);
        assert_eq!(lang("nl-NL,nl;q=0.9,en;q=0.8"), Lang::Nl);
        assert_eq!(lang("de-DE,en;q=0.5"), Lang::En);
        assert_eq!(lang("fr"), Lang::Nl);
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::Nl);
    }
}
