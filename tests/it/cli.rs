//! The command line: `check-config` and `verify-response`, run as the real binary.

use crate::common;

use common::process::{bridge_cmd, run};
use common::*;
use entree_bridge::demo::idp::ResponseSpec;
use std::process::Command;

#[test]
fn check_config_summarises_a_good_config() {
    let (dir, _idp, _) = prepare_dir();
    let path = dir.path().join("bridge.toml");
    std::fs::write(&path, config_text(8080, "")).expect("write");
    let (code, out, err) = run(bridge_cmd().args(["check-config", "--config"]).arg(&path));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("config OK"));
    assert!(out.contains("app numo: http://127.0.0.1:8080/numo"));
    assert!(out.contains(IDP_ENTITY_ID));
}

/// A fresh clone's default config is the demo's: check-config makes its files as `demo`
/// does and passes, instead of a list of files nobody has made yet.
#[test]
fn check_config_passes_on_a_fresh_clones_demo_config() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("config");
    std::fs::create_dir(&config).expect("mkdir");
    let path = config.join("entree-bridge.toml");
    std::fs::write(&path, entree_bridge::demo::DEMO_CONFIG).expect("write");
    let (code, out, err) = run(bridge_cmd().args(["check-config", "--config"]).arg(&path));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("is the demo's config") && out.contains("config OK"),
        "{out}"
    );
    assert!(dir.path().join("data/demo/idp-metadata.xml").exists());
    // Another config is only checked: nothing is made next to it.
    let other = config.join("other.toml");
    std::fs::write(
        &other,
        entree_bridge::demo::DEMO_CONFIG.replacen("# entree-bridge demo", "# mine", 1),
    )
    .expect("write");
    std::fs::remove_dir_all(dir.path().join("data")).expect("rm");
    let (code, _, err) = run(bridge_cmd().args(["check-config", "--config"]).arg(&other));
    assert_eq!(code, 1);
    assert!(!dir.path().join("data").exists());
    // The federation is configured, only its file is missing: said as such, not "no [federations.kennisnet]".
    assert!(
        err.contains("apps.numo.federation: [federations.kennisnet] has problems of its own"),
        "{err}"
    );
    assert!(!err.contains("no [federations.kennisnet] is configured"), "{err}");
}

#[test]
fn check_config_lists_every_problem_by_key_and_file() {
    let (dir, _idp, _) = prepare_dir();
    let path = dir.path().join("bridge.toml");
    let text = config_text(8080, "")
        .replace("schools = [\"*\"]", "schools = [\"*\"]\ncolour = \"blue\"")
        .replace("pattern = \"^(?P<code>[^@]+)@\"", "pattern = \"^([^@]+\"")
        .replace(
            "metadata = \"idp-metadata.xml\"",
            "metadata = \"idp-metadata.xml\"\nclock_skew = \"soon\"",
        )
        .replace(
            "sp_key = \"sp.key\"\nsp_cert = \"sp.crt\"\nschools = [\"99XX\"",
            "sp_key = \"missing.key\"\nsp_cert = \"sp.crt\"\nschools = [\"99XX\"",
        )
        + "\n[extras]\nx = 1\n";
    std::fs::write(&path, text).expect("write");
    let (code, _, err) = run(bridge_cmd().args(["check-config", "--config"]).arg(&path));
    assert_eq!(code, 1);
    let file = path.display().to_string();
    for key in [
        "apps.open.colour: unknown key",
        "apps.numo.person.pattern: not a valid regular expression",
        "federations.kennisnet.clock_skew",
        "apps.numo.sp_key: cannot read",
        "extras: unknown section",
    ] {
        assert!(err.contains(key), "{key:?} missing from:\n{err}");
    }
    assert!(err.contains(&format!("{file}:")), "problems name the file: {err}");
    // Line numbers point at the key.
    let pattern_line = std::fs::read_to_string(&path)
        .expect("read")
        .lines()
        .position(|l| l.starts_with("pattern"))
        .expect("line")
        + 1;
    assert!(
        err.contains(&format!("{file}:{pattern_line}: apps.numo.person.pattern")),
        "{err}"
    );
}

#[test]
fn redis_sessions_are_checked_key_by_key_and_passwords_never_shown() {
    let (dir, _idp, _) = prepare_dir();
    let path = dir.path().join("bridge.toml");
    let check = |sessions: &str| {
        std::fs::write(&path, config_text(8080, sessions)).expect("write");
        run(bridge_cmd().args(["check-config", "--config"]).arg(&path))
    };
    let (code, _, err) = check(
        "[sessions]\nstore = \"redis\"\nredis_url = \"http://127.0.0.1:6379\"\nredis_prefix = \"has space\"\n\
         timeout = \"soon\"\nlocal_cache = \"5m\"\n[links]\ntimeout = \"never\"\n",
    );
    assert_eq!(code, 1);
    for key in [
        "sessions.redis_url: http:// is not redis:// or rediss://",
        "sessions.redis_prefix: must be non-empty",
        "sessions.timeout: \"soon\" is not a duration",
        "sessions.local_cache: at most 1m",
        "links.timeout: \"never\" is not a duration",
    ] {
        assert!(err.contains(key), "{key:?} in:\n{err}");
    }
    let (code, _, err) = check(
        "[sessions]\nstore = \"redis\"\nredis_cluster = [\"redis://a:1\", \"rediss://b:2\"]\nredis_ca = \"nope.pem\"\n",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("sessions.redis_cluster: mixes redis:// and rediss://"),
        "{err}"
    );
    let (code, _, err) = check("[sessions]\nstore = \"rediss://x\"\n");
    assert_eq!(code, 1);
    assert!(
        err.contains("sessions.store: \"rediss://x\" is not one of \"memory\", \"redis\""),
        "{err}"
    );
    let (code, _, err) =
        check("[sessions]\nstore = \"redis\"\nredis_url = \"rediss://127.0.0.1:6380\"\nredis_ca = \"nope.pem\"\n");
    assert_eq!(code, 1);
    assert!(err.contains("sessions.redis_ca: cannot read"), "{err}");

    // A good Redis config: the summary names it, without the password in the URL.
    let (code, out, err) = check(
        "[sessions]\nstore = \"redis\"\nredis_url = \"redis://bridge:s3cret-pw@10.0.0.5:6379/2\"\nlocal_cache = \"2s\"\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("sessions redis redis://bridge:***@10.0.0.5:6379/2"),
        "{out}"
    );
    assert!(!out.contains("s3cret-pw") && !err.contains("s3cret-pw"));
}

