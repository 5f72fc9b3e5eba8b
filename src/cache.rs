//! The on-disk embedding cache, so that re-running an unchanged suite costs nothing: catalog images,
//! query texts and checkpoint digests are remembered, and a model whose embeddings are all here is
//! never loaded.
//!
//! Catalog images: one file per model fingerprint (`<dir>/<fingerprint key>.emb`), holding vectors
//! keyed by the SHA-256 of each image file's bytes: an edited image is re-embedded, a renamed one is
//! not. Every file is replaced atomically (written beside, then renamed), so an interrupted run or
//! parallel test processes never leave a torn cache; a cache that cannot be read is ignored and
//! rebuilt, never trusted. A cold run writes what it has embedded every [`CHUNK`] images to a part
//! file (`<key>.part-<pid>-<n>.emb`) and folds the parts into the main file at the end, so an
//! interrupted run keeps all but the last chunk; the next run reads the parts it finds.
//!
//! Shards: `fitcheck cache build --shard i/n` embeds the items whose id hashes into part i of n and
//! writes them to a shard file with the fitcheck version and the fingerprint key in its header. Shard
//! files in `<dir>/shards/` are read together with the cache; one from another version or model is
//! ignored with a warning, never mixed in.
//!
//! Query texts: [`TextCache`] wraps an embedder, keyed by padding and text in a file per fingerprint.
//!
//! Hashing every image on every run would cost a full read of the catalog per test process, so a
//! second file (`<key>.stamps`) remembers each image's size, modification time and hash. A stamp is
//! trusted only when both match and the modification is at least two seconds older than the stamps
//! file itself (a file rewritten in the same instant as the stamp, with the same size, could otherwise
//! pass unseen, as with git's "racy" index entries); anything else is read and hashed again. The same
//! rule spares re-hashing a local checkpoint's weights on every run ([`file_digest`]).
//!
//! Format: `FITCHEK1`, dim (u32 LE), count (u64 LE), then per entry 32 hash bytes and dim f32 LE.
//! Shards: `FITSHRD1`, header length (u32 LE), header (version, key, model, `i/n`, one per line), then
//! the same format. Stamps: one line per file, `size<TAB>mtime-ns<TAB>hex hash<TAB>path`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::embed::{unit_vectors, Embedder, Fingerprint};
use crate::error::{Error, Result};
use crate::files::{atomic_write, hex};

const MAGIC: &[u8; 8] = b"FITCHEK1";

type Hash = [u8; 32];

/// Statistics of one [`embed_catalog`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Images whose embedding came from the cache.
    pub cached: usize,
    /// Images the model embedded.
    pub embedded: usize,
    /// Images read and hashed (the others were known by their stamp).
    pub hashed: usize,
}

/// An image file's size and modification time (ns since the epoch).
type Stamp = (u64, u128);

/// Trust a stamp only if the file was last modified this long before the stamps were written.
const RACY_NS: u128 = 2_000_000_000;

fn stamp_of(path: &Path) -> std::io::Result<Option<Stamp>> {
    let meta = std::fs::metadata(path)?;
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos());
    Ok(mtime.map(|m| (meta.len(), m)))
}

/// The stamps file's entries by path, and when it was written.
fn read_stamps(path: &Path) -> (HashMap<String, (Stamp, Hash)>, Option<u128>) {
    let written = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos());
    let Ok(text) = std::fs::read_to_string(path) else { return (HashMap::new(), None) };
    let entries = text
        .lines()
        .filter_map(|line| {
            let mut f = line.splitn(4, '\t');
            let size = f.next()?.parse().ok()?;
            let mtime = f.next()?.parse().ok()?;
            let hex = f.next()?;
            let path = f.next()?;
            let mut hash = [0u8; 32];
            if hex.len() != 64 {
                return None;
            }
            for (i, b) in hash.iter_mut().enumerate() {
                *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
            }
            Some((path.to_string(), ((size, mtime), hash)))
        })
        .collect();
    (entries, written)
}

