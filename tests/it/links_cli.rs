//! `entree-bridge links ...` as the admin runs it, on SQLite and on PostgreSQL, and a student
//! from an imported Magister file logging in as that person code.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

struct Admin {
    dir: tempfile::TempDir,
    config: PathBuf,
    _database: Option<TestDatabase>,
}

impl Admin {
    async fn new(links: Links) -> Admin {
        let (dir, _idp, _) = prepare_dir();
        let (database, links_config) = links_config(links).await;
        let config = dir.path().join("bridge.toml");
        std::fs::write(&config, config_text(8080, &links_config)).expect("write");
        Admin {
            dir,
            config,
            _database: database,
        }
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write");
        p
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        run_links(&self.config, args)
    }
}

fn run_links(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_entree-bridge"))
        .env("RUST_LOG", "warn")
        .arg("links")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn count(report: &str, what: &str) -> usize {
    report
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{what}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {what} count in:\n{report}"))
}

/// `links import` of a Magister file into `numo`, person code from stamnr.
const IMPORT_STAMNR: [&str; 7] = [
    "import",
    "--app",
    "numo",
    "--format",
    "magister",
    "--code-column",
    "stamnr",
];

const MAGISTER: &str = "stamnr;idgebr;externeid;realmid\r\n109999;35895;{56C87192-A1};35895@magis.schoolnaam\r\n110000;35896;{56C87192-A2};35896@magis.schoolnaam\r\n";

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Links::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::Links::Postgres).await })*
        }
    };
}

on_both_stores!(
    magister_import_with_every_separator_is_idempotent,
    invalid_lines_block_the_import_unless_skipped,
    changes_and_conflicts_are_reported_by_line,
    export_list_and_remove,
);

async fn magister_import_with_every_separator_is_idempotent(links: Links) {
    for sep in [";", ",", "\t", "|"] {
        let admin = Admin::new(links).await;
        let file = admin.file("m.csv", &format!("\u{feff}{}", MAGISTER.replace(';', sep)));
        let path = file.to_str().expect("path");
        let (code, out, err) = admin.run(&[&IMPORT_STAMNR[..], &["--dry-run", path]].concat());
        assert_eq!(code, 0, "{err}");
        assert_eq!(count(&out, "added"), 2, "dry run reports: {out}");
        assert!(
            admin.run(&["list", "--app", "numo"]).1.contains("0 link(s)"),
            "a dry run writes nothing"
        );
        let (code, out, _) = admin.run(&[&IMPORT_STAMNR[..], &[path]].concat());
        assert_eq!((code, count(&out, "added")), (0, 2), "separator {sep:?}: {out}");
        let (_, again, _) = admin.run(&[&IMPORT_STAMNR[..], &[path]].concat());
        assert_eq!(
            (
                count(&again, "added"),
                count(&again, "unchanged"),
                count(&again, "changed")
            ),
            (0, 2, 0),
            "re-running is a no-op"
        );
        let listed = admin
            .run(&["list", "--app", "numo", "--federated-id", "35895@magis.schoolnaam"])
            .1;
        assert!(listed.contains("35895@magis.schoolnaam\t109999\timported"), "{listed}");
    }
}

async fn invalid_lines_block_the_import_unless_skipped(links: Links) {
    let admin = Admin::new(links).await;
    let file = admin.file("m.csv", &format!("{MAGISTER}1;2;3\n6;7;8;\n"));
    let path = file.to_str().expect("path");
    let args = [
        "import",
        "--app",
        "numo",
        "--format",
        "magister",
        "--code-column",
        "idgebr",
        path,
    ];
    let (code, out, err) = admin.run(&args);
    assert_eq!(code, 1);
    assert_eq!(count(&out, "invalid"), 2);
    assert!(
        out.contains("line 4: 3 columns, 4 expected") && out.contains("line 5:"),
        "{out}"
    );
    assert!(err.contains("nothing was written"));
    assert!(admin.run(&["list"]).1.contains("0 link(s)"));
    let (code, out, _) = admin.run(&[&args[..7], &["--skip-invalid", path]].concat());
    assert_eq!((code, count(&out, "added")), (0, 2));
    assert!(admin
        .run(&["list", "--app", "numo"])
        .1
        .contains("35895@magis.schoolnaam\t35895\timported"));
}