#[test]
fn linking_needs_its_url_and_a_long_enough_secret() {
    let (dir, _idp, _) = prepare_dir();
    let path = dir.path().join("bridge.toml");
    let text = config_text(8080, "").replace(
        "[apps.open.person]\nattribute = \"eckId\"",
        "[apps.open.person]\nattribute = \"eckId\"\nlinking = true\nlink_secret = \"short\"",
    ) + "\n[links]\nstore = \"postgres\"\n";
    std::fs::write(&path, text).expect("write");
    let (code, _, err) = run(bridge_cmd().args(["check-config", "--config"]).arg(&path));
    assert_eq!(code, 1);
    for key in [
        "apps.open.person.link_url: required",
        "apps.open.person.link_secret: must be at least 32",
        "links.postgres_url: required",
    ] {
        assert!(err.contains(key), "{key:?} in:\n{err}");
    }
}

#[test]
fn environment_variables_override_config_keys() {
    let (dir, _idp, _) = prepare_dir();
    let path = dir.path().join("bridge.toml");
    std::fs::write(&path, config_text(8080, "")).expect("write");
    let (code, _, err) = run(bridge_cmd()
        .args(["check-config", "--config"])
        .arg(&path)
        .env("ENTREE_BRIDGE_SERVER__LISTEN", "not-an-address"));
    assert_eq!(code, 1);
    assert!(err.contains("server.listen"), "{err}");
    let (code, out, _) = run(bridge_cmd()
        .args(["check-config", "--config"])
        .arg(&path)
        .env("ENTREE_BRIDGE_SERVER__LISTEN", "127.0.0.1:9999"));
    assert_eq!(code, 0);
    assert!(out.contains("listen 127.0.0.1:9999"));
}

/// The admin's view of check-config: every problem of every app in one run, each key path
/// exactly once, with its file and line, and a suggestion for a typo.
#[test]
fn check_config_reports_typos_once_each_with_a_suggestion_and_keeps_checking_the_app() {
    let (dir, _idp, _) = prepare_dir();
    let path = dir.path().join("bridge.toml");
    let text = config_text(8080, "")
        .replace(
            "callback_url = \"http://127.0.0.1:8080/callback\"",
            "callback_uri = \"http://127.0.0.1:8080/callback\"",
        )
        .replace("pattern = \"^(?P<code>[^@]+)@\"", "pattern = \"^([^@]+\"")
        .replace("public_base_url =", "public_base_uri =")
        .replace(
            "allow_unsolicited = true",
            "allow_unsolicited = true\nschoolz = [\"12AB\"]",
        );
    std::fs::write(&path, &text).expect("write");
    let (code, _, err) = run(bridge_cmd().args(["check-config", "--config"]).arg(&path));
    assert_eq!(code, 1, "{err}");
    let file = path.display().to_string();
    let line_of = |needle: &str| text.lines().position(|l| l.starts_with(needle)).expect("line") + 1;
    for expected in [
        format!(
            "{file}:{}: apps.numo.handoff.callback_uri: unknown key (did you mean `callback_url`?)",
            line_of("callback_uri")
        ),
        format!(
            "{file}:{}: server.public_base_uri: unknown key (did you mean `public_base_url`?)",
            line_of("public_base_uri")
        ),
        format!(
            "{file}:{}: apps.open.schoolz: unknown key (did you mean `schools`?)",
            line_of("schoolz")
        ),
        // The typo in numo's handoff does not hide numo's other problem.
        format!(
            "{file}:{}: apps.numo.person.pattern: not a valid regular expression",
            line_of("pattern")
        ),
    ] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(&expected)),
            "{expected:?} missing from:\n{err}"
        );
    }
    for line in err.lines() {
        for doubled in [
            "apps.numo.handoff.apps",
            "server.public_base_uri.server",
            "apps.open.apps",
        ] {
            assert!(!line.contains(doubled), "a doubled path: {line}");
        }
    }
    assert_eq!(err.matches("callback_uri").count(), 1, "said once:\n{err}");
}

/// A value set by an environment variable is blamed on the variable, not on a line of the
/// file, and a list in one is explained.
#[test]
fn check_config_names_the_environment_variable_and_its_list_syntax() {
    let (dir, _idp, _) = prepare_dir();
    let path = dir.path().join("bridge.toml");
    std::fs::write(&path, config_text(8080, "")).expect("write");
    let (code, _, err) = run(bridge_cmd()
        .args(["check-config", "--config"])
        .arg(&path)
        .env("ENTREE_BRIDGE_APPS__NUMO__SCHOOLS", "99XX"));
    assert_eq!(code, 1, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("apps.numo.schools"))
        .unwrap_or_else(|| panic!("no apps.numo.schools problem in:\n{err}"));
    assert!(
        line.trim_start()
            .starts_with("environment variable ENTREE_BRIDGE_APPS__NUMO__SCHOOLS: apps.numo.schools: expected a list"),
        "{line}"
    );
    assert!(line.contains("'[\"a\", \"b\"]'"), "the syntax is shown: {line}");
    assert!(!line.contains("bridge.toml"), "not blamed on the file: {line}");

    // Written as the message says, it is taken.
    let (code, out, err) = run(bridge_cmd()
        .args(["check-config", "--config"])
        .arg(&path)
        .env("ENTREE_BRIDGE_APPS__NUMO__SCHOOLS", "[\"99XX\", \"45CD\"]"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("schools 99XX,45CD"), "{out}");
}

struct VerifyFixture {
    dir: tempfile::TempDir,
    idp: entree_bridge::demo::idp::DevIdp,
    sp_cert: openssl::x509::X509,
}

const SP: &str = "https://numo.example.nl/saml2/kennisnet/metadata";
const ACS: &str = "https://numo.example.nl/saml2/kennisnet/acs";

impl VerifyFixture {
    fn new() -> Self {
        let (dir, idp, sp_cert) = prepare_dir();
        VerifyFixture { dir, idp, sp_cert }
    }

    fn spec(&self) -> ResponseSpec {
        ResponseSpec::new(SP, ACS, Some("_req1"))
            .attribute("urn:mace:dir:attribute-def:nlEduPersonRealId", &["100231@school-a.nl"])
            .attribute("urn:oid:2.5.4.42", &["Sanne"])
    }

    fn write(&self, name: &str, content: &str) -> std::path::PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write");
        p
    }

    fn verify_cmd(&self) -> Command {
        let mut cmd = bridge_cmd();
        cmd.args([
            "verify-response",
            "--json",
            "--sp-entity-id",
            SP,
            "--acs-url",
            ACS,
            "--idp-metadata",
        ])
        .arg(self.dir.path().join("idp-metadata.xml"));
        cmd
    }

    fn verify(&self, input: &std::path::Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
        let (code, out, err) = run(self.verify_cmd().args(extra).arg(input));
        let json = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {out}\n{err}"));
        (code, json, err)
    }
}

