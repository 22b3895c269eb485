//! `multipart/form-data` as the admin page's upload form sends it: a few text fields and one
//! file. The body is bounded before it gets here (the listener's body limit); parsing is one
//! linear pass over it, with at most [`MAX_PARTS`] parts and bounded part headers.

use axum::body::Bytes;
use memchr::memmem;

/// Parts a form may have (the upload form has five).
pub const MAX_PARTS: usize = 16;
/// The most a part's headers may take.
const MAX_PART_HEADERS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    /// Set for a file field (the file's name as the browser sent it).
    pub file_name: Option<String>,
    /// A slice of the body (no copy).
    pub data: Bytes,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UploadError {
    #[error("not a multipart/form-data request")]
    NotMultipart,
    #[error("the form is malformed: {0}")]
    Malformed(&'static str),
    #[error("the form has more than {MAX_PARTS} fields")]
    TooManyParts,
}

/// The boundary of a `multipart/form-data; boundary=...` content type.
pub fn boundary(content_type: &str) -> Result<String, UploadError> {
    let mut pieces = content_type.split(';');
    let kind = pieces.next().unwrap_or("").trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return Err(UploadError::NotMultipart);
    }
    let boundary = pieces
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .ok_or(UploadError::Malformed("no boundary"))?;
    // RFC 2046: 1 to 70 characters.
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(UploadError::Malformed("the boundary is not 1 to 70 characters"));
    }
    Ok(boundary)
}

/// The parts of `body`.
pub fn parse(content_type: &str, body: &Bytes) -> Result<Vec<Part>, UploadError> {
    let boundary = boundary(content_type)?;
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let first = memmem::find(body, delimiter.as_bytes()).ok_or(UploadError::Malformed("no part"))?;
    let mut offset = first + delimiter.len();
    let mut rest = &body[offset..];
    let finder = memmem::Finder::new(next_delimiter.as_bytes());
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or(UploadError::Malformed("a delimiter is not followed by a line end"))?;
        offset += 2;
        if parts.len() == MAX_PARTS {
            return Err(UploadError::TooManyParts);
        }
        let head_end = memmem::find(&rest[..rest.len().min(MAX_PART_HEADERS)], b"\r\n\r\n")
            .ok_or(UploadError::Malformed("a part's headers do not end"))?;
        let head = std::str::from_utf8(&rest[..head_end])
            .map_err(|_| UploadError::Malformed("a part's headers are not UTF-8"))?;
        let (name, file_name) = disposition(head)?;
        rest = &rest[head_end + 4..];
        offset += head_end + 4;
        let end = finder
            .find(rest)
            .ok_or(UploadError::Malformed("the last part does not end"))?;
        parts.push(Part {
            name,
            file_name,
            data: body.slice(offset..offset + end),
        });
        rest = &rest[end + next_delimiter.len()..];
        offset += end + next_delimiter.len();
    }
}

/// The field name and file name of a part's `Content-Disposition: form-data; name="..."`.
fn disposition(head: &str) -> Result<(String, Option<String>), UploadError> {
    let line = head
        .split("\r\n")
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("content-disposition").then_some(v)
        })
        .ok_or(UploadError::Malformed("a part has no Content-Disposition"))?;
    let mut name = None;
    let mut file_name = None;
    for (key, value) in parameters(line) {
        match key.as_str() {
            "name" => name = Some(value),
            "filename" => file_name = Some(value),
            _ => {}
        }
    }
    let name = name.ok_or(UploadError::Malformed("a part has no name"))?;
    Ok((name, file_name))
}

/// The `; key=value` parameters after a header's first token, values quoted or not. A `;`
/// inside quotes is part of the value (`filename="a; name=csrf"` is a file name, not a second
/// name); `\"` inside quotes is a quote.
fn parameters(line: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = line.chars().peekable();
    // Skip the disposition type (`form-data`).
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() {
            return params;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            // Up to the next parameter.
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|&c| c != ';')
                .collect::<String>()
                .trim()
                .to_string();
        }
        params.push((key, value));
    }
}

/// The text of the field `name`, if the form has it.
pub fn field<'a>(parts: &'a [Part], name: &str) -> Option<&'a str> {
    parts
        .iter()
        .find(|p| p.name == name && p.file_name.is_none())
        .and_then(|p| std::str::from_utf8(&p.data).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=----x42";

    #[test]
    fn a_browser_form_with_a_file_is_read() {
        let body = b"------x42\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n------x42\r\nContent-Disposition: form-data; name=\"file\"; filename=\"leerlingen.csv\"\r\nContent-Type: text/csv\r\n\r\nstamnr;idgebr\r\n1;2\r\n\r\n------x42--\r\n";
        let parts = parse(CT, &Bytes::from_static(body)).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(field(&parts, "csrf"), Some("abc"));
        assert_eq!(parts[1].file_name.as_deref(), Some("leerlingen.csv"));
        // The file's own line ends are kept, up to the delimiter's CRLF.
        assert_eq!(&parts[1].data[..], b"stamnr;idgebr\r\n1;2\r\n");
        assert_eq!(field(&parts, "file"), None, "a file is not a text field");
    }

    #[test]
    fn hostile_forms_are_refused() {
        let parse = |ct: &str, body: &[u8]| parse(ct, &Bytes::copy_from_slice(body));
        assert_eq!(parse("text/plain", b"").unwrap_err(), UploadError::NotMultipart);
        assert!(matches!(
            parse("multipart/form-data", b""),
            Err(UploadError::Malformed(_))
        ));
        let unterminated = b"------x42\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end";
        assert!(matches!(parse(CT, unterminated), Err(UploadError::Malformed(_))));
        let endless_headers = [b"------x42\r\n".as_slice(), &vec![b'a'; 10_000]].concat();
        assert!(matches!(parse(CT, &endless_headers), Err(UploadError::Malformed(_))));
        let mut many = Vec::new();
        for _ in 0..20 {
            many.extend_from_slice(b"------x42\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n");
        }
        many.extend_from_slice(b"------x42--");
        assert_eq!(parse(CT, &many).unwrap_err(), UploadError::TooManyParts);
        // A quoted `;` is part of the file name, not a second parameter.
        let smuggled = b"------x42\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x; name=csrf\"\r\n\r\nv\r\n------x42--";
        let parts = parse(CT, smuggled).unwrap();
        assert_eq!(
            (parts[0].name.as_str(), parts[0].file_name.as_deref()),
            ("file", Some("x; name=csrf"))
        );
    }
}
