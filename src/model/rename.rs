//! Renaming a validated checkpoint's tensors to the names candle-transformers' SigLIP expects.
//!
//! Driven by the one table of tensors, `layout::TENSORS`: each row names a tensor in
//! open_clip's and in transformers' scheme and says how one becomes the other. transformers' names
//! pass through (0-d logit scalars become shape `[1]`). open_clip names (Marqo and raw open_clip
//! files) are mapped without copying the big tensors: fused `qkv` / `in_proj` weights are split into
//! views along dim 0 in q, k, v order, `pos_embed [1, N, W]` is squeezed to `[N, W]`, and only the
//! small pooling-head projection (`q` + `kv`) is concatenated. No transposes: both sides store
//! linear weights as `[out, in]`. Callers validate the key set first ([`super::layout::validate`]),
//! so every `take` below finds its tensor.

use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;

use super::layout::{mapped, Dims, Layout, Transform, IGNORED};

/// Renames loaded tensors to transformers' SigLIP names (see the module docs).
pub fn to_hf(
    layout: Layout,
    mut src: BTreeMap<String, Tensor>,
    d: &Dims,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let mut out = HashMap::new();
    let p = if layout == Layout::Hf { "" } else { layout.prefix() };
    let mut take = |name: &str| {
        src.remove(&format!("{p}{name}")).ok_or_else(|| candle_core::Error::Msg(format!("tensor '{p}{name}' vanished")))
    };
    for t in mapped(d) {
        if layout == Layout::Hf {
            // Already in transformers' names; only the scalars change shape.
            for (name, _) in t.hf {
                let tensor = take(&name)?;
                let tensor = if t.transform == Transform::Scalar { tensor.reshape(1)? } else { tensor };
                out.insert(name, tensor);
            }
            continue;
        }
        let sources = t.open_clip.iter().map(|(name, _)| take(name)).collect::<candle_core::Result<Vec<_>>>()?;
        let targets: Vec<Tensor> = match t.transform {
            Transform::Copy => sources,
            Transform::Squeeze => vec![sources[0].squeeze(0)?],
            Transform::Scalar => vec![sources[0].reshape(1)?],
            Transform::ConcatQkv => vec![Tensor::cat(&[&sources[0], &sources[1]], 0)?],
            Transform::SplitQkv => {
                let n = t.hf[0].1[0];
                (0..3).map(|k| sources[0].narrow(0, k * n, n)).collect::<candle_core::Result<_>>()?
            }
        };
        for ((name, _), tensor) in t.hf.into_iter().zip(targets) {
            out.insert(name, tensor);
        }
    }
    // transformers' saved buffers carry no weights (see IGNORED); nothing else may be left over.
    src.retain(|name, _| !IGNORED.contains(&name.as_str()));
    if let Some(name) = src.keys().next() {
        return Err(candle_core::Error::Msg(format!("tensor '{name}' has no place in the model")));
    }
    Ok(out)
}
