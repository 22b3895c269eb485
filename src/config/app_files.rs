//! Per-app config files: `apps/numo.toml` beside the main file holds the keys of
//! `[apps.numo]` (with `[person]`, `[handoff]`, ... as its own tables), so that each app's
//! mapping can be edited, reviewed and deployed on its own.

use std::path::{Path, PathBuf};

use figment::providers::Serialized;
use figment::Figment;

use super::problems::{AppFile, ConfigErrors, Problem};

/// The `*.toml` files in `dir`, sorted; none when `dir` does not exist. Any other failure is
/// an error: a folder that cannot be read must not silently lose its apps.
pub fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// [`list`], for watching: what can be listed.
pub fn paths(dir: &Path) -> Vec<PathBuf> {
    list(dir).unwrap_or_default()
}

fn problem(path: &Path, key: &str, message: String, line: Option<usize>) -> Problem {
    Problem {
        key: key.to_string(),
        message,
        file: Some(path.to_path_buf()),
        line,
        env: None,
    }
}

/// Reads every per-app file; a file that cannot be read or whose name is not an app name is a
/// problem of its own.
pub fn read(dir: &Path) -> Result<Vec<AppFile>, ConfigErrors> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let paths = list(dir).map_err(|e| {
        ConfigErrors(vec![problem(
            dir,
            "(folder)",
            format!("cannot list the app files: {e}"),
            None,
        )])
    })?;
    for path in paths {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
        if !super::parse::valid_name(&name) {
            problems.push(problem(
                &path,
                "(file)",
                "the file name is the app name: use a-z, 0-9, - and _ only".into(),
                None,
            ));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push(AppFile { name, path, text }),
            Err(e) => problems.push(problem(&path, "(file)", format!("cannot read: {e}"), None)),
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(ConfigErrors(problems))
    }
}

/// Merges the per-app files into `figment` under `apps.NAME`. An app may be defined in the
/// main file or in its own file, not in both.
pub fn merge(
    mut figment: Figment,
    main_text: &str,
    main_file: Option<&Path>,
    files: &[AppFile],
) -> Result<Figment, ConfigErrors> {
    let main: Option<toml::Table> = main_text.parse::<toml::Table>().ok();
    let mut problems = Vec::new();
    for f in files {
        let in_main = main
            .as_ref()
            .and_then(|t| t.get("apps"))
            .and_then(|a| a.as_table())
            .is_some_and(|a| a.contains_key(&f.name));
        if in_main {
            problems.push(Problem {
                key: format!("apps.{}", f.name),
                message: format!("is defined both here and in {}; keep one", f.path.display()),
                file: main_file.map(Path::to_path_buf),
                line: super::problems::locate(main_text, &format!("apps.{}", f.name)),
                env: None,
            });
            continue;
        }
        match f.text.parse::<toml::Table>() {
            Ok(table) => {
                figment = figment.merge(Serialized::default(&format!("apps.{}", f.name), table));
            }
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| f.text[..s.start.min(f.text.len())].lines().count().max(1));
                problems.push(problem(
                    &f.path,
                    &format!("apps.{}", f.name),
                    format!("not valid TOML: {}", e.message()),
                    line,
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(figment)
    } else {
        Err(ConfigErrors(problems))
    }
}
