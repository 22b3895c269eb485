//! Config problems as the admin reads them: each names the key path and, where known, the
//! file and line.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    /// The environment variable that set the key, when one did (then it is not the file's).
    pub env: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(var) = &self.env {
            return write!(f, "environment variable {var}: {}: {}", self.key, self.message);
        }
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{}:{}: {}: {}", file.display(), line, self.key, self.message),
            (Some(file), None) => write!(f, "{}: {}: {}", file.display(), self.key, self.message),
            _ => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Every problem found while loading a config.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<Problem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A per-app config file (`apps/NAME.toml` beside the main file): the keys of `[apps.NAME]`.
#[derive(Debug, Clone)]
pub struct AppFile {
    pub name: String,
    pub path: PathBuf,
    pub text: String,
}

/// Collects problems while validation goes on, so that all of them are reported at once.
pub struct Collector<'a> {
    file: Option<&'a Path>,
    text: &'a str,
    app_files: &'a [AppFile],
    /// Where each value came from: a key set by an environment variable is blamed on it.
    sources: Option<&'a Figment>,
    pub problems: Vec<Problem>,
}

impl<'a> Collector<'a> {
    /// A collector that names an app's own file for the keys of apps that have one.
    pub fn with_app_files(file: Option<&'a Path>, text: &'a str, app_files: &'a [AppFile]) -> Self {
        Collector {
            file,
            text,
            app_files,
            sources: None,
            problems: Vec::new(),
        }
    }

    /// Names the environment variable of each problem whose value one of them set.
    pub fn with_sources(mut self, figment: &'a Figment) -> Self {
        self.sources = Some(figment);
        self
    }

    /// `ENTREE_BRIDGE_APPS__NUMO__SCHOOLS` when that variable set `apps.numo.schools`.
    fn env_var_of(&self, key: &str) -> Option<String> {
        let figment = self.sources?;
        let value = figment.find_value(key).ok()?;
        if matches!(value, figment::value::Value::Dict(..)) {
            return None;
        }
        let from_env = figment.get_metadata(value.tag())?.name.contains("environment");
        from_env.then(|| format!("{}{}", super::ENV_PREFIX, key.to_ascii_uppercase().replace('.', "__")))
    }

    pub fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        if let Some(env) = self.env_var_of(&key) {
            self.problems.push(Problem {
                key,
                message: message.into(),
                file: None,
                line: None,
                env: Some(env),
            });
            return;
        }
        let own_file = self.app_files.iter().find_map(|f| {
            let prefix = format!("apps.{}", f.name);
            let rest = key.strip_prefix(&prefix)?;
            (rest.is_empty() || rest.starts_with('.')).then(|| (f, rest.trim_start_matches('.').to_string()))
        });
        let (file, line) = match own_file {
            Some((f, rest)) => (Some(f.path.clone()), locate(&f.text, &rest).or(Some(1))),
            None => (self.file.map(Path::to_path_buf), locate(self.text, &key)),
        };
        self.problems.push(Problem {
            key,
            message: message.into(),
            file,
            line,
            env: None,
        });
    }

    /// Records the error of `result` under `key` and gives back the value when there is one.
    pub fn take<T, E: fmt::Display>(&mut self, key: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(key, e.to_string());
                None
            }
        }
    }
}

/// Finds the line of `a.b.c` in TOML text: the `key =` line inside the `[a.b]` table, or the
/// table header itself. Good enough for error messages; `None` when not found (e.g. the
/// value came from an environment variable).
pub fn locate(text: &str, key_path: &str) -> Option<usize> {
    let parts: Vec<&str> = key_path.split('.').collect();
    for split in (0..=parts.len()).rev() {
        let (table, rest) = parts.split_at(split);
        let header = table.join(".");
        let mut in_table = header.is_empty();
        let mut header_line = None;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                let name = trimmed.trim_matches(|c| c == '[' || c == ']').trim().replace('"', "");
                in_table = name == header;
                if in_table {
                    header_line = Some(i + 1);
                    if rest.is_empty() {
                        return header_line;
                    }
                }
                continue;
            }
            if let (true, Some(first)) = (in_table, rest.first()) {
                let key = trimmed.split('=').next().unwrap_or("").trim().trim_matches('"');
                if key == *first && trimmed.contains('=') {
                    return Some(i + 1);
                }
            }
        }
        // The table exists but not the key (a missing key): point at the table.
        if header_line.is_some() {
            return header_line;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys_and_tables() {
        let text = "[server]\nlisten = \"x\"\n\n[apps.numo]\nbase_url = \"y\"\n[apps.numo.person]\npattern = \"(\"\n";
        assert_eq!(locate(text, "server.listen"), Some(2));
        assert_eq!(locate(text, "apps.numo.base_url"), Some(5));
        assert_eq!(locate(text, "apps.numo.person.pattern"), Some(7));
        assert_eq!(locate(text, "apps.numo.sp_key"), Some(4));
        assert_eq!(locate(text, "federations.x.metadata"), None);
    }
}
