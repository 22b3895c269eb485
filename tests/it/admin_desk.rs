//! The admin listener (issue 19): the `/admin/v1` API on SQLite and PostgreSQL (a school
//! activated through it reaches a second running instance within 10 s, deactivation
//! likewise; links found, imported with a dry run that changes nothing, removed; a failed
//! login's report by its reference), bearer tokens (401 when missing, wrong or revoked;
//! failed attempts limited; a token file others can read is warned about), the pages' CSRF
//! protection, and the public port serving nothing of it. The Chromium walk of the pages is
//! `admin_pages_walk_in_chromium`.

use crate::common;
use crate::support_desk::{login_of_school, reference_of, two_instances_with, until_login};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const ANNA: &str = "anna-0123456789abcdef0123456789abcdef";
const BOB: &str = "bob-0123456789abcdef0123456789abcdef01";
const MAGISTER: &str = "stamnr;idgebr;externeid;realmid\r\n109999;35895;{56C87192-A1};35895@magis.schoolnaam\r\n110000;35896;{56C87192-A2};35896@magis.schoolnaam\r\n";

/// A token file of its own (outside the bridge's folder, so it exists before the config is
/// loaded), with `mode` as its permissions.
struct TokenFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl TokenFile {
    fn new(text: &str, mode: u32) -> TokenFile {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("admin-tokens");
        let file = TokenFile { _dir: dir, path };
        file.write(text, mode);
        file
    }

    fn write(&self, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&self.path, text).expect("write tokens");
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn section(&self) -> String {
        format!(
            "\n[admin]\nlisten = \"127.0.0.1:{{admin_port}}\"\ntoken_file = {:?}\n",
            self.path.display().to_string()
        )
    }
}

fn both_tokens() -> TokenFile {
    TokenFile::new(&format!("# the desk\nanna {ANNA}\nbob {BOB}\n"), 0o600)
}

fn admin_of(bridge: &Bridge) -> &str {
    bridge.admin.as_deref().expect("the bridge has an admin listener")
}

/// One API call: status and JSON body.
async fn api(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut request = client().request(method.parse().expect("method"), url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.body(b.to_string());
    }
    let resp = request.send().await.expect("admin api");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let json = match serde_json::from_str(&text) {
        Ok(json) => json,
        Err(_) => Value::String(text),
    };
    (status, json, headers)
}

