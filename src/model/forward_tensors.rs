//! fitcheck's own forward pass of SigLIP's two towers, on candle tensors, for throughput on the CPU.
//!
//! It computes what candle-transformers' `siglip::Model` computes (and what open_clip and transformers
//! compute), with the work arranged for the CPU:
//!
//! - every linear layer is one matrix multiply over all tokens of the batch (`[batch·tokens, in]`),
//!   where a batched multiply with broadcast weights runs one small multiply per image;
//! - q, k and v come from one multiply with the three weights side by side, then one copy puts the
//!   heads in place; the attention scale is folded into the q weights when it is a power of two
//!   (exact: head width 4, 16, 64, 256), otherwise applied to the scores;
//! - bias and activation, and bias and residual, are each one pass over the output, in place and
//!   spread over rayon's threads (candle runs element-wise operations on one thread);
//! - the patch embedding is a multiply on unfolded patches instead of a strided convolution.
//!
//! Invariant: the same weights, names and numerics as the reference model up to the order of floating
//! point sums; `tests/model_fidelity.rs` holds the result to the Python references at 1e-5, and the
//! bench reports the largest difference from PyTorch on a ViT-B/16.

use std::collections::HashMap;

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor};
use candle_nn::Activation;
use candle_transformers::models::siglip::Config;
use rayon::prelude::*;

/// Rows per rayon task in the element-wise passes: enough work per task to amortise scheduling.
const ROWS_PER_TASK: usize = 16;

/// The checkpoint's tensors by name, handed over as they are used: a tensor that is rearranged
/// (q, k and v side by side) is dropped once copied, so loading holds at most one layer twice.
type Tensors = HashMap<String, Tensor>;

fn get(t: &mut Tensors, name: &str) -> Result<Tensor> {
    t.remove(name).ok_or_else(|| candle_core::Error::Msg(format!("no tensor '{name}'")))
}

/// A linear layer: `y = x·Wᵀ + b`. `W` is kept transposed (`wt`, `[in, out]`, contiguous): the
/// matrix kernel packs its right-hand side on every call, and packing a transposed `[out, in]` matrix
/// reads it column by column; for a batch of one 64-token text that packing took most of the time.
struct Linear {
    wt: Tensor,
    b: Tensor,
}

impl Linear {
    fn new(w: &Tensor, b: Tensor) -> Result<Linear> {
        Ok(Linear { wt: w.t()?.contiguous()?, b })
    }

    fn load(t: &mut Tensors, p: &str) -> Result<Linear> {
        Linear::new(&get(t, &format!("{p}.weight"))?, get(t, &format!("{p}.bias"))?)
    }

    /// `x` is `[rows, in]`; returns `[rows, out]` with the bias added and `act` applied, in one pass.
    fn forward(&self, x: &Tensor, act: Option<Activation>) -> Result<Tensor> {
        let y = x.matmul(&self.wt)?;
        match act {
            Some(a) if !fused(a) => {
                y.inplace_op2(&self.b, &BiasAct(None))?;
                y.apply(&a)
            }
            _ => {
                y.inplace_op2(&self.b, &BiasAct(act))?;
                Ok(y)
            }
        }
    }

    /// `x·Wᵀ + b + residual`, in one pass after the multiply.
    fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.wt)?;
        y.inplace_op3(&self.b, residual, &BiasResidual)?;
        Ok(y)
    }
}

struct Norm {
    w: Tensor,
    b: Tensor,
    eps: f32,
}

