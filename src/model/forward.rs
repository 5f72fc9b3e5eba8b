//! fitcheck's own forward pass of SigLIP's two towers, on plain `f32` buffers, for throughput on the CPU.
//!
//! It computes what candle-transformers' `siglip::Model` computes (and what open_clip and transformers
//! compute), with the work arranged for the CPU:
//!
//! - every linear layer is one matrix multiply over all tokens of the batch (`[batch·tokens, in]`),
//!   written by the matrix kernel straight into a buffer that lives for the whole forward pass: no
//!   buffer is allocated, zeroed or copied per layer;
//! - q, k and v come from one multiply with the three weights side by side; the attention scale is
//!   folded into the q weights when it is a power of two (exact: head width 4, 16, 64, 256), otherwise
//!   applied to the scores;
//! - attention reads q, k and v where that multiply left them (strided views, no copies) and writes
//!   each head's output into its columns of the output; each image runs on its own thread, its heads
//!   one after another, with the softmax between the two multiplies on a buffer that stays in cache;
//! - bias and activation, bias and residual, and layer norm are each one pass over rows, spread over
//!   rayon's threads;
//! - the patch embedding is a multiply on unfolded patches instead of a strided convolution.
//!
//! Invariant: the same weights, names and numerics as the reference model up to the order of floating
//! point sums; `tests/model` holds the result to the Python references at 1e-5, and the bench reports
//! the largest difference from PyTorch on a ViT-B/16.

use std::collections::HashMap;

use candle_core::{Device, Result, Tensor};
use candle_nn::Activation;
use candle_transformers::models::siglip::Config;
use rayon::prelude::*;

/// Rows per rayon task in the row-wise passes: enough work per task to amortise scheduling.
const ROWS_PER_TASK: usize = 16;

/// Up to this many rows a linear layer is split by output columns across threads ([`Linear::multiply`]).
const SPLIT_ROWS: usize = 256;

/// The checkpoint's tensors by name, handed over as they are used: each is copied into the layer
/// that needs it and dropped, so loading holds at most one layer twice.
type Tensors = HashMap<String, Tensor>;

fn err(msg: String) -> candle_core::Error {
    candle_core::Error::Msg(msg)
}

fn get(t: &mut Tensors, name: &str) -> Result<Tensor> {
    t.remove(name).ok_or_else(|| err(format!("no tensor '{name}'")))
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// A row-major strided view of a matrix inside a slice: element `(r, c)` is `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

impl View<'_> {
    /// Whether every element of a `rows × cols` matrix lies inside the slice.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

fn rm(data: &[f32], cols: usize) -> View<'_> {
    View { data, rs: cols, cs: 1 }
}

/// How a multiply may use threads: across rayon's pool, or on the calling thread (inside a task
/// that is already one of many).
#[derive(Clone, Copy)]
enum Threads {
    Pool,
    One,
}

/// `dst[r, c] = Σ_k a[r, k]·b[k, c]` for an `m × k` times `k × n` product, overwriting `dst` (row
/// stride `dst_rs`, column stride 1); the matrix kernel is gemm's, the one candle uses.
///
/// Every view is checked to lie inside its slice, so the kernel only touches memory it was lent,
/// and `dst` cannot overlap the inputs (it is borrowed mutably).
#[allow(unsafe_code)] // gemm's entry point takes raw pointers; the bounds are checked above the call
#[allow(clippy::too_many_arguments)]
fn matmul(dst: &mut [f32], dst_rs: usize, a: View, b: View, m: usize, n: usize, k: usize, threads: Threads) {
    let out = View { data: dst, rs: dst_rs, cs: 1 };
    assert!(out.fits(m, n) && a.fits(m, k) && b.fits(k, n), "matmul views out of bounds: {m}x{k} times {k}x{n}");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for r in 0..m {
            dst[r * dst_rs..r * dst_rs + n].fill(0.0);
        }
        return;
    }
    let parallelism = match threads {
        Threads::One => gemm::Parallelism::None,
        Threads::Pool => match rayon::current_num_threads() {
            0 | 1 => gemm::Parallelism::None,
            n => gemm::Parallelism::Rayon(n),
        },
    };
    // SAFETY: the three views were checked to lie inside their slices for these sizes and strides;
    // `dst` is a unique borrow, so it overlaps neither input; gemm reads `a` and `b` and writes only
    // the `m × n` elements of `dst` (`read_dst = false`: dst := 1·a·b).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            false,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// A linear layer `y = x·Wᵀ + b`, with `W` stored transposed (`wt`, `[in, out]` row-major): the
/// matrix kernel packs its right-hand side on every call, and packing `[out, in]` read column by column
/// dominated small batches (a single 64-token text).
struct Linear {
    wt: Vec<f32>,
    b: Vec<f32>,
    inp: usize,
    out: usize,
}

