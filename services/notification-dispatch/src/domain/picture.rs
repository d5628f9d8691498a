//! An advertisement's picture: base64 (standard alphabet, optionally as a `data:` URL) of a
//! PNG or a JPEG, recognised by its signature, no larger than configured.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
        }
    }
}

/// A checked picture, kept as the canonical base64 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub format: Format,
    pub base64: String,
}

pub fn parse(text: &str, max_bytes: usize) -> Result<Picture, String> {
    let text = text.trim();
    let encoded = match text.strip_prefix("data:") {
        Some(rest) => rest
            .split_once(";base64,")
            .map(|(_, data)| data)
            .ok_or("a data: URL must be base64 (data:image/png;base64,…)")?,
        None => text,
    };
    // Base64 grows by 4/3: refuse before decoding what cannot fit.
    if encoded.len() / 4 * 3 > max_bytes + 3 {
        return Err(format!("must be at most {max_bytes} bytes"));
    }
    let compact: String = encoded.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = STANDARD
        .decode(compact)
        .map_err(|_| "must be base64 (standard alphabet)".to_owned())?;
    if bytes.len() > max_bytes {
        return Err(format!("must be at most {max_bytes} bytes"));
    }
    let format = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Format::Png
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Format::Jpeg
    } else {
        return Err("must be a PNG or a JPEG image".to_owned());
    };
    Ok(Picture {
        format,
        base64: STANDARD.encode(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn pictures_are_png_or_jpeg_base64_within_the_size() {
        let png = STANDARD.encode(PNG);
        assert_eq!(parse(&png, 1024).unwrap().format, Format::Png);
        assert_eq!(
            parse(&format!("data:image/png;base64,{png}"), 1024).unwrap().base64,
            png
        );
        let jpeg = STANDARD.encode([0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]);
        assert_eq!(parse(&jpeg, 1024).unwrap().format, Format::Jpeg);
        assert!(parse("not base64!", 1024).unwrap_err().contains("base64"));
        assert!(
            parse(&STANDARD.encode(b"GIF89a...."), 1024)
                .unwrap_err()
                .contains("PNG")
        );
        assert!(parse(&png, 4).unwrap_err().contains("at most"));
        let big = STANDARD.encode(vec![0u8; 4096]);
        assert!(parse(&big, 1024).unwrap_err().contains("at most"));
    }
}
