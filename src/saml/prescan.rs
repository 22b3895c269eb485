//! A linear pass over XML text that bounds its shape before any tree is built.
//!
//! roxmltree is fast on ordinary documents, but parts of it grow faster than the input: it
//! checks each attribute against every earlier one of its element (comparing namespace URIs),
//! each namespace declaration against the element's earlier ones, and keeps the distinct
//! namespace bindings in a sorted vector it inserts into. A few tens of KB shaped for those
//! loops kept a core busy for minutes. This pass reads every byte once, keeps O(1) work per
//! token, and refuses a document whose shape would make any later step (parser,
//! canonicalization, signature checks) expensive: elements nested too deep, too many
//! attributes on one element, too many namespaces in scope or in the document, names, values
//! or namespace URIs too long. It does not judge well-formedness beyond what it must to find
//! the tokens; the parser that follows does that.

use std::collections::{HashMap, HashSet};

use super::xml::{XmlError, XmlLimits};

/// Attributes on one element (namespace declarations not counted). SAML and metadata
/// elements carry at most six or seven (`ID`, `Version`, `IssueInstant`, `Destination`,
/// `InResponseTo`, `Consent`; `entityID`, `validUntil`, `cacheDuration`).
pub const MAX_ATTRIBUTES_PER_ELEMENT: usize = 32;
/// Namespaces in scope at any one element. Real messages and metadata have a dozen or two;
/// canonicalization renders them element by element.
pub const MAX_NAMESPACES_IN_SCOPE: usize = 32;
/// The qualified name of an element or attribute, in bytes (`saml:AuthenticatingAuthority`
/// is 28).
pub const MAX_NAME_BYTES: usize = 256;
/// A namespace URI, in bytes as written (the longest in SAML use are under 100).
pub const MAX_NAMESPACE_URI_BYTES: usize = 256;
/// An attribute value, in bytes as written (URLs, IDs and times; metadata `Location`s).
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 8 * 1024;

/// The shape bounds that depend on the kind of document (a response or federation metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeLimits {
    /// Namespace declarations in the whole document. SimpleSAMLphp and Shibboleth declare
    /// `xs` and `xsi` on every AttributeValue, so a response with the 512 values it may carry
    /// has about a thousand (the bound for responses is 3,000).
    pub max_namespace_declarations: usize,
    /// Distinct (prefix, URI) bindings in the whole document: a handful in real documents,
    /// the thing roxmltree's sorted insert is quadratic in.
    pub max_distinct_namespaces: usize,
}

/// What the pass saw (for tests and `verify-response`'s detail).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    pub elements: usize,
    pub max_depth: usize,
    pub namespace_declarations: usize,
}

/// Scans `text` once; an error names the first bound it crosses.
pub fn scan(text: &str, limits: &XmlLimits) -> Result<Shape, XmlError> {
    Scanner::new(text, limits).run()
}

struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    limits: &'a XmlLimits,
    pos: usize,
    shape: Shape,
    /// The open elements' declared prefixes, innermost last (`""` for the default namespace).
    open: Vec<Vec<&'a str>>,
    /// How many open elements declare each prefix: a prefix is in scope while its count is > 0,
    /// so the number in scope is the number of keys with a count, kept in `in_scope`.
    declared: HashMap<&'a str, usize>,
    in_scope: usize,
    distinct: HashSet<(&'a str, &'a str)>,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str, limits: &'a XmlLimits) -> Self {
        Scanner {
            bytes: text.as_bytes(),
            text,
            limits,
            pos: 0,
            shape: Shape::default(),
            open: Vec::new(),
            declared: HashMap::new(),
            in_scope: 0,
            distinct: HashSet::new(),
        }
    }

    fn run(mut self) -> Result<Shape, XmlError> {
        while let Some(offset) = memchr::memchr(b'<', &self.bytes[self.pos..]) {
            self.pos += offset;
            let rest = &self.bytes[self.pos..];
            if rest.starts_with(b"<!--") {
                self.skip_past(4, b"-->", "a comment")?;
            } else if rest.starts_with(b"<![CDATA[") {
                self.skip_past(9, b"]]>", "a CDATA section")?;
            } else if rest.starts_with(b"<!") {
                return Err(XmlError::Dtd);
            } else if rest.starts_with(b"<?") {
                self.skip_past(2, b"?>", "a processing instruction")?;
            } else if rest.starts_with(b"</") {
                self.skip_past(2, b">", "an end tag")?;
                self.close_element();
            } else {
                self.start_tag()?;
            }
        }
        Ok(self.shape)
    }

    /// Moves past the next `end` after `skip` bytes; unterminated markup is malformed.
    fn skip_past(&mut self, skip: usize, end: &[u8], what: &str) -> Result<(), XmlError> {
        let from = self.pos + skip;
        match memchr::memmem::find(&self.bytes[from.min(self.bytes.len())..], end) {
            Some(found) => {
                self.pos = from + found + end.len();
                Ok(())
            }
            None => Err(XmlError::Malformed(format!("{what} is not closed"))),
        }
    }

    fn start_tag(&mut self) -> Result<(), XmlError> {
        self.pos += 1;
        let name = self.name()?;
        if name.is_empty() {
            return Err(XmlError::Malformed("a '<' that starts no tag".into()));
        }
        self.shape.elements += 1;
        let depth = self.open.len() + 1;
        if depth > self.limits.max_depth {
            return Err(XmlError::TooDeep(self.limits.max_depth));
        }
        self.shape.max_depth = self.shape.max_depth.max(depth);
        let mut prefixes: Vec<&'a str> = Vec::new();
        let mut attributes = 0usize;
        loop {
            self.skip_whitespace();
            match self.bytes.get(self.pos) {
                Some(b'>') => {
                    self.pos += 1;
                    self.open_element(prefixes)?;
                    return Ok(());
                }
                Some(b'/') if self.bytes.get(self.pos + 1) == Some(&b'>') => {
                    self.pos += 2;
                    // An empty element: its declarations count towards its own scope only.
                    self.open_element(prefixes)?;
                    self.close_element();
                    return Ok(());
                }
                Some(_) => {}
                None => return Err(XmlError::Malformed(format!("the tag <{name}> is not closed"))),
            }
            let attribute = self.name()?;
            if attribute.is_empty() {
                return Err(XmlError::Malformed(format!("an attribute of <{name}> has no name")));
            }
            self.skip_whitespace();
            if self.bytes.get(self.pos) != Some(&b'=') {
                return Err(XmlError::Malformed(format!("the attribute {attribute} has no value")));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.quoted_value(attribute)?;
            if let Some(prefix) = declared_prefix(attribute) {
                self.declaration(prefix, value, prefixes.len())?;
                prefixes.push(prefix);
            } else {
                attributes += 1;
                if attributes > MAX_ATTRIBUTES_PER_ELEMENT {
                    return Err(XmlError::TooManyAttributes(MAX_ATTRIBUTES_PER_ELEMENT));
                }
                if value.len() > MAX_ATTRIBUTE_VALUE_BYTES {
                    return Err(XmlError::ValueTooLong {
                        what: "an attribute value",
                        limit: MAX_ATTRIBUTE_VALUE_BYTES,
                    });
                }
            }
        }
    }

    /// A namespace declaration on the element being read, `before` declarations earlier on it.
    fn declaration(&mut self, prefix: &'a str, uri: &'a str, before: usize) -> Result<(), XmlError> {
        if uri.len() > MAX_NAMESPACE_URI_BYTES {
            return Err(XmlError::ValueTooLong {
                what: "a namespace URI",
                limit: MAX_NAMESPACE_URI_BYTES,
            });
        }
        if before + 1 > MAX_NAMESPACES_IN_SCOPE {
            return Err(XmlError::TooManyNamespaces(MAX_NAMESPACES_IN_SCOPE));
        }
        self.shape.namespace_declarations += 1;
        if self.shape.namespace_declarations > self.limits.shape.max_namespace_declarations {
            return Err(XmlError::TooManyNamespaces(
                self.limits.shape.max_namespace_declarations,
            ));
        }
        // Bounded by the count above, so the set stays small.
        self.distinct.insert((prefix, uri));
        if self.distinct.len() > self.limits.shape.max_distinct_namespaces {
            return Err(XmlError::TooManyNamespaces(self.limits.shape.max_distinct_namespaces));
        }
        Ok(())
    }

    fn open_element(&mut self, prefixes: Vec<&'a str>) -> Result<(), XmlError> {
        for prefix in &prefixes {
            let count = self.declared.entry(prefix).or_insert(0);
            if *count == 0 {
                self.in_scope += 1;
            }
            *count += 1;
        }
        self.open.push(prefixes);
        if self.in_scope > MAX_NAMESPACES_IN_SCOPE {
            return Err(XmlError::TooManyNamespaces(MAX_NAMESPACES_IN_SCOPE));
        }
        Ok(())
    }

    /// Ends the innermost open element. An end tag without an open element is the parser's
    /// to refuse; here it only must not underflow.
    fn close_element(&mut self) {
        for prefix in self.open.pop().unwrap_or_default() {
            if let Some(count) = self.declared.get_mut(prefix) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    self.in_scope -= 1;
                }
            }
        }
    }

    /// A name: everything up to whitespace, `=`, `/`, `>` (the parser checks the characters).
    fn name(&mut self) -> Result<&'a str, XmlError> {
        let start = self.pos;
        let end = self.bytes[start..]
            .iter()
            .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'=' | b'/' | b'>'))
            .map_or(self.bytes.len(), |n| start + n);
        if end - start > MAX_NAME_BYTES {
            return Err(XmlError::ValueTooLong {
                what: "a name",
                limit: MAX_NAME_BYTES,
            });
        }
        self.pos = end;
        self.text
            .get(start..end)
            .ok_or_else(|| XmlError::Malformed("a name is not valid UTF-8 text".into()))
    }

    fn quoted_value(&mut self, attribute: &str) -> Result<&'a str, XmlError> {
        let quote = match self.bytes.get(self.pos) {
            Some(q @ (b'"' | b'\'')) => *q,
            _ => return Err(XmlError::Malformed(format!("the value of {attribute} is not quoted"))),
        };
        let start = self.pos + 1;
        let Some(length) = memchr::memchr(quote, &self.bytes[start..]) else {
            return Err(XmlError::Malformed(format!("the value of {attribute} is not closed")));
        };
        self.pos = start + length + 1;
        self.text
            .get(start..start + length)
            .ok_or_else(|| XmlError::Malformed("a value is not valid UTF-8 text".into()))
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.pos += 1;
        }
    }
}

