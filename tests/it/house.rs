//! The house rules of ../shared/DESIGN.md "The house" (issue 16), checked on the source tree
//! so that they stay true after the redesign:
//!
//! - no cycle between the library's top-level modules (an edge is a `crate::X` path, `use`
//!   or not, in code outside `#[cfg(test)]`);
//! - `saml`, `identity`, `store` and `handoff` never import `config` or `http`;
//! - no source file has more than 600 lines before its first `#[cfg(test)]`.
//!
//! Each finding names the file and line. Comments and string literals do not count (the
//! XML templates and docs mention `crate::` paths), nor does test code: a `#[cfg(test)]` item,
//! or a file that is only a `#[cfg(test)] mod x;`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use crate::common;

/// Lines a source file may have before its first `#[cfg(test)]`.
const MAX_LINES: usize = 600;
/// Modules below the application layer, and what they must not import.
const LOWER: &[&str] = &["saml", "identity", "store", "handoff"];
const UPPER: &[&str] = &["config", "http"];

#[test]
fn the_source_tree_keeps_the_house_rules() {
    let files = read_tree(&common::repo_root().join("src"));
    assert!(files.len() > 20, "read the source tree ({} files)", files.len());
    let findings = check(&files);
    assert!(findings.is_empty(), "house rules broken:\n{}", findings.join("\n"));
}

/// The checker itself, on a small tree with one of each finding (and decoys that are not).
#[test]
fn the_checker_finds_cycles_forbidden_imports_and_long_files() {
    let long = "fn f() {}\n".repeat(601);
    let files = vec![
        file(
            "lib.rs",
            "pub mod a;\npub mod b;\npub mod c;\npub mod saml;\npub mod config;\n",
        ),
        file("a.rs", "//! a\nuse crate::b::Thing;\n"),
        file("b/mod.rs", "mod inner;\n"),
        file("b/inner.rs", "fn g() {\n    crate::c::call();\n}\n"),
        file("c.rs", "use crate::{a, config};\n"),
        file("saml/mod.rs", "use crate::config::Settings;\n"),
        file("config.rs", &long),
    ];
    let findings = check(&files);
    let expected = [
        "src/a.rs:2: cycle: a -> b (crate::b), and back: b -> c (src/b/inner.rs:2), c -> a (src/c.rs:1)",
        "src/b/inner.rs:2: cycle: b -> c (crate::c), and back: c -> a (src/c.rs:1), a -> b (src/a.rs:2)",
        "src/c.rs:1: cycle: c -> a (crate::a), and back: a -> b (src/a.rs:2), b -> c (src/b/inner.rs:2)",
        "src/saml/mod.rs:1: saml imports config (crate::config): modules below never import config/ or http/",
        "src/config.rs:601: 601 lines before the first #[cfg(test)] (at most 600)",
    ];
    assert_eq!(
        sorted(&findings),
        sorted(&expected),
        "findings:\n{}",
        findings.join("\n")
    );
}

/// Test modules, test-only files, comments and literals are not imports; a long test module
/// is not a long file.
#[test]
fn test_code_comments_and_literals_do_not_count() {
    let tests = "    #[test]\n    fn t() {}\n".repeat(400);
    let files = vec![
        file("lib.rs", "pub mod a;\npub mod b;\n"),
        file("a.rs", "use crate::b;\n"),
        file(
            "b/mod.rs",
            &format!(
                concat!(
                    "//! crate::a in a doc comment\n",
                    "/* crate::a */ const X: &str = \"crate::a\";\n",
                    "const Y: &str = r#\"crate::a \"quoted\" \"#;\n",
                    "const C: char = '\"'; fn l<'a>(x: &'a str) -> &'a str {{ x }}\n",
                    "#[cfg(test)]\n",
                    "mod tests {{\n",
                    "    use crate::a;\n{}",
                    "}}\n",
                    "#[cfg(test)]\n",
                    "mod more_tests;\n",
                ),
                tests
            ),
        ),
        file("b/more_tests.rs", &format!("use crate::a;\n{}", "\n".repeat(700))),
    ];
    let findings = check(&files);
    assert!(findings.is_empty(), "no findings expected:\n{}", findings.join("\n"));
    // The same import outside the test module is one.
    let files = vec![
        file("lib.rs", "pub mod a;\npub mod b;\n"),
        file("a.rs", "use crate::b;\n"),
        file("b.rs", "#[cfg(test)]\nmod tests {}\nfn f() { crate::a::g(); }\n"),
    ];
    assert_eq!(check(&files).len(), 2, "{:?}", check(&files));
}

fn file(path: &str, text: &str) -> (String, String) {
    (path.to_string(), text.to_string())
}

fn sorted<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| s.as_ref().to_string()).collect();
    v.sort();
    v
}