impl Linear {
    /// From `w` (`[out, in]`, as checkpoints store it) and `b` (`[out]`).
    fn new(w: &Tensor, b: &Tensor) -> Result<Linear> {
        let (out, inp) = w.dims2()?;
        let b = values(b)?;
        if b.len() != out {
            return Err(err(format!("a bias of {} for {out} outputs", b.len())));
        }
        Ok(Linear { wt: values(&w.t()?.contiguous()?)?, b, inp, out })
    }

    fn load(t: &mut Tensors, p: &str) -> Result<Linear> {
        Linear::new(&get(t, &format!("{p}.weight"))?, &get(t, &format!("{p}.bias"))?)
    }

    /// Refuses a layer whose sizes do not chain with its neighbours' (the forward pass relies on it).
    fn expect(&self, inp: usize, out: usize, what: &str) -> Result<()> {
        if (self.inp, self.out) == (inp, out) {
            Ok(())
        } else {
            Err(err(format!("{what}: {}x{} where {inp}x{out} was expected", self.inp, self.out)))
        }
    }

    /// `y = x·Wᵀ` for the `rows` rows of `x`, without the bias (the caller's next pass adds it).
    ///
    /// A few rows (one text: 64) are split by output columns, one slice of the weights per thread,
    /// each multiplied on its own thread: given the whole product, the kernel's own threading gained
    /// nothing on such shapes (a 64-token text ran no faster on two threads than on one; split, 1.7–1.9×).
    fn multiply(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        let threads = rayon::current_num_threads();
        if rows > SPLIT_ROWS || threads < 2 {
            matmul(y, self.out, rm(x, self.inp), rm(&self.wt, self.out), rows, self.out, self.inp, Threads::Pool);
            return;
        }
        let cols = self.out.div_ceil(threads).next_multiple_of(16);
        let starts: Vec<usize> = (0..self.out).step_by(cols).collect();
        let parts: Vec<Vec<f32>> = starts
            .par_iter()
            .map(|&start| {
                let n = cols.min(self.out - start);
                let mut part = vec![0.0f32; rows * n];
                let w = View { data: &self.wt[start..], rs: self.out, cs: 1 };
                matmul(&mut part, n, rm(x, self.inp), w, rows, n, self.inp, Threads::One);
                part
            })
            .collect();
        for (start, part) in starts.into_iter().zip(parts) {
            let n = part.len() / rows;
            for (y, p) in y.chunks_mut(self.out).zip(part.chunks(n)) {
                y[start..start + n].copy_from_slice(p);
            }
        }
    }

    /// `y = act(x·Wᵀ + b)`.
    fn forward(&self, x: &[f32], rows: usize, y: &mut [f32], act: Option<Activation>) {
        self.multiply(x, rows, y);
        bias_act(&mut y[..rows * self.out], &self.b, act);
    }

    /// `x = (h·Wᵀ + b) + x`, the reference's order, through `tmp`.
    fn forward_add(&self, h: &[f32], rows: usize, tmp: &mut [f32], x: &mut [f32]) {
        self.multiply(h, rows, tmp);
        bias_residual(&mut x[..rows * self.out], &tmp[..rows * self.out], &self.b);
    }
}

struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(t: &mut Tensors, p: &str, eps: f64) -> Result<Norm> {
        let w = values(&get(t, &format!("{p}.weight"))?)?;
        let b = values(&get(t, &format!("{p}.bias"))?)?;
        if w.len() != b.len() {
            return Err(err(format!("{p}: a weight of {} and a bias of {}", w.len(), b.len())));
        }
        Ok(Norm { w, b, eps: eps as f32 })
    }

    /// `y = layer_norm(x)` row by row (rows of `self.w.len()` values).
    fn forward(&self, x: &[f32], y: &mut [f32]) {
        let n = self.w.len();
        y[..x.len()]
            .par_chunks_mut(n * ROWS_PER_TASK)
            .zip(x.par_chunks(n * ROWS_PER_TASK))
            .for_each(|(ys, xs)| norm_rows(ys, xs, &self.w, &self.b, self.eps));
    }
}

/// Layer norm of the rows of `xs` (rows of `w.len()` values) into `ys`.
#[inline(always)]
fn norm_rows_plain(ys: &mut [f32], xs: &[f32], w: &[f32], b: &[f32], eps: f32) {
    let n = w.len();
    for (y, x) in ys.chunks_mut(n).zip(xs.chunks(n)) {
        let mean = lane_sum(x, |v| v) / n as f32;
        let var = lane_sum(x, |v| (v - mean) * (v - mean)) / n as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for (((y, &v), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
            *y = (v - mean) * inv * w + b;
        }
    }
}

wide_or_plain!(norm_rows => norm_rows_plain(ys: &mut [f32], xs: &[f32], w: &[f32], b: &[f32], eps: f32));
wide_or_plain!(bias_act_rows => bias_act_rows_plain(rows: &mut [f32], b: &[f32], act: Option<Activation>));
wide_or_plain!(bias_residual_rows => bias_residual_rows_plain(xs: &mut [f32], ys: &[f32], b: &[f32]));
wide_or_plain!(softmax => softmax_plain(row: &mut [f32], scale: Option<f32>));

/// `Σ f(x)` over a row, in 16 interleaved partial sums: a single running sum is a chain of dependent
/// additions the compiler may not reorder, so it cannot use vector instructions; partial sums can.
/// (Layer norm's two sums over each row were a few percent of a forward pass.)
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    let rest: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    lanes.iter().sum::<f32>() + rest
}

