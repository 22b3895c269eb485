//! Micro-benchmarks of the login's hot paths (criterion): response validation (a realistic
//! Entree response: signed assertion, RSA-2048, ten attributes; plain and encrypted),
//! AuthnRequest building and signing, JWT issuing, attribute mapping, link lookups in SQLite
//! and PostgreSQL, and the hostile shapes of tests/it/common/hostile_shapes.rs at the size limit.
//!
//!     cargo bench --bench hot_paths
//!
//! PostgreSQL: `ENTREE_BRIDGE_TEST_POSTGRES` (a database of the benchmark's own is created
//! and dropped); without a reachable server that one benchmark says so and is left out.
//!
//! Whole logins and the token endpoint over HTTP (`login/`, `oidc_token/`): a served bridge
//! with a jwt-mode app and an oidc-mode app, on the memory store and on Redis
//! (`ENTREE_BRIDGE_BENCH_REDIS`, default 127.0.0.1:6379, keys under a fresh prefix; without a
//! reachable Redis those benchmarks say so and are left out). The client runs on the same
//! thread as the bridge's async workers; validation runs on the bridge's pool as in service.
//!
//!     cargo bench --bench hot_paths -- 'login/|oidc'

#[path = "../examples/bench_setup/mod.rs"]
mod bench_setup;
#[path = "../tests/it/common/hostile_shapes.rs"]
mod hostile_shapes;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
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
            let facts = entree_bridge::identity::facts(&app.identity, &Default::default(), black_box(&assertion))
                .expect("facts");
            entree_bridge::identity::rule(&app.identity, &facts)
        })
    });
    let facts = entree_bridge::identity::facts(&app.identity, &Default::default(), &assertion).expect("facts");
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

/// The oidc app beside the jwt-mode `bench` (same IdP, same attributes, same claims).
const RP_CLIENT_ID: &str = "rp-web";
const RP_SECRET: &str = "rp-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
const RP_REDIRECT_URI: &str = "http://127.0.0.1/rp/cb";
const LOGIN_APPS: &str = r#"
allow_unsolicited = true
[apps.bench.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.bench.handoff]
callback_url = "https://bench.example.nl/sso"
[apps.bench.claims]
given_name = "givenName"

[apps.rp]
federation = "kennisnet"
base_url = "{base}/rp"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.rp.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.rp.handoff]
mode = "oidc"
client_id = "rp-web"
client_secret = "rp-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
redirect_uris = ["http://127.0.0.1/rp/cb"]
[apps.rp.claims]
given_name = "givenName"

[apps.rpes]
federation = "kennisnet"
base_url = "{base}/rpes"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
[apps.rpes.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.rpes.handoff]
mode = "oidc"
client_id = "rpes-web"
client_secret = "rp-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
redirect_uris = ["http://127.0.0.1/rpes/cb"]
id_token_signed_response_alg = "ES256"
[apps.rpes.claims]
given_name = "givenName"
"#;

/// An oidc app of [`LOGIN_APPS`] as its client: `rp` (RS256 id_tokens) or `rpes` (ES256).
struct Rp {
    app: &'static str,
    client_id: &'static str,
    redirect_uri: &'static str,
}

const RP: Rp = Rp {
    app: "rp",
    client_id: RP_CLIENT_ID,
    redirect_uri: RP_REDIRECT_URI,
};
const RP_ES256: Rp = Rp {
    app: "rpes",
    client_id: "rpes-web",
    redirect_uri: "http://127.0.0.1/rpes/cb",
};

/// A PKCE pair (one for every code: the codes differ, which is what a redemption looks up).
fn pkce() -> (String, String) {
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(entree_bridge::keys::random_bytes::<32>());
    let digest = openssl::hash::hash(openssl::hash::MessageDigest::sha256(), verifier.as_bytes()).expect("sha256");
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    (verifier, challenge)
}

/// A served bridge with `bench` (jwt) and `rp` (oidc) on `store`; `None` when the store is
/// not reachable.
struct Served {
    _dir: tempfile::TempDir,
    idp: entree_bridge::demo::idp::DevIdp,
    base: String,
    state: Arc<entree_bridge::http::Shared>,
    http: reqwest::Client,
}

impl Served {
    async fn start(store: &str) -> Option<Served> {
        let sessions = bench_setup::sessions_section(store).expect("store");
        let setup = bench_setup::Setup::with_rsa_key(&sessions, LOGIN_APPS)
            .await
            .expect("setup");
        match setup.serve_state().await {
            Ok((dir, idp, base, state)) => Some(Served {
                _dir: dir,
                idp,
                base,
                state,
                http: reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("client"),
            }),
            Err(e) => {
                eprintln!("{store}: not reachable ({e}); its benchmarks are left out");
                None
            }
        }
    }

