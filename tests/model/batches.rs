//! `embed_images` over many files, through both backends: the next batch is decoded while the
//! current one is embedded, and that must not show. The vectors are those of each image embedded alone,
//! in the order of the paths across batch boundaries, and a file that cannot be read stops the call
//! with an error naming it, after the batches before it and before any after it.

use std::path::{Path, PathBuf};

use fitcheck::embed::{Alpha, Embedder, Pipeline};
use fitcheck::model::clip::Clip;
use fitcheck::model::IMAGE_BATCH;

use crate::common::{open, spec_with, MODEL};
use crate::fidelity::EMBED_TOL;

/// Every fixture image of both backends (PNG, JPEG, WebP in all their modes), sorted.
fn fixture_images() -> Vec<PathBuf> {
    let mut images: Vec<PathBuf> = ["tests/fixtures/siglip/images", "tests/fixtures/clip/images"]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .filter(|p| p.extension().is_some_and(|e| e != "json"))
        .collect();
    images.sort();
    images
}

/// The tiny SigLIP and CLIP fixture checkpoints, by name.
fn backends() -> Vec<(&'static str, Box<dyn Embedder>)> {
    let clip = Clip::open(&spec_with(Path::new("tests/fixtures/clip/clip-a/hf"), Alpha::Drop, Pipeline::RgbFirst))
        .unwrap_or_else(|e| panic!("{e}"));
    vec![("siglip", Box::new(open(Path::new(MODEL)))), ("clip", Box::new(clip))]
}

#[test]
fn many_images_embed_as_each_alone_in_order() {
    let images = fixture_images();
    // More than two batches, the last one partial, every image several times in different positions.
    let paths: Vec<&Path> = (0..2 * IMAGE_BATCH + 5).map(|i| images[(i * 7) % images.len()].as_path()).collect();
    for (name, model) in backends() {
        let all = model.embed_images(&paths).unwrap();
        assert_eq!(all.len(), paths.len(), "{name}");
        for (i, (path, got)) in paths.iter().zip(&all).enumerate() {
            let alone = model.embed_images(&[path]).unwrap().remove(0);
            let diff = got.iter().zip(&alone).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            // Float noise of another batch size only; another image would be far off.
            assert!(diff <= EMBED_TOL, "{name}: image #{i} ({}) differs by {diff} from itself alone", path.display());
        }
        // The same call, batch by batch: batches of IMAGE_BATCH in order, the same vectors.
        let mut batches = Vec::new();
        model
            .embed_images_by_batch(&paths, &mut |rows| {
                batches.push(rows);
                Ok(())
            })
            .unwrap();
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [IMAGE_BATCH, IMAGE_BATCH, 5], "{name}");
        assert_eq!(batches.concat(), all, "{name}");
    }
}

#[test]
fn an_unreadable_image_in_a_later_batch_is_named_and_stops_the_call() {
    let images = fixture_images();
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.jpg");
    let broken = tmp.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    for (name, model) in backends() {
        for bad in [&missing, &broken] {
            // The bad file is the third image of the second batch; the broken one comes after it too.
            let mut paths: Vec<&Path> = (0..IMAGE_BATCH + 6).map(|i| images[i % images.len()].as_path()).collect();
            paths[IMAGE_BATCH + 2] = bad;
            paths[IMAGE_BATCH + 4] = &broken;
            let err = model.embed_images(&paths).unwrap_err().to_string();
            let prefix = format!("{}: cannot read image: ", bad.display());
            assert!(err.starts_with(&prefix), "{name}: {err}");

            let mut batches = Vec::new();
            let err = model
                .embed_images_by_batch(&paths, &mut |rows| {
                    batches.push(rows.len());
                    Ok(())
                })
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&prefix), "{name}: {err}");
            assert_eq!(batches, [IMAGE_BATCH], "{name}: the first batch only is embedded");
        }
    }
}

#[test]
fn the_first_unreadable_image_of_the_first_batch_is_named() {
    let images = fixture_images();
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (tmp.path().join("first.png"), tmp.path().join("second.png"));
    std::fs::write(&second, b"GIF89a").unwrap();
    // Decoded in parallel, the first batch still names the first bad file in order.
    let mut paths: Vec<&Path> = (0..IMAGE_BATCH + 3).map(|i| images[i % images.len()].as_path()).collect();
    paths[3] = &first;
    paths[9] = &second;
    for (name, model) in backends() {
        let err = model.embed_images(&paths).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: cannot read image: ", first.display())), "{name}: {err}");
    }
}
