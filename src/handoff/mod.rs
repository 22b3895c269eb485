//! Handing the identity to the app: signed JWTs (and their JWKS), the auto-post form, the
//! identity headers, and the OpenID Connect provider's logic ([`oidc`]).

pub mod claims;
pub mod form;
pub mod identity_headers;
pub mod jwt;
pub mod oidc;
pub mod settings;

pub use settings::{HandoffMode, HandoffSettings, HeaderNames, Upstream};
