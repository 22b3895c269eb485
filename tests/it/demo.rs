//! `entree-bridge demo` as a newcomer runs it: the real binary on loopback, walked through
//! with HTTP the way a browser would (the development IdP's login page, its auto-POST form).

use crate::common;

use std::time::Duration;

use base64::Engine;
use common::process::BridgeProcess;
use common::*;

struct Demo {
    _process: BridgeProcess,
    dir: tempfile::TempDir,
    base: String,
    /// The support desk, on the port after the demo's.
    admin: String,
}

async fn start_demo() -> Demo {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("config")).expect("mkdir");
    let config = dir.path().join("config").join("entree-bridge.toml");
    std::fs::copy(repo_root().join("config").join("entree-bridge.toml"), &config).expect("copy");
    let port = common::services::free_port_pair();
    let listen = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
        .args(["demo", "--listen", &listen, "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("demo.log")).expect("log"))
        .spawn()
        .expect("demo starts");
    let process = BridgeProcess::adopt(child, dir.path().join("demo.log"), listen.parse().expect("addr"));
    process.wait_healthy(Duration::from_secs(30)).await;
    Demo {
        _process: process,
        dir,
        base: format!("http://{listen}"),
        admin: format!("http://127.0.0.1:{}", port + 1),
    }
}

fn field<'a>(page: &'a str, name: &str) -> &'a str {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in {page}")) + marker.len();
    &page[start..start + page[start..].find('"').expect("end")]
}

/// Clicks the app's elo link, picks `student` at the development IdP, and returns the
/// bridge's answer to the IdP's auto-submitted form.
async fn log_in(client: &reqwest::Client, demo: &Demo, app: &str, student: &str) -> reqwest::Response {
    log_in_at(
        client,
        demo,
        &format!("{}/{app}/saml2/kennisnet/login", demo.base),
        student,
    )
    .await
}

/// [`log_in`] from the login URL `login` (an elo link with a target).
async fn log_in_at(client: &reqwest::Client, demo: &Demo, login: &str, student: &str) -> reqwest::Response {
    let login = client.get(login).send().await.expect("login");
    assert_eq!(login.status(), 302);
    let idp_page = client
        .get(login.headers()["location"].to_str().expect("location"))
        .send()
        .await
        .expect("idp")
        .text()
        .await
        .expect("page");
    assert!(idp_page.contains(&format!("value=\"{student}\"")), "{idp_page}");
    let form = [
        ("student", student),
        ("request_id", field(&idp_page, "request_id")),
        ("sp", field(&idp_page, "sp")),
        ("relay_state", field(&idp_page, "relay_state")),
    ];
    let post_page = client
        .post(format!("{}/demo/idp/login", demo.base))
        .form(&form)
        .send()
        .await
        .expect("idp login")
        .text()
        .await
        .expect("page");
    let action_start = post_page.find("action=\"").expect("form action") + 8;
    let action = &post_page[action_start..action_start + post_page[action_start..].find('"').expect("end")];
    client
        .post(action.replace("&amp;", "&"))
        .form(&[
            ("SAMLResponse", field(&post_page, "SAMLResponse")),
            ("RelayState", field(&post_page, "RelayState")),
        ])
        .send()
        .await
        .expect("acs")
}

