//! `[apps.X]`'s identity keys (`schools`, `tenants`, `[person]`, `[claims]`) checked into
//! identity's own [`Policy`].

use regex::Regex;

use super::super::file::AppSection;
use super::super::parse::parse_http_url;
use super::super::problems::Collector;
use crate::handoff::claims::RESERVED_CLAIMS;
use crate::identity::{Linking, Policy};
use crate::saml::attributes;

/// The app's identity rules; every problem is in the collector (a part with one is left out).
pub(super) fn build_policy(a: &AppSection, key: &dyn Fn(&str) -> String, c: &mut Collector<'_>) -> Policy {
    check_schools(&a.schools, key, c);
    let activation_contact = a
        .activation_contact
        .as_deref()
        .and_then(|contact| c.take(&key("activation_contact"), check_contact(contact)));
    if !attributes::is_known(&a.person.attribute) {
        c.add(
            key("person.attribute"),
            format!(
                "{:?} is not a known attribute name (e.g. nlEduPersonRealId, eckId, uid)",
                a.person.attribute
            ),
        );
    }
    let person_pattern = match &a.person.pattern {
        None => None,
        Some(p) => match Regex::new(p) {
            Ok(re) if re.capture_names().any(|n| n == Some("code")) => Some(re),
            Ok(_) => {
                c.add(
                    key("person.pattern"),
                    "must have a named group `code`, e.g. ^(?P<code>[^@]+)@",
                );
                None
            }
            Err(e) => {
                c.add(key("person.pattern"), format!("not a valid regular expression: {e}"));
                None
            }
        },
    };
    let linking = if a.person.linking {
        build_linking(a, key, c)
    } else {
        None
    };
    for (claim, attribute) in &a.claims {
        if RESERVED_CLAIMS.contains(&claim.as_str()) {
            c.add(
                key(&format!("claims.{claim}")),
                "this claim name is set by the bridge itself",
            );
        }
        if !attributes::is_known(attribute) {
            c.add(
                key(&format!("claims.{claim}")),
                format!("{attribute:?} is not a known attribute name"),
            );
        }
    }
    Policy {
        person_attribute: a.person.attribute.clone(),
        person_pattern,
        schools: a.schools.clone(),
        tenants: a.tenants.clone(),
        linking,
        claims: a.claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        activation_contact,
    }
}

/// `activation_contact`: an email address (shown as a mailto link) or an https URL (a
/// form or page), the only two a school can act on.
pub fn check_contact(contact: &str) -> Result<String, String> {
    let v = contact.trim();
    let email = v.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !v.contains(char::is_whitespace)
            && !v.contains(['<', '>', '"', ':', '/'])
    });
    if email {
        return Ok(v.to_string());
    }
    match url::Url::parse(v) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => Ok(u.to_string()),
        _ => Err(format!(
            "{contact:?} is neither an email address nor an https URL (the page of a school that has not activated shows it)"
        )),
    }
}

fn check_schools(schools: &[String], key: &dyn Fn(&str) -> String, c: &mut Collector<'_>) {
    for school in schools {
        let ok = school == "*"
            || ((school.len() == 4 || school.len() == 6) && school.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !ok {
            c.add(
                key("schools"),
                format!("{school:?} is not a BRIN (4 or 6 letters and digits) or \"*\""),
            );
        }
    }
    // An empty list is a start: schools are then activated as data (`entree-bridge schools
    // activate`, the admin API), and every other school sees the activation page.
}

/// `person.linking = true`: the app's link page and the secret its answers are signed with.
fn build_linking(a: &AppSection, key: &dyn Fn(&str) -> String, c: &mut Collector<'_>) -> Option<Linking> {
    let url = match &a.person.link_url {
        Some(u) => c.take(
            &key("person.link_url"),
            parse_http_url(u).and_then(|url| {
                // The link request names the student's school and first name: https only,
                // except for an app on this machine.
                let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
                if url.scheme() == "https" || loopback {
                    Ok(url)
                } else {
                    Err(format!("{u:?} must be https (plain http only for an app on loopback)"))
                }
            }),
        ),
        None => {
            c.add(
                key("person.link_url"),
                "required with linking = true: the app's page where the student logs in once",
            );
            None
        }
    };
    let secret = match &a.person.link_secret {
        Some(s) if s.len() >= 32 => Some(s.as_bytes().to_vec()),
        Some(_) => {
            c.add(
                key("person.link_secret"),
                "must be at least 32 characters (it signs link responses; use a random string)",
            );
            None
        }
        None => {
            c.add(
                key("person.link_secret"),
                "required with linking = true: the HS256 secret shared with the app",
            );
            None
        }
    };
    let refuse_mixed_affiliations = match a.person.mixed_affiliations.as_str() {
        "warn" => false,
        "refuse" => true,
        other => {
            c.add(
                key("person.mixed_affiliations"),
                format!("{other:?} is not one of \"warn\", \"refuse\""),
            );
            false
        }
    };
    url.zip(secret).map(|(url, secret)| Linking {
        url,
        secret,
        refuse_mixed_affiliations,
    })
}
