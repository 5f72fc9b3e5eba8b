//! Fidelity of the SigLIP backend against the Python reference outputs in `tests/fixtures/siglip/`
//! (see its README): for both tiny configurations and all three layouts, the token ids of every
//! query, the cleaned strings, the pixels before normalisation, the embeddings of identical inputs,
//! and the rankings our own end-to-end pipeline produces.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use fitcheck::embed::Embedder;

use crate::common::{open, ROOT};

/// The allowed differences: pixels in 8-bit levels, embeddings in max abs.
const PIXEL_LEVELS: f32 = 2.0;
pub const EMBED_TOL: f32 = 1e-5;

struct Reference {
    json: serde_json::Value,
    tensors: HashMap<String, Tensor>,
}

fn reference(dir: &Path) -> Reference {
    let json = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let tensors = candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    Reference { json, tensors }
}

pub fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_dtype(DType::F32).unwrap().to_vec2().unwrap()
}

pub fn max_abs(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs())).fold(0.0, f32::max)
}

fn queries() -> Vec<String> {
    serde_json::from_str(&std::fs::read_to_string(Path::new(ROOT).join("queries.json")).unwrap()).unwrap()
}

/// Image indices by descending cosine with `query` (vectors are normalised).
fn ranking(query: &[f32], images: &[Vec<f32>]) -> Vec<usize> {
    let score = |v: &Vec<f32>| v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>();
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_by(|&a, &b| score(&images[b]).total_cmp(&score(&images[a])));
    order
}

fn check(config: &str, layout: &str) {
    let dir = PathBuf::from(ROOT).join(config).join(layout);
    let model = open(&dir);
    let r = reference(&dir);
    let queries = queries();

    // Cleaning and token ids, for every query.
    let cleaned = r.json["cleaned"].as_array().unwrap();
    let cleaning = model.text_pipeline().cleaning;
    let bad: Vec<String> = queries
        .iter()
        .zip(cleaned)
        .enumerate()
        .filter(|(_, (q, c))| cleaning.apply(q) != c.as_str().unwrap())
        .map(|(i, (q, c))| format!("#{i} {q:?}: got {:?}, expected {c}", cleaning.apply(q)))
        .collect();
    assert!(bad.is_empty(), "{config}/{layout}: cleaning differs:\n{}", bad.join("\n"));
    let ids = model.token_ids(&queries).unwrap();
    let want_ids: Vec<Vec<i64>> = r.tensors["input_ids"].to_vec2().unwrap();
    let mut id_mismatches = 0;
    for (i, (got, want)) in ids.iter().zip(&want_ids).enumerate() {
        let got: Vec<i64> = got.iter().map(|&x| i64::from(x)).collect();
        if &got != want {
            id_mismatches += 1;
            eprintln!("{config}/{layout} #{i} {:?}: ids {got:?}, expected {want:?}", queries[i]);
        }
    }
    assert_eq!(id_mismatches, 0, "{config}/{layout}: token ids differ");

    // Pixels before normalisation, within PIXEL_LEVELS of PIL.
    let images: Vec<PathBuf> = r.json["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(ROOT).join("images").join(f.as_str().unwrap()))
        .collect();
    let ref_px = r.tensors["pixel_values"].flatten_from(1).unwrap();
    let ref_px = rows(&ref_px);
    let mut worst_px: f32 = 0.0;
    for (path, want) in images.iter().zip(&ref_px) {
        let got = model.pixel_pipeline().resized(path).unwrap();
        let diff = got.iter().zip(want).map(|(&g, &w)| (f32::from(g) - (w + 1.0) * 127.5).abs()).fold(0.0, f32::max);
        // PNG and WebP decode identically and the resize is PIL's own arithmetic: exact. JPEG decoders
        // (jpeg-decoder here, libjpeg-turbo under PIL) differ by a level or two.
        let is_jpeg = path.extension().is_some_and(|e| e == "jpg");
        let limit = if is_jpeg { PIXEL_LEVELS } else { 0.0 };
        assert!(
            diff <= limit + 1e-3,
            "{config}/{layout}: {} is {diff} levels from PIL (limit {limit})",
            path.display()
        );
        worst_px = worst_px.max(diff);
    }

    // Embeddings of identical inputs.
    let ids_u32: Vec<Vec<u32>> = want_ids.iter().map(|r| r.iter().map(|&x| x as u32).collect()).collect();
    let text = model.text_features(&ids_u32).unwrap();
    let text_diff = max_abs(&text, &rows(&r.tensors["text_embeds"]));
    let flat: Vec<f32> = ref_px.concat();
    let image = model.image_features(&flat).unwrap();
    let image_diff = max_abs(&image, &rows(&r.tensors["image_embeds"]));
    eprintln!(
        "{config}/{layout}: ids identical ({} queries), pixels max {worst_px} levels, text max abs {text_diff:e}, image max abs {image_diff:e}",
        queries.len()
    );
    assert!(text_diff <= EMBED_TOL, "{config}/{layout}: text embeddings differ by {text_diff}");
    assert!(image_diff <= EMBED_TOL, "{config}/{layout}: image embeddings differ by {image_diff}");

    // End to end: our tokenisation and preprocessing rank the images as the reference does.
    let paths: Vec<&Path> = images.iter().map(PathBuf::as_path).collect();
    let ours_img = model.embed_images(&paths).unwrap();
    let picks = [0usize, 5, 12, 30, 39, 47, 61, 72, 95, 113];
    let picked: Vec<String> = picks.iter().map(|&i| queries[i].clone()).collect();
    let ours_txt = model.embed_texts(&picked).unwrap();
    let ref_img = rows(&r.tensors["image_embeds"]);
    let ref_txt = rows(&r.tensors["text_embeds"]);
    for (k, &i) in picks.iter().enumerate() {
        assert_eq!(
            ranking(&ours_txt[k], &ours_img),
            ranking(&ref_txt[i], &ref_img),
            "{config}/{layout}: ranking for query #{i} {:?} differs",
            queries[i]
        );
    }
}

#[test]
fn tiny_a_marqo() {
    check("tiny-a", "marqo");
}

#[test]
fn tiny_a_open_clip() {
    check("tiny-a", "open_clip");
}

#[test]
fn tiny_a_hf() {
    check("tiny-a", "hf");
}

#[test]
fn tiny_b_marqo() {
    check("tiny-b", "marqo");
}

#[test]
fn tiny_b_open_clip() {
    check("tiny-b", "open_clip");
}

#[test]
fn tiny_b_hf() {
    check("tiny-b", "hf");
}

/// The basic_clean step alone (ftfy + HTML unescape + strip), pinned against Python for every query.
#[test]
fn basic_clean_matches_python() {
    let r = reference(&PathBuf::from(ROOT).join("tiny-a/marqo"));
    let want = r.json["basic_clean"].as_array().unwrap();
    let bad: Vec<String> = queries()
        .iter()
        .zip(want)
        .enumerate()
        .filter(|(_, (q, w))| fitcheck::model::ftfy::basic_clean(q) != w.as_str().unwrap())
        .map(|(i, (q, w))| format!("#{i} {q:?}: got {:?}, expected {w}", fitcheck::model::ftfy::basic_clean(q)))
        .collect();
    assert!(bad.is_empty(), "basic_clean differs:\n{}", bad.join("\n"));
}
