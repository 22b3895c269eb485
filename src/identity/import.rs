//! Reading link files: Magister's migratiehulpbestand (`stamnr;idgebr;externeid;realmid`) and
//! plain `federated_id,person_code` CSV. Separators `;`, `,`, tab or `|`; a BOM and CRLF line
//! ends are tolerated. Every line is either an entry or an invalid line with its reason;
//! blank lines are skipped.

use crate::store::links::ImportEntry;

pub const MAGISTER_COLUMNS: [&str; 4] = ["stamnr", "idgebr", "externeid", "realmid"];
const SEPARATORS: [char; 4] = [';', ',', '\t', '|'];
const MAX_VALUE_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Magister's file; the person code comes from the named column.
    Magister { code_column: usize },
    /// `federated_id,person_code`, with or without that header.
    Csv,
}

impl Format {
    /// `--format` and `--code-column` as the admin types them.
    pub fn parse(format: &str, code_column: Option<&str>) -> Result<Format, String> {
        match (format, code_column) {
            ("magister", Some(col)) => MAGISTER_COLUMNS[..3]
                .iter()
                .position(|c| c.eq_ignore_ascii_case(col))
                .map(|code_column| Format::Magister { code_column })
                .ok_or_else(|| format!("--code-column {col:?} is not one of stamnr, idgebr, externeid")),
            ("magister", None) => Err("--format magister needs --code-column stamnr|idgebr|externeid".into()),
            ("csv", None) => Ok(Format::Csv),
            ("csv", Some(_)) => Err("--code-column only applies to --format magister".into()),
            (other, _) => Err(format!("--format {other:?} is not magister or csv")),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedFile {
    pub entries: Vec<ImportEntry>,
    pub invalid: Vec<(usize, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FileError {
    #[error("the file is not UTF-8 text")]
    NotUtf8,
    #[error("the file is empty")]
    Empty,
    #[error("line 1 is not a Magister header (stamnr;idgebr;externeid;realmid): {0:?}")]
    NoMagisterHeader(String),
}

pub fn parse(bytes: &[u8], format: Format) -> Result<ParsedFile, FileError> {
    let text = std::str::from_utf8(bytes).map_err(|_| FileError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    let (first_no, first) = lines
        .by_ref()
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or(FileError::Empty)?;
    let separator = detect_separator(first);
    let mut parsed = ParsedFile::default();
    let (fid_col, code_col, width) = match format {
        Format::Magister { code_column } => {
            let header: Vec<String> = split(first, separator).iter().map(|h| h.to_ascii_lowercase()).collect();
            let find = |name: &str| header.iter().position(|h| h == name);
            let (Some(fid), Some(code)) = (find("realmid"), find(MAGISTER_COLUMNS[code_column])) else {
                return Err(FileError::NoMagisterHeader(first.chars().take(80).collect()));
            };
            (fid, code, header.len())
        }
        Format::Csv => {
            let cells = split(first, separator);
            let is_header = cells.first().is_some_and(|c| c.eq_ignore_ascii_case("federated_id"));
            if !is_header {
                read_line(first_no, &cells, 0, 1, 2, &mut parsed);
            }
            (0, 1, 2)
        }
    };
    for (no, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        read_line(no, &split(line, separator), fid_col, code_col, width, &mut parsed);
    }
    Ok(parsed)
}

fn read_line(no: usize, cells: &[String], fid_col: usize, code_col: usize, width: usize, parsed: &mut ParsedFile) {
    if cells.len() != width {
        parsed
            .invalid
            .push((no, format!("{} columns, {width} expected", cells.len())));
        return;
    }
    let (fid, code) = (&cells[fid_col], &cells[code_col]);
    let problem = if fid.is_empty() {
        Some("the federated id (realmid) is empty")
    } else if code.is_empty() {
        Some("the person code is empty")
    } else if fid.chars().any(char::is_whitespace) || code.chars().any(|c| c.is_control()) {
        Some("a value contains white space or control characters")
    } else if fid.len() > MAX_VALUE_LEN || code.len() > MAX_VALUE_LEN {
        Some("a value is longer than 256 characters")
    } else {
        None
    };
    match problem {
        Some(p) => parsed.invalid.push((no, p.to_string())),
        None => parsed.entries.push(ImportEntry {
            line: no,
            federated_id: fid.clone(),
            person_code: code.clone(),
        }),
    }
}

/// The separator that splits the header line into the most columns.
fn detect_separator(header: &str) -> char {
    SEPARATORS
        .iter()
        .copied()
        .max_by_key(|s| header.matches(*s).count())
        .unwrap_or(';')
}

fn split(line: &str, separator: char) -> Vec<String> {
    line.split(separator)
        .map(|c| {
            let c = c.trim();
            c.strip_prefix('"')
                .and_then(|c| c.strip_suffix('"'))
                .unwrap_or(c)
                .trim()
                .to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn magister(col: &str) -> Format {
        Format::parse("magister", Some(col)).unwrap()
    }

    #[test]
    fn reads_magister_with_every_separator_bom_and_crlf() {
        for sep in [";", ",", "\t", "|"] {
            let text = format!(
                "\u{feff}stamnr{sep}idgebr{sep}externeid{sep}realmid\r\n109999{sep}35895{sep}{{56C87192-AB}}{sep}35895@magis.schoolnaam\r\n\r\n110000{sep}35896{sep}{{77}}{sep}35896@magis.schoolnaam\r\n"
            );
            let parsed = parse(text.as_bytes(), magister("stamnr")).unwrap();
            assert_eq!(parsed.invalid, vec![], "separator {sep:?}");
            assert_eq!(parsed.entries.len(), 2);
            assert_eq!(parsed.entries[0].federated_id, "35895@magis.schoolnaam");
            assert_eq!(parsed.entries[0].person_code, "109999");
            assert_eq!(parsed.entries[1].line, 4, "line numbers count blank lines");
            let by_idgebr = parse(text.as_bytes(), magister("idgebr")).unwrap();
            assert_eq!(by_idgebr.entries[0].person_code, "35895");
        }
    }

    #[test]
    fn names_invalid_lines() {
        let text = "stamnr;idgebr;externeid;realmid\n1;2;3;a@x\n4;5;6\n7;8;9;\n;10;11;b@x\n12;13;14;c d@x\n";
        let parsed = parse(text.as_bytes(), magister("stamnr")).unwrap();
        assert_eq!(parsed.entries.len(), 1);
        let lines: Vec<usize> = parsed.invalid.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [3, 4, 5, 6]);
    }

    #[test]
    fn reads_plain_csv_with_or_without_header() {
        for text in ["federated_id,person_code\na@x,1\nb@x,2\n", "a@x,1\nb@x,2"] {
            let parsed = parse(text.as_bytes(), Format::Csv).unwrap();
            assert_eq!(parsed.entries.len(), 2, "{text:?}");
            assert_eq!(parsed.entries[1].person_code, "2");
        }
    }

    #[test]
    fn refuses_files_that_are_not_what_they_claim() {
        assert_eq!(
            parse(b"a;b;c\n1;2;3", magister("stamnr")).unwrap_err(),
            FileError::NoMagisterHeader("a;b;c".into())
        );
        assert_eq!(parse(b"\n\n", Format::Csv).unwrap_err(), FileError::Empty);
        assert_eq!(parse(&[0xff, 0xfe], Format::Csv).unwrap_err(), FileError::NotUtf8);
        assert!(Format::parse("magister", None).is_err());
        assert!(Format::parse("magister", Some("realmid")).is_err());
        assert!(Format::parse("xlsx", None).is_err());
    }
}
