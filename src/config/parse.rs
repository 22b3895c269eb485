//! The parse helpers every section shares: durations, paths, URLs, names, certificate files,
//! and the extraction of one section with serde's problems named by key path. Each returns a
//! message for the caller to file under its key (see [`super::problems::Collector`]).

use std::path::{Path, PathBuf};

use figment::Figment;
use openssl::x509::X509;
use serde::de::DeserializeOwned;
use url::Url;

use super::problems::Collector;

pub(super) fn parse_duration(value: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(value).map_err(|e| format!("{value:?} is not a duration like \"90s\" or \"8h\": {e}"))
}

/// `value` as a path: absolute as it is, relative to the main config file's folder.
pub(super) fn resolve(base: &Path, value: &str) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// An http(s) URL with a host and nothing a browser or app could be misled by (user info,
/// query, fragment).
pub fn parse_http_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{value:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{value:?} must be an http(s) URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{value:?} must not carry user info, a query or a fragment"));
    }
    Ok(url)
}

/// A federation or app name: it becomes a URL path segment and a JWT audience.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The certificates of a PEM CA file, as DER.
pub(super) fn read_ca_file(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut pem.as_slice())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// Every certificate of a PEM file, as DER.
pub(super) fn read_pem_certificates(path: &Path) -> Result<Vec<samael::crypto::CertificateDer>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = X509::stack_from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    certs
        .iter()
        .map(|c| {
            c.to_der()
                .map(samael::crypto::CertificateDer::from)
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

/// How many problems of one section are set aside before the check gives up on it: enough
/// for any config a person wrote, few enough that a generated one cannot loop long.
const MAX_SECTION_PROBLEMS: usize = 64;

/// Extracts one section, reporting serde problems (unknown keys, wrong types, missing keys)
/// by key path. A problem does not end the check of its section: the offending key is set
/// aside and the section read again, so that one typo does not hide the section's other
/// problems, nor the checks of its values that come after (a section read that way is only
/// ever used to find more problems: the collector already holds one, so the config fails).
pub(super) fn section<T: DeserializeOwned>(figment: &Figment, key: &str, c: &mut Collector<'_>) -> Option<T> {
    let mut errors = match figment.extract_inner::<T>(key) {
        Ok(v) => return Some(v),
        Err(errors) => errors,
    };
    let mut value = figment.find_value(key).ok();
    let mut set_aside: Vec<Vec<String>> = Vec::new();
    for _ in 0..MAX_SECTION_PROBLEMS {
        let mut progressed = false;
        for e in errors {
            let relative = relative_path(key, &e);
            let missing = matches!(e.kind, figment::error::Kind::MissingField(_));
            // A key set aside for a bad value comes back as missing: said once is enough.
            if missing && set_aside.contains(&relative) {
                continue;
            }
            c.add(full_key(key, &relative), describe(&e.kind));
            if !missing && !relative.is_empty() {
                if let Some(v) = value.as_mut() {
                    progressed |= remove_at(v, &relative);
                    set_aside.push(relative);
                }
            }
        }
        let v = value.as_ref().filter(|_| progressed)?;
        match v.deserialize::<T>() {
            Ok(v) => return Some(v),
            Err(e) => errors = e,
        }
    }
    None
}

/// The path of a serde problem below `key`, the offending key last. figment appends the
/// section's own path to the error's after the nested one (`["handoff", "apps", "numo"]`)
/// and, for an unknown key, may or may not have the key itself in the path already.
fn relative_path(key: &str, e: &figment::Error) -> Vec<String> {
    let own: Vec<&str> = key.split('.').filter(|s| !s.is_empty()).collect();
    let mut path: Vec<String> = e.path.clone();
    if path.len() >= own.len() && path[path.len() - own.len()..].iter().eq(own.iter()) {
        path.truncate(path.len() - own.len());
    }
    if path.len() >= own.len() && path[..own.len()].iter().eq(own.iter()) {
        path.drain(..own.len());
    }
    let field = match &e.kind {
        figment::error::Kind::UnknownField(field, _) => Some(field.clone()),
        figment::error::Kind::MissingField(field) => Some(field.to_string()),
        _ => None,
    };
    if let Some(field) = field {
        if path.last() != Some(&field) {
            path.push(field);
        }
    }
    path
}

fn full_key(key: &str, relative: &[String]) -> String {
    std::iter::once(key.to_string())
        .chain(relative.iter().cloned())
        .collect::<Vec<_>>()
        .join(".")
}

fn describe(kind: &figment::error::Kind) -> String {
    match kind {
        figment::error::Kind::UnknownField(field, expected) => match did_you_mean(field, expected) {
            Some(near) => format!("unknown key (did you mean `{near}`?)"),
            None => "unknown key".to_string(),
        },
        figment::error::Kind::MissingField(_) => "missing required key".to_string(),
        figment::error::Kind::InvalidType(actual, expected) if expected.contains("sequence") => format!(
            "expected a list, found {actual}: in TOML write [\"a\", \"b\"]; in an environment \
             variable the same, quoted for the shell: '[\"a\", \"b\"]'"
        ),
        other => other.to_string(),
    }
}

/// The known name closest to `unknown`, when it is close enough to be the one meant: a
/// typo (edit distance at most a third of the name, at least 1 and at most 3), or the same
/// name in another case or with `-` for `_`.
pub(super) fn did_you_mean<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let normal = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let unknown_normal = normal(unknown);
    let budget = (unknown.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(&unknown_normal, &normal(k)), *k))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance of two short names (config keys: a few dozen characters).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Removes the key at `path` from a dictionary value; false when there is none.
fn remove_at(value: &mut figment::value::Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut current = value;
    for p in parents {
        match current {
            figment::value::Value::Dict(_, dict) => match dict.get_mut(p) {
                Some(v) => current = v,
                None => return false,
            },
            _ => return false,
        }
    }
    match current {
        figment::value::Value::Dict(_, dict) => dict.remove(last).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::{Format, Toml};

    use crate::config::file::AppSection;

    fn problems_of(text: &str) -> Vec<String> {
        let figment = Figment::from(Toml::string(text));
        let mut c = Collector::with_app_files(None, text, &[]);
        let _ = section::<AppSection>(&figment, "apps.leesplan", &mut c);
        c.problems.iter().map(|p| format!("{}: {}", p.key, p.message)).collect()
    }

    #[test]
    fn each_unknown_key_is_named_once_with_a_suggestion_and_the_rest_still_checked() {
        let text = "[apps.leesplan]\nbase_url = \"https://l.example\"\nsp_entity_id = \"https://l.example/sp\"\n\
                    sp_key = \"k\"\nsp_cert = \"c\"\nfederation = \"kennisnet\"\nschoolz = [\"99XX\"]\n\
                    [apps.leesplan.handoff]\nmode = \"jwt\"\ncallback_uri = \"https://l.example/cb\"\n";
        let problems = problems_of(text);
        assert!(
            problems.contains(&"apps.leesplan.schoolz: unknown key (did you mean `schools`?)".to_string()),
            "{problems:?}"
        );
        assert!(
            problems.contains(
                &"apps.leesplan.handoff.callback_uri: unknown key (did you mean `callback_url`?)".to_string()
            ),
            "{problems:?}"
        );
        for p in &problems {
            assert_eq!(p.matches("leesplan").count(), 1, "a doubled path: {p}");
        }
    }

    #[test]
    fn a_bad_value_does_not_hide_an_unknown_key_nor_come_back_as_missing() {
        let text = "[apps.leesplan]\nbase_url = 7\nsp_entity_id = \"https://l.example/sp\"\nsp_key = \"k\"\n\
                    sp_cert = \"c\"\nfederation = \"kennisnet\"\nextra_thing = 1\n";
        let problems = problems_of(text);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("apps.leesplan.base_url: invalid type")),
            "{problems:?}"
        );
        assert!(
            problems.contains(&"apps.leesplan.extra_thing: unknown key".to_string()),
            "{problems:?}"
        );
        assert!(!problems.iter().any(|p| p.contains("missing")), "{problems:?}");
    }

    #[test]
    fn suggestions_are_for_typos_only() {
        let known = ["callback_url", "mode", "schools", "person_attribute"];
        assert_eq!(did_you_mean("callback_uri", &known), Some("callback_url"));
        assert_eq!(did_you_mean("Mode", &known), Some("mode"));
        assert_eq!(did_you_mean("person-attribute", &known), Some("person_attribute"));
        assert_eq!(did_you_mean("colour", &known), None);
        assert_eq!(did_you_mean("x", &known), None);
    }
}