#[test]
fn verify_response_accepts_a_good_response_in_every_input_form() {
    let f = VerifyFixture::new();
    let xml = f.idp.response(&f.spec()).expect("sign");
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &xml);
    let form = format!(
        "SAMLResponse={}&RelayState=x",
        url::form_urlencoded::byte_serialize(b64.as_bytes()).collect::<String>()
    );
    for (name, content) in [
        ("raw.xml", xml.as_str()),
        ("b64.txt", b64.as_str()),
        ("form.txt", form.as_str()),
    ] {
        let (code, json, err) = f.verify(&f.write(name, content), &["--request-id", "_req1"]);
        assert_eq!(code, 0, "{name}: {json} {err}");
        assert_eq!(json["valid"], true);
        assert_eq!(json["error"], serde_json::Value::Null);
        assert_eq!(json["issuer"], IDP_ENTITY_ID);
        // mace and oid spellings arrive under their canonical names.
        assert_eq!(json["attributes"]["nlEduPersonRealId"][0], "100231@school-a.nl");
        assert_eq!(json["attributes"]["givenName"][0], "Sanne");
        let checks = json["checks"].as_array().expect("checks");
        assert!(checks.iter().all(|c| c["ok"] == true));
        assert!(checks.iter().any(|c| c["check"] == "signature_valid"));
        // Without --config --app there is no app, so no identity step.
        assert!(json.get("identity").is_none(), "{json}");
    }
}

#[test]
fn verify_response_explains_a_rejection() {
    let f = VerifyFixture::new();
    let tampered = f.idp.response(&f.spec()).expect("sign").replace("100231@", "666666@");
    let (code, json, _) = f.verify(&f.write("bad.xml", &tampered), &[]);
    assert_eq!(code, 1);
    assert_eq!(json["valid"], false);
    assert_eq!(json["error"]["code"], "signature_invalid");
    let failed: Vec<_> = json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["check"], "signature_valid");
}

#[test]
fn verify_response_checks_in_response_to_and_time_only_when_asked() {
    let f = VerifyFixture::new();
    let path = f.write("r.xml", &f.idp.response(&f.spec()).expect("sign"));
    let (code, _, _) = f.verify(&path, &[]);
    assert_eq!(code, 0, "without --request-id, InResponseTo is not checked");
    let (code, json, _) = f.verify(&path, &["--request-id", "_other"]);
    assert_eq!(
        (code, json["error"]["code"].as_str()),
        (1, Some("in_response_to_mismatch"))
    );
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let (code, json, _) = f.verify(&path, &["--now", &later]);
    assert_eq!(
        (code, json["error"]["code"].as_str()),
        (1, Some("subject_confirmation_expired"))
    );
}

#[test]
fn verify_response_takes_settings_from_a_config() {
    let (dir, idp, _) = prepare_dir();
    let config = dir.path().join("bridge.toml");
    std::fs::write(&config, config_text(8080, "")).expect("write");
    let spec = ResponseSpec::new(
        "http://127.0.0.1:8080/numo/saml2/kennisnet/metadata",
        "http://127.0.0.1:8080/numo/saml2/kennisnet/acs",
        None,
    )
    .attribute("nlEduPersonRealId", &[REAL_ID])
    .attribute("nlEduPersonHomeOrganizationId", &["99XX"]);
    let path = dir.path().join("r.xml");
    std::fs::write(&path, idp.response(&spec).expect("sign")).expect("write");
    // The identity step after a valid response reads the link database: any command that
    // opens it makes it, as `serve` would.
    let (code, out, err) = run(bridge_cmd()
        .args(["schools", "list", "--app", "numo", "--config"])
        .arg(&config));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(bridge_cmd()
        .args(["verify-response", "--config"])
        .arg(&config)
        .args(["--app", "numo"])
        .arg(&path));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("VALID"));
    assert!(
        out.contains("person code:  100231 (rule: apps.numo.person.attribute + pattern)"),
        "{out}"
    );
}

#[test]
fn verify_response_usage_and_io_errors_exit_2() {
    let (code, _, _) = run(bridge_cmd().args(["verify-response", "--json"]));
    assert_eq!(code, 2);
    let f = VerifyFixture::new();
    let (code, out, _) = run(f.verify_cmd().arg(f.dir.path().join("does-not-exist.xml")));
    assert_eq!(code, 2);
    assert!(out.is_empty());
}

