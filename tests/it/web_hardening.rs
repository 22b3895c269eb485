//! The web side of the attack surface: open redirects through `target`, RelayState and
//! `post_logout_url` with the tricks known from other SAML proxies, and the headers every
//! answer of the bridge carries.

use crate::common;

use common::*;

/// What a browser would do with a target: WHATWG URL parsing against the app's base URL,
/// which is how `url::Url::join` resolves too. Every trick must either be refused or end on
/// the app's own origin (or an allowlisted one).
fn tricks(port: u16) -> Vec<String> {
    let app = format!("127.0.0.1:{port}");
    [
        "//evil.example/x",
        "/\\evil.example/x",
        "\\\\evil.example/x",
        "\\/evil.example/x",
        "http:evil.example",
        "https:evil.example",
        "https:/evil.example",
        "https:\\\\evil.example",
        " //evil.example",
        "\t//evil.example",
        "\n//evil.example",
        "\u{0}//evil.example",
        "\u{1f}//evil.example",
        "//evil.example\u{0}",
        "/%2F%2Fevil.example",
        "/%5C%5Cevil.example",
        "%2F%2Fevil.example",
        "／／evil.example",
        "https:／／evil.example",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "/../../../evil.example",
        "/numo/../../evil.example",
        "https://evil.example/",
        "HTTPS://EVIL.EXAMPLE/",
        "//evil.example@127.0.0.1/",
    ]
    .iter()
    .map(|t| t.to_string())
    .chain([
        format!("http://{app}@evil.example/"),
        format!("http://user:pass@{app}/numo/"),
        format!("http://{app}.evil.example/"),
        format!("http://evil.example/{app}"),
        format!("http://evil.example?{app}"),
        format!("http://evil.example#{app}"),
        format!("http://127.0.0.1:{}/", port.wrapping_add(1)),
        format!("https://{app}/numo/"),
    ])
    .collect()
}

fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The `target` the hand-off form carries, if any.
fn handed_off_target(body: &str) -> Option<String> {
    let marker = r#"name="target" value=""#;
    let start = body.find(marker)? + marker.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].replace("&amp;", "&"))
}

