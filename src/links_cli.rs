//! `entree-bridge links import|export|list|remove`: the admin's view of account links.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use entree_bridge::admin::ops::{self, ImportOptions, ImportReport};
use entree_bridge::config::{self, App, Settings};
use entree_bridge::store::links::{LinkSource, LinkStore};

#[derive(Subcommand)]
pub enum LinksAction {
    /// Link federated ids to person codes from a file (Magister's migratiehulpbestand or CSV).
    Import {
        #[arg(long)]
        app: String,
        /// magister (stamnr;idgebr;externeid;realmid) or csv (federated_id,person_code).
        #[arg(long, default_value = "magister")]
        format: String,
        /// With --format magister: the column that holds the app's person code.
        #[arg(long)]
        code_column: Option<String>,
        /// Report what would change without writing.
        #[arg(long)]
        dry_run: bool,
        /// Import the valid lines even when some lines are invalid.
        #[arg(long)]
        skip_invalid: bool,
        file: PathBuf,
    },
    /// Write an app's links as CSV (federated_id,person_code,source,created_at,last_login_at).
    Export {
        #[arg(long)]
        app: String,
    },
    /// Show links, all or filtered.
    List {
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        federated_id: Option<String>,
    },
    /// Link one federated id by hand (source "admin"), e.g. for the support desk.
    Add {
        #[arg(long)]
        app: String,
        #[arg(long)]
        federated_id: String,
        #[arg(long)]
        person_code: String,
    },
    /// Remove one link.
    Remove {
        #[arg(long)]
        app: String,
        #[arg(long)]
        federated_id: String,
    },
}

pub fn run(config_path: &Path, action: LinksAction) -> ExitCode {
    let settings = match config::load(config_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("entree-bridge links: the config has problems:\n{e}");
            return ExitCode::from(1);
        }
    };
    let app_known = |name: &str| settings.apps.iter().any(|a| a.name == name);
    let named_app = match &action {
        LinksAction::Import { app, .. }
        | LinksAction::Export { app }
        | LinksAction::Add { app, .. }
        | LinksAction::Remove { app, .. } => Some(app.as_str()),
        LinksAction::List { app, .. } => app.as_deref(),
    };
    if let Some(app) = named_app.filter(|a| !app_known(a)) {
        eprintln!("entree-bridge links: no [apps.{app}] in {}", config_path.display());
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("entree-bridge links: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let store = match LinkStore::open_target(&settings.links, settings.links_timeout).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("entree-bridge links: cannot open the link store: {e}");
                return ExitCode::from(1);
            }
        };
        let code = act(&store, &settings, action).await;
        store.close().await;
        code
    })
}

