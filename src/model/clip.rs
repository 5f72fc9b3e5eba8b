//! The CLIP backend: Marqo fashionCLIP pushes, raw open_clip CLIP files and transformers' `CLIPModel`.
//!
//! Three layouts, told apart by tensor names ([`ClipLayout::detect`]): `model.` + open_clip names in
//! `model.safetensors` (Marqo's `AutoModel` wrapper keeps the open_clip model as `.model`), the same names
//! without the prefix (`open_clip_model.safetensors`), and transformers' names (`vision_model.*`,
//! `text_model.*`, `visual_projection`, `text_projection`). One table (`rows`) names every tensor in
//! both schemes with its shape; sizes come from the shapes, the configuration must agree with them, and
//! the file must hold exactly the table's tensors: every missing, unexpected or mis-shaped one is listed
//! in one error.
//!
//! The forward pass is written here rather than taken from candle-transformers, whose CLIP only knows
//! QuickGELU and a fixed LayerNorm eps; open_clip's ViT-B-16 (Marqo fashionCLIP's base) uses exact GELU.
//! It follows open_clip: text = token + position embeddings, pre-norm residual blocks under a causal mask,
//! final LayerNorm, the end-of-text position (the first highest id, open_clip's `argmax` pooling; for
//! transformers files whose `eos_token_id` is not the legacy 2, the first `eos_token_id`, as transformers
//! does), times the projection; image = patch convolution without bias, class token first, positions,
//! `ln_pre`, blocks without mask, `ln_post` of the class token, times the projection. Activation (QuickGELU
//! or GELU) comes from the configuration (`quick_gelu` in open_clip's, `hidden_act` in transformers').
//!
//! Text: open_clip layouts clean as open_clip's `SimpleTokenizer` (`lower` unless `tokenizer_kwargs.clean`
//! says otherwise: ftfy, HTML unescape, white space, lower case), tokenise with the checkpoint's
//! `tokenizer.json` and pad with zeros, as open_clip does; transformers files leave cleaning to
//! `tokenizer.json` and pad with the pad token. Images: shortest side resized and center-cropped
//! (`resize_mode: shortest`, open_clip's default and transformers' `shortest_edge`), or squashed when the
//! configuration says so. Invariant: a checkpoint loads completely and exactly or is refused with an error
//! naming the file and the fix.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear};
use serde_json::Value;

use super::config::read_json;
use super::pixels::{CropRounding, PixelPipeline};
use super::source::{HubRepo, Source};
use super::text::{Cleaning, TextPipeline, TokenizerFiles};
use super::weights::Header;
use super::{IMAGE_BATCH, TEXT_BATCH};
use crate::embed::{Embedder, Fingerprint, ModelSource, ModelSpec};
use crate::error::{Error, Result};

/// OpenAI CLIP's image mean and std (open_clip's `OPENAI_DATASET_MEAN` / `_STD`), used when the
/// configuration states none. The digits are open_clip's, so a reader can match them.
#[allow(clippy::excessive_precision)]
pub const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
#[allow(clippy::excessive_precision)]
pub const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];

/// Which naming scheme a CLIP weights file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipLayout {
    Marqo,
    OpenClip,
    Hf,
}

impl ClipLayout {
    /// The CLIP layout of `header`, if its tensor names are a CLIP's.
    pub fn detect(header: &Header) -> Option<ClipLayout> {
        let has = |n: &str| header.tensors.contains_key(n);
        if has("model.visual.class_embedding") {
            Some(ClipLayout::Marqo)
        } else if has("visual.class_embedding") {
            Some(ClipLayout::OpenClip)
        } else if has("vision_model.embeddings.class_embedding") {
            Some(ClipLayout::Hf)
        } else {
            None
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            ClipLayout::Marqo => "marqo",
            ClipLayout::OpenClip => "open_clip",
            ClipLayout::Hf => "hf",
        }
    }

    fn prefix(self) -> &'static str {
        if self == ClipLayout::Marqo {
            "model."
        } else {
            ""
        }
    }
}

/// The sizes of a CLIP model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipDims {
    pub v_width: usize,
    pub v_layers: usize,
    pub v_heads: usize,
    pub v_mlp: usize,
    pub patch: usize,
    pub grid: usize,
    pub t_width: usize,
    pub t_layers: usize,
    pub t_heads: usize,
    pub t_mlp: usize,
    pub context: usize,
    pub vocab: usize,
    pub embed: usize,
}

impl ClipDims {
    pub fn image_size(&self) -> usize {
        self.grid * self.patch
    }
}

/// How one open_clip tensor becomes its transformers tensor(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Map {
    Copy,
    /// open_clip `[in, out]` projection matrix, transformers `[out, in]` linear weight.
    Transpose,
    /// Fused `in_proj` `[3n, …]`, split in q, k, v along dim 0.
    SplitQkv,
    /// A scalar: `[]` or any one-element shape.
    Scalar,
}

/// One tensor: open_clip name (no prefix), transformers name(s), open_clip shape, mapping.
struct Row {
    open_clip: String,
    hf: Vec<String>,
    shape: Vec<usize>,
    map: Map,
}

