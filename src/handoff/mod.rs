//! Handing the identity to the app: signed JWTs (and their JWKS), the auto-post form.

pub mod claims;
pub mod form;
pub mod header_token;
pub mod jwt;
