//! The three checkpoint layouts, told apart by tensor names, and their mapping onto candle's SigLIP.
//!
//! - [`Layout::Marqo`]: a Marqo `AutoModel` push, `model.` + open_clip names in `model.safetensors`;
//! - [`Layout::OpenClip`]: the same names without `model.` (`open_clip_model.safetensors`);
//! - [`Layout::Hf`]: transformers' `SiglipModel` names (`vision_model.*`, `text_model.*`).
//!
//! Sizes come from the shapes (widths, depths, patch, grid, context, vocabulary, MLP width) and the
//! configuration must agree where it states them. From the sizes the exact key set and every shape is
//! derived, and the file must match it: missing, unexpected and mis-shaped tensors are all listed in
//! one error. The renaming onto transformers' names is in [`super::rename`].

use std::collections::BTreeMap;

use super::config::Hints;
use super::weights::Header;
use crate::error::{Error, Result};

/// Which naming scheme a weights file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Marqo,
    OpenClip,
    Hf,
}

impl Layout {
    /// Detects the layout from the tensor names in `header`.
    pub fn detect(header: &Header) -> Result<Layout> {
        let has = |n: &str| header.tensors.contains_key(n);
        if has("model.visual.trunk.patch_embed.proj.weight") {
            Ok(Layout::Marqo)
        } else if has("visual.trunk.patch_embed.proj.weight") {
            Ok(Layout::OpenClip)
        } else if has("vision_model.embeddings.patch_embedding.weight") {
            Ok(Layout::Hf)
        } else {
            let some: Vec<&str> = header.tensors.keys().take(3).map(String::as_str).collect();
            Err(Error::file(
                &header.path,
                format!(
                    "not a SigLIP checkpoint: none of 'model.visual.trunk.patch_embed.proj.weight' (Marqo), \
                     'visual.trunk.patch_embed.proj.weight' (open_clip) or \
                     'vision_model.embeddings.patch_embedding.weight' (transformers) is present (first tensors: {some:?})"
                ),
            ))
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Layout::Marqo => "marqo",
            Layout::OpenClip => "open_clip",
            Layout::Hf => "hf",
        }
    }

    pub(crate) fn prefix(self) -> &'static str {
        if self == Layout::Marqo {
            "model."
        } else {
            ""
        }
    }
}

/// The sizes of a SigLIP model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dims {
    pub v_width: usize,
    pub v_layers: usize,
    pub v_heads: usize,
    pub v_mlp: usize,
    pub channels: usize,
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

impl Dims {
    pub fn image_size(&self) -> usize {
        self.grid * self.patch
    }
}

/// Tensor names of the anchors sizes are read from, per layout, without prefix.
struct Names {
    patch: &'static str,
    pos: &'static str,
    v_block: &'static str,
    v_fc1: &'static str,
    tok: &'static str,
    t_pos: &'static str,
    t_block: &'static str,
    t_fc1: &'static str,
    proj: &'static str,
}

const OPEN_CLIP: Names = Names {
    patch: "visual.trunk.patch_embed.proj.weight",
    pos: "visual.trunk.pos_embed",
    v_block: "visual.trunk.blocks.",
    v_fc1: "visual.trunk.blocks.0.mlp.fc1.weight",
    tok: "text.token_embedding.weight",
    t_pos: "text.positional_embedding",
    t_block: "text.transformer.resblocks.",
    t_fc1: "text.transformer.resblocks.0.mlp.c_fc.weight",
    proj: "text.text_projection.weight",
};

const HF: Names = Names {
    patch: "vision_model.embeddings.patch_embedding.weight",
    pos: "vision_model.embeddings.position_embedding.weight",
    v_block: "vision_model.encoder.layers.",
    v_fc1: "vision_model.encoder.layers.0.mlp.fc1.weight",
    tok: "text_model.embeddings.token_embedding.weight",
    t_pos: "text_model.embeddings.position_embedding.weight",
    t_block: "text_model.encoder.layers.",
    t_fc1: "text_model.encoder.layers.0.mlp.fc1.weight",
    proj: "text_model.head.weight",
};

/// Buffers transformers may save that carry no weights; they are accepted and ignored.
pub(crate) const IGNORED: [&str; 2] = ["text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"];

/// The number of blocks: one more than the highest index after `prefix`.
fn count_blocks(header: &Header, prefix: &str) -> usize {
    header
        .tensors
        .keys()
        .filter_map(|k| k.strip_prefix(prefix)?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m + 1)
}

