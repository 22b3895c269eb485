//! `[apps.X.handoff]` checked into handoff's own [`HandoffSettings`].

use std::path::Path;

use super::super::file::HandoffSection;
use super::super::parse::{parse_duration, parse_http_url, read_ca_file, resolve};
use super::super::problems::Collector;
use crate::handoff::{HandoffMode, HandoffSettings, HeaderNames, Upstream};

/// The hand-off of one app; `None` when a key it needs has a problem (in the collector).
pub(super) fn build_handoff(
    h: &HandoffSection,
    key: &dyn Fn(&str) -> String,
    base: &Path,
    c: &mut Collector<'_>,
) -> Option<HandoffSettings> {
    let mode = match h.mode.as_str() {
        "jwt" => Some(HandoffMode::Jwt),
        "headers" => Some(HandoffMode::Headers),
        other => {
            c.add(
                key("handoff.mode"),
                format!("{other:?} is not one of \"jwt\", \"headers\""),
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
    let token_lifetime = c.take(&key("handoff.token_lifetime"), parse_duration(&h.token_lifetime));
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
    })
}
