//! `entree-bridge init`: the start of a real deployment. It writes a commented config for one
//! app at Entree's staging platform, the app's SP key and certificate and the JWT signing key,
//! then checks what it wrote and says what is left (Entree's metadata, the app's schools).
//!
//! Nothing it writes replaces a file that exists (unless `--force`): a key that Entree already
//! knows must not be lost to a second run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use entree_bridge::config;
use entree_bridge::keys::{self, KeyKind};

/// Where Entree's staging platform publishes its IdP metadata (REFERENCE.md: the staging
/// platform is where a new service is registered and tried before production).
pub const ENTREE_STAGING_METADATA: &str = "https://engine.entree-s.kennisnet.nl/authentication/idp/metadata";

#[derive(clap::Args)]
pub struct InitArgs {
    /// The folder to write into: entree-bridge.toml, keys/, metadata/, data/.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The app's name (a-z, 0-9, - and _): its config section, JWT audience and file names.
    #[arg(long)]
    app: String,
    /// The https address the bridge answers on for this app; elo links go to
    /// {base-url}/saml2/kennisnet/login.
    #[arg(long)]
    base_url: String,
    /// How the app gets the identity: jwt, headers or oidc.
    #[arg(long, default_value = "jwt")]
    mode: String,
    /// jwt mode: where the app takes the token (an HTTP POST of `token`).
    #[arg(long)]
    callback_url: Option<String>,
    /// headers mode: the app behind the bridge (http://127.0.0.1:9000, say).
    #[arg(long)]
    upstream: Option<String>,
    /// oidc mode: the app's redirect URI (exact match; repeat for more).
    #[arg(long)]
    redirect_uri: Vec<String>,
    /// The name students see on the bridge's pages (default: the app's name).
    #[arg(long)]
    display_name: Option<String>,
    /// The vendor's support address (email or URL): on the error pages, for schools that
    /// have not activated the app, and as the technical contact in the SP metadata.
    #[arg(long)]
    contact: Option<String>,
    /// Replace files that exist (keys too: Entree then needs the new certificate).
    #[arg(long)]
    force: bool,
}

/// What the config is made from, each value checked.
struct Plan {
    app: String,
    display_name: String,
    base_url: url::Url,
    handoff: Handoff,
    contact: Option<String>,
}

enum Handoff {
    Jwt {
        callback_url: url::Url,
    },
    Headers {
        upstream: url::Url,
    },
    Oidc {
        redirect_uris: Vec<url::Url>,
        client_secret: String,
    },
}

impl Handoff {
    fn mode(&self) -> &'static str {
        match self {
            Handoff::Jwt { .. } => "jwt",
            Handoff::Headers { .. } => "headers",
            Handoff::Oidc { .. } => "oidc",
        }
    }

    /// The app's own origin: where a `?target=` may point and where logout lands.
    fn app_origin(&self, base_url: &url::Url) -> String {
        let origin = match self {
            Handoff::Jwt { callback_url } => callback_url.origin(),
            Handoff::Headers { .. } => base_url.origin(),
            Handoff::Oidc { redirect_uris, .. } => redirect_uris[0].origin(),
        };
        origin.ascii_serialization()
    }
}

/// The files `init` writes, relative to `--dir`.
struct Files {
    config: PathBuf,
    sp_key: PathBuf,
    sp_cert: PathBuf,
    jwt_key: PathBuf,
    metadata: PathBuf,
}

impl Files {
    fn of(app: &str) -> Files {
        Files {
            config: "entree-bridge.toml".into(),
            sp_key: format!("keys/{app}-sp.key").into(),
            sp_cert: format!("keys/{app}-sp.crt").into(),
            jwt_key: "keys/jwt-signing.pem".into(),
            metadata: "metadata/entree-staging.xml".into(),
        }
    }
}

