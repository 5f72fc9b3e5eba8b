//! `fitcheck embed` and the alpha option, on the tiny fixture checkpoints.

use std::path::{Path, PathBuf};

use fitcheck::embed::{Alpha, Pipeline};
use fitcheck::model::cli::{embed_command, EmbedRequest};
use fitcheck::model::Siglip;

use crate::common::{copy_of, open, spec_with, MODEL};

#[test]
fn embed_prints_cleaned_text_tokens_and_vectors() {
    let request = EmbedRequest {
        model: MODEL.into(),
        texts: vec!["Vestido_ROJO!".into()],
        images: vec![PathBuf::from("tests/fixtures/siglip/images/tiny.png")],
        tokens: true,
        ..EmbedRequest::default()
    };
    let out = embed_command(&request).unwrap();
    assert!(out.starts_with("model: tests/fixtures/siglip/tiny-a/marqo @ local\n"), "{out}");
    assert!(out.contains("\ntext \"Vestido_ROJO!\"\ncleaned \"vestido rojo\"\ntokens 15 258 1 1"), "{out}");
    assert!(out.contains("\nimage tests/fixtures/siglip/images/tiny.png\nembedding[32] "), "{out}");

    let json: serde_json::Value =
        serde_json::from_str(&embed_command(&EmbedRequest { json: true, ..request }).unwrap()).unwrap();
    let text = &json["texts"][0];
    assert_eq!(text["cleaned"], "vestido rojo");
    assert_eq!(text["tokens"].as_array().unwrap().len(), 16);
    let v: Vec<f64> = text["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "not normalised: {norm}");
}

#[test]
fn embed_without_inputs_says_what_to_give() {
    let err = embed_command(&EmbedRequest { model: MODEL.into(), ..EmbedRequest::default() }).unwrap_err();
    assert_eq!(err.to_string(), format!("{MODEL}: nothing to embed: give at least one --text or --image"));
}

/// The transparent third of `rgba_cutout.png` keeps the colours under it by default (PIL), and turns
/// white or black when asked.
#[test]
fn alpha_modes_differ_only_under_transparency() {
    let path = Path::new("tests/fixtures/siglip/images/rgba_cutout.png");
    let pixels = |alpha| {
        let model = Siglip::open(&spec_with(Path::new(MODEL), alpha, Pipeline::RgbFirst)).unwrap();
        model.pixel_pipeline().rgb(path).unwrap()
    };
    let (drop, white, black) = (pixels(Alpha::Drop), pixels(Alpha::White), pixels(Alpha::Black));
    let decoded = image::open(path).unwrap().to_rgba8();
    let mut transparent = 0;
    for (x, y, p) in decoded.enumerate_pixels() {
        let [r, g, b, a] = p.0;
        assert_eq!(drop.get_pixel(x, y).0, [r, g, b]);
        if a == 0 {
            transparent += 1;
            assert_eq!(white.get_pixel(x, y).0, [255; 3]);
            assert_eq!(black.get_pixel(x, y).0, [0; 3]);
        } else if a == 255 {
            assert_eq!(white.get_pixel(x, y).0, [r, g, b]);
        }
    }
    assert!(transparent > 1000, "the fixture should have a transparent region");
}

/// A checkpoint saved in f16 loads (as f32) and stays close to the f32 reference.
#[test]
fn half_precision_weights_load() {
    use candle_core::{DType, Device};
    let dir = copy_of(Path::new(MODEL));
    let weights = dir.path().join("model.safetensors");
    let tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let half: std::collections::HashMap<String, candle_core::Tensor> =
        tensors.into_iter().map(|(k, t)| (k, t.to_dtype(DType::F16).unwrap())).collect();
    candle_core::safetensors::save(&half, &weights).unwrap();

    let texts = vec!["vestido rojo largo".to_string()];
    use fitcheck::embed::Embedder;
    let a = open(Path::new(MODEL)).embed_texts(&texts).unwrap();
    let half_model = open(dir.path());
    let b = half_model.embed_texts(&texts).unwrap();
    let diff = a[0].iter().zip(&b[0]).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff > 0.0 && diff < 1e-2, "f16 weights differ by {diff}");
    assert_ne!(half_model.fingerprint().content, open(Path::new(MODEL)).fingerprint().content);
}

/// A description that cleans to nothing is refused with the original text, not embedded as a lone
/// end-of-text token; the Python-equivalent token ids stay available for fidelity checks.
#[test]
fn a_query_that_cleans_to_nothing_is_refused() {
    use fitcheck::embed::Embedder;
    let model = open(Path::new(MODEL));
    for text in ["¿?!", "...", "  \t", ""] {
        let err = model.embed_texts(&["vestido rojo".into(), text.into()]).unwrap_err().to_string();
        assert!(err.contains(&format!("the query '{text}' is empty after cleaning (open_clip canonicalize")), "{err}");
        assert!(err.starts_with(&format!("{MODEL}/tokenizer.json: ")), "{err}");
    }
    // What Python tokenises: `</s>` and padding for a text that cleans to "" ...
    assert_eq!(model.token_ids(&["...".into()]).unwrap()[0], vec![1; 16]);
    // ... and the inverted question mark, which no cleaning removes, for "¿?!".
    assert_ne!(model.token_ids(&["¿?!".into()]).unwrap()[0], vec![1; 16]);
    let err =
        embed_command(&EmbedRequest { model: MODEL.into(), texts: vec!["¿?!".into()], ..EmbedRequest::default() })
            .unwrap_err();
    assert!(
        err.to_string().contains("the query '¿?!' is empty after cleaning (open_clip canonicalize, only '¿' is left)"),
        "{err}"
    );
    // Words, symbols and emoji are something to embed.
    assert!(model.embed_texts(&["👗".into(), "¿vestido?".into()]).is_ok());
}
