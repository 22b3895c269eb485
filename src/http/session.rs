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

/// Under https a `__Host-` cookie; otherwise scoped to the app's path (named once, at load:
/// see [`App::session_cookie`]). SameSite=Lax: the session must come along when the student
/// follows a link into the app.
pub fn cookie_name(app: &App) -> &str {
    &app.session_cookie
}

fn cookie_attributes(app: &App, max_age: u64) -> String {
    // oidc mode: the OP session is read at /oidc/authorize and /oidc/logout, outside the
    // app's path (on the same origin: check-config sees to it).
    if app.secure || app.handoff.mode == crate::handoff::HandoffMode::Oidc {
        let secure = if app.secure { " Secure;" } else { "" };
        return format!("Path=/; Max-Age={max_age}; HttpOnly;{secure} SameSite=Lax");
    }
    let path = if app.path_prefix.is_empty() {
        "/"
    } else {
        app.path_prefix.as_str()
    };
    format!("Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax")
}

pub fn set_cookie(app: &App, id: &str, max_age: u64) -> String {
    format!("{}={id}; {}", cookie_name(app), cookie_attributes(app, max_age))
}

pub fn clear_cookie(app: &App) -> String {
    format!("{}=; {}", cookie_name(app), cookie_attributes(app, 0))
}

/// At most this many session cookies of one name are looked at; more is an attack. The same
/// bound as the login and link cookies (`login::binding`).
pub const MAX_PRESENTED: usize = crate::login::binding::MAX_COOKIES_LOOKED_AT;

/// The session ids this browser presents for `app`, distinct, in the order sent (usually
/// one; a cookie tossed by a sibling path or a nameless cookie adds more).
pub fn presented_ids<'a>(app: &'a App, headers: &'a HeaderMap) -> Vec<&'a str> {
    let mut ids: Vec<&str> = Vec::with_capacity(1);
    for id in cookies::get_all(headers, cookie_name(app)).filter(|v| !v.is_empty() && v.len() <= 64) {
        if !ids.contains(&id) {
            ids.push(id);
        }
        if ids.len() == MAX_PRESENTED {
            break;
        }
    }
    ids
}

/// Which of the presented session ids opens `app`: the only one that is a valid session of
/// this app. A tossed cookie that is no session cannot shadow the real one; two valid
/// sessions are ambiguous (one of them was planted) and refused, never guessed between.
pub async fn valid_id<'a>(state: &AppState, app: &App, ids: &[&'a str]) -> Result<Option<&'a str>, SessionChoice> {
    let mut valid = None;
    for id in ids {
        if state
            .store
            .session_is_of(id, &app.name)
            .await
            .map_err(SessionChoice::Store)?
        {
            if valid.is_some() {
                return Err(SessionChoice::Ambiguous);
            }
            valid = Some(*id);
        }
    }
    Ok(valid)
}

/// Why no session could be chosen among the presented ones.
#[derive(Debug)]
pub enum SessionChoice {
    Store(StoreError),
    Ambiguous,
}

/// The valid session of this browser for `app`: a cookie of another app never opens this
/// one. Of several cookies, the one valid session; several valid ones open nothing.
pub async fn current(state: &AppState, app: &App, headers: &HeaderMap) -> Result<Option<AppSession>, StoreError> {
    Ok(current_with_id(state, app, headers).await?.map(|(_, s)| s))
}

/// [`current`] with the session's id (oidc mode: the `sid` is derived from it).
pub async fn current_with_id(
    state: &AppState,
    app: &App,
    headers: &HeaderMap,
) -> Result<Option<(String, AppSession)>, StoreError> {
    let ids = presented_ids(app, headers);
    let id = match ids.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        several => match valid_id(state, app, several).await {
            Ok(Some(id)) => id,
            Ok(None) | Err(SessionChoice::Ambiguous) => return Ok(None),
            Err(SessionChoice::Store(e)) => return Err(e),
        },
    };
    Ok(state
        .store
        .get_session(id)
        .await?
        .filter(|s| s.app == app.name)
        .map(|s| (id.to_string(), s)))
}

/// A session just started: its id and the Set-Cookie value that hands it to the browser.
#[derive(Debug)]
pub struct StartedSession {
    pub id: String,
    pub set_cookie: String,
}

/// Starts a new session after a login, ending the one the browser had (rotation).
pub async fn start(
    state: &AppState,
    app: &App,
    headers: &HeaderMap,
    identity: Identity,
    subject: Subject,
    authenticated_at: SystemTime,
) -> Result<StartedSession, StoreError> {
    // Every id presented ends, the planted ones too: the new cookie is then the only
    // session this browser holds.
    for old in presented_ids(app, headers) {
        state.store.remove_session(old).await?;
    }
    let id = crate::keys::random_token();
    let lifetime = state.settings.session_lifetime;
    let now = SystemTime::now();
    let session = AppSession {
        app: app.name.clone(),
        identity,
        subject,
        expires_at: now + lifetime,
        authenticated_at,
    };
    state
        .store
        .put_session(&id, session, state.settings.session_idle)
        .await?;
    let set_cookie = set_cookie(app, &id, lifetime.as_secs());
    Ok(StartedSession { id, set_cookie })
}
