//! `entree-bridge schools activate|deactivate|list` and `entree-bridge explain REFERENCE`:
//! the support desk's commands, on the link store's database (any instance's config will do).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use entree_bridge::admin::ops::{self, readable_time, Actor, SchoolChange};
use entree_bridge::config::{self, Settings};
use entree_bridge::store::links::LinkStore;
use entree_bridge::store::reports::FailureReport;

#[derive(Subcommand)]
pub enum SchoolsAction {
    /// Activate schools for an app (in force on every instance within 10 s).
    Activate {
        #[arg(long)]
        app: String,
        /// 4- or 6-character BRINs.
        #[arg(required = true)]
        brins: Vec<String>,
    },
    /// Remove activations the database holds (those in `apps.X.schools` stay: edit the config).
    Deactivate {
        #[arg(long)]
        app: String,
        #[arg(required = true)]
        brins: Vec<String>,
    },
    /// The schools that have activated an app: from the config and from the database.
    List {
        #[arg(long)]
        app: String,
    },
}

/// Who makes a change from the shell, for the audit trail.
pub fn shell_user() -> Actor {
    let user = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    Actor::shell(&user)
}

/// The config and a runtime with the link store opened, or the exit code of why not.
fn with_store<F, Fut>(config_path: &Path, command: &str, work: F) -> ExitCode
where
    F: FnOnce(Settings, LinkStore) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let settings = match config::load(config_path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("entree-bridge {command}: the config has problems:\n{e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("entree-bridge {command}: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let store = match LinkStore::open_target(&settings.links, settings.links_timeout).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("entree-bridge {command}: cannot open the link store: {e}");
                return ExitCode::from(1);
            }
        };
        let code = work(settings, store.clone()).await;
        store.close().await;
        code
    })
}

pub fn schools(config_path: &Path, action: SchoolsAction) -> ExitCode {
    let app_name = match &action {
        SchoolsAction::Activate { app, .. } | SchoolsAction::Deactivate { app, .. } | SchoolsAction::List { app } => {
            app.clone()
        }
    };
    let activating = matches!(action, SchoolsAction::Activate { .. });
    with_store(config_path, "schools", |settings, store| async move {
        let Some(app) = settings.apps.iter().find(|a| a.name == app_name) else {
            eprintln!(
                "entree-bridge schools: no [apps.{app_name}] in {}",
                config_path.display()
            );
            return ExitCode::from(2);
        };
        match action {
            SchoolsAction::List { .. } => match store.activations(Some(&app.name)).await {
                Ok(rows) => {
                    println!("BRIN\tSOURCE\tBY\tSINCE");
                    for s in &app.identity.schools {
                        println!("{s}\tconfig (apps.{}.schools)\t-\t-", app.name);
                    }
                    for a in &rows {
                        println!(
                            "{}\tdatabase\t{}\t{}",
                            a.brin,
                            a.activated_by,
                            readable_time(a.activated_at)
                        );
                    }
                    println!(
                        "{} in the config, {} in the database",
                        app.identity.schools.len(),
                        rows.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("entree-bridge schools: {e}");
                    ExitCode::from(1)
                }
            },
            SchoolsAction::Activate { brins, .. } | SchoolsAction::Deactivate { brins, .. } => {
                let activate = activating;
                let done = match ops::change_schools(&store, app, &brins, activate, &shell_user()).await {
                    Ok(done) => done,
                    Err(e @ ops::OpError::Invalid(_)) => {
                        eprintln!("entree-bridge schools: {e}; nothing was changed");
                        return ExitCode::from(2);
                    }
                    Err(e) => {
                        eprintln!("entree-bridge schools: {e}");
                        return ExitCode::from(1);
                    }
                };
                let mut code = ExitCode::SUCCESS;
                for (brin, change) in done {
                    match change {
                        SchoolChange::Activated => println!("{brin}: activated"),
                        SchoolChange::Deactivated => println!("{brin}: deactivated"),
                        SchoolChange::AlreadyActivated => println!("{brin}: already activated in the database"),
                        SchoolChange::InConfig => {
                            println!(
                                "{brin}: activated by the config (apps.{}.schools), not the database: remove it there",
                                app.name
                            );
                            code = ExitCode::from(1);
                        }
                        SchoolChange::NotActivated => {
                            println!("{brin}: was not activated");
                            code = ExitCode::from(1);
                        }
                    }
                }
                if activate {
                    println!("in force on every instance within 10 s");
                }
                code
            }
        }
    })
}

pub fn explain(config_path: &Path, reference: &str, as_json: bool) -> ExitCode {
    let Some(reference) = ops::parse_reference(reference) else {
        eprintln!("entree-bridge explain: {reference:?} is not a reference (the hex code on the error page)");
        return ExitCode::from(2);
    };
    with_store(config_path, "explain", |_, store| async move {
        match store.failure_report(&reference).await {
            Ok(Some(report)) => {
                if as_json {
                    match serde_json::to_string_pretty(&report) {
                        Ok(text) => println!("{text}"),
                        Err(e) => {
                            eprintln!("entree-bridge explain: {e}");
                            return ExitCode::from(1);
                        }
                    }
                } else {
                    print_report(&report);
                }
                ExitCode::SUCCESS
            }
            Ok(None) => {
                eprintln!(
                    "entree-bridge explain: no report under {reference} (older than support.retention, over the hour's bound, or not a failed login)"
                );
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("entree-bridge explain: {e}");
                ExitCode::from(1)
            }
        }
    })
}

fn print_report(r: &FailureReport) {
    println!("reference {}: {} ({}), app {}", r.reference, r.code, r.status, r.app);
    println!("  when:     {}", readable_time(r.created_at));
    println!("  instance: {}", r.instance);
    println!("  school:   {}", r.school.as_deref().unwrap_or("-"));
    println!("  person:   {}", r.person.as_deref().unwrap_or("-"));
    println!("  message:  {}", r.message);
    if !r.checks.is_empty() {
        println!();
        for c in &r.checks {
            println!("{} {:<24} {}", if c.ok { "ok  " } else { "FAIL" }, c.check, c.detail);
        }
    }
}
