//! Image-embedding throughput and load memory of the candle SigLIP backend on a ViT-B/16-sized model.
//!
//! `cargo bench --bench embed -- [options]` (see `--help` and benches/README.md). On first use it
//! writes a random-weight checkpoint with the shapes of `Marqo/marqo-fashionSigLIP` (open_clip
//! `ViT-B-16-SigLIP`) in the Marqo layout under `target/fitcheck-bench/`, then measures:
//!
//! - images/second of `Siglip::image_features` on preprocessed 224×224 batches (decode excluded);
//! - images/second of `Embedder::embed_images` on photo-sized files (1200×1600 JPEGs at quality 90 and
//!   1500×2000 RGBA cut-out PNGs: decode, resize, normalise included), next to the forward pass alone on
//!   the same images preprocessed, and the single-threaded decode + resize cost per file;
//! - peak RSS (`VmHWM`) of a child process that only opens the checkpoint, against the weights' size.
//!
//! With `--torch FILE` (the JSON printed by `scripts/bench/torch_embed.py`) the throughput table
//! gets PyTorch's numbers side by side; `scripts/bench/compare.sh` runs both with one thread count.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fitcheck::embed::{Alpha, Embedder, ModelSource, ModelSpec};
use fitcheck::model::layout::{expected, Dims, Layout};
use fitcheck::model::{Siglip, IMAGE_BATCH};
use serde_json::{json, Value};

/// Bump when the generated checkpoint changes, so a stale cache is rewritten.
const CHECKPOINT_VERSION: &str = "fitcheck-bench vit-b16-siglip marqo v1";

const USAGE: &str = "\
usage: cargo bench --bench embed -- [options]

  --threads N        candle threads (RAYON_NUM_THREADS); default: all cores
  --batches 8,32     batch sizes of preprocessed 224x224 images ('none': no image timing)
  --text-batches 1,32  batch sizes of 64-token texts ('none': no text timing)
  --suite N          time a cold, a warm and a one-query-edited run of an N-case suite (default 30; 0 skips)
  --matmul N         time an N x N x N f32 matmul, the practical peak (default 2048; 0 skips)
  --reference N      embed N reference images and texts; with --torch, the largest difference (default 2)
  --prepare          only write the checkpoint (if needed) and print its directory
  --min-seconds S    time each measurement at least S seconds (default 10)
  --min-iters N      and at least N timed passes (default 3)
  --e2e N            images of each kind (1200x1600 JPEG q90, 1500x2000 RGBA PNG) for the
                     end-to-end measurement (default 64; 0 skips it)
  --no-load          skip the load-memory measurement
  --torch FILE       JSON from scripts/bench/torch_embed.py, shown side by side
  --dir DIR          checkpoint directory (default target/fitcheck-bench/vit-b16-siglip-marqo)
  --json FILE        also write the results as JSON";

struct Options {
    threads: usize,
    batches: Vec<usize>,
    text_batches: Vec<usize>,
    suite: usize,
    matmul: usize,
    reference: usize,
    prepare: bool,
    min_seconds: f64,
    min_iters: usize,
    e2e: usize,
    load: bool,
    torch: Option<PathBuf>,
    dir: Option<PathBuf>,
    json: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut o = Options {
        threads: cores,
        batches: vec![8, 32],
        text_batches: vec![1, 32],
        suite: 30,
        matmul: 2048,
        reference: 2,
        prepare: false,
        min_seconds: 10.0,
        min_iters: 3,
        e2e: 64,
        load: true,
        torch: None,
        dir: None,
        json: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            // cargo passes --bench to harness = false targets.
            "--bench" => {}
            "--threads" => o.threads = value()?.parse().context("--threads")?,
            "--batches" => o.batches = list(value()?).context("--batches")?,
            "--text-batches" => o.text_batches = list(value()?).context("--text-batches")?,
            "--suite" => o.suite = value()?.parse().context("--suite")?,
            "--matmul" => o.matmul = value()?.parse().context("--matmul")?,
            "--reference" => o.reference = value()?.parse().context("--reference")?,
            "--prepare" => o.prepare = true,
            "--min-seconds" => o.min_seconds = value()?.parse().context("--min-seconds")?,
            "--min-iters" => o.min_iters = value()?.parse().context("--min-iters")?,
            "--e2e" => o.e2e = value()?.parse().context("--e2e")?,
            "--no-load" => o.load = false,
            "--torch" => o.torch = Some(value()?.into()),
            "--dir" => o.dir = Some(value()?.into()),
            "--json" => o.json = Some(value()?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument '{other}'\n{USAGE}"),
        }
    }
    if o.threads == 0 || o.batches.contains(&0) || o.text_batches.contains(&0) {
        bail!("--threads and --batches must be positive");
    }
    Ok(o)
}

