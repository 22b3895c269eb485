//! The `entree-bridge` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use entree_bridge::config::{self, Settings};
#[cfg(feature = "demo")]
use entree_bridge::demo;
use entree_bridge::http::{self, AppState};
use entree_bridge::saml;
use entree_bridge::store::links::LinkStore;
use entree_bridge::verify_cli::{self, VerifySettings};
use entree_bridge::verify_identity::IdentityTarget;

mod init_cli;
mod init_template;
mod keys_cli;
mod links_cli;
mod support_cli;

#[derive(Parser)]
#[command(
    name = "entree-bridge",
    version,
    about = "SAML 2.0 bridge between Kennisnet Entree and learning apps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bridge.
    Serve {
        #[arg(long, env = "ENTREE_BRIDGE_CONFIG", default_value = "config/entree-bridge.toml")]
        config: PathBuf,
    },
    /// Validate a config: exit 0 with a summary, or 1 with every problem.
    CheckConfig {
        #[arg(long, env = "ENTREE_BRIDGE_CONFIG", default_value = "config/entree-bridge.toml")]
        config: PathBuf,
    },
    /// Explain why a SAML Response is accepted or rejected.
    VerifyResponse(VerifyArgs),
    /// Start a real deployment: a commented config for one app at Entree staging, with its
    /// SP key and certificate and the JWT signing key, checked, and what is left to do.
    Init(init_cli::InitArgs),
    /// Write a new JWT signing key (PKCS#8 PEM).
    Keygen {
        /// Where to write the key.
        #[arg(long, default_value = "keys/jwt-signing.pem")]
        out: PathBuf,
        /// ec (P-256, ES256; the default) or rsa (2048 bits, RS256). An SP key (--sp) is RSA.
        #[arg(long = "type")]
        key_type: Option<String>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        /// An app's SP key pair instead: an RSA key at --out and its self-signed certificate
        /// (10 years) beside it, with the extension .crt: what Entree knows the app by.
        #[arg(long)]
        sp: bool,
    },
    /// Account links: import, export, list, remove.
    Links {
        #[arg(
            long,
            env = "ENTREE_BRIDGE_CONFIG",
            default_value = "config/entree-bridge.toml",
            global = true
        )]
        config: PathBuf,
        #[command(subcommand)]
        action: links_cli::LinksAction,
    },
    /// School activations kept in the link database: activate, deactivate, list.
    Schools {
        #[arg(
            long,
            env = "ENTREE_BRIDGE_CONFIG",
            default_value = "config/entree-bridge.toml",
            global = true
        )]
        config: PathBuf,
        #[command(subcommand)]
        action: support_cli::SchoolsAction,
    },
    /// Why a login failed: its report, by the reference on its error page.
    Explain {
        #[arg(long, env = "ENTREE_BRIDGE_CONFIG", default_value = "config/entree-bridge.toml")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
        reference: String,
    },
    /// Run the whole flow locally: bridge, development IdP and sample app.
    Demo {
        #[arg(long, default_value = DEMO_ADDRESS)]
        listen: String,
        #[arg(long, default_value = "config/entree-bridge.toml")]
        config: PathBuf,
    },
}

/// `demo --listen`'s default (the address in the demo config), also without the demo built in,
/// so the command line is the same in every build.
#[cfg(feature = "demo")]
const DEMO_ADDRESS: &str = demo::DEMO_ADDRESS;
#[cfg(not(feature = "demo"))]
const DEMO_ADDRESS: &str = "127.0.0.1:8080";

