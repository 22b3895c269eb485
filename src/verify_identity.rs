//! `verify-response --config --app`'s identity step: what the app would receive for a valid
//! response, so that an admin can check an attribute-mapping edit against a captured
//! response before reloading. It runs the ACS's own steps in the ACS's order
//! ([`identity::facts`], then [`resolve`] with the stored link) so it cannot disagree with a
//! login, and it is read-only: the stored link is read with [`LinkStore::person_code_of`]
//! (not `person_code_for_login`, which records the login time), no assertion ID is recorded,
//! no pending link is made, and nothing is signed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use serde_json::{json, Value};

use crate::config::App;
use crate::handoff::identity_headers::IdentityHeaderValues;
use crate::handoff::{claims, HandoffMode};
use crate::identity::resolve::{resolve, Resolution};
use crate::identity::{self, ActivatedBy, Identity, IdentityError, SchoolActivations};
use crate::saml::response::ValidatedAssertion;
use crate::store::links::LinkStore;
use crate::store::LinksTarget;

/// What the identity step needs besides the assertion: the app, where its links live, and
/// the issuer of its tokens.
pub struct IdentityTarget {
    pub app: Arc<App>,
    pub links: LinksTarget,
    pub links_timeout: Duration,
    /// `server.public_base_url`: the hand-off tokens' `iss`.
    pub issuer: String,
}

/// How the person code was found (resolution steps 1 to 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Link,
    Rule,
    Linking,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Link => "link",
            Source::Rule => "rule",
            Source::Linking => "linking",
        }
    }
}

/// Whether the school has activated the app, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Active(ActivatedBy),
    NotActive,
    /// The config alone does not admit the school and the database could not be read.
    Unknown,
}

/// What the app would be handed, unsigned.
#[derive(Debug, Clone, PartialEq)]
pub enum Handoff {
    /// jwt and oidc modes: the token's claims.
    Claims(Value),
    /// headers mode: each identity header as sent, and the claims of its token header.
    Headers {
        headers: Vec<(String, String)>,
        token_claims: Value,
    },
}

/// A person the login would hand over, or the linking it would start.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub source: Source,
    /// `None` while linking: the app's link page names the person.
    pub person_code: Option<String>,
    pub handoff: Option<Handoff>,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The login would be refused, as the ACS refuses it.
    #[error(transparent)]
    Refused(#[from] IdentityError),
    /// A config the loader refuses, so not met in practice (see `Resolution::Unconfigured`).
    #[error("the app has no person code rule and does not link")]
    Unconfigured,
    /// Without the link store the stored link (and the database's activations) are unknown:
    /// a person code made by the rule could be the wrong answer, so none is given.
    #[error(
        "the link store cannot be read ({0}); the response itself is valid, but whether a stored link \
         names the person (or the database activated the school) is unknown"
    )]
    LinkStore(String),
}

impl StepError {
    /// The error codes a login would log for the same refusal.
    pub fn code(&self) -> &'static str {
        match self {
            StepError::Refused(e) => e.code(),
            StepError::Unconfigured => "internal_error",
            StepError::LinkStore(_) => "link_store_unavailable",
        }
    }
}

/// The identity step's answer, for printing.
#[derive(Debug)]
pub struct IdentityReport {
    pub school: Option<String>,
    pub branch: Option<String>,
    pub activation: Activation,
    pub tenant: Option<String>,
    pub mode: HandoffMode,
    pub outcome: Result<Found, StepError>,
}

/// What stands in for the token header's value: a check signs nothing.
const UNSIGNED_TOKEN: &str = "<a JWT of the claims below, signed>";

/// Runs the identity step for a valid `assertion`, as at `now_unix`, on a runtime of its own.
pub fn run(target: &IdentityTarget, assertion: &ValidatedAssertion, now_unix: i64) -> IdentityReport {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(step(target, assertion, now_unix)),
        Err(e) => {
            let mut report = IdentityReport::new(target, assertion);
            report.outcome = Err(StepError::LinkStore(format!("no runtime to read it with: {e}")));
            report
        }
    }
}

async fn step(target: &IdentityTarget, assertion: &ValidatedAssertion, now_unix: i64) -> IdentityReport {
    let mut report = IdentityReport::new(target, assertion);
    let store = match open(target).await {
        Ok(store) => store,
        Err(e) => {
            report.outcome = Err(StepError::LinkStore(e));
            return report;
        }
    };
    report.outcome = resolve_with(&store, target, assertion, now_unix, &mut report).await;
    store.close().await;
    report
}

