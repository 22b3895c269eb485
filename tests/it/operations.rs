//! What the people who run the bridge do to a running process: edit an app's mapping and
//! reload (SIGHUP, or just saving the file), break the config and keep serving, read the
//! metrics, and stop it with SIGTERM.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use common::process::BridgeProcess;
use common::*;
use entree_bridge::demo::idp::{DevIdp, ResponseSpec};

/// The app in its own file, `apps/extra.toml`: jwt mode, the given name as a claim.
const EXTRA_APP: &str = r#"federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/extra"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
allow_unsolicited = true

[person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"

[handoff]
callback_url = "https://extra.example.nl/sso"

[claims]
given_name = "givenName"
"#;

struct Running {
    process: BridgeProcess,
    dir: tempfile::TempDir,
    idp: DevIdp,
    port: u16,
}

impl Running {
    async fn start(extra_config: &str) -> Running {
        let (dir, idp, _) = prepare_dir();
        let port = common::services::free_port();
        let extra_config = extra_config.replace("{port}", &port.to_string());
        std::fs::write(dir.path().join("bridge.toml"), config_text(port, &extra_config)).expect("write");
        std::fs::create_dir(dir.path().join("apps")).expect("apps dir");
        write_app(dir.path(), &EXTRA_APP.replace("{port}", &port.to_string()));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let process = BridgeProcess::start(&dir.path().join("bridge.toml"), addr, dir.path().join("bridge.log")).await;
        Running {
            process,
            dir,
            idp,
            port,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An unsolicited login to `extra`: the claims of the JWT it hands off, or the error page.
    async fn login(&self) -> Result<serde_json::Value, String> {
        let spec = ResponseSpec::new(
            &format!("{}/extra/saml2/kennisnet/metadata", self.base()),
            &self.extra_acs(),
            None,
        )
        .attribute("nlEduPersonRealId", &["100231@school-a.nl"])
        .attribute("nlEduPersonHomeOrganizationId", &["99XX"])
        .attribute("givenName", &["Sanne"])
        .attribute("sn", &["de Vries"]);
        let resp = self.post_to_extra(&spec).await;
        let outcome = AcsOutcome {
            status: resp.status().as_u16(),
            body: resp.text().await.expect("body"),
        };
        let token = outcome.token().ok_or(outcome.body)?;
        let payload = token.split('.').nth(1).expect("payload");
        Ok(serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("base64"),
        )
        .expect("json"))
    }

    /// Signs `spec` and posts it, unsolicited, to the ACS of `extra`.
    async fn post_to_extra(&self, spec: &ResponseSpec) -> reqwest::Response {
        let xml = self.idp.response(spec).expect("sign");
        post_acs_at(&client(), &self.extra_acs(), &xml, None).await
    }

    fn extra_acs(&self) -> String {
        format!("{}/extra/saml2/kennisnet/acs", self.base())
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base()))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body")
    }

    /// Waits until the log has `needle`.
    async fn log_shows(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let log = self.process.log_text();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "{needle:?} not logged:\n{log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn write_app(dir: &Path, text: &str) {
    // Written next to the file and renamed over it, as deployment tools do.
    let tmp = dir.join("apps").join(".extra.toml.tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, dir.join("apps").join("extra.toml")).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_mapping_is_served_after_sighup_and_a_broken_edit_leaves_the_old_config() {
    let run = Running::start("").await;
    let claims = run.login().await.expect("login");
    assert_eq!(claims["given_name"], "Sanne");
    assert!(claims.get("family_name").is_none());

    // The admin adds a claim and sends SIGHUP: the next login has it.
    let edited = EXTRA_APP.replace("{port}", &run.port.to_string()) + "family_name = \"sn\"\n";
    write_app(run.dir.path(), &edited);
    run.process.signal("HUP");
    run.log_shows("config reloaded", Duration::from_secs(10)).await;
    let claims = run.login().await.expect("login after reload");
    assert_eq!(claims["family_name"], "de Vries");

    // A broken edit: refused with the key and the app's own file, the old config serves on.
    let broken = edited.replace("pattern = \"^(?P<code>[^@]+)@\"", "pattern = \"^([^@]+\"");
    write_app(run.dir.path(), &broken);
    run.process.signal("HUP");
    let file = run.dir.path().join("apps").join("extra.toml");
    let log = run.log_shows("config reload refused", Duration::from_secs(10)).await;
    assert!(log.contains("apps.extra.person.pattern"), "{log}");
    assert!(
        log.contains(&format!("{}:", file.display())),
        "the problem names the file: {log}"
    );
    let claims = run.login().await.expect("the previous config still serves");
    assert_eq!(claims["family_name"], "de Vries");
    assert_eq!(claims["sub"], "100231");

    assert!(run.process.log_text().contains("SIGHUP"));
    // The file watcher may also have seen the edits: at least one of each.
    let metrics = run.metrics().await;
    assert!(
        counter(&metrics, "entree_bridge_config_reloads_total{result=\"ok\"}") >= 1,
        "{metrics}"
    );
    assert!(
        counter(&metrics, "entree_bridge_config_reloads_total{result=\"error\"}") >= 1,
        "{metrics}"
    );
}

fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_a_config_file_reloads_it_without_a_signal() {
    let run = Running::start("").await;
    assert!(run.login().await.expect("login").get("family_name").is_none());
    let edited = EXTRA_APP.replace("{port}", &run.port.to_string()) + "family_name = \"sn\"\n";
    write_app(run.dir.path(), &edited);
    run.log_shows("a config file changed", Duration::from_secs(10)).await;
    assert_eq!(run.login().await.expect("login")["family_name"], "de Vries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_the_documented_names_and_logs_are_json_with_an_audit_trail() {
    // With the support desk: its requests' lines carry a correlation id too.
    let tokens = tempfile::tempdir().expect("dir");
    let token_file = tokens.path().join("admin-tokens");
    std::fs::write(&token_file, "desk 0123456789abcdef0123456789abcdef\n").expect("tokens");
    std::fs::set_permissions(&token_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let admin_port = common::services::free_port();
    let run = Running::start(&format!(
        "[log]\nformat = \"json\"\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_file = {:?}\n",
        token_file.display().to_string()
    ))
    .await;
    run.login().await.expect("login");
    let activated = reqwest::Client::new()
        .put(format!("http://127.0.0.1:{admin_port}/admin/v1/apps/numo/schools/77ZZ"))
        .bearer_auth("0123456789abcdef0123456789abcdef")
        .send()
        .await
        .expect("admin");
    assert!(activated.status().is_success(), "{}", activated.status());
    // A rejected login: a response for another app's audience.
    let spec = ResponseSpec::new("https://other.example.nl/sp", &run.extra_acs(), None)
        .attribute("nlEduPersonRealId", &["1@x"])
        .attribute("nlEduPersonHomeOrganizationId", &["99XX"]);
    let resp = run.post_to_extra(&spec).await;
    assert_eq!(resp.status(), 400);
    // Refusals at /login (not logins: nothing reached the ACS) and of no app's address.
    let refused = reqwest::get(format!(
        "{}/extra/saml2/kennisnet/login?target=https://evil.example/",
        run.base()
    ))
    .await
    .expect("login");
    assert_eq!(refused.status(), 400);
    assert_eq!(
        reqwest::get(format!("{}/favicon.ico", run.base()))
            .await
            .expect("get")
            .status(),
        404
    );
    let metrics = run.metrics().await;
    for line in [
        "entree_bridge_logins_total{app=\"extra\",result=\"ok\",error=\"\"} 1",
        "entree_bridge_logins_total{app=\"extra\",result=\"rejected\",error=\"audience_mismatch\"} 1",
        "entree_bridge_acs_duration_seconds_count 2",
        "# TYPE entree_bridge_acs_duration_seconds histogram",
        "entree_bridge_config_reloads_total{result=\"ok\"} 0",
        "entree_bridge_store_errors_total{store=\"state\"} 0",
        "# TYPE entree_bridge_metadata_valid_until_seconds gauge",
        "# TYPE entree_bridge_proxy_responses_total counter",
        "entree_bridge_requests_refused_total{app=\"extra\",code=\"audience_mismatch\"} 1",
        "entree_bridge_requests_refused_total{app=\"extra\",code=\"target_not_allowed\"} 1",
        "entree_bridge_requests_refused_total{app=\"-\",code=\"unknown_app\"} 1",
        "# TYPE entree_bridge_build_info gauge",
    ] {
        assert!(metrics.contains(line), "{line:?} missing from:\n{metrics}");
    }

    // Every log line is one JSON object; the login is in the audit trail, pseudonymous.
    let log = run.log_shows("\"event\":\"login\"", Duration::from_secs(5)).await;
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let desk: Vec<&serde_json::Value> = lines.iter().filter(|l| l["event"] == "school_activated").collect();
    assert_eq!(desk.len(), 1, "{desk:?}");
    assert!(
        desk[0]["span"]["correlation_id"]
            .as_str()
            .is_some_and(|id| id.len() == 16),
        "the desk's audit line names its request: {:?}",
        desk[0]
    );
    let audit: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["target"] == "audit" && l["event"] == "login")
        .collect();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["app"], "extra");
    assert!(
        audit[0]["person"].as_str().is_some_and(|p| p.starts_with("p:")),
        "{:?}",
        audit[0]
    );
    assert!(!log.contains("100231"), "no person code or federated id in the logs");
    // Each line of a request names it: the login's audit line carries its correlation id.
    assert!(
        audit[0]["span"]["correlation_id"]
            .as_str()
            .is_some_and(|id| id.len() == 16),
        "{:?}",
        audit[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_and_exits_zero() {
    // A headers-mode app whose upstream takes a second to answer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let up = listener.local_addr().expect("addr");
    let slow = axum::Router::new().route(
        "/slow/{*rest}",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(1000)).await;
            "finished"
        }),
    );
    tokio::spawn(async move { axum::serve(listener, slow).await });
    let mut run = Running::start(&format!(
        "[apps.slow]\nfederation = \"kennisnet\"\nbase_url = \"http://127.0.0.1:{{port}}/slow\"\n\
         sp_key = \"sp.key\"\nsp_cert = \"sp.crt\"\nschools = [\"*\"]\nallow_unsolicited = true\n\
         [apps.slow.handoff]\nmode = \"headers\"\nupstream = \"http://{up}\"\n"
    ))
    .await;
    let browser = client();
    let spec = ResponseSpec::new(
        &format!("{}/slow/saml2/kennisnet/metadata", run.base()),
        &format!("{}/slow/saml2/kennisnet/acs", run.base()),
        None,
    )
    .attribute("nlEduPersonRealId", &["100231@school-a.nl"])
    .attribute("nlEduPersonHomeOrganizationId", &["99XX"]);
    let xml = run.idp.response(&spec).expect("sign");
    let login = post_acs_at(
        &browser,
        &format!("{}/slow/saml2/kennisnet/acs", run.base()),
        &xml,
        None,
    )
    .await;
    assert_eq!(login.status(), 302, "headers mode logs in with a redirect");

    let url = format!("{}/slow/page", run.base());
    let in_flight = tokio::spawn(async move { browser.get(url).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.process.signal("TERM");
    let answered = in_flight
        .await
        .expect("task")
        .expect("the request in flight is answered");
    assert_eq!(answered.status(), 200);
    assert_eq!(answered.text().await.expect("body"), "finished");
    assert_eq!(run.process.wait_exit(Duration::from_secs(10)), Some(0));
    let log = run.process.log_text();
    assert!(log.contains("shutting down"), "{log}");
}

#[tokio::test]
async fn a_port_in_use_or_an_unreadable_key_is_one_line_at_start_not_a_panic() {
    let (dir, _idp, _) = prepare_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    std::fs::write(dir.path().join("bridge.toml"), config_text(port, "")).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
        .args(["serve", "--config"])
        .arg(dir.path().join("bridge.toml"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"), "{err}");

    std::fs::write(dir.path().join("sp.key"), "not a key").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
        .args(["serve", "--config"])
        .arg(dir.path().join("bridge.toml"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("apps.numo.sp_key"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// GET over https with `ca` as the only extra root: the status, or the error text.
async fn https_get(url: &str, ca: &openssl::x509::X509) -> Result<u16, String> {
    let client = entree_bridge::http::proxy::client(Duration::from_secs(2), &[ca.to_der().expect("der")])
        .map_err(|e| e.to_string())?;
    let request = axum::http::Request::get(url)
        .body(axum::body::Body::empty())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(5), client.request(request)).await {
        Ok(Ok(r)) => Ok(r.status().as_u16()),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("timeout".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_on_its_own_port_with_the_certificate_swapped_on_reload() {
    let (dir, _idp, _) = prepare_dir();
    let write_pair = |name: &str| {
        let (ca, cert, key) = common::services::ca_and_server_certificate("127.0.0.1");
        std::fs::write(dir.path().join(format!("{name}.crt")), cert.to_pem().expect("pem")).expect("write");
        std::fs::write(
            dir.path().join(format!("{name}.key")),
            key.private_key_to_pem_pkcs8().expect("pem"),
        )
        .expect("write");
        ca
    };
    let first_ca = write_pair("tls");
    let port = common::services::free_port();
    let text = config_text(port, "").replace(
        "[server]\n",
        "[server]\ntls_cert = \"tls.crt\"\ntls_key = \"tls.key\"\n",
    );
    std::fs::write(dir.path().join("bridge.toml"), text).expect("write");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let mut process = BridgeProcess::spawn(&dir.path().join("bridge.toml"), addr, dir.path().join("bridge.log"));
    let url = format!("https://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(20);
    while https_get(&url, &first_ca).await != Ok(200) {
        assert!(Instant::now() < deadline, "no https:\n{}", process.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Plain http on the https port gets nothing useful.
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true));

    // A new certificate (another CA) and SIGHUP: new connections present it.
    let second_ca = write_pair("tls");
    process.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while https_get(&url, &second_ca).await != Ok(200) {
        assert!(
            Instant::now() < deadline,
            "the new certificate is not served:\n{}",
            process.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(https_get(&url, &first_ca).await.is_err(), "the old certificate is gone");
    process.signal("TERM");
    assert_eq!(process.wait_exit(Duration::from_secs(10)), Some(0));
}

/// The night shift's log: no colour codes in a file, a start-up summary, every line of a
/// request under its correlation id (the page's reference), one `app` (the config name),
/// unknown addresses kept out, and a flood of one cause said once per interval with its count
/// and a line when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_the_reference_say_a_flood_once_and_start_with_a_summary() {
    // The state store is a Redis nobody listens on: every login fails the same way.
    let dead = common::services::free_port();
    let run = Running::start(&format!(
        "[sessions]\nstore = \"redis\"\nredis_url = \"redis://127.0.0.1:{dead}\"\ntimeout = \"200ms\"\n"
    ))
    .await;
    let started = run.log_shows("app ready", Duration::from_secs(5)).await;
    assert!(!started.contains('\u{1b}'), "no ANSI escapes in a log file:\n{started}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        started.contains(&format!("entree-bridge {version} listening on 127.0.0.1:{}", run.port)),
        "{started}"
    );
    assert!(started.contains("apps=\"extra,numo,open\""), "{started}");
    assert!(started.contains("federations=\"kennisnet\""), "{started}");
    assert!(started.contains("sessions=redis"), "{started}");

    // Nobody serves /favicon.ico: not a warning.
    let resp = reqwest::get(format!("{}/favicon.ico", run.base())).await.expect("get");
    assert_eq!(resp.status(), 404);

    let spec = ResponseSpec::new(
        &format!("{}/extra/saml2/kennisnet/metadata", run.base()),
        &run.extra_acs(),
        None,
    )
    .attribute("nlEduPersonRealId", &["100231@school-a.nl"])
    .attribute("nlEduPersonHomeOrganizationId", &["99XX"]);
    let first = run.post_to_extra(&spec).await;
    assert_eq!(first.status(), 503);
    let reference = crate::support_desk::reference_of(&first.text().await.expect("body"));
    for _ in 0..30 {
        assert_eq!(run.post_to_extra(&spec).await.status(), 503);
    }
    let log = run
        .log_shows("it has ended, after 31 failure(s)", Duration::from_secs(40))
        .await;
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("request failed: ")).collect();
    assert_eq!(failed.len(), 1, "one line for the first of the flood:\n{log}");
    let line = failed[0];
    assert!(
        line.contains(&format!("correlation_id={reference}")),
        "the page's reference: {line}"
    );
    assert!(
        line.contains("request{correlation_id="),
        "under the request's span: {line}"
    );
    assert!(
        line.contains("code=\"store_unavailable\"") || line.contains("code=store_unavailable"),
        "{line}"
    );
    assert!(
        line.contains("app=\"extra\"") || line.contains("app=extra"),
        "the config name: {line}"
    );
    assert!(
        log.contains("30 more request(s) failed with store_unavailable"),
        "the count of the rest:\n{log}"
    );
    assert!(!log.contains("unknown_app"), "unknown addresses stay at debug:\n{log}");
    assert!(!log.contains("WARN") || !log.contains("favicon"), "{log}");
}
