//! App sessions (headers mode): the bridge's own cookie per app, 128 random bits, made new at
//! every login (no fixation), bound to the app it was made for, with idle and absolute
//! lifetimes enforced by the store.

use std::time::SystemTime;

use axum::http::HeaderMap;

use super::cookies;
use super::AppState;
use crate::config::App;
use crate::identity::Identity;
use crate::store::{AppSession, StoreError, Subject};

const SESSION_COOKIE_PREFIX: &str = "eb_session_";

/// Under https a `__Host-` cookie; otherwise scoped to the app's path. SameSite=Lax: the
/// session must come along when the student follows a link into the app.
pub fn cookie_name(app: &App) -> &str {
    app.session_cookie.get_or_init(|| {
        if app.secure {
            format!("__Host-{SESSION_COOKIE_PREFIX}{}", app.name)
        } else {
            format!("{SESSION_COOKIE_PREFIX}{}", app.name)
        }
    })
}

fn cookie_attributes(app: &App, max_age: u64) -> String {
    if app.secure {
        format!("Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
    } else {
        let path = if app.path_prefix.is_empty() {
            "/"
        } else {
            app.path_prefix.as_str()
        };
        format!("Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax")
    }
}

pub fn set_cookie(app: &App, id: &str, max_age: u64) -> String {
    format!("{}={id}; {}", cookie_name(app), cookie_attributes(app, max_age))
}

pub fn clear_cookie(app: &App) -> String {
    format!("{}=; {}", cookie_name(app), cookie_attributes(app, 0))
}

/// The session id this browser presents for `app`, if any.
pub fn presented_id<'a>(app: &App, headers: &'a HeaderMap) -> Option<&'a str> {
    cookies::get(headers, cookie_name(app)).filter(|v| !v.is_empty() && v.len() <= 64)
}

/// The valid session of this browser for `app`: a cookie of another app never opens this one.
pub async fn current(state: &AppState, app: &App, headers: &HeaderMap) -> Result<Option<AppSession>, StoreError> {
    let Some(id) = presented_id(app, headers) else {
        return Ok(None);
    };
    Ok(state.store.get_session(id).await?.filter(|s| s.app == app.name))
}

/// Starts a new session after a login, ending the one the browser had (rotation), and
/// returns the Set-Cookie value.
pub async fn start(
    state: &AppState,
    app: &App,
    headers: &HeaderMap,
    identity: Identity,
    subject: Subject,
) -> Result<String, StoreError> {
    if let Some(old) = presented_id(app, headers) {
        state.store.remove_session(old).await?;
    }
    let id = crate::keys::random_token();
    let lifetime = state.settings.session_lifetime;
    let session = AppSession {
        app: app.name.clone(),
        identity,
        subject,
        expires_at: SystemTime::now() + lifetime,
    };
    state
        .store
        .put_session(&id, session, state.settings.session_idle)
        .await?;
    Ok(set_cookie(app, &id, lifetime.as_secs()))
}