/// Every `.rs` file under `root`, as (path relative to `root` with `/`, text).
fn read_tree(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).expect("under src");
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>();
                files.push((rel.join("/"), std::fs::read_to_string(&path).expect("read source")));
            }
        }
    }
    files.sort();
    files
}

/// One `crate::X` import: where it is.
#[derive(Clone)]
struct Edge {
    file: String,
    line: usize,
}

/// All findings, one line each: `src/FILE:LINE: what`.
fn check(files: &[(String, String)]) -> Vec<String> {
    let sources: Vec<(String, Vec<String>)> = files.iter().map(|(p, t)| (p.clone(), code_lines(t))).collect();
    let test_only = test_only_files(&sources);
    let library: BTreeSet<String> = sources
        .iter()
        .find(|(p, _)| p == "lib.rs")
        .map(|(_, lines)| declared_modules(lines).into_iter().map(|(name, _)| name).collect())
        .unwrap_or_default();
    let mut findings = Vec::new();
    // module -> imported module -> first place
    let mut graph: BTreeMap<String, BTreeMap<String, Edge>> = BTreeMap::new();
    for (path, lines) in &sources {
        if test_only.contains(path) {
            continue;
        }
        let first_test = lines.iter().position(|l| is_cfg_test(l));
        let before = first_test.unwrap_or(lines.len());
        if before > MAX_LINES {
            findings.push(format!(
                "src/{path}:{}: {before} lines before the first #[cfg(test)] (at most {MAX_LINES})",
                MAX_LINES + 1
            ));
        }
        let Some(module) = top_module(path).filter(|m| library.contains(m)) else {
            continue;
        };
        for (line, target) in imports(&without_test_items(lines)) {
            if target == module || !library.contains(&target) {
                continue;
            }
            if LOWER.contains(&module.as_str()) && UPPER.contains(&target.as_str()) {
                findings.push(format!(
                    "src/{path}:{line}: {module} imports {target} (crate::{target}): modules below never import config/ or http/"
                ));
            }
            if module == "login" && target == "http" {
                findings.push(format!(
                    "src/{path}:{line}: login imports http (crate::http): the use case is free of the wire"
                ));
            }
            graph.entry(module.clone()).or_default().entry(target).or_insert(Edge {
                file: path.clone(),
                line,
            });
        }
    }
    for (from, targets) in &graph {
        for (to, edge) in targets {
            if let Some(back) = shortest_path(&graph, to, from) {
                let back: Vec<String> = back
                    .iter()
                    .map(|(a, b, e)| format!("{a} -> {b} (src/{}:{})", e.file, e.line))
                    .collect();
                findings.push(format!(
                    "src/{}:{}: cycle: {from} -> {to} (crate::{to}), and back: {}",
                    edge.file,
                    edge.line,
                    back.join(", ")
                ));
            }
        }
    }
    findings
}

/// The shortest chain of imports from `start` to `goal`, each step with its place.
fn shortest_path(
    graph: &BTreeMap<String, BTreeMap<String, Edge>>,
    start: &str,
    goal: &str,
) -> Option<Vec<(String, String, Edge)>> {
    let mut came_from: BTreeMap<String, (String, Edge)> = BTreeMap::new();
    let mut queue = VecDeque::from([start.to_string()]);
    let mut seen = BTreeSet::from([start.to_string()]);
    while let Some(node) = queue.pop_front() {
        if node == goal {
            let mut path = Vec::new();
            let mut at = node;
            while at != start {
                let (prev, edge) = came_from[&at].clone();
                path.push((prev.clone(), at, edge));
                at = prev;
            }
            path.reverse();
            return Some(path);
        }
        for (next, edge) in graph.get(&node).into_iter().flatten() {
            if seen.insert(next.clone()) {
                came_from.insert(next.clone(), (node.clone(), edge.clone()));
                queue.push_back(next.clone());
            }
        }
    }
    None
}

/// The top-level module a file belongs to (`saml/response.rs` -> `saml`); None for the
/// crate roots.
fn top_module(path: &str) -> Option<String> {
    match path.split_once('/') {
        Some((dir, _)) => Some(dir.to_string()),
        None if path == "lib.rs" || path == "main.rs" => None,
        None => path.strip_suffix(".rs").map(str::to_string),
    }
}

/// `#[cfg(test)]`, `#[cfg(all(test, ...))]`: where test code starts.
fn is_cfg_test(line: &str) -> bool {
    let l: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    l.starts_with("#[cfg(test)]") || l.starts_with("#[cfg(all(test,")
}

/// `mod x;` and `mod x {` declarations: (name, line index).
fn declared_modules(lines: &[String]) -> Vec<(String, usize)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("pub(crate) ")
                .or_else(|| l.strip_prefix("pub "))
                .unwrap_or(l);
            let rest = l.strip_prefix("mod ")?;
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            (!name.is_empty()).then_some((name, i))
        })
        .collect()
}