/// The example configs in config/examples pass `check-config` once the files they name exist
/// (keys and metadata are made here; the examples themselves stay free of secrets).
#[test]
fn the_example_configs_pass_check_config() {
    use entree_bridge::keys::{self, KeyKind};
    let examples = repo_root().join("config").join("examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).expect("config/examples") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        let (dir, idp, _) = prepare_dir();
        let text = std::fs::read_to_string(&path).expect("read");
        let table: toml::Table = text.parse().expect("valid TOML");
        let put = |rel: &str, what: &str| {
            let target = dir.path().join(rel);
            std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
            match what {
                // An example whose key file names RSA (oidc mode's RS256) gets one.
                "jwt" => {
                    let kind = if rel.contains("rsa") {
                        KeyKind::Rsa2048
                    } else {
                        KeyKind::EcP256
                    };
                    keys::write_private_key(&target, &keys::generate_key(kind).expect("key")).expect("w")
                }
                "metadata" => std::fs::write(&target, idp.metadata("https://engine.entree.example/sso")).expect("w"),
                _ => unreachable!(),
            }
        };
        put(table["keys"]["jwt_signing_key"].as_str().expect("jwt key"), "jwt");
        for fed in table["federations"].as_table().expect("federations").values() {
            put(fed["metadata"].as_str().expect("metadata"), "metadata");
        }
        for app in table["apps"].as_table().expect("apps").values() {
            let key = keys::generate_key(KeyKind::Rsa2048).expect("key");
            let cert = keys::self_signed_certificate(&key, "sp", 30).expect("cert");
            for (field, write_cert) in [("sp_key", false), ("sp_cert", true)] {
                let target = dir.path().join(app[field].as_str().expect("path"));
                std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
                if write_cert {
                    keys::write_certificate(&target, &cert).expect("w");
                } else {
                    keys::write_private_key(&target, &key).expect("w");
                }
            }
        }
        let config = dir.path().join("example.toml");
        std::fs::write(&config, &text).expect("write");
        let (code, out, err) = run(bridge_cmd().args(["check-config", "--config"]).arg(&config));
        assert_eq!(code, 0, "{}: {err}", path.display());
        assert!(out.contains("config OK"), "{out}");
        checked += 1;
    }
    assert!(
        checked >= 3,
        "the Numo-style, Intergrip-style and OpenID Connect examples"
    );
}

// Issue 17: documents the SAML world sends, made by an independent signer (the xmlsec1 CLI),
// read as they mean. Each test names the code the bridge answered before the fix.

/// Every `Z` time of the spec rewritten as the same instant at `offset` (e.g. `-04:30`).
fn with_offset_times(spec: &ResponseSpec, offset: chrono::FixedOffset, text: String) -> String {
    let mut out = text;
    for t in [
        spec.issue_instant,
        spec.not_before,
        spec.not_on_or_after,
        spec.confirmation_not_on_or_after,
    ] {
        let utc = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let shifted = t.with_timezone(&offset).format("%Y-%m-%dT%H:%M:%S%:z").to_string();
        out = out.replace(&utc, &shifted);
    }
    out
}