/// A comma-separated list of sizes, or `none`.
fn list(v: &str) -> Result<Vec<usize>, std::num::ParseIntError> {
    if v == "none" {
        return Ok(Vec::new());
    }
    v.split(',').map(|b| b.trim().parse()).collect()
}

/// The sizes of open_clip's `ViT-B-16-SigLIP` (Marqo/marqo-fashionSigLIP).
fn vit_b16() -> Dims {
    Dims {
        v_width: 768,
        v_layers: 12,
        v_heads: 12,
        v_mlp: 3072,
        channels: 3,
        patch: 16,
        grid: 14,
        t_width: 768,
        t_layers: 12,
        t_heads: 12,
        t_mlp: 3072,
        context: 64,
        vocab: 32000,
        embed: 768,
    }
}

/// `target/` of this build (the bench binary lives in `target/<profile>/deps/`).
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .filter(|t| t.join("CACHEDIR.TAG").exists() || t.file_name().is_some_and(|n| n == "target"))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// splitmix64: a small, fast, reproducible generator; quality is irrelevant for random weights.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-bound, bound).
    fn uniform(&mut self, bound: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        (2.0 * unit - 1.0) * bound
    }
}

/// Values for one tensor, initialised roughly like PyTorch does (so activations stay O(1) through
/// 12 layers: no overflow, no denormals that would distort timings).
fn init_values(name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    if name.ends_with("logit_scale") {
        return vec![10f32.ln()];
    }
    if name.ends_with("logit_bias") {
        return vec![-10.0];
    }
    let norm = ["norm", "ln_"].iter().any(|k| name.contains(k));
    if norm && name.ends_with(".weight") {
        return vec![1.0; n];
    }
    let bound = if name.ends_with(".bias") || shape.len() < 2 || name.contains("embed") || name.contains("latent") {
        0.02
    } else {
        let fan_in: usize = shape[1..].iter().product();
        1.0 / (fan_in as f32).sqrt()
    };
    (0..n).map(|_| rng.uniform(bound)).collect()
}