/// Files that are only test code: declared as `#[cfg(test)] mod x;`, and everything below them.
fn test_only_files(sources: &[(String, Vec<String>)]) -> BTreeSet<String> {
    let mut test_dirs = Vec::new();
    for (path, lines) in sources {
        // Children of `a/mod.rs` and `lib.rs` live in `a/`; those of `a/b.rs` in `a/b/`.
        let dir = match path.rsplit_once('/') {
            Some((dir, "mod.rs")) => format!("{dir}/"),
            _ if path == "lib.rs" || path == "main.rs" => String::new(),
            _ => format!("{}/", path.trim_end_matches(".rs")),
        };
        for (name, i) in declared_modules(lines) {
            let declared_as_file = lines[i].trim_end().ends_with(';');
            let under_cfg_test = lines[..i]
                .iter()
                .rev()
                .take_while(|l| l.trim_start().starts_with("#["))
                .any(|l| is_cfg_test(l));
            if declared_as_file && under_cfg_test {
                test_dirs.push(format!("{dir}{name}"));
            }
        }
    }
    sources
        .iter()
        .map(|(p, _)| p.clone())
        .filter(|p| {
            test_dirs
                .iter()
                .any(|t| p == &format!("{t}.rs") || p.starts_with(&format!("{t}/")))
        })
        .collect()
}

/// The lines with every `#[cfg(test)]` item blanked out (its attributes and its body).
fn without_test_items(lines: &[String]) -> Vec<String> {
    let mut out = lines.to_vec();
    let mut i = 0;
    while i < lines.len() {
        if !is_cfg_test(&lines[i]) {
            i += 1;
            continue;
        }
        // Blank from the attribute to the end of the item: its matching `}` or its `;`.
        let mut depth = 0usize;
        let mut opened = false;
        let mut j = i;
        'item: while j < lines.len() {
            // On the attribute's own line, what follows its `]` (`#[cfg(test)] mod t {`).
            let from = if j == i {
                lines[j].find(']').map_or(0, |at| at + 1)
            } else {
                0
            };
            for c in lines[j][from..].chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => {
                        depth = depth.saturating_sub(1);
                        if opened && depth == 0 {
                            break 'item;
                        }
                    }
                    ';' if !opened => break 'item,
                    _ => {}
                }
            }
            j += 1;
        }
        for line in out.iter_mut().take(j.min(lines.len() - 1) + 1).skip(i) {
            line.clear();
        }
        i = j + 1;
    }
    out
}

/// Every `crate::X` in the code (also inside `crate::{X, Y::z}`): (1-based line, X).
fn imports(lines: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("crate::") {
            let preceded_by_ident = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            rest = &rest[at + "crate::".len()..];
            if preceded_by_ident {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                // Top-level names of the group; the group may span lines.
                let mut text = group.to_string();
                let mut k = i + 1;
                while !balanced(&text) && k < lines.len() {
                    text.push(' ');
                    text.push_str(&lines[k]);
                    k += 1;
                }
                for name in group_heads(&text) {
                    found.push((i + 1, name));
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.push((i + 1, name));
                }
            }
        }
    }
    found
}

/// Whether the `{` already consumed is closed in `text`.
fn balanced(text: &str) -> bool {
    let mut depth = 1i32;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The first segment of each top-level entry of a use group (`a, b::c, d::{e}}` -> a, b, d).
fn group_heads(text: &str) -> Vec<String> {
    let mut entries = vec![String::new()];
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '}' if depth == 0 => break,
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => entries.push(String::new()),
            c => {
                if let Some(last) = entries.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    entries
        .iter()
        .map(|e| {
            e.trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|h| !h.is_empty() && h != "self")
        .collect()
}

/// The source with comments and the contents of string and char literals replaced by
/// spaces, split into lines (line numbers kept).
fn code_lines(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r'
            && (i == 0 || !ident(chars[i - 1]) || (chars[i - 1] == 'b' && (i < 2 || !ident(chars[i - 2]))))
            && matches!(next, Some('#') | Some('"'))
        {
            // A raw string r#"..."#: closed by `"` and as many `#`.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push('r');
            for _ in i + 1..=j {
                out.push(' ');
            }
            i = j + 1;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    for _ in 0..=hashes {
                        out.push(' ');
                    }
                    i += hashes + 1;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    if let Some(&e) = chars.get(i + 1) {
                        blank(&mut out, e);
                    }
                    i += 2;
                } else if chars[i] == '"' {
                    out.push(' ');
                    i += 1;
                    break;
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            let end = if next == Some('\\') {
                (i + 2..chars.len()).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    for _ in i..=end {
                        out.push(' ');
                    }
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    let mut lines: Vec<String> = out.split('\n').map(str::to_string).collect();
    // A file ends with a newline: that is not one more line.
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}
