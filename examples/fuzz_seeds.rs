//! Writes the fuzz targets' seed corpus into fuzz/seeds/ (run from the repository root):
//! responses signed by a fixed development IdP key, in each signing layout, as raw XML and
//! as POST values; signed Redirect-binding messages; link responses; the example configs and
//! the demo's Magister file. The fuzzers start from inputs that pass every check and mutate
//! from there.
//!
//!     cargo run --example fuzz_seeds

use std::fs;
use std::path::Path;

use base64::Engine;
use chrono::{DateTime, Utc};
use entree_bridge::demo::idp::{DevIdp, ResponseSpec, SignMode};
use entree_bridge::saml::redirect::{self, Kind};

const SP: &str = "https://sp.example.nl/saml2/kennisnet/metadata";
const ACS: &str = "https://sp.example.nl/saml2/kennisnet/acs";

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let seeds = Path::new("fuzz/seeds");
    for dir in [
        "response_xml",
        "response_post",
        "redirect_binding",
        "link_response",
        "config",
        "magister_import",
    ] {
        fs::create_dir_all(seeds.join(dir))?;
    }
    // One fixed key, so that the committed seeds keep verifying in the fuzz targets.
    let key_path = seeds.join("idp-key.pem");
    let cert_path = seeds.join("idp-cert.pem");
    let idp = if key_path.exists() {
        let key = openssl::pkey::PKey::private_key_from_pem(&fs::read(&key_path)?)?;
        let cert = openssl::x509::X509::from_pem(&fs::read(&cert_path)?)?;
        DevIdp::from_parts("https://idp.example.nl/metadata", key, cert)?
    } else {
        let idp = DevIdp::generate("https://idp.example.nl/metadata")?;
        fs::write(&key_path, idp.key.private_key_to_pem_pkcs8()?)?;
        fs::write(&cert_path, idp.cert.to_pem()?)?;
        idp
    };
    let issued: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-12-01T09:00:00Z")?.with_timezone(&Utc);
    for (name, mode) in [
        ("assertion", SignMode::Assertion),
        ("response", SignMode::Response),
        ("both", SignMode::Both),
        ("unsigned", SignMode::Nothing),
    ] {
        let mut spec = ResponseSpec::new(SP, ACS, None)
            .attribute("nlEduPersonRealId", &["100231@school-a.nl"])
            .attribute("nlEduPersonHomeOrganizationId", &["99XX"])
            .attribute("eduPersonAffiliation", &["student", "member"])
            .attribute("givenName", &["Sanne"]);
        spec.issue_instant = issued;
        spec.not_before = issued - chrono::Duration::seconds(30);
        spec.not_on_or_after = issued + chrono::Duration::minutes(5);
        spec.confirmation_not_on_or_after = issued + chrono::Duration::minutes(5);
        spec.sign = mode;
        let xml = idp.response(&spec)?;
        fs::write(seeds.join(format!("response_xml/{name}.xml")), &xml)?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&xml);
        fs::write(seeds.join(format!("response_post/{name}.txt")), b64)?;
    }
    let logout = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_l1" Version="2.0" IssueInstant="2026-12-01T09:00:00Z" Destination="https://sp.example.nl/saml2/kennisnet/sls"><saml:Issuer>{}</saml:Issuer><saml:NameID>_n1</saml:NameID></samlp:LogoutRequest>"#,
        idp.entity_id
    );
    for (name, kind, key) in [
        ("request_signed", Kind::Request, Some(&idp.key)),
        ("response_signed", Kind::Response, Some(&idp.key)),
        ("request_unsigned", Kind::Request, None),
    ] {
        let url = redirect::build_url("https://sp.example.nl/sls", kind, &logout, "rs-1", key)?;
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        fs::write(seeds.join(format!("redirect_binding/{name}.txt")), query)?;
    }
    let claims = serde_json::json!({
        "aud": "https://bridge.example.nl", "jti": "j1", "sub": "KL-1001", "exp": 1_790_000_600_i64
    });
    let token = entree_bridge::demo::tokens::sign_hs256(b"0123456789abcdef0123456789abcdef", &claims)?;
    fs::write(seeds.join("link_response/hs256.txt"), token)?;
    for file in ["entree-bridge.toml", "examples/numo.toml", "examples/intergrip.toml"] {
        let name = file.replace('/', "-");
        fs::copy(Path::new("config").join(file), seeds.join("config").join(name))?;
    }
    fs::copy(
        "config/demo-magister.csv",
        seeds.join("magister_import/demo-magister.csv"),
    )?;
    fs::write(
        seeds.join("magister_import/csv.csv"),
        "federated_id,person_code\n100231@school-a.nl,100231\n\"a,b\",\"c\"\"d\"\n",
    )?;
    println!("seeds written to {}", seeds.display());
    Ok(())
}