fn write_stamps(path: &Path, stamps: &[(String, Stamp, Hash)]) -> Result<()> {
    let mut text = String::new();
    for (p, (size, mtime), hash) in stamps {
        text.push_str(&format!("{size}\t{mtime}\t{}\t{p}\n", hex(hash)));
    }
    atomic_write(path, text.as_bytes())
}

/// The catalog's embeddings and what was learnt while making them.
#[derive(Debug, Clone)]
pub struct Embedded {
    /// Normalised embeddings, in catalog order.
    pub vectors: Vec<Vec<f32>>,
    /// `sha256:<16 hex>` over every item's id and content hash (see [`catalog_digest`]).
    pub digest: String,
    /// Each item's SHA-256 content hash, in catalog order.
    pub hashes: Vec<[u8; 32]>,
    pub stats: CacheStats,
    /// Shard files that were ignored, and why.
    pub warnings: Vec<String>,
}

/// The digest of a catalog: SHA-256 over `id NUL content-hash` of every item in id order, so adding,
/// removing, renaming or editing an image changes it. Shown as `sha256:` and 16 hex digits.
pub fn catalog_digest<'a>(items: impl IntoIterator<Item = (&'a str, &'a Hash)>) -> String {
    let mut h = Sha256::new();
    for (id, hash) in items {
        h.update(id.as_bytes());
        h.update([0u8]);
        h.update(hash);
    }
    format!("sha256:{}", &hex(&h.finalize())[..16])
}

/// Normalised embeddings of every catalog item, in catalog order, reading and updating the cache in
/// `dir` when one is given.
pub fn embed_catalog(embedder: &dyn Embedder, catalog: &Catalog, dir: Option<&Path>) -> Result<Embedded> {
    embed_catalog_and(embedder, catalog, &[], dir).map(|(embedded, _)| embedded)
}

/// [`embed_catalog`], and the images at `extra` (a suite's image queries) in the same pass: through
/// the same cache file and the same stamps, so that a warm run finds them all without loading the
/// model, and one that is a copy of a catalog image is that image's embedding. Returns the catalog's
/// embeddings and `extra`'s vectors in order; the catalog digest and hashes cover the catalog alone.
pub fn embed_catalog_and(
    embedder: &dyn Embedder,
    catalog: &Catalog,
    extra: &[&Path],
    dir: Option<&Path>,
) -> Result<(Embedded, Vec<Vec<f32>>)> {
    let mut paths: Vec<&Path> = catalog.items().iter().map(|it| it.path.as_path()).collect();
    let n = paths.len();
    paths.extend_from_slice(extra);
    let Files { mut vectors, mut hashes, stats, warnings } = embed_files(embedder, &paths, dir)?;
    let extra_vectors = vectors.split_off(n);
    hashes.truncate(n);
    let digest = catalog_digest(catalog.items().iter().map(|it| it.id.as_str()).zip(&hashes));
    Ok((Embedded { vectors, digest, hashes, stats, warnings }, extra_vectors))
}

/// Normalised embeddings of the images at `paths`, in order, through the same cache file as
/// [`embed_catalog`] (pair mode's images share it with the catalog's). The stamps file keeps the stamps of
/// the latest call's paths only, so callers that alternate re-hash each other's images: slower, never wrong.
pub fn embed_paths(
    embedder: &dyn Embedder,
    paths: &[&Path],
    dir: Option<&Path>,
) -> Result<(Vec<Vec<f32>>, CacheStats)> {
    embed_files(embedder, paths, dir).map(|f| (f.vectors, f.stats))
}

/// Images embedded between two writes of a part file: an interrupted cold run loses at most this many.
pub const CHUNK: usize = 64;

/// What [`embed_files`] gives: vectors and content hashes in order, statistics, and warnings about
/// ignored shards.
struct Files {
    vectors: Vec<Vec<f32>>,
    hashes: Vec<Hash>,
    stats: CacheStats,
    warnings: Vec<String>,
}

