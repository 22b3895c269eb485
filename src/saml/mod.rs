//! The SAML protocol: AuthnRequests out, Responses in, metadata both ways.

pub mod attributes;
pub mod authn_request;
pub mod c14n;
pub mod decrypt;
pub mod error;
pub mod idp_metadata;
pub mod logout;
pub mod prescan;
pub mod redirect;
pub mod response;
pub mod signature;
pub mod sp_metadata;
pub mod xml;
#[cfg(feature = "demo")]
mod xmlsec_log;

pub use error::ValidationError;
