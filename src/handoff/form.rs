//! The hand-off page: an HTML form that POSTs the token to the app's callback. It submits
//! itself with a script allowed by hash in a strict CSP, and shows a button for browsers
//! without JavaScript.

use std::sync::OnceLock;

use base64::Engine;

use crate::http::pages::{Lang, STYLE};
use crate::saml::xml::escape;

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

/// The CSP for the hand-off page: nothing loads, only this script runs, the form may only
/// go to the app's callback origin.
pub fn csp(callback_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; form-action {}; base-uri 'none'; frame-ancestors 'none'",
        script_hash(),
        csp_hash(STYLE),
        callback_origin
    )
}

pub fn render(lang: Lang, app_name: &str, callback_url: &str, token: &str, target: Option<&str>) -> String {
    let (title, text) = match lang {
        Lang::Nl => (
            "Je wordt ingelogd",
            format!("Je gaat verder naar {}.", escape(app_name)),
        ),
        Lang::En => ("Signing you in", format!("Continuing to {}.", escape(app_name))),
    };
    let mut fields = vec![("token", token)];
    if let Some(t) = target {
        fields.push(("target", t));
    }
    render_post(lang, title, &text, callback_url, &fields)
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
