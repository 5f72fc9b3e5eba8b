//! The embedding cache: a warm re-run embeds no image and no query, an edited image or query is embedded
//! again, an interrupted run keeps what it embedded, shards of the right model are read and others are
//! ignored with a warning, and a checkpoint's digest is remembered under the racy-stamp rule.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fitcheck::cache::{build_shard, embed_catalog, file_digest, CacheStats, Embedded, Shard, TextCache, SHARDS_DIR};
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

/// A stand-in model: an image's vector is made of its file's bytes, so equal files embed equally. It
/// counts what it embeds, and can be told to fail or to stop dead (panic) at the n-th image.
struct Bytes {
    fingerprint: Fingerprint,
    images: Arc<AtomicUsize>,
    texts: Arc<AtomicUsize>,
    fail_at: Option<(usize, bool)>,
}

impl Bytes {
    fn new(model: &str) -> Bytes {
        Bytes {
            fingerprint: Fingerprint {
                model: model.into(),
                revision: "local".into(),
                preprocessing: "bytes".into(),
                content: model.into(),
            },
            images: Arc::default(),
            texts: Arc::default(),
            fail_at: None,
        }
    }
}

impl Embedder for Bytes {
    fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }
    fn embed_texts(&self, texts: &[String]) -> fitcheck::Result<Vec<Vec<f32>>> {
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
    }
    fn embed_images(&self, paths: &[&Path]) -> fitcheck::Result<Vec<Vec<f32>>> {
        let mut out = Vec::new();
        for p in paths {
            let done = self.images.fetch_add(1, Ordering::SeqCst);
            match self.fail_at {
                Some((n, false)) if done == n => return Err(fitcheck::Error::model("bytes", "stopped on purpose")),
                Some((n, true)) if done == n => panic!("stopped dead on purpose"),
                _ => {}
            }
            let b = std::fs::read(p).unwrap();
            out.push(vec![b.iter().map(|&x| x as f32).sum(), b.len() as f32, 1.0]);
        }
        Ok(out)
    }
}

/// A catalog of `n` distinct small files `img-000.png`, ...
fn numbered_catalog(dir: &Path, n: usize) -> Catalog {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("img-{i:03}.png")), format!("image number {i}")).unwrap();
    }
    Catalog::load(dir, None).unwrap()
}

#[test]
fn an_interrupted_cold_run_keeps_what_it_had_embedded() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = numbered_catalog(&tmp.path().join("catalog"), 150);
    let cache = tmp.path().join("cache");

    // An error at the 101st image, in the seventh call of 16 images (97 to 112): the 96 of the six
    // calls that completed are kept (64 in a part file written on the way, 32 flushed when the error
    // came), so the next run embeds the remaining 54.
    let mut failing = Bytes::new("m");
    failing.fail_at = Some((100, false));
    assert!(embed_catalog(&failing, &catalog, Some(&cache)).is_err());
    let model = Bytes::new("m");
    let Embedded { stats, .. } = embed_catalog(&model, &catalog, Some(&cache)).unwrap();
    assert_eq!((stats.cached, stats.embedded), (96, 54));
    // Parts are folded into one file once the catalog is complete.
    let files: Vec<String> =
        std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!files.iter().any(|f| f.contains(".part-")), "{files:?}");

    // Stopped dead (nothing runs after the panic) at the 101st image: the part file written after 64
    // images survives, so 86 are left to embed.
    let cache = tmp.path().join("cache2");
    let mut dying = Bytes::new("m");
    dying.fail_at = Some((100, true));
    let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| embed_catalog(&dying, &catalog, Some(&cache))));
    assert!(died.is_err());
    let Embedded { vectors, stats, .. } = embed_catalog(&model, &catalog, Some(&cache)).unwrap();
    assert_eq!((stats.cached, stats.embedded), (64, 86));
    let Embedded { vectors: fresh, .. } = embed_catalog(&Bytes::new("m"), &catalog, None).unwrap();
    assert_eq!(vectors, fresh, "what a part file kept is what embedding again gives");
}