/// The shared work of [`embed_catalog`], [`embed_paths`] and [`build_shard`].
fn embed_files(embedder: &dyn Embedder, paths: &[&Path], dir: Option<&Path>) -> Result<Files> {
    let key = embedder.fingerprint().cache_key();
    let file = dir.map(|d| d.join(format!("{key}.emb")));
    let stamps_file = file.as_ref().map(|f| f.with_extension("stamps"));
    let (old_stamps, written) = stamps_file.as_deref().map(read_stamps).unwrap_or_default();
    let mut stamps = Vec::with_capacity(paths.len());
    let mut hashed = 0;
    for &path in paths {
        let image_err = |e: std::io::Error| Error::Image { path: path.to_owned(), message: e.to_string() };
        let stamp = stamp_of(path).map_err(image_err)?;
        let key = path.to_string_lossy().into_owned();
        let trusted = match (stamp, old_stamps.get(&key), written) {
            (Some(now), Some((then, hash)), Some(w)) if now == *then && now.1 + RACY_NS < w => Some(*hash),
            _ => None,
        };
        let hash = match trusted {
            Some(h) => h,
            None => {
                hashed += 1;
                Sha256::digest(std::fs::read(path).map_err(image_err)?).into()
            }
        };
        stamps.push((key, stamp.unwrap_or_default(), hash));
    }
    let hashes: Vec<Hash> = stamps.iter().map(|s| s.2).collect();
    let mut known = file.as_deref().map(read).unwrap_or_default();
    let in_main = known.len();
    let parts = dir.map(|d| part_files(d, &key)).unwrap_or_default();
    for part in &parts {
        known.extend(read(part));
    }
    let mut warnings = Vec::new();
    if let Some(d) = dir {
        for entries in read_shards(&d.join(SHARDS_DIR), embedder.fingerprint(), &mut warnings) {
            known.extend(entries);
        }
    }

    let mut missing: Vec<usize> = (0..hashes.len()).filter(|&i| !known.contains_key(&hashes[i])).collect();
    // The same image twice (two paths, same bytes) is embedded once.
    let mut seen = std::collections::HashSet::new();
    missing.retain(|&i| seen.insert(hashes[i]));
    let stats = CacheStats {
        cached: hashes.iter().filter(|h| known.contains_key(*h)).count(),
        embedded: missing.len(),
        hashed,
    };
    let mut written_parts = Vec::new();
    if !missing.is_empty() {
        let progress = Progress::new(missing.len());
        let mut pending: HashMap<Hash, Vec<f32>> = HashMap::new();
        // Pending embeddings go to a part file every CHUNK images, and on an error, so that neither an
        // error nor an interrupt loses more than the last chunk.
        let mut flush = |pending: &mut HashMap<Hash, Vec<f32>>| {
            if let (Some(d), false) = (dir, pending.is_empty()) {
                let part = d.join(format!("{key}.part-{}-{}.emb", std::process::id(), written_parts.len()));
                if write(&part, pending).is_ok() {
                    written_parts.push(part);
                }
            }
            pending.clear();
        };
        // One call for all missing images, so that the backend can prepare the next batch while it
        // embeds one; the batches come back one by one, for the progress line and the part files.
        let todo: Vec<&Path> = missing.iter().map(|&i| paths[i]).collect();
        let mut done = 0;
        let mut take = |vectors: Vec<Vec<f32>>| -> Result<()> {
            let Some(step) = missing.get(done..done + vectors.len()) else {
                return Err(miscount(embedder, done + vectors.len(), missing.len()));
            };
            let names: Vec<String> = step.iter().map(|&i| paths[i].display().to_string()).collect();
            let vectors = unit_vectors(embedder.fingerprint(), "image", &names, vectors)?;
            for (&i, v) in step.iter().zip(vectors) {
                known.insert(hashes[i], v.clone());
                pending.insert(hashes[i], v);
            }
            done += step.len();
            progress.advance(step.len());
            if pending.len() >= CHUNK {
                flush(&mut pending);
            }
            Ok(())
        };
        let mut result = embedder.embed_images_by_batch(&todo, &mut take);
        if result.is_ok() && done != missing.len() {
            result = Err(miscount(embedder, done, missing.len()));
        }
        if let Err(e) = result {
            flush(&mut pending);
            progress.finish();
            return Err(e);
        }
        progress.finish();
    }
    if let Some(file) = &file {
        if known.len() > in_main {
            // One file again: the parts (this run's and any an interrupted run left) are folded in.
            // A cache that cannot be written costs time on the next run, nothing else.
            if write(file, &known).is_ok() {
                for part in parts.iter().chain(&written_parts) {
                    let _ = std::fs::remove_file(part);
                }
            }
        }
    }
    if let (Some(path), true) = (&stamps_file, hashed > 0) {
        // Losing the stamps costs a re-hash on the next run, nothing else.
        let _ = write_stamps(path, &stamps);
    }
    let vectors = hashes.iter().map(|h| known[h].clone()).collect();
    Ok(Files { vectors, hashes, stats, warnings })
}