impl Norm {
    fn load(t: &mut Tensors, p: &str, eps: f64) -> Result<Norm> {
        Ok(Norm { w: get(t, &format!("{p}.weight"))?, b: get(t, &format!("{p}.bias"))?, eps: eps as f32 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(&x.contiguous()?, &self.w, &self.b, self.eps)
    }
}

/// One pre-norm transformer block.
struct Block {
    ln1: Norm,
    qkv: Linear,
    /// Applied to the scores when it could not be folded into the q weights exactly.
    score_scale: Option<f64>,
    out: Linear,
    ln2: Norm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
    act: Activation,
}

impl Block {
    fn load(t: &mut Tensors, p: &str, heads: usize, act: Activation, eps: f64) -> Result<Block> {
        let a = format!("{p}.self_attn");
        let q = Linear::load(t, &format!("{a}.q_proj"))?;
        let k = Linear::load(t, &format!("{a}.k_proj"))?;
        let v = Linear::load(t, &format!("{a}.v_proj"))?;
        let width = q.wt.dim(1)?;
        let scale = ((width / heads) as f64).powf(-0.5);
        // Multiplying by a power of two is exact, so folding it into the weights changes no bit.
        let exact = scale.log2().fract() == 0.0;
        let (qw, qb) = if exact { ((q.wt * scale)?, (q.b * scale)?) } else { (q.wt, q.b) };
        let qkv = Linear { wt: Tensor::cat(&[&qw, &k.wt, &v.wt], 1)?, b: Tensor::cat(&[&qb, &k.b, &v.b], 0)? };
        Ok(Block {
            ln1: Norm::load(t, &format!("{p}.layer_norm1"), eps)?,
            qkv,
            score_scale: (!exact).then_some(scale),
            out: Linear::load(t, &format!("{a}.out_proj"))?,
            ln2: Norm::load(t, &format!("{p}.layer_norm2"), eps)?,
            fc1: Linear::load(t, &format!("{p}.mlp.fc1"))?,
            fc2: Linear::load(t, &format!("{p}.mlp.fc2"))?,
            heads,
            act,
        })
    }

    /// `x` is `[batch·tokens, width]`, contiguous.
    fn forward(&self, x: &Tensor, batch: usize, tokens: usize) -> Result<Tensor> {
        let width = x.dim(1)?;
        let (h, d) = (self.heads, width / self.heads);
        let qkv = self.qkv.forward(&self.ln1.forward(x)?, None)?;
        // [b·n, 3·w] → [3, b, h, n, d]: one copy puts every head of q, k and v in place.
        let qkv = qkv.reshape((batch, tokens, 3, h, d))?.permute((2, 0, 3, 1, 4))?.contiguous()?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(s) = self.score_scale {
            scores = (scores * s)?;
        }
        let att = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?;
        let att = att.transpose(1, 2)?.contiguous()?.reshape((batch * tokens, width))?;
        let x = self.out.forward_add(&att, x)?;
        let hidden = self.fc1.forward(&self.ln2.forward(&x)?, Some(self.act))?;
        self.fc2.forward_add(&hidden, &x)
    }
}

fn blocks(t: &mut Tensors, p: &str, n: usize, heads: usize, act: Activation, eps: f64) -> Result<Vec<Block>> {
    (0..n).map(|i| Block::load(t, &format!("{p}.encoder.layers.{i}"), heads, act, eps)).collect()
}

/// The image tower: patches, blocks, final norm, attention-pooling head.
struct Vision {
    patch_w: Tensor,
    patch_b: Tensor,
    pos: Tensor,
    patch: usize,
    blocks: Vec<Block>,
    post: Norm,
    probe_q: Tensor,
    head_kv: Linear,
    head_out: Linear,
    head_heads: usize,
    head_norm: Norm,
    head_fc1: Linear,
    head_fc2: Linear,
    act: Activation,
}

impl Vision {
    fn load(t: &mut Tensors, cfg: &Config) -> Result<Vision> {
        let c = &cfg.vision_config;
        let p = "vision_model";
        let (w, eps) = (c.hidden_size, c.layer_norm_eps);
        let patch_w = get(t, &format!("{p}.embeddings.patch_embedding.weight"))?;
        let patch_w = patch_w.reshape((w, ()))?.t()?.contiguous()?;
        let in_w = get(t, &format!("{p}.head.attention.in_proj_weight"))?;
        let in_b = get(t, &format!("{p}.head.attention.in_proj_bias"))?;
        let probe = get(t, &format!("{p}.head.probe"))?.reshape((1, w))?;
        // The probe is the same query for every image: its projection is computed once, here.
        let probe_q = probe.matmul(&in_w.narrow(0, 0, w)?.t()?)?.broadcast_add(&in_b.narrow(0, 0, w)?)?;
        let head_heads = c.num_attention_heads;
        let scale = ((w / head_heads) as f64).powf(-0.5);
        Ok(Vision {
            patch_w,
            patch_b: get(t, &format!("{p}.embeddings.patch_embedding.bias"))?,
            pos: get(t, &format!("{p}.embeddings.position_embedding.weight"))?,
            patch: c.patch_size,
            blocks: blocks(t, p, c.num_hidden_layers, c.num_attention_heads, c.hidden_act, eps)?,
            post: Norm::load(t, &format!("{p}.post_layernorm"), eps)?,
            probe_q: (probe_q * scale)?,
            head_kv: Linear::new(&in_w.narrow(0, w, 2 * w)?, in_b.narrow(0, w, 2 * w)?)?,
            head_out: Linear::load(t, &format!("{p}.head.attention.out_proj"))?,
            head_heads,
            head_norm: Norm::load(t, &format!("{p}.head.layernorm"), eps)?,
            head_fc1: Linear::load(t, &format!("{p}.head.mlp.fc1"))?,
            head_fc2: Linear::load(t, &format!("{p}.head.mlp.fc2"))?,
            act: c.hidden_act,
        })
    }

    /// `px` is `[batch, channels, size, size]`; returns `[batch, width]` (not normalised).
    fn forward(&self, px: &Tensor) -> Result<Tensor> {
        let (b, c, hgt, wid) = px.dims4()?;
        let p = self.patch;
        let (gh, gw) = (hgt / p, wid / p);
        let n = gh * gw;
        // Unfold into [b·n, c·p·p] in (channel, row, column) order, the order of the conv weight.
        let patches = px.reshape((b, c, gh, p, gw, p))?.permute((0, 2, 4, 1, 3, 5))?.contiguous()?;
        let patches = patches.reshape((b * n, c * p * p))?;
        let x = patches.matmul(&self.patch_w)?;
        x.inplace_op2(&self.patch_b, &BiasAct(None))?;
        let width = x.dim(1)?;
        let mut x = x.reshape((b, n, width))?.broadcast_add(&self.pos)?.reshape((b * n, width))?;
        for block in &self.blocks {
            x = block.forward(&x, b, n)?;
        }
        let x = self.post.forward(&x)?;

        // Attention pooling: one learned query attends over every token of its image.
        let (h, d) = (self.head_heads, width / self.head_heads);
        let kv = self.head_kv.forward(&x, None)?;
        let kv = kv.reshape((b, n, 2, h, d))?.permute((2, 0, 3, 1, 4))?.contiguous()?;
        let (k, v) = (kv.get(0)?, kv.get(1)?);
        let q = self.probe_q.reshape((1, h, 1, d))?.broadcast_as((b, h, 1, d))?.contiguous()?;
        let scores = q.matmul(&k.t()?)?;
        let att = candle_nn::ops::softmax_last_dim(&scores)?.matmul(&v)?; // [b, h, 1, d]
        let att = att.reshape((b, width))?;
        let pooled = self.head_out.forward(&att, None)?;
        let hidden = self.head_fc1.forward(&self.head_norm.forward(&pooled)?, Some(self.act))?;
        self.head_fc2.forward_add(&hidden, &pooled)
    }
}

/// The text tower: token and position embeddings, blocks, final norm, last token, head.
struct Text {
    tokens: Tensor,
    pos: Tensor,
    blocks: Vec<Block>,
    norm: Norm,
    head: Linear,
}

impl Text {
    fn load(t: &mut Tensors, cfg: &Config) -> Result<Text> {
        let c = &cfg.text_config;
        let p = "text_model";
        Ok(Text {
            tokens: get(t, &format!("{p}.embeddings.token_embedding.weight"))?,
            pos: get(t, &format!("{p}.embeddings.position_embedding.weight"))?,
            blocks: blocks(t, p, c.num_hidden_layers, c.num_attention_heads, c.hidden_act, c.layer_norm_eps)?,
            norm: Norm::load(t, &format!("{p}.final_layer_norm"), c.layer_norm_eps)?,
            head: Linear::load(t, &format!("{p}.head"))?,
        })
    }

    /// `ids` is `[batch, len]` (u32); returns `[batch, embed]` (not normalised).
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, n) = ids.dims2()?;
        let x = self.tokens.index_select(&ids.flatten_all()?, 0)?;
        let width = x.dim(1)?;
        let x = x.reshape((b, n, width))?.broadcast_add(&self.pos.narrow(0, 0, n)?)?;
        let mut x = x.reshape((b * n, width))?;
        for block in &self.blocks {
            x = block.forward(&x, b, n)?;
        }
        // Only the last position is pooled: normalise just those rows.
        let last = x.reshape((b, n, width))?.narrow(1, n - 1, 1)?.reshape((b, width))?;
        self.head.forward(&self.norm.forward(&last)?, None)
    }
}

