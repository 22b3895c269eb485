//! Key material: loading PEM keys and certificates, generating them (`keygen`, the demo),
//! and random identifiers from the OS CSPRNG.

use std::path::Path;

use base64::Engine;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509Builder, X509NameBuilder, X509};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{path} is not a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC)")]
    NotAKey { path: String },
    #[error("{path} is not a PEM X.509 certificate")]
    NotACertificate { path: String },
    #[error("{path}: {what}")]
    Unsupported { path: String, what: String },
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
}

/// The file's permission bits when users other than its owner may read or write it (group
/// or world bits set: reading leaks the secret, writing swaps in one the writer knows);
/// `None` when only the owner can, or when it cannot be looked at.
pub fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o066 != 0).then_some(mode)
}

/// The shortest admin token a token file may hold (a random one from `keygen`-like tools
/// is 43 characters of base64url).
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

/// The admin listener's bearer tokens (`admin.token_file`), each with the name the audit
/// trail records for what it changed. Only digests are kept: a token is compared by its
/// SHA-256 in constant time, so neither its bytes nor its length leak through timing.
#[derive(Clone, Default)]
pub struct AdminTokens {
    tokens: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("AdminTokens").field("names", &names).finish()
    }
}

impl AdminTokens {
    /// The file's text: one token per line, `NAME TOKEN` (or a lone `TOKEN`, named
    /// `admin`); empty lines and `#` comments are skipped. A name is letters, digits, `.`,
    /// `_`, `-` or `@`; names are unique.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut tokens: Vec<(String, [u8; 32])> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, token) = match fields.as_slice() {
                [token] => ("admin", *token),
                [name, token] => (*name, *token),
                _ => return Err(format!("line {}: expected `NAME TOKEN`", n + 1)),
            };
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
            if !name_ok {
                return Err(format!(
                    "line {}: the name {name:?} may use letters, digits, . _ - @ only",
                    n + 1
                ));
            }
            if token.len() < MIN_ADMIN_TOKEN_LEN {
                return Err(format!(
                    "line {}: the token of {name:?} is shorter than {MIN_ADMIN_TOKEN_LEN} characters",
                    n + 1
                ));
            }
            if tokens.iter().any(|(other, _)| other == name) {
                return Err(format!("line {}: the name {name:?} appears twice", n + 1));
            }
            tokens.push((name.to_string(), openssl::sha::sha256(token.as_bytes())));
        }
        if tokens.is_empty() {
            return Err("holds no token".into());
        }
        Ok(AdminTokens { tokens })
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The name of the token `presented` is, if it is one. Every token is compared, in
    /// constant time, whichever matches.
    pub fn name_of(&self, presented: &str) -> Option<&str> {
        self.name_of_digest(&Self::digest(presented))
    }

    /// What a token is kept as (an admin page session keeps this, never the token).
    pub fn digest(token: &str) -> [u8; 32] {
        openssl::sha::sha256(token.as_bytes())
    }

    /// [`name_of`](Self::name_of) for a token's [`digest`](Self::digest): whether a signed-in
    /// session's token is still in the file.
    pub fn name_of_digest(&self, digest: &[u8; 32]) -> Option<&str> {
        let mut found = None;
        for (name, expected) in &self.tokens {
            if openssl::memcmp::eq(expected, digest) && found.is_none() {
                found = Some(name.as_str());
            }
        }
        found
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|(n, _)| n.as_str())
    }
}

pub fn read_private_key(path: &Path) -> Result<PKey<Private>, KeyError> {
    let pem = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    PKey::private_key_from_pem(&pem).map_err(|_| KeyError::NotAKey {
        path: path.display().to_string(),
    })
}

pub fn read_certificate(path: &Path) -> Result<X509, KeyError> {
    let pem = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    X509::from_pem(&pem).map_err(|_| KeyError::NotACertificate {
        path: path.display().to_string(),
    })
}

/// The certificate's DER, base64 without line breaks, as metadata and KeyInfo carry it.
pub fn certificate_b64(cert: &X509) -> Result<String, KeyError> {
    Ok(base64::engine::general_purpose::STANDARD.encode(cert.to_der()?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa2048,
    EcP256,
}

pub fn generate_key(kind: KeyKind) -> Result<PKey<Private>, KeyError> {
    Ok(match kind {
        KeyKind::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?)?,
        KeyKind::EcP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)?
        }
    })
}

/// A self-signed certificate for SAML use (metadata pins the certificate itself, so no CA).
pub fn self_signed_certificate(key: &PKey<Private>, common_name: &str, days: u32) -> Result<X509, KeyError> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    let name = name.build();
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    builder.set_serial_number(&*serial.to_asn1_integer()?)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(key)?;
    builder.set_not_before(&*Asn1Time::days_from_now(0)?)?;
    builder.set_not_after(&*Asn1Time::days_from_now(days)?)?;
    builder.sign(key, MessageDigest::sha256())?;
    Ok(builder.build())
}

/// Writes a private key as PKCS#8 PEM, readable by the owner only.
pub fn write_private_key(path: &Path, key: &PKey<Private>) -> Result<(), KeyError> {
    let pem = key.private_key_to_pem_pkcs8()?;
    write_file(path, &pem, true)
}

pub fn write_certificate(path: &Path, cert: &X509) -> Result<(), KeyError> {
    write_file(path, &cert.to_pem()?, false)
}

pub fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), KeyError> {
    let err = |source| KeyError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    use std::io::Write;
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)
}

/// `n` random bytes from the OS CSPRNG (OpenSSL's RAND_bytes).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // RAND_bytes only fails when the OS entropy source is gone; nothing safe can go on then.
    openssl::rand::rand_bytes(&mut buf).expect("the OS random number generator failed");
    buf
}

/// A 128-bit random token, URL-safe base64 (22 characters).
pub fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// A SAML ID: 160 random bits, hex, starting with `_` so it is a valid NCName.
pub fn random_saml_id() -> String {
    let bytes = random_bytes::<20>();
    let mut id = String::with_capacity(41);
    id.push('_');
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_long_unique_and_ncnames() {
        let a = random_saml_id();
        let b = random_saml_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 41);
        assert!(a.starts_with('_'));
        assert_eq!(random_token().len(), 22);
    }

    #[test]
    fn generated_keys_round_trip_through_pem() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [KeyKind::Rsa2048, KeyKind::EcP256] {
            let key = generate_key(kind).unwrap();
            let path = dir.path().join(format!("{kind:?}.pem"));
            write_private_key(&path, &key).unwrap();
            let back = read_private_key(&path).unwrap();
            assert!(back.public_eq(&key));
            let cert = self_signed_certificate(&key, "test", 10).unwrap();
            write_certificate(&dir.path().join("c.pem"), &cert).unwrap();
            assert!(read_certificate(&dir.path().join("c.pem")).is_ok());
        }
    }
}