#[derive(clap::Args)]
struct VerifyArgs {
    #[arg(long, required_unless_present = "config")]
    idp_metadata: Option<PathBuf>,
    #[arg(long, required_unless_present = "config")]
    sp_entity_id: Option<String>,
    #[arg(long, required_unless_present = "config")]
    acs_url: Option<String>,
    #[arg(long)]
    request_id: Option<String>,
    /// Validate as if it were this moment (RFC 3339).
    #[arg(long)]
    now: Option<String>,
    #[arg(long)]
    allow_sha1: bool,
    /// Accept AES-CBC encrypted assertions in an unsigned Response (as
    /// `federations.X.allow_cbc`; a padding-oracle risk at a live ACS).
    #[arg(long)]
    allow_cbc: bool,
    #[arg(long)]
    allow_unsolicited: bool,
    /// SP private key(s) for encrypted assertions.
    #[arg(long)]
    sp_key: Vec<PathBuf>,
    #[arg(long)]
    json: bool,
    /// Take the settings from this config's app (with --app).
    #[arg(long, requires = "app", conflicts_with_all = ["idp_metadata", "sp_entity_id", "acs_url"])]
    config: Option<PathBuf>,
    #[arg(long, requires = "config")]
    app: Option<String>,
    /// The response: a file, or - (default) for standard input.
    #[arg(default_value = "-")]
    input: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logging starts before the config is loaded (its warnings are worth seeing), in the
    // format the config asks for.
    let format = match &cli.command {
        Command::Serve { config } | Command::Links { config, .. } | Command::Schools { config, .. } => {
            config::log_format_of(config)
        }
        _ => config::LogFormat::Text,
    };
    init_logging(format);
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::CheckConfig { config } => check_config(&config),
        Command::Init(args) => init_cli::run(args),
        Command::VerifyResponse(args) => ExitCode::from(verify(args) as u8),
        Command::Keygen {
            out,
            key_type,
            force,
            sp,
        } => match sp {
            true => keys_cli::keygen_sp(&out, key_type.as_deref(), force),
            false => keys_cli::keygen(&out, key_type.as_deref().unwrap_or("ec"), force),
        },
        Command::Demo { listen, config } => run_demo(&listen, &config),
        Command::Links { config, action } => links_cli::run(&config, action),
        Command::Schools { config, action } => support_cli::schools(&config, action),
        Command::Explain {
            config,
            json,
            reference,
        } => support_cli::explain(&config, &reference, json),
    }
}

/// Logs to stderr, filtered by RUST_LOG (default info). Lines with target `audit` are the
/// audit trail: logins, link creations and removals, imports (pseudonymous ids only).
fn init_logging(format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: in a file or a collector they are escape codes.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Text => builder.init(),
        // The request's span (its correlation_id) on each of its lines, as "span".
        config::LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

fn check_config(path: &Path) -> ExitCode {
    prepare_demo_files(path);
    match config::load(path) {
        Ok(settings) => {
            print!("{}", settings.summary());
            for warning in &settings.warnings {
                println!("warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{} problem(s) in {}:", errors.0.len(), path.display());
            for p in &errors.0 {
                eprintln!("  {p}");
            }
            ExitCode::from(1)
        }
    }
}

/// The first line of the demo's config (`config/entree-bridge.toml`, what a fresh clone has).
const DEMO_CONFIG_HEADER: &str = "# entree-bridge demo configuration";

/// A fresh clone's config is the demo's, whose keys and IdP metadata `demo` makes on its
/// first run: check-config makes them the same way, so the check is of the config and not of
/// files nobody has had a chance to make yet.
fn prepare_demo_files(path: &Path) {
    let is_demo_config = std::fs::read_to_string(path).is_ok_and(|t| t.starts_with(DEMO_CONFIG_HEADER));
    if !is_demo_config {
        return;
    }
    #[cfg(feature = "demo")]
    {
        let data_dir = demo::data_dir_for(path);
        match demo::prepare(&data_dir, DEMO_ADDRESS) {
            Ok(_) => println!(
                "{} is the demo's config: its keys and IdP metadata are in {} (made as `entree-bridge demo` makes them on its first run)",
                path.display(),
                data_dir.display()
            ),
            Err(e) => eprintln!("entree-bridge check-config: cannot make the demo's files: {e}"),
        }
    }
    #[cfg(not(feature = "demo"))]
    eprintln!(
        "{} is the demo's config: its keys and IdP metadata are made by `entree-bridge demo` on its first run \
         (a build with the demo: ./scripts/demo). For a real app: `entree-bridge init` (README, \"Your first real app\").",
        path.display()
    );
}

fn serve(path: &Path) -> ExitCode {
    let settings = match config::load(path) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("entree-bridge: cannot start, the config has problems:\n{errors}");
            return ExitCode::from(1);
        }
    };
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    run_server(Arc::new(settings), None, Some(path.to_path_buf()), None)
}

