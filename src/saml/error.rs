//! Why a SAML Response was refused. Each variant has its own stable error code: the code is in
//! the admin's log line, on the user's error page, in `verify-response --json`, and in metrics.

use super::signature::SignatureError;
use super::xml::XmlError;

#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error("the SAMLResponse is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the SAMLResponse is not valid base64")]
    NotBase64,
    #[error("the SAMLResponse is not UTF-8 text")]
    NotUtf8,
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("the document is not a SAML 2.0 Response (root element {0})")]
    NotAResponse(String),
    #[error("the Response Destination {found:?} is not this ACS {expected:?}")]
    DestinationMismatch { found: String, expected: String },
    #[error("the Issuer {found:?} is not the federation's IdP {expected:?}")]
    IssuerMismatch { found: String, expected: String },
    #[error("the IdP answered with status {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    IdpStatus { code: String, message: Option<String> },
    #[error("the Response holds {0} assertions; exactly one is allowed")]
    AssertionCount(usize),
    #[error("the assertion is not a direct child of the Response")]
    AssertionMisplaced,
    #[error("a comment or processing instruction sits inside a NameID or attribute value")]
    CommentInValue,
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("neither the Response nor the Assertion is signed")]
    Unsigned,
    #[error("the encrypted assertion could not be decrypted: {0}")]
    Decryption(String),
    #[error("the encrypted assertion carries {found} EncryptedKeys; at most {allowed} (one per SP key) are tried")]
    TooManyEncryptedKeys { found: usize, allowed: usize },
    #[error("the encryption algorithm {0} is not allowed")]
    EncryptionAlgorithm(String),
    #[error("the assertion is encrypted with AES-CBC ({0}) in a Response that is not signed (a padding-oracle risk): sign the Response, encrypt with AES-GCM, or set allow_cbc = true in this app's [federations.NAME] section")]
    CbcUnauthenticated(String),
    #[error("the assertion has no {0}")]
    MissingElement(&'static str),
    #[error("the assertion's Audience does not name this SP ({0})")]
    AudienceMismatch(String),
    #[error("the bearer SubjectConfirmation Recipient {found:?} is not this ACS {expected:?}")]
    RecipientMismatch { found: String, expected: String },
    #[error("the assertion has no bearer SubjectConfirmation")]
    BearerMissing,
    #[error("the bearer SubjectConfirmation expired at {0}")]
    ConfirmationExpired(String),
    #[error("InResponseTo {found:?} is not the login this browser started")]
    InResponseToMismatch { found: String },
    #[error("the Response answers request {0:?}, which this bridge did not start for this browser")]
    InResponseToUnknown(String),
    #[error("the Response is unsolicited (no InResponseTo) and this app does not allow that")]
    Unsolicited,
    #[error("the assertion is not valid before {0}")]
    NotYetValid(String),
    #[error("the assertion expired at {0}")]
    Expired(String),
    #[error("the time value {0:?} is not an xs:dateTime with a zone (Z or an offset such as +01:00)")]
    TimeInvalid(String),
    #[error("the {0} has Version {1:?}; only SAML 2.0 is accepted")]
    VersionUnsupported(&'static str, String),
    #[error("the {0} was issued at {1}, in the future beyond the clock skew")]
    IssuedInFuture(&'static str, String),
    #[error("the assertion has no AuthnStatement (the Web SSO profile requires one)")]
    AuthnStatementMissing,
    #[error("the assertion's Subject has no NameID")]
    NameIdMissing,
    #[error("the bearer SubjectConfirmationData has a NotBefore (the Web SSO profile forbids it)")]
    ConfirmationNotBefore,
    #[error("the assertion carries more than {0} attributes or values")]
    TooManyAttributes(usize),
    #[error("an attribute value is longer than {0} characters")]
    ValueTooLong(usize),
}

impl ValidationError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        use ValidationError::*;
        match self {
            TooLarge { .. } => "response_too_large",
            NotBase64 => "response_not_base64",
            NotUtf8 => "response_not_utf8",
            Xml(XmlError::TooLarge { .. }) => "response_too_large",
            Xml(XmlError::Dtd) => "xml_dtd_forbidden",
            Xml(XmlError::Encoding(_)) => "xml_encoding_forbidden",
            Xml(XmlError::TooDeep(_)) => "xml_too_deep",
            Xml(XmlError::TooManyNodes(_)) => "xml_too_many_nodes",
            Xml(XmlError::TooManyNamespaces(_)) => "xml_too_many_namespaces",
            Xml(XmlError::TooManyAttributes(_)) => "xml_too_many_attributes",
            Xml(XmlError::ValueTooLong { .. }) => "xml_value_too_long",
            Xml(XmlError::Malformed(_)) => "xml_malformed",
            NotAResponse(_) => "not_a_response",
            DestinationMismatch { .. } => "destination_mismatch",
            IssuerMismatch { .. } => "issuer_mismatch",
            IdpStatus { .. } => "idp_status_not_success",
            AssertionCount(_) => "assertion_count",
            AssertionMisplaced => "assertion_misplaced",
            CommentInValue => "xml_comment_in_value",
            Signature(SignatureError::Misplaced) => "signature_misplaced",
            Signature(SignatureError::Unsigned) => "signature_missing",
            Signature(SignatureError::EmptyReference) => "signature_reference_empty",
            Signature(SignatureError::ReferenceMismatch(_)) => "signature_reference_mismatch",
            Signature(SignatureError::AlgorithmForbidden(_)) => "signature_algorithm_forbidden",
            Signature(SignatureError::TransformForbidden(_)) => "signature_transform_forbidden",
            Signature(SignatureError::Invalid) => "signature_invalid",
            Signature(SignatureError::NoTrustedCertificates) => "idp_no_signing_certificate",
            Signature(SignatureError::BadCertificate) => "idp_certificate_invalid",
            Signature(SignatureError::Malformed(_)) => "xml_malformed",
            Signature(SignatureError::SignedInfoCount(_)) => "signature_signed_info_count",
            Signature(SignatureError::CanonicalTooLarge(_)) => "xml_canonical_too_large",
            Unsigned => "signature_missing",
            Decryption(_) => "decryption_failed",
            TooManyEncryptedKeys { .. } => "encrypted_key_too_many",
            EncryptionAlgorithm(_) => "encryption_algorithm_forbidden",
            // The same code as any refused algorithm (it is one); the message names the key.
            CbcUnauthenticated(_) => "encryption_algorithm_forbidden",
            MissingElement(_) => "assertion_incomplete",
            AudienceMismatch(_) => "audience_mismatch",
            RecipientMismatch { .. } => "recipient_mismatch",
            BearerMissing => "subject_confirmation_missing",
            ConfirmationExpired(_) => "subject_confirmation_expired",
            InResponseToMismatch { .. } => "in_response_to_mismatch",
            InResponseToUnknown(_) => "in_response_to_unknown",
            Unsolicited => "unsolicited_not_allowed",
            NotYetValid(_) => "assertion_not_yet_valid",
            Expired(_) => "assertion_expired",
            TimeInvalid(_) => "time_invalid",
            VersionUnsupported(..) => "version_unsupported",
            IssuedInFuture(..) => "issue_instant_in_future",
            AuthnStatementMissing => "authn_statement_missing",
            NameIdMissing => "name_id_missing",
            ConfirmationNotBefore => "subject_confirmation_not_before",
            TooManyAttributes(_) => "attributes_too_many",
            ValueTooLong(_) => "attribute_value_too_long",
        }
    }
}
