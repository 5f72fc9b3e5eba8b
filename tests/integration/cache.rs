//! The catalog embedding cache: a warm re-run embeds no image, an edited image is embedded again.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use fitcheck::cache::{embed_catalog, CacheStats, Embedded};
use fitcheck::catalog::Catalog;
use fitcheck::toy::ToyEmbedder;
use fitcheck::{Embedder, Fingerprint};

/// The toy embedder, counting the images it is asked to embed.
struct Counting {
    inner: ToyEmbedder,
    images: AtomicUsize,
}

impl Embedder for Counting {
    fn fingerprint(&self) -> &Fingerprint {
        self.inner.fingerprint()
    }
    fn embed_texts(&self, texts: &[String]) -> fitcheck::Result<Vec<Vec<f32>>> {
        self.inner.embed_texts(texts)
    }
    fn embed_images(&self, paths: &[&Path]) -> fitcheck::Result<Vec<Vec<f32>>> {
        self.images.fetch_add(paths.len(), Ordering::SeqCst);
        self.inner.embed_images(paths)
    }
}

#[test]
fn warm_runs_embed_no_image_and_edits_are_picked_up() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog_dir = tmp.path().join("catalog");
    crate::common::copy_tree(&crate::common::repo().join("tests/fixtures/toy/catalog"), &catalog_dir);
    // Images last modified an hour ago: old enough for their stamps to be trusted.
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for entry in walkdir::WalkDir::new(&catalog_dir) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            std::fs::File::options().write(true).open(entry.path()).unwrap().set_modified(an_hour_ago).unwrap();
        }
    }
    let cache = tmp.path().join("cache");
    let catalog = Catalog::load(&catalog_dir, None).unwrap();
    let model = Counting { inner: ToyEmbedder::new(&catalog), images: AtomicUsize::new(0) };

    let Embedded { vectors: cold, stats, .. } = embed_catalog(&model, &catalog, Some(&cache)).unwrap();
    assert_eq!(stats, CacheStats { cached: 0, embedded: 8, hashed: 8 });
    // Vectors come back normalised: remera/celeste has two tags → 1/√2 each.
    let i = catalog.position("remera/celeste").unwrap();
    let nonzero: Vec<f32> = cold[i].iter().copied().filter(|&x| x != 0.0).collect();
    assert_eq!(nonzero, [std::f32::consts::FRAC_1_SQRT_2; 2]);

    // A warm run neither embeds nor even reads an image: the stamps vouch for them.
    let Embedded { vectors: warm, stats, .. } = embed_catalog(&model, &catalog, Some(&cache)).unwrap();
    assert_eq!(stats, CacheStats { cached: 8, embedded: 0, hashed: 0 });
    assert_eq!(warm, cold);
    assert_eq!(model.images.load(Ordering::SeqCst), 8);

    // A changed image file is hashed and embedded again; the others are not.
    image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])).save(catalog_dir.join("remera/roja.png")).unwrap();
    let Embedded { vectors: _, stats, .. } = embed_catalog(&model, &catalog, Some(&cache)).unwrap();
    assert_eq!(stats, CacheStats { cached: 7, embedded: 1, hashed: 1 });
    // Rewritten moments before the stamps were, it is not trusted yet: hashed again, not re-embedded.
    let Embedded { vectors: _, stats, .. } = embed_catalog(&model, &catalog, Some(&cache)).unwrap();
    assert_eq!(stats, CacheStats { cached: 8, embedded: 0, hashed: 1 });

    // Any other modification time, even an older one, means a new hash; so does a rewrite of the same
    // size.
    let roja = catalog_dir.join("remera/roja.png");
    std::fs::File::options().write(true).open(&roja).unwrap().set_modified(an_hour_ago).unwrap();
    let Embedded { vectors: _, stats, .. } = embed_catalog(&model, &catalog, Some(&cache)).unwrap();
    assert_eq!(stats.hashed, 1, "a new modification time means a new hash");
    image::RgbImage::from_pixel(8, 8, image::Rgb([9, 9, 9])).save(&roja).unwrap();
    let Embedded { vectors: _, stats, .. } = embed_catalog(&model, &catalog, Some(&cache)).unwrap();
    assert_eq!(stats, CacheStats { cached: 7, embedded: 1, hashed: 1 });

    // Corrupt cache files are ignored and rebuilt, never trusted.
    for f in std::fs::read_dir(&cache).unwrap() {
        std::fs::write(f.unwrap().path(), b"garbage").unwrap();
    }
    let Embedded { vectors: rebuilt, stats, .. } = embed_catalog(&model, &catalog, Some(&cache)).unwrap();
    assert_eq!(stats, CacheStats { cached: 0, embedded: 8, hashed: 8 });
    assert_eq!(rebuilt.len(), 8);
}