/// The error for a backend that returned `got` image embeddings for `asked` images.
fn miscount(embedder: &dyn Embedder, got: usize, asked: usize) -> Error {
    Error::model(&embedder.fingerprint().model, format!("returned {got} image embeddings for {asked} images"))
}

/// Part files an earlier, interrupted run of the same model left in `dir`.
fn part_files(dir: &Path, key: &str) -> Vec<PathBuf> {
    let prefix = format!("{key}.part-");
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut parts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".emb")))
        .map(|e| e.path())
        .collect();
    parts.sort();
    parts
}

/// A progress line on stderr for a cold catalog embedding: images done and left, images per second,
/// time left. Only when stderr is a terminal and `CI` is not set; cleared when done, so nothing of it
/// remains in the output that follows (libtest's lines, a report).
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(total: usize) -> Progress {
        use std::io::IsTerminal;
        if std::env::var_os("CI").is_some() || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::with_draw_target(Some(total as u64), indicatif::ProgressDrawTarget::stderr());
        // Short enough for an 80-column terminal: a wrapped line could not be cleared.
        let style = indicatif::ProgressStyle::with_template(
            "embedding {pos}/{len} images {bar:16} {rate} images/s, {eta} left",
        )
        .map(|s| {
            s.with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}", state.per_sec());
            })
        })
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(500));
        Progress(Some(bar))
    }

    fn advance(&self, n: usize) {
        if let Some(bar) = &self.0 {
            bar.inc(n as u64);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn read(path: &Path) -> HashMap<Hash, Vec<f32>> {
    let Ok(bytes) = std::fs::read(path) else { return HashMap::new() };
    parse(&bytes).unwrap_or_default()
}

fn parse(bytes: &[u8]) -> Option<HashMap<Hash, Vec<f32>>> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let dim = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let count = u64::from_le_bytes(rest.get(4..12)?.try_into().ok()?) as usize;
    let body = &rest[12..];
    let entry = 32 + 4 * dim;
    if body.len() != count.checked_mul(entry)? {
        return None;
    }
    Some(
        body.chunks_exact(entry)
            .map(|e| {
                let hash: Hash = e[..32].try_into().unwrap();
                let v = e[32..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
                (hash, v)
            })
            .collect(),
    )
}

fn write(path: &Path, entries: &HashMap<Hash, Vec<f32>>) -> Result<()> {
    atomic_write(path, &encode(entries))
}

/// The cache format of `entries`, sorted by hash. Vectors of different lengths cannot share a file:
/// then only the header is written, which reads back as an empty cache.
fn encode(entries: &HashMap<Hash, Vec<f32>>) -> Vec<u8> {
    let mut dim = entries.values().next().map_or(0, Vec::len);
    let mut entries = entries;
    let empty = HashMap::new();
    if entries.values().any(|v| v.len() != dim) {
        (entries, dim) = (&empty, 0);
    }
    let mut bytes = Vec::with_capacity(20 + entries.len() * (32 + 4 * dim));
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(dim as u32).to_le_bytes());
    bytes.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by_key(|(h, _)| **h);
    for (hash, v) in sorted {
        bytes.extend_from_slice(&hash[..]);
        for x in v {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    bytes
}

// ---- Shards ------------------------------------------------------------------------------------------

/// Where shard files are read from, under the cache directory.
pub const SHARDS_DIR: &str = "shards";

const SHARD_MAGIC: &[u8; 8] = b"FITSHRD1";

/// One of `count` deterministic parts of a catalog: `index` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Reads `3/20`.
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("shard '{s}': write it as 'i/n' with 1 <= i <= n, e.g. '3/20'");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether the item `id` belongs to this shard: by a hash of the id, so that adding or removing
    /// images moves no other image to another shard.
    pub fn holds(&self, id: &str) -> bool {
        let h = Sha256::digest(id.as_bytes());
        let n = u64::from_le_bytes(h[..8].try_into().unwrap_or_default());
        n % self.count as u64 == (self.index - 1) as u64
    }
}

/// What [`build_shard`] did.
#[derive(Debug, Clone)]
pub struct ShardBuilt {
    /// Items of the catalog in this shard.
    pub items: usize,
    pub stats: CacheStats,
    pub file: PathBuf,
    pub warnings: Vec<String>,
}

/// The file a shard is written to by default: `<dir>/shards/<fingerprint key>-<i>of<n>.shard`.
pub fn shard_file(dir: &Path, embedder: &dyn Embedder, shard: Shard) -> PathBuf {
    let key = embedder.fingerprint().cache_key();
    dir.join(SHARDS_DIR).join(format!("{key}-{}of{}.shard", shard.index, shard.count))
}

/// Embeds the catalog items of `shard` (through the cache in `dir`, when given) and writes them, with
/// the model's fingerprint and fitcheck's version, to `out`.
pub fn build_shard(
    embedder: &dyn Embedder,
    catalog: &Catalog,
    dir: Option<&Path>,
    shard: Shard,
    out: &Path,
) -> Result<ShardBuilt> {
    let paths: Vec<&Path> =
        catalog.items().iter().filter(|it| shard.holds(&it.id)).map(|it| it.path.as_path()).collect();
    let Files { vectors, hashes, stats, warnings } = embed_files(embedder, &paths, dir)?;
    let entries: HashMap<Hash, Vec<f32>> = hashes.into_iter().zip(vectors).collect();
    let fp = embedder.fingerprint();
    let header =
        format!("{}\n{}\n{}\n{}/{}\n", env!("CARGO_PKG_VERSION"), fp.cache_key(), fp.model, shard.index, shard.count);
    let mut bytes = SHARD_MAGIC.to_vec();
    bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&encode(&entries));
    atomic_write(out, &bytes)?;
    Ok(ShardBuilt { items: paths.len(), stats, file: out.to_owned(), warnings })
}

/// The entries of every shard file in `dir` that was written by this fitcheck version for the model
/// `fp`; every other shard file is named in `warnings` with the reason, and never read.
fn read_shards(dir: &Path, fp: &Fingerprint, warnings: &mut Vec<String>) -> Vec<HashMap<Hash, Vec<f32>>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "shard"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        match read_shard(&file, fp) {
            Ok(entries) => out.push(entries),
            Err(why) => warnings.push(format!("{}: {why}: ignored", file.display())),
        }
    }
    out
}