async fn act(store: &LinkStore, settings: &Settings, action: LinksAction) -> ExitCode {
    let pseudonyms = &settings.pseudonyms;
    // `run` checked that a named app exists.
    let app_named = |name: &str| settings.apps.iter().find(|a| a.name == name).cloned();
    let result = match action {
        LinksAction::Import {
            app,
            format,
            code_column,
            dry_run,
            skip_invalid,
            file,
        } => {
            let Some(app) = app_named(&app) else {
                return ExitCode::from(2);
            };
            return import_file(
                store,
                &app,
                &format,
                code_column.as_deref(),
                dry_run,
                skip_invalid,
                &file,
            )
            .await;
        }
        LinksAction::Export { app } => store.list(Some(&app), None).await.map(|links| {
            let mut lines = vec!["federated_id,person_code,source,created_at,last_login_at".to_string()];
            lines.extend(links.iter().map(|l| {
                format!(
                    "{},{},{},{},{}",
                    csv_field(&l.federated_id),
                    csv_field(&l.person_code),
                    l.source.as_str(),
                    l.created_at,
                    l.last_login_at.map(|t| t.to_string()).unwrap_or_default()
                )
            }));
            print_lines(&lines);
            ExitCode::SUCCESS
        }),
        LinksAction::List { app, federated_id } => {
            store.list(app.as_deref(), federated_id.as_deref()).await.map(|links| {
                let mut lines: Vec<String> = links
                    .iter()
                    .map(|l| {
                        let last = l.last_login_at.map(|t| t.to_string()).unwrap_or_else(|| "never".into());
                        let (app, id, code) = (&l.app, &l.federated_id, &l.person_code);
                        format!("{app}\t{id}\t{code}\t{}\tlast login {last}", l.source.as_str())
                    })
                    .collect();
                lines.push(format!("{} link(s)", links.len()));
                print_lines(&lines);
                ExitCode::SUCCESS
            })
        }
        LinksAction::Add {
            app,
            federated_id,
            person_code,
        } => {
            // The same rule as at login: a stored code that is no clean value would be
            // refused at every login of the student, or passed as two students' code.
            let clean = entree_bridge::identity::check_clean(
                "person code",
                &person_code,
                entree_bridge::identity::MAX_VALUE_LEN,
            )
            .and_then(|()| {
                entree_bridge::identity::check_clean(
                    "federated id",
                    &federated_id,
                    entree_bridge::identity::MAX_FEDERATED_ID_LEN,
                )
            });
            if let Err(e) = clean {
                eprintln!("not linked: {e} ({})", e.code());
                return ExitCode::from(2);
            }
            store
                .link_once(&app, &federated_id, &person_code, LinkSource::Admin)
                .await
                .map(|linked| {
                    if linked == person_code {
                        tracing::info!(
                            target: "audit",
                            event = "link_created",
                            by = "admin",
                            app,
                            federated = pseudonyms.of(&federated_id),
                            "link added by an admin"
                        );
                        println!("{federated_id} in {app} is linked to {linked}");
                        ExitCode::SUCCESS
                    } else {
                        eprintln!("{federated_id} in {app} is already linked to {linked}; remove that link first");
                        ExitCode::from(1)
                    }
                })
        }
        LinksAction::Remove { app, federated_id } => {
            let Some(app) = app_named(&app) else {
                return ExitCode::from(2);
            };
            let by = crate::support_cli::shell_user();
            return match ops::remove_link(store, pseudonyms, &app, &federated_id, &by).await {
                Ok(true) => {
                    println!("removed the link of {federated_id} in {}", app.name);
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    eprintln!("no link of {federated_id} in {}", app.name);
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("entree-bridge links: {e}");
                    ExitCode::from(1)
                }
            };
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("entree-bridge links: {e}");
        ExitCode::from(1)
    })
}

async fn import_file(
    store: &LinkStore,
    app: &App,
    format: &str,
    code_column: Option<&str>,
    dry_run: bool,
    skip_invalid: bool,
    file: &Path,
) -> ExitCode {
    let options = match ImportOptions::parse(format, code_column, dry_run, skip_invalid) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("entree-bridge links import: {e}");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("entree-bridge links import: cannot read {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let source = file.display().to_string();
    let report = match ops::import_links(
        store,
        app,
        bytes.into(),
        &options,
        &source,
        &crate::support_cli::shell_user(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("entree-bridge links import: {e}");
            return ExitCode::from(1);
        }
    };
    print_report(file, &report);
    if report.blocked_by_invalid_lines {
        eprintln!("nothing was written: the file has invalid lines (fix them, or use --skip-invalid)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
fn print_lines(lines: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn print_report(file: &Path, r: &ImportReport) {
    let lines = |v: &[usize]| v.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    println!(
        "{}: {}",
        file.display(),
        if r.written {
            "imported"
        } else {
            "not written (report only)"
        }
    );
    println!("  added:       {}", r.added);
    println!("  unchanged:   {}", r.unchanged);
    println!(
        "  changed:     {}{}",
        r.changed.len(),
        if r.changed.is_empty() {
            String::new()
        } else {
            format!(" (lines {})", lines(&r.changed))
        }
    );
    println!("  conflicting: {}", r.conflicting.len());
    for p in &r.conflicting {
        println!("    line {}: {}", p.line, p.why);
    }
    println!("  invalid:     {}", r.invalid.len());
    for p in &r.invalid {
        println!("    line {}: {}", p.line, p.why);
    }
}
