//! Pair mode: the checkpoint table a team keeps on a held-out set of (image, description) pairs.
//!
//! A pairs file is a CSV with a header naming its columns, in any order:
//!
//! ```csv
//! image,description,tags,split
//! train/000-jean-mom-azul.png,jeans mom azules,"denim, roto",train
//! test/000-remera-rojo-liso-mc.png,remera roja,,test
//! ```
//!
//! `image` is a path relative to the pairs file, `description` the caption, `split` any name (`train`,
//! `test`, ...); `tags` is optional, comma-separated words. The model reads `description`, plus
//! `". Etiquetas: <tags>"` when there are tags: a period is added first unless the description already
//! ends with one, and the tags are trimmed and joined with `", "` (`jean azul` + `denim,roto` gives
//! `jean azul. Etiquetas: denim, roto`). Fields follow RFC 4180: a field holding a comma, a quote or a
//! line break is quoted, and a quote inside it is doubled.
//!
//! For each split and each of two paddings of the texts, [`evaluate`] computes retrieval metrics over the
//! whole split in both directions (each image ranks every text of the split, each text every image) and
//! two losses over batches in file order. The paddings are the team's recipe, each batch padded to its
//! longest text (transformers' `padding=True`), and production's, every text padded to the full context
//! as the case tests embed queries. A SigLIP text tower reads every pad token (no mask, last position
//! pooled), so the two give different embeddings, and the team's table may not predict what the cases
//! see; [`disagreements`] says when they differ by the stated rule.
//!
//! Invariants: a pairs file is validated completely before any model runs, and every problem is reported
//! with the file, line and column; identical model inputs get one embedding, so duplicates tie exactly
//! and the tie rule ([`TIE_RULE`]) decides, the same in the Python cross-check
//! (`scripts/pairs/evaluate.py`); the report is plain data that carries its own metric definitions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::embed::Embedder;
use crate::error::{Error, Position, Result};
use crate::rank::normalize;
use crate::suite::join_clean;

/// Pairs per batch when the suite does not say (the team's batch size).
pub const DEFAULT_BATCH: usize = 16;
/// InfoNCE temperature when the suite does not say (the team's).
pub const DEFAULT_TEMPERATURE: f64 = 0.05;
/// The columns a pairs file may have; `tags` is optional.
pub const COLUMNS: [&str; 4] = ["image", "description", "tags", "split"];
/// The cut-offs of the recall columns.
pub const KS: [usize; 3] = [1, 5, 10];
/// Recall@1 values further apart than this between the two paddings are reported as a disagreement.
pub const RECALL_GAP: f64 = 0.05;
/// How equal scores are ordered, in words (also in every report).
pub const TIE_RULE: &str = "among equal scores the own item is ranked after every other tied item (pessimistic); \
identical model inputs (the same text padded to the same length, the same image bytes) share one embedding, \
so duplicates tie exactly";

/// What pair mode evaluates: the `[pairs]` table of the suite file.
#[derive(Debug, Clone, PartialEq)]
pub struct PairsSpec {
    /// The pairs file.
    pub file: PathBuf,
    /// Pairs per batch for batch-longest padding and for the losses.
    pub batch: usize,
    /// The InfoNCE temperature τ.
    pub temperature: f64,
}

impl PairsSpec {
    /// The team's settings for `file`.
    pub fn new(file: PathBuf) -> PairsSpec {
        PairsSpec { file, batch: DEFAULT_BATCH, temperature: DEFAULT_TEMPERATURE }
    }
}

/// The `[pairs]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PairsTable {
    file: String,
    batch: Option<Spanned<i64>>,
    temperature: Option<Spanned<Number>>,
}

/// A TOML number: `temperature = 1` is as good as `temperature = 1.0`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Float(f64),
}

/// Validates the `[pairs]` table of the suite file `path` (contents `text`); paths are relative to `dir`.
pub(crate) fn spec_from_table(path: &Path, text: &str, dir: &Path, table: &PairsTable) -> Result<PairsSpec> {
    let mut spec = PairsSpec::new(join_clean(dir, &table.file));
    if let Some(batch) = &table.batch {
        spec.batch = crate::suite::positive(path, text, batch, "batch")?;
    }
    if let Some(t) = &table.temperature {
        let value = match t.get_ref() {
            Number::Int(i) => *i as f64,
            Number::Float(f) => *f,
        };
        if !(value > 0.0 && value.is_finite()) {
            return Err(Error::at_offset(
                path,
                text,
                t.span().start,
                format!("temperature must be above 0, got {value}: the team's is 0.05"),
            ));
        }
        spec.temperature = value;
    }
    Ok(spec)
}

// ----------------------------------------------------------------------------------------------------
// The pairs file

/// One (image, description) pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The image path as written in the file, cleaned (`./a/../b.png` reads `b.png`): the pair's id.
    pub id: String,
    /// The image path, resolved against the pairs file's folder.
    pub image: PathBuf,
    pub description: String,
    pub tags: Vec<String>,
    pub split: String,
    /// What the model reads: [`compose_text`] of the description and tags.
    pub text: String,
    /// The pair's line in the file.
    pub line: usize,
}

