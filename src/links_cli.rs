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
    /// Show links, all or filtered, with a header; times in UTC. A person code linked to
    /// both a student's and an employee's federated id is marked and warned about.
    List {
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        federated_id: Option<String>,
        /// Only the links to this person code (a student with several federated ids).
        #[arg(long)]
        person_code: Option<String>,
    },
    /// The link behind a pseudonym from a log line (`p:...`): the federated id or person code
    /// it stands for, with its link(s).
    FindPseudonym {
        #[arg(long)]
        app: Option<String>,
        pseudonym: String,
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
        LinksAction::List { app, .. } | LinksAction::FindPseudonym { app, .. } => app.as_deref(),
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
        LinksAction::List {
            app,
            federated_id,
            person_code,
        } => {
            return list(store, app.as_deref(), federated_id.as_deref(), person_code.as_deref()).await;
        }
        LinksAction::FindPseudonym { app, pseudonym } => {
            return find_pseudonym(store, pseudonyms, app.as_deref(), &pseudonym).await;
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

/// `links list`: a header, one tab-separated line per link, the count, and a warning per
/// person code that has both a student's and an employee's federated id.
async fn list(store: &LinkStore, app: Option<&str>, federated_id: Option<&str>, person_code: Option<&str>) -> ExitCode {
    let listed = match (store.list(app, federated_id).await, store.affiliations(app).await) {
        (Ok(links), Ok(affiliations)) => (links, affiliations),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("entree-bridge links: {e}");
            return ExitCode::from(1);
        }
    };
    let (links, affiliations) = listed;
    let links: Vec<_> = links
        .into_iter()
        .filter(|l| person_code.is_none_or(|c| l.person_code == c))
        .collect();
    let kind_of = |l: &entree_bridge::store::links::Link| {
        affiliations
            .iter()
            .find(|(a, f, _)| *a == l.app && *f == l.federated_id)
            .map(|(_, _, kind)| kind.as_str())
    };
    // Person codes (per app) linked to more than one kind of person, over all their links.
    let mut kinds: std::collections::BTreeMap<(&str, &str), std::collections::BTreeSet<&str>> = Default::default();
    let everything = match store.list(app, None).await {
        Ok(all) => all,
        Err(e) => {
            eprintln!("entree-bridge links: {e}");
            return ExitCode::from(1);
        }
    };
    for l in &everything {
        if let Some(kind) = kind_of(l) {
            kinds.entry((&l.app, &l.person_code)).or_default().insert(kind);
        }
    }
    let mixed = |l: &entree_bridge::store::links::Link| {
        kinds
            .get(&(l.app.as_str(), l.person_code.as_str()))
            .is_some_and(|k| k.len() > 1)
    };
    let mut lines = vec!["app\tfederated_id\tperson_code\tsource\taffiliation\tcreated\tlast_login".to_string()];
    for l in &links {
        let last = l
            .last_login_at
            .map(ops::readable_time)
            .unwrap_or_else(|| "never".into());
        let kind = kind_of(l).unwrap_or("-");
        let flag = if mixed(l) { "\tMIXED AFFILIATIONS" } else { "" };
        lines.push(format!(
            "{}\t{}\t{}\t{}\t{kind}\t{}\t{last}{flag}",
            l.app,
            l.federated_id,
            l.person_code,
            l.source.as_str(),
            ops::readable_time(l.created_at)
        ));
    }
    lines.push(format!("{} link(s)", links.len()));
    let mut warned = std::collections::BTreeSet::new();
    for l in links.iter().filter(|l| mixed(l)) {
        if warned.insert((l.app.as_str(), l.person_code.as_str())) {
            lines.push(format!(
                "warning: person code {} in {} is linked to both a student's and an employee's federated id: check that each link is the person's own (links remove --app {} --federated-id ...)",
                l.person_code, l.app, l.app
            ));
        }
    }
    print_lines(&lines);
    ExitCode::SUCCESS
}

/// `links find-pseudonym`: which link a log line's `p:...` stands for. Pseudonyms are keyed
/// one-way digests, so this computes the pseudonym of every federated id and person code of
/// the app(s) and compares (a CLI's work, linear in the links).
async fn find_pseudonym(
    store: &LinkStore,
    pseudonyms: &entree_bridge::identity::Pseudonyms,
    app: Option<&str>,
    pseudonym: &str,
) -> ExitCode {
    let wanted = pseudonym.trim();
    let links = match store.list(app, None).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("entree-bridge links: {e}");
            return ExitCode::from(1);
        }
    };
    let mut lines = Vec::new();
    for l in &links {
        if pseudonyms.of(&l.federated_id) == wanted {
            lines.push(format!(
                "{wanted} is the federated id {} in {} (linked to person code {})",
                l.federated_id, l.app, l.person_code
            ));
        }
        if pseudonyms.of(&l.person_code) == wanted {
            lines.push(format!(
                "{wanted} is the person code {} in {} (linked from federated id {})",
                l.person_code, l.app, l.federated_id
            ));
        }
    }
    if lines.is_empty() {
        eprintln!(
            "no link has {wanted}: it may be a login that made no link (a rule-based person code), a link since removed, or a pseudonym of another bridge's config (its key differs)"
        );
        return ExitCode::from(1);
    }
    lines.dedup();
    print_lines(&lines);
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
