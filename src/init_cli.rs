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
    /// What init writes (the metadata is Entree's, fetched by the admin).
    fn written(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.config, &self.sp_key, &self.sp_cert, &self.jwt_key].into_iter()
    }

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
    if let Some(existing) = files.written().map(|f| args.dir.join(f)).find(|p| p.exists()) {
        if !args.force {
            eprintln!(
                "entree-bridge init: {} exists; nothing was written (use --force to replace it, and the keys with it)",
                existing.display()
            );
            return ExitCode::from(1);
        }
    }
    // Everything is made and checked in a folder of its own first: a check that fails, or a
    // write that does, leaves the admin's folder as it was (and a rerun needs no --force).
    let staging = args.dir.join(format!(".entree-bridge-init-{}", keys::random_token()));
    let staged = write_all(&staging, &plan, &files, &args.dir.join(&files.config)).and_then(|()| {
        let metadata = args.dir.join(&files.metadata);
        if metadata.exists() {
            std::fs::copy(&metadata, staging.join(&files.metadata))
                .map_err(|e| format!("cannot read {}: {e}", metadata.display()))?;
        }
        Ok(check(&staging, &plan.app, &files))
    });
    let outcome = match staged {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(problems)) => {
            let _ = std::fs::remove_dir_all(&staging);
            eprintln!("entree-bridge init: nothing was written; the config it would write has problems:");
            for p in &problems {
                eprintln!("  {p}");
            }
            return ExitCode::from(1);
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            eprintln!("entree-bridge init: nothing was written: {e}");
            return ExitCode::from(1);
        }
    };
    let moved = move_into_place(&staging, &args.dir, &files);
    let _ = std::fs::remove_dir_all(&staging);
    if let Err(e) = moved {
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
            "the app's OIDC client: client_id {:?}, client_secret {client_secret} (in the config, readable by its owner only{advice})",
            plan.app
        );
    }
    report(&args.dir, &plan, &files, outcome)
}

