//! docs/configuration.md lists exactly the keys the config types accept: a key added to the
//! code without the reference (or documented but gone) fails here.

use crate::common;

use std::collections::BTreeSet;

#[test]
fn the_configuration_reference_lists_every_key_and_no_other() {
    let doc = std::fs::read_to_string(common::repo_root().join("docs").join("configuration.md")).expect("read");
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    let accepted: BTreeSet<String> = entree_bridge::config::reference::all_keys().into_iter().collect();
    let missing: Vec<_> = accepted.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        missing.is_empty(),
        "keys the bridge accepts but the reference lacks: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "keys the reference lists but the bridge does not accept: {unknown:?}"
    );
    assert!(accepted.len() > 60, "{}", accepted.len());
}
