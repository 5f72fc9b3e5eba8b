//! Image file → the pixel tensor a SigLIP vision tower expects, in one of two orders ([`Pipeline`]):
//!
//! - `rgb_first` (the default): `PIL.Image.open(p).convert('RGB').resize((S, S), BICUBIC)`, what the
//!   team's scripts and Marqo's processor do;
//! - `open_clip`: `preprocess(Image.open(p))` of plain open_clip, which resizes in the image's own
//!   Pillow mode and converts to RGB afterwards. Pillow resizes palette (`P`) and bilevel (`1`)
//!   images with NEAREST whatever filter is asked, RGBA and LA premultiplied by alpha (then divided
//!   back), 16-bit grey (`I;16`) in floating point, and CMYK per channel before converting.
//!
//! Then `(x / 255 - mean) / std`, CHW, for both.
//!
//! CLIP checkpoints resize differently ([`PixelPipeline::resized_center_crop`]): the shortest side to the
//! model's size, the other in proportion (`int(size · long / short)`, as torchvision and transformers
//! compute it), then the center square, its offset rounded as the checkpoint's Python side rounds it
//! ([`CropRounding`]). The same two orders apply, with the crop between the resize and `convert('RGB')`
//! (a crop only selects pixels, so converting before or after it is the same).
//!
//! Decoding goes through `image` (PNG, WebP, GIF, BMP, TIFF) and `jpeg-decoder` (JPEG). The
//! Pillow mode an image opens in is read from the decoded colour type and, where `image` expands it
//! away (palettes, 1-bit grey), from the file header ([`opens_as_palette_or_bilevel`]). The
//! conversion to RGB copies Pillow's rules: alpha is dropped without blending (unless [`Alpha::White`]
//! or [`Alpha::Black`] asks for compositing, `rgb_first` only), palette and grey images are expanded,
//! 16-bit grey is clipped at 255 (`I;16` → `RGB`), other 16-bit images keep their high byte (Pillow's
//! 16-bit raw modes), CMYK is `255 - K - C·(255 - K)/255` rounded, EXIF orientation is ignored. The
//! resizes are Pillow's own arithmetic re-implemented ([`resample_u8`], [`resample_u16`],
//! [`pil_nearest`]): cubic kernel with a = -0.5 widened by the scale factor when shrinking,
//! coefficients in 22-bit fixed point for 8-bit bands and in f64 for 16-bit ones, horizontal pass
//! first, rounding between the passes. `image`'s Catmull-Rom resize uses the same kernel but rounds
//! differently and is off by up to 13 levels on strong reductions.
//!
//! Decompression bombs: an image over [`MAX_PIXELS`] is refused from its header, before any pixel
//! buffer is allocated, and decoders may not allocate more than [`MAX_DECODER_BYTES`].

use std::io::Read;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, RgbImage};

use crate::embed::{Alpha, Pipeline};
use crate::error::{Error, Result};

/// The most pixels (width × height) an image may have: twice Pillow's `MAX_IMAGE_PIXELS`
/// (89,478,485), the size above which Pillow refuses to open an image (`DecompressionBombError`).
/// A 13,000 × 13,000 photo passes; a PNG of a few KB that claims 20,000 × 20,000 does not.
pub const MAX_PIXELS: u64 = 178_956_970;

/// The most memory a decoder may allocate: 8 bytes (16-bit RGBA) for each of [`MAX_PIXELS`].
pub const MAX_DECODER_BYTES: u64 = 8 * MAX_PIXELS;

/// Decoding, conversion, resize and normalisation settings of one checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelPipeline {
    /// Output side in pixels (the image is squashed to `size × size`).
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub alpha: Alpha,
    pub pipeline: Pipeline,
}

fn image_error(path: &Path, message: impl ToString) -> Error {
    Error::Image { path: path.to_owned(), message: message.to_string() }
}

/// Composites `c` with opacity `a` over `bg`, rounding like integer image code does.
fn over(c: u8, a: u8, bg: u8) -> u8 {
    let (c, a, bg) = (u32::from(c), u32::from(a), u32::from(bg));
    ((c * a + bg * (255 - a) + 127) / 255) as u8
}

/// Writes RGBA pixels into `dst` (RGB, 3 bytes a pixel): alpha dropped, or composited over `bg`.
fn composite(dst: &mut [u8], rgba: impl Iterator<Item = [u8; 4]>, bg: Option<u8>) {
    for (d, [r, g, b, a]) in dst.chunks_exact_mut(3).zip(rgba) {
        d.copy_from_slice(&match bg {
            None => [r, g, b],
            Some(bg) => [over(r, a, bg), over(g, a, bg), over(b, a, bg)],
        });
    }
}

fn high_byte(v: u16) -> u8 {
    (v >> 8) as u8
}