async fn the_api_reaches_every_instance(links: Links) {
    let tokens = both_tokens();
    let (a, b) = two_instances_with(links, &tokens.section()).await;
    let admin = admin_of(&a).to_string();
    let school_url = |brin: &str| format!("{admin}/admin/v1/apps/numo/schools/{brin}");

    // No token, a wrong one, another scheme: 401 with the challenge, and nothing changed.
    for token in [None, Some("not-a-token-not-a-token-not-a-token-xx")] {
        let (status, body, headers) = api("PUT", &school_url("66RR"), token, None).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "unauthorized");
        assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    }
    let basic = client()
        .put(school_url("66RR"))
        .header("authorization", format!("Basic {ANNA}"))
        .send()
        .await
        .expect("put");
    assert_eq!(basic.status(), 401);
    assert!(
        a.links.activations(Some("numo")).await.unwrap().is_empty(),
        "nothing stored"
    );

    // Activated through the API on A: in force on B within 10 s, recorded with the token's name.
    let (status, body, _) = api("PUT", &school_url("66rr"), Some(ANNA), None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["result"], "activated");
    let took = until_login(&b, "66RR", true).await;
    eprintln!("API activation in force on the other instance after {took:?}");
    let (status, body, _) = api("GET", &school_url("66RR"), Some(BOB), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["source"], "database");
    assert_eq!(body["activated_by"], "token:anna");
    let (_, body, _) = api("GET", &school_url("99XX"), Some(ANNA), None).await;
    assert_eq!(body["source"], "config", "{body}");
    let (status, body, _) = api("PUT", &school_url("9-9"), Some(ANNA), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body, _) = api("DELETE", &school_url("99XX"), Some(ANNA), None).await;
    assert_eq!(status, 409, "a config entry is not the database's to remove: {body}");
    let (status, _, _) = api("DELETE", &school_url("66RR"), Some(ANNA), None).await;
    assert_eq!(status, 200);
    until_login(&b, "66RR", false).await;
    let (status, _, _) = api("DELETE", &school_url("66RR"), Some(ANNA), None).await;
    assert_eq!(status, 404, "not activated any more");
    let (status, _, _) = api(
        "GET",
        &format!("{admin}/admin/v1/apps/nope/schools/66RR"),
        Some(ANNA),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The report of a login refused on B, by its reference, from A's API; no full id in it.
    let refused = login_of_school(&b, "66RR").await;
    refused.assert_rejected(403, "school_not_activated");
    let reference = reference_of(&refused.body);
    let start = Instant::now();
    let report = loop {
        let (status, body, _) = api(
            "GET",
            &format!("{admin}/admin/v1/references/{reference}"),
            Some(ANNA),
            None,
        )
        .await;
        if status == 200 {
            break body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no report for {reference}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(report["code"], "school_not_activated");
    assert_eq!(report["school"], "66RR");
    assert!(!report.to_string().contains("100231"), "{report}");
    let (status, _, _) = api(
        "GET",
        &format!("{admin}/admin/v1/references/00000000deadbeef"),
        Some(ANNA),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Imports: a dry run changes nothing; the import itself the same report, written.
    let import = format!("{admin}/admin/v1/apps/numo/links/import?format=magister&code_column=stamnr");
    let (status, body, _) = api("POST", &format!("{import}&dry_run=true"), Some(ANNA), Some(MAGISTER)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["written"].clone(), body["added"].clone()),
        (Value::Bool(false), Value::from(2))
    );
    assert!(
        a.links.list(Some("numo"), None).await.unwrap().is_empty(),
        "a dry run stores nothing"
    );
    let broken = format!("{MAGISTER}123;456\r\n");
    let (status, body, _) = api("POST", &import, Some(ANNA), Some(&broken)).await;
    assert_eq!(status, 422, "an invalid line blocks the import: {body}");
    assert_eq!(body["invalid"][0]["line"], 4);
    assert!(a.links.list(Some("numo"), None).await.unwrap().is_empty());
    let (status, body, _) = api("POST", &import, Some(ANNA), Some(MAGISTER)).await;
    assert_eq!((status, body["written"].clone()), (200, Value::Bool(true)), "{body}");
    let (status, body, _) = api("GET", &format!("{import}&format=xml"), Some(ANNA), None).await;
    assert_eq!(status, 405, "import is a POST: {body}");

    // Links by person code and by federated id; removed; gone.
    let links_url = format!("{admin}/admin/v1/apps/numo/links");
    let (_, body, _) = api("GET", &format!("{links_url}?person_code=109999"), Some(ANNA), None).await;
    assert_eq!(body["links"][0]["federated_id"], "35895@magis.schoolnaam", "{body}");
    assert_eq!(body["links"][0]["source"], "imported");
    let by_id = format!("{links_url}?federated_id=35896%40magis.schoolnaam");
    let (_, body, _) = api("GET", &by_id, Some(ANNA), None).await;
    assert_eq!(body["links"][0]["person_code"], "110000", "{body}");
    let (status, _, _) = api("GET", &links_url, Some(ANNA), None).await;
    assert_eq!(status, 400, "one of person_code and federated_id is required");
    let (status, _, _) = api("DELETE", &by_id, Some(ANNA), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        b.links.person_code_of("numo", "35896@magis.schoolnaam").await.unwrap(),
        None,
        "removed for every instance"
    );
    let (status, _, _) = api("DELETE", &by_id, Some(ANNA), None).await;
    assert_eq!(status, 404);

    // Bob's token revoked in the file: refused at once, no reload; Anna's still works.
    tokens.write(&format!("anna {ANNA}\n"), 0o600);
    let (status, _, _) = api("GET", &school_url("99XX"), Some(BOB), None).await;
    assert_eq!(status, 401, "a revoked token");
    let (status, _, _) = api("GET", &school_url("99XX"), Some(ANNA), None).await;
    assert_eq!(status, 200);

    // The public port serves nothing of it, token or not.
    for path in [
        "/admin/",
        "/admin",
        "/admin/v1/references/00000000deadbeef",
        "/admin/v1/apps/numo/schools/99XX",
    ] {
        let resp = client()
            .get(format!("{}{path}", a.base))
            .bearer_auth(ANNA)
            .send()
            .await
            .expect("public");
        assert_eq!(resp.status(), 404, "{path} on the public port");
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains("school_not_activated") && !text.contains("Beheertoken"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn admin_api_on_sqlite() {
    the_api_reaches_every_instance(Links::Sqlite).await;
}

#[tokio::test]
async fn admin_api_on_postgres() {
    the_api_reaches_every_instance(Links::Postgres).await;
}

#[tokio::test]
async fn failed_tokens_are_limited_per_address() {
    let tokens = both_tokens();
    let bridge = Bridge::start_with(&tokens.section()).await;
    let url = format!("{}/admin/v1/apps/numo/schools/99XX", admin_of(&bridge));
    for n in 0..10 {
        let (status, _, _) = api(
            "GET",
            &url,
            Some(&format!("wrong-{n}-0123456789abcdef0123456789")),
            None,
        )
        .await;
        assert_eq!(status, 401, "attempt {n}");
    }
    // The 11th attempt is not compared at all: even the right token waits out the window.
    let (status, body, headers) = api("GET", &url, Some(ANNA), None).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"], "rate_limited");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn check_config_warns_about_a_token_file_others_can_read() {
    let readable = TokenFile::new(&format!("anna {ANNA}\n"), 0o644);
    let bridge = Bridge::start_with(&readable.section()).await;
    let config = bridge.path("bridge.toml");
    let check = |config: &Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
            .args(["check-config", "--config"])
            .arg(config)
            .output()
            .expect("check-config");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = check(&config);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("warning: admin.token_file") && out.contains("chmod 600"),
        "{out}"
    );
    readable.write(&format!("anna {ANNA}\n"), 0o600);
    let (code, out) = check(&config);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("admin.token_file"), "owner-only: no warning: {out}");
    // A token too short to be one, and a missing file: errors naming the key.
    readable.write("anna short\n", 0o600);
    let (code, out) = check(&config);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("admin.token_file") && out.contains("shorter than 32"),
        "{out}"
    );
    std::fs::remove_file(&readable.path).unwrap();
    let (code, out) = check(&config);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("admin.token_file") && out.contains("cannot read"), "{out}");
}

/// A browser-like client on the admin pages: cookies kept, no redirects followed.
fn page_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    page[start..start + page[start..].find('"').expect("end")].to_string()
}

