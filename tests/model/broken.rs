//! Checkpoints the loader must refuse (`tests/fixtures/siglip/broken/`), and the messages it gives.
//! The broken directories carry no tokenizer files: validation must fail before the tokenizer is
//! looked for, so each message is about the weights.

use std::path::PathBuf;

use fitcheck::embed::{Alpha, ModelSource, ModelSpec};
use fitcheck::model::Siglip;

fn error_of(dir: &str) -> String {
    let dir = PathBuf::from("tests/fixtures/siglip/broken").join(dir);
    let spec = ModelSpec { source: ModelSource::Local(dir), offline: true, alpha: Alpha::Drop };
    match Siglip::open(&spec) {
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
    let spec = ModelSpec {
        source: ModelSource::Local("tests/fixtures/siglip/nope".into()),
        offline: true,
        alpha: Alpha::Drop,
    };
    let message = Siglip::open(&spec).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        message,
        "tests/fixtures/siglip/nope: not a checkpoint directory: give an existing directory or a hub id such as 'Marqo/marqo-fashionSigLIP'"
    );
}
