//! Image file → the pixel tensor a SigLIP vision tower expects, matching the users' Python pipeline:
//! `PIL.Image.open(p).convert('RGB').resize((S, S), BICUBIC)`, then `(x / 255 - mean) / std`, CHW.
//!
//! Decoding goes through `image` (PNG, JPEG, WebP, GIF, BMP, TIFF). The conversion to RGB copies
//! PIL's quirks: alpha is dropped without blending (unless [`Alpha::White`] or [`Alpha::Black`]
//! asks for compositing), palette and grey images are expanded, 16-bit grey is clipped at 255 (PIL's
//! `I;16` → `RGB`), other 16-bit images keep their high byte, and EXIF orientation is ignored. The
//! squash resize is PIL's own 8-bit resampling re-implemented ([`pil_bicubic`]): cubic kernel with
//! a = -0.5 widened by the scale factor when shrinking, coefficients in 22-bit fixed point,
//! horizontal pass first, rounding to 8 bits between the passes. `image`'s Catmull-Rom resize uses
//! the same kernel but rounds differently and is off by up to 13 levels on strong reductions.

use std::path::Path;

use image::{DynamicImage, RgbImage};

use crate::embed::Alpha;
use crate::error::{Error, Result};

/// Decoding, conversion, resize and normalisation settings of one checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelPipeline {
    /// Output side in pixels (the image is squashed to `size × size`).
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub alpha: Alpha,
}

fn image_error(path: &Path, message: impl ToString) -> Error {
    Error::Image { path: path.to_owned(), message: message.to_string() }
}

/// Composites `c` with opacity `a` over `bg`, rounding like integer image code does.
fn over(c: u8, a: u8, bg: u8) -> u8 {
    let (c, a, bg) = (u32::from(c), u32::from(a), u32::from(bg));
    ((c * a + bg * (255 - a) + 127) / 255) as u8
}

fn high_byte(v: u16) -> u8 {
    (v >> 8) as u8
}

impl PixelPipeline {
    /// The preprocessing in words, for fingerprints.
    pub fn describe(&self) -> String {
        format!(
            "squash {s}x{s} bicubic, alpha {}, mean {:?} std {:?}",
            self.alpha.key(),
            self.mean,
            self.std,
            s = self.size
        )
    }

    /// Decodes `path` and converts it to 8-bit RGB (full size).
    pub fn rgb(&self, path: &Path) -> Result<RgbImage> {
        let reader = image::ImageReader::open(path).map_err(|e| image_error(path, e))?;
        let reader = reader.with_guessed_format().map_err(|e| image_error(path, e))?;
        let decoded = if reader.format() == Some(image::ImageFormat::Jpeg) {
            decode_jpeg(path)?
        } else {
            reader.decode().map_err(|e| image_error(path, e))?
        };
        Ok(self.to_rgb(decoded))
    }

    /// Converts like PIL's `convert('RGB')`, or composites when [`Alpha`] asks for it.
    fn to_rgb(&self, img: DynamicImage) -> RgbImage {
        let (w, h) = (img.width(), img.height());
        let bg = match self.alpha {
            Alpha::Drop => None,
            Alpha::White => Some(255u8),
            Alpha::Black => Some(0u8),
        };
        // Every pixel as (r, g, b, a) in 8 bits, the PIL way.
        let rgba: Vec<[u8; 4]> = match img {
            DynamicImage::ImageRgb8(i) => return i,
            DynamicImage::ImageLuma8(i) => i.pixels().map(|p| [p[0], p[0], p[0], 255]).collect(),
            DynamicImage::ImageLumaA8(i) => i.pixels().map(|p| [p[0], p[0], p[0], p[1]]).collect(),
            DynamicImage::ImageRgba8(i) => i.pixels().map(|p| p.0).collect(),
            DynamicImage::ImageLuma16(i) => i
                .pixels()
                .map(|p| {
                    let v = p[0].min(255) as u8;
                    [v, v, v, 255]
                })
                .collect(),
            DynamicImage::ImageLumaA16(i) => i
                .pixels()
                .map(|p| {
                    let v = high_byte(p[0]);
                    [v, v, v, high_byte(p[1])]
                })
                .collect(),
            DynamicImage::ImageRgb16(i) => {
                i.pixels().map(|p| [high_byte(p[0]), high_byte(p[1]), high_byte(p[2]), 255]).collect()
            }
            DynamicImage::ImageRgba16(i) => i.pixels().map(|p| p.0.map(high_byte)).collect(),
            other => other.to_rgba8().pixels().map(|p| p.0).collect(),
        };
        let mut out = RgbImage::new(w, h);
        for (dst, [r, g, b, a]) in out.pixels_mut().zip(rgba) {
            dst.0 = match bg {
                None => [r, g, b],
                Some(bg) => [over(r, a, bg), over(g, a, bg), over(b, a, bg)],
            };
        }
        out
    }

