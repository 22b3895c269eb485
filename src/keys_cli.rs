//! `entree-bridge keygen`: a JWT signing key, or (`--sp`) an app's SP key and certificate,
//! each with the advice of where it goes in the config.

use std::path::Path;
use std::process::ExitCode;

use entree_bridge::keys::{self, KeyKind};

/// `keygen --sp`: an SP key and certificate pair for `apps.NAME.sp_key` / `sp_cert`.
pub fn keygen_sp(out: &Path, key_type: Option<&str>, force: bool) -> ExitCode {
    // SAML signing and the decryption of assertions (RSA-OAEP key transport) need RSA.
    if key_type.is_some_and(|t| t != "rsa") {
        eprintln!(
            "entree-bridge keygen --sp: an SP key is RSA (SAML signing and assertion decryption); leave out --type"
        );
        return ExitCode::from(2);
    }
    let cert_path = out.with_extension("crt");
    if let Some(refused) = refuse_to_replace(&[out, &cert_path], force) {
        return refused;
    }
    let name = out.file_stem().and_then(|s| s.to_str()).unwrap_or("entree-bridge-sp");
    let written = keys::generate_key(KeyKind::Rsa2048).and_then(|key| {
        let cert = keys::self_signed_certificate(&key, name, 3650)?;
        keys::write_private_key(out, &key)?;
        keys::write_certificate(&cert_path, &cert)
    });
    match written {
        Ok(()) => {
            println!(
                "wrote {} (RSA 2048) and {} (self-signed, 10 years).\n\
                 For the app NAME, set in [apps.NAME]:\n  sp_key = {:?}\n  sp_cert = {:?}\n\
                 Entree learns the certificate from the app's SP metadata \
                 (https://<app>/saml2/kennisnet/metadata): register or refresh it there.\n\
                 Replacing the key of an app that is live? Make it as sp_key_next / sp_cert_next \
                 first: docs/operations.md, \"Rolling the SP certificate\".",
                out.display(),
                cert_path.display(),
                out.display().to_string(),
                cert_path.display().to_string()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("entree-bridge keygen: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn keygen(out: &Path, key_type: &str, force: bool) -> ExitCode {
    let kind = match key_type {
        "ec" => KeyKind::EcP256,
        "rsa" => KeyKind::Rsa2048,
        other => {
            eprintln!("entree-bridge keygen: --type {other:?} is not ec or rsa");
            return ExitCode::from(2);
        }
    };
    if let Some(refused) = refuse_to_replace(&[out], force) {
        return refused;
    }
    match keys::generate_key(kind).and_then(|k| keys::write_private_key(out, &k)) {
        Ok(()) => {
            println!(
                "wrote {} ({key_type}), a JWT signing key: list it first in [keys] jwt_signing_key to sign \
                 with it (keep the old one listed after it until the apps' tokens have expired). \
                 For an app's SP key and certificate, run `entree-bridge keygen --sp --out keys/NAME-sp.key`.",
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("entree-bridge keygen: {e}");
            ExitCode::from(1)
        }
    }
}

/// Exit 1 when one of `paths` exists and `--force` was not given: a key is never replaced
/// by accident.
fn refuse_to_replace(paths: &[&Path], force: bool) -> Option<ExitCode> {
    let existing = paths.iter().find(|p| p.exists()).filter(|_| !force)?;
    eprintln!(
        "entree-bridge keygen: {} exists; use --force to replace it",
        existing.display()
    );
    Some(ExitCode::from(1))
}
