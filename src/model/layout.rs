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
                    "neither a SigLIP nor a CLIP checkpoint: none of 'model.visual.trunk.patch_embed.proj.weight' (Marqo), \
                     'visual.trunk.patch_embed.proj.weight' (open_clip) or \
                     'vision_model.embeddings.patch_embedding.weight' (transformers) is present for SigLIP, nor \
                     '[model.]visual.class_embedding' or 'vision_model.embeddings.class_embedding' for CLIP (first tensors: {some:?})"
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

/// Which blocks a [`Row`] repeats over; `{i}` in its names is the block index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocks {
    Once,
    Vision,
    Text,
}

/// How a [`Row`]'s open_clip tensor(s) become its transformers tensor(s). No transposes: both sides
/// store linear weights as `[out, in]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    /// The same tensor under another name.
    Copy,
    /// One fused `[3n, …]` tensor split in three along dim 0, in q, k, v order (views, no copy).
    SplitQkv,
    /// The pooling head's `q` `[n, …]` and `kv` `[2n, …]` concatenated along dim 0 into `[3n, …]`.
    ConcatQkv,
    /// `[1, N, W]` squeezed to `[N, W]`.
    Squeeze,
    /// A 0-d scalar reshaped to `[1]`; any one-element shape is accepted on either side.
    Scalar,
}

/// What a [`Row`] holds, with its transformers-side shape: a linear or norm module is a `.weight`
/// and a `.bias` (`{s}` in its names), a parameter is one tensor.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Linear { out: fn(&Dims) -> usize, inp: fn(&Dims) -> usize },
    Norm(fn(&Dims) -> usize),
    Param(fn(&Dims) -> Vec<usize>),
}

/// One entry of [`TENSORS`]: the open_clip name pattern(s) (without the Marqo `model.` prefix), the
/// transformers name pattern(s), the shape and the transform.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub blocks: Blocks,
    pub open_clip: &'static [&'static str],
    pub hf: &'static [&'static str],
    pub kind: Kind,
    pub transform: Transform,
}

