//! The pysaml2 IdP of the interop tests (tests/interop/pysaml2_idp.py): its venv, its
//! metadata (a fresh key pair per IdP), and its answers to the bridge's AuthnRequests.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{repo_root, Bridge};

pub const PY_IDP: &str = "https://pysaml2-idp.test.invalid/idp";
pub const PY_SSO: &str = "https://pysaml2-idp.test.invalid/sso";

/// The venv's python (tests/interop/setup-venv.sh creates it when missing).
pub fn venv_python() -> PathBuf {
    let setup = repo_root().join("tests/interop/setup-venv.sh");
    let out = Command::new("bash").arg(&setup).output().expect("run setup-venv.sh");
    assert!(
        out.status.success(),
        "the interop venv could not be set up (run tests/interop/setup-venv.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("python path").trim())
}

/// Runs pysaml2_idp.py with `args` and returns its stdout.
pub fn pysaml2(python: &Path, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg(repo_root().join("tests/interop/pysaml2_idp.py"))
        .args(args)
        .output()
        .expect("run pysaml2_idp.py");
    assert!(
        out.status.success(),
        "pysaml2 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// One pysaml2 IdP: its key pair (in a temp dir of its own) and its metadata.
pub struct PyIdp {
    pub python: PathBuf,
    _keys: tempfile::TempDir,
    pub key: String,
    pub cert: String,
    pub metadata: String,
}

impl PyIdp {
    pub fn new() -> PyIdp {
        let python = venv_python();
        let keys = tempfile::tempdir().expect("dir");
        let key = keys.path().join("idp.key").display().to_string();
        let cert = keys.path().join("idp.crt").display().to_string();
        let metadata = pysaml2(
            &python,
            &[
                "metadata",
                "--entity-id",
                PY_IDP,
                "--sso-url",
                PY_SSO,
                "--key",
                &key,
                "--cert",
                &cert,
            ],
        );
        PyIdp {
            python,
            _keys: keys,
            key,
            cert,
            metadata,
        }
    }

    /// The `prepare` hook of a bridge that trusts this IdP: its metadata as the federation's.
    pub fn install(&self, dir: &Path) {
        std::fs::write(dir.join("idp-metadata.xml"), &self.metadata).expect("write metadata")
    }

    /// pysaml2's answer (base64, the SAMLResponse value) to the AuthnRequest `request_id`
    /// of `app`, for the student 100231@school-a.nl of 99XX; `extra_flags` are passed on.
    pub async fn respond(&self, bridge: &Bridge, app: &str, request_id: &str, extra_flags: &[&str]) -> String {
        let sp_metadata = reqwest::Client::new()
            .get(format!("{}/{app}/saml2/kennisnet/metadata", bridge.base))
            .send()
            .await
            .expect("metadata")
            .text()
            .await
            .expect("body");
        let sp_metadata_path = bridge.path(&format!("sp-metadata-{app}.xml"));
        std::fs::write(&sp_metadata_path, sp_metadata).expect("write");
        let (acs, sp) = (bridge.acs(app), bridge.sp_entity_id(app));
        let mut args = vec![
            "respond",
            "--entity-id",
            PY_IDP,
            "--key",
            &self.key,
            "--cert",
            &self.cert,
            "--sp-metadata",
            sp_metadata_path.to_str().expect("path"),
            "--acs-url",
            &acs,
            "--sp-entity-id",
            &sp,
            "--in-response-to",
            request_id,
            "--name-id",
            "pysaml2-subject",
            "--attr",
            "nlEduPersonRealId=100231@school-a.nl",
            "--attr",
            "nlEduPersonHomeOrganizationId=99XX",
            "--attr",
            "eduPersonAffiliation=student",
            "--attr",
            "givenName=Sanne",
        ];
        args.extend_from_slice(extra_flags);
        pysaml2(&self.python, &args).trim().to_string()
    }
}