async fn changes_and_conflicts_are_reported_by_line(links: Links) {
    let admin = Admin::new(links).await;
    let first = admin.file("a.csv", "federated_id,person_code\na@x,1\nb@x,2\n");
    assert_eq!(
        admin
            .run(&["import", "--app", "open", "--format", "csv", first.to_str().expect("p")])
            .0,
        0
    );
    // A student linked c@x themselves; the file disagrees with that, with itself about d@x,
    // corrects a@x and adds e@x.
    let settings = entree_bridge::config::load(&admin.config).expect("config");
    let store = entree_bridge::store::links::LinkStore::open_target(&settings.links, settings.links_timeout)
        .await
        .expect("store");
    let linked = entree_bridge::store::links::LinkSource::Linked;
    store.link_once("open", "c@x", "9", linked).await.expect("link");
    store.close().await;
    let second = admin.file(
        "b.csv",
        "federated_id,person_code\na@x,10\nb@x,2\nc@x,99\nd@x,4\nd@x,5\ne@x,6\n",
    );
    let (code, out, err) = admin.run(&[
        "import",
        "--app",
        "open",
        "--format",
        "csv",
        second.to_str().expect("p"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let counts = (
        count(&out, "added"),
        count(&out, "unchanged"),
        count(&out, "changed"),
        count(&out, "conflicting"),
    );
    assert_eq!(counts, (1, 1, 1, 3), "{out}");
    assert!(out.contains("line 4: a linked link"), "{out}");
    assert!(
        out.contains("line 5: line(s) 6 link the same federated id") && out.contains("line 6: line(s) 5"),
        "{out}"
    );
    let listed = admin.run(&["list", "--app", "open"]).1;
    assert!(
        listed.contains("a@x\t10\timported") && listed.contains("c@x\t9\tlinked"),
        "{listed}"
    );
    assert!(listed.contains("e@x\t6\timported"), "{listed}");
    assert!(
        !listed.contains("d@x"),
        "a file that contradicts itself decides nothing for that id: {listed}"
    );
}

async fn export_list_and_remove(links: Links) {
    let admin = Admin::new(links).await;
    let file = admin.file("a.csv", "federated_id,person_code\na@x,1\nb@x,2\n");
    admin.run(&["import", "--app", "open", "--format", "csv", file.to_str().expect("p")]);
    let (code, csv, _) = admin.run(&["export", "--app", "open"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "federated_id,person_code,source,created_at,last_login_at");
    assert!(
        lines[1].starts_with("a@x,1,imported,") && lines[2].starts_with("b@x,2,imported,"),
        "{csv}"
    );
    assert_eq!(admin.run(&["remove", "--app", "open", "--federated-id", "a@x"]).0, 0);
    assert_eq!(
        admin.run(&["remove", "--app", "open", "--federated-id", "a@x"]).0,
        1,
        "removing twice says so"
    );
    assert!(admin.run(&["list"]).1.contains("1 link(s)"));
    assert_eq!(
        admin.run(&["list", "--app", "nope"]).0,
        2,
        "an unknown app is a usage error"
    );
    let add = [
        "add",
        "--app",
        "open",
        "--federated-id",
        "z@x",
        "--person-code",
        "77,\"8\"",
    ];
    assert_eq!(admin.run(&add).0, 0);
    assert!(admin.run(&["list", "--app", "open"]).1.contains("z@x\t77,\"8\"\tadmin"));
    let (code, _, err) = admin.run(&["add", "--app", "open", "--federated-id", "z@x", "--person-code", "78"]);
    assert_eq!(code, 1, "an existing link is never overwritten by add");
    assert!(err.contains("already linked to 77"), "{err}");
    // A code the login would refuse is never stored: it would reach the app as some other
    // student's code, or lock the student out.
    for bad in ["100\n231", "100231 ", " 100231", "a\tb", ""] {
        let (code, _, err) = admin.run(&["add", "--app", "open", "--federated-id", "w@x", "--person-code", bad]);
        assert_eq!(code, 2, "{bad:?}: {err}");
        assert!(err.contains("identity_value_invalid"), "{bad:?}: {err}");
    }
    assert!(!admin.run(&["list", "--app", "open"]).1.contains("w@x"));
    let (_, csv, _) = admin.run(&["export", "--app", "open"]);
    assert!(csv.contains("z@x,\"77,\"\"8\"\"\",admin,"), "values are quoted: {csv}");
    // `| head -1` closes the pipe early: the export ends quietly.
    let piped = Command::new("bash")
        .args(["-o", "pipefail", "-c"])
        .arg(format!(
            "RUST_LOG=warn {} links --config {} export --app open | head -1",
            env!("CARGO_BIN_EXE_entree-bridge"),
            admin.config.display()
        ))
        .output()
        .expect("pipe");
    assert!(piped.status.success(), "{}", String::from_utf8_lossy(&piped.stderr));
}

#[tokio::test]
async fn a_student_from_an_imported_magister_file_logs_in_as_that_person_code() {
    let bridge = Bridge::start().await;
    let file = bridge.path("migratiehulpbestand.csv");
    std::fs::write(
        &file,
        "stamnr;idgebr;externeid;realmid\n109999;35895;{X};100231@school-a.nl\n",
    )
    .expect("write");
    let (code, out, err) = run_links(
        &bridge.path("bridge.toml"),
        &[
            "import",
            "--app",
            "numo",
            "--code-column",
            "stamnr",
            file.to_str().expect("p"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (outcome, _) = complete_login(&client(), &bridge, "numo", |s| s).await;
    let token = outcome.token().expect("token");
    let payload = token.split('.').nth(1).expect("payload");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("b64"),
    )
    .expect("json");
    assert_eq!(claims["sub"], "109999", "the Magister stamnr, not the rule's 100231");
}
