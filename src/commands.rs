//! What the `fitcheck` subcommands do, as library functions: `main.rs` parses flags and calls these.
//!
//! Each returns the text to print and an [`Exit`] status, or an error when nothing could be judged.
//! Exit statuses are the contract a CI job gates on: 0 everything passed, 1 cases failed (or, for
//! `compare`, the candidate failed the gate), 2 nothing could be judged (a bad suite file, a model
//! that does not load or yields non-finite values, a missing catalog, a file that cannot be written).
//! Output files are written only after everything was computed, each atomically, so a failure leaves
//! nothing written half-way.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::compare::{self, Gate};
use crate::compare_report;
use crate::document::{Document, Manifest, NamedPairs};
use crate::embed::ModelSource;
use crate::error::{Error, Result};
use crate::files::atomic_write;
use crate::harness::{Overrides, Session};
use crate::report;
use crate::result::RunResult;
use crate::snapshot;
use crate::suite::Suite;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything passed.
    Passed = 0,
    /// Cases failed, or the candidate failed the gate.
    Failed = 1,
    /// Nothing could be judged.
    Broken = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Where to write machine-readable and Markdown results.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub json: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    /// A directory for the HTML report.
    pub html: Option<PathBuf>,
}

impl Outputs {
    /// Writes each requested output; returns the line saying what the HTML report wrote, if any.
    fn write(&self, doc: &Document, cache: Option<&Path>, markdown: impl FnOnce() -> String) -> Result<String> {
        if let Some(path) = &self.json {
            atomic_write(path, doc.to_json().as_bytes())?;
        }
        if let Some(path) = &self.markdown {
            atomic_write(path, markdown().as_bytes())?;
        }
        match &self.html {
            Some(dir) => Ok(crate::html::write(doc, dir, cache)?.line() + "\n"),
            None => Ok(String::new()),
        }
    }
}

/// `fitcheck run`: every case of the suite on one checkpoint.
pub fn run(suite: &Path, overrides: &Overrides, outputs: &Outputs) -> Result<(String, Exit)> {
    let session = Session::open(suite, overrides)?;
    let run = session.run()?;
    let doc = Document {
        manifest: Manifest::current(session.suite.k),
        runs: vec![run],
        comparisons: Vec::new(),
        notes: Vec::new(),
        pairs: Vec::new(),
    };
    let written = outputs.write(&doc, session.cache_dir(), || report::markdown(&doc.runs[0]))?;
    let exit = if doc.runs[0].passed() { Exit::Passed } else { Exit::Failed };
    Ok((report::summary(&doc.runs[0]) + &written, exit))
}

/// `fitcheck compare`'s request.
#[derive(Debug, Clone, Default)]
pub struct CompareRequest {
    pub suite: PathBuf,
    /// Candidates: registry names, directories, or `hub-id[@revision]`.
    pub checkpoints: Vec<String>,
    /// The baseline, instead of the suite file's `[model]`.
    pub baseline: Option<String>,
    /// Compare every registered checkpoint.
    pub all: bool,
    pub offline: bool,
    pub gate: Gate,
    /// Write the candidate's snapshots as the accepted ones (one candidate only).
    pub write_snapshots: bool,
    pub outputs: Outputs,
}

/// A checkpoint to run: its name in results, where it is, and its registry settings.
struct Named {
    name: String,
    source: ModelSource,
    settings: std::collections::BTreeMap<String, String>,
}

/// Resolves a registry name, a directory or `hub-id[@revision]`.
fn resolve(suite: &Suite, value: &str) -> Named {
    if let Some(c) = suite.checkpoints.iter().find(|c| c.name == value) {
        return Named { name: c.name.clone(), source: c.source.clone(), settings: c.settings.clone() };
    }
    let (id, revision) = match value.rsplit_once('@') {
        Some((id, rev)) if !Path::new(value).exists() && !id.is_empty() && !rev.is_empty() => (id, Some(rev)),
        _ => (value, None),
    };
    let source = ModelSource::from_override(id, revision);
    named(suite, source)
}

/// A source, named by the registry when it is registered.
fn named(suite: &Suite, source: ModelSource) -> Named {
    match suite.checkpoints.iter().find(|c| c.source == source) {
        Some(c) => Named { name: c.name.clone(), source, settings: c.settings.clone() },
        None => Named { name: source.to_string(), source, settings: Default::default() },
    }
}

