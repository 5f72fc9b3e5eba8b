//! The CLIP backend against the references in `tests/fixtures/clip/` (see its README): for both tiny
//! configurations (QuickGELU and GELU) and all three layouts, the cleaning and token ids of every query,
//! the resized and center-cropped pixels, the embeddings of identical inputs, and the rankings our own
//! pipeline produces end to end; then checkpoints whose configuration contradicts the weights, and what
//! the `Embedder` interface reports for a CLIP checkpoint.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use fitcheck::embed::{Alpha, Embedder, ModelSource, ModelSpec, Pipeline};
use fitcheck::model::clip::Clip;

use crate::common::spec_with;
use crate::fidelity::{max_abs, rows, EMBED_TOL};

const ROOT: &str = "tests/fixtures/clip";
const FIXTURES: &str = "tests/fixtures";

/// Pixel tolerance in 8-bit levels, measured. Pillow 13 sometimes runs the vertical pass of a two-axis
/// resize first (up to 3 levels on some shapes, e.g. 68x169 to 32x79 or 48x119); `pixels.rs` always
/// runs the horizontal one first, as earlier Pillow did. JPEG decoders differ by a level or two.
const PIXEL_LEVELS: u8 = 3;

fn limit(_path: &Path) -> u8 {
    PIXEL_LEVELS
}

fn open_with(dir: &Path, pipeline: Pipeline) -> Clip {
    Clip::open(&spec_with(dir, Alpha::Drop, pipeline)).unwrap_or_else(|e| panic!("{e}"))
}

struct Reference {
    json: serde_json::Value,
    tensors: std::collections::HashMap<String, Tensor>,
}

fn reference(dir: &Path) -> Reference {
    let json = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let tensors = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    Reference { json, tensors }
}

fn queries() -> Vec<String> {
    serde_json::from_str(&std::fs::read_to_string("tests/fixtures/siglip/queries.json").unwrap()).unwrap()
}

fn u8_rows(t: &Tensor) -> Vec<Vec<u8>> {
    t.flatten_from(1).unwrap().to_dtype(DType::U8).unwrap().to_vec2().unwrap()
}

/// Image indices by descending cosine with `query` (the scores of our own end-to-end pipeline).
fn ranking(query: &[f32], images: &[Vec<f32>]) -> Vec<usize> {
    let score = |v: &Vec<f32>| v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>();
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_by(|&a, &b| score(&images[b]).total_cmp(&score(&images[a])));
    order
}