/// Serves `settings`; with `config_path`, reloads on SIGHUP and when the config files change.
/// `side` is a second server of the demo's (its sample app behind the proxy), which also
/// gets the demo's Magister file imported before anything serves.
fn run_server(
    settings: Arc<Settings>,
    extra: Option<axum::Router>,
    config_path: Option<PathBuf>,
    side: Option<(std::net::TcpListener, axum::Router)>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("entree-bridge: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let listen = settings.listen;
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("entree-bridge: cannot listen on {listen}: {e}");
                return ExitCode::from(1);
            }
        };
        let links = match LinkStore::open_target(&settings.links, settings.links_timeout).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("entree-bridge: cannot open the link store: {e}");
                return ExitCode::from(1);
            }
        };
        let is_demo = side.is_some();
        if let Some((listener, app)) = side {
            #[cfg(feature = "demo")]
            if let Err(e) = demo::import_demo_links(&settings).await {
                eprintln!("entree-bridge demo: cannot import the demo's Magister file: {e}");
                return ExitCode::from(1);
            }
            let listener = match listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
            {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("entree-bridge demo: the sample app cannot listen: {e}");
                    return ExitCode::from(1);
                }
            };
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        let store = match entree_bridge::store::open(&settings.session_store) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("entree-bridge: cannot set up the session store: {e}");
                return ExitCode::from(1);
            }
        };
        let shared = http::Shared::new(AppState::new(settings, store, links));
        if let Some(path) = config_path {
            let hangup = entree_bridge::reload::hangup();
            tokio::spawn(entree_bridge::reload::watch(shared.clone(), path, hangup));
        }
        tokio::spawn(entree_bridge::metadata_refresh::run(shared.clone()));
        http::start_upkeep(&shared);
        if let Some(admin) = shared.current().settings.admin.clone() {
            match tokio::net::TcpListener::bind(admin.listen).await {
                Ok(listener) => {
                    tracing::info!(listen = %admin.listen, tokens = admin.tokens.names().count(), "admin listener up");
                    tokio::spawn(entree_bridge::admin::serve(listener, shared.clone(), shutdown_signal()));
                }
                // The demo goes on without its support desk (its port is only next to the
                // demo's own); a real bridge does not start without what its config asks for.
                Err(e) if is_demo => {
                    eprintln!(
                        "entree-bridge demo: the support desk cannot listen on {}: {e}",
                        admin.listen
                    )
                }
                Err(e) => {
                    eprintln!("entree-bridge: cannot listen on {} (admin.listen): {e}", admin.listen);
                    return ExitCode::from(1);
                }
            }
        }
        entree_bridge::http::log_startup(&shared.current().settings);
        let router = http::router(shared.clone(), extra);
        // https when the config has a certificate: the same accept loop and bounds.
        let served = http::serve(listener, shared.clone(), router, shutdown_signal()).await;
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("entree-bridge: server error: {e}");
                ExitCode::from(1)
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: finishing requests in flight");
}

/// Without the `demo` feature (the production build) there is no development IdP to run.
#[cfg(not(feature = "demo"))]
fn run_demo(_listen: &str, _config_path: &Path) -> ExitCode {
    eprintln!(
        "entree-bridge demo: this binary was built without the demo (cargo feature `demo`, \
         left out of production builds with --no-default-features). Run it from a source \
         checkout with `cargo run -- demo` (or ./scripts/demo), which builds it with the demo."
    );
    ExitCode::from(2)
}