/// Opens the link store, refusing to create a SQLite file that is not there: opening creates
/// a missing one, and a check that promises to store nothing must not leave a database behind.
async fn open(target: &IdentityTarget) -> Result<LinkStore, String> {
    if let LinksTarget::Sqlite(path) = &target.links {
        if !path.exists() {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    LinkStore::open_target(&target.links, target.links_timeout)
        .await
        .map_err(|e| e.to_string())
}

async fn resolve_with(
    store: &LinkStore,
    target: &IdentityTarget,
    assertion: &ValidatedAssertion,
    now_unix: i64,
    report: &mut IdentityReport,
) -> Result<Found, StepError> {
    let app = &target.app;
    let unavailable = |e: crate::store::links::LinkStoreError| StepError::LinkStore(e.to_string());
    // The app's activated set exactly as the instances' snapshot builds it.
    let rows = store.activations(Some(&app.name)).await.map_err(unavailable)?;
    let activations = SchoolActivations::from_rows(rows.into_iter().map(|a| (a.app, a.brin)));
    let activated = activations.of(&app.name);
    report.activation = activation(app, activated, assertion);
    let facts = identity::facts(&app.identity, activated, assertion)?;
    report.tenant = facts.tenant.clone();
    let stored_link = store
        .person_code_of(&app.name, &facts.federated_id)
        .await
        .map_err(unavailable)?;
    let (source, person_code) = match resolve(&app.identity, &facts, stored_link) {
        Resolution::StoredLink(code) => (Source::Link, code),
        Resolution::Rule(code) => (Source::Rule, code),
        Resolution::StartLinking => {
            return Ok(Found {
                source: Source::Linking,
                person_code: None,
                handoff: None,
            })
        }
        Resolution::Refused(e) => return Err(e.into()),
        Resolution::Unconfigured => return Err(StepError::Unconfigured),
    };
    let identity = Identity { person_code, facts };
    let handoff = handoff(target, &identity, now_unix)?;
    Ok(Found {
        source,
        person_code: Some(identity.person_code),
        handoff: Some(handoff),
    })
}

/// How `activated` (and the config) admit the assertion's school, if they do.
fn activation(app: &App, activated: &BTreeSet<String>, assertion: &ValidatedAssertion) -> Activation {
    let (school, branch) = identity::school_of(assertion);
    identity::school_activation(&app.identity, activated, school.as_deref(), branch.as_deref())
        .map_or(Activation::NotActive, Activation::Active)
}

/// The claims (or headers) the hand-off would make of `identity`, with the audience and
/// issuer the login uses: the app's name in jwt and headers mode, the client_id in oidc mode.
fn handoff(target: &IdentityTarget, identity: &Identity, now_unix: i64) -> Result<Handoff, IdentityError> {
    let app = &target.app;
    let token_claims =
        |audience: &str| claims::build(audience, app.handoff.token_lifetime, &target.issuer, identity, now_unix);
    Ok(match app.handoff.mode {
        HandoffMode::Jwt => Handoff::Claims(token_claims(&app.name)),
        HandoffMode::Oidc => {
            let client_id = app
                .handoff
                .oidc
                .as_ref()
                .map_or(app.name.as_str(), |c| c.client_id.as_str());
            Handoff::Claims(token_claims(client_id))
        }
        HandoffMode::Headers => {
            // The proxy's own values and checks: a value it would refuse is refused here.
            let values = IdentityHeaderValues::of(identity, HeaderValue::from_static(UNSIGNED_TOKEN))?;
            let headers = values
                .named(&app.handoff.header_names)
                .into_iter()
                .filter_map(|(name, value)| {
                    value.map(|v| (name.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                })
                .collect();
            Handoff::Headers {
                headers,
                token_claims: token_claims(&app.name),
            }
        }
    })
}

fn mode_name(mode: HandoffMode) -> &'static str {
    match mode {
        HandoffMode::Jwt => "jwt",
        HandoffMode::Headers => "headers",
        HandoffMode::Oidc => "oidc",
    }
}

impl IdentityReport {
    /// The school fields known from the assertion and the config alone; the rest is filled
    /// in as the step gets to it. Until the database is read, only the config may admit.
    fn new(target: &IdentityTarget, assertion: &ValidatedAssertion) -> Self {
        let (school, branch) = identity::school_of(assertion);
        IdentityReport {
            activation: match activation(&target.app, &BTreeSet::new(), assertion) {
                // A school the config does not admit may yet be activated in the database;
                // an assertion that names no school is refused whatever the database holds.
                Activation::NotActive if school.is_some() || branch.is_some() => Activation::Unknown,
                known => known,
            },
            // As the facts name it (the `school` claim): the school, else its branch.
            school: school.or_else(|| branch.clone()),
            branch,
            tenant: None,
            mode: target.app.handoff.mode,
            // Until the store is read, this is all there is to say.
            outcome: Err(StepError::LinkStore("it was not read".into())),
        }
    }

    pub fn ok(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The `identity` object of `verify-response --json`.
    pub fn to_json(&self) -> Value {
        let (school_active, activated_by) = match self.activation {
            Activation::Active(by) => (json!(true), json!(by)),
            Activation::NotActive => (json!(false), Value::Null),
            Activation::Unknown => (Value::Null, Value::Null),
        };
        let mut out = json!({
            "ok": self.ok(),
            "read_only": true,
            "code": null,
            "error": null,
            "source": null,
            "person_code": null,
            "school": self.school,
            "branch": self.branch,
            "school_active": school_active,
            "activated_by": activated_by,
            "tenant": self.tenant,
            "mode": mode_name(self.mode),
            "claims": null,
            "headers": null,
        });
        match &self.outcome {
            Ok(found) => {
                out["source"] = json!(found.source.as_str());
                out["person_code"] = json!(found.person_code);
                match &found.handoff {
                    Some(Handoff::Claims(claims)) => out["claims"] = claims.clone(),
                    Some(Handoff::Headers { headers, token_claims }) => {
                        out["headers"] = headers.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
                        out["claims"] = token_claims.clone();
                    }
                    None => {}
                }
            }
            Err(e) => {
                out["code"] = json!(e.code());
                out["error"] = json!(e.to_string());
            }
        }
        out
    }

    /// The identity section of the text output, after the checks.
    pub fn print(&self, app: &App) {
        let app_name = app.name.as_str();
        println!("\nidentity (read-only; nothing was stored)");
        let branch = self
            .branch
            .as_deref()
            .filter(|b| Some(*b) != self.school.as_deref())
            .map(|b| format!(", branch {b}"))
            .unwrap_or_default();
        let activation = match self.activation {
            Activation::Active(ActivatedBy::Everyone) => format!("activated: everyone, apps.{app_name}.schools"),
            Activation::Active(ActivatedBy::Config) => format!("activated: config, apps.{app_name}.schools"),
            Activation::Active(ActivatedBy::Database) => "activated: database".to_string(),
            Activation::NotActive => "NOT activated".to_string(),
            Activation::Unknown => "activation unknown: the database was not read".to_string(),
        };
        let school = self.school.as_deref().unwrap_or("-");
        println!("  school:       {school}{branch} ({activation})");
        println!("  tenant:       {}", self.tenant.as_deref().unwrap_or("-"));
        let found = match &self.outcome {
            Ok(found) => found,
            Err(e @ StepError::LinkStore(_)) => {
                println!("  person code:  unknown");
                println!("\nCANNOT TELL [{}]: {e}", e.code());
                return;
            }
            Err(e) => {
                println!("\nREFUSED [{}]: {e}", e.code());
                return;
            }
        };
        match (&found.person_code, found.source) {
            (Some(code), Source::Link) => println!("  person code:  {code} (stored link)"),
            (Some(code), _) => {
                let pattern = if app.identity.person_pattern.is_some() {
                    " + pattern"
                } else {
                    ""
                };
                println!("  person code:  {code} (rule: apps.{app_name}.person.attribute{pattern})");
            }
            (None, _) => {
                println!("  person code:  none yet: no stored link or rule names the person");
                println!("  the login would start linking (the app's link page); no claims yet");
            }
        }
        let mode = mode_name(self.mode);
        match &found.handoff {
            Some(Handoff::Claims(claims)) => {
                println!("  the app would receive ({mode}, unsigned):");
                print_indented(claims);
                if self.mode == HandoffMode::Oidc {
                    println!("    (the id_token adds auth_time, sid and nonce at the token request)");
                }
            }
            Some(Handoff::Headers { headers, token_claims }) => {
                println!("  the app would receive ({mode}, unsigned):");
                for (name, value) in headers {
                    println!("    {name}: {value}");
                }
                print_indented(token_claims);
            }
            None => {}
        }
    }
}

fn print_indented(value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    for line in text.lines() {
        println!("    {line}");
    }
}