fn check(config: &str, layout: &str) {
    let dir = PathBuf::from(ROOT).join(config).join(layout);
    let model = open_with(&dir, Pipeline::RgbFirst);
    let r = reference(&dir);
    let queries = queries();
    let what = format!("{config}/{layout}");

    // Cleaning (open_clip layouts) and token ids of every query.
    if let Some(cleaned) = r.json["cleaned"].as_array() {
        let cleaning = model.text_pipeline().cleaning;
        for (i, (q, c)) in queries.iter().zip(cleaned).enumerate() {
            assert_eq!(cleaning.apply(q), c.as_str().unwrap(), "{what}: cleaning of #{i} {q:?}");
        }
    }
    let ids = model.token_ids(&queries).unwrap();
    let want_ids: Vec<Vec<i64>> = r.tensors["input_ids"].to_vec2().unwrap();
    for (i, (got, want)) in ids.iter().zip(&want_ids).enumerate() {
        let got: Vec<i64> = got.iter().map(|&x| i64::from(x)).collect();
        assert_eq!(&got, want, "{what}: token ids of #{i} {:?}", queries[i]);
    }

    // Resized and cropped pixels: exact except JPEG decoding (a level or two between decoders).
    let images: Vec<PathBuf> = r.json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(FIXTURES).join(f.as_str().unwrap()))
        .collect();
    let want_px = u8_rows(&r.tensors["pixels_u8"]);
    for (path, want) in images.iter().zip(&want_px) {
        let got = model.resized(path).unwrap();
        let diff = got.iter().zip(want).map(|(&g, &w)| g.abs_diff(w)).max().unwrap();
        assert!(diff <= limit(path), "{what}: {} is {diff} levels from the reference", path.display());
    }

    // Embeddings of identical inputs.
    let ids_u32: Vec<Vec<u32>> = want_ids.iter().map(|r| r.iter().map(|&x| x as u32).collect()).collect();
    let text = model.text_features(&ids_u32).unwrap();
    let text_diff = max_abs(&text, &rows(&r.tensors["text_embeds"]));
    let flat: Vec<f32> = rows(&r.tensors["pixel_values"].flatten_from(1).unwrap()).concat();
    let image = model.image_features(&flat).unwrap();
    let image_diff = max_abs(&image, &rows(&r.tensors["image_embeds"]));
    eprintln!("{what}: ids identical, text max abs {text_diff:e}, image max abs {image_diff:e}");
    assert!(text_diff <= EMBED_TOL, "{what}: text embeddings differ by {text_diff}");
    assert!(image_diff <= EMBED_TOL, "{what}: image embeddings differ by {image_diff}");

    // End to end: our tokenisation and preprocessing rank the images as the reference does.
    let paths: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
    let ours_img = model.embed_images(&paths).unwrap();
    let picks = [0usize, 5, 12, 30, 39, 47, 61, 72, 95, 113];
    let picked: Vec<String> = picks.iter().map(|&i| queries[i].clone()).collect();
    let ours_txt = model.embed_texts(&picked).unwrap();
    let (ref_img, ref_txt) = (rows(&r.tensors["image_embeds"]), rows(&r.tensors["text_embeds"]));
    for (k, &i) in picks.iter().enumerate() {
        let ours = ranking(&ours_txt[k], &ours_img);
        let score = |v: &Vec<f32>| v.iter().zip(&ref_txt[i]).map(|(a, b)| a * b).sum::<f32>();
        // Every pair the reference orders by more than RANK_GAP is ordered the same way by us; closer
        // pairs may swap, as the pixel tolerance moves an image's scores by up to about 1e-3.
        let pos = |img: usize| ours.iter().position(|&x| x == img).unwrap();
        for a in 0..ref_img.len() {
            for b in 0..ref_img.len() {
                if score(&ref_img[a]) > score(&ref_img[b]) + RANK_GAP {
                    assert!(pos(a) < pos(b), "{what}: query #{i} ranks image {b} above {a}; ours: {ours:?}");
                }
            }
        }
    }
}

/// The score difference below which two images may trade places in the end-to-end ranking.
const RANK_GAP: f32 = 2e-3;

#[test]
fn clip_a_marqo() {
    check("clip-a", "marqo");
}

#[test]
fn clip_a_open_clip() {
    check("clip-a", "open_clip");
}

#[test]
fn clip_a_hf() {
    check("clip-a", "hf");
}

#[test]
fn clip_b_marqo() {
    check("clip-b", "marqo");
}

#[test]
fn clip_b_open_clip() {
    check("clip-b", "open_clip");
}

#[test]
fn clip_b_hf() {
    check("clip-b", "hf");
}