/// A loaded, validated pairs file.
#[derive(Debug, Clone)]
pub struct PairsFile {
    pub path: PathBuf,
    pub pairs: Vec<Pair>,
}

impl PairsFile {
    /// The split names, in order of first appearance.
    pub fn splits(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.pairs {
            if !out.contains(&p.split) {
                out.push(p.split.clone());
            }
        }
        out
    }

    /// Reads and validates `path`: every column known and the required ones present, every row as long as
    /// the header, every image present and named once, no empty description or split.
    pub fn load(path: &Path) -> Result<PairsFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let records = parse_csv(path, &text)?;
        let at = |pos: Position, message: String| Error::At { path: path.to_owned(), position: Some(pos), message };
        let Some((header, rows)) = records.split_first() else {
            return Err(Error::file(
                path,
                "empty pairs file: the first line names the columns (image,description,tags,split)",
            ));
        };
        let mut column: HashMap<&str, usize> = HashMap::new();
        for (i, f) in header.fields.iter().enumerate() {
            let name = f.text.trim();
            if !COLUMNS.contains(&name) {
                return Err(at(f.pos, format!("unknown column '{name}' (known: {})", COLUMNS.join(", "))));
            }
            if column.insert(COLUMNS.iter().find(|c| **c == name).unwrap(), i).is_some() {
                return Err(at(f.pos, format!("column '{name}' appears twice in the header")));
            }
        }
        for required in ["image", "description", "split"] {
            if !column.contains_key(required) {
                return Err(at(
                    header.fields[0].pos,
                    format!(
                        "the header has no '{required}' column (needs image, description and split; tags is optional)"
                    ),
                ));
            }
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        let mut pairs = Vec::with_capacity(rows.len());
        let mut seen: HashMap<PathBuf, usize> = HashMap::new();
        for row in rows {
            if row.fields.len() != header.fields.len() {
                return Err(at(
                    Position { line: row.line, column: 1 },
                    format!(
                        "row has {} fields, the header has {}: quote a field that holds a comma",
                        row.fields.len(),
                        header.fields.len()
                    ),
                ));
            }
            let field = |name: &str| &row.fields[column[name]];
            let image = field("image");
            let rel = image.text.trim();
            if rel.is_empty() {
                return Err(at(image.pos, "empty image path: give the image's path relative to the pairs file".into()));
            }
            let resolved = join_clean(dir, rel);
            let id = join_clean(Path::new(""), rel).to_string_lossy().replace('\\', "/");
            if let Some(line) = seen.insert(resolved.clone(), row.line) {
                return Err(at(
                    image.pos,
                    format!("image '{rel}' is already paired on line {line}: each image may appear once"),
                ));
            }
            if !resolved.is_file() {
                return Err(at(image.pos, format!("image '{rel}' not found (no file at '{}')", resolved.display())));
            }
            let description = field("description");
            if description.text.trim().is_empty() {
                return Err(at(description.pos, "empty description".into()));
            }
            let split = field("split");
            let split_name = split.text.trim();
            if split_name.is_empty() {
                return Err(at(
                    split.pos,
                    "empty split: name the split the pair belongs to (e.g. 'train' or 'test')".into(),
                ));
            }
            let tags: Vec<String> = match column.get("tags") {
                Some(&i) => {
                    row.fields[i].text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()
                }
                None => Vec::new(),
            };
            pairs.push(Pair {
                id,
                image: resolved,
                description: description.text.clone(),
                text: compose_text(&description.text, &tags),
                tags,
                split: split_name.to_string(),
                line: row.line,
            });
        }
        if pairs.is_empty() {
            return Err(Error::file(path, "no pairs: the file has a header but no rows"));
        }
        Ok(PairsFile { path: path.to_owned(), pairs })
    }
}

/// The text the model reads for a pair: the description, then `". Etiquetas: "` and the tags joined with
/// `", "` when there are tags (no second period when the description already ends with one).
pub fn compose_text(description: &str, tags: &[String]) -> String {
    let mut text = description.trim_end().to_string();
    if !tags.is_empty() {
        if !text.ends_with('.') {
            text.push('.');
        }
        text.push_str(" Etiquetas: ");
        text.push_str(&tags.join(", "));
    }
    text
}

/// A CSV field and where it starts.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    text: String,
    pos: Position,
}

/// A CSV record and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    fields: Vec<Field>,
    line: usize,
}