/// Pillow's `MULDIV255`: `a · b / 255`, rounded, in integers.
fn muldiv255(a: u8, b: u8) -> u8 {
    let t = u32::from(a) * u32::from(b) + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// Pillow's CMYK → RGB for one channel: `255 - K - C·(255 - K)/255` (rounded), clipped.
fn cmyk_channel(c: u8, k: u8) -> u8 {
    let nk = 255 - k;
    nk - muldiv255(c, nk)
}

/// An image as decoded, with what Pillow would make of it.
struct Decoded {
    image: Source,
    /// Pillow opens it as a palette (`P`) or bilevel (`1`) image, which it resizes with NEAREST.
    nearest: bool,
    /// The alpha `image` decoded is a PNG `tRNS` colour key on a grey or RGB image, which Pillow
    /// keeps aside (`info["transparency"]`) rather than as a band: the image resizes as L or RGB.
    colour_key: bool,
}

/// Decoded samples: what `image` gives, or a JPEG's CMYK (which `image` cannot hold).
enum Source {
    Dynamic(DynamicImage),
    Cmyk { width: u32, height: u32, data: Vec<u8> },
}

impl Source {
    fn dimensions(&self) -> (u32, u32) {
        match self {
            Source::Dynamic(i) => (i.width(), i.height()),
            Source::Cmyk { width, height, .. } => (*width, *height),
        }
    }
}

/// Refuses `width × height` over [`MAX_PIXELS`], naming the file, the size and the limit.
fn check_size(path: &Path, width: u64, height: u64) -> Result<()> {
    let pixels = width.saturating_mul(height);
    if pixels > MAX_PIXELS {
        return Err(image_error(
            path,
            format!(
                "the image is {width}x{height} ({pixels} pixels), over the limit of {MAX_PIXELS} pixels \
                 (twice Pillow's MAX_IMAGE_PIXELS): refused as a possible decompression bomb; resize it first"
            ),
        ));
    }
    Ok(())
}

impl PixelPipeline {
    /// The preprocessing in words, for fingerprints.
    pub fn describe(&self) -> String {
        match self.pipeline {
            Pipeline::RgbFirst => format!(
                "squash {s}x{s} bicubic, alpha {}, mean {:?} std {:?}",
                self.alpha.key(),
                self.mean,
                self.std,
                s = self.size
            ),
            Pipeline::OpenClip => format!(
                "open_clip pipeline: squash {s}x{s} bicubic in the source mode, then RGB, mean {:?} std {:?}",
                self.mean,
                self.std,
                s = self.size
            ),
        }
    }

    /// Decodes `path` and converts it to 8-bit RGB (full size), as `rgb_first` does.
    pub fn rgb(&self, path: &Path) -> Result<RgbImage> {
        let decoded = decode(path)?;
        Ok(self.to_rgb(decoded.image))
    }

    /// Converts like PIL's `convert('RGB')`, or composites when [`Alpha`] asks for it.
    fn to_rgb(&self, img: Source) -> RgbImage {
        let img = match img {
            Source::Dynamic(img) => img,
            Source::Cmyk { width, height, data } => {
                let rgb = data.chunks_exact(4).flat_map(|p| [0, 1, 2].map(|i| cmyk_channel(p[i], p[3]))).collect();
                return RgbImage::from_raw(width, height, rgb).unwrap_or_default();
            }
        };
        let (w, h) = (img.width(), img.height());
        let bg = match self.alpha {
            Alpha::Drop => None,
            Alpha::White => Some(255u8),
            Alpha::Black => Some(0u8),
        };
        // Every pixel as (r, g, b, a) in 8 bits, the PIL way, converted as it is read: no
        // intermediate copy of the pixels (a 1500×2000 RGBA photo is 12 MB).
        let img = match img {
            DynamicImage::ImageRgb8(i) => return i, // already RGB: no copy (JPEGs)
            other => other,
        };
        let mut out = RgbImage::new(w, h);
        let dst = out.as_mut();
        match img {
            DynamicImage::ImageLuma8(i) => composite(dst, i.pixels().map(|p| [p[0], p[0], p[0], 255]), bg),
            DynamicImage::ImageLumaA8(i) => composite(dst, i.pixels().map(|p| [p[0], p[0], p[0], p[1]]), bg),
            DynamicImage::ImageRgba8(i) => match bg {
                // The common case (cut-out product photos): keep the first three bytes of four,
                // straight from the raw bytes (about 3 ms of a 1500×2000 photo faster than `composite`).
                None => dst
                    .chunks_exact_mut(3)
                    .zip(i.as_raw().chunks_exact(4))
                    .for_each(|(d, s)| d.copy_from_slice(&s[..3])),
                Some(_) => composite(dst, i.pixels().map(|p| p.0), bg),
            },
            DynamicImage::ImageLuma16(i) => composite(
                dst,
                i.pixels().map(|p| {
                    let v = p[0].min(255) as u8;
                    [v, v, v, 255]
                }),
                bg,
            ),
            DynamicImage::ImageLumaA16(i) => composite(
                dst,
                i.pixels().map(|p| {
                    let v = high_byte(p[0]);
                    [v, v, v, high_byte(p[1])]
                }),
                bg,
            ),
            DynamicImage::ImageRgb16(i) => {
                composite(dst, i.pixels().map(|p| [high_byte(p[0]), high_byte(p[1]), high_byte(p[2]), 255]), bg)
            }
            DynamicImage::ImageRgba16(i) => composite(dst, i.pixels().map(|p| p.0.map(high_byte)), bg),
            other => composite(dst, other.to_rgba8().pixels().map(|p| p.0), bg),
        }
        out
    }

    /// The image at `path`, converted and squash-resized as the pipeline says, as 8-bit CHW values
    /// (`3 × size × size`).
    pub fn resized(&self, path: &Path) -> Result<Vec<u8>> {
        let decoded = decode_nonempty(path)?;
        let resized = self.resize_to(decoded, self.size, self.size);
        Ok(self.chw(&resized, 0, 0))
    }

    /// The image at `path` as CLIP's preprocessing sees it: shortest side resized to the pipeline's size
    /// ([`shortest_side`]), then the center `size × size` square ([`crop_offset`]), as 8-bit CHW values.
    pub fn resized_center_crop(&self, path: &Path, rounding: CropRounding) -> Result<Vec<u8>> {
        let decoded = decode_nonempty(path)?;
        let (w, h) = decoded.image.dimensions();
        let (rw, rh) = shortest_side(w, h, self.size);
        let resized = self.resize_to(decoded, rw, rh);
        let (left, top) = (crop_offset(rw, self.size, rounding), crop_offset(rh, self.size, rounding));
        Ok(self.chw(&resized, left, top))
    }

    /// The `size × size` square of `img` at (`left`, `top`) as CHW values.
    fn chw(&self, img: &RgbImage, left: u32, top: u32) -> Vec<u8> {
        let s = self.size;
        let plane = (s * s) as usize;
        let mut chw = vec![0u8; 3 * plane];
        for y in 0..s {
            for x in 0..s {
                let p = img.get_pixel(left + x, top + y);
                let i = (y * s + x) as usize;
                for c in 0..3 {
                    chw[c * plane + i] = p[c];
                }
            }
        }
        chw
    }

    /// `decoded` converted and resized to `out_w × out_h` in the pipeline's order.
    fn resize_to(&self, decoded: Decoded, out_w: u32, out_h: u32) -> RgbImage {
        match self.pipeline {
            Pipeline::RgbFirst => {
                let rgb = self.to_rgb(decoded.image);
                if rgb.dimensions() == (out_w, out_h) {
                    rgb // Pillow returns a copy; the bicubic pass would also be the identity
                } else {
                    pil_bicubic(&rgb, out_w, out_h)
                }
            }
            Pipeline::OpenClip => self.open_clip(decoded, out_w, out_h),
        }
    }

    /// open_clip's order: resize in the Pillow mode the file opens in, then `convert('RGB')`.
    fn open_clip(&self, decoded: Decoded, ow: u32, oh: u32) -> RgbImage {
        let (w, h) = decoded.image.dimensions();
        let same = w == ow && h == oh; // Pillow returns a copy: no resampling, no premultiplication
        if decoded.nearest {
            // P and 1: NEAREST picks source pixels, so looking the palette up first is the same.
            let rgb = PixelPipeline { alpha: Alpha::Drop, ..self.clone() }.to_rgb(decoded.image);
            return if same { rgb } else { pil_nearest(&rgb, ow, oh) };
        }
        let resize = |data: &[u8], channels: usize| {
            if same {
                data.to_vec()
            } else {
                resample_u8(data, w, h, channels, ow, oh)
            }
        };
        let image = match decoded.image {
            Source::Dynamic(DynamicImage::ImageLumaA8(i)) if decoded.colour_key => {
                Source::Dynamic(DynamicImage::ImageLuma8(DynamicImage::ImageLumaA8(i).to_luma8()))
            }
            Source::Dynamic(DynamicImage::ImageRgba8(i)) if decoded.colour_key => {
                Source::Dynamic(DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(i).to_rgb8()))
            }
            Source::Dynamic(DynamicImage::ImageLumaA16(i)) if decoded.colour_key => {
                Source::Dynamic(DynamicImage::ImageLuma16(DynamicImage::ImageLumaA16(i).to_luma16()))
            }
            Source::Dynamic(DynamicImage::ImageRgba16(i)) if decoded.colour_key => {
                Source::Dynamic(DynamicImage::ImageRgb16(DynamicImage::ImageRgba16(i).to_rgb16()))
            }
            other => other,
        };
        let rgb: Vec<u8> = match image {
            Source::Cmyk { data, .. } => {
                resize(&data, 4).chunks_exact(4).flat_map(|p| [0, 1, 2].map(|i| cmyk_channel(p[i], p[3]))).collect()
            }
            Source::Dynamic(img) => match img {
                DynamicImage::ImageLuma8(i) => resize(i.as_raw(), 1).iter().flat_map(|&v| [v; 3]).collect(),
                DynamicImage::ImageRgb8(i) => resize(i.as_raw(), 3),
                DynamicImage::ImageLuma16(i) => {
                    let out = if same { i.as_raw().clone() } else { resample_u16(i.as_raw(), w, h, ow, oh) };
                    out.iter().flat_map(|&v| [v.min(255) as u8; 3]).collect()
                }
                DynamicImage::ImageLumaA8(i) => premultiplied(i.as_raw(), 2, same, resize),
                DynamicImage::ImageLumaA16(i) => {
                    premultiplied(&i.as_raw().iter().map(|&v| high_byte(v)).collect::<Vec<_>>(), 2, same, resize)
                }
                DynamicImage::ImageRgba8(i) => premultiplied(i.as_raw(), 4, same, resize),
                DynamicImage::ImageRgb16(i) => resize(&i.as_raw().iter().map(|&v| high_byte(v)).collect::<Vec<_>>(), 3),
                DynamicImage::ImageRgba16(i) => {
                    premultiplied(&i.as_raw().iter().map(|&v| high_byte(v)).collect::<Vec<_>>(), 4, same, resize)
                }
                // Float images (no Pillow mode of their own here): as 8-bit RGBA.
                other => premultiplied(other.to_rgba8().as_raw(), 4, same, resize),
            },
        };
        RgbImage::from_raw(ow, oh, rgb).unwrap_or_default()
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

/// Pillow's resize of an `LA` or `RGBA` image (`channels` 2 or 4, alpha last): premultiply by
/// alpha (`La` / `RGBa`), resample, divide back (alpha 0 and 255 keep the values), then
/// `convert('RGB')`, which drops alpha. Without resampling (`same`), Pillow does none of it.
fn premultiplied(data: &[u8], channels: usize, same: bool, resize: impl Fn(&[u8], usize) -> Vec<u8>) -> Vec<u8> {
    let colour = channels - 1;
    let to_rgb = |p: &[u8]| if colour == 1 { [p[0]; 3] } else { [p[0], p[1], p[2]] };
    if same {
        return data.chunks_exact(channels).flat_map(to_rgb).collect();
    }
    let mut pre = data.to_vec();
    for p in pre.chunks_exact_mut(channels) {
        let a = p[colour];
        for c in &mut p[..colour] {
            *c = muldiv255(*c, a);
        }
    }
    let mut out = resize(&pre, channels);
    for p in out.chunks_exact_mut(channels) {
        let a = u32::from(p[colour]);
        if a != 0 && a != 255 {
            for c in &mut p[..colour] {
                *c = (255 * u32::from(*c) / a).min(255) as u8;
            }
        }
    }
    out.chunks_exact(channels).flat_map(to_rgb).collect()
}

/// How a center crop's offset is rounded when the margin is odd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropRounding {
    /// torchvision's `CenterCrop` (open_clip): `int(round(margin / 2))`, Python's round, half to even.
    Round,
    /// transformers' image processors: `margin // 2`.
    Floor,
}

impl CropRounding {
    pub fn key(self) -> &'static str {
        match self {
            CropRounding::Round => "round",
            CropRounding::Floor => "floor",
        }
    }
}