/// The buffers one forward pass of a tower works in, sized for its batch once.
struct Scratch {
    ln: Vec<f32>,
    qkv: Vec<f32>,
    att: Vec<f32>,
    tmp: Vec<f32>,
    hidden: Vec<f32>,
}

impl Scratch {
    fn new(rows: usize, width: usize, mlp: usize) -> Scratch {
        Scratch {
            ln: vec![0.0; rows * width],
            qkv: vec![0.0; rows * 3 * width],
            att: vec![0.0; rows * width],
            tmp: vec![0.0; rows * width],
            hidden: vec![0.0; rows * mlp],
        }
    }
}

/// One pre-norm transformer block.
struct Block {
    ln1: Norm,
    qkv: Linear,
    /// Applied to the scores when it could not be folded into the q weights exactly.
    score_scale: Option<f32>,
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
        let w = |t: &mut Tensors, n: &str| get(t, &format!("{a}.{n}_proj.weight"));
        let b = |t: &mut Tensors, n: &str| get(t, &format!("{a}.{n}_proj.bias"));
        let (qw, qb) = (w(t, "q")?, b(t, "q")?);
        let width = qw.dim(1)?;
        if heads == 0 || !width.is_multiple_of(heads) {
            return Err(err(format!("{p}: width {width} does not split into {heads} heads")));
        }
        let scale = ((width / heads) as f64).powf(-0.5);
        // Multiplying by a power of two is exact, so folding it into the weights changes no bit.
        let exact = scale.log2().fract() == 0.0;
        let (qw, qb) = if exact { ((qw * scale)?, (qb * scale)?) } else { (qw, qb) };
        let qkv = Linear::new(
            &Tensor::cat(&[&qw, &w(t, "k")?, &w(t, "v")?], 0)?,
            &Tensor::cat(&[&qb, &b(t, "k")?, &b(t, "v")?], 0)?,
        )?;
        let block = Block {
            ln1: Norm::load(t, &format!("{p}.layer_norm1"), eps)?,
            qkv,
            score_scale: (!exact).then_some(scale as f32),
            out: Linear::load(t, &format!("{a}.out_proj"))?,
            ln2: Norm::load(t, &format!("{p}.layer_norm2"), eps)?,
            fc1: Linear::load(t, &format!("{p}.mlp.fc1"))?,
            fc2: Linear::load(t, &format!("{p}.mlp.fc2"))?,
            heads,
            act,
        };
        block.check(width, p)?;
        Ok(block)
    }

    fn check(&self, width: usize, p: &str) -> Result<()> {
        if self.ln1.w.len() != width || self.ln2.w.len() != width {
            return Err(err(format!("{p}: layer norms do not match width {width}")));
        }
        self.qkv.expect(width, 3 * width, &format!("{p} q, k, v"))?;
        self.out.expect(width, width, &format!("{p} out_proj"))?;
        self.fc1.expect(width, self.fc1.out, &format!("{p} fc1"))?;
        self.fc2.expect(self.fc1.out, width, &format!("{p} fc2"))
    }

    /// `x` is `[batch·tokens, width]`, updated in place.
    fn forward(&self, x: &mut [f32], s: &mut Scratch, tokens: usize) {
        let width = self.ln1.w.len();
        let rows = x.len() / width;
        self.ln1.forward(x, &mut s.ln);
        self.qkv.forward(&s.ln, rows, &mut s.qkv, None);
        attention(&s.qkv[..rows * 3 * width], &mut s.att[..rows * width], width, tokens, self.heads, self.score_scale);
        self.out.forward_add(&s.att, rows, &mut s.tmp, x);
        self.ln2.forward(x, &mut s.ln);
        self.fc1.forward(&s.ln, rows, &mut s.hidden, Some(self.act));
        self.fc2.forward_add(&s.hidden, rows, &mut s.tmp, x);
    }
}