/// RFC 4180 records of `text` (CRLF or LF, a leading byte-order mark ignored, blank lines skipped).
fn parse_csv(path: &Path, text: &str) -> Result<Vec<Record>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let err = |pos: Position, message: &str| Error::At {
        path: path.to_owned(),
        position: Some(pos),
        message: message.into(),
    };
    let mut chars = text.chars().peekable();
    let (mut line, mut column) = (1usize, 1usize);
    let mut records = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    let mut record_line = 1;
    loop {
        // At the start of a field.
        let pos = Position { line, column };
        let mut value = String::new();
        let mut end_of_record = false;
        if chars.peek() == Some(&'"') {
            chars.next();
            column += 1;
            loop {
                match chars.next() {
                    None => return Err(err(pos, "unterminated quoted field: the closing '\"' is missing")),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        column += 2;
                        value.push('"');
                    }
                    Some('"') => {
                        column += 1;
                        break;
                    }
                    Some('\n') => {
                        line += 1;
                        column = 1;
                        value.push('\n');
                    }
                    Some(c) => {
                        column += 1;
                        value.push(c);
                    }
                }
            }
            match chars.next() {
                None => end_of_record = true,
                Some(',') => column += 1,
                Some('\n') => end_of_record = true,
                Some('\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                    end_of_record = true;
                }
                Some(c) => {
                    return Err(err(
                        Position { line, column },
                        &format!("unexpected '{c}' after a closing quote: a quoted field ends at its closing '\"'"),
                    ))
                }
            }
        } else {
            loop {
                match chars.next() {
                    None | Some('\n') => {
                        end_of_record = true;
                        break;
                    }
                    Some('\r') if chars.peek() == Some(&'\n') => {
                        chars.next();
                        end_of_record = true;
                        break;
                    }
                    Some(',') => {
                        column += 1;
                        break;
                    }
                    Some('"') => {
                        return Err(err(
                            Position { line, column },
                            "a quote inside an unquoted field: quote the whole field and double the quote (\"\")",
                        ))
                    }
                    Some(c) => {
                        column += 1;
                        value.push(c);
                    }
                }
            }
        }
        fields.push(Field { text: value, pos });
        if end_of_record {
            let blank = fields.len() == 1 && fields[0].text.is_empty();
            if !blank {
                records.push(Record { fields: std::mem::take(&mut fields), line: record_line });
            }
            fields.clear();
            if chars.peek().is_none() {
                break;
            }
            line += 1;
            column = 1;
            record_line = line;
        }
    }
    Ok(records)
}

// ----------------------------------------------------------------------------------------------------
// The report

/// How the texts of a split are padded before the text tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// Each batch padded to its longest text (the team's recipe, transformers' `padding=True`).
    BatchLongest,
    /// Every text padded to the full context (how the case tests embed queries).
    FullContext,
}

impl Padding {
    pub fn describe(self) -> &'static str {
        match self {
            Padding::BatchLongest => "batch-longest (the team's recipe: each batch padded to its longest text)",
            Padding::FullContext => "full-context (production: every text padded to the context, as the cases are)",
        }
    }
}

/// Retrieval in one direction over a whole split; each query has exactly one relevant item, its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retrieval {
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub recall_at_10: f64,
    pub mrr: f64,
}

/// One padding's results on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeReport {
    pub padding: Padding,
    pub image_to_text: Retrieval,
    /// The seed script's "precision@5": computed exactly as image→text hit@5, so the same number as
    /// `image_to_text.recall_at_5`, kept under its old name so the seed's table can be read side by side.
    pub precision_at_5_seed: f64,
    pub text_to_image: Retrieval,
    /// Symmetric InfoNCE, mean over batches.
    pub info_nce: f64,
    /// SigLIP's sigmoid loss with the checkpoint's scale and bias, mean over batches; `None` when the model
    /// has no learned bias.
    pub sigmoid: Option<f64>,
}

/// One split's results under both paddings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    pub split: String,
    /// Pairs in the split.
    pub n: usize,
    /// Pairs whose text (description and tags, as the model reads it) repeats an earlier pair's in the split.
    pub duplicate_texts: usize,
    /// Texts with more tokens than the context, cut by the tokenizer (`None` without a token limit).
    pub truncated_texts: Option<usize>,
    /// Those texts, each with its token count, for warnings.
    #[serde(default)]
    pub truncated: Vec<(String, usize)>,
    pub batch_longest: ModeReport,
    pub full_context: ModeReport,
}

/// A metric's name and definition, for readers of a JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    pub name: String,
    pub definition: String,
}

/// Pair mode's results for one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairReport {
    /// The pairs file.
    pub file: String,
    /// The model, as its fingerprint names it.
    pub model: String,
    pub batch: usize,
    pub temperature: f64,
    pub context_length: Option<usize>,
    /// The exponentiated logit scale and the bias used by the sigmoid loss.
    pub logit_scale: Option<f64>,
    pub logit_bias: Option<f64>,
    pub tie_rule: String,
    pub splits: Vec<SplitReport>,
    pub definitions: Vec<Definition>,
    /// Where this checkpoint's two paddings disagree (see [`disagreements`] for the rule).
    pub notes: Vec<String>,
}

