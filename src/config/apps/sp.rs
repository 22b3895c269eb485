//! An app's SP keys: each pair an RSA key and the certificate that belongs to it, the next
//! pair of a rollover, and what the SP metadata says about the app.

use std::path::Path;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use super::super::file::{AppSection, ContactSection, OrganizationSection};
use super::super::parse::resolve;
use super::super::problems::Collector;
use crate::saml::settings::{Contact, Organization};

pub(super) type KeyPair = (PKey<Private>, X509);

/// The current pair and the next (`Some(None)`: no rollover); `None` where one has a problem.
pub(super) fn load_keys(
    a: &AppSection,
    key: &dyn Fn(&str) -> String,
    base: &Path,
    c: &mut Collector<'_>,
) -> (Option<PKey<Private>>, Option<X509>, Option<Option<KeyPair>>) {
    let (sp_key, sp_cert) = load_sp_pair(&a.sp_key, &a.sp_cert, (&key("sp_key"), &key("sp_cert")), base, c);
    let sp_next = match (&a.sp_key_next, &a.sp_cert_next) {
        (None, None) => Some(None),
        (Some(k), Some(cert)) => match load_sp_pair(k, cert, (&key("sp_key_next"), &key("sp_cert_next")), base, c) {
            (Some(k), Some(cert)) => Some(Some((k, cert))),
            _ => None,
        },
        _ => {
            c.add(key("sp_key_next"), "sp_key_next and sp_cert_next go together");
            None
        }
    };
    (sp_key, sp_cert, sp_next)
}

/// An SP key pair: an RSA key and the certificate that belongs to it.
fn load_sp_pair(
    key_path: &str,
    cert_path: &str,
    (key_name, cert_name): (&str, &str),
    base: &Path,
    c: &mut Collector<'_>,
) -> (Option<PKey<Private>>, Option<X509>) {
    let sp_key = c.take(key_name, crate::keys::read_private_key(&resolve(base, key_path)));
    let sp_cert = c.take(cert_name, crate::keys::read_certificate(&resolve(base, cert_path)));
    if let (Some(k), Some(cert)) = (&sp_key, &sp_cert) {
        let matches = cert.public_key().map(|p| p.public_eq(k)).unwrap_or(false);
        if !matches {
            c.add(
                cert_name,
                format!(
                    "the certificate does not belong to {}",
                    key_name.rsplit('.').next().unwrap_or(key_name)
                ),
            );
        }
        if k.rsa().is_err() {
            c.add(
                key_name,
                "must be an RSA key (SAML request signing and decryption use RSA)",
            );
        }
    }
    (sp_key, sp_cert)
}

pub(super) fn organization(o: &OrganizationSection) -> Organization {
    Organization {
        name: o.name.clone(),
        display_name: o.display_name.clone(),
        url: o.url.clone(),
    }
}

pub(super) fn contact(c: &ContactSection) -> Contact {
    Contact {
        contact_type: c.contact_type.clone(),
        given_name: c.given_name.clone(),
        sur_name: c.sur_name.clone(),
        company: c.company.clone(),
        email: c.email.clone(),
    }
}
