//! `[apps.X.handoff]` checked into handoff's own [`HandoffSettings`].

use std::path::Path;

use super::super::file::HandoffSection;
use super::super::parse::{parse_duration, parse_http_url, read_ca_file, resolve};
use super::super::problems::Collector;
use crate::handoff::oidc::{check_registered_uri, ClientSecret, OidcClient, MIN_SECRET_LEN};
use crate::handoff::{HandoffMode, HandoffSettings, HeaderNames, Upstream};
use crate::jws::Alg;

/// The shortest id_token / access token lifetime oidc mode takes.
const MIN_OIDC_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(120);
/// The longest: the id_token is used once, and the access token is not revoked at logout.
const MAX_OIDC_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The hand-off of one app; `None` when a key it needs has a problem (in the collector).
pub(super) fn build_handoff(
    app_name: &str,
    h: &HandoffSection,
    key: &dyn Fn(&str) -> String,
    base: &Path,
    c: &mut Collector<'_>,
) -> Option<HandoffSettings> {
    let mode = match h.mode.as_str() {
        "jwt" => Some(HandoffMode::Jwt),
        "headers" => Some(HandoffMode::Headers),
        "oidc" => Some(HandoffMode::Oidc),
        other => {
            c.add(
                key("handoff.mode"),
                format!("{other:?} is not one of \"jwt\", \"headers\", \"oidc\""),
            );
            None
        }
    };
    let callback_url = match (&h.callback_url, mode) {
        (Some(u), _) => c.take(&key("handoff.callback_url"), parse_http_url(u)),
        (None, Some(HandoffMode::Jwt)) => {
            c.add(
                key("handoff.callback_url"),
                "required in jwt mode: where the app receives the token",
            );
            None
        }
        _ => None,
    };
    let upstream = match (&h.upstream, mode) {
        (Some(u), Some(HandoffMode::Headers)) => c.take(&key("handoff.upstream"), parse_http_url(u)),
        (None, Some(HandoffMode::Headers)) => {
            c.add(
                key("handoff.upstream"),
                "required in headers mode: the app's own address, e.g. http://127.0.0.1:9000",
            );
            None
        }
        _ => None,
    };
    let upstream_ca = match &h.upstream_ca {
        None => Some(Vec::new()),
        Some(p) => c.take(&key("handoff.upstream_ca"), read_ca_file(&resolve(base, p))),
    };
    let connect_timeout = c.take(&key("handoff.connect_timeout"), parse_duration(&h.connect_timeout));
    let upstream_timeout = c.take(&key("handoff.upstream_timeout"), parse_duration(&h.upstream_timeout));
    let n = &h.headers;
    let header_names = c.take(
        &key("handoff.headers"),
        HeaderNames::parse(&n.person_code, &n.school, &n.affiliation, &n.tenant, &n.token),
    );
    let default_lifetime = if mode == Some(HandoffMode::Oidc) { "5m" } else { "60s" };
    let token_lifetime = c.take(
        &key("handoff.token_lifetime"),
        parse_duration(h.token_lifetime.as_deref().unwrap_or(default_lifetime)),
    );
    if let (Some(HandoffMode::Oidc), Some(lifetime)) = (mode, token_lifetime) {
        if lifetime > MAX_OIDC_TOKEN_LIFETIME {
            // An access token outlives a logout until it expires (userinfo still answers).
            c.add(
                key("handoff.token_lifetime"),
                format!(
                    "is {}; in oidc mode at most {} (an access token keeps answering at userinfo until it expires, logout or not)",
                    humantime::format_duration(lifetime),
                    humantime::format_duration(MAX_OIDC_TOKEN_LIFETIME)
                ),
            );
        }
        if lifetime < MIN_OIDC_TOKEN_LIFETIME {
            // Client libraries count an access token as expired well before its end (Authlib
            // 60 s early), so a short one is never used for userinfo.
            c.add(
                key("handoff.token_lifetime"),
                format!(
                    "is {}; in oidc mode at least {} (OIDC client libraries treat a token as expired up to a minute before its end)",
                    humantime::format_duration(lifetime),
                    humantime::format_duration(MIN_OIDC_TOKEN_LIFETIME)
                ),
            );
        }
    }
    let oidc = match mode {
        Some(HandoffMode::Oidc) => Some(build_client(app_name, h, key, c)?),
        _ => {
            for (set, name) in [
                (h.client_id.is_some(), "client_id"),
                (h.client_secret.is_some(), "client_secret"),
                (!h.redirect_uris.is_empty(), "redirect_uris"),
                (!h.post_logout_redirect_uris.is_empty(), "post_logout_redirect_uris"),
                (h.backchannel_logout_uri.is_some(), "backchannel_logout_uri"),
                (h.id_token_signed_response_alg.is_some(), "id_token_signed_response_alg"),
            ] {
                if set {
                    c.add(
                        key(&format!("handoff.{name}")),
                        "only used in oidc mode (handoff.mode = \"oidc\")",
                    );
                }
            }
            None
        }
    };
    let (mode, token_lifetime, connect_timeout, upstream_timeout, header_names, upstream_ca) = (
        mode?,
        token_lifetime?,
        connect_timeout?,
        upstream_timeout?,
        header_names?,
        upstream_ca?,
    );
    Some(HandoffSettings {
        mode,
        callback_url,
        token_lifetime,
        token_reuse: h.token_reuse,
        header_names,
        upstream: upstream.map(|url| {
            Upstream::new(
                url,
                upstream_ca,
                connect_timeout,
                upstream_timeout,
                h.allow_path_parameters,
            )
        }),
        oidc,
    })
}