    /// A code issued as the ACS issues it (`login::oidc::issue_code`, the bridge's own store),
    /// and its verifier.
    async fn issue_code(&self, n: usize) -> (String, String) {
        let state = self.state.current();
        let app = state.settings.apps.iter().find(|a| a.name == "rp").expect("rp");
        let (verifier, challenge) = pkce();
        let authorization = entree_bridge::handoff::oidc::authorize::Authorization {
            client_id: RP_CLIENT_ID.into(),
            redirect_uri: RP_REDIRECT_URI.into(),
            state: Some("state-1".into()),
            nonce: Some("nonce-1".into()),
            code_challenge: challenge,
        };
        let identity = entree_bridge::identity::Identity {
            person_code: format!("P{n}"),
            facts: student_facts(n),
        };
        let location = entree_bridge::login::oidc::issue_code(
            services(&state),
            app,
            &authorization,
            &identity,
            &format!("session-{n}"),
            SystemTime::now(),
        )
        .await
        .expect("issue");
        (query_param(&location, "code").expect("code"), verifier)
    }

    /// POSTs a token request of `rp` for `code` (client_secret_basic); asserts the id_token came.
    async fn redeem(&self, rp: &Rp, code: &str, verifier: &str) {
        let resp = self
            .http
            .post(format!("{}/oidc/token", self.base))
            .basic_auth(rp.client_id, Some(RP_SECRET))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", rp.redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .expect("token");
        assert_eq!(resp.status(), 200, "token endpoint");
        let body: serde_json::Value = resp.json().await.expect("json");
        assert!(body["id_token"].is_string(), "{body}");
    }

    /// GETs `url` (a login start or an authorization request): the request ID and RelayState
    /// of the AuthnRequest it redirects to, and the cookies it sets. Times only the request.
    async fn begin(&self, url: &str, timed: &mut Duration) -> (String, String, String) {
        let started = Instant::now();
        let resp = self.http.get(url).send().await.expect("start");
        *timed += started.elapsed();
        assert_eq!(resp.status(), 302, "{url}");
        let cookies = cookies_of(&resp);
        let location = resp.headers()["location"].to_str().expect("location").to_string();
        let saml = query_param(&location, "SAMLRequest").expect("SAMLRequest");
        let xml = entree_bridge::saml::authn_request::inflate_bounded(
            &base64::engine::general_purpose::STANDARD.decode(saml).expect("b64"),
            1 << 16,
        )
        .expect("inflate");
        let xml = String::from_utf8(xml).expect("utf8");
        let id = roxmltree::Document::parse(&xml)
            .expect("xml")
            .root_element()
            .attribute("ID")
            .expect("ID")
            .to_string();
        (id, query_param(&location, "RelayState").expect("RelayState"), cookies)
    }

    /// The form body the browser posts to the ACS of `app`: a fresh signed response (made
    /// outside the timed part: that is the IdP's work).
    fn acs_body(&self, app: &str, request_id: &str, relay_state: &str, n: usize) -> String {
        let spec = bench_setup::entree_response_to(&self.base, app, Some(request_id), n);
        let xml = self.idp.response(&spec).expect("sign");
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLResponse", &base64::engine::general_purpose::STANDARD.encode(xml))
            .append_pair("RelayState", relay_state)
            .finish()
    }

    async fn post_acs(&self, app: &str, body: String, cookies: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/{app}/saml2/kennisnet/acs", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookies)
            .body(body)
            .send()
            .await
            .expect("acs")
    }

    /// A whole jwt-mode login, as timed: the login start (AuthnRequest), then the ACS
    /// (validation, replay entry, link lookup, the ES256 token in the hand-off page).
    async fn jwt_login(&self, n: usize) -> Duration {
        let mut timed = Duration::ZERO;
        let (id, relay, cookies) = self
            .begin(&format!("{}/bench/saml2/kennisnet/login", self.base), &mut timed)
            .await;
        let body = self.acs_body("bench", &id, &relay, n);
        let started = Instant::now();
        let resp = self.post_acs("bench", body, &cookies).await;
        assert_eq!(resp.status(), 200, "jwt login");
        let page = resp.text().await.expect("page");
        timed += started.elapsed();
        assert!(page.contains("name=\"token\""), "a hand-off page");
        timed
    }