/// Every tensor of a CLIP of sizes `d`, in both namings.
fn rows(d: &ClipDims) -> Vec<Row> {
    let mut out = Vec::new();
    let mut add = |oc: &str, hf: &[&str], shape: Vec<usize>, map: Map| {
        out.push(Row { open_clip: oc.into(), hf: hf.iter().map(|s| s.to_string()).collect(), shape, map });
    };
    let (vw, tw) = (d.v_width, d.t_width);
    add(
        "visual.conv1.weight",
        &["vision_model.embeddings.patch_embedding.weight"],
        vec![vw, 3, d.patch, d.patch],
        Map::Copy,
    );
    add("visual.class_embedding", &["vision_model.embeddings.class_embedding"], vec![vw], Map::Copy);
    add(
        "visual.positional_embedding",
        &["vision_model.embeddings.position_embedding.weight"],
        vec![d.grid * d.grid + 1, vw],
        Map::Copy,
    );
    add("visual.proj", &["visual_projection.weight"], vec![vw, d.embed], Map::Transpose);
    add("token_embedding.weight", &["text_model.embeddings.token_embedding.weight"], vec![d.vocab, tw], Map::Copy);
    add("positional_embedding", &["text_model.embeddings.position_embedding.weight"], vec![d.context, tw], Map::Copy);
    add("text_projection", &["text_projection.weight"], vec![tw, d.embed], Map::Transpose);
    add("logit_scale", &["logit_scale"], vec![], Map::Scalar);
    for s in ["weight", "bias"] {
        add(&format!("visual.ln_pre.{s}"), &[&format!("vision_model.pre_layrnorm.{s}")], vec![vw], Map::Copy);
        add(&format!("visual.ln_post.{s}"), &[&format!("vision_model.post_layernorm.{s}")], vec![vw], Map::Copy);
        add(&format!("ln_final.{s}"), &[&format!("text_model.final_layer_norm.{s}")], vec![tw], Map::Copy);
    }
    let towers = [
        ("visual.transformer.resblocks", "vision_model.encoder.layers", d.v_layers, vw, d.v_mlp),
        ("transformer.resblocks", "text_model.encoder.layers", d.t_layers, tw, d.t_mlp),
    ];
    for (oc, hf, layers, w, m) in towers {
        for i in 0..layers {
            let (a, b) = (format!("{oc}.{i}"), format!("{hf}.{i}"));
            for s in ["weight", "bias"] {
                let lin = |out: usize, inp: usize| if s == "weight" { vec![out, inp] } else { vec![out] };
                add(&format!("{a}.ln_1.{s}"), &[&format!("{b}.layer_norm1.{s}")], vec![w], Map::Copy);
                add(&format!("{a}.ln_2.{s}"), &[&format!("{b}.layer_norm2.{s}")], vec![w], Map::Copy);
                add(
                    &format!("{a}.attn.in_proj_{s}"),
                    &[
                        &format!("{b}.self_attn.q_proj.{s}"),
                        &format!("{b}.self_attn.k_proj.{s}"),
                        &format!("{b}.self_attn.v_proj.{s}"),
                    ],
                    lin(3 * w, w),
                    Map::SplitQkv,
                );
                add(&format!("{a}.attn.out_proj.{s}"), &[&format!("{b}.self_attn.out_proj.{s}")], lin(w, w), Map::Copy);
                add(&format!("{a}.mlp.c_fc.{s}"), &[&format!("{b}.mlp.fc1.{s}")], lin(m, w), Map::Copy);
                add(&format!("{a}.mlp.c_proj.{s}"), &[&format!("{b}.mlp.fc2.{s}")], lin(w, m), Map::Copy);
            }
        }
    }
    out
}

/// Buffers transformers may save that carry no weights.
const IGNORED: [&str; 2] = ["text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"];

impl Row {
    /// Names and shapes in `layout` (prefix included).
    fn in_layout(&self, layout: ClipLayout) -> Vec<(String, Vec<usize>)> {
        if layout != ClipLayout::Hf {
            return vec![(format!("{}{}", layout.prefix(), self.open_clip), self.shape.clone())];
        }
        let shape = match self.map {
            Map::Transpose => vec![self.shape[1], self.shape[0]],
            Map::SplitQkv => [vec![self.shape[0] / 3], self.shape[1..].to_vec()].concat(),
            _ => self.shape.clone(),
        };
        self.hf.iter().map(|n| (n.clone(), shape.clone())).collect()
    }
}

/// The number of blocks under `prefix`: one more than the highest index.
fn count_blocks(header: &Header, prefix: &str) -> usize {
    header
        .tensors
        .keys()
        .filter_map(|k| k.strip_prefix(prefix)?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m.saturating_add(1))
}

/// What the configuration files say, each size with the `file: key` it came from.
#[derive(Debug, Clone, Default)]
pub struct ClipConfig {
    pub v_width: Option<(usize, String)>,
    pub v_layers: Option<(usize, String)>,
    pub v_heads: Option<usize>,
    pub v_head_width: Option<usize>,
    pub patch: Option<(usize, String)>,
    pub image_size: Option<(usize, String)>,
    pub t_width: Option<(usize, String)>,
    pub t_layers: Option<(usize, String)>,
    pub t_heads: Option<(usize, String)>,
    pub context: Option<(usize, String)>,
    pub vocab: Option<(usize, String)>,
    pub embed: Option<(usize, String)>,
    pub v_act: Act,
    pub t_act: Act,
    pub v_eps: f64,
    pub t_eps: f64,
    pub cleaning: Option<Cleaning>,
    /// transformers' text `eos_token_id`, when it selects the pooled position (not the legacy 2).
    pub eos_id: Option<u32>,
    pub resize: Resize,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
}

/// The MLP activation of a tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Act {
    /// `x · sigmoid(1.702 x)`: OpenAI's CLIP weights (`quick_gelu: true`, `hidden_act: quick_gelu`).
    QuickGelu,
    /// Exact (erf) GELU: open_clip's default, and laion's ViT-B-16 that Marqo fashionCLIP starts from.
    #[default]
    Gelu,
}

impl Act {
    fn key(self) -> &'static str {
        match self {
            Act::QuickGelu => "quick_gelu",
            Act::Gelu => "gelu",
        }
    }

    fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Act::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
            Act::Gelu => x.gelu_erf(),
        }
    }
}

/// How images are brought to the model's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// Shortest side to the size, then the center square.
    ShortestCrop(CropRounding),
    /// Both sides to the size.
    Squash,
}

impl Default for Resize {
    fn default() -> Resize {
        Resize::ShortestCrop(CropRounding::Round)
    }
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
    match v.as_array()?.as_slice() {
        [x, y, z] => Some([x.as_f64()? as f32, y.as_f64()? as f32, z.as_f64()? as f32]),
        _ => None,
    }
}

fn unsupported(file: &Path, key: &str, value: &Value, fix: &str) -> Error {
    Error::file(file, format!("unsupported {key} {value}: {fix}"))
}