fn plan(args: &InitArgs) -> Result<Plan, String> {
    if !config::valid_name(&args.app) {
        return Err(format!(
            "--app {:?}: use a-z, 0-9, - and _ only (it names the app's config section, key files and JWT audience)",
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
    // As the config checks `activation_contact`, after the `mailto:` a pasted link may carry.
    let contact = match args.contact.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => {
            Some(config::check_contact(c.strip_prefix("mailto:").unwrap_or(c)).map_err(|e| format!("--contact: {e}"))?)
        }
        None => None,
    };
    let display_name = args.display_name.clone().unwrap_or_else(|| args.app.clone());
    if display_name.trim().is_empty() || display_name.chars().any(char::is_control) {
        return Err(format!(
            "--display-name {display_name:?}: one line of text (it names the app on the pages)"
        ));
    }
    Ok(Plan {
        display_name,
        app: args.app.clone(),
        base_url,
        handoff,
        contact,
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
            "{flag} {value:?}: must be https: a login goes only to https addresses (http is for localhost, to try it)"
        ));
    }
    Ok(url)
}

/// An http(s) URL as the config takes one (a host; no user info, query or fragment).
fn any_http_url(flag: &str, value: &str) -> Result<url::Url, String> {
    config::parse_http_url(value).map_err(|e| format!("{flag}: {e}"))
}

/// Writes the keys and the config into `dir`; `final_config` is where the config will live,
/// for the commands its comments give.
fn write_all(dir: &Path, plan: &Plan, files: &Files, final_config: &Path) -> Result<(), String> {
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
    let text = crate::init_template::config_text(plan_view(plan, files, final_config));
    // An oidc app's config holds its client secret: readable by its owner only, as the keys.
    let secret = matches!(plan.handoff, Handoff::Oidc { .. });
    keys::write_file(&dir.join(&files.config), text.as_bytes(), secret).map_err(|e| e.to_string())
}

fn plan_view<'a>(plan: &'a Plan, files: &'a Files, config_path: &Path) -> crate::init_template::Values<'a> {
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
        // A proxied app lives at the base URL, path and all; the others at their own origin.
        post_logout_url: match plan.handoff {
            Handoff::Headers { .. } => format!("{}/", plan.base_url.as_str().trim_end_matches('/')),
            _ => format!("{}/", plan.handoff.app_origin(&plan.base_url)),
        },
        contact: plan.contact.as_deref(),
        config_path: path_text(config_path),
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

/// How the check of the staged config ended, when init's files are fine.
enum Checked {
    Ready,
    /// Entree's metadata is not there yet: the one file init cannot make.
    MetadataMissing,
    /// The metadata the admin put there first is not usable.
    MetadataUnusable(Vec<String>),
}

/// Checks the staged config as `check-config` would. The federation's problems, and the app's
/// "its federation has problems", are the metadata's; any other problem (a value init took,
/// or an `ENTREE_BRIDGE_*` variable that overrides one) means nothing should be written.
fn check(staging: &Path, app: &str, files: &Files) -> Result<Checked, Vec<String>> {
    let Err(errors) = config::load(&staging.join(&files.config)) else {
        return Ok(Checked::Ready);
    };
    let app_federation = format!("apps.{app}.federation");
    let (metadata, other): (Vec<_>, Vec<_>) = errors
        .0
        .iter()
        .partition(|p| p.env.is_none() && (p.key.starts_with("federations.kennisnet") || p.key == app_federation));
    if !other.is_empty() {
        return Err(other
            .iter()
            .map(|p| match &p.env {
                Some(_) => format!("{p} (set in this shell's environment)"),
                None => format!("{}: {} (a bug of init: please report it)", p.key, p.message),
            })
            .collect());
    }
    Ok(match staging.join(&files.metadata).exists() {
        false => Checked::MetadataMissing,
        true => Checked::MetadataUnusable(metadata.iter().map(|p| format!("{}: {}", p.key, p.message)).collect()),
    })
}

fn move_into_place(staging: &Path, dir: &Path, files: &Files) -> Result<(), String> {
    for sub in ["keys", "metadata", "data"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| format!("cannot make {}: {e}", dir.join(sub).display()))?;
    }
    for file in files.written() {
        let to = dir.join(file);
        std::fs::rename(staging.join(file), &to).map_err(|e| format!("cannot write {}: {e}", to.display()))?;
    }
    Ok(())
}

/// The app's addresses and what is left after init, from the check of what it wrote.
fn report(dir: &Path, plan: &Plan, files: &Files, checked: Checked) -> ExitCode {
    let config_path = dir.join(&files.config);
    let config = config_path.display();
    let metadata_path = dir.join(&files.metadata);
    let base = plan.base_url.as_str().trim_end_matches('/');
    println!("the app's elo link (login): {base}/saml2/kennisnet/login\nits SP metadata, for Kennisnet: {base}/saml2/kennisnet/metadata");
    if let Handoff::Oidc { .. } = plan.handoff {
        let issuer = plan.base_url.origin().ascii_serialization();
        println!("the app's OpenID Connect issuer: {issuer} (discovery {issuer}/.well-known/openid-configuration)");
    }
    let mut todo: Vec<String> = Vec::new();
    let fetch = match checked {
        Checked::Ready => None,
        Checked::MetadataMissing => Some("Entree's staging metadata".to_string()),
        Checked::MetadataUnusable(problems) => Some(format!(
            "{} is there but not usable ({}): fetch Entree's staging metadata again",
            metadata_path.display(),
            problems.join("; ")
        )),
    };
    match fetch {
        Some(fetch) => todo.push(format!(
            "{fetch} (check its signing certificate with Kennisnet, metadata/README.md):\n     curl -o {} {ENTREE_STAGING_METADATA}",
            metadata_path.display()
        )),
        None => {
            if let Ok(settings) = config::load(&config_path) {
                print!("{}", settings.summary());
            }
        }
    }
    todo.push(format!(
        "entree-bridge check-config --config {config}, then entree-bridge serve --config {config}"
    ));
    if plan.contact.is_none() {
        todo.push(format!(
            "a contact for Kennisnet and the schools: activation_contact and [[apps.{}.contacts]] in the config (init --contact writes both)",
            plan.app
        ));
    }
    todo.push(
        "register the SP metadata URL above with Kennisnet (README, \"Registering an app with Entree\")".to_string(),
    );
    todo.push(format!(
        "no school can log in yet: each switches the service on in Mijn Entree Federatie, then \
         entree-bridge schools activate --config {config} --app {} BRIN (or list it in schools)",
        plan.app
    ));
    println!("left to do:");
    for (n, step) in todo.iter().enumerate() {
        println!("  {}. {step}", n + 1);
    }
    ExitCode::SUCCESS
}