fn port_of(bridge: &Bridge) -> u16 {
    bridge
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

#[tokio::test]
async fn login_targets_are_refused_or_stay_on_the_apps_origin() {
    let bridge = Bridge::start().await;
    let port = port_of(&bridge);
    let app_origin = url::Url::parse(&bridge.base).expect("base").origin();
    let client = client();
    let mut refused = 0;
    for trick in tricks(port) {
        let url = format!("{}/numo/saml2/kennisnet/login?target={}", bridge.base, encode(&trick));
        let resp = client.get(url).send().await.expect("login");
        if resp.status() == 400 {
            assert!(
                resp.headers().get("set-cookie").is_none(),
                "no login state for {trick:?}"
            );
            assert!(resp
                .text()
                .await
                .expect("body")
                .contains("<code>target_not_allowed</code>"));
            refused += 1;
            continue;
        }
        // Accepted: then the whole login must hand off a target on the app's own origin.
        assert_eq!(resp.status(), 302, "{trick:?}");
        let login = start_login(&client, &bridge, "numo", Some(&trick)).await;
        let xml = bridge
            .idp
            .response(&bridge.spec("numo", Some(&login.request_id)))
            .expect("sign");
        let outcome = post_acs(&client, &bridge, "numo", &xml, Some(&login.relay_state)).await;
        assert_eq!(outcome.status, 200, "{trick:?}: {}", outcome.body);
        let target = handed_off_target(&outcome.body).expect("target handed off");
        let parsed = url::Url::parse(&target).expect("absolute target");
        assert_eq!(parsed.origin(), app_origin, "{trick:?} ended on {target}");
        assert!(parsed.username().is_empty() && parsed.password().is_none(), "{target}");
    }
    eprintln!("{refused} tricks refused outright, the rest kept on the app's origin");
    assert!(refused >= 25, "most tricks are refused outright ({refused})");
}

#[tokio::test]
async fn an_unsolicited_relay_state_outside_the_allowlist_is_dropped() {
    let bridge = Bridge::start().await;
    let port = port_of(&bridge);
    let client = client();
    let allowed = [
        url::Url::parse("https://portal.example.nl").expect("url").origin(),
        url::Url::parse(&bridge.base).expect("base").origin(),
    ];
    for trick in tricks(port)
        .into_iter()
        .chain(["https://portal.example.nl.evil.example/".to_string()])
    {
        let spec = entree_bridge::demo::idp::ResponseSpec::new(&bridge.sp_entity_id("open"), &bridge.acs("open"), None)
            .attribute("eckId", &["https://ketenid.nl/201703/0123abcd"])
            .attribute("nlEduPersonHomeOrganizationId", &["11ZZ"]);
        let xml = bridge.idp.response(&spec).expect("sign");
        let outcome = post_acs(&client, &bridge, "open", &xml, Some(&trick)).await;
        assert_eq!(outcome.status, 200, "{trick:?}: {}", outcome.body);
        assert!(!outcome.body.contains("evil.example"), "{trick:?} reached the page");
        if let Some(target) = handed_off_target(&outcome.body) {
            let origin = url::Url::parse(&target).expect("absolute").origin();
            assert!(allowed.contains(&origin), "{trick:?} handed off as {target}");
        }
    }
}

#[test]
fn post_logout_urls_outside_the_allowed_origins_are_config_errors() {
    let (dir, _idp, _cert) = prepare_dir();
    // An admin's typo is no attack, but the same tricks must not slip through: every one of
    // them is refused, naming the key.
    for trick in tricks(8080) {
        let config = config_text(8080, "").replace(
            "[apps.numo.tenants]",
            &format!("post_logout_url = {}\n[apps.numo.tenants]", toml_string(&trick)),
        );
        let path = dir.path().join("bridge.toml");
        std::fs::write(&path, config).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{trick:?} must be refused: {stdout}");
        assert!(stdout.contains("apps.numo.post_logout_url"), "{trick:?}: {stdout}");
    }
}

fn toml_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Every answer the bridge makes itself: health, metrics, keys, metadata, a login redirect,
/// an error page and a hand-off page.
#[tokio::test]
async fn every_answer_of_the_bridge_carries_the_page_headers() {
    let bridge = Bridge::start().await;
    let client = client();
    let (handoff, _) = complete_login(&client, &bridge, "numo", |s| s).await;
    assert_eq!(handoff.status, 200);
    let mut answers = Vec::new();
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/.well-known/jwks.json",
        "/numo/saml2/kennisnet/metadata",
        "/numo/saml2/kennisnet/login",
        "/numo/saml2/kennisnet/nothing-here",
        "/no-such-app",
    ] {
        answers.push((
            path,
            client.get(format!("{}{path}", bridge.base)).send().await.expect("get"),
        ));
    }
    let form = [("SAMLResponse", "bm90IHhtbA==")];
    answers.push((
        "acs",
        client.post(bridge.acs("numo")).form(&form).send().await.expect("acs"),
    ));
    for (path, resp) in &answers {
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().expect("csp");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain http: {path}"
        );
    }
}

#[tokio::test]
async fn hsts_is_sent_when_the_bridge_is_public_over_https() {
    let bridge = Bridge::start_edited(
        |_| {},
        |config| {
            config.replacen(
                "public_base_url = \"http://127.0.0.1:",
                "public_base_url = \"https://127.0.0.1:",
                1,
            )
        },
    )
    .await;
    let resp = client()
        .get(format!("{}/healthz", bridge.base))
        .send()
        .await
        .expect("get");
    assert_eq!(resp.headers()["strict-transport-security"], "max-age=31536000");
}

/// Sends raw bytes on a fresh connection and returns what came back before the server closed
/// it or `wait` passed.
async fn raw_exchange(base: &str, request: &[u8], wait: std::time::Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, tcp.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).to_string()
}