#[test]
fn verify_response_reads_times_with_a_zone_offset_as_utc() {
    // Before: time_invalid. After: valid, and the offset is applied, not dropped: at -04:30
    // the local clock reads 4.5 hours earlier, so a reader that ignored it would see an
    // expired assertion.
    let f = VerifyFixture::new();
    let spec = f.spec();
    for offset in [
        chrono::FixedOffset::west_opt(4 * 3600 + 1800).expect("offset"),
        chrono::FixedOffset::east_opt(0).expect("offset"),
        chrono::FixedOffset::east_opt(3600).expect("offset"),
    ] {
        let xml = xmlsec1::response(&f.idp, &spec, |a| with_offset_times(&spec, offset, a));
        let xml = with_offset_times(&spec, offset, xml);
        assert!(!xml.contains(&spec.not_on_or_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
        let path = f.write("offset.xml", &xml);
        let (code, json, err) = f.verify(&path, &["--request-id", "_req1"]);
        assert_eq!(code, 0, "{offset}: {json} {err}");
        // One second past NotOnOrAfter (5 min) plus the skew (2 min), in UTC: expired.
        let late = (spec.confirmation_not_on_or_after + chrono::Duration::seconds(121)).to_rfc3339();
        let (code, json, _) = f.verify(&path, &["--request-id", "_req1", "--now", &late]);
        assert_eq!(
            (code, json["error"]["code"].as_str()),
            (1, Some("subject_confirmation_expired")),
            "{offset}"
        );
    }
}

#[test]
fn verify_response_accepts_a_utf8_byte_order_mark() {
    // Before: response_not_base64 (raw XML after a BOM was read as base64). After: valid, as
    // raw XML and as base64 of it.
    let f = VerifyFixture::new();
    let xml = format!("\u{feff}{}", xmlsec1::response(&f.idp, &f.spec(), |a| a));
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &xml);
    for (name, content) in [("bom.xml", xml.as_str()), ("bom.b64", b64.as_str())] {
        let (code, json, err) = f.verify(&f.write(name, content), &["--request-id", "_req1"]);
        assert_eq!(code, 0, "{name}: {json} {err}");
    }
    // Only one, only at the start: a second BOM is not whitespace and stays refused.
    let twice = format!("\u{feff}{xml}");
    let (code, json, _) = f.verify(&f.write("twice.xml", &twice), &["--request-id", "_req1"]);
    assert_eq!(code, 1, "{json}");
}

#[test]
fn verify_response_leaves_in_response_to_unchecked_without_request_id_for_encrypted_assertions_too() {
    // Before: in_response_to_unknown (an encrypted assertion: the ID was looked for in the
    // ciphertext) and in_response_to_mismatch (InResponseTo on the Response only). After:
    // valid without --request-id; with it, required and checked.
    let f = VerifyFixture::new();
    let sp_key = f.dir.path().join("sp.key");
    let sp_key = sp_key.to_str().expect("path");
    let spec = f.spec();
    let encrypted = xmlsec1::encrypted_response(
        &f.idp,
        &spec,
        &f.sp_cert,
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        |a| a,
    );
    assert!(!encrypted.contains("100231@school-a.nl"), "the assertion is encrypted");
    let path = f.write("enc.xml", &encrypted);
    let (code, json, err) = f.verify(&path, &["--sp-key", sp_key]);
    assert_eq!(code, 0, "{json} {err}");
    assert_eq!(json["attributes"]["nlEduPersonRealId"][0], "100231@school-a.nl");
    let (code, _, _) = f.verify(&path, &["--sp-key", sp_key, "--request-id", "_req1"]);
    assert_eq!(code, 0);
    let (code, json, _) = f.verify(&path, &["--sp-key", sp_key, "--request-id", "_other"]);
    assert_eq!(
        (code, json["error"]["code"].as_str()),
        (1, Some("in_response_to_mismatch"))
    );

    // InResponseTo on the Response, none in SubjectConfirmationData.
    let outer_only = xmlsec1::response(&f.idp, &spec, |a| a.replace(r#" InResponseTo="_req1""#, ""));
    let path = f.write("outer.xml", &outer_only);
    let (code, json, err) = f.verify(&path, &[]);
    assert_eq!(code, 0, "{json} {err}");
    let (code, json, _) = f.verify(&path, &["--request-id", "_req1"]);
    assert_eq!(
        (code, json["error"]["code"].as_str()),
        (1, Some("in_response_to_mismatch")),
        "with --request-id the assertion's InResponseTo is required"
    );
}

#[test]
fn verify_response_allows_cbc_in_an_unsigned_response_only_when_asked() {
    // Before: encryption_algorithm_forbidden with no way to allow it. After: the same code by
    // default, its message naming the key; --allow-cbc accepts.
    let f = VerifyFixture::new();
    let sp_key = f.dir.path().join("sp.key");
    let sp_key = sp_key.to_str().expect("path");
    let encrypted = xmlsec1::encrypted_response(
        &f.idp,
        &f.spec(),
        &f.sp_cert,
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        |a| a,
    );
    let path = f.write("cbc.xml", &encrypted);
    let (code, json, _) = f.verify(&path, &["--sp-key", sp_key, "--request-id", "_req1"]);
    assert_eq!(
        (code, json["error"]["code"].as_str()),
        (1, Some("encryption_algorithm_forbidden"))
    );
    let message = json["error"]["message"].as_str().expect("message");
    assert!(message.contains("allow_cbc"), "{message}");
    let (code, json, err) = f.verify(&path, &["--sp-key", sp_key, "--request-id", "_req1", "--allow-cbc"]);
    assert_eq!(code, 0, "{json} {err}");
}

const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

#[test]
fn verify_response_accepts_c14n_11_with_and_without_comments_signed_by_xmlsec1() {
    // Before: signature_transform_forbidden. After: valid, as CanonicalizationMethod and as
    // the Reference transform; with comments, a comment in SignedInfo is signed.
    let f = VerifyFixture::new();
    for c14n in [
        "http://www.w3.org/2006/12/xml-c14n11",
        "http://www.w3.org/2006/12/xml-c14n11#WithComments",
    ] {
        let xml = xmlsec1::response(&f.idp, &f.spec(), |a| {
            a.replace(EXC_C14N, c14n)
                .replacen("<ds:SignedInfo>", "<ds:SignedInfo><!-- signed with comments -->", 1)
        });
        assert!(xml.contains(c14n));
        let path = f.write("c14n11.xml", &xml);
        let (code, json, err) = f.verify(&path, &["--request-id", "_req1"]);
        assert_eq!(code, 0, "{c14n}: {json} {err}");
        let changed = f.write(
            "c14n11-changed.xml",
            &xml.replacen("signed with comments", "changed", 1),
        );
        let (code, json, _) = f.verify(&changed, &["--request-id", "_req1"]);
        let with_comments = c14n.ends_with("#WithComments");
        assert_eq!(code, i32::from(with_comments), "{c14n}: {json}");
        if with_comments {
            assert_eq!(json["error"]["code"], "signature_invalid");
        }
    }
}

#[test]
fn metadata_signed_by_xmlsec1_with_c14n_11_verifies() {
    // Metadata too: the same verification. Before: signature_transform_forbidden.
    let f = VerifyFixture::new();
    let unsigned = entree_bridge::saml::idp_metadata::render_spec(&entree_bridge::saml::idp_metadata::MetadataSpec {
        entity_id: IDP_ENTITY_ID,
        sso_url: "https://idp.test.invalid/sso",
        signing_certs_b64: vec![f.idp.cert_b64.as_str()],
        id: Some("_md"),
        valid_until: Some(chrono::Utc::now() + chrono::Duration::days(1)),
        ..Default::default()
    });
    let template_c14n11 = xmlsec1::sign_root_with(&unsigned, "_md", &f.idp, "http://www.w3.org/2006/12/xml-c14n11");
    assert!(template_c14n11.contains("xml-c14n11"));
    let certs = [samael::crypto::CertificateDer::from(f.idp.cert.to_der().expect("der"))];
    let (idp, _) = entree_bridge::saml::idp_metadata::verify_and_parse(&template_c14n11, &certs, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(idp.entity_id, IDP_ENTITY_ID);
    // A changed entity ID no longer verifies.
    let tampered = template_c14n11.replacen(IDP_ENTITY_ID, "https://evil.example", 1);
    assert!(entree_bridge::saml::idp_metadata::verify_and_parse(&tampered, &certs, None).is_err());
}

#[test]
fn verify_response_accepts_an_ampersand_in_a_namespace_uri_as_xmlsec1_signs_it() {
    // libxml2 digests `&` in a namespace URI as `&#38;`. Before: signature_invalid. After:
    // valid; a tampered value still fails.
    let f = VerifyFixture::new();
    let xml = xmlsec1::response(&f.idp, &f.spec(), |a| {
        a.replacen(
            "<saml:Subject>",
            r#"<saml:Subject xmlns:ext="urn:example:ext?a=1&amp;b=2" ext:note="x">"#,
            1,
        )
    });
    assert!(xml.contains("&#38;"), "xmlsec1 serializes it as libxml2 does: {xml}");
    let path = f.write("amp.xml", &xml);
    let (code, json, err) = f.verify(&path, &["--request-id", "_req1"]);
    assert_eq!(code, 0, "{json} {err}");
    let tampered = f.write("amp-tampered.xml", &xml.replacen("100231@", "666666@", 1));
    let (code, json, _) = f.verify(&tampered, &["--request-id", "_req1"]);
    assert_eq!((code, json["error"]["code"].as_str()), (1, Some("signature_invalid")));
}

/// An oidc app is checked for what a provider needs: each problem names its key.
#[test]
fn check_config_names_each_oidc_problem_by_its_key() {
    let (dir, _idp, _) = prepare_dir();
    let path = dir.path().join("bridge.toml");
    let oidc = |name: &str, base: &str, handoff: &str| {
        format!(
            "[apps.{name}]\nfederation = \"kennisnet\"\nbase_url = \"{base}\"\nsp_key = \"sp.key\"\nsp_cert = \"sp.crt\"\nschools = [\"*\"]\n[apps.{name}.handoff]\nmode = \"oidc\"\n{handoff}\n"
        )
    };
    let extra = [
        // No redirect_uris; a secret that is too short.
        oidc("a", "http://127.0.0.1:8080/a", "client_secret = \"short\""),
        // Plain http off loopback, a fragment, a plain-http back-channel, a short lifetime.
        oidc(
            "b",
            "http://127.0.0.1:8080/b",
            "redirect_uris = [\"http://b.example.nl/cb\", \"https://b.example.nl/cb#x\"]\nbackchannel_logout_uri = \"http://b.example.nl/bc\"\ntoken_lifetime = \"60s\"",
        ),
        // Its SAML routes on another origin than the bridge's; the client_id of `d` too.
        oidc(
            "c",
            "https://c.example.nl",
            "client_id = \"same\"\nredirect_uris = [\"https://c.example.nl/cb\"]",
        ),
        oidc(
            "d",
            "http://127.0.0.1:8080/d",
            "client_id = \"same\"\nredirect_uris = [\"https://d.example.nl/cb\"]",
        ),
        // Another app's name as its client_id; a token lifetime over the maximum.
        oidc(
            "e",
            "http://127.0.0.1:8080/e",
            "client_id = \"numo\"\nredirect_uris = [\"https://e.example.nl/cb\"]\ntoken_lifetime = \"1h\"",
        ),
        // Unsolicited logins.
        oidc("f", "http://127.0.0.1:8080/f", "redirect_uris = [\"https://f.example.nl/cb\"]")
            .replace("schools = [\"*\"]", "schools = [\"*\"]\nallow_unsolicited = true"),
    ]
    .concat();
    // jwt mode has no client; the harness's key is EC only (id_tokens need RSA).
    let text = config_text(8080, &extra).replace(
        "callback_url = \"https://open.example.nl/sso/callback\"",
        "callback_url = \"https://open.example.nl/sso/callback\"\nredirect_uris = [\"https://open.example.nl/cb\"]",
    );
    std::fs::write(&path, text).expect("write");
    let (code, _, err) = run(bridge_cmd().args(["check-config", "--config"]).arg(&path));
    assert_eq!(code, 1, "{err}");
    for problem in [
        "apps.a.handoff.redirect_uris: required in oidc mode",
        "apps.a.handoff.client_secret: is 5 characters; at least 32",
        "apps.b.handoff.redirect_uris: \"http://b.example.nl/cb\" is plain http",
        "apps.b.handoff.redirect_uris: \"https://b.example.nl/cb#x\" has a fragment",
        "apps.b.handoff.backchannel_logout_uri: \"http://b.example.nl/bc\" is plain http",
        "apps.b.handoff.token_lifetime: is 1m; in oidc mode at least 2m",
        "apps.c.base_url: an oidc app's SAML routes live on the bridge's own origin (http://127.0.0.1:8080)",
        "apps.d.handoff.client_id: \"same\" is apps.c's client_id too",
        "keys.jwt_signing_key: apps.c uses oidc, whose id_tokens are RS256",
        "apps.open.handoff.redirect_uris: only used in oidc mode",
        "apps.e.handoff.client_id: \"numo\" is the name of apps.numo",
        "apps.e.handoff.token_lifetime: is 1h; in oidc mode at most 15m",
        "apps.f.allow_unsolicited: cannot be used in oidc mode",
    ] {
        assert!(err.contains(problem), "{problem:?} missing from:\n{err}");
    }
    // The issuer with a path: the endpoints are at the root.
    let with_path = std::fs::read_to_string(&path).expect("read").replace(
        "public_base_url = \"http://127.0.0.1:8080\"",
        "public_base_url = \"http://127.0.0.1:8080/bridge\"",
    );
    std::fs::write(&path, with_path).expect("write");
    let (_, _, err) = run(bridge_cmd().args(["check-config", "--config"]).arg(&path));
    assert!(
        err.contains("server.public_base_url: is the OpenID Connect issuer"),
        "{err}"
    );
    // The secret itself is never printed.
    assert!(!err.contains("\"short\""), "{err}");
}

/// `verify-response --config --app`'s identity step (issue 19): beside the harness's `numo`
/// (99XX and 12AB03 in the config, a pattern, jwt mode), the linking app `link` of
/// identity_links, the headers-mode app `proxied` of headers_proxy and the oidc apps, on a
/// link database of the fixture's own. The config runs nothing: its port is a placeholder.
fn identity_apps() -> String {
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    format!(
        "{}\n{}\n{}",
        crate::identity_links::linking_app(),
        crate::headers_proxy::proxied_app(upstream),
        common::oidc::OIDC_APPS
    )
    .replace("{port}", "8080")
}

const REAL_ID: &str = "100231@school-a.nl";

struct IdentityFixture {
    dir: tempfile::TempDir,
    idp: entree_bridge::demo::idp::DevIdp,
    config: std::path::PathBuf,
    /// The fixture's own runtime: the link store's pool lives on it.
    runtime: tokio::runtime::Runtime,
    _database: Option<TestDatabase>,
}

impl IdentityFixture {
    /// A config whose `[links]` is `links_section`, or the harness's for `links` when `None`.
    fn new(links: Links, links_section: Option<&str>) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (dir, idp, _) = prepare_dir();
        common::oidc::write_rsa_key(dir.path());
        let (database, harness_links) = runtime.block_on(links_config(links));
        let extra = format!("{}\n{}", identity_apps(), links_section.unwrap_or(&harness_links));
        let config = dir.path().join("bridge.toml");
        std::fs::write(&config, common::oidc::with_rsa_key(config_text(8080, &extra))).expect("write");
        IdentityFixture {
            dir,
            idp,
            config,
            runtime,
            _database: database,
        }
    }

    /// The link store the config names, opened as `serve` opens it (creating the SQLite file).
    fn links(&self) -> entree_bridge::store::links::LinkStore {
        let settings = entree_bridge::config::load(&self.config).expect("config");
        self.runtime
            .block_on(entree_bridge::store::links::LinkStore::open_target(
                &settings.links,
                std::time::Duration::from_secs(5),
            ))
            .expect("link store")
    }

    fn db<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(work)
    }

    /// A signed response for `app` from a student of `school` with nlEduPersonRealId `real_id`.
    fn response(&self, app: &str, school: &str, real_id: &str) -> std::path::PathBuf {
        let spec = ResponseSpec::new(
            &format!("http://127.0.0.1:8080/{app}/saml2/kennisnet/metadata"),
            &format!("http://127.0.0.1:8080/{app}/saml2/kennisnet/acs"),
            None,
        )
        .attribute("nlEduPersonRealId", &[real_id])
        .attribute("nlEduPersonHomeOrganizationId", &[school])
        .attribute("eduPersonAffiliation", &["student", "member"])
        .attribute("givenName", &["Sanne"]);
        let path = self
            .dir
            .path()
            .join(format!("{app}-{}.xml", entree_bridge::keys::random_token()));
        std::fs::write(&path, self.idp.response(&spec).expect("sign")).expect("write");
        path
    }

    fn verify_text(&self, app: &str, response: &std::path::Path) -> (i32, String, String) {
        run(bridge_cmd()
            .args(["verify-response", "--config"])
            .arg(&self.config)
            .args(["--app", app])
            .arg(response))
    }

    /// The exit code and the `identity` object (the response must be valid).
    fn verify(&self, app: &str, response: &std::path::Path) -> (i32, serde_json::Value) {
        let (code, out, err) = run(bridge_cmd()
            .args(["verify-response", "--json", "--config"])
            .arg(&self.config)
            .args(["--app", app])
            .arg(response));
        let json: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("one JSON object on stdout ({e}): {out}\n{err}"));
        assert_eq!(json["valid"], true, "{json}\n{err}");
        assert_eq!(json["identity"]["read_only"], true, "{json}");
        (code, json["identity"].clone())
    }
}

fn a_stored_link_wins_and_nothing_is_stored(links: Links) {
    let f = IdentityFixture::new(links, None);
    let store = f.links();
    let entry = entree_bridge::store::links::ImportEntry {
        line: 1,
        federated_id: REAL_ID.into(),
        person_code: "777001".into(),
    };
    f.db(store.import("numo", &[entry], false)).expect("import");
    let before = f.db(store.list(Some("numo"), Some(REAL_ID))).expect("list");
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].last_login_at, None, "an imported link has no login yet");

    let response = f.response("numo", "99XX", REAL_ID);
    let (code, identity) = f.verify("numo", &response);
    assert_eq!(code, 0, "{identity}");
    assert_eq!(identity["ok"], true);
    assert_eq!(identity["source"], "link");
    // The link wins over the rule, which would make 100231.
    assert_eq!(identity["person_code"], "777001");
    assert_eq!(identity["school"], "99XX");
    assert_eq!(identity["school_active"], true);
    assert_eq!(identity["activated_by"], "config");
    assert_eq!(identity["tenant"], "ingang-a");
    assert_eq!(identity["mode"], "jwt");
    let claims = &identity["claims"];
    assert_eq!(claims["sub"], "777001");
    assert_eq!(claims["aud"], "numo");
    assert_eq!(claims["iss"], "http://127.0.0.1:8080");
    assert_eq!(claims["school"], "99XX");
    assert_eq!(claims["tenant"], "ingang-a");
    assert_eq!(claims["given_name"], "Sanne");

    let (code, out, err) = f.verify_text("numo", &response);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("identity (read-only; nothing was stored)"), "{out}");
    assert!(out.contains("777001 (stored link)"), "{out}");
    assert!(out.contains("\"sub\": \"777001\""), "{out}");

    // A login would have recorded its time on the link; the check records nothing.
    let after = f.db(store.list(Some("numo"), Some(REAL_ID))).expect("list");
    assert_eq!(after, before);
}