    /// A whole oidc login, as timed: the authorization request (its checks, the AuthnRequest),
    /// the ACS (the same validation, an OP session, a code), and the client's token request
    /// (client authentication, the code taken, PKCE, the RS256 id_token, an access token).
    async fn oidc_login(&self, rp: &Rp, n: usize) -> Duration {
        let (verifier, challenge) = pkce();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", rp.client_id)
            .append_pair("redirect_uri", rp.redirect_uri)
            .append_pair("scope", "openid")
            .append_pair("state", "state-1")
            .append_pair("nonce", "nonce-1")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let mut timed = Duration::ZERO;
        let (id, relay, cookies) = self
            .begin(&format!("{}/oidc/authorize?{query}", self.base), &mut timed)
            .await;
        let body = self.acs_body(rp.app, &id, &relay, n);
        let started = Instant::now();
        let resp = self.post_acs(rp.app, body, &cookies).await;
        assert_eq!(resp.status(), 302, "oidc login");
        let location = resp.headers()["location"].to_str().expect("location").to_string();
        let code = query_param(&location, "code").expect("code");
        self.redeem(rp, &code, &verifier).await;
        timed + started.elapsed()
    }
}

fn services(state: &entree_bridge::http::AppState) -> entree_bridge::login::Services<'_> {
    entree_bridge::login::Services {
        store: &*state.store,
        links: &state.links,
        validation: &state.validation,
        public_base_url: state.settings.public_base_url.as_str(),
        jwt_keys: &state.settings.jwt_keys,
        pseudonyms: &state.settings.pseudonyms,
        metadata: &state.metadata,
        activations: &state.activations,
    }
}

/// What the ACS makes of [`bench_setup::entree_response`] for the oidc app.
fn student_facts(n: usize) -> entree_bridge::identity::Facts {
    entree_bridge::identity::Facts {
        federated_id: format!("{n}@school-a.nl"),
        school: Some("99XX".into()),
        affiliation: vec!["student".into(), "member".into()],
        tenant: None,
        given_name: Some("Sanne".into()),
        extra: vec![("given_name".into(), vec!["Sanne".into()])],
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `name=value` pairs of a response's Set-Cookie headers, as a Cookie header.
fn cookies_of(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whole logins side by side (jwt mode and oidc mode, memory store) and the token endpoint
/// on both stores.
fn logins_and_tokens(c: &mut Criterion) {
    let rt = runtime();
    let Some(memory) = rt.block_on(Served::start("memory")) else {
        return;
    };
    let redis = rt.block_on(Served::start("redis"));

    let mut group = c.benchmark_group("login");
    let mut n = 0;
    group.bench_function("jwt_whole", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    total += memory.jwt_login(n).await;
                }
                total
            })
        })
    });
    group.bench_function("oidc_whole", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    total += memory.oidc_login(&RP, n).await;
                }
                total
            })
        })
    });
    group.bench_function("oidc_es256_whole", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    total += memory.oidc_login(&RP_ES256, n).await;
                }
                total
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("oidc_token");
    for (name, served) in [("http_memory", Some(&memory)), ("http_redis", redis.as_ref())] {
        let Some(served) = served else {
            eprintln!("oidc_token/{name}: no Redis reachable (ENTREE_BRIDGE_BENCH_REDIS); left out");
            continue;
        };
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    rt.block_on(served.issue_code(n))
                },
                |(code, verifier)| rt.block_on(served.redeem(&RP, &code, &verifier)),
                BatchSize::SmallInput,
            )
        });
    }
    // The use case alone (no HTTP), memory store: what the endpoint adds is the difference.
    let state = memory.state.current();
    group.bench_function("redeem_memory", |b| {
        b.iter_batched(
            || {
                n += 1;
                rt.block_on(memory.issue_code(n))
            },
            |(code, verifier)| {
                let presented =
                    entree_bridge::handoff::oidc::client_auth::presented(None, Some(RP_CLIENT_ID), Some(RP_SECRET))
                        .expect("presented");
                let form = entree_bridge::login::oidc::TokenForm {
                    grant_type: Some("authorization_code".into()),
                    code: Some(code),
                    redirect_uri: Some(RP_REDIRECT_URI.into()),
                    code_verifier: Some(verifier),
                };
                rt.block_on(entree_bridge::login::oidc::redeem(
                    services(&state),
                    &state.settings.apps,
                    &presented,
                    &form,
                ))
                .expect("tokens")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let identity = entree_bridge::identity::Identity {
        person_code: "1".into(),
        facts: student_facts(1),
    };
    c.bench_function("oidc/id_token_rs256", |b| {
        b.iter(|| {
            let claims = entree_bridge::handoff::oidc::tokens::id_token_claims(
                &identity,
                &entree_bridge::handoff::oidc::tokens::IdTokenContext {
                    issuer: &memory.base,
                    client_id: RP_CLIENT_ID,
                    lifetime: Duration::from_secs(300),
                    now_unix: chrono::Utc::now().timestamp(),
                    auth_time: chrono::Utc::now().timestamp(),
                    nonce: Some("nonce-1"),
                    sid: "sid",
                },
            );
            state.settings.jwt_keys.sign_rs256(&claims, "JWT").expect("id_token")
        })
    });
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
    targets = hot_paths, logins_and_tokens
}
criterion_main!(benches);
