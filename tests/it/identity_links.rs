//! The identity layer against a running bridge, each scenario on SQLite and on the machine's
//! real PostgreSQL (a database of the test's own): resolution order, first-time linking with
//! its hostile cases, and two browsers linking the same student at once.

use crate::common;

use base64::Engine;
use common::*;
use entree_bridge::demo::tokens::sign_hs256;
use entree_bridge::store::links::{ImportEntry, LinkSource};
use serde_json::{json, Value};

const SECRET: &str = "a-link-secret-shared-with-the-app-0123456789";
const LINK_URL: &str = "https://app.example.nl/entree/link";

pub(crate) fn linking_app() -> String {
    format!(
        r#"
[apps.link]
federation = "kennisnet"
base_url = "http://127.0.0.1:{{port}}/link"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.link.person]
attribute = "nlEduPersonRealId"
linking = true
link_url = "{LINK_URL}"
link_secret = "{SECRET}"
[apps.link.handoff]
callback_url = "https://app.example.nl/sso/callback"
"#
    )
}

/// A bridge with the linking app `link` beside `numo` and `open`.
async fn bridge(links: Links) -> Bridge {
    Bridge::start_links(links, &linking_app()).await
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json")
}

/// Logs `real_id` in to `link` and returns the link_request claims (the ACS must redirect).
async fn start_linking(client: &reqwest::Client, b: &Bridge, real_id: &str) -> Value {
    start_linking_as(client, b, real_id, &["student", "member"]).await
}

/// [`start_linking`] for a person of `affiliation` (eduPersonAffiliation).
async fn start_linking_as(client: &reqwest::Client, b: &Bridge, real_id: &str, affiliation: &[&str]) -> Value {
    let login = start_login(client, b, "link", None).await;
    let spec = with_attribute(b.spec("link", Some(&login.request_id)), "nlEduPersonRealId", &[real_id]);
    let spec = with_attribute(spec, "eduPersonAffiliation", affiliation);
    let xml = b.idp.response(&spec).expect("sign");
    let resp = post_acs_response(client, b, "link", &xml, Some(&login.relay_state)).await;
    assert_eq!(resp.status(), 302, "an unknown student is sent to link");
    let location = resp.headers()["location"].to_str().expect("location").to_string();
    assert!(location.starts_with(&format!("{LINK_URL}?link_request=")), "{location}");
    let token = location.split_once("link_request=").expect("token").1;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(
        header["typ"], "link-request+jwt",
        "a link request can never pass for a hand-off token"
    );
    assert!(claims_of(token).get("sub").is_none());
    claims_of(token)
}

fn link_response(b: &Bridge, jti: &str, extra: Value) -> String {
    let mut claims = json!({"aud": b.base, "jti": jti, "exp": chrono::Utc::now().timestamp() + 120});
    for (k, v) in extra.as_object().expect("object") {
        claims[k] = v.clone();
    }
    sign_hs256(SECRET.as_bytes(), &claims).expect("sign")
}

async fn complete(client: &reqwest::Client, b: &Bridge, token: &str) -> AcsOutcome {
    let url = format!("{}/link/saml2/kennisnet/link/complete?link_response={token}", b.base);
    let resp = client.get(url).send().await.expect("complete");
    AcsOutcome {
        status: resp.status().as_u16(),
        body: resp.text().await.expect("body"),
    }
}

async fn links_of(b: &Bridge, app: &str) -> Vec<(String, String, LinkSource)> {
    b.links
        .list(Some(app), None)
        .await
        .expect("list")
        .into_iter()
        .map(|l| (l.federated_id, l.person_code, l.source))
        .collect()
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Links::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(super::Links::Postgres).await })*
        }
    };
}

on_both_stores!(
    a_stored_link_wins_over_the_rule,
    an_unknown_student_links_once_and_is_recognised_next_time,
    forged_expired_and_foreign_link_responses_store_nothing,
    a_replayed_link_response_is_refused,
    a_cancelled_link_ends_cleanly,
    two_browsers_linking_the_same_student_get_one_link,
    a_school_that_has_not_activated_the_app_gets_403_and_nothing_is_stored,
    instances_starting_together_and_concurrent_imports_all_succeed,
    a_teacher_linking_to_a_students_account_is_warned_about_or_refused,
);

