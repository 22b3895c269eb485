//! Test harness: a real bridge on an ephemeral loopback port, with a development IdP whose
//! keys and metadata are written to a temp dir, and an HTTP client that keeps cookies.
#![allow(dead_code)]

pub mod browser;
pub mod hostile_shapes;
pub mod oidc;
pub mod process;
pub mod pysaml2;
pub mod services;
pub mod simplesamlphp;
pub mod xmlsec1;
pub mod xsw;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use entree_bridge::config::{self, Settings};
use entree_bridge::demo::idp::{DevIdp, ResponseSpec};
use entree_bridge::http::{self, AppState};
use entree_bridge::keys::{self, KeyKind};
use entree_bridge::store::links::LinkStore;
use entree_bridge::store::LoginStateStore;

pub const IDP_ENTITY_ID: &str = "https://idp.test.invalid/metadata";

/// Where a test bridge keeps its account links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    Sqlite,
    Postgres,
}

/// A PostgreSQL database of the test's own, dropped when the value is dropped.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

/// The server to create test databases on (trust auth on this machine and in CI).
pub fn postgres_admin_url() -> String {
    std::env::var("ENTREE_BRIDGE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        use sqlx::Connection;
        let admin_url = postgres_admin_url();
        let name = format!(
            "entree_bridge_test_{}",
            entree_bridge::keys::random_token()
                .to_ascii_lowercase()
                .replace(['-', '_'], "")
        );
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is needed for this test: {e}"));
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("bad admin url"),
        };
        TestDatabase { url, name, admin_url }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::Executor::execute(
                        &mut conn,
                        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                    )
                    .await;
                }
            });
        })
        .join();
    }
}

/// The `[links]` section for `links`, and the PostgreSQL database it uses (dropped with it).
pub async fn links_config(links: Links) -> (Option<TestDatabase>, String) {
    match links {
        Links::Sqlite => (
            None,
            "[links]\nstore = \"sqlite\"\nsqlite_path = \"links.sqlite3\"\n".to_string(),
        ),
        Links::Postgres => {
            let db = TestDatabase::create().await;
            let config = format!("[links]\nstore = \"postgres\"\npostgres_url = \"{}\"\n", db.url);
            (Some(db), config)
        }
    }
}

pub struct Bridge {
    pub base: String,
    pub dir: tempfile::TempDir,
    pub idp: DevIdp,
    pub settings: Arc<Settings>,
    pub sp_cert: openssl::x509::X509,
    pub store: Arc<dyn LoginStateStore>,
    pub links: LinkStore,
    pub database: Option<TestDatabase>,
    /// The admin listener's base URL, when the config has `[admin]` (`{admin_port}` in the
    /// config stands for its port).
    pub admin: Option<String>,
    shutdown: Option<tokio::sync::watch::Sender<()>>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The config the harness runs: `numo` (solicited only, school 99XX, pattern) and `open`
/// (unsolicited allowed, every school). `extra` is appended verbatim.
pub fn config_text(port: u16, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_base_url = "http://127.0.0.1:{port}"

[keys]
jwt_signing_key = "jwt.pem"

[federations.kennisnet]
metadata = "idp-metadata.xml"

[apps.numo]
federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/numo"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["99XX", "12AB03"]
[apps.numo.tenants]
"99XX" = "ingang-a"
[apps.numo.person]
attribute = "nlEduPersonRealId"
pattern = "^(?P<code>[^@]+)@"
[apps.numo.handoff]
callback_url = "http://127.0.0.1:{port}/callback"
[apps.numo.claims]
given_name = "givenName"

[apps.open]
federation = "kennisnet"
base_url = "http://127.0.0.1:{port}/open"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
allow_unsolicited = true
allowed_targets = ["https://portal.example.nl"]
[apps.open.person]
attribute = "eckId"
[apps.open.handoff]
callback_url = "https://open.example.nl/sso/callback"
{extra}
"#
    )
}

