//! First-time account linking as the login sees it: started at the ACS when nothing names
//! the person yet (a signed `link_request` to the app's link page, a pending link bound to
//! the browser), finished at `{base}/saml2/{federation}/link/complete` when the app answers.
//! The answer must verify (HS256, audience, expiry), name a pending link of THIS browser
//! ([`binding`](super::binding)) and is usable once; then the link is stored atomically and
//! the login finishes as usual.

use std::time::{Duration, SystemTime};

use super::binding::{take_for_browser, BrowserCookies};
use super::complete::LoggedIn;
use super::{Answer, CookieChange, LoginFailure, Services};
use crate::config::App;
use crate::handoff::oidc::authorize::Authorization;
use crate::identity::affiliation::{affiliation_class, mixes};
use crate::identity::linking::{self, LinkAnswer};
use crate::identity::{Facts, Identity};
use crate::store::links::LinkSource;
use crate::store::{PendingLink, Subject};

/// How a link the student came back from ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkDone {
    /// Linked (or a concurrent link won): the login finishes with this identity; `true` when
    /// the link joined another kind of person's ids (`person.mixed_affiliations = "warn"`).
    LoggedIn(Box<LoggedIn>, bool),
    /// The student or the app cancelled; nothing was stored.
    Cancelled,
}

/// Stores the pending link and returns where the browser goes (the app's link page with a
/// signed `link_request`) and the link cookie that binds the answer to it.
pub(super) async fn start_linking(
    services: Services<'_>,
    app: &App,
    facts: Facts,
    target: Option<String>,
    subject: Subject,
    oidc: Option<Authorization>,
    authenticated_at: SystemTime,
) -> Result<(String, CookieChange), LoginFailure> {
    let linking = app
        .identity
        .linking
        .as_ref()
        .ok_or_else(|| LoginFailure::Internal("linking is not configured".into()))?;
    let jti = crate::keys::random_token();
    let nonce = crate::keys::random_token();
    let now = chrono::Utc::now().timestamp();
    let claims = linking::request_claims(
        services.public_base_url,
        &app.name,
        &jti,
        facts.school.as_deref(),
        facts.given_name.as_deref(),
        &app.route_url("link/complete"),
        now,
    );
    let token = services
        .jwt_keys
        .sign_typed(&claims, linking::LINK_REQUEST_TYP)
        .map_err(|e| LoginFailure::Internal(format!("signing the link request: {e}")))?;
    let federated = services.pseudonyms.of(&facts.federated_id);
    let pending = PendingLink {
        app: app.name.clone(),
        facts,
        target,
        subject,
        browser_nonce: nonce.clone(),
        expires_at: SystemTime::now() + Duration::from_secs(linking::LINK_LIFETIME_SECS as u64),
        oidc,
        authenticated_at,
    };
    services
        .store
        .put_pending_link(&jti, pending)
        .await
        .map_err(|e| LoginFailure::StoreUnavailable(e.to_string()))?;
    let mut location = linking.url.clone();
    location.query_pairs_mut().append_pair("link_request", &token);
    tracing::info!(app = app.name, federated, "first-time linking started");
    Ok((location.to_string(), CookieChange::SetLink { jti, nonce }))
}

/// The app's `link_response` for `app`, from the browser presenting `cookies` (its link
/// cookies). Once the pending link is bound to this browser its cookie has served and is
/// cleared, whatever follows.
pub async fn complete_link(
    services: Services<'_>,
    app: &App,
    link_response: &str,
    cookies: &BrowserCookies,
) -> Answer<LinkDone> {
    match bind(services, app, link_response, cookies).await {
        Err(e) => Answer::new(Err(e), Vec::new()),
        Ok((jti, answer, pending)) => Answer::new(
            finish(services, app, answer, pending).await,
            vec![CookieChange::ClearLink { jti }],
        ),
    }
}