/// open_clip's own order (resize and crop in the file's Pillow mode, then RGB) on the same images.
#[test]
fn source_mode_pipeline_matches_open_clip() {
    for config in ["clip-a", "clip-b"] {
        let dir = PathBuf::from(ROOT).join(config).join("open_clip");
        let model = open_with(&dir, Pipeline::OpenClip);
        let r = reference(&dir);
        let images: Vec<PathBuf> = r.json["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| PathBuf::from(FIXTURES).join(f.as_str().unwrap()))
            .collect();
        for (path, want) in images.iter().zip(u8_rows(&r.tensors["pixels_u8_source_mode"])) {
            let got = model.resized(path).unwrap();
            let diff = got.iter().zip(&want).map(|(&g, &w)| g.abs_diff(w)).max().unwrap();
            assert!(diff <= limit(path), "{config}: {} is {diff} levels from open_clip", path.display());
        }
        let paths: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
        // Embedded from our own pixels, so JPEG decoding noise reaches the embeddings: a looser bound.
        let ours = model.embed_images(&paths).unwrap();
        let diff = max_abs(&ours, &rows(&r.tensors["image_embeds_source_mode"]));
        assert!(diff <= 1e-2, "{config}: source-mode image embeddings differ by {diff}");
    }
}

fn error_of(dir: &str) -> String {
    let dir = PathBuf::from(ROOT).join("broken").join(dir);
    match Clip::open(&spec_with(&dir, Alpha::Drop, Pipeline::RgbFirst)) {
        Ok(_) => panic!("{}: the broken checkpoint loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn configurations_that_contradict_the_weights_are_refused() {
    let cases = [
        ("context", "broken/context/model.safetensors: context length is 16 in the weights but 77 in"),
        ("width", "vision width is 32 in the weights but 768 in"),
        ("heads", "text width 24 is not divisible by 5 attention heads"),
        ("activation", "unsupported model_cfg.quick_gelu \"yes\": write true"),
        ("missing-tensor", "1 missing tensor(s): 'model.visual.ln_post.weight'; expected a marqo CLIP checkpoint"),
    ];
    for (dir, needle) in cases {
        let message = error_of(dir);
        assert!(message.contains(needle), "{dir}: {message:?} lacks {needle:?}");
        assert!(!message.ends_with('.'), "{dir}: {message:?}");
    }
    // The configuration is named with its key, so the fix is clear.
    assert!(error_of("context").contains("open_clip_config.json: model_cfg.text_cfg.context_length"));
}

#[test]
fn a_clip_checkpoint_without_open_clip_config_is_refused_by_name() {
    let dir = crate::common::copy_of(&PathBuf::from(ROOT).join("clip-a/marqo"));
    std::fs::remove_file(dir.path().join("open_clip_config.json")).unwrap();
    let message = Clip::open(&spec_with(dir.path(), Alpha::Drop, Pipeline::RgbFirst)).err().unwrap().to_string();
    assert!(message.contains("open_clip_config.json"), "{message}");
    assert!(message.contains("quick_gelu"), "{message}");
}

#[test]
fn the_embedder_interface_reports_clip_settings() {
    let spec = |dir: &str| ModelSpec {
        source: ModelSource::Local(PathBuf::from(ROOT).join(dir)),
        offline: true,
        alpha: Alpha::Drop,
        pipeline: Pipeline::RgbFirst,
    };
    // model::open sends CLIP weights to the CLIP backend.
    let model = fitcheck::model::open(&spec("clip-a/marqo")).unwrap();
    let r = reference(&PathBuf::from(ROOT).join("clip-a/marqo"));
    let scale: f32 = {
        let st =
            candle_core::safetensors::load(PathBuf::from(ROOT).join("clip-a/marqo/model.safetensors"), &Device::Cpu)
                .unwrap();
        st["model.logit_scale"].to_scalar::<f32>().unwrap().exp()
    };
    assert_eq!(model.logit_scale_bias(), Some((scale, None)));
    assert_eq!(model.context_length(), Some(16));
    assert_eq!(r.json["context_length"], 16);
    // Counted before truncation, start and end included, as open_clip's SimpleTokenizer counts them.
    let queries = queries();
    let want: Vec<usize> =
        r.json["token_counts"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap() as usize).collect();
    assert_eq!(model.token_counts(&queries).unwrap().unwrap(), want);
    assert!(want.iter().any(|&n| n > 16), "the queries include texts longer than the context");
    let fp = model.fingerprint();
    assert!(
        fp.preprocessing.starts_with("clip: shortest side 32 bicubic, center crop 32x32 (round)"),
        "{}",
        fp.preprocessing
    );
    assert!(fp.preprocessing.contains("open_clip lower, context 16 pad 0"), "{}", fp.preprocessing);
    assert!(fp.preprocessing.contains("marqo layout, activation quick_gelu/quick_gelu"), "{}", fp.preprocessing);
    let hf = fitcheck::model::open(&spec("clip-b/hf")).unwrap();
    assert!(hf.fingerprint().preprocessing.contains("center crop 48x48 (floor)"), "{}", hf.fingerprint().preprocessing);
    assert!(hf.fingerprint().preprocessing.contains("activation gelu/gelu"));
    assert_ne!(fp.cache_key(), hf.fingerprint().cache_key());

    // The causal mask keeps padding out of the pooled position: padding to the longest text changes nothing.
    let texts: Vec<String> = ["vestido", "remera roja de algodón", "jean"].iter().map(|s| s.to_string()).collect();
    for m in [&model, &hf] {
        let full = m.embed_texts(&texts).unwrap();
        let short = m.embed_texts_padded_to_longest(&texts).unwrap();
        assert!(max_abs(&full, &short) <= EMBED_TOL, "{}", max_abs(&full, &short));
    }
}