#[test]
fn verify_response_identity_a_stored_link_wins_and_nothing_is_stored() {
    a_stored_link_wins_and_nothing_is_stored(Links::Sqlite);
}

#[test]
fn verify_response_identity_a_stored_link_wins_and_nothing_is_stored_on_postgres() {
    a_stored_link_wins_and_nothing_is_stored(Links::Postgres);
}

#[test]
fn verify_response_identity_shows_what_the_rule_hands_each_mode() {
    let f = IdentityFixture::new(Links::Sqlite, None);
    let _store = f.links();

    // jwt mode: the pattern cuts the code out of nlEduPersonRealId.
    let (code, identity) = f.verify("numo", &f.response("numo", "99XX", REAL_ID));
    assert_eq!(code, 0, "{identity}");
    assert_eq!(identity["source"], "rule");
    assert_eq!(identity["person_code"], "100231");
    assert_eq!(identity["claims"]["sub"], "100231");
    assert_eq!(
        identity["claims"]["affiliation"],
        serde_json::json!(["student", "member"])
    );
    assert_eq!(identity["headers"], serde_json::Value::Null);

    // headers mode: the headers the proxy would send (no pattern: the whole id is the code).
    let (code, identity) = f.verify("proxied", &f.response("proxied", "99XX", REAL_ID));
    assert_eq!(code, 0, "{identity}");
    assert_eq!(identity["source"], "rule");
    assert_eq!(identity["mode"], "headers");
    let headers = &identity["headers"];
    assert_eq!(headers["x-bridge-person-code"], REAL_ID, "{identity}");
    assert_eq!(headers["x-bridge-school"], "99XX");
    assert_eq!(headers["x-bridge-affiliation"], "student,member");
    assert_eq!(headers["x-bridge-tenant"], "ingang-a");
    assert!(headers["x-bridge-token"].is_string(), "{identity}");
    assert_eq!(identity["claims"]["sub"], REAL_ID);
    assert_eq!(identity["claims"]["aud"], "proxied");
    let (_, out, _) = f.verify_text("proxied", &f.response("proxied", "99XX", REAL_ID));
    assert!(out.contains("x-bridge-person-code: 100231@school-a.nl"), "{out}");

    // oidc mode: the id_token's audience is the client_id.
    let (code, identity) = f.verify("portal", &f.response("portal", "99XX", REAL_ID));
    assert_eq!(code, 0, "{identity}");
    assert_eq!(identity["mode"], "oidc");
    assert_eq!(identity["claims"]["aud"], common::oidc::CLIENT_ID);
    assert_eq!(identity["claims"]["sub"], "100231");

    // A federated id the pattern does not match: refused as the ACS refuses it, exit 1.
    let (code, identity) = f.verify("numo", &f.response("numo", "99XX", "no-at-sign"));
    assert_eq!(code, 1, "{identity}");
    assert_eq!(identity["ok"], false);
    assert_eq!(identity["code"], "person_pattern_no_match");
    assert_eq!(identity["person_code"], serde_json::Value::Null);
    assert_eq!(identity["school"], "99XX", "the school fields stay: {identity}");
    let (code, out, _) = f.verify_text("numo", &f.response("numo", "99XX", "no-at-sign"));
    assert_eq!(code, 1);
    assert!(
        out.contains("VALID") && out.contains("REFUSED [person_pattern_no_match]"),
        "{out}"
    );

    // A response that is not valid never reaches the identity step.
    let signed = std::fs::read_to_string(f.response("numo", "99XX", REAL_ID)).expect("read");
    let tampered = f.dir.path().join("tampered.xml");
    std::fs::write(&tampered, signed.replace("100231@", "666666@")).expect("write");
    let (code, out, err) = run(bridge_cmd()
        .args(["verify-response", "--json", "--config"])
        .arg(&f.config)
        .args(["--app", "numo"])
        .arg(&tampered));
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    assert_eq!((code, json["error"]["code"].as_str()), (1, Some("signature_invalid")));
    assert_eq!(json.get("identity"), Some(&serde_json::Value::Null), "{json}");
}

