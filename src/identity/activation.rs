//! Which schools have activated an app: `apps.X.schools` from the config, and on top of it
//! the activations kept as data (the link store's `school_activations`, changed by
//! `entree-bridge schools` and the admin API). A login reads a [`SchoolActivations`]
//! snapshot: no query per login.

use std::collections::{BTreeSet, HashMap};

use super::{IdentityError, Policy};

/// The schools activated as data, by app: BRINs in upper case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchoolActivations {
    by_app: HashMap<String, BTreeSet<String>>,
}

/// What an app without database activations reads.
static NONE: BTreeSet<String> = BTreeSet::new();

impl SchoolActivations {
    /// From (app, BRIN) rows.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut by_app: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (app, brin) in rows {
            by_app.entry(app).or_default().insert(brin.to_ascii_uppercase());
        }
        SchoolActivations { by_app }
    }

    /// The BRINs activated as data for `app`.
    pub fn of(&self, app: &str) -> &BTreeSet<String> {
        self.by_app.get(app).unwrap_or(&NONE)
    }

    /// How many activations the snapshot holds (for the start-up log and metrics).
    pub fn len(&self) -> usize {
        self.by_app.values().map(BTreeSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a school may log in to an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivatedBy {
    /// `apps.X.schools = ["*"]`: every school.
    Everyone,
    /// The BRIN (or its branch) is in `apps.X.schools`.
    Config,
    /// Activated as data (`entree-bridge schools activate`, the admin API).
    Database,
}

/// A BRIN as the support desk types it: 4 characters (a school board's institution) or 6 (a
/// branch, the BRIN and two digits), letters and digits, returned in upper case.
pub fn parse_brin(value: &str) -> Result<String, String> {
    let v = value.trim();
    if (v.len() == 4 || v.len() == 6) && v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(v.to_ascii_uppercase())
    } else {
        Err(format!("{value:?} is not a BRIN (4 or 6 letters and digits)"))
    }
}

/// Whether the school (or its branch) has activated the app: by the config's `schools`
/// (`*`, or the BRIN listed) or by `activated` (the app's activations kept as data).
pub fn school_activation(
    policy: &Policy,
    activated: &BTreeSet<String>,
    school: Option<&str>,
    branch: Option<&str>,
) -> Result<ActivatedBy, IdentityError> {
    if policy.schools.iter().any(|s| s == "*") {
        return Ok(ActivatedBy::Everyone);
    }
    let in_config = |v: Option<&str>| v.is_some_and(|v| policy.schools.iter().any(|s| s.eq_ignore_ascii_case(v)));
    if in_config(school) || in_config(branch) {
        return Ok(ActivatedBy::Config);
    }
    let in_database = |v: Option<&str>| v.is_some_and(|v| activated.contains(&v.to_ascii_uppercase()));
    if in_database(school) || in_database(branch) {
        return Ok(ActivatedBy::Database);
    }
    match branch.or(school) {
        Some(brin) => Err(IdentityError::SchoolNotActivated {
            brin: brin.to_string(),
            contact: policy.activation_contact.clone(),
        }),
        None => Err(IdentityError::SchoolMissing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(schools: &[&str]) -> Policy {
        Policy {
            person_attribute: "uid".into(),
            person_pattern: None,
            schools: schools.iter().map(|s| s.to_string()).collect(),
            tenants: Default::default(),
            linking: None,
            claims: vec![],
            activation_contact: Some("support@numo.example.nl".into()),
        }
    }

    #[test]
    fn config_then_database_then_refused_with_the_contact() {
        let db = SchoolActivations::from_rows([("numo".to_string(), "99ab".to_string())]);
        let p = policy(&["11XX"]);
        assert_eq!(
            school_activation(&p, db.of("numo"), Some("11XX"), None),
            Ok(ActivatedBy::Config)
        );
        assert_eq!(
            school_activation(&p, db.of("numo"), Some("99AB"), None),
            Ok(ActivatedBy::Database)
        );
        // A branch of an activated school is in; an activation of another app is not.
        assert_eq!(
            school_activation(&p, db.of("numo"), Some("99AB"), Some("99AB01")),
            Ok(ActivatedBy::Database)
        );
        assert_eq!(
            school_activation(&p, db.of("leesplan"), Some("99AB"), None),
            Err(IdentityError::SchoolNotActivated {
                brin: "99AB".into(),
                contact: Some("support@numo.example.nl".into())
            })
        );
        assert_eq!(
            school_activation(&policy(&["*"]), db.of("x"), Some("00ZZ"), None),
            Ok(ActivatedBy::Everyone)
        );
        assert_eq!(
            school_activation(&p, db.of("numo"), None, None),
            Err(IdentityError::SchoolMissing)
        );
    }

    #[test]
    fn brins_are_four_or_six_letters_and_digits() {
        assert_eq!(parse_brin("99xx"), Ok("99XX".into()));
        assert_eq!(parse_brin(" 12AB01 "), Ok("12AB01".into()));
        for bad in ["", "99X", "99XX0", "99XX012", "99-X", "*", "99XÜ"] {
            assert!(parse_brin(bad).is_err(), "{bad:?}");
        }
    }
}