/// Reads an open_clip `open_clip_config.json` of a CLIP model.
pub fn read_open_clip(file: &Path) -> Result<ClipConfig> {
    let root = read_json(file)?;
    let model = root.get("model_cfg").unwrap_or(&Value::Null);
    let vision = model.get("vision_cfg").unwrap_or(&Value::Null);
    let text = model.get("text_cfg").unwrap_or(&Value::Null);
    let mut c = ClipConfig { v_eps: 1e-5, t_eps: 1e-5, ..ClipConfig::default() };
    // Options that change the architecture away from CLIP's: refused by name, never ignored.
    let refuse = |cfg: &Value, prefix: &str, key: &str, ok: &dyn Fn(&Value) -> bool, fix: &str| -> Result<()> {
        match cfg.get(key) {
            Some(v) if !ok(v) => Err(unsupported(file, &format!("{prefix}{key}"), v, fix)),
            _ => Ok(()),
        }
    };
    let is_false = |v: &Value| v.as_bool() == Some(false) || v.is_null();
    let v = "model_cfg.vision_cfg.";
    refuse(vision, v, "timm_model_name", &|v| v.is_null(), "timm vision towers are not implemented for CLIP")?;
    refuse(vision, v, "pool_type", &|v| v.as_str() == Some("tok"), "only class-token pooling ('tok') is implemented")?;
    refuse(vision, v, "attentional_pool", &is_false, "attentional pooling is not implemented")?;
    refuse(vision, v, "no_ln_pre", &is_false, "CLIP's ln_pre is required")?;
    refuse(vision, v, "ls_init_value", &|v| v.is_null(), "layer scale is not implemented")?;
    refuse(vision, v, "input_patchnorm", &is_false, "patch normalisation is not implemented")?;
    let t = "model_cfg.text_cfg.";
    refuse(text, t, "hf_model_name", &|v| v.is_null(), "transformers text towers are not implemented for CLIP")?;
    refuse(text, t, "hf_tokenizer_name", &|v| v.is_null(), "only open_clip's own CLIP tokenizer is implemented")?;
    refuse(
        text,
        t,
        "pool_type",
        &|v| v.as_str() == Some("argmax"),
        "only end-of-text pooling ('argmax') is implemented",
    )?;
    refuse(text, t, "no_causal_mask", &is_false, "CLIP's text tower is causal")?;
    refuse(text, t, "proj_bias", &is_false, "CLIP's text projection has no bias")?;
    refuse(text, t, "ls_init_value", &|v| v.is_null(), "layer scale is not implemented")?;
    refuse(text, t, "embed_cls", &is_false, "a class token in the text tower is not implemented")?;
    let act = match model.get("quick_gelu") {
        None | Some(Value::Bool(false)) => Act::Gelu,
        Some(Value::Bool(true)) => Act::QuickGelu,
        Some(other) => {
            return Err(unsupported(
                file,
                "model_cfg.quick_gelu",
                other,
                "write true (OpenAI-pretrained weights) or false (exact GELU, e.g. laion ViT-B-16)",
            ))
        }
    };
    c.v_act = act;
    c.t_act = act;
    c.embed = sourced(model, "embed_dim", file, "model_cfg.");
    c.v_width = sourced(vision, "width", file, v);
    c.v_layers = sourced(vision, "layers", file, v);
    c.v_heads = usize_at(vision, "heads");
    c.v_head_width = usize_at(vision, "head_width");
    c.patch = sourced(vision, "patch_size", file, v);
    c.image_size = match vision.get("image_size") {
        Some(Value::Array(a)) => {
            if a.len() != 2 || a[0] != a[1] {
                return Err(unsupported(
                    file,
                    "model_cfg.vision_cfg.image_size",
                    &Value::Array(a.clone()),
                    "only square images are implemented",
                ));
            }
            a[0].as_u64().map(|n| n as usize)
        }
        Some(s) => s.as_u64().map(|n| n as usize),
        None => None,
    }
    .map(|n| (n, format!("{}: {v}image_size", file.display())));
    c.t_width = sourced(text, "width", file, t);
    c.t_layers = sourced(text, "layers", file, t);
    c.t_heads = sourced(text, "heads", file, t);
    c.context = sourced(text, "context_length", file, t);
    c.vocab = sourced(text, "vocab_size", file, t);
    for (cfg, eps) in [(vision, &mut c.v_eps), (text, &mut c.t_eps)] {
        if let Some(e) = cfg.pointer("/norm_kwargs/eps").and_then(Value::as_f64) {
            *eps = e;
        }
    }
    let clean = text.pointer("/tokenizer_kwargs/clean").and_then(Value::as_str).unwrap_or("lower");
    c.cleaning = Some(Cleaning::open_clip(clean).ok_or_else(|| {
        unsupported(
            file,
            "text_cfg.tokenizer_kwargs.clean",
            &Value::from(clean),
            "use 'lower', 'whitespace' or 'canonicalize'",
        )
    })?);
    if let Some(pre) = root.get("preprocess_cfg") {
        c.resize = match pre.get("resize_mode").and_then(Value::as_str) {
            None | Some("shortest") => Resize::ShortestCrop(CropRounding::Round),
            Some("squash") => Resize::Squash,
            _ => {
                let mode = pre.get("resize_mode").cloned().unwrap_or(Value::Null);
                return Err(unsupported(file, "preprocess_cfg.resize_mode", &mode, "use 'shortest' or 'squash'"));
            }
        };
        if let Some(f) = pre.get("interpolation").filter(|f| f.as_str() != Some("bicubic")) {
            return Err(unsupported(file, "preprocess_cfg.interpolation", f, "only 'bicubic' is implemented"));
        }
        c.mean = triple(pre.get("mean"));
        c.std = triple(pre.get("std"));
    }
    Ok(c)
}

