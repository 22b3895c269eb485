//! Single Logout messages: LogoutRequest and LogoutResponse, built and read.

use chrono::{SecondsFormat, Utc};

use super::xml::{self, escape, XmlLimits, NS_SAML, NS_SAMLP};

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A LogoutRequest from `issuer` for the subject `name_id` (with its Format, as the IdP sent
/// it) and SessionIndex.
pub fn request_xml(
    id: &str,
    destination: &str,
    issuer: &str,
    name_id: &str,
    name_id_format: Option<&str>,
    session_index: Option<&str>,
) -> String {
    let format = name_id_format
        .map(|f| format!(r#" Format="{}""#, escape(f)))
        .unwrap_or_default();
    let index = session_index
        .map(|s| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(s)))
        .unwrap_or_default();
    format!(
        concat!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
            r#"ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer><saml:NameID{format}>{name_id}</saml:NameID>{index}</samlp:LogoutRequest>"#
        ),
        id = escape(id),
        now = now(),
        dest = escape(destination),
        issuer = escape(issuer),
        format = format,
        name_id = escape(name_id),
        index = index
    )
}

/// A LogoutResponse answering `in_response_to`.
pub fn response_xml(id: &str, destination: &str, issuer: &str, in_response_to: &str, success: bool) -> String {
    let status = if success {
        STATUS_SUCCESS
    } else {
        "urn:oasis:names:tc:SAML:2.0:status:Responder"
    };
    format!(
        concat!(
            r#"<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" "#,
            r#"ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{dest}" InResponseTo="{irt}">"#,
            r#"<saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status></samlp:LogoutResponse>"#
        ),
        id = escape(id),
        now = now(),
        dest = escape(destination),
        irt = escape(in_response_to),
        issuer = escape(issuer),
        status = status
    )
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LogoutError {
    #[error("the logout message is not valid XML: {0}")]
    Xml(String),
    #[error("expected a {0}")]
    WrongMessage(&'static str),
    #[error("the Issuer {0:?} is not the federation's IdP")]
    Issuer(String),
    #[error("the Destination {0:?} is not this SLS")]
    Destination(String),
    #[error("the message has no {0}")]
    Missing(&'static str),
    #[error("the message is not fresh (IssueInstant {0})")]
    Stale(String),
}

impl LogoutError {
    pub fn code(&self) -> &'static str {
        match self {
            LogoutError::Xml(_) => "logout_xml_invalid",
            LogoutError::WrongMessage(_) => "logout_wrong_message",
            LogoutError::Issuer(_) => "logout_issuer_mismatch",
            LogoutError::Destination(_) => "logout_destination_mismatch",
            LogoutError::Missing(_) => "logout_incomplete",
            LogoutError::Stale(_) => "logout_stale",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRequest {
    pub id: String,
    pub name_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingResponse {
    pub in_response_to: String,
    pub success: bool,
}

fn check_common<'a>(
    doc: &'a roxmltree::Document<'a>,
    name: &'static str,
    idp_entity_id: &str,
    sls_url: &str,
) -> Result<roxmltree::Node<'a, 'a>, LogoutError> {
    let root = doc.root_element();
    if !xml::is(&root, NS_SAMLP, name) {
        return Err(LogoutError::WrongMessage(name));
    }
    let issuer = xml::child(root, NS_SAML, "Issuer")
        .map(xml::full_text)
        .ok_or(LogoutError::Missing("Issuer"))?;
    if issuer.trim() != idp_entity_id {
        return Err(LogoutError::Issuer(issuer));
    }
    // Required: without it a signed message meant for another service would be accepted.
    let dest = root
        .attribute("Destination")
        .ok_or(LogoutError::Missing("Destination"))?;
    if dest != sls_url {
        return Err(LogoutError::Destination(dest.to_string()));
    }
    Ok(root)
}

/// How old an IdP-initiated LogoutRequest may be (besides the clock skew).
pub const MAX_REQUEST_AGE: chrono::Duration = chrono::Duration::minutes(10);

/// Reads an IdP-initiated LogoutRequest (its Redirect signature was already verified). It
/// must be fresh: IssueInstant within `MAX_REQUEST_AGE` (plus skew), NotOnOrAfter not passed.
pub fn read_request(
    text: &str,
    idp_entity_id: &str,
    sls_url: &str,
    now: chrono::DateTime<Utc>,
    skew: chrono::Duration,
) -> Result<IncomingRequest, LogoutError> {
    let doc = xml::parse_bounded(text, XmlLimits::default()).map_err(|e| LogoutError::Xml(e.to_string()))?;
    let root = check_common(&doc, "LogoutRequest", idp_entity_id, sls_url)?;
    let instant = root
        .attribute("IssueInstant")
        .ok_or(LogoutError::Missing("IssueInstant"))?;
    let issued = super::response::parse_time(instant).map_err(|_| LogoutError::Stale(instant.to_string()))?;
    if issued > now + skew || issued + MAX_REQUEST_AGE + skew < now {
        return Err(LogoutError::Stale(instant.to_string()));
    }
    if let Some(until) = root.attribute("NotOnOrAfter") {
        let until = super::response::parse_time(until).map_err(|_| LogoutError::Stale(until.to_string()))?;
        if now >= until + skew {
            return Err(LogoutError::Stale(instant.to_string()));
        }
    }
    let id = root
        .attribute("ID")
        .filter(|i| !i.is_empty())
        .ok_or(LogoutError::Missing("ID"))?;
    let name_id = xml::child(root, NS_SAML, "NameID")
        .map(xml::full_text)
        .ok_or(LogoutError::Missing("NameID"))?;
    Ok(IncomingRequest {
        id: id.to_string(),
        name_id: name_id.trim().to_string(),
    })
}

/// Reads the IdP's LogoutResponse (its Redirect signature was already verified).
pub fn read_response(text: &str, idp_entity_id: &str, sls_url: &str) -> Result<IncomingResponse, LogoutError> {
    let doc = xml::parse_bounded(text, XmlLimits::default()).map_err(|e| LogoutError::Xml(e.to_string()))?;
    let root = check_common(&doc, "LogoutResponse", idp_entity_id, sls_url)?;
    let in_response_to = root
        .attribute("InResponseTo")
        .ok_or(LogoutError::Missing("InResponseTo"))?;
    let success = xml::child(root, NS_SAMLP, "Status")
        .and_then(|s| xml::child(s, NS_SAMLP, "StatusCode"))
        .and_then(|c| c.attribute("Value"))
        == Some(STATUS_SUCCESS);
    Ok(IncomingResponse {
        in_response_to: in_response_to.to_string(),
        success,
    })
}