fn a_school_activated_in_the_database_is_active(links: Links) {
    let f = IdentityFixture::new(links, None);
    let store = f.links();
    let response = f.response("numo", "55QQ", REAL_ID);
    let (code, identity) = f.verify("numo", &response);
    assert_eq!(code, 1, "{identity}");
    assert_eq!(identity["ok"], false);
    assert_eq!(identity["code"], "school_not_activated");
    assert_eq!(identity["school"], "55QQ");
    assert_eq!(identity["school_active"], false);
    assert_eq!(identity["person_code"], serde_json::Value::Null);

    let (code, out, err) = run(bridge_cmd()
        .args(["schools", "activate", "--app", "numo", "55QQ", "--config"])
        .arg(&f.config));
    assert_eq!(code, 0, "{out}{err}");
    let (code, identity) = f.verify("numo", &response);
    assert_eq!(code, 0, "{identity}");
    assert_eq!(identity["school_active"], true);
    assert_eq!(identity["activated_by"], "database");
    assert_eq!(identity["source"], "rule");
    assert_eq!(identity["claims"]["school"], "55QQ");
    let (_, out, _) = f.verify_text("numo", &response);
    assert!(out.contains("55QQ (activated: database)"), "{out}");

    // Another app's activation does not count.
    f.db(store.activate_school("portal", "66RR", "test")).expect("activate");
    let (code, identity) = f.verify("numo", &f.response("numo", "66RR", REAL_ID));
    assert_eq!((code, identity["code"].as_str()), (1, Some("school_not_activated")));
}