/// Multi-head self-attention of each image (or text) of a batch: `qkv` is `[batch·tokens, 3·width]`
/// (q, k, v side by side, heads side by side within each), `out` is `[batch·tokens, width]`.
///
/// Each image is one task on rayon's pool and runs its heads one after another on its own thread: a
/// head's multiplies (`tokens × head width × tokens`) are too small to split across threads, and
/// the scores of one head (196² values for a 224 px ViT-B/16 image) stay in cache between the
/// two multiplies and the softmax.
fn attention(qkv: &[f32], out: &mut [f32], width: usize, tokens: usize, heads: usize, scale: Option<f32>) {
    let d = width / heads;
    let stride = 3 * width;
    out.par_chunks_mut(tokens * width).zip(qkv.par_chunks(tokens * stride)).for_each(|(o, x)| {
        let mut p = vec![0.0f32; tokens * tokens];
        for h in 0..heads {
            let q = View { data: &x[h * d..], rs: stride, cs: 1 };
            // kᵀ, read in place: its element (c, j) is k[j, c].
            let kt = View { data: &x[width + h * d..], rs: 1, cs: stride };
            matmul(&mut p, tokens, q, kt, tokens, tokens, d, Threads::One);
            for row in p.chunks_mut(tokens) {
                softmax(row, scale);
            }
            let v = View { data: &x[2 * width + h * d..], rs: stride, cs: 1 };
            matmul(&mut o[h * d..], width, rm(&p, tokens), v, tokens, d, tokens, Threads::One);
        }
    });
}

/// `row = softmax(scale · row)`, with the maximum subtracted first, as PyTorch and candle do.
#[inline(always)]
fn softmax_plain(row: &mut [f32], scale: Option<f32>) {
    if let Some(s) = scale {
        row.iter_mut().for_each(|v| *v *= s);
    }
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // The exponentials in one loop and their sum in 16 lanes, so that both vectorise.
    row.iter_mut().for_each(|v| *v = exp(*v - max));
    let sum = lane_sum(row, |v| v);
    row.iter_mut().for_each(|v| *v /= sum);
}

/// `e^x` within one unit in the last place of `f32` (tested), written without branches or library
/// calls so that the softmax loop vectorises: the scalar `expf` took about 3% of an image batch.
/// PyTorch's softmax uses a vectorised approximation as well.
///
/// `x = n·ln 2 + r` with `n` the nearest integer to `x / ln 2` and `|r| ≤ ln 2 / 2` (ln 2 in two parts,
/// so that `r` is exact), `e^r` from a degree-7 polynomial, and `2^n` put into the exponent bits.
/// Below −87.34 (where `e^x` leaves the normal range) it returns 0; the softmax calls it on
/// `x ≤ 0`, where such values are below 1e-38 of the largest term.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4; // few significant bits: n·LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: adding and subtracting it rounds to an integer
    let lo = -87.336_55f32;
    let y = x.clamp(lo, 88.376_26);
    let n = (y * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let p =
        ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65) * r + 0.5;
    let e = (p * (r * r) + r) + 1.0;
    let scale = f32::from_bits((((n as i32) + 127) as u32) << 23);
    if x < lo {
        0.0
    } else {
        e * scale
    }
}

fn blocks(t: &mut Tensors, p: &str, n: usize, heads: usize, act: Activation, eps: f64) -> Result<Vec<Block>> {
    check_act(act)?;
    (0..n).map(|i| Block::load(t, &format!("{p}.encoder.layers.{i}"), heads, act, eps)).collect()
}

/// Runs `blocks` over `x` (`[rows, width]`, `tokens` per image or text), in place.
fn encode(blocks: &[Block], x: &mut [f32], width: usize, tokens: usize) {
    let Some(first) = blocks.first() else { return };
    let mut s = Scratch::new(x.len() / width, width, first.fc1.out);
    for block in blocks {
        block.forward(x, &mut s, tokens);
    }
}

