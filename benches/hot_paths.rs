//! Micro-benchmarks of the login's hot paths (criterion): response validation (a realistic
//! Entree response: signed assertion, RSA-2048, ten attributes; plain and encrypted),
//! AuthnRequest building and signing, JWT issuing, attribute mapping, link lookups in SQLite
//! and PostgreSQL, and the hostile shapes of tests/it/common/hostile_shapes.rs at the size limit.
//!
//!     cargo bench --bench hot_paths
//!
//! PostgreSQL: `ENTREE_BRIDGE_TEST_POSTGRES` (a database of the benchmark's own is created
//! and dropped); without a reachable server that one benchmark says so and is left out.

#[path = "../examples/bench_setup/mod.rs"]
mod bench_setup;
#[path = "../tests/it/common/hostile_shapes.rs"]
mod hostile_shapes;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use entree_bridge::saml::authn_request::AuthnRequest;
use entree_bridge::saml::response::{self, Expectations, Report};
use entree_bridge::saml::xml::XmlLimits;
use entree_bridge::store::links::{ImportEntry, LinkStore, DEFAULT_TIMEOUT};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn hot_paths(c: &mut Criterion) {
    let rt = runtime();
    let setup = rt
        .block_on(bench_setup::Setup::new(
            "",
            "allow_unsolicited = true\n[apps.bench.person]\npattern = \"^(?P<code>[^@]+)@\"\n\
             [apps.bench.handoff]\ncallback_url = \"https://bench.example.nl/sso\"\n\
             [apps.bench.claims]\ngiven_name = \"givenName\"\n",
        ))
        .expect("setup");
    let settings = setup.settings.clone();
    let app = settings.apps[0].clone();
    let idp = &app.federation.metadata_at_load().expect("metadata");
    let spec = bench_setup::entree_response(&setup.base, 1);
    let signed = setup.idp.response(&spec).expect("sign");
    let encrypted = setup
        .idp
        .encrypted_response(&spec, &app.sp.cert, entree_bridge::saml::decrypt::AES128_GCM)
        .expect("encrypt");
    let expectations = || Expectations {
        idp_entity_id: &idp.entity_id,
        idp_keys: &idp.signing_keys,
        sp_entity_id: &app.sp.entity_id,
        acs_url: &app.sp.acs_url,
        request_id: None,
        in_response_to_unchecked: false,
        allow_unsolicited: true,
        allow_sha1: false,
        allow_cbc: false,
        clock_skew: Duration::from_secs(120),
        now: chrono::Utc::now(),
        decryption_keys: &app.sp.decryption_keys,
        limits: XmlLimits::default(),
    };

    let mut group = c.benchmark_group("validate");
    group.bench_function("signed_assertion", |b| {
        b.iter(|| response::validate(black_box(&signed), &expectations(), &mut Report::disabled()).expect("valid"))
    });
    group.bench_function("encrypted_assertion", |b| {
        b.iter(|| response::validate(black_box(&encrypted), &expectations(), &mut Report::disabled()).expect("valid"))
    });
    group.finish();

    // The shapes of issue 14 at the response size limit: what anyone can make the bridge do
    // without a key. Each is refused; the figure is how long that takes.
    let mut group = c.benchmark_group("hostile_at_the_size_limit");
    let limit = XmlLimits::default().max_bytes - 2_048;
    for (i, shape) in hostile_shapes::SHAPES.iter().enumerate() {
        let xml = (shape.build)(limit);
        group.bench_function(format!("{i}_{}", shape.code), |b| {
            b.iter(|| {
                let refused = response::validate(black_box(&xml), &expectations(), &mut Report::disabled());
                assert_eq!(refused.err().map(|e| e.code()), Some(shape.code), "{}", shape.name);
            })
        });
    }
    group.finish();

    c.bench_function("authn_request/build_and_sign", |b| {
        b.iter(|| {
            let id = entree_bridge::keys::random_saml_id();
            AuthnRequest {
                id: &id,
                sp_entity_id: &app.sp.entity_id,
                acs_url: &app.sp.acs_url,
                destination: &idp.sso_redirect_url,
                force_authn: false,
            }
            .redirect_url("relay-state-0123456789", Some(&app.sp.key))
            .expect("signed")
        })
    });

    let assertion = response::validate(&signed, &expectations(), &mut Report::disabled()).expect("valid");
    c.bench_function("identity/facts_and_rule", |b| {
        b.iter(|| {
            let facts = entree_bridge::identity::facts(&app.identity, black_box(&assertion)).expect("facts");
            entree_bridge::identity::rule(&app.identity, &facts)
        })
    });
    let facts = entree_bridge::identity::facts(&app.identity, &assertion).expect("facts");
    let identity = entree_bridge::identity::Identity {
        person_code: "1".into(),
        facts,
    };
    c.bench_function("jwt/issue", |b| {
        b.iter(|| {
            let claims = entree_bridge::handoff::claims::build(
                &app.name,
                app.handoff.token_lifetime,
                settings.public_base_url.as_str(),
                &identity,
                chrono::Utc::now().timestamp(),
            );
            settings.jwt_keys.sign(&claims).expect("token")
        })
    });

    // Link lookups: 10,000 links, the login's UPDATE ... RETURNING on one of them.
    let entries: Vec<ImportEntry> = (0..10_000)
        .map(|n| ImportEntry {
            line: n + 2,
            federated_id: format!("{n}@school-a.nl"),
            person_code: format!("P{n}"),
        })
        .collect();
    let sqlite = rt
        .block_on(LinkStore::sqlite(
            &setup.dir.path().join("bench-links.sqlite3"),
            DEFAULT_TIMEOUT,
        ))
        .expect("sqlite");
    rt.block_on(sqlite.import("bench", &entries, false)).expect("import");
    c.bench_function("links/sqlite_lookup", |b| {
        b.iter(|| {
            rt.block_on(sqlite.person_code_for_login("bench", "4711@school-a.nl"))
                .expect("lookup")
        })
    });
    match rt.block_on(postgres_store()) {
        Some((store, drop_db)) => {
            rt.block_on(store.import("bench", &entries, false)).expect("import");
            c.bench_function("links/postgres_lookup", |b| {
                b.iter(|| {
                    rt.block_on(store.person_code_for_login("bench", "4711@school-a.nl"))
                        .expect("lookup")
                })
            });
            rt.block_on(store.close());
            rt.block_on(drop_db());
        }
        None => eprintln!("links/postgres_lookup: no PostgreSQL reachable (ENTREE_BRIDGE_TEST_POSTGRES); left out"),
    }
}

type DropDb = Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>;

/// A fresh database on the test server, and how to drop it.
async fn postgres_store() -> Option<(LinkStore, DropDb)> {
    let admin = std::env::var("ENTREE_BRIDGE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&admin).await.ok()?;
    let name = format!(
        "eb_bench_{}",
        entree_bridge::keys::random_token()
            .to_lowercase()
            .replace(['-', '_'], "")
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .ok()?;
    let url = format!(
        "{}/{name}",
        admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base)
    );
    let store = LinkStore::postgres(&url, DEFAULT_TIMEOUT).await.ok()?;
    let drop_db: DropDb = Box::new(move || {
        Box::pin(async move {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&pool)
                .await;
        })
    });
    Some((store, drop_db))
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = hot_paths
}
criterion_main!(benches);
