//! User-facing pages in Dutch and English, chosen by Accept-Language (Dutch by default: the
//! bridge serves Dutch schools). Error pages name the error code and a correlation id that
//! the admin finds in the log line; they never show internals.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::saml::xml::escape;

pub const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}h1{font-size:1.5rem}code{background:#f2f2f2;padding:.1rem .3rem}button,.button{font-size:1rem;padding:.5rem 1rem}small{color:#555}";

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
    format!(
        "default-src 'none'; style-src {}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        crate::handoff::form::csp_hash(STYLE)
    )
}

/// A complete HTML page around `body` (already escaped HTML).
pub fn html_page(lang: Lang, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{}</style></head><body><main>{}</main></body></html>\n",
        lang.code(),
        escape(title),
        STYLE,
        body
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

pub fn error_page(lang: Lang, status: StatusCode, code: &str, correlation_id: &str, text: &ErrorText) -> Response {
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
    let html = html_page(
        lang,
        title,
        &format!(
            "<h1>{}</h1><p>{}</p><p><small>{}: <code>{}</code><br>{}: <code>{}</code></small></p>",
            escape(title),
            body,
            code_label,
            escape(code),
            id_label,
            escape(correlation_id)
        ),
    );
    html_response(status, html, &page_csp())
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