/// Every reported metric with its definition.
pub fn definitions() -> Vec<Definition> {
    let d = |name: &str, definition: &str| Definition { name: name.into(), definition: definition.into() };
    vec![
        d("recall@k (image→text)", "share of the split's images whose own text is among the k texts of the split that score highest for them (hit@k: one relevant text per image); k = 1, 5, 10"),
        d("mrr (image→text)", "mean over the split's images of 1 / the rank of the image's own text among all the split's texts"),
        d("precision@5 (seed)", "the seed script's name for image→text hit@5: the same number as image→text recall@5, not a precision"),
        d("recall@k (text→image)", "share of the split's texts whose own image is among the k images of the split that score highest for them"),
        d("mrr (text→image)", "mean over the split's texts of 1 / the rank of the text's own image among all the split's images"),
        d("loss (InfoNCE)", "symmetric InfoNCE on L2-normalised embeddings: per batch (file order), (CE(I·Tᵀ/τ) + CE(T·Iᵀ/τ)) / 2 with the diagonal as labels and CE averaged over the batch's rows; the mean over batches"),
        d("sigmoid loss", "SigLIP's loss with the checkpoint's own logit scale s (exponentiated) and bias b: per batch, -Σ_ij log σ(z_ij·(s·t_i·i_j + b)) / batch size, z = +1 on the diagonal and -1 elsewhere (as open_clip's SigLipLoss); the mean over batches"),
        d("duplicate texts", "pairs whose text, as the model reads it, repeats an earlier pair's in the same split"),
        d("ties", TIE_RULE),
        d("padding", "batch-longest: each batch padded with the pad id to its longest text (the team's recipe); full-context: every text padded to the context length, as the case tests embed queries"),
    ]
}

// ----------------------------------------------------------------------------------------------------
// Metrics and losses: pure functions of a split's similarity matrix, `sims[i][j]` = image i · text j.

/// The rank (1-based) of each image's own text among all texts, ties pessimistic.
pub fn ranks_image_to_text(sims: &[Vec<f64>]) -> Vec<usize> {
    (0..sims.len()).map(|i| 1 + (0..sims.len()).filter(|&j| j != i && sims[i][j] >= sims[i][i]).count()).collect()
}

/// The rank (1-based) of each text's own image among all images, ties pessimistic.
pub fn ranks_text_to_image(sims: &[Vec<f64>]) -> Vec<usize> {
    (0..sims.len()).map(|j| 1 + (0..sims.len()).filter(|&i| i != j && sims[i][j] >= sims[j][j]).count()).collect()
}

/// Recall@1/5/10 and MRR of the ranks of the relevant items.
pub fn retrieval(ranks: &[usize]) -> Retrieval {
    let n = ranks.len().max(1) as f64;
    let recall = |k: usize| ranks.iter().filter(|&&r| r <= k).count() as f64 / n;
    Retrieval {
        recall_at_1: recall(KS[0]),
        recall_at_5: recall(KS[1]),
        recall_at_10: recall(KS[2]),
        mrr: ranks.iter().map(|&r| 1.0 / r as f64).sum::<f64>() / n,
    }
}

/// `ln(Σ exp(x))` without overflow.
fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    max + xs.map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// `ln σ(x)` without overflow.
fn log_sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

/// The split's rows in batches of `batch`, in order.
fn batches(n: usize, batch: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..n).step_by(batch.max(1)).map(move |s| s..(s + batch).min(n))
}

/// Symmetric InfoNCE at temperature `tau`, the mean over batches of `batch` consecutive pairs.
pub fn info_nce(sims: &[Vec<f64>], batch: usize, tau: f64) -> f64 {
    let per_batch: Vec<f64> = batches(sims.len(), batch)
        .map(|b| {
            let m = b.len() as f64;
            let image_rows: f64 =
                b.clone().map(|i| log_sum_exp(b.clone().map(|j| sims[i][j] / tau)) - sims[i][i] / tau).sum();
            let text_rows: f64 =
                b.clone().map(|j| log_sum_exp(b.clone().map(|i| sims[i][j] / tau)) - sims[j][j] / tau).sum();
            (image_rows / m + text_rows / m) / 2.0
        })
        .collect();
    per_batch.iter().sum::<f64>() / per_batch.len().max(1) as f64
}

/// SigLIP's sigmoid loss with logit scale `scale` (exponentiated) and `bias`, the mean over batches of
/// `batch` consecutive pairs; each batch's sum is divided by its size, as open_clip's `SigLipLoss` does.
pub fn sigmoid_loss(sims: &[Vec<f64>], batch: usize, scale: f64, bias: f64) -> f64 {
    let per_batch: Vec<f64> = batches(sims.len(), batch)
        .map(|b| {
            let mut sum = 0.0;
            for i in b.clone() {
                for j in b.clone() {
                    let z = if i == j { 1.0 } else { -1.0 };
                    sum -= log_sigmoid(z * (scale * sims[i][j] + bias));
                }
            }
            sum / b.len() as f64
        })
        .collect();
    per_batch.iter().sum::<f64>() / per_batch.len().max(1) as f64
}

