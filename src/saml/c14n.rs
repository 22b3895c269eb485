//! Canonical XML (C14N 1.0 and Exclusive C14N 1.0, both without comments) of a subtree of a
//! parsed document: the bytes an XML signature digests.
//!
//! The bridge canonicalizes the very roxmltree document its other checks read, so there is no
//! second parser whose view of the bytes could differ from ours (the parser differentials
//! behind several SAML advisories). Only what SAML signatures use is supported: a whole
//! element (optionally minus the enveloped Signature inside it), or the whole document.
//! Inputs never contain DTDs (refused before parsing), so there are no entity references,
//! default attributes or attribute types to take into account.

use roxmltree::{Document, Node, NodeId, NodeType};

const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Which canonicalization, as named by a `CanonicalizationMethod` or `Transform` Algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `http://www.w3.org/TR/2001/REC-xml-c14n-20010315`
    Inclusive,
    /// `http://www.w3.org/2001/10/xml-exc-c14n#`, with the `InclusiveNamespaces PrefixList`
    /// prefixes (`#default` for the default namespace) that are rendered as in C14N 1.0.
    Exclusive { inclusive_prefixes: Vec<String> },
}

/// What to canonicalize.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a, 'i> {
    /// An element and its descendants (a same-document `#ID` reference or a SignedInfo).
    Element(Node<'a, 'i>),
    /// The whole document (`URI=""`): the root element, and processing instructions outside it.
    Document,
}

/// The canonical form would be longer than the bound: refused before it is finished (exclusive
/// C14N renders an ancestor's namespace again on every element that uses it, so a small
/// document can ask for a huge one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the canonical form is longer than {0} bytes")]
pub struct TooLarge(pub usize);

/// The canonical text of `scope` in `doc`, leaving out the subtree rooted at `exclude` (the
/// enveloped-signature transform), at most `max_bytes` long.
pub fn canonicalize<'a, 'i>(
    doc: &'a Document<'i>,
    scope: Scope<'a, 'i>,
    exclude: Option<NodeId>,
    method: &Method,
    max_bytes: usize,
) -> Result<String, TooLarge> {
    let mut out = String::with_capacity(doc.input_text().len().min(max_bytes));
    let writer = Writer::new(doc, method, exclude, max_bytes);
    match scope {
        Scope::Element(apex) => writer.element_tree(apex, &mut out)?,
        Scope::Document => {
            let root = doc.root();
            let element = doc.root_element();
            let mut after_root = false;
            for child in root.children() {
                if child.id() == element.id() {
                    writer.element_tree(element, &mut out)?;
                    after_root = true;
                } else if child.node_type() == NodeType::PI {
                    // Outside the root a PI is separated from the root element by a line break.
                    if after_root {
                        out.push('\n');
                    }
                    write_pi(child, &mut out);
                    if !after_root {
                        out.push('\n');
                    }
                    writer.within_bound(&out)?;
                }
            }
        }
    }
    Ok(out)
}

/// A namespace binding as rendered: prefix (`""` for the default) to URI (`""` for none).
type Binding<'a> = (&'a str, &'a str);

struct Writer<'a> {
    text: &'a str,
    method: &'a Method,
    exclude: Option<NodeId>,
    max_bytes: usize,
}

/// One open element during the walk: its qualified name and the bindings in force below it.
struct Frame<'a> {
    qname: &'a str,
    rendered: Vec<Binding<'a>>,
}

impl<'a> Writer<'a> {
    fn new(doc: &'a Document<'_>, method: &'a Method, exclude: Option<NodeId>, max_bytes: usize) -> Self {
        Writer {
            text: doc.input_text(),
            method,
            exclude,
            max_bytes,
        }
    }

    fn within_bound(&self, out: &str) -> Result<(), TooLarge> {
        if out.len() > self.max_bytes {
            Err(TooLarge(self.max_bytes))
        } else {
            Ok(())
        }
    }

    /// Walks the subtree without recursion (depth is bounded at parse time, but a walk that
    /// cannot overflow the stack needs no such argument).
    fn element_tree(&self, apex: Node<'a, '_>, out: &mut String) -> Result<(), TooLarge> {
        enum Step<'a, 'i> {
            Enter(Node<'a, 'i>),
            Leave,
        }
        let mut frames: Vec<Frame<'a>> = Vec::new();
        let mut steps = vec![Step::Enter(apex)];
        while let Some(step) = steps.pop() {
            match step {
                Step::Leave => {
                    if let Some(frame) = frames.pop() {
                        out.push_str("</");
                        out.push_str(frame.qname);
                        out.push('>');
                    }
                }
                Step::Enter(node) => match node.node_type() {
                    NodeType::Element => {
                        if Some(node.id()) == self.exclude {
                            continue;
                        }
                        let is_apex = node.id() == apex.id();
                        let frame = self.start_tag(node, frames.last(), is_apex, out);
                        frames.push(frame);
                        steps.push(Step::Leave);
                        let first = steps.len();
                        steps.extend(node.children().map(Step::Enter));
                        steps[first..].reverse();
                    }
                    NodeType::Text => escape_text(node.text().unwrap_or(""), out),
                    NodeType::PI => write_pi(node, out),
                    // Comments are not part of the canonical form "without comments".
                    NodeType::Comment | NodeType::Root => {}
                },
            }
            // Every step writes at most one start tag or one text node: checked after each.
            self.within_bound(out)?;
        }
        Ok(())
    }