fn sub_of(page: &str) -> String {
    let token = field(page, "token");
    let payload = token.split('.').nth(1).expect("payload");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json");
    claims["sub"].as_str().expect("sub").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_every_path() {
    let demo = start_demo().await;
    let start = reqwest::get(format!("{}/", demo.base))
        .await
        .expect("start")
        .text()
        .await
        .expect("page");
    for name in [
        "Numo", "Rooster", "Klas", "Portaal", "Sanne", "Lotte", "Mila", "Magister",
    ] {
        assert!(start.contains(name), "the start page mentions {name}");
    }

    // A student of an activated school: a JWT with her person code.
    let ok = log_in(&client(), &demo, "numo", "sanne").await;
    assert_eq!(ok.status(), 200);
    assert_eq!(sub_of(&ok.text().await.expect("page")), "100231");

    // The sample app checks the token as the docs ask of apps: once, and shows it raw for the
    // integration snippets; the same token posted again is refused as replayed.
    let again = log_in(&client(), &demo, "numo", "sanne")
        .await
        .text()
        .await
        .expect("page");
    let token = field(&again, "token").to_string();
    let callback = format!("{}/demo/app/callback", demo.base);
    let first = client()
        .post(&callback)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("callback");
    assert_eq!(first.status(), 200);
    let first = first.text().await.expect("page");
    assert!(
        first.contains(&format!(">{token}</textarea>")),
        "the raw token: {first}"
    );
    assert!(first.contains("id=\"copy\""), "a copy button: {first}");
    let replay = client()
        .post(&callback)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("callback");
    assert_eq!(replay.status(), 401);
    assert!(replay.text().await.expect("page").contains("token replayed"));

    // A student known from the imported Magister file: her number, not her login name.
    let imported = log_in(&client(), &demo, "numo", "mila").await;
    assert_eq!(imported.status(), 200);
    assert_eq!(sub_of(&imported.text().await.expect("page")), "300512");

    // A school that has not activated the app: the 403 page that tells the school what to do.
    let refused = log_in(&client(), &demo, "numo", "lotte").await;
    assert_eq!(refused.status(), 403);
    let page = refused.text().await.expect("page");
    assert!(page.contains("<code>school_not_activated</code>"), "{page}");
    assert!(page.contains("88YY"));

    // The headers-mode app: a session, then the sample app shows the headers it got.
    let browser = client();
    let login = log_in(&browser, &demo, "rooster", "sanne").await;
    assert_eq!(login.status(), 302);
    let app_page = browser
        .get(format!("{}/rooster/", demo.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("rooster");
    assert_eq!(app_page.status(), 200);
    let app_page = app_page.text().await.expect("page");
    assert!(app_page.contains("x-bridge-person-code"), "{app_page}");
    assert!(app_page.contains("<code>100231</code>"), "{app_page}");
    assert!(app_page.contains("x-bridge-token"), "{app_page}");
    // Its logout runs Single Logout at the development IdP and says so.
    let to_idp = browser
        .get(format!("{}/rooster/saml2/kennisnet/logout", demo.base))
        .send()
        .await
        .expect("logout");
    assert_eq!(to_idp.status(), 302);
    let slo = to_idp.headers()["location"].to_str().expect("location").to_string();
    assert!(
        slo.starts_with(&format!("{}/demo/idp/slo?SAMLRequest=", demo.base)),
        "{slo}"
    );
    let to_sls = browser.get(&slo).send().await.expect("idp slo");
    assert_eq!(to_sls.status(), 302);
    let sls = to_sls.headers()["location"].to_str().expect("location").to_string();
    let done = browser.get(&sls).send().await.expect("sls");
    assert_eq!(done.status(), 200);
    let done = done.text().await.expect("page");
    assert!(
        done.contains("Je sessie bij Rooster") && done.contains("ook uitgelogd bij Entree"),
        "{done}"
    );
    let after = browser
        .get(format!("{}/rooster/", demo.base))
        .header("accept", "text/html")
        .send()
        .await
        .expect("rooster");
    assert_ne!(after.status(), 200, "the session ended");

    // A student the linking app does not know: its link page, her existing account, linked;
    // the next login goes straight in.
    let browser = client();
    let to_link = log_in(&browser, &demo, "klas", "sanne").await;
    assert_eq!(to_link.status(), 302);
    let link_url = to_link.headers()["location"].to_str().expect("location").to_string();
    assert!(link_url.contains("/demo/app/link?link_request="), "{link_url}");
    let link_page = browser
        .get(&link_url)
        .send()
        .await
        .expect("link page")
        .text()
        .await
        .expect("page");
    assert!(link_page.contains("Sanne") && link_page.contains("99XX"), "{link_page}");
    let wrong = browser
        .post(format!("{}/demo/app/link", demo.base))
        .form(&[
            ("link_request", field(&link_page, "link_request")),
            ("username", "sanne.klas"),
            ("password", "guess"),
        ])
        .send()
        .await
        .expect("submit");
    assert_eq!(wrong.status(), 400, "a wrong password links nothing");
    // In Dutch first, with a way to try again: the same link page (its request still good).
    let wrong = wrong.text().await.expect("page");
    assert!(
        wrong.contains("Koppelen geweigerd") && wrong.contains("Opnieuw proberen"),
        "{wrong}"
    );
    assert!(wrong.contains("href=\"/demo/app/link?link_request="), "{wrong}");
    let answered = browser
        .post(format!("{}/demo/app/link", demo.base))
        .form(&[
            ("link_request", field(&link_page, "link_request")),
            ("username", "sanne.klas"),
            ("password", "demo"),
        ])
        .send()
        .await
        .expect("submit");
    assert_eq!(answered.status(), 302);
    let back = answered.headers()["location"].to_str().expect("location").to_string();
    assert!(
        back.contains("/klas/saml2/kennisnet/link/complete?link_response="),
        "{back}"
    );
    let linked = browser.get(&back).send().await.expect("complete");
    assert_eq!(linked.status(), 200);
    assert_eq!(sub_of(&linked.text().await.expect("page")), "KL-1001");
    let again = log_in(&client(), &demo, "klas", "sanne").await;
    assert_eq!(again.status(), 200, "linked once, then straight in");
    assert_eq!(sub_of(&again.text().await.expect("page")), "KL-1001");

    // The OpenID Connect app: its elo link lands in its sample app, which signs in with its
    // OIDC client library; the bridge's session answers the authorization at once.
    let browser = client();
    let elo_link = start_page_link(&start, "/portaal/saml2/kennisnet/login");
    let landed = log_in_at(&browser, &demo, &elo_link, "sanne").await;
    assert_eq!(landed.status(), 302);
    let mut next = landed.headers()["location"].to_str().expect("location").to_string();
    assert_eq!(next, format!("{}/demo/oidc/login", demo.base));
    let mut hops = Vec::new();
    let page = loop {
        let resp = browser.get(&next).send().await.expect("hop");
        hops.push(next.split('?').next().unwrap_or("").replace(&demo.base, ""));
        if resp.status() != 302 {
            break resp.text().await.expect("page");
        }
        next = resp.headers()["location"].to_str().expect("location").to_string();
        assert!(hops.len() < 6, "{hops:?}");
    };
    assert_eq!(hops, ["/demo/oidc/login", "/oidc/authorize", "/demo/oidc/callback"]);
    assert!(page.contains("Ingelogd met OpenID Connect"), "{page}");
    assert!(page.contains("<b>100231</b>") && page.contains("<b>99XX</b>"), "{page}");
    assert!(
        page.contains("portaal-demo") && page.contains("nonce"),
        "the id_token's claims: {page}"
    );
}

/// The demo's support desk: its token written on first run (owner-only), its API answering
/// with it and refusing without, its pages signed in to with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_has_a_support_desk() {
    use std::os::unix::fs::PermissionsExt;
    let demo = start_demo().await;
    let tokens = demo.dir.path().join("data").join("demo").join("admin-tokens");
    let mode = std::fs::metadata(&tokens).expect("the token file").permissions().mode();
    assert_eq!(mode & 0o077, 0, "owner-only: {mode:o}");
    let text = std::fs::read_to_string(&tokens).expect("tokens");
    let token = text.split_whitespace().nth(1).expect("desk TOKEN").to_string();
    let school = format!("{}/admin/v1/apps/numo/schools/99XX", demo.admin);
    let refused = reqwest::Client::new().get(&school).send().await.expect("api");
    assert_eq!(refused.status(), 401);
    let answered = reqwest::Client::new()
        .get(&school)
        .bearer_auth(&token)
        .send()
        .await
        .expect("api");
    assert_eq!(answered.status(), 200);
    let json: serde_json::Value = answered.json().await.expect("json");
    assert_eq!(json["app"], "numo");
    let page = reqwest::get(format!("{}/admin/", demo.admin)).await.expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("text").contains("name=\"token\""));
    let public = reqwest::get(format!("{}/admin/", demo.base)).await.expect("public");
    assert_eq!(public.status(), 404, "not on the public port");
}

/// The href of the start page's link that contains `path`, unescaped.
fn start_page_link(start: &str, path: &str) -> String {
    let at = start.find(path).unwrap_or_else(|| panic!("no {path} link in {start}"));
    let begin = start[..at].rfind('"').expect("href start") + 1;
    let end = at + start[at..].find('"').expect("href end");
    start[begin..end].replace("&amp;", "&")
}

/// Where the browser test keeps its screenshots (CI artifacts).
/// What a screen reader and a phone need of a page, as the browser sees it: a language, one
/// `h1`, a viewport, nothing wider than the screen, every field labelled, every image loaded
/// and named, no empty link or button, and text (body, links, buttons) at WCAG AA contrast
/// (4.5:1) against its background. The empty string when all hold.
const READABLE: &str = r#"(() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push('no lang');
  const h1 = document.querySelectorAll('h1').length;
  if (h1 !== 1) problems.push(h1 + ' h1 headings');
  if (!document.querySelector('meta[name=viewport]')) problems.push('no viewport');
  const wide = document.documentElement.scrollWidth;
  if (wide > window.innerWidth + 1) problems.push('wider than the screen: ' + wide + ' > ' + window.innerWidth);
  for (const i of document.querySelectorAll('img')) {
    if (!i.getAttribute('alt')) problems.push('image without alt ' + i.src);
    if (!i.complete || i.naturalWidth === 0) problems.push('image not loaded ' + i.src);
  }
  for (const e of document.querySelectorAll('input:not([type=hidden]), textarea, select')) {
    const labelled = (e.id && document.querySelector('label[for="' + e.id + '"]')) || e.closest('label') || e.getAttribute('aria-label');
    if (!labelled) problems.push('unlabelled field ' + (e.name || e.id));
  }
  for (const e of document.querySelectorAll('a, button')) {
    if (!e.textContent.trim() && !e.getAttribute('aria-label')) problems.push('empty link or button');
  }
  const rgb = (c) => (c.match(/[\d.]+/g) || []).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (e) => {
    for (; e; e = e.parentElement) {
      const c = getComputedStyle(e).backgroundColor;
      if (c && c !== 'transparent' && !c.startsWith('rgba(0, 0, 0, 0)')) return rgb(c);
    }
    return [255, 255, 255];
  };
  for (const e of document.querySelectorAll('p, li, a, button, h1, small, code')) {
    const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(background(e))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) problems.push(e.tagName + ' contrast ' + ratio.toFixed(2));
  }
  return problems.join('; ');
})()"#;