/// Writes `model.safetensors` for `d` in the Marqo layout, one tensor at a time.
fn write_safetensors(path: &Path, d: &Dims) -> Result<()> {
    let shapes: BTreeMap<String, Vec<usize>> = expected(Layout::Marqo, d);
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in &shapes {
        let bytes = 4 * shape.iter().product::<usize>();
        header.insert(name.clone(), json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}));
        offset += bytes;
    }
    let mut header = serde_json::to_vec(&Value::Object(header))?;
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).with_context(|| path.display().to_string())?);
    out.write_all(&(header.len() as u64).to_le_bytes())?;
    out.write_all(&header)?;
    let mut rng = Rng(0x5eed);
    for (name, shape) in &shapes {
        for v in init_values(name, shape, &mut rng) {
            out.write_all(&v.to_le_bytes())?;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// The fixture tokenizer (a small SentencePiece Unigram vocabulary) padded with never-produced pieces
/// to `vocab` entries, so the tokenizer and the embedding table agree in size.
fn padded_tokenizer(fixture: &Path, vocab: usize) -> Result<Value> {
    let text = fs::read_to_string(fixture).with_context(|| fixture.display().to_string())?;
    let mut tok: Value = serde_json::from_str(&text)?;
    let pieces =
        tok.pointer_mut("/model/vocab").and_then(Value::as_array_mut).context("tokenizer has no model.vocab")?;
    let mut i = 0;
    while pieces.len() < vocab {
        pieces.push(json!([format!("\u{2581}fitcheckbenchpad{i}"), -100.0]));
        i += 1;
    }
    Ok(tok)
}

/// Writes (once) the random-weight ViT-B/16 checkpoint in the Marqo layout and returns its directory.
fn ensure_checkpoint(dir: &Path) -> Result<PathBuf> {
    let stamp = dir.join("bench-checkpoint.txt");
    if fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == CHECKPOINT_VERSION) {
        return Ok(dir.to_path_buf());
    }
    eprintln!("writing a random-weight ViT-B/16 SigLIP checkpoint to {} ...", dir.display());
    let d = vit_b16();
    fs::create_dir_all(dir)?;
    let _ = fs::remove_file(&stamp);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/siglip/tiny-a/marqo");
    let tokenizer = padded_tokenizer(&fixture.join("tokenizer.json"), d.vocab)?;
    fs::write(dir.join("tokenizer.json"), serde_json::to_vec(&tokenizer)?)?;
    fs::copy(fixture.join("special_tokens_map.json"), dir.join("special_tokens_map.json"))?;
    // open_clip's ViT-B-16-SigLIP configuration, as Marqo ships it.
    let open_clip = json!({
        "model_cfg": {
            "embed_dim": d.embed,
            "init_logit_bias": -10,
            "custom_text": true,
            "vision_cfg": {
                "image_size": d.image_size(),
                "timm_model_name": "vit_base_patch16_siglip_224",
                "timm_model_pretrained": false,
                "timm_pool": "map",
                "timm_proj": "none"
            },
            "text_cfg": {
                "context_length": d.context,
                "vocab_size": d.vocab,
                "hf_tokenizer_name": "timm/ViT-B-16-SigLIP",
                "tokenizer_kwargs": {"clean": "canonicalize"},
                "width": d.t_width,
                "heads": d.t_heads,
                "layers": d.t_layers,
                "no_causal_mask": true,
                "proj_bias": true,
                "pool_type": "last",
                "norm_kwargs": {"eps": 1e-6}
            }
        },
        "preprocess_cfg": {
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "interpolation": "bicubic",
            "resize_mode": "squash"
        }
    });
    fs::write(dir.join("open_clip_config.json"), serde_json::to_vec_pretty(&open_clip)?)?;
    let config = json!({
        "open_clip_model_name": "hf-hub:fitcheck-bench/vit-b16-siglip-random",
        "model_type": "siglip"
    });
    fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    let tmp = dir.join("model.safetensors.partial");
    write_safetensors(&tmp, &d)?;
    fs::rename(&tmp, dir.join("model.safetensors"))?;
    fs::write(&stamp, CHECKPOINT_VERSION)?;
    Ok(dir.to_path_buf())
}

/// Writes (once) `n` 640×480 PNG photos-like images (smooth gradients with texture) for the end-to-end run.
fn ensure_pngs(dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut paths = Vec::with_capacity(n);
    for i in 0..n {
        let path = dir.join(format!("img{i:03}.png"));
        if !path.exists() {
            let mut rng = Rng(i as u64 + 1);
            let img = image::RgbImage::from_fn(640, 480, |x, y| {
                let noise = (rng.next_u64() % 24) as u32;
                let r = (x * 255 / 640 + i as u32 * 7 + noise) % 256;
                let g = (y * 255 / 480 + noise) % 256;
                let b = ((x + y) / 5 + i as u32 * 13) % 256;
                image::Rgb([r as u8, g as u8, b as u8])
            });
            let tmp = dir.join(format!("img{i:03}.partial.png"));
            img.save(&tmp)?;
            fs::rename(&tmp, &path)?;
        }
        paths.push(path);
    }
    Ok(paths)
}

/// Writes (once) `n` files into `dir` named `{stem}{i:03}.{ext}`, each made by `write(i, path)`
/// (through a temporary name, so an interrupted run leaves no half-written file behind).
fn ensure_files(
    dir: &Path,
    n: usize,
    (stem, ext): (&str, &str),
    write: impl Fn(usize, &Path) -> Result<()>,
) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut paths = Vec::with_capacity(n);
    for i in 0..n {
        let path = dir.join(format!("{stem}{i:03}.{ext}"));
        if !path.exists() {
            let tmp = dir.join(format!("{stem}{i:03}.partial.{ext}"));
            write(i, &tmp).with_context(|| tmp.display().to_string())?;
            fs::rename(&tmp, &path)?;
        }
        paths.push(path);
    }
    Ok(paths)
}

/// The colour of a photo-like scene at (`x`, `y`) of a `w × h` frame: a softly lit backdrop, a garment
/// (an ellipse, shaded from its centre, with a woven texture) and sensor noise of ±`noise` levels, so
/// that encoders produce files of a realistic size (smooth areas compress, texture and noise do not).
fn scene(i: usize, x: u32, y: u32, (w, h): (u32, u32), noise: u32, rng: &mut Rng) -> [u8; 3] {
    let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
    let hue = [(i * 37) % 160 + 60, (i * 71) % 160 + 40, (i * 53) % 160 + 50].map(|c| c as f32);
    let (dx, dy) = ((fx - 0.5) / 0.33, (fy - 0.52) / 0.4);
    let r2 = dx * dx + dy * dy;
    let n = (rng.next_u64() % u64::from(2 * noise + 1)) as f32 - noise as f32;
    let rgb = if r2 < 1.0 {
        let light = 1.1 - 0.45 * r2 - 0.15 * fx;
        let weave = 10.0 * ((x as f32 * 0.45).sin() * (y as f32 * 0.45).sin());
        hue.map(|c| c * light + weave + n)
    } else {
        let wall = 215.0 - 60.0 * fy - 30.0 * (fx - 0.5).abs();
        [wall + 6.0, wall, wall - 8.0].map(|c| c + n)
    };
    rgb.map(|c| c.clamp(0.0, 255.0) as u8)
}