/// Writes keys and IdP metadata into a fresh temp dir.
pub fn prepare_dir() -> (tempfile::TempDir, DevIdp, openssl::x509::X509) {
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = DevIdp::generate(IDP_ENTITY_ID).expect("idp");
    let sp_key = keys::generate_key(KeyKind::Rsa2048).expect("key");
    let sp_cert = keys::self_signed_certificate(&sp_key, "sp", 30).expect("cert");
    keys::write_private_key(&dir.path().join("sp.key"), &sp_key).expect("write");
    keys::write_certificate(&dir.path().join("sp.crt"), &sp_cert).expect("write");
    keys::write_private_key(
        &dir.path().join("jwt.pem"),
        &keys::generate_key(KeyKind::EcP256).expect("key"),
    )
    .expect("write");
    std::fs::write(
        dir.path().join("idp-metadata.xml"),
        idp.metadata("https://idp.test.invalid/sso"),
    )
    .expect("write");
    (dir, idp, sp_cert)
}

impl Bridge {
    pub async fn start() -> Bridge {
        Self::start_with("").await
    }

    pub async fn start_with(extra_config: &str) -> Bridge {
        Self::start_custom(extra_config, |_| {}).await
    }

    /// Like `start_with`, with a hook that may replace files (e.g. another IdP's metadata)
    /// before the config is loaded.
    pub async fn start_custom(extra_config: &str, prepare: impl FnOnce(&Path)) -> Bridge {
        Self::start_full(extra_config, Links::Sqlite, prepare).await
    }

    /// A bridge whose links live in `links` (SQLite in the temp dir, or a fresh PostgreSQL database).
    pub async fn start_links(links: Links, extra_config: &str) -> Bridge {
        Self::start_full(extra_config, links, |_| {}).await
    }

    pub async fn start_full(extra_config: &str, links: Links, prepare: impl FnOnce(&Path)) -> Bridge {
        let (database, links_config) = links_config(links).await;
        Self::start_inner(extra_config, database, &links_config, prepare, |c| c).await
    }

    /// A bridge whose `[links]` section is `links_section` as given.
    pub async fn start_links_section(links_section: &str) -> Bridge {
        Self::start_inner("", None, links_section, |_| {}, |c| c).await
    }

    /// A bridge on `links_section`'s link store whose config text `edit` may rewrite.
    pub async fn start_links_edited(links_section: &str, edit: impl FnOnce(String) -> String) -> Bridge {
        Self::start_inner("", None, links_section, |_| {}, edit).await
    }

    /// A bridge whose config text `edit` may rewrite (e.g. the federation's metadata source).
    pub async fn start_edited(prepare: impl FnOnce(&Path), edit: impl FnOnce(String) -> String) -> Bridge {
        let (database, links_config) = links_config(Links::Sqlite).await;
        Self::start_inner("", database, &links_config, prepare, edit).await
    }

    /// A bridge with [`oidc::OIDC_APPS`] (`extra` appended) and an RSA key beside the EC one
    /// (id_tokens are RS256).
    pub async fn start_oidc(extra_config: &str) -> Bridge {
        Self::start_oidc_custom(extra_config, |_| {}).await
    }

    /// `start_oidc` with a hook that may replace files (e.g. another IdP's metadata) before
    /// the config is loaded.
    pub async fn start_oidc_custom(extra_config: &str, prepare: impl FnOnce(&Path)) -> Bridge {
        Self::start_oidc_edited(extra_config, prepare, |c| c).await
    }

    /// `start_oidc_custom` whose config text `edit` may rewrite as well.
    pub async fn start_oidc_edited(
        extra_config: &str,
        prepare: impl FnOnce(&Path),
        edit: impl FnOnce(String) -> String,
    ) -> Bridge {
        let (database, links_config) = links_config(Links::Sqlite).await;
        let extra = format!("{}\n{extra_config}", oidc::OIDC_APPS);
        let prepare = |dir: &Path| {
            oidc::write_rsa_key(dir);
            prepare(dir);
        };
        Self::start_inner(&extra, database, &links_config, prepare, |c| {
            edit(oidc::with_rsa_key(c))
        })
        .await
    }