/// Reads a transformers `config.json` of a `CLIPModel`.
pub fn read_hf(file: &Path) -> Result<ClipConfig> {
    let root = read_json(file)?;
    let mut c = ClipConfig::default();
    for key in ["vision_config", "text_config"] {
        let cfg = root.get(key).unwrap_or(&Value::Null);
        let p = format!("{key}.");
        let act = match cfg.get("hidden_act").and_then(Value::as_str).unwrap_or("quick_gelu") {
            "quick_gelu" => Act::QuickGelu,
            "gelu" => Act::Gelu,
            _ => {
                let v = cfg.get("hidden_act").cloned().unwrap_or(Value::Null);
                return Err(unsupported(file, &format!("{key}.hidden_act"), &v, "use 'quick_gelu' or 'gelu'"));
            }
        };
        let eps = cfg.get("layer_norm_eps").and_then(Value::as_f64).unwrap_or(1e-5);
        // transformers' defaults, for keys a config leaves out.
        let heads = usize_at(cfg, "num_attention_heads").unwrap_or(if key == "text_config" { 8 } else { 12 });
        if key == "vision_config" {
            c.v_act = act;
            c.v_eps = eps;
            c.v_heads = Some(heads);
            c.v_width = sourced(cfg, "hidden_size", file, &p);
            c.v_layers = sourced(cfg, "num_hidden_layers", file, &p);
            c.patch = sourced(cfg, "patch_size", file, &p);
            c.image_size = sourced(cfg, "image_size", file, &p);
        } else {
            c.t_act = act;
            c.t_eps = eps;
            c.t_heads = Some((heads, format!("{}: {p}num_attention_heads", file.display())));
            c.t_width = sourced(cfg, "hidden_size", file, &p);
            c.t_layers = sourced(cfg, "num_hidden_layers", file, &p);
            c.context = sourced(cfg, "max_position_embeddings", file, &p);
            c.vocab = sourced(cfg, "vocab_size", file, &p);
            // transformers pools at argmax(ids) for the legacy eos id 2, else at the first eos id.
            let eos = cfg.get("eos_token_id").and_then(Value::as_u64).unwrap_or(2);
            c.eos_id = (eos != 2).then_some(eos as u32);
        }
    }
    c.embed = sourced(&root, "projection_dim", file, "");
    c.cleaning = Some(Cleaning::TokenizerOnly);
    Ok(c)
}

/// Adds the resize, mean and std of a transformers `preprocessor_config.json`.
pub fn read_preprocessor(c: &mut ClipConfig, file: &Path) -> Result<()> {
    let root = read_json(file)?;
    if let Some(r) = root.get("resample").filter(|r| r.as_u64() != Some(3)) {
        return Err(unsupported(file, "resample", r, "only 3 (bicubic) is implemented"));
    }
    if root.get("do_normalize").and_then(Value::as_bool) == Some(false) {
        c.mean = Some([0.0; 3]);
        c.std = Some([1.0; 3]);
    } else {
        c.mean = triple(root.get("image_mean"));
        c.std = triple(root.get("image_std"));
    }
    let size = root.get("size").unwrap_or(&Value::Null);
    let crop = root.get("do_center_crop").and_then(Value::as_bool).unwrap_or(true);
    c.resize = match (usize_at(size, "shortest_edge"), usize_at(size, "height"), usize_at(size, "width")) {
        (Some(_), None, None) if crop => Resize::ShortestCrop(CropRounding::Floor),
        (None, Some(h), Some(w)) if h == w => Resize::Squash,
        _ => {
            return Err(unsupported(
                file,
                "size",
                size,
                "use {\"shortest_edge\": S} with do_center_crop, or a square {\"height\": S, \"width\": S}",
            ))
        }
    };
    Ok(())
}

