//! Every config key, as the serde types accept them, for the configuration reference
//! (`docs/configuration.md`): a test compares the two so the reference cannot drift.
//!
//! Field names are read from the types themselves: a derived `Deserialize` hands its field
//! list to `deserialize_struct`, which this module's deserializer catches.

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::file::*;

/// A deserializer that records the field names a struct asks for, then stops.
struct FieldCatcher {
    fields: &'static [&'static str],
}

impl<'de> Deserializer<'de> for &mut FieldCatcher {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.fields = fields;
        Err(de::Error::custom("fields caught"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The keys of a config table type.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut catcher = FieldCatcher { fields: &[] };
    let _ = T::deserialize(&mut catcher);
    catcher.fields
}

/// Every key path: `<name>` stands for a federation or app name, `<BRIN>` and `<claim>` for
/// map keys, `[]` for an array of tables.
pub fn all_keys() -> Vec<String> {
    let mut keys = Vec::new();
    let mut add = |prefix: &str, fields: &[&str], nested: &[&str]| {
        keys.extend(
            fields
                .iter()
                .filter(|f| !nested.contains(f))
                .map(|f| format!("{prefix}.{f}")),
        );
    };
    add("server", fields_of::<ServerSection>(), &["rate_limit"]);
    add("server.rate_limit", fields_of::<RateLimitSection>(), &[]);
    add("sessions", fields_of::<SessionsSection>(), &[]);
    add("links", fields_of::<LinksSection>(), &[]);
    add("keys", fields_of::<KeysSection>(), &[]);
    add("log", fields_of::<LogSection>(), &[]);
    add("support", fields_of::<super::support::SupportSection>(), &[]);
    add("admin", fields_of::<super::admin::AdminSection>(), &[]);
    add("federations.<name>", fields_of::<FederationSection>(), &[]);
    let app_tables = [
        "person",
        "handoff",
        "organization",
        "contacts",
        "tenants",
        "claims",
        "branding",
    ];
    add("apps.<name>", fields_of::<AppSection>(), &app_tables);
    add("apps.<name>.person", fields_of::<PersonSection>(), &[]);
    add("apps.<name>.handoff", fields_of::<HandoffSection>(), &["headers"]);
    add("apps.<name>.handoff.headers", fields_of::<HeaderNamesSection>(), &[]);
    add("apps.<name>.organization", fields_of::<OrganizationSection>(), &[]);
    add("apps.<name>.contacts[]", fields_of::<ContactSection>(), &[]);
    add("apps.<name>.branding", fields_of::<BrandingSection>(), &[]);
    keys.push("apps.<name>.tenants.<BRIN>".into());
    keys.push("apps.<name>.claims.<claim>".into());
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_come_from_the_types() {
        assert_eq!(fields_of::<LogSection>(), ["format"]);
        let keys = all_keys();
        assert!(keys.contains(&"apps.<name>.person.link_secret".to_string()));
        assert!(
            keys.contains(&"apps.<name>.contacts[].type".to_string()),
            "serde renames count"
        );
        assert!(!keys.contains(&"apps.<name>.person".to_string()), "tables are not keys");
    }
}
