//! Handing the identity to the app: signed JWTs (and their JWKS), the auto-post form.

pub mod claims;
pub mod form;
pub mod identity_headers;
pub mod jwt;
pub mod settings;

pub use settings::{HandoffMode, HandoffSettings, HeaderNames, Upstream};
