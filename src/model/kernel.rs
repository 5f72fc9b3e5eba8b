//! The linear layers' matrix multiply on CPUs with AVX-512: the weights are packed once, at load,
//! into panels of 48 output columns, and a register-blocked kernel computes 8 rows × 48 columns of
//! the product at a time, straight into the row-major output.
//!
//! Why not gemm (which candle uses, and which the rest of the forward pass still calls): gemm is
//! general over layouts, so it repacks the right-hand side on every call (or reads it unpacked on
//! small products) and computes column-major tiles. A linear layer's weights never change, so
//! packing them once removes that work from every call, and a kernel whose vectors run along the
//! output columns writes row-major tokens directly. On the ViT-B/16's shapes this kernel ran at
//! 1.3–2.1× gemm's rate on one thread (`benches/README.md`).
//!
//! Numerics: every output is one accumulator that adds `a[r, k]·w[c, k]` with a fused multiply-add
//! for `k = 0, 1, …` in order. Blocking over `k` stores the accumulator and loads it back, which
//! changes no bit, so the result does not depend on the blocking or on the number of threads.

#![allow(unsafe_code)] // AVX-512 intrinsics and raw pointers; every bound is checked in `Panels::multiply`

use rayon::prelude::*;

/// Output columns per panel: three 16-float vectors.
pub const NR: usize = 48;
/// Rows per kernel call: 8 × 3 accumulators, plus 3 weight vectors, fit in AVX-512's 32 registers.
const MR: usize = 8;
/// Depth per kernel call: a panel's 128 × 48 weights (24 KiB) stay in the L1 cache while the kernel
/// runs over every row of a block.
const KC: usize = 128;
/// Rows per task when the rows are split between threads.
const MC: usize = 64;

/// Whether linear layers are packed for this kernel: the CPU runs it and `FITCHECK_KERNEL` is not
/// `gemm` (which keeps gemm for every multiply, for before/after comparisons in one binary).
pub fn chosen() -> bool {
    available() && std::env::var_os("FITCHECK_KERNEL").is_none_or(|v| v != "gemm")
}

/// Whether this CPU runs the kernel (AVX-512F, found at run time as gemm finds its kernels).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A `[n, k]` weight matrix (a linear layer's `[out, in]`), packed in panels of [`NR`] output
/// columns: panel `p` holds, for each `k` in order, the weights of columns `p·NR .. p·NR + NR`
/// (zeros past `n`).
pub struct Panels {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl Panels {
    /// Packs `w`, row-major `[n, k]`.
    pub fn pack(w: &[f32], n: usize, k: usize) -> Panels {
        assert_eq!(w.len(), n * k, "a {n}x{k} weight of {} values", w.len());
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0f32; panels * k * NR];
        for (p, panel) in data.chunks_mut(k * NR).enumerate() {
            for c in 0..NR.min(n - p * NR) {
                let row = &w[(p * NR + c) * k..][..k];
                for (kk, &v) in row.iter().enumerate() {
                    panel[kk * NR + c] = v;
                }
            }
        }
        Panels { data, k, n }
    }

    /// The weight `w[c, k]`.
    #[cfg(test)]
    pub fn get(&self, c: usize, k: usize) -> f32 {
        self.data[((c / NR) * self.k + k) * NR + c % NR]
    }