/// Writes (once) `n` 1200×1600 JPEGs at quality 90, a phone's or a shop's product photo in size.
fn ensure_jpegs(dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    ensure_files(dir, n, ("photo", "jpg"), |i, path| {
        let mut rng = Rng(0x1_0000 + i as u64);
        let (w, h) = (1200, 1600);
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(scene(i, x, y, (w, h), 6, &mut rng)));
        let out = BufWriter::new(File::create(path)?);
        image::codecs::jpeg::JpegEncoder::new_with_quality(out, 90).encode_image(&img)?;
        Ok(())
    })
}

/// Writes (once) `n` 1500×2000 RGBA PNGs: an opaque garment cut out on a transparent background, its
/// edge anti-aliased, as shops export product cut-outs.
fn ensure_cutouts(dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    ensure_files(dir, n, ("cutout", "png"), |i, path| {
        let mut rng = Rng(0x2_0000 + i as u64);
        let (w, h) = (1500, 2000);
        let img = image::RgbaImage::from_fn(w, h, |x, y| {
            let [r, g, b] = scene(i, x, y, (w, h), 3, &mut rng);
            let (dx, dy) = ((x as f32 / w as f32 - 0.5) / 0.33, (y as f32 / h as f32 - 0.52) / 0.4);
            // Distance past the ellipse's edge in pixels, roughly: a 2-pixel ramp of alpha.
            let outside = (dx * dx + dy * dy).sqrt() - 1.0;
            let alpha = (1.0 - outside * 0.33 * w as f32 / 2.0).clamp(0.0, 1.0);
            if alpha == 0.0 {
                image::Rgba([0, 0, 0, 0])
            } else {
                image::Rgba([r, g, b, (alpha * 255.0).round() as u8])
            }
        });
        img.save_with_format(path, image::ImageFormat::Png)?;
        Ok(())
    })
}

/// Runs `pass` until both `min_iters` passes and `min_seconds` have gone by, after one warm-up.
fn time_passes(min_seconds: f64, min_iters: usize, mut pass: impl FnMut() -> Result<()>) -> Result<Vec<Duration>> {
    pass()?;
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < min_iters || start.elapsed().as_secs_f64() < min_seconds {
        let t = Instant::now();
        pass()?;
        times.push(t.elapsed());
    }
    Ok(times)
}

/// Runs `passes` one after the other, round after round, until both `min_iters` rounds and
/// `min_seconds` have gone by, after one warm-up round; returns each pass's times. Measurements meant
/// to be compared are interleaved so that a change of load on a shared machine hits all of them.
fn time_rounds(
    min_seconds: f64,
    min_iters: usize,
    passes: &mut [&mut dyn FnMut() -> Result<()>],
) -> Result<Vec<Vec<Duration>>> {
    if passes.is_empty() {
        return Ok(Vec::new());
    }
    for pass in passes.iter_mut() {
        pass()?;
    }
    let start = Instant::now();
    let mut times = vec![Vec::new(); passes.len()];
    while times[0].len() < min_iters || start.elapsed().as_secs_f64() < min_seconds {
        for (pass, times) in passes.iter_mut().zip(&mut times) {
            let t = Instant::now();
            pass()?;
            times.push(t.elapsed());
        }
    }
    Ok(times)
}

fn mean_s(times: &[Duration]) -> f64 {
    times.iter().map(Duration::as_secs_f64).sum::<f64>() / times.len() as f64
}