#[test]
fn shards_split_the_catalog_and_only_matching_ones_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let catalog = numbered_catalog(&tmp.path().join("catalog"), 150);
    let model = Bytes::new("m");

    // Items go to shards by a hash of their id: SHA-256, first 8 bytes little-endian, modulo n
    // (worked out in Python: img-007 is in shard 2 of 3, img-100 in shard 3 of 3).
    let s = |t: &str| t.parse::<Shard>().unwrap();
    assert!(s("2/3").holds("img-007") && !s("1/3").holds("img-007") && !s("3/3").holds("img-007"));
    assert!(s("3/3").holds("img-100"));
    assert!(!s("3/20").holds("remera/celeste"));
    assert!(s("5/20").holds("remera/celeste"));
    for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
        let err = bad.parse::<Shard>().unwrap_err();
        assert!(err.contains(&format!("'{bad}'")) && err.contains("1 <= i <= n"), "{err}");
    }

    // Three runners build the three shards, each with its own empty cache; every item lands in exactly
    // one of them.
    let shards = tmp.path().join("shards");
    let mut sizes = Vec::new();
    for i in 1..=3 {
        let runner = tmp.path().join(format!("runner-{i}"));
        let out = shards.join(format!("m-{i}of3.shard"));
        let built = build_shard(&model, &catalog, Some(&runner), s(&format!("{i}/3")), &out).unwrap();
        assert_eq!(built.stats.embedded, built.items);
        sizes.push(built.items);
    }
    assert_eq!(sizes.iter().sum::<usize>(), 150);
    assert!(sizes.iter().all(|&n| n > 30), "{sizes:?}");
    assert_eq!(model.images.load(Ordering::SeqCst), 150);

    // The test job reads them from its cache's shards folder: nothing left to embed, same vectors.
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(cache.join(SHARDS_DIR)).unwrap();
    for i in 1..=3 {
        let name = format!("m-{i}of3.shard");
        std::fs::copy(shards.join(&name), cache.join(SHARDS_DIR).join(&name)).unwrap();
    }
    let tester = Bytes::new("m");
    let Embedded { vectors, stats, warnings, .. } = embed_catalog(&tester, &catalog, Some(&cache)).unwrap();
    assert_eq!((stats.cached, stats.embedded), (150, 0));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(tester.images.load(Ordering::SeqCst), 0);
    let Embedded { vectors: fresh, .. } = embed_catalog(&Bytes::new("m"), &catalog, None).unwrap();
    assert_eq!(vectors, fresh);

    // Shards of another model, or from another fitcheck version, are ignored with a warning.
    let other = tmp.path().join("other");
    let shard = other.join(SHARDS_DIR).join("x.shard");
    build_shard(&Bytes::new("another-model"), &catalog, None, s("1/1"), &shard).unwrap();
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    std::fs::write(other.join(SHARDS_DIR).join("y.shard"), {
        let mut b = std::fs::read(shards.join("m-1of3.shard")).unwrap();
        let at = b.windows(version.len()).position(|w| w == version).unwrap();
        b[at] = b'9';
        b
    })
    .unwrap();
    let tester = Bytes::new("m");
    let Embedded { stats, warnings, .. } = embed_catalog(&tester, &catalog, Some(&other)).unwrap();
    assert_eq!((stats.cached, stats.embedded), (0, 150), "nothing from either shard is used");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("x.shard") && warnings[0].contains("'another-model'"), "{}", warnings[0]);
    assert!(warnings[0].ends_with("rebuild the shard with this model: ignored"), "{}", warnings[0]);
    assert!(warnings[1].contains("y.shard") && warnings[1].contains("written by fitcheck '9"), "{}", warnings[1]);
    assert!(warnings[1].ends_with("rebuild the shard with this version: ignored"), "{}", warnings[1]);
}

#[test]
fn query_texts_are_cached_and_an_edited_text_alone_is_embedded() {
    let tmp = tempfile::tempdir().unwrap();
    let texts = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let model = Bytes::new("m");
    let counter = Arc::clone(&model.texts);
    let cached = TextCache::new(Box::new(model), Some(tmp.path()));
    let cold = cached.embed_texts(&texts(&["jean azul", "camisa", "jean azul"])).unwrap();
    assert_eq!(cold, [vec![9.0, 1.0], vec![6.0, 1.0], vec![9.0, 1.0]]);
    assert_eq!(counter.load(Ordering::SeqCst), 2, "a repeated text is embedded once");

    // A new process (a new cache object over the same directory): one new text, one embedding.
    let model = Bytes::new("m");
    let counter = Arc::clone(&model.texts);
    let cached = TextCache::new(Box::new(model), Some(tmp.path()));
    let warm = cached.embed_texts(&texts(&["camisa", "jean negro", "jean azul"])).unwrap();
    assert_eq!(warm, [vec![6.0, 1.0], vec![10.0, 1.0], vec![9.0, 1.0]]);
    assert_eq!(counter.load(Ordering::SeqCst), 1);

    // Another model shares nothing.
    let other = Bytes::new("other");
    let counter = Arc::clone(&other.texts);
    TextCache::new(Box::new(other), Some(tmp.path())).embed_texts(&texts(&["camisa"])).unwrap();
    assert_eq!(counter.load(Ordering::SeqCst), 1);
}

#[test]
fn a_checkpoint_digest_is_remembered_unless_its_stamp_is_racy() {
    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("model.safetensors");
    let cache = tmp.path().join("cache");
    // SHA-256 of "aaaa" and "bbbb" (sha256sum).
    let (a, b) = (
        "61be55a8e2f6b4e172338bddf184d6dbee29c98853e0a0485ecee7f27b9af0b4",
        "81cc5b17018674b401b42f35ba07bb79e211239c23bffe658da1577e3e646877",
    );

    // Rewritten with the same size and the same modification time, within two seconds of the stamp:
    // the racy-stamp rule hashes it again and sees the new content.
    std::fs::write(&weights, "aaaa").unwrap();
    let mtime = std::fs::metadata(&weights).unwrap().modified().unwrap();
    assert_eq!(file_digest(&weights, Some(&cache)).unwrap(), a);
    std::fs::write(&weights, "bbbb").unwrap();
    std::fs::File::options().write(true).open(&weights).unwrap().set_modified(mtime).unwrap();
    assert_eq!(file_digest(&weights, Some(&cache)).unwrap(), b);

    // Modified long before its stamp was written: the stamp is trusted and the file is not read, which
    // shows as the remembered digest surviving a same-size, same-mtime rewrite behind its back.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::write(&weights, "aaaa").unwrap();
    std::fs::File::options().write(true).open(&weights).unwrap().set_modified(old).unwrap();
    assert_eq!(file_digest(&weights, Some(&cache)).unwrap(), a);
    std::fs::write(&weights, "bbbb").unwrap();
    std::fs::File::options().write(true).open(&weights).unwrap().set_modified(old).unwrap();
    assert_eq!(file_digest(&weights, Some(&cache)).unwrap(), a);
    // Any change of size or time is seen; without a cache the file is always hashed.
    std::fs::write(&weights, "bbbbb").unwrap();
    assert_ne!(file_digest(&weights, Some(&cache)).unwrap(), a);
    std::fs::write(&weights, "bbbb").unwrap();
    std::fs::File::options().write(true).open(&weights).unwrap().set_modified(old).unwrap();
    assert_eq!(file_digest(&weights, None).unwrap(), b);
}