/// Both towers, built on the renamed tensors of a checkpoint.
pub struct Towers {
    vision: Vision,
    text: Text,
}

impl Towers {
    pub fn new(mut t: Tensors, cfg: &Config) -> Result<Towers> {
        Ok(Towers { vision: Vision::load(&mut t, cfg)?, text: Text::load(&mut t, cfg)? })
    }

    pub fn image_features(&self, px: &Tensor) -> Result<Tensor> {
        self.vision.forward(px)
    }

    pub fn text_features(&self, ids: &Tensor) -> Result<Tensor> {
        self.text.forward(ids)
    }
}

/// The activations SigLIP checkpoints use, element by element, as candle and PyTorch define them.
fn activate(act: Activation, v: f32) -> f32 {
    match act {
        Activation::Gelu => (candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * v,
        Activation::GeluPytorchTanh => {
            let c = (2.0f32 / std::f32::consts::PI).sqrt();
            0.5 * v * (1.0 + (c * v * (1.0 + 0.044715 * v * v)).tanh())
        }
        // Never reached: `fused` admits only the two above.
        _ => v,
    }
}

/// Whether `activate` computes `act` (the others go through candle's own operation).
fn fused(act: Activation) -> bool {
    matches!(act, Activation::Gelu | Activation::GeluPytorchTanh)
}

fn f32s<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => Err(candle_core::Error::Msg(format!("{what}: expected a contiguous f32 tensor"))),
    }
}

