//! Thumbnails for the HTML report: small JPEGs of catalog images as the model saw them.
//!
//! A thumbnail is named by the SHA-256 of the image file's bytes and the alpha mode of the run's
//! pipeline, so an image is converted once per content and mode and then reused: first from the report
//! directory's own `thumbs/` folder of a previous render, then from the cache folder (`thumbs/` beside
//! the embedding cache), and only then made from the photo. Conversion to RGB goes through the model's
//! own [`PixelPipeline::rgb`], so a cut-out PNG shows the background the model got (the colour stored
//! under transparent pixels with `alpha drop`, white with `alpha white`). Work is linear in the images
//! a report shows: each distinct (file, alpha) pair is read once per render. An image that cannot be
//! read or decoded becomes a [`Thumb::Missing`] with the reason, never an error of the whole report.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use sha2::{Digest, Sha256};

use crate::embed::Alpha;
use crate::error::Result;
use crate::files::{atomic_write, hex};
use crate::model::pixels::PixelPipeline;

/// Longest side of a thumbnail, in pixels. Smaller images are kept at their size.
pub const SIDE: u32 = 160;
/// JPEG quality: a 160-pixel garment photo stays at a few KB.
const QUALITY: u8 = 80;
/// Changes whenever the way thumbnails are made changes, so old cached ones are not reused.
const VERSION: &str = "t1";

/// One image of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Thumb {
    /// A thumbnail written to the report's `thumbs/` folder under this file name.
    Ready { name: String, width: u32, height: u32 },
    /// No thumbnail could be made: the reason, naming the file.
    Missing { reason: String },
}

/// How many thumbnails one render used, and where they came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThumbCounts {
    /// Distinct thumbnails in the report.
    pub used: usize,
    /// Made from the photo in this render (the rest came from a cache).
    pub made: usize,
    /// Images that could not be shown.
    pub missing: usize,
}

/// The alpha mode a run's preprocessing text names (`..., alpha white, ...`); `drop` when it names
/// none, as the pipeline's default.
pub fn alpha_of(preprocessing: &str) -> Alpha {
    preprocessing
        .split([',', ';'])
        .filter_map(|part| part.trim().strip_prefix("alpha "))
        .find_map(|key| Alpha::from_key(key.trim()))
        .unwrap_or_default()
}

/// Makes and caches thumbnails for one report directory.
pub struct Thumbnailer {
    /// The report's `thumbs/` folder.
    out: PathBuf,
    /// The shared cache's `thumbs/` folder, when caching is on.
    cache: Option<PathBuf>,
    done: HashMap<(PathBuf, &'static str), Thumb>,
    counts: ThumbCounts,
}

impl Thumbnailer {
    /// Thumbnails go to `report_dir/thumbs`; `cache_dir` (the embedding cache folder) keeps them for
    /// later renders under `cache_dir/thumbs`.
    pub fn new(report_dir: &Path, cache_dir: Option<&Path>) -> Thumbnailer {
        Thumbnailer {
            out: report_dir.join("thumbs"),
            cache: cache_dir.map(|c| c.join("thumbs")),
            done: HashMap::new(),
            counts: ThumbCounts::default(),
        }
    }

    pub fn counts(&self) -> ThumbCounts {
        self.counts
    }

    /// The thumbnail of the image at `path` as a pipeline with `alpha` sees it. Errors are only those
    /// of writing the report; an unreadable image gives [`Thumb::Missing`].
    pub fn get(&mut self, path: &Path, alpha: Alpha) -> Result<Thumb> {
        let key = (path.to_owned(), alpha.key());
        if let Some(t) = self.done.get(&key) {
            return Ok(t.clone());
        }
        let thumb = self.make(path, alpha)?;
        match &thumb {
            Thumb::Ready { .. } => self.counts.used += 1,
            Thumb::Missing { .. } => self.counts.missing += 1,
        }
        self.done.insert(key, thumb.clone());
        Ok(thumb)
    }