/// Every tensor of a SigLIP checkpoint, in open_clip's and in transformers' naming: the one table
/// the key sets and shapes ([`expected`]), the anchors sizes are read from ([`dims`]) and the
/// renaming for candle ([`super::rename::to_hf`]) all come from. A new size needs nothing here (all
/// shapes derive from [`Dims`]); a new SigLIP variant is new rows.
pub(crate) const TENSORS: &[Row] = {
    use Blocks::{Once, Text, Vision};
    use Kind::{Linear, Norm, Param};
    use Transform::{ConcatQkv, Copy, Scalar, SplitQkv, Squeeze};
    const fn r(
        blocks: Blocks,
        open_clip: &'static [&'static str],
        hf: &'static [&'static str],
        kind: Kind,
        transform: Transform,
    ) -> Row {
        Row { blocks, open_clip, hf, kind, transform }
    }
    &[
        // Vision embeddings.
        r(
            Once,
            &["visual.trunk.patch_embed.proj.weight"],
            &["vision_model.embeddings.patch_embedding.weight"],
            Param(|d| vec![d.v_width, d.channels, d.patch, d.patch]),
            Copy,
        ),
        r(
            Once,
            &["visual.trunk.patch_embed.proj.bias"],
            &["vision_model.embeddings.patch_embedding.bias"],
            Param(|d| vec![d.v_width]),
            Copy,
        ),
        r(
            Once,
            &["visual.trunk.pos_embed"],
            &["vision_model.embeddings.position_embedding.weight"],
            Param(|d| vec![d.grid * d.grid, d.v_width]),
            Squeeze,
        ),
        // Vision blocks.
        r(
            Vision,
            &["visual.trunk.blocks.{i}.norm1.{s}"],
            &["vision_model.encoder.layers.{i}.layer_norm1.{s}"],
            Norm(|d| d.v_width),
            Copy,
        ),
        r(
            Vision,
            &["visual.trunk.blocks.{i}.norm2.{s}"],
            &["vision_model.encoder.layers.{i}.layer_norm2.{s}"],
            Norm(|d| d.v_width),
            Copy,
        ),
        r(
            Vision,
            &["visual.trunk.blocks.{i}.attn.qkv.{s}"],
            &[
                "vision_model.encoder.layers.{i}.self_attn.q_proj.{s}",
                "vision_model.encoder.layers.{i}.self_attn.k_proj.{s}",
                "vision_model.encoder.layers.{i}.self_attn.v_proj.{s}",
            ],
            Linear { out: |d| d.v_width, inp: |d| d.v_width },
            SplitQkv,
        ),
        r(
            Vision,
            &["visual.trunk.blocks.{i}.attn.proj.{s}"],
            &["vision_model.encoder.layers.{i}.self_attn.out_proj.{s}"],
            Linear { out: |d| d.v_width, inp: |d| d.v_width },
            Copy,
        ),
        r(
            Vision,
            &["visual.trunk.blocks.{i}.mlp.fc1.{s}"],
            &["vision_model.encoder.layers.{i}.mlp.fc1.{s}"],
            Linear { out: |d| d.v_mlp, inp: |d| d.v_width },
            Copy,
        ),
        r(
            Vision,
            &["visual.trunk.blocks.{i}.mlp.fc2.{s}"],
            &["vision_model.encoder.layers.{i}.mlp.fc2.{s}"],
            Linear { out: |d| d.v_width, inp: |d| d.v_mlp },
            Copy,
        ),
        // Vision head: final norm and attention pooling (MAP).
        r(Once, &["visual.trunk.norm.{s}"], &["vision_model.post_layernorm.{s}"], Norm(|d| d.v_width), Copy),
        r(
            Once,
            &["visual.trunk.attn_pool.latent"],
            &["vision_model.head.probe"],
            Param(|d| vec![1, 1, d.v_width]),
            Copy,
        ),
        r(
            Once,
            &["visual.trunk.attn_pool.q.{s}", "visual.trunk.attn_pool.kv.{s}"],
            &["vision_model.head.attention.in_proj_{s}"],
            Linear { out: |d| 3 * d.v_width, inp: |d| d.v_width },
            ConcatQkv,
        ),
        r(
            Once,
            &["visual.trunk.attn_pool.proj.{s}"],
            &["vision_model.head.attention.out_proj.{s}"],
            Linear { out: |d| d.v_width, inp: |d| d.v_width },
            Copy,
        ),
        r(Once, &["visual.trunk.attn_pool.norm.{s}"], &["vision_model.head.layernorm.{s}"], Norm(|d| d.v_width), Copy),
        r(
            Once,
            &["visual.trunk.attn_pool.mlp.fc1.{s}"],
            &["vision_model.head.mlp.fc1.{s}"],
            Linear { out: |d| d.v_mlp, inp: |d| d.v_width },
            Copy,
        ),
        r(
            Once,
            &["visual.trunk.attn_pool.mlp.fc2.{s}"],
            &["vision_model.head.mlp.fc2.{s}"],
            Linear { out: |d| d.v_width, inp: |d| d.v_mlp },
            Copy,
        ),
        // Text embeddings.
        r(
            Once,
            &["text.token_embedding.weight"],
            &["text_model.embeddings.token_embedding.weight"],
            Param(|d| vec![d.vocab, d.t_width]),
            Copy,
        ),
        r(
            Once,
            &["text.positional_embedding"],
            &["text_model.embeddings.position_embedding.weight"],
            Param(|d| vec![d.context, d.t_width]),
            Copy,
        ),
        // Text blocks.
        r(
            Text,
            &["text.transformer.resblocks.{i}.ln_1.{s}"],
            &["text_model.encoder.layers.{i}.layer_norm1.{s}"],
            Norm(|d| d.t_width),
            Copy,
        ),
        r(
            Text,
            &["text.transformer.resblocks.{i}.ln_2.{s}"],
            &["text_model.encoder.layers.{i}.layer_norm2.{s}"],
            Norm(|d| d.t_width),
            Copy,
        ),
        r(
            Text,
            &["text.transformer.resblocks.{i}.attn.in_proj_{s}"],
            &[
                "text_model.encoder.layers.{i}.self_attn.q_proj.{s}",
                "text_model.encoder.layers.{i}.self_attn.k_proj.{s}",
                "text_model.encoder.layers.{i}.self_attn.v_proj.{s}",
            ],
            Linear { out: |d| d.t_width, inp: |d| d.t_width },
            SplitQkv,
        ),
        r(
            Text,
            &["text.transformer.resblocks.{i}.attn.out_proj.{s}"],
            &["text_model.encoder.layers.{i}.self_attn.out_proj.{s}"],
            Linear { out: |d| d.t_width, inp: |d| d.t_width },
            Copy,
        ),
        r(
            Text,
            &["text.transformer.resblocks.{i}.mlp.c_fc.{s}"],
            &["text_model.encoder.layers.{i}.mlp.fc1.{s}"],
            Linear { out: |d| d.t_mlp, inp: |d| d.t_width },
            Copy,
        ),
        r(
            Text,
            &["text.transformer.resblocks.{i}.mlp.c_proj.{s}"],
            &["text_model.encoder.layers.{i}.mlp.fc2.{s}"],
            Linear { out: |d| d.t_width, inp: |d| d.t_mlp },
            Copy,
        ),
        // Text head.
        r(Once, &["text.ln_final.{s}"], &["text_model.final_layer_norm.{s}"], Norm(|d| d.t_width), Copy),
        r(
            Once,
            &["text.text_projection.{s}"],
            &["text_model.head.{s}"],
            Linear { out: |d| d.embed, inp: |d| d.t_width },
            Copy,
        ),
        // The sigmoid loss's scale and bias.
        r(Once, &["logit_scale"], &["logit_scale"], Param(|_| vec![1]), Scalar),
        r(Once, &["logit_bias"], &["logit_bias"], Param(|_| vec![1]), Scalar),
    ]
};