fn f32s_mut<'a>(s: &'a mut CpuStorage, l: &Layout, what: &str) -> Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => Err(candle_core::Error::Msg(format!("{what}: expected a contiguous f32 tensor"))),
    }
}

/// `x[r, j] = act(x[r, j] + b[j])`, in place, rows spread over threads.
struct BiasAct(Option<Activation>);

impl InplaceOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "fitcheck-bias-act"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let b = f32s(s2, l2, self.name())?;
        let x = f32s_mut(s1, l1, self.name())?;
        let n = b.len();
        if n == 0 || x.len() % n != 0 {
            return Err(candle_core::Error::Msg(format!("{}: {} values and a bias of {n}", self.name(), x.len())));
        }
        let act = self.0;
        x.par_chunks_mut(n * ROWS_PER_TASK).for_each(|rows| {
            for row in rows.chunks_mut(n) {
                for (v, &bias) in row.iter_mut().zip(b) {
                    let y = *v + bias;
                    *v = match act {
                        None => y,
                        Some(a) => activate(a, y),
                    };
                }
            }
        });
        Ok(())
    }
}

/// `x[r, j] = x[r, j] + b[j] + residual[r, j]`, in place, rows spread over threads.
struct BiasResidual;

impl InplaceOp3 for BiasResidual {
    fn name(&self) -> &'static str {
        "fitcheck-bias-residual"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let b = f32s(s2, l2, self.name())?;
        let r = f32s(s3, l3, self.name())?;
        let x = f32s_mut(s1, l1, self.name())?;
        let n = b.len();
        if n == 0 || x.len() % n != 0 || r.len() != x.len() {
            return Err(candle_core::Error::Msg(format!("{}: mismatched sizes", self.name())));
        }
        x.par_chunks_mut(n * ROWS_PER_TASK).zip(r.par_chunks(n * ROWS_PER_TASK)).for_each(|(rows, res)| {
            for (row, res) in rows.chunks_mut(n).zip(res.chunks(n)) {
                for ((v, &bias), &add) in row.iter_mut().zip(b).zip(res) {
                    // The order of the reference: (x·Wᵀ + b) + residual.
                    *v = (*v + bias) + add;
                }
            }
        });
        Ok(())
    }
}