/// The size `w × h` is resized to when its shortest side becomes `size`: the other side is
/// `int(size · long / short)`, the quotient in f64 and truncated, as torchvision's `Resize(size)` and
/// transformers' `shortest_edge` compute it.
pub fn shortest_side(w: u32, h: u32, size: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let other = (f64::from(size) * f64::from(long) / f64::from(short)) as u32;
    if w <= h {
        (size, other)
    } else {
        (other, size)
    }
}

/// The offset of a centered `crop`-pixel window in `len` pixels (`crop ≤ len`).
pub fn crop_offset(len: u32, crop: u32, rounding: CropRounding) -> u32 {
    let margin = len.saturating_sub(crop);
    match rounding {
        CropRounding::Floor => margin / 2,
        // margin / 2 is k or k + 0.5; half goes to the even neighbour.
        CropRounding::Round => {
            let k = margin / 2;
            if margin % 2 == 1 && k % 2 == 1 {
                k + 1
            } else {
                k
            }
        }
    }
}

/// [`decode`], refusing an image without pixels.
fn decode_nonempty(path: &Path) -> Result<Decoded> {
    let decoded = decode(path)?;
    let (w, h) = decoded.image.dimensions();
    if w == 0 || h == 0 {
        return Err(image_error(path, "the image is empty (0 pixels)"));
    }
    Ok(decoded)
}