    fn make(&mut self, path: &Path, alpha: Alpha) -> Result<Thumb> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return Ok(Thumb::Missing { reason: format!("{}: cannot read image: {e}", path.display()) }),
        };
        let name = format!("{}-{}-{VERSION}.jpg", hex(&Sha256::digest(&bytes)), alpha.key());
        let target = self.out.join(&name);
        // A thumbnail already in the report (an earlier render) or in the cache is reused as is.
        for place in std::iter::once(&self.out).chain(self.cache.as_ref()) {
            if let Some((w, h)) = jpeg_size(&place.join(&name)) {
                if place != &self.out {
                    let cached =
                        std::fs::read(place.join(&name)).map_err(|e| crate::Error::io(&place.join(&name), e))?;
                    atomic_write(&target, &cached)?;
                }
                return Ok(Thumb::Ready { name, width: w, height: h });
            }
        }
        let (jpeg, width, height) = match encode(path, alpha) {
            Ok(made) => made,
            Err(reason) => return Ok(Thumb::Missing { reason }),
        };
        self.counts.made += 1;
        if let Some(cache) = &self.cache {
            // The cache is a convenience: a read-only cache folder must not stop the report.
            let _ = atomic_write(&cache.join(&name), &jpeg);
        }
        atomic_write(&target, &jpeg)?;
        Ok(Thumb::Ready { name, width, height })
    }
}

/// The size of a readable JPEG thumbnail at `path`, or `None` (absent or torn: make it again).
fn jpeg_size(path: &Path) -> Option<(u32, u32)> {
    let reader = image::ImageReader::open(path).ok()?.with_guessed_format().ok()?;
    if reader.format() != Some(image::ImageFormat::Jpeg) {
        return None;
    }
    reader.into_dimensions().ok()
}

