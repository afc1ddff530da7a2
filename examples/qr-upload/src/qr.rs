//! The QR code the desktop page shows: the phone URL of a session, drawn by the app as SVG
//! (no script library, nothing fetched at run time).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The phone URL as an SVG QR code, or `None` when it is too long to encode.
///
/// Error correction level M (15 % of the code may be damaged or glared) suits a code read
/// off a screen; the quiet zone the standard asks for is included, so the page needs no
/// margin around the image to keep it scannable.
pub(crate) fn svg(url: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(256, 256)
            .dark_color(svg::Color("#111111"))
            .light_color(svg::Color("#ffffff"))
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rasterizes the SVG the app serves (its rectangles `M{x} {y}h{w}v{h}H{x}V{y}`) and
    /// reads it back with a QR decoder, as a phone's camera would.
    fn decode(svg: &str) -> String {
        let attribute = |name: &str| -> usize {
            let start = svg.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
            let end = start + svg[start..].find('"').expect("closing quote");
            svg[start..end].parse().expect("a number")
        };
        let (width, height) = (attribute("width"), attribute("height"));
        let mut dark = vec![false; width * height];
        let path_start = svg.find(" d=\"").expect("a path") + 4;
        let path = &svg[path_start..path_start + svg[path_start..].find('"').expect("end")];
        for rect in path.split('M').filter(|r| !r.is_empty()) {
            let numbers: Vec<usize> = rect
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .map(|n| n.parse().expect("a number"))
                .collect();
            let [left, top, w, h, ..] = numbers[..] else {
                panic!("unexpected path segment {rect:?}");
            };
            for y in top..top + h {
                for x in left..left + w {
                    dark[y * width + x] = true;
                }
            }
        }
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
            if dark[y * width + x] { 0 } else { 255 }
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the image");
        grids[0].decode().expect("a readable QR code").1
    }

    #[test]
    fn the_code_reads_back_as_the_phone_url() {
        let url = "http://192.168.1.20:3006/upload/0f6c0b4e9d2a4f7e8c1b5a3d2e4f6a8b";
        let image = svg(url).expect("encodable");
        assert!(image.contains("<svg"), "an SVG document");
        assert_eq!(decode(&image), url);
    }

    #[test]
    fn a_url_too_long_for_any_qr_code_is_refused() {
        assert!(svg(&"x".repeat(4000)).is_none());
    }
}