#[test]
fn verify_response_identity_a_school_activated_in_the_database_is_active() {
    a_school_activated_in_the_database_is_active(Links::Sqlite);
}

#[test]
fn verify_response_identity_a_school_activated_in_the_database_is_active_on_postgres() {
    a_school_activated_in_the_database_is_active(Links::Postgres);
}

#[test]
fn verify_response_identity_reports_linking_for_an_unknown_student_of_a_linking_app() {
    let f = IdentityFixture::new(Links::Sqlite, None);
    let store = f.links();
    let response = f.response("link", "99XX", REAL_ID);
    let (code, identity) = f.verify("link", &response);
    assert_eq!(code, 0, "{identity}");
    assert_eq!(identity["ok"], true);
    assert_eq!(identity["source"], "linking");
    assert_eq!(identity["person_code"], serde_json::Value::Null);
    assert_eq!(identity["claims"], serde_json::Value::Null);
    let (_, out, _) = f.verify_text("link", &response);
    assert!(out.contains("would start linking"), "{out}");
    // Nothing was stored: no pending link became a link.
    assert!(f.db(store.list(Some("link"), None)).expect("list").is_empty());

    // Once linked, the stored link names the person.
    f.db(store.link_once("link", REAL_ID, "L-42", entree_bridge::store::links::LinkSource::Linked))
        .expect("link");
    let (code, identity) = f.verify("link", &response);
    assert_eq!(code, 0, "{identity}");
    assert_eq!(identity["source"], "link");
    assert_eq!(identity["claims"]["sub"], "L-42");
}

#[test]
fn verify_response_identity_says_so_when_the_link_store_cannot_be_read() {
    // No SQLite file yet: the check neither creates one nor guesses the rule's code.
    let f = IdentityFixture::new(Links::Sqlite, None);
    let response = f.response("numo", "99XX", REAL_ID);
    let (code, identity) = f.verify("numo", &response);
    assert_eq!(code, 1, "{identity}");
    assert_eq!(identity["ok"], false);
    assert_eq!(identity["code"], "link_store_unavailable");
    assert_eq!(identity["source"], serde_json::Value::Null);
    assert_eq!(identity["person_code"], serde_json::Value::Null);
    assert_eq!(identity["claims"], serde_json::Value::Null);
    let error = identity["error"].as_str().expect("error");
    assert!(error.contains("the response itself is valid"), "{error}");
    assert!(error.contains("links.sqlite3 does not exist"), "{error}");
    // The config admits 99XX, which is known without the database.
    assert_eq!(identity["school_active"], true);
    assert!(!f.dir.path().join("links.sqlite3").exists(), "no database was made");
    let (code, out, _) = f.verify_text("numo", &response);
    assert_eq!(code, 1);
    assert!(out.contains("CANNOT TELL [link_store_unavailable]"), "{out}");
    assert!(
        !out.contains("100231 ("),
        "no rule-made code as if no link existed: {out}"
    );

    // A PostgreSQL server that does not answer: the same, within links.timeout.
    let f = IdentityFixture::new(
        Links::Sqlite,
        Some("[links]\nstore = \"postgres\"\npostgres_url = \"postgres://postgres@127.0.0.1:1/none\"\ntimeout = \"1s\"\n"),
    );
    let (code, identity) = f.verify("numo", &f.response("numo", "55QQ", REAL_ID));
    assert_eq!(code, 1, "{identity}");
    assert_eq!(identity["code"], "link_store_unavailable");
    assert_eq!(identity["person_code"], serde_json::Value::Null);
    // 55QQ is not in the config, and the database could not say.
    assert_eq!(identity["school_active"], serde_json::Value::Null);
}
