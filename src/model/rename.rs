//! Renaming a validated checkpoint's tensors to the names candle-transformers' SigLIP expects.
//!
//! transformers' names pass through (0-d logit scalars become shape `[1]`). open_clip names (Marqo
//! and raw open_clip files) are mapped without copying the big tensors: fused `qkv` / `in_proj`
//! weights are split into views along dim 0 in q, k, v order, `pos_embed [1, N, W]` is squeezed to
//! `[N, W]`, and only the small pooling-head projection (`q` + `kv`) is concatenated. No transposes:
//! both sides store linear weights as `[out, in]`. Callers validate the key set first
//! ([`super::layout::validate`]), so every `take` below finds its tensor.

use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;

use super::layout::{Dims, Layout, IGNORED};

/// Renames loaded tensors to transformers' SigLIP names (see the module docs).
pub fn to_hf(
    layout: Layout,
    mut src: BTreeMap<String, Tensor>,
    d: &Dims,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    let scalar = |t: Tensor| t.reshape(1);
    if layout == Layout::Hf {
        for (name, t) in src {
            if IGNORED.contains(&name.as_str()) {
                continue;
            }
            let t = if name == "logit_scale" || name == "logit_bias" { scalar(t)? } else { t };
            out.insert(name, t);
        }
        return Ok(out);
    }
    let p = layout.prefix();
    let mut take = |name: &str| {
        src.remove(&format!("{p}{name}")).ok_or_else(|| candle_core::Error::Msg(format!("tensor '{p}{name}' vanished")))
    };
    let mut put = |name: String, t: Tensor| {
        out.insert(name, t);
    };
    let split3 = |t: &Tensor, width: usize| -> candle_core::Result<[Tensor; 3]> {
        Ok([t.narrow(0, 0, width)?, t.narrow(0, width, width)?, t.narrow(0, 2 * width, width)?])
    };
    let (v, w, tw) = ("vision_model", d.v_width, d.t_width);
    for s in ["weight", "bias"] {
        put(format!("{v}.embeddings.patch_embedding.{s}"), take(&format!("visual.trunk.patch_embed.proj.{s}"))?);
    }
    put(format!("{v}.embeddings.position_embedding.weight"), take("visual.trunk.pos_embed")?.squeeze(0)?);
    for i in 0..d.v_layers {
        let (b, l) = (format!("visual.trunk.blocks.{i}"), format!("{v}.encoder.layers.{i}"));
        for s in ["weight", "bias"] {
            for (from, to) in [
                ("norm1", "layer_norm1"),
                ("norm2", "layer_norm2"),
                ("attn.proj", "self_attn.out_proj"),
                ("mlp.fc1", "mlp.fc1"),
                ("mlp.fc2", "mlp.fc2"),
            ] {
                put(format!("{l}.{to}.{s}"), take(&format!("{b}.{from}.{s}"))?);
            }
            let [q, k, vv] = split3(&take(&format!("{b}.attn.qkv.{s}"))?, w)?;
            for (part, t) in [("q_proj", q), ("k_proj", k), ("v_proj", vv)] {
                put(format!("{l}.self_attn.{part}.{s}"), t);
            }
        }
    }
    let a = "visual.trunk.attn_pool";
    put(format!("{v}.head.probe"), take(&format!("{a}.latent"))?);
    for s in ["weight", "bias"] {
        put(format!("{v}.post_layernorm.{s}"), take(&format!("visual.trunk.norm.{s}"))?);
        let q = take(&format!("{a}.q.{s}"))?;
        let kv = take(&format!("{a}.kv.{s}"))?;
        let name = if s == "weight" { "in_proj_weight" } else { "in_proj_bias" };
        put(format!("{v}.head.attention.{name}"), Tensor::cat(&[&q, &kv], 0)?);
        for (from, to) in
            [("proj", "attention.out_proj"), ("norm", "layernorm"), ("mlp.fc1", "mlp.fc1"), ("mlp.fc2", "mlp.fc2")]
        {
            put(format!("{v}.head.{to}.{s}"), take(&format!("{a}.{from}.{s}"))?);
        }
    }
    let t = "text_model";
    put(format!("{t}.embeddings.token_embedding.weight"), take("text.token_embedding.weight")?);
    put(format!("{t}.embeddings.position_embedding.weight"), take("text.positional_embedding")?);
    for i in 0..d.t_layers {
        let (b, l) = (format!("text.transformer.resblocks.{i}"), format!("{t}.encoder.layers.{i}"));
        for s in ["weight", "bias"] {
            for (from, to) in [
                ("ln_1", "layer_norm1"),
                ("ln_2", "layer_norm2"),
                ("attn.out_proj", "self_attn.out_proj"),
                ("mlp.c_fc", "mlp.fc1"),
                ("mlp.c_proj", "mlp.fc2"),
            ] {
                put(format!("{l}.{to}.{s}"), take(&format!("{b}.{from}.{s}"))?);
            }
            let fused = take(&format!("{b}.attn.in_proj_{s}"))?;
            let [q, k, vv] = split3(&fused, tw)?;
            for (part, x) in [("q_proj", q), ("k_proj", k), ("v_proj", vv)] {
                put(format!("{l}.self_attn.{part}.{s}"), x);
            }
        }
    }
    for s in ["weight", "bias"] {
        put(format!("{t}.final_layer_norm.{s}"), take(&format!("text.ln_final.{s}"))?);
        put(format!("{t}.head.{s}"), take(&format!("text.text_projection.{s}"))?);
    }
    put("logit_scale".into(), scalar(take("logit_scale")?)?);
    put("logit_bias".into(), scalar(take("logit_bias")?)?);
    Ok(out)
}