fn artifacts() -> std::path::PathBuf {
    repo_root().join("target").join("browser-artifacts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_walks_the_demo() {
    let demo = start_demo().await;
    let mut browser = common::browser::Browser::launch().await;

    // Click the app on the start page, pick a student at the IdP, land in the sample app.
    browser.goto(&format!("{}/", demo.base)).await;
    browser
        .wait_for(
            "document.querySelector('a[href*=\"/numo/saml2/kennisnet/login\"]')",
            Duration::from_secs(10),
        )
        .await;
    browser.screenshot(&artifacts().join("demo-start.png")).await;
    browser.click("a[href*=\"/numo/saml2/kennisnet/login\"]").await;
    browser
        .wait_for(
            "document.querySelector('button[value=\"sanne\"]')",
            Duration::from_secs(10),
        )
        .await;
    browser.click("button[value=\"sanne\"]").await;
    // The IdP's and the bridge's auto-submitting forms run by themselves (their scripts are
    // allowed by hash in the CSP).
    browser
        .wait_for(
            "location.pathname === '/demo/app/callback' && document.body.innerText.includes('100231')",
            Duration::from_secs(15),
        )
        .await;
    let text = browser.eval("document.body.innerText").await;
    assert!(
        text.as_str().is_some_and(|t| t.contains("numo") && t.contains("99XX")),
        "{text}"
    );
    browser.screenshot(&artifacts().join("demo-jwt-app.png")).await;
    // The raw token for the integration snippets, and its copy button (a script the page's
    // CSP allows by hash) works.
    let token = browser.eval("document.getElementById('token').value").await;
    assert!(token.as_str().is_some_and(|t| t.split('.').count() == 3), "{token}");
    browser.click("#copy").await;
    browser
        .wait_for(
            "document.getElementById('copy').textContent.includes('Gekopieerd')",
            Duration::from_secs(5),
        )
        .await;

    // The pages a student reaches off the happy path: styled, in the browser's language
    // (headless Chromium asks for English), readable (one
    // heading, labelled fields, contrast, a phone's viewport), with a way on.
    for (path, says, shot) in [
        (
            "/numo/saml2/kennisnet/acs",
            "This page cannot be opened again",
            "acs-get.png",
        ),
        ("/numo/saml2/kennisnet/logout", "keeps its own login", "logout-jwt.png"),
        (
            "/numo/saml2/kennisnet/login?target=https://evil.example",
            "target_not_allowed",
            "refused-target.png",
        ),
    ] {
        browser.goto(&format!("{}{path}", demo.base)).await;
        browser
            .wait_for(
                &format!("document.body.innerText.includes('{says}')"),
                Duration::from_secs(10),
            )
            .await;
        let problems = browser.eval(READABLE).await;
        assert_eq!(problems.as_str(), Some(""), "{path}: {problems}");
        let again = browser
            .eval("document.querySelector('a[href$=\"/numo/saml2/kennisnet/login\"]') !== null")
            .await;
        assert_eq!(again.as_bool(), Some(true), "{path}: a new login is offered");
        browser.screenshot(&artifacts().join(shot)).await;
    }
    // The check sees what it is for: pale text (set through the CSSOM: the CSP blocks inline
    // style attributes), an unlabelled field, a second heading, a wide block, a nameless image.
    browser
        .eval("document.body.insertAdjacentHTML('beforeend', '<h1>x</h1><input name=\"q\"><img src=\"/nowhere.png\">'); const p = document.createElement('p'); p.textContent = 'pale'; p.style.color = '#bbb'; p.style.width = '3000px'; document.body.append(p)")
        .await;
    let problems = browser.eval(READABLE).await;
    let problems = problems.as_str().unwrap_or_default();
    for expected in [
        "2 h1 headings",
        "unlabelled field q",
        "P contrast",
        "wider than the screen",
        "image without alt",
        "image not loaded",
    ] {
        assert!(problems.contains(expected), "{expected:?} in {problems:?}");
    }

    // On a phone (375 CSS pixels, the narrowest common one): Numo's branded pages (its logo
    // loads under the page's CSP, its accent colour keeps AA contrast), the support desk's
    // sign-in and its overview after signing in.
    browser.phone(375).await;
    for (path, says, shot) in [
        (
            "/numo/saml2/kennisnet/acs",
            "This page cannot be opened again",
            "phone-acs-get.png",
        ),
        (
            "/numo/saml2/kennisnet/logout",
            "keeps its own login",
            "phone-logout-jwt.png",
        ),
    ] {
        browser.goto(&format!("{}{path}", demo.base)).await;
        browser
            .wait_for(
                &format!("document.body.innerText.includes('{says}') && document.querySelector('header img').complete"),
                Duration::from_secs(10),
            )
            .await;
        let problems = browser.eval(READABLE).await;
        assert_eq!(problems.as_str(), Some(""), "phone {path}: {problems}");
        let logo = browser.eval("document.querySelector('header img').naturalWidth").await;
        assert!(logo.as_u64().is_some_and(|w| w > 0), "the logo is drawn: {logo}");
        browser.screenshot(&artifacts().join(shot)).await;
    }
    let tokens = std::fs::read_to_string(demo.dir.path().join("data/demo/admin-tokens")).expect("tokens");
    let token = tokens.split_whitespace().nth(1).expect("desk TOKEN").to_string();
    browser.goto(&format!("{}/admin/", demo.admin)).await;
    browser
        .wait_for("document.getElementById('token') !== null", Duration::from_secs(10))
        .await;
    let problems = browser.eval(READABLE).await;
    assert_eq!(problems.as_str(), Some(""), "phone admin sign-in: {problems}");
    browser.screenshot(&artifacts().join("phone-admin-sign-in.png")).await;
    browser
        .eval(&format!(
            "document.getElementById('token').value = {}; document.querySelector('form[action=\"/admin/sign-in\"]').submit(); true",
            serde_json::json!(token)
        ))
        .await;
    browser
        .wait_for(
            "document.getElementById('person_code') !== null",
            Duration::from_secs(10),
        )
        .await;
    let problems = browser.eval(READABLE).await;
    assert_eq!(problems.as_str(), Some(""), "phone admin overview: {problems}");
    browser.screenshot(&artifacts().join("phone-admin-overview.png")).await;
    browser.desktop().await;

    // The linking path: the app's link page, an existing account, back in the sample app.
    browser.goto(&format!("{}/", demo.base)).await;
    browser
        .wait_for(
            "document.querySelector('a[href*=\"/klas/saml2/kennisnet/login\"]')",
            Duration::from_secs(10),
        )
        .await;
    browser.click("a[href*=\"/klas/saml2/kennisnet/login\"]").await;
    browser
        .wait_for(
            "document.querySelector('button[value=\"mila\"]')",
            Duration::from_secs(10),
        )
        .await;
    browser.click("button[value=\"mila\"]").await;
    browser
        .wait_for("location.pathname === '/demo/app/link'", Duration::from_secs(15))
        .await;
    let problems = browser.eval(READABLE).await;
    assert_eq!(problems.as_str(), Some(""), "the link page: {problems}");
    browser
        .eval("document.getElementById('username').value = 'mila.klas'; document.getElementById('password').value = 'demo'; true")
        .await;
    browser.click("button[type=\"submit\"]").await;
    browser
        .wait_for(
            "location.pathname === '/demo/app/callback' && document.body.innerText.includes('KL-1002')",
            Duration::from_secs(15),
        )
        .await;
    browser.screenshot(&artifacts().join("demo-linking.png")).await;
    let png = std::fs::read(artifacts().join("demo-linking.png")).expect("screenshot kept");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");

    // The OpenID Connect app: its elo link, a student at the IdP, the sample app signing in
    // with its OIDC client library and showing the verified id_token and userinfo.
    browser.goto(&format!("{}/", demo.base)).await;
    browser
        .wait_for(
            "document.querySelector('a[href*=\"/portaal/saml2/kennisnet/login\"]')",
            Duration::from_secs(10),
        )
        .await;
    browser.click("a[href*=\"/portaal/saml2/kennisnet/login\"]").await;
    browser
        .wait_for(
            "document.querySelector('button[value=\"daan\"]')",
            Duration::from_secs(10),
        )
        .await;
    browser.click("button[value=\"daan\"]").await;
    browser
        .wait_for(
            "location.pathname === '/demo/oidc/callback' && document.getElementById('userinfo') !== null",
            Duration::from_secs(15),
        )
        .await;
    let text = browser.eval("document.body.innerText").await;
    assert!(
        text.as_str()
            .is_some_and(|t| t.contains("t.jansen") && t.contains("99XX") && t.contains("employee")),
        "{text}"
    );
    browser.screenshot(&artifacts().join("demo-oidc-app.png")).await;
    // Its logout: the bridge's end_session, back to the sample app's start page.
    browser.click("#logout").await;
    browser
        .wait_for("location.pathname === '/demo/oidc/'", Duration::from_secs(15))
        .await;
}
