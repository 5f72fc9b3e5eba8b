//! What a checkpoint's JSON files say about its architecture, text cleaning and image preprocessing.
//!
//! The weights' shapes are the authority on sizes (see [`super::layout`]); the configuration fills in
//! what shapes cannot tell (attention heads, GELU flavour, LayerNorm eps, cleaning, mean and std) and
//! is cross-checked against the shapes where it states a size. Every value read is optional: a
//! Marqo `open_clip_config.json` names its vision tower only by timm model name, so the vision
//! width, depth and patch size come from the shapes, and the head count follows the rule in
//! [`Tower::heads`]. Options this backend cannot honour (a causal text mask, a resize other than
//! squash, a filter other than bicubic) are errors naming the file and the key, never ignored.

use std::path::{Path, PathBuf};

use candle_nn::Activation;
use serde_json::Value;

use super::text::Cleaning;
use crate::error::{Error, Result};

/// Sizes and settings stated by the configuration, each with the `file: key` it came from.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    pub embed_dim: Option<(usize, String)>,
    pub vision: Tower,
    pub text: Tower,
    pub cleaning: Option<Cleaning>,
    pub image_size: Option<(usize, String)>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    /// `open_clip_model_name` from config.json, without `hf-hub:` (where tokenizer files can be found).
    pub base_repo: Option<String>,
}

/// What the configuration says about one tower.
#[derive(Debug, Clone, Default)]
pub struct Tower {
    pub width: Option<(usize, String)>,
    pub layers: Option<(usize, String)>,
    pub heads: Option<usize>,
    pub head_width: Option<usize>,
    /// (width, heads) of the standard timm size the tower's model name spells (`vit_so400m_...`).
    pub named_size: Option<(usize, usize)>,
    pub patch: Option<(usize, String)>,
    pub context: Option<(usize, String)>,
    pub vocab: Option<(usize, String)>,
    pub eps: Option<f64>,
    pub act: Option<Activation>,
}

impl Tower {
    /// Reads the size keys an open_clip tower config may state (`width`, `layers`, `heads`,
    /// `head_width`) from `cfg`, found in `file` under `prefix`.
    fn read_shape(&mut self, cfg: &Value, file: &Path, prefix: &str) {
        self.width = sourced(cfg, "width", file, prefix);
        self.layers = sourced(cfg, "layers", file, prefix);
        self.heads = usize_at(cfg, "heads");
        self.head_width = usize_at(cfg, "head_width");
    }

    /// The head count: stated heads, else `width / head_width`, else the heads of the standard timm
    /// size the model name spells when the width agrees (so400m: 16, not 1152 / 64), else `width / 64`
    /// (open_clip's default head width, which gives ViT-B/16's 12 heads). At least one head.
    pub fn heads(&self, width: usize) -> usize {
        let named = self.named_size.filter(|&(w, _)| w == width).map(|(_, h)| h);
        self.heads
            .or_else(|| self.head_width.filter(|&hw| hw > 0).map(|hw| width / hw))
            .or(named)
            .unwrap_or(width / 64)
            .max(1)
    }
}

/// Width and heads of timm's standard ViT sizes, by the size word of a model name
/// (`vit_<size>_patch16_siglip_224`).
fn timm_size(name: &str) -> Option<(usize, usize)> {
    let size = name.strip_prefix("vit_")?.split('_').next()?;
    Some(match size {
        "tiny" => (192, 3),
        "small" => (384, 6),
        "medium" => (512, 8),
        "base" => (768, 12),
        "large" => (1024, 16),
        "so400m" => (1152, 16),
        "huge" => (1280, 16),
        "giant" => (1408, 16),
        "giantopt" => (1536, 16),
        _ => return None,
    })
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, format!("invalid JSON: {e}")))
}

fn usize_at(v: &Value, key: &str) -> Option<usize> {
    v.get(key)?.as_u64().map(|n| n as usize)
}

fn sourced(v: &Value, key: &str, file: &Path, prefix: &str) -> Option<(usize, String)> {
    usize_at(v, key).map(|n| (n, format!("{}: {prefix}{key}", file.display())))
}

fn triple(v: Option<&Value>) -> Option<[f32; 3]> {
    let v = v?;
    if let Some(x) = v.as_f64() {
        return Some([x as f32; 3]);
    }
    let a = v.as_array()?;
    match a.as_slice() {
        [x, y, z] => Some([x.as_f64()? as f32, y.as_f64()? as f32, z.as_f64()? as f32]),
        _ => None,
    }
}

