//! IdP metadata from a URL: fetched from a local HTTP server, trusted only when signed by the
//! federation's metadata signing certificate and not expired; a bad copy never replaces a good
//! one, the good one is kept on disk, and once it expires logins fail closed.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::*;
use entree_bridge::demo::idp::DevIdp;
use entree_bridge::saml::idp_metadata::{render_spec, MetadataSpec};

const SSO: &str = "https://idp.test.invalid/sso";

/// What the federation's metadata server answers: a document, or 503.
#[derive(Clone, Default)]
struct Served(Arc<Mutex<Option<String>>>);

impl Served {
    fn set(&self, doc: Option<String>) {
        *self.0.lock().expect("lock") = doc;
    }
}

async fn metadata_server(served: Served) -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/metadata.xml",
        axum::routing::get(move || {
            let served = served.clone();
            async move {
                match served.0.lock().expect("lock").clone() {
                    Some(doc) => (axum::http::StatusCode::OK, doc),
                    None => (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new()),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// The federation operator: signs the metadata it publishes.
struct Operator {
    key: DevIdp,
}

impl Operator {
    /// An aggregate: the IdP's EntityDescriptor (no validUntil of its own) inside an
    /// EntitiesDescriptor that carries validUntil, signed at the root.
    fn publish_aggregate(&self, idp: &DevIdp, sso: &str, valid_for: chrono::Duration) -> String {
        let entity = idp.metadata(sso);
        let entity = entity.split_once("?>").map_or(entity.as_str(), |(_, rest)| rest).trim();
        let until = (Utc::now() + valid_for).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let unsigned = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" \
             xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" ID=\"_aggregate\" validUntil=\"{until}\">{entity}</md:EntitiesDescriptor>\n"
        );
        self.key.sign_metadata(&unsigned, "_aggregate").expect("sign aggregate")
    }

    /// Signed, but without validUntil.
    fn publish_endless(&self, idp: &DevIdp, sso: &str) -> String {
        let unsigned = render_spec(&MetadataSpec {
            entity_id: IDP_ENTITY_ID,
            sso_url: sso,
            signing_certs_b64: vec![idp.cert_b64.as_str()],
            id: Some("_endless"),
            ..MetadataSpec::default()
        });
        self.key.sign_metadata(&unsigned, "_endless").expect("sign")
    }

    fn publish(&self, idps: &[&DevIdp], sso: &str, valid_for: chrono::Duration) -> String {
        let certs: Vec<&str> = idps.iter().map(|i| i.cert_b64.as_str()).collect();
        let unsigned = render_spec(&MetadataSpec {
            entity_id: IDP_ENTITY_ID,
            sso_url: sso,
            signing_certs_b64: certs,
            want_signed_requests: true,
            id: Some("_federation-metadata"),
            valid_until: Some(Utc::now() + valid_for),
            cache_duration: Some("PT1S"),
            ..MetadataSpec::default()
        });
        self.key
            .sign_metadata(&unsigned, "_federation-metadata")
            .expect("sign metadata")
    }
}

/// A bridge whose federation metadata comes from `served`, signed by `operator`, kept at `cache`.
async fn bridge_on(cache: &std::path::Path, served: &Served, operator: &Operator) -> Bridge {
    let addr = metadata_server(served.clone()).await;
    let cert_pem = operator.key.cert.to_pem().expect("pem");
    let cache = cache.display().to_string();
    Bridge::start_edited(
        |dir| std::fs::write(dir.join("federation-signing.pem"), &cert_pem).expect("write"),
        move |config| {
            config.replace(
                "[federations.kennisnet]\nmetadata = \"idp-metadata.xml\"",
                &format!(
                    "[federations.kennisnet]\nmetadata = \"http://{addr}/metadata.xml\"\n\
                     metadata_signing_cert = \"federation-signing.pem\"\nmetadata_cache = \"{cache}\"\nrefresh_interval = \"1s\""
                ),
            )
        },
    )
    .await
}

fn operator() -> Operator {
    Operator {
        key: DevIdp::generate("https://federation.test.invalid").expect("operator"),
    }
}

/// Where a login for `numo` is sent, or the error page's code.
async fn login_goes_to(bridge: &Bridge) -> Result<String, String> {
    let r = client()
        .get(format!("{}/numo/saml2/kennisnet/login", bridge.base))
        .send()
        .await
        .expect("login");
    if r.status() == 302 {
        let location = r.headers()["location"].to_str().expect("location");
        return Ok(location.split('?').next().unwrap_or("").to_string());
    }
    let body = r.text().await.expect("body");
    let code = body
        .split("<code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or("(no code)");
    Err(code.to_string())
}

async fn eventually<T>(within: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn refresh_count(bridge: &Bridge, result: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", bridge.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let prefix = format!("entree_bridge_metadata_refreshes_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_metadata_is_fetched_and_a_bad_copy_never_replaces_a_good_one() {
    let keep = tempfile::tempdir().expect("dir");
    let cache = keep.path().join("metadata-kennisnet.xml");
    let (served, operator) = (Served::default(), operator());
    let bridge = bridge_on(&cache, &served, &operator).await;
    let b = &bridge;

    // Nothing fetched yet (the server answers 503): not ready, logins fail closed.
    assert_eq!(login_goes_to(b).await, Err("metadata_unavailable".into()));
    let ready = reqwest::get(format!("{}/readyz", b.base)).await.expect("readyz");
    assert_eq!(ready.status(), 503);

    // A good copy arrives: logins go to its SSO URL, and it is kept on disk.
    let good = operator.publish(&[&b.idp], SSO, chrono::Duration::hours(1));
    served.set(Some(good.clone()));
    eventually(Duration::from_secs(10), async || login_goes_to(b).await.ok()).await;
    assert_eq!(login_goes_to(b).await, Ok(SSO.to_string()));
    assert_eq!(std::fs::read_to_string(&cache).expect("kept on disk"), good);
    let (outcome, _) = complete_login(&client(), b, "numo", |spec| spec).await;
    assert_eq!(outcome.status, 200, "{}", outcome.body);

    // Tampered after signing (another SSO URL): refused, the good copy serves on.
    for bad in [
        good.replace(SSO, "https://evil.example/sso"),
        operator.publish(&[&b.idp], "https://stale.example/sso", chrono::Duration::seconds(-10)),
        DevIdp::generate("x")
            .expect("k")
            .sign_metadata(
                &render_spec(&MetadataSpec {
                    entity_id: IDP_ENTITY_ID,
                    sso_url: "https://other-signer.example/sso",
                    signing_certs_b64: vec![b.idp.cert_b64.as_str()],
                    id: Some("_m"),
                    ..MetadataSpec::default()
                }),
                "_m",
            )
            .expect("sign"),
        b.idp.metadata("https://unsigned.example/sso"),
        "<md:EntityDescriptor".to_string(),
        // An aggregate whose own validUntil has passed (the entity inside says nothing).
        operator.publish_aggregate(
            &b.idp,
            "https://expired-aggregate.example/sso",
            chrono::Duration::seconds(-5),
        ),
        // No validUntil at all: it would be trusted forever.
        operator.publish_endless(&b.idp, "https://endless.example/sso"),
        // Valid, but ending before the copy in force: an older copy served again.
        operator.publish(&[&b.idp], "https://rollback.example/sso", chrono::Duration::minutes(30)),
    ] {
        let refused_before = refresh_count(b, "error").await;
        served.set(Some(bad));
        eventually(Duration::from_secs(10), async || {
            (refresh_count(b, "error").await > refused_before).then_some(())
        })
        .await;
        assert_eq!(login_goes_to(b).await, Ok(SSO.to_string()), "the good copy serves on");
        assert_eq!(
            std::fs::read_to_string(&cache).expect("kept"),
            good,
            "and stays on disk"
        );
    }

    // The gauge shows when the copy in force ends.
    let metrics = reqwest::get(format!("{}/metrics", b.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let until: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("entree_bridge_metadata_valid_until_seconds{federation=\"kennisnet\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no validUntil gauge in:\n{metrics}"));
    let expected = (Utc::now() + chrono::Duration::hours(1)).timestamp();
    assert!((expected - 120..=expected).contains(&until), "{until} vs {expected}");

    // A valid aggregate (validUntil on the EntitiesDescriptor) is taken.
    served.set(Some(operator.publish_aggregate(
        &b.idp,
        SSO,
        chrono::Duration::hours(2),
    )));
    eventually(Duration::from_secs(10), async || {
        let text = std::fs::read_to_string(&cache).ok()?;
        text.contains("_aggregate").then_some(())
    })
    .await;
    assert_eq!(login_goes_to(b).await, Ok(SSO.to_string()));

    // IdP key rollover: the metadata lists the old and the new signing certificate; responses
    // signed with either are accepted.
    let new_idp = DevIdp::generate(IDP_ENTITY_ID).expect("new key");
    served.set(Some(operator.publish(
        &[&b.idp, &new_idp],
        SSO,
        chrono::Duration::hours(3),
    )));
    eventually(Duration::from_secs(10), async || {
        let c = client();
        let login = start_login(&c, b, "numo", None).await;
        let xml = new_idp
            .response(&b.spec("numo", Some(&login.request_id)))
            .expect("sign");
        let outcome = post_acs(&c, b, "numo", &xml, Some(&login.relay_state)).await;
        (outcome.status == 200).then_some(())
    })
    .await;
    let (outcome, _) = complete_login(&client(), b, "numo", |spec| spec).await;
    assert_eq!(outcome.status, 200, "the old key still works: {}", outcome.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kept_copy_survives_a_restart_and_an_expired_copy_fails_closed() {
    let keep = tempfile::tempdir().expect("dir");
    let cache = keep.path().join("metadata-kennisnet.xml");
    let (served, operator) = (Served::default(), operator());
    let bridge = bridge_on(&cache, &served, &operator).await;
    // A good copy that expires in a few seconds, then the server goes away.
    let short = operator.publish(&[&bridge.idp], SSO, chrono::Duration::seconds(5));
    served.set(Some(short.clone()));
    eventually(Duration::from_secs(10), async || login_goes_to(&bridge).await.ok()).await;
    served.set(None);

    // A restart during the outage: the new instance serves the kept copy from the start.
    let restarted = bridge_on(&cache, &Served::default(), &operator).await;
    assert_eq!(login_goes_to(&restarted).await, Ok(SSO.to_string()));
    drop(restarted);

    // Once the copy's validUntil passes, logins fail closed with a clear page.
    eventually(Duration::from_secs(10), async || {
        (login_goes_to(&bridge).await == Err("metadata_expired".into())).then_some(())
    })
    .await;
    let page = client()
        .get(format!("{}/numo/saml2/kennisnet/login", bridge.base))
        .send()
        .await
        .expect("login");
    assert_eq!(page.status(), 503);
    let ready = reqwest::get(format!("{}/readyz", bridge.base)).await.expect("readyz");
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.expect("body").contains("expired"));
}

/// A metadata source that misbehaves in one way.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// Takes the connection and never answers.
    Hangs,
    /// Answers 200 and then one byte of the body every half second.
    Trickles,
    /// Answers at once with a document of the shapes that are costly to parse: thousands of
    /// namespace declarations on one element and on each of many descendants.
    CostlyDocument,
}

async fn hostile_server(kind: Hostile) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let document = Arc::new(costly_document());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut tcp, _)) = listener.accept().await {
            let document = document.clone();
            match kind {
                Hostile::Hangs => held.push(tcp),
                Hostile::Trickles | Hostile::CostlyDocument => {
                    tokio::spawn(async move {
                        let mut request = [0u8; 4096];
                        let _ = tcp.read(&mut request).await;
                        if matches!(kind, Hostile::CostlyDocument) {
                            let head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
                                document.len()
                            );
                            let _ = tcp.write_all(head.as_bytes()).await;
                            let _ = tcp.write_all(document.as_bytes()).await;
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                        let head =
                            "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 1000000\r\n\r\n<";
                        if tcp.write_all(head.as_bytes()).await.is_err() {
                            return;
                        }
                        loop {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            if tcp.write_all(b" ").await.is_err() {
                                return;
                            }
                        }
                    });
                }
            }
        }
    });
    addr
}

fn costly_document() -> String {
    let root_namespaces: String = (0..1_000).map(|i| format!(r#" xmlns:r{i}="urn:r:{i}""#)).collect();
    let children: String = (0..5_000)
        .map(|i| format!(r#"<md:Extensions xmlns:c{i}="urn:c:{i}" c{i}:a="{i}"/>"#))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"{root_namespaces} entityID="{IDP_ENTITY_ID}">{children}</md:EntityDescriptor>"#
    )
}

/// validUntil of a federation's copy in force, as `/metrics` shows it.
async fn valid_until_of(bridge: &Bridge, federation: &str) -> Option<i64> {
    let text = reqwest::get(format!("{}/metrics", bridge.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let prefix = format!("entree_bridge_metadata_valid_until_seconds{{federation=\"{federation}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

/// One federation's source hangs, trickles or serves a costly document; the other one keeps
/// refreshing on its schedule (1 s) all the while, and the bad one's refreshes end at their
/// deadline (2 s here) and count as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_hostile_metadata_source_never_delays_another_federation() {
    for kind in [Hostile::Hangs, Hostile::Trickles, Hostile::CostlyDocument] {
        let keep = tempfile::tempdir().expect("dir");
        let (served, operator) = (Served::default(), operator());
        let good = metadata_server(served.clone()).await;
        let bad = hostile_server(kind).await;
        let cert_pem = operator.key.cert.to_pem().expect("pem");
        let (cache, other_cache) = (
            keep.path().join("kennisnet.xml").display().to_string(),
            keep.path().join("other.xml").display().to_string(),
        );
        let bridge = Bridge::start_edited(
            |dir| std::fs::write(dir.join("federation-signing.pem"), &cert_pem).expect("write"),
            move |config| {
                config.replace(
                    "[federations.kennisnet]\nmetadata = \"idp-metadata.xml\"",
                    &format!(
                        "[federations.kennisnet]\nmetadata = \"http://{good}/metadata.xml\"\n\
                         metadata_signing_cert = \"federation-signing.pem\"\nmetadata_cache = \"{cache}\"\nrefresh_interval = \"1s\""
                    ),
                ) + &format!(
                    "\n[federations.other]\nmetadata = \"http://{bad}/metadata.xml\"\n\
                     metadata_signing_cert = \"federation-signing.pem\"\nmetadata_cache = \"{other_cache}\"\n\
                     refresh_interval = \"1s\"\nrefresh_timeout = \"2s\"\n"
                )
            },
        )
        .await;
        let b = &bridge;
        let started = Instant::now();
        // Three copies in a row, each with a later validUntil: each is in force within a few
        // seconds of being published, whatever the other source does meanwhile.
        for hours in 1..=3 {
            served.set(Some(operator.publish(&[&b.idp], SSO, chrono::Duration::hours(hours))));
            let expected = (Utc::now() + chrono::Duration::hours(hours)).timestamp();
            let published = Instant::now();
            eventually(Duration::from_secs(6), async || {
                let until = valid_until_of(b, "kennisnet").await?;
                (expected - 120..=expected).contains(&until).then_some(())
            })
            .await;
            eprintln!("{kind:?}: copy {hours} in force after {:?}", published.elapsed());
        }
        assert_eq!(login_goes_to(b).await, Ok(SSO.to_string()), "{kind:?}");
        // The bad source's refreshes end at their deadline and count as failures; it has no
        // copy, so its gauge stays absent.
        let errors = eventually(Duration::from_secs(8), async || {
            let n = refresh_count(b, "error").await;
            (n >= 2).then_some(n)
        })
        .await;
        eprintln!("{kind:?}: {errors} failed refreshes in {:?}", started.elapsed());
        assert_eq!(valid_until_of(b, "other").await, None, "{kind:?}");
        still_healthy(b).await;
    }
}

async fn still_healthy(bridge: &Bridge) {
    let started = Instant::now();
    let resp = reqwest::get(format!("{}/healthz", bridge.base)).await.expect("healthz");
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

/// Issue 17 item 6: metadata without validUntil, signed by the xmlsec1 CLI. Before: refused,
/// and only the log said why (`/readyz`: "not fetched yet"). After: by default still refused,
/// with `/readyz` and the log naming `require_valid_until`; with `require_valid_until = false`
/// accepted on its signature, with a warning at start (and in check-config).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_without_valid_until_is_refused_by_name_or_accepted_when_configured() {
    let operator = operator();
    let endless = |idp: &DevIdp| {
        let unsigned = render_spec(&MetadataSpec {
            entity_id: IDP_ENTITY_ID,
            sso_url: SSO,
            signing_certs_b64: vec![idp.cert_b64.as_str()],
            id: Some("_endless"),
            ..MetadataSpec::default()
        });
        xmlsec1::sign_root(&unsigned, "_endless", &operator.key)
    };
    for require in [true, false] {
        let served = Served::default();
        let dir = tempfile::tempdir().expect("dir");
        let addr = metadata_server(served.clone()).await;
        let cert_pem = operator.key.cert.to_pem().expect("pem");
        let cache = dir.path().join("kept.xml").display().to_string();
        let bridge = Bridge::start_edited(
            |dir| std::fs::write(dir.join("federation-signing.pem"), &cert_pem).expect("write"),
            move |config| {
                config.replace(
                    "[federations.kennisnet]\nmetadata = \"idp-metadata.xml\"",
                    &format!(
                        "[federations.kennisnet]\nmetadata = \"http://{addr}/metadata.xml\"\n\
                         metadata_signing_cert = \"federation-signing.pem\"\nmetadata_cache = \"{cache}\"\n\
                         refresh_interval = \"1s\"\nrequire_valid_until = {require}"
                    ),
                )
            },
        )
        .await;
        served.set(Some(endless(&bridge.idp)));
        let warned = bridge
            .settings
            .warnings
            .iter()
            .any(|w| w.contains("federations.kennisnet.require_valid_until = false"));
        assert_eq!(warned, !require, "{:?}", bridge.settings.warnings);
        if require {
            let body = eventually(Duration::from_secs(10), async || {
                let r = reqwest::get(format!("{}/readyz", bridge.base)).await.expect("readyz");
                let status = r.status();
                let body = r.text().await.expect("body");
                (status == 503 && body.contains("validUntil")).then_some(body)
            })
            .await;
            assert!(
                body.contains("federations.kennisnet.require_valid_until"),
                "/readyz names the key: {body}"
            );
            assert_eq!(login_goes_to(&bridge).await, Err("metadata_unavailable".into()));
        } else {
            let to = eventually(Duration::from_secs(10), async || login_goes_to(&bridge).await.ok()).await;
            assert_eq!(to, SSO);
            let ready = reqwest::get(format!("{}/readyz", bridge.base)).await.expect("readyz");
            assert_eq!(ready.status(), 200);
            // Metadata that never expires still has its series (the documented alert on it
            // needs one): +Inf, never "less than a day".
            let infinite = "entree_bridge_metadata_valid_until_seconds{federation=\"kennisnet\"} +Inf";
            eventually(Duration::from_secs(10), async || {
                let text = reqwest::get(format!("{}/metrics", bridge.base))
                    .await
                    .expect("metrics")
                    .text()
                    .await
                    .expect("body");
                text.lines().any(|l| l == infinite).then_some(())
            })
            .await;
        }
    }
}
