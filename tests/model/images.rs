//! Decompression-bomb limits: images whose header claims more than `MAX_PIXELS` are refused from
//! the header, before any pixel buffer is allocated, whatever the format.

use std::path::Path;
use std::time::{Duration, Instant};

use fitcheck::model::pixels::MAX_PIXELS;

use crate::common::{open, MODEL};

/// CRC-32 (IEEE) as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend(kind);
    out.extend(data);
    let mut checked = kind.to_vec();
    checked.extend(data);
    out.extend(crc32(&checked).to_be_bytes());
    out
}

/// A PNG of a few dozen bytes whose (valid) IHDR claims `w × h` RGB pixels, with a truncated IDAT.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x01]));
    out.extend(chunk(b"IEND", &[]));
    out
}

/// The fixture JPEG with its SOF0 header rewritten to claim `w × h`.
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut bytes = std::fs::read("tests/fixtures/siglip/images/photo.jpg").unwrap();
    let sof = bytes.windows(2).position(|m| m == [0xFF, 0xC0]).expect("a baseline JPEG has SOF0");
    // FF C0, length (2), precision (1), height (2), width (2).
    bytes[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
    bytes[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
    bytes
}

#[test]
fn images_claiming_too_many_pixels_are_refused_from_the_header() {
    let model = open(Path::new(MODEL));
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("bomb.png", png_claiming(20_000, 20_000), "20000x20000 (400000000 pixels)"),
        ("bomb.jpg", jpeg_claiming(30_000, 30_000), "30000x30000 (900000000 pixels)"),
        // The extension does not matter: the format is read from the bytes.
        ("bomb.webp", png_claiming(200_000, 1_000), "200000x1000 (200000000 pixels)"),
    ];
    for (name, bytes, size) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let start = Instant::now();
        let err = model.pixel_pipeline().resized(&path).unwrap_err().to_string();
        let took = start.elapsed();
        assert_eq!(
            err,
            format!(
                "{}: cannot read image: the image is {size}, over the limit of {MAX_PIXELS} pixels (twice Pillow's \
                 MAX_IMAGE_PIXELS): refused as a possible decompression bomb; resize it first",
                path.display()
            )
        );
        assert!(took < Duration::from_millis(500), "{name}: refused after {took:?}");
    }
    assert_eq!(MAX_PIXELS, 2 * 89_478_485);
}

#[test]
fn images_within_the_limit_still_decode() {
    let model = open(Path::new(MODEL));
    let dir = tempfile::tempdir().unwrap();
    // A 4x4 PNG with truncated data: the size passes, and the error is the decoder's, not the limit.
    let path = dir.path().join("small.png");
    std::fs::write(&path, png_claiming(4, 4)).unwrap();
    let err = model.pixel_pipeline().resized(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: cannot read image: ", path.display())), "{err}");
    assert!(!err.contains("decompression bomb"), "{err}");
}
