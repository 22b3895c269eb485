//! `entree-bridge demo`: the whole flow in one process on loopback. The bridge, a development
//! IdP with test students (standing in for Entree), and a sample app that receives the
//! hand-off and shows the verified claims.

pub mod idp;
mod oidc_app;
mod routes;
mod sample_app;
pub mod sign;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{self, ConfigErrors, Settings};
use crate::keys::{self, KeyKind};

pub use routes::router;

/// The demo config, also shipped as `config/entree-bridge.toml`.
pub const DEMO_CONFIG: &str = include_str!("../../config/entree-bridge.toml");
pub const DEMO_ADDRESS: &str = "127.0.0.1:8080";
/// The sample headers-mode app's address in the demo config, replaced by the real one.
pub const DEMO_UPSTREAM: &str = "127.0.0.1:8081";
/// The admin listener's address in the demo config; the demo moves it to the port after its own.
pub const DEMO_ADMIN: &str = "127.0.0.1:9091";
/// The demo's admin token file (in the data dir), written on first run.
pub const DEMO_ADMIN_TOKENS: &str = "admin-tokens";
/// A Magister migratiehulpbestand with one student whose login name is not her number.
pub const DEMO_MAGISTER_FILE: &str = include_str!("../../config/demo-magister.csv");
/// The development IdP's SingleLogoutService.
pub const IDP_SLO_PATH: &str = "/demo/idp/slo";
pub const IDP_ENTITY_ID: &str = "https://idp.demo.entree-bridge.invalid/metadata";

/// A test student of the development IdP.
pub struct Student {
    pub key: &'static str,
    pub given_name: &'static str,
    pub sn: &'static str,
    pub real_id: &'static str,
    pub school: &'static str,
    pub school_name: &'static str,
    pub affiliation: &'static str,
    pub note_nl: &'static str,
    pub note_en: &'static str,
}

pub const STUDENTS: &[Student] = &[
    Student {
        key: "sanne",
        given_name: "Sanne",
        sn: "de Vries",
        real_id: "100231@demo-school-a.nl",
        school: "99XX",
        school_name: "Demo College A",
        affiliation: "student",
        note_nl: "leerling van een school die de apps heeft geactiveerd",
        note_en: "a student of a school that activated the apps",
    },
    Student {
        key: "daan",
        given_name: "Daan",
        sn: "Jansen",
        real_id: "t.jansen@demo-school-a.nl",
        school: "99XX",
        school_name: "Demo College A",
        affiliation: "employee",
        note_nl: "docent van dezelfde school",
        note_en: "a teacher of the same school",
    },
    Student {
        key: "lotte",
        given_name: "Lotte",
        sn: "Bakker",
        real_id: "200417@demo-school-b.nl",
        school: "88YY",
        school_name: "Demo Lyceum B",
        affiliation: "student",
        note_nl: "leerling van een school die Numo-demo nog niet heeft geactiveerd (403-pagina)",
        note_en: "a student of a school that has not activated Numo yet (the 403 page)",
    },
    Student {
        key: "mila",
        given_name: "Mila",
        sn: "Dekker",
        real_id: "m.dekker@demo-school-a.nl",
        school: "99XX",
        school_name: "Demo College A",
        affiliation: "student",
        note_nl: "leerling wier inlognaam niet haar leerlingnummer is: Numo-demo kent haar uit het \
                  geïmporteerde Magister-bestand (persoonscode 300512)",
        note_en: "a student whose login name is not her student number: Numo knows her from the imported \
                  Magister file (person code 300512)",
    },
];

/// The demo Numo's logo file in the data folder, and what it holds: a made-up mark.
const DEMO_LOGO: &str = "numo-logo.svg";
const NUMO_LOGO_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="144" height="48" viewBox="0 0 144 48"><rect x="2" y="6" width="36" height="36" rx="8" fill="#1a5fb4"/><path d="M11 34V14h4l10 13V14h4v20h-4L15 21v13z" fill="#fff"/><text x="48" y="33" font-family="system-ui,sans-serif" font-size="24" font-weight="700" fill="#1b1b1b">Numo</text></svg>
"##;

