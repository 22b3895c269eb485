//! `[apps.X.branding]`: the app's logo and accent colour on the pages a student sees, so the
//! page says which app they were going to. Both are checked at load: the logo's size and
//! kind (it is served by the bridge, from memory), the colour's contrast on the pages' white
//! background (WCAG AA for normal text: 4.5:1), since it colours links and button faces.

use std::path::Path;
use std::sync::Arc;

use super::super::file::BrandingSection;
use super::super::parse::resolve;
use super::super::problems::Collector;

/// A logo larger than this is refused: it is held in memory and sent with every page.
pub const MAX_LOGO_BYTES: usize = 100 * 1024;

/// WCAG 2.1 AA's minimum contrast for normal text (success criterion 1.4.3).
pub const MIN_CONTRAST: f64 = 4.5;

#[derive(Debug, Clone, Default)]
pub struct Branding {
    pub accent: Option<Accent>,
    pub logo: Option<Logo>,
}

/// A colour with at least [`MIN_CONTRAST`] against white (and so white text on it): only
/// [`Accent::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accent(String);

impl Accent {
    /// `#rrggbb` or `#rgb`, dark enough to read on white.
    pub fn parse(value: &str) -> Result<Accent, String> {
        let rgb = parse_hex_colour(value)
            .ok_or_else(|| format!("{value:?} is not a colour: write it as #rrggbb (e.g. \"#1a5fb4\")"))?;
        let ratio = contrast_with_white(rgb);
        if ratio < MIN_CONTRAST {
            let darker = darkest_needed(rgb);
            return Err(format!(
                "{value:?} has a contrast of {ratio:.2}:1 on white, below the {MIN_CONTRAST}:1 that text needs \
                 (WCAG AA): links and buttons in it would be hard to read; a darker shade of it passes, \
                 e.g. \"#{:02x}{:02x}{:02x}\"",
                darker[0], darker[1], darker[2]
            ));
        }
        Ok(Accent(format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])))
    }

    /// `#rrggbb`, lower case: safe to write into a style sheet.
    pub fn css(&self) -> &str {
        &self.0
    }
}

/// A logo file's bytes and how to serve them.
#[derive(Debug, Clone)]
pub struct Logo {
    pub bytes: Arc<[u8]>,
    pub content_type: &'static str,
    /// A strong validator of the bytes, for If-None-Match.
    pub etag: String,
}

pub(super) fn build_branding(
    section: &BrandingSection,
    key: &dyn Fn(&str) -> String,
    base: &Path,
    c: &mut Collector<'_>,
) -> Branding {
    let accent = section
        .accent
        .as_deref()
        .and_then(|a| c.take(&key("branding.accent"), Accent::parse(a)));
    let logo = section
        .logo
        .as_deref()
        .and_then(|p| c.take(&key("branding.logo"), read_logo(&resolve(base, p))));
    Branding { accent, logo }
}

fn read_logo(path: &Path) -> Result<Logo, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .len();
    // Bounded before it is read: the file is the admin's, but a wrong path (a video, a disk
    // image) must not be loaded into every instance's memory.
    if size > MAX_LOGO_BYTES as u64 {
        return Err(format!(
            "{} is {} KiB; a logo may be at most {} KiB (a PNG or SVG of 48 pixels high is a few KiB)",
            path.display(),
            size.div_ceil(1024),
            MAX_LOGO_BYTES / 1024
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let content_type = image_kind(&bytes).ok_or_else(|| {
        format!(
            "{} is not a PNG, JPEG, WebP or SVG image (by its first bytes)",
            path.display()
        )
    })?;
    let digest = openssl::sha::sha256(&bytes);
    let etag = format!(
        "\"{}\"",
        digest[..12].iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    Ok(Logo {
        bytes: bytes.into(),
        content_type,
        etag,
    })
}

/// The image kind by its signature, never by the file name.
fn image_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return Some("image/jpeg");
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    // SVG: XML whose first element is <svg>. Served with a CSP that runs no script, and shown
    // through <img>, where a browser never runs one either.
    let text = std::str::from_utf8(bytes)
        .ok()?
        .trim_start_matches('\u{feff}')
        .trim_start();
    let mut rest = text;
    loop {
        if let Some(after) = rest.strip_prefix("<?") {
            rest = after.split_once("?>")?.1.trim_start();
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->")?.1.trim_start();
        } else if let Some(after) = rest.strip_prefix("<!DOCTYPE") {
            rest = after.split_once('>')?.1.trim_start();
        } else {
            break;
        }
    }
    rest.starts_with("<svg").then_some("image/svg+xml")
}

fn parse_hex_colour(value: &str) -> Option<[u8; 3]> {
    let hex = value.trim().strip_prefix('#')?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digit = |i: usize, len: usize| u8::from_str_radix(&hex[i..i + len], 16).ok();
    match hex.len() {
        6 => Some([digit(0, 2)?, digit(2, 2)?, digit(4, 2)?]),
        3 => Some([digit(0, 1)? * 17, digit(1, 1)? * 17, digit(2, 1)? * 17]),
        _ => None,
    }
}

/// The lightest shade of `rgb` (the same hue, each channel scaled down) with
/// [`MIN_CONTRAST`] on white: what to suggest for a colour that is too pale.
fn darkest_needed(rgb: [u8; 3]) -> [u8; 3] {
    (0..=100u16)
        .rev()
        .map(|percent| rgb.map(|c| (u16::from(c) * percent / 100) as u8))
        .find(|shade| contrast_with_white(*shade) >= MIN_CONTRAST)
        .unwrap_or([0, 0, 0])
}

/// WCAG 2.1's contrast ratio of a colour with white.
pub fn contrast_with_white(rgb: [u8; 3]) -> f64 {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * linear(rgb[0]) + 0.7152 * linear(rgb[1]) + 0.0722 * linear(rgb[2]);
    1.05 / (luminance + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_accent_is_refused_below_aa_contrast_and_kept_above_it() {
        // #767676 is the lightest grey with 4.5:1 on white; #777777 falls just short.
        assert!(Accent::parse("#767676").is_ok());
        let refused = Accent::parse("#777777").expect_err("4.48:1");
        assert!(refused.contains("4.5:1") && refused.contains("4.48:1"), "{refused}");
        // Yellow on white, with a shade of it that passes.
        let yellow = Accent::parse("#ffcc00").expect_err("yellow on white");
        let suggested = yellow
            .split("e.g. \"")
            .nth(1)
            .and_then(|s| s.get(..7))
            .expect("a suggestion");
        assert!(Accent::parse(suggested).is_ok(), "{yellow}");
        assert_eq!(
            Accent::parse("#1A5FB4").map(|a| a.css().to_string()),
            Ok("#1a5fb4".into())
        );
        assert_eq!(Accent::parse("#036").map(|a| a.css().to_string()), Ok("#003366".into()));
        for bad in ["1a5fb4", "#1a5fb", "#1a5fbz", "red", "#1a5fb4;}body{display:none", ""] {
            assert!(Accent::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_contrast_is_wcags() {
        assert!((contrast_with_white([0, 0, 0]) - 21.0).abs() < 1e-9);
        assert!((contrast_with_white([255, 255, 255]) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_logo_is_known_by_its_bytes() {
        assert_eq!(image_kind(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_kind(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(image_kind(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(
            image_kind(b"<?xml version=\"1.0\"?>\n<!-- logo -->\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Some("image/svg+xml")
        );
        assert_eq!(image_kind(b"<html><svg/></html>"), None);
        assert_eq!(image_kind(b"GIF89a"), None);
    }
}
