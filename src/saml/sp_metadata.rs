//! SP metadata for one app: entityID, HTTP-POST ACS, signing and encryption keys from
//! `sp_cert`, NameIDFormat unspecified, RequestedAttributes, organization and contacts, all
//! from the app's [`SpSettings`].

use samael::key_info::{KeyInfo, X509Data};
use samael::metadata::{
    AttributeConsumingService, ContactPerson, EncryptionMethod, EntityDescriptor, IndexedEndpoint, KeyDescriptor,
    LocalizedName, LocalizedUri, Organization, RequestedAttribute, SpSsoDescriptor,
};
use samael::traits::ToXml;

use super::idp_metadata::BINDING_POST;
use super::settings::SpSettings;

const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
const ATTRNAME_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified";

pub fn render(sp: &SpSettings, certs_b64: &[String]) -> Result<String, String> {
    let key = |cert_b64: &String, usage: &str, methods: Option<Vec<EncryptionMethod>>| KeyDescriptor {
        key_use: Some(usage.to_string()),
        key_info: KeyInfo {
            id: None,
            x509_data: Some(X509Data {
                certificates: vec![cert_b64.clone()],
            }),
        },
        encryption_methods: methods,
    };
    // GCM only: CBC is accepted only inside a signed Response (see saml::decrypt), so an IdP
    // that follows these hints never hits that refusal.
    let enc_methods: Vec<EncryptionMethod> = [
        super::decrypt::AES128_GCM,
        super::decrypt::AES256_GCM,
        super::decrypt::RSA_OAEP_MGF1P,
    ]
    .iter()
    .map(|a| EncryptionMethod {
        algorithm: a.to_string(),
    })
    .collect();
    let description = &sp.description;
    let requested = description
        .requested_attributes
        .iter()
        .map(|name| RequestedAttribute {
            friendly_name: Some(name.clone()),
            is_required: Some(*name == description.required_attribute),
            name: name.clone(),
            name_format: Some(ATTRNAME_UNSPECIFIED.to_string()),
            values: None,
        })
        .collect();
    let lang = |v: &str| LocalizedName {
        lang: Some("nl".into()),
        value: v.to_string(),
    };
    let organization = description.organization.as_ref().map(|o| Organization {
        organization_names: Some(vec![lang(&o.name)]),
        organization_display_names: Some(vec![lang(o.display_name.as_deref().unwrap_or(&o.name))]),
        organization_urls: Some(vec![LocalizedUri {
            lang: Some("nl".into()),
            value: o.url.clone(),
        }]),
    });
    let contacts: Vec<ContactPerson> = description
        .contacts
        .iter()
        .map(|c| ContactPerson {
            contact_type: Some(c.contact_type.clone()),
            company: c.company.clone(),
            given_name: c.given_name.clone(),
            sur_name: c.sur_name.clone(),
            email_addresses: Some(vec![format!("mailto:{}", c.email.trim_start_matches("mailto:"))]),
            telephone_numbers: None,
        })
        .collect();
    let descriptor = SpSsoDescriptor {
        protocol_support_enumeration: Some("urn:oasis:names:tc:SAML:2.0:protocol".into()),
        // The current certificate and, during a rollover, the next: both for signing (the IdP
        // accepts requests signed with either once it has read this) and for encryption (the
        // bridge decrypts with either).
        key_descriptors: Some(
            certs_b64
                .iter()
                .flat_map(|c| [key(c, "signing", None), key(c, "encryption", Some(enc_methods.clone()))])
                .collect(),
        ),
        name_id_formats: Some(vec![NAMEID_UNSPECIFIED.to_string()]),
        single_logout_services: Some(vec![samael::metadata::Endpoint {
            binding: super::idp_metadata::BINDING_REDIRECT.to_string(),
            location: sp.sls_url.clone(),
            response_location: None,
        }]),
        authn_requests_signed: Some(true),
        want_assertions_signed: Some(true),
        assertion_consumer_services: vec![IndexedEndpoint {
            binding: BINDING_POST.to_string(),
            location: sp.acs_url.clone(),
            response_location: None,
            index: 0,
            is_default: Some(true),
        }],
        attribute_consuming_services: Some(vec![AttributeConsumingService {
            index: 0,
            is_default: Some(true),
            service_names: vec![lang(&description.service_name)],
            service_descriptions: None,
            request_attributes: requested,
        }]),
        ..SpSsoDescriptor::default()
    };
    let entity = EntityDescriptor {
        entity_id: Some(sp.entity_id.clone()),
        sp_sso_descriptors: Some(vec![descriptor]),
        organization,
        contact_person: if contacts.is_empty() { None } else { Some(contacts) },
        ..EntityDescriptor::default()
    };
    entity.to_string().map_err(|e| format!("{e:?}"))
}