/// Files the demo needs, created on first run in `data_dir`.
pub fn prepare(data_dir: &Path, address: &str) -> Result<idp::DevIdp, keys::KeyError> {
    std::fs::create_dir_all(data_dir).map_err(|source| keys::KeyError::Write {
        path: data_dir.display().to_string(),
        source,
    })?;
    let idp = idp::DevIdp::load_or_create(data_dir, IDP_ENTITY_ID)?;
    for app in ["numo", "leerlijn", "rooster", "klas", "portaal"] {
        let (key_path, cert_path) = (
            data_dir.join(format!("{app}-sp.key")),
            data_dir.join(format!("{app}-sp.crt")),
        );
        if !(key_path.exists() && cert_path.exists()) {
            let key = keys::generate_key(KeyKind::Rsa2048)?;
            keys::write_private_key(&key_path, &key)?;
            keys::write_certificate(
                &cert_path,
                &keys::self_signed_certificate(&key, &format!("{app} demo SP"), 3650)?,
            )?;
        }
    }
    let jwt = data_dir.join("jwt-signing.pem");
    if !jwt.exists() {
        keys::write_private_key(&jwt, &keys::generate_key(KeyKind::EcP256)?)?;
    }
    // The OpenID Connect app's id_tokens are RS256: an RSA key beside the EC one.
    let rsa = data_dir.join("jwt-signing-rsa.pem");
    if !rsa.exists() {
        keys::write_private_key(&rsa, &keys::generate_key(KeyKind::Rsa2048)?)?;
    }
    // The support desk's token: one named `desk`, readable by the owner only.
    let tokens = data_dir.join(DEMO_ADMIN_TOKENS);
    if !tokens.exists() {
        let token = format!("{}{}", keys::random_token(), keys::random_token());
        keys::write_file(&tokens, format!("desk {token}\n").as_bytes(), true)?;
    }
    // Numo's logo ([apps.numo.branding]): the demo shows what a branded page looks like.
    let logo = data_dir.join(DEMO_LOGO);
    if !logo.exists() {
        keys::write_file(&logo, NUMO_LOGO_SVG.as_bytes(), false)?;
    }
    // With a SingleLogoutService, so logging out of a demo app shows Single Logout.
    let metadata = idp.metadata_with_slo(
        &format!("http://{address}/demo/idp/sso"),
        &format!("http://{address}{IDP_SLO_PATH}"),
    );
    keys::write_file(&data_dir.join("idp-metadata.xml"), metadata.as_bytes(), false)?;
    Ok(idp)
}

/// Loads the demo config (the file when present, else the embedded copy), moved to `address`,
/// with the sample headers-mode app at `upstream`.
pub fn load_config(config_path: &Path, address: &str, upstream: &str) -> Result<Settings, ConfigErrors> {
    let (text, file) = match std::fs::read_to_string(config_path) {
        Ok(t) => (t, Some(config_path.to_path_buf())),
        Err(_) => (DEMO_CONFIG.to_string(), None),
    };
    let text = text.replace(DEMO_ADDRESS, address).replace(DEMO_UPSTREAM, upstream);
    let text = match address.parse::<std::net::SocketAddr>() {
        Ok(a) if a.port() < u16::MAX => {
            text.replace(DEMO_ADMIN, &std::net::SocketAddr::new(a.ip(), a.port() + 1).to_string())
        }
        _ => text,
    };
    let base = config_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("config"));
    config::load_text(&text, file.as_deref(), &base)
}

/// The demo's support-desk token, to print at start (the demo is local; a real bridge never
/// prints a token).
pub fn admin_token(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(DEMO_ADMIN_TOKENS)).ok()?;
    let line = text.lines().find(|l| !l.trim().is_empty() && !l.starts_with('#'))?;
    line.split_whitespace().last().map(str::to_string)
}

pub fn data_dir_for(config_path: &Path) -> PathBuf {
    config_path
        .parent()
        .map(|p| p.join("../data/demo"))
        .unwrap_or_else(|| PathBuf::from("data/demo"))
}

/// Imports the demo's Magister file into the links of `numo` (again at every start: an
/// import of the same file changes nothing).
pub async fn import_demo_links(settings: &Settings) -> Result<(), String> {
    let parsed = crate::identity::import::parse(
        DEMO_MAGISTER_FILE.as_bytes(),
        crate::identity::import::Format::parse("magister", Some("stamnr"))?,
    )
    .map_err(|e| e.to_string())?;
    let store = crate::store::links::LinkStore::open_target(&settings.links, settings.links_timeout)
        .await
        .map_err(|e| e.to_string())?;
    store
        .import("numo", &parsed.entries, false)
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    Ok(())
}

/// The sample app behind the bridge in headers mode: shows what the bridge told it.
pub fn headers_app() -> axum::Router {
    axum::Router::new().fallback(routes::headers_app_page)
}

/// Demo state shared by the IdP and sample-app routes.
pub struct DemoState {
    pub idp: idp::DevIdp,
    pub settings: Arc<Settings>,
    /// Sign-ins the OpenID Connect sample app started.
    pub oidc_pending: oidc_app::Pending,
    /// The jwt sample app's accepted tokens (replays are refused).
    pub seen_tokens: sample_app::SeenTokens,
}

impl DemoState {
    pub fn new(idp: idp::DevIdp, settings: Arc<Settings>) -> Self {
        DemoState {
            idp,
            settings,
            oidc_pending: Default::default(),
            seen_tokens: Default::default(),
        }
    }
}