/// Sizes from the shapes of `header`, checked against `cfg`.
pub fn dims(layout: ClipLayout, header: &Header, cfg: &ClipConfig) -> Result<ClipDims> {
    let probe = ClipDims {
        v_width: 0,
        v_layers: 1,
        v_heads: 1,
        v_mlp: 0,
        patch: 0,
        grid: 0,
        t_width: 0,
        t_layers: 1,
        t_heads: 1,
        t_mlp: 0,
        context: 0,
        vocab: 0,
        embed: 0,
    };
    let table = rows(&probe);
    let mut missing = Vec::new();
    // Axis `axis` of the open_clip-shaped tensor `oc`, read in `layout`'s naming.
    let mut dim = |oc: &str, axis: usize| -> usize {
        let row = table.iter().find(|r| r.open_clip == oc).expect("anchor in the table");
        let (name, _) = row.in_layout(layout).remove(0);
        let hf_axis = if layout == ClipLayout::Hf && row.map == Map::Transpose { 1 - axis } else { axis };
        match header.shape(&name).and_then(|s| s.get(hf_axis)) {
            Some(&d) => d,
            None => {
                if !missing.contains(&name) {
                    missing.push(name);
                }
                0
            }
        }
    };
    let (v_width, patch) = (dim("visual.conv1.weight", 0), dim("visual.conv1.weight", 2));
    let positions = dim("visual.positional_embedding", 0);
    let embed = dim("visual.proj", 1);
    let (vocab, t_width) = (dim("token_embedding.weight", 0), dim("token_embedding.weight", 1));
    let context = dim("positional_embedding", 0);
    let v_mlp = dim("visual.transformer.resblocks.0.mlp.c_fc.weight", 0);
    let t_mlp = dim("transformer.resblocks.0.mlp.c_fc.weight", 0);
    if !missing.is_empty() {
        return Err(Error::file(
            &header.path,
            format!(
                "missing tensors {missing:?}, needed to size the model: this is not a complete {} CLIP checkpoint",
                layout.key()
            ),
        ));
    }
    let grid = ((positions.saturating_sub(1)) as f64).sqrt().round() as usize;
    if positions == 0 || grid * grid + 1 != positions {
        return Err(Error::file(
            &header.path,
            format!("the vision position embedding has {positions} rows, not a square grid plus a class token"),
        ));
    }
    let (vp, tp) = match layout {
        ClipLayout::Hf => ("vision_model.encoder.layers.".to_string(), "text_model.encoder.layers.".to_string()),
        _ => (
            format!("{}visual.transformer.resblocks.", layout.prefix()),
            format!("{}transformer.resblocks.", layout.prefix()),
        ),
    };
    let (v_layers, t_layers) = (count_blocks(header, &vp), count_blocks(header, &tp));
    for (n, prefix) in [(v_layers, &vp), (t_layers, &tp)] {
        if n > header.tensors.len() {
            return Err(Error::file(
                &header.path,
                format!(
                    "a tensor named '{prefix}{}.…' has a block index beyond the file's {} tensors",
                    n - 1,
                    header.tensors.len()
                ),
            ));
        }
    }
    let v_heads =
        cfg.v_heads.or_else(|| cfg.v_head_width.filter(|&w| w > 0).map(|w| v_width / w)).unwrap_or(v_width / 64).max(1);
    // open_clip's CLIPTextCfg default is 8 heads.
    let t_heads = cfg.t_heads.as_ref().map_or(8, |(h, _)| *h);
    let d = ClipDims {
        v_width,
        v_layers,
        v_heads,
        v_mlp,
        patch,
        grid,
        t_width,
        t_layers,
        t_heads,
        t_mlp,
        context,
        vocab,
        embed,
    };
    let checks = [
        (&cfg.v_width, d.v_width, "vision width"),
        (&cfg.v_layers, d.v_layers, "vision layers"),
        (&cfg.patch, d.patch, "patch size"),
        (&cfg.image_size, d.image_size(), "image size"),
        (&cfg.t_width, d.t_width, "text width"),
        (&cfg.t_layers, d.t_layers, "text layers"),
        (&cfg.context, d.context, "context length"),
        (&cfg.vocab, d.vocab, "vocabulary size"),
        (&cfg.embed, d.embed, "embedding size"),
    ];
    for (hint, actual, what) in checks {
        if let Some((stated, source)) = hint {
            if *stated != actual {
                return Err(Error::file(
                    &header.path,
                    format!("{what} is {actual} in the weights but {stated} in {source}: the configuration does not belong to these weights"),
                ));
            }
        }
    }
    for (width, heads, tower) in [(d.v_width, d.v_heads, "vision"), (d.t_width, d.t_heads, "text")] {
        if heads == 0 || width % heads != 0 {
            return Err(Error::file(
                &header.path,
                format!("{tower} width {width} is not divisible by {heads} attention heads: the configuration's head count does not belong to these weights"),
            ));
        }
    }
    Ok(d)
}

/// Checks `header` against the exact tensor set of a CLIP of sizes `d`; one error lists every difference.
pub fn validate(layout: ClipLayout, header: &Header, d: &ClipDims) -> Result<()> {
    let mut want = BTreeMap::new();
    let mut scalars = Vec::new();
    for row in rows(d) {
        for (name, shape) in row.in_layout(layout) {
            if row.map == Map::Scalar {
                scalars.push(name.clone());
            }
            want.insert(name, shape);
        }
    }
    let Some(problems) = super::layout::key_set_problems(header, &want, &IGNORED, |n| scalars.iter().any(|s| s == n))
    else {
        return Ok(());
    };
    Err(Error::file(
        &header.path,
        format!(
            "{problems}; expected a {} CLIP checkpoint with {} vision layers of width {} and {} text layers of width {}: \
             re-export the complete model (adapters such as LoRA must be merged first)",
            layout.key(),
            d.v_layers,
            d.v_width,
            d.t_layers,
            d.t_width
        ),
    ))
}

/// The tensors of a validated checkpoint under open_clip names (no prefix): transformers' q, k, v are
/// concatenated into `in_proj`, its projections transposed back to open_clip's `[in, out]`.
fn to_open_clip(
    layout: ClipLayout,
    mut src: BTreeMap<String, Tensor>,
    d: &ClipDims,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    for row in rows(d) {
        let names = row.in_layout(layout);
        let mut take = |n: &str| src.remove(n).ok_or_else(|| candle_core::Error::Msg(format!("tensor '{n}' vanished")));
        let t = if layout != ClipLayout::Hf {
            take(&names[0].0)?
        } else {
            match row.map {
                Map::Copy | Map::Scalar => take(&names[0].0)?,
                Map::Transpose => take(&names[0].0)?.t()?.contiguous()?,
                Map::SplitQkv => {
                    let parts = names.iter().map(|(n, _)| take(n)).collect::<candle_core::Result<Vec<_>>>()?;
                    Tensor::cat(&parts, 0)?
                }
            }
        };
        out.insert(row.open_clip, t);
    }
    Ok(out)
}

/// One pre-norm residual block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
struct Block {
    ln_1: LayerNorm,
    ln_2: LayerNorm,
    in_proj: Linear,
    out_proj: Linear,
    c_fc: Linear,
    c_proj: Linear,
    heads: usize,
    act: Act,
}

impl Block {
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (b, n, w) = x.dims3()?;
        let hd = w / self.heads;
        let qkv = self.in_proj.forward(&self.ln_1.forward(x)?)?;
        let qkv = qkv.reshape((b, n, 3, self.heads, hd))?.permute((2, 0, 3, 1, 4))?;
        let (q, k, v) = (qkv.get(0)?.contiguous()?, qkv.get(1)?.contiguous()?, qkv.get(2)?.contiguous()?);
        let q = (q * (hd as f64).powf(-0.5))?;
        let mut att = q.matmul(&k.t()?)?;
        if let Some(m) = mask {
            att = att.broadcast_add(m)?;
        }
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b, n, w))?;
        let x = (x + self.out_proj.forward(&y)?)?;
        let h = self.c_fc.forward(&self.ln_2.forward(&x)?)?;
        let h = self.c_proj.forward(&self.act.apply(&h)?)?;
        x + h
    }
}