/// Converts the image as the model's pipeline does, shrinks it to fit [`SIDE`] keeping its aspect
/// ratio, and encodes it as JPEG. The error is the reason, naming the file.
fn encode(path: &Path, alpha: Alpha) -> std::result::Result<(Vec<u8>, u32, u32), String> {
    // Only the conversion to RGB is used: size, mean and std matter for the model's tensor, not here.
    let pipeline = PixelPipeline { size: SIDE, mean: [0.0; 3], std: [1.0; 3], alpha, pipeline: Default::default() };
    let rgb = pipeline.rgb(path).map_err(|e| e.to_string())?;
    let (w, h) = (rgb.width(), rgb.height());
    if w == 0 || h == 0 {
        return Err(format!("{}: the image is empty (0 pixels)", path.display()));
    }
    let scale = (f64::from(SIDE) / f64::from(w.max(h))).min(1.0);
    let (tw, th) = (((f64::from(w) * scale).round() as u32).max(1), ((f64::from(h) * scale).round() as u32).max(1));
    let small = if (tw, th) == (w, h) { rgb } else { image::imageops::resize(&rgb, tw, th, FilterType::Triangle) };
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), QUALITY)
        .encode_image(&small)
        .map_err(|e| format!("{}: cannot encode thumbnail: {e}", path.display()))?;
    Ok((jpeg, tw, th))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    /// A 4×2 cut-out: left half opaque blue, right half fully transparent with red stored under it.
    fn cutout(path: &Path) {
        let mut img = RgbaImage::new(4, 2);
        for (x, _, p) in img.enumerate_pixels_mut() {
            *p = if x < 2 { Rgba([0, 0, 255, 255]) } else { Rgba([255, 0, 0, 0]) };
        }
        img.save(path).unwrap();
    }

    fn decode(dir: &Path, thumb: &Thumb) -> image::RgbImage {
        let Thumb::Ready { name, .. } = thumb else { panic!("no thumbnail: {thumb:?}") };
        image::open(dir.join("thumbs").join(name)).unwrap().to_rgb8()
    }

    #[test]
    fn reads_the_alpha_mode_from_the_preprocessing_text() {
        let text = "squash 64x64 bicubic, alpha white, mean [0.5, 0.5, 0.5] std [0.5, 0.5, 0.5]; canonicalize";
        assert_eq!(alpha_of(text), Alpha::White);
        assert_eq!(alpha_of("squash 224x224 bicubic, alpha black, mean [0.0]"), Alpha::Black);
        assert_eq!(alpha_of("squash 224x224 bicubic, alpha drop, mean [0.0]"), Alpha::Drop);
        assert_eq!(alpha_of("tags"), Alpha::Drop);
    }

    #[test]
    fn shows_the_background_the_pipeline_gave_a_cutout() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("cut.png");
        cutout(&photo);
        let report = dir.path().join("report");
        let mut t = Thumbnailer::new(&report, None);
        let dropped = decode(&report, &t.get(&photo, Alpha::Drop).unwrap());
        let white = decode(&report, &t.get(&photo, Alpha::White).unwrap());
        assert_eq!(dropped.dimensions(), (4, 2), "small images keep their size");
        // JPEG moves colours a little; the halves must still be blue, then red (drop) or white.
        let near = |p: &image::Rgb<u8>, want: [u8; 3]| p.0.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 40);
        assert!(near(dropped.get_pixel(0, 0), [0, 0, 255]), "{:?}", dropped.get_pixel(0, 0));
        assert!(near(dropped.get_pixel(3, 1), [255, 0, 0]), "{:?}", dropped.get_pixel(3, 1));
        assert!(near(white.get_pixel(0, 0), [0, 0, 255]), "{:?}", white.get_pixel(0, 0));
        assert!(near(white.get_pixel(3, 1), [255, 255, 255]), "{:?}", white.get_pixel(3, 1));
        assert_eq!(t.counts(), ThumbCounts { used: 2, made: 2, missing: 0 });
    }

    #[test]
    fn shrinks_to_fit_keeping_the_aspect_ratio() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("wide.jpg");
        image::RgbImage::from_pixel(640, 320, image::Rgb([10, 200, 30])).save(&photo).unwrap();
        let mut t = Thumbnailer::new(dir.path(), None);
        let thumb = t.get(&photo, Alpha::Drop).unwrap();
        let Thumb::Ready { width, height, ref name } = thumb else { panic!("{thumb:?}") };
        assert_eq!((width, height), (160, 80));
        let bytes = std::fs::metadata(dir.path().join("thumbs").join(name)).unwrap().len();
        assert!(bytes < 8_000, "thumbnail of {bytes} bytes");
    }

    #[test]
    fn makes_each_image_once_and_reuses_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.png"), dir.path().join("copy of a.png"));
        cutout(&a);
        std::fs::copy(&a, &b).unwrap();
        let cache = dir.path().join("cache");
        let mut first = Thumbnailer::new(&dir.path().join("r1"), Some(&cache));
        let ta = first.get(&a, Alpha::Drop).unwrap();
        assert_eq!(first.get(&a, Alpha::Drop).unwrap(), ta);
        // The same bytes under another name share the thumbnail.
        assert_eq!(first.get(&b, Alpha::Drop).unwrap(), ta);
        assert_eq!(first.counts().made, 1);
        // A second report elsewhere takes it from the cache and makes nothing.
        let mut second = Thumbnailer::new(&dir.path().join("r2"), Some(&cache));
        assert_eq!(second.get(&a, Alpha::Drop).unwrap(), ta);
        assert_eq!(second.counts(), ThumbCounts { used: 1, made: 0, missing: 0 });
        let Thumb::Ready { name, .. } = ta else { unreachable!() };
        assert!(dir.path().join("r2/thumbs").join(&name).is_file());
        assert!(cache.join("thumbs").join(&name).is_file());
    }

    #[test]
    fn an_unreadable_image_is_missing_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.png");
        std::fs::write(&broken, b"not a png").unwrap();
        let mut t = Thumbnailer::new(dir.path(), None);
        let Thumb::Missing { reason } = t.get(&broken, Alpha::Drop).unwrap() else { panic!() };
        assert!(reason.starts_with(&format!("{}: cannot read image", broken.display())), "{reason}");
        let Thumb::Missing { reason } = t.get(&dir.path().join("gone.png"), Alpha::Drop).unwrap() else { panic!() };
        assert!(reason.contains("gone.png: cannot read image"), "{reason}");
        assert_eq!(t.counts(), ThumbCounts { used: 0, made: 0, missing: 2 });
    }
}