/// One tensor group of [`TENSORS`] with names and shapes filled in for a block and a suffix.
#[derive(Debug, Clone)]
pub(crate) struct Mapped {
    /// open_clip names (without prefix) and shapes: one, or two for [`Transform::ConcatQkv`].
    pub open_clip: Vec<(String, Vec<usize>)>,
    /// transformers names and shapes: one, or three for [`Transform::SplitQkv`].
    pub hf: Vec<(String, Vec<usize>)>,
    pub transform: Transform,
}

impl Row {
    /// The transformers-side shape of the tensor with suffix `s` (`weight`, `bias`, or none).
    fn hf_shape(&self, d: &Dims, s: &str) -> Vec<usize> {
        match self.kind {
            Kind::Linear { out, inp } if s == "weight" => vec![out(d), inp(d)],
            Kind::Linear { out, .. } => vec![out(d)],
            Kind::Norm(n) => vec![n(d)],
            Kind::Param(shape) => shape(d),
        }
    }

    /// The suffixes `{s}` takes.
    fn suffixes(&self) -> &'static [&'static str] {
        match self.kind {
            Kind::Param(_) => &[""],
            _ => &["weight", "bias"],
        }
    }

    /// The rows names and shapes for sizes `d`, every block and suffix expanded.
    fn expand(&self, d: &Dims) -> Vec<Mapped> {
        let blocks = match self.blocks {
            Blocks::Once => 1,
            Blocks::Vision => d.v_layers,
            Blocks::Text => d.t_layers,
        };
        let mut out = Vec::new();
        for i in 0..blocks {
            for s in self.suffixes() {
                let name = |p: &str| p.replace("{i}", &i.to_string()).replace("{s}", s);
                let hf_shape = self.hf_shape(d, s);
                let scaled = |num: usize, den: usize| {
                    let mut shape = hf_shape.clone();
                    shape[0] = shape[0] * num / den;
                    shape
                };
                let oc_shapes = match self.transform {
                    Transform::Copy => vec![hf_shape.clone()],
                    Transform::SplitQkv => vec![scaled(3, 1)],
                    Transform::ConcatQkv => vec![scaled(1, 3), scaled(2, 3)],
                    Transform::Squeeze => vec![[vec![1], hf_shape.clone()].concat()],
                    Transform::Scalar => vec![vec![]],
                };
                out.push(Mapped {
                    open_clip: self.open_clip.iter().map(|p| name(p)).zip(oc_shapes).collect(),
                    hf: self.hf.iter().map(|p| (name(p), hf_shape.clone())).collect(),
                    transform: self.transform,
                });
            }
        }
        out
    }
}