/// The image tower: patches, blocks, final norm, attention-pooling head.
struct Vision {
    patch_embed: Linear,
    pos: Vec<f32>,
    patch: usize,
    blocks: Vec<Block>,
    post: Norm,
    /// The probe's projection, scaled: the same query for every image, so computed once at load.
    probe_q: Vec<f32>,
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
        let patch_embed =
            Linear::new(&patch_w.reshape((w, ()))?, &get(t, &format!("{p}.embeddings.patch_embedding.bias"))?)?;
        let in_w = get(t, &format!("{p}.head.attention.in_proj_weight"))?;
        let in_b = get(t, &format!("{p}.head.attention.in_proj_bias"))?;
        let probe = get(t, &format!("{p}.head.probe"))?.reshape((1, w))?;
        let probe_q = probe.matmul(&in_w.narrow(0, 0, w)?.t()?)?.broadcast_add(&in_b.narrow(0, 0, w)?)?;
        let head_heads = c.num_attention_heads;
        if head_heads == 0 || !w.is_multiple_of(head_heads) {
            return Err(err(format!("vision width {w} does not split into {head_heads} heads")));
        }
        let scale = ((w / head_heads) as f64).powf(-0.5);
        check_act(c.hidden_act)?;
        let vision = Vision {
            patch_embed,
            pos: values(&get(t, &format!("{p}.embeddings.position_embedding.weight"))?)?,
            patch: c.patch_size,
            blocks: blocks(t, p, c.num_hidden_layers, c.num_attention_heads, c.hidden_act, eps)?,
            post: Norm::load(t, &format!("{p}.post_layernorm"), eps)?,
            probe_q: values(&(probe_q * scale)?)?,
            head_kv: Linear::new(&in_w.narrow(0, w, 2 * w)?, &in_b.narrow(0, w, 2 * w)?)?,
            head_out: Linear::load(t, &format!("{p}.head.attention.out_proj"))?,
            head_heads,
            head_norm: Norm::load(t, &format!("{p}.head.layernorm"), eps)?,
            head_fc1: Linear::load(t, &format!("{p}.head.mlp.fc1"))?,
            head_fc2: Linear::load(t, &format!("{p}.head.mlp.fc2"))?,
            act: c.hidden_act,
        };
        vision.check(w)?;
        Ok(vision)
    }

    fn check(&self, w: usize) -> Result<()> {
        if self.blocks.iter().any(|b| b.ln1.w.len() != w)
            || [&self.post, &self.head_norm].iter().any(|n| n.w.len() != w)
            || self.probe_q.len() != w
        {
            return Err(err(format!("vision tower: sizes do not match width {w}")));
        }
        self.patch_embed.expect(self.patch_embed.inp, w, "patch embedding")?;
        self.head_kv.expect(w, 2 * w, "head k, v")?;
        self.head_out.expect(w, w, "head out_proj")?;
        self.head_fc1.expect(w, self.head_fc1.out, "head fc1")?;
        self.head_fc2.expect(self.head_fc1.out, w, "head fc2")
    }

    /// `px` is `[batch, channels, size, size]`; returns `[batch, width]` (not normalised).
    fn forward(&self, px: &Tensor) -> Result<Tensor> {
        let (b, c, hgt, wid) = px.dims4()?;
        let px = values(px)?;
        let p = self.patch;
        let (gh, gw) = (hgt / p, wid / p);
        let n = gh * gw;
        let width = self.head_norm.w.len();
        let cpp = c * p * p;
        if cpp != self.patch_embed.inp || self.pos.len() != n * width || b == 0 {
            return Err(err(format!("{b} images of {c}x{hgt}x{wid} do not fit the patch embedding")));
        }
        // Unfold into [b·n, c·p·p] in (channel, row, column) order, the order of the conv weight.
        let mut patches = vec![0.0f32; b * n * cpp];
        patches.par_chunks_mut(n * cpp).zip(px.par_chunks(c * hgt * wid)).for_each(|(dst, img)| {
            for (i, row) in dst.chunks_mut(cpp).enumerate() {
                let (gy, gx) = (i / gw, i % gw);
                for ch in 0..c {
                    for py in 0..p {
                        let src = ch * hgt * wid + (gy * p + py) * wid + gx * p;
                        row[(ch * p + py) * p..][..p].copy_from_slice(&img[src..src + p]);
                    }
                }
            }
        });
        let mut x = vec![0.0f32; b * n * width];
        self.patch_embed.multiply(&patches, b * n, &mut x);
        drop(patches);
        let bias = &self.patch_embed.b;
        x.par_chunks_mut(n * width).for_each(|img| {
            for (row, pos) in img.chunks_mut(width).zip(self.pos.chunks(width)) {
                for ((v, &bb), &pp) in row.iter_mut().zip(bias).zip(pos) {
                    *v = (*v + bb) + pp;
                }
            }
        });
        encode(&self.blocks, &mut x, width, n);
        let mut ln = vec![0.0f32; x.len()];
        self.post.forward(&x, &mut ln);
        drop(x);

        // Attention pooling: one learned query attends over every token of its image.
        let mut kv = vec![0.0f32; b * n * 2 * width];
        self.head_kv.forward(&ln, b * n, &mut kv, None);
        drop(ln);
        let (h, d) = (self.head_heads, width / self.head_heads);
        let mut att = vec![0.0f32; b * width];
        att.par_chunks_mut(width).zip(kv.par_chunks(n * 2 * width)).for_each(|(a, kv)| {
            let mut scores = vec![0.0f32; n];
            for head in 0..h {
                let q = &self.probe_q[head * d..][..d];
                for (j, s) in scores.iter_mut().enumerate() {
                    *s = q.iter().zip(&kv[j * 2 * width + head * d..][..d]).map(|(a, b)| a * b).sum();
                }
                softmax(&mut scores, None);
                let o = &mut a[head * d..][..d];
                for (j, &s) in scores.iter().enumerate() {
                    for (o, &v) in o.iter_mut().zip(&kv[j * 2 * width + width + head * d..][..d]) {
                        *o += s * v;
                    }
                }
            }
        });
        let mut pooled = vec![0.0f32; b * width];
        self.head_out.forward(&att, b, &mut pooled, None);
        let mut normed = vec![0.0f32; b * width];
        self.head_norm.forward(&pooled, &mut normed);
        let mut hidden = vec![0.0f32; b * self.head_fc1.out];
        self.head_fc1.forward(&normed, b, &mut hidden, Some(self.act));
        self.head_fc2.forward_add(&hidden, b, &mut normed, &mut pooled);
        Tensor::from_vec(pooled, (b, width), &Device::Cpu)
    }
}