pub fn run(args: InitArgs) -> ExitCode {
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("entree-bridge init: {e}");
            return ExitCode::from(2);
        }
    };
    let files = Files::of(&plan.app);
    let written = [&files.config, &files.sp_key, &files.sp_cert, &files.jwt_key];
    if let Some(existing) = written.iter().map(|f| args.dir.join(f)).find(|p| p.exists()) {
        if !args.force {
            eprintln!(
                "entree-bridge init: {} exists; nothing was written (use --force to replace it, and the keys with it)",
                existing.display()
            );
            return ExitCode::from(1);
        }
    }
    if let Err(e) = write_all(&args.dir, &plan, &files) {
        eprintln!("entree-bridge init: {e}");
        return ExitCode::from(1);
    }
    println!(
        "wrote {} (the app {:?}, {} mode), {} and {} (its SP key and certificate), {} (the JWT signing key)",
        args.dir.join(&files.config).display(),
        plan.app,
        plan.handoff.mode(),
        args.dir.join(&files.sp_key).display(),
        args.dir.join(&files.sp_cert).display(),
        args.dir.join(&files.jwt_key).display()
    );
    if let Handoff::Oidc { client_secret, .. } = &plan.handoff {
        let advice = match crate::init_template::client_secret_env(&plan.app) {
            Some(var) => format!("; move it to {var} to keep it out of the file"),
            None => String::new(),
        };
        println!(
            "the app's OIDC client: client_id {:?}, client_secret {client_secret} (in the config{advice})",
            plan.app
        );
    }
    report_check(&args.dir, &plan.app, &files)
}

fn plan(args: &InitArgs) -> Result<Plan, String> {
    if !config::valid_name(&args.app) {
        return Err(format!(
            "--app {:?}: use a-z, 0-9, - and _ only (it becomes a URL path segment and the JWT audience)",
            args.app
        ));
    }
    let base_url = public_url("--base-url", &args.base_url)?;
    let handoff = match args.mode.as_str() {
        "jwt" => Handoff::Jwt {
            callback_url: public_url("--callback-url", required(&args.callback_url, "--callback-url", "jwt")?)?,
        },
        "headers" => Handoff::Headers {
            upstream: any_http_url("--upstream", required(&args.upstream, "--upstream", "headers")?)?,
        },
        "oidc" => {
            if args.redirect_uri.is_empty() {
                return Err("oidc mode needs --redirect-uri (the app's OIDC callback)".into());
            }
            Handoff::Oidc {
                redirect_uris: args
                    .redirect_uri
                    .iter()
                    .map(|u| public_url("--redirect-uri", u))
                    .collect::<Result<_, _>>()?,
                // 256 random bits: the bridge asks for at least 32 characters.
                client_secret: format!("{}{}", keys::random_token(), keys::random_token()),
            }
        }
        other => return Err(format!("--mode {other:?} is not jwt, headers or oidc")),
    };
    for (flag, given, mode) in [
        ("--callback-url", args.callback_url.is_some(), "jwt"),
        ("--upstream", args.upstream.is_some(), "headers"),
        ("--redirect-uri", !args.redirect_uri.is_empty(), "oidc"),
    ] {
        if given && handoff.mode() != mode {
            return Err(format!("{flag} is for {mode} mode, not {}", handoff.mode()));
        }
    }
    let contact = args.contact.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if let Some(c) = contact {
        if !(c.contains('@') || c.starts_with("https://")) {
            return Err(format!("--contact {c:?}: an email address or an https URL"));
        }
    }
    Ok(Plan {
        display_name: args.display_name.clone().unwrap_or_else(|| args.app.clone()),
        app: args.app.clone(),
        base_url,
        handoff,
        contact: contact.map(str::to_string),
    })
}

fn required<'a>(value: &'a Option<String>, flag: &str, mode: &str) -> Result<&'a str, String> {
    value.as_deref().ok_or_else(|| format!("{mode} mode needs {flag}"))
}

/// An address a browser or Entree reaches: https, or http on this machine only (to try it).
fn public_url(flag: &str, value: &str) -> Result<url::Url, String> {
    let url = any_http_url(flag, value)?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() != "https" && !loopback {
        return Err(format!(
            "{flag} {value:?}: Entree sends students only to https addresses (http is for localhost)"
        ));
    }
    Ok(url)
}

fn any_http_url(flag: &str, value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|e| format!("{flag} {value:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{flag} {value:?}: an http(s) URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!("{flag} {value:?}: no query, fragment or user info"));
    }
    Ok(url)
}