fn unsupported(file: &Path, key: &str, value: &Value, fix: &str) -> Error {
    Error::file(file, format!("unsupported {key} {value}: {fix}"))
}

/// Adds what an open_clip `open_clip_config.json` says.
pub fn open_clip(hints: &mut Hints, file: &Path) -> Result<()> {
    let root = read_json(file)?;
    let model = root.get("model_cfg").unwrap_or(&Value::Null);
    hints.embed_dim = sourced(model, "embed_dim", file, "model_cfg.");
    let vision = model.get("vision_cfg").unwrap_or(&Value::Null);
    if let Some(pool) = vision.get("timm_pool").filter(|p| p.as_str() != Some("map")) {
        return Err(unsupported(
            file,
            "vision_cfg.timm_pool",
            pool,
            "only SigLIP's attention pooling ('map') is implemented",
        ));
    }
    let v = &mut hints.vision;
    v.read_shape(vision, file, "model_cfg.vision_cfg.");
    v.patch = sourced(vision, "patch_size", file, "model_cfg.vision_cfg.");
    // timm towers: the model name spells the patch size (`vit_base_patch16_siglip_224`).
    let timm = vision.get("timm_model_name").and_then(Value::as_str).unwrap_or("");
    v.named_size = timm_size(timm);
    if v.patch.is_none() {
        let digits = timm.split("patch").nth(1).map(|s| s.chars().take_while(char::is_ascii_digit).collect::<String>());
        v.patch =
            digits.and_then(|d| d.parse().ok()).map(|p| (p, format!("{}: timm model name '{timm}'", file.display())));
    }
    hints.image_size = match vision.get("image_size") {
        Some(Value::Array(a)) => a.first().and_then(Value::as_u64).map(|n| n as usize),
        Some(s) => s.as_u64().map(|n| n as usize),
        None => None,
    }
    .map(|n| (n, format!("{}: model_cfg.vision_cfg.image_size", file.display())));
    v.eps = Some(1e-6);
    v.act = Some(Activation::Gelu);

    let text = model.get("text_cfg").unwrap_or(&Value::Null);
    if text.get("no_causal_mask").and_then(Value::as_bool) != Some(true) {
        let value = text.get("no_causal_mask").cloned().unwrap_or(Value::Null);
        return Err(unsupported(
            file,
            "text_cfg.no_causal_mask",
            &value,
            "only SigLIP text towers without a causal mask are implemented",
        ));
    }
    if let Some(pool) = text.get("pool_type").filter(|p| p.as_str() != Some("last")) {
        return Err(unsupported(file, "text_cfg.pool_type", pool, "only 'last' pooling is implemented"));
    }
    let t = &mut hints.text;
    t.read_shape(text, file, "model_cfg.text_cfg.");
    t.context = sourced(text, "context_length", file, "model_cfg.text_cfg.");
    t.vocab = sourced(text, "vocab_size", file, "model_cfg.text_cfg.");
    // open_clip's LayerNorm default eps is 1e-5; SigLIP configs set 1e-6.
    t.eps = Some(text.pointer("/norm_kwargs/eps").and_then(Value::as_f64).unwrap_or(1e-5));
    let tanh = text.pointer("/act_kwargs/approximate").and_then(Value::as_str) == Some("tanh");
    t.act = Some(if tanh { Activation::GeluPytorchTanh } else { Activation::Gelu });
    let clean = text.pointer("/tokenizer_kwargs/clean").and_then(Value::as_str).unwrap_or("whitespace");
    hints.cleaning = Some(Cleaning::open_clip(clean).ok_or_else(|| {
        unsupported(
            file,
            "text_cfg.tokenizer_kwargs.clean",
            &Value::from(clean),
            "use 'canonicalize', 'whitespace' or 'lower'",
        )
    })?);

    if let Some(pre) = root.get("preprocess_cfg") {
        if let Some(mode) = pre.get("resize_mode").filter(|m| m.as_str() != Some("squash")) {
            return Err(unsupported(file, "preprocess_cfg.resize_mode", mode, "only 'squash' is implemented"));
        }
        if let Some(f) = pre.get("interpolation").filter(|f| f.as_str() != Some("bicubic")) {
            return Err(unsupported(file, "preprocess_cfg.interpolation", f, "only 'bicubic' is implemented"));
        }
        hints.mean = triple(pre.get("mean"));
        hints.std = triple(pre.get("std"));
    }
    Ok(())
}

