//! PKCE (RFC 7636) with S256 only: the code is bound to the challenge the authorization
//! request carried, and only the client that made it knows the verifier.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use openssl::hash::{hash, MessageDigest};

/// A challenge is BASE64URL(SHA-256(verifier)) without padding: exactly 43 characters.
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `verifier` is the one `challenge` was made from (compared in constant time).
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    if !valid_verifier(verifier) || !valid_challenge(challenge) {
        return false;
    }
    let Ok(digest) = hash(MessageDigest::sha256(), verifier.as_bytes()) else {
        return false;
    };
    let computed = B64URL.encode(digest);
    computed.len() == challenge.len() && openssl::memcmp::eq(computed.as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_example_verifies_and_nothing_else_does() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        // `plain` would compare the verifier itself: that is no match here.
        assert!(!verifier_matches(challenge, challenge));
        assert!(!verifier_matches("short", challenge));
        assert!(valid_challenge(challenge));
        assert!(!valid_challenge(&challenge[..42]));
        assert!(!valid_challenge(&format!("{}=", &challenge[..42])));
    }
}