/// [`TENSORS`] for sizes `d`, every block and suffix expanded.
pub(crate) fn mapped(d: &Dims) -> Vec<Mapped> {
    TENSORS.iter().flat_map(|r| r.expand(d)).collect()
}

/// The name in `layout` (prefix included) of the tensor transformers calls `hf` (block 0 for a
/// per-block tensor), and the axis offset of its shape there (1 for a squeezed tensor).
fn anchor(layout: Layout, hf: &str) -> (String, usize) {
    let (row, s) = TENSORS
        .iter()
        .find_map(|r| {
            r.suffixes().iter().find_map(|s| {
                let name = |p: &str| p.replace("{i}", "0").replace("{s}", s);
                (r.hf.len() == 1 && name(r.hf[0]) == hf).then_some((r, *s))
            })
        })
        .unwrap_or_else(|| panic!("'{hf}' is not in the tensor table"));
    if layout == Layout::Hf {
        return (hf.to_string(), 0);
    }
    let name = row.open_clip[0].replace("{i}", "0").replace("{s}", s);
    let offset = usize::from(row.transform == Transform::Squeeze);
    (format!("{}{name}", layout.prefix()), offset)
}

/// The name prefix of `tower`'s blocks in `layout` (`visual.trunk.blocks.` …), from [`TENSORS`].
fn block_prefix(layout: Layout, tower: Blocks) -> String {
    let row = TENSORS.iter().find(|r| r.blocks == tower).expect("the table has blocks of both towers");
    let pattern = if layout == Layout::Hf { row.hf[0] } else { row.open_clip[0] };
    let p = if layout == Layout::Hf { "" } else { layout.prefix() };
    format!("{p}{}", &pattern[..pattern.find("{i}").unwrap_or(pattern.len())])
}

/// Buffers transformers may save that carry no weights; they are accepted and ignored.
pub(crate) const IGNORED: [&str; 2] = ["text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"];

/// The number of blocks: one more than the highest index after `prefix`.
fn count_blocks(header: &Header, prefix: &str) -> usize {
    header
        .tensors
        .keys()
        .filter_map(|k| k.strip_prefix(prefix)?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m.saturating_add(1))
}