    /// The image at `path`, converted and squash-resized, as 8-bit CHW values (`3 × size × size`).
    pub fn resized(&self, path: &Path) -> Result<Vec<u8>> {
        let rgb = self.rgb(path)?;
        if rgb.width() == 0 || rgb.height() == 0 {
            return Err(image_error(path, "the image is empty (0 pixels)"));
        }
        let resized = pil_bicubic(&rgb, self.size, self.size);
        let plane = (self.size * self.size) as usize;
        let mut chw = vec![0u8; 3 * plane];
        for (i, p) in resized.pixels().enumerate() {
            for c in 0..3 {
                chw[c * plane + i] = p[c];
            }
        }
        Ok(chw)
    }

    /// Normalises 8-bit CHW values with the checkpoint's mean and std.
    pub fn normalize(&self, chw: &[u8]) -> Vec<f32> {
        let plane = (self.size * self.size) as usize;
        chw.iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = (i / plane).min(2);
                (f32::from(v) / 255.0 - self.mean[c]) / self.std[c]
            })
            .collect()
    }
}

/// Decodes a JPEG with `jpeg-decoder`, whose fancy chroma upsampling and integer IDCT follow
/// libjpeg (what PIL uses) more closely than `image`'s default decoder does.
fn decode_jpeg(path: &Path) -> Result<DynamicImage> {
    let file = std::fs::File::open(path).map_err(|e| image_error(path, e))?;
    let mut decoder = jpeg_decoder::Decoder::new(std::io::BufReader::new(file));
    let data = decoder.decode().map_err(|e| image_error(path, e))?;
    let info = decoder.info().ok_or_else(|| image_error(path, "no JPEG header"))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let bad = || image_error(path, "JPEG data does not match its header");
    use jpeg_decoder::PixelFormat;
    Ok(match info.pixel_format {
        PixelFormat::L8 => DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, data).ok_or_else(bad)?),
        PixelFormat::RGB24 => DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, data).ok_or_else(bad)?),
        PixelFormat::L16 => {
            let values = data.chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]])).collect();
            DynamicImage::ImageLuma16(image::ImageBuffer::from_raw(w, h, values).ok_or_else(bad)?)
        }
        PixelFormat::CMYK32 => {
            // PIL's `CMYK` → `RGB` rule, R = (255 - C)·(255 - K) / 255. CMYK JPEGs are rare in
            // catalogs and not covered by the fidelity fixtures.
            let rgb = data
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u32::from(p[3]);
                    [0, 1, 2].map(|i| ((255 - u32::from(p[i])) * k / 255) as u8)
                })
                .collect();
            DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, rgb).ok_or_else(bad)?)
        }
    })
}

/// PIL's bicubic kernel (a = -0.5).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point precision of PIL's 8-bit resampling coefficients.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output index, the first input index and the fixed-point weights (PIL's
/// `precompute_coeffs` + `normalize_coeffs_8bpc`).
fn coefficients(in_size: u32, out_size: u32) -> Vec<(usize, Vec<i64>)> {
    let scale = f64::from(in_size) / f64::from(out_size);
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (f64::from(xx) + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size)) as usize;
            let weights: Vec<f64> = (xmin..xmax).map(|x| bicubic((x as f64 - center + 0.5) / filterscale)).collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w } * f64::from(1u32 << PRECISION_BITS);
                    if w < 0.0 {
                        (w - 0.5) as i64
                    } else {
                        (w + 0.5) as i64
                    }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

/// One 8-bit output value from a fixed-point weighted sum, as PIL's `clip8` does.
fn clip8(sum: i64) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// PIL's `Image.resize((w, h), BICUBIC)` for 8-bit RGB: horizontal pass, then vertical.
pub fn pil_bicubic(src: &RgbImage, w: u32, h: u32) -> RgbImage {
    let (sw, sh) = (src.width(), src.height());
    let half = 1i64 << (PRECISION_BITS - 1);
    let horizontal = if sw == w {
        src.clone()
    } else {
        let coeffs = coefficients(sw, w);
        let mut tmp = RgbImage::new(w, sh);
        for y in 0..sh {
            for (x, (start, k)) in coeffs.iter().enumerate() {
                let mut sums = [half; 3];
                for (i, &wt) in k.iter().enumerate() {
                    let p = src.get_pixel((start + i) as u32, y);
                    for c in 0..3 {
                        sums[c] += i64::from(p[c]) * wt;
                    }
                }
                tmp.put_pixel(x as u32, y, image::Rgb(sums.map(clip8)));
            }
        }
        tmp
    };
    if sh == h {
        return horizontal;
    }
    let coeffs = coefficients(sh, h);
    let mut out = RgbImage::new(w, h);
    for (y, (start, k)) in coeffs.iter().enumerate() {
        for x in 0..w {
            let mut sums = [half; 3];
            for (i, &wt) in k.iter().enumerate() {
                let p = horizontal.get_pixel(x, (start + i) as u32);
                for c in 0..3 {
                    sums[c] += i64::from(p[c]) * wt;
                }
            }
            out.put_pixel(x, y as u32, image::Rgb(sums.map(clip8)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compositing_rounds_to_the_nearest_level() {
        for (c, a, bg, expected) in [(200, 255, 0, 200), (200, 0, 255, 255), (200, 128, 0, 100), (0, 128, 255, 127)] {
            assert_eq!(over(c, a, bg), expected, "c={c} a={a} bg={bg}");
        }
    }
}
