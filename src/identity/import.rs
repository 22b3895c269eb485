//! Reading link files: Magister's migratiehulpbestand (`stamnr;idgebr;externeid;realmid`) and
//! plain `federated_id,person_code` CSV. Separators `;`, `,`, tab or `|`; a BOM and CRLF line
//! ends are tolerated. Every line is either an entry or an invalid line with its reason;
//! blank lines are skipped.

/// One line of an import, as the importer hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportEntry {
    pub line: usize,
    pub federated_id: String,
    pub person_code: String,
}

pub const MAGISTER_COLUMNS: [&str; 4] = ["stamnr", "idgebr", "externeid", "realmid"];
const SEPARATORS: [char; 4] = [';', ',', '\t', '|'];
const MAX_VALUE_LEN: usize = 256;
/// Columns a header may have (Magister's file has four; exports with extra columns a few more).
pub const MAX_COLUMNS: usize = 64;
/// Lines a file may have: the largest school boards have tens of thousands of students, and
/// each line is a query in the import's transaction.
pub const MAX_LINES: usize = 200_000;

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
    #[error("line 1 is not the header federated_id,person_code: {0:?}")]
    NoCsvHeader(String),
    #[error("the header names column {0:?} twice")]
    DuplicateColumn(String),
    #[error("the header has {0} columns; a link file has at most {MAX_COLUMNS}")]
    TooManyColumns(usize),
    #[error("the file has more than {MAX_LINES} lines; split it")]
    TooManyLines,
}

pub fn parse(bytes: &[u8], format: Format) -> Result<ParsedFile, FileError> {
    let text = std::str::from_utf8(bytes).map_err(|_| FileError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l));
    let (_, first) = lines
        .by_ref()
        .find(|(_, l)| !l.trim().is_empty())
        .ok_or(FileError::Empty)?;
    let separator = detect_separator(first);
    let mut parsed = ParsedFile::default();
    let (fid_col, code_col, width) = match format {
        Format::Magister { code_column } => {
            // Counted before the header is split: a hostile one-line file is millions of cells.
            let columns = first.matches(separator).count() + 1;
            if columns > MAX_COLUMNS {
                return Err(FileError::TooManyColumns(columns));
            }
            let header: Vec<String> = split(first, separator).iter().map(|h| h.to_ascii_lowercase()).collect();
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = header.iter().find(|h| !h.is_empty() && !seen.insert(h.as_str())) {
                return Err(FileError::DuplicateColumn(dup.clone()));
            }
            let find = |name: &str| header.iter().position(|h| h == name);
            let (Some(fid), Some(code)) = (find("realmid"), find(MAGISTER_COLUMNS[code_column])) else {
                return Err(FileError::NoMagisterHeader(first.chars().take(80).collect()));
            };
            (fid, code, header.len())
        }
        Format::Csv => {
            // The header is required: without it a header-like first line (`realmid,code`)
            // would be imported as a link.
            let cells: Vec<String> = split(first, separator).iter().map(|c| c.to_ascii_lowercase()).collect();
            if cells != ["federated_id", "person_code"] {
                return Err(FileError::NoCsvHeader(first.chars().take(80).collect()));
            }
            (0, 1, 2)
        }
    };
    for (no, line) in lines {
        if no > MAX_LINES {
            return Err(FileError::TooManyLines);
        }
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
    } else if fid.chars().any(|c| c.is_whitespace() || c.is_control()) || code.chars().any(char::is_control) {
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

/// Splits a line on `separator`, honouring double quotes (a quoted field may hold the
/// separator, and `""` inside quotes is one `"`).
fn split(line: &str, separator: char) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            c if c == separator && !quoted => cells.push(std::mem::take(&mut cell).trim().to_string()),
            c => cell.push(c),
        }
    }
    cells.push(cell.trim().to_string());
    cells
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
    fn reads_plain_csv_with_its_header_and_quotes() {
        let parsed = parse(
            b"federated_id,person_code\na@x,1\n\"b@x\",\"2,\"\"x\"\"\"\n",
            Format::Csv,
        )
        .unwrap();
        assert_eq!(parsed.invalid, vec![]);
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.entries[1].federated_id, "b@x");
        assert_eq!(parsed.entries[1].person_code, "2,\"x\"");
        assert!(matches!(
            parse(b"realmid,code\na@x,1", Format::Csv),
            Err(FileError::NoCsvHeader(_))
        ));
    }

    #[test]
    fn control_characters_and_duplicate_columns_are_refused() {
        let parsed = parse("federated_id,person_code\nn\u{0}ul@x,1\n".as_bytes(), Format::Csv).unwrap();
        assert_eq!(parsed.invalid.len(), 1);
        let dup = "stamnr;stamnr;idgebr;externeid;realmid\n1;2;3;4;a@x";
        assert_eq!(
            parse(dup.as_bytes(), magister("stamnr")).unwrap_err(),
            FileError::DuplicateColumn("stamnr".into())
        );
    }

    /// A hostile header of millions of columns is refused before it is split (the duplicate
    /// check was quadratic in it), and a file past the line bound before it is all read.
    #[test]
    fn oversized_headers_and_files_are_refused_early() {
        let wide = format!(
            "{}\n",
            (0..1_000_000).map(|i| format!("c{i}")).collect::<Vec<_>>().join(";")
        );
        let started = std::time::Instant::now();
        assert_eq!(
            parse(wide.as_bytes(), magister("stamnr")).unwrap_err(),
            FileError::TooManyColumns(1_000_000)
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let long = format!("federated_id,person_code\n{}", "a@x,1\n".repeat(MAX_LINES + 1));
        assert_eq!(
            parse(long.as_bytes(), Format::Csv).unwrap_err(),
            FileError::TooManyLines
        );
    }

    #[test]
    fn refuses_files_that_are_not_what_they_claim() {
        assert_eq!(
            parse(b"a;b;c\n1;2;3", magister("stamnr")).unwrap_err(),
            FileError::NoMagisterHeader("a;b;c".into())
        );
        assert_eq!(parse(b"\n\n", Format::Csv).unwrap_err(), FileError::Empty);
        assert_eq!(
            parse(b"stamnr;idgebr;externeid;realmid\n", magister("stamnr"))
                .unwrap()
                .entries
                .len(),
            0
        );
        assert_eq!(parse(&[0xff, 0xfe], Format::Csv).unwrap_err(), FileError::NotUtf8);
        assert!(Format::parse("magister", None).is_err());
        assert!(Format::parse("magister", Some("realmid")).is_err());
        assert!(Format::parse("xlsx", None).is_err());
    }
}