/// `sims[i][j]` = image i · text j, accumulated in f64.
fn similarities(images: &[&[f32]], texts: &[Vec<f32>]) -> Vec<Vec<f64>> {
    images
        .iter()
        .map(|im| texts.iter().map(|t| im.iter().zip(t).map(|(&a, &b)| a as f64 * b as f64).sum()).collect())
        .collect()
}

// ----------------------------------------------------------------------------------------------------
// Evaluation

/// Embeds a split's texts with `padding`, normalised, one embedding per distinct model input.
fn embed_split_texts(
    embedder: &dyn Embedder,
    texts: &[String],
    counts: Option<&[usize]>,
    padding: Padding,
    batch: usize,
) -> Result<Vec<Vec<f32>>> {
    let context = embedder.context_length();
    let (mut vectors, lengths): (Vec<Vec<f32>>, Vec<Option<usize>>) = match padding {
        Padding::FullContext => (embedder.embed_texts(texts)?, vec![context; texts.len()]),
        Padding::BatchLongest => {
            let mut vectors = Vec::with_capacity(texts.len());
            let mut lengths = Vec::with_capacity(texts.len());
            for b in batches(texts.len(), batch) {
                vectors.extend(embedder.embed_texts_padded_to_longest(&texts[b.clone()])?);
                let longest = counts.map(|c| c[b.clone()].iter().copied().max().unwrap_or(0));
                let padded = match (longest, context) {
                    (Some(l), Some(ctx)) => Some(l.min(ctx)),
                    (l, _) => l,
                };
                lengths.extend(std::iter::repeat_n(padded, b.len()));
            }
            (vectors, lengths)
        }
    };
    if vectors.len() != texts.len() {
        return Err(Error::model(
            &embedder.fingerprint().model,
            format!("returned {} text embeddings for {} texts", vectors.len(), texts.len()),
        ));
    }
    // The same text at the same padded length is the same model input: one embedding for all its copies,
    // so that duplicates tie exactly rather than by floating-point noise of their batch position.
    let mut first: HashMap<(&str, Option<usize>), usize> = HashMap::new();
    for i in 0..texts.len() {
        normalize(&mut vectors[i]);
        let f = *first.entry((texts[i].as_str(), lengths[i])).or_insert(i);
        if f != i {
            vectors[i] = vectors[f].clone();
        }
    }
    Ok(vectors)
}

/// Runs pair mode: loads and validates `spec.file`, embeds its images (through the embedding cache in
/// `cache_dir`, shared with the catalog) and its texts under both paddings, and computes every metric per
/// split.
pub fn evaluate(embedder: &dyn Embedder, spec: &PairsSpec, cache_dir: Option<&Path>) -> Result<PairReport> {
    if spec.batch == 0 || spec.temperature.is_nan() || spec.temperature <= 0.0 {
        return Err(Error::file(
            &spec.file,
            format!("batch must be at least 1 and temperature above 0, got {} and {}", spec.batch, spec.temperature),
        ));
    }
    let file = PairsFile::load(&spec.file)?;
    let paths: Vec<&Path> = file.pairs.iter().map(|p| p.image.as_path()).collect();
    let (images, _) = crate::cache::embed_paths(embedder, &paths, cache_dir)?;
    let context = embedder.context_length();
    let logits = embedder.logit_scale_bias();
    let mut splits = Vec::new();
    for split in file.splits() {
        let rows: Vec<usize> = (0..file.pairs.len()).filter(|&i| file.pairs[i].split == split).collect();
        let texts: Vec<String> = rows.iter().map(|&i| file.pairs[i].text.clone()).collect();
        let image_vectors: Vec<&[f32]> = rows.iter().map(|&i| images[i].as_slice()).collect();
        let counts = embedder.token_counts(&texts)?;
        let mut seen = std::collections::HashSet::new();
        let duplicate_texts = texts.iter().filter(|t| !seen.insert(t.as_str())).count();
        let truncated: Vec<(String, usize)> = match (&counts, context) {
            (Some(c), Some(ctx)) => {
                texts.iter().zip(c).filter(|(_, &n)| n > ctx).map(|(t, &n)| (t.clone(), n)).collect()
            }
            _ => Vec::new(),
        };
        let truncated_texts = counts.as_ref().and(context).map(|_| truncated.len());
        let mode = |padding: Padding| -> Result<ModeReport> {
            let text_vectors = embed_split_texts(embedder, &texts, counts.as_deref(), padding, spec.batch)?;
            let sims = similarities(&image_vectors, &text_vectors);
            let image_to_text = retrieval(&ranks_image_to_text(&sims));
            Ok(ModeReport {
                padding,
                precision_at_5_seed: image_to_text.recall_at_5,
                image_to_text,
                text_to_image: retrieval(&ranks_text_to_image(&sims)),
                info_nce: info_nce(&sims, spec.batch, spec.temperature),
                sigmoid: match logits {
                    Some((scale, Some(bias))) => Some(sigmoid_loss(&sims, spec.batch, scale as f64, bias as f64)),
                    _ => None,
                },
            })
        };
        splits.push(SplitReport {
            n: rows.len(),
            duplicate_texts,
            truncated_texts,
            truncated,
            batch_longest: mode(Padding::BatchLongest)?,
            full_context: mode(Padding::FullContext)?,
            split,
        });
    }
    let mut report = PairReport {
        file: spec.file.to_string_lossy().replace('\\', "/"),
        model: embedder.fingerprint().model.clone(),
        batch: spec.batch,
        temperature: spec.temperature,
        context_length: context,
        logit_scale: logits.map(|(s, _)| s as f64),
        logit_bias: logits.and_then(|(_, b)| b.map(f64::from)),
        tie_rule: TIE_RULE.into(),
        splits,
        definitions: definitions(),
        notes: Vec::new(),
    };
    report.notes = recall_gaps(&report);
    Ok(report)
}

