//! One dictionary from every spelling of an attribute name to its canonical (Entree friendly)
//! name. Entree sends plain names; other IdPs and proxies send `urn:mace:dir:attribute-def:X`
//! or `urn:oid:...`. Config (`person.attribute`, `[apps.X.claims]`) always uses the canonical name.

use std::collections::BTreeMap;

const MACE_PREFIX: &str = "urn:mace:dir:attribute-def:";

/// (canonical name, OID) for the attributes Entree and the eduPerson schemas define. The
/// nlEdu attributes have no `urn:oid:` spelling here: Entree sends them by plain name (or a
/// mace URN), and an OID we could not check against the nlEduPerson schema would be a guess.
const KNOWN: &[(&str, Option<&str>)] = &[
    ("uid", Some("0.9.2342.19200300.100.1.1")),
    ("mail", Some("0.9.2342.19200300.100.1.3")),
    ("givenName", Some("2.5.4.42")),
    ("sn", Some("2.5.4.4")),
    ("cn", Some("2.5.4.3")),
    ("displayName", Some("2.16.840.1.113730.3.1.241")),
    ("eduPersonAffiliation", Some("1.3.6.1.4.1.5923.1.1.1.1")),
    ("eduPersonPrincipalName", Some("1.3.6.1.4.1.5923.1.1.1.6")),
    ("eduPersonEntitlement", Some("1.3.6.1.4.1.5923.1.1.1.7")),
    ("eduPersonScopedAffiliation", Some("1.3.6.1.4.1.5923.1.1.1.9")),
    ("eduPersonTargetedID", Some("1.3.6.1.4.1.5923.1.1.1.10")),
    ("nlEduPersonHomeOrganization", None),
    ("nlEduPersonHomeOrganizationId", None),
    ("nlEduPersonHomeOrganizationBranchId", None),
    ("nlEduPersonProfileId", None),
    ("nlEduPersonRealId", None),
    ("nlEduPersonTussenvoegsels", None),
    ("eckId", None),
];

/// The canonical name for an attribute `Name` as it arrived, or `None` when it is not one
/// this dictionary knows (unknown plain names are kept as they are by [`canonical_or_raw`]).
pub fn canonical(name: &str) -> Option<&'static str> {
    let name = name.trim();
    if let Some(oid) = name.strip_prefix("urn:oid:") {
        return KNOWN.iter().find(|(_, o)| *o == Some(oid)).map(|(c, _)| *c);
    }
    let plain = name.strip_prefix(MACE_PREFIX).unwrap_or(name);
    KNOWN
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(plain))
        .map(|(c, _)| *c)
}

/// The canonical name when known, else the name as sent (minus a mace prefix).
pub fn canonical_or_raw(name: &str) -> String {
    match canonical(name) {
        Some(c) => c.to_string(),
        None => name.strip_prefix(MACE_PREFIX).unwrap_or(name).trim().to_string(),
    }
}

/// True when `name` is a canonical name this dictionary knows.
pub fn is_known(name: &str) -> bool {
    KNOWN.iter().any(|(c, _)| *c == name)
}

/// Attribute values by canonical name, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Attributes(BTreeMap<String, Vec<String>>);

impl Attributes {
    pub fn push(&mut self, raw_name: &str, value: String) {
        self.0.entry(canonical_or_raw(raw_name)).or_default().push(value);
    }

    pub fn get(&self, canonical_name: &str) -> &[String] {
        self.0.get(canonical_name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn first(&self, canonical_name: &str) -> Option<&str> {
        self.get(canonical_name).first().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_spellings_meet() {
        for name in ["nlEduPersonRealId", "urn:mace:dir:attribute-def:nlEduPersonRealId"] {
            assert_eq!(canonical(name), Some("nlEduPersonRealId"), "{name}");
        }
        assert_eq!(canonical("urn:oid:2.5.4.42"), Some("givenName"));
        assert_eq!(canonical("urn:mace:dir:attribute-def:uid"), Some("uid"));
        assert_eq!(
            canonical("urn:oid:1.3.6.1.4.1.5923.1.1.1.1"),
            Some("eduPersonAffiliation")
        );
        assert_eq!(canonical("somethingElse"), None);
        assert_eq!(canonical_or_raw("urn:mace:dir:attribute-def:custom"), "custom");
    }

    #[test]
    fn values_collect_under_canonical_name() {
        let mut attrs = Attributes::default();
        attrs.push("urn:oid:1.3.6.1.4.1.5923.1.1.1.1", "student".into());
        attrs.push("eduPersonAffiliation", "member".into());
        assert_eq!(attrs.get("eduPersonAffiliation"), ["student", "member"]);
        assert_eq!(attrs.first("givenName"), None);
    }
}