/// Decodes `path`, refusing images over [`MAX_PIXELS`] from their header, before any pixel buffer
/// is allocated.
fn decode(path: &Path) -> Result<Decoded> {
    let reader = image::ImageReader::open(path).map_err(|e| image_error(path, e))?;
    let mut reader = reader.with_guessed_format().map_err(|e| image_error(path, e))?;
    let format = reader.format();
    if format == Some(image::ImageFormat::Jpeg) {
        return Ok(Decoded { image: decode_jpeg(path)?, nearest: false, colour_key: false });
    }
    let mut head = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| image_error(path, e))?;
    file.take(1 << 16).read_to_end(&mut head).map_err(|e| image_error(path, e))?;
    if let Some((w, h)) = png_size(&head) {
        // Checked before the decoder sees the file: it may size buffers from the header.
        check_size(path, u64::from(w), u64::from(h))?;
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODER_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(|e| image_error(path, e))?;
    let (w, h) = decoder.dimensions();
    check_size(path, u64::from(w), u64::from(h))?;
    let image = DynamicImage::from_decoder(decoder).map_err(|e| image_error(path, e))?;
    let nearest = format.is_some_and(|f| opens_as_palette_or_bilevel(f, &head));
    // PNG colour types 0 (grey) and 2 (RGB) have no alpha band; a decoded alpha is their tRNS key.
    let colour_key = png_size(&head).is_some() && head.len() >= 26 && matches!(head[25], 0 | 2);
    Ok(Decoded { image: Source::Dynamic(image), nearest, colour_key })
}