/// This checkpoint's splits where recall@1 moves by more than [`RECALL_GAP`] between the paddings.
fn recall_gaps(report: &PairReport) -> Vec<String> {
    let mut notes = Vec::new();
    for s in &report.splits {
        let pairs = [
            ("image→text", s.batch_longest.image_to_text.recall_at_1, s.full_context.image_to_text.recall_at_1),
            ("text→image", s.batch_longest.text_to_image.recall_at_1, s.full_context.text_to_image.recall_at_1),
        ];
        for (direction, longest, full) in pairs {
            if (longest - full).abs() > RECALL_GAP {
                notes.push(format!(
                    "{}: {direction} recall@1 is {longest:.3} with batch-longest padding but {full:.3} with full-context padding",
                    s.split
                ));
            }
        }
    }
    notes
}

/// The rule by which the two paddings are said to disagree, in words.
pub const DISAGREEMENT_RULE: &str = "rule: a checkpoint's recall@1, either direction, moves by more than 0.05 between \
them, or two checkpoints swap order by InfoNCE loss or by image→text recall@1";

/// Every disagreement between the two paddings: each checkpoint's own (its `notes`), then every pair of
/// checkpoints whose order by InfoNCE loss or by image→text recall@1 flips on a split.
pub fn disagreements(reports: &[(&str, &PairReport)]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, r) in reports {
        out.extend(r.notes.iter().map(|n| format!("{name}, {n}")));
    }
    type Measure = (&'static str, fn(&ModeReport) -> f64);
    let measures: [Measure; 2] =
        [("InfoNCE loss", |m| -m.info_nce), ("image→text recall@1", |m| m.image_to_text.recall_at_1)];
    for (a, (name_a, ra)) in reports.iter().enumerate() {
        for (name_b, rb) in &reports[a + 1..] {
            for sa in &ra.splits {
                let Some(sb) = rb.splits.iter().find(|s| s.split == sa.split) else { continue };
                for (what, better) in measures {
                    let longest = better(&sa.batch_longest) - better(&sb.batch_longest);
                    let full = better(&sa.full_context) - better(&sb.full_context);
                    if longest * full < 0.0 {
                        let (win_l, win_f) = if longest > 0.0 { (name_a, name_b) } else { (name_b, name_a) };
                        out.push(format!(
                            "{}: by {what}, {win_l} is better with batch-longest padding but {win_f} with full-context padding",
                            sa.split
                        ));
                    }
                }
            }
        }
    }
    out
}

// ----------------------------------------------------------------------------------------------------
// Rendering

const HEAD: [&str; 14] =
    ["n", "dup", "loss", "sigmoid", "R@1", "R@5", "R@10", "mrr", "prec@5*", "R@1", "R@5", "R@10", "mrr", ""];

/// The cells of one row: n, duplicates, losses, image→text, the seed's precision@5, text→image.
fn cells(s: &SplitReport, m: &ModeReport) -> Vec<String> {
    let f = |x: f64| format!("{x:.3}");
    vec![
        s.n.to_string(),
        s.duplicate_texts.to_string(),
        format!("{:.4}", m.info_nce),
        m.sigmoid.map_or("-".into(), |x| format!("{x:.4}")),
        f(m.image_to_text.recall_at_1),
        f(m.image_to_text.recall_at_5),
        f(m.image_to_text.recall_at_10),
        f(m.image_to_text.mrr),
        f(m.precision_at_5_seed),
        f(m.text_to_image.recall_at_1),
        f(m.text_to_image.recall_at_5),
        f(m.text_to_image.recall_at_10),
        f(m.text_to_image.mrr),
    ]
}

fn mode_of(s: &SplitReport, padding: Padding) -> &ModeReport {
    match padding {
        Padding::BatchLongest => &s.batch_longest,
        Padding::FullContext => &s.full_context,
    }
}

fn preamble(reports: &[(&str, &PairReport)]) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some((_, r)) = reports.first() {
        lines.push(format!("pairs: {} (batches of {} in file order, temperature {})", r.file, r.batch, r.temperature));
    }
    lines
}