/// Derives the sizes from `header`'s shapes and checks them against the configuration.
pub fn dims(layout: Layout, header: &Header, hints: &Hints) -> Result<Dims> {
    let (names, p) = if layout == Layout::Hf { (&HF, "") } else { (&OPEN_CLIP, layout.prefix()) };
    let mut missing = Vec::new();
    let mut dim = |name: &str, axis: usize| -> usize {
        let full = format!("{p}{name}");
        match header.shape(&full).and_then(|s| s.get(axis)) {
            Some(&d) => d,
            None => {
                if !missing.contains(&full) {
                    missing.push(full);
                }
                0
            }
        }
    };
    let pos_axis = if layout == Layout::Hf { 0 } else { 1 };
    let (v_width, channels, patch) = (dim(names.patch, 0), dim(names.patch, 1), dim(names.patch, 2));
    let positions = dim(names.pos, pos_axis);
    let v_mlp = dim(names.v_fc1, 0);
    let (vocab, t_width) = (dim(names.tok, 0), dim(names.tok, 1));
    let context = dim(names.t_pos, 0);
    let t_mlp = dim(names.t_fc1, 0);
    let embed_shape = dim(names.proj, 0);
    if !missing.is_empty() {
        return Err(Error::file(
            &header.path,
            format!(
                "missing tensors {missing:?}, needed to size the model: this is not a complete {} checkpoint",
                layout.key()
            ),
        ));
    }
    let grid = (positions as f64).sqrt().round() as usize;
    if grid * grid != positions {
        return Err(Error::file(
            &header.path,
            format!("'{p}{}' has {positions} positions, not a square grid", names.pos),
        ));
    }
    let v_layers = count_blocks(header, &format!("{p}{}", names.v_block));
    let t_layers = count_blocks(header, &format!("{p}{}", names.t_block));
    let embed = hints.embed_dim.as_ref().map_or(embed_shape, |(e, _)| *e);
    let d = Dims {
        v_width,
        v_layers,
        v_heads: hints.vision.heads(v_width),
        v_mlp,
        channels,
        patch,
        grid,
        t_width,
        t_layers,
        t_heads: hints.text.heads(t_width),
        t_mlp,
        context,
        vocab,
        embed,
    };
    let checks = [
        (&hints.vision.width, d.v_width, "vision width"),
        (&hints.vision.layers, d.v_layers, "vision layers"),
        (&hints.vision.patch, d.patch, "patch size"),
        (&hints.image_size, d.image_size(), "image size"),
        (&hints.text.width, d.t_width, "text width"),
        (&hints.text.layers, d.t_layers, "text layers"),
        (&hints.text.context, d.context, "context length"),
        (&hints.text.vocab, d.vocab, "vocabulary size"),
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
            return Err(Error::file(&header.path, format!("{tower} width {width} is not divisible by {heads} attention heads: check the configuration's heads")));
        }
    }
    if d.embed != d.t_width || d.embed != d.v_width {
        return Err(Error::file(
            &header.path,
            format!(
                "embedding size {} differs from the tower widths (text {}, vision {}): only SigLIP models whose projection keeps the width are supported",
                d.embed, d.t_width, d.v_width
            ),
        ));
    }
    Ok(d)
}