    async fn start_inner(
        extra_config: &str,
        database: Option<TestDatabase>,
        links_config: &str,
        prepare: impl FnOnce(&Path),
        edit: impl FnOnce(String) -> String,
    ) -> Bridge {
        let (dir, idp, sp_cert) = prepare_dir();
        prepare(dir.path());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let admin_port = admin_listener.local_addr().expect("addr").port();
        let path = dir.path().join("bridge.toml");
        // `{port}` in the extra config stands for the port the bridge got.
        let extra_config = extra_config.replace("{port}", &port.to_string());
        let text = edit(config_text(port, &format!("{links_config}\n{extra_config}")));
        std::fs::write(&path, text.replace("{admin_port}", &admin_port.to_string())).expect("write config");
        let settings = Arc::new(config::load(&path).unwrap_or_else(|e| panic!("config: {e}")));
        let link_store = LinkStore::open_target(&settings.links, settings.links_timeout)
            .await
            .expect("link store");
        let store = entree_bridge::store::open(&settings.session_store).expect("session store");
        let state = http::Shared::new(AppState::new(settings.clone(), store.clone(), link_store.clone()));
        tokio::spawn(entree_bridge::metadata_refresh::run(state.clone()));
        http::start_upkeep(&state);
        // Both listeners stop when the Bridge is dropped (its sender goes, `changed` returns).
        let (tx, rx) = tokio::sync::watch::channel(());
        let stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
            let _ = rx.changed().await;
        };
        let admin = settings.admin.is_some().then(|| {
            tokio::spawn(entree_bridge::admin::serve(
                admin_listener,
                state.clone(),
                stopped(rx.clone()),
            ));
            format!("http://127.0.0.1:{admin_port}")
        });
        tokio::spawn(http::serve(
            listener,
            state.clone(),
            http::router(state, None),
            stopped(rx),
        ));
        Bridge {
            base: format!("http://127.0.0.1:{port}"),
            dir,
            idp,
            settings,
            sp_cert,
            store,
            links: link_store,
            database,
            admin,
            shutdown: Some(tx),
        }
    }

    /// True when the replay cache has never seen this assertion (nothing was stored for it).
    pub async fn assertion_unseen(&self, assertion_id: &str) -> bool {
        let until = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
        self.store
            .remember_assertion(&format!("{IDP_ENTITY_ID}|{assertion_id}"), until)
            .await
            .expect("store")
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn acs(&self, app: &str) -> String {
        format!("{}/{app}/saml2/kennisnet/acs", self.base)
    }

    pub fn sp_entity_id(&self, app: &str) -> String {
        format!("{}/{app}/saml2/kennisnet/metadata", self.base)
    }

    /// A valid response spec for `app`, answering `request_id`, for a student of 99XX.
    pub fn spec(&self, app: &str, request_id: Option<&str>) -> ResponseSpec {
        ResponseSpec::new(&self.sp_entity_id(app), &self.acs(app), request_id)
            .attribute("nlEduPersonRealId", &["100231@school-a.nl"])
            .attribute("eckId", &["https://ketenid.nl/201703/aabbccdd"])
            .attribute("nlEduPersonHomeOrganizationId", &["99XX"])
            .attribute("eduPersonAffiliation", &["student", "member"])
            .attribute("givenName", &["Sanne"])
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A login as the browser starts it: the IdP URL, the request ID, and the RelayState.
pub struct StartedLogin {
    pub location: String,
    pub request_id: String,
    pub relay_state: String,
    pub signed: bool,
    /// The AuthnRequest asks for a fresh login (`prompt=login` in oidc mode).
    pub force_authn: bool,
}

pub async fn start_login(client: &reqwest::Client, bridge: &Bridge, app: &str, target: Option<&str>) -> StartedLogin {
    start_login_at(client, &bridge.base, app, target).await
}

/// `start_login` against the bridge at `base` (any instance of several).
pub async fn start_login_at(client: &reqwest::Client, base: &str, app: &str, target: Option<&str>) -> StartedLogin {
    let mut url = format!("{base}/{app}/saml2/kennisnet/login");
    if let Some(t) = target {
        url.push_str("?target=");
        url.push_str(&url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>());
    }
    let resp = client.get(&url).send().await.expect("login");
    assert_eq!(resp.status(), 302, "login answers a redirect");
    let location = resp.headers()["location"].to_str().expect("location").to_string();
    started_login_from(location)
}

/// The login a redirect to the IdP (`location`, with its SAMLRequest) starts.
pub fn started_login_from(location: String) -> StartedLogin {
    let query = location.split_once('?').expect("query").1;
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let saml_request = param("SAMLRequest").expect("SAMLRequest");
    let deflated = base64::engine::general_purpose::STANDARD
        .decode(saml_request)
        .expect("base64");
    let xml =
        String::from_utf8(entree_bridge::saml::authn_request::inflate_bounded(&deflated, 1 << 16).expect("inflate"))
            .expect("utf8");
    let doc = roxmltree::Document::parse(&xml).expect("xml");
    StartedLogin {
        request_id: doc.root_element().attribute("ID").expect("ID").to_string(),
        relay_state: param("RelayState").expect("RelayState"),
        signed: param("Signature").is_some(),
        force_authn: doc.root_element().attribute("ForceAuthn") == Some("true"),
        location,
    }
}

/// What the ACS answered.
pub struct AcsOutcome {
    pub status: u16,
    pub body: String,
}

impl AcsOutcome {
    /// The JWT of the hand-off form, if the ACS handed off.
    pub fn token(&self) -> Option<String> {
        let start = self.body.find(r#"name="token" value=""#)? + r#"name="token" value=""#.len();
        let end = self.body[start..].find('"')?;
        Some(self.body[start..start + end].to_string())
    }

    /// Asserts a rejection with `code`, and that nothing was handed off.
    pub fn assert_rejected(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status for {code}; body: {}", self.body);
        assert!(
            self.body.contains(&format!("<code>{code}</code>")),
            "expected code {code} in page: {}",
            self.body
        );
        assert!(self.token().is_none(), "no hand-off may happen for {code}");
        assert!(!self.body.contains("name=\"token\""), "no token field for {code}");
    }
}

/// Posts `xml` to the ACS of `app` and returns the raw answer (redirects are not followed).
pub async fn post_acs_response(
    client: &reqwest::Client,
    bridge: &Bridge,
    app: &str,
    xml: &str,
    relay_state: Option<&str>,
) -> reqwest::Response {
    post_acs_at(client, &bridge.acs(app), xml, relay_state).await
}

/// Posts `xml` to the ACS at `acs_url` (any instance of several).
pub async fn post_acs_at(
    client: &reqwest::Client,
    acs_url: &str,
    xml: &str,
    relay_state: Option<&str>,
) -> reqwest::Response {
    let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
    let mut form = vec![("SAMLResponse", encoded)];
    if let Some(rs) = relay_state {
        form.push(("RelayState", rs.to_string()));
    }
    client.post(acs_url).form(&form).send().await.expect("acs")
}

pub async fn post_acs(
    client: &reqwest::Client,
    bridge: &Bridge,
    app: &str,
    xml: &str,
    relay_state: Option<&str>,
) -> AcsOutcome {
    let resp = post_acs_response(client, bridge, app, xml, relay_state).await;
    AcsOutcome {
        status: resp.status().as_u16(),
        body: resp.text().await.expect("body"),
    }
}

/// The `name=value` of a response's first Set-Cookie.
pub fn first_cookie(resp: &reqwest::Response) -> String {
    let header = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    header.split(';').next().unwrap_or("").to_string()
}

/// Starts a login in `client`, lets `edit` change the valid response for it, and posts the
/// signed result to the ACS with the login's RelayState.
pub async fn complete_login(
    client: &reqwest::Client,
    bridge: &Bridge,
    app: &str,
    edit: impl FnOnce(ResponseSpec) -> ResponseSpec,
) -> (AcsOutcome, ResponseSpec) {
    let login = start_login(client, bridge, app, None).await;
    let spec = edit(bridge.spec(app, Some(&login.request_id)));
    let xml = bridge.idp.response(&spec).expect("sign");
    (
        post_acs(client, bridge, app, &xml, Some(&login.relay_state)).await,
        spec,
    )
}

/// `spec` with the attribute `name` replaced by `values` (removed when empty).
pub fn with_attribute(mut spec: ResponseSpec, name: &str, values: &[&str]) -> ResponseSpec {
    spec.attributes.retain(|(n, _)| n != name);
    if values.is_empty() {
        spec
    } else {
        spec.attribute(name, values)
    }
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