/// Derives the sizes from `header`'s shapes and checks them against the configuration.
pub fn dims(layout: Layout, header: &Header, hints: &Hints) -> Result<Dims> {
    let mut missing = Vec::new();
    let mut dim = |hf: &str, axis: usize| -> usize {
        let (full, offset) = anchor(layout, hf);
        match header.shape(&full).and_then(|s| s.get(axis + offset)) {
            Some(&d) => d,
            None => {
                if !missing.contains(&full) {
                    missing.push(full);
                }
                0
            }
        }
    };
    let patch_weight = "vision_model.embeddings.patch_embedding.weight";
    let (v_width, channels, patch) = (dim(patch_weight, 0), dim(patch_weight, 1), dim(patch_weight, 2));
    let positions = dim("vision_model.embeddings.position_embedding.weight", 0);
    let v_mlp = dim("vision_model.encoder.layers.0.mlp.fc1.weight", 0);
    let token = "text_model.embeddings.token_embedding.weight";
    let (vocab, t_width) = (dim(token, 0), dim(token, 1));
    let context = dim("text_model.embeddings.position_embedding.weight", 0);
    let t_mlp = dim("text_model.encoder.layers.0.mlp.fc1.weight", 0);
    let embed_shape = dim("text_model.head.weight", 0);
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
    if grid.checked_mul(grid) != Some(positions) {
        let (pos, _) = anchor(layout, "vision_model.embeddings.position_embedding.weight");
        return Err(Error::file(&header.path, format!("'{pos}' has {positions} positions, not a square grid")));
    }
    let mut layers = [0; 2];
    for (n, tower) in layers.iter_mut().zip([Blocks::Vision, Blocks::Text]) {
        let prefix = block_prefix(layout, tower);
        *n = count_blocks(header, &prefix);
        // Every block has tensors: an index past the tensor count is a crafted name, not a model.
        if *n > header.tensors.len() {
            return Err(Error::file(
                &header.path,
                format!(
                    "a tensor named '{prefix}{}.…' has a block index beyond the file's {} tensors",
                    *n - 1,
                    header.tensors.len()
                ),
            ));
        }
    }
    let [v_layers, t_layers] = layers;
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

/// Every tensor `layout` must have for sizes `d`, with its shape (from `TENSORS`).
pub fn expected(layout: Layout, d: &Dims) -> BTreeMap<String, Vec<usize>> {
    let p = layout.prefix();
    let mut m = BTreeMap::new();
    for t in mapped(d) {
        if layout == Layout::Hf {
            m.extend(t.hf);
        } else {
            m.extend(t.open_clip.into_iter().map(|(name, shape)| (format!("{p}{name}"), shape)));
        }
    }
    m
}

/// The names in `layout` of the scalars ([`Transform::Scalar`]), whose shape may be any one-element
/// shape (`[]` as open_clip saves them, `[1]` as transformers does).
fn scalars(layout: Layout, d: &Dims) -> Vec<String> {
    let p = layout.prefix();
    mapped(d)
        .into_iter()
        .filter(|t| t.transform == Transform::Scalar)
        .flat_map(|t| if layout == Layout::Hf { t.hf } else { t.open_clip })
        .map(|(name, _)| if layout == Layout::Hf { name } else { format!("{p}{name}") })
        .collect()
}

/// Every difference between `header` and the tensors `want`ed (names and shapes), in one sentence:
/// missing, unexpected (other than `ignored`) and mis-shaped tensors; `None` when there is none. A
/// tensor for which `scalar` holds may be stored with any all-ones shape. Shared by every backend.
pub(crate) fn key_set_problems(
    header: &Header,
    want: &BTreeMap<String, Vec<usize>>,
    ignored: &[&str],
    scalar: impl Fn(&str) -> bool,
) -> Option<String> {
    let missing: Vec<&String> = want.keys().filter(|k| !header.tensors.contains_key(*k)).collect();
    let unexpected: Vec<&String> =
        header.tensors.keys().filter(|k| !want.contains_key(*k) && !ignored.contains(&k.as_str())).collect();
    let mut misshaped = Vec::new();
    for (name, shape) in want {
        let Some(entry) = header.tensors.get(name) else {
            continue;
        };
        let ok = entry.shape == *shape || scalar(name) && entry.shape.iter().all(|&n| n == 1);
        if !ok {
            misshaped.push(format!("'{name}' is {:?}, expected {shape:?}", entry.shape));
        }
    }
    if missing.is_empty() && unexpected.is_empty() && misshaped.is_empty() {
        return None;
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
    Some(parts.join("; "))
}

/// Checks `header` against the expected key set and shapes; one error lists every difference.
pub fn validate(layout: Layout, header: &Header, d: &Dims) -> Result<()> {
    let want = expected(layout, d);
    let scalars = scalars(layout, d);
    let Some(problems) = key_set_problems(header, &want, &IGNORED, |n| scalars.iter().any(|s| s == n)) else {
        return Ok(());
    };
    Err(Error::file(
        &header.path,
        format!(
            "{problems}; expected a {} SigLIP checkpoint with {} vision and {} text layers of width {}: re-export the complete model \
             (adapters such as LoRA must be merged first)",
            layout.key(),
            d.v_layers,
            d.t_layers,
            d.v_width
        ),
    ))
}
