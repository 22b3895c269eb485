//! Bounded, DTD-free XML parsing and the small tree helpers the SAML code reads with.
//!
//! Every SAML message from outside goes through [`parse_bounded`] first: it refuses DTDs and
//! entity declarations outright (XXE, billion laughs), and bounds size, then the document's
//! shape in one linear pass ([`super::prescan`]: depth, attributes, namespaces, lengths), then
//! the node count while parsing, before anything else reads the bytes. The tree it returns is the one every check reads and
//! the one signatures are verified on (no second parser sees a SAML message).

use roxmltree::{Document, Node, ParsingOptions};

pub const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
pub const NS_MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";

pub use super::prescan::{ShapeLimits, MAX_NAMESPACES_IN_SCOPE};

/// Size and shape bounds for one XML message.
#[derive(Debug, Clone, Copy)]
pub struct XmlLimits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_nodes: u32,
    /// Bounds of the pre-scan that depend on the kind of document (the per-element ones are
    /// the same for all: [`super::prescan`]).
    pub shape: ShapeLimits,
}

impl Default for XmlLimits {
    fn default() -> Self {
        // A real Entree response is 8-20 KiB, depth < 12 and a few hundred nodes.
        XmlLimits {
            max_bytes: 256 * 1024,
            max_depth: 32,
            max_nodes: 10_000,
            shape: ShapeLimits {
                max_namespace_declarations: 3_000,
                max_distinct_namespaces: 256,
            },
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("the XML is {size} bytes, more than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the XML contains a DTD or entity declaration")]
    Dtd,
    #[error("the XML declares the encoding {0:?}; only UTF-8 is accepted")]
    Encoding(String),
    #[error("the XML nests deeper than {0} elements")]
    TooDeep(usize),
    #[error("the XML has more than {0} nodes")]
    TooManyNodes(u32),
    #[error("the XML declares more than {0} namespaces (on one element, in scope, or in the document)")]
    TooManyNamespaces(usize),
    #[error("an XML element has more than {0} attributes")]
    TooManyAttributes(usize),
    #[error("{what} in the XML is longer than {limit} bytes")]
    ValueTooLong { what: &'static str, limit: usize },
    #[error("the XML is not well-formed: {0}")]
    Malformed(String),
}

/// Parses `text` with the given limits. DTDs are refused even when empty: SAML never needs one.
pub fn parse_bounded(text: &str, limits: XmlLimits) -> Result<Document<'_>, XmlError> {
    if text.len() > limits.max_bytes {
        return Err(XmlError::TooLarge {
            size: text.len(),
            limit: limits.max_bytes,
        });
    }
    check_declared_encoding(text)?;
    if text.contains("<!DOCTYPE") || text.contains("<!ENTITY") {
        return Err(XmlError::Dtd);
    }
    // Depth and namespaces in scope are exact here, so the tree needs no second walk.
    super::prescan::scan(text, &limits)?;
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| match e {
        roxmltree::Error::DtdDetected => XmlError::Dtd,
        roxmltree::Error::NodesLimitReached => XmlError::TooManyNodes(limits.max_nodes),
        other => XmlError::Malformed(other.to_string()),
    })?;
    Ok(doc)
}

/// roxmltree reads the text as the UTF-8 it is and ignores `encoding=`; other parsers obey it.
/// A document that declares another encoding (UTF-7: `+ADw-` is `<`) means something else to
/// its signer or to a log reader than to us, so any encoding but UTF-8 is refused.
fn check_declared_encoding(text: &str) -> Result<(), XmlError> {
    let text = text.trim_start_matches('\u{feff}');
    let Some(rest) = text.strip_prefix("<?xml") else {
        return Ok(());
    };
    let declaration = rest.split_once("?>").map(|(d, _)| d).unwrap_or(rest);
    let Some(after) = declaration.split_once("encoding").map(|(_, a)| a.trim_start()) else {
        return Ok(());
    };
    let value = after
        .strip_prefix('=')
        .map(str::trim_start)
        .and_then(|v| {
            let quote = v.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            v[1..].split(quote).next()
        })
        .unwrap_or(after);
    if value.eq_ignore_ascii_case("utf-8") {
        Ok(())
    } else {
        Err(XmlError::Encoding(value.chars().take(40).collect()))
    }
}

