//! What the protocol is configured with, as saml's own types: one SP (an app's entity, its
//! endpoints and keys, what its metadata says) and one federation's trust policy and metadata
//! source. `config` builds them from the file; saml reads nothing else.

use std::path::PathBuf;
use std::time::Duration;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use url::Url;

/// One app as a SAML service provider.
#[derive(Debug)]
pub struct SpSettings {
    pub entity_id: String,
    /// The HTTP-POST AssertionConsumerService.
    pub acs_url: String,
    /// The HTTP-Redirect SingleLogoutService.
    pub sls_url: String,
    /// Signs AuthnRequests and logout messages; decrypts assertions.
    pub key: PKey<Private>,
    pub cert: X509,
    /// The next key pair of a rollover (`sp_key_next`/`sp_cert_next`).
    pub next: Option<(PKey<Private>, X509)>,
    /// The keys an encrypted assertion may be encrypted to: the current one, then the next.
    pub decryption_keys: Vec<PKey<Private>>,
    /// IdP-initiated logins (a Response that answers no AuthnRequest of this browser).
    pub allow_unsolicited: bool,
    /// What the SP metadata says besides endpoints and keys.
    pub description: SpDescription,
}

impl SpSettings {
    /// The certificates the SP metadata publishes: the current one, then the next.
    pub fn certificates(&self) -> impl Iterator<Item = &X509> {
        std::iter::once(&self.cert).chain(self.next.as_ref().map(|(_, cert)| cert))
    }
}

/// The SP metadata's service name, requested attributes, organization and contacts.
#[derive(Debug, Clone)]
pub struct SpDescription {
    /// The AttributeConsumingService's name (the app's display name).
    pub service_name: String,
    /// Attribute names, without duplicates, in the order requested.
    pub requested_attributes: Vec<String>,
    /// The one attribute marked required (the person code's source).
    pub required_attribute: String,
    pub organization: Option<Organization>,
    pub contacts: Vec<Contact>,
}

/// `<md:Organization>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub name: String,
    pub display_name: Option<String>,
    pub url: String,
}

/// `<md:ContactPerson>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub contact_type: String,
    pub given_name: Option<String>,
    pub sur_name: Option<String>,
    pub company: Option<String>,
    pub email: String,
}

/// What a federation's IdP is trusted with: the algorithms, the clock, and how its fetched
/// metadata must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustPolicy {
    /// RSA-SHA1 signatures accepted.
    pub allow_sha1: bool,
    /// `allow_cbc`: AES-CBC assertions accepted in an unsigned Response (default false).
    pub allow_cbc: bool,
    /// `require_valid_until`: fetched metadata without validUntil is refused (default true).
    pub require_valid_until: bool,
    pub clock_skew: Duration,
}

/// Where a federation's IdP metadata comes from.
#[derive(Debug, Clone)]
pub enum MetadataSource {
    File(PathBuf),
    /// Fetched and refreshed; trusted only when signed by `signing_certs`. The last good copy
    /// is kept in `cache`, so a restart during an outage still has it.
    Url {
        url: Url,
        signing_certs: Vec<samael::crypto::CertificateDer>,
        cache: PathBuf,
        refresh_interval: Duration,
        /// The deadline of one whole refresh (fetch, pre-scan, parse, signature).
        refresh_timeout: Duration,
    },
}