fn status_kib(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Child process: open the checkpoint and report VmHWM (peak RSS) before and after, in KiB.
fn child_load(dir: &Path) -> Result<()> {
    let before = status_kib("VmHWM:").unwrap_or(0);
    let start = Instant::now();
    let spec = ModelSpec {
        source: ModelSource::Local(dir.to_path_buf()),
        offline: true,
        alpha: Alpha::Drop,
        pipeline: Default::default(),
    };
    let model = Siglip::open(&spec)?;
    let seconds = start.elapsed().as_secs_f64();
    let after = status_kib("VmHWM:").context("no VmHWM in /proc/self/status")?;
    let rss = status_kib("VmRSS:").unwrap_or(0);
    println!("{}", json!({"hwm_before_kib": before, "hwm_kib": after, "rss_kib": rss, "seconds": seconds}));
    drop(model);
    Ok(())
}

fn measure_load(dir: &Path) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).arg("--child-load").arg(dir).output()?;
    if !out.status.success() {
        bail!("load child failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut v: Value = serde_json::from_slice(&out.stdout).context("load child output")?;
    let weights = fs::metadata(dir.join("model.safetensors"))?.len();
    v["weights_bytes"] = json!(weights);
    Ok(v)
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The reference inputs, from the same splitmix64 stream as `scripts/bench/torch_embed.py`: `n` images
/// of pixels in [-1, 1), then `n` texts of `context` token ids below the vocabulary size.
fn reference_inputs(d: &Dims, n: usize) -> (Vec<f32>, Vec<Vec<u32>>) {
    let mut rng = Rng(0xF17C);
    let size = d.image_size();
    let pixels = (0..n * 3 * size * size).map(|_| rng.uniform(1.0)).collect();
    let ids = (0..n).map(|_| (0..d.context).map(|_| (rng.next_u64() % d.vocab as u64) as u32).collect()).collect();
    (pixels, ids)
}

/// The largest absolute difference between candle's and PyTorch's normalised embeddings of the same
/// inputs (`torch` holds PyTorch's, as lists of rows).
fn max_abs_diff(candle: &[Vec<f32>], torch: &Value) -> Option<f64> {
    let rows = torch.as_array()?;
    if rows.len() != candle.len() {
        return None;
    }
    let mut worst = 0f64;
    for (c, t) in candle.iter().zip(rows) {
        let t = t.as_array()?;
        if t.len() != c.len() {
            return None;
        }
        for (a, b) in c.iter().zip(t) {
            worst = worst.max((*a as f64 - b.as_f64()?).abs());
        }
    }
    Some(worst)
}

/// GFLOP/s of candle's f32 matrix multiply on `n` x `n` matrices.
fn matmul_gflops(n: usize, min_seconds: f64) -> Result<f64> {
    use candle_core::{Device, Tensor};
    let mut rng = Rng(11);
    let mut m = || Tensor::from_vec((0..n * n).map(|_| rng.uniform(1.0)).collect::<Vec<f32>>(), (n, n), &Device::Cpu);
    let (a, b) = (m()?, m()?);
    let times = time_passes(min_seconds, 3, || {
        a.matmul(&b)?;
        Ok(())
    })?;
    Ok(2.0 * (n as f64).powi(3) / mean_s(&times) / 1e9)
}

/// Times `fitcheck run`'s work (a new `Session`, every case judged) on an `n`-case suite over the
/// bench checkpoint and `images` catalog images: cold (empty cache), warm (unchanged), and with one
/// case's description edited. Also counts weight loads and texts through the text tower in each.
fn measure_suite(checkpoint: &Path, catalog: &Path, root: &Path, n: usize) -> Result<Value> {
    use fitcheck::harness::{Overrides, Session};
    let _ = fs::remove_dir_all(root);
    let cases = root.join("cases");
    fs::create_dir_all(cases.join("q"))?;
    let suite = format!(
        "[model]\npath = '{}'\n\n[catalog]\nroot = '{}'\n",
        checkpoint.canonicalize()?.display(),
        catalog.canonicalize()?.display()
    );
    fs::write(cases.join("fitcheck.toml"), suite)?;
    let images = fitcheck::catalog::Catalog::load(catalog, None)?.len();
    let case = |i: usize, extra: &str| {
        format!("description = \"jean azul number {i}{extra}\"\nexpected = [\"img{:03}\"]\n", i % images)
    };
    for i in 0..n {
        fs::write(cases.join(format!("q/case-{i:02}.toml")), case(i, ""))?;
    }
    let overrides = Overrides { cache: Some(root.join("cache").display().to_string()), ..Overrides::default() };
    let run = |label: &str| -> Result<Value> {
        let (loads, texts) = (fitcheck::model::loads(), fitcheck::model::texts_embedded());
        let t = Instant::now();
        let session = Session::open(&cases, &overrides)?;
        let result = session.run()?;
        let seconds = t.elapsed().as_secs_f64();
        assert_eq!(result.cases.len(), n);
        let (loads, texts) = (fitcheck::model::loads() - loads, fitcheck::model::texts_embedded() - texts);
        eprintln!("suite {label}: {seconds:.3} s, {loads} weight loads, {texts} texts embedded");
        Ok(json!({"run": label, "seconds": seconds, "weight_loads": loads, "texts_embedded": texts}))
    };
    let cold = run("cold")?;
    let warm = run("warm")?;
    fs::write(cases.join("q/case-00.toml"), case(0, " roto"))?;
    let edited = run("one query edited")?;
    Ok(json!({"cases": n, "images": images, "runs": [cold, warm, edited]}))
}

/// Milliseconds per file of decoding, converting and resizing `files` on this thread alone (what a
/// forward pass on every core has to hide), after one warm-up file.
fn decode_ms(model: &Siglip, files: &[PathBuf]) -> Result<f64> {
    let pixels = model.pixel_pipeline();
    if let Some(first) = files.first() {
        pixels.resized(first)?;
    }
    let start = Instant::now();
    for f in files {
        pixels.normalize(&pixels.resized(f)?);
    }
    Ok(start.elapsed().as_secs_f64() * 1e3 / files.len().max(1) as f64)
}

fn mean_kib(files: &[PathBuf]) -> Result<f64> {
    let mut bytes = 0;
    for f in files {
        bytes += fs::metadata(f)?.len();
    }
    Ok(bytes as f64 / 1024.0 / files.len().max(1) as f64)
}

/// `Embedder::embed_images` on `n` photo-sized files of each kind, against the forward pass alone on
/// the same number of images already preprocessed (the first kind's, in batches of `IMAGE_BATCH` as
/// `embed_images` makes them), the passes interleaved; plus each kind's decode + resize cost on one
/// thread and mean file size.
fn measure_end_to_end(model: &Siglip, bench: &Path, n: usize, o: &Options) -> Result<Value> {
    let kinds = [
        ("JPEG 1200x1600 q90", ensure_jpegs(&bench.join("jpeg-1200x1600-q90"), n)?),
        ("RGBA PNG 1500x2000 cut-out", ensure_cutouts(&bench.join("png-rgba-1500x2000"), n)?),
    ];
    let mut preprocessed = Vec::new();
    for f in &kinds[0].1 {
        preprocessed.extend(model.pixel_pipeline().normalize(&model.pixel_pipeline().resized(f)?));
    }
    let refs: Vec<Vec<&Path>> = kinds.iter().map(|(_, files)| files.iter().map(PathBuf::as_path).collect()).collect();
    let mut forward = || -> Result<()> {
        assert_eq!(model.image_features(&preprocessed)?.len(), n);
        Ok(())
    };
    let mut jpeg = || -> Result<()> {
        assert_eq!(model.embed_images(&refs[0])?.len(), n);
        Ok(())
    };
    let mut png = || -> Result<()> {
        assert_eq!(model.embed_images(&refs[1])?.len(), n);
        Ok(())
    };
    let times = time_rounds(o.min_seconds, o.min_iters.min(2), &mut [&mut forward, &mut jpeg, &mut png])?;
    let forward_ips = n as f64 / mean_s(&times[0]);
    eprintln!(
        "candle preprocessed {n} images (batch {IMAGE_BATCH}): {forward_ips:.2} img/s over {} passes",
        times[0].len()
    );
    let mut rows = Vec::new();
    for ((label, files), times) in kinds.iter().zip(&times[1..]) {
        let ips = n as f64 / mean_s(times);
        let ms = decode_ms(model, files)?;
        eprintln!(
            "candle end to end {n} x {label}: {ips:.2} img/s over {} passes ({:.2} of preprocessed); decode + resize {ms:.1} ms/image on one thread",
            times.len(),
            ips / forward_ips
        );
        rows.push(json!({"files": label, "mean_file_kib": mean_kib(files)?, "decode_resize_ms": ms, "images_per_s": ips, "ratio_to_preprocessed": ips / forward_ips}));
    }
    Ok(
        json!({"images": n, "batch": IMAGE_BATCH, "iters": times[0].len(), "preprocessed_images_per_s": forward_ips, "kinds": rows}),
    )
}

/// The 1-minute load average; anything well above 0 before a run means the numbers are suspect.
fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next()?.parse().ok()).unwrap_or(f64::NAN)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child-load") {
        return child_load(Path::new(args.get(1).context("--child-load DIR")?));
    }
    let o = parse_args(&args)?;
    // candle's matmul and its rayon pool both read RAYON_NUM_THREADS; set it before any thread starts.
    std::env::set_var("RAYON_NUM_THREADS", o.threads.to_string());

    let bench = target_dir().join("fitcheck-bench");
    let dir = ensure_checkpoint(&o.dir.clone().unwrap_or_else(|| bench.join("vit-b16-siglip-marqo")))?;
    if o.prepare {
        println!("{}", dir.display());
        return Ok(());
    }
    let torch: Option<Value> = match &o.torch {
        Some(p) => Some(serde_json::from_str(&fs::read_to_string(p).with_context(|| p.display().to_string())?)?),
        None => None,
    };
    let load_before = loadavg();
    let load = if o.load { Some(measure_load(&dir)?) } else { None };

    let spec = ModelSpec {
        source: ModelSource::Local(dir.clone()),
        offline: true,
        alpha: Alpha::Drop,
        pipeline: Default::default(),
    };
    let model = Siglip::open(&spec)?;
    let size = model.dims().image_size();
    let per = 3 * size * size;

    let mut rows = Vec::new();
    let mut rng = Rng(7);
    for &batch in &o.batches {
        let pixels: Vec<f32> = (0..batch * per).map(|_| rng.uniform(1.0)).collect();
        let times = time_passes(o.min_seconds, o.min_iters, || {
            let out = model.image_features(&pixels)?;
            assert_eq!(out.len(), batch);
            assert!(out.iter().flatten().all(|v| v.is_finite()), "non-finite embedding");
            Ok(())
        })?;
        let ips = batch as f64 / mean_s(&times);
        eprintln!("candle batch {batch}: {ips:.2} img/s over {} passes", times.len());
        let torch_ips = torch.as_ref().and_then(|t| {
            t["results"].as_array()?.iter().find(|r| r["batch"].as_u64() == Some(batch as u64))?["images_per_s"]
                .as_f64()
        });
        rows.push(
            json!({"batch": batch, "iters": times.len(), "candle_images_per_s": ips, "torch_images_per_s": torch_ips}),
        );
    }

    let mut text_rows = Vec::new();
    for &batch in &o.text_batches {
        let ctx = model.dims().context;
        let ids: Vec<Vec<u32>> = (0..batch)
            .map(|_| (0..ctx).map(|_| (rng.next_u64() % model.dims().vocab as u64) as u32).collect())
            .collect();
        let times = time_passes(o.min_seconds, o.min_iters, || {
            let out = model.text_features(&ids)?;
            assert_eq!(out.len(), batch);
            assert!(out.iter().flatten().all(|v| v.is_finite()), "non-finite embedding");
            Ok(())
        })?;
        let tps = batch as f64 / mean_s(&times);
        eprintln!("candle text batch {batch}: {tps:.2} texts/s over {} passes", times.len());
        let torch_tps = torch.as_ref().and_then(|t| {
            t["text_results"].as_array()?.iter().find(|r| r["batch"].as_u64() == Some(batch as u64))?["per_s"].as_f64()
        });
        text_rows.push(
            json!({"batch": batch, "iters": times.len(), "candle_texts_per_s": tps, "torch_texts_per_s": torch_tps}),
        );
    }

    let reference = if o.reference > 0 {
        let (pixels, ids) = reference_inputs(model.dims(), o.reference);
        let images = model.image_features(&pixels)?;
        let texts = model.text_features(&ids)?;
        let diff =
            |kind: &str, ours: &[Vec<f32>]| torch.as_ref().and_then(|t| max_abs_diff(ours, &t["reference"][kind]));
        Some(
            json!({"inputs": o.reference, "image_max_abs_diff": diff("image", &images), "text_max_abs_diff": diff("text", &texts)}),
        )
    } else {
        None
    };

    let matmul = if o.matmul > 0 {
        let gflops = matmul_gflops(o.matmul, o.min_seconds.min(5.0))?;
        eprintln!("candle matmul {}: {gflops:.1} GFLOP/s", o.matmul);
        Some(json!({"n": o.matmul, "gflops": gflops}))
    } else {
        None
    };

    let e2e = if o.e2e > 0 { Some(measure_end_to_end(&model, &bench, o.e2e, &o)?) } else { None };

    let suite = if o.suite > 0 {
        let catalog = ensure_pngs(&bench.join("png-640x480"), 32)?;
        let catalog_dir = catalog[0].parent().context("png directory")?.to_path_buf();
        Some(measure_suite(&dir, &catalog_dir, &bench.join("suite"), o.suite)?)
    } else {
        None
    };

    let torch_threads = torch.as_ref().and_then(|t| t["threads"].as_u64());
    println!();
    println!(
        "fitcheck embed bench: ViT-B/16 SigLIP (random weights), {size}x{size}, CPU: {} ({} cores)",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "load average: {load_before:.2} before the run, {:.2} after (this run itself adds up to --threads)",
        loadavg()
    );
    if !rows.is_empty() {
        println!();
        println!("| threads | batch | candle img/s | torch img/s | candle/torch |");
        println!("|--------:|------:|-------------:|------------:|-------------:|");
    }
    for r in &rows {
        let c = r["candle_images_per_s"].as_f64().unwrap_or(0.0);
        let (t, ratio) = match r["torch_images_per_s"].as_f64() {
            Some(t) => (format!("{t:.2}"), format!("{:.2}", c / t)),
            None => ("-".into(), "-".into()),
        };
        let threads = match torch_threads {
            Some(tt) if tt as usize != o.threads => format!("{} (torch {tt})", o.threads),
            _ => o.threads.to_string(),
        };
        println!("| {threads} | {} | {c:.2} | {t} | {ratio} |", r["batch"]);
    }
    if !text_rows.is_empty() {
        println!();
        println!("| threads | text batch (64 tokens) | candle texts/s | torch texts/s | candle/torch |");
        println!("|--------:|-----------------------:|---------------:|--------------:|-------------:|");
        for r in &text_rows {
            let c = r["candle_texts_per_s"].as_f64().unwrap_or(0.0);
            let (t, ratio) = match r["torch_texts_per_s"].as_f64() {
                Some(t) => (format!("{t:.1}"), format!("{:.2}", c / t)),
                None => ("-".into(), "-".into()),
            };
            println!("| {} | {} | {c:.1} | {t} | {ratio} |", o.threads, r["batch"]);
        }
    }
    if let Some(r) = &reference {
        let show = |v: &Value| v.as_f64().map_or("- (no --torch reference)".to_string(), |d| format!("{d:.2e}"));
        println!();
        println!(
            "largest |candle - torch| of normalised embeddings ({} inputs, same weights): image {}, text {}",
            r["inputs"],
            show(&r["image_max_abs_diff"]),
            show(&r["text_max_abs_diff"])
        );
    }
    if let Some(m) = &matmul {
        let torch_gflops = torch.as_ref().and_then(|t| t["matmul"]["gflops"].as_f64());
        println!(
            "f32 matmul {n}x{n}x{n}: candle {:.1} GFLOP/s, torch {}",
            m["gflops"].as_f64().unwrap_or(0.0),
            torch_gflops.map_or("-".into(), |g| format!("{g:.1} GFLOP/s")),
            n = m["n"]
        );
    }
    if let Some(s) = &suite {
        println!();
        for r in s["runs"].as_array().into_iter().flatten() {
            println!(
                "suite of {} cases, {} images, {}: {:.3} s ({} weight loads, {} texts embedded)",
                s["cases"],
                s["images"],
                r["run"].as_str().unwrap_or(""),
                r["seconds"].as_f64().unwrap_or(0.0),
                r["weight_loads"],
                r["texts_embedded"]
            );
        }
    }
    if let Some(e) = &e2e {
        println!();
        println!(
            "| threads | {} files, batch {} | end to end img/s | preprocessed img/s | end to end / preprocessed | decode + resize, 1 thread | mean file |",
            e["images"], e["batch"]
        );
        println!("|--------:|---|---:|---:|---:|---:|---:|");
        let pre = e["preprocessed_images_per_s"].as_f64().unwrap_or(0.0);
        for k in e["kinds"].as_array().into_iter().flatten() {
            println!(
                "| {} | {} | {:.2} | {pre:.2} | {:.2} | {:.1} ms | {:.0} KiB |",
                o.threads,
                k["files"].as_str().unwrap_or(""),
                k["images_per_s"].as_f64().unwrap_or(0.0),
                k["ratio_to_preprocessed"].as_f64().unwrap_or(0.0),
                k["decode_resize_ms"].as_f64().unwrap_or(0.0),
                k["mean_file_kib"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(l) = &load {
        let w = l["weights_bytes"].as_f64().unwrap_or(1.0);
        let hwm = l["hwm_kib"].as_f64().unwrap_or(0.0) * 1024.0;
        let base = l["hwm_before_kib"].as_f64().unwrap_or(0.0) * 1024.0;
        let mib = |b: f64| b / (1024.0 * 1024.0);
        println!();
        println!(
            "load: weights {:.0} MiB, peak RSS {:.0} MiB = {:.2}x the weights (process baseline {:.0} MiB), {:.1} s",
            mib(w),
            mib(hwm),
            hwm / w,
            mib(base),
            l["seconds"].as_f64().unwrap_or(0.0)
        );
    }
    if let Some(path) = &o.json {
        let all = json!({"threads": o.threads, "cpu": cpu_model(), "loadavg_before": load_before, "throughput": rows, "text": text_rows, "reference": reference, "matmul": matmul, "suite": suite, "end_to_end": e2e, "load": load, "torch": torch});
        fs::write(path, serde_json::to_vec_pretty(&all)?)?;
    }
    Ok(())
}