/// Adds what a transformers `config.json` says (`text_config`, `vision_config`, Marqo's
/// `open_clip_model_name`).
pub fn hf(hints: &mut Hints, file: &Path) -> Result<()> {
    let root = read_json(file)?;
    if let Some(name) = root.get("open_clip_model_name").and_then(Value::as_str) {
        hints.base_repo = Some(name.strip_prefix("hf-hub:").unwrap_or(name).to_string());
    }
    for (key, tower) in [("vision_config", &mut hints.vision), ("text_config", &mut hints.text)] {
        let Some(c) = root.get(key) else { continue };
        let prefix = format!("{key}.");
        tower.width = sourced(c, "hidden_size", file, &prefix);
        tower.layers = sourced(c, "num_hidden_layers", file, &prefix);
        tower.heads = usize_at(c, "num_attention_heads").or(Some(12));
        tower.patch = sourced(c, "patch_size", file, &prefix);
        tower.context = sourced(c, "max_position_embeddings", file, &prefix);
        tower.vocab = sourced(c, "vocab_size", file, &prefix);
        tower.eps = Some(c.get("layer_norm_eps").and_then(Value::as_f64).unwrap_or(1e-6));
        let act = c.get("hidden_act").cloned().unwrap_or(Value::from("gelu_pytorch_tanh"));
        let parsed: Option<Activation> = serde_json::from_value(act.clone()).ok();
        tower.act = Some(parsed.ok_or_else(|| {
            unsupported(file, &format!("{key}.hidden_act"), &act, "use 'gelu' or 'gelu_pytorch_tanh'")
        })?);
        if key == "vision_config" {
            hints.image_size = sourced(c, "image_size", file, &prefix);
        } else if let Some(p) = sourced(c, "projection_size", file, &prefix) {
            hints.embed_dim = Some(p);
        }
    }
    Ok(())
}

/// Adds mean and std from a transformers `preprocessor_config.json` where nothing set them yet.
pub fn preprocessor(hints: &mut Hints, file: &Path) -> Result<()> {
    let root = read_json(file)?;
    if let Some(r) = root.get("resample").filter(|r| r.as_u64() != Some(3)) {
        return Err(unsupported(file, "resample", r, "only 3 (bicubic) is implemented"));
    }
    if root.get("do_normalize").and_then(Value::as_bool) != Some(false) {
        hints.mean = hints.mean.or(triple(root.get("image_mean")));
        hints.std = hints.std.or(triple(root.get("image_std")));
    } else {
        hints.mean = Some([0.0; 3]);
        hints.std = Some([1.0; 3]);
    }
    if let Some(size) = root.get("size") {
        let (h, w) = (usize_at(size, "height"), usize_at(size, "width"));
        if h.is_none() || h != w {
            return Err(unsupported(file, "size", size, "only a square {\"height\": S, \"width\": S} is implemented"));
        }
        if hints.image_size.is_none() {
            hints.image_size = h.map(|s| (s, format!("{}: size.height", file.display())));
        }
    }
    Ok(())
}

/// The transformers tokenizer's lower-casing setting (`do_lower_case`, true by default).
pub fn siglip_lower(tokenizer_config: Option<&PathBuf>) -> Result<bool> {
    match tokenizer_config {
        Some(f) => Ok(read_json(f)?.get("do_lower_case").and_then(Value::as_bool).unwrap_or(true)),
        None => Ok(true),
    }
}

#[cfg(test)]
mod head_tests {
    use super::*;

    #[test]
    fn head_count_rules() {
        let named = |name: &str| Tower { named_size: timm_size(name), ..Tower::default() };
        // The standard sizes by name, when the width agrees.
        assert_eq!(named("vit_base_patch16_siglip_224").heads(768), 12);
        assert_eq!(named("vit_so400m_patch14_siglip_384").heads(1152), 16);
        assert_eq!(named("vit_large_patch16_siglip_256").heads(1024), 16);
        // A custom tower that borrows a size word but not its width: width / 64.
        assert_eq!(named("vit_base_custom").heads(128), 2);
        // Stated values win, in order.
        let stated =
            Tower { heads: Some(4), head_width: Some(16), named_size: timm_size("vit_base_x"), ..Tower::default() };
        assert_eq!(stated.heads(768), 4);
        let by_width = Tower { head_width: Some(24), ..Tower::default() };
        assert_eq!(by_width.heads(96), 4);
        assert_eq!(Tower::default().heads(32), 1);
    }
}
