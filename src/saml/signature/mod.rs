//! XML-DSig: the ONE place in the bridge that touches XML signatures.
//!
//! Verification happens in two layers, and each leaves a proof as a type that only this
//! module can make:
//!
//! 1. [`check_layout`] (`layout.rs`) reads the signature elements and refuses anything but the
//!    one shape a SAML IdP legitimately produces (an enveloped signature, a direct child of
//!    the Response or of its single Assertion, one Reference to its parent's ID, allowlisted
//!    algorithms: `algorithms.rs`). Its [`CheckedLayout`] proves that this ran and passed.
//! 2. [`verify_signatures`] (`verify.rs`) takes a `CheckedLayout`, never a bare document, and
//!    checks each signature's digest and value against the IdP metadata's keys. Its
//!    [`SignedDocument`] proves that they verified, says which elements they cover, and holds
//!    the canonical text the bridge reads signed values from.
//!
//! So no code outside this module can verify a document whose layout was not checked, and no
//! code can hold a `SignedDocument` for content whose signature did not verify: the assertion
//! reader ([`super::response`]) takes one. Signed metadata ([`verify_metadata`]) goes through
//! the same two layers.
//!
//! Signing XML is not here: the bridge itself only signs AuthnRequests, with the Redirect
//! binding's query signature ([`super::redirect`]); the development IdP and the tests sign
//! documents with `crate::demo::sign`.

mod algorithms;
mod layout;
mod metadata;
mod verify;

pub use algorithms::{ALG_RSA_SHA1, ALG_RSA_SHA256, DIGEST_SHA1, DIGEST_SHA256};
pub use layout::{check_layout, CheckedLayout};
pub use metadata::{verify_metadata, METADATA_LIMITS};
pub use verify::{public_keys, verify_signatures, SignedDocument};

/// Why a signature (or the document carrying it) was refused; each maps to its own error code
/// ([`super::ValidationError::code`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("a Signature is not a direct child of the Response or of its Assertion")]
    Misplaced,
    #[error("the document is not signed")]
    Unsigned,
    #[error("the signature's Reference has an empty URI (it would sign the whole document)")]
    EmptyReference,
    #[error("the signature's Reference does not name the ID of the element it sits in: {0}")]
    ReferenceMismatch(String),
    #[error("the signature algorithm or digest {0} is not allowed")]
    AlgorithmForbidden(String),
    #[error("the signature transform or canonicalization {0} is not allowed")]
    TransformForbidden(String),
    #[error("the signature does not verify against the IdP's signing certificates")]
    Invalid,
    #[error("the IdP metadata holds no signing certificate, so nothing can be verified")]
    NoTrustedCertificates,
    #[error("a signing certificate holds no usable public key")]
    BadCertificate,
    #[error("the signed document cannot be read: {0}")]
    Malformed(String),
    #[error("a Signature holds {0} SignedInfo elements; exactly one is allowed")]
    SignedInfoCount(usize),
    #[error("the canonical form of the signed part is longer than {0} bytes")]
    CanonicalTooLarge(usize),
}