/// The towers, on open_clip's tensors.
struct ClipNet {
    conv1: Tensor,
    class_embedding: Tensor,
    v_pos: Tensor,
    ln_pre: LayerNorm,
    v_blocks: Vec<Block>,
    ln_post: LayerNorm,
    v_proj: Tensor,
    token_embedding: Embedding,
    t_pos: Tensor,
    t_blocks: Vec<Block>,
    ln_final: LayerNorm,
    t_proj: Tensor,
    patch: usize,
}

impl ClipNet {
    fn new(mut t: HashMap<String, Tensor>, d: &ClipDims, cfg: &ClipConfig) -> candle_core::Result<ClipNet> {
        let mut take = |n: &str| t.remove(n).ok_or_else(|| candle_core::Error::Msg(format!("no tensor '{n}'")));
        let mut norm = |n: &str, eps: f64| -> candle_core::Result<LayerNorm> {
            Ok(LayerNorm::new(take(&format!("{n}.weight"))?, take(&format!("{n}.bias"))?, eps))
        };
        let ln_pre = norm("visual.ln_pre", cfg.v_eps)?;
        let ln_post = norm("visual.ln_post", cfg.v_eps)?;
        let ln_final = norm("ln_final", cfg.t_eps)?;
        let mut blocks =
            |prefix: &str, n: usize, heads: usize, act: Act, eps: f64| -> candle_core::Result<Vec<Block>> {
                (0..n)
                    .map(|i| {
                        let p = format!("{prefix}.{i}");
                        let mut lin = |n: &str| -> candle_core::Result<Linear> {
                            Ok(Linear::new(take(&format!("{p}.{n}_weight"))?, Some(take(&format!("{p}.{n}_bias"))?)))
                        };
                        let in_proj = lin("attn.in_proj")?;
                        let mut lin = |n: &str| -> candle_core::Result<Linear> {
                            Ok(Linear::new(take(&format!("{p}.{n}.weight"))?, Some(take(&format!("{p}.{n}.bias"))?)))
                        };
                        let (out_proj, c_fc, c_proj) = (lin("attn.out_proj")?, lin("mlp.c_fc")?, lin("mlp.c_proj")?);
                        let mut ln = |n: &str| -> candle_core::Result<LayerNorm> {
                            Ok(LayerNorm::new(take(&format!("{p}.{n}.weight"))?, take(&format!("{p}.{n}.bias"))?, eps))
                        };
                        Ok(Block { ln_1: ln("ln_1")?, ln_2: ln("ln_2")?, in_proj, out_proj, c_fc, c_proj, heads, act })
                    })
                    .collect()
            };
        let v_blocks = blocks("visual.transformer.resblocks", d.v_layers, d.v_heads, cfg.v_act, cfg.v_eps)?;
        let t_blocks = blocks("transformer.resblocks", d.t_layers, d.t_heads, cfg.t_act, cfg.t_eps)?;
        Ok(ClipNet {
            conv1: take("visual.conv1.weight")?,
            class_embedding: take("visual.class_embedding")?,
            v_pos: take("visual.positional_embedding")?,
            ln_pre,
            v_blocks,
            ln_post,
            v_proj: take("visual.proj")?,
            token_embedding: Embedding::new(take("token_embedding.weight")?, d.t_width),
            t_pos: take("positional_embedding")?,
            t_blocks,
            ln_final,
            t_proj: take("text_projection")?,
            patch: d.patch,
        })
    }

    /// Text features (unnormalised) of `ids` (`b × n`), pooled at `pool[i]` for sequence `i`.
    fn text(&self, ids: &Tensor, pool: &[usize]) -> candle_core::Result<Tensor> {
        let (_, n) = ids.dims2()?;
        let x = self.token_embedding.forward(ids)?.broadcast_add(&self.t_pos.narrow(0, 0, n)?)?;
        let mask: Vec<f32> =
            (0..n).flat_map(|i| (0..n).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 })).collect();
        let mask = Tensor::from_vec(mask, (n, n), ids.device())?;
        let mut x = x;
        for b in &self.t_blocks {
            x = b.forward(&x, Some(&mask))?;
        }
        let x = self.ln_final.forward(&x)?;
        let rows =
            pool.iter().enumerate().map(|(i, &p)| x.i((i, p..p + 1))).collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&rows, 0)?.matmul(&self.t_proj)
    }

    /// Image features (unnormalised) of normalised pixels (`b × 3 × s × s`).
    fn image(&self, px: &Tensor) -> candle_core::Result<Tensor> {
        let cfg = candle_nn::Conv2dConfig { stride: self.patch, ..Default::default() };
        let x = px.conv2d(&self.conv1, cfg.padding, cfg.stride, cfg.dilation, cfg.groups)?;
        let (b, w, _, _) = x.dims4()?;
        let x = x.flatten_from(2)?.transpose(1, 2)?;
        let cls = self.class_embedding.reshape((1, 1, w))?.broadcast_as((b, 1, w))?;
        let x = Tensor::cat(&[&cls, &x], 1)?.broadcast_add(&self.v_pos)?;
        let mut x = self.ln_pre.forward(&x)?;
        for blk in &self.v_blocks {
            x = blk.forward(&x, None)?;
        }
        let pooled = self.ln_post.forward(&x.i((.., 0, ..))?.contiguous()?)?;
        pooled.matmul(&self.v_proj)
    }
}

/// A loaded CLIP checkpoint with its text and image pipelines.
pub struct Clip {
    net: ClipNet,
    text: TextPipeline,
    pixels: PixelPipeline,
    resize: Resize,
    dims: ClipDims,
    layout: ClipLayout,
    config: ClipConfig,
    label: String,
    fingerprint: Fingerprint,
    logit_scale: f32,
}

fn candle_err<'a>(label: &'a str, what: &str) -> impl Fn(candle_core::Error) -> Error + 'a {
    let what = what.to_string();
    move |e| Error::model(label, format!("{what}: {e}"))
}