    fn start_tag(&self, node: Node<'a, '_>, parent: Option<&Frame<'a>>, is_apex: bool, out: &mut String) -> Frame<'a> {
        let qname = self.element_qname(node);
        let inherited: &[Binding<'a>] = parent.map(|f| f.rendered.as_slice()).unwrap_or(&[]);
        let mut declare: Vec<Binding<'a>> = Vec::new();
        match self.method {
            Method::Inclusive => {
                // Every namespace in scope that the nearest output ancestor did not already have.
                for (prefix, uri) in in_scope(node) {
                    if lookup(inherited, prefix) != uri {
                        declare.push((prefix, uri));
                    }
                }
                // `xmlns=""` only where an output parent had a default namespace.
                if !in_scope(node).any(|(p, _)| p.is_empty()) && !lookup(inherited, "").is_empty() {
                    declare.push(("", ""));
                }
            }
            Method::Exclusive { inclusive_prefixes } => {
                // Visibly utilized: the element's own prefix (or the default) and its
                // attributes' prefixes; plus the listed prefixes where they are in scope.
                let mut utilized: Vec<&str> = vec![prefix_of(qname)];
                for attr in node.attributes() {
                    let prefix = prefix_of(&self.text[attr.range_qname()]);
                    if !prefix.is_empty() && prefix != "xml" {
                        utilized.push(prefix);
                    }
                }
                for listed in inclusive_prefixes {
                    if listed == "#default" {
                        // Rendered as C14N 1.0 does: also as `xmlns=""` where the default was
                        // undeclared below an output ancestor that had one.
                        utilized.push("");
                    } else if in_scope(node).any(|(p, _)| p == listed) {
                        utilized.push(listed.as_str());
                    }
                }
                for wanted in utilized {
                    let (prefix, uri) = in_scope(node).find(|(p, _)| *p == wanted).unwrap_or(("", ""));
                    if !wanted.is_empty() && prefix.is_empty() {
                        // A prefix used but not bound: the parser would have refused it.
                        continue;
                    }
                    if lookup(inherited, prefix) != uri && !declare.iter().any(|(p, _)| *p == prefix) {
                        declare.push((prefix, uri));
                    }
                }
            }
        }
        declare.sort_unstable_by(|a, b| a.0.cmp(b.0));

        out.push('<');
        out.push_str(qname);
        for (prefix, uri) in &declare {
            if prefix.is_empty() {
                out.push_str(" xmlns=\"");
            } else {
                out.push_str(" xmlns:");
                out.push_str(prefix);
                out.push_str("=\"");
            }
            escape_attribute(uri, out);
            out.push('"');
        }
        // Sorted by namespace URI, then local name; attributes without a namespace first.
        let mut attributes: Vec<(&str, &str, &str, &str)> = node
            .attributes()
            .map(|a| {
                (
                    a.namespace().unwrap_or(""),
                    a.name(),
                    &self.text[a.range_qname()],
                    a.value(),
                )
            })
            .collect();
        // C14N 1.0 carries xml:* attributes of ancestors outside the node set onto the apex.
        if is_apex && *self.method == Method::Inclusive {
            for ancestor in node.ancestors().skip(1).filter(Node::is_element) {
                for attr in ancestor.attributes().filter(|a| a.namespace() == Some(NS_XML)) {
                    if !attributes
                        .iter()
                        .any(|(ns, name, _, _)| *ns == NS_XML && *name == attr.name())
                    {
                        attributes.push((NS_XML, attr.name(), &self.text[attr.range_qname()], attr.value()));
                    }
                }
            }
        }
        attributes.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (_, _, attr_qname, value) in attributes {
            out.push(' ');
            out.push_str(attr_qname);
            out.push_str("=\"");
            escape_attribute(value, out);
            out.push('"');
        }
        out.push('>');

        let mut rendered = inherited.to_vec();
        for (prefix, uri) in declare {
            match rendered.iter_mut().find(|(p, _)| *p == prefix) {
                Some(slot) => slot.1 = uri,
                None => rendered.push((prefix, uri)),
            }
        }
        Frame { qname, rendered }
    }

    /// The element's name as written (`saml:Assertion`): roxmltree keeps only the expanded
    /// name, and the canonical form needs the prefix the document used.
    fn element_qname(&self, node: Node<'a, '_>) -> &'a str {
        let start = &self.text[node.range().start + 1..];
        let end = start
            .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
            .unwrap_or(start.len());
        &start[..end]
    }
}

/// The namespaces in scope at `node` as (prefix, URI), the `xml` prefix and an undeclared
/// default (`xmlns=""`) left out.
fn in_scope<'a>(node: Node<'a, '_>) -> impl Iterator<Item = Binding<'a>> + 'a {
    node.namespaces()
        .map(|ns| (ns.name().unwrap_or(""), ns.uri()))
        .filter(|(prefix, uri)| *prefix != "xml" && !(prefix.is_empty() && uri.is_empty()))
}

fn lookup<'a>(bindings: &[Binding<'a>], prefix: &str) -> &'a str {
    bindings
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, u)| *u)
        .unwrap_or("")
}

fn prefix_of(qname: &str) -> &str {
    qname.split_once(':').map(|(p, _)| p).unwrap_or("")
}

fn write_pi(node: Node<'_, '_>, out: &mut String) {
    if let Some(pi) = node.pi() {
        out.push_str("<?");
        out.push_str(pi.target);
        if let Some(value) = pi.value.filter(|v| !v.is_empty()) {
            out.push(' ');
            out.push_str(value);
        }
        out.push_str("?>");
    }
}

fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            other => out.push(other),
        }
    }
}

/// Also for namespace URIs (C14N treats them as attribute values). libxml2 writes `&` there as
/// `&#38;` rather than `&amp;`, so a signer on libxml2 and the bridge disagree on a namespace
/// URI with `&` in it: such a signature is refused (fail closed), never misread.
fn escape_attribute(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            other => out.push(other),
        }
    }
}