/// The text tower: token and position embeddings, blocks, final norm, last token, head.
struct Text {
    tokens: Vec<f32>,
    pos: Vec<f32>,
    blocks: Vec<Block>,
    norm: Norm,
    head: Linear,
}

impl Text {
    fn load(t: &mut Tensors, cfg: &Config) -> Result<Text> {
        let c = &cfg.text_config;
        let p = "text_model";
        let text = Text {
            tokens: values(&get(t, &format!("{p}.embeddings.token_embedding.weight"))?)?,
            pos: values(&get(t, &format!("{p}.embeddings.position_embedding.weight"))?)?,
            blocks: blocks(t, p, c.num_hidden_layers, c.num_attention_heads, c.hidden_act, c.layer_norm_eps)?,
            norm: Norm::load(t, &format!("{p}.final_layer_norm"), c.layer_norm_eps)?,
            head: Linear::load(t, &format!("{p}.head"))?,
        };
        let w = c.hidden_size;
        if text.norm.w.len() != w || !text.tokens.len().is_multiple_of(w) || !text.pos.len().is_multiple_of(w) {
            return Err(err(format!("text tower: sizes do not match width {w}")));
        }
        text.head.expect(w, text.head.out, "text head")?;
        Ok(text)
    }

    /// `ids` is `[batch, len]` (u32); returns `[batch, embed]` (not normalised).
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, n) = ids.dims2()?;
        let ids = ids.flatten_all()?.to_vec1::<u32>()?;
        let width = self.norm.w.len();
        let vocab = self.tokens.len() / width;
        if n == 0 || n * width > self.pos.len() {
            return Err(err(format!("{n} tokens for a context of {}", self.pos.len() / width)));
        }
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(err(format!("token id {id} outside a vocabulary of {vocab}")));
        }
        let mut x = vec![0.0f32; b * n * width];
        for (r, (row, &id)) in x.chunks_mut(width).zip(&ids).enumerate() {
            let tok = &self.tokens[id as usize * width..][..width];
            let pos = &self.pos[(r % n) * width..][..width];
            for ((v, &t), &p) in row.iter_mut().zip(tok).zip(pos) {
                *v = t + p;
            }
        }
        encode(&self.blocks, &mut x, width, n);
        // Only the last position is pooled: normalise just those rows.
        let last: Vec<f32> = x.chunks(n * width).flat_map(|text| text[(n - 1) * width..].iter().copied()).collect();
        let mut normed = vec![0.0f32; b * width];
        self.norm.forward(&last, &mut normed);
        let mut out = vec![0.0f32; b * self.head.out];
        self.head.forward(&normed, b, &mut out, None);
        Tensor::from_vec(out, (b, self.head.out), &Device::Cpu)
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

/// `erf(x)` as `x·P(x²)/Q(x²)`, evaluated in f64, on `[-4, 4]` (clamped beyond, where erf is ±1 to
/// f32 precision). Written without branches or calls so that the GELU pass vectorises (the scalar
/// library `erff` it replaces was a tenth of a forward pass). The coefficients are a weighted
/// least-squares fit to erf on `[0, 4]`; the largest difference from the exact erf, after rounding
/// to f32, is 9.8e-8 (`tests` below checks it against known values and the library `erff`).
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: [f64; 7] = [
        1.1283787074999785,
        0.21392126295903652,
        0.05243145354992054,
        0.004288583692375439,
        0.00015516119027673758,
        -1.9837657463233747e-06,
        1.9135370741363447e-08,
    ];
    const Q: [f64; 5] = [1.0, 0.5229107320229779, 0.12079012429382452, 0.015547203107550343, 0.001095984754100975];
    let x = f64::from(x).clamp(-4.0, 4.0);
    let t = x * x;
    let p = P.iter().rev().fold(0.0, |acc, &c| acc * t + c);
    let q = Q.iter().rev().fold(0.0, |acc, &c| acc * t + c);
    (x * p / q) as f32
}

/// GELU with the exact (erf) form, as PyTorch's `nn.GELU()`.
#[inline(always)]
fn gelu_erf(v: f32) -> f32 {
    (erf(v * std::f32::consts::FRAC_1_SQRT_2) + 1.0) * 0.5 * v
}

/// The activations SigLIP checkpoints use, element by element, as candle and PyTorch define them.
#[inline(always)]
fn activate(act: Activation, v: f32) -> f32 {
    match act {
        Activation::Gelu => gelu_erf(v),
        Activation::GeluPytorchTanh => {
            let c = (2.0f32 / std::f32::consts::PI).sqrt();
            0.5 * v * (1.0 + (c * v * (1.0 + 0.044715 * v * v)).tanh())
        }
        // Refused at load by `check_act`.
        _ => v,
    }
}