/// `links ...` run against the bridge's own config.
fn links_cli(b: &Bridge, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
        .env("RUST_LOG", "warn")
        .args(["links", "--config"])
        .arg(b.dir.path().join("bridge.toml"))
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Links one federated id of `affiliation` to `person_code` through the link page.
async fn link_as(b: &Bridge, real_id: &str, affiliation: &[&str], person_code: &str) -> AcsOutcome {
    let client = client();
    let request = start_linking_as(&client, b, real_id, affiliation).await;
    let jti = request["jti"].as_str().expect("jti");
    complete(&client, b, &link_response(b, jti, json!({"sub": person_code}))).await
}

/// A teacher who links himself to a student's account (one person code, a student's and an
/// employee's federated id) is warned about in the log, the metrics and `links list`; with
/// `person.mixed_affiliations = "refuse"` the link is refused and nothing stored. A log
/// pseudonym leads back to its link.
async fn a_teacher_linking_to_a_students_account_is_warned_about_or_refused(links: Links) {
    let b = bridge(links).await;
    assert_eq!(
        link_as(&b, "s-1@school-a.nl", &["student", "member"], "P-9")
            .await
            .status,
        200
    );
    // A second id of the same kind (a student who moved schools) is no warning.
    assert_eq!(link_as(&b, "s-1b@school-b.nl", &["student"], "P-9").await.status, 200);
    let (_, listed, _) = links_cli(&b, &["list", "--app", "link", "--person-code", "P-9"]);
    assert!(!listed.contains("MIXED"), "{listed}");
    assert!(
        listed.starts_with("app\tfederated_id\tperson_code\tsource\taffiliation\tcreated\tlast_login\n"),
        "{listed}"
    );

    let teacher = link_as(&b, "t-1@school-a.nl", &["employee", "member"], "P-9").await;
    assert_eq!(teacher.status, 200, "warn (the default) links: {}", teacher.body);
    let metrics = reqwest::get(format!("{}/metrics", b.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("entree_bridge_links_mixed_affiliations_total{app=\"link\"} 1"),
        "{metrics}"
    );
    let (code, listed, err) = links_cli(&b, &["list", "--app", "link", "--person-code", "P-9"]);
    assert_eq!(code, 0, "{err}");
    assert!(listed.contains("3 link(s)"), "{listed}");
    let teacher_line = listed
        .lines()
        .find(|l| l.contains("t-1@school-a.nl"))
        .expect("the teacher's link");
    assert!(teacher_line.contains("\tlinked\temployee\t"), "{teacher_line}");
    assert!(teacher_line.ends_with("MIXED AFFILIATIONS"), "{teacher_line}");
    assert!(
        listed
            .contains("warning: person code P-9 in link is linked to both a student's and an employee's federated id"),
        "{listed}"
    );
    // Readable times, not unix seconds.
    let year = chrono::Utc::now().format("%Y-").to_string();
    assert!(
        teacher_line.contains(&year) && teacher_line.contains(" UTC"),
        "{teacher_line}"
    );

    // The log names people by pseudonym; the desk finds the link behind one.
    let pseudonym = b.settings.pseudonyms.of("t-1@school-a.nl");
    let (code, found, err) = links_cli(&b, &["find-pseudonym", "--app", "link", &pseudonym]);
    assert_eq!(code, 0, "{err}");
    assert!(
        found.contains("is the federated id t-1@school-a.nl in link (linked to person code P-9)"),
        "{found}"
    );
    let (code, _, err) = links_cli(&b, &["find-pseudonym", "p:0000000000000000"]);
    assert_eq!(code, 1);
    assert!(err.contains("no link has p:0000000000000000"), "{err}");
    drop(b);

    // An app that refuses: the teacher's link is not made.
    let refusing = linking_app().replace("linking = true", "linking = true\nmixed_affiliations = \"refuse\"");
    let b = Bridge::start_links(links, &refusing).await;
    assert_eq!(link_as(&b, "s-2@school-a.nl", &["student"], "P-20").await.status, 200);
    link_as(&b, "t-2@school-a.nl", &["employee"], "P-20")
        .await
        .assert_rejected(403, "link_affiliation_mismatch");
    assert_eq!(
        links_of(&b, "link").await,
        [("s-2@school-a.nl".to_string(), "P-20".to_string(), LinkSource::Linked)],
        "nothing stored for the refused link"
    );
}

async fn instances_starting_together_and_concurrent_imports_all_succeed(links: Links) {
    use entree_bridge::store::links::LinkStore;
    let b = bridge(links).await;
    // A fresh database for PostgreSQL (the bridge's own is migrated already).
    let fresh = match links {
        Links::Postgres => Some(TestDatabase::create().await),
        Links::Sqlite => None,
    };
    let target = match &fresh {
        Some(db) => entree_bridge::config::LinksTarget::Postgres(db.url.clone()),
        None => entree_bridge::config::LinksTarget::Sqlite(b.path("fresh.sqlite3")),
    };
    let opened =
        futures_join_all((0..4).map(|_| LinkStore::open_target(&target, entree_bridge::store::links::DEFAULT_TIMEOUT)))
            .await;
    let stores: Vec<LinkStore> = opened.into_iter().map(|r| r.expect("every instance starts")).collect();
    let imports = stores.iter().enumerate().map(|(i, s)| {
        let entries: Vec<ImportEntry> = (0..20)
            .map(|n| ImportEntry {
                line: n + 2,
                federated_id: format!("{i}-{n}@x"),
                person_code: format!("{n}"),
            })
            .collect();
        async move { s.import("open", &entries, false).await }
    });
    for outcome in futures_join_all(imports).await {
        assert_eq!(outcome.expect("no import fails on a busy store").added.len(), 20);
    }
    assert_eq!(stores[0].list(Some("open"), None).await.expect("list").len(), 80);
    for s in &stores {
        s.close().await;
    }
}

/// Runs futures concurrently on this task (no extra dependency for join_all).
async fn futures_join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results = Vec::new();
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        outputs[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.extend(outputs.into_iter().flatten());
    results
}

async fn a_school_that_has_not_activated_the_app_gets_403_and_nothing_is_stored(links: Links) {
    let b = bridge(links).await;
    let (outcome, spec) = complete_login(&client(), &b, "numo", |s| {
        with_attribute(s, "nlEduPersonHomeOrganizationId", &["55QQ"])
    })
    .await;
    outcome.assert_rejected(403, "school_not_activated");
    assert!(outcome.body.contains("55QQ"));
    assert!(links_of(&b, "numo").await.is_empty());
    assert!(b.assertion_unseen(&spec.assertion_id).await);
}

async fn a_stored_link_wins_over_the_rule(links: Links) {
    let b = bridge(links).await;
    let client = client();
    let entry = ImportEntry {
        line: 2,
        federated_id: "100231@school-a.nl".into(),
        person_code: "MAG-109999".into(),
    };
    b.links.import("numo", &[entry], false).await.expect("import");
    let (outcome, _) = complete_login(&client, &b, "numo", |s| s).await;
    assert_eq!(
        claims_of(&outcome.token().expect("token"))["sub"],
        "MAG-109999",
        "(1) the stored link"
    );
    assert!(b.links.remove("numo", "100231@school-a.nl").await.expect("remove"));
    let (outcome, _) = complete_login(&client, &b, "numo", |s| s).await;
    assert_eq!(
        claims_of(&outcome.token().expect("token"))["sub"],
        "100231",
        "(2) the rule"
    );
    let last_login = b.links.list(Some("numo"), None).await.expect("list");
    assert!(last_login.is_empty());
}

async fn an_unknown_student_links_once_and_is_recognised_next_time(links: Links) {
    let b = bridge(links).await;
    let client = client();
    let request = start_linking(&client, &b, "s-42@school-a.nl").await;
    assert_eq!(request["aud"], "link");
    assert_eq!(request["iss"], b.base);
    assert_eq!(request["given_name"], "Sanne");
    assert_eq!(request["school"], "99XX");
    assert_eq!(
        request["return_url"],
        format!("{}/link/saml2/kennisnet/link/complete", b.base)
    );
    let (iat, exp) = (
        request["iat"].as_i64().expect("iat"),
        request["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, 600, "a pending link lives 10 minutes");
    assert!(
        links_of(&b, "link").await.is_empty(),
        "nothing is stored before the app answers"
    );

    let jti = request["jti"].as_str().expect("jti");
    let done = complete(&client, &b, &link_response(&b, jti, json!({"sub": "P-77"}))).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(claims_of(&done.token().expect("hand-off"))["sub"], "P-77");
    assert_eq!(
        links_of(&b, "link").await,
        [("s-42@school-a.nl".to_string(), "P-77".to_string(), LinkSource::Linked)]
    );

    // The next login goes straight through.
    let (again, _) = complete_login(&client, &b, "link", |s| {
        with_attribute(s, "nlEduPersonRealId", &["s-42@school-a.nl"])
    })
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(claims_of(&again.token().expect("token"))["sub"], "P-77");
    let stored = b.links.list(Some("link"), None).await.expect("list");
    assert!(stored[0].last_login_at.is_some());
}

async fn forged_expired_and_foreign_link_responses_store_nothing(links: Links) {
    let b = bridge(links).await;
    let client = client();
    let request = start_linking(&client, &b, "s-43@school-a.nl").await;
    let jti = request["jti"].as_str().expect("jti");
    let good = json!({"aud": b.base, "jti": jti, "sub": "P-1", "exp": chrono::Utc::now().timestamp() + 120});

    let forged = sign_hs256(b"not-the-secret-not-the-secret-xx", &good).expect("sign");
    complete(&client, &b, &forged)
        .await
        .assert_rejected(400, "link_response_signature");
    let expired = link_response(
        &b,
        jti,
        json!({"sub": "P-1", "exp": chrono::Utc::now().timestamp() - 1}),
    );
    complete(&client, &b, &expired)
        .await
        .assert_rejected(400, "link_response_expired");
    let wrong_aud = link_response(&b, jti, json!({"sub": "P-1", "aud": "https://elsewhere.example"}));
    complete(&client, &b, &wrong_aud)
        .await
        .assert_rejected(400, "link_response_audience");
    // Another browser holding the victim's genuine link_response.
    let genuine = link_response(&b, jti, json!({"sub": "P-1"}));
    complete(&common::client(), &b, &genuine)
        .await
        .assert_rejected(400, "link_browser_mismatch");
    assert!(
        links_of(&b, "link").await.is_empty(),
        "nothing is stored for any of them"
    );
    // None of them used up the pending link: the student's own browser still finishes.
    let done = complete(&client, &b, &genuine).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(links_of(&b, "link").await.len(), 1);
}

async fn a_replayed_link_response_is_refused(links: Links) {
    let b = bridge(links).await;
    let client = client();
    let request = start_linking(&client, &b, "s-44@school-a.nl").await;
    let token = link_response(&b, request["jti"].as_str().expect("jti"), json!({"sub": "P-2"}));
    assert_eq!(complete(&client, &b, &token).await.status, 200);
    complete(&client, &b, &token)
        .await
        .assert_rejected(400, "link_state_missing");
    assert_eq!(links_of(&b, "link").await.len(), 1);
}

async fn a_cancelled_link_ends_cleanly(links: Links) {
    let b = bridge(links).await;
    let client = client();
    let request = start_linking(&client, &b, "s-45@school-a.nl").await;
    let jti = request["jti"].as_str().expect("jti");
    let cancel = complete(&client, &b, &link_response(&b, jti, json!({"error": "cancelled"}))).await;
    assert_eq!(cancel.status, 200);
    assert!(cancel.body.contains("Koppelen afgebroken") && cancel.token().is_none());
    complete(&client, &b, &link_response(&b, jti, json!({"sub": "P-3"})))
        .await
        .assert_rejected(400, "link_state_missing");
    // Coming back without an answer (the app's "back" link) is a cancel too.
    start_linking(&client, &b, "s-45@school-a.nl").await;
    let resp = client
        .get(format!("{}/link/saml2/kennisnet/link/complete", b.base))
        .send()
        .await
        .expect("back");
    assert_eq!(resp.status(), 200);
    let cleared = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter(|c| {
            c.to_str()
                .is_ok_and(|c| c.starts_with("eb_link_") && c.contains("Max-Age=0"))
        })
        .count();
    assert_eq!(cleared, 1, "the link cookie is cleared");
    assert!(resp.text().await.expect("body").contains("Koppelen afgebroken"));
    assert!(links_of(&b, "link").await.is_empty());
}

async fn two_browsers_linking_the_same_student_get_one_link(links: Links) {
    let b = bridge(links).await;
    let (first, second) = (client(), client());
    let r1 = start_linking(&first, &b, "s-46@school-a.nl").await;
    let r2 = start_linking(&second, &b, "s-46@school-a.nl").await;
    let t1 = link_response(&b, r1["jti"].as_str().expect("jti"), json!({"sub": "P-FIRST"}));
    let t2 = link_response(&b, r2["jti"].as_str().expect("jti"), json!({"sub": "P-SECOND"}));
    let (a, c) = tokio::join!(complete(&first, &b, &t1), complete(&second, &b, &t2));
    assert_eq!((a.status, c.status), (200, 200), "{} / {}", a.body, c.body);
    let (sub_a, sub_c) = (
        claims_of(&a.token().expect("a"))["sub"].clone(),
        claims_of(&c.token().expect("c"))["sub"].clone(),
    );
    assert_eq!(sub_a, sub_c, "both browsers are logged in as the one linked person");
    let stored = links_of(&b, "link").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(json!(stored[0].1), sub_a);
}
