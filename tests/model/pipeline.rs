//! The `open_clip` pipeline (resize in the source mode, then `convert('RGB')`) against plain
//! open_clip's `preprocess(Image.open(p))` (`tests/fixtures/siglip/pipeline/`, written by
//! `scripts/fidelity/generate.py`): pixels exact, embeddings within the image tolerance, and the
//! default `rgb_first` pipeline still matching the team's order on the same images.

use std::path::{Path, PathBuf};

use candle_core::Device;
use fitcheck::embed::{Alpha, Embedder, Pipeline};
use fitcheck::model::Siglip;

use crate::common::{spec_with, ROOT};
use crate::fidelity::{max_abs, rows, EMBED_TOL};

fn check(config: &str) {
    let dir = Path::new(ROOT).join("pipeline");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{config}.json"))).unwrap()).unwrap();
    let tensors = candle_core::safetensors::load(dir.join(format!("{config}.safetensors")), &Device::Cpu).unwrap();
    let images: Vec<PathBuf> =
        json["images"].as_array().unwrap().iter().map(|f| dir.join("images").join(f.as_str().unwrap())).collect();
    let checkpoint = Path::new(ROOT).join(config).join("open_clip");

    for (pipeline, px_key, embed_key) in [
        (Pipeline::OpenClip, "pixel_values", "image_embeds"),
        (Pipeline::RgbFirst, "pixel_values_rgb_first", "image_embeds_rgb_first"),
    ] {
        let model = Siglip::open(&spec_with(&checkpoint, Alpha::Drop, pipeline)).unwrap();
        let want_px = rows(&tensors[px_key].flatten_from(1).unwrap());
        for (path, want) in images.iter().zip(&want_px) {
            let got = model.pixel_pipeline().resized(path).unwrap();
            let diff =
                got.iter().zip(want).map(|(&g, &w)| (f32::from(g) - (w + 1.0) * 127.5).abs()).fold(0.0, f32::max);
            // PNG decodes identically and the resizes are Pillow's own arithmetic: exact.
            assert!(diff <= 1e-3, "{config} {}: {} is {diff} levels from Pillow", pipeline.key(), path.display());
        }
        let paths: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
        let got = model.embed_images(&paths).unwrap();
        let diff = max_abs(&got, &rows(&tensors[embed_key]));
        eprintln!("{config} {}: pixels exact, image max abs {diff:e}", pipeline.key());
        assert!(diff <= EMBED_TOL, "{config} {}: image embeddings differ by {diff}", pipeline.key());
    }
    // The two orders really differ on every one of these images: the test above can tell them apart.
    let (a, b) = (rows(&tensors["image_embeds"]), rows(&tensors["image_embeds_rgb_first"]));
    for (i, path) in images.iter().enumerate() {
        let gap = max_abs(&a[i..=i], &b[i..=i]);
        assert!(gap > 1e-3, "{config}: {} embeds the same in both orders ({gap})", path.display());
    }
}

#[test]
fn open_clip_pipeline_tiny_a() {
    check("tiny-a");
}

#[test]
fn open_clip_pipeline_tiny_b() {
    check("tiny-b");
}

/// `alpha` belongs to `rgb_first`; with `open_clip` the command says to leave one out.
#[test]
fn alpha_and_the_open_clip_pipeline_exclude_each_other() {
    use fitcheck::model::cli::{embed_command, EmbedRequest};
    let request = EmbedRequest {
        model: format!("{ROOT}/tiny-a/marqo"),
        texts: vec!["vestido".into()],
        alpha: Some(Alpha::White),
        pipeline: Pipeline::OpenClip,
        ..EmbedRequest::default()
    };
    let err = embed_command(&request).unwrap_err().to_string();
    assert!(err.contains("--alpha applies only to --pipeline rgb_first"), "{err}");
    let out = embed_command(&EmbedRequest { alpha: None, ..request }).unwrap();
    assert!(out.contains("preprocessing: open_clip pipeline: squash 32x32 bicubic in the source mode"), "{out}");
}
