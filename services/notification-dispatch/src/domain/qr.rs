//! Tickets and coupons as QR codes: the code's text rendered as an SVG image that travels with
//! the message (inline in e-mail and the inbox, as data for push).

use qrcode::QrCode;
use qrcode::render::svg;

/// The longest text a ticket or coupon may encode (a QR code holds about 2,900 bytes at the
/// lowest correction level; this keeps medium correction and a readable size).
pub const MAX_DATA: usize = 1024;

pub fn svg(data: &str) -> Result<String, String> {
    let code = QrCode::new(data.as_bytes()).map_err(|e| format!("cannot be encoded as a QR code: {e}"))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn codes_render_as_svg() {
        let image = super::svg("TICKET-2026-0042").unwrap();
        assert!(image.starts_with("<?xml"), "{image}");
        assert!(image.contains("<svg"));
        assert!(image.contains("<path"), "modules drawn");
    }
}