/// The client registration of an app in oidc mode; `None` when a key has a problem.
fn build_client(
    app_name: &str,
    h: &HandoffSection,
    key: &dyn Fn(&str) -> String,
    c: &mut Collector<'_>,
) -> Option<OidcClient> {
    let mut ok = true;
    let client_id = h.client_id.clone().unwrap_or_else(|| app_name.to_string());
    if client_id.is_empty() || client_id.len() > 255 || client_id.chars().any(|ch| ch.is_control() || ch == ':') {
        // `:` would make client_secret_basic ambiguous (RFC 6749 2.3.1 joins id and secret with it).
        c.add(
            key("handoff.client_id"),
            "must be 1 to 255 printable characters without ':'",
        );
        ok = false;
    }
    let secret = match &h.client_secret {
        Some(s) if s.chars().count() < MIN_SECRET_LEN => {
            c.add(
                key("handoff.client_secret"),
                format!(
                    "is {} characters; at least {MIN_SECRET_LEN} are required (e.g. `openssl rand -base64 32`), or leave it out for a public client that uses PKCE alone",
                    s.chars().count()
                ),
            );
            ok = false;
            None
        }
        Some(s) => Some(ClientSecret::new(s.clone())),
        None => None,
    };
    if h.redirect_uris.is_empty() {
        c.add(
            key("handoff.redirect_uris"),
            "required in oidc mode: the app's callback URL(s), matched exactly",
        );
        ok = false;
    }
    let mut check_all = |uris: &[String], name: &str, c: &mut Collector<'_>| {
        for uri in uris {
            if let Err(e) = check_registered_uri(uri) {
                c.add(key(&format!("handoff.{name}")), e);
                ok = false;
            }
        }
    };
    check_all(&h.redirect_uris, "redirect_uris", c);
    check_all(&h.post_logout_redirect_uris, "post_logout_redirect_uris", c);
    let backchannel_logout_uri = match &h.backchannel_logout_uri {
        None => None,
        Some(uri) => match check_registered_uri(uri) {
            Ok(url) => Some(url),
            Err(e) => {
                c.add(key("handoff.backchannel_logout_uri"), e);
                ok = false;
                None
            }
        },
    };
    let id_token_alg = match h.id_token_signed_response_alg.as_deref() {
        None | Some("RS256") => Alg::Rs256,
        Some("ES256") => Alg::Es256,
        Some(other) => {
            c.add(
                key("handoff.id_token_signed_response_alg"),
                format!("{other:?} is not one of \"RS256\", \"ES256\""),
            );
            ok = false;
            Alg::Rs256
        }
    };
    ok.then(|| OidcClient {
        client_id,
        secret,
        redirect_uris: h.redirect_uris.clone(),
        post_logout_redirect_uris: h.post_logout_redirect_uris.clone(),
        backchannel_logout_uri,
        id_token_alg,
    })
}