fn write_all(dir: &Path, plan: &Plan, files: &Files) -> Result<(), String> {
    std::fs::create_dir_all(dir.join("metadata"))
        .map_err(|e| format!("cannot make {}/metadata: {e}", dir.display()))?;
    std::fs::create_dir_all(dir.join("data")).map_err(|e| format!("cannot make {}/data: {e}", dir.display()))?;
    let sp_key = keys::generate_key(KeyKind::Rsa2048).map_err(|e| e.to_string())?;
    let sp_cert = keys::self_signed_certificate(&sp_key, &plan.app, 3650).map_err(|e| e.to_string())?;
    // An OIDC app's id_tokens are RS256, what every client library accepts; the JWT and
    // headers modes sign with ES256, a twentieth of the cost.
    let jwt_kind = match plan.handoff {
        Handoff::Oidc { .. } => KeyKind::Rsa2048,
        _ => KeyKind::EcP256,
    };
    let jwt_key = keys::generate_key(jwt_kind).map_err(|e| e.to_string())?;
    keys::write_private_key(&dir.join(&files.sp_key), &sp_key).map_err(|e| e.to_string())?;
    keys::write_certificate(&dir.join(&files.sp_cert), &sp_cert).map_err(|e| e.to_string())?;
    keys::write_private_key(&dir.join(&files.jwt_key), &jwt_key).map_err(|e| e.to_string())?;
    let text = crate::init_template::config_text(plan_view(plan, files));
    keys::write_file(&dir.join(&files.config), text.as_bytes(), false).map_err(|e| e.to_string())
}

fn plan_view<'a>(plan: &'a Plan, files: &'a Files) -> crate::init_template::Values<'a> {
    use crate::init_template::{HandoffValues, Values};
    let handoff = match &plan.handoff {
        Handoff::Jwt { callback_url } => HandoffValues::Jwt {
            callback_url: callback_url.as_str(),
        },
        Handoff::Headers { upstream } => HandoffValues::Headers {
            upstream: upstream.as_str(),
        },
        Handoff::Oidc {
            redirect_uris,
            client_secret,
        } => HandoffValues::Oidc {
            redirect_uris: redirect_uris.iter().map(url::Url::as_str).collect(),
            client_secret,
        },
    };
    Values {
        app: &plan.app,
        display_name: &plan.display_name,
        base_url: plan.base_url.as_str().trim_end_matches('/'),
        public_base_url: plan.base_url.origin().ascii_serialization(),
        app_origin: plan.handoff.app_origin(&plan.base_url),
        contact: plan.contact.as_deref(),
        sp_key: path_text(&files.sp_key),
        sp_cert: path_text(&files.sp_cert),
        jwt_key: path_text(&files.jwt_key),
        metadata: path_text(&files.metadata),
        handoff,
    }
}

fn path_text(p: &Path) -> String {
    p.display().to_string()
}

/// Checks the written config as `check-config` would and says what is left. Entree's
/// metadata is the one file init cannot make: without it, the check's only problem is that
/// file, and init says how to fetch it. Any other problem is init's own fault: exit 1.
fn report_check(dir: &Path, app: &str, files: &Files) -> ExitCode {
    let config_path = dir.join(&files.config);
    let metadata_path = dir.join(&files.metadata);
    let check = format!("entree-bridge check-config --config {}", config_path.display());
    match config::load(&config_path) {
        Ok(settings) => {
            print!("{}", settings.summary());
            println!(
                "next: {check}, then entree-bridge serve --config {}",
                config_path.display()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            // The federation's problems, and the app's "its federation has problems", are
            // the metadata's; anything else is not.
            let app_federation = format!("apps.{app}.federation");
            let (metadata, other): (Vec<_>, Vec<_>) = errors
                .0
                .iter()
                .partition(|p| p.key.starts_with("federations.kennisnet") || p.key == app_federation);
            if !other.is_empty() {
                eprintln!("entree-bridge init: the config it wrote has problems (a bug: please report it):");
                for p in &other {
                    eprintln!("  {p}");
                }
                return ExitCode::from(1);
            }
            if metadata_path.exists() {
                eprintln!(
                    "entree-bridge init: {} is there but not usable:",
                    metadata_path.display()
                );
                for p in &metadata {
                    eprintln!("  {p}");
                }
                return ExitCode::from(1);
            }
            println!(
                "left to do:\n  1. Entree's staging metadata (check its signing certificate with Kennisnet, metadata/README.md):\n     \
                 curl -o {} {ENTREE_STAGING_METADATA}\n  2. {check}\n  3. register the SP metadata URL the check prints with Kennisnet \
                 (README, \"Registering an app with Entree\")",
                metadata_path.display()
            );
            ExitCode::SUCCESS
        }
    }
}
