//! Pseudonyms for ids in logs, keyed by a secret of the bridge: free of any config type, so
//! that whoever holds the key (the loaded settings, the links CLI) can make them.

/// Logs name people only by a keyed hash: the same id always gives the same pseudonym (so
/// an admin can follow one student through the log), but the id cannot be read back or
/// guessed from it without the key. The key derives from the JWT signing key, so it is
/// secret and stable across restarts (a JWT key rollover starts new pseudonyms).
#[derive(Debug, Clone)]
pub struct Pseudonyms {
    key: [u8; 32],
}

impl Pseudonyms {
    pub fn new(secret: &[u8]) -> Self {
        let mut material = b"entree-bridge log pseudonyms\0".to_vec();
        material.extend_from_slice(secret);
        Pseudonyms {
            key: openssl::sha::sha256(&material),
        }
    }

    /// `p:` and 12 hex characters (48 bits) of HMAC-SHA256(key, id).
    pub fn of(&self, id: &str) -> String {
        let mac = openssl::pkey::PKey::hmac(&self.key)
            .and_then(|k| {
                let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &k)?;
                signer.update(id.as_bytes())?;
                signer.sign_to_vec()
            })
            .unwrap_or_default();
        let hex: String = mac.iter().take(6).map(|b| format!("{b:02x}")).collect();
        format!("p:{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_hide_the_id() {
        let a = Pseudonyms::new(b"key one");
        let short = a.of("109999");
        assert_eq!(short, a.of("109999"));
        assert_eq!(short.len(), 14);
        assert!(!short.contains("9999"), "a short id does not show through");
        assert_ne!(short, Pseudonyms::new(b"key two").of("109999"));
        assert_ne!(a.of("100231@school-a.nl"), a.of("100232@school-a.nl"));
    }
}