fn read_shard(file: &Path, fp: &Fingerprint) -> std::result::Result<HashMap<Hash, Vec<f32>>, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read the shard ({e})"))?;
    let torn = || "not a complete fitcheck shard file (torn or another format): build it again".to_string();
    let rest = bytes.strip_prefix(SHARD_MAGIC).ok_or_else(torn)?;
    let len = u32::from_le_bytes(rest.get(..4).ok_or_else(torn)?.try_into().map_err(|_| torn())?) as usize;
    let header = std::str::from_utf8(rest.get(4..4 + len).ok_or_else(torn)?).map_err(|_| torn())?;
    let mut lines = header.lines();
    let (version, key, model) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    if version != env!("CARGO_PKG_VERSION") {
        return Err(format!(
            "written by fitcheck '{version}', this is '{}': rebuild the shard with this version",
            env!("CARGO_PKG_VERSION")
        ));
    }
    if key != fp.cache_key() {
        return Err(format!(
            "embeddings of another model ('{model}', fingerprint '{key}'), not of '{}' ('{}'): rebuild the shard with this model",
            fp.model,
            fp.cache_key()
        ));
    }
    parse(&rest[4 + len..]).ok_or_else(torn)
}

// ---- Query texts -----------------------------------------------------------------------------------

/// An embedder whose text embeddings go through a cache file beside the catalog's
/// (`<dir>/<fingerprint key>.texts.emb`), keyed by the padding and the text: the fingerprint already
/// names the model and its text cleaning. Texts padded to the full context are looked up one by one;
/// texts padded to their batch's longest are keyed by that length and embedded as a whole batch when
/// any of them is missing, since the padding depends on the batch. Everything else passes through, so
/// a model that describes itself cheaply (see `crate::model::describe`) is never loaded when every
/// text and image is cached.
pub struct TextCache {
    inner: Box<dyn Embedder>,
    file: Option<PathBuf>,
    known: std::sync::Mutex<Option<HashMap<Hash, Vec<f32>>>>,
}