/// The checkpoint `spec` names, its weights file and their header, when it is a CLIP checkpoint; `None`
/// for anything else (a SigLIP checkpoint, a missing directory: the SigLIP loader reports those).
pub fn probe(spec: &ModelSpec) -> Result<Option<(Source, std::path::PathBuf, Header, ClipLayout)>> {
    let source = match &spec.source {
        ModelSource::Local(dir) if dir.is_dir() => Source::Dir(dir.clone()),
        ModelSource::Hub { id, revision } => Source::Hub(HubRepo::new(id, revision, spec.offline)),
        _ => return Ok(None),
    };
    let weights = match source.get("model.safetensors")? {
        Some(p) => p,
        None => match source.get("open_clip_model.safetensors")? {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    let header = Header::read(&weights)?;
    Ok(ClipLayout::detect(&header).map(|layout| (source, weights, header, layout)))
}

impl Clip {
    /// Finds, validates and loads the CLIP checkpoint `spec` names.
    pub fn open(spec: &ModelSpec) -> Result<Clip> {
        super::tune_allocator();
        let Some((source, weights, header, layout)) = probe(spec)? else {
            let what = spec.source.to_string();
            return Err(Error::model(&what, "not a CLIP checkpoint: no 'visual.class_embedding' (open_clip), 'model.visual.class_embedding' (Marqo) or 'vision_model.embeddings.class_embedding' (transformers) tensor"));
        };
        let label = source.label();
        let mut digested = vec![weights.clone()];
        let config = if layout == ClipLayout::Hf {
            let cfg = source.require("config.json", "the transformers configuration of a CLIP checkpoint")?;
            digested.push(cfg.clone());
            let mut c = read_hf(&cfg)?;
            if let Some(pre) = source.get("preprocessor_config.json")? {
                read_preprocessor(&mut c, &pre)?;
                digested.push(pre);
            }
            c
        } else {
            // The weights cannot tell QuickGELU from GELU or the head count: the configuration must.
            let cfg = source.require(
                "open_clip_config.json",
                "a CLIP checkpoint needs it for its activation ('quick_gelu') and head counts; copy it from the base model's repository",
            )?;
            digested.push(cfg.clone());
            read_open_clip(&cfg)?
        };
        let dims = dims(layout, &header, &config)?;
        validate(layout, &header, &dims)?;

        let files = tokenizer_files(&source)?;
        let cleaning = config.cleaning.unwrap_or(Cleaning::Lower);
        let text = TextPipeline::load(&files, cleaning, dims.context)?;
        // open_clip pads with zeros; transformers with the pad token the files name.
        let text = if layout == ClipLayout::Hf { text } else { text.with_pad_id(0)? };
        digested.extend(
            [Some(files.tokenizer.clone()), files.special_tokens_map.clone(), files.tokenizer_config.clone()]
                .into_iter()
                .flatten(),
        );

        let pixels = PixelPipeline {
            size: dims.image_size() as u32,
            mean: config.mean.unwrap_or(OPENAI_MEAN),
            std: config.std.unwrap_or(OPENAI_STD),
            alpha: spec.alpha,
            pipeline: spec.pipeline,
        };
        let tensors = header.load_all()?;
        let scale = tensors
            .get(&format!("{}logit_scale", if layout == ClipLayout::Hf { "" } else { layout.prefix() }))
            .map(|t| t.flatten_all().and_then(|t| t.to_vec1::<f32>()))
            .transpose()
            .map_err(candle_err(&label, "logit_scale"))?
            .and_then(|v| v.first().copied())
            .ok_or_else(|| Error::model(&label, "no 'logit_scale' tensor"))?;
        let tensors = to_open_clip(layout, tensors, &dims).map_err(candle_err(&label, "cannot map the weights"))?;
        let net = ClipNet::new(tensors, &dims, &config).map_err(candle_err(&label, "cannot build the model"))?;

        let mut content = Vec::new();
        for path in &digested {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            content.push(format!("{name}={}", source.digest_of(path)?));
        }
        let resize = config.resize;
        let pooling = match config.eos_id {
            Some(id) => format!("first id {id}"),
            None => "argmax".to_string(),
        };
        let fingerprint = Fingerprint {
            model: match &spec.source {
                ModelSource::Hub { id, .. } => id.clone(),
                _ => label.clone(),
            },
            revision: source.revision(),
            preprocessing: format!(
                "clip: {}; {}, context {} pad {}, pooling {}; {} layout, activation {}/{}",
                describe_pixels(&pixels, resize),
                cleaning.describe(),
                dims.context,
                text.pad_id,
                pooling,
                layout.key(),
                config.v_act.key(),
                config.t_act.key()
            ),
            content: content.join(" "),
        };
        Ok(Clip { net, text, pixels, resize, dims, layout, config, label, fingerprint, logit_scale: scale.exp() })
    }

    pub fn layout(&self) -> ClipLayout {
        self.layout
    }

    pub fn dims(&self) -> &ClipDims {
        &self.dims
    }

    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    pub fn text_pipeline(&self) -> &TextPipeline {
        &self.text
    }

    pub fn pixel_pipeline(&self) -> &PixelPipeline {
        &self.pixels
    }

    /// Token ids of `texts` as the Python tokenizer of the layout gives them.
    pub fn token_ids(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        self.text.encode_raw(texts)
    }

    /// The image at `path` after conversion, resize and crop, as 8-bit CHW values.
    pub fn resized(&self, path: &Path) -> Result<Vec<u8>> {
        match self.resize {
            Resize::ShortestCrop(rounding) => self.pixels.resized_center_crop(path, rounding),
            Resize::Squash => self.pixels.resized(path),
        }
    }

    /// The position each sequence is pooled at.
    fn pool_positions(&self, ids: &[Vec<u32>]) -> Vec<usize> {
        ids.iter()
            .map(|seq| match self.config.eos_id {
                // transformers: the first eos id, or 0 when there is none (argmax of all-false).
                Some(eos) => seq.iter().position(|&t| t == eos).unwrap_or(0),
                // torch's argmax: the first of the highest ids.
                None => {
                    let max = seq.iter().copied().max().unwrap_or(0);
                    seq.iter().position(|&t| t == max).unwrap_or(0)
                }
            })
            .collect()
    }

    /// Normalised text embeddings of tokenised sequences of equal length (1 to the context).
    pub fn text_features(&self, ids: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        self.text_features_of(ids, &|i| format!("token sequence #{i}"))
    }

    fn text_features_of(&self, ids: &[Vec<u32>], name: &dyn Fn(usize) -> String) -> Result<Vec<Vec<f32>>> {
        let Some(len) = ids.first().map(Vec::len) else { return Ok(Vec::new()) };
        let ctx = self.dims.context;
        if len == 0 || len > ctx || ids.iter().any(|s| s.len() != len) {
            return Err(Error::model(
                &self.label,
                format!("token sequences must all have the same length, 1 to {ctx}"),
            ));
        }
        if let Some(bad) = ids.iter().flatten().find(|&&t| t as usize >= self.dims.vocab) {
            return Err(Error::model(
                &self.label,
                format!("token id {bad} is outside the vocabulary of {}", self.dims.vocab),
            ));
        }
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(TEXT_BATCH) {
            let pool = self.pool_positions(chunk);
            let flat: Vec<u32> = chunk.iter().flatten().copied().collect();
            let run = || -> candle_core::Result<Vec<Vec<f32>>> {
                let t = Tensor::from_vec(flat, (chunk.len(), len), &Device::Cpu)?;
                let f = self.net.text(&t, &pool)?;
                candle_transformers::models::clip::div_l2_norm(&f)?.to_vec2()
            };
            let rows = run().map_err(candle_err(&self.label, "text forward pass failed"))?;
            self.check_finite("text", &rows, out.len(), name)?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Normalised image embeddings of normalised pixel values (`n × 3 × size × size`).
    pub fn image_features(&self, pixels: &[f32]) -> Result<Vec<Vec<f32>>> {
        self.image_features_of(pixels, &|i| format!("image #{i}"))
    }

    fn image_features_of(&self, pixels: &[f32], name: &dyn Fn(usize) -> String) -> Result<Vec<Vec<f32>>> {
        let s = self.dims.image_size();
        let per = 3 * s * s;
        if !pixels.len().is_multiple_of(per) {
            return Err(Error::model(
                &self.label,
                format!("{} pixel values are not a whole number of 3x{s}x{s} images", pixels.len()),
            ));
        }
        let mut out = Vec::with_capacity(pixels.len() / per);
        for chunk in pixels.chunks(per * IMAGE_BATCH) {
            let run = || -> candle_core::Result<Vec<Vec<f32>>> {
                let px = Tensor::from_slice(chunk, (chunk.len() / per, 3, s, s), &Device::Cpu)?;
                let f = self.net.image(&px)?;
                candle_transformers::models::clip::div_l2_norm(&f)?.to_dtype(DType::F32)?.to_vec2()
            };
            let rows = run().map_err(candle_err(&self.label, "image forward pass failed"))?;
            self.check_finite("image", &rows, out.len(), name)?;
            out.extend(rows);
        }
        Ok(out)
    }

    fn check_finite(
        &self,
        tower: &'static str,
        rows: &[Vec<f32>],
        first: usize,
        name: &dyn Fn(usize) -> String,
    ) -> Result<()> {
        super::check_finite(&self.label, tower, rows, first, name)
    }
}

/// The image preprocessing in words, for fingerprints.
fn describe_pixels(p: &PixelPipeline, resize: Resize) -> String {
    let geometry = match resize {
        Resize::ShortestCrop(r) => format!("shortest side {s} bicubic, center crop {s}x{s} ({})", r.key(), s = p.size),
        Resize::Squash => format!("squash {s}x{s} bicubic", s = p.size),
    };
    format!("{geometry}, {} order, alpha {}, mean {:?} std {:?}", p.pipeline.key(), p.alpha.key(), p.mean, p.std)
}

/// The tokenizer files of a CLIP checkpoint (all three layouts ship `tokenizer.json`).
fn tokenizer_files(source: &Source) -> Result<TokenizerFiles> {
    let tokenizer = source.require(
        "tokenizer.json",
        "the CLIP tokenizer; copy tokenizer.json from the base model's repository (e.g. openai/clip-vit-base-patch16)",
    )?;
    Ok(TokenizerFiles {
        tokenizer,
        special_tokens_map: source.get("special_tokens_map.json")?,
        tokenizer_config: source.get("tokenizer_config.json")?,
    })
}

impl Embedder for Clip {
    fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let ids = self.text.encode(texts)?;
        self.text_features_of(&ids, &|i| format!("'{}'", texts[i]))
    }

    /// The causal mask keeps padding out of the end-of-text position, so this equals
    /// [`Embedder::embed_texts`] up to float noise; it is implemented for the pair evaluation's sake.
    fn embed_texts_padded_to_longest(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let ids = self.text.encode_padded_to_longest(texts)?;
        self.text_features_of(&ids, &|i| format!("'{}'", texts[i]))
    }

    fn token_counts(&self, texts: &[String]) -> Result<Option<Vec<usize>>> {
        self.text.token_counts(texts).map(Some)
    }

    fn context_length(&self) -> Option<usize> {
        Some(self.dims.context)
    }

    /// CLIP's softmax loss has a scale and no bias.
    fn logit_scale_bias(&self) -> Option<(f32, Option<f32>)> {
        Some((self.logit_scale, None))
    }

    fn embed_images(&self, paths: &[&Path]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(paths.len());
        self.embed_images_by_batch(paths, &mut |rows| {
            out.extend(rows);
            Ok(())
        })?;
        Ok(out)
    }

    /// Decodes the next batch on a second thread while this one goes through the model
    /// (`model::prefetch`).
    fn embed_images_by_batch(&self, paths: &[&Path], sink: &mut dyn FnMut(Vec<Vec<f32>>) -> Result<()>) -> Result<()> {
        super::prefetch::embed_files(
            paths,
            IMAGE_BATCH,
            |path| Ok(self.pixels.normalize(&self.resized(path)?)),
            |batch, chunk| self.image_features_of(batch, &|i| format!("'{}'", chunk[i].display())),
            sink,
        )
    }
}