fn overrides_for(source: &ModelSource, offline: bool) -> Overrides {
    let (model, revision) = match source {
        ModelSource::Local(p) => (p.to_string_lossy().into_owned(), None),
        ModelSource::Hub { id, revision } => (id.clone(), Some(revision.clone())),
        ModelSource::Toy => ("toy".to_string(), None),
    };
    let mut o = Overrides::from_env();
    o.model = Some(model);
    o.revision = revision;
    o.offline |= offline;
    o
}

/// `fitcheck compare`: the suite on a baseline and one or more candidates; returns the report and
/// the reasons the gate fails (none: exit 0).
pub fn compare(req: &CompareRequest) -> Result<(String, Exit)> {
    let suite = Suite::load(&req.suite)?;
    let baseline = match &req.baseline {
        Some(b) => resolve(&suite, b),
        None => named(&suite, suite.model.source.clone()),
    };
    let mut candidates: Vec<Named> = req.checkpoints.iter().map(|c| resolve(&suite, c)).collect();
    if req.all {
        for c in &suite.checkpoints {
            if c.source != baseline.source && !candidates.iter().any(|o| o.source == c.source) {
                candidates.push(Named { name: c.name.clone(), source: c.source.clone(), settings: c.settings.clone() });
            }
        }
    }
    if candidates.is_empty() {
        return Err(Error::file(
            &suite.file,
            "nothing to compare with the baseline: name a checkpoint (a registered name, a directory or hub-id@revision), or use --all with [[checkpoints]] in the suite file",
        ));
    }
    if req.write_snapshots && candidates.len() != 1 {
        return Err(Error::file(&suite.file, "--write-snapshots takes exactly one candidate"));
    }
    let mut runs: Vec<RunResult> = Vec::new();
    let mut sessions = Vec::new();
    for n in std::iter::once(&baseline).chain(&candidates) {
        let mut session = Session::open(&req.suite, &overrides_for(&n.source, req.offline))?;
        session.name = Some(n.name.clone());
        let mut run = session.run()?;
        run.settings = n.settings.clone();
        runs.push(run);
        sessions.push(session);
    }
    let mut pairs = Vec::new();
    if let Some(spec) = &suite.pairs {
        for (session, run) in sessions.iter().zip(runs.iter_mut()) {
            let report = crate::pairs::evaluate(session.embedder()?, spec, session.cache_dir())?;
            let context = report.context_length.unwrap_or(0);
            for split in &report.splits {
                for (text, tokens) in &split.truncated {
                    run.warnings.push(format!(
                        "{}: the pair text '{text}' ({} split) has {tokens} tokens and the model reads {context}: the rest is cut off",
                        report.file, split.split
                    ));
                }
            }
            pairs.push(NamedPairs { name: run.name.clone(), report });
        }
    }
    let comparisons: Vec<_> = runs[1..].iter().map(|c| compare::compare(&runs[0], c)).collect();
    let doc =
        Document { manifest: Manifest::current(suite.k), notes: compare::notes(&runs[0]), runs, comparisons, pairs };
    let reasons = compare::gate(&doc.runs, &doc.comparisons, &req.gate);
    // Everything is computed: now write, snapshots last (they change the suite).
    let written = req.outputs.write(&doc, sessions[0].cache_dir(), || compare_report::markdown(&doc))?;
    let mut text = compare_report::text(&doc) + &written;
    if req.write_snapshots {
        let session = &sessions[1];
        let mut written = 0;
        for found in &session.cases {
            let Some(result) = doc.runs[1].case(&found.name) else { continue };
            if result.ranking.is_none() {
                continue;
            }
            let header = session.snapshot_header(found)?;
            let accepted = snapshot::read_accepted(&session.suite.snapshots_dir, &found.name)?;
            let body = report::snapshot_body(result);
            let status = snapshot::check(
                &session.suite.snapshots_dir,
                &found.name,
                &header,
                &body,
                accepted.as_ref(),
                snapshot::Update::Always,
            )?;
            if status != snapshot::Status::Matches {
                written += 1;
            }
        }
        text.push_str(&format!(
            "\nwrote {written} snapshot(s) of {} under {}\n",
            doc.runs[1].name,
            session.suite.snapshots_dir.display()
        ));
    }
    if reasons.is_empty() {
        Ok((text, Exit::Passed))
    } else {
        for r in &reasons {
            text.push_str(&format!("gate: {r}\n"));
        }
        Ok((text, Exit::Failed))
    }
}