    /// `y = x·Wᵀ` for the `m` rows of `x` (row-major `[m, k]`), overwriting the first `m·n` values
    /// of `y` (row-major `[m, n]`). Rows are split between rayon's threads in blocks of 64; up to
    /// `split_rows` rows, the panels are split instead (one text's 64 tokens on two threads).
    ///
    /// Panics when [`available`] is false or a slice is too short (callers check both).
    pub fn multiply(&self, x: &[f32], m: usize, y: &mut [f32], split_rows: usize) {
        let (k, n) = (self.k, self.n);
        assert!(available(), "the packed kernel needs AVX-512");
        assert!(x.len() >= m * k && y.len() >= m * n, "a {m}x{k} times {k}x{n} product on short slices");
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            y[..m * n].fill(0.0);
            return;
        }
        let panels = n.div_ceil(NR);
        let threads = rayon::current_num_threads();
        let out = Out(y.as_mut_ptr());
        if m > split_rows || threads < 2 {
            let blocks = m.div_ceil(MC);
            (0..blocks).into_par_iter().for_each(|b| {
                let rows = b * MC..(b * MC + MC).min(m);
                // SAFETY: blocks are disjoint row ranges of `y`, all inside `m` rows (checked above).
                unsafe { self.block(x, rows, 0..panels, out) };
            });
        } else {
            let per = panels.div_ceil(threads);
            (0..panels.div_ceil(per)).into_par_iter().for_each(|t| {
                let cols = t * per..(t * per + per).min(panels);
                // SAFETY: tasks write disjoint panel (column) ranges of `y`, all inside `m` rows.
                unsafe { self.block(x, 0..m, cols, out) };
            });
        }
    }

    /// Rows `rows` × panels `panels` of the product into `y`.
    ///
    /// Safety: `x` holds `rows.end` rows of `k`, `y` (through `out`) `rows.end` rows of `n`, and no
    /// other thread writes this block of `y` meanwhile.
    unsafe fn block(&self, x: &[f32], rows: std::ops::Range<usize>, panels: std::ops::Range<usize>, out: Out) {
        #[cfg(target_arch = "x86_64")]
        {
            let (k, n) = (self.k, self.n);
            for p in panels {
                let cols = NR.min(n - p * NR);
                let mut pc = 0;
                while pc < k {
                    let kc = KC.min(k - pc);
                    let w = self.data[(p * k + pc) * NR..].as_ptr();
                    let mut r = rows.start;
                    while r < rows.end {
                        let live = MR.min(rows.end - r);
                        let tile = Tile {
                            a: x[r * k + pc..].as_ptr(),
                            lda: k,
                            rows: live,
                            c: out.0.add(r * n + p * NR),
                            ldc: n,
                            cols,
                        };
                        kernel(kc, tile, w, pc > 0);
                        r += MR;
                    }
                    pc += kc;
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (x, rows, panels, out);
            unreachable!("the packed kernel runs on x86-64 only");
        }
    }
}

/// The output's base pointer, shared by tasks that write disjoint blocks.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: `Out` is only dereferenced in `Panels::block`, by tasks that write disjoint blocks.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// One kernel call's operands: `rows` (≤ 8) rows of `a` from `a` (row stride `lda`), and `rows` × `cols`
/// (≤ 48) outputs at `c` (row stride `ldc`).
struct Tile {
    a: *const f32,
    lda: usize,
    rows: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
}

/// `c[r, j] (+)= Σ_{kk < kc} a[r, kk]·w[kk, j]` for the tile's rows and columns, `w` being `kc` rows of a
/// panel (48 floats each). Rows past `tile.rows` read row 0 again and are not stored; columns past
/// `tile.cols` are masked.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel(kc: usize, tile: Tile, w: *const f32, accumulate: bool) {
    use std::arch::x86_64::*;
    let mask = |j: usize| -> u16 {
        let live = tile.cols.saturating_sub(16 * j).min(16);
        ((1u32 << live) - 1) as u16
    };
    let masks = [mask(0), mask(1), mask(2)];
    let mut a = [tile.a; MR];
    for (r, a) in a.iter_mut().enumerate() {
        if r < tile.rows {
            *a = tile.a.add(r * tile.lda);
        }
    }
    let mut acc = [[_mm512_setzero_ps(); 3]; MR];
    if accumulate {
        for (r, acc) in acc.iter_mut().enumerate().take(tile.rows) {
            let c = tile.c.add(r * tile.ldc);
            for (j, v) in acc.iter_mut().enumerate() {
                *v = _mm512_maskz_loadu_ps(masks[j], c.add(16 * j));
            }
        }
    }
    let mut w = w;
    for kk in 0..kc {
        let w0 = _mm512_loadu_ps(w);
        let w1 = _mm512_loadu_ps(w.add(16));
        let w2 = _mm512_loadu_ps(w.add(32));
        for r in 0..MR {
            let v = _mm512_set1_ps(*a[r].add(kk));
            acc[r][0] = _mm512_fmadd_ps(v, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(v, w1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(v, w2, acc[r][2]);
        }
        w = w.add(NR);
    }
    for (r, acc) in acc.iter().enumerate().take(tile.rows) {
        let c = tile.c.add(r * tile.ldc);
        for (j, &v) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(c.add(16 * j), masks[j], v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small integers: every product and sum is exact in f32, so any order gives the same bits.
    fn ints(n: usize, seed: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 7 + seed * 13) % 11) as f32 - 5.0).collect()
    }

    fn textbook(x: &[f32], w: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; m * n];
        for r in 0..m {
            for c in 0..n {
                y[r * n + c] = (0..k).map(|kk| x[r * k + kk] * w[c * k + kk]).sum();
            }
        }
        y
    }

    #[test]
    fn packing_puts_each_weight_in_its_panel_and_pads_with_zeros() {
        let (n, k) = (50, 3);
        let w = ints(n * k, 1);
        let p = Panels::pack(&w, n, k);
        assert_eq!(p.data.len(), 2 * k * NR);
        for c in 0..n {
            for kk in 0..k {
                assert_eq!(p.get(c, kk), w[c * k + kk]);
            }
        }
        // Column 49 of the second panel is padding.
        assert!((2..NR).all(|c| (0..k).all(|kk| p.data[(k + kk) * NR + c] == 0.0)));
    }

    #[test]
    fn the_kernel_gives_the_textbook_product_on_ragged_shapes() {
        if !available() {
            eprintln!("no AVX-512 here: the packed kernel is not used on this CPU");
            return;
        }
        // Rows not a multiple of 8 or of a block, columns not a multiple of 16 or 48, depth past
        // one block of 128; the split by panels (few rows) and by row blocks (many).
        for (m, n, k) in [(1, 1, 1), (3, 17, 5), (9, 48, 130), (64, 100, 300), (70, 33, 257), (130, 96, 64)] {
            let (x, w) = (ints(m * k, 2), ints(n * k, 3));
            let p = Panels::pack(&w, n, k);
            let want = textbook(&x, &w, m, n, k);
            for split in [0, usize::MAX] {
                let mut y = vec![f32::NAN; m * n + 5];
                p.multiply(&x, m, &mut y, split);
                assert_eq!(&y[..m * n], &want[..], "{m}x{k} times {k}x{n}, split {split}");
                assert!(y[m * n..].iter().all(|v| v.is_nan()), "wrote past the product");
            }
        }
    }

    #[test]
    fn the_sum_runs_in_order_of_k_with_one_rounding_per_step() {
        if !available() {
            return;
        }
        // Values whose sum depends on the order: 1e8 + 1 - 1e8 + … in f32.
        let k = 300;
        let x: Vec<f32> = (0..k).map(|i| if i % 3 == 0 { 1e8 } else { 1.0 + i as f32 * 1e-3 }).collect();
        let w: Vec<f32> = (0..k)
            .map(|i| {
                if i % 3 == 0 {
                    if i % 2 == 0 {
                        1.0
                    } else {
                        -1.0
                    }
                } else {
                    0.5
                }
            })
            .collect();
        let mut want = 0.0f32;
        for (a, b) in x.iter().zip(&w) {
            want = a.mul_add(*b, want);
        }
        let mut y = [0.0f32; 1];
        Panels::pack(&w, 1, k).multiply(&x, 1, &mut y, 0);
        assert_eq!(y[0].to_bits(), want.to_bits());
    }
}
