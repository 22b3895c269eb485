//! Signed federation metadata: the same two layers as a Response (layout, then cryptography),
//! with the bounds and the one signature shape metadata has.

use samael::crypto::CertificateDer;

use super::layout::check_metadata_layout;
use super::verify::{public_keys, verify_signatures};
use super::SignatureError;
use crate::saml::xml;

/// Limits for federation metadata: larger than a response (an aggregate lists thousands of
/// entities, each declaring its own handful of namespaces), still bounded. The namespace
/// declarations scale with the size bound (one per 64 bytes: real aggregates have about one
/// per 2 KiB); the distinct bindings stay few whatever the size (an aggregate reuses the
/// same dozen or two namespaces in every entity).
pub const METADATA_LIMITS: xml::XmlLimits = xml::XmlLimits {
    max_bytes: 16 * 1024 * 1024,
    max_depth: 32,
    max_nodes: 2_000_000,
    shape: xml::ShapeLimits {
        max_namespace_declarations: 16 * 1024 * 1024 / 64,
        max_distinct_namespaces: 4_096,
    },
};

/// Verifies signed metadata against the certificate(s) configured for it
/// (`metadata_signing_cert`) and returns the canonical text of what the signature covers: the
/// whole root element. The signature must be the root's own (a direct child, referencing the
/// root's ID, or the whole document with an empty URI), alone, with allowlisted algorithms;
/// anything else in the document that claims to be signed is refused.
pub fn verify_metadata(xml_text: &str, trusted: &[CertificateDer]) -> Result<String, SignatureError> {
    let doc = xml::parse_bounded(xml_text, METADATA_LIMITS).map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let layout = check_metadata_layout(&doc)?;
    let signed = verify_signatures(&layout, &public_keys(trusted)?, false, METADATA_LIMITS.max_bytes)?;
    Ok(signed.into_canonical_text())
}