/// `fitcheck hub`: the watched revisions the suite does not know, as text or JSON; `only` looks at
/// one repository and revision instead of the suite's `[watch]` (what a webhook or a person names).
pub fn hub(suite: &Path, json: bool, only: Option<(&str, &str)>) -> Result<(String, Exit)> {
    let mut suite = Suite::load(suite)?;
    if let Some((repo, revision)) = only {
        if !crate::suite::is_hub_id(repo) {
            return Err(Error::file(&suite.file, format!("invalid hub id '{repo}': write it as owner/name")));
        }
        let repos = vec![crate::suite::WatchRepo { hub: repo.to_string(), revision: revision.to_string() }];
        suite.watch = crate::suite::Watch { authors: Vec::new(), repos };
    }
    let api = crate::model::source::HubApi::from_env()?;
    let new = crate::hub::find_new(&suite, &api)?;
    let text = if json { crate::hub::json(api.endpoint(), &new) } else { crate::hub::text(&new) };
    Ok((text, Exit::Passed))
}

/// `fitcheck adopt REPO@SHA`: switches `[model]` to it and registers it in `[[checkpoints]]`.
pub fn adopt(suite: &Path, model: &str, name: Option<&str>) -> Result<(String, Exit)> {
    let file = suite.join(crate::suite::SUITE_FILE);
    let Some((repo, sha)) = model.rsplit_once('@') else {
        return Err(Error::file(&file, format!("'{model}' names no revision: write it as org/name@<commit sha>")));
    };
    Ok((crate::hub::adopt(suite, repo, sha, name)?, Exit::Passed))
}

/// `fitcheck items SELECTOR`: the catalog items a selector matches, with their tags.
pub fn items(suite: &Path, selector: &str) -> Result<String> {
    let suite = Suite::load(suite)?;
    let catalog = crate::catalog::Catalog::load(&suite.catalog_root, suite.manifest.as_deref())?;
    let hits =
        catalog.select(selector).map_err(|msg| Error::file(&suite.catalog_root, format!("'{selector}': {msg}")))?;
    let width = hits.iter().map(|&i| catalog.items()[i].id.chars().count()).max().unwrap_or(0);
    let mut s = String::new();
    for &i in &hits {
        let it = &catalog.items()[i];
        s.push_str(&format!("{:<width$}  {}\n", it.id, it.tags.join(", ")));
    }
    s.push_str(&format!("{} of {} items match '{selector}'\n", hits.len(), catalog.len()));
    Ok(s)
}

/// `fitcheck cache build [--shard i/n]`: embeds the catalog with the suite's model into the cache, or
/// only the items of one shard, then also into a shard file (`out`, or the cache's `shards/` folder).
pub fn cache_build(
    suite: &Path,
    overrides: &Overrides,
    shard: Option<crate::cache::Shard>,
    out: Option<&Path>,
) -> Result<String> {
    let session = Session::open(suite, overrides)?;
    let catalog = session.catalog()?;
    let dir = session.cache_dir();
    let embedder = crate::harness::describe_model(&session.suite.model, catalog, dir)?;
    let Some(shard) = shard else {
        let embedded = crate::cache::embed_catalog(embedder.as_ref(), catalog, dir)?;
        let mut text: String = embedded.warnings.iter().map(|w| format!("warning: {w}\n")).collect();
        text.push_str(&format!(
            "catalog: {} items ({} embedded, {} cached) in {}\n",
            catalog.len(),
            embedded.stats.embedded,
            embedded.stats.cached,
            dir.map_or_else(|| "no cache (FITCHECK_CACHE=off)".to_string(), |d| d.display().to_string())
        ));
        return Ok(text);
    };
    let out = match (out, dir) {
        (Some(out), _) => out.to_owned(),
        (None, Some(dir)) => crate::cache::shard_file(dir, embedder.as_ref(), shard),
        (None, None) => return Err(Error::file(
            suite,
            "the embedding cache is off (FITCHECK_CACHE=off) and no --out was given: name the shard file with --out",
        )),
    };
    let built = crate::cache::build_shard(embedder.as_ref(), catalog, dir, shard, &out)?;
    let mut text = String::new();
    for w in &built.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    text.push_str(&format!(
        "shard {}/{}: {} of {} items ({} embedded, {} cached) written to {}\n",
        shard.index,
        shard.count,
        built.items,
        catalog.len(),
        built.stats.embedded,
        built.stats.cached,
        built.file.display()
    ));
    Ok(text)
}
