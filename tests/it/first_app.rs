//! From a fresh clone to a first real app (issue 20): `entree-bridge init` run as the real
//! binary, the README's path followed command by command, and an app's branding (logo and
//! accent colour) checked at load and shown on its pages.

use crate::common;

use std::path::Path;

use common::process::{bridge_cmd, run};
use common::*;

/// Stands in for the download of Entree's staging metadata (this machine cannot reach it).
fn place_metadata(dir: &Path) {
    let idp = entree_bridge::demo::idp::DevIdp::generate("https://engine.entree-s.example/authentication/idp/metadata")
        .expect("idp");
    std::fs::write(
        dir.join("metadata/entree-staging.xml"),
        idp.metadata("https://engine.entree-s.example/sso"),
    )
    .expect("metadata");
}

fn init(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(bridge_cmd().arg("init").arg("--dir").arg(dir).args(args))
}

/// The README's path, followed as written: its `init` command (continuation lines joined),
/// the metadata download (a local file stands in), `check-config`.
#[test]
fn the_readme_path_to_a_first_real_app_ends_in_a_checked_config() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    let section = &readme[readme.find("## Your first real app").expect("the section")..];
    let mut lines = section.lines().skip_while(|l| !l.starts_with("$B init"));
    let mut command = String::new();
    for line in lines.by_ref() {
        command.push_str(line.trim_end_matches('\\'));
        command.push(' ');
        if !line.ends_with('\\') {
            break;
        }
    }
    let args: Vec<&str> = command.split_whitespace().skip(2).collect();
    assert!(args.starts_with(&["--dir", "mine"]), "{command}");
    for step in [
        "curl -o mine/metadata/entree-staging.xml https://engine.entree-s.kennisnet.nl/authentication/idp/metadata",
        "check-config --config mine/entree-bridge.toml",
    ] {
        assert!(section.contains(step), "the README says {step:?}");
    }
    let dir = tempfile::tempdir().expect("dir");
    let (code, out, err) = run(bridge_cmd().current_dir(dir.path()).arg("init").args(&args));
    assert_eq!(code, 0, "{out}{err}");
    // Before the metadata is there, init says what is left, with the download.
    assert!(
        out.contains("left to do") && out.contains("curl -o mine/metadata/entree-staging.xml"),
        "{out}"
    );
    // The addresses the admin hands on, and the step no login works without.
    assert!(
        out.contains("elo link (login): https://login.numo.example.nl/saml2/kennisnet/login")
            && out.contains("its SP metadata, for Kennisnet: https://login.numo.example.nl/saml2/kennisnet/metadata")
            && out.contains("schools activate --config mine/entree-bridge.toml --app numo BRIN"),
        "{out}"
    );
    let mine = dir.path().join("mine");
    for file in [
        "entree-bridge.toml",
        "keys/numo-sp.key",
        "keys/numo-sp.crt",
        "keys/jwt-signing.pem",
    ] {
        assert!(mine.join(file).exists(), "{file}");
    }
    place_metadata(&mine);
    let (code, out, err) =
        run(bridge_cmd()
            .current_dir(dir.path())
            .args(["check-config", "--config", "mine/entree-bridge.toml"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("config OK") && out.contains("app numo: https://login.numo.example.nl"),
        "{out}"
    );
    let config = std::fs::read_to_string(mine.join("entree-bridge.toml")).expect("config");
    for expected in [
        "display_name = \"Numo\"",
        "callback_url = \"https://numo.example.nl/sso/callback\"",
        "activation_contact = \"support@numo.example.nl\"",
        "email = \"support@numo.example.nl\"",
        "schools = []",
        "https://engine.entree-s.kennisnet.nl/authentication/idp/metadata",
    ] {
        assert!(config.contains(expected), "{expected:?} in\n{config}");
    }
}

#[test]
fn init_writes_a_checked_config_for_each_hand_off_mode() {
    for (mode, args, expect) in [
        (
            "headers",
            &["--upstream", "http://127.0.0.1:9000"][..],
            "upstream = \"http://127.0.0.1:9000/\"",
        ),
        (
            "oidc",
            &["--redirect-uri", "https://portaal.example.nl/oidc/callback"][..],
            "redirect_uris = [\"https://portaal.example.nl/oidc/callback\"]",
        ),
    ] {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir_all(dir.path().join("metadata")).expect("mkdir");
        place_metadata(dir.path());
        let (code, out, err) = init(
            dir.path(),
            &[
                &[
                    "--app",
                    "portaal",
                    "--mode",
                    mode,
                    "--base-url",
                    "https://bridge.example.nl/portaal",
                ][..],
                args,
            ]
            .concat(),
        );
        // With the metadata in place the check passes at once, and init says to serve.
        assert_eq!(code, 0, "{mode}: {out}{err}");
        assert!(
            out.contains("config OK") && out.contains("serve --config"),
            "{mode}: {out}"
        );
        let config = std::fs::read_to_string(dir.path().join("entree-bridge.toml")).expect("config");
        assert!(config.contains(expect), "{mode}: {config}");
        assert!(config.contains(&format!("mode = \"{mode}\"")), "{mode}");
        let jwt_key = std::fs::read_to_string(dir.path().join("keys/jwt-signing.pem")).expect("key");
        let key = openssl::pkey::PKey::private_key_from_pem(jwt_key.as_bytes()).expect("pem");
        // An oidc app's id_tokens are RS256: its signing key is RSA; the others' EC.
        let expected = match mode {
            "oidc" => openssl::pkey::Id::RSA,
            _ => openssl::pkey::Id::EC,
        };
        assert_eq!(key.id(), expected, "{mode}");
        if mode == "headers" {
            // A proxied app lives at its base URL, path and all: logout lands there.
            assert!(
                config.contains("post_logout_url = \"https://bridge.example.nl/portaal/\""),
                "{config}"
            );
        }
        if mode == "oidc" {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("entree-bridge.toml"))
                .expect("config")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "it holds the client secret: owner-only, {mode:o}");
            assert!(
                config.contains("https://bridge.example.nl/.well-known/openid-configuration"),
                "{config}"
            );
            let secret = out
                .split("client_secret ")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .expect("the secret is printed");
            assert!(secret.len() >= 32 && config.contains(secret), "{out}");
            assert!(
                out.contains("ENTREE_BRIDGE_APPS__PORTAAL__HANDOFF__CLIENT_SECRET"),
                "{out}"
            );
        }
    }
}

