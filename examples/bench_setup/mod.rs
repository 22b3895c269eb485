//! What the benchmark setups share: keys, a development IdP and its metadata in a temp dir, a
//! bridge config with one app named `bench` on the store the command line names, and the
//! running bridge. (`examples/bench_setup/` has no `main.rs`, so it is not an example itself.)
// Each benchmark uses a part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use entree_bridge::config::Settings;
use entree_bridge::demo::idp::DevIdp;
use entree_bridge::http::{self, AppState};
use entree_bridge::keys::{self, KeyKind};
use entree_bridge::store::links::LinkStore;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub idp: DevIdp,
    pub base: String,
    pub settings: Arc<Settings>,
    listener: tokio::net::TcpListener,
}

/// The `[sessions]` section for `store`: `memory`, `redis`, or `redis-cached` (Redis with a
/// 5-second local session cache). Redis is `ENTREE_BRIDGE_BENCH_REDIS`, keys under a fresh prefix.
pub fn sessions_section(store: &str) -> Result<String, Error> {
    let url = std::env::var("ENTREE_BRIDGE_BENCH_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = |extra: &str| {
        format!(
            "[sessions]\nstore = \"redis\"\nredis_url = \"{url}\"\nredis_prefix = \"eb-bench:{}:\"\n{extra}\n",
            keys::random_token()
        )
    };
    match store {
        "memory" => Ok(String::new()),
        "redis" => Ok(redis("")),
        "redis-cached" => Ok(redis("local_cache = \"5s\"")),
        other => Err(format!("store {other:?}: use memory, redis or redis-cached").into()),
    }
}

/// What Entree sends for a student: about ten attributes.
pub fn entree_response(base: &str, n: usize) -> entree_bridge::demo::idp::ResponseSpec {
    entree_response_to(base, "bench", None, n)
}

/// [`entree_response`] for the app `app`, in response to `request_id` when given.
pub fn entree_response_to(
    base: &str,
    app: &str,
    request_id: Option<&str>,
    n: usize,
) -> entree_bridge::demo::idp::ResponseSpec {
    entree_bridge::demo::idp::ResponseSpec::new(
        &format!("{base}/{app}/saml2/kennisnet/metadata"),
        &format!("{base}/{app}/saml2/kennisnet/acs"),
        request_id,
    )
    .attribute("uid", &[&format!("leerling{n}")])
    .attribute("givenName", &["Sanne"])
    .attribute("sn", &["de Vries"])
    .attribute("mail", &[&format!("leerling{n}@school-a.nl")])
    .attribute("eduPersonAffiliation", &["student", "member"])
    .attribute("nlEduPersonRealId", &[&format!("{n}@school-a.nl")])
    .attribute("nlEduPersonHomeOrganizationId", &["99XX"])
    .attribute("nlEduPersonHomeOrganization", &["Het Voorbeeld College"])
    .attribute("eckId", &[&format!("https://ketenid.nl/201703/{n:032x}")])
    .attribute("nlEduPersonProfileId", &[&format!("leerling{n}@school-a.nl")])
}

impl Setup {
    /// Writes keys and IdP metadata and loads a config of `sessions` plus `app` (the
    /// `[apps.bench]` tables; `{base}` in them is the bridge's URL).
    pub async fn new(sessions: &str, app: &str) -> Result<Setup, Error> {
        Self::new_keys(sessions, app, false).await
    }

    /// [`Setup::new`] with an RSA key beside the EC one (`jwt-rsa.pem`), as an app in oidc
    /// mode needs for its id_tokens; the EC key still signs the jwt-mode tokens.
    pub async fn with_rsa_key(sessions: &str, app: &str) -> Result<Setup, Error> {
        Self::new_keys(sessions, app, true).await
    }

    async fn new_keys(sessions: &str, app: &str, rsa: bool) -> Result<Setup, Error> {
        let dir = tempfile::tempdir()?;
        let idp = DevIdp::generate("https://idp.bench.invalid/metadata")?;
        let sp_key = keys::generate_key(KeyKind::Rsa2048)?;
        keys::write_private_key(&dir.path().join("sp.key"), &sp_key)?;
        keys::write_certificate(
            &dir.path().join("sp.crt"),
            &keys::self_signed_certificate(&sp_key, "sp", 2)?,
        )?;
        keys::write_private_key(&dir.path().join("jwt.pem"), &keys::generate_key(KeyKind::EcP256)?)?;
        let jwt_keys = if rsa {
            keys::write_private_key(&dir.path().join("jwt-rsa.pem"), &keys::generate_key(KeyKind::Rsa2048)?)?;
            r#"["jwt.pem", "jwt-rsa.pem"]"#
        } else {
            r#""jwt.pem""#
        };
        std::fs::write(
            dir.path().join("idp.xml"),
            idp.metadata("https://idp.bench.invalid/sso"),
        )?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let base = format!("http://127.0.0.1:{port}");
        let app = app.replace("{base}", &base);
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
public_base_url = "{base}"
{sessions}
[links]
sqlite_path = "links.sqlite3"
[keys]
jwt_signing_key = {jwt_keys}
[federations.kennisnet]
metadata = "idp.xml"
[apps.bench]
federation = "kennisnet"
base_url = "{base}/bench"
sp_key = "sp.key"
sp_cert = "sp.crt"
schools = ["*"]
{app}
"#
        );
        let path = dir.path().join("bench.toml");
        std::fs::write(&path, config)?;
        let settings = Arc::new(entree_bridge::config::load(&path).map_err(|e| e.to_string())?);
        Ok(Setup {
            dir,
            idp,
            base,
            settings,
            listener,
        })
    }

    /// Starts serving in the background (the stores are opened and checked first).
    pub async fn serve(self) -> Result<(tempfile::TempDir, DevIdp, String), Error> {
        let (dir, idp, base, _) = self.serve_state().await?;
        Ok((dir, idp, base))
    }

    /// [`Setup::serve`], also returning the state the bridge serves with (its stores).
    pub async fn serve_state(self) -> Result<(tempfile::TempDir, DevIdp, String, Arc<http::Shared>), Error> {
        let links = LinkStore::open_target(&self.settings.links, self.settings.links_timeout).await?;
        let store = entree_bridge::store::open(&self.settings.session_store)?;
        store.ping().await?;
        let state = http::Shared::new(AppState::new(self.settings, store, links));
        tokio::spawn(http::serve(
            self.listener,
            state.clone(),
            http::router(state.clone(), None),
            std::future::pending(),
        ));
        Ok((self.dir, self.idp, self.base, state))
    }
}