#[cfg(feature = "demo")]
fn run_demo(listen: &str, config_path: &Path) -> ExitCode {
    let data_dir = demo::data_dir_for(config_path);
    // The sample headers-mode app listens on a loopback port of its own, behind the bridge.
    let upstream = match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("entree-bridge demo: cannot listen for the sample app: {e}");
            return ExitCode::from(1);
        }
    };
    let upstream_addr = match upstream.local_addr() {
        Ok(a) => a.to_string(),
        Err(e) => {
            eprintln!("entree-bridge demo: {e}");
            return ExitCode::from(1);
        }
    };
    let idp = match demo::prepare(&data_dir, listen) {
        Ok(idp) => idp,
        Err(e) => {
            eprintln!("entree-bridge demo: cannot prepare {}: {e}", data_dir.display());
            return ExitCode::from(1);
        }
    };
    let mut settings = match demo::load_config(config_path, listen, &upstream_addr) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!("entree-bridge demo: the demo config has problems:\n{errors}");
            return ExitCode::from(1);
        }
    };
    match listen.parse() {
        Ok(addr) => settings.listen = addr,
        Err(e) => {
            eprintln!("entree-bridge demo: --listen {listen:?}: {e}");
            return ExitCode::from(2);
        }
    }
    println!("entree-bridge demo: open http://{listen}/ in your browser (Ctrl-C stops it)");
    if let (Some(admin), Some(token)) = (&settings.admin, demo::admin_token(&data_dir)) {
        println!(
            "entree-bridge demo: the support desk is at http://{}/admin/ (sign in with the token {token}, from {})",
            admin.listen,
            admin.token_file.display()
        );
    }
    // The demo's IdP and sample app read the same settings the bridge serves with.
    let settings = Arc::new(settings);
    let demo_router = demo::router(Arc::new(demo::DemoState::new(idp, settings.clone())));
    run_server(settings, Some(demo_router), None, Some((upstream, demo::headers_app())))
}

fn verify(args: VerifyArgs) -> i32 {
    match verify_settings(&args) {
        Ok(settings) => {
            let input = if args.input == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
            } else {
                std::fs::read(&args.input)
            };
            match input {
                Ok(bytes) => verify_cli::run(&settings, &bytes, args.json),
                Err(e) => {
                    eprintln!("entree-bridge verify-response: cannot read {}: {e}", args.input);
                    2
                }
            }
        }
        Err(e) => {
            eprintln!("entree-bridge verify-response: {e}");
            2
        }
    }
}

fn verify_settings(args: &VerifyArgs) -> Result<VerifySettings, String> {
    let now = verify_cli::parse_now(args.now.as_deref()).map_err(|e| e.to_string())?;
    let mut sp_keys = verify_cli::load_sp_keys(&args.sp_key).map_err(|e| e.to_string())?;
    if let (Some(config_path), Some(app_name)) = (&args.config, &args.app) {
        let settings = config::load(config_path).map_err(|e| format!("{}:\n{e}", config_path.display()))?;
        let app = settings
            .apps
            .iter()
            .find(|a| &a.name == app_name)
            .ok_or_else(|| format!("no [apps.{app_name}] in {}", config_path.display()))?;
        sp_keys.extend(app.sp.decryption_keys.iter().cloned());
        return Ok(VerifySettings {
            idp: app
                .federation
                .metadata_at_load()
                .map_err(|e| e.to_string())?
                .as_ref()
                .clone(),
            sp_entity_id: app.sp.entity_id.clone(),
            acs_url: app.sp.acs_url.clone(),
            request_id: args.request_id.clone(),
            now,
            allow_sha1: args.allow_sha1 || app.federation.trust.allow_sha1,
            allow_cbc: args.allow_cbc || app.federation.trust.allow_cbc,
            allow_unsolicited: args.allow_unsolicited || app.sp.allow_unsolicited,
            clock_skew: app.federation.trust.clock_skew,
            sp_keys,
            identity: Some(IdentityTarget {
                app: app.clone(),
                links: settings.links.clone(),
                links_timeout: settings.links_timeout,
                issuer: settings.public_base_url.to_string(),
            }),
        });
    }
    let metadata_path = args.idp_metadata.as_ref().ok_or("--idp-metadata is required")?;
    let text =
        std::fs::read_to_string(metadata_path).map_err(|e| format!("cannot read {}: {e}", metadata_path.display()))?;
    let idp = saml::idp_metadata::parse(&text, None).map_err(|e| format!("{}: {e}", metadata_path.display()))?;
    Ok(VerifySettings {
        idp,
        sp_entity_id: args.sp_entity_id.clone().ok_or("--sp-entity-id is required")?,
        acs_url: args.acs_url.clone().ok_or("--acs-url is required")?,
        request_id: args.request_id.clone(),
        now,
        allow_sha1: args.allow_sha1,
        allow_cbc: args.allow_cbc,
        allow_unsolicited: args.allow_unsolicited,
        clock_skew: std::time::Duration::from_secs(120),
        sp_keys,
        // Without a config there is no app, so no identity step: nothing changes here.
        identity: None,
    })
}
