//! Handing the identity to the app: signed JWTs (and their JWKS), the auto-post form.

pub mod claims;
pub mod form;
pub mod identity_headers;
pub mod jwt;
