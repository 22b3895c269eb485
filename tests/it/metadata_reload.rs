//! The IdP metadata in force lives beside the config, in the state's metadata registry: a
//! reload that keeps a federation's URL source keeps the copy in force; one that changes the
//! source starts from what the new config read (here: nothing yet).

use crate::common;

use std::sync::Arc;

use common::*;
use entree_bridge::http::{self, AppState};
use entree_bridge::saml::idp_metadata;
use entree_bridge::store::links::LinkStore;

fn url_federation(port: u16, metadata_port: u16, cache: &std::path::Path) -> String {
    config_text(port, "").replace(
        "[federations.kennisnet]\nmetadata = \"idp-metadata.xml\"",
        &format!(
            "[federations.kennisnet]\nmetadata = \"http://127.0.0.1:{metadata_port}/metadata.xml\"\n\
             metadata_signing_cert = \"sp.crt\"\nmetadata_cache = \"{}\"",
            cache.display()
        ),
    )
}

#[tokio::test]
async fn a_reload_keeps_the_copy_in_force_unless_the_source_changes() {
    let (dir, idp, _) = prepare_dir();
    let path = dir.path().join("bridge.toml");
    let cache = dir.path().join("no-copy-kept.xml");
    std::fs::write(&path, url_federation(8080, 9, &cache)).expect("write");
    let settings = Arc::new(entree_bridge::config::load(&path).expect("config"));
    let links = LinkStore::open_target(&settings.links, settings.links_timeout)
        .await
        .expect("links");
    let store = entree_bridge::store::open(&settings.session_store).expect("store");
    let shared = http::Shared::new(AppState::new(settings, store, links));
    let not_yet = "no IdP metadata of federation kennisnet has been fetched yet";
    assert_eq!(
        shared
            .current()
            .metadata
            .idp("kennisnet")
            .expect_err("none yet")
            .to_string(),
        not_yet
    );

    // What a refresh would install: a verified copy that ends tomorrow.
    let mut fetched = idp_metadata::parse(&idp.metadata("https://idp.test.invalid/sso"), None).expect("parse");
    fetched.valid_until = Some(chrono::Utc::now() + chrono::Duration::days(1));
    shared
        .current()
        .metadata
        .get("kennisnet")
        .expect("slot")
        .install(fetched)
        .expect("a copy with validUntil goes in");

    // Another key changes, the source does not: the copy stays in force.
    std::fs::write(
        &path,
        url_federation(8080, 9, &cache).replace("schools = [\"*\"]", "schools = [\"99XX\"]"),
    )
    .expect("write");
    entree_bridge::reload::reload(&shared, &path).expect("reload");
    let open = shared
        .current()
        .settings
        .apps
        .iter()
        .find(|a| a.name == "open")
        .cloned();
    assert_eq!(open.expect("open").identity.schools, ["99XX"]);
    assert_eq!(
        shared.current().metadata.idp("kennisnet").expect("kept").entity_id,
        IDP_ENTITY_ID
    );

    // Another URL: the copy of the old one is not trusted for it.
    std::fs::write(&path, url_federation(8080, 10, &cache)).expect("write");
    entree_bridge::reload::reload(&shared, &path).expect("reload");
    assert_eq!(
        shared
            .current()
            .metadata
            .idp("kennisnet")
            .expect_err("fresh")
            .to_string(),
        not_yet
    );
}
