//! Checkpoints the loader must refuse (`tests/fixtures/siglip/broken/`), and the messages it gives.
//! The broken directories carry no tokenizer files: validation must fail before the tokenizer is
//! looked for, so each message is about the weights.

use std::path::{Path, PathBuf};

use fitcheck::embed::ModelSource;
use fitcheck::model::Siglip;

use crate::common::{copy_of, open, spec, MODEL};

fn error_of(dir: &str) -> String {
    let dir = PathBuf::from("tests/fixtures/siglip/broken").join(dir);
    match Siglip::open(&spec(&dir)) {
        Ok(_) => panic!("the broken checkpoint loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn broken_checkpoints_are_refused_with_what_is_wrong() {
    let cases = [
        (
            "missing-tensor",
            vec![
                "broken/missing-tensor/model.safetensors: 1 missing tensor(s): 'model.visual.trunk.blocks.1.attn.proj.weight'",
                "expected a marqo SigLIP checkpoint",
            ],
        ),
        (
            "wrong-shape",
            vec!["1 mis-shaped tensor(s): 'model.text.text_projection.weight' is [32, 31], expected [32, 32]"],
        ),
        (
            "extra-tensor",
            vec!["1 unexpected tensor(s): 'model.text.transformer.resblocks.0.attn.lora_A.weight'", "must be merged"],
        ),
        (
            "pickle-only",
            vec!["broken/pickle-only/pytorch_model.bin: pickled PyTorch weights are refused", "convert the checkpoint to safetensors"],
        ),
    ];
    for (dir, needles) in cases {
        let message = error_of(dir);
        for needle in needles {
            assert!(message.contains(needle), "{dir}: message {message:?} lacks {needle:?}");
        }
        assert!(!message.ends_with('.'), "{dir}: message ends with a period: {message:?}");
    }
}

#[test]
fn a_missing_directory_names_the_fix() {
    let mut spec = spec(Path::new("tests/fixtures/siglip/nope"));
    spec.source = ModelSource::Local("tests/fixtures/siglip/nope".into());
    let message = Siglip::open(&spec).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        message,
        "tests/fixtures/siglip/nope: not a checkpoint directory: give an existing directory or a hub id such as 'Marqo/marqo-fashionSigLIP'"
    );
}

/// A copy of tiny-a/marqo in a temporary directory whose `tensor` has a NaN in its first value.
fn with_nan(tensor: &str) -> tempfile::TempDir {
    use candle_core::{Device, Tensor};
    let dir = copy_of(Path::new(MODEL));
    let weights = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let t = &tensors[tensor];
    let mut values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    values[0] = f32::NAN;
    let broken = Tensor::from_vec(values, t.shape(), &Device::Cpu).unwrap();
    tensors.insert(tensor.to_string(), broken);
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    dir
}

#[test]
fn non_finite_embeddings_are_an_error_naming_the_tower_and_the_input() {
    use fitcheck::embed::Embedder;
    let image = Path::new("tests/fixtures/siglip/images/tiny.png");

    let text_broken = with_nan("model.text.text_projection.weight");
    let model = open(text_broken.path());
    let err = model.embed_texts(&["vestido azul".into(), "jean rojo".into()]).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: the text tower produced non-finite values (NaN or inf) for 'vestido azul': the weights are broken",
            text_broken.path().display()
        )
    );
    // The image tower does not use that tensor: images still embed.
    assert!(model.embed_images(&[image]).is_ok());

    let image_broken = with_nan("model.visual.trunk.attn_pool.norm.weight");
    let model = open(image_broken.path());
    let err = model.embed_images(&[image]).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: the image tower produced non-finite values (NaN or inf) for '{}': the weights are broken",
            image_broken.path().display(),
            image.display()
        )
    );
    assert!(model.embed_texts(&["jean rojo".into()]).is_ok());
}