#[test]
fn init_replaces_nothing_and_refuses_what_entree_could_not_use() {
    let dir = tempfile::tempdir().expect("dir");
    let jwt = [
        "--app",
        "numo",
        "--base-url",
        "https://login.numo.example.nl",
        "--callback-url",
        "https://numo.example.nl/cb",
    ];
    let (code, _, err) = init(dir.path(), &jwt);
    assert_eq!(code, 0, "{err}");
    let key_before = std::fs::read(dir.path().join("keys/numo-sp.key")).expect("key");
    let (code, _, err) = init(dir.path(), &jwt);
    assert_eq!(code, 1, "a second run refuses");
    assert!(err.contains("exists; nothing was written"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("keys/numo-sp.key")).expect("key"),
        key_before
    );
    let (code, _, err) = init(dir.path(), &[&jwt[..], &["--force"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_ne!(
        std::fs::read(dir.path().join("keys/numo-sp.key")).expect("key"),
        key_before
    );

    // Each refused before anything is written: the jwt app above with one thing changed.
    // `with(flag, value)`: the flag's value replaced, or the flag added.
    let with = |flag: &'static str, value: &'static str| {
        let mut args = jwt.to_vec();
        match args.iter().position(|a| *a == flag) {
            Some(at) => args[at + 1] = value,
            None => args.extend([flag, value]),
        }
        args
    };
    for (args, says) in [
        (with("--app", "Numo"), "--app \"Numo\": use a-z"),
        (
            with("--base-url", "http://a.example.nl"),
            "a login goes only to https addresses",
        ),
        (
            vec!["--app", "numo", "--base-url", "https://a.example.nl"],
            "jwt mode needs --callback-url",
        ),
        (
            with("--upstream", "http://127.0.0.1:9000"),
            "--upstream is for headers mode",
        ),
        (with("--mode", "saml"), "is not jwt, headers or oidc"),
        (
            with("--contact", "the desk"),
            "is neither an email address nor an https URL",
        ),
        // As the config would refuse it: no dot in the domain.
        (
            with("--contact", "help@localhost"),
            "is neither an email address nor an https URL",
        ),
        (with("--display-name", "Numo\n[server]"), "one line of text"),
    ] {
        let fresh = tempfile::tempdir().expect("dir");
        let (code, _, err) = init(fresh.path(), &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{says:?} in {err}");
        assert!(
            !fresh.path().join("entree-bridge.toml").exists(),
            "{args:?}: nothing written"
        );
    }

    // A problem the check finds (here an environment variable that overrides a key) leaves
    // the folder as it was: nothing half-written, so a rerun needs no --force.
    let fresh = tempfile::tempdir().expect("dir");
    let (code, _, err) = run(bridge_cmd()
        .env("ENTREE_BRIDGE_SERVER__LISTEN", "not an address")
        .arg("init")
        .arg("--dir")
        .arg(fresh.path())
        .args(jwt));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("nothing was written") && err.contains("ENTREE_BRIDGE_SERVER__LISTEN"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(fresh.path()).expect("dir").collect();
    assert!(left.is_empty(), "{left:?}");
    // A pasted mailto: link is the address.
    let fresh = tempfile::tempdir().expect("dir");
    let (code, _, err) = init(
        fresh.path(),
        &[&jwt[..], &["--contact", "mailto:help@numo.example.nl"]].concat(),
    );
    assert_eq!(code, 0, "{err}");
    let config = std::fs::read_to_string(fresh.path().join("entree-bridge.toml")).expect("config");
    assert!(
        config.contains("activation_contact = \"help@numo.example.nl\""),
        "{config}"
    );
}

/// A PNG's first bytes: what the bridge knows a PNG by.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

#[test]
fn check_config_refuses_a_pale_accent_and_a_logo_it_cannot_serve() {
    let (dir, _idp, _) = prepare_dir();
    std::fs::write(dir.path().join("big.png"), [PNG, &vec![0u8; 101 * 1024]].concat()).expect("write");
    std::fs::write(dir.path().join("logo.gif"), b"GIF89a\x01\0\x01\0").expect("write");
    for (branding, key, says) in [
        (
            "accent = \"#ffcc00\"",
            "apps.numo.branding.accent",
            "contrast of 1.51:1",
        ),
        ("accent = \"blue\"", "apps.numo.branding.accent", "write it as #rrggbb"),
        ("logo = \"big.png\"", "apps.numo.branding.logo", "at most 100 KiB"),
        (
            "logo = \"logo.gif\"",
            "apps.numo.branding.logo",
            "not a PNG, JPEG, WebP or SVG",
        ),
        ("logo = \"missing.png\"", "apps.numo.branding.logo", "cannot read"),
        ("colour = \"#1a5fb4\"", "apps.numo.branding.colour", "unknown key"),
    ] {
        let path = dir.path().join("bridge.toml");
        std::fs::write(&path, config_text(8080, &format!("[apps.numo.branding]\n{branding}\n"))).expect("write");
        let (code, out, err) = run(bridge_cmd().args(["check-config", "--config"]).arg(&path));
        assert_eq!(code, 1, "{branding}: {out}");
        let line = err
            .lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("{key} in {err}"));
        assert!(line.contains(says), "{says:?} in {line}");
    }
}

/// The sha256 CSP source of each inline `<style>` of a page.
fn style_hashes(page: &str) -> Vec<String> {
    use base64::Engine;
    page.split("<style>")
        .skip(1)
        .filter_map(|s| s.split_once("</style>"))
        .map(|(css, _)| {
            let digest = openssl::sha::sha256(css.as_bytes());
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branded_app_shows_its_logo_and_colour_and_serves_the_logo() {
    let bridge = Bridge::start_custom(
        "[apps.numo.branding]\nlogo = \"numo.png\"\naccent = \"#1A5FB4\"\n",
        |dir| std::fs::write(dir.join("numo.png"), PNG).expect("logo"),
    )
    .await;
    let client = reqwest::Client::new();
    // A page of the app: a GET on its ACS (the back button).
    let page = client
        .get(format!("{}/numo/saml2/kennisnet/acs", bridge.base))
        .header("accept-language", "nl")
        .send()
        .await
        .expect("page");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    let html = page.text().await.expect("html");
    let logo_path = format!("{}/numo/saml2/kennisnet/logo?v=", bridge.base);
    let src_at = html.find("<img src=\"").expect("the logo") + "<img src=\"".len();
    let logo_url = html[src_at..html[src_at..].find('"').expect("src end") + src_at].to_string();
    // Its address carries its version, so a new logo is not a day-old cache after a reload.
    assert!(
        logo_url.starts_with(&logo_path) && logo_url.len() > logo_path.len(),
        "{logo_url}"
    );
    assert!(
        html.contains(&format!("<img src=\"{logo_url}\" alt=\"numo\">")),
        "{html}"
    );
    assert!(html.contains("a{color:#1a5fb4}"), "{html}");
    // The CSP allows exactly the page's styles and the logo's origin, nothing else.
    let hashes = style_hashes(&html);
    assert_eq!(hashes.len(), 2, "the page's style and the app's");
    for hash in &hashes {
        assert!(csp.contains(hash.as_str()), "{hash} in {csp}");
    }
    assert!(csp.contains(&format!("img-src {};", bridge.base)), "{csp}");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");

    let logo = client.get(&logo_url).send().await.expect("logo");
    assert_eq!(logo.status(), 200);
    assert_eq!(logo.headers()["content-type"], "image/png");
    assert_eq!(logo.headers()["x-content-type-options"], "nosniff");
    let etag = logo.headers()["etag"].to_str().expect("etag").to_string();
    assert_eq!(logo.bytes().await.expect("bytes").as_ref(), PNG);
    let again = client
        .get(&logo_url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("logo");
    assert_eq!(again.status(), 304, "revalidated by its ETag");
    // A compressing proxy's weak tag, and `*`, are the same logo (weak comparison).
    for tag in [format!("W/{etag}"), "\"other\", *".to_string()] {
        let weak = client
            .get(&logo_url)
            .header("if-none-match", &tag)
            .send()
            .await
            .expect("logo");
        assert_eq!(weak.status(), 304, "{tag}");
    }
    let other = client
        .get(&logo_url)
        .header("if-none-match", "\"other\"")
        .send()
        .await
        .expect("logo");
    assert_eq!(other.status(), 200, "another tag is another logo");
    // HEAD: the headers alone, for a cache or a monitor.
    let head = client.head(&logo_url).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "image/png");
    assert!(head.bytes().await.expect("body").is_empty());

    // An app without branding: a plain page, a CSP without images, and no logo address.
    let plain = client
        .get(format!("{}/open/saml2/kennisnet/acs", bridge.base))
        .send()
        .await
        .expect("page");
    let csp = plain.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    let html = plain.text().await.expect("html");
    assert!(!html.contains("<img") && !csp.contains("img-src"), "{csp}\n{html}");
    assert_eq!(style_hashes(&html).len(), 1);
    let none = client
        .get(format!("{}/open/saml2/kennisnet/logo", bridge.base))
        .send()
        .await
        .expect("logo");
    assert_eq!(none.status(), 404);
}