async fn signed_in(admin: &str, token: &str) -> (reqwest::Client, String) {
    let browser = page_client();
    let signed = browser
        .post(format!("{admin}/admin/sign-in"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed.status(), 303);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("eb_admin=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let home = browser.get(format!("{admin}/admin/")).send().await.expect("home");
    assert_eq!(home.status(), 200);
    let page = home.text().await.unwrap();
    (browser, csrf_of(&page))
}

fn multipart(fields: &[(&str, &str)], file: &str) -> (String, Vec<u8>) {
    let boundary = "----entreebridgetest7MA4YWxk";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"leerlingen.csv\"\r\nContent-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n"
    ));
    (format!("multipart/form-data; boundary={boundary}"), body.into_bytes())
}

#[tokio::test]
async fn pages_require_a_session_and_a_csrf_token_for_every_change() {
    let tokens = both_tokens();
    let bridge = Bridge::start_with(&tokens.section()).await;
    let admin = admin_of(&bridge).to_string();
    let anonymous = page_client();

    // The sign-in page, with the bridge's security headers; a wrong token is refused.
    let sign_in = anonymous.get(format!("{admin}/admin/")).send().await.expect("page");
    assert_eq!(sign_in.status(), 200);
    let headers = sign_in.headers().clone();
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'none'"));
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(sign_in.text().await.unwrap().contains("name=\"token\""));
    let wrong = anonymous
        .post(format!("{admin}/admin/sign-in"))
        .form(&[("token", "wrong-0123456789abcdef0123456789abcdef")])
        .send()
        .await
        .expect("sign in");
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().await.unwrap().contains("onbekend of ingetrokken"));
    let unsigned = anonymous
        .get(format!("{admin}/admin/reference?ref=abcd"))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401, "no page without a session");

    let (browser, csrf) = signed_in(&admin, ANNA).await;
    let schools = format!("{admin}/admin/schools");
    let activated = || async { bridge.links.activations(Some("numo")).await.unwrap() };

    // A change without the CSRF token, with a wrong one, or said to be cross-site: refused, nothing stored.
    for (form_csrf, site) in [
        (None, None),
        (Some("wrong"), None),
        (Some(csrf.as_str()), Some("cross-site")),
    ] {
        let mut form = vec![("app", "numo"), ("brin", "44PP"), ("action", "activate")];
        if let Some(c) = form_csrf {
            form.push(("csrf", c));
        }
        let mut request = browser.post(&schools).form(&form);
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        let resp = request.send().await.expect("post");
        assert_eq!(resp.status(), 403, "{form_csrf:?} {site:?}");
        assert!(resp.text().await.unwrap().contains("CSRF"));
        assert!(activated().await.is_empty(), "nothing stored");
    }
    let resp = browser
        .post(&schools)
        .form(&[
            ("app", "numo"),
            ("brin", "44PP"),
            ("action", "activate"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    let rows = activated().await;
    assert_eq!(
        (rows[0].brin.as_str(), rows[0].activated_by.as_str()),
        ("44PP", "token:anna")
    );

    // An upload: the dry run stores nothing, Apply writes exactly what was reported, once.
    let (content_type, body) = multipart(
        &[
            ("csrf", &csrf),
            ("app", "numo"),
            ("format", "magister"),
            ("code_column", "stamnr"),
        ],
        MAGISTER,
    );
    let without_csrf = multipart(
        &[("app", "numo"), ("format", "csv")],
        "federated_id,person_code\nx@y,1\n",
    );
    let resp = browser
        .post(format!("{admin}/admin/import"))
        .header("content-type", without_csrf.0)
        .body(without_csrf.1)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = browser
        .post(format!("{admin}/admin/import"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("Toepassen"), "{page}");
    assert!(
        bridge.links.list(Some("numo"), None).await.unwrap().is_empty(),
        "a dry run stores nothing"
    );
    let marker = "name=\"id\" value=\"";
    let start = page.find(marker).expect("the dry run's id") + marker.len();
    let id = page[start..start + page[start..].find('"').unwrap()].to_string();
    let apply = |csrf: String, id: String| {
        let browser = browser.clone();
        let url = format!("{admin}/admin/import/apply");
        async move {
            browser
                .post(url)
                .form(&[("csrf", csrf), ("id", id)])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(apply("wrong".into(), id.clone()).await.status(), 403);
    assert!(bridge.links.list(Some("numo"), None).await.unwrap().is_empty());
    let applied = apply(csrf.clone(), id.clone()).await;
    assert_eq!(applied.status(), 200);
    assert!(applied.text().await.unwrap().contains("Geïmporteerd"));
    assert_eq!(bridge.links.list(Some("numo"), None).await.unwrap().len(), 2);
    assert_eq!(apply(csrf.clone(), id).await.status(), 409, "applied once");

    // Remove a link: CSRF again.
    let remove = format!("{admin}/admin/links/remove");
    let federated = "35895@magis.schoolnaam";
    let resp = browser
        .post(&remove)
        .form(&[("app", "numo"), ("federated_id", federated)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(bridge.links.person_code_of("numo", federated).await.unwrap().is_some());
    let resp = browser
        .post(&remove)
        .form(&[("app", "numo"), ("federated_id", federated), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(bridge.links.person_code_of("numo", federated).await.unwrap(), None);

    // A revoked token ends its page sessions; signing out ends one.
    let (bob, bob_csrf) = signed_in(&admin, BOB).await;
    tokens.write(&format!("anna {ANNA}\n"), 0o600);
    let resp = bob
        .get(format!("{admin}/admin/links?app=numo&person_code=110000"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "bob's token was revoked");
    let _ = bob_csrf;
    let out = browser
        .post(format!("{admin}/admin/sign-out"))
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let resp = browser
        .get(format!("{admin}/admin/links?app=numo&person_code=110000"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "signed out");
}

/// Where the browser walk keeps its screenshots (with the demo's).
fn artifacts() -> PathBuf {
    repo_root().join("target").join("browser-artifacts")
}

#[tokio::test]
async fn admin_pages_walk_in_chromium() {
    let tokens = both_tokens();
    let bridge = Bridge::start_links_edited("[links]\nstore = \"sqlite\"\nsqlite_path = \"links.sqlite3\"\n", |c| {
        crate::support_desk::with_contact(c) + &tokens.section()
    })
    .await;
    let admin = admin_of(&bridge).to_string();
    // A student of a school that has not activated: the reference the desk is mailed.
    let refused = login_of_school(&bridge, "55QQ").await;
    let reference = reference_of(&refused.body);
    let upload = bridge.path("leerlingen.csv");
    std::fs::write(&upload, MAGISTER).unwrap();

    let mut browser = common::browser::Browser::launch().await;
    let within = Duration::from_secs(10);
    // Chromium asks for English; the desk switches to Dutch (a cookie remembers it).
    browser.goto(&format!("{admin}/admin/")).await;
    browser.wait_for("document.querySelector('#token')", within).await;
    assert_eq!(browser.eval("document.documentElement.lang").await, "en");
    browser.click("a[href='/admin/?lang=nl']").await;
    browser
        .wait_for(
            "document.documentElement.lang === 'nl' && document.querySelector('#token')",
            within,
        )
        .await;
    // Styled (the stylesheet's hash is in the CSP), labelled, in Dutch.
    assert_eq!(browser.eval("getComputedStyle(document.body).maxWidth").await, "960px");
    assert_eq!(browser.eval("document.documentElement.lang").await, "nl");
    assert_eq!(
        browser
            .eval("document.querySelector('label[for=token]').textContent")
            .await,
        "Beheertoken"
    );
    browser.screenshot(&artifacts().join("admin-sign-in.png")).await;

    browser
        .eval(&format!("document.querySelector('#token').value = {:?}", ANNA))
        .await;
    browser.click("form[action='/admin/sign-in'] button").await;
    browser.wait_for("document.querySelector('#h-reference')", within).await;
    browser.screenshot(&artifacts().join("admin-overview.png")).await;

    // Why did the login fail: the reference from the student's page.
    let start = Instant::now();
    loop {
        browser
            .eval(&format!("document.querySelector('#ref').value = {reference:?}"))
            .await;
        browser.click("form[action='/admin/reference'] button").await;
        browser
            .wait_for(
                "document.querySelector('h1') && location.pathname === '/admin/reference'",
                within,
            )
            .await;
        if browser
            .eval("document.body.innerText.includes('school_activated')")
            .await
            == true
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no report for {reference}");
        browser.goto(&format!("{admin}/admin/")).await;
        browser.wait_for("document.querySelector('#ref')", within).await;
    }
    assert_eq!(browser.eval("document.querySelector('td.fail') !== null").await, true);
    browser
        .eval("document.querySelector('td.fail').scrollIntoView({block: 'center'})")
        .await;
    browser.screenshot(&artifacts().join("admin-reference.png")).await;

    // Activate the school from the page: the student's next login goes through.
    browser.goto(&format!("{admin}/admin/")).await;
    browser.wait_for("document.querySelector('#brin')", within).await;
    browser.eval("document.querySelector('#brin').value = '55QQ'").await;
    browser.click("button[value=activate]").await;
    browser
        .wait_for("document.body.innerText.includes('geactiveerd')", within)
        .await;
    browser
        .screenshot(&artifacts().join("admin-school-activated.png"))
        .await;
    until_login(&bridge, "55QQ", true).await;

    // Upload a Magister file: the dry run, then Apply.
    browser.goto(&format!("{admin}/admin/")).await;
    browser.wait_for("document.querySelector('#file')", within).await;
    let document = browser.call("DOM.getDocument", serde_json::json!({})).await;
    let input = browser
        .call(
            "DOM.querySelector",
            serde_json::json!({"nodeId": document["root"]["nodeId"], "selector": "#file"}),
        )
        .await;
    browser
        .call(
            "DOM.setFileInputFiles",
            serde_json::json!({"nodeId": input["nodeId"], "files": [upload.display().to_string()]}),
        )
        .await;
    browser.click("form[action='/admin/import'] button").await;
    browser
        .wait_for("document.body.innerText.includes('Toepassen')", within)
        .await;
    assert!(
        bridge.links.list(Some("numo"), None).await.unwrap().is_empty(),
        "the dry run stored nothing"
    );
    browser.screenshot(&artifacts().join("admin-import-dry-run.png")).await;
    browser.click("form[action='/admin/import/apply'] button").await;
    browser
        .wait_for("document.body.innerText.includes('Geïmporteerd')", within)
        .await;
    assert_eq!(bridge.links.list(Some("numo"), None).await.unwrap().len(), 2);
    browser.screenshot(&artifacts().join("admin-import-applied.png")).await;

    // Find the student's link by person code, and remove it.
    browser.goto(&format!("{admin}/admin/")).await;
    browser.wait_for("document.querySelector('#person_code')", within).await;
    browser
        .eval("document.querySelector('#person_code').value = '109999'")
        .await;
    browser.click("form[action='/admin/links'] button").await;
    browser
        .wait_for("document.body.innerText.includes('35895@magis.schoolnaam')", within)
        .await;
    browser.screenshot(&artifacts().join("admin-links.png")).await;
    browser.click("form[action='/admin/links/remove'] button").await;
    browser
        .wait_for("document.body.innerText.includes('Koppeling verwijderd')", within)
        .await;
    assert_eq!(
        bridge
            .links
            .person_code_of("numo", "35895@magis.schoolnaam")
            .await
            .unwrap(),
        None
    );

    // The same pages in English.
    browser.goto(&format!("{admin}/admin/?lang=en")).await;
    browser
        .wait_for(
            "document.documentElement.lang === 'en' && document.querySelector('#h-reference')",
            within,
        )
        .await;
    assert_eq!(
        browser.eval("document.querySelector('#h-reference').textContent").await,
        "Why did a login fail?"
    );
    browser.screenshot(&artifacts().join("admin-overview-en.png")).await;
}

/// The limits count the peer, not what it says: with loopback as a trusted proxy of the
/// public port, a local process that sends a fresh X-Forwarded-For with every wrong token is
/// still one address to the admin listener.
#[tokio::test]
async fn forwarded_addresses_do_not_escape_the_failure_limit() {
    let tokens = both_tokens();
    let section = tokens.section();
    let bridge = Bridge::start_edited(
        |_| {},
        |c| c.replacen("[server]\n", "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n", 1) + &section,
    )
    .await;
    let url = format!("{}/admin/v1/apps/numo/schools/99XX", admin_of(&bridge));
    let mut statuses = Vec::new();
    for n in 0..12 {
        let resp = client()
            .get(&url)
            .bearer_auth(format!("wrong-{n}-0123456789abcdef0123456789"))
            .header("x-forwarded-for", format!("203.0.113.{n}"))
            .send()
            .await
            .expect("api");
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10]);
    assert_eq!(&statuses[10..], &[429, 429], "{statuses:?}");
    // Counted where the night shift looks.
    let metrics = reqwest::get(format!("{}/metrics", bridge.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    for line in [
        "entree_bridge_admin_refusals_total{status=\"401\"} 10",
        "entree_bridge_admin_refusals_total{status=\"429\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}

/// Requests without any token (a health probe, a mistyped URL) are refused but not counted:
/// they cannot lock the desk out.
#[tokio::test]
async fn requests_without_a_token_do_not_lock_the_desk_out() {
    let tokens = both_tokens();
    let bridge = Bridge::start_with(&tokens.section()).await;
    let url = format!("{}/admin/v1/references/00000000deadbeef", admin_of(&bridge));
    for _ in 0..20 {
        assert_eq!(api("GET", &url, None, None).await.0, 401);
    }
    assert_eq!(
        api("GET", &url, Some(ANNA), None).await.0,
        404,
        "signed in: no such report"
    );
}

/// Nobody's body is waited for before the caller is known: a client that announces 16 MB and
/// sends nothing is answered at once on every route that takes a body.
#[tokio::test]
async fn bodies_are_not_read_before_the_caller_is_known() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tokens = both_tokens();
    let bridge = Bridge::start_with(&tokens.section()).await;
    let addr = admin_of(&bridge).trim_start_matches("http://").to_string();
    for (path, content_type, expected) in [
        ("/admin/v1/apps/numo/links/import?format=csv", "text/csv", "401"),
        ("/admin/import", "multipart/form-data; boundary=b", "401"),
        ("/admin/import/apply", "application/x-www-form-urlencoded", "413"),
        ("/admin/sign-in", "application/x-www-form-urlencoded", "413"),
        ("/admin/schools", "application/x-www-form-urlencoded", "413"),
    ] {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: 16000000\r\n\r\n"
        );
        tcp.write_all(head.as_bytes()).await.expect("write");
        let mut answer = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer while the body is missing"))
            .expect("read");
        let line = String::from_utf8_lossy(&answer[..read]).to_string();
        assert!(line.starts_with(&format!("HTTP/1.1 {expected}")), "{path}: {line}");
    }
}

/// An import's report grows with its file, not with the square of it: a file whose lines all
/// name one federated id with two codes (every line conflicts with every other).
#[tokio::test]
async fn a_conflicting_import_reports_in_linear_size() {
    let tokens = both_tokens();
    let bridge = Bridge::start_with(&tokens.section()).await;
    let url = format!(
        "{}/admin/v1/apps/numo/links/import?format=csv&dry_run=true",
        admin_of(&bridge)
    );
    let mut sizes = Vec::new();
    for lines in [500usize, 2000] {
        let mut file = String::from("federated_id,person_code\n");
        for i in 0..lines {
            file.push_str(&format!("a@school,{}\n", i % 2));
        }
        let (status, body, _) = api("POST", &url, Some(ANNA), Some(&file)).await;
        assert_eq!(status, 200);
        assert_eq!(body["conflicting"].as_array().map(Vec::len), Some(lines));
        assert!(
            body["conflicting"][0]["why"].as_str().unwrap().contains("more"),
            "{}",
            body["conflicting"][0]
        );
        sizes.push(body.to_string().len());
    }
    // Four times the lines, about four times the report (quadratic would be sixteen).
    assert!(sizes[1] < 6 * sizes[0], "{sizes:?}");
}

/// Every change made through the admin listener is an audit line naming the token, from the
/// real binary's log: activation, deactivation, import, link removal, sign-in and sign-out.
#[tokio::test]
async fn every_admin_change_is_in_the_audit_trail_with_the_token_name() {
    let tokens = both_tokens();
    let (dir, _idp, _) = prepare_dir();
    let port = common::services::free_port();
    let admin_port = common::services::free_port();
    let links = "[links]\nstore = \"sqlite\"\nsqlite_path = \"links.sqlite3\"\n";
    let text =
        config_text(port, &format!("{links}\n{}", tokens.section())).replace("{admin_port}", &admin_port.to_string());
    std::fs::write(dir.path().join("bridge.toml"), text).expect("config");
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    let process =
        common::process::BridgeProcess::start(&dir.path().join("bridge.toml"), addr, dir.path().join("bridge.log"))
            .await;
    let admin = format!("http://127.0.0.1:{admin_port}");
    assert_eq!(
        api(
            "PUT",
            &format!("{admin}/admin/v1/apps/numo/schools/66RR"),
            Some(ANNA),
            None
        )
        .await
        .0,
        201
    );
    assert_eq!(
        api(
            "DELETE",
            &format!("{admin}/admin/v1/apps/numo/schools/66RR"),
            Some(ANNA),
            None
        )
        .await
        .0,
        200
    );
    let import = format!("{admin}/admin/v1/apps/numo/links/import?format=magister&code_column=stamnr");
    assert_eq!(api("POST", &import, Some(BOB), Some(MAGISTER)).await.0, 200);
    let remove = format!("{admin}/admin/v1/apps/numo/links?federated_id=35895%40magis.schoolnaam");
    assert_eq!(api("DELETE", &remove, Some(BOB), None).await.0, 200);
    let (browser, csrf) = signed_in(&admin, ANNA).await;
    let out = browser
        .post(format!("{admin}/admin/sign-out"))
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let log = process.log_text();
    let audited = |event: &str, by: &str| {
        log.lines()
            .any(|l| l.contains("audit") && l.contains(event) && l.contains(&format!("token:{by}")))
    };
    for (event, by) in [
        ("school_activated", "anna"),
        ("school_deactivated", "anna"),
        ("links_imported", "bob"),
        ("link_removed", "bob"),
        ("admin_signed_in", "anna"),
        ("admin_signed_out", "anna"),
    ] {
        assert!(audited(event, by), "no audit line {event} by token:{by} in:\n{log}");
    }
    assert!(log.contains("admin listener up"), "{log}");
    assert!(!log.contains(ANNA) && !log.contains(BOB), "a token in the log:\n{log}");
}

/// `admin.metrics`: the counters move to the admin listener (no token: a scraper's) and the
/// public listener, which students' browsers reach, no longer shows them.
#[tokio::test]
async fn metrics_can_move_to_the_admin_listener() {
    let tokens = both_tokens();
    let open = Bridge::start_with(&tokens.section()).await;
    assert_eq!(
        reqwest::get(format!("{}/metrics", open.base))
            .await
            .expect("get")
            .status(),
        200,
        "by default /metrics is public"
    );
    assert_eq!(
        reqwest::get(format!("{}/metrics", admin_of(&open)))
            .await
            .expect("get")
            .status(),
        404,
        "and not on the admin listener"
    );
    drop(open);

    let section = tokens.section().replace("[admin]\n", "[admin]\nmetrics = true\n");
    let moved = Bridge::start_with(&section).await;
    let public = reqwest::get(format!("{}/metrics", moved.base)).await.expect("get");
    assert_eq!(public.status(), 404);
    assert!(!public.text().await.expect("body").contains("entree_bridge_"));
    let admin = reqwest::get(format!("{}/metrics", admin_of(&moved)))
        .await
        .expect("get");
    assert_eq!(admin.status(), 200);
    let text = admin.text().await.expect("body");
    assert!(
        text.contains(&format!(
            "entree_bridge_build_info{{version=\"{}\",demo=\"true\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    // The public listener's refusal of /metrics is itself counted, as no app's address.
    assert!(
        text.contains("entree_bridge_requests_refused_total{app=\"-\",code=\"unknown_app\"} 1"),
        "{text}"
    );
}
