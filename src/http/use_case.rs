//! What the per-app handlers share to call the login use case (`login/`): the services a
//! request lends it, and the cookies its answers name, set with their names and attributes.

use axum::http::{header, HeaderValue};
use axum::response::Response;

use super::{cookies, session, AppState};
use crate::config::App;
use crate::login::{self, CookieChange};

/// What the login use case needs of the application state, for one request.
pub fn services(state: &AppState) -> login::Services<'_> {
    login::Services {
        store: &*state.store,
        links: &state.links,
        validation: &state.validation,
        public_base_url: state.settings.public_base_url.as_str(),
        jwt_keys: &state.settings.jwt_keys,
        pseudonyms: &state.settings.pseudonyms,
        metadata: &state.metadata,
        activations: &state.activations,
    }
}

/// Sets the cookies a login answer names (login, link and session cookies of `app`).
pub fn apply_cookies(app: &App, response: &mut Response, changes: &[CookieChange]) {
    for change in changes {
        let cookie = match change {
            CookieChange::SetLogin { relay_state, nonce } => cookies::set_login_cookie(app, relay_state, nonce),
            CookieChange::ClearLogin { relay_state } => cookies::clear_login_cookie(app, relay_state),
            CookieChange::SetLink { jti, nonce } => cookies::set_link_cookie(app, jti, nonce),
            CookieChange::ClearLink { jti } => cookies::clear_link_cookie(app, jti),
            CookieChange::ClearSession => session::clear_cookie(app),
        };
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}
