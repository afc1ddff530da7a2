//! What an uploaded file is: its image type, read from its first bytes, and a name safe to
//! show.
//!
//! The type a phone declares is not trusted: photos are served back from the app's own
//! origin, so a file declared `image/png` that is really HTML or SVG (which can carry
//! scripts) would run as the app. Only raster formats recognized by their signature are
//! accepted, and they are served with the sniffed type and `nosniff`.

/// The image formats the app accepts, with the signature that identifies each.
///
/// ```text
/// PNG   89 50 4E 47 0D 0A 1A 0A
/// JPEG  FF D8 FF
/// GIF   "GIF87a" | "GIF89a"
/// WebP  "RIFF" <4 bytes> "WEBP"
/// HEIC, HEIF, AVIF: <4 bytes> "ftyp" <brand>
/// ```
pub(crate) fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Some("image/gif");
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    // ISO base media files (what iPhones and recent Androids write) name their kind in the
    // major brand of the `ftyp` box that opens the file.
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return match &bytes[8..12] {
            b"avif" | b"avis" => Some("image/avif"),
            b"heic" | b"heix" | b"heim" | b"heis" => Some("image/heic"),
            b"mif1" | b"msf1" | b"heif" => Some("image/heif"),
            _ => None,
        };
    }
    None
}

/// The formats [`sniff`] recognizes, for messages.
pub(crate) const ACCEPTED: &str = "PNG, JPEG, GIF, WebP, HEIC/HEIF or AVIF";

/// Longest name kept, in characters.
const MAX_NAME: usize = 120;

/// A display name for an upload: the phone's file name without any path, control
/// characters removed, cut to a sane length; `photo` when nothing is left.
pub(crate) fn display_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let name: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        "photo".to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raster_formats_are_recognized_by_their_signature() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 16]), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Some("image/heic"));
        assert_eq!(sniff(b"\0\0\0\x1cftypavif\0\0\0\0"), Some("image/avif"));
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0"), Some("image/heif"));
    }

    #[test]
    fn documents_posing_as_images_are_refused() {
        assert_eq!(sniff(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), None);
        assert_eq!(sniff(b"<!doctype html><script>alert(1)</script>"), None);
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0"), None, "an MP4 video");
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\x89PN"), None);
    }

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(display_name("IMG_0042.JPG"), "IMG_0042.JPG");
        assert_eq!(display_name("C:\\Users\\me\\cat.png"), "cat.png");
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("a\r\nb\u{0}.png"), "ab.png");
        assert_eq!(display_name("  "), "photo");
        assert_eq!(display_name(&"x".repeat(500)).chars().count(), MAX_NAME);
    }
}