/// True when `node` is the element `{ns}name`.
pub fn is(node: &Node<'_, '_>, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

/// The element children of `node` named `{ns}name`.
pub fn children<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &'static str,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |c| is(c, ns, name))
}

/// The first element child named `{ns}name`.
pub fn child<'a, 'i>(node: Node<'a, 'i>, ns: &'static str, name: &'static str) -> Option<Node<'a, 'i>> {
    children(node, ns, name).next()
}

/// All descendant elements (the node itself included) named `{ns}name`.
pub fn descendants<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &'static str,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    node.descendants().filter(move |c| is(c, ns, name))
}

/// The full text content of a leaf element: every text node concatenated, so that a comment
/// in the middle (`user<!---->@realm`) can never cut the value short.
pub fn full_text(node: Node<'_, '_>) -> String {
    node.children().filter(Node::is_text).filter_map(|t| t.text()).collect()
}

/// True when a leaf value element carries a comment or processing instruction among its
/// text: a legitimate IdP never writes one there, an attacker truncating a value does.
pub fn has_comment_inside(node: Node<'_, '_>) -> bool {
    node.children().any(|c| c.is_comment() || c.is_pi())
}

/// Escapes text for use in XML or HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dtd_even_when_empty() {
        let xml = "<!DOCTYPE r><r/>";
        assert_eq!(parse_bounded(xml, XmlLimits::default()).unwrap_err(), XmlError::Dtd);
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert_eq!(parse_bounded(xxe, XmlLimits::default()).unwrap_err(), XmlError::Dtd);
    }

    #[test]
    fn refuses_any_declared_encoding_but_utf8() {
        let utf7 = r#"<?xml version="1.0" encoding="UTF-7"?><r>+ADw-x/+AD4-</r>"#;
        assert_eq!(
            parse_bounded(utf7, XmlLimits::default()).unwrap_err(),
            XmlError::Encoding("UTF-7".into())
        );
        let latin = "<?xml version='1.0' encoding = 'ISO-8859-1' ?><r/>";
        assert!(matches!(
            parse_bounded(latin, XmlLimits::default()),
            Err(XmlError::Encoding(_))
        ));
        for ok in [
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><r/>",
            "<?xml version=\"1.0\"?><r/>",
            "<r/>",
        ] {
            assert!(parse_bounded(ok, XmlLimits::default()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_deep_documents_quickly() {
        let depth = 50_000;
        let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let limits = XmlLimits {
            max_bytes: 1 << 20,
            ..XmlLimits::default()
        };
        let started = std::time::Instant::now();
        let err = parse_bounded(&xml, limits).unwrap_err();
        assert!(
            matches!(err, XmlError::TooDeep(_) | XmlError::TooManyNodes(_)),
            "{err:?}"
        );
        // Generous bound; the point is that it does not take seconds or overflow the stack.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn refuses_too_many_nodes_and_too_many_bytes() {
        let xml = format!("<r>{}</r>", "<a/>".repeat(20_000));
        let limits = XmlLimits {
            max_bytes: 1 << 20,
            ..XmlLimits::default()
        };
        assert!(matches!(
            parse_bounded(&xml, limits).unwrap_err(),
            XmlError::TooManyNodes(_)
        ));
        let small = XmlLimits {
            max_bytes: 10,
            ..XmlLimits::default()
        };
        assert!(matches!(
            parse_bounded(&xml, small).unwrap_err(),
            XmlError::TooLarge { .. }
        ));
    }

    #[test]
    fn full_text_reads_across_comments() {
        let doc = parse_bounded("<n>user<!---->@realm</n>", XmlLimits::default()).unwrap();
        assert_eq!(full_text(doc.root_element()), "user@realm");
        assert!(has_comment_inside(doc.root_element()));
    }

    #[test]
    fn escape_covers_markup() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
