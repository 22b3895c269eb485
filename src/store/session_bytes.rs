//! A session as one compact byte string, for the memory store.
//!
//! An [`AppSession`] as Rust values is a dozen small heap strings, each with its own header
//! and allocator rounding: some 900 bytes, more than the session's own data by far. Packed
//! into one allocation (each string as a length and its bytes) the same session takes some
//! 250. Unpacking costs what cloning the struct did (the strings are made once either way).

use std::time::{Duration, SystemTime};

use super::{AppSession, Subject};
use crate::identity::{Facts, Identity};

/// Bumped when the layout changes; an unknown version reads as no session (fail closed).
const VERSION: u8 = 2;

pub fn pack(session: &AppSession) -> Box<[u8]> {
    let mut out = Vec::with_capacity(256);
    out.push(VERSION);
    let facts = &session.identity.facts;
    put_str(&mut out, &session.app);
    put_str(&mut out, &session.identity.person_code);
    put_str(&mut out, &facts.federated_id);
    put_opt(&mut out, facts.school.as_deref());
    put_list(&mut out, &facts.affiliation);
    put_opt(&mut out, facts.tenant.as_deref());
    put_opt(&mut out, facts.given_name.as_deref());
    put_len(&mut out, facts.extra.len());
    for (name, values) in &facts.extra {
        put_str(&mut out, name);
        put_list(&mut out, values);
    }
    put_str(&mut out, &session.subject.name_id);
    put_opt(&mut out, session.subject.name_id_format.as_deref());
    put_opt(&mut out, session.subject.session_index.as_deref());
    let since_epoch = session
        .expires_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    out.extend_from_slice(&since_epoch.as_secs().to_le_bytes());
    out.extend_from_slice(&since_epoch.subsec_nanos().to_le_bytes());
    let authenticated = session
        .authenticated_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    out.extend_from_slice(&authenticated.as_secs().to_le_bytes());
    out.into_boxed_slice()
}

/// The app of a packed session (its first field), read in place.
pub fn app_of(bytes: &[u8]) -> Option<&str> {
    let mut r = Reader { bytes };
    if r.byte()? != VERSION {
        return None;
    }
    let n = r.len()?;
    std::str::from_utf8(r.take(n)?).ok()
}

/// The session packed by [`pack`]; `None` for anything else.
pub fn unpack(bytes: &[u8]) -> Option<AppSession> {
    let mut r = Reader { bytes };
    if r.byte()? != VERSION {
        return None;
    }
    let app = r.string()?;
    let person_code = r.string()?;
    let federated_id = r.string()?;
    let school = r.opt()?;
    let affiliation = r.list()?;
    let tenant = r.opt()?;
    let given_name = r.opt()?;
    let extra_count = r.len()?;
    let mut extra = Vec::with_capacity(extra_count.min(64));
    for _ in 0..extra_count {
        extra.push((r.string()?, r.list()?));
    }
    let subject = Subject {
        name_id: r.string()?,
        name_id_format: r.opt()?,
        session_index: r.opt()?,
    };
    let secs = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let nanos = u32::from_le_bytes(r.take(4)?.try_into().ok()?);
    let authenticated_secs = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    if !r.bytes.is_empty() || nanos >= 1_000_000_000 {
        return None;
    }
    Some(AppSession {
        app,
        identity: Identity {
            person_code,
            facts: Facts {
                federated_id,
                school,
                affiliation,
                tenant,
                given_name,
                extra,
            },
        },
        subject,
        expires_at: SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))?,
        authenticated_at: SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(authenticated_secs))?,
    })
}

/// Lengths as LEB128: one byte for everything under 128.
fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

fn put_list(out: &mut Vec<u8>, items: &[String]) {
    put_len(out, items.len());
    for item in items {
        put_str(out, item);
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn len(&mut self) -> Option<usize> {
        let mut n: usize = 0;
        for shift in (0..35).step_by(7) {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn string(&mut self) -> Option<String> {
        let n = self.len()?;
        let raw = self.take(n)?;
        std::str::from_utf8(raw).ok().map(str::to_string)
    }

    fn opt(&mut self) -> Option<Option<String>> {
        match self.byte()? {
            0 => Some(None),
            1 => self.string().map(Some),
            _ => None,
        }
    }

    fn list(&mut self) -> Option<Vec<String>> {
        let n = self.len()?;
        let mut items = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            items.push(self.string()?);
        }
        Some(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> AppSession {
        AppSession {
            app: "rooster".into(),
            identity: Identity {
                person_code: "100231".into(),
                facts: Facts {
                    federated_id: "100231@school-a.nl".into(),
                    school: Some("99XX".into()),
                    affiliation: vec!["student".into(), "member".into()],
                    tenant: None,
                    given_name: Some("Sanne é".into()),
                    extra: vec![("groups".into(), vec!["a".into(), "x".repeat(300)])],
                },
            },
            subject: Subject {
                name_id: "_abc".into(),
                name_id_format: Some("urn:oasis:names:tc:SAML:2.0:nameid-format:transient".into()),
                session_index: None,
            },
            expires_at: SystemTime::UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789),
            authenticated_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_789_990_000),
        }
    }

    #[test]
    fn a_session_comes_back_exactly_as_it_went_in() {
        let s = session();
        let packed = pack(&s);
        assert_eq!(app_of(&packed), Some("rooster"));
        assert_eq!(unpack(&packed), Some(s));
        // A long value needs a two-byte length and still round-trips.
        assert!(packed.len() > 300);
    }

    #[test]
    fn truncated_extended_or_foreign_bytes_are_no_session() {
        let packed = pack(&session());
        for cut in 0..packed.len() {
            assert_eq!(unpack(&packed[..cut]), None, "cut at {cut}");
        }
        assert_eq!(app_of(&packed[..5]), None);
        let mut longer = packed.to_vec();
        longer.push(0);
        assert_eq!(unpack(&longer), None);
        let mut other_version = packed.to_vec();
        other_version[0] = VERSION + 1;
        assert_eq!(unpack(&other_version), None);
    }
}
