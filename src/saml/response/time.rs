//! SAML times (`xs:dateTime`), read strictly and into UTC. Used by every time check of a
//! Response, and by logout messages and metadata (`validUntil`).

use chrono::{DateTime, Utc};

use crate::saml::error::ValidationError;

/// Parses a SAML `xs:dateTime` into UTC. SAML core 1.3.3 asks for UTC (`Z`), but XML Schema
/// allows a zone offset (`+01:00`, `+00:00`) for the same instant, and Shibboleth and other
/// peers read those: an offset is converted, not refused. The lexical form is checked strictly
/// (`T` separator, seconds present, offset at most 14:00) before chrono reads it, because
/// chrono's RFC 3339 reader also takes forms XML Schema does not (a space, a lower-case `t`).
/// A time without any zone is still refused: XML Schema calls it local time, whose instant
/// depends on where it is read.
pub fn parse_time(value: &str) -> Result<DateTime<Utc>, ValidationError> {
    let value = value.trim();
    let invalid = || ValidationError::TimeInvalid(value.chars().take(64).collect());
    if !is_xs_datetime_with_zone(value) {
        return Err(invalid());
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid())
}

/// `YYYY-MM-DDThh:mm:ss(.fraction)?(Z|(+|-)hh:mm)`, the offset at most 14:00 (XML Schema 1.0
/// 3.2.7.3). Digits only where digits belong; the ranges of the fields are chrono's to check.
fn is_xs_datetime_with_zone(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| b.get(range).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        b"Z" => true,
        [sign, h1, h2, b':', m1, m2] if (*sign == b'+' || *sign == b'-') => {
            let two = |a: u8, b: u8| a.is_ascii_digit() && b.is_ascii_digit();
            if !two(*h1, *h2) || !two(*m1, *m2) {
                return false;
            }
            let hours = (h1 - b'0') * 10 + (h2 - b'0');
            let minutes = (m1 - b'0') * 10 + (m2 - b'0');
            minutes < 60 && (hours < 14 || (hours == 14 && minutes == 0))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_a_zone_offset_are_read_as_the_same_instant_in_utc() {
        let utc = parse_time("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(
            parse_time("2026-11-23T10:00:00.123Z").unwrap().timestamp(),
            utc.timestamp()
        );
        for same in [
            "2026-11-23T10:00:00+00:00",
            "2026-11-23T10:00:00-00:00",
            "2026-11-23T11:00:00+01:00",
            "2026-11-23T05:30:00-04:30",
            "2026-11-24T00:00:00+14:00",
            " 2026-11-23T12:00:00.000+02:00 ",
        ] {
            assert_eq!(parse_time(same).unwrap(), utc, "{same}");
        }
        for bad in [
            "yesterday",
            "2026-11-23T10:00:00",
            "2026-11-23 10:00:00Z",
            "2026-11-23t10:00:00Z",
            "2026-11-23T10:00Z",
            "2026-11-23T10:00:00.Z",
            "2026-11-23T10:00:00+0100",
            "2026-11-23T10:00:00+14:30",
            "2026-11-23T10:00:00+15:00",
            "2026-11-23T10:00:00+01:60",
            "2026-13-23T10:00:00Z",
            "2026-11-23T10:00:00+01:00Z",
        ] {
            assert_eq!(parse_time(bad).map_err(|e| e.code()), Err("time_invalid"), "{bad}");
        }
    }
}