async fn still_serving(bridge: &Bridge) {
    let resp = client()
        .get(format!("{}/healthz", bridge.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(resp.status(), 200, "the server stays up");
}

#[tokio::test]
async fn oversized_headers_get_431_quickly_and_the_server_stays_up() {
    let bridge = Bridge::start().await;
    let started = std::time::Instant::now();
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let answer = raw_exchange(&bridge.base, request.as_bytes(), std::time::Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        answer.lines().next().unwrap_or("")
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    still_serving(&bridge).await;
}

#[tokio::test]
async fn a_client_dribbling_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bridge = Bridge::start().await;
    let addr = bridge.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    // One header line every second, never the blank line that ends them (slowloris).
    let closed_after = loop {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(std::time::Duration::from_secs(1), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break started.elapsed(),
            Ok(Ok(_)) => break started.elapsed(),
            Err(_) => {}
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            panic!("the connection is still open after 30 s");
        }
        if tcp.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break started.elapsed();
        }
    };
    let limit = entree_bridge::http::HEADER_READ_TIMEOUT;
    assert!(
        closed_after >= limit - std::time::Duration::from_secs(1)
            && closed_after < limit + std::time::Duration::from_secs(5),
        "closed after {closed_after:?}"
    );
    still_serving(&bridge).await;
}

#[tokio::test]
async fn an_inflate_bomb_at_the_sls_stops_at_the_bound() {
    use entree_bridge::saml::redirect::{self, Kind};
    let bridge = Bridge::start().await;
    let sls = format!("{}/numo/saml2/kennisnet/sls", bridge.base);
    // 16 MiB of XML that deflates to some 16 KiB: signed by the IdP itself, so only the bound
    // on inflating can stop it.
    let bomb = format!("<samlp:LogoutRequest{}", " ".repeat(16 * 1024 * 1024));
    let url = redirect::build_url(&sls, Kind::Request, &bomb, "", Some(&bridge.idp.key)).expect("url");
    assert!(url.len() < 32 * 1024, "the query fits the query limit: {}", url.len());
    let started = std::time::Instant::now();
    let resp = client().get(&url).send().await.expect("sls");
    assert_eq!(resp.status(), 400);
    assert!(resp
        .text()
        .await
        .expect("body")
        .contains("<code>redirect_decode_failed</code>"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    still_serving(&bridge).await;
}

#[tokio::test]
async fn deep_wide_and_long_responses_are_refused_quickly() {
    let bridge = Bridge::start().await;
    let client = client();
    // 50,000 levels deep is refused before it is parsed (the body bound); 9,000 deep fits the size and
    // node bounds and is refused by the depth bound. Both in milliseconds.
    for (depth, code) in [(50_000, "acs_bad_request"), (9_000, "xml_too_deep")] {
        let deep = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let started = std::time::Instant::now();
        let outcome = post_acs(&client, &bridge, "open", &deep, None).await;
        outcome.assert_rejected(400, code);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    // A signed response with 600 attribute values, and one with a 5,000-character value.
    let many: Vec<String> = (0..600).map(|i| format!("v{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let long = "x".repeat(5_000);
    for (values, code) in [
        (many, "attributes_too_many"),
        (vec![long.as_str()], "attribute_value_too_long"),
    ] {
        let spec = entree_bridge::demo::idp::ResponseSpec::new(&bridge.sp_entity_id("open"), &bridge.acs("open"), None)
            .attribute("eckId", &["https://ketenid.nl/201703/0123abcd"])
            .attribute("nlEduPersonHomeOrganizationId", &["11ZZ"])
            .attribute("mail", &values);
        let xml = bridge.idp.response(&spec).expect("sign");
        let assertion_id = spec.assertion_id.clone();
        post_acs(&client, &bridge, "open", &xml, None)
            .await
            .assert_rejected(400, code);
        assert!(bridge.assertion_unseen(&assertion_id).await, "{code}: nothing stored");
    }
    still_serving(&bridge).await;
}

#[tokio::test]
async fn a_flood_from_one_address_gets_429_and_starts_nothing() {
    let bridge = Bridge::start_with("[server.rate_limit]\nper_minute = 60\nburst = 3\nexempt_loopback = false\n").await;
    let client = client();
    for _ in 0..3 {
        start_login(&client, &bridge, "numo", None).await;
    }
    for route in ["numo/saml2/kennisnet/login", "open/saml2/kennisnet/login"] {
        let resp = client
            .get(format!("{}/{route}", bridge.base))
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), 429, "{route}");
        assert!(resp.headers().get("set-cookie").is_none(), "no login state");
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .expect("retry")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&retry), "{retry}");
        let body = resp.text().await.expect("body");
        assert!(
            body.contains("<code>rate_limited</code>") && body.contains("Even geduld"),
            "{body}"
        );
    }
    let acs = post_acs(&client, &bridge, "open", "<x/>", None).await;
    acs.assert_rejected(429, "rate_limited");
    // What makes the bridge do no work is not limited.
    for path in ["/healthz", "/numo/saml2/kennisnet/metadata"] {
        let resp = client.get(format!("{}{path}", bridge.base)).send().await.expect("get");
        assert_eq!(resp.status(), 200, "{path}");
    }
    let metrics = client
        .get(format!("{}/metrics", bridge.base))
        .send()
        .await
        .expect("metrics");
    assert!(metrics
        .text()
        .await
        .expect("text")
        .contains(r#"entree_bridge_logins_total{app="open",result="rejected",error="rate_limited"} 1"#));
}

#[tokio::test]
async fn loopback_clients_are_not_limited_by_default() {
    let bridge = Bridge::start_with("[server.rate_limit]\nper_minute = 1\nburst = 1\n").await;
    let client = client();
    for _ in 0..10 {
        start_login(&client, &bridge, "numo", None).await;
    }
}

#[test]
fn secrets_in_files_others_can_read_draw_a_warning_and_never_show() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _idp, _cert) = prepare_dir();
    let secret = "a-link-secret-of-at-least-32-characters!";
    // Linking on the open app, its secret in the config file itself.
    let config = config_text(8080, "").replace(
        "[apps.open.person]\nattribute = \"eckId\"",
        &format!("[apps.open.person]\nattribute = \"eckId\"\nlinking = true\nlink_url = \"https://open.example.nl/link\"\nlink_secret = \"{secret}\""),
    );
    let path = dir.path().join("bridge.toml");
    std::fs::write(&path, &config).expect("write");
    let check = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let chmod = |file: &str, mode: u32| {
        std::fs::set_permissions(dir.path().join(file), std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    chmod("bridge.toml", 0o644);
    chmod("sp.key", 0o640);
    chmod("jwt.pem", 0o600);
    let said = check();
    assert!(
        said.contains("warning: apps.numo.sp_key:") && said.contains("(mode 640)"),
        "{said}"
    );
    assert!(
        said.contains("warning: apps.open.person.link_secret:") && said.contains("bridge.toml"),
        "{said}"
    );
    assert!(
        !said.contains("keys.jwt_signing_key"),
        "an owner-only key draws no warning: {said}"
    );
    assert!(!said.contains(secret), "the secret itself is never printed: {said}");
    chmod("bridge.toml", 0o600);
    chmod("sp.key", 0o600);
    assert!(!check().contains("warning:"));

    // Whoever prints the loaded config (a debug log line, a panic message) sees no secret.
    let settings = entree_bridge::config::load(&path).expect("config");
    let printed = format!("{:?}", settings.apps);
    assert!(printed.contains("redacted") && !printed.contains(secret), "{printed}");
}

/// A response with a made-up signature (no key needed) whose canonical form would be huge or
/// costly: refused within the bounds, quickly, before any digest is compared.
fn canonicalization_bomb(body: &str, outer_namespaces: &str, transform: &str) -> String {
    format!(
        concat!(
            r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" {outer} ID="_r" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">"#,
            r#"<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>"#,
            r#"<saml:Assertion ID="_a" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">{body}"#,
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r##"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_a"><ds:Transforms>"##,
            r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>{transform}</ds:Transforms>"#,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>"#,
            r#"<ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature></saml:Assertion></samlp:Response>"#
        ),
        outer = outer_namespaces,
        body = body,
        transform = transform
    )
}

#[tokio::test]
async fn canonicalization_bombs_are_refused_quickly() {
    let bridge = Bridge::start().await;
    let client = client();
    let exclusive = r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#;
    let inclusive = r#"<ds:Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>"#;
    // The longest namespace URI the pre-scan lets through, and one far beyond it.
    let long_uri = format!(r#"xmlns:p="urn:{}""#, "a".repeat(250));
    let huge_uri = format!(r#"xmlns:p="urn:{}""#, "a".repeat(150_000));
    let many_namespaces: String = (0..6000).map(|i| format!(r#" xmlns:n{i}="u""#)).collect();
    // As long as an attribute value may be (8 KiB): the pre-scan lets it through.
    let prefix_list: Vec<String> = (0..1000).map(|i| format!("n{i}")).collect();
    let long_list = format!(
        r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"><ec:InclusiveNamespaces xmlns:ec="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="{}"/></ds:Transform>"#,
        prefix_list.join(" ")
    );
    let cases = [
        // One outer namespace, rendered again on each of 9,000 elements: ten times the document.
        (
            canonicalization_bomb(&"<p:x/>".repeat(9_000), &long_uri, exclusive),
            "xml_canonical_too_large",
        ),
        // The same with a URI of 150,000 characters: refused before the tree is built.
        (
            canonicalization_bomb(&"<p:x/>".repeat(9_000), &huge_uri, exclusive),
            "xml_value_too_long",
        ),
        // 6,000 namespaces in scope at 3,000 elements: quadratic work in C14N 1.0.
        (
            canonicalization_bomb(&"<c/>".repeat(3_000), &many_namespaces, inclusive),
            "xml_too_many_namespaces",
        ),
        // A PrefixList the sender writes, 1,000 prefixes long.
        (
            canonicalization_bomb(&"<c/>".repeat(3_000), "", &long_list),
            "signature_transform_forbidden",
        ),
    ];
    for (xml, code) in cases {
        let started = std::time::Instant::now();
        post_acs(&client, &bridge, "open", &xml, None)
            .await
            .assert_rejected(400, code);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{code}: {:?}",
            started.elapsed()
        );
    }
    still_serving(&bridge).await;
}

/// The Expectations of the harness's `open` app (unsolicited allowed), for calling the
/// validation directly where a test times it.
fn validate_for_open_app(bridge: &Bridge, xml: &str) -> Result<(), String> {
    use entree_bridge::saml::response::{self, Expectations, Report};
    let app = bridge
        .settings
        .apps
        .iter()
        .find(|a| a.name == "open")
        .expect("open app");
    let idp = app.federation.idp().expect("idp");
    let expectations = Expectations {
        idp_entity_id: &idp.entity_id,
        idp_keys: &idp.signing_keys,
        sp_entity_id: &app.sp_entity_id,
        acs_url: &app.acs_url,
        request_id: None,
        in_response_to_unchecked: false,
        allow_unsolicited: true,
        allow_sha1: false,
        allow_cbc: false,
        clock_skew: std::time::Duration::from_secs(120),
        now: chrono::Utc::now(),
        decryption_keys: &app.decryption_keys,
        limits: entree_bridge::saml::xml::XmlLimits::default(),
    };
    match response::validate(xml, &expectations, &mut Report::disabled()) {
        Ok(_) => Ok(()),
        Err(e) => Err(e.code().to_string()),
    }
}

/// Each shape at about `bytes`, within the response size limit (its head and tail included).
fn shape_of_size(shape: &hostile_shapes::Shape, bytes: usize) -> String {
    let xml = (shape.build)(bytes.saturating_sub(2_048));
    let limit = entree_bridge::saml::xml::XmlLimits::default().max_bytes;
    assert!(xml.len() <= limit, "{}: {} bytes", shape.name, xml.len());
    xml
}

#[tokio::test]
async fn every_hostile_shape_is_refused_and_its_cost_grows_no_faster_than_its_size() {
    let bridge = Bridge::start().await;
    let limit = entree_bridge::saml::xml::XmlLimits::default().max_bytes;
    for shape in hostile_shapes::SHAPES {
        let mut times = Vec::new();
        for fraction in [4, 2, 1] {
            let xml = shape_of_size(shape, limit / fraction);
            // The quickest of three runs: the cost of the input, not of the machine's moment.
            let mut best = std::time::Duration::MAX;
            for _ in 0..3 {
                let started = std::time::Instant::now();
                let refused = validate_for_open_app(&bridge, &xml);
                best = best.min(started.elapsed());
                assert_eq!(refused, Err(shape.code.to_string()), "{} at 1/{fraction}", shape.name);
            }
            times.push(best);
        }
        // Four times the input may cost four times as much; generous slack (and a floor for
        // the sub-millisecond refusals, where timer noise dominates). Quadratic work would be
        // sixteen times, and was seconds to minutes at this size before the pre-scan.
        let floor = std::time::Duration::from_millis(2);
        assert!(
            times[2] <= times[0].max(floor) * 12,
            "{}: 1/4 {:?}, 1/2 {:?}, full {:?}",
            shape.name,
            times[0],
            times[1],
            times[2]
        );
        eprintln!(
            "{}: 1/4 {:?}, 1/2 {:?}, full {:?}",
            shape.name, times[0], times[1], times[2]
        );
    }
}

#[tokio::test]
async fn a_burst_of_hostile_shapes_leaves_other_requests_answering() {
    let bridge = Bridge::start().await;
    let limit = entree_bridge::saml::xml::XmlLimits::default().max_bytes;
    let base = bridge.base.clone();
    // Four of each shape at the size limit, all at once, from as many connections.
    let mut attacks = Vec::new();
    for shape in hostile_shapes::SHAPES {
        let xml = shape_of_size(shape, limit);
        for _ in 0..4 {
            let (xml, acs) = (xml.clone(), bridge.acs("open"));
            attacks.push(tokio::spawn(async move {
                let body = format!(
                    "SAMLResponse={}",
                    encode(&base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        &xml
                    ))
                );
                let resp = client()
                    .post(acs)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .expect("post");
                (resp.status().as_u16(), resp.text().await.unwrap_or_default())
            }));
        }
    }
    // Meanwhile: the health check and a real login, each within a second.
    let started = std::time::Instant::now();
    let health = client().get(format!("{base}/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let started = std::time::Instant::now();
    let client = client();
    let login = start_login(&client, &bridge, "numo", None).await;
    let xml = bridge
        .idp
        .response(&bridge.spec("numo", Some(&login.request_id)))
        .expect("sign");
    let outcome = post_acs(&client, &bridge, "numo", &xml, Some(&login.relay_state)).await;
    assert_eq!(outcome.status, 200, "{}", outcome.body);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // Every attack is refused with its shape's code, or turned away as busy; none logs in.
    let codes: Vec<&str> = hostile_shapes::SHAPES.iter().map(|s| s.code).collect();
    for attack in attacks {
        let (status, body) = attack.await.expect("attack task");
        assert!(
            (status == 400 && codes.iter().any(|c| body.contains(c))) || (status == 503 && body.contains("busy")),
            "{status}: {}",
            &body[..body.len().min(300)]
        );
    }
    still_serving(&bridge).await;
}

// ---- Connection bounds, on the plain and on the TLS listener alike ----

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A connection to the bridge, plain or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How the tests reach a bridge: its address, and the TLS client config when it serves https.
struct Listener {
    bridge: Bridge,
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// The second client address of the tests (the bridge listens on 127.0.0.1; all of 127/8
/// is loopback on Linux).
const OTHER_CLIENT: &str = "127.0.0.2";

impl Listener {
    /// A bridge with `server` lines added to its `[server]` table, https when `tls`.
    async fn start(tls: bool, server: &str) -> Listener {
        let (ca, cert, key) = common::services::ca_and_server_certificate("127.0.0.1");
        let mut server = server.to_string();
        if tls {
            server.push_str("tls_cert = \"tls.crt\"\ntls_key = \"tls.key\"\n");
        }
        let bridge = Bridge::start_edited(
            |dir| {
                std::fs::write(dir.join("tls.crt"), cert.to_pem().expect("pem")).expect("write");
                std::fs::write(dir.join("tls.key"), key.private_key_to_pem_pkcs8().expect("pem")).expect("write");
            },
            |config| config.replacen("[server]\n", &format!("[server]\n{server}"), 1),
        )
        .await;
        let addr: SocketAddr = bridge.base.trim_start_matches("http://").parse().expect("addr");
        let tls = tls.then(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.to_der().expect("der").into()).expect("root");
            let config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .expect("versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            Arc::new(config)
        });
        Listener { bridge, addr, tls }
    }

    /// A TCP connection from `from` (no TLS handshake yet).
    async fn tcp_from(&self, from: &str) -> tokio::net::TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(from.parse::<IpAddr>().expect("ip"), 0))
            .expect("bind");
        socket.connect(self.addr).await.expect("connect")
    }

    /// A connection from `from`, with the TLS handshake done when the bridge speaks https.
    async fn connect_from(&self, from: &str) -> std::io::Result<Box<dyn Stream>> {
        let tcp = self.tcp_from(from).await;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
                let stream = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp),
                )
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "handshake"))??;
                Ok(Box::new(stream))
            }
        }
    }

    /// GET `path` from `from` on a fresh connection: the status line, or why there is none.
    async fn get_from(&self, from: &str, path: &str) -> Result<String, String> {
        let mut stream = self.connect_from(from).await.map_err(|e| format!("connect: {e}"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = Vec::new();
        match tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await {
            Err(_) => return Err("no answer within 5 s".into()),
            Ok(Err(e)) if answer.is_empty() => return Err(format!("read: {e}")),
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&answer).to_string();
        text.lines()
            .next()
            .filter(|l| l.starts_with("HTTP/"))
            .map(str::to_string)
            .ok_or_else(|| format!("no HTTP answer: {text:?}"))
    }

    async fn metric(&self, line_prefix: &str) -> u64 {
        let mut stream = self.connect_from(OTHER_CLIENT).await.expect("connect");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer)
            .lines()
            .find_map(|l| l.strip_prefix(line_prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// Reads until the server closes the connection (or `within` passes): what came, and when.
async fn until_closed(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < within {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some((String::from_utf8_lossy(&answer).to_string(), started.elapsed())),
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    None
}

/// A POST to the ACS whose body comes one byte a second (each byte buys the client 1 ms):
/// answered and closed once the body's grace is spent, not held open for the 20,000 bytes.
async fn a_slow_body_is_cut_off_at_its_deadline(tls: bool) {
    let l = Listener::start(tls, "").await;
    let mut stream = l.connect_from("127.0.0.1").await.expect("connect");
    // The Host with the port: the app is chosen by it.
    let head = format!(
        "POST /open/saml2/kennisnet/acs HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 20000\r\n\r\nSAMLResponse=",
        l.addr
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let started = Instant::now();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b"A").await.is_err() || writer.flush().await.is_err() {
                return;
            }
        }
    });
    let grace = entree_bridge::http::BODY_READ_GRACE;
    let (answer, _) = until_closed(&mut reader, grace + Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("still open {:?} after the body began", grace + Duration::from_secs(10)));
    let took = started.elapsed();
    trickle.abort();
    assert!(
        took >= grace - Duration::from_secs(1) && took < grace + Duration::from_secs(5),
        "closed after {took:?}: {answer:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    assert!(answer.contains("acs_bad_request"), "{answer:?}");
    assert!(
        l.metric("entree_bridge_connection_timeouts_total{phase=\"request_body\"} ")
            .await
            >= 1,
        "counted"
    );
    assert_eq!(l.get_from("127.0.0.1", "/healthz").await, Ok("HTTP/1.1 200 OK".into()));
}

#[tokio::test]
async fn a_slow_body_is_cut_off_at_its_deadline_on_http() {
    a_slow_body_is_cut_off_at_its_deadline(false).await;
}

#[tokio::test]
async fn a_slow_body_is_cut_off_at_its_deadline_on_https() {
    a_slow_body_is_cut_off_at_its_deadline(true).await;
}

/// One address holds its cap of connections (idle, or mid-handshake on TLS: a slot is taken
/// at accept); its next connection is closed unanswered, while another address gets answers
/// and logs in; once one of the held connections closes, the address is served again.
async fn one_address_cannot_hold_more_than_its_connection_cap(tls: bool) {
    let cap = 4;
    let l = Listener::start(tls, &format!("max_connections_per_client = {cap}\n")).await;
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(l.tcp_from("127.0.0.1").await);
    }
    // Give the accept loop the time to take all four.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let refused = l.get_from("127.0.0.1", "/healthz").await;
        assert!(refused.is_err(), "a connection over the cap is answered: {refused:?}");
    }
    assert_eq!(l.get_from(OTHER_CLIENT, "/healthz").await, Ok("HTTP/1.1 200 OK".into()));
    if !tls {
        // A whole login from the other address (the harness's client speaks plain http only).
        let other = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(OTHER_CLIENT.parse::<IpAddr>().ok())
            .build()
            .expect("client");
        let (outcome, _) = complete_login(&other, &l.bridge, "numo", |s| s).await;
        assert_eq!(outcome.status, 200, "{}", outcome.body);
    }
    assert!(
        l.metric("entree_bridge_connections_refused_total{reason=\"per_client\"} ")
            .await
            >= 3,
        "counted"
    );
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match l.get_from("127.0.0.1", "/healthz").await {
            Ok(status) => {
                assert_eq!(status, "HTTP/1.1 200 OK");
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "not served again after a close: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_connection_cap_on_http() {
    one_address_cannot_hold_more_than_its_connection_cap(false).await;
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_connection_cap_on_https() {
    one_address_cannot_hold_more_than_its_connection_cap(true).await;
}

/// On https: a client that never finishes its handshake is closed at the handshake deadline,
/// and one that dribbles its headers after the handshake at the header deadline.
#[tokio::test]
async fn tls_handshakes_and_headers_have_their_deadlines() {
    let l = Listener::start(true, "").await;
    let mut silent = l.tcp_from("127.0.0.1").await;
    let handshake = entree_bridge::http::TLS_HANDSHAKE_TIMEOUT;
    let (_, took) = until_closed(&mut silent, handshake + Duration::from_secs(10))
        .await
        .expect("a silent TLS client is closed");
    assert!(
        took >= handshake - Duration::from_secs(1) && took < handshake + Duration::from_secs(5),
        "closed after {took:?}"
    );
    assert!(
        l.metric("entree_bridge_connection_timeouts_total{phase=\"tls_handshake\"} ")
            .await
            >= 1
    );

    let mut dribbler = l.connect_from("127.0.0.1").await.expect("handshake");
    dribbler
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let limit = entree_bridge::http::HEADER_READ_TIMEOUT;
    let closed_after = loop {
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_secs(1), dribbler.read(&mut buf)).await {
            Ok(_) => break started.elapsed(),
            Err(_) => assert!(started.elapsed() < limit + Duration::from_secs(10), "still open"),
        }
        if dribbler.write_all(b"X-Slow: 1\r\n").await.is_err() {
            break started.elapsed();
        }
    };
    assert!(
        closed_after >= limit - Duration::from_secs(1) && closed_after < limit + Duration::from_secs(5),
        "closed after {closed_after:?}"
    );
    assert_eq!(l.get_from(OTHER_CLIENT, "/healthz").await, Ok("HTTP/1.1 200 OK".into()));
}

/// A client that asks for an answer and never reads it: once the socket buffers are full,
/// the write makes no progress and the connection is closed at the write idle timeout, not
/// held until the process stops. Large answers come from the metrics page, asked for many
/// times on one connection (pipelined) without reading.
#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_closed() {
    // Some 40 MB of answers: more than the socket buffers of both sides hold.
    const ASKED: usize = 10_000;
    let l = Listener::start(false, "").await;
    let stream = l.tcp_from("127.0.0.1").await;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let requests = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(ASKED);
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(requests.as_bytes()).await;
        writer
    });
    let limit = entree_bridge::http::WRITE_IDLE_TIMEOUT;
    // Read nothing until the server should have given up, then see that it has.
    tokio::time::sleep(limit + Duration::from_secs(5)).await;
    let mut sink = Vec::new();
    let drained = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut sink)).await;
    assert!(drained.is_ok(), "the connection is still open");
    // Cut off: far from every answer was sent (had the server waited, all would come).
    let answered = String::from_utf8_lossy(&sink).matches("HTTP/1.1 200").count();
    assert!(
        answered < ASKED,
        "{answered} of {ASKED} answers: the connection was not cut"
    );
    assert!(
        l.metric("entree_bridge_connection_timeouts_total{phase=\"response_write\"} ")
            .await
            >= 1
    );
    drop(writing);
}