/// Every tensor `layout` must have for sizes `d`, with its shape.
pub fn expected(layout: Layout, d: &Dims) -> BTreeMap<String, Vec<usize>> {
    let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let (w, tw) = (d.v_width, d.t_width);
    let mut put = |name: String, shape: &[usize]| {
        m.insert(name, shape.to_vec());
    };
    let linear = |put: &mut dyn FnMut(String, &[usize]), name: &str, out: usize, inp: usize| {
        put(format!("{name}.weight"), &[out, inp]);
        put(format!("{name}.bias"), &[out]);
    };
    let norm = |put: &mut dyn FnMut(String, &[usize]), name: &str, n: usize| {
        put(format!("{name}.weight"), &[n]);
        put(format!("{name}.bias"), &[n]);
    };
    if layout == Layout::Hf {
        let v = "vision_model";
        put(format!("{v}.embeddings.patch_embedding.weight"), &[w, d.channels, d.patch, d.patch]);
        put(format!("{v}.embeddings.patch_embedding.bias"), &[w]);
        put(format!("{v}.embeddings.position_embedding.weight"), &[d.grid * d.grid, w]);
        for (tower, width, mlp, layers) in [(v, w, d.v_mlp, d.v_layers), ("text_model", tw, d.t_mlp, d.t_layers)] {
            for i in 0..layers {
                let l = format!("{tower}.encoder.layers.{i}");
                norm(&mut put, &format!("{l}.layer_norm1"), width);
                norm(&mut put, &format!("{l}.layer_norm2"), width);
                for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    linear(&mut put, &format!("{l}.self_attn.{proj}"), width, width);
                }
                linear(&mut put, &format!("{l}.mlp.fc1"), mlp, width);
                linear(&mut put, &format!("{l}.mlp.fc2"), width, mlp);
            }
        }
        norm(&mut put, &format!("{v}.post_layernorm"), w);
        put(format!("{v}.head.probe"), &[1, 1, w]);
        put(format!("{v}.head.attention.in_proj_weight"), &[3 * w, w]);
        put(format!("{v}.head.attention.in_proj_bias"), &[3 * w]);
        linear(&mut put, &format!("{v}.head.attention.out_proj"), w, w);
        norm(&mut put, &format!("{v}.head.layernorm"), w);
        linear(&mut put, &format!("{v}.head.mlp.fc1"), d.v_mlp, w);
        linear(&mut put, &format!("{v}.head.mlp.fc2"), w, d.v_mlp);
        put("text_model.embeddings.token_embedding.weight".into(), &[d.vocab, tw]);
        put("text_model.embeddings.position_embedding.weight".into(), &[d.context, tw]);
        norm(&mut put, "text_model.final_layer_norm", tw);
        linear(&mut put, "text_model.head", d.embed, tw);
        put("logit_scale".into(), &[1]);
        put("logit_bias".into(), &[1]);
        return m;
    }
    let p = layout.prefix();
    let t = format!("{p}visual.trunk");
    put(format!("{t}.patch_embed.proj.weight"), &[w, d.channels, d.patch, d.patch]);
    put(format!("{t}.patch_embed.proj.bias"), &[w]);
    put(format!("{t}.pos_embed"), &[1, d.grid * d.grid, w]);
    for i in 0..d.v_layers {
        let b = format!("{t}.blocks.{i}");
        norm(&mut put, &format!("{b}.norm1"), w);
        norm(&mut put, &format!("{b}.norm2"), w);
        linear(&mut put, &format!("{b}.attn.qkv"), 3 * w, w);
        linear(&mut put, &format!("{b}.attn.proj"), w, w);
        linear(&mut put, &format!("{b}.mlp.fc1"), d.v_mlp, w);
        linear(&mut put, &format!("{b}.mlp.fc2"), w, d.v_mlp);
    }
    norm(&mut put, &format!("{t}.norm"), w);
    put(format!("{t}.attn_pool.latent"), &[1, 1, w]);
    linear(&mut put, &format!("{t}.attn_pool.q"), w, w);
    linear(&mut put, &format!("{t}.attn_pool.kv"), 2 * w, w);
    linear(&mut put, &format!("{t}.attn_pool.proj"), w, w);
    norm(&mut put, &format!("{t}.attn_pool.norm"), w);
    linear(&mut put, &format!("{t}.attn_pool.mlp.fc1"), d.v_mlp, w);
    linear(&mut put, &format!("{t}.attn_pool.mlp.fc2"), w, d.v_mlp);
    let x = format!("{p}text");
    put(format!("{x}.token_embedding.weight"), &[d.vocab, tw]);
    put(format!("{x}.positional_embedding"), &[d.context, tw]);
    for i in 0..d.t_layers {
        let b = format!("{x}.transformer.resblocks.{i}");
        norm(&mut put, &format!("{b}.ln_1"), tw);
        norm(&mut put, &format!("{b}.ln_2"), tw);
        put(format!("{b}.attn.in_proj_weight"), &[3 * tw, tw]);
        put(format!("{b}.attn.in_proj_bias"), &[3 * tw]);
        linear(&mut put, &format!("{b}.attn.out_proj"), tw, tw);
        linear(&mut put, &format!("{b}.mlp.c_fc"), d.t_mlp, tw);
        linear(&mut put, &format!("{b}.mlp.c_proj"), tw, d.t_mlp);
    }
    norm(&mut put, &format!("{x}.ln_final"), tw);
    linear(&mut put, &format!("{x}.text_projection"), d.embed, tw);
    put(format!("{p}logit_scale"), &[]);
    put(format!("{p}logit_bias"), &[]);
    m
}

/// Checks `header` against the expected key set and shapes; one error lists every difference.
pub fn validate(layout: Layout, header: &Header, d: &Dims) -> Result<()> {
    let want = expected(layout, d);
    let scalar = |n: &str| n.ends_with("logit_scale") || n.ends_with("logit_bias");
    let missing: Vec<&String> = want.keys().filter(|k| !header.tensors.contains_key(*k)).collect();
    let unexpected: Vec<&String> =
        header.tensors.keys().filter(|k| !want.contains_key(*k) && !IGNORED.contains(&k.as_str())).collect();
    let mut misshaped = Vec::new();
    for (name, shape) in &want {
        let Some(entry) = header.tensors.get(name) else {
            continue;
        };
        let ok = entry.shape == *shape || scalar(name) && entry.shape.iter().product::<usize>() == 1;
        if !ok {
            misshaped.push(format!("'{name}' is {:?}, expected {shape:?}", entry.shape));
        }
    }
    if missing.is_empty() && unexpected.is_empty() && misshaped.is_empty() {
        return Ok(());
    }
    let quote = |v: &[&String]| v.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("{} missing tensor(s): {}", missing.len(), quote(&missing)));
    }
    if !unexpected.is_empty() {
        parts.push(format!("{} unexpected tensor(s): {}", unexpected.len(), quote(&unexpected)));
    }
    if !misshaped.is_empty() {
        parts.push(format!("{} mis-shaped tensor(s): {}", misshaped.len(), misshaped.join(", ")));
    }
    Err(Error::file(
        &header.path,
        format!(
            "{}; expected a {} SigLIP checkpoint with {} vision and {} text layers of width {}: re-export the complete model \
             (adapters such as LoRA must be merged first)",
            parts.join("; "),
            layout.key(),
            d.v_layers,
            d.t_layers,
            d.v_width
        ),
    ))
}