/// `xmlns` declares the default namespace (`""`), `xmlns:p` the prefix `p`; anything else is
/// an ordinary attribute.
fn declared_prefix(attribute: &str) -> Option<&str> {
    match attribute.strip_prefix("xmlns") {
        Some("") => Some(""),
        Some(rest) => rest.strip_prefix(':'),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> XmlLimits {
        XmlLimits::default()
    }

    #[test]
    fn reads_an_ordinary_document() {
        let xml = r#"<?xml version="1.0"?><!-- a <comment> --><samlp:Response xmlns:samlp="urn:p" xmlns:saml="urn:a" ID="_1" Version='2.0'><saml:Issuer>x &amp; <![CDATA[<y>]]></saml:Issuer><a b="c>d"/><e /></samlp:Response>"#;
        let shape = scan(xml, &limits()).unwrap();
        assert_eq!(shape.elements, 4);
        assert_eq!(shape.max_depth, 2);
        assert_eq!(shape.namespace_declarations, 2);
    }

    #[test]
    fn counts_namespaces_in_scope_exactly() {
        // The same prefix redeclared on every level is one namespace in scope, not thirty.
        let mut xml = String::new();
        for _ in 0..30 {
            xml.push_str(r#"<a xmlns:p="urn:x" xmlns="urn:d">"#);
        }
        xml.push_str(&"</a>".repeat(30));
        assert!(scan(&xml, &limits()).is_ok());
        // Siblings' declarations go out of scope with them.
        let siblings: String = (0..200).map(|i| format!(r#"<v xmlns:n{i}="urn:n"/>"#)).collect();
        assert!(scan(&format!("<r>{siblings}</r>"), &limits()).is_ok());
        // Nested distinct prefixes accumulate.
        let mut nested = String::new();
        for i in 0..MAX_NAMESPACES_IN_SCOPE / 2 + 1 {
            nested.push_str(&format!(r#"<a xmlns:p{i}="urn:x" xmlns:q{i}="urn:y">"#));
        }
        assert_eq!(
            scan(&nested, &limits()).unwrap_err(),
            XmlError::TooManyNamespaces(MAX_NAMESPACES_IN_SCOPE)
        );
    }

    #[test]
    fn refuses_each_shape_with_its_error() {
        let attrs: String = (0..MAX_ATTRIBUTES_PER_ELEMENT + 1)
            .map(|i| format!(" a{i}=''"))
            .collect();
        assert_eq!(
            scan(&format!("<r{attrs}/>"), &limits()).unwrap_err(),
            XmlError::TooManyAttributes(MAX_ATTRIBUTES_PER_ELEMENT)
        );
        let decls: String = (0..MAX_NAMESPACES_IN_SCOPE + 1)
            .map(|i| format!(" xmlns:p{i}='u'"))
            .collect();
        assert_eq!(
            scan(&format!("<r{decls}/>"), &limits()).unwrap_err(),
            XmlError::TooManyNamespaces(MAX_NAMESPACES_IN_SCOPE)
        );
        let long_uri = format!("<r xmlns:p='{}'/>", "u".repeat(MAX_NAMESPACE_URI_BYTES + 1));
        assert!(matches!(
            scan(&long_uri, &limits()).unwrap_err(),
            XmlError::ValueTooLong {
                what: "a namespace URI",
                ..
            }
        ));
        let long_value = format!("<r a='{}'/>", "v".repeat(MAX_ATTRIBUTE_VALUE_BYTES + 1));
        assert!(matches!(
            scan(&long_value, &limits()).unwrap_err(),
            XmlError::ValueTooLong {
                what: "an attribute value",
                ..
            }
        ));
        let long_name = format!("<{}/>", "n".repeat(MAX_NAME_BYTES + 1));
        assert!(matches!(
            scan(&long_name, &limits()).unwrap_err(),
            XmlError::ValueTooLong { what: "a name", .. }
        ));
        let deep = "<a>".repeat(limits().max_depth + 1);
        assert_eq!(
            scan(&deep, &limits()).unwrap_err(),
            XmlError::TooDeep(limits().max_depth)
        );
        let many: String = (0..limits().shape.max_namespace_declarations + 1)
            .map(|_| "<v xmlns:x='u'/>")
            .collect();
        assert_eq!(
            scan(&format!("<r>{many}</r>"), &limits()).unwrap_err(),
            XmlError::TooManyNamespaces(limits().shape.max_namespace_declarations)
        );
        let distinct: String = (0..limits().shape.max_distinct_namespaces + 1)
            .map(|i| format!("<v xmlns:x='u{i}'/>"))
            .collect();
        assert_eq!(
            scan(&format!("<r>{distinct}</r>"), &limits()).unwrap_err(),
            XmlError::TooManyNamespaces(limits().shape.max_distinct_namespaces)
        );
        assert_eq!(scan("<r><!DOCTYPE r></r>", &limits()).unwrap_err(), XmlError::Dtd);
    }

    #[test]
    fn real_documents_pass_with_room() {
        // SimpleSAMLphp and Shibboleth IdP: `xs` and `xsi` declared on every AttributeValue;
        // the most values a response may carry (512), each in its own Attribute.
        let value = r#"<saml:Attribute Name="urn:oid:1.3.6.1.4.1.5923.1.1.1.1" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" FriendlyName="eduPersonAffiliation"><saml:AttributeValue xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">student</saml:AttributeValue></saml:Attribute>"#;
        let response = format!(
            concat!(
                r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" Destination="https://numo.example.nl/saml2/kennisnet/acs" InResponseTo="_2">"#,
                r#"<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="_3" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">"#,
                r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo/></ds:Signature>"#,
                r#"<saml:AttributeStatement>{}</saml:AttributeStatement></saml:Assertion></samlp:Response>"#
            ),
            value.repeat(512)
        );
        let shape = scan(&response, &limits()).unwrap();
        assert!(shape.namespace_declarations >= 1024);
        assert!(shape.namespace_declarations * 2 <= limits().shape.max_namespace_declarations);

        // A federation aggregate: thousands of entities, each declaring its own namespaces.
        let entity = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui" xmlns:shibmd="urn:mace:shibboleth:metadata:1.0" xmlns:mdattr="urn:oasis:names:tc:SAML:metadata:attribute" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:mdrpi="urn:oasis:names:tc:SAML:metadata:rpi" entityID="https://idp.example.nl/x" validUntil="2027-01-01T00:00:00Z"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.nl/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#;
        let aggregate = format!(
            r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Name="urn:x" validUntil="2027-01-01T00:00:00Z">{}</md:EntitiesDescriptor>"#,
            entity.repeat(10_000)
        );
        let metadata = super::super::signature::METADATA_LIMITS;
        assert!(aggregate.len() <= metadata.max_bytes);
        let shape = scan(&aggregate, &metadata).unwrap();
        assert!(shape.namespace_declarations >= 70_000);
        assert!(shape.namespace_declarations * 2 <= metadata.shape.max_namespace_declarations);
        // The same aggregate is far beyond what a response may declare.
        assert!(matches!(
            scan(&aggregate, &limits()),
            Err(XmlError::TooManyNamespaces(_))
        ));
    }

    #[test]
    fn unterminated_markup_is_malformed_not_a_panic() {
        for text in [
            "<r",
            "<r a",
            "<r a=",
            "<r a='",
            "<!--",
            "<?pi",
            "<![CDATA[",
            "</r",
            "<",
            "<r a b='c'>",
            "<r é",
        ] {
            assert!(matches!(scan(text, &limits()), Err(XmlError::Malformed(_))), "{text:?}");
        }
        // An end tag without a start is left to the parser.
        assert!(scan("</r></r>", &limits()).is_ok());
    }
}