impl TextCache {
    pub fn new(inner: Box<dyn Embedder>, dir: Option<&Path>) -> TextCache {
        let file = dir.map(|d| d.join(format!("{}.texts.emb", inner.fingerprint().cache_key())));
        TextCache { inner, file, known: Default::default() }
    }

    fn key(padding: &str, text: &str) -> Hash {
        let mut h = Sha256::new();
        h.update(padding.as_bytes());
        h.update([0u8]);
        h.update(text.as_bytes());
        h.finalize().into()
    }

    /// Looks every key up; embeds the missing ones with `embed` (given the indices of the texts to
    /// embed), stores them and writes the file.
    fn through(
        &self,
        keys: &[Hash],
        embed: impl FnOnce(&[usize]) -> Result<Vec<Vec<f32>>>,
        whole_batch: bool,
    ) -> Result<Vec<Vec<f32>>> {
        let mut guard = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let known = guard.get_or_insert_with(|| self.file.as_deref().map(read).unwrap_or_default());
        let mut seen = std::collections::HashSet::new();
        let mut missing: Vec<usize> =
            (0..keys.len()).filter(|&i| !known.contains_key(&keys[i]) && seen.insert(keys[i])).collect();
        if !missing.is_empty() {
            if whole_batch {
                missing = (0..keys.len()).collect();
            }
            let vectors = embed(&missing)?;
            if vectors.len() != missing.len() {
                return Err(Error::model(
                    &self.inner.fingerprint().model,
                    format!("returned {} text embeddings for {} texts", vectors.len(), missing.len()),
                ));
            }
            for (&i, v) in missing.iter().zip(vectors) {
                known.insert(keys[i], v);
            }
            if let Some(file) = &self.file {
                // A cache that cannot be written costs time on the next run, nothing else.
                let _ = write(file, known);
            }
        }
        Ok(keys.iter().map(|k| known[k].clone()).collect())
    }
}

impl Embedder for TextCache {
    fn fingerprint(&self) -> &Fingerprint {
        self.inner.fingerprint()
    }

    fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let keys: Vec<Hash> = texts.iter().map(|t| TextCache::key("full", t)).collect();
        self.through(
            &keys,
            |todo| self.inner.embed_texts(&todo.iter().map(|&i| texts[i].clone()).collect::<Vec<_>>()),
            false,
        )
    }

    fn embed_texts_padded_to_longest(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        // The padded length: the longest text's tokens, cut to the context.
        let longest = self.inner.token_counts(texts)?.map(|c| c.into_iter().max().unwrap_or(0));
        let padded = match (longest, self.inner.context_length()) {
            (Some(l), Some(ctx)) => format!("longest {}", l.min(ctx)),
            (Some(l), None) => format!("longest {l}"),
            (None, _) => "longest".to_string(),
        };
        let keys: Vec<Hash> = texts.iter().map(|t| TextCache::key(&padded, t)).collect();
        self.through(&keys, |_| self.inner.embed_texts_padded_to_longest(texts), true)
    }

    fn embed_images(&self, paths: &[&Path]) -> Result<Vec<Vec<f32>>> {
        self.inner.embed_images(paths)
    }

    fn embed_images_by_batch(&self, paths: &[&Path], sink: &mut dyn FnMut(Vec<Vec<f32>>) -> Result<()>) -> Result<()> {
        self.inner.embed_images_by_batch(paths, sink)
    }

    fn token_counts(&self, texts: &[String]) -> Result<Option<Vec<usize>>> {
        self.inner.token_counts(texts)
    }

    fn context_length(&self) -> Option<usize> {
        self.inner.context_length()
    }

    fn logit_scale_bias(&self) -> Option<(f32, Option<f32>)> {
        self.inner.logit_scale_bias()
    }
}

// ---- Checkpoint files ------------------------------------------------------------------------------

/// The file `digests.stamps` in the cache directory: size, mtime and SHA-256 of checkpoint files.
const DIGESTS_FILE: &str = "digests.stamps";

/// The SHA-256 (hex) of the file at `path`. With a cache directory, the digest is remembered with the
/// file's size and modification time and reused while both match, under the same racy-stamp rule as
/// the catalog's images: a file modified within two seconds before the stamps were written is hashed
/// again, so a same-size rewrite in the same instant is not missed. Without one, the file is hashed.
pub fn file_digest(path: &Path, dir: Option<&Path>) -> Result<String> {
    let io = |e: std::io::Error| Error::io(path, e);
    let store = dir.map(|d| d.join(DIGESTS_FILE));
    let key = std::fs::canonicalize(path).map_err(io)?.to_string_lossy().into_owned();
    let stamp = stamp_of(path).map_err(io)?;
    let (mut old, written) = store.as_deref().map(read_stamps).unwrap_or_default();
    if let (Some(now), Some((then, hash)), Some(w)) = (stamp, old.get(&key), written) {
        if now == *then && now.1 + RACY_NS < w {
            return Ok(hex(hash));
        }
    }
    let hash = hash_file(path)?;
    if let (Some(store), Some(stamp)) = (&store, stamp) {
        old.insert(key, (stamp, hash));
        let mut entries: Vec<(String, Stamp, Hash)> = old.into_iter().map(|(p, (s, h))| (p, s, h)).collect();
        entries.sort();
        // Losing the stamps costs a re-hash on the next run, nothing else.
        let _ = write_stamps(store, &entries);
    }
    Ok(hex(&hash))
}

fn hash_file(path: &Path) -> Result<Hash> {
    crate::files::sha256_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_torn_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.emb");
        let entries = HashMap::from([([1u8; 32], vec![0.5f32, -0.25]), ([2u8; 32], vec![1.0, 0.0])]);
        write(&path, &entries).unwrap();
        assert_eq!(read(&path), entries);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(parse(&bytes[..bytes.len() - 1]), None);
        assert_eq!(parse(b"NOTACACHE"), None);
    }
}