fn footer(reports: &[(&str, &PairReport)]) -> Vec<String> {
    let mut lines = vec![
        "loss = symmetric InfoNCE; sigmoid = SigLIP's loss with the checkpoint's scale and bias; R@k = recall@k (hit@k)".to_string(),
        "* prec@5 = the seed's \"precision@5\", computed as image→text hit@5: the same number as R@5".to_string(),
        format!("ties: {TIE_RULE}"),
    ];
    for (name, r) in reports {
        for s in &r.splits {
            if let Some(t) = s.truncated_texts.filter(|&t| t > 0) {
                lines.push(format!(
                    "{name}, {}: {t} of {} texts are longer than the {}-token context and were cut",
                    s.split,
                    s.n,
                    r.context_length.unwrap_or(0)
                ));
            }
        }
    }
    let notes = disagreements(reports);
    if notes.is_empty() {
        lines.push(format!("the two paddings agree ({DISAGREEMENT_RULE})"));
    } else {
        lines.push(format!("the two paddings disagree ({DISAGREEMENT_RULE}):"));
        lines.extend(notes.into_iter().map(|n| format!("- {n}")));
    }
    lines
}

/// The pair tables as a terminal shows them: one table per padding, one row per checkpoint × split.
pub fn render_text(reports: &[(&str, &PairReport)]) -> String {
    let name_w = reports.iter().map(|(n, _)| n.chars().count()).chain(["checkpoint".len()]).max().unwrap_or(10);
    let split_w = reports
        .iter()
        .flat_map(|(_, r)| r.splits.iter().map(|s| s.split.chars().count()))
        .chain(["split".len()])
        .max()
        .unwrap_or(5);
    let widths = [4, 4, 8, 8, 6, 6, 6, 6, 8, 6, 6, 6, 6];
    let row = |name: &str, split: &str, cells: &[String]| -> String {
        let mut line = format!("{name:<name_w$}  {split:<split_w$}");
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            let sep = if i == 4 || i == 9 { " | " } else { " " };
            line.push_str(&format!("{sep}{c:>w$}"));
        }
        line.trim_end().to_string()
    };
    let mut out = preamble(reports);
    for padding in [Padding::BatchLongest, Padding::FullContext] {
        out.push(String::new());
        out.push(format!("padding: {}", padding.describe()));
        let lead = name_w + 2 + split_w + 1 + widths[..4].iter().map(|w| w + 1).sum::<usize>();
        let i2t_w = widths[4..9].iter().map(|w| w + 1).sum::<usize>();
        out.push(format!("{:lead$}| {:<i2t_w$} | text→image", "", "image→text"));
        let head: Vec<String> = HEAD[..13].iter().map(|s| s.to_string()).collect();
        out.push(row("checkpoint", "split", &head));
        for (name, r) in reports {
            for s in &r.splits {
                out.push(row(name, &s.split, &cells(s, mode_of(s, padding))));
            }
        }
    }
    out.push(String::new());
    out.extend(footer(reports));
    out.join("\n") + "\n"
}