/// Width and height from a PNG's IHDR.
fn png_size(head: &[u8]) -> Option<(u32, u32)> {
    if head.len() < 24 || &head[..8] != b"\x89PNG\r\n\x1a\n" || &head[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    Some((be(16), be(20)))
}

/// Whether Pillow opens a file of `format` starting with `head` as a palette (`P`) or bilevel
/// (`1`) image, which `image` expands to grey or RGB(A) on decoding:
/// - PNG: colour type 3 (palette), or 1-bit grey;
/// - GIF: always (the first frame has a palette);
/// - BMP: up to 8 bits per pixel, unless the palette is exactly the grey ramp 0, 1, 2, … of more
///   than two entries (Pillow opens that as `L`; a black-and-white pair is `1`);
/// - TIFF: photometric interpretation 3 (palette), or 1 bit per sample;
/// - WebP and JPEG never.
pub fn opens_as_palette_or_bilevel(format: image::ImageFormat, head: &[u8]) -> bool {
    use image::ImageFormat;
    match format {
        ImageFormat::Png => head.len() >= 26 && (head[25] == 3 || head[25] == 0 && head[24] == 1),
        ImageFormat::Gif => true,
        ImageFormat::Bmp => bmp_is_palette_or_bilevel(head).unwrap_or(false),
        ImageFormat::Tiff => tiff_is_palette_or_bilevel(head).unwrap_or(false),
        _ => false,
    }
}

fn bmp_is_palette_or_bilevel(head: &[u8]) -> Option<bool> {
    let u16_at = |i: usize| Some(u16::from_le_bytes([*head.get(i)?, *head.get(i + 1)?]));
    let u32_at =
        |i: usize| Some(u32::from_le_bytes([*head.get(i)?, *head.get(i + 1)?, *head.get(i + 2)?, *head.get(i + 3)?]));
    let header_size = u32_at(14)? as usize;
    let (bits, colors, entry) = if header_size == 12 {
        let bits = u16_at(24)?;
        (bits, 1u32 << bits.min(8), 3)
    } else {
        let bits = u16_at(28)?;
        let used = u32_at(46)?;
        (bits, if used == 0 { 1u32 << bits.min(8) } else { used }, 4)
    };
    if bits > 8 {
        return Some(false);
    }
    let palette = 14 + header_size;
    let grey = |i: usize, v: u8| -> Option<bool> {
        let at = palette + i * entry;
        Some(head.get(at..at + 3)? == [v, v, v])
    };
    let is_grey = if colors == 2 {
        grey(0, 0)? && grey(1, 255)?
    } else {
        (0..colors as usize).map(|i| grey(i, i as u8)).collect::<Option<Vec<bool>>>()?.iter().all(|&g| g)
    };
    // Grey with more than two entries opens as L (bicubic); everything else as 1 or P (nearest).
    Some(!(is_grey && colors > 2))
}

fn tiff_is_palette_or_bilevel(head: &[u8]) -> Option<bool> {
    let little = match head.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |i: usize| {
        let b = [*head.get(i)?, *head.get(i + 1)?];
        Some(if little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    };
    let u32_at = |i: usize| {
        let b = [*head.get(i)?, *head.get(i + 1)?, *head.get(i + 2)?, *head.get(i + 3)?];
        Some(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    let ifd = u32_at(4)? as usize;
    let count = usize::from(u16_at(ifd)?);
    let (mut photometric, mut bits) = (None, None);
    for k in 0..count.min(512) {
        let e = ifd + 2 + 12 * k;
        match u16_at(e)? {
            258 => bits = u16_at(e + 8),
            262 => photometric = u16_at(e + 8),
            _ => {}
        }
    }
    Some(photometric == Some(3) || bits == Some(1))
}

/// Decodes a JPEG with `jpeg-decoder`, whose fancy chroma upsampling and integer IDCT follow
/// libjpeg (what PIL uses) more closely than `image`'s default decoder does. The header is read
/// first: an image over [`MAX_PIXELS`] is refused before its pixels are allocated.
fn decode_jpeg(path: &Path) -> Result<Source> {
    let file = std::fs::File::open(path).map_err(|e| image_error(path, e))?;
    let mut decoder = jpeg_decoder::Decoder::new(std::io::BufReader::new(file));
    decoder.read_info().map_err(|e| image_error(path, e))?;
    let info = decoder.info().ok_or_else(|| image_error(path, "no JPEG header"))?;
    check_size(path, u64::from(info.width), u64::from(info.height))?;
    decoder.set_max_decoding_buffer_size(usize::try_from(MAX_DECODER_BYTES).unwrap_or(usize::MAX));
    let data = decoder.decode().map_err(|e| image_error(path, e))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let bad = || image_error(path, "JPEG data does not match its header");
    use jpeg_decoder::PixelFormat;
    Ok(match info.pixel_format {
        PixelFormat::L8 => {
            Source::Dynamic(DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, data).ok_or_else(bad)?))
        }
        PixelFormat::RGB24 => Source::Dynamic(DynamicImage::ImageRgb8(RgbImage::from_raw(w, h, data).ok_or_else(bad)?)),
        PixelFormat::L16 => {
            let values = data.chunks_exact(2).map(|b| u16::from_be_bytes([b[0], b[1]])).collect();
            Source::Dynamic(DynamicImage::ImageLuma16(image::ImageBuffer::from_raw(w, h, values).ok_or_else(bad)?))
        }
        // Pillow keeps CMYK JPEGs in CMYK (`CMYK;I` undoes Adobe's inversion, as jpeg-decoder does)
        // until `convert('RGB')`. CMYK JPEGs are rare in catalogs and not in the fidelity fixtures.
        PixelFormat::CMYK32 => {
            if data.len() != 4 * w as usize * h as usize {
                return Err(bad());
            }
            Source::Cmyk { width: w, height: h, data }
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

/// For each output index, the first input index and the normalised weights (Pillow's
/// `precompute_coeffs`, in its order of operations).
fn weights(in_size: u32, out_size: u32) -> Vec<(usize, Vec<f64>)> {
    let scale = f64::from(in_size) / f64::from(out_size);
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let inv = 1.0 / filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (f64::from(xx) + 0.5) * scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size)) as usize;
            let w: Vec<f64> = (xmin..xmax).map(|x| bicubic((x as f64 - center + 0.5) * inv)).collect();
            let total: f64 = w.iter().sum();
            (xmin, if total != 0.0 { w.iter().map(|v| v / total).collect() } else { w })
        })
        .collect()
}

/// [`weights`] in 22-bit fixed point (Pillow's `normalize_coeffs_8bpc`, 32-bit integers as there).
fn coefficients(in_size: u32, out_size: u32) -> Vec<(usize, Vec<i32>)> {
    let one = f64::from(1u32 << PRECISION_BITS);
    weights(in_size, out_size)
        .into_iter()
        .map(|(xmin, w)| {
            let fixed =
                w.iter().map(|&w| if w < 0.0 { (-0.5 + w * one) as i32 } else { (0.5 + w * one) as i32 }).collect();
            (xmin, fixed)
        })
        .collect()
}

/// One 8-bit output value from a fixed-point weighted sum, as PIL's `clip8` does.
#[inline(always)]
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

wide_or_plain!(
    /// Pillow's 8-bit resampling of interleaved samples with `channels` bands (`w × h` to
    /// `out_w × out_h`): horizontal pass, then vertical, each skipped when that side keeps its size.
    ///
    /// The sums are Pillow's: 32-bit integers, the rounding half added first. Integer sums do not depend
    /// on their order, so the loops are arranged for speed (every band of a pixel at once across, a whole
    /// row at once down) and the result is still Pillow's to the bit.
    pub resample_u8 => resample_u8_plain(src: &[u8], w: u32, h: u32, channels: usize, out_w: u32, out_h: u32) -> Vec<u8>
);

#[inline(always)]
fn resample_u8_plain(src: &[u8], w: u32, h: u32, channels: usize, out_w: u32, out_h: u32) -> Vec<u8> {
    let horizontal = if w == out_w {
        src.to_vec()
    } else {
        let coeffs = coefficients(w, out_w);
        match channels {
            1 => across::<1>(src, w as usize, &coeffs),
            2 => across::<2>(src, w as usize, &coeffs),
            3 => across::<3>(src, w as usize, &coeffs),
            4 => across::<4>(src, w as usize, &coeffs),
            _ => across_any(src, w as usize, channels, &coeffs),
        }
    };
    if h == out_h {
        return horizontal;
    }
    let coeffs = coefficients(h, out_h);
    let stride = out_w as usize * channels;
    let mut out = vec![0u8; stride * out_h as usize];
    let mut sums = vec![0i32; stride];
    for ((start, k), dst) in coeffs.iter().zip(out.chunks_mut(stride.max(1))) {
        sums.fill(HALF);
        for (j, &wt) in k.iter().enumerate() {
            let row = &horizontal[(start + j) * stride..][..stride];
            for (s, &v) in sums.iter_mut().zip(row) {
                *s += i32::from(v) * wt;
            }
        }
        for (d, &s) in dst.iter_mut().zip(&sums) {
            *d = clip8(s);
        }
    }
    out
}

/// Pillow's rounding: half of the fixed-point one, added before the weighted sum.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// The horizontal pass for `C` interleaved bands: each output pixel's bands summed together.
#[inline(always)]
fn across<const C: usize>(src: &[u8], w: usize, coeffs: &[(usize, Vec<i32>)]) -> Vec<u8> {
    let rows = src.len() / (w * C).max(1);
    let mut out = vec![0u8; coeffs.len() * rows * C];
    for (row, dst) in src.chunks_exact(w * C).zip(out.chunks_exact_mut(coeffs.len() * C)) {
        for ((start, k), px) in coeffs.iter().zip(dst.chunks_exact_mut(C)) {
            let mut sums = [HALF; C];
            for (p, &wt) in row[start * C..].chunks_exact(C).zip(k) {
                for (s, &v) in sums.iter_mut().zip(p) {
                    *s += i32::from(v) * wt;
                }
            }
            for (d, s) in px.iter_mut().zip(sums) {
                *d = clip8(s);
            }
        }
    }
    out
}

/// [`across`] for any number of bands.
fn across_any(src: &[u8], w: usize, c: usize, coeffs: &[(usize, Vec<i32>)]) -> Vec<u8> {
    let rows = src.len() / (w * c).max(1);
    let mut out = vec![0u8; coeffs.len() * rows * c];
    for (row, dst) in src.chunks_exact((w * c).max(1)).zip(out.chunks_exact_mut((coeffs.len() * c).max(1))) {
        for ((start, k), px) in coeffs.iter().zip(dst.chunks_exact_mut(c.max(1))) {
            for (ch, d) in px.iter_mut().enumerate() {
                let sum = k.iter().enumerate().fold(HALF, |s, (i, &wt)| s + i32::from(row[(start + i) * c + ch]) * wt);
                *d = clip8(sum);
            }
        }
    }
    out
}

/// Pillow's `ROUND_UP` of a float sum, then `CLIP16`.
fn round_clip16(sum: f64) -> u16 {
    let v = if sum >= 0.0 { (sum + 0.5) as i64 } else { (sum - 0.5) as i64 };
    v.clamp(0, 65535) as u16
}

/// Pillow's resampling of a 16-bit grey (`I;16`) image: weights in f64, each pass rounded half
/// away from zero and clipped to 0..=65535.
pub fn resample_u16(src: &[u16], w: u32, h: u32, out_w: u32, out_h: u32) -> Vec<u16> {
    let horizontal = if w == out_w {
        src.to_vec()
    } else {
        let coeffs = weights(w, out_w);
        let mut tmp = Vec::with_capacity(out_w as usize * h as usize);
        for y in 0..h as usize {
            let row = &src[y * w as usize..][..w as usize];
            for (start, k) in &coeffs {
                let sum: f64 = k.iter().enumerate().fold(0.0, |s, (i, &wt)| s + f64::from(row[start + i]) * wt);
                tmp.push(round_clip16(sum));
            }
        }
        tmp
    };
    if h == out_h {
        return horizontal;
    }
    let coeffs = weights(h, out_h);
    let stride = out_w as usize;
    let mut out = Vec::with_capacity(stride * out_h as usize);
    for (start, k) in &coeffs {
        for i in 0..stride {
            let sum: f64 =
                k.iter().enumerate().fold(0.0, |s, (j, &wt)| s + f64::from(horizontal[(start + j) * stride + i]) * wt);
            out.push(round_clip16(sum));
        }
    }
    out
}

/// PIL's `Image.resize((w, h), BICUBIC)` for 8-bit RGB: horizontal pass, then vertical.
pub fn pil_bicubic(src: &RgbImage, w: u32, h: u32) -> RgbImage {
    let data = resample_u8(src.as_raw(), src.width(), src.height(), 3, w, h);
    RgbImage::from_raw(w, h, data).unwrap_or_default()
}

/// Pillow's NEAREST resize (`ImagingScaleAffine`): source column of output `x` is the integer
/// part of `(x + 0.5) · in / out`, accumulated in f64 by repeated addition as Pillow does (the
/// sums drift, and Pillow's choice of pixel with them); a position outside the source stays black.
pub fn pil_nearest(src: &RgbImage, w: u32, h: u32) -> RgbImage {
    let positions = |in_size: u32, out_size: u32| -> Vec<Option<u32>> {
        // The box is a C float in Pillow: the input size goes through f32 first.
        let step = f64::from(in_size as f32) / f64::from(out_size);
        let mut at = step * 0.5;
        (0..out_size)
            .map(|_| {
                let i = if at < 0.0 { None } else { Some(at as u64) };
                at += step;
                i.filter(|&i| i < u64::from(in_size)).map(|i| i as u32)
            })
            .collect()
    };
    let (xs, ys) = (positions(src.width(), w), positions(src.height(), h));
    let mut out = RgbImage::new(w, h);
    for (y, sy) in ys.iter().enumerate() {
        let Some(sy) = sy else { continue };
        for (x, sx) in xs.iter().enumerate() {
            if let Some(sx) = sx {
                out.put_pixel(x as u32, y as u32, *src.get_pixel(*sx, *sy));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_takes_pillows_source_pixels() {
        // 5 → 3: positions 5/3 · (x + 0.5) = 0.83, 2.5, 4.17 → columns 0, 2, 4.
        // 3 → 7: 3/7 · (x + 0.5) = 0.21, 0.64, 1.07, 1.5, 1.93, 2.36, 2.79 → 0, 0, 1, 1, 1, 2, 2.
        for (w, out, want) in [(5, 3, vec![0, 2, 4]), (3, 7, vec![0, 0, 1, 1, 1, 2, 2])] {
            let src = RgbImage::from_fn(w, 1, |x, _| image::Rgb([x as u8, 0, 0]));
            let got: Vec<u8> = pil_nearest(&src, out, 1).pixels().map(|p| p[0]).collect();
            assert_eq!(got, want, "{w} -> {out}");
        }
    }

    #[test]
    fn premultiplied_resizes_round_trip_like_pillow() {
        // 200 at alpha 128: premultiplied 200·128/255 = 100.4 → 100, divided back 255·100/128 =
        // 199.2 → 199. A uniform image resamples to itself, so only the round trip shows.
        let rgba: Vec<u8> = std::iter::repeat_n([200u8, 100, 0, 128], 6 * 4).flatten().collect();
        let resize = |d: &[u8], c: usize| resample_u8(d, 6, 4, c, 3, 2);
        assert_eq!(premultiplied(&rgba, 4, false, resize), [199, 99, 0].repeat(6));
        // At full size Pillow does not resample at all: no round trip.
        assert_eq!(premultiplied(&rgba, 4, true, resize), [200, 100, 0].repeat(24));
        // Alpha 0 keeps the (premultiplied, so black) colour; LA repeats grey in three channels.
        let la: Vec<u8> = std::iter::repeat_n([90u8, 0], 6 * 4).flatten().collect();
        assert_eq!(premultiplied(&la, 2, false, resize), [0, 0, 0].repeat(6));
    }

    #[test]
    fn cmyk_converts_with_pillows_rounding() {
        // 255 - K - round(C · (255 - K) / 255): C = 100, K = 50 → 205 - round(80.39) = 125; the
        // truncating formula (255 - C)(255 - K) / 255 = 124.6 would give 124.
        assert_eq!(cmyk_channel(100, 50), 125);
        assert_eq!(cmyk_channel(0, 0), 255);
        assert_eq!(cmyk_channel(255, 0), 0);
        assert_eq!(cmyk_channel(0, 255), 0);
    }

    #[test]
    fn sixteen_bit_resampling_rounds_in_floating_point() {
        // Halving 2 columns [0, 401] with the widened cubic kernel: weights are symmetric, so the
        // value is 200.5, which Pillow rounds half up to 201 (and clips at 65535 above).
        assert_eq!(resample_u16(&[0, 401], 2, 1, 1, 1), vec![201]);
        assert_eq!(resample_u16(&[65535, 65535, 0, 0], 4, 1, 4, 1), vec![65535, 65535, 0, 0]);
    }

    #[test]
    fn shortest_side_and_center_crop_follow_python() {
        // int(224 · 240 / 160) = 336; int(32 · 20 / 12) = int(53.33) = 53.
        assert_eq!(shortest_side(240, 160, 224), (336, 224));
        assert_eq!(shortest_side(12, 20, 32), (32, 53));
        assert_eq!(shortest_side(50, 50, 32), (32, 32));
        // Margins 21 (10.5), 23 (11.5), 3 (1.5), 16 (8): round(10.5) = 10, round(11.5) = 12,
        // round(1.5) = 2; floor division gives 10, 11, 1.
        for (len, want_round, want_floor) in [(53, 10, 10), (55, 12, 11), (35, 2, 1), (48, 8, 8)] {
            assert_eq!(crop_offset(len, 32, CropRounding::Round), want_round, "{len}");
            assert_eq!(crop_offset(len, 32, CropRounding::Floor), want_floor, "{len}");
        }
    }

    #[test]
    fn compositing_rounds_to_the_nearest_level() {
        for (c, a, bg, expected) in [(200, 255, 0, 200), (200, 0, 255, 255), (200, 128, 0, 100), (0, 128, 255, 127)] {
            assert_eq!(over(c, a, bg), expected, "c={c} a={a} bg={bg}");
        }
    }
}