/// The verified answer and the pending link of this browser it names.
async fn bind(
    services: Services<'_>,
    app: &App,
    link_response: &str,
    cookies: &BrowserCookies,
) -> Result<(String, LinkAnswer, PendingLink), LoginFailure> {
    let linking = app
        .identity
        .linking
        .as_ref()
        .ok_or_else(|| LoginFailure::Internal("linking is not configured".into()))?;
    let now = chrono::Utc::now().timestamp();
    // Verify before touching any state: a forged response consumes and stores nothing.
    let answer = linking::verify_response(link_response, &linking.secret, services.public_base_url, now)?;
    let jti = match &answer {
        LinkAnswer::Linked { jti, .. } | LinkAnswer::Cancelled { jti, .. } => jti.clone(),
    };
    let pending = take_for_browser::<PendingLink>(services.store, &app.name, &jti, cookies)
        .await?
        .ok_or(LoginFailure::LinkStateMissing)?;
    Ok((jti, answer, pending))
}

async fn finish(
    services: Services<'_>,
    app: &App,
    answer: LinkAnswer,
    pending: PendingLink,
) -> Result<LinkDone, LoginFailure> {
    let federated = services.pseudonyms.of(&pending.facts.federated_id);
    let person_code = match answer {
        LinkAnswer::Cancelled { error, .. } => {
            tracing::info!(app = app.name, federated, error, "first-time linking cancelled");
            return Ok(LinkDone::Cancelled);
        }
        LinkAnswer::Linked { person_code, .. } => person_code,
    };
    let mixed_affiliations = check_affiliations(services, app, &pending, &person_code).await?;
    let linked = services
        .links
        .link_once(&app.name, &pending.facts.federated_id, &person_code, LinkSource::Linked)
        .await
        .map_err(|e| LoginFailure::LinkStoreUnavailable(e.to_string()))?;
    if let (Some(class), true) = (affiliation_class(&pending.facts.affiliation), linked == person_code) {
        services
            .links
            .set_affiliation(&app.name, &pending.facts.federated_id, class)
            .await
            .map_err(|e| LoginFailure::LinkStoreUnavailable(e.to_string()))?;
    }
    if linked != person_code {
        tracing::warn!(
            app = app.name,
            federated,
            "a concurrent first-time link won; logging in as its person code"
        );
    }
    tracing::info!(
        target: "audit",
        event = "link_created",
        by = "student",
        app = app.name,
        federated,
        person = services.pseudonyms.of(&linked),
        "account linked"
    );
    Ok(LinkDone::LoggedIn(
        Box::new(LoggedIn {
            identity: Identity {
                person_code: linked,
                facts: pending.facts,
            },
            target: pending.target,
            subject: pending.subject,
            oidc: pending.oidc,
            authenticated_at: pending.authenticated_at,
        }),
        mixed_affiliations,
    ))
}

/// Whether this link joins another kind of person's federated ids under `person_code`: a
/// warning (logged here, counted by the caller) or, with `person.mixed_affiliations =
/// "refuse"`, a refusal before anything is stored.
async fn check_affiliations(
    services: Services<'_>,
    app: &App,
    pending: &PendingLink,
    person_code: &str,
) -> Result<bool, LoginFailure> {
    let class = affiliation_class(&pending.facts.affiliation);
    if class.is_none() {
        return Ok(false);
    }
    let others = services
        .links
        .affiliations_linked_to(&app.name, person_code, &pending.facts.federated_id)
        .await
        .map_err(|e| LoginFailure::LinkStoreUnavailable(e.to_string()))?;
    if !mixes(class, &others) {
        return Ok(false);
    }
    let other = others
        .iter()
        .flatten()
        .find(|o| Some(o.as_str()) != class)
        .cloned()
        .unwrap_or_default();
    let (federated, person) = (
        services.pseudonyms.of(&pending.facts.federated_id),
        services.pseudonyms.of(person_code),
    );
    let refuse = app
        .identity
        .linking
        .as_ref()
        .is_some_and(|l| l.refuse_mixed_affiliations);
    tracing::warn!(
        target: "audit",
        event = "link_mixed_affiliations",
        app = app.name,
        federated,
        person,
        class,
        other,
        refused = refuse,
        "a {} links an account already linked to a {other}: check that it is theirs (links list shows it)",
        class.unwrap_or("-")
    );
    if refuse {
        return Err(LoginFailure::LinkAffiliationMismatch {
            person,
            class: class.unwrap_or("-"),
            other,
        });
    }
    Ok(true)
}
