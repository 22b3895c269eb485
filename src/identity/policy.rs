//! An app's identity rules as identity's own type: which attribute is the person code (and
//! the pattern that cuts it out), which schools have activated the app, how schools map to
//! tenants, whether first-time linking runs, and which attributes become extra claims.
//! `config` builds it from `[apps.X]`, `[apps.X.person]` and `[apps.X.claims]`.

use std::collections::BTreeMap;

use regex::Regex;
use url::Url;

#[derive(Debug)]
pub struct Policy {
    /// `person.attribute`: the federated id, key of stored links and source of the code.
    pub person_attribute: String,
    /// `person.pattern`, with its named group `code`.
    pub person_pattern: Option<Regex>,
    /// BRINs (4 characters), branch BRINs (6) or `*`.
    pub schools: Vec<String>,
    /// School or branch BRIN to tenant.
    pub tenants: BTreeMap<String, String>,
    pub linking: Option<Linking>,
    /// `[apps.X.claims]`: claim name and the attribute it carries.
    pub claims: Vec<(String, String)>,
    /// `activation_contact`: an email address or URL, shown to a school that has not
    /// activated the app.
    pub activation_contact: Option<String>,
}

impl Policy {
    /// Attributes this app reads, without duplicates: for the SP metadata's RequestedAttributes.
    pub fn used_attributes(&self) -> Vec<String> {
        let mut names = vec![
            self.person_attribute.clone(),
            super::SCHOOL_ATTRIBUTE.to_string(),
            super::AFFILIATION_ATTRIBUTE.to_string(),
        ];
        names.extend(self.claims.iter().map(|(_, a)| a.clone()));
        let mut seen = std::collections::BTreeSet::new();
        names.retain(|n| seen.insert(n.clone()));
        names
    }
}

/// First-time account linking for an app (`person.linking = true`).
pub struct Linking {
    pub url: Url,
    pub secret: Vec<u8>,
    /// `person.mixed_affiliations = "refuse"`: no link joins a student's and an employee's
    /// federated ids under one person code (`"warn"`: it is made, and logged and counted).
    pub refuse_mixed_affiliations: bool,
}

/// The secret never reaches a log line, whoever prints the config.
impl std::fmt::Debug for Linking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linking")
            .field("url", &self.url.as_str())
            .field("secret", &format_args!("({} bytes, redacted)", self.secret.len()))
            .finish()
    }
}