/// Refuses an activation `activate` does not compute (SigLIP checkpoints use the two GELUs).
fn check_act(act: Activation) -> Result<()> {
    match act {
        Activation::Gelu | Activation::GeluPytorchTanh => Ok(()),
        other => Err(err(format!("unsupported activation {other:?}"))),
    }
}

/// `y[r, j] = act(y[r, j] + b[j])`, in place, rows spread over threads.
fn bias_act(y: &mut [f32], b: &[f32], act: Option<Activation>) {
    y.par_chunks_mut(b.len() * ROWS_PER_TASK).for_each(|rows| bias_act_rows(rows, b, act));
}

#[inline(always)]
fn bias_act_rows_plain(rows: &mut [f32], b: &[f32], act: Option<Activation>) {
    for row in rows.chunks_mut(b.len()) {
        for (v, &bias) in row.iter_mut().zip(b) {
            *v += bias;
        }
        // One loop per activation, so that each is a plain loop the compiler can vectorise.
        match act {
            None => {}
            Some(Activation::Gelu) => row.iter_mut().for_each(|v| *v = gelu_erf(*v)),
            Some(a) => row.iter_mut().for_each(|v| *v = activate(a, *v)),
        }
    }
}

/// `x[r, j] = (y[r, j] + b[j]) + x[r, j]` (the reference's order: the layer's output, then the
/// residual), rows spread over threads.
fn bias_residual(x: &mut [f32], y: &[f32], b: &[f32]) {
    let n = b.len();
    x.par_chunks_mut(n * ROWS_PER_TASK)
        .zip(y.par_chunks(n * ROWS_PER_TASK))
        .for_each(|(xs, ys)| bias_residual_rows(xs, ys, b));
}

