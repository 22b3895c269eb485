//! The support desk (issue 19), on SQLite and on PostgreSQL: a school activated with
//! `entree-bridge schools` is in force on a second running instance within 10 s (and a
//! deactivation likewise), a refused school's page carries its BRIN and the app's
//! activation contact, and `entree-bridge explain` finds the report of a failed login made
//! on the other instance, with no full federated id in it. Failure reports are bounded per
//! hour and purged.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use entree_bridge::store::reports::{FailureReport, Kept, ReportCheck};

pub(crate) const CONTACT: &str = "support@numo.example.nl";

pub(crate) fn with_contact(config: String) -> String {
    config.replacen(
        "schools = [\"99XX\", \"12AB03\"]",
        &format!("schools = [\"99XX\", \"12AB03\"]\nactivation_contact = \"{CONTACT}\""),
        1,
    )
}

fn cli(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
        .env("RUST_LOG", "warn")
        .env("USER", "desk-anna")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The reference on an error page.
pub(crate) fn reference_of(page: &str) -> String {
    let marker = "<code>";
    let last = page.rfind(marker).expect("a reference") + marker.len();
    page[last..page[last..].find('<').map(|e| last + e).expect("end")].to_string()
}

pub(crate) async fn login_of_school(bridge: &Bridge, school: &str) -> AcsOutcome {
    complete_login(&client(), bridge, "numo", |s| {
        with_attribute(s, "nlEduPersonHomeOrganizationId", &[school])
    })
    .await
    .0
}

/// Waits (at most 10 s, the promise) for a login of `school` at `bridge` to be accepted or
/// refused; returns how long it took.
pub(crate) async fn until_login(bridge: &Bridge, school: &str, accepted: bool) -> Duration {
    let start = Instant::now();
    loop {
        let outcome = login_of_school(bridge, school).await;
        if outcome.token().is_some() == accepted {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "after 10 s the login of {school} is still {}: {}",
            if accepted { "refused" } else { "accepted" },
            outcome.body
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Two instances on one link database: the links section of each.
async fn two_instances(links: Links) -> (Bridge, Bridge) {
    two_instances_with(links, "").await
}

/// [`two_instances`], the first one's config with `first_extra` appended.
pub(crate) async fn two_instances_with(links: Links, first_extra: &str) -> (Bridge, Bridge) {
    let first_config = |c: String| with_contact(c) + first_extra;
    match links {
        Links::Sqlite => {
            let first = Bridge::start_links_edited(
                "[links]\nstore = \"sqlite\"\nsqlite_path = \"links.sqlite3\"\n",
                first_config,
            )
            .await;
            let shared = first.path("links.sqlite3");
            let section = format!(
                "[links]\nstore = \"sqlite\"\nsqlite_path = {:?}\n",
                shared.display().to_string()
            );
            let second = Bridge::start_links_edited(&section, with_contact).await;
            (first, second)
        }
        Links::Postgres => {
            let db = TestDatabase::create().await;
            let section = format!("[links]\nstore = \"postgres\"\npostgres_url = \"{}\"\n", db.url);
            let first = Bridge::start_links_edited(&section, first_config).await;
            let mut second = Bridge::start_links_edited(&section, with_contact).await;
            second.database = Some(db);
            (first, second)
        }
    }
}

async fn activation_reaches_the_other_instance_and_explain_answers(links: Links) {
    let (a, b) = two_instances(links).await;
    // Refused on A: the page names the BRIN and the contact, in both languages.
    let refused = login_of_school(&a, "55QQ").await;
    refused.assert_rejected(403, "school_not_activated");
    assert!(refused.body.contains("<code>55QQ</code>"), "{}", refused.body);
    assert!(
        refused.body.contains(&format!("href=\"mailto:{CONTACT}\"")),
        "{}",
        refused.body
    );
    let nl = client()
        .get(format!("{}/metrics", a.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        nl.contains("entree_bridge_school_not_activated_total{app=\"numo\",school=\"55QQ\"} 1"),
        "{nl}"
    );
    let reference = reference_of(&refused.body);

    // explain, from B's config, finds A's report (kept off the request: give it a moment).
    let b_config = b.path("bridge.toml");
    let start = Instant::now();
    let report = loop {
        let (code, out, err) = cli(&b_config, &["explain", &reference, "--json"]);
        if code == 0 {
            break out;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no report for {reference}: {err}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let json: serde_json::Value = serde_json::from_str(&report).expect("json");
    assert_eq!(json["code"], "school_not_activated");
    assert_eq!(json["app"], "numo");
    assert_eq!(json["school"], "55QQ");
    assert!(json["person"].as_str().expect("person").starts_with("p:"), "{json}");
    let checks = json["checks"].as_array().expect("checks");
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "signature_valid" && c["ok"] == true),
        "{json}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c["check"] == "school_activated" && c["ok"] == false),
        "{json}"
    );
    assert!(!report.contains("100231"), "no full federated id in a report: {report}");
    let (code, text, _) = cli(&b_config, &["explain", &reference]);
    assert_eq!(code, 0);
    assert!(
        text.contains("FAIL school_activated") && text.contains("school:   55QQ"),
        "{text}"
    );
    let (code, _, err) = cli(&b_config, &["explain", "00000000deadbeef"]);
    assert_eq!(code, 1, "an unknown reference: {err}");

    // Activated from A's shell: in force on B within 10 s.
    let a_config = a.path("bridge.toml");
    let (code, out, err) = cli(&a_config, &["schools", "activate", "--app", "numo", "55qq"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("55QQ: activated"), "{out}");
    let took = until_login(&b, "55QQ", true).await;
    eprintln!("activation in force on the other instance after {took:?}");
    let (_, list, _) = cli(&a_config, &["schools", "list", "--app", "numo"]);
    assert!(list.contains("55QQ\tdatabase\tshell:desk-anna"), "{list}");
    assert!(list.contains("99XX\tconfig"), "{list}");

    // A config entry is not the database's to remove; a bad BRIN changes nothing.
    let (code, out, _) = cli(&a_config, &["schools", "deactivate", "--app", "numo", "99XX"]);
    assert_eq!(code, 1);
    assert!(out.contains("activated by the config"), "{out}");
    let (code, _, err) = cli(&a_config, &["schools", "activate", "--app", "numo", "77AA", "99-X"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a BRIN"), "{err}");
    assert!(!cli(&a_config, &["schools", "list", "--app", "numo"]).1.contains("77AA"));

    // Deactivated: refused on B again within 10 s.
    let (code, out, err) = cli(&a_config, &["schools", "deactivate", "--app", "numo", "55QQ"]);
    assert_eq!(code, 0, "{out}{err}");
    until_login(&b, "55QQ", false).await;
}

#[tokio::test]
async fn activation_and_explain_across_instances_on_sqlite() {
    activation_reaches_the_other_instance_and_explain_answers(Links::Sqlite).await;
}

#[tokio::test]
async fn activation_and_explain_across_instances_on_postgres() {
    activation_reaches_the_other_instance_and_explain_answers(Links::Postgres).await;
}

fn report(reference: &str, at: i64) -> FailureReport {
    FailureReport {
        reference: reference.into(),
        created_at: at,
        app: "numo".into(),
        code: "signature_invalid".into(),
        status: 403,
        message: "x".repeat(10_000),
        school: Some("99XX".into()),
        person: Some("p:0123456789ab".into()),
        instance: "test".into(),
        checks: vec![ReportCheck {
            check: "signature_valid".into(),
            ok: false,
            detail: "y".repeat(10_000),
        }],
    }
}

async fn reports_are_bounded_per_hour_and_purged(links: Links) {
    let bridge = Bridge::start_links(links, "").await;
    let store = &bridge.links;
    let hour = chrono::Utc::now().timestamp() / 3600 * 3600;
    for n in 0..3 {
        assert_eq!(
            store.keep_report(&report(&format!("r{n}"), hour + n), 3).await.unwrap(),
            Kept::Kept
        );
    }
    assert_eq!(
        store.keep_report(&report("r3", hour + 5), 3).await.unwrap(),
        Kept::OverBudget,
        "the hour's bound"
    );
    assert_eq!(
        store.failure_report("r3").await.unwrap(),
        None,
        "nothing stored over the bound"
    );
    // The next hour has a budget of its own.
    assert_eq!(
        store.keep_report(&report("r4", hour + 3600), 3).await.unwrap(),
        Kept::Kept
    );
    let kept = store.failure_report("r1").await.unwrap().expect("kept");
    assert!(kept.message.chars().count() <= 501 && kept.checks[0].detail.chars().count() <= 501);
    // Purged by age: the hour's three go, the next hour's stays.
    assert_eq!(store.purge_reports(hour + 3600).await.unwrap(), 3);
    assert_eq!(store.failure_report("r1").await.unwrap(), None);
    assert!(store.failure_report("r4").await.unwrap().is_some());
}

#[tokio::test]
async fn reports_bound_and_purge_on_sqlite() {
    reports_are_bounded_per_hour_and_purged(Links::Sqlite).await;
}

#[tokio::test]
async fn reports_bound_and_purge_on_postgres() {
    reports_are_bounded_per_hour_and_purged(Links::Postgres).await;
}