/// The same tables as GitHub-flavoured Markdown.
pub fn render_markdown(reports: &[(&str, &PairReport)]) -> String {
    let mut out: Vec<String> = preamble(reports).into_iter().map(|l| l.replace('*', "\\*")).collect();
    let head = [
        "checkpoint",
        "split",
        "n",
        "dup",
        "loss",
        "sigmoid",
        "i→t R@1",
        "i→t R@5",
        "i→t R@10",
        "i→t mrr",
        "precision@5 (seed)\\*",
        "t→i R@1",
        "t→i R@5",
        "t→i R@10",
        "t→i mrr",
    ];
    for padding in [Padding::BatchLongest, Padding::FullContext] {
        out.push(String::new());
        out.push(format!("**padding: {}**", padding.describe()));
        out.push(String::new());
        out.push(format!("| {} |", head.join(" | ")));
        out.push(format!("|{}", " --- |".repeat(2) + &" ---: |".repeat(head.len() - 2)));
        for (name, r) in reports {
            for s in &r.splits {
                let esc = |t: &str| t.replace('|', "\\|");
                let mut row = vec![esc(name), esc(&s.split)];
                row.extend(cells(s, mode_of(s, padding)));
                out.push(format!("| {} |", row.join(" | ")));
            }
        }
    }
    out.push(String::new());
    for line in footer(reports) {
        let line = line.replace('*', "\\*");
        out.push(if line.starts_with("- ") { line } else { format!("{line}\n") });
    }
    out.join("\n").trim_end().to_string() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<Vec<Record>> {
        parse_csv(Path::new("p.csv"), text)
    }

    fn texts(records: &[Record]) -> Vec<Vec<&str>> {
        records.iter().map(|r| r.fields.iter().map(|f| f.text.as_str()).collect()).collect()
    }

    #[test]
    fn csv_reads_quotes_crlf_and_blank_lines() {
        let r = csv("\u{feff}a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\n\n\"two\nlines\",z,w").unwrap();
        assert_eq!(texts(&r), vec![vec!["a", "b", "c"], vec!["x, y", "say \"hi\"", ""], vec!["two\nlines", "z", "w"]]);
        assert_eq!(r.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 2, 4]);
        // The third field of line 2 starts after `"x, y",` (7 characters) and `"say ""hi""",` (13).
        assert_eq!(r[1].fields[2].pos, Position { line: 2, column: 21 });
        assert_eq!(r[2].fields[1].pos, Position { line: 5, column: 8 });
    }

    #[test]
    fn csv_errors_point_at_the_quote() {
        let e = csv("a,b\nx,\"open\n").unwrap_err().to_string();
        assert_eq!(e, "p.csv:2:3: unterminated quoted field: the closing '\"' is missing");
        let e = csv("a,b\nx,ab\"c\n").unwrap_err().to_string();
        assert!(e.starts_with("p.csv:2:5: a quote inside an unquoted field"), "{e}");
        let e = csv("a,b\n\"x\"y,z\n").unwrap_err().to_string();
        assert!(e.starts_with("p.csv:2:4: unexpected 'y' after a closing quote"), "{e}");
    }

    #[test]
    fn texts_get_the_etiquetas_suffix_only_with_tags() {
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(compose_text("jean azul", &tags(&["denim", "roto"])), "jean azul. Etiquetas: denim, roto");
        assert_eq!(compose_text("jean azul.", &tags(&["denim"])), "jean azul. Etiquetas: denim");
        assert_eq!(compose_text("jean azul ", &[]), "jean azul");
    }

    #[test]
    fn ties_rank_the_own_item_last() {
        // Image 0: its own text scores 0.5, text 1 also 0.5 (tie), text 2 0.9: rank 3.
        // Image 1: own 0.7, others 0.1 and 0.7 (tie): rank 2. Image 2: own 0.9 beats 0.2, 0.3: rank 1.
        let sims = vec![vec![0.5, 0.5, 0.9], vec![0.1, 0.7, 0.7], vec![0.2, 0.3, 0.9]];
        assert_eq!(ranks_image_to_text(&sims), [3, 2, 1]);
        // Text 0: own 0.5 vs 0.1, 0.2: rank 1. Text 1: own 0.7 vs 0.5, 0.3: rank 1. Text 2: own 0.9 ties
        // image 0's 0.9 and beats 0.7: rank 2.
        assert_eq!(ranks_text_to_image(&sims), [1, 1, 2]);
        let r = retrieval(&[3, 2, 1, 12]);
        assert_eq!((r.recall_at_1, r.recall_at_5, r.recall_at_10), (0.25, 0.75, 0.75));
        assert!((r.mrr - (1.0 / 3.0 + 0.5 + 1.0 + 1.0 / 12.0) / 4.0).abs() < 1e-15);
    }

    #[test]
    fn losses_match_hand_computation() {
        let sims = vec![vec![0.5, 0.1], vec![0.3, 0.2]];
        // τ = 0.5: logits [[1, 0.2], [0.6, 0.4]].
        // image rows: ln(e^1 + e^0.2) - 1 and ln(e^0.6 + e^0.4) - 0.4; text columns: ln(e^1 + e^0.6) - 1
        // and ln(e^0.2 + e^0.4) - 0.4.
        let e = f64::exp;
        let rows = ((e(1.0) + e(0.2)).ln() - 1.0 + (e(0.6) + e(0.4)).ln() - 0.4) / 2.0;
        let cols = ((e(1.0) + e(0.6)).ln() - 1.0 + (e(0.2) + e(0.4)).ln() - 0.4) / 2.0;
        assert!((info_nce(&sims, 16, 0.5) - (rows + cols) / 2.0).abs() < 1e-12);
        assert!((info_nce(&sims, 16, 0.5) - 0.570_098_414_277_728_6).abs() < 1e-12);
        // Batches of one: each batch's loss is 0 (a single candidate), so the mean is 0.
        assert_eq!(info_nce(&sims, 1, 0.5), 0.0);
        // s = 10, b = -5: logits [[0, -4], [-2, -3]]; positives on the diagonal.
        // -ln σ(0) - ln σ(4) - ln σ(2) - ln σ(-3) = ln 2 + ln(1+e^-4) + ln(1+e^-2) + ln(1+e^3), over 2.
        let want = ((2f64).ln() + (1.0 + e(-4.0)).ln() + (1.0 + e(-2.0)).ln() + (1.0 + e(3.0)).ln()) / 2.0;
        assert!((sigmoid_loss(&sims, 16, 10.0, -5.0) - want).abs() < 1e-12);
        // Two batches of one: (ln 2 + ln(1 + e^3)) / 2, each divided by its size 1.
        let want = ((2f64).ln() + (1.0 + e(3.0)).ln()) / 2.0;
        assert!((sigmoid_loss(&sims, 1, 10.0, -5.0) - want).abs() < 1e-12);
    }
}