#[inline(always)]
fn bias_residual_rows_plain(xs: &mut [f32], ys: &[f32], b: &[f32]) {
    let n = b.len();
    for (x, y) in xs.chunks_mut(n).zip(ys.chunks(n)) {
        for ((v, &o), &bias) in x.iter_mut().zip(y).zip(b) {
            // Commutative, so the same value as (o + bias) + x.
            *v += o + bias;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small integers, so every product and sum below is exact in f32 whatever the summation order.
    fn ints(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7 + seed * 3) % 11) as f32 - 5.0).collect()
    }

    #[test]
    fn matmul_reads_strided_views_and_writes_only_its_block() {
        // a: 3×4 read as every other column of a 3×8 buffer; b: 4×2 read transposed from a 2×4 buffer.
        let a_buf = ints(24, 1);
        let b_buf = ints(8, 2);
        let mut dst = [99.0f32; 3 * 5];
        let a = View { data: &a_buf, rs: 8, cs: 2 };
        let b = View { data: &b_buf, rs: 1, cs: 4 };
        matmul(&mut dst[1..], 5, a, b, 3, 2, 4, Threads::One);
        for r in 0..3 {
            for c in 0..5 {
                let got = dst[r * 5 + c];
                if (1..3).contains(&c) {
                    let want: f32 = (0..4).map(|k| a_buf[r * 8 + k * 2] * b_buf[(c - 1) * 4 + k]).sum();
                    assert_eq!(got, want, "({r}, {c})");
                } else {
                    assert_eq!(got, 99.0, "({r}, {c}) is outside the product and must be untouched");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn matmul_refuses_a_view_past_its_slice() {
        let a = ints(6, 0);
        let mut dst = [0.0f32; 6];
        // The right-hand side would be 3×3, nine values read from six.
        matmul(&mut dst, 3, rm(&a, 3), rm(&a, 3), 2, 3, 3, Threads::One);
    }

    #[test]
    fn linear_layers_give_the_textbook_product_split_by_columns_or_not() {
        // 40 outputs (not a multiple of 16, so the last column slice is short), 9 inputs.
        let (out, inp) = (40usize, 9usize);
        let w = ints(out * inp, 3);
        let lin = Linear::new(
            &Tensor::from_vec(w.clone(), (out, inp), &Device::Cpu).unwrap(),
            &Tensor::from_vec(vec![0.0f32; out], out, &Device::Cpu).unwrap(),
        )
        .unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for rows in [1, 64, SPLIT_ROWS + 1] {
            let x = ints(rows * inp, rows);
            let mut y = vec![0.0f32; rows * out];
            pool.install(|| lin.multiply(&x, rows, &mut y));
            for r in 0..rows {
                for o in 0..out {
                    let want: f32 = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
                    assert_eq!(y[r * out + o], want, "{rows} rows: ({r}, {o})");
                }
            }
        }
    }

    #[test]
    fn erf_matches_known_values_and_the_library_erff() {
        // erf at these points, to 16 digits (tables of the error function).
        for (x, want) in [
            (0.0f32, 0.0f64),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (-1.0, -0.8427007929497149),
            (1.5, 0.9661051464753108),
            (2.0, 0.9953222650189527),
            (3.0, 0.9999779095030014),
            (5.0, 1.0),
            (-40.0, -1.0),
        ] {
            assert!((f64::from(erf(x)) - want).abs() < 1e-7, "erf({x}) = {} vs {want}", erf(x));
        }
        let mut worst = 0.0f32;
        for i in -600_000..=600_000 {
            let x = i as f32 * 1e-5;
            worst = worst.max((erf(x) - candle_core::cpu::erf::erf_f32(x)).abs());
        }
        assert!(worst < 2e-7, "largest difference from erff on [-6, 6]: {worst}");
        assert!(erf(f32::NAN).is_nan());
    }

    #[test]
    fn the_wide_row_passes_give_the_same_bits_as_the_plain_ones() {
        // Values spread over GELU's whole range, rows of 40 (not a multiple of any vector width).
        let vals: Vec<f32> = (0..400).map(|i| ((i * 7919) % 1000) as f32 / 97.0 - 5.0).collect();
        let b: Vec<f32> = (0..40).map(|i| i as f32 / 50.0 - 0.4).collect();
        let w: Vec<f32> = (0..40).map(|i| 1.0 + i as f32 / 80.0).collect();
        for act in [None, Some(Activation::Gelu), Some(Activation::GeluPytorchTanh)] {
            let (mut wide, mut plain) = (vals.clone(), vals.clone());
            bias_act_rows(&mut wide, &b, act);
            bias_act_rows_plain(&mut plain, &b, act);
            assert_eq!(
                wide.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                plain.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{act:?}"
            );
        }
        let (mut wide, mut plain) = (vec![0.0f32; 400], vec![0.0f32; 400]);
        norm_rows(&mut wide, &vals, &w, &b, 1e-6);
        norm_rows_plain(&mut plain, &vals, &w, &b, 1e-6);
        assert_eq!(wide, plain);
        let (mut wide, mut plain) = (vals.clone(), vals.clone());
        bias_residual_rows(&mut wide, &vals, &b);
        bias_residual_rows_plain(&mut plain, &vals, &b);
        assert_eq!(wide, plain);
        let (mut wide, mut plain) = (vals[..40].to_vec(), vals[..40].to_vec());
        softmax(&mut wide, Some(0.125));
        softmax_plain(&mut plain, Some(0.125));
        assert_eq!(wide, plain);
    }

    #[test]
    fn exp_is_within_one_unit_in_the_last_place() {
        // Every 97th float from -87.3 to 88.3, and the ends.
        let mut worst = 0.0f64;
        let mut x = -87.3f32;
        while x < 88.3 {
            let want = (x as f64).exp();
            let ulp = (want as f32).abs() * f32::EPSILON;
            worst = worst.max((exp(x) as f64 - want).abs() / ulp as f64);
            x = f32::from_bits(if x < 0.0 { x.to_bits() - 97 } else { x.to_bits() + 97 });
            if x.to_bits() == 0x8000_0000 || (x < 0.0 && x > -1e-30) {
                x = 0.0;
            }
        }
        assert!(worst <= 1.0, "{worst} units in the last place"); // 0.71 when written
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn softmax_matches_the_definition_and_applies_the_scale_first() {
        let mut row = vec![1.0f32, 2.0, 3.0];
        softmax(&mut row, Some(0.5));
        let e: Vec<f64> = [0.5f64, 1.0, 1.5].iter().map(|v| v.exp()).collect();
        let sum: f64 = e.iter().sum();
        for (got, e) in row.iter().zip(&e) {
            assert!((*got as f64 - e / sum).abs() < 1e-7, "{got} vs {}", e / sum);
        }
    }

    #[test]
    fn attention_equals_the_textbook_computation_per_image_and_head() {
        // 2 images × 3 tokens, width 4 in 2 heads of 2.
        let (tokens, width, heads) = (3usize, 4usize, 2usize);
        let qkv: Vec<f32> = ints(2 * tokens * 3 * width, 5).iter().map(|v| v / 4.0).collect();
        let mut out = vec![0.0f32; 2 * tokens * width];
        attention(&qkv, &mut out, width, tokens, heads, Some(0.5));
        let d = width / heads;
        for img in 0..2 {
            for h in 0..heads {
                let at = |t: usize, part: usize, c: usize| {
                    qkv[(img * tokens + t) * 3 * width + part * width + h * d + c] as f64
                };
                for i in 0..tokens {
                    let s: Vec<f64> =
                        (0..tokens).map(|j| 0.5 * (0..d).map(|c| at(i, 0, c) * at(j, 1, c)).sum::<f64>()).collect();
                    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for c in 0..d {
                        let want: f64 = (0..tokens).map(|j| e[j] / z * at(j, 2, c)).sum();
                        let got = out[(img * tokens + i) * width + h * d + c] as f64;
                        assert!(
                            (got - want).abs() < 1e-6,
                            "image {img} head {h} token {i} column {c}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
